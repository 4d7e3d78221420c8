#include "glob.h"

#include <fmt/format.h>

#include "json_util.h"

namespace codestore::cli {

Result<Glob> Glob::compile(std::string_view pattern) {
  auto refuse = [&](std::string_view why) {
    return error(Code::kInvalidArgument, fmt::format("pattern '{}': {}", pattern, why));
  };
  Glob g;
  std::size_t i = 0;
  // One character of the pattern, '\' escapes included; false at the end.
  auto next = [&](std::uint32_t& cp, bool& escaped) {
    if (i >= pattern.size()) return false;
    escaped = pattern[i] == '\\';
    if (escaped) ++i;
    if (i >= pattern.size()) return false;
    const auto [c, len] = next_code_point(pattern, i);
    cp = c;
    i += len;
    return true;
  };
  while (i < pattern.size()) {
    std::uint32_t cp = 0;
    bool escaped = false;
    if (!next(cp, escaped)) return refuse("ends with '\\'");
    Token t;
    if (!escaped && cp == '*') {
      t.kind = Token::kStar;
    } else if (!escaped && cp == '?') {
      t.kind = Token::kAny;
    } else if (!escaped && cp == '[') {
      t.kind = Token::kSet;
      if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
        t.negated = true;
        ++i;
      }
      bool first = true, closed = false;
      std::uint32_t lo = 0;
      while (next(lo, escaped)) {
        if (!escaped && lo == ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        std::uint32_t hi = lo;
        if (i + 1 < pattern.size() && pattern[i] == '-' && pattern[i + 1] != ']') {
          ++i;
          if (!next(hi, escaped)) break;
          if (hi < lo) return refuse(fmt::format("the range in '[...]' runs backwards"));
        }
        t.ranges.emplace_back(lo, hi);
      }
      if (!closed) return refuse("'[' without its ']' (write '\\[' for the character itself)");
    } else {
      t.cp = cp;
    }
    g.tokens_.push_back(std::move(t));
  }
  return g;
}

bool Glob::matches(std::string_view name) const {
  std::vector<std::uint32_t> s;
  for (std::size_t i = 0; i < name.size();) {
    const auto [cp, len] = next_code_point(name, i);
    s.push_back(cp);
    i += len;
  }
  auto one = [](const Token& t, std::uint32_t c) {
    switch (t.kind) {
      case Token::kChar: return t.cp == c;
      case Token::kAny: return true;
      case Token::kSet: {
        bool in = false;
        for (const auto& [lo, hi] : t.ranges) in = in || (c >= lo && c <= hi);
        return in != t.negated;
      }
      case Token::kStar: return false;
    }
    return false;
  };
  // The classic backtracking over the last '*': linear for most patterns, never exponential.
  std::size_t p = 0, i = 0, star = tokens_.size(), mark = 0;
  while (i < s.size()) {
    if (p < tokens_.size() && tokens_[p].kind != Token::kStar && one(tokens_[p], s[i])) {
      ++p;
      ++i;
    } else if (p < tokens_.size() && tokens_[p].kind == Token::kStar) {
      star = p++;
      mark = i;
    } else if (star != tokens_.size()) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < tokens_.size() && tokens_[p].kind == Token::kStar) ++p;
  return p == tokens_.size();
}

}  // namespace codestore::cli

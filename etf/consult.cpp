// file:consult/1: erl_scan's tokens for one term at a time (up to its '.'), then
// erl_parse:parse_term/1's subset of the grammar, then erl_parse:normalise/1's values.
//
// Sources: stdlib-4.2 (OTP 25) erl_scan.erl (characters, escapes, numbers, reserved words),
// erl_parse.yrl and erl_parse:normalise/1 (what a term may be), eval_bits.erl (binary
// segments), epp.erl (the coding comment), file.erl (consult_stream: one io:read per term).
#include "etf/consult.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "base/file.h"
#include "base/utf8.h"
#include "etf/term_internal.h"

namespace codestore::etf {
namespace {

constexpr std::uint32_t kEofChar = 0xFFFFFFFF;
constexpr std::size_t kMaxAtomChars = 255;
constexpr std::size_t kMaxIntegerDigits = 4096;  // a big integer literal; keeps its conversion cheap

bool is_white(std::uint32_t c) {
  return c <= 32 || (c >= 128 && c <= 160);
}
bool is_digit(std::uint32_t c) {
  return c >= '0' && c <= '9';
}
bool is_unicode(std::uint32_t c) {
  return c < 0xD800 || (c > 0xDFFF && c < 0xFFFE) || (c > 0xFFFF && c <= 0x10FFFF);
}
bool is_hex(std::uint32_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(std::uint32_t c) {
  if (is_digit(c)) return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  return static_cast<int>(c - 'A' + 10);
}
// erl_scan: atoms start with a-z or a Latin-1 lowercase letter; variables with A-Z, '_' or a
// Latin-1 uppercase letter; names continue with letters, digits, '_' and '@'.
bool atom_start(std::uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0xFF && c != 0xF7);
}
bool var_start(std::uint32_t c) {
  return (c >= 'A' && c <= 'Z') || c == '_' || (c >= 0xC0 && c <= 0xDE && c != 0xD7);
}
bool name_char(std::uint32_t c) {
  return atom_start(c) || var_start(c) || is_digit(c) || c == '@';
}
// erl_scan:f_reserved_word/1 (maybe and else are keywords only with the experimental
// maybe_expr feature, off in OTP 25).
bool reserved_word(std::string_view w) {
  static constexpr std::string_view kWords[] = {"after",  "begin", "case", "try", "cond", "catch", "andalso",
                                                "orelse", "end",   "fun",  "if",  "let",  "of",    "receive",
                                                "when",   "bnot",  "not",  "div", "rem",  "band",  "and",
                                                "bor",    "bxor",  "bsl",  "bsr", "or",   "xor"};
  return std::find(std::begin(kWords), std::end(kWords), w) != std::end(kWords);
}
std::uint32_t escape_char(std::uint32_t c) {
  switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'v': return '\v';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'e': return 27;
    case 's': return ' ';
    case 'd': return 127;
    default: return c;
  }
}

// epp:read_encoding_from_file/2 with InComment = true: in a comment on the first or second
// line, "coding" then ':' or '=' (spaces around allowed) then a name whose first two
// '-'-separated parts are latin,1 or utf,8 (any case). Anything else stops the search.
bool latin1_declared(std::span<const std::uint8_t> t) {
  std::size_t i = 0, n = t.size();
  auto lower = [](std::uint8_t c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
  for (int line = 0; line < 2 && i < n; ++line) {
    while (i < n && t[i] != '\n' && t[i] != '%') ++i;  // com: up to a comment
    if (i < n && t[i] == '%') {
      while (i < n && t[i] != '\n') {  // com_c: look for "coding"
        if (t[i] != 'c') {
          ++i;
          continue;
        }
        ++i;
        if (n - i < 5 || std::memcmp(&t[i], "oding", 5) != 0) continue;
        i += 5;
        while (i < n && t[i] == ' ') ++i;
        if (i >= n || (t[i] != ':' && t[i] != '=')) continue;
        ++i;
        while (i < n && t[i] == ' ') ++i;
        std::vector<std::string> parts(1);
        while (i < n) {
          std::uint8_t c = t[i];
          if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            parts.back() += lower(c);
          } else if (c == '-') {
            parts.emplace_back();
          } else {
            break;
          }
          ++i;
        }
        return parts.size() >= 2 && parts[0] == "latin" && parts[1] == "1";
      }
    }
    if (i < n) ++i;  // the newline
  }
  return false;
}

enum class Tok { kAtom, kVar, kString, kChar, kInteger, kFloat, kPunct, kKeyword, kDot, kEof };

struct Token {
  Tok kind = Tok::kEof;
  std::uint32_t line = 1;
  std::size_t offset = 0;
  std::string text;                  // atom, variable or keyword name (UTF-8); punctuation
  std::vector<std::uint32_t> chars;  // a string's characters
  Term number;                       // integer (int64 or BigInt), float, or a character
};

// An integer from its magnitude (little-endian bytes) and sign, as decode gives it: int64
// when it fits, else BigInt without high zero bytes.
Term make_integer(bool negative, std::vector<std::uint8_t> mag) {
  while (!mag.empty() && mag.back() == 0) mag.pop_back();
  if (mag.size() <= 8) {
    std::uint64_t u = 0;
    for (std::size_t i = mag.size(); i-- > 0;) u = (u << 8) | mag[i];
    constexpr std::uint64_t kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!negative && u <= kMax) return Term(static_cast<std::int64_t>(u));
    if (negative && u <= kMax + 1) return Term(static_cast<std::int64_t>(0 - u));
  }
  return Term(BigInt{negative, std::move(mag)});
}

Term negate(const Term& t) {
  if (const auto* i = t.as_int()) {
    std::int64_t v = *i;
    if (v == std::numeric_limits<std::int64_t>::min()) {
      return Term(BigInt{false, {0, 0, 0, 0, 0, 0, 0, 0x80}});
    }
    return Term(-v);
  }
  if (const auto* b = std::get_if<BigInt>(&t.value())) return make_integer(!b->negative, b->magnitude);
  return Term(-std::get<double>(t.value()));
}

class Consulter {
 public:
  Consulter(std::span<const std::uint8_t> text, std::string_view source, const ConsultLimits& limits)
      : t_(text),
        source_(source),
        limits_(limits),
        max_depth_(std::min(limits.max_depth, kConsultMaxDepthCeiling)) {}

  Result<std::vector<Term>> run();

 private:
  // --- characters
  // The character at byte offset p and its length in bytes (kEofChar, 0 at the end).
  std::pair<std::uint32_t, std::size_t> at(std::size_t p) const {
    if (p >= t_.size()) return {kEofChar, 0};
    if (latin1_ || t_[p] < 0x80) return {t_[p], 1};
    std::uint32_t cp = 0;
    std::size_t len = base::utf8_one(t_.data(), t_.size(), p, &cp);
    return {cp, len};  // the text was checked: len > 0
  }
  std::uint32_t cur() const { return at(pos_).first; }
  std::uint32_t peek(std::size_t k) const {
    std::size_t p = pos_;
    for (std::size_t i = 0; i < k; ++i) {
      auto [c, len] = at(p);
      if (len == 0) return kEofChar;
      p += len;
    }
    return at(p).first;
  }
  std::uint32_t advance() {
    auto [c, len] = at(pos_);
    pos_ += len;
    if (c == '\n') ++line_;
    return c;
  }

  // --- errors
  Status fail(Code code, std::uint32_t line, std::size_t offset, std::string_view what) const {
    return Status(code, fmt::format("{}:{}: {}", source_, line, what))
        .with_where(Where{std::string(source_), "", offset});
  }
  Status fail_at(const Token& tok, std::string_view what) const {
    return fail(Code::kCorruption, tok.line, tok.offset, what);
  }
  Status count(const Token& tok, std::size_t n) {
    terms_ += n;
    if (terms_ > limits_.max_terms) {
      return fail(Code::kLimitExceeded, tok.line, tok.offset,
                  fmt::format("more than max_terms {} values", limits_.max_terms));
    }
    return Status::ok();
  }

  // --- scanning (erl_scan)
  Status next(Token& tok);
  Status scan_number(Token& tok);
  Status punct(const Token& tok);
  Status scan_quoted(Token& tok, std::uint32_t quote);
  // After a backslash: the escaped character into *value; *eof when the text ends first.
  Status scan_escape(std::uint32_t* value, bool* eof);

  // --- parsing (erl_parse:parse_term/1 and normalise/1)
  enum class Shape { kOther, kNumber, kString, kOp };
  struct Parsed {
    Term term;
    Shape shape = Shape::kOther;
    std::vector<std::uint32_t> chars;  // kString: the characters (binaries need them)
  };
  const Token& tok() const { return toks_[i_]; }
  bool is_punct(std::string_view p) const { return tok().kind == Tok::kPunct && tok().text == p; }
  Status syntax_error() const;
  Status expect(std::string_view p) {
    if (!is_punct(p)) return syntax_error();
    ++i_;
    return Status::ok();
  }
  Result<Parsed> expr(std::size_t depth);
  Result<Parsed> expr_max(std::size_t depth);
  Status enter(std::size_t depth) const {
    if (depth >= max_depth_) {
      return fail(Code::kLimitExceeded, tok().line, tok().offset,
                  fmt::format("nesting deeper than max_depth {}", max_depth_));
    }
    return Status::ok();
  }
  Result<Term> list(std::size_t depth);
  Result<Term> map(std::size_t depth);
  Result<Term> binary(std::size_t depth);
  Result<Term> fun_ref();

  std::span<const std::uint8_t> t_;
  std::string_view source_;
  const ConsultLimits& limits_;
  std::size_t max_depth_;
  bool latin1_ = false;
  std::size_t pos_ = 0;
  std::uint32_t line_ = 1;
  std::size_t terms_ = 0;
  std::size_t open_ = 0;     // brackets open in the current term
  std::vector<Token> toks_;  // the current term's, up to and with its dot
  std::size_t i_ = 0;
};

Status Consulter::next(Token& tok) {
  tok = Token();
  for (;;) {  // white space and comments
    std::uint32_t c = cur();
    if (c == kEofChar) break;
    if (is_white(c)) {
      advance();
    } else if (c == '%') {
      while (cur() != kEofChar && cur() != '\n') advance();
    } else {
      break;
    }
  }
  tok.line = line_;
  tok.offset = pos_;
  std::uint32_t c = cur();
  if (c == kEofChar) {
    tok.kind = Tok::kEof;
    return Status::ok();
  }
  if (is_digit(c)) return scan_number(tok);
  if (atom_start(c) || var_start(c)) {
    std::vector<std::uint32_t> name;
    while (name_char(cur())) name.push_back(advance());
    for (std::uint32_t ch : name) base::append_utf8(tok.text, ch);
    if (var_start(c)) {
      tok.kind = Tok::kVar;
    } else if (name.size() > kMaxAtomChars) {
      return fail_at(tok, "illegal atom (longer than 255 characters)");
    } else {
      tok.kind = reserved_word(tok.text) ? Tok::kKeyword : Tok::kAtom;
    }
    return count(tok, 1);
  }
  if (c == '"' || c == '\'') return scan_quoted(tok, c);
  if (c == '$') {
    advance();
    std::uint32_t ch = cur();
    if (ch == kEofChar) return fail_at(tok, "unterminated character");
    if (ch == '\\') {
      advance();
      bool eof = false;
      std::uint32_t v = 0;
      if (Status s = scan_escape(&v, &eof); !s) return s;
      if (eof) return fail_at(tok, "unterminated character");
      ch = v;
    } else {
      advance();
      if (!is_unicode(ch)) return fail_at(tok, "illegal character");
    }
    tok.kind = Tok::kChar;
    tok.number = Term(static_cast<std::int64_t>(ch));
    return count(tok, 1);
  }
  if (c == '.') {
    std::uint32_t n = peek(1);
    if (n == kEofChar || n == '%' || is_white(n)) {
      advance();
      tok.kind = Tok::kDot;
      return Status::ok();
    }
  }
  // Punctuation, longest first, as erl_scan recognises it.
  static constexpr std::string_view kPunct[] = {
      "=:=", "=/=", "...", "<<", "<-", "<=", ">>", ">=", "->", "--",
      "++",  "=<",  "=>",  "==", "/=", "||", ":=", "::", "?=", ".."};
  tok.kind = Tok::kPunct;
  for (std::string_view p : kPunct) {
    if (t_.size() - pos_ >= p.size() && std::memcmp(&t_[pos_], p.data(), p.size()) == 0) {
      pos_ += p.size();
      tok.text = p;
      return punct(tok);
    }
  }
  if (c > 0xFF) return fail_at(tok, fmt::format("illegal character U+{:04X}", c));
  advance();
  base::append_utf8(tok.text, c);
  return punct(tok);
}

// Brackets are counted as they are scanned, so a depth bomb stops here, before its tokens
// are held (the parser checks the depth again, exactly).
Status Consulter::punct(const Token& tok) {
  const std::string& p = tok.text;
  if (p == "(" || p == "[" || p == "{" || p == "<<") {
    if (++open_ > max_depth_) {
      return fail(Code::kLimitExceeded, tok.line, tok.offset,
                  fmt::format("nesting deeper than max_depth {}", max_depth_));
    }
  } else if ((p == ")" || p == "]" || p == "}" || p == ">>") && open_ > 0) {
    --open_;
  }
  return count(tok, 1);
}

Status Consulter::scan_number(Token& tok) {
  // Digits with '_' only between two digits (of the base).
  auto digits = [&](int base, std::string& out) {
    auto ok = [base](std::uint32_t ch) {
      if (is_digit(ch)) return static_cast<int>(ch - '0') < base;
      if (ch >= 'a' && ch <= 'z') return base > 10 && static_cast<int>(ch - 'a') < base - 10;
      if (ch >= 'A' && ch <= 'Z') return base > 10 && static_cast<int>(ch - 'A') < base - 10;
      return false;
    };
    for (;;) {
      std::uint32_t ch = cur();
      if (ok(ch)) {
        out.push_back(static_cast<char>(advance()));
      } else if (ch == '_' && !out.empty() && ok(peek(1))) {
        advance();
      } else {
        return;
      }
    }
  };
  auto to_integer = [&](const std::string& ds, int base) -> Status {
    if (ds.size() > kMaxIntegerDigits) {
      return fail(Code::kLimitExceeded, tok.line, tok.offset,
                  fmt::format("integer of more than {} digits", kMaxIntegerDigits));
    }
    std::vector<std::uint8_t> mag;
    for (char ch : ds) {
      auto c = static_cast<unsigned char>(ch);
      unsigned carry = is_digit(c) ? c - '0' : (c | 0x20u) - 'a' + 10;
      for (auto& b : mag) {
        unsigned v = b * static_cast<unsigned>(base) + carry;
        b = static_cast<std::uint8_t>(v & 0xFF);
        carry = v >> 8;
      }
      while (carry != 0) {
        mag.push_back(static_cast<std::uint8_t>(carry & 0xFF));
        carry >>= 8;
      }
    }
    tok.kind = Tok::kInteger;
    tok.number = make_integer(false, std::move(mag));
    return count(tok, 1);
  };
  std::string ds;
  digits(10, ds);
  if (cur() == '.' && is_digit(peek(1))) {
    std::string text = ds;
    text += static_cast<char>(advance());
    digits(10, text);
    if (cur() == 'e' || cur() == 'E') {
      text += static_cast<char>(advance());
      if (cur() == '+' || cur() == '-') text += static_cast<char>(advance());
      std::string exp;
      digits(10, exp);
      if (exp.empty()) return fail_at(tok, "illegal float");
      text += exp;
    }
    double d = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (ec == std::errc::result_out_of_range) {
      // list_to_float/1 (strtod) turns an underflow into 0.0 (or a denormal) and refuses
      // an overflow.
      errno = 0;
      d = std::strtod(text.c_str(), nullptr);
      if (!std::isfinite(d)) return fail_at(tok, "illegal float");
    } else if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(d)) {
      return fail_at(tok, "illegal float");
    }
    tok.kind = Tok::kFloat;
    tok.number = Term(d);
    return count(tok, 1);
  }
  if (cur() == '#') {
    int base = 0;  // list_to_integer of the digits ("016#" is base 16), saturated
    for (char ch : ds) base = std::min(base * 10 + (ch - '0'), 100);
    if (base < 2 || base > 36) return fail_at(tok, fmt::format("illegal base '{}'", ds));
    advance();
    std::string bs;
    digits(base, bs);
    if (bs.empty()) return fail_at(tok, "illegal integer");
    return to_integer(bs, base);
  }
  return to_integer(ds, 10);
}

Status Consulter::scan_escape(std::uint32_t* value, bool* eof) {
  std::uint32_t c = cur();
  *eof = false;
  if (c == kEofChar) {
    *eof = true;
    return Status::ok();
  }
  std::size_t offset = pos_;
  auto illegal = [&] {
    return fail(Code::kCorruption, line_, offset, "illegal character in an escape sequence");
  };
  if (c >= '0' && c <= '7') {  // \N, \NN, \NNN
    std::uint32_t v = 0;
    for (int k = 0; k < 3 && cur() >= '0' && cur() <= '7'; ++k) v = v * 8 + (advance() - '0');
    *value = v;
    return Status::ok();
  }
  if (c == 'x') {
    advance();
    if (cur() == '{') {  // \x{H...}
      advance();
      std::uint64_t v = 0;
      std::size_t n = 0;
      while (is_hex(cur())) {
        v = std::min<std::uint64_t>(v * 16 + static_cast<std::uint64_t>(hex_value(advance())), 0x110000);
        ++n;
      }
      if (cur() == kEofChar) {
        *eof = true;
        return Status::ok();
      }
      if (cur() != '}' || n == 0 || v > 0x10FFFF || !is_unicode(static_cast<std::uint32_t>(v)))
        return illegal();
      advance();
      *value = static_cast<std::uint32_t>(v);
      return Status::ok();
    }
    if (cur() == kEofChar) {
      *eof = true;
      return Status::ok();
    }
    if (is_hex(cur()) && is_hex(peek(1))) {  // \xHH
      std::uint32_t hi = static_cast<std::uint32_t>(hex_value(advance()));
      *value = hi * 16 + static_cast<std::uint32_t>(hex_value(advance()));
      return Status::ok();
    }
    return illegal();
  }
  if (c == '^') {  // \^X: control-X
    advance();
    std::uint32_t x = cur();
    if (x == kEofChar) {
      *eof = true;
      return Status::ok();
    }
    advance();
    *value = x == '\n' ? x : (x & 31);
    return Status::ok();
  }
  advance();
  if (!is_unicode(c)) return illegal();
  *value = escape_char(c);
  return Status::ok();
}

Status Consulter::scan_quoted(Token& tok, std::uint32_t quote) {
  advance();
  std::vector<std::uint32_t> chars;
  auto unterminated = [&] {
    std::string head;
    for (std::size_t k = 0; k < chars.size() && k < 16; ++k) base::append_utf8(head, chars[k]);
    return fail_at(tok, fmt::format("unterminated {} starting with {}{}{}", quote == '"' ? "string" : "atom",
                                    static_cast<char>(quote), head, static_cast<char>(quote)));
  };
  for (;;) {
    std::uint32_t c = cur();
    if (c == kEofChar) return unterminated();
    if (c == quote) {
      advance();
      break;
    }
    if (c == '\\') {
      advance();
      bool eof = false;
      std::uint32_t v = 0;
      if (Status s = scan_escape(&v, &eof); !s) return s;
      if (eof) return unterminated();
      chars.push_back(v);
    } else {
      std::size_t offset = pos_;
      advance();
      if (!is_unicode(c)) return fail(Code::kCorruption, line_, offset, "illegal character");
      chars.push_back(c);
    }
    if (quote == '"') {
      if (Status s = count(tok, 1); !s) return s;
    }
  }
  if (quote == '\'') {
    if (chars.size() > kMaxAtomChars) return fail_at(tok, "illegal atom (longer than 255 characters)");
    for (std::uint32_t ch : chars) base::append_utf8(tok.text, ch);
    tok.kind = Tok::kAtom;
    return count(tok, 1);
  }
  tok.kind = Tok::kString;
  tok.chars = std::move(chars);
  return count(tok, 1);
}

Status Consulter::syntax_error() const {
  const Token& t = tok();
  std::string what;
  switch (t.kind) {
    case Tok::kEof: what = "the end of the text"; break;
    case Tok::kDot: what = "'.'"; break;
    case Tok::kString: what = "a string"; break;
    case Tok::kChar:
    case Tok::kInteger:
    case Tok::kFloat: what = format_w(t.number); break;
    case Tok::kVar: what = t.text; break;
    default: what = fmt::format("'{}'", t.text); break;
  }
  return fail_at(t, fmt::format("syntax error before: {}", what));
}

// A term, as erl_parse:parse_term/1 takes it: an expression that normalise/1 turns into a
// value. A unary +/- applies to a number or character only (- - 1 and -"a" are bad terms).
Result<Consulter::Parsed> Consulter::expr(std::size_t depth) {
  if (is_punct("-") || is_punct("+")) {
    const Token& op = tok();
    bool minus = op.text == "-";
    ++i_;
    auto inner = expr_max(depth);  // - - 1 is a syntax error, -(-1) a bad term
    if (!inner) return inner;
    if (inner->shape != Shape::kNumber) {
      return error(fail_at(op, fmt::format("bad term: unary '{}' applies only to a number", op.text)));
    }
    Parsed out;
    out.term = minus ? negate(inner->term) : inner->term;
    out.shape = Shape::kOp;
    return out;
  }
  auto e = expr_max(depth);
  if (!e) return e;
  if (tok().kind == Tok::kPunct) {
    static constexpr std::string_view kOps[] = {
        "+",   "-",   "*", "/", "++", "--", "==",  "/=", "=<", "<",  ">=", ">",
        "=:=", "=/=", "!", "=", "::", "..", "...", "?=", "<-", "<=", "||", "->"};
    // '/' and ':' after a value are a binary segment's type and size; the caller decides.
    if (std::find(std::begin(kOps), std::end(kOps), tok().text) != std::end(kOps) && tok().text != "/" &&
        tok().text != "::") {
      return error(fail_at(
          tok(),
          fmt::format("bad term: operator '{}' (file:consult reads values, not expressions)", tok().text)));
    }
    if (is_punct("(") || (is_punct(":") && e->term.as_atom() != nullptr && e->shape == Shape::kOther)) {
      return error(fail_at(tok(), "bad term: a call (file:consult reads values, not expressions)"));
    }
  }
  if (tok().kind == Tok::kKeyword) {
    static constexpr std::string_view kBinOps[] = {"div", "rem", "band", "bor", "bxor",    "bsl",
                                                   "bsr", "and", "or",   "xor", "andalso", "orelse"};
    if (std::find(std::begin(kBinOps), std::end(kBinOps), tok().text) != std::end(kBinOps)) {
      return error(fail_at(tok(), fmt::format("bad term: operator '{}'", tok().text)));
    }
  }
  return e;
}

Result<Consulter::Parsed> Consulter::expr_max(std::size_t depth) {
  const Token& t = tok();
  Parsed out;
  switch (t.kind) {
    case Tok::kAtom:
      ++i_;
      out.term = Term(Atom{t.text});
      return out;
    case Tok::kChar:
    case Tok::kInteger:
    case Tok::kFloat:
      ++i_;
      out.term = t.number;
      out.shape = Shape::kNumber;
      return out;
    case Tok::kString: {
      // Adjacent strings are one string (erl_parse's `strings` rule).
      while (tok().kind == Tok::kString) {
        const auto& cs = tok().chars;
        out.chars.insert(out.chars.end(), cs.begin(), cs.end());
        ++i_;
      }
      TermList elements;
      elements.reserve(out.chars.size());
      for (std::uint32_t ch : out.chars) elements.emplace_back(static_cast<std::int64_t>(ch));
      out.term = Term::list(std::move(elements));
      out.shape = Shape::kString;
      return out;
    }
    case Tok::kVar:
      return error(fail_at(
          t, fmt::format("bad term: variable '{}' (file:consult reads values, not expressions)", t.text)));
    case Tok::kKeyword:
      if (t.text == "fun") {
        auto f = fun_ref();
        if (!f) return error(f.error());
        out.term = std::move(*f);
        return out;
      }
      return error(syntax_error());
    case Tok::kPunct: break;
    default: return error(syntax_error());
  }
  if (Status s = enter(depth); !s) return error(s);
  if (t.text == "(") {
    ++i_;
    auto inner = expr(depth + 1);
    if (!inner) return inner;
    if (Status s = expect(")"); !s) return error(s);
    return inner;
  }
  if (t.text == "{") {
    ++i_;
    TermList elements;
    if (!is_punct("}")) {
      for (;;) {
        auto e = expr(depth + 1);
        if (!e) return e;
        elements.push_back(std::move(e->term));
        if (!is_punct(",")) break;
        ++i_;
      }
    }
    if (Status s = expect("}"); !s) return error(s);
    out.term = Term::tuple(std::move(elements));
    return out;
  }
  if (t.text == "[") {
    auto l = list(depth + 1);
    if (!l) return error(l.error());
    out.term = std::move(*l);
    return out;
  }
  if (t.text == "<<") {
    auto b = binary(depth + 1);
    if (!b) return error(b.error());
    out.term = std::move(*b);
    return out;
  }
  if (t.text == "#") {
    if (i_ + 1 < toks_.size() && toks_[i_ + 1].kind == Tok::kPunct && toks_[i_ + 1].text == "{") {
      auto m = map(depth + 1);
      if (!m) return error(m.error());
      out.term = std::move(*m);
      return out;
    }
    return error(fail_at(t, "bad term: a record (file:consult reads values, not expressions)"));
  }
  return error(syntax_error());
}

Result<Term> Consulter::list(std::size_t depth) {
  ++i_;  // [
  if (is_punct("]")) {
    ++i_;
    return Term();
  }
  TermList elements;
  std::optional<Term> tail;
  for (;;) {
    auto e = expr(depth);
    if (!e) return error(e.error());
    elements.push_back(std::move(e->term));
    if (is_punct(",")) {
      ++i_;
      continue;
    }
    if (is_punct("|")) {
      ++i_;
      auto tl = expr(depth);
      if (!tl) return error(tl.error());
      tail = std::move(tl->term);
    }
    break;
  }
  if (Status s = expect("]"); !s) return error(s);
  List out{std::move(elements), nullptr};
  if (tail && !tail->is_nil()) {
    // [a | [b]] is one list, as decode gives it.
    if (const List* more = tail->as_list()) {
      out.elements.insert(out.elements.end(), more->elements.begin(), more->elements.end());
      out.tail = more->tail;
    } else {
      out.tail = std::make_shared<const Term>(std::move(*tail));
    }
  }
  return Term(std::move(out));
}

Result<Term> Consulter::map(std::size_t depth) {
  i_ += 2;  // # {
  std::vector<std::pair<Term, Term>> pairs;
  if (!is_punct("}")) {
    for (;;) {
      auto k = expr(depth);
      if (!k) return error(k.error());
      if (is_punct(":=")) return error(fail_at(tok(), "bad term: ':=' in a map (only '=>' makes a value)"));
      if (Status s = expect("=>"); !s) return error(s);
      auto v = expr(depth);
      if (!v) return error(v.error());
      pairs.emplace_back(std::move(k->term), std::move(v->term));
      if (!is_punct(",")) break;
      ++i_;
    }
  }
  if (Status s = expect("}"); !s) return error(s);
  // maps:from_list/1: a repeated key keeps its last value. Keys in term order, as a small
  // map keeps them (equality does not depend on it).
  std::vector<std::size_t> order(pairs.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return internal::compare(pairs[a].first, pairs[b].first) < 0;
  });
  Map m;
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (k + 1 < order.size() && internal::compare(pairs[order[k]].first, pairs[order[k + 1]].first) == 0)
      continue;
    m.pairs.push_back(std::move(pairs[order[k]]));
  }
  return Term(std::move(m));
}

// fun M:F/A with literal atoms and arity: an external fun, as EXPORT_EXT.
Result<Term> Consulter::fun_ref() {
  const Token& start = tok();
  auto bad = [&] { return error(fail_at(start, "bad term: only fun M:F/A is a value among funs")); };
  if (i_ + 6 >= toks_.size()) return bad();
  const Token& m = toks_[i_ + 1];
  const Token& f = toks_[i_ + 3];
  const Token& a = toks_[i_ + 5];
  auto punct = [](const Token& t, std::string_view p) { return t.kind == Tok::kPunct && t.text == p; };
  if (m.kind != Tok::kAtom || !punct(toks_[i_ + 2], ":") || f.kind != Tok::kAtom ||
      !punct(toks_[i_ + 4], "/") || a.kind != Tok::kInteger || a.number.as_int() == nullptr) {
    return bad();
  }
  std::int64_t arity = *a.number.as_int();
  if (arity < 0 || arity > 255) return error(fail_at(a, "bad term: a fun's arity is 0..255"));
  i_ += 6;
  std::vector<std::uint8_t> bytes{internal::kExport};
  for (const std::string* name : {&m.text, &f.text}) {
    bytes.push_back(internal::kSmallAtomUtf8);
    bytes.push_back(static_cast<std::uint8_t>(name->size()));
    bytes.insert(bytes.end(), name->begin(), name->end());
  }
  bytes.push_back(internal::kSmallInteger);
  bytes.push_back(static_cast<std::uint8_t>(arity));
  return Term(Opaque{internal::kExport, std::move(bytes)});
}

// Bits appended one field at a time (eval_bits's construction).
class BitWriter {
 public:
  std::size_t bits() const { return bits_; }
  void bit(bool b) {
    if (bits_ % 8 == 0) bytes_.push_back(0);
    if (b) bytes_.back() = static_cast<std::uint8_t>(bytes_.back() | (0x80u >> (bits_ % 8)));
    ++bits_;
  }
  void byte(std::uint8_t v) {
    if (bits_ % 8 == 0) {
      bytes_.push_back(v);
      bits_ += 8;
    } else {
      for (int k = 7; k >= 0; --k) bit(((v >> k) & 1) != 0);
    }
  }
  Term take() {
    std::uint8_t last = bits_ % 8 == 0 ? 8 : static_cast<std::uint8_t>(bits_ % 8);
    return Term(Binary{std::move(bytes_), last});
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t bits_ = 0;
};

// A value's two's complement, little-endian, sign-extended to `n` bytes.
std::vector<std::uint8_t> twos_complement(const Term& v, std::size_t n) {
  std::vector<std::uint8_t> out(n, 0);
  bool negative = false;
  std::vector<std::uint8_t> mag;
  if (const auto* i = v.as_int()) {
    negative = *i < 0;
    std::uint64_t u = negative ? 0 - static_cast<std::uint64_t>(*i) : static_cast<std::uint64_t>(*i);
    for (int k = 0; k < 8; ++k) mag.push_back(static_cast<std::uint8_t>(u >> (8 * k)));
  } else {
    const auto& b = std::get<BigInt>(v.value());
    negative = b.negative;
    mag = b.magnitude;
  }
  for (std::size_t k = 0; k < n && k < mag.size(); ++k) out[k] = mag[k];
  if (negative) {  // -x = ~x + 1
    unsigned carry = 1;
    for (auto& byte : out) {
      unsigned x = static_cast<std::uint8_t>(~byte) + carry;
      byte = static_cast<std::uint8_t>(x & 0xFF);
      carry = x >> 8;
    }
  }
  return out;
}

Result<Term> Consulter::binary(std::size_t depth) {
  ++i_;  // <<
  BitWriter w;
  auto too_big = [&](const Token& at) {
    return error(fail(Code::kLimitExceeded, at.line, at.offset,
                      fmt::format("binary larger than max_binary_bytes {}", limits_.max_binary_bytes)));
  };
  auto room = [&](std::size_t more_bits) {
    return more_bits / 8 <= limits_.max_binary_bytes &&
           w.bits() / 8 + more_bits / 8 + 1 <= limits_.max_binary_bytes;
  };
  if (is_punct(">>")) {
    ++i_;
    return w.take();
  }
  for (;;) {
    const Token& at = tok();
    Parsed value;
    if (is_punct("-") || is_punct("+")) {
      auto v = expr(depth);  // a sign and a number only; expr refuses anything else
      if (!v) return error(v.error());
      value = std::move(*v);
    } else {
      auto v = expr_max(depth);
      if (!v) return error(v.error());
      value = std::move(*v);
    }
    std::optional<std::int64_t> size;
    if (is_punct(":")) {
      ++i_;
      const Token& st = tok();
      auto s = expr_max(depth);
      if (!s) return error(s.error());
      if (s->term.as_int() == nullptr || *s->term.as_int() < 0)
        return error(fail_at(st, "bad term: a bad size"));
      size = *s->term.as_int();
      if (*size > (std::int64_t{1} << 40)) {  // so that size * unit cannot overflow
        return error(fail(Code::kLimitExceeded, st.line, st.offset,
                          fmt::format("binary larger than max_binary_bytes {}", limits_.max_binary_bytes)));
      }
    }
    std::string type = "integer";
    bool little = false;
    std::optional<std::int64_t> unit;
    if (is_punct("/")) {
      ++i_;
      for (;;) {
        const Token& tt = tok();
        if (tt.kind != Tok::kAtom) return error(syntax_error());
        ++i_;
        const std::string& name = tt.text;
        if (name == "unit") {
          if (Status s = expect(":"); !s) return error(s);
          if (tok().kind != Tok::kInteger || tok().number.as_int() == nullptr || *tok().number.as_int() < 1 ||
              *tok().number.as_int() > 256) {
            return error(fail_at(tok(), "bad term: a bad unit"));
          }
          unit = *tok().number.as_int();
          ++i_;
        } else if (name == "integer" || name == "float" || name == "binary" || name == "bitstring" ||
                   name == "utf8" || name == "utf16" || name == "utf32") {
          type = name;
        } else if (name == "bytes") {
          type = "binary";
        } else if (name == "bits") {
          type = "bitstring";
        } else if (name == "big" || name == "signed" || name == "unsigned") {
          if (name == "big") little = false;
        } else if (name == "little") {
          little = true;
        } else if (name == "native") {
          little = std::endian::native == std::endian::little;
        } else {
          return error(fail_at(tt, fmt::format("bad term: undefined bit type '{}'", name)));
        }
        if (!is_punct("-")) break;
        ++i_;
      }
    }
    bool utf = type == "utf8" || type == "utf16" || type == "utf32";
    if (utf && (size || unit)) return error(fail_at(at, "bad term: a size or unit with a utf type"));
    // The values of this segment: a string is one segment per character (eval_bits).
    std::vector<Term> values;
    if (value.shape == Shape::kString) {
      for (std::uint32_t ch : value.chars) values.emplace_back(static_cast<std::int64_t>(ch));
    } else {
      values.push_back(value.term);
    }
    for (const Term& v : values) {
      const auto& val = v.value();
      bool is_int = v.as_int() != nullptr || std::holds_alternative<BigInt>(val);
      if (type == "integer") {
        if (!is_int) return error(fail_at(at, "bad term: a binary segment of type integer needs an integer"));
        std::int64_t nbits64 = size.value_or(8) * unit.value_or(1);
        auto nbits = static_cast<std::size_t>(nbits64);
        if (!room(nbits)) return too_big(at);
        if (nbits == 0) continue;
        if (little && nbits % 8 != 0) {
          return error(fail(Code::kNotSupported, at.line, at.offset,
                            "a little-endian integer segment of a size that is not whole bytes"));
        }
        auto tc = twos_complement(v, (nbits + 7) / 8);
        if (little) {
          for (std::uint8_t byte : tc) w.byte(byte);
        } else {
          for (std::size_t k = nbits; k-- > 0;) w.bit(((tc[k / 8] >> (k % 8)) & 1) != 0);
        }
      } else if (type == "float") {
        if (!is_int && !std::holds_alternative<double>(val)) {
          return error(fail_at(at, "bad term: a binary segment of type float needs a number"));
        }
        std::int64_t nbits = size.value_or(64) * unit.value_or(1);
        if (nbits != 32 && nbits != 64) {
          return error(
              fail(Code::kNotSupported, at.line, at.offset, "a float segment of a size other than 32 or 64"));
        }
        double d = 0;
        if (const auto* d0 = std::get_if<double>(&val)) {
          d = *d0;
        } else if (const auto* i = v.as_int()) {
          d = static_cast<double>(*i);
        } else {
          return error(fail(Code::kNotSupported, at.line, at.offset, "a big integer in a float segment"));
        }
        std::uint64_t u = 0;
        int nbytes = nbits == 64 ? 8 : 4;
        if (nbits == 64) {
          u = std::bit_cast<std::uint64_t>(d);
        } else {
          auto f = static_cast<float>(d);
          if (!std::isfinite(f)) return error(fail_at(at, "bad term: a float that does not fit 32 bits"));
          u = std::bit_cast<std::uint32_t>(f);
        }
        for (int k = 0; k < nbytes; ++k) {
          int shift = little ? 8 * k : 8 * (nbytes - 1 - k);
          w.byte(static_cast<std::uint8_t>(u >> shift));
        }
      } else if (type == "binary" || type == "bitstring") {
        const Binary* b = v.as_binary();
        if (b == nullptr)
          return error(
              fail_at(at, fmt::format("bad term: a binary segment of type {} needs a binary", type)));
        std::size_t have = b->bytes.empty() ? 0 : (b->bytes.size() - 1) * 8 + b->bits;
        std::size_t take = have;
        if (size) take = static_cast<std::size_t>(*size * unit.value_or(type == "binary" ? 8 : 1));
        if (take > have) return error(fail_at(at, "bad term: a binary segment larger than its value"));
        if (type == "binary" && !size && have % 8 != 0) {
          return error(fail_at(at, "bad term: a bitstring in a binary segment"));
        }
        if (!room(take)) return too_big(at);
        for (std::size_t k = 0; k < take; ++k) w.bit(((b->bytes[k / 8] >> (7 - k % 8)) & 1) != 0);
      } else {  // utf8, utf16, utf32
        const auto* i = v.as_int();
        if (i == nullptr || *i < 0 || *i > 0x10FFFF || (*i >= 0xD800 && *i <= 0xDFFF)) {
          return error(fail_at(at, fmt::format("bad term: not a character for a {} segment", type)));
        }
        auto cp = static_cast<std::uint32_t>(*i);
        if (!room(32)) return too_big(at);
        if (type == "utf8") {
          std::string s;
          base::append_utf8(s, cp);
          for (unsigned char ch : s) w.byte(ch);
        } else if (type == "utf32") {
          for (int k = 0; k < 4; ++k) w.byte(static_cast<std::uint8_t>(cp >> (little ? 8 * k : 8 * (3 - k))));
        } else {
          std::vector<std::uint16_t> units;
          if (cp < 0x10000) {
            units.push_back(static_cast<std::uint16_t>(cp));
          } else {
            cp -= 0x10000;
            units.push_back(static_cast<std::uint16_t>(0xD800 + (cp >> 10)));
            units.push_back(static_cast<std::uint16_t>(0xDC00 + (cp & 0x3FF)));
          }
          for (std::uint16_t u : units) {
            w.byte(static_cast<std::uint8_t>(little ? u & 0xFF : u >> 8));
            w.byte(static_cast<std::uint8_t>(little ? u >> 8 : u & 0xFF));
          }
        }
      }
    }
    if (!is_punct(",")) break;
    ++i_;
  }
  if (Status s = expect(">>"); !s) return error(s);
  return w.take();
}

Result<std::vector<Term>> Consulter::run() {
  if (t_.size() > limits_.max_bytes) {
    return error(Status(Code::kLimitExceeded, fmt::format("{}: {} bytes, above max_bytes {}", source_,
                                                          t_.size(), limits_.max_bytes))
                     .with_where(Where{std::string(source_), "", 0}));
  }
  latin1_ = latin1_declared(t_);
  if (!latin1_ && !base::is_utf8(t_)) {
    // Where: the first byte that is not UTF-8 (file_io_server: invalid_unicode).
    std::size_t p = 0;
    std::uint32_t line = 1;
    while (p < t_.size()) {
      std::uint32_t cp = 0;
      std::size_t len = base::utf8_one(t_.data(), t_.size(), p, &cp);
      if (len == 0) break;
      if (cp == '\n') ++line;
      p += len;
    }
    return error(fail(Code::kCorruption, line, p,
                      "invalid UTF-8 (invalid_unicode; a latin-1 file says so in a "
                      "'%% coding: latin-1' comment on its first line)"));
  }
  std::vector<Term> out;
  for (;;) {
    toks_.clear();
    i_ = 0;
    open_ = 0;
    for (;;) {
      Token t;
      if (Status s = next(t); !s) return error(s);
      if (t.kind == Tok::kEof) break;
      bool dot = t.kind == Tok::kDot;
      toks_.push_back(std::move(t));
      if (dot) break;
    }
    if (toks_.empty()) return out;
    if (toks_.back().kind != Tok::kDot) {
      return error(
          fail_at(toks_.back(), "syntax error: the term does not end with '.' before the end of the text"));
    }
    auto term = expr(0);
    if (!term) return error(term.error());
    if (tok().kind != Tok::kDot) return error(syntax_error());
    out.push_back(std::move(term->term));
  }
}

}  // namespace

Result<std::vector<Term>> consult(std::span<const std::uint8_t> text, std::string_view source,
                                  const ConsultLimits& limits) {
  return Consulter(text, source, limits).run();
}

Result<std::vector<Term>> consult(std::string_view text, std::string_view source,
                                  const ConsultLimits& limits) {
  return consult(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), source,
      limits);
}

Result<std::vector<Term>> consult_file(const std::string& path, const ConsultLimits& limits) {
  auto bytes = base::read_file(path, limits.max_bytes);
  if (!bytes) return error(bytes.error().status(path));
  return consult(std::span<const std::uint8_t>(*bytes), path, limits);
}

}  // namespace codestore::etf

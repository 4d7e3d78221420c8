// format_w: io_lib:format("~tw", [Term]) as OTP 25 prints it (io_lib:write/2 with
// encoding unicode, and float_to_list(F, [short]) for floats).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include "base/utf8.h"
#include "etf/term_internal.h"

namespace codestore::etf {

using namespace internal;  // NOLINT: the tags

namespace {

// erl_scan:reserved_word/1 (OTP 25, no features enabled: maybe and else are plain atoms).
bool reserved_word(std::string_view s) {
  static constexpr std::array<std::string_view, 27> kWords = {
      "after", "and",  "andalso", "band",   "begin",   "bnot", "bor", "bsl",  "bsr",
      "bxor",  "case", "catch",   "cond",   "div",     "end",  "fun", "if",   "let",
      "not",   "of",   "or",      "orelse", "receive", "rem",  "try", "when", "xor"};
  return std::find(kWords.begin(), kWords.end(), s) != kWords.end();
}

bool lower_start(std::uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0xFF && c != 0xF7);
}

bool name_char(std::uint32_t c) {
  return lower_start(c) || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) ||
         (c >= '0' && c <= '9') || c == '_' || c == '@';
}

// io_lib:write_string/2 with unicode_as_unicode: the quoted form.
void write_quoted(std::string& out, const std::vector<std::uint32_t>& cps, char q) {
  out.push_back(q);
  for (std::uint32_t c : cps) {
    if (c == static_cast<std::uint32_t>(q)) {
      out.push_back('\\');
      out.push_back(q);
    } else if (c == '\\') {
      out += "\\\\";
    } else if ((c >= ' ' && c <= '~') || c >= 0xA0) {
      base::append_utf8(out, c);
    } else {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case 0x1B: out += "\\e"; break;
        case 0x7F: out += "\\d"; break;
        default:
          out.push_back('\\');
          out.push_back(static_cast<char>('0' + ((c >> 6) & 7)));
          out.push_back(static_cast<char>('0' + ((c >> 3) & 7)));
          out.push_back(static_cast<char>('0' + (c & 7)));
      }
    }
  }
  out.push_back(q);
}

void write_atom(std::string& out, const std::string& name) {
  auto cps = base::code_points(name);
  bool quote = reserved_word(name) || cps.empty() || !lower_start(cps[0]) ||
               !std::all_of(cps.begin() + 1, cps.end(), name_char);
  if (!quote) {
    for (std::uint32_t c : cps) base::append_utf8(out, c);
  } else {
    write_quoted(out, cps, '\'');
  }
}

void write_big(std::string& out, const BigInt& b) {
  // Repeated division of the little-endian magnitude by 10^9.
  std::vector<std::uint32_t> words;  // little-endian base 2^32
  for (std::size_t i = 0; i < b.magnitude.size(); ++i) {
    if (i % 4 == 0) words.push_back(0);
    words.back() |= std::uint32_t{b.magnitude[i]} << (8 * (i % 4));
  }
  while (!words.empty() && words.back() == 0) words.pop_back();
  if (words.empty()) {
    out.push_back('0');
    return;
  }
  std::vector<std::uint32_t> chunks;  // base 10^9, least significant first
  while (!words.empty()) {
    std::uint64_t rem = 0;
    for (std::size_t i = words.size(); i-- > 0;) {
      std::uint64_t cur = (rem << 32) | words[i];
      words[i] = static_cast<std::uint32_t>(cur / 1000000000u);
      rem = cur % 1000000000u;
    }
    chunks.push_back(static_cast<std::uint32_t>(rem));
    while (!words.empty() && words.back() == 0) words.pop_back();
  }
  if (b.negative) out.push_back('-');
  out += std::to_string(chunks.back());
  for (std::size_t i = chunks.size() - 1; i-- > 0;) out += fmt::format("{:09}", chunks[i]);
}

// float_to_list(F, [short]): the shortest digits that read back as F, written in plain
// decimal or in scientific notation, whichever is shorter (plain on a tie), except that
// integral values of 2^53 and above are always scientific.
void write_float(std::string& out, double d) {
  if (d == 0) {
    out += std::signbit(d) ? "-0.0" : "0.0";
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));  // "-1.2345e+02"
  bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  std::size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits.push_back(c);
  }
  int exp = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
  const int len = static_cast<int>(digits.size());
  // value = d1.d2...dn * 10^exp
  std::string plain;
  if (exp >= len - 1) {  // an integer value: digits, zeros, ".0"
    plain = digits + std::string(static_cast<std::size_t>(exp - len + 1), '0') + ".0";
  } else if (exp >= 0) {
    plain = digits.substr(0, static_cast<std::size_t>(exp + 1)) + "." +
            digits.substr(static_cast<std::size_t>(exp + 1));
  } else {
    plain = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
  }
  std::string scientific =
      digits.substr(0, 1) + "." + (len > 1 ? digits.substr(1) : std::string("0")) + "e" + std::to_string(exp);
  // Integral values from 2^53 up are always scientific: not every integer there is a float.
  bool integral_too_big = exp >= len - 1 && std::fabs(d) >= 9007199254740992.0;
  if (negative) out.push_back('-');
  out += plain.size() <= scientific.size() && !integral_too_big ? plain : scientific;
}

void write_term(std::string& out, const Term& t);

struct OpaqueFields {
  std::uint64_t a = 0, b = 0;
  bool ok = false;
};

std::uint64_t read_be(const std::vector<std::uint8_t>& v, std::size_t at, std::size_t n) {
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < n; ++i) x = (x << 8) | v[at + i];
  return x;
}

// Offset just after the node atom that follows `at`, or 0 if it does not decode.
std::size_t skip_term(const std::vector<std::uint8_t>& v, std::size_t at, Term* out = nullptr) {
  if (at >= v.size()) return 0;
  std::size_t n = 0;
  auto t = decode_prefix(std::span<const std::uint8_t>(v).subspan(at), &n);
  if (!t) return 0;
  if (out != nullptr) *out = std::move(*t);
  return at + n;
}

void write_opaque(std::string& out, const Opaque& o) {
  const auto& v = o.bytes;
  switch (o.tag) {
    case kPid:
    case kNewPid: {
      // pid_to_list/1: the node's index in the distribution table is not in the bytes;
      // print it as a local pid.
      std::size_t p = skip_term(v, 1);
      if (p != 0 && v.size() >= p + 8) {
        out += fmt::format("<0.{}.{}>", read_be(v, p, 4), read_be(v, p + 4, 4));
        return;
      }
      break;
    }
    case kPort:
    case kNewPort:
    case kV4Port: {
      std::size_t p = skip_term(v, 1);
      std::size_t w = o.tag == kV4Port ? 8 : 4;
      if (p != 0 && v.size() >= p + w) {
        out += fmt::format("#Port<0.{}>", read_be(v, p, w));
        return;
      }
      break;
    }
    case kReference: {
      std::size_t p = skip_term(v, 1);
      if (p != 0 && v.size() >= p + 4) {
        out += fmt::format("#Ref<0.{}>", read_be(v, p, 4));
        return;
      }
      break;
    }
    case kNewReference:
    case kNewerReference: {
      if (v.size() < 3) break;
      std::size_t words = read_be(v, 1, 2);
      std::size_t p = skip_term(v, 3);
      if (p == 0) break;
      p += o.tag == kNewReference ? 1 : 4;
      if (v.size() < p + 4 * words) break;
      out += "#Ref<0";
      for (std::size_t i = words; i-- > 0;) out += fmt::format(".{}", read_be(v, p + 4 * i, 4));
      out += ">";
      return;
    }
    case kNewFun: {
      Term module, index, uniq;
      std::size_t p = skip_term(v, 30, &module);
      p = p ? skip_term(v, p, &index) : 0;
      p = p ? skip_term(v, p, &uniq) : 0;
      if (p != 0 && module.as_atom() != nullptr) {
        out += "#Fun<";
        write_atom(out, module.as_atom()->name);
        out.push_back('.');
        write_term(out, index);
        out.push_back('.');
        write_term(out, uniq);
        out.push_back('>');
        return;
      }
      break;
    }
    case kExport: {
      Term m, f, a;
      std::size_t p = skip_term(v, 1, &m);
      p = p ? skip_term(v, p, &f) : 0;
      p = p ? skip_term(v, p, &a) : 0;
      if (p != 0 && m.as_atom() && f.as_atom()) {
        out += "fun ";
        write_atom(out, m.as_atom()->name);
        out.push_back(':');
        write_atom(out, f.as_atom()->name);
        out.push_back('/');
        write_term(out, a);
        return;
      }
      break;
    }
    default: break;
  }
  out += fmt::format("#Opaque<{}>", o.tag);
}

// Text still to write, from the back: a term or a fixed piece of punctuation. Children go
// on this stack instead of the native one, so any depth decode accepts can be printed.
struct Pending {
  const Term* term;
  const char* text;
};

// Thread safety: one Writer per format_w call, never shared.
struct Writer {
  std::string& out;
  std::vector<Pending>& todo;

  void push(const Term& t) const { todo.push_back({&t, nullptr}); }
  void push(const char* text) const { todo.push_back({nullptr, text}); }

  void operator()(const Atom& a) const { write_atom(out, a.name); }
  void operator()(std::int64_t v) const { out += std::to_string(v); }
  void operator()(const BigInt& b) const { write_big(out, b); }
  void operator()(double d) const { write_float(out, d); }
  void operator()(const Nil&) const { out += "[]"; }
  void operator()(const List& l) const {
    std::vector<const Term*> elements;
    const List* cur = &l;
    const Term* tail = nullptr;
    for (;;) {  // follow chained List tails (hand-built terms)
      for (const Term& e : cur->elements) elements.push_back(&e);
      tail = cur->tail.get();
      const List* next = tail == nullptr ? nullptr : tail->as_list();
      if (next == nullptr) break;
      cur = next;
    }
    out.push_back('[');
    push("]");
    if (tail != nullptr && !tail->is_nil()) {
      push(*tail);
      push("|");
    }
    for (std::size_t i = elements.size(); i-- > 0;) {
      push(*elements[i]);
      if (i != 0) push(",");
    }
  }
  void operator()(const Tuple& t) const {
    out.push_back('{');
    push("}");
    for (std::size_t i = t.elements.size(); i-- > 0;) {
      push(t.elements[i]);
      if (i != 0) push(",");
    }
  }
  void operator()(const Map& m) const {
    // maps:to_list order: a flatmap (up to 32 keys) is sorted by key; a larger hashmap is
    // in hash order, which term_to_binary writes in exactly the reverse order.
    std::vector<const std::pair<Term, Term>*> pairs;
    pairs.reserve(m.pairs.size());
    for (const auto& p : m.pairs) pairs.push_back(&p);
    if (pairs.size() <= 32) {
      std::stable_sort(pairs.begin(), pairs.end(),
                       [](auto* x, auto* y) { return compare(x->first, y->first) < 0; });
    } else {
      std::reverse(pairs.begin(), pairs.end());
    }
    out += "#{";
    push("}");
    for (std::size_t i = pairs.size(); i-- > 0;) {
      push(pairs[i]->second);
      push(" => ");
      push(pairs[i]->first);
      if (i != 0) push(",");
    }
  }
  void operator()(const Binary& b) const {
    out += "<<";
    std::size_t n = b.bytes.size();
    bool partial = n > 0 && b.bits >= 1 && b.bits < 8;
    std::size_t whole = partial ? n - 1 : n;
    for (std::size_t i = 0; i < whole; ++i) {
      if (i) out.push_back(',');
      out += std::to_string(b.bytes[i]);
    }
    if (partial) {
      if (whole) out.push_back(',');
      out += fmt::format("{}:{}", b.bytes[n - 1] >> (8 - b.bits), b.bits);
    }
    out += ">>";
  }
  void operator()(const Opaque& o) const { write_opaque(out, o); }
};

void write_term(std::string& out, const Term& t) {
  std::vector<Pending> todo{{&t, nullptr}};
  Writer writer{out, todo};
  while (!todo.empty()) {
    Pending p = todo.back();
    todo.pop_back();
    if (p.term == nullptr) {
      out += p.text;
    } else {
      std::visit(writer, p.term->value());
    }
  }
}

}  // namespace

std::string format_w(const Term& term) {
  std::string out;
  write_term(out, term);
  return out;
}

std::string internal::atom_text(std::string_view name) {
  std::string out;
  write_atom(out, std::string(name));
  return out;
}

std::string internal::string_text(std::string_view utf8) {
  std::string out;
  write_quoted(out, base::code_points(utf8), '"');
  return out;
}

std::optional<std::string> internal::string_of(const Term& t) {
  if (t.is_nil()) return std::string();
  const List* l = t.as_list();
  if (l == nullptr || l->tail != nullptr) return std::nullopt;
  std::string out;
  for (const Term& e : l->elements) {
    const std::int64_t* c = e.as_int();
    if (c == nullptr || *c < 0 || *c > 0x10FFFF || (*c >= 0xD800 && *c <= 0xDFFF)) return std::nullopt;
    base::append_utf8(out, static_cast<std::uint32_t>(*c));
  }
  return out;
}

}  // namespace codestore::etf

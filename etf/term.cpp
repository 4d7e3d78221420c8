// External term format: the Term value type, binary_to_term and term_to_binary.
//
// Every walk over a term (decode, encode, compare, copy) uses an explicit stack, so a depth
// bomb costs heap, never native stack; the decoder checks every length against the bytes
// left before allocating anything for it.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <zlib.h>

#include "etf/term_internal.h"

// GCC 12 reports moves of std::variant alternatives as "maybe uninitialized" when it
// inlines Decoder::run (a known false positive with variant's move constructor).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace codestore::etf {

using namespace internal;  // NOLINT: the tags

// ---------------------------------------------------------------------------------------
// Term

Term Term::list(TermList elements) {
  if (elements.empty()) return Term(Nil{});
  return Term(List{std::move(elements), nullptr});
}

Term Term::binary(std::span<const std::uint8_t> bytes) {
  return Term(Binary{std::vector<std::uint8_t>(bytes.begin(), bytes.end()), 8});
}

Term Term::string(std::string_view bytes) {
  TermList elements;
  elements.reserve(bytes.size());
  for (unsigned char c : bytes) elements.emplace_back(static_cast<std::int64_t>(c));
  return list(std::move(elements));
}

Term::Term(const Term& other) : value_(Nil{}) {
  // Containers are created with their final sizes first, so the element addresses pushed
  // on the work stack stay valid while it is drained.
  std::vector<std::pair<Term*, const Term*>> work{{this, &other}};
  while (!work.empty()) {
    auto [dst, src] = work.back();
    work.pop_back();
    if (const auto* t = std::get_if<Tuple>(&src->value_)) {
      dst->value_ = Tuple{TermList(t->elements.size())};
      auto& out = std::get<Tuple>(dst->value_).elements;
      for (std::size_t i = 0; i < out.size(); ++i) work.emplace_back(&out[i], &t->elements[i]);
    } else if (const auto* l = std::get_if<List>(&src->value_)) {
      dst->value_ = List{TermList(l->elements.size()), l->tail};  // the tail is shared
      auto& out = std::get<List>(dst->value_).elements;
      for (std::size_t i = 0; i < out.size(); ++i) work.emplace_back(&out[i], &l->elements[i]);
    } else if (const auto* m = std::get_if<Map>(&src->value_)) {
      dst->value_ = Map{std::vector<std::pair<Term, Term>>(m->pairs.size())};
      auto& out = std::get<Map>(dst->value_).pairs;
      for (std::size_t i = 0; i < out.size(); ++i) {
        work.emplace_back(&out[i].first, &m->pairs[i].first);
        work.emplace_back(&out[i].second, &m->pairs[i].second);
      }
    } else {
      dst->value_ = src->value_;
    }
  }
}

namespace {

// The destructor's work list while a deep Term is being taken apart on this thread: a
// nested Term destructor (a uniquely owned list tail, an element) hands its children over
// to it instead of recursing, so freeing recurses at most kRecursionLimit + 1 levels.
thread_local std::vector<Term>* tl_dismantling = nullptr;
thread_local int tl_recursion = 0;
constexpr int kRecursionLimit = 64;

bool has_children(const Term::Value& v) {
  if (const auto* t = std::get_if<Tuple>(&v)) return !t->elements.empty();
  if (const auto* l = std::get_if<List>(&v)) return !l->elements.empty() || l->tail != nullptr;
  if (const auto* m = std::get_if<Map>(&v)) return !m->pairs.empty();
  return false;
}

}  // namespace

void Term::detach_children(std::vector<Term>& work) {
  auto take = [&](TermList& elements) {
    for (Term& e : elements) {
      if (has_children(e.value_)) work.push_back(std::move(e));
    }
    elements.clear();
  };
  if (auto* t = std::get_if<Tuple>(&value_)) {
    take(t->elements);
  } else if (auto* l = std::get_if<List>(&value_)) {
    take(l->elements);
    l->tail.reset();  // the last owner's ~Term runs here and hands its children to `work`
  } else if (auto* m = std::get_if<Map>(&value_)) {
    for (auto& [k, v] : m->pairs) {
      if (has_children(k.value_)) work.push_back(std::move(k));
      if (has_children(v.value_)) work.push_back(std::move(v));
    }
    m->pairs.clear();
  }
}

Term::~Term() {
  if (!has_children(value_)) return;
  if (tl_dismantling != nullptr) {  // an outer destructor on this thread finishes the job
    detach_children(*tl_dismantling);
    return;
  }
  // Shallow terms (nearly all) are freed by plain recursion, which is faster; past
  // kRecursionLimit levels the rest of the subtree is taken apart with a work list.
  if (tl_recursion < kRecursionLimit) {
    ++tl_recursion;
    value_.emplace<Nil>();  // destroys the children here, one level deeper
    --tl_recursion;
    return;
  }
  std::vector<Term> work;
  tl_dismantling = &work;
  detach_children(work);
  while (!work.empty()) {
    Term t = std::move(work.back());
    work.pop_back();
    t.detach_children(work);
  }
  tl_dismantling = nullptr;
}

Term& Term::operator=(const Term& other) {
  if (this != &other) *this = Term(other);
  return *this;
}

bool Term::is_atom(std::string_view name) const {
  const Atom* a = as_atom();
  return a != nullptr && a->name == name;
}

Result<TermList> Term::list_elements() const {
  if (is_nil()) return TermList{};
  const List* l = as_list();
  if (l == nullptr) return error(Code::kInvalidArgument, "term: not a list");
  if (l->tail == nullptr) return l->elements;
  // A hand-built list may chain Lists in its tail; follow them.
  TermList out = l->elements;
  const Term* t = l->tail.get();
  while (t != nullptr) {
    if (t->is_nil()) return out;
    const List* next = t->as_list();
    if (next == nullptr) return error(Code::kInvalidArgument, "term: not a proper list");
    out.insert(out.end(), next->elements.begin(), next->elements.end());
    t = next->tail.get();
  }
  return out;
}

bool operator==(const Term& a, const Term& b) { return internal::compare(a, b) == 0; }

// ---------------------------------------------------------------------------------------
// UTF-8 helpers

namespace internal {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::size_t utf8_one(const unsigned char* s, std::size_t n, std::size_t i, std::uint32_t* cp) {
  unsigned c = s[i];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  std::size_t len;
  std::uint32_t v, min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i + k] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

std::vector<std::uint32_t> code_points(const std::string& utf8) {
  std::vector<std::uint32_t> out;
  out.reserve(utf8.size());
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  for (std::size_t i = 0; i < utf8.size();) {
    std::uint32_t cp;
    std::size_t len = utf8_one(s, utf8.size(), i, &cp);
    if (len == 0) {
      out.push_back(s[i]);
      ++i;
    } else {
      out.push_back(cp);
      i += len;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Term order

namespace {

int rank(const Term& t) {
  struct V {
    int operator()(const Atom&) const { return 1; }
    int operator()(std::int64_t) const { return 0; }
    int operator()(const BigInt&) const { return 0; }
    int operator()(double) const { return 0; }
    int operator()(const Nil&) const { return 8; }
    int operator()(const List&) const { return 9; }
    int operator()(const Tuple&) const { return 6; }
    int operator()(const Map&) const { return 7; }
    int operator()(const Binary&) const { return 10; }
    int operator()(const Opaque& o) const {
      switch (o.tag) {
        case kReference: case kNewReference: case kNewerReference: return 2;
        case kNewFun: case kExport: return 3;
        case kPort: case kNewPort: case kV4Port: return 4;
        default: return 5;  // pids
      }
    }
  };
  return std::visit(V{}, t.value());
}

int sign_of(auto a, auto b) { return a < b ? -1 : (a > b ? 1 : 0); }

// Normalized bigs lie outside int64, so only sign matters against a small integer.
int compare_big(const BigInt& a, const BigInt& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int mag;
  if (a.magnitude.size() != b.magnitude.size()) {
    mag = sign_of(a.magnitude.size(), b.magnitude.size());
  } else {
    mag = 0;
    for (std::size_t i = a.magnitude.size(); i-- > 0;) {
      if (a.magnitude[i] != b.magnitude[i]) {
        mag = sign_of(a.magnitude[i], b.magnitude[i]);
        break;
      }
    }
  }
  return a.negative ? -mag : mag;
}

std::uint64_t bit_size(const Binary& b) {
  if (b.bytes.empty()) return 0;
  return (b.bytes.size() - 1) * 8 + (b.bits == 0 || b.bits > 8 ? 8 : b.bits);
}

int compare_binary(const Binary& a, const Binary& b) {
  std::uint64_t na = bit_size(a), nb = bit_size(b), common = std::min(na, nb);
  std::size_t full = static_cast<std::size_t>(common / 8);
  if (full > 0) {
    int c = std::memcmp(a.bytes.data(), b.bytes.data(), full);
    if (c != 0) return c < 0 ? -1 : 1;
  }
  unsigned rest = static_cast<unsigned>(common % 8);
  if (rest != 0) {
    unsigned mask = (0xFFu << (8 - rest)) & 0xFFu;
    unsigned x = a.bytes[full] & mask, y = b.bytes[full] & mask;
    if (x != y) return x < y ? -1 : 1;
  }
  return sign_of(na, nb);
}

// A list's elements, following chained List tails, and its final tail (nullptr = []).
const Term* flatten(const List& l, std::vector<const Term*>& out) {
  const List* cur = &l;
  for (;;) {
    for (const Term& e : cur->elements) out.push_back(&e);
    const Term* tail = cur->tail.get();
    const List* next = tail == nullptr ? nullptr : tail->as_list();
    if (next == nullptr) return tail == nullptr || tail->is_nil() ? nullptr : tail;
    cur = next;
  }
}

const Term& nil_term() {
  static const Term nil;
  return nil;
}

std::vector<const std::pair<Term, Term>*> sorted_pairs(const Map& m) {
  std::vector<const std::pair<Term, Term>*> v;
  v.reserve(m.pairs.size());
  for (const auto& p : m.pairs) v.push_back(&p);
  std::stable_sort(v.begin(), v.end(), [](auto* x, auto* y) { return compare(x->first, y->first) < 0; });
  return v;
}

// An integer (int64 or BigInt) against a float by value, exactly: 0 only when equal.
int compare_int_float(const Term::Value& i, double d) {
  if (const auto* big = std::get_if<BigInt>(&i)) {
    // |big| >= 2^63: only a float at least as large can tie or win.
    if (std::fabs(d) < 9223372036854775808.0) return big->negative ? -1 : 1;
    double approx = 0;
    for (std::size_t k = big->magnitude.size(); k-- > 0;) approx = approx * 256 + big->magnitude[k];
    if (big->negative) approx = -approx;
    return sign_of(approx, d);
  }
  std::int64_t v = std::get<std::int64_t>(i);
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double fl = std::floor(d);
  auto fi = static_cast<std::int64_t>(fl);
  if (v != fi) return sign_of(v, fi);
  return d > fl ? -1 : 0;
}

// Funs: local funs by module, index and uniq; exports by module, name and arity.
int compare_fun(const Opaque& x, const Opaque& y) {
  auto fields = [](const Opaque& o, std::size_t at, std::size_t n) {
    TermList out;
    std::span<const std::uint8_t> v(o.bytes);
    for (std::size_t i = 0; i < n && at < v.size(); ++i) {
      std::size_t used = 0;
      auto t = decode_prefix(v.subspan(at), &used);
      if (!t) break;
      out.push_back(std::move(*t));
      at += used;
    }
    return out;
  };
  std::size_t at = x.tag == kExport ? 1 : 30;
  TermList fx = fields(x, at, 3), fy = fields(y, at, 3);
  for (std::size_t i = 0; i < std::min(fx.size(), fy.size()); ++i) {
    if (int c = compare(fx[i], fy[i]); c != 0) return c;
  }
  return 0;
}

// Compares terms that are not containers (same rank). `exact`: integers before floats (map
// key order, =:=); otherwise numbers compare by value (<, lists:sort).
int compare_leaf(int r, const Term::Value& va, const Term::Value& vb, bool exact) {
  switch (r) {
    case 0: {
      bool fa = std::holds_alternative<double>(va), fb = std::holds_alternative<double>(vb);
      if (fa && fb) return sign_of(std::get<double>(va), std::get<double>(vb));
      if (fa != fb) {
        if (exact) return fa ? 1 : -1;
        return fa ? -compare_int_float(vb, std::get<double>(va)) : compare_int_float(va, std::get<double>(vb));
      }
      const auto* ia = std::get_if<std::int64_t>(&va);
      const auto* ib = std::get_if<std::int64_t>(&vb);
      if (ia && ib) return sign_of(*ia, *ib);
      if (ia) return std::get<BigInt>(vb).negative ? 1 : -1;
      if (ib) return std::get<BigInt>(va).negative ? -1 : 1;
      return compare_big(std::get<BigInt>(va), std::get<BigInt>(vb));
    }
    case 1:
      return sign_of(std::get<Atom>(va).name.compare(std::get<Atom>(vb).name), 0);
    case 8:
      return 0;
    case 10:
      return compare_binary(std::get<Binary>(va), std::get<Binary>(vb));
    default: {  // opaque, same kind: local funs before exports, then by their fields
      const auto& x = std::get<Opaque>(va);
      const auto& y = std::get<Opaque>(vb);
      if (x.tag != y.tag) return sign_of(x.tag, y.tag);
      if (x.bytes == y.bytes) return 0;
      if (x.tag == kExport || x.tag == kNewFun) {
        if (int c = compare_fun(x, y); c != 0) return c;
      }
      // The same pid written with ATOM_EXT and with SMALL_ATOM_UTF8_EXT is one pid.
      auto cx = canonical_opaque(x), cy = canonical_opaque(y);
      if (cx != cy) return cx < cy ? -1 : 1;
      return 0;
    }
  }
}

int compare_impl(const Term& a, const Term& b, bool exact) {
  // Most comparisons (map keys are mostly atoms) never reach a container: no allocation.
  {
    int ra = rank(a), rb = rank(b);
    if (ra != rb) return sign_of(ra, rb);
    if (ra != 6 && ra != 7 && ra != 9) return compare_leaf(ra, a.value(), b.value(), exact);
  }
  // Pairs still to compare, in order from the back; a pair with a == nullptr is a decided
  // result that applies if everything before it was equal. Map keys always compare exactly.
  struct Item {
    const Term* a;
    const Term* b;
    int result;
    bool exact;
  };
  std::vector<Item> work{{&a, &b, 0, exact}};
  std::vector<const Term*> xs, ys;
  while (!work.empty()) {
    Item it = work.back();
    work.pop_back();
    if (it.a == nullptr) {
      if (it.result != 0) return it.result;
      continue;
    }
    int ra = rank(*it.a), rb = rank(*it.b);
    if (ra != rb) return sign_of(ra, rb);
    const auto& va = it.a->value();
    const auto& vb = it.b->value();
    switch (ra) {
      case 6: {
        const auto& x = std::get<Tuple>(va).elements;
        const auto& y = std::get<Tuple>(vb).elements;
        if (x.size() != y.size()) return sign_of(x.size(), y.size());
        for (std::size_t i = x.size(); i-- > 0;) work.push_back({&x[i], &y[i], 0, it.exact});
        break;
      }
      case 7: {  // size, then the keys in order, then the values in that order
        const auto& x = std::get<Map>(va);
        const auto& y = std::get<Map>(vb);
        if (x.pairs.size() != y.pairs.size()) return sign_of(x.pairs.size(), y.pairs.size());
        auto sx = sorted_pairs(x), sy = sorted_pairs(y);
        for (std::size_t i = sx.size(); i-- > 0;) work.push_back({&sx[i]->second, &sy[i]->second, 0, it.exact});
        for (std::size_t i = sx.size(); i-- > 0;) work.push_back({&sx[i]->first, &sy[i]->first, 0, true});
        break;
      }
      case 9: {
        xs.clear();
        ys.clear();
        const Term* ta = flatten(std::get<List>(va), xs);
        const Term* tb = flatten(std::get<List>(vb), ys);
        std::size_t n = std::min(xs.size(), ys.size());
        // After the common elements: both exhausted compares the tails; otherwise the
        // exhausted side's tail ([] or a non-list) meets the rest of a list (rank 9).
        if (xs.size() == ys.size()) {
          work.push_back({ta ? ta : &nil_term(), tb ? tb : &nil_term(), 0, it.exact});
        } else if (xs.size() < ys.size()) {
          work.push_back({nullptr, nullptr, sign_of(rank(ta ? *ta : nil_term()), 9), it.exact});
        } else {
          work.push_back({nullptr, nullptr, sign_of(9, rank(tb ? *tb : nil_term())), it.exact});
        }
        for (std::size_t i = n; i-- > 0;) work.push_back({xs[i], ys[i], 0, it.exact});
        break;
      }
      default:
        if (int c = compare_leaf(ra, va, vb, it.exact); c != 0) return c;
        break;
    }
  }
  return 0;
}

}  // namespace

int compare(const Term& a, const Term& b) { return compare_impl(a, b, /*exact=*/true); }

int compare_order(const Term& a, const Term& b) { return compare_impl(a, b, /*exact=*/false); }

}  // namespace internal

// ---------------------------------------------------------------------------------------
// Decoding

namespace {

// One binary_to_term over one buffer.
// Thread safety: one Decoder per call, never shared.
class Decoder {
 public:
  Decoder(std::span<const std::uint8_t> bytes, const DecodeLimits& limits, std::size_t base,
          std::string_view where)
      : bytes_(bytes), limits_(limits), base_(base), where_(where) {}

  Result<Term> run(std::size_t* consumed);

 private:
  // An open container: its children are decoded into `items` until there are `want`.
  struct Frame {
    enum Kind : std::uint8_t { kTupleFrame, kListFrame, kMapFrame, kOpaqueFrame } kind;
    std::uint8_t tag;
    std::size_t start;    // offset of the tag
    std::size_t want;     // number of child terms
    std::size_t after;    // opaque: fixed-size fields after the children
    std::size_t end = 0;  // NEW_FUN: where its declared size says it ends
    TermList items;
  };

  tl::unexpected<Status> fail(std::size_t at, std::string_view what) const {
    return error(Code::kCorruption, fmt::format("term: at offset {}{}: {}", base_ + at, where_, what));
  }
  tl::unexpected<Status> truncated(std::size_t at, std::uint8_t tag, std::size_t need) const {
    return fail(at, fmt::format("tag {} needs {} bytes, {} left", tag, need, left()));
  }
  std::size_t left() const { return bytes_.size() - pos_; }
  std::uint8_t u8() { return bytes_[pos_++]; }
  std::uint16_t u16() {
    auto v = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t v = (std::uint32_t{bytes_[pos_]} << 24) | (std::uint32_t{bytes_[pos_ + 1]} << 16) |
                      (std::uint32_t{bytes_[pos_ + 2]} << 8) | std::uint32_t{bytes_[pos_ + 3]};
    pos_ += 4;
    return v;
  }

  Result<Term> atom(std::size_t at, std::uint8_t tag, std::size_t len, bool utf8);
  Result<Term> big(std::size_t at, std::size_t n);
  Result<Term> finish(Frame& f);

  std::span<const std::uint8_t> bytes_;
  const DecodeLimits& limits_;
  std::size_t base_;
  std::string_view where_;
  std::size_t pos_ = 0;
  std::size_t terms_ = 0;
};

Result<Term> Decoder::atom(std::size_t at, std::uint8_t tag, std::size_t len, bool utf8) {
  if (left() < len) return truncated(at, tag, len);
  const auto* s = bytes_.data() + pos_;
  std::string name;
  std::size_t chars = 0;
  if (utf8) {
    for (std::size_t i = 0; i < len; ++chars) {
      std::uint32_t cp;
      std::size_t n = utf8_one(s, len, i, &cp);
      if (n == 0) return fail(at, fmt::format("atom (tag {}) is not valid UTF-8", tag));
      i += n;
    }
    name.assign(reinterpret_cast<const char*>(s), len);
  } else {
    name.reserve(len + len / 2);
    for (std::size_t i = 0; i < len; ++i) append_utf8(name, s[i]);
    chars = len;
  }
  // erts refuses atoms longer than 255 characters.
  if (chars > 255) return fail(at, fmt::format("atom of {} characters (at most 255)", chars));
  pos_ += len;
  return Term(Atom{std::move(name)});
}

Result<Term> Decoder::big(std::size_t at, std::size_t n) {
  if (left() < 1 + n) return truncated(at, bytes_[at], 1 + n);
  // As erts: any non-zero sign byte means negative.
  const std::uint8_t sign = u8() != 0 ? 1 : 0;
  const std::uint8_t* m = bytes_.data() + pos_;
  pos_ += n;
  std::size_t len = n;
  while (len > 0 && m[len - 1] == 0) --len;  // normalize: no leading zero digits
  if (len <= 8) {
    std::uint64_t v = 0;
    for (std::size_t i = len; i-- > 0;) v = (v << 8) | m[i];
    if (sign == 0 && v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return Term(static_cast<std::int64_t>(v));
    }
    if (sign == 1 && v <= (std::uint64_t{1} << 63)) {
      if (v == 0) return Term(std::int64_t{0});
      return Term(static_cast<std::int64_t>(~(v - 1)));  // -v without overflow
    }
  }
  return Term(BigInt{sign == 1, std::vector<std::uint8_t>(m, m + len)});
}

Result<Term> Decoder::finish(Frame& f) {
  switch (f.kind) {
    case Frame::kTupleFrame:
      return Term(Tuple{std::move(f.items)});
    case Frame::kListFrame: {
      Term tail = std::move(f.items.back());
      f.items.pop_back();
      if (f.items.empty()) return tail;  // LIST_EXT with no elements is its tail
      if (tail.is_nil()) return Term(List{std::move(f.items), nullptr});
      if (const List* more = tail.as_list()) {  // [a|[b|c]]: keep lists canonical
        f.items.insert(f.items.end(), more->elements.begin(), more->elements.end());
        return Term(List{std::move(f.items), more->tail});
      }
      return Term(List{std::move(f.items), std::make_shared<const Term>(std::move(tail))});
    }
    case Frame::kMapFrame: {
      Map m;
      m.pairs.reserve(f.items.size() / 2);
      for (std::size_t i = 0; i + 1 < f.items.size(); i += 2) {
        m.pairs.emplace_back(std::move(f.items[i]), std::move(f.items[i + 1]));
      }
      // binary_to_term refuses a map with a repeated key.
      std::vector<const Term*> keys;
      keys.reserve(m.pairs.size());
      for (const auto& p : m.pairs) keys.push_back(&p.first);
      std::sort(keys.begin(), keys.end(), [](const Term* x, const Term* y) { return compare(*x, *y) < 0; });
      for (std::size_t i = 1; i < keys.size(); ++i) {
        if (compare(*keys[i - 1], *keys[i]) == 0) return fail(f.start, "map with a repeated key");
      }
      return Term(std::move(m));
    }
    case Frame::kOpaqueFrame: {
      auto must_be_atom = [&](std::size_t i) { return f.items.size() > i && f.items[i].as_atom() != nullptr; };
      switch (f.tag) {
        case kNewFun:
          // Module, OldIndex, OldUniq, Pid, free variables.
          if (!must_be_atom(0) || f.items[1].as_int() == nullptr || f.items[2].as_int() == nullptr) {
            return fail(f.start, "NEW_FUN with a bad module, index or uniq");
          }
          if (pos_ != f.end) return fail(f.start, fmt::format("NEW_FUN size says it ends at {}, it ends at {}",
                                                              base_ + f.end, base_ + pos_));
          break;
        case kExport:
          if (!must_be_atom(0) || !must_be_atom(1) || f.items[2].as_int() == nullptr || *f.items[2].as_int() < 0) {
            return fail(f.start, "EXPORT is not {atom, atom, arity}");
          }
          break;
        default:
          if (!must_be_atom(0)) return fail(f.start, fmt::format("tag {}: node is not an atom", f.tag));
          if (left() < f.after) return truncated(f.start, f.tag, f.after);
          pos_ += f.after;
          break;
      }
      return Term(Opaque{f.tag, std::vector<std::uint8_t>(bytes_.begin() + static_cast<std::ptrdiff_t>(f.start),
                                                          bytes_.begin() + static_cast<std::ptrdiff_t>(pos_))});
    }
  }
  return fail(f.start, "internal: bad frame");
}

Result<Term> Decoder::run(std::size_t* consumed) {
  std::vector<Frame> stack;
  auto open = [&](Frame::Kind kind, std::uint8_t tag, std::size_t at, std::size_t want,
                  std::size_t after) -> Status {
    if (stack.size() >= limits_.max_depth) {
      return Status(Code::kLimitExceeded, fmt::format("term: at offset {}{}: nesting deeper than max_depth {}",
                                                      base_ + at, where_, limits_.max_depth));
    }
    Frame f{kind, tag, at, want, after, 0, {}};
    f.items.reserve(std::min<std::size_t>(want, 1024));
    stack.push_back(std::move(f));
    return Status();
  };

  for (;;) {
    const std::size_t at = pos_;
    if (left() < 1) return fail(at, "truncated: a term is missing");
    if (++terms_ > limits_.max_terms) {
      return error(Code::kLimitExceeded, fmt::format("term: at offset {}{}: more than max_terms {} terms",
                                                     base_ + at, where_, limits_.max_terms));
    }
    const std::uint8_t tag = u8();
    Term value;
    bool opened = false;
    switch (tag) {
      case kSmallInteger:
        if (left() < 1) return truncated(at, tag, 1);
        value = Term(std::int64_t{u8()});
        break;
      case kInteger:
        if (left() < 4) return truncated(at, tag, 4);
        value = Term(std::int64_t{static_cast<std::int32_t>(u32())});
        break;
      case kNewFloat: {
        if (left() < 8) return truncated(at, tag, 8);
        std::uint64_t bits = std::uint64_t{u32()} << 32;
        bits |= u32();
        double d = std::bit_cast<double>(bits);
        if (!std::isfinite(d)) return fail(at, "NEW_FLOAT is not a finite number");
        value = Term(d);
        break;
      }
      case kFloat: {  // 31 bytes of "%.20e" text, NUL padded
        if (left() < 31) return truncated(at, tag, 31);
        char text[32];
        std::memcpy(text, bytes_.data() + pos_, 31);
        text[31] = '\0';
        pos_ += 31;
        char* end = nullptr;
        double d = std::strtod(text, &end);
        if (end == text || !std::isfinite(d)) return fail(at, "FLOAT_EXT text is not a finite number");
        value = Term(d);
        break;
      }
      case kAtom: case kAtomUtf8: {
        if (left() < 2) return truncated(at, tag, 2);
        auto r = atom(at, tag, u16(), tag == kAtomUtf8);
        if (!r) return r;
        value = std::move(*r);
        break;
      }
      case kSmallAtom: case kSmallAtomUtf8: {
        if (left() < 1) return truncated(at, tag, 1);
        auto r = atom(at, tag, u8(), tag == kSmallAtomUtf8);
        if (!r) return r;
        value = std::move(*r);
        break;
      }
      case kNil:
        value = Term(Nil{});
        break;
      case kString: {
        if (left() < 2) return truncated(at, tag, 2);
        std::size_t len = u16();
        if (left() < len) return truncated(at, tag, len);
        if (terms_ + len > limits_.max_terms) {
          return error(Code::kLimitExceeded, fmt::format("term: at offset {}{}: more than max_terms {} terms",
                                                         base_ + at, where_, limits_.max_terms));
        }
        terms_ += len;
        TermList elements;
        elements.reserve(len);
        for (std::size_t i = 0; i < len; ++i) elements.emplace_back(std::int64_t{u8()});
        value = Term::list(std::move(elements));
        break;
      }
      case kBinary: {
        if (left() < 4) return truncated(at, tag, 4);
        std::size_t len = u32();
        if (left() < len) return truncated(at, tag, len);
        value = Term(Binary{std::vector<std::uint8_t>(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
                                                      bytes_.begin() + static_cast<std::ptrdiff_t>(pos_ + len)),
                            8});
        pos_ += len;
        break;
      }
      case kBitBinary: {
        if (left() < 5) return truncated(at, tag, 5);
        std::size_t len = u32();
        std::uint8_t bits = u8();
        // As erts: 1..8 bits in the last byte, and 0 bits exactly when there are no bytes.
        if (bits > 8 || (bits == 0) != (len == 0)) {
          return fail(at, fmt::format("BIT_BINARY with {} bytes and {} bits in the last", len, bits));
        }
        if (left() < len) return truncated(at, tag, len);
        value = Term(Binary{std::vector<std::uint8_t>(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
                                                      bytes_.begin() + static_cast<std::ptrdiff_t>(pos_ + len)),
                            static_cast<std::uint8_t>(len == 0 ? 8 : bits)});
        pos_ += len;
        break;
      }
      case kSmallBig: {
        if (left() < 1) return truncated(at, tag, 1);
        auto r = big(at, u8());
        if (!r) return r;
        value = std::move(*r);
        break;
      }
      case kLargeBig: {
        if (left() < 4) return truncated(at, tag, 4);
        auto r = big(at, u32());
        if (!r) return r;
        value = std::move(*r);
        break;
      }
      case kSmallTuple: case kLargeTuple: {
        std::size_t width = tag == kSmallTuple ? 1 : 4;
        if (left() < width) return truncated(at, tag, width);
        std::size_t n = tag == kSmallTuple ? u8() : u32();
        if (n > left()) return fail(at, fmt::format("tuple of {} elements in {} bytes", n, left()));
        if (n == 0) {
          value = Term(Tuple{});
          break;
        }
        if (Status s = open(Frame::kTupleFrame, tag, at, n, 0); !s) return error(s);
        opened = true;
        break;
      }
      case kList: {
        if (left() < 4) return truncated(at, tag, 4);
        std::size_t n = u32();
        if (n >= left()) return fail(at, fmt::format("list of {} elements in {} bytes", n, left()));
        if (Status s = open(Frame::kListFrame, tag, at, n + 1, 0); !s) return error(s);
        opened = true;
        break;
      }
      case kMap: {
        if (left() < 4) return truncated(at, tag, 4);
        std::size_t n = u32();
        if (n > left() / 2) return fail(at, fmt::format("map of {} pairs in {} bytes", n, left()));
        if (n == 0) {
          value = Term(Map{});
          break;
        }
        if (Status s = open(Frame::kMapFrame, tag, at, 2 * n, 0); !s) return error(s);
        opened = true;
        break;
      }
      case kPid: case kNewPid: case kPort: case kNewPort: case kV4Port: case kReference: {
        std::size_t after = tag == kPid ? 9 : tag == kNewPid ? 12 : tag == kPort ? 5
                          : tag == kNewPort ? 8 : tag == kV4Port ? 12 : 5;
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 1, after); !s) return error(s);
        opened = true;
        break;
      }
      case kNewReference: case kNewerReference: {
        if (left() < 2) return truncated(at, tag, 2);
        std::size_t words = u16();
        std::size_t after = (tag == kNewReference ? 1 : 4) + 4 * words;
        if (words > 5) return fail(at, fmt::format("reference of {} words (at most 5)", words));
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 1, after); !s) return error(s);
        opened = true;
        break;
      }
      case kNewFun: {
        if (left() < 29) return truncated(at, tag, 29);
        std::size_t size = u32();
        pos_ += 1 + 16 + 4;  // arity, uniq, index
        std::size_t free = u32();
        if (size < 29 || size > bytes_.size() - at - 1) {
          return fail(at, fmt::format("NEW_FUN size {} with {} bytes left", size, bytes_.size() - at - 1));
        }
        if (free > left()) return fail(at, fmt::format("NEW_FUN with {} free variables in {} bytes", free, left()));
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 4 + free, 0); !s) return error(s);
        stack.back().end = at + 1 + size;
        opened = true;
        break;
      }
      case kExport:
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 3, 0); !s) return error(s);
        opened = true;
        break;
      case kCompressed:
        return fail(at, "COMPRESSED (tag 80) inside a term");
      default:
        return fail(at, fmt::format("unknown tag {}", tag));
    }
    if (opened) continue;

    // Hand the value to the open containers, closing each one that is complete.
    for (;;) {
      if (stack.empty()) {
        *consumed = pos_;
        return value;
      }
      Frame& f = stack.back();
      f.items.push_back(std::move(value));
      if (f.items.size() < f.want) break;
      auto done = finish(f);
      if (!done) return done;
      value = std::move(*done);
      stack.pop_back();
    }
  }
}

// Inflates a COMPRESSED term's zlib stream into exactly `size` bytes.
Result<std::vector<std::uint8_t>> inflate_exact(std::span<const std::uint8_t> in, std::size_t size, std::size_t at) {
  std::vector<std::uint8_t> out;
  // Grow as data arrives rather than trusting the declared size for the allocation.
  out.resize(std::min<std::size_t>(size, std::max<std::size_t>(in.size() * 4, 4096)));
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return error(Code::kInternal, "term: inflateInit failed");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), std::numeric_limits<uInt>::max()));
  std::size_t produced = 0;
  int rc = Z_OK;
  for (;;) {
    if (produced == out.size()) {
      if (out.size() == size) {
        // Full: the stream must end now, without more output.
        std::uint8_t probe;
        zs.next_out = &probe;
        zs.avail_out = 1;
        rc = inflate(&zs, Z_FINISH);
        if (rc == Z_STREAM_END && zs.avail_out == 1) break;
        inflateEnd(&zs);
        if (zs.avail_out == 0) {
          return error(Code::kCorruption,
                       fmt::format("term: at offset {}: compressed term inflates past its declared size {}", at, size));
        }
        return error(Code::kCorruption, fmt::format("term: at offset {}: compressed term is truncated or damaged", at));
      }
      out.resize(std::min(size, out.size() * 2));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, std::numeric_limits<uInt>::max()));
    std::size_t before = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      inflateEnd(&zs);
      return error(Code::kCorruption, fmt::format("term: at offset {}: compressed term: zlib: {}", at,
                                                  zs.msg != nullptr ? zs.msg : "damaged stream"));
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      return error(Code::kCorruption, fmt::format("term: at offset {}: compressed term is truncated", at));
    }
  }
  std::size_t unused = zs.avail_in;
  inflateEnd(&zs);
  if (produced != size) {
    return error(Code::kCorruption, fmt::format("term: at offset {}: compressed term inflates to {} bytes, declared {}",
                                                at, produced, size));
  }
  if (unused != 0) {
    return error(Code::kCorruption, fmt::format("term: at offset {}: {} trailing bytes after the compressed term",
                                                at + in.size() - unused, unused));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Encoding

void put16(std::vector<std::uint8_t>& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put32(std::vector<std::uint8_t>& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

void encode_body(const Term& term, int minor_version, std::vector<std::uint8_t>& out, int nesting);

// Pids, ports, references and funs nested in funs: beyond this, opaque bytes are copied as
// they are rather than re-encoded (the re-encoding recurses once per level).
constexpr int kMaxOpaqueNesting = 64;

// Writes an opaque term with its nested atoms and terms encoded for `minor_version`, as
// term_to_binary would; false (and `out` untouched) when the bytes do not parse, as a
// hand-built Opaque might not.
bool reencode_opaque(const Opaque& o, int minor_version, std::vector<std::uint8_t>& out, int nesting) {
  const auto& v = o.bytes;
  if (v.empty() || v[0] != o.tag) return false;
  std::vector<std::uint8_t> tmp{o.tag};
  std::size_t p = 1;
  auto term = [&]() {
    std::size_t n = 0;
    auto t = internal::decode_prefix(std::span<const std::uint8_t>(v).subspan(p), &n);
    if (!t) return false;
    encode_body(*t, minor_version, tmp, nesting);
    p += n;
    return true;
  };
  auto raw = [&](std::size_t n) {
    if (v.size() - p < n) return false;
    tmp.insert(tmp.end(), v.begin() + static_cast<std::ptrdiff_t>(p), v.begin() + static_cast<std::ptrdiff_t>(p + n));
    p += n;
    return true;
  };
  bool ok = false;
  switch (o.tag) {
    case kPid: ok = term() && raw(9); break;
    case kNewPid: ok = term() && raw(12); break;
    case kPort: case kReference: ok = term() && raw(5); break;
    case kNewPort: ok = term() && raw(8); break;
    case kV4Port: ok = term() && raw(12); break;
    case kNewReference: case kNewerReference: {
      if (v.size() < 3) return false;
      std::size_t words = (std::size_t{v[1]} << 8) | v[2];
      ok = raw(2) && term() && raw((o.tag == kNewReference ? 1 : 4) + 4 * words);
      break;
    }
    case kExport: ok = term() && term() && term(); break;
    case kNewFun: {
      if (v.size() < 30) return false;
      std::size_t free = (std::size_t{v[26]} << 24) | (std::size_t{v[27]} << 16) | (std::size_t{v[28]} << 8) | v[29];
      tmp.resize(5);  // Size, patched below
      p = 5;
      ok = raw(25);
      for (std::size_t i = 0; ok && i < 4 + free; ++i) ok = term();
      if (ok) {
        std::size_t size = tmp.size() - 1;  // from the Size field to the end
        for (int k = 0; k < 4; ++k) tmp[1 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(size >> (24 - 8 * k));
      }
      break;
    }
    default:
      break;
  }
  if (!ok || p != v.size()) return false;
  out.insert(out.end(), tmp.begin(), tmp.end());
  return true;
}

// Writes one term's own bytes; children go on `todo` (nullptr stands for NIL_EXT), so a
// deep term costs heap, not native stack.
// Thread safety: one Encoder per call, never shared.
struct Encoder {
  std::vector<std::uint8_t>& out;
  int minor_version;
  std::vector<const Term*>& todo;
  int nesting;

  void operator()(const Atom& a) const {
    // Minor version 0 and 1 (OTP 25's default) write Latin-1 atoms as ATOM_EXT.
    bool latin1 = false;
    std::vector<std::uint32_t> cps;
    if (minor_version < 2) {
      cps = code_points(a.name);
      latin1 = std::all_of(cps.begin(), cps.end(), [](std::uint32_t c) { return c < 256; });
    }
    if (latin1) {
      std::size_t n = std::min<std::size_t>(cps.size(), 0xFFFF);
      out.push_back(kAtom);
      put16(out, n);
      for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(cps[i]));
      return;
    }
    std::size_t n = std::min<std::size_t>(a.name.size(), 0xFFFF);
    if (n < 256) {
      out.push_back(kSmallAtomUtf8);
      out.push_back(static_cast<std::uint8_t>(n));
    } else {
      out.push_back(kAtomUtf8);
      put16(out, n);
    }
    out.insert(out.end(), a.name.begin(), a.name.begin() + static_cast<std::ptrdiff_t>(n));
  }
  void operator()(std::int64_t v) const {
    if (v >= 0 && v <= 255) {
      out.push_back(kSmallInteger);
      out.push_back(static_cast<std::uint8_t>(v));
    } else if (v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max()) {
      out.push_back(kInteger);
      put32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
    } else {
      std::uint64_t mag = v < 0 ? ~static_cast<std::uint64_t>(v) + 1 : static_cast<std::uint64_t>(v);
      std::uint8_t digits[8];
      std::size_t n = 0;
      for (; mag != 0; mag >>= 8) digits[n++] = static_cast<std::uint8_t>(mag);
      out.push_back(kSmallBig);
      out.push_back(static_cast<std::uint8_t>(n));
      out.push_back(v < 0 ? 1 : 0);
      out.insert(out.end(), digits, digits + n);
    }
  }
  void operator()(const BigInt& b) const {
    if (b.magnitude.size() < 256) {
      out.push_back(kSmallBig);
      out.push_back(static_cast<std::uint8_t>(b.magnitude.size()));
    } else {
      out.push_back(kLargeBig);
      put32(out, b.magnitude.size());
    }
    out.push_back(b.negative ? 1 : 0);
    out.insert(out.end(), b.magnitude.begin(), b.magnitude.end());
  }
  void operator()(double d) const {
    if (minor_version == 0) {  // FLOAT_EXT: "%.20e", NUL padded to 31 bytes
      char text[32] = {};
      std::snprintf(text, sizeof text, "%.20e", d);
      out.push_back(kFloat);
      out.insert(out.end(), text, text + 31);
      return;
    }
    auto bits = std::bit_cast<std::uint64_t>(d);
    out.push_back(kNewFloat);
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(bits >> s));
  }
  void operator()(const Nil&) const { out.push_back(kNil); }
  void operator()(const List& l) const {
    // term_to_binary writes a proper list of bytes shorter than 65536 as STRING_EXT.
    bool bytes = l.tail == nullptr && l.elements.size() < 65536 &&
                 std::all_of(l.elements.begin(), l.elements.end(), [](const Term& e) {
                   const std::int64_t* i = e.as_int();
                   return i != nullptr && *i >= 0 && *i <= 255;
                 });
    if (bytes) {
      out.push_back(kString);
      put16(out, l.elements.size());
      for (const Term& e : l.elements) out.push_back(static_cast<std::uint8_t>(*e.as_int()));
      return;
    }
    out.push_back(kList);
    put32(out, l.elements.size());
    todo.push_back(l.tail.get());
    for (std::size_t i = l.elements.size(); i-- > 0;) todo.push_back(&l.elements[i]);
  }
  void operator()(const Tuple& t) const {
    if (t.elements.size() < 256) {
      out.push_back(kSmallTuple);
      out.push_back(static_cast<std::uint8_t>(t.elements.size()));
    } else {
      out.push_back(kLargeTuple);
      put32(out, t.elements.size());
    }
    for (std::size_t i = t.elements.size(); i-- > 0;) todo.push_back(&t.elements[i]);
  }
  void operator()(const Map& m) const {
    out.push_back(kMap);
    put32(out, m.pairs.size());
    for (std::size_t i = m.pairs.size(); i-- > 0;) {
      todo.push_back(&m.pairs[i].second);
      todo.push_back(&m.pairs[i].first);
    }
  }
  void operator()(const Binary& b) const {
    if (b.bits >= 8 || b.bits == 0 || b.bytes.empty()) {
      out.push_back(kBinary);
      put32(out, b.bytes.size());
    } else {
      out.push_back(kBitBinary);
      put32(out, b.bytes.size());
      out.push_back(b.bits);
    }
    out.insert(out.end(), b.bytes.begin(), b.bytes.end());
  }
  void operator()(const Opaque& o) const {
    if (nesting < kMaxOpaqueNesting && reencode_opaque(o, minor_version, out, nesting + 1)) return;
    out.insert(out.end(), o.bytes.begin(), o.bytes.end());
  }
};


}  // namespace

namespace internal {

Result<Term> decode_prefix(std::span<const std::uint8_t> bytes, std::size_t* consumed, const DecodeLimits& limits,
                           std::size_t base_offset) {
  Decoder d(bytes, limits, base_offset, "");
  return d.run(consumed);
}

}  // namespace internal

Result<Term> decode(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return error(Code::kCorruption, "term: at offset 0: no bytes");
  if (bytes[0] != kVersion) {
    return error(Code::kCorruption, fmt::format("term: at offset 0: version byte {} (expected 131)", bytes[0]));
  }
  if (bytes.size() >= 2 && bytes[1] == kCompressed) {
    if (bytes.size() < 6) return error(Code::kCorruption, "term: at offset 1: COMPRESSED (tag 80) is truncated");
    std::size_t size = (std::size_t{bytes[2]} << 24) | (std::size_t{bytes[3]} << 16) | (std::size_t{bytes[4]} << 8) |
                       std::size_t{bytes[5]};
    if (size > limits.max_inflated_bytes) {
      return error(Code::kLimitExceeded,
                   fmt::format("term: at offset 1: compressed term declares {} bytes, above max_inflated_bytes {}", size,
                               limits.max_inflated_bytes));
    }
    auto inflated = inflate_exact(bytes.subspan(6), size, 6);
    if (!inflated) return tl::unexpected(inflated.error());
    std::size_t consumed = 0;
    Decoder d(*inflated, limits, 0, " of the inflated term");
    auto term = d.run(&consumed);
    if (!term) return term;
    if (consumed != inflated->size()) {
      return error(Code::kCorruption, fmt::format("term: at offset {} of the inflated term: {} trailing bytes",
                                                  consumed, inflated->size() - consumed));
    }
    return term;
  }
  std::size_t consumed = 0;
  auto term = internal::decode_prefix(bytes.subspan(1), &consumed, limits, 1);
  if (!term) return term;
  if (1 + consumed != bytes.size()) {
    return error(Code::kCorruption,
                 fmt::format("term: at offset {}: {} trailing bytes after the term", 1 + consumed, bytes.size() - 1 - consumed));
  }
  return term;
}

namespace {

void encode_body(const Term& term, int minor_version, std::vector<std::uint8_t>& out, int nesting) {
  std::vector<const Term*> todo{&term};
  Encoder encoder{out, minor_version, todo, nesting};
  while (!todo.empty()) {
    const Term* t = todo.back();
    todo.pop_back();
    if (t == nullptr) {
      out.push_back(kNil);
    } else {
      std::visit(encoder, t->value());
    }
  }
}

}  // namespace

namespace internal {

std::vector<std::uint8_t> canonical_opaque(const Opaque& o) {
  std::vector<std::uint8_t> out;
  if (!reencode_opaque(o, 2, out, 1)) out = o.bytes;
  return out;
}

}  // namespace internal

std::vector<std::uint8_t> encode(const Term& term, const EncodeOptions& options) {
  std::vector<std::uint8_t> out;
  out.push_back(kVersion);
  encode_body(term, options.minor_version, out, 0);
  return out;
}

}  // namespace codestore::etf

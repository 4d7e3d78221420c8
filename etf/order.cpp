// Erlang's term order: compare (exact, map key order, =:=) and compare_order (<, lists:sort).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "etf/term_internal.h"

namespace codestore::etf::internal {

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
        case kReference:
        case kNewReference:
        case kNewerReference: return 2;
        case kNewFun:
        case kExport: return 3;
        case kPort:
        case kNewPort:
        case kV4Port: return 4;
        default: return 5;  // pids
      }
    }
  };
  return std::visit(V{}, t.value());
}

int sign_of(auto a, auto b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

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
        return fa ? -compare_int_float(vb, std::get<double>(va))
                  : compare_int_float(va, std::get<double>(vb));
      }
      const auto* ia = std::get_if<std::int64_t>(&va);
      const auto* ib = std::get_if<std::int64_t>(&vb);
      if (ia && ib) return sign_of(*ia, *ib);
      if (ia) return std::get<BigInt>(vb).negative ? 1 : -1;
      if (ib) return std::get<BigInt>(va).negative ? -1 : 1;
      return compare_big(std::get<BigInt>(va), std::get<BigInt>(vb));
    }
    case 1: return sign_of(std::get<Atom>(va).name.compare(std::get<Atom>(vb).name), 0);
    case 8: return 0;
    case 10: return compare_binary(std::get<Binary>(va), std::get<Binary>(vb));
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
        for (std::size_t i = sx.size(); i-- > 0;)
          work.push_back({&sx[i]->second, &sy[i]->second, 0, it.exact});
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

int compare(const Term& a, const Term& b) {
  return compare_impl(a, b, /*exact=*/true);
}

int compare_order(const Term& a, const Term& b) {
  return compare_impl(a, b, /*exact=*/false);
}

}  // namespace codestore::etf::internal

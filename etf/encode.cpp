// term_to_binary: the encoder, and the canonical bytes of pids, ports, references and funs
// that term order compares. Walks with an explicit stack (a deep term costs heap).
#include <algorithm>
#include <bit>
#include <cstdio>
#include <limits>

#include "base/big_endian.h"
#include "base/utf8.h"
#include "etf/term_internal.h"

namespace codestore::etf {

using namespace internal;  // NOLINT: the tags

namespace {

using base::put_u16;
using base::put_u32;

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
    tmp.insert(tmp.end(), v.begin() + static_cast<std::ptrdiff_t>(p),
               v.begin() + static_cast<std::ptrdiff_t>(p + n));
    p += n;
    return true;
  };
  bool ok = false;
  switch (o.tag) {
    case kPid: ok = term() && raw(9); break;
    case kNewPid: ok = term() && raw(12); break;
    case kPort:
    case kReference: ok = term() && raw(5); break;
    case kNewPort: ok = term() && raw(8); break;
    case kV4Port: ok = term() && raw(12); break;
    case kNewReference:
    case kNewerReference: {
      if (v.size() < 3) return false;
      std::size_t words = (std::size_t{v[1]} << 8) | v[2];
      ok = raw(2) && term() && raw((o.tag == kNewReference ? 1 : 4) + 4 * words);
      break;
    }
    case kExport: ok = term() && term() && term(); break;
    case kNewFun: {
      if (v.size() < 30) return false;
      std::size_t free =
          (std::size_t{v[26]} << 24) | (std::size_t{v[27]} << 16) | (std::size_t{v[28]} << 8) | v[29];
      tmp.resize(5);  // Size, patched below
      p = 5;
      ok = raw(25);
      for (std::size_t i = 0; ok && i < 4 + free; ++i) ok = term();
      if (ok) {
        std::size_t size = tmp.size() - 1;  // from the Size field to the end
        for (int k = 0; k < 4; ++k)
          tmp[1 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(size >> (24 - 8 * k));
      }
      break;
    }
    default: break;
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
      cps = base::code_points(a.name);
      latin1 = std::all_of(cps.begin(), cps.end(), [](std::uint32_t c) { return c < 256; });
    }
    if (latin1) {
      std::size_t n = std::min<std::size_t>(cps.size(), 0xFFFF);
      out.push_back(kAtom);
      put_u16(out, n);
      for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(cps[i]));
      return;
    }
    std::size_t n = std::min<std::size_t>(a.name.size(), 0xFFFF);
    if (n < 256) {
      out.push_back(kSmallAtomUtf8);
      out.push_back(static_cast<std::uint8_t>(n));
    } else {
      out.push_back(kAtomUtf8);
      put_u16(out, n);
    }
    out.insert(out.end(), a.name.begin(), a.name.begin() + static_cast<std::ptrdiff_t>(n));
  }
  void operator()(std::int64_t v) const {
    if (v >= 0 && v <= 255) {
      out.push_back(kSmallInteger);
      out.push_back(static_cast<std::uint8_t>(v));
    } else if (v >= std::numeric_limits<std::int32_t>::min() &&
               v <= std::numeric_limits<std::int32_t>::max()) {
      out.push_back(kInteger);
      put_u32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
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
      put_u32(out, b.magnitude.size());
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
      put_u16(out, l.elements.size());
      for (const Term& e : l.elements) out.push_back(static_cast<std::uint8_t>(*e.as_int()));
      return;
    }
    out.push_back(kList);
    put_u32(out, l.elements.size());
    todo.push_back(l.tail.get());
    for (std::size_t i = l.elements.size(); i-- > 0;) todo.push_back(&l.elements[i]);
  }
  void operator()(const Tuple& t) const {
    if (t.elements.size() < 256) {
      out.push_back(kSmallTuple);
      out.push_back(static_cast<std::uint8_t>(t.elements.size()));
    } else {
      out.push_back(kLargeTuple);
      put_u32(out, t.elements.size());
    }
    for (std::size_t i = t.elements.size(); i-- > 0;) todo.push_back(&t.elements[i]);
  }
  void operator()(const Map& m) const {
    out.push_back(kMap);
    put_u32(out, m.pairs.size());
    for (std::size_t i = m.pairs.size(); i-- > 0;) {
      todo.push_back(&m.pairs[i].second);
      todo.push_back(&m.pairs[i].first);
    }
  }
  void operator()(const Binary& b) const {
    if (b.bits >= 8 || b.bits == 0 || b.bytes.empty()) {
      out.push_back(kBinary);
      put_u32(out, b.bytes.size());
    } else {
      out.push_back(kBitBinary);
      put_u32(out, b.bytes.size());
      out.push_back(b.bits);
    }
    out.insert(out.end(), b.bytes.begin(), b.bytes.end());
  }
  void operator()(const Opaque& o) const {
    if (nesting < kMaxOpaqueNesting && reencode_opaque(o, minor_version, out, nesting + 1)) return;
    out.insert(out.end(), o.bytes.begin(), o.bytes.end());
  }
};

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

// binary_to_term: the decoder. It checks every length against the bytes left before
// allocating anything for it, and walks with an explicit stack (a depth bomb costs heap).
#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/utf8.h"
#include "etf/term_internal.h"

// GCC 12 reports moves of std::variant alternatives as "maybe uninitialized" when it
// inlines Decoder::run (a known false positive with variant's move constructor).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace codestore::etf {

using namespace internal;  // NOLINT: the tags

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
      std::size_t n = base::utf8_one(s, len, i, &cp);
      if (n == 0) return fail(at, fmt::format("atom (tag {}) is not valid UTF-8", tag));
      i += n;
    }
    name.assign(reinterpret_cast<const char*>(s), len);
  } else {
    name.reserve(len + len / 2);
    for (std::size_t i = 0; i < len; ++i) base::append_utf8(name, s[i]);
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
    case Frame::kTupleFrame: return Term(Tuple{std::move(f.items)});
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
      auto must_be_atom = [&](std::size_t i) {
        return f.items.size() > i && f.items[i].as_atom() != nullptr;
      };
      switch (f.tag) {
        case kNewFun:
          // Module, OldIndex, OldUniq, Pid, free variables.
          if (!must_be_atom(0) || f.items[1].as_int() == nullptr || f.items[2].as_int() == nullptr) {
            return fail(f.start, "NEW_FUN with a bad module, index or uniq");
          }
          if (pos_ != f.end)
            return fail(f.start, fmt::format("NEW_FUN size says it ends at {}, it ends at {}", base_ + f.end,
                                             base_ + pos_));
          break;
        case kExport:
          if (!must_be_atom(0) || !must_be_atom(1) || f.items[2].as_int() == nullptr ||
              *f.items[2].as_int() < 0) {
            return fail(f.start, "EXPORT is not {atom, atom, arity}");
          }
          break;
        default:
          if (!must_be_atom(0)) return fail(f.start, fmt::format("tag {}: node is not an atom", f.tag));
          if (left() < f.after) return truncated(f.start, f.tag, f.after);
          pos_ += f.after;
          break;
      }
      return Term(
          Opaque{f.tag, std::vector<std::uint8_t>(bytes_.begin() + static_cast<std::ptrdiff_t>(f.start),
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
      return Status(Code::kLimitExceeded,
                    fmt::format("term: at offset {}{}: nesting deeper than max_depth {}", base_ + at, where_,
                                limits_.max_depth));
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
      case kAtom:
      case kAtomUtf8: {
        if (left() < 2) return truncated(at, tag, 2);
        auto r = atom(at, tag, u16(), tag == kAtomUtf8);
        if (!r) return r;
        value = std::move(*r);
        break;
      }
      case kSmallAtom:
      case kSmallAtomUtf8: {
        if (left() < 1) return truncated(at, tag, 1);
        auto r = atom(at, tag, u8(), tag == kSmallAtomUtf8);
        if (!r) return r;
        value = std::move(*r);
        break;
      }
      case kNil: value = Term(Nil{}); break;
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
        value =
            Term(Binary{std::vector<std::uint8_t>(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
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
        value =
            Term(Binary{std::vector<std::uint8_t>(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_),
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
      case kSmallTuple:
      case kLargeTuple: {
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
      case kPid:
      case kNewPid:
      case kPort:
      case kNewPort:
      case kV4Port:
      case kReference: {
        std::size_t after = tag == kPid       ? 9
                            : tag == kNewPid  ? 12
                            : tag == kPort    ? 5
                            : tag == kNewPort ? 8
                            : tag == kV4Port  ? 12
                                              : 5;
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 1, after); !s) return error(s);
        opened = true;
        break;
      }
      case kNewReference:
      case kNewerReference: {
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
        if (free > left())
          return fail(at, fmt::format("NEW_FUN with {} free variables in {} bytes", free, left()));
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 4 + free, 0); !s) return error(s);
        stack.back().end = at + 1 + size;
        opened = true;
        break;
      }
      case kExport:
        if (Status s = open(Frame::kOpaqueFrame, tag, at, 3, 0); !s) return error(s);
        opened = true;
        break;
      case kCompressed: return fail(at, "COMPRESSED (tag 80) inside a term");
      default: return fail(at, fmt::format("unknown tag {}", tag));
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
Result<std::vector<std::uint8_t>> inflate_exact(std::span<const std::uint8_t> in, std::size_t size,
                                                std::size_t at) {
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
                       fmt::format("term: at offset {}: compressed term inflates past its declared size {}",
                                   at, size));
        }
        return error(Code::kCorruption,
                     fmt::format("term: at offset {}: compressed term is truncated or damaged", at));
      }
      out.resize(std::min(size, out.size() * 2));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out =
        static_cast<uInt>(std::min<std::size_t>(out.size() - produced, std::numeric_limits<uInt>::max()));
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
    return error(Code::kCorruption,
                 fmt::format("term: at offset {}: compressed term inflates to {} bytes, declared {}", at,
                             produced, size));
  }
  if (unused != 0) {
    return error(Code::kCorruption,
                 fmt::format("term: at offset {}: {} trailing bytes after the compressed term",
                             at + in.size() - unused, unused));
  }
  return out;
}

}  // namespace

namespace internal {

Result<Term> decode_prefix(std::span<const std::uint8_t> bytes, std::size_t* consumed,
                           const DecodeLimits& limits, std::size_t base_offset) {
  Decoder d(bytes, limits, base_offset, "");
  return d.run(consumed);
}

}  // namespace internal

Result<Term> decode(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return error(Code::kCorruption, "term: at offset 0: no bytes");
  if (bytes[0] != kVersion) {
    return error(Code::kCorruption,
                 fmt::format("term: at offset 0: version byte {} (expected 131)", bytes[0]));
  }
  if (bytes.size() >= 2 && bytes[1] == kCompressed) {
    if (bytes.size() < 6)
      return error(Code::kCorruption, "term: at offset 1: COMPRESSED (tag 80) is truncated");
    std::size_t size = (std::size_t{bytes[2]} << 24) | (std::size_t{bytes[3]} << 16) |
                       (std::size_t{bytes[4]} << 8) | std::size_t{bytes[5]};
    if (size > limits.max_inflated_bytes) {
      return error(
          Code::kLimitExceeded,
          fmt::format("term: at offset 1: compressed term declares {} bytes, above max_inflated_bytes {}",
                      size, limits.max_inflated_bytes));
    }
    auto inflated = inflate_exact(bytes.subspan(6), size, 6);
    if (!inflated) return tl::unexpected(inflated.error());
    std::size_t consumed = 0;
    Decoder d(*inflated, limits, 0, " of the inflated term");
    auto term = d.run(&consumed);
    if (!term) return term;
    if (consumed != inflated->size()) {
      return error(Code::kCorruption,
                   fmt::format("term: at offset {} of the inflated term: {} trailing bytes", consumed,
                               inflated->size() - consumed));
    }
    return term;
  }
  std::size_t consumed = 0;
  auto term = internal::decode_prefix(bytes.subspan(1), &consumed, limits, 1);
  if (!term) return term;
  if (1 + consumed != bytes.size()) {
    return error(Code::kCorruption, fmt::format("term: at offset {}: {} trailing bytes after the term",
                                                1 + consumed, bytes.size() - 1 - consumed));
  }
  return term;
}

}  // namespace codestore::etf

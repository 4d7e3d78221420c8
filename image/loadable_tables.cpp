// The VM loader's table checks (beam_file.c # beamfile_read): what a strict parse applies
// (check_table_heads) and what only the verdict needs (check_table_rest), in beamfile_read's
// order.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/utf8.h"
#include "etf/term_internal.h"
#include "image/loadable_internal.h"

namespace codestore::image::internal::verdict {

namespace {

thread_local std::uint64_t tl_head_checks = 0;

// A walk over one external term (without its version byte) that allocates nothing and
// answers true only when etf::internal::decode_prefix would decode it with these limits;
// `*consumed` is then what decode_prefix would consume. Anything it does not follow
// exactly (maps of two or more pairs unless their keys are distinct ASCII atoms; pids,
// ports, references, funs, exports other than two atoms and a small arity; FLOAT_EXT
// text; any error) answers false, and the caller runs the decoder itself for the verdict
// and its message.
bool surely_decodes(Bytes b, std::size_t* consumed, const etf::DecodeLimits& lim) {
  // Qualified: this file's operand tags (kList is 9 there) would hide the external format's.
  namespace ext = etf::internal;
  constexpr std::size_t kMaxStack = 256;
  std::size_t want[kMaxStack];  // children still to come in each open container
  // Maps of two or more pairs whose keys are all ASCII atoms (the compiler's literals, e.g.
  // logger metadata): such keys differ exactly when their bytes differ, so repeated keys
  // are found without the decoder's term comparison. keys_from[d]: where the keys of the
  // map open at depth d start in `keys`; kNoMap for other containers.
  constexpr std::size_t kNoMap = SIZE_MAX, kMaxKeys = 64;
  std::size_t keys_from[kMaxStack];
  Bytes keys[kMaxKeys];
  std::size_t key_count = 0;
  std::size_t depth = 0;
  std::size_t pos = 0, terms = 0;
  const std::size_t n = b.size();
  auto u16 = [&] {
    const std::size_t v = (std::size_t{b[pos]} << 8) | b[pos + 1];
    pos += 2;
    return v;
  };
  auto u32 = [&] {
    const std::size_t v = ByteReader::peek_u32(b.data() + pos);
    pos += 4;
    return v;
  };
  auto atom = [&](std::size_t len, bool utf8) {
    if (n - pos < len) return false;
    std::size_t chars = len;
    if (utf8) {
      chars = 0;
      const auto* p = b.data() + pos;
      for (std::size_t i = 0; i < len; ++chars) {
        if (p[i] < 0x80) {
          ++i;
          continue;
        }
        std::uint32_t cp;
        const std::size_t k = base::utf8_one(p, len, i, &cp);
        if (k == 0) return false;
        i += k;
      }
    }
    if (chars > 255) return false;
    pos += len;
    return true;
  };
  // One atom term whose tag was just read: false for another tag or a bad atom.
  auto atom_term = [&](std::uint8_t tag) {
    if (tag == ext::kSmallAtom || tag == ext::kSmallAtomUtf8) {
      if (pos >= n) return false;
      const std::size_t len = b[pos++];
      return atom(len, tag == ext::kSmallAtomUtf8);
    }
    if (tag == ext::kAtom || tag == ext::kAtomUtf8) return n - pos >= 2 && atom(u16(), tag == ext::kAtomUtf8);
    return false;
  };
  auto open = [&](std::size_t children) {
    if (depth >= lim.max_depth || depth >= kMaxStack) return false;
    keys_from[depth] = kNoMap;
    want[depth++] = children;
    return true;
  };
  // At a key of such a map (an even count of its children still to come): an ASCII atom
  // not seen before in this map, recorded; anything else answers false.
  auto new_key = [&]() {
    const std::size_t at = pos;
    if (n - at < 2) return false;
    std::size_t len = 0, start = 0;
    const std::uint8_t t = b[at];
    if (t == ext::kSmallAtom || t == ext::kSmallAtomUtf8) {
      len = b[at + 1];
      start = at + 2;
    } else if ((t == ext::kAtom || t == ext::kAtomUtf8) && n - at >= 3) {
      len = (std::size_t{b[at + 1]} << 8) | b[at + 2];
      start = at + 3;
    } else {
      return false;
    }
    if (n - start < len || key_count == kMaxKeys) return false;
    const Bytes key = b.subspan(start, len);
    for (std::uint8_t c : key) {
      if (c >= 0x80) return false;
    }
    for (std::size_t k = keys_from[depth - 1]; k < key_count; ++k) {
      if (std::equal(key.begin(), key.end(), keys[k].begin(), keys[k].end())) return false;
    }
    keys[key_count++] = key;
    return true;
  };
  for (;;) {
    if (depth > 0 && keys_from[depth - 1] != kNoMap && want[depth - 1] % 2 == 0 && !new_key()) return false;
    if (pos >= n) return false;
    if (++terms > lim.max_terms) return false;
    const std::uint8_t tag = b[pos++];
    const std::size_t left = n - pos;
    bool opened = false;
    switch (tag) {
      case ext::kSmallInteger:
        if (left < 1) return false;
        pos += 1;
        break;
      case ext::kInteger:
        if (left < 4) return false;
        pos += 4;
        break;
      case ext::kNewFloat: {
        if (left < 8) return false;
        std::uint64_t bits = std::uint64_t{u32()} << 32;
        bits |= u32();
        if (!std::isfinite(std::bit_cast<double>(bits))) return false;
        break;
      }
      case ext::kAtom:
      case ext::kAtomUtf8:
      case ext::kSmallAtom:
      case ext::kSmallAtomUtf8:
        if (!atom_term(tag)) return false;
        break;
      case ext::kNil: break;
      case ext::kString: {
        if (left < 2) return false;
        const std::size_t len = u16();
        if (n - pos < len || terms + len > lim.max_terms) return false;
        terms += len;
        pos += len;
        break;
      }
      case ext::kBinary: {
        if (left < 4) return false;
        const std::size_t len = u32();
        if (n - pos < len) return false;
        pos += len;
        break;
      }
      case ext::kBitBinary: {
        if (left < 5) return false;
        const std::size_t len = u32();
        const std::uint8_t bits = b[pos++];
        if (bits > 8 || (bits == 0) != (len == 0) || n - pos < len) return false;
        pos += len;
        break;
      }
      case ext::kSmallBig:
        if (left < 1 || n - pos - 1 < 1 + std::size_t{b[pos]}) return false;
        pos += 1 + 1 + b[pos];
        break;
      case ext::kLargeBig: {
        if (left < 4) return false;
        const std::size_t len = u32();
        if (n - pos < 1 + len) return false;
        pos += 1 + len;
        break;
      }
      case ext::kSmallTuple:
      case ext::kLargeTuple: {
        const std::size_t width = tag == ext::kSmallTuple ? 1 : 4;
        if (left < width) return false;
        const std::size_t k = tag == ext::kSmallTuple ? b[pos++] : u32();
        if (k > n - pos) return false;
        if (k == 0) break;
        if (!open(k)) return false;
        opened = true;
        break;
      }
      case ext::kList: {
        if (left < 4) return false;
        const std::size_t k = u32();
        if (k >= n - pos) return false;
        if (!open(k + 1)) return false;
        opened = true;
        break;
      }
      case ext::kExport: {
        // fun M:F/A: two atoms and a SMALL_INTEGER_EXT arity, as term_to_binary writes it
        // (the decoder checks {atom, atom, integer >= 0}); anything else goes to the decoder.
        // The decoder opens a frame for it, so the depth limit applies.
        if (depth >= lim.max_depth) return false;
        for (int k = 0; k < 2; ++k) {
          if (pos >= n || ++terms > lim.max_terms) return false;
          const std::uint8_t t = b[pos++];
          if (!atom_term(t)) return false;
        }
        if (n - pos < 2 || b[pos] != ext::kSmallInteger || ++terms > lim.max_terms) return false;
        pos += 2;
        break;
      }
      case ext::kMap: {
        if (left < 4) return false;
        const std::size_t k = u32();
        if (k > (n - pos) / 2) return false;
        if (k == 0) break;
        if (k > kMaxKeys) return false;  // repeated keys: the decoder's comparison decides
        if (!open(2 * k)) return false;
        if (k > 1) keys_from[depth - 1] = key_count;
        opened = true;
        break;
      }
      default: return false;
    }
    if (opened) continue;
    // A complete value: hand it to the open containers, closing each complete one.
    for (;;) {
      if (depth == 0) {
        *consumed = pos;
        return true;
      }
      if (--want[depth - 1] > 0) break;
      --depth;
      if (keys_from[depth] != kNoMap) key_count = keys_from[depth];
    }
  }
}

}  // namespace

bool read_tagged_long(ByteReader& r, Tagged& t, std::uint8_t b) {
  std::size_t count = (b >> 5) + 2u;
  if ((b >> 5) == 7) {
    Tagged size;
    if (!read_tagged(r, size) || size.tag != kU || !size.big.empty() || size.value >= 0x7fffffffu - 9)
      return false;
    count = static_cast<std::size_t>(size.value) + 9;
  }
  Bytes data;
  if (!r.bytes(count, data)) return false;
  if (count <= 8) {
    std::uint64_t v = 0;
    for (std::uint8_t d : data) v = v << 8 | d;
    if (t.tag == kI) {
      // Sign-extend; a small integer is one that fits 60 bits (IS_SSMALL on 64-bit).
      const int shift = 64 - 8 * static_cast<int>(count);
      const std::int64_t s = shift == 64 ? 0 : static_cast<std::int64_t>(v << shift) >> shift;
      if (s >= -(std::int64_t{1} << 59) && s < (std::int64_t{1} << 59)) {
        t.value = static_cast<std::uint64_t>(s);
        return true;
      }
    } else if (static_cast<std::int64_t>(v) >= 0) {
      t.value = v;
      return true;
    }
  }
  if (t.tag != kI) t.tag = kO;
  t.big = data;
  return true;
}

std::uint64_t table_head_checks() noexcept {
  return tl_head_checks;
}

Check check_table_heads(const Image::Rep& rep, Tables& t) {
  ++tl_head_checks;
  const Chunk* code = present(rep, "Code");
  if (!code) return fail("Code", 0, "no Code chunk");
  {
    ByteReader r(rep.data(*code), code->offset);
    std::int32_t head = 0;
    std::int32_t version = 0, max_op = 0, labels = 0, functions = 0;
    if (!r.i32(head) || head < 0 || static_cast<std::size_t>(head) > r.remaining()) {
      return fail("Code", code->offset, "code header length runs past the chunk");
    }
    Bytes header;
    (void)r.bytes(static_cast<std::size_t>(head), header);
    ByteReader h(header, code->offset + 4);
    if (!h.i32(version) || !h.i32(max_op) || !h.i32(labels) || !h.i32(functions)) {
      return fail("Code", code->offset, "code header shorter than 16 bytes");
    }
    if (version != static_cast<std::int32_t>(kFormatNumber)) {
      return fail("Code", code->offset + 4, "format number " + std::to_string(version) + " (expected 0)");
    }
    t.max_opcode = static_cast<std::uint32_t>(max_op);
    t.label_count = static_cast<std::uint32_t>(labels);
    t.function_count = static_cast<std::uint32_t>(functions);
    t.code = r.rest();
    t.code_offset = r.offset();
  }
  const Chunk* atu8 = present(rep, "AtU8");
  if (!atu8) {
    if (present(rep, "Atom")) {
      return fail("Atom", 0,
                  "old-style atom table: please re-compile this module with an Erlang/OTP 25 compiler");
    }
    return fail("AtU8", 0, "no atom table");
  }
  internal::AtomsRef holder;
  internal::atoms_of(rep, *atu8, /*strict=*/true, holder);
  const auto& atoms = holder.get();
  if (!atoms) {
    auto f = fail("AtU8", atoms.error().where()->offset, std::string(error_detail(atoms.error())));
    f.value().limit = kind_of(atoms.error()) == ErrorKind::kLimitExceeded;
    return f;
  }
  t.atom_count = atoms->size() + 1;

  auto table = [&](std::string_view id, std::size_t width, auto&& entry) -> Check {
    const Chunk* c = present(rep, id);
    if (!c) {
      if (id == "ImpT" || id == "ExpT") return fail(id, 0, "no " + std::string(id) + " chunk");
      return {};
    }
    ByteReader r(rep.data(*c), c->offset);
    std::int32_t count = 0;
    if (!r.i32(count) || count < 0 || count >= kItemLimit / 24) {
      return fail(id, c->offset, "entry count " + std::to_string(count) + " out of range");
    }
    // ExpT's count is neither: without a FunT a fun index is out of range (OTP: badfile).
    if (id == "ImpT") t.import_count = static_cast<std::size_t>(count);
    if (id == "FunT") t.lambda_count = static_cast<std::size_t>(count);
    for (std::int32_t i = 0; i < count; ++i) {
      std::int32_t v[6] = {};
      const std::uint64_t at = r.offset();
      for (std::size_t k = 0; k < width; ++k) {
        if (!r.i32(v[k]))
          return fail(id, at, "entry " + std::to_string(i + 1) + " runs past the end of the chunk");
      }
      std::string why = entry(v);
      if (!why.empty()) return fail(id, at, "entry " + std::to_string(i + 1) + ": " + why);
    }
    return {};
  };
  auto atom_ok = [&](std::int32_t a) { return a >= 0 && static_cast<std::size_t>(a) < t.atom_count; };
  auto atom_range = [&](std::int32_t a) {
    return "atom index " + std::to_string(a) + " out of range 0.." + std::to_string(t.atom_count - 1);
  };
  if (auto ok = table("ImpT", 3,
                      [&](const std::int32_t* v) -> std::string {
                        if (!atom_ok(v[0])) return atom_range(v[0]);
                        if (!atom_ok(v[1])) return atom_range(v[1]);
                        if (v[2] < 0 || static_cast<std::uint32_t>(v[2]) > kMaxArg)
                          return "arity " + std::to_string(v[2]) + " out of range";
                        return {};
                      });
      !ok)
    return ok;
  auto function_entry = [&](const std::int32_t* v) -> std::string {
    if (!atom_ok(v[0])) return atom_range(v[0]);
    if (v[1] < 0 || static_cast<std::uint32_t>(v[1]) > kMaxArg)
      return "arity " + std::to_string(v[1]) + " out of range";
    if (v[2] < 0) return "negative label";
    return {};
  };
  if (auto ok = table("ExpT", 3, function_entry); !ok) return ok;
  if (auto ok = table("FunT", 6,
                      [&](const std::int32_t* v) -> std::string {
                        if (!atom_ok(v[0])) return atom_range(v[0]);
                        if (v[2] < 0) return "negative label";
                        return {};
                      });
      !ok)
    return ok;
  return {};
}

Check check_table_rest(const Image::Rep& rep, Tables& t) {
  if (const Chunk* lit = present(rep, "LitT")) {
    ByteReader r(rep.data(*lit), lit->offset);
    std::int32_t size = 0;
    if (!r.i32(size) || size < 0) return fail("LitT", lit->offset, "bad uncompressed size");
    if (static_cast<std::size_t>(size) > rep.limits.max_inflated_bytes) {
      auto f = fail("LitT", lit->offset,
                    "max_inflated_bytes: literals inflate to " + std::to_string(size) + " bytes");
      f.value().limit = true;
      return f;
    }
    std::vector<std::uint8_t> raw;
    if (!internal::uncompress_exact(r.rest(), static_cast<std::size_t>(size), raw)) {
      return fail("LitT", lit->offset + 4,
                  "literal table does not inflate to its declared size " + std::to_string(size));
    }
    ByteReader l(raw);
    std::int32_t count = 0;
    if (!l.i32(count) || count < 0 || count >= kItemLimit / 16)
      return fail("LitT", lit->offset + 4, "bad literal count");
    etf::DecodeLimits lim;
    lim.max_depth = rep.limits.max_term_depth;
    lim.max_inflated_bytes = rep.limits.max_inflated_bytes;
    for (std::int32_t i = 0; i < count; ++i) {
      std::int32_t len = 0;
      Bytes ext;
      if (!l.i32(len) || len < 0 || !l.bytes(static_cast<std::size_t>(len), ext)) {
        return fail("LitT", lit->offset + 4,
                    "literal " + std::to_string(i) + " runs past the inflated table");
      }
      std::size_t used = 0;
      if (ext.size() >= 2 && ext[0] == etf::internal::kVersion && ext[1] != etf::internal::kCompressed &&
          surely_decodes(ext.subspan(1), &used, lim) && 1 + used == ext.size()) {
        continue;
      }
      if (auto term = etf::decode(ext, lim); !term) {
        return fail("LitT", lit->offset + 4, "literal " + std::to_string(i) + ": " + term.error().message());
      }
    }
    t.literal_count = static_cast<std::size_t>(count);
  }

  if (const Chunk* line = present(rep, "Line")) {
    ByteReader r(rep.data(*line), line->offset);
    std::int32_t version = 0, flags = 0, instrs = 0, items = 0, names = 0;
    if (!r.i32(version)) return fail("Line", line->offset, "no version");
    if (version == 0) {
      if (!r.i32(flags) || !r.i32(instrs) || !r.i32(items) || !r.i32(names) || items < 0 ||
          items >= kItemLimit / 8 || names < 0 || names >= kItemLimit / 8) {
        return fail("Line", line->offset, "bad line table header");
      }
      for (std::int32_t i = 0; i < items;) {
        Tagged v;
        const std::uint64_t at = r.offset();
        if (!read_tagged(r, v)) return fail("Line", at, "line item runs past the chunk");
        if (v.tag == kA) {
          if (v.value > static_cast<std::uint64_t>(names))
            return fail("Line", at, "file name index out of range");
        } else if (v.tag == kI) {
          if (!v.big.empty() || static_cast<std::int64_t>(v.value) < 0)
            return fail("Line", at, "bad line number");
          ++i;
        } else {
          return fail("Line", at, "illegal line item tag");
        }
      }
      for (std::int32_t i = 0; i < names; ++i) {
        std::uint16_t len = 0;
        Bytes name;
        const std::uint64_t at = r.offset();
        if (!r.u16(len) || len > 0x7fff || !r.bytes(len, name))
          return fail("Line", at, "file name runs past the chunk");
        if (!base::is_utf8(name)) return fail("Line", at, "file name is not valid UTF-8");
      }
    }
  }

  if (const Chunk* type = present(rep, "Type")) {
    ByteReader r(rep.data(*type), type->offset);
    std::uint32_t version = 0, count = 0;
    if (!r.u32(version)) return fail("Type", type->offset, "no version");
    if (version == kTypesVersion) {
      if (!r.u32(count) || count < 1 || count >= static_cast<std::uint32_t>(kItemLimit) / 32 ||
          r.remaining() < std::size_t{count} * kTypeEntrySize) {
        return fail("Type", type->offset, "type table count does not match its size");
      }
      t.types_fallback = false;
      t.type_count = count;
    }
  }

  // beam_load.c decodes the module attributes and compile info for module_info/1.
  for (const char* id : {"Attr", "CInf"}) {
    if (const Chunk* c = present(rep, id)) {
      const Bytes d = rep.data(*c);
      etf::DecodeLimits lim;
      lim.max_depth = rep.limits.max_term_depth;
      lim.max_inflated_bytes = rep.limits.max_inflated_bytes;
      std::size_t used = 0;
      if (d.size() >= 2 && d[0] == etf::internal::kVersion && d[1] != etf::internal::kCompressed &&
          surely_decodes(d.subspan(1), &used, lim)) {
        continue;
      }
      if (auto term = internal::binary_to_term(rep, *c); !term)
        return fail(id, c->offset, std::string(error_detail(term.error())));
    }
  }

  if (const Chunk* funt = present(rep, "FunT"); funt && (funt->size < 4 || (funt->size - 4) % 24 != 0)) {
    return fail("FunT", funt->offset, "length is not 4 + 24 * entries");
  }
  return {};
}

}  // namespace codestore::image::internal::verdict

namespace codestore::image::internal {

// A strict parse checks what beamfile_read checks before the literals: Code header, atoms,
// imports, exports, funs. The module name is atom #1 of AtU8. The tables it read are kept
// in the Rep, so that check_loadable goes on from there instead of checking them again.
Result<void> check_strict_tables(Image::Rep& rep) {
  verdict::Tables t;
  if (auto ok = verdict::check_table_heads(rep, t); !ok) {
    const verdict::Fail& f = ok.error();
    const bool missing = f.why.rfind("no ", 0) == 0;
    const bool obsolete = f.chunk == "Atom";
    return tl::unexpected(make_error(f.limit    ? ErrorKind::kLimitExceeded
                                     : missing  ? ErrorKind::kMissingChunk
                                     : obsolete ? ErrorKind::kNotLoadable
                                                : ErrorKind::kInvalidChunk,
                                     rep.file, f.chunk, f.offset, f.why));
  }
  AtomsRef holder;
  atoms_of(rep, *verdict::present(rep, "AtU8"), true, holder);
  rep.module = holder.get()->name(1);
  rep.tables = t;
  return {};
}

}  // namespace codestore::image::internal

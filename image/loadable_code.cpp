// The VM loader's verdict (erlang:prepare_loading/2): beam_file.c # beamfile_read's table
// checks, then the generic instruction stream (beam_file.c # beamcodereader_next and
// beam_load.c # load_code) decoded against OTP 25's opcode table.
//
// What we do not replicate: the loader's transformation engine and its choice of a
// specific instruction for each generic one (an operand of a type no specific instruction
// takes is refused only by the VM), and checks on the Type chunk's entries beyond their size.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>

#include "image/byte_reader.h"
#include "image/image_internal.h"
#include "etf/term_internal.h"

namespace codestore::image {

using internal::ByteReader;
using internal::make_error;

namespace {

struct GenericOp {
  const char* name;
  std::uint8_t arity;
  bool obsolete;
};
#include "image/opcodes.inc"

constexpr std::uint64_t kMaxReg = 1024;   // erl_vm.h # MAX_REG
constexpr std::uint32_t kMaxArg = 255;    // erl_vm.h # MAX_ARG
constexpr std::int32_t kItemLimit = 1 << 30;  // beam_file.c # CHECK_ITEM_COUNT's 1 GB
constexpr std::uint32_t kTypesVersion = 1;    // beam_types.h (OTP 25)
constexpr std::size_t kTypeEntrySize = 18;    // u16 type bits, i64 min, i64 max

enum Tag : std::uint8_t {
  kU = 0, kI = 1, kA = 2, kX = 3, kY = 4, kF = 5, kH = 6, kZ = 7,
  kO = 8,  // a u/a/x/... value too large for a word
  // What an extended (z) operand turned out to be; a typed register becomes kX or kY.
  kList = 9, kFloatReg = 10, kAllocList = 11, kLiteral = 12,
};

// The loader's view of an image: beamfile_read's results we check the code against.
struct Tables {
  std::size_t atom_count = 0;  // atoms + the reserved slot 0 ([])
  std::uint32_t max_opcode = 0, label_count = 0, function_count = 0;
  Bytes code;
  std::uint64_t code_offset = 0;
  std::size_t literal_count = 0;
  std::size_t import_count = 0, lambda_count = 0;
  bool types_fallback = true;
  std::size_t type_count = 0;
};

struct Fail {
  std::string chunk;
  std::uint64_t offset = 0;
  std::string why;
  bool limit = false;  // a hard limit of ours, not damage
};

using Check = tl::expected<void, Fail>;
tl::unexpected<Fail> fail(std::string_view chunk, std::uint64_t offset, std::string why) {
  return tl::unexpected(Fail{std::string(chunk), offset, std::move(why)});
}

const Chunk* last(const Image::Rep& rep, std::string_view id) {
  const Chunk* c = nullptr;
  for (const Chunk& k : rep.chunks) {
    if (k.id_view() == id) c = &k;
  }
  return c;
}

// The loader treats an empty chunk as a missing one.
const Chunk* present(const Image::Rep& rep, std::string_view id) {
  const Chunk* c = last(rep, id);
  return c && c->size > 0 ? c : nullptr;
}

// beam_file.c # beamreader_read_tagged: the compact term encoding.
struct Tagged {
  std::uint8_t tag = 0;
  std::uint64_t value = 0;
  Bytes big;  // the value's bytes when it does not fit a word (tags i and o)
};

bool read_tagged(ByteReader& r, Tagged& t);

// The long form (3 or more value bytes), after the first byte `b`.
[[gnu::noinline]] bool read_tagged_long(ByteReader& r, Tagged& t, std::uint8_t b) {
  std::size_t count = (b >> 5) + 2u;
  if ((b >> 5) == 7) {
    Tagged size;
    if (!read_tagged(r, size) || size.tag != kU || !size.big.empty() || size.value >= 0x7fffffffu - 9) return false;
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

// The one- and two-byte forms inline; the rest out of line.
inline bool read_tagged(ByteReader& r, Tagged& t) {
  std::uint8_t b = 0;
  if (!r.u8(b)) return false;
  t.tag = b & 7;
  t.big = {};
  if ((b & 0x08) == 0) {
    t.value = b >> 4;
    return true;
  }
  if ((b & 0x10) == 0) {
    std::uint8_t lo = 0;
    if (!r.u8(lo)) return false;
    t.value = (std::uint64_t{b} >> 5) << 8 | lo;
    return true;
  }
  return read_tagged_long(r, t, b);
}

// marshal_integer: a bignum must be normalized (no redundant leading sign bytes).
bool normalized_bignum(Bytes be) {
  std::vector<std::uint8_t> le(be.rbegin(), be.rend());
  const bool negative = (le.back() & 0x80) != 0;
  if (negative) {
    unsigned carry = 1;
    for (auto& b : le) {
      b = static_cast<std::uint8_t>(~b + carry);
      carry = (b == 0 && carry == 1);
    }
  }
  std::size_t size = le.size();
  if (le[size - 1] == 0) {
    --size;
    if (size == 0 || le[size - 1] == 0) return false;
  }
  return true;
}

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
        const std::size_t k = ext::utf8_one(p, len, i, &cp);
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
      case ext::kAtom: case ext::kAtomUtf8: case ext::kSmallAtom: case ext::kSmallAtomUtf8:
        if (!atom_term(tag)) return false;
        break;
      case ext::kNil:
        break;
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
      case ext::kSmallTuple: case ext::kLargeTuple: {
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
      default:
        return false;
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

// beam_file.c # parse_atom_chunk (via decode_atoms), parse_import_chunk,
// parse_export_table, parse_lambda_chunk, parse_literal_chunk, parse_line_chunk,
// parse_type_chunk, parse_code_chunk, in beamfile_read's order.
Check check_tables(const Image::Rep& rep, Tables& t, bool full) {
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
      return fail("Atom", 0, "old-style atom table: please re-compile this module with an Erlang/OTP 25 compiler");
    }
    return fail("AtU8", 0, "no atom table");
  }
  internal::AtomsRef holder;
  internal::atoms_of(rep, *atu8, /*strict=*/true, holder);
  const auto& atoms = holder.get();
  if (!atoms) {
    auto f = fail("AtU8", atoms.error().offset, atoms.error().message);
    f.value().limit = atoms.error().kind == ErrorKind::kLimitExceeded;
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
        if (!r.i32(v[k])) return fail(id, at, "entry " + std::to_string(i + 1) + " runs past the end of the chunk");
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
  if (auto ok = table("ImpT", 3, [&](const std::int32_t* v) -> std::string {
        if (!atom_ok(v[0])) return atom_range(v[0]);
        if (!atom_ok(v[1])) return atom_range(v[1]);
        if (v[2] < 0 || static_cast<std::uint32_t>(v[2]) > kMaxArg) return "arity " + std::to_string(v[2]) + " out of range";
        return {};
      }); !ok) return ok;
  auto function_entry = [&](const std::int32_t* v) -> std::string {
    if (!atom_ok(v[0])) return atom_range(v[0]);
    if (v[1] < 0 || static_cast<std::uint32_t>(v[1]) > kMaxArg) return "arity " + std::to_string(v[1]) + " out of range";
    if (v[2] < 0) return "negative label";
    return {};
  };
  if (auto ok = table("ExpT", 3, function_entry); !ok) return ok;
  if (auto ok = table("FunT", 6, [&](const std::int32_t* v) -> std::string {
        if (!atom_ok(v[0])) return atom_range(v[0]);
        if (v[2] < 0) return "negative label";
        return {};
      }); !ok) return ok;
  if (!full) return {};

  if (const Chunk* lit = present(rep, "LitT")) {
    ByteReader r(rep.data(*lit), lit->offset);
    std::int32_t size = 0;
    if (!r.i32(size) || size < 0) return fail("LitT", lit->offset, "bad uncompressed size");
    if (static_cast<std::size_t>(size) > rep.limits.max_inflated_bytes) {
      auto f = fail("LitT", lit->offset, "max_inflated_bytes: literals inflate to " + std::to_string(size) + " bytes");
      f.value().limit = true;
      return f;
    }
    std::vector<std::uint8_t> raw;
    if (!internal::uncompress_exact(r.rest(), static_cast<std::size_t>(size), raw)) {
      return fail("LitT", lit->offset + 4, "literal table does not inflate to its declared size " + std::to_string(size));
    }
    ByteReader l(raw);
    std::int32_t count = 0;
    if (!l.i32(count) || count < 0 || count >= kItemLimit / 16) return fail("LitT", lit->offset + 4, "bad literal count");
    etf::DecodeLimits lim;
    lim.max_depth = rep.limits.max_term_depth;
    lim.max_inflated_bytes = rep.limits.max_inflated_bytes;
    for (std::int32_t i = 0; i < count; ++i) {
      std::int32_t len = 0;
      Bytes ext;
      if (!l.i32(len) || len < 0 || !l.bytes(static_cast<std::size_t>(len), ext)) {
        return fail("LitT", lit->offset + 4, "literal " + std::to_string(i) + " runs past the inflated table");
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
          if (v.value > static_cast<std::uint64_t>(names)) return fail("Line", at, "file name index out of range");
        } else if (v.tag == kI) {
          if (!v.big.empty() || static_cast<std::int64_t>(v.value) < 0) return fail("Line", at, "bad line number");
          ++i;
        } else {
          return fail("Line", at, "illegal line item tag");
        }
      }
      for (std::int32_t i = 0; i < names; ++i) {
        std::uint16_t len = 0;
        Bytes name;
        const std::uint64_t at = r.offset();
        if (!r.u16(len) || len > 0x7fff || !r.bytes(len, name)) return fail("Line", at, "file name runs past the chunk");
        if (!internal::valid_utf8(name)) return fail("Line", at, "file name is not valid UTF-8");
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
      if (auto term = internal::binary_to_term(rep, *c); !term) return fail(id, c->offset, term.error().message);
    }
  }

  if (const Chunk* funt = present(rep, "FunT"); funt && (funt->size < 4 || (funt->size - 4) % 24 != 0)) {
    return fail("FunT", funt->offset, "length is not 4 + 24 * entries");
  }
  return {};
}

// One generic instruction as the loader reads it: opcode, then its operands.
struct Op {
  std::uint8_t opcode = 0;
  std::uint64_t offset = 0;
};

constexpr std::uint8_t opcode_of(std::string_view name) {
  for (std::uint32_t i = 1; i <= kMaxGenericOpcode; ++i) {
    if (kGenericOps[i].name == name) return static_cast<std::uint8_t>(i);
  }
  return 0;
}

// Operands that index the import table (an external function or a BIF) or the fun table;
// the loader resolves them while emitting code.
struct IndexOperand {
  std::uint8_t opcode;
  std::uint8_t position;
  bool lambda;  // FunT instead of ImpT
};
constexpr IndexOperand kIndexOperands[] = {
    {opcode_of("call_ext"), 1, false}, {opcode_of("call_ext_last"), 1, false}, {opcode_of("call_ext_only"), 1, false},
    {opcode_of("bif0"), 0, false},     {opcode_of("bif1"), 1, false},          {opcode_of("bif2"), 1, false},
    {opcode_of("gc_bif1"), 2, false},  {opcode_of("gc_bif2"), 2, false},       {opcode_of("gc_bif3"), 2, false},
    {opcode_of("make_fun2"), 0, true}, {opcode_of("make_fun3"), 0, true},
};

// Operand kinds a generic instruction's operand must have whatever specific instruction
// the loader picks (genop.tab's signatures; the loader answers "bad tag"). Only operands
// whose kind is fixed are listed; the loader's full type check is its transformation
// engine's, which we do not replicate.
constexpr std::uint16_t bit(Tag t) { return static_cast<std::uint16_t>(1u << t); }
constexpr std::uint16_t kUnsigned = bit(kU), kLabel = bit(kF), kAtomOp = bit(kA), kRegister = bit(kX) | bit(kY);
struct OperandKind {
  std::uint8_t opcode;
  std::uint8_t position;
  std::uint16_t allowed;
};
constexpr OperandKind kOperandKinds[] = {
    {opcode_of("func_info"), 0, kAtomOp},   {opcode_of("func_info"), 1, kAtomOp},
    {opcode_of("func_info"), 2, kUnsigned}, {opcode_of("call"), 0, kUnsigned},
    {opcode_of("call"), 1, kLabel},         {opcode_of("call_last"), 0, kUnsigned},
    {opcode_of("call_last"), 1, kLabel},    {opcode_of("call_last"), 2, kUnsigned},
    {opcode_of("call_only"), 0, kUnsigned}, {opcode_of("call_only"), 1, kLabel},
    {opcode_of("call_ext"), 0, kUnsigned},  {opcode_of("call_ext_last"), 0, kUnsigned},
    {opcode_of("call_ext_last"), 2, kUnsigned}, {opcode_of("call_ext_only"), 0, kUnsigned},
    {opcode_of("allocate"), 0, kUnsigned},  {opcode_of("allocate"), 1, kUnsigned},
    {opcode_of("allocate_zero"), 0, kUnsigned}, {opcode_of("allocate_zero"), 1, kUnsigned},
    {opcode_of("deallocate"), 0, kUnsigned}, {opcode_of("jump"), 0, kLabel},
    {opcode_of("line"), 0, kUnsigned},      {opcode_of("move"), 1, kRegister},
    {opcode_of("move"), 0, static_cast<std::uint16_t>(kRegister | kAtomOp | bit(kI) | bit(kLiteral))},
};

// Every test instruction (is_integer, is_eq_exact, ..., test_arity) starts with its fail label.
constexpr bool is_test(std::uint8_t opcode) {
  const std::string_view name = kGenericOps[opcode].name;
  return name.substr(0, 3) == "is_" || name == "test_arity";
}

// kOperandKinds, kIndexOperands and is_test folded into one table indexed by opcode and
// operand position (every constrained position is < kConstrained), built at compile time.
constexpr std::size_t kConstrained = 4;
struct OpRules {
  std::uint16_t allowed[kConstrained];  // operand kinds allowed at that position
  std::uint8_t index[kConstrained];     // 0: none, 1: an ImpT index, 2: a FunT index
};
struct OpRuleTable {
  OpRules op[kMaxGenericOpcode + 1];
};
constexpr OpRuleTable make_rules() {
  OpRuleTable t{};
  for (std::uint32_t o = 0; o <= kMaxGenericOpcode; ++o) {
    for (std::size_t i = 0; i < kConstrained; ++i) {
      t.op[o].allowed[i] = 0xffff;
      t.op[o].index[i] = 0;
    }
  }
  // Reverse order so that the first matching entry wins, as the linear search did.
  for (std::size_t k = std::size(kOperandKinds); k-- > 0;) {
    t.op[kOperandKinds[k].opcode].allowed[kOperandKinds[k].position] = kOperandKinds[k].allowed;
  }
  for (std::uint32_t o = 1; o <= kMaxGenericOpcode; ++o) {
    if (is_test(static_cast<std::uint8_t>(o))) t.op[o].allowed[0] = bit(kF);
  }
  for (std::size_t k = std::size(kIndexOperands); k-- > 0;) {
    t.op[kIndexOperands[k].opcode].index[kIndexOperands[k].position] = kIndexOperands[k].lambda ? 2 : 1;
  }
  return t;
}
constexpr OpRuleTable kRules = make_rules();
static_assert([] {
  for (const OperandKind& k : kOperandKinds) {
    if (k.position >= kConstrained) return false;
  }
  for (const IndexOperand& x : kIndexOperands) {
    if (x.position >= kConstrained) return false;
    for (const IndexOperand& y : kIndexOperands) {
      if (&x != &y && x.opcode == y.opcode && x.position == y.position) return false;
    }
  }
  return true;
}());

class CodeChecker {
 public:
  CodeChecker(const Tables& t) : t_(t), r_(t.code, t.code_offset), defined_(std::min<std::size_t>(t.label_count, t.code.size() + 1), false) {}

  // Returns true when the only failure is an opcode the table does not know.
  Check run(bool& unknown_opcode) {
    unknown_opcode = false;
    if (t_.max_opcode > kMaxGenericOpcode) {
      unknown_opcode = true;
      return fail("Code", t_.code_offset - 12,
                  "compiled for a later runtime: highest opcode " + std::to_string(t_.max_opcode) +
                      ", OTP 25 knows up to " + std::to_string(kMaxGenericOpcode));
    }
    std::uint32_t functions = 0;
    for (;;) {
      Op op;
      if (!next(op, unknown_opcode)) return tl::unexpected(std::move(err_));
      if (op.opcode == 3 /* int_code_end */) break;
      if (op.opcode != 1 /* label */) continue;
      // beamcodereader_next: label [line] func_info must be followed by its entry label.
      Op after;
      if (!next(after, unknown_opcode)) return tl::unexpected(std::move(err_));
      if (after.opcode == kLine) {
        if (!next(after, unknown_opcode)) return tl::unexpected(std::move(err_));
      }
      if (after.opcode == 3) return fail("Code", after.offset, "the code ends right after a label");
      if (after.opcode == 1) {
        // Another label: handled as the start of the next group.
        pending_label_ = after;
        continue;
      }
      if (after.opcode == kFuncInfo) {
        if (++functions > t_.function_count) {
          return fail("Code", after.offset, "more functions than the header's " + std::to_string(t_.function_count));
        }
        Op entry;
        if (!next(entry, unknown_opcode)) return tl::unexpected(std::move(err_));
        if (entry.opcode != 1) return fail("Code", entry.offset, "func_info is not followed by its entry label");
      }
    }
    if (functions != t_.function_count) {
      return fail("Code", t_.code_offset - 4, "the header declares " + std::to_string(t_.function_count) +
                                                  " functions, the code defines " + std::to_string(functions));
    }
    return {};
  }

  bool label_defined(std::uint64_t label) const { return label < defined_.size() && defined_[label]; }
  // An on_load instruction was read (the compiler emits one, in the -on_load function).
  bool on_load() const { return on_load_; }

 private:
  static constexpr std::uint8_t kLine = 153, kFuncInfo = 2, kOnLoad = opcode_of("on_load");
  static_assert(kOnLoad == 149);

  // Records a failure for run() to return; always false.
  bool bad(tl::unexpected<Fail> f) {
    err_ = std::move(f.value());
    return false;
  }

  // The common operands checked inline; false sends the operand to operand() (an
  // extended one, or one that fails there with its message).
  bool simple_operand(const Tagged& a) const {
    switch (a.tag) {
      case kU:
        return true;
      case kI:
        return a.big.empty();
      case kA:
        return a.value == 0 || a.value < t_.atom_count;
      case kF:
        return a.value == 0 || a.value < t_.label_count;
      case kX:
      case kY:
        return a.value < kMaxReg;
      default:
        return false;
    }
  }

  bool next(Op& op, bool& unknown_opcode) {
    if (pending_label_) {
      op = *pending_label_;
      pending_label_.reset();
      return true;
    }
    op.offset = r_.offset();
    if (!r_.u8(op.opcode)) return bad(fail("Code", op.offset, "the code ends without int_code_end"));
    if (op.opcode == 0 || op.opcode > kMaxGenericOpcode) {
      unknown_opcode = true;
      return bad(fail("Code", op.offset, "unknown opcode " + std::to_string(op.opcode)));
    }
    // The loader marks the module for its on_load function at any on_load instruction
    // (emu_load.c # op_on_load, the JIT's emit_on_load); a second one is not an error there,
    // it only moves the mark.
    if (op.opcode == kOnLoad) on_load_ = true;
    const GenericOp& g = kGenericOps[op.opcode];
    if (g.obsolete) {
      return bad(fail("Code", op.offset, std::string("obsolete instruction ") + g.name + ": please re-compile this module"));
    }
    const OpRules& rules = kRules.op[op.opcode];
    std::size_t arity = g.arity;
    // The first operand's kind and value, for labels. Kept as two scalars, not a copy of
    // the Tagged: a wide copy of a struct just written field by field stalls on
    // store-to-load forwarding, which was a large part of the whole check.
    std::uint8_t first_tag = 0;
    std::uint64_t first_value = 0;
    for (std::size_t i = 0; i < arity; ++i) {
      const std::uint64_t at = r_.offset();
      Tagged a;
      if (!read_tagged(r_, a)) return bad(fail("Code", at, std::string(g.name) + ": operand runs past the end of the code"));
      if (!simple_operand(a) && !operand(a, i, arity)) return bad(fail("Code", at, std::string(g.name) + ": " + why_));
      if (i == 0) {
        first_tag = a.tag;
        first_value = a.value;
      }
      if (i >= kConstrained) continue;
      if ((rules.allowed[i] & (1u << a.tag)) == 0) {
        return bad(fail("Code", at, std::string(g.name) + ": operand " + std::to_string(i + 1) + " has the wrong kind"));
      }
      if (const std::uint8_t x = rules.index[i]) {
        const bool lambda = x == 2;
        const std::size_t limit = lambda ? t_.lambda_count : t_.import_count;
        if (a.tag != kU || a.value >= limit) {
          return bad(fail("Code", at, std::string(g.name) + ": " + (lambda ? "fun" : "import") + " index " +
                                      std::to_string(a.value) + " out of range"));
        }
      }
    }
    if (op.opcode == 1) {
      const std::uint64_t label = first_value;
      if (first_tag != kU || label == 0 || label >= t_.label_count) {
        return bad(fail("Code", op.offset, "label " + std::to_string(label) + " out of range 1.." +
                                           std::to_string(t_.label_count ? t_.label_count - 1 : 0)));
      }
      // Sized lazily: a hostile header's label count costs nothing until labels use it.
      if (label >= defined_.size()) defined_.resize(static_cast<std::size_t>(label) + 1, false);
      if (defined_[label]) return bad(fail("Code", op.offset, "label " + std::to_string(label) + " defined twice"));
      defined_[label] = true;
    }
    return true;
  }

  // One operand (beamcodereader_read_next's switch); `arity` grows with an argument list.
  [[gnu::noinline]] bool operand(Tagged& a, std::size_t i, std::size_t& arity) {
    auto bad = [&](std::string why) {
      why_ = std::move(why);
      return false;
    };
    switch (a.tag) {
      case kU:
      case kO:
        return true;
      case kI:
        if (!a.big.empty() && !normalized_bignum(a.big)) return bad("integer operand is not normalized");
        return true;
      case kA:
        if (a.value != 0 && a.value >= t_.atom_count) return bad("atom index " + std::to_string(a.value) + " out of range");
        return true;
      case kF:
        if (a.value != 0 && a.value >= t_.label_count) return bad("label " + std::to_string(a.value) + " out of range");
        return true;
      case kX:
      case kY:
        if (a.value >= kMaxReg) return bad("register " + std::to_string(a.value) + " out of range");
        return true;
      case kZ: break;
      default:
        return bad("unrecognized operand tag " + std::to_string(a.tag));
    }
    Tagged b;
    switch (a.value) {
      case 1:  // an argument list: the last operand; its elements follow as operands
        if (i + 1 != arity) return bad("argument list is not the last operand");
        if (!read_tagged(r_, b) || b.tag != kU) return bad("bad argument list length");
        if (b.value > t_.code.size()) return bad("argument list longer than the code");
        arity += static_cast<std::size_t>(b.value);
        a.tag = kList;
        return true;
      case 2:  // a float register
        if (!read_tagged(r_, b) || b.tag != kU || b.value >= kMaxReg) return bad("bad float register");
        a.tag = kFloatReg;
        return true;
      case 3: {  // an allocation list: up to 3 {kind, count} pairs
        if (!read_tagged(r_, b) || b.tag != kU || b.value > 3) return bad("bad allocation list");
        for (std::uint64_t k = 0; k < b.value; ++k) {
          Tagged kind, n;
          if (!read_tagged(r_, kind) || kind.tag != kU || !read_tagged(r_, n) || n.tag != kU) return bad("bad allocation list");
          if (kind.value > 2) return bad("invalid allocation tag");
          if (n.value > 0x7fffffffu / 8) return bad("allocation count out of range");
        }
        a.tag = kAllocList;
        return true;
      }
      case 4:  // a literal
        if (!read_tagged(r_, b) || b.tag != kU || b.value >= t_.literal_count) return bad("literal index out of range");
        a.tag = kLiteral;
        return true;
      case 5: {  // a register with a type hint
        Tagged idx;
        if (!read_tagged(r_, b) || (b.tag != kX && b.tag != kY) || !read_tagged(r_, idx) || idx.tag != kU) {
          return bad("bad typed register");
        }
        if (b.value >= kMaxReg) return bad("register out of range");
        if (!t_.types_fallback && idx.value >= t_.type_count) return bad("type index out of range");
        a.tag = b.tag;
        return true;
      }
      case 0:
        return bad("floating point operand (superseded in OTP R16B)");
      default:
        return bad("unrecognized extended tag " + std::to_string(a.value));
    }
  }

  const Tables& t_;
  ByteReader r_;
  std::vector<bool> defined_;
  std::string why_;
  Fail err_;
  std::optional<Op> pending_label_;
  bool on_load_ = false;
};

}  // namespace

namespace internal {

// A strict parse checks what beamfile_read checks before the literals: Code header, atoms,
// imports, exports, funs. The module name is atom #1 of AtU8.
ImageResult<void> check_strict_tables(Image::Rep& rep) {
  Tables t;
  if (auto ok = check_tables(rep, t, /*full=*/false); !ok) {
    const Fail& f = ok.error();
    const bool missing = f.why.rfind("no ", 0) == 0;
    const bool obsolete = f.chunk == "Atom";
    return tl::unexpected(make_error(f.limit ? ErrorKind::kLimitExceeded
                                     : missing ? ErrorKind::kMissingChunk
                                     : obsolete ? ErrorKind::kNotLoadable
                                                : ErrorKind::kInvalidChunk,
                                     rep.file, f.chunk, f.offset, f.why));
  }
  AtomsRef holder;
  atoms_of(rep, *present(rep, "AtU8"), true, holder);
  rep.module = holder.get()->name(1);
  return {};
}

}  // namespace internal

Image::LoadVerdict Image::check_loadable() const {
  LoadVerdict v;
  // The loader's container rules apply whatever this image was parsed with.
  std::shared_ptr<const Rep> strict = rep_;
  if (rep_->strictness != Strictness::kStrict) {
    auto shared = internal::parse_strict_shared(*rep_);
    if (!shared) {
      v.reason = shared.error().to_string();
      return v;
    }
    strict = std::move(*shared);
  }
  const Rep& rep = *strict;
  Tables t;
  if (auto ok = check_tables(rep, t, /*full=*/true); !ok) {
    v.reason = make_error(ErrorKind::kNotLoadable, rep.file, ok.error().chunk, ok.error().offset, ok.error().why).to_string();
    return v;
  }
  CodeChecker code(t);
  bool unknown_opcode = false;
  if (auto ok = code.run(unknown_opcode); !ok) {
    v.opcode_only = unknown_opcode;
    v.reason = make_error(ErrorKind::kNotLoadable, rep.file, ok.error().chunk, ok.error().offset, ok.error().why).to_string();
    return v;
  }
  v.loadable = true;
  v.on_load = code.on_load();
  return v;
}

}  // namespace codestore::image

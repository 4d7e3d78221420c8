// Internals of the loader's verdict shared by loadable_tables.cpp (beamfile_read's table
// checks) and loadable_code.cpp (the generic instruction stream): the loader's tables,
// the compact term encoding, failures.
//
// Thread safety: free functions over immutable values; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "image/byte_reader.h"
#include "image/image_internal.h"

namespace codestore::image::internal::verdict {

struct GenericOp {
  const char* name;
  std::uint8_t arity;
  bool obsolete;
};
#include "image/opcodes.inc"

constexpr std::uint64_t kMaxReg = 1024;       // erl_vm.h # MAX_REG
constexpr std::uint32_t kMaxArg = 255;        // erl_vm.h # MAX_ARG
constexpr std::int32_t kItemLimit = 1 << 30;  // beam_file.c # CHECK_ITEM_COUNT's 1 GB
constexpr std::uint32_t kTypesVersion = 1;    // beam_types.h (OTP 25)
constexpr std::size_t kTypeEntrySize = 18;    // u16 type bits, i64 min, i64 max

enum Tag : std::uint8_t {
  kU = 0,
  kI = 1,
  kA = 2,
  kX = 3,
  kY = 4,
  kF = 5,
  kH = 6,
  kZ = 7,
  kO = 8,  // a u/a/x/... value too large for a word
  // What an extended (z) operand turned out to be; a typed register becomes kX or kY.
  kList = 9,
  kFloatReg = 10,
  kAllocList = 11,
  kLiteral = 12,
};

// The loader's view of an image (beamfile_read's results the code is checked against).
using Tables = LoaderTables;

struct Fail {
  std::string chunk;
  std::uint64_t offset = 0;
  std::string why;
  bool limit = false;  // a hard limit of ours, not damage
};

using Check = tl::expected<void, Fail>;
inline tl::unexpected<Fail> fail(std::string_view chunk, std::uint64_t offset, std::string why) {
  return tl::unexpected(Fail{std::string(chunk), offset, std::move(why)});
}

inline const Chunk* last(const Image::Rep& rep, std::string_view id) {
  const Chunk* c = nullptr;
  for (const Chunk& k : rep.chunks) {
    if (k.id_view() == id) c = &k;
  }
  return c;
}

// The loader treats an empty chunk as a missing one.
inline const Chunk* present(const Image::Rep& rep, std::string_view id) {
  const Chunk* c = last(rep, id);
  return c && c->size > 0 ? c : nullptr;
}

// beam_file.c # beamreader_read_tagged: the compact term encoding.
struct Tagged {
  std::uint8_t tag = 0;
  std::uint64_t value = 0;
  Bytes big;  // the value's bytes when it does not fit a word (tags i and o)
};

// The long form (3 or more value bytes), after the first byte `b`.
bool read_tagged_long(ByteReader& r, Tagged& t, std::uint8_t b);

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

// beam_file.c # beamfile_read's checks up to the fun table (parse_code_chunk's header,
// parse_atom_chunk, parse_import_chunk, parse_export_table, parse_lambda_chunk): what a
// strict parse applies. Fills the Code header, atom, import and lambda fields of `t`.
Check check_table_heads(const Image::Rep& rep, Tables& t);

// The rest of beamfile_read, after check_table_heads passed: parse_literal_chunk,
// parse_line_chunk, parse_type_chunk, the Attr and CInf terms, FunT's length. Fills the
// literal and type fields of `t`.
Check check_table_rest(const Image::Rep& rep, Tables& t);

// How many times check_table_heads ran on this thread (tests hold it to once per strict image).
std::uint64_t table_head_checks() noexcept;

}  // namespace codestore::image::internal::verdict

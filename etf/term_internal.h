// Internals of the external term format codec shared by etf/*.cpp and the image reader.
//
// Thread safety: free functions over immutable values; thread-safe.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::etf::internal {

// The ETF tags (erts/emulator/beam/external.h).
enum Tag : std::uint8_t {
  kVersion = 131,
  kNewFloat = 70,
  kBitBinary = 77,
  kCompressed = 80,
  kNewPid = 88,
  kNewPort = 89,
  kNewerReference = 90,
  kSmallInteger = 97,
  kInteger = 98,
  kFloat = 99,
  kAtom = 100,
  kReference = 101,
  kPort = 102,
  kPid = 103,
  kSmallTuple = 104,
  kLargeTuple = 105,
  kNil = 106,
  kString = 107,
  kList = 108,
  kBinary = 109,
  kSmallBig = 110,
  kLargeBig = 111,
  kNewFun = 112,
  kExport = 113,
  kNewReference = 114,
  kSmallAtom = 115,
  kMap = 116,
  kAtomUtf8 = 118,
  kSmallAtomUtf8 = 119,
  kV4Port = 120,
};

// Decodes one term *without* the version byte from the front of `bytes`; on success
// `*consumed` is the number of bytes it took. COMPRESSED is not accepted here (it only
// appears right after the version byte). Error offsets are relative to `bytes` plus
// `base_offset`.
Result<Term> decode_prefix(std::span<const std::uint8_t> bytes, std::size_t* consumed,
                           const DecodeLimits& limits = DecodeLimits(), std::size_t base_offset = 0);

// Erlang's term order in its exact form: the order of map keys (every integer before every
// float, so 1 < 1.0); 0 exactly when =:=. Returns <0, 0, >0.
// number < atom < reference < fun < port < pid < tuple < map < [] < list < bitstring.
int compare(const Term& a, const Term& b);

// Erlang's standard term order (<, lists:sort/1): as compare, but numbers compare by value
// (1 == 1.0 gives 0; 1 < 1.5 < 2). Map keys inside maps still compare exactly.
int compare_order(const Term& a, const Term& b);

// An opaque term's bytes with nested terms written as {minor_version, 2} writes them (its
// raw bytes if they do not parse): equal pids, ports, refs and funs give equal bytes.
std::vector<std::uint8_t> canonical_opaque(const Opaque& o);

// Term text for files Erlang reads with file:consult/1 (release_handler's RELEASES, the
// store's own term files), as io_lib writes them with ~tp: an atom quoted where Erlang
// quotes it, a string (UTF-8) as "..." with io_lib:write_string/1's escapes.
std::string atom_text(std::string_view name);
std::string string_text(std::string_view utf8);

// systools_make:string_p/1: a flat list of Unicode code points ([] included), as UTF-8;
// nullopt for anything else (what consult gives for "...").
std::optional<std::string> string_of(const Term& t);

}  // namespace codestore::etf::internal

// Bytes as lowercase hex: module MD5s (beam_lib:md5/1 printed), blob SHA-256s, migration
// checksums.
//
// Thread safety: a pure function; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace codestore::base {

// Two lowercase hex digits per byte, in order: {0x0a, 0xff} -> "0aff".
std::string hex(std::span<const std::uint8_t> bytes);

}  // namespace codestore::base

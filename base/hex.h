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

// The value of one hex digit (either case), or -1 for any other character.
constexpr int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace codestore::base

// JSON and text helpers shared by the command groups (README.md's conventions): binary
// strings such as chunk ids, and atoms that are not UTF-8, go into JSON with one code point per byte
// (U+0000–U+00FF), so every byte survives and the document stays valid UTF-8.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/utf8.h"

namespace codestore::cli {

// is_utf8(s): well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
// next_code_point(s, i): the character at s[i] (i < s.size()) and its length in bytes; a
// byte that does not start well-formed UTF-8 stands for itself, length 1, so that any
// string can be walked. Both are base's (base/utf8.h).
using base::is_utf8;
using base::next_code_point;

// Each byte as the code point of the same value, encoded as UTF-8: for chunk ids and other
// raw bytes. "AtU8" stays "AtU8"; byte 0xE9 becomes U+00E9.
std::string bytes_to_json_string(std::string_view bytes);

// Text that ought to be UTF-8 (atoms from AtU8, Erlang term text): returned as is when it
// is, else byte by byte as bytes_to_json_string does.
std::string text_to_json_string(std::string_view text);

// Columns a terminal gives `s`: East Asian wide and fullwidth characters 2, combining marks
// and zero-width characters 0, every other character (or stray byte) 1.
std::size_t display_width(std::string_view s) noexcept;

// For people: printable ASCII as is, every other byte as \xHH (chunk ids in tables).
std::string printable_bytes(std::string_view bytes);

}  // namespace codestore::cli

// JSON helpers shared by the command groups (README.md's conventions): binary strings such as chunk
// ids, and atoms that are not UTF-8, go into JSON with one code point per byte
// (U+0000–U+00FF), so every byte survives and the document stays valid UTF-8.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace codestore::cli {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_utf8(std::string_view s) noexcept;

// Each byte as the code point of the same value, encoded as UTF-8: for chunk ids and other
// raw bytes. "AtU8" stays "AtU8"; byte 0xE9 becomes U+00E9.
std::string bytes_to_json_string(std::string_view bytes);

// Text that ought to be UTF-8 (atoms from AtU8, Erlang term text): returned as is when it
// is, else byte by byte as bytes_to_json_string does.
std::string text_to_json_string(std::string_view text);

// For people: printable ASCII as is, every other byte as \xHH (chunk ids in tables).
std::string printable_bytes(std::string_view bytes);

}  // namespace codestore::cli

// UTF-8 as erts reads and writes it: the one implementation the term codec, the image
// reader, the boot-server protocol and the CLI share.
//
// Well-formed means what erts accepts in an AtU8 atom or a UTF-8 atom: no overlong forms,
// no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
//
// Thread safety: pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codestore::base {

// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF) to `out`.
void append_utf8(std::string& out, std::uint32_t cp);

// Decodes the well-formed UTF-8 sequence at s[i] (i < n): its length with its code point in
// `*cp`, or 0 when the bytes there are not one.
std::size_t utf8_one(const unsigned char* s, std::size_t n, std::size_t i, std::uint32_t* cp) noexcept;

// True when all of `bytes` is well-formed UTF-8.
bool is_utf8(std::span<const std::uint8_t> bytes) noexcept;
bool is_utf8(std::string_view s) noexcept;

// The character at s[i] (i < s.size()) and its length in bytes. A byte that does not start a
// well-formed sequence stands for itself (as a Latin-1 code point), length 1, so any string
// can be walked: Erlang's unicode file name mode reads names this way.
std::pair<std::uint32_t, std::size_t> next_code_point(std::string_view s, std::size_t i) noexcept;

// Every character of `s` as next_code_point reads them. The second form reuses `out`'s
// storage (it is cleared first): for loops over many names.
std::vector<std::uint32_t> code_points(std::string_view s);
void code_points(std::string_view s, std::vector<std::uint32_t>& out);

// Each byte as the code point of the same value (Latin-1), encoded as UTF-8: byte 0xE9
// becomes U+00E9; ASCII stays as it is.
std::string latin1_to_utf8(std::span<const std::uint8_t> bytes);
std::string latin1_to_utf8(std::string_view bytes);

}  // namespace codestore::base

#include "json_util.h"

#include <fmt/format.h>

#include <cstdint>
#include <iterator>

namespace codestore::cli {

namespace {

struct Range {
  std::uint32_t lo, hi;
};

// Markus Kuhn's wcwidth() tables, abridged: the wide (2 columns) and the zero-width ranges.
constexpr Range kWide[] = {{0x1100, 0x115F},   {0x2329, 0x232A},  {0x2E80, 0x303E},   {0x3040, 0xA4CF},
                           {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},  {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},
                           {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},  {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF},
                           {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}};
constexpr Range kZero[] = {{0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD},
                           {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F},
                           {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}};

bool in(const Range* begin, const Range* end, std::uint32_t cp) {
  for (const Range* r = begin; r != end; ++r) {
    if (cp >= r->lo && cp <= r->hi) return true;
  }
  return false;
}

}  // namespace

std::size_t display_width(std::string_view s) noexcept {
  std::size_t width = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto [cp, len] = next_code_point(s, i);
    i += len;
    if (in(std::begin(kZero), std::end(kZero), cp)) continue;
    width += in(std::begin(kWide), std::end(kWide), cp) ? 2 : 1;
  }
  return width;
}

std::string bytes_to_json_string(std::string_view bytes) {
  return base::latin1_to_utf8(bytes);
}

std::string text_to_json_string(std::string_view text) {
  return is_utf8(text) ? std::string(text) : bytes_to_json_string(text);
}

std::string printable_bytes(std::string_view bytes) {
  std::string out;
  for (char ch : bytes) {
    auto c = static_cast<std::uint8_t>(ch);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(ch);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

}  // namespace codestore::cli

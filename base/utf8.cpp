#include "base/utf8.h"

namespace codestore::base {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::size_t utf8_one(const unsigned char* s, std::size_t n, std::size_t i, std::uint32_t* cp) noexcept {
  unsigned c = s[i];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  std::size_t len;
  std::uint32_t v, min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i + k] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

bool is_utf8(std::span<const std::uint8_t> bytes) noexcept {
  const unsigned char* s = bytes.data();
  for (std::size_t i = 0; i < bytes.size();) {
    if (s[i] < 0x80) {  // the common case, without a call
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t n = utf8_one(s, bytes.size(), i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool is_utf8(std::string_view s) noexcept {
  return is_utf8(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

std::pair<std::uint32_t, std::size_t> next_code_point(std::string_view s, std::size_t i) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::uint32_t cp = 0;
  const std::size_t len = utf8_one(p, s.size(), i, &cp);
  if (len == 0) return {p[i], 1};
  return {cp, len};
}

void code_points(std::string_view s, std::vector<std::uint32_t>& out) {
  out.clear();
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto [cp, len] = next_code_point(s, i);
    out.push_back(cp);
    i += len;
  }
}

std::vector<std::uint32_t> code_points(std::string_view s) {
  std::vector<std::uint32_t> out;
  code_points(s, out);
  return out;
}

std::string latin1_to_utf8(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::uint8_t c : bytes) append_utf8(out, c);
  return out;
}

std::string latin1_to_utf8(std::string_view bytes) {
  return latin1_to_utf8(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace codestore::base

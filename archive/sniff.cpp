#include "archive/sniff.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

namespace codestore::archive::internal {

namespace {

bool starts_with(std::span<const std::uint8_t> b, std::string_view magic) {
  return b.size() >= magic.size() &&
         std::equal(magic.begin(), magic.end(), b.begin(),
                    [](char m, std::uint8_t c) { return static_cast<std::uint8_t>(m) == c; });
}

}  // namespace

bool is_gzip(std::span<const std::uint8_t> bytes) noexcept {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

bool is_zip(std::span<const std::uint8_t> bytes) noexcept {
  using namespace std::string_view_literals;
  return starts_with(bytes, "PK\x03\x04"sv) || starts_with(bytes, "PK\x05\x06"sv);
}

std::optional<ZipEnd> find_zip_end(std::span<const std::uint8_t> bytes) noexcept {
  constexpr std::size_t kRecord = 22;  // the record without its comment
  if (bytes.size() < kRecord) return std::nullopt;
  const auto le16 = [&](std::size_t at) {
    return static_cast<std::uint16_t>(bytes[at] | bytes[at + 1] << 8);
  };
  const std::size_t lowest = bytes.size() - kRecord > 0xffff ? bytes.size() - kRecord - 0xffff : 0;
  for (std::size_t at = bytes.size() - kRecord + 1; at-- > lowest;) {
    if (bytes[at] == 'P' && bytes[at + 1] == 'K' && bytes[at + 2] == 5 && bytes[at + 3] == 6 &&
        at + kRecord + le16(at + 20) == bytes.size())
      return ZipEnd{at, le16(at + 10)};
  }
  return std::nullopt;
}

Sniffed sniff(std::span<const std::uint8_t> head, std::uint64_t total) {
  using namespace std::string_view_literals;
  if (total == 0) return {Code::kInvalidArgument, "an empty file"};
  struct Magic {
    std::string_view bytes;
    std::string_view what;
  };
  static constexpr Magic kOther[] = {
      {"BZh"sv, "bzip2-compressed data"},
      {"\xfd"
       "7zXZ\x00"sv,
       "xz-compressed data"},
      {"\x28\xb5\x2f\xfd"sv, "zstd-compressed data"},
      {"\x5d\x00\x00"sv, "lzma-compressed data"},
      {"\x04\x22\x4d\x18"sv, "lz4-compressed data"},
      {"7z\xbc\xaf\x27\x1c"sv, "a 7-Zip archive"},
      {"Rar!\x1a\x07"sv, "a RAR archive"},
      {"!<arch>\n"sv, "an ar archive (a .deb or a static library)"},
  };
  for (const auto& m : kOther) {
    if (starts_with(head, m.bytes)) return {Code::kNotSupported, std::string(m.what)};
  }
  if (head.size() >= 12 && starts_with(head, "FOR1"sv) && starts_with(head.subspan(8), "BEAM"sv))
    return {Code::kInvalidArgument, "a BEAM file (one Erlang module)"};
  if (starts_with(head,
                  "\x7f"
                  "ELF"sv))
    return {Code::kInvalidArgument, "an ELF executable or library"};
  if (head.size() >= 262 && starts_with(head.subspan(257), "ustar"sv))
    return {Code::kCorruption, "a tar archive whose first header is damaged (its checksum does not match)"};
  if (starts_with(head, "PK"sv))
    return {Code::kCorruption, "the start of a zip archive without its end (truncated?)"};
  const std::size_t n = std::min<std::size_t>(head.size(), 48);
  const bool text = std::all_of(
      head.begin(), head.begin() + static_cast<std::ptrdiff_t>(n),
      [](std::uint8_t c) { return c == '\n' || c == '\r' || c == '\t' || (c >= 0x20 && c < 0x7f); });
  std::string shown;
  if (text) {
    for (std::size_t i = 0; i < n; ++i)
      shown += head[i] == '\n' || head[i] == '\r' || head[i] == '\t' ? ' ' : char(head[i]);
    return {Code::kInvalidArgument, fmt::format("text (\"{}{}\")", shown, n < total ? "..." : "")};
  }
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 16); ++i)
    fmt::format_to(std::back_inserter(shown), "{:s}{:02x}", i ? " " : "", head[i]);
  return {Code::kInvalidArgument, fmt::format("{} bytes starting with {}", total, shown)};
}

}  // namespace codestore::archive::internal

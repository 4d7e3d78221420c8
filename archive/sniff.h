// What bytes that are not a tar, tar.gz or zip archive look like, for the message that
// refuses them ("xz-compressed data", "a BEAM file (one Erlang module)", "text: ..."), and
// which Code fits (kNotSupported for another archive format or compressor).
//
// Thread safety: a pure function; thread-safe.
#pragma once

#include <codestore/status.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace codestore::archive::internal {

struct Sniffed {
  Code code;
  std::string description;
};

// `head`: the first bytes (up to a few hundred are looked at); `total`: the whole size.
Sniffed sniff(std::span<const std::uint8_t> head, std::uint64_t total);

bool is_gzip(std::span<const std::uint8_t> bytes) noexcept;
// A local file header or an empty archive's end of central directory at offset 0.
bool is_zip(std::span<const std::uint8_t> bytes) noexcept;

// The zip's end of central directory record: the last one whose comment ends exactly at the
// end of `bytes`. libarchive takes a record whose comment runs past the end, so a zip cut
// inside its comment would read as whole; this is the check that it is not.
struct ZipEnd {
  std::size_t offset;           // of the record
  std::uint16_t total_entries;  // 0xffff: see the zip64 record
};
std::optional<ZipEnd> find_zip_end(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace codestore::archive::internal

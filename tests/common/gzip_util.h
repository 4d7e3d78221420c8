// gzip-wrapped module images for tests, with zlib itself rather than the library under test:
// gzip as zlib:gzip/1 writes it, gunzip as zlib:gunzip/1 reads it, and gzip-wrapped copies of
// installed images as Debian's erlang-idna installs its .beam files, so that every machine
// tests what a machine with such packages sees.
//
// Thread safety: free functions over values; thread-safe.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "support/files.h"

namespace codestore::testing {

// Starts with the gzip magic (0x1f 0x8b): the loader and beam_lib gunzip such bytes.
inline bool is_gzip(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// One gzip member, default level, as zlib:gzip/1 writes it.
inline std::vector<std::uint8_t> gzip_bytes(std::span<const std::uint8_t> bytes) {
  z_stream zs{};
  std::vector<std::uint8_t> out;
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return out;
  out.resize(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 32);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// The inflated bytes of one or more gzip members; nullopt when they are not whole gzip.
inline std::optional<std::vector<std::uint8_t>> gunzip_bytes(std::span<const std::uint8_t> bytes) {
  if (!is_gzip(bytes)) return std::nullopt;
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  std::vector<std::uint8_t> out;
  std::uint8_t buf[65536];
  int rc = Z_OK;
  for (;;) {
    zs.next_out = buf;
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), buf, buf + (sizeof buf - zs.avail_out));
    if (rc == Z_STREAM_END && zs.avail_in > 0 && inflateReset(&zs) == Z_OK) continue;  // another member
    if (rc != Z_OK) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

// The IFF bytes of an image file: its bytes, inflated when gzip-wrapped (what beam_lib and
// the loader read). nullopt for bad gzip.
inline std::optional<std::vector<std::uint8_t>> unwrapped_image(const std::filesystem::path& path) {
  std::vector<std::uint8_t> bytes = read_file(path);
  if (!is_gzip(bytes)) return bytes;
  return gunzip_bytes(bytes);
}

// Gzip-wrapped copies of every `step`-th of `files` (starting with the first), written as
// `<dir>/<app>/ebin/<name>.beam` the way Debian's erlang-idna installs its images. An image
// that is already gzip-wrapped is copied as it is. Returns the copies' paths, in order.
inline std::vector<std::string> gzipped_copies(const std::vector<std::string>& files, std::size_t step,
                                               const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < files.size(); i += step) {
    const fs::path src = files[i];
    const fs::path dst = dir / src.parent_path().parent_path().filename() / "ebin" / src.filename();
    const std::vector<std::uint8_t> bytes = read_file(src);
    write_file(dst, is_gzip(bytes) ? bytes : gzip_bytes(bytes));
    out.push_back(dst.string());
  }
  return out;
}

}  // namespace codestore::testing

// gzip, read as a stream and checked: libarchive's gzip filter does not check the trailer
// (its source says "XXX TODO: Verify the length and CRC"), so a tar.gz cut inside its
// padding, or with damaged data there, would read as a shorter or different success. zlib
// checks each member's CRC-32 and length (ISIZE) as gzip(1) does.
//
// Thread safety: thread-compatible (one reader per archive read).
#pragma once

#include <codestore/status.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace codestore::archive::internal {

class GzipReader {
 public:
  // `in` must outlive the reader. REQUIRES: `in` starts with the gzip magic (1f 8b).
  explicit GzipReader(std::span<const std::uint8_t> in);
  ~GzipReader();
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  // Up to `n` (> 0) decompressed bytes into `out`: how many, 0 only once the last member has
  // ended with a good trailer and no bytes follow it. Concatenated members are read in turn
  // (as gzip -d and zlib:gunzip/1 do); anything else after a member is an error. Errors are
  // kCorruption ("gzip stream ends early (truncated)", zlib's "incorrect data check"...),
  // without the archive's name; after one, every call fails again.
  Result<std::size_t> read(std::uint8_t* out, std::size_t n);

  // Compressed bytes consumed so far.
  std::uint64_t consumed() const noexcept { return pos_ - avail_in(); }

 private:
  std::size_t avail_in() const noexcept;

  struct Stream;
  std::unique_ptr<Stream> zs_;  // zlib's z_stream, kept out of this header
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;  // bytes of in_ handed to zlib
  bool done_ = false;
  Status failed_;
};

}  // namespace codestore::archive::internal

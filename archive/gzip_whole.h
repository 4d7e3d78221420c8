// gzip inflated whole, by libdeflate: two to three times zlib's speed, which is most of what
// reading a release tarball costs (docs/archives.md, "Speed"). libdeflate works on whole
// buffers, so the output's size must be known first: a gzip member's trailer gives it
// (ISIZE, the size mod 2^32), and libdeflate refuses to write past the buffer it is given
// (LIBDEFLATE_INSUFFICIENT_SPACE), so a trailer that lies never makes it write more.
//
// This is the fast path only. Whatever it does not inflate with every member's CRC-32 and
// ISIZE checked (damage, a cut, bytes after the last member, a size over the bound), it
// leaves to GzipReader (gzip_reader.h), which streams with zlib, counts the limits as bytes
// come out, and says precisely what is wrong ("incorrect data check", "ends early
// (truncated)", ...). So the streaming reader stays the one judge of bad input, and a good
// stream reads to the same bytes either way.
//
// Thread safety: a free function over values the caller owns; thread-safe (each call has its
// own libdeflate decompressor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace codestore::archive::internal {

// Frees what inflate_whole allocated (std::free). Thread safety: stateless; thread-safe.
struct FreeBytes {
  void operator()(std::uint8_t* p) const noexcept;
};

// Inflated bytes: `size` bytes at `data` (not zero-filled first: libdeflate writes them all).
// Thread safety: a value; thread-compatible.
struct Inflated {
  std::unique_ptr<std::uint8_t[], FreeBytes> data;
  std::size_t size = 0;
};

// Above this many times the compressed size, the whole stream is not inflated in one buffer.
// Release tarballs shrink a few times at most (systools' tarball of OTP's own applications:
// 1.25 times); a stream that claims more is sparse, zero-filled or a bomb, and streams
// instead, where the limits are counted as bytes come out: the buffer never exceeds this
// multiple of the file in memory.
inline constexpr std::uint64_t kMaxWholeRatio = 32;
// Nor above this many bytes: the members are copied out of the buffer, so while it lives a
// tarball is held twice; a larger one streams and is held once.
inline constexpr std::uint64_t kMaxWholeBytes = std::uint64_t{1} << 30;

// The gzip stream `in` (one or more members, nothing after them) inflated whole when it holds
// at most min(`bound`, kMaxWholeRatio * in.size(), kMaxWholeBytes) bytes and each member's
// CRC-32 and ISIZE match. The buffer starts at the last member's ISIZE (the whole stream's size when there is
// one member, as every release tool writes) and grows, up to that bound, only for
// concatenated members (while it grows, the smaller one is copied into the larger and freed);
// no buffer over the bound is ever allocated. nullopt otherwise: the caller reads
// `in` with GzipReader, which finds the reason.
// REQUIRES: `in` starts with the gzip magic (1f 8b).
std::optional<Inflated> inflate_whole(std::span<const std::uint8_t> in, std::uint64_t bound);

}  // namespace codestore::archive::internal

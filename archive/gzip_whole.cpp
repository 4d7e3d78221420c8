#include "archive/gzip_whole.h"

#include <libdeflate.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace codestore::archive::internal {

namespace {

struct DecompressorFree {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

// The smallest gzip member: a 10-byte header, an empty deflate block, the 8-byte trailer.
constexpr std::size_t kMinMember = 20;
// Growth for concatenated members: at least this much more each time.
constexpr std::uint64_t kMinGrowth = 1u << 20;

std::uint32_t le32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// Transparent huge pages' size on x86-64 and arm64.
constexpr std::size_t kHugePage = 2u << 20;

// `size` bytes, not zero-filled; null when there is no memory for them (the caller streams).
// Each first write to a page of fresh memory is a page fault, and on a virtual machine a
// fault costs tens of microseconds: 4 KiB pages would cost as much as the inflating saves
// (a 20 MB tar is 5,000 faults). Aligned to huge pages and advised to use them (Debian's
// default THP mode is "madvise"), the same tar takes ten; without THP it stays 4 KiB pages.
std::unique_ptr<std::uint8_t[], FreeBytes> allocate(std::size_t size) {
  if (size < kHugePage)
    return std::unique_ptr<std::uint8_t[], FreeBytes>(
        static_cast<std::uint8_t*>(std::malloc(std::max<std::size_t>(size, 1))));
  const std::size_t rounded = (size + kHugePage - 1) / kHugePage * kHugePage;
  auto* p = static_cast<std::uint8_t*>(std::aligned_alloc(kHugePage, rounded));
  if (p) (void)madvise(p, rounded, MADV_HUGEPAGE);  // advice: refused, nothing changes
  return std::unique_ptr<std::uint8_t[], FreeBytes>(p);
}

}  // namespace

void FreeBytes::operator()(std::uint8_t* p) const noexcept {
  std::free(p);
}

std::optional<Inflated> inflate_whole(std::span<const std::uint8_t> in, std::uint64_t bound) {
  if (in.size() < kMinMember) return std::nullopt;
  const std::uint64_t by_ratio =
      in.size() > UINT64_MAX / kMaxWholeRatio ? UINT64_MAX : in.size() * kMaxWholeRatio;
  bound = std::min({bound, by_ratio, kMaxWholeBytes, std::uint64_t{SIZE_MAX}});
  // The last member's ISIZE: with one member, the whole stream's size (mod 2^32, and a stream
  // of 4 GiB or more exceeds kMaxWholeBytes anyway).
  std::uint64_t room = le32(in.data() + in.size() - 4);
  if (room > bound) return std::nullopt;
  const std::unique_ptr<libdeflate_decompressor, DecompressorFree> d(libdeflate_alloc_decompressor());
  if (!d) return std::nullopt;
  Inflated out;
  out.data = allocate(static_cast<std::size_t>(room));
  if (!out.data) return std::nullopt;
  std::size_t pos = 0;
  while (pos < in.size()) {
    const auto rest = in.subspan(pos);
    // Another member, or bytes after the stream (GzipReader names them).
    if (rest.size() < kMinMember || rest[0] != 0x1f || rest[1] != 0x8b) return std::nullopt;
    std::size_t used_in = 0;
    std::size_t used_out = 0;
    const auto rc =
        libdeflate_gzip_decompress_ex(d.get(), rest.data(), rest.size(), out.data.get() + out.size,
                                      static_cast<std::size_t>(room) - out.size, &used_in, &used_out);
    if (rc == LIBDEFLATE_INSUFFICIENT_SPACE) {
      // Concatenated members (the last one's ISIZE is not the total), or an ISIZE that lies:
      // a larger buffer, up to the bound, and this member again from its start.
      if (room >= bound) return std::nullopt;
      room = std::min(bound, std::max(room * 2, room + kMinGrowth));
      auto larger = allocate(static_cast<std::size_t>(room));
      if (!larger) return std::nullopt;
      if (out.size != 0) std::memcpy(larger.get(), out.data.get(), out.size);
      out.data = std::move(larger);
      continue;
    }
    // LIBDEFLATE_BAD_DATA: damaged, cut short, or a CRC-32 or ISIZE that does not match.
    if (rc != LIBDEFLATE_SUCCESS || used_in == 0) return std::nullopt;
    pos += used_in;
    out.size += used_out;
  }
  return out;
}

}  // namespace codestore::archive::internal

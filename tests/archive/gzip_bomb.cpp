#include "gzip_bomb.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace codestore::testing {

namespace {

using Bytes = std::vector<std::uint8_t>;

// Deflate data for one MiB of zeros, ended by a full flush.
Bytes deflate_zeros_mib(z_stream& zs, const Bytes& mib) {
  Bytes out(deflateBound(&zs, mib.size()) + 64);
  zs.next_in = const_cast<Bytef*>(mib.data());
  zs.avail_in = static_cast<uInt>(mib.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FULL_FLUSH), Z_OK);
  out.resize(static_cast<std::size_t>(zs.next_out - out.data()));  // what deflate wrote
  return out;
}

}  // namespace

Bytes gzip_bomb(const Bytes& prefix, std::uint64_t mib, BombEnd end) {
  static const Bytes zeros(1 << 20, 0);
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(prefix.size() + 1024);
  zs.next_in = const_cast<Bytef*>(prefix.data());
  zs.avail_in = static_cast<uInt>(prefix.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FULL_FLUSH), Z_OK);
  out.resize(static_cast<std::size_t>(zs.next_out - out.data()));  // what deflate wrote
  const Bytes block = deflate_zeros_mib(zs, zeros);
  deflateEnd(&zs);
  for (std::uint64_t i = 0; i < mib; ++i) out.insert(out.end(), block.begin(), block.end());
  if (end == BombEnd::kNever) return out;
  // An empty final block (fixed Huffman codes: BFINAL, BTYPE 01, end-of-block), then the
  // CRC-32 of everything (zlib combines a MiB's CRC without inflating) and ISIZE.
  out.push_back(0x03);
  out.push_back(0x00);
  const uLong crc_mib = crc32(0, zeros.data(), static_cast<uInt>(zeros.size()));
  uLong crc = crc32(0, prefix.data(), static_cast<uInt>(prefix.size()));
  for (std::uint64_t i = 0; i < mib; ++i)
    crc = crc32_combine(crc, crc_mib, static_cast<z_off_t>(zeros.size()));
  const std::uint64_t size = prefix.size() + (mib << 20);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(size >> (8 * i)));
  return out;
}

}  // namespace codestore::testing

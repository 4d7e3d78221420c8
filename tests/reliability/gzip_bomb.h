// A gzip stream of `n` zero bytes, written in pieces so the test never holds `n` bytes:
// the gzip bomb both the image reader's and the store's limit tests feed in.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace codestore::testing {

inline std::vector<std::uint8_t> gzip_of_zeros(std::size_t n) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::uint8_t> zeros(1u << 20, 0), out, buf(1u << 16);
  std::size_t left = n;
  int flush = Z_NO_FLUSH;
  do {
    const std::size_t piece = std::min(left, zeros.size());
    left -= piece;
    flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    zs.next_in = zeros.data();
    zs.avail_in = static_cast<uInt>(piece);
    do {
      zs.next_out = buf.data();
      zs.avail_out = static_cast<uInt>(buf.size());
      deflate(&zs, flush);
      out.insert(out.end(), buf.data(), buf.data() + (buf.size() - zs.avail_out));
    } while (zs.avail_out == 0);
  } while (flush != Z_FINISH);
  deflateEnd(&zs);
  return out;
}

}  // namespace codestore::testing

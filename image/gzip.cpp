// zlib, the way Erlang's zlib module and the loader use it: gunzip (beam_lib and the loader
// unwrap gzip-compressed images), gzip (beam_lib:strip/1 writes its output so) and
// uncompress (the LitT chunk).
#include <zlib.h>

#include <cstring>

#include "image/image_internal.h"

namespace codestore::image::internal {

namespace {
constexpr std::size_t kStep = 64 * 1024;
}

GunzipResult gunzip(Bytes in, std::size_t max_bytes, std::vector<std::uint8_t>& out) {
  out.clear();
  if (in.size() < 2 || in[0] != 0x1f || in[1] != 0x8b) return GunzipResult::kBad;
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return GunzipResult::kBad;
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), UINT32_MAX));
  GunzipResult result = GunzipResult::kBad;
  // zlib:gunzip/1 reads concatenated members; anything else after a member is an error,
  // and so is a member that ends early (a truncated file).
  for (;;) {
    if (out.size() >= max_bytes + 1) {
      result = GunzipResult::kTooBig;
      break;
    }
    const std::size_t old = out.size();
    const std::size_t grow = std::min(kStep + old, max_bytes + 1 - old);  // doubling, capped
    out.resize(old + grow);
    zs.next_out = out.data() + old;
    zs.avail_out = static_cast<uInt>(grow);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + (grow - zs.avail_out));
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) {
        result = out.size() > max_bytes ? GunzipResult::kTooBig : GunzipResult::kOk;
        break;
      }
      if (inflateReset(&zs) != Z_OK) break;
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;
    break;  // Z_BUF_ERROR with output space: the input ended early; others: damage
  }
  inflateEnd(&zs);
  if (result != GunzipResult::kOk) out.clear();
  return result;
}

std::vector<std::uint8_t> gzip(Bytes in) {
  z_stream zs{};
  std::vector<std::uint8_t> out;
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return out;
  out.resize(deflateBound(&zs, static_cast<uLong>(in.size())) + 32);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(rc == Z_STREAM_END ? zs.total_out : 0);
  deflateEnd(&zs);
  return out;
}

bool uncompress_exact(Bytes in, std::size_t size, std::vector<std::uint8_t>& out) {
  out.resize(size);
  uLongf len = static_cast<uLongf>(size);
  // The loader's erl_zlib_uncompress: one zlib stream into a buffer of the declared size;
  // Z_OK only when the stream ends exactly within it.
  const int rc = ::uncompress(out.data(), &len, in.data(), static_cast<uLong>(in.size()));
  if (rc != Z_OK) return false;
  out.resize(len);
  return true;
}

}  // namespace codestore::image::internal

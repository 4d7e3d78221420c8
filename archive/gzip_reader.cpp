#include "archive/gzip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <string>

namespace codestore::archive::internal {

struct GzipReader::Stream {
  z_stream zs{};
  bool open = false;
};

GzipReader::GzipReader(std::span<const std::uint8_t> in) : zs_(std::make_unique<Stream>()), in_(in) {
  // 16 + MAX_WBITS: a gzip wrapper, whose trailer zlib checks.
  if (inflateInit2(&zs_->zs, 16 + MAX_WBITS) == Z_OK) {
    zs_->open = true;
  } else {
    failed_ = Status(Code::kInternal, "gzip: cannot start zlib's inflate");
  }
}

GzipReader::~GzipReader() {
  if (zs_->open) inflateEnd(&zs_->zs);
}

std::size_t GzipReader::avail_in() const noexcept {
  return zs_->zs.avail_in;
}

Result<std::size_t> GzipReader::read(std::uint8_t* out, std::size_t n) {
  if (!failed_.is_ok()) return error(failed_);
  if (done_) return 0;
  z_stream& zs = zs_->zs;
  const uInt want = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
  zs.next_out = out;
  zs.avail_out = want;
  const auto fail = [&](std::string message) -> Result<std::size_t> {
    failed_ = Status(Code::kCorruption, std::move(message));
    return error(failed_);
  };
  while (zs.avail_out == want) {
    // zlib counts input in 32 bits: hand it the archive a gibibyte at a time.
    if (zs.avail_in == 0 && pos_ < in_.size()) {
      const std::size_t step = std::min<std::size_t>(in_.size() - pos_, 1u << 30);
      zs.next_in = const_cast<Bytef*>(in_.data() + pos_);
      zs.avail_in = static_cast<uInt>(step);
      pos_ += step;
    }
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      // The member's CRC-32 and length matched. Another member may follow, nothing else.
      if (zs.avail_in == 0 && pos_ == in_.size()) {
        done_ = true;
        break;
      }
      if (zs.avail_in == 0) continue;  // the next gibibyte holds what follows
      const std::size_t left = zs.avail_in + (in_.size() - pos_);
      if (left >= 2 && zs.next_in[0] == 0x1f && (zs.avail_in >= 2 ? zs.next_in[1] : in_[pos_]) == 0x8b) {
        if (inflateReset(&zs) != Z_OK) return fail("gzip: cannot restart zlib's inflate");
        continue;
      }
      return fail("gzip stream followed by " + std::to_string(left) + " bytes that are not a gzip member");
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && pos_ == in_.size())
      return fail("gzip stream ends early (truncated) after " + std::to_string(in_.size()) + " bytes");
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) continue;  // the next gibibyte comes next round
    if (rc == Z_MEM_ERROR) {
      failed_ = Status(Code::kInternal, "gzip: zlib is out of memory");
      return error(failed_);
    }
    // Z_DATA_ERROR: zlib's reason ("incorrect data check" is a CRC-32 mismatch, "incorrect
    // length check" a wrong ISIZE, "invalid distance too far back"...).
    return fail(std::string("gzip data damaged at compressed byte ") + std::to_string(consumed()) + ": " +
                (zs.msg ? zs.msg : "inflate failed"));
  }
  return static_cast<std::size_t>(want - zs.avail_out);
}

}  // namespace codestore::archive::internal

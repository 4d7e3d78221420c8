// The one bounds-checked reader every image parser goes through.
//
// Every read checks the length against what is left and advances only on success, so a
// failed read leaves the position where the damaged field starts (the offset errors name).
//
// Thread safety: a ByteReader is a cursor over bytes it does not own; one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace codestore::image::internal {

class ByteReader {
 public:
  // `base` is the offset of bytes[0] in the image, so offset() reports image offsets.
  explicit ByteReader(std::span<const std::uint8_t> bytes, std::uint64_t base = 0) noexcept
      : bytes_(bytes), base_(base) {}

  std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
  bool eof() const noexcept { return pos_ == bytes_.size(); }
  std::uint64_t offset() const noexcept { return base_ + pos_; }
  std::span<const std::uint8_t> rest() const noexcept { return bytes_.subspan(pos_); }

  bool u8(std::uint8_t& v) noexcept {
    if (remaining() < 1) return false;
    v = bytes_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) noexcept {
    if (remaining() < 2) return false;
    v = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) noexcept {
    if (remaining() < 4) return false;
    v = peek_u32(bytes_.data() + pos_);
    pos_ += 4;
    return true;
  }
  // A u32 the VM reads as a signed Sint32.
  bool i32(std::int32_t& v) noexcept {
    std::uint32_t u = 0;
    if (!u32(u)) return false;
    v = static_cast<std::int32_t>(u);
    return true;
  }
  bool bytes(std::size_t n, std::span<const std::uint8_t>& out) noexcept {
    if (remaining() < n) return false;
    out = bytes_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::size_t n) noexcept {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

  static std::uint32_t peek_u32(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::uint64_t base_;
  std::size_t pos_ = 0;
};

}  // namespace codestore::image::internal

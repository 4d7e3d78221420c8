// ZSTD_c_literalCompressionMode is an experimental parameter (stable in zstd 1.4.5 through 1.5.x,
// which codestore requires; a libzstd that refuses it makes compress fail, never a bad frame).
#define ZSTD_STATIC_LINKING_ONLY
#include "db/codec.h"

#include <codestore/image.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zdict.h>
#include <zstd.h>

namespace codestore::db {

Sha256 sha256(std::span<const std::uint8_t> bytes) {
  // Fetched once: OpenSSL 3's one-shot SHA256() fetches the algorithm on every call, which
  // costs a third as much as hashing a median image (bench_readpath's cold load verifies one
  // per load). The fetched EVP_MD is immutable and safe to share between threads.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  Sha256 out;
  if (md == nullptr || EVP_Digest(bytes.data(), bytes.size(), out.data(), nullptr, md, nullptr) != 1) {
    SHA256(bytes.data(), bytes.size(),
           out.data());  // the provider is missing: the one-shot reports nothing either
  }
  return out;
}

Dictionary::Dictionary(std::int64_t id, std::vector<std::uint8_t> bytes)
    : id_(id), bytes_(std::move(bytes)), ddict_(ZSTD_createDDict(bytes_.data(), bytes_.size())) {}

Dictionary::~Dictionary() {
  ZSTD_freeDDict(ddict_);
  for (auto& [level, cdict] : cdicts_) ZSTD_freeCDict(cdict);
}

const ZSTD_CDict_s* Dictionary::cdict(int level) const {
  std::lock_guard lock(mutex_);
  auto it = cdicts_.find(level);
  if (it == cdicts_.end())
    it = cdicts_.emplace(level, ZSTD_createCDict(bytes_.data(), bytes_.size(), level)).first;
  return it->second;
}

Compressor::Compressor() : cctx_(ZSTD_createCCtx()) {}
Compressor::~Compressor() {
  ZSTD_freeCCtx(cctx_);
}

Result<std::vector<std::uint8_t>> Compressor::compress(std::span<const std::uint8_t> raw, int level,
                                                       const Dictionary* dict, Literals literals) {
  ZSTD_CCtx_reset(cctx_, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_contentSizeFlag, 1);
  if (literals == Literals::kRaw) {
    const std::size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_literalCompressionMode, ZSTD_ps_disable);
    if (ZSTD_isError(rc))
      return error(Code::kInternal, fmt::format("zstd raw literals: {}", ZSTD_getErrorName(rc)));
  }
  if (dict != nullptr) ZSTD_CCtx_refCDict(cctx_, dict->cdict(level));
  std::vector<std::uint8_t> out(ZSTD_compressBound(raw.size()));
  const std::size_t n = ZSTD_compress2(cctx_, out.data(), out.size(), raw.data(), raw.size());
  if (ZSTD_isError(n)) return error(Code::kInternal, fmt::format("zstd compress: {}", ZSTD_getErrorName(n)));
  out.resize(n);
  return out;
}

Decompressor::Decompressor() : dctx_(ZSTD_createDCtx()) {}
Decompressor::~Decompressor() {
  ZSTD_freeDCtx(dctx_);
}

Status Decompressor::decompress(std::span<const std::uint8_t> frame, std::uint64_t raw_size,
                                const Dictionary* dict, std::vector<std::uint8_t>& out) {
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Status(Code::kCorruption, "zstd: not a zstd frame");
  // No image the store accepts is larger than the image limit, so a larger size is damage,
  // refused before the allocation: a damaged or hostile row could otherwise ask for 1 TB
  // (bad_alloc, an ASan abort, or the OOM killer). Bounding the row's size bounds the
  // frame's too: they must agree below.
  const std::uint64_t limit = image::Limits().max_image_bytes;
  if (raw_size > limit) {
    return Status(Code::kCorruption,
                  fmt::format("blob declares {} bytes, more than the image limit {}", raw_size, limit));
  }
  if (declared != raw_size) {
    return Status(Code::kCorruption,
                  fmt::format("zstd: frame declares {} bytes, the row {}", declared, raw_size));
  }
  out.resize(raw_size);
  const std::size_t n = dict != nullptr
                            ? ZSTD_decompress_usingDDict(dctx_, out.data(), out.size(), frame.data(),
                                                         frame.size(), dict->ddict())
                            : ZSTD_decompressDCtx(dctx_, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return Status(Code::kCorruption, fmt::format("zstd: {}", ZSTD_getErrorName(n)));
  if (n != raw_size)
    return Status(Code::kCorruption, fmt::format("zstd: {} bytes instead of {}", n, raw_size));
  return Status::ok();
}

Result<std::vector<std::uint8_t>> train(const std::vector<std::vector<std::uint8_t>>& samples,
                                        std::size_t size) {
  std::vector<std::uint8_t> all;
  std::vector<std::size_t> sizes;
  for (const auto& s : samples) {
    all.insert(all.end(), s.begin(), s.end());
    sizes.push_back(s.size());
  }
  std::vector<std::uint8_t> dict(size);
  const std::size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), all.data(), sizes.data(),
                                              static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n)) {
    return error(Code::kInvalidArgument, fmt::format("zstd dictionary training over {} images: {}",
                                                     samples.size(), ZDICT_getErrorName(n)));
  }
  dict.resize(n);
  return dict;
}

std::uint32_t dictionary_zstd_id(std::span<const std::uint8_t> dictionary) {
  return ZDICT_getDictID(dictionary.data(), dictionary.size());
}

}  // namespace codestore::db

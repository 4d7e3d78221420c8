// The blob codec: SHA-256 keys and zstd frames (content checksum on), optionally with a
// trained dictionary. Dictionaries are prepared once (ZSTD_CDict per level, ZSTD_DDict)
// and cached: decompressing with a raw dictionary each call costs twice as much
// (measured with zstd 1.5.4).
//
// Thread safety: sha256/hex are pure. A Dictionary is immutable after construction except
// its CDict cache, which a mutex guards; share it freely. A Compressor or Decompressor
// holds a zstd context: one per thread.
#pragma once

#include <codestore/status.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;
struct ZSTD_CDict_s;
struct ZSTD_DDict_s;

namespace codestore::db {

using Sha256 = std::array<std::uint8_t, 32>;
Sha256 sha256(std::span<const std::uint8_t> bytes);

class Dictionary {
 public:
  // `id` is our row id (dictionaries.id); `bytes` the trained content.
  Dictionary(std::int64_t id, std::vector<std::uint8_t> bytes);
  ~Dictionary();
  Dictionary(const Dictionary&) = delete;
  Dictionary& operator=(const Dictionary&) = delete;

  std::int64_t id() const { return id_; }
  std::size_t size() const { return bytes_.size(); }
  const ZSTD_CDict_s* cdict(int level) const;
  const ZSTD_DDict_s* ddict() const { return ddict_; }

 private:
  std::int64_t id_;
  std::vector<std::uint8_t> bytes_;
  ZSTD_DDict_s* ddict_ = nullptr;
  mutable std::mutex mutex_;
  mutable std::map<int, ZSTD_CDict_s*> cdicts_;  // guarded by mutex_
};

// How a frame codes its literals (the bytes no match covers). kRaw leaves them uncoded
// (ZSTD_c_literalCompressionMode = ZSTD_ps_disable): no Huffman table to read and no Huffman
// decoding. Measured on bench_store's layouts: at level 3 the frames decompress about twice as
// fast for 11 % more bytes; at level 19 with a dictionary, about a fifth faster for 4 % more.
// For the frames a read for loading decompresses (layouts); every other frame keeps kHuffman,
// zstd's default. A changed literal byte then decodes without complaint: the frame checksum,
// always checked, is what catches it.
enum class Literals { kHuffman, kRaw };

class Compressor {
 public:
  Compressor();
  ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
  // One zstd frame with the content size and checksum; `dict` may be null.
  Result<std::vector<std::uint8_t>> compress(std::span<const std::uint8_t> raw, int level,
                                             const Dictionary* dict, Literals literals = Literals::kHuffman);

 private:
  ZSTD_CCtx_s* cctx_;
};

class Decompressor {
 public:
  Decompressor();
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  // Decompresses one frame of exactly `raw_size` bytes into `out`; the frame checksum is
  // checked. kCorruption when the frame is damaged, its checksum or size disagrees.
  Status decompress(std::span<const std::uint8_t> frame, std::uint64_t raw_size, const Dictionary* dict,
                    std::vector<std::uint8_t>& out);

 private:
  ZSTD_DCtx_s* dctx_;
};

// ZDICT training over `samples`; kInvalidArgument when there are too few to train from.
Result<std::vector<std::uint8_t>> train(const std::vector<std::vector<std::uint8_t>>& samples,
                                        std::size_t size);
// The id zstd writes into a trained dictionary (and into the frames made with it).
std::uint32_t dictionary_zstd_id(std::span<const std::uint8_t> dictionary);

}  // namespace codestore::db

// A bounded cache of decompressed images, keyed by the SHA-256 of their bytes. The key is
// the content's address, so an entry can never go stale: whatever happens to the rows
// (compact re-encodes a blob, gc deletes it, another process imports), the bytes for a
// hash stay the same. Callers still resolve module@version to a hash in the database on
// every call, so a deleted version is never served from here.
//
// Least recently used entries go first once the bytes held pass the budget; an image
// larger than the whole budget is not kept. A budget of 0 disables the cache.
//
// Thread safety: none; the owner serializes calls (Store::Impl under its mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "db/codec.h"

namespace codestore::db {

class ImageCache {
 public:
  using Bytes = std::shared_ptr<const std::vector<std::uint8_t>>;

  explicit ImageCache(std::size_t budget_bytes) : budget_(budget_bytes) {}

  // The image with this hash, or null; a hit becomes the most recently used.
  Bytes find(std::span<const std::uint8_t> sha256);
  // Keeps `bytes` (whose hash the caller checked or trusts from a verified frame).
  void put(std::span<const std::uint8_t> sha256, Bytes bytes);

  std::size_t bytes_held() const { return held_; }
  std::size_t entries() const { return map_.size(); }

 private:
  struct KeyHash {
    std::size_t operator()(const Sha256& k) const noexcept;
  };
  struct Entry {
    Sha256 key;
    Bytes bytes;
  };
  std::size_t budget_;
  std::size_t held_ = 0;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<Sha256, std::list<Entry>::iterator, KeyHash> map_;
};

}  // namespace codestore::db

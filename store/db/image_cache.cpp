#include "db/image_cache.h"

#include <algorithm>
#include <cstring>

namespace codestore::db {

namespace {
bool to_key(std::span<const std::uint8_t> sha256, Sha256& key) {
  if (sha256.size() != key.size()) return false;
  std::copy(sha256.begin(), sha256.end(), key.begin());
  return true;
}
}  // namespace

std::size_t ImageCache::KeyHash::operator()(const Sha256& k) const noexcept {
  // A SHA-256 is already uniformly distributed: its first word is a good hash.
  std::size_t h;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

ImageCache::Bytes ImageCache::find(std::span<const std::uint8_t> sha256) {
  Sha256 key;
  if (budget_ == 0 || !to_key(sha256, key)) return nullptr;
  const auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->bytes;
}

void ImageCache::put(std::span<const std::uint8_t> sha256, Bytes bytes) {
  Sha256 key;
  if (!bytes || bytes->size() > budget_ || !to_key(sha256, key) || map_.count(key) != 0) return;
  lru_.push_front({key, std::move(bytes)});
  map_.emplace(key, lru_.begin());
  held_ += lru_.front().bytes->size();
  while (held_ > budget_) {
    held_ -= lru_.back().bytes->size();
    map_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

}  // namespace codestore::db

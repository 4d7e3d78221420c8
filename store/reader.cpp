// StoreReader: the store's read path for the loader and the boot server (see
// include/codestore/store_reader.h). Built on Store's public API only.
#include <codestore/store_reader.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace codestore {

const ModuleSummary* LibModules::find(std::string_view module) const {
  auto it = std::lower_bound(modules.begin(), modules.end(), module,
                             [](const ModuleSummary& s, std::string_view m) { return s.module < m; });
  return it != modules.end() && it->module == module ? &*it : nullptr;
}

// What was read under one store generation, and the checked images by SHA-256.
//
// Thread safety: mu_ guards everything.
class StoreReader::Cache {
 public:
  static constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

  explicit Cache(std::size_t checked_budget) : checked_budget_(checked_budget) {}

  // Moves the cache to generation `g`, dropping the metadata when it changed.
  void at(std::uint64_t g) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g == generation_) return;
    generation_ = g;
    libs_.clear();
    lib_modules_.clear();
    active_.clear();
    versions_.clear();
  }
  std::uint64_t generation() {
    std::lock_guard<std::mutex> lock(mu_);
    return generation_;
  }

  // The value cached under `key` at generation `g`, else `fetch()`'s, kept while the cache
  // is still at `g`. A kNotFound answer is kept too (a module asked for and not there);
  // other errors (busy, corruption) are not: the next lookup asks again.
  template <typename Map, typename Key, typename Fetch>
  auto lookup(Map Cache::*map, const Key& key, Fetch fetch) -> decltype(fetch()) {
    std::uint64_t g;
    {
      std::lock_guard<std::mutex> lock(mu_);
      g = generation_;
      auto& m = this->*map;
      if (auto it = m.find(key); it != m.end()) return it->second;
    }
    auto value = fetch();
    if (value || value.error().code() == Code::kNotFound) {
      std::lock_guard<std::mutex> lock(mu_);
      auto& m = this->*map;
      // Names come from clients (a boot server's peers): bounded, whatever they ask for.
      if (g == generation_ && g != kNone) {
        if (m.size() >= kMaxEntries) m.clear();
        m.insert_or_assign(key, value);
      }
    }
    return value;
  }

  std::shared_ptr<const CheckedImage> checked(const std::string& sha256) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = checked_.find(sha256);
    if (it == checked_.end()) return nullptr;
    checked_lru_.splice(checked_lru_.begin(), checked_lru_, it->second);
    return it->second->second;
  }
  // Keeps `image` unless it alone is over the budget; the least recently used go first.
  void put_checked(const std::string& sha256, std::shared_ptr<const CheckedImage> image) {
    const std::size_t size = image->image.bytes().size();
    if (size > checked_budget_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (checked_.count(sha256) != 0) return;
    checked_lru_.emplace_front(sha256, std::move(image));
    checked_[sha256] = checked_lru_.begin();
    checked_held_ += size;
    while (checked_held_ > checked_budget_) {
      checked_held_ -= checked_lru_.back().second->image.bytes().size();
      checked_.erase(checked_lru_.back().first);
      checked_lru_.pop_back();
    }
  }

  std::map<int, Result<std::vector<std::string>>> libs_;  // one entry, key 0; guarded by mu_
  std::unordered_map<std::string, Result<std::shared_ptr<const LibModules>>> lib_modules_;  // guarded by mu_
  std::unordered_map<std::string, Result<VersionRef>> active_;                              // guarded by mu_
  std::map<std::pair<std::string, std::int64_t>, Result<VersionRef>> versions_;             // guarded by mu_

 private:
  static constexpr std::size_t kMaxEntries = 100'000;
  std::mutex mu_;
  std::uint64_t generation_ = kNone;  // guarded by mu_
  const std::size_t checked_budget_;
  std::size_t checked_held_ = 0;  // guarded by mu_
  using Checked = std::pair<std::string, std::shared_ptr<const CheckedImage>>;
  std::list<Checked> checked_lru_;                                         // guarded by mu_
  std::unordered_map<std::string, std::list<Checked>::iterator> checked_;  // guarded by mu_
};

StoreReader::StoreReader(std::shared_ptr<Store> store, ReaderOptions options)
    : store_(std::move(store)), cache_(std::make_unique<Cache>(options.checked_image_bytes)) {}

StoreReader::~StoreReader() = default;

Result<std::uint64_t> StoreReader::refresh() {
  auto g = store_->generation();
  if (g) cache_->at(*g);
  return g;
}

Result<std::vector<std::string>> StoreReader::libs() {
  return cache_->lookup(&Cache::libs_, 0, [&] { return store_->libs(); });
}

Result<std::shared_ptr<const LibModules>> StoreReader::lib(std::string_view lib) {
  return cache_->lookup(&Cache::lib_modules_, std::string(lib),
                        [&]() -> Result<std::shared_ptr<const LibModules>> {
                          auto rows = store_->lib_modules(lib);
                          if (!rows) return tl::unexpected(rows.error());
                          auto out = std::make_shared<LibModules>();
                          out->modules = std::move(*rows);
                          return std::shared_ptr<const LibModules>(std::move(out));
                        });
}

Result<StoreReader::VersionRef> StoreReader::active(std::string_view module) {
  return cache_->lookup(&Cache::active_, std::string(module), [&]() -> Result<VersionRef> {
    auto v = store_->active_info(module);
    if (!v) return tl::unexpected(v.error());
    return std::make_shared<const ModuleVersion>(std::move(*v));
  });
}

Result<StoreReader::VersionRef> StoreReader::version(std::string_view module, std::int64_t version) {
  return cache_->lookup(&Cache::versions_, std::make_pair(std::string(module), version),
                        [&]() -> Result<VersionRef> {
                          auto v = store_->version_info(module, version);
                          if (!v) return tl::unexpected(v.error());
                          return std::make_shared<const ModuleVersion>(std::move(*v));
                        });
}

Result<Store::SharedBytes> StoreReader::bytes(std::string_view module, std::int64_t version) {
  return store_->get_shared(module, version);
}

Result<std::shared_ptr<const CheckedImage>> StoreReader::checked_image(const ModuleVersion& v,
                                                                       std::string_view file) {
  if (auto hit = cache_->checked(v.sha256)) return hit;
  using Recorded = ModuleVersion::LoadVerdict;
  const bool recorded = v.load_verdict == Recorded::kLoadable || v.load_verdict == Recorded::kLoadableOnLoad;
  // The zstd frame checksum, checked on every decompression, proves the bytes the ones the
  // blob was made of, so the ones its recorded verdict is of (see the header): no SHA-256 here.
  // Only the chunks the loader reads (Store::get_for_loading): the debug chunks stay in the
  // database; the MD5 and what erlang:load_module/2 reads are the imported image's.
  auto bytes = store_->get_for_loading(v.module, v.version);
  if (!bytes) return tl::unexpected(bytes.error());
  auto img = image::Image::parse_shared(std::move(*bytes), image::Strictness::kStrict, file);
  if (!img) {
    return error(Code::kCorruption,
                 fmt::format("store {}: module {} version {}: stored image does not parse: {}",
                             store_->path(), v.module, v.version, img.error().message()));
  }
  auto verdict = recorded ? image::Image::LoadVerdict{.loadable = true,
                                                      .opcode_only = false,
                                                      .on_load = v.load_verdict == Recorded::kLoadableOnLoad,
                                                      .reason = {}}
                          : img->check_loadable();
  auto checked = std::make_shared<const CheckedImage>(CheckedImage{std::move(*img), std::move(verdict)});
  cache_->put_checked(v.sha256, checked);
  return checked;
}

}  // namespace codestore

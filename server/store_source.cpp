// The boot server's ModuleSource over the store: the active versions (asked of the store at
// every request, so that a rollback by another process is seen at once) or one release's
// versions (a release is an immutable snapshot, read once at start).
//
// "Asked of the store at every request" costs one indexed read: the store's generation, a
// counter every committed change bumps (whichever process makes it). What was looked up
// under a generation (the lib list, a lib's modules, a module's served version or its
// absence) is kept until the generation moves. A booting node asks for ~100 lib directories
// and ~450 module files; without this each asked the store again (the lib list alone is a
// join over every module, ~0.1 ms).
#include <codestore/boot_server.h>
#include <codestore/store.h>

#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

namespace codestore::server {

namespace {

// Store lookups kept for one store generation (see the top of the file).
//
// Thread safety: safe for concurrent use (mu_ guards everything). A lookup made under
// generation G is kept only while the cache is still at G, so that a thread that read G
// before another process's commit cannot plant its answer into the cache of G+1.
class LookupCache {
 public:
  static constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

  // Moves the cache to generation `g`, dropping everything when it changed.
  void at(std::uint64_t g) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g == generation_) return;
    generation_ = g;
    libs_.reset();
    lib_modules_.clear();
    found_.clear();
  }

  std::optional<std::vector<std::string>> libs(std::uint64_t g) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g != generation_) return std::nullopt;
    return libs_;
  }
  void put_libs(std::uint64_t g, const std::vector<std::string>& libs) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g == generation_) libs_ = libs;
  }

  std::optional<std::vector<ServedModule>> modules(std::uint64_t g, const std::string& lib) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g != generation_) return std::nullopt;
    auto it = lib_modules_.find(lib);
    if (it == lib_modules_.end()) return std::nullopt;
    return it->second;
  }
  void put_modules(std::uint64_t g, const std::string& lib, const std::vector<ServedModule>& modules) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g != generation_) return;
    if (lib_modules_.size() >= kMaxEntries) lib_modules_.clear();
    lib_modules_[lib] = modules;
  }

  // A module's served version, or nullopt inside a found entry for "no such module".
  std::optional<std::optional<ServedModule>> find(std::uint64_t g, const std::string& module) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g != generation_) return std::nullopt;
    auto it = found_.find(module);
    if (it == found_.end()) return std::nullopt;
    return it->second;
  }
  void put_find(std::uint64_t g, const std::string& module, std::optional<ServedModule> m) {
    std::lock_guard<std::mutex> lock(mu_);
    if (g != generation_) return;
    // Names come from clients: bounded, whatever they ask for.
    if (found_.size() >= kMaxEntries) found_.clear();
    found_[module] = std::move(m);
  }

 private:
  static constexpr std::size_t kMaxEntries = 100'000;
  std::mutex mu_;
  std::uint64_t generation_ = kNone;                                                    // guarded by mu_
  std::optional<std::vector<std::string>> libs_;                                        // guarded by mu_
  std::unordered_map<std::string, std::vector<ServedModule>> lib_modules_;              // guarded by mu_
  std::unordered_map<std::string, std::optional<ServedModule>> found_;                  // guarded by mu_
};

ServedModule from_version(const ModuleVersion& v, std::int64_t since) {
  ServedModule m;
  m.lib = v.lib;
  m.module = v.module;
  m.version = v.version;
  m.size = v.raw_size;
  m.active_since = since;
  m.md5 = v.md5;
  return m;
}

// Thread safety: the Store serializes its own calls; the release snapshot is immutable
// after open; the lookup cache is thread-safe. So every method may be called concurrently.
class StoreSource final : public ModuleSource {
 public:
  StoreSource(std::unique_ptr<Store> store, std::string release, std::optional<Release> snapshot)
      : store_(std::move(store)), release_(std::move(release)) {
    if (snapshot) {
      release_created_ = snapshot->created_at;
      for (ReleaseEntry& e : snapshot->modules) {
        release_libs_[e.lib].push_back(e.module);
        release_modules_[e.module] = std::move(e);
      }
    }
  }

  std::string describe() const override {
    if (release_.empty()) return fmt::format("store {} (active versions)", store_->path());
    return fmt::format("store {} release {} ({} modules)", store_->path(), release_, release_modules_.size());
  }

  Result<std::vector<std::string>> libs() override {
    if (release_.empty()) {
      auto g = generation();
      if (!g) return tl::unexpected(g.error());
      if (auto hit = lookups_.libs(*g)) return *hit;
      auto libs = store_->libs();
      if (libs) lookups_.put_libs(*g, *libs);
      return libs;
    }
    std::vector<std::string> out;
    for (const auto& [lib, modules] : release_libs_) out.push_back(lib);  // std::map: sorted
    return out;
  }

  Result<std::vector<ServedModule>> modules(std::string_view lib) override {
    std::vector<ServedModule> out;
    if (release_.empty()) {
      auto g = generation();
      if (!g) return tl::unexpected(g.error());
      std::string key(lib);
      if (auto hit = lookups_.modules(*g, key)) return *hit;
      auto list = store_->lib_modules(lib);
      if (!list) return tl::unexpected(list.error());
      for (const ModuleSummary& s : *list) {
        ServedModule m;
        m.lib = s.lib;
        m.module = s.module;
        m.version = s.active_version;
        m.active_since = s.active_since;
        m.md5 = s.md5;
        out.push_back(std::move(m));
      }
      lookups_.put_modules(*g, key, out);
      return out;
    }
    auto it = release_libs_.find(std::string(lib));
    if (it == release_libs_.end()) return out;
    for (const std::string& module : it->second) {
      ServedModule m;
      m.lib = it->first;
      m.module = module;
      m.version = release_modules_.at(module).version;
      m.active_since = release_created_;
      out.push_back(std::move(m));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.module < b.module; });
    return out;
  }

  Result<ServedModule> find(std::string_view module) override {
    auto g = generation();
    if (!g) return tl::unexpected(g.error());
    std::string key(module);
    if (auto hit = lookups_.find(*g, key)) {
      if (*hit) return **hit;
      return error(Code::kNotFound, release_.empty() ? fmt::format("module {}: no active version", module)
                                                     : fmt::format("module {}: not in release {}", module, release_));
    }
    auto found = find_in_store(module);
    if (found) {
      lookups_.put_find(*g, key, *found);
    } else if (found.error().code() == Code::kNotFound) {
      lookups_.put_find(*g, key, std::nullopt);
    }
    return found;
  }

  // The store's image cache (keyed by content) spares the zstd work when many nodes boot
  // from the same store, and hands out its bytes without a copy.
  Result<ImageBytes> image(const ServedModule& m) override { return store_->get_shared(m.module, m.version); }

  Status record_served(const ServedModule& m, std::string_view peer) override {
    return store_->record_served(m.module, m.version, peer);
  }

 private:
  // The store's generation, with the lookup cache moved to it.
  Result<std::uint64_t> generation() {
    auto g = store_->generation();
    if (g) lookups_.at(*g);
    return g;
  }

  Result<ServedModule> find_in_store(std::string_view module) {
    if (release_.empty()) {
      auto v = store_->active_info(module);
      if (!v) return tl::unexpected(v.error());
      if (!v->active) return error(Code::kNotFound, fmt::format("module {}: no active version", module));
      return from_version(*v, v->active_since);
    }
    auto it = release_modules_.find(std::string(module));
    if (it == release_modules_.end()) {
      return error(Code::kNotFound, fmt::format("module {}: not in release {}", module, release_));
    }
    auto v = store_->version_info(module, it->second.version);
    if (!v) return tl::unexpected(v.error());
    // The release's lib, which is the version's: a version's lib never changes.
    return from_version(*v, release_created_);
  }

  std::unique_ptr<Store> store_;
  const std::string release_;
  std::int64_t release_created_ = 0;
  std::map<std::string, std::vector<std::string>> release_libs_;  // lib -> modules, fixed at open
  std::map<std::string, ReleaseEntry> release_modules_;           // fixed at open
  LookupCache lookups_;
};

}  // namespace

Result<std::unique_ptr<ModuleSource>> open_store_source(const std::string& db_path, const std::string& release) {
  StoreOptions options;
  options.create = false;  // serving an empty new file would only answer enoent
  auto store = Store::open(db_path, options);
  if (!store) return error(store.error());
  std::optional<Release> snapshot;
  if (!release.empty()) {
    auto r = (*store)->release_show(release);
    if (!r) return error(r.error());
    snapshot = std::move(*r);
  }
  return std::unique_ptr<ModuleSource>(new StoreSource(std::move(*store), release, std::move(snapshot)));
}

}  // namespace codestore::server

// The boot server's ModuleSource over the store: the active versions (asked of the store at
// every request, so that a rollback by another process is seen at once) or one release's
// versions (a release is an immutable snapshot, read once at start).
//
// "Asked of the store at every request" costs one indexed read: the store's generation, a
// counter every committed change bumps (whichever process makes it). Everything is read
// through a StoreReader (store_reader.h), the loader's read path too: what was looked up
// under a generation (the lib list, a lib's modules, a module's served version or its
// absence) is kept until the generation moves. A booting node asks for ~100 lib directories
// and ~450 module files; without this each asked the store again (the lib list alone is a
// join over every module, ~0.1 ms).
#include <codestore/boot_server.h>
#include <codestore/store.h>
#include <codestore/store_reader.h>
#include <fmt/format.h>

#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace codestore::server {

// A source without application versions: every path resolves through the served set.
Result<ModuleSource::AppVersionRef> ModuleSource::app_version(std::string_view app, std::string_view vsn) {
  return error(Code::kNotFound, fmt::format("no application version {}@{}", app, vsn));
}
Result<std::shared_ptr<const ChannelApps>> ModuleSource::channel_apps() {
  return std::make_shared<const ChannelApps>();
}
Result<ModuleSource::ReleaseRef> ModuleSource::release(const ReleaseId& id) {
  return error(Code::kNotFound, fmt::format("no release {}@{}", id.name, id.vsn));
}
Result<ModuleSource::ImageBytes> ModuleSource::file(std::string_view sha256) {
  return error(Code::kNotFound, fmt::format("no file {}", sha256));
}
Result<std::vector<std::int64_t>> ModuleSource::record_nodes(const std::vector<NodeReport>& /*reports*/) {
  return error(Code::kNotSupported, fmt::format("{} keeps no nodes", describe()));
}

namespace {

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

// Thread safety: the StoreReader is safe for concurrent use; the release snapshot is
// immutable after open; mu_ guards the cache of application versions and releases, writer_mu_
// the handle record_nodes writes with. So every method may be called concurrently.
class StoreSource final : public ModuleSource {
 public:
  StoreSource(std::shared_ptr<Store> store, std::string release, std::optional<Release> snapshot)
      : reader_(std::move(store)), release_(std::move(release)) {
    if (snapshot) {
      release_created_ = snapshot->created_at;
      for (ReleaseEntry& e : snapshot->modules) {
        release_libs_[e.lib].push_back(e.module);
        release_modules_[e.module] = std::move(e);
      }
    }
  }

  std::string describe() const override {
    const std::string& path = reader_.store().path();
    if (release_.empty()) {
      return fmt::format("store {} (active versions of channel {})", path, reader_.store().channel());
    }
    return fmt::format("store {} release {} ({} modules)", path, release_, release_modules_.size());
  }

  Result<std::vector<std::string>> libs() override {
    if (release_.empty()) {
      if (auto g = reader_.refresh(); !g) return tl::unexpected(g.error());
      return reader_.libs();
    }
    std::vector<std::string> out;
    for (const auto& [lib, modules] : release_libs_) out.push_back(lib);  // std::map: sorted
    return out;
  }

  Result<std::vector<ServedModule>> modules(std::string_view lib) override {
    std::vector<ServedModule> out;
    if (release_.empty()) {
      if (auto g = reader_.refresh(); !g) return tl::unexpected(g.error());
      auto list = reader_.lib(lib);
      if (!list) return tl::unexpected(list.error());
      for (const ModuleSummary& s : (*list)->modules) {
        ServedModule m;
        m.lib = s.lib;
        m.module = s.module;
        m.version = s.active_version;
        m.active_since = s.active_since;
        m.md5 = s.md5;
        out.push_back(std::move(m));
      }
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
    if (auto g = reader_.refresh(); !g) return tl::unexpected(g.error());
    if (release_.empty()) {
      auto v = reader_.active(module);
      if (!v) return not_found_or(v.error(), fmt::format("module {}: no active version", module));
      return from_version(**v, (*v)->active_since);
    }
    auto it = release_modules_.find(std::string(module));
    if (it == release_modules_.end()) {
      return error(Code::kNotFound, fmt::format("module {}: not in release {}", module, release_));
    }
    auto v = reader_.version(module, it->second.version);
    if (!v) return tl::unexpected(v.error());
    // The release's lib, which is the version's: a version's lib never changes.
    return from_version(**v, release_created_);
  }

  // The store's image cache (keyed by content) spares the zstd work when many nodes boot
  // from the same store, and hands out its bytes without a copy.
  Result<ImageBytes> image(const ServedModule& m) override { return reader_.bytes(m.module, m.version); }

  Status record_served(const ServedModule& m, std::string_view peer) override {
    return reader_.store().record_served(m.module, m.version, peer);
  }

  // Application versions and releases: looked up in the store, kept until its generation
  // moves (a deploy, an import), as the StoreReader keeps module lookups.
  Result<bool> has_app_versions(std::string_view app) override {
    auto lock = fresh();
    if (!lock) return tl::unexpected(lock.error());
    if (!apps_with_versions_) {
      auto apps = reader_.store().apps();
      if (!apps) return tl::unexpected(apps.error());
      std::set<std::string> names;
      for (const AppVersionSummary& a : *apps) names.insert(a.app);
      apps_with_versions_ = std::move(names);
    }
    return apps_with_versions_->count(std::string(app)) != 0;
  }

  Result<AppVersionRef> app_version(std::string_view app, std::string_view vsn) override {
    auto lock = fresh();
    if (!lock) return tl::unexpected(lock.error());
    std::string key = std::string(app) + '\0' + std::string(vsn);
    if (auto it = app_versions_.find(key); it != app_versions_.end()) return it->second;
    auto info = reader_.store().app_version_for(reader_.store().channel(), app, vsn);
    if (!info) return tl::unexpected(info.error());  // kNotFound is looked up again: rare
    auto ref = std::make_shared<const AppVersionInfo>(std::move(*info));
    app_versions_.emplace(std::move(key), ref);
    return ref;
  }

  Result<std::shared_ptr<const ChannelApps>> channel_apps() override {
    auto lock = fresh();
    if (!lock) return tl::unexpected(lock.error());
    if (!channel_apps_) {
      auto apps = reader_.store().channel_apps(reader_.store().channel());
      if (!apps) return tl::unexpected(apps.error());
      channel_apps_ = std::make_shared<const ChannelApps>(std::move(*apps));
    }
    return channel_apps_;
  }

  Result<ReleaseRef> release(const ReleaseId& id) override {
    auto lock = fresh();
    if (!lock) return tl::unexpected(lock.error());
    std::string key = id.name + '\0' + id.vsn;
    if (auto it = releases_.find(key); it != releases_.end()) return it->second;
    auto info = reader_.store().erl_release_info(id);
    if (!info) return tl::unexpected(info.error());
    auto ref = std::make_shared<const ErlReleaseInfo>(std::move(*info));
    releases_.emplace(std::move(key), ref);
    return ref;
  }

  Result<std::vector<std::string>> release_vsns(std::string_view name) override {
    auto all = reader_.store().erl_releases();
    if (!all) return tl::unexpected(all.error());
    std::vector<std::string> out;
    for (const ErlRelease& r : *all) {
      if (r.id.name == name) out.push_back(r.id.vsn);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<ImageBytes> file(std::string_view sha256) override { return reader_.store().blob(sha256); }

  std::string channel() const override {
    return release_.empty() ? reader_.store().channel() : std::string();
  }
  bool records_nodes() const override { return true; }

  // Through a Store handle of its own, so that a write (and a wait for another process's
  // write lock) never holds the serving handle's mutex: only the recording thread waits.
  Result<std::vector<std::int64_t>> record_nodes(const std::vector<NodeReport>& reports) override {
    std::lock_guard<std::mutex> lock(writer_mu_);
    if (!writer_) {
      StoreOptions options;
      options.create = false;
      options.channel = reader_.store().channel();
      options.image_cache_bytes = 0;  // it reads no image
      auto store = Store::open(reader_.store().path(), options);
      if (!store) return tl::unexpected(store.error());
      writer_ = std::move(*store);
    }
    return writer_->record_nodes(reports);
  }

 private:
  static tl::unexpected<Status> not_found_or(const Status& status, std::string message) {
    if (status.code() == Code::kNotFound) return error(Code::kNotFound, std::move(message));
    return error(status);
  }

  // The cache of application versions and releases, emptied when the store's generation
  // moves; returns the held lock.
  Result<std::unique_lock<std::mutex>> fresh() {
    auto g = reader_.refresh();
    if (!g) return tl::unexpected(g.error());
    std::unique_lock<std::mutex> lock(mu_);
    if (*g != generation_) {
      generation_ = *g;
      apps_with_versions_.reset();
      app_versions_.clear();
      channel_apps_.reset();
      releases_.clear();
    }
    return lock;
  }

  StoreReader reader_;
  const std::string release_;
  std::mutex mu_;  // guards the members below (the store calls are made under it too)
  std::uint64_t generation_ = 0;
  std::optional<std::set<std::string>> apps_with_versions_;
  std::map<std::string, AppVersionRef> app_versions_;  // "app\0vsn"
  std::shared_ptr<const ChannelApps> channel_apps_;
  std::map<std::string, ReleaseRef> releases_;  // "name\0vsn"
  std::int64_t release_created_ = 0;
  std::map<std::string, std::vector<std::string>> release_libs_;  // lib -> modules, fixed at open
  std::map<std::string, ReleaseEntry> release_modules_;           // fixed at open
  std::mutex writer_mu_;                                          // guards writer_
  std::unique_ptr<Store> writer_;  // record_nodes's own handle, opened at its first call
};

}  // namespace

Result<std::unique_ptr<ModuleSource>> open_store_source(const std::string& db_path,
                                                        const std::string& release,
                                                        const std::string& channel) {
  StoreOptions options;
  options.create = false;  // serving an empty new file would only answer enoent
  options.channel = channel;
  auto store = Store::open(db_path, options);
  if (!store) return error(store.error());
  std::optional<Release> snapshot;
  if (!release.empty()) {
    auto r = (*store)->release_show(release);
    if (!r) return error(r.error());
    snapshot = std::move(*r);
  } else if (auto c = (*store)->channel_generation(channel); !c) {
    return error(c.error());  // an unknown channel: say so at start, not at every request
  }
  return std::unique_ptr<ModuleSource>(
      new StoreSource(std::shared_ptr<Store>(std::move(*store)), release, std::move(snapshot)));
}

}  // namespace codestore::server

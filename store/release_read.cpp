// Erlang releases, read back: the list, one release with its applications, files and
// consolidated modules, and the difference between two releases (applications, modules by
// MD5, files by SHA-256). One query per kind of row and release: a diff of two 2,000-module
// releases reads about 4,000 rows (bench/store/bench_release_diff.cpp).
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "base/hex.h"
#include "store_impl.h"

namespace codestore {

using store_internal::fail;

namespace {

std::string rel_name(const ReleaseId& id) {
  return fmt::format("{}@{}", id.name, id.vsn);
}

constexpr const char* kReleaseColumns =
    "r.id, r.name, r.vsn, r.erts_vsn, r.kind, r.origin, r.imported_at, "
    "(SELECT count(*) FROM release_apps ra WHERE ra.release = r.id), "
    "(SELECT count(*) FROM release_apps ra JOIN app_modules am ON am.app_version = ra.app_version WHERE "
    "ra.release = r.id) + (SELECT count(*) FROM release_modules rm WHERE rm.release = r.id), "
    "(SELECT count(*) FROM release_files rf WHERE rf.release = r.id) FROM releases r ";

ErlRelease release_of(db::Statement& s) {
  ErlRelease r;
  r.id = {s.text(1), s.text(2)};
  r.erts_vsn = s.text(3);
  r.kind = s.text(4);
  r.origin = s.text(5);
  r.imported_at = s.int64(6);
  r.apps = s.int64(7);
  r.modules = s.int64(8);
  r.files = s.int64(9);
  return r;
}

}  // namespace

std::int64_t Store::Impl::require_release(const ReleaseId& id) {
  auto& s = stmt("SELECT id FROM releases WHERE name = ? AND vsn = ?");
  Done done{s};
  s.bind(1, id.name);
  s.bind(2, id.vsn);
  if (s.step()) return s.int64(0);
  s.reset();
  std::vector<std::string> vsns;
  auto& o = stmt("SELECT vsn FROM releases WHERE name = ? ORDER BY imported_at, vsn");
  Done done2{o};
  o.bind(1, id.name);
  while (o.step()) vsns.push_back(o.text(0));
  if (vsns.empty()) fail(Code::kNotFound, fmt::format("unknown release {}", rel_name(id)));
  fail(Code::kNotFound,
       fmt::format("unknown release {} ({} has {})", rel_name(id), id.name, fmt::join(vsns, ", ")));
}

Result<std::vector<ErlRelease>> Store::erl_releases() {
  return impl_->call("release list", [&]() -> Result<std::vector<ErlRelease>> {
    static const std::string sql = std::string("SELECT ") + kReleaseColumns + "ORDER BY r.name, r.id";
    auto& s = impl_->stmt(sql.c_str());
    Impl::Done done{s};
    std::vector<ErlRelease> out;
    while (s.step()) out.push_back(release_of(s));
    return out;
  });
}

ErlReleaseInfo Store::Impl::erl_release_info(std::int64_t rid) {
  ErlReleaseInfo info;
  {
    static const std::string sql = std::string("SELECT ") + kReleaseColumns + "WHERE r.id = ?";
    auto& s = stmt(sql.c_str());
    Done done{s};
    s.bind(1, rid);
    if (!s.step()) fail(Code::kNotFound, fmt::format("no release {}", rid));
    info.release = release_of(s);
  }
  {
    auto& s = stmt(
        "SELECT a.app, a.vsn, a.revision, ra.type, ra.included FROM release_apps ra JOIN app_versions a ON "
        "a.id = "
        "ra.app_version WHERE ra.release = ? ORDER BY ra.position");
    Done done{s};
    s.bind(1, rid);
    while (s.step()) info.apps.push_back({s.text(0), s.text(1), s.int64(2), s.text(3), s.text(4)});
  }
  info.files = content_entries(
      "SELECT f.path, f.mode, f.link IS NOT NULL, coalesce(f.link, ''), f.blob_id IS NULL, b.sha256, "
      "coalesce(b.raw_size, 0) FROM release_files f LEFT JOIN blobs b ON b.id = f.blob_id WHERE f.release = "
      "? "
      "ORDER BY f.path",
      rid);
  info.consolidated = content_modules(
      "SELECT rm.module, rm.version, v.md5, rm.path, b.sha256, b.raw_size FROM release_modules rm JOIN "
      "versions v "
      "ON v.module = rm.module AND v.version = rm.version JOIN blobs b ON b.id = rm.blob_id WHERE rm.release "
      "= ? "
      "ORDER BY rm.module",
      rid);
  return info;
}

Result<ErlReleaseInfo> Store::erl_release_info(const ReleaseId& id) {
  return impl_->call(
      [&] { return "release show " + rel_name(id); },
      [&]() -> Result<ErlReleaseInfo> { return impl_->erl_release_info(impl_->require_release(id)); });
}

namespace {

// What a node running a release has, keyed for the diff. Thread safety: a plain value.
struct Side {
  std::map<std::string, ErlReleaseApp> apps;  // by application name
  struct Module {
    std::string app;
    std::int64_t version = 0;
    std::string md5;
  };
  std::unordered_map<std::string, Module> modules;
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>>
      files;  // (app, key) -> (path, value)
};

// A release file's key: `releases/<vsn>/x` is the same file in both releases.
std::string release_file_key(const std::string& path, const std::string& vsn) {
  const std::string dir = "releases/" + vsn + "/";
  if (path.starts_with(dir)) return "releases/{vsn}/" + path.substr(dir.size());
  return path;
}

Side diff_side(Store::Impl& impl, const ReleaseId& id, const std::string& release_label) {
  using Done = Store::Impl::Done;
  const std::int64_t rid = impl.require_release(id);
  Side side;
  {
    auto& s = impl.stmt(
        "SELECT a.app, a.vsn, a.revision, ra.type, ra.included FROM release_apps ra JOIN app_versions a ON "
        "a.id = "
        "ra.app_version WHERE ra.release = ?");
    Done done{s};
    s.bind(1, rid);
    while (s.step()) side.apps[s.text(0)] = {s.text(0), s.text(1), s.int64(2), s.text(3), s.text(4)};
  }
  {
    auto& s = impl.stmt(
        "SELECT am.module, a.app, am.version, v.md5 FROM release_apps ra JOIN app_versions a ON a.id = "
        "ra.app_version JOIN app_modules am ON am.app_version = ra.app_version JOIN versions v ON v.module = "
        "am.module AND v.version = am.version WHERE ra.release = ?");
    Done done{s};
    s.bind(1, rid);
    while (s.step()) side.modules[s.text(0)] = {s.text(1), s.int64(2), s.text(3)};
  }
  {
    // Consolidated modules over the applications' own, as the boot path orders them.
    auto& s = impl.stmt(
        "SELECT rm.module, rm.version, v.md5 FROM release_modules rm JOIN versions v ON v.module = rm.module "
        "AND "
        "v.version = rm.version WHERE rm.release = ?");
    Done done{s};
    s.bind(1, rid);
    while (s.step()) side.modules[s.text(0)] = {release_label, s.int64(1), s.text(2)};
  }
  {
    auto& s = impl.stmt(
        "SELECT a.app, f.path, coalesce(f.link, ''), b.sha256 FROM release_apps ra JOIN app_versions a ON "
        "a.id = "
        "ra.app_version JOIN app_files f ON f.app_version = ra.app_version LEFT JOIN blobs b ON b.id = "
        "f.blob_id "
        "WHERE ra.release = ?");
    Done done{s};
    s.bind(1, rid);
    while (s.step()) {
      std::string value = !s.text(2).empty() ? "link:" + s.text(2) : base::hex(s.blob(3));
      side.files[{s.text(0), s.text(1)}] = {s.text(1), std::move(value)};
    }
  }
  auto& s = impl.stmt(
      "SELECT f.path, coalesce(f.link, ''), b.sha256 FROM release_files f LEFT JOIN blobs b ON b.id = "
      "f.blob_id "
      "WHERE f.release = ?");
  Done done{s};
  s.bind(1, rid);
  while (s.step()) {
    std::string value = !s.text(1).empty() ? "link:" + s.text(1) : base::hex(s.blob(2));
    side.files[{"", release_file_key(s.text(0), id.vsn)}] = {s.text(0), std::move(value)};
  }
  return side;
}

ErlReleaseDiff diff_sides(const ReleaseId& a, const ReleaseId& b, const Side& sa, const Side& sb) {
  ErlReleaseDiff d;
  d.a = a;
  d.b = b;
  for (const auto& [app, e] : sb.apps) {
    auto it = sa.apps.find(app);
    if (it == sa.apps.end()) {
      d.apps_added.push_back(e);
    } else if (it->second.vsn != e.vsn || it->second.revision != e.revision) {
      d.apps_upgraded.push_back({app, it->second.vsn, it->second.revision, e.vsn, e.revision});
    }
  }
  for (const auto& [app, e] : sa.apps) {
    if (!sb.apps.contains(app)) d.apps_removed.push_back(e);
  }
  for (const auto& [module, m] : sb.modules) {
    auto it = sa.modules.find(module);
    if (it == sa.modules.end()) {
      d.modules_added.push_back({module, "", 0, "", m.app, m.version, m.md5});
    } else if (it->second.md5 != m.md5) {
      d.modules_changed.push_back(
          {module, it->second.app, it->second.version, it->second.md5, m.app, m.version, m.md5});
    }
  }
  for (const auto& [module, m] : sa.modules) {
    if (!sb.modules.contains(module))
      d.modules_removed.push_back({module, m.app, m.version, m.md5, "", 0, ""});
  }
  auto by_module = [](const ErlReleaseDiff::ModuleChange& x, const ErlReleaseDiff::ModuleChange& y) {
    return x.module < y.module;
  };
  std::sort(d.modules_added.begin(), d.modules_added.end(), by_module);
  std::sort(d.modules_removed.begin(), d.modules_removed.end(), by_module);
  std::sort(d.modules_changed.begin(), d.modules_changed.end(), by_module);
  for (const auto& [key, f] : sb.files) {
    auto it = sa.files.find(key);
    if (it == sa.files.end()) {
      d.files_added.push_back({key.first, f.first, "", f.second});
    } else if (it->second.second != f.second) {
      d.files_changed.push_back({key.first, f.first, it->second.second, f.second});
    }
  }
  for (const auto& [key, f] : sa.files) {
    if (!sb.files.contains(key)) d.files_removed.push_back({key.first, f.first, f.second, ""});
  }
  auto by_path = [](const ErlReleaseDiff::FileChange& x, const ErlReleaseDiff::FileChange& y) {
    return std::tie(x.app, x.path) < std::tie(y.app, y.path);
  };
  std::sort(d.files_added.begin(), d.files_added.end(), by_path);
  std::sort(d.files_removed.begin(), d.files_removed.end(), by_path);
  std::sort(d.files_changed.begin(), d.files_changed.end(), by_path);
  return d;
}

}  // namespace

Result<ErlReleaseDiff> Store::erl_release_diff(const ReleaseId& a, const ReleaseId& b) {
  return impl_->call([&] { return fmt::format("release diff {} {}", rel_name(a), rel_name(b)); },
                     [&]() -> Result<ErlReleaseDiff> {
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);  // both sides from one state
                       const Side sa = diff_side(*impl_, a, "<" + rel_name(a) + ">");
                       const Side sb = diff_side(*impl_, b, "<" + rel_name(b) + ">");
                       return diff_sides(a, b, sa, sb);
                     });
}

}  // namespace codestore

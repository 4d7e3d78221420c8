// Releases: named snapshots of the active set, their differences, and the rollback of the
// whole active set to one of them.
#include <map>

#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::now;

Release Store::Impl::release(const std::string& name, bool with_modules) {
  Release r;
  {
    auto& s = stmt(
        "SELECT name, created_at, note, (SELECT count(*) FROM snapshot_modules WHERE release = name) FROM "
        "snapshots "
        "WHERE name = ?");
    Done done{s};
    s.bind(1, name);
    if (!s.step()) fail(Code::kNotFound, fmt::format("unknown release {}", name));
    r.name = s.text(0);
    r.created_at = s.int64(1);
    r.note = s.text(2);
    r.module_count = s.int64(3);
  }
  if (!with_modules) return r;
  auto& s = stmt(
      "SELECT rm.module, rm.version, v.lib FROM snapshot_modules rm JOIN versions v ON v.module = rm.module "
      "AND "
      "v.version = rm.version WHERE rm.release = ? ORDER BY rm.module");
  Done done{s};
  s.bind(1, name);
  while (s.step()) r.modules.push_back({s.text(0), s.int64(1), s.text(2)});
  return r;
}

Result<Release> Store::release_create(const std::string& name, Reason note) {
  return impl_->call([&] { return "release create " + name; },
                     [&]() -> Result<Release> {
                       impl_->require_writable("release create");
                       if (name.empty()) fail(Code::kInvalidArgument, "a release needs a name");
                       Impl::WriteTx tx(*impl_);
                       {
                         auto& s = impl_->stmt("SELECT 1 FROM snapshots WHERE name = ?");
                         Impl::Done done{s};
                         s.bind(1, name);
                         if (s.step()) fail(Code::kAlreadyExists, fmt::format("release {} exists", name));
                       }
                       {
                         auto& s =
                             impl_->stmt("INSERT INTO snapshots (name, created_at, note) VALUES (?, ?, ?)");
                         s.bind(1, name);
                         s.bind(2, now());
                         s.bind(3, note.text);
                         s.exec();
                       }
                       auto& s = impl_->stmt(
                           "INSERT INTO snapshot_modules (release, module, version) SELECT ?, name, "
                           "active_version FROM modules "
                           "WHERE active_version != 0");
                       s.bind(1, name);
                       s.exec();
                       impl_->event("release-create", "", 0, 0, name);
                       Release r = impl_->release(name, true);
                       tx.commit();
                       return r;
                     });
}

Result<std::vector<Release>> Store::release_list() {
  return impl_->call("release list", [&]() -> Result<std::vector<Release>> {
    std::vector<std::string> names;
    {
      auto& s = impl_->stmt("SELECT name FROM snapshots ORDER BY created_at, name");
      Impl::Done done{s};
      while (s.step()) names.push_back(s.text(0));
    }
    std::vector<Release> out;
    out.reserve(names.size());
    for (const auto& n : names) out.push_back(impl_->release(n, false));
    return out;
  });
}

Result<Release> Store::release_show(const std::string& name) {
  return impl_->call([&] { return "release show " + name; },
                     [&]() -> Result<Release> { return impl_->release(name, true); });
}

Result<ReleaseDiff> Store::release_diff(const std::string& a, const std::string& b) {
  return impl_->call([&] { return fmt::format("release diff {} {}", a, b); },
                     [&]() -> Result<ReleaseDiff> {
                       const Release ra = impl_->release(a, true);
                       const Release rb = impl_->release(b, true);
                       std::map<std::string, const ReleaseEntry*> in_a;
                       for (const auto& e : ra.modules) in_a[e.module] = &e;
                       ReleaseDiff d;
                       for (const auto& e : rb.modules) {
                         auto it = in_a.find(e.module);
                         if (it == in_a.end()) {
                           d.added.push_back(e);
                         } else {
                           if (it->second->version != e.version)
                             d.changed.push_back({e.module, it->second->version, e.version});
                           in_a.erase(it);
                         }
                       }
                       for (const auto& [module, e] : in_a) d.removed.push_back(*e);
                       return d;
                     });
}

Status Store::release_delete(const std::string& name) {
  return impl_->call([&] { return "release delete " + name; },
                     [&]() -> Status {
                       impl_->require_writable("release delete");
                       Impl::WriteTx tx(*impl_);
                       impl_->release(name, false);  // kNotFound
                       for (const char* sql : {"DELETE FROM snapshot_modules WHERE release = ?",
                                               "DELETE FROM snapshots WHERE name = ?"}) {
                         auto& s = impl_->stmt(sql);
                         s.bind(1, name);
                         s.exec();
                       }
                       impl_->event("release-delete", "", 0, 0, name);
                       tx.commit();
                       return Status::ok();
                     });
}

Result<std::vector<Activation>> Store::release_rollback(const std::string& name, Reason reason) {
  return impl_->call([&] { return "release rollback " + name; },
                     [&]() -> Result<std::vector<Activation>> {
                       impl_->require_writable("release rollback");
                       Impl::WriteTx tx(*impl_);
                       const Release r = impl_->release(name, true);
                       std::map<std::string, std::int64_t> target;
                       for (const auto& e : r.modules) target[e.module] = e.version;
                       std::vector<std::pair<std::string, std::int64_t>> modules;
                       {
                         auto& s = impl_->stmt("SELECT name, active_version FROM modules ORDER BY name");
                         Impl::Done done{s};
                         while (s.step()) modules.emplace_back(s.text(0), s.int64(1));
                       }
                       const std::string why = reason.text.empty()
                                                   ? "release " + name
                                                   : fmt::format("release {}: {}", name, reason.text);
                       std::vector<Activation> changed;
                       for (const auto& [module, active] : modules) {
                         const auto it = target.find(module);
                         const std::int64_t to = it == target.end() ? 0 : it->second;
                         if (to == active) continue;
                         changed.push_back(impl_->set_active(module, to, "release-rollback", why));
                       }
                       impl_->event("release-rollback", "", 0, 0, why);
                       tx.commit(!changed.empty());
                       return changed;
                     });
}

}  // namespace codestore

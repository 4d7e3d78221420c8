// Erlang releases (docs/model.md): importing a ReleaseContent as one release with its
// application versions (all or nothing, in one transaction), listing and showing releases,
// and the difference between two of them. Applications are checked and stored by
// applications.cpp's steps; export is release_export.cpp's.
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "base/hex.h"
#include "store_impl.h"

namespace codestore {

using store_internal::now;
using store_internal::PreparedApp;
using store_internal::PreparedFile;

namespace {

std::string rel_name(const ReleaseId& id) {
  return fmt::format("{}@{}", id.name, id.vsn);
}

// The listing a release's content is compared by: its erts, its .rel entries (each with the
// content key of the application version it holds), its own files and consolidated modules.
using Listing = std::map<std::string, std::string>;

std::string app_entry_value(std::string_view app, std::string_view vsn, std::string_view content,
                            std::string_view type, std::string_view included) {
  return fmt::format("{}@{} {} type={} included={}", app, vsn, content, type, included);
}

// What differs between two listings, for a message: "application 2 (stdlib), file x".
std::vector<std::string> listing_differences(const Listing& a, const Listing& b) {
  std::set<std::string> keys;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) keys.insert(k);
  }
  for (const auto& [k, v] : b) {
    if (!a.contains(k)) keys.insert(k);
  }
  return {keys.begin(), keys.end()};
}

Listing release_listing(Store::Impl& impl, std::int64_t id) {
  using Done = Store::Impl::Done;
  Listing l;
  {
    auto& s = impl.stmt("SELECT erts_vsn FROM releases WHERE id = ?");
    Done done{s};
    s.bind(1, id);
    if (s.step()) l["erts"] = s.text(0);
  }
  {
    auto& s = impl.stmt(
        "SELECT ra.position, a.app, a.vsn, a.content, ra.type, ra.included FROM release_apps ra JOIN "
        "app_versions "
        "a ON a.id = ra.app_version WHERE ra.release = ?");
    Done done{s};
    s.bind(1, id);
    while (s.step()) {
      l[fmt::format("application {:04}", s.int64(0))] =
          app_entry_value(s.text(1), s.text(2), s.text(3), s.text(4), s.text(5));
    }
  }
  {
    auto& s = impl.stmt(
        "SELECT f.path, f.link IS NOT NULL, coalesce(f.link, ''), f.blob_id IS NULL, b.sha256 FROM "
        "release_files f "
        "LEFT JOIN blobs b ON b.id = f.blob_id WHERE f.release = ?");
    Done done{s};
    s.bind(1, id);
    while (s.step()) {
      const std::string path = "file " + s.text(0);
      if (s.int64(1) != 0) {
        l[path] = "link:" + s.text(2);
      } else if (s.int64(3) != 0) {
        l[path] = "directory";
      } else {
        l[path] = base::hex(s.blob(4));
      }
    }
  }
  auto& s = impl.stmt(
      "SELECT rm.path, v.md5 FROM release_modules rm JOIN versions v ON v.module = rm.module AND v.version = "
      "rm.version WHERE rm.release = ?");
  Done done{s};
  s.bind(1, id);
  while (s.step()) l["file " + s.text(0)] = s.text(1);
  return l;
}

}  // namespace

Result<ReleaseImportResult> Store::import_release(const ReleaseContent& rel,
                                                  const ReleaseImportOptions& options) {
  const ReleaseId id{rel.name, rel.vsn};
  return impl_->call(
      [&] { return "import " + rel_name(id); },
      [&]() -> Result<ReleaseImportResult> {
        if (!options.dry_run) impl_->require_writable("import");
        const std::string name = rel_name(id);
        auto refuse = [&](std::string message) {
          return error(Code::kInvalidArgument, fmt::format("{}: {}: nothing imported", name, message));
        };
        if (auto bad = store_internal::bad_name("release name", rel.name)) return refuse(*bad);
        if (auto bad = store_internal::bad_name("release vsn", rel.vsn)) return refuse(*bad);
        if (rel.erts_vsn.empty()) return refuse("no erts version (the .rel's {erts, Vsn})");

        // The .rel against the applications: each entry has its application version, once.
        std::vector<const AppContent*> in_rel(rel.rel_apps.size(), nullptr);
        std::set<std::string> named;
        for (std::size_t i = 0; i < rel.rel_apps.size(); ++i) {
          const auto& e = rel.rel_apps[i];
          if (!named.insert(e.app).second)
            return refuse(fmt::format("the .rel names application {} twice", e.app));
          std::vector<std::string> other_vsns;
          for (const AppContent& a : rel.apps) {
            if (a.app != e.app) continue;
            if (a.vsn == e.vsn) {
              in_rel[i] = &a;
            } else {
              other_vsns.push_back(a.vsn);
            }
          }
          if (in_rel[i] == nullptr) {
            return refuse(fmt::format(
                "the .rel names {}@{}, which the release lacks{}", e.app, e.vsn,
                other_vsns.empty() ? fmt::format(" (no lib/{}-{} whose .app says so)", e.app, e.vsn)
                                   : fmt::format(" (it has {}@{})", e.app, fmt::join(other_vsns, ", "))));
          }
        }
        {
          std::set<std::pair<std::string, std::string>> given;
          for (const AppContent& a : rel.apps) {
            if (!given.insert({a.app, a.vsn}).second)
              return refuse(fmt::format("{}@{} is given twice", a.app, a.vsn));
          }
        }
        ReleaseImportResult result;
        result.release = id;
        result.warnings = rel.warnings;

        // Every application checked against its .app; those outside the .rel are stored as
        // application versions but are not part of the release.
        std::vector<PreparedApp> apps;
        apps.reserve(rel.apps.size());
        std::vector<std::size_t> order;  // .rel order first
        std::set<const AppContent*> placed;
        for (const AppContent* a : in_rel) {
          if (!placed.insert(a).second) return refuse(fmt::format("{}@{} is given twice", a->app, a->vsn));
        }
        for (const AppContent* a : in_rel) {
          auto p = store_internal::check_app(*a);
          if (!p) return error(p.error().with_context(name + ": nothing imported"));
          apps.push_back(std::move(*p));
        }
        for (const AppContent& a : rel.apps) {
          if (placed.contains(&a)) continue;
          auto p = store_internal::check_app(a);
          if (!p) return error(p.error().with_context(name + ": nothing imported"));
          result.warnings.push_back(
              fmt::format("{}: {}@{} is not in the .rel: stored as an application version, not "
                          "as part of the release",
                          name, a.app, a.vsn));
          apps.push_back(std::move(*p));
        }

        // systools refuses a module that two applications carry; consolidated protocols are the
        // release's own and take precedence by the boot path, so they are not counted.
        {
          std::map<std::string, std::vector<std::string>> holders;
          for (std::size_t i = 0; i < in_rel.size(); ++i) {
            for (const auto& f : apps[i].files) {
              if (f.module)
                holders[f.expected_module].push_back(fmt::format("{}@{}", in_rel[i]->app, in_rel[i]->vsn));
            }
          }
          std::vector<std::string> dups;
          for (const auto& [module, owners] : holders) {
            if (owners.size() > 1)
              dups.push_back(fmt::format("{} (in {})", module, fmt::join(owners, " and ")));
          }
          if (!dups.empty()) {
            return refuse(
                fmt::format("modules carried by two applications: {} (systools refuses duplicated modules)",
                            store_internal::some(dups, 10)));
          }
        }

        const std::string consolidated_dir = fmt::format("releases/{}/consolidated/", rel.vsn);
        auto files = store_internal::check_files(rel.files, name, consolidated_dir);
        if (!files) return error(files.error().with_context("nothing imported"));
        for (const auto& f : *files) {
          // lib/ is the applications' (an export writes them there); erts is never stored.
          if (f.path == "lib" || f.path.starts_with("lib/") || f.path.starts_with("erts-")) {
            return refuse(
                fmt::format("{}: a release's own file cannot be under lib/ (its applications') or "
                            "erts-* (never stored)",
                            f.path));
          }
        }
        if (std::none_of(files->begin(), files->end(), [&](const PreparedFile& f) {
              return f.path == fmt::format("releases/{}/{}.rel", rel.vsn, rel.name);
            })) {
          result.warnings.push_back(
              fmt::format("{}: no releases/{}/{}.rel among its files (release_handler and an "
                          "exported tarball need it)",
                          name, rel.vsn, rel.name));
        }

        // Read, validate and compress every file on the workers.
        std::vector<PreparedFile*> work;
        for (auto& app : apps) store_internal::add_work(app, work, result.bytes_in);
        for (auto& f : *files) {
          result.bytes_in += f.source->bytes.size();
          if (!f.regular()) continue;
          f.origin = rel.origin.empty() ? name + ":" + f.path : rel.origin + "/" + f.path;
          work.push_back(&f);
        }
        if (Status st = impl_->prepare_files(work); !st) return error(st.with_context("nothing imported"));

        Impl::WriteTx tx(*impl_);
        Impl::Stored stored;
        auto finish = [&](const Impl::Stored& st) {
          result.new_versions = st.new_versions;
          result.reused_versions = st.reused_versions;
          result.new_blobs = st.new_blobs;
          result.bytes_new = st.bytes_new;
          result.bytes_stored = st.bytes_stored;
        };
        bool changed = false;
        Listing listing;
        listing["erts"] = rel.erts_vsn;
        std::vector<std::int64_t> app_ids;
        for (std::size_t i = 0; i < apps.size(); ++i) {
          AppImportResult r = impl_->store_app(apps[i], options.note, stored);
          if (!r.unchanged) {
            changed = true;
            result.revisions_made++;
          }
          for (const auto& w : r.warnings) result.warnings.push_back(w);
          if (i < in_rel.size()) {
            const auto& e = rel.rel_apps[i];
            listing[fmt::format("application {:04}", i + 1)] =
                app_entry_value(e.app, e.vsn, apps[i].key, e.type, e.included);
            app_ids.push_back(r.id);
          }
          result.apps.push_back(std::move(r));
        }
        for (const auto& f : *files) listing["file " + f.path] = store_internal::listing_value(f);

        std::int64_t rid = 0;
        {
          auto& s = impl_->stmt("SELECT id FROM releases WHERE name = ? AND vsn = ?");
          Impl::Done done{s};
          s.bind(1, rel.name);
          s.bind(2, rel.vsn);
          if (s.step()) rid = s.int64(0);
        }
        if (rid != 0) {
          const auto differences = listing_differences(release_listing(*impl_, rid), listing);
          if (differences.empty()) {
            result.id = rid;
            result.unchanged = true;
            finish(stored);
            if (!options.dry_run && changed) tx.commit();  // applications outside the .rel
            return result;
          }
          if (!options.replace) {
            return error(
                Code::kAlreadyExists,
                fmt::format("{} is stored with other content (it differs in {}): a release is immutable; "
                            "replace it explicitly (--replace) or give the new one another vsn: nothing "
                            "imported",
                            name, store_internal::some(differences, 8)));
          }
          for (const char* sql :
               {"DELETE FROM release_apps WHERE release = ?", "DELETE FROM release_files WHERE release = ?",
                "DELETE FROM release_modules WHERE release = ?"}) {
            auto& s = impl_->stmt(sql);
            s.bind(1, rid);
            s.exec();
          }
          auto& s = impl_->stmt(
              "UPDATE releases SET erts_vsn = ?, kind = ?, origin = ?, imported_at = ? WHERE id = ?");
          s.bind(1, rel.erts_vsn);
          s.bind(2, rel.kind);
          s.bind(3, rel.origin);
          s.bind(4, now());
          s.bind(5, rid);
          s.exec();
          result.replaced = true;
          result.warnings.insert(result.warnings.begin(),
                                 fmt::format("REPLACED: {} was stored with other content (it differed in {})",
                                             name, store_internal::some(differences, 8)));
        } else {
          auto& s = impl_->stmt(
              "INSERT INTO releases (name, vsn, erts_vsn, kind, origin, imported_at) VALUES (?, ?, ?, ?, ?, "
              "?)");
          s.bind(1, rel.name);
          s.bind(2, rel.vsn);
          s.bind(3, rel.erts_vsn);
          s.bind(4, rel.kind);
          s.bind(5, rel.origin);
          s.bind(6, now());
          s.exec();
          rid = impl_->db->last_insert_id();
        }
        result.id = rid;
        for (std::size_t i = 0; i < app_ids.size(); ++i) {
          auto& s = impl_->stmt(
              "INSERT INTO release_apps (release, position, app_version, type, included) VALUES (?, ?, ?, ?, "
              "?)");
          s.bind(1, rid);
          s.bind(2, static_cast<std::int64_t>(i + 1));
          s.bind(3, app_ids[i]);
          s.bind(4, rel.rel_apps[i].type);
          s.bind(5, rel.rel_apps[i].included);
          s.exec();
        }
        const std::string what = rel.origin.empty() ? name : fmt::format("{}: {}", name, rel.origin);
        const std::string why = what + " (consolidated; not activated)";
        for (auto& f : *files) {
          const std::int64_t blob_id = f.regular() ? impl_->put_blob(f.blob, stored) : 0;
          if (f.module) {
            f.blob.lib = rel.name;  // the release's own: no application carries it
            const std::int64_t version =
                impl_->module_version_for(f.blob, blob_id, options.note, why, stored);
            auto& s = impl_->stmt(
                "INSERT INTO release_modules (release, module, version, blob_id, path) VALUES (?, ?, ?, ?, "
                "?)");
            s.bind(1, rid);
            s.bind(2, f.blob.module);
            s.bind(3, version);
            s.bind(4, blob_id);
            s.bind(5, f.path);
            s.exec();
            continue;
          }
          auto& s = impl_->stmt(
              "INSERT INTO release_files (release, path, blob_id, mode, link) VALUES (?, ?, ?, ?, ?)");
          store_internal::insert_file_row(s, rid, f.path, blob_id, f.mode, f.link);
        }
        impl_->event(result.replaced ? "release-replace" : "release-import", "", 0, 0, what);
        finish(stored);
        if (!options.dry_run) tx.commit();
        return result;
      });
}

}  // namespace codestore

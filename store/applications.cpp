// Application versions (docs/model.md): checking an AppContent against its .app as systools
// does, preparing its files on the workers, storing it as an application version (unchanged,
// new, or a new revision with a loud warning), and reading application versions back.
// import_release (release_import.cpp) stores its applications through the same steps.
#include <codestore/image.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/hex.h"
#include "etf/consult.h"
#include "otp/otp_files.h"
#include "parallel.h"
#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::now;
using store_internal::Prepared;
using store_internal::PreparedApp;
using store_internal::PreparedFile;
using store_internal::WorkerState;

namespace store_internal {

std::optional<std::string> bad_relative_path(std::string_view path) {
  if (path.empty()) return "an empty path";
  if (path.front() == '/') return "an absolute path";
  if (path.find('\0') != std::string_view::npos) return "a path with a NUL byte";
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty()) return "a path with an empty component";
    if (part == "." || part == "..") return "a path with a '.' or '..' component";
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<std::string> bad_name(std::string_view what, std::string_view name) {
  if (name.empty()) return fmt::format("an empty {}", what);
  if (name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    return fmt::format("{} {:?} cannot name a directory (/, control characters, . and .. are refused)", what,
                       name);
  }
  return std::nullopt;
}

std::optional<std::string> escaping_link(std::string_view path, std::string_view target) {
  if (target.empty()) return "an empty link target";
  if (target.front() == '/') return fmt::format("a link to an absolute path ({})", target);
  // Lexically, from the link's directory: a depth below 0 leaves the tree.
  int depth = static_cast<int>(std::count(path.begin(), path.end(), '/'));
  std::size_t start = 0;
  while (start <= target.size()) {
    const std::size_t end = std::min(target.find('/', start), target.size());
    const std::string_view part = target.substr(start, end - start);
    if (part == "..") {
      if (--depth < 0) return fmt::format("a link out of its tree ({})", target);
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::string listing_value(const PreparedFile& f) {
  if (f.directory) return "directory";
  if (!f.link.empty()) return "link:" + f.link;
  if (f.module) return f.blob.md5;
  return base::hex(f.blob.sha);
}

std::string content_key(const std::map<std::string, std::string>& listing) {
  std::string text;
  for (const auto& [path, value] : listing) {
    text += path;
    text.push_back('\0');
    text += value;
    text.push_back('\0');
  }
  return base::hex(db::sha256(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
}

std::optional<std::string> module_path_name(std::string_view path) {
  if (!path.starts_with("ebin/") || !path.ends_with(".beam")) return std::nullopt;
  const std::string_view name = path.substr(5, path.size() - 10);
  if (name.empty() || name.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(name);
}

std::string origin_of(const AppContent& app, std::string_view path) {
  if (app.origin.empty()) return fmt::format("{}@{}:{}", app.app, app.vsn, path);
  return fmt::format("{}/{}", app.origin, path);
}

void add_work(PreparedApp& app, std::vector<PreparedFile*>& work, std::uint64_t& bytes_in) {
  for (auto& f : app.files) {
    bytes_in += f.source->bytes.size();
    if (!f.regular()) continue;
    f.origin = origin_of(*app.content, f.path);
    work.push_back(&f);
  }
}

std::string app_name_vsn(std::string_view app, std::string_view vsn, std::int64_t revision) {
  return revision > 1 ? fmt::format("{}@{}#{}", app, vsn, revision) : fmt::format("{}@{}", app, vsn);
}

// "a, b, c and 4 more": a list a message can carry.
std::string some(const std::vector<std::string>& items, std::size_t max) {
  if (items.size() <= max) return fmt::format("{}", fmt::join(items, ", "));
  return fmt::format("{} and {} more", fmt::join(items.begin(), items.begin() + static_cast<long>(max), ", "),
                     items.size() - max);
}

namespace {

// Whether `path` is a module image of its tree: `ebin/<m>.beam` in an application,
// `releases/<vsn>/consolidated/<m>.beam` in a release (module_dir). The module is the stem.
std::optional<std::string> module_of_path(std::string_view path, std::string_view module_dir) {
  if (!path.starts_with(module_dir) || !path.ends_with(".beam")) return std::nullopt;
  const std::string_view name = path.substr(module_dir.size(), path.size() - module_dir.size() - 5);
  if (name.empty() || name.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(name);
}

}  // namespace

Result<std::vector<PreparedFile>> check_files(const std::vector<ContentFile>& files, std::string_view owner,
                                              std::string_view module_dir) {
  std::vector<PreparedFile> out;
  out.reserve(files.size());
  std::set<std::string_view> seen;
  for (const ContentFile& f : files) {
    const std::string where = fmt::format("{}: {}", owner, f.path);
    if (auto bad = bad_relative_path(f.path))
      return error(Code::kInvalidArgument, fmt::format("{}: {}", where, *bad));
    if (!seen.insert(f.path).second)
      return error(Code::kInvalidArgument, fmt::format("{}: listed twice", where));
    if (f.mode > 0777) {
      return error(
          Code::kInvalidArgument,
          fmt::format("{}: mode {:04o} (setuid, setgid and sticky bits are refused)", where, f.mode));
    }
    const int kinds = (f.directory ? 1 : 0) + (f.link.empty() ? 0 : 1);
    if (kinds > 1 || (kinds == 1 && !f.bytes.empty())) {
      return error(Code::kInvalidArgument,
                   fmt::format("{}: a directory or link with bytes (one kind of file each)", where));
    }
    if (!f.link.empty()) {
      if (auto bad = escaping_link(f.path, f.link))
        return error(Code::kInvalidArgument, fmt::format("{}: {}", where, *bad));
    }
    PreparedFile p;
    p.path = f.path;
    p.mode = f.mode;
    p.link = f.link;
    p.directory = f.directory;
    p.source = &f;
    if (kinds == 0) {
      if (auto m = module_of_path(f.path, module_dir)) {
        p.module = true;
        p.expected_module = std::move(*m);
      }
    }
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const PreparedFile& a, const PreparedFile& b) { return a.path < b.path; });
  return out;
}

}  // namespace store_internal

// --- the .app ---------------------------------------------------------------------------------

namespace store_internal {

// The one place a .app is read: term text by etf::consult, the term by the otp floor's
// parse_app (systools' checks of each key's type).
Result<AppResource> read_app_resource(std::span<const std::uint8_t> bytes, std::string_view source) {
  auto terms = etf::consult(bytes, source);
  if (!terms) return error(terms.error());
  if (terms->size() != 1) {
    return error(Code::kInvalidArgument,
                 fmt::format("{}: {} terms (an application resource file holds one {{application, Name, "
                             "[{{Key, Value}}]}})",
                             source, terms->size()));
  }
  auto spec = otp::parse_app(terms->front(), source);
  if (!spec) return error(spec.error());
  return AppResource{std::move(spec->name), std::move(spec->vsn), std::move(spec->modules)};
}

Status check_app_resource(PreparedApp& app) {
  const AppContent& c = *app.content;
  const std::string name = app_name_vsn(c.app, c.vsn, 0);
  const std::string app_path = fmt::format("ebin/{}.app", c.app);
  const auto it = std::find_if(app.files.begin(), app.files.end(),
                               [&](const PreparedFile& f) { return f.path == app_path; });
  if (it == app.files.end() || it->source == nullptr || it->directory || !it->link.empty()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}: no {} (an application version is named by its .app)", name, app_path));
  }
  auto spec = read_app_resource(it->source->bytes, fmt::format("{}: {}", name, app_path));
  if (!spec) return spec.error();
  if (spec->name != c.app || spec->vsn != c.vsn) {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}: {} says {}@{}: an application version is named by its .app, not by "
                              "its directory",
                              name, app_path, spec->name, spec->vsn));
  }
  std::set<std::string> beams;
  for (const auto& f : app.files) {
    if (f.module) beams.insert(f.expected_module);
  }
  std::vector<std::string> missing, twice;
  std::set<std::string> listed;
  for (const auto& m : spec->modules) {
    if (!listed.insert(m).second) twice.push_back(m);
    if (!beams.contains(m)) missing.push_back(m);
  }
  if (!twice.empty()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}: {} lists modules twice: {} (systools: duplicate_modules)", name, app_path,
                              some(twice, 10)));
  }
  if (!missing.empty()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}: {} lists modules without their .beam: {} (systools refuses it: "
                              "ebin/<module>.beam must exist for each)",
                              name, app_path, some(missing, 10)));
  }
  std::vector<std::string> unlisted;
  for (const auto& m : beams) {
    if (!listed.contains(m)) unlisted.push_back(m);
  }
  if (!unlisted.empty()) {
    app.warnings.push_back(
        fmt::format("{}: modules not listed in {}: {} (a release's boot script will not load them)", name,
                    app_path, some(unlisted, 10)));
  }
  return Status::ok();
}

Result<PreparedApp> check_app(const AppContent& c) {
  const std::string name = app_name_vsn(c.app, c.vsn, 0);
  if (auto bad = bad_name("application name", c.app)) return error(Code::kInvalidArgument, *bad);
  if (auto bad = bad_name("application vsn", c.vsn))
    return error(Code::kInvalidArgument, fmt::format("{}: {}", c.app, *bad));
  PreparedApp app;
  app.content = &c;
  auto files = check_files(c.files, name, "ebin/");
  if (!files) return error(files.error());
  app.files = std::move(*files);
  if (Status st = check_app_resource(app); !st) return error(st);
  return app;
}

}  // namespace store_internal

// --- preparing: the workers ----------------------------------------------------------------------

Status Store::Impl::prepare_files(const std::vector<PreparedFile*>& files) {
  const auto dict = newest_dictionary();
  const int level = options.zstd_level;
  Status failure;
  store_internal::parallel_ordered<Status, WorkerState>(
      files.size(),
      [&](std::size_t i, WorkerState& w) -> Status {
        PreparedFile& f = *files[i];
        const ContentFile& src = *f.source;
        if (f.module) {
          auto p =
              store_internal::prepare(src.bytes, f.origin, w.compressor, level, dict.get(), options.chunks);
          if (!p) return p.error();
          if (p->module != f.expected_module) {
            return Status(Code::kInvalidArgument,
                          fmt::format("{}: holds module {}, not {} (a module is loaded from <module>.beam)",
                                      f.origin, p->module, f.expected_module));
          }
          f.blob = std::move(*p);
          return Status::ok();
        }
        auto p = store_internal::prepare_blob(src.bytes, f.origin, w.compressor, level, dict.get());
        if (!p) return p.error();
        f.blob = std::move(*p);
        return Status::ok();
      },
      [&](std::size_t, Status& st) {
        if (st) return true;
        failure = st;
        return false;
      });
  return failure;
}

// --- storing ----------------------------------------------------------------------------------------

std::map<std::string, std::string> Store::Impl::app_listing(std::int64_t app_version) {
  std::map<std::string, std::string> listing;
  {
    auto& s = stmt(
        "SELECT am.path, v.md5 FROM app_modules am JOIN versions v ON v.module = am.module AND v.version = "
        "am.version WHERE am.app_version = ?");
    Done done{s};
    s.bind(1, app_version);
    while (s.step()) listing[s.text(0)] = s.text(1);
  }
  auto& s = stmt(
      "SELECT f.path, f.link IS NOT NULL, coalesce(f.link, ''), f.blob_id IS NULL, b.sha256 FROM app_files f "
      "LEFT JOIN blobs b ON b.id = f.blob_id WHERE f.app_version = ?");
  Done done{s};
  s.bind(1, app_version);
  while (s.step()) {
    if (s.int64(1) != 0) {
      listing[s.text(0)] = "link:" + s.text(2);
    } else if (s.int64(3) != 0) {
      listing[s.text(0)] = "directory";
    } else {
      listing[s.text(0)] = base::hex(s.blob(4));
    }
  }
  return listing;
}

std::int64_t Store::Impl::put_blob(const Prepared& p, Stored& stored) {
  const BlobRef found = find_blob(p);
  if (found.id != 0) return found.id;
  stored.new_blobs++;
  stored.bytes_new += p.raw_size;
  return insert_blob(p, /*want_id=*/true, nullptr, &stored.bytes_stored);
}

std::int64_t Store::Impl::module_version_for(const Prepared& p, std::int64_t blob_id, const std::string& note,
                                             std::string_view why, Stored& stored) {
  {
    // The code is stored already: that version, preferably the one with these very bytes.
    auto& s = stmt(
        "SELECT version FROM versions WHERE module = ? AND md5 = ? ORDER BY blob_id = ? DESC, version LIMIT "
        "1");
    Done done{s};
    s.bind(1, p.module);
    s.bind(2, p.md5);
    s.bind(3, blob_id);
    if (s.step()) {
      stored.reused_versions++;
      return s.int64(0);
    }
  }
  stored.new_versions++;
  const std::int64_t version = new_version(p, blob_id, note, module_row(p.module));
  event("app-import", p.module, 0, version, why);
  return version;
}

AppImportResult Store::Impl::store_app(PreparedApp& app, const std::string& note, Stored& stored) {
  const AppContent& c = *app.content;
  AppImportResult r;
  r.app = c.app;
  r.vsn = c.vsn;
  r.warnings = app.warnings;
  std::map<std::string, std::string> listing;
  for (const auto& f : app.files) {
    listing[f.path] = store_internal::listing_value(f);
    if (f.module) {
      r.modules++;
    } else {
      r.files++;
    }
  }
  const std::string key = store_internal::content_key(listing);
  app.key = key;
  {
    auto& s = stmt("SELECT id, revision FROM app_versions WHERE app = ? AND vsn = ? AND content = ?");
    Done done{s};
    s.bind(1, c.app);
    s.bind(2, c.vsn);
    s.bind(3, key);
    if (s.step()) {
      r.id = s.int64(0);
      r.revision = s.int64(1);
      r.unchanged = true;
    }
  }
  if (r.unchanged) {
    // The same code and files; another byte form of a module (stripped, gzip-wrapped) is the
    // same content, and an export gives the stored form: said, not hidden.
    std::map<std::string, std::string> stored_sha;
    auto& s = stmt(
        "SELECT am.path, b.sha256 FROM app_modules am JOIN blobs b ON b.id = am.blob_id WHERE am.app_version "
        "= "
        "?");
    Done done{s};
    s.bind(1, r.id);
    while (s.step()) stored_sha[s.text(0)] = base::hex(s.blob(1));
    std::vector<std::string> other_form;
    for (const auto& f : app.files) {
      if (f.module && stored_sha[f.path] != base::hex(f.blob.sha)) other_form.push_back(f.expected_module);
    }
    if (!other_form.empty()) {
      r.warnings.push_back(fmt::format(
          "{}: the same code as stored, in other byte forms (stripped or gzip-wrapped?) for {} modules ({}): "
          "the stored revision is kept, and an export writes its bytes",
          store_internal::app_name_vsn(c.app, c.vsn, r.revision), other_form.size(),
          store_internal::some(other_form, 5)));
    }
    return r;
  }
  std::int64_t newest = 0, newest_id = 0;
  {
    auto& s = stmt(
        "SELECT revision, id FROM app_versions WHERE app = ? AND vsn = ? ORDER BY revision DESC LIMIT 1");
    Done done{s};
    s.bind(1, c.app);
    s.bind(2, c.vsn);
    if (s.step()) {
      newest = s.int64(0);
      newest_id = s.int64(1);
    }
  }
  r.revision = newest + 1;
  std::string warning;
  if (newest != 0) {
    const auto before = app_listing(newest_id);
    std::vector<std::string> modules, files;
    auto differ = [&](const std::string& file) {
      if (auto m = store_internal::module_path_name(file)) {
        modules.push_back(*m);
      } else {
        files.push_back(file);
      }
    };
    for (const auto& [file, value] : listing) {
      auto it = before.find(file);
      if (it == before.end() || it->second != value) differ(file);
    }
    for (const auto& [file, value] : before) {
      if (!listing.contains(file)) differ(file);
    }
    for (const auto& m : modules) r.differs.push_back("module " + m);
    for (const auto& f : files) r.differs.push_back("file " + f);
    std::vector<std::string> parts;
    if (!modules.empty()) parts.push_back(fmt::format("modules {}", store_internal::some(modules, 10)));
    if (!files.empty()) parts.push_back(fmt::format("files {}", store_internal::some(files, 10)));
    warning = fmt::format("{}@{} differs from revision {} in {}: stored as revision {}", c.app, c.vsn, newest,
                          fmt::join(parts, "; "), r.revision);
    r.warnings.insert(r.warnings.begin(), "NEW REVISION: " + warning);
  }
  {
    auto& s = stmt(
        "INSERT INTO app_versions (app, vsn, revision, content, origin, warning, imported_at) VALUES (?, ?, "
        "?, ?, "
        "?, ?, ?)");
    s.bind(1, c.app);
    s.bind(2, c.vsn);
    s.bind(3, r.revision);
    s.bind(4, key);
    s.bind(5, c.origin);
    s.bind(6, warning);
    s.bind(7, now());
    s.exec();
    r.id = db->last_insert_id();
  }
  const std::string why =
      fmt::format("{}{} (not activated)", store_internal::app_name_vsn(c.app, c.vsn, r.revision),
                  c.origin.empty() ? "" : ": " + c.origin);
  const Stored before = stored;
  for (auto& f : app.files) {
    const std::int64_t blob_id = f.regular() ? put_blob(f.blob, stored) : 0;
    if (f.module) {
      f.blob.lib = c.app;
      const std::int64_t version = module_version_for(f.blob, blob_id, note, why, stored);
      auto& s = stmt(
          "INSERT INTO app_modules (app_version, module, version, blob_id, path) VALUES (?, ?, ?, ?, ?)");
      s.bind(1, r.id);
      s.bind(2, f.blob.module);
      s.bind(3, version);
      s.bind(4, blob_id);
      s.bind(5, f.path);
      s.exec();
      continue;
    }
    auto& s = stmt("INSERT INTO app_files (app_version, path, blob_id, mode, link) VALUES (?, ?, ?, ?, ?)");
    store_internal::insert_file_row(s, r.id, f.path, blob_id, f.mode, f.link);
  }
  r.new_versions = stored.new_versions - before.new_versions;
  r.reused_versions = stored.reused_versions - before.reused_versions;
  r.new_blobs = stored.new_blobs - before.new_blobs;
  return r;
}

// --- the calls --------------------------------------------------------------------------------------

Result<AppImportResult> Store::import_app(const AppContent& content, const ReleaseImportOptions& options) {
  return impl_->call(
      [&] { return fmt::format("import {}", store_internal::app_name_vsn(content.app, content.vsn, 0)); },
      [&]() -> Result<AppImportResult> {
        if (!options.dry_run) impl_->require_writable("import");
        auto app = store_internal::check_app(content);
        if (!app) return error(app.error().with_context("nothing imported"));
        std::vector<PreparedFile*> work;
        std::uint64_t bytes_in = 0;  // AppImportResult does not report it
        store_internal::add_work(*app, work, bytes_in);
        if (Status st = impl_->prepare_files(work); !st) return error(st.with_context("nothing imported"));
        Impl::WriteTx tx(*impl_);
        Impl::Stored stored;
        AppImportResult r = impl_->store_app(*app, options.note, stored);
        if (!options.dry_run && !r.unchanged) tx.commit();
        return r;
      });
}

Result<AppsImportResult> Store::import_apps(const std::vector<AppContent>& contents,
                                            const ReleaseImportOptions& options) {
  const std::string& channel = impl_->options.channel;
  return impl_->call(
      [&] {
        return contents.size() == 1 ? fmt::format("import {}", store_internal::app_name_vsn(
                                                                   contents[0].app, contents[0].vsn, 0))
                                    : fmt::format("import {} applications", contents.size());
      },
      [&]() -> Result<AppsImportResult> {
        if (!options.dry_run) impl_->require_writable("import");
        const bool activate = options.activate && !options.dry_run;
        if (options.activate) Impl::require_channel_name(channel);
        auto refuse = [](Code code, std::string message) {
          return error(code, fmt::format("{}: nothing imported", message));
        };
        std::vector<PreparedApp> apps;
        apps.reserve(contents.size());
        std::map<std::string, std::string> given;  // app -> APP@VSN
        for (const AppContent& c : contents) {
          const std::string label = store_internal::app_name_vsn(c.app, c.vsn, 0);
          if (auto [it, fresh] = given.emplace(c.app, label); !fresh && options.activate) {
            return refuse(Code::kInvalidArgument,
                          fmt::format("application {} is given twice ({} and {}): a channel pins one version "
                                      "of each application",
                                      c.app, it->second, label));
          }
          auto p = store_internal::check_app(c);
          if (!p) return error(p.error().with_context("nothing imported"));
          apps.push_back(std::move(*p));
        }
        // A channel runs one version of each module: two applications that carry one are refused
        // as systools refuses duplicated modules.
        std::map<std::string, std::string> carrier;  // module -> APP@VSN, of what is imported
        if (options.activate) {
          std::vector<std::string> dups;
          for (const auto& app : apps) {
            const std::string label = store_internal::app_name_vsn(app.content->app, app.content->vsn, 0);
            for (const auto& f : app.files) {
              if (!f.module) continue;
              if (auto [it, fresh] = carrier.emplace(f.expected_module, label); !fresh)
                dups.push_back(fmt::format("{} (in {} and {})", f.expected_module, it->second, label));
            }
          }
          if (!dups.empty()) {
            return refuse(
                Code::kInvalidArgument,
                fmt::format("modules carried by two applications: {} (a channel runs one version of "
                            "each module; systools refuses duplicated modules)",
                            store_internal::some(dups, 10)));
          }
        }
        AppsImportResult result;
        std::vector<PreparedFile*> work;
        for (auto& app : apps) store_internal::add_work(app, work, result.bytes_in);
        if (Status st = impl_->prepare_files(work); !st) return error(st.with_context("nothing imported"));

        Impl::WriteTx tx(*impl_);
        Impl::Stored stored;
        for (auto& app : apps) {
          AppImportResult r = impl_->store_app(app, options.note, stored);
          if (!r.unchanged) result.revisions_made++;
          for (const auto& w : r.warnings) result.warnings.push_back(w);
          result.apps.push_back(std::move(r));
        }
        result.new_versions = stored.new_versions;
        result.reused_versions = stored.reused_versions;
        result.new_blobs = stored.new_blobs;
        result.bytes_new = stored.bytes_new;
        result.bytes_stored = stored.bytes_stored;
        bool moved = false;
        if (activate) {
          result.channel = channel;
          // module -> version, of an application version.
          auto modules_of = [&](std::int64_t app_version) {
            std::map<std::string, std::int64_t> out;
            auto& s = impl_->stmt("SELECT module, version FROM app_modules WHERE app_version = ?");
            Impl::Done done{s};
            s.bind(1, app_version);
            while (s.step()) out[s.text(0)] = s.int64(1);
            return out;
          };
          auto label_of = [&](std::int64_t app_version) {
            auto& s = impl_->stmt("SELECT app, vsn, revision FROM app_versions WHERE id = ?");
            Impl::Done done{s};
            s.bind(1, app_version);
            if (!s.step()) return fmt::format("application version {}", app_version);
            return store_internal::app_name_vsn(s.text(0), s.text(1), s.int64(2));
          };
          std::map<std::string, std::int64_t> pinned;
          if (impl_->channel_row(channel)) pinned = impl_->generation_app_pins(channel, 0);
          Impl::ChannelChange change(*impl_, channel);
          const std::string reason =
              options.note.empty() ? fmt::format("import of {} applications", apps.size()) : options.note;
          for (const auto& [app, id] : pinned) {
            const bool replaced = given.contains(app);
            for (const auto& [module, version] : modules_of(id)) {
              const auto it = carrier.find(module);
              if (!replaced && it != carrier.end()) {
                fail(Code::kFailedPrecondition,
                     fmt::format("module {} is carried by both {} (imported) and {}, which channel {} pins: "
                                 "nothing imported (a channel runs one version of each module; a release "
                                 "deployed there may replace the one with the other)",
                                 module, it->second, label_of(id), channel));
              }
              // The revision it replaces leaves: its modules the new one lacks become inactive,
              // unless something else was activated in their place since.
              if (replaced && it == carrier.end()) {
                const auto row = impl_->module_row(module, channel);
                if (row && row->active == version)
                  result.changed.push_back(change.set_module(module, 0, "import", reason));
              }
            }
          }
          for (const auto& r : result.apps) {
            for (const auto& [module, version] : modules_of(r.id)) {
              Activation a = change.set_module(module, version, "import", reason);
              if (a.from_version != a.to_version) result.changed.push_back(std::move(a));
            }
            change.set_app(r.app, r.id);
          }
          result.generation = change.commit({.action = "import", .reason = reason});
          moved = result.generation != 0;
          std::sort(result.changed.begin(), result.changed.end(),
                    [](const Activation& a, const Activation& b) { return a.module < b.module; });
        }
        if (!options.dry_run && (result.revisions_made != 0 || moved)) tx.commit();
        return result;
      });
}

namespace {

AppVersionSummary summary_of(db::Statement& s) {
  AppVersionSummary a;
  a.id = s.int64(0);
  a.app = s.text(1);
  a.vsn = s.text(2);
  a.revision = s.int64(3);
  a.content = s.text(4);
  a.origin = s.text(5);
  a.warning = s.text(6);
  a.imported_at = s.int64(7);
  a.modules = s.int64(8);
  a.files = s.int64(9);
  return a;
}

constexpr const char* kAppSummaryColumns =
    "a.id, a.app, a.vsn, a.revision, a.content, a.origin, a.warning, a.imported_at, "
    "(SELECT count(*) FROM app_modules m WHERE m.app_version = a.id), "
    "(SELECT count(*) FROM app_files f WHERE f.app_version = a.id) FROM app_versions a ";

}  // namespace

Result<std::vector<AppVersionSummary>> Store::apps() {
  return impl_->call("apps", [&]() -> Result<std::vector<AppVersionSummary>> {
    static const std::string sql =
        std::string("SELECT ") + kAppSummaryColumns + "ORDER BY a.app, a.vsn, a.revision";
    auto& s = impl_->stmt(sql.c_str());
    Impl::Done done{s};
    std::vector<AppVersionSummary> out;
    while (s.step()) out.push_back(summary_of(s));
    return out;
  });
}

std::vector<ContentModule> Store::Impl::content_modules(const char* sql, std::int64_t owner) {
  auto& s = stmt(sql);
  Done done{s};
  s.bind(1, owner);
  std::vector<ContentModule> out;
  while (s.step()) {
    out.push_back({s.text(0), s.int64(1), s.text(2), s.text(3), base::hex(s.blob(4)),
                   static_cast<std::uint64_t>(s.int64(5))});
  }
  return out;
}

std::vector<ContentEntry> Store::Impl::content_entries(const char* sql, std::int64_t owner) {
  auto& s = stmt(sql);
  Done done{s};
  s.bind(1, owner);
  std::vector<ContentEntry> out;
  while (s.step()) {
    ContentEntry e;
    e.path = s.text(0);
    e.mode = static_cast<std::uint32_t>(s.int64(1));
    if (s.int64(2) != 0) {
      e.link = s.text(3);
    } else if (s.int64(4) != 0) {
      e.directory = true;
    } else {
      e.sha256 = base::hex(s.blob(5));
      e.size = static_cast<std::uint64_t>(s.int64(6));
    }
    out.push_back(std::move(e));
  }
  return out;
}

AppVersionInfo Store::Impl::app_version_info(std::int64_t id) {
  AppVersionInfo info;
  {
    static const std::string sql = std::string("SELECT ") + kAppSummaryColumns + "WHERE a.id = ?";
    auto& s = stmt(sql.c_str());
    Done done{s};
    s.bind(1, id);
    if (!s.step()) fail(Code::kNotFound, fmt::format("no application version {}", id));
    info.summary = summary_of(s);
  }
  info.modules = content_modules(
      "SELECT am.module, am.version, v.md5, am.path, b.sha256, b.raw_size FROM app_modules am JOIN versions "
      "v ON "
      "v.module = am.module AND v.version = am.version JOIN blobs b ON b.id = am.blob_id WHERE "
      "am.app_version = ? "
      "ORDER BY am.module",
      id);
  info.files = content_entries(
      "SELECT f.path, f.mode, f.link IS NOT NULL, coalesce(f.link, ''), f.blob_id IS NULL, b.sha256, "
      "coalesce(b.raw_size, 0) FROM app_files f LEFT JOIN blobs b ON b.id = f.blob_id WHERE f.app_version = "
      "? "
      "ORDER BY f.path",
      id);
  return info;
}

Result<AppVersionInfo> Store::app_show(std::string_view app, std::string_view vsn, std::int64_t revision) {
  return impl_->call(
      [&] { return fmt::format("app show {}", store_internal::app_name_vsn(app, vsn, revision)); },
      [&]() -> Result<AppVersionInfo> {
        if (revision < 0)
          fail(Code::kInvalidArgument,
               fmt::format("revision {}: revisions are whole numbers from 1", revision));
        std::int64_t id = 0;
        std::vector<std::int64_t> revisions;
        {
          auto& s = impl_->stmt(
              "SELECT id, revision FROM app_versions WHERE app = ? AND vsn = ? ORDER BY revision");
          Impl::Done done{s};
          s.bind(1, app);
          s.bind(2, vsn);
          while (s.step()) {
            revisions.push_back(s.int64(1));
            if (revision == 0 || s.int64(1) == revision) id = s.int64(0);
          }
        }
        if (revisions.empty()) {
          fail(Code::kNotFound, fmt::format("no application version {}@{}", app, vsn));
        }
        if (id == 0) {
          fail(Code::kNotFound, fmt::format("{}@{} has no revision {} (it has {})", app, vsn, revision,
                                            fmt::join(revisions, ", ")));
        }
        return impl_->app_version_info(id);
      });
}

}  // namespace codestore

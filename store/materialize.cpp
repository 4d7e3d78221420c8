// materialize: a node's local root made to hold what the node opens on local disk for the
// current generation of a channel, and nothing else (include/codestore/store.h;
// docs/operator-guide.md, "A node's local root"). Module images, .app files and boot scripts
// also reach a node through the boot server; what is here is what no boot server can give:
// NIFs, drivers and other priv files (code:priv_dir/1 is a local path), releases/RELEASES
// (file:consult), vm.args (erlexec, before a VM exists), start_erl.data (scripts), and the
// files release_handler reads and checks on local disk (start.boot, sys.config, relup, ebin/
// directories).
//
// The manifest (kManifest) is what makes a second run safe: a path is materialize's to replace
// or remove only when its content is what a manifest says materialize wrote there. A run
// first writes a pending manifest (kPending) naming everything the directory may then hold of
// its writing (the old manifest's entries, an interrupted run's, and this run's), then the
// files (each renamed into place), then the manifest, then removes the pending one.
//
// Thread safety: a Store call (Impl::call, under the store's mutex); the values below are one
// run's own. Two runs on one directory, in any processes, are kept apart by DirLock.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/hex.h"
#include "etf/consult.h"
#include "etf/term_internal.h"
#include "file_tree.h"
#include "store_impl.h"

namespace codestore {

using store_internal::Cleanup;
using store_internal::errno_text;
using store_internal::fail;
using store_internal::make_dirs;
using store_internal::temporary_beside;
using store_internal::TreeItem;
using store_internal::write_new_file;

namespace {

namespace fs = std::filesystem;
using etf::internal::atom_text;
using etf::internal::string_text;

constexpr const char* kManifest = ".codestore-materialized";
constexpr const char* kPending = ".codestore-materialized.pending";
constexpr std::int64_t kManifestFormat = 1;
constexpr std::size_t kMaxManifestBytes = 256u << 20;
// An existing file is read whole to compare its SHA-256 with what a manifest recorded.
constexpr std::size_t kMaxCompareBytes = std::size_t{4} << 30;

// What a path holds, on disk or as a manifest or the generation has it.
struct Entry {
  enum class Kind { kFile, kLink, kDir, kOther };
  Kind kind = Kind::kFile;
  std::string sha256;         // kFile: hex
  std::uint32_t mode = 0644;  // kFile: permission bits
  std::string link;           // kLink: the target
  bool operator==(const Entry&) const = default;
};

// What the generation puts at a path, and where a file's bytes come from.
struct Want {
  Entry entry;
  std::uint32_t dir_mode = 0755;    // kDir
  std::int64_t blob_id = 0;         // a stored file
  std::vector<std::uint8_t> bytes;  // a generated one (RELEASES, start_erl.data)
  std::uint64_t size = 0;
};

struct Manifest {
  bool present = false;
  std::string channel;
  std::int64_t generation = 0;
  // path -> what materialize wrote (a pending manifest may name several per path).
  std::multimap<std::string, Entry> entries;
};

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  return base::hex(db::sha256(bytes));
}

std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

// --- the manifest: a term file ---------------------------------------------------------------

std::string manifest_text(const std::string& channel, std::int64_t generation, const ReleaseId& release,
                          const std::multimap<std::string, Entry>& entries) {
  std::string out =
      "%% coding: utf-8\n"
      "%% Written by codestore materialize: the files it wrote into this directory, which its next\n"
      "%% run replaces or removes. Other files here are not its and are never touched.\n";
  out += fmt::format("{{materialized,{},{},{}}}.\n", kManifestFormat, string_text(channel), generation);
  if (!release.name.empty())
    out += fmt::format("{{release,{},{}}}.\n", string_text(release.name), string_text(release.vsn));
  for (const auto& [path, e] : entries) {
    switch (e.kind) {
      case Entry::Kind::kFile:
        out += fmt::format("{{file,{},{},{}}}.\n", string_text(path), string_text(e.sha256), e.mode);
        break;
      case Entry::Kind::kLink:
        out += fmt::format("{{link,{},{}}}.\n", string_text(path), string_text(e.link));
        break;
      case Entry::Kind::kDir: out += fmt::format("{{dir,{}}}.\n", string_text(path)); break;
      case Entry::Kind::kOther: break;
    }
  }
  return out;
}

// A manifest's path must stay inside the directory: a damaged or hand-edited one must never
// make a run remove a file elsewhere.
bool safe_path(const std::string& path) {
  return !path.empty() && !store_internal::bad_relative_path(path) && path != kManifest && path != kPending;
}

Manifest read_manifest(const fs::path& file) {
  Manifest m;
  auto bytes = base::read_file(file.string(), kMaxManifestBytes);
  if (!bytes) {
    if (bytes.error().err == ENOENT) return m;
    db::check(bytes.error().status(file.string()));
  }
  m.present = true;
  auto terms = etf::consult(*bytes, file.string());
  if (!terms) db::check(terms.error());
  auto bad = [&](const etf::Term& t) {
    fail(Code::kCorruption,
         fmt::format("{}: not a materialize manifest: {}", file.string(), etf::format_w(t).substr(0, 200)));
  };
  bool header = false;
  for (const auto& t : *terms) {
    const etf::Tuple* tuple = t.as_tuple();
    if (tuple == nullptr || tuple->elements.empty() || tuple->elements[0].as_atom() == nullptr) bad(t);
    const auto& el = tuple->elements;
    const std::string tag = el[0].as_atom()->name;
    auto str = [&](std::size_t i) {
      auto s = etf::internal::string_of(el[i]);
      if (!s) bad(t);
      return *s;
    };
    if (tag == "materialized" && el.size() == 4) {
      const std::int64_t* format = el[1].as_int();
      const std::int64_t* generation = el[3].as_int();
      if (format == nullptr || generation == nullptr) bad(t);
      if (*format != kManifestFormat) {
        fail(Code::kNotSupported, fmt::format("{}: manifest format {} (this codestore writes {})",
                                              file.string(), *format, kManifestFormat));
      }
      m.channel = str(2);
      m.generation = *generation;
      header = true;
    } else if (tag == "release" && el.size() == 3) {
      // Said for people; the entries are what counts.
    } else if (tag == "file" && el.size() == 4) {
      const std::int64_t* mode = el[3].as_int();
      if (mode == nullptr || *mode < 0 || *mode > 07777) bad(t);
      Entry e{Entry::Kind::kFile, str(2), static_cast<std::uint32_t>(*mode), ""};
      if (!safe_path(str(1))) bad(t);
      m.entries.emplace(str(1), std::move(e));
    } else if (tag == "link" && el.size() == 3) {
      if (!safe_path(str(1))) bad(t);
      m.entries.emplace(str(1), Entry{Entry::Kind::kLink, "", 0, str(2)});
    } else if (tag == "dir" && el.size() == 2) {
      if (!safe_path(str(1))) bad(t);
      m.entries.emplace(str(1), Entry{Entry::Kind::kDir, "", 0, ""});
    } else {
      bad(t);
    }
  }
  if (!header)
    fail(Code::kCorruption, fmt::format("{}: not a materialize manifest: no header", file.string()));
  return m;
}

// Writes `text` to `file` under a temporary name, renamed into place.
void replace_file(const fs::path& file, const std::string& text) {
  Cleanup tmp{temporary_beside(file)};
  write_new_file(tmp.path, bytes_of(text), 0644, /*sync=*/true);
  if (::rename(tmp.path.c_str(), file.c_str()) != 0)
    fail(Code::kIOError, fmt::format("{}: cannot rename into place: {}", file.string(), errno_text(errno)));
  tmp.keep = true;
}

// --- the directory ------------------------------------------------------------------------------

// What `path` holds now, without following a link at its end; nullopt when nothing is there.
std::optional<Entry> on_disk(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    fail(Code::kIOError, fmt::format("{}: {}", path.string(), errno_text(errno)));
  }
  Entry e;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(path, ec);
    if (ec) fail(Code::kIOError, fmt::format("{}: cannot read the link: {}", path.string(), ec.message()));
    e.kind = Entry::Kind::kLink;
    e.mode = 0;
    e.link = target.string();
  } else if (S_ISDIR(st.st_mode)) {
    e.kind = Entry::Kind::kDir;
    e.mode = 0;
  } else if (S_ISREG(st.st_mode)) {
    auto bytes = base::read_file(path.string(), kMaxCompareBytes);
    if (!bytes) db::check(bytes.error().status(path.string()));
    e.sha256 = sha256_hex(*bytes);
    e.mode = st.st_mode & 07777;
  } else {
    e.kind = Entry::Kind::kOther;  // a fifo, a socket, a device: never materialize's
  }
  return e;
}

// The first directory above `rel` (inside `dir`) that exists and is not a directory (a file, or
// a link, which is never followed), or "" when there is none.
std::string blocking_parent(const fs::path& dir, const std::string& rel) {
  for (std::size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    std::string up = rel.substr(0, slash);
    struct stat st {};
    if (::lstat((dir / up).c_str(), &st) != 0) return "";  // missing: nothing below it either
    if (!S_ISDIR(st.st_mode)) return up;
  }
  return "";
}

// An exclusive lock on the directory for one run (flock on the directory itself: nothing
// left behind). Thread safety: one run's own object.
class DirLock {
 public:
  explicit DirLock(const fs::path& dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) fail(Code::kIOError, fmt::format("{}: cannot open: {}", dir.string(), errno_text(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK)
        fail(Code::kBusy, fmt::format("{}: another materialize is writing it", dir.string()));
      fail(Code::kIOError, fmt::format("{}: cannot lock: {}", dir.string(), errno_text(err)));
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

// --- what the generation puts on disk ---------------------------------------------------------

// Whether a release's own file is one that a node, or release_handler on it, opens on local
// disk: its boot scripts (release_handler checks and reads start.boot), sys.config (consulted
// on an upgrade), vm.args (erlexec), relup (release_handler, both directions), mix's
// runtime.exs (its config provider reads it at boot). Not the .rel, .script, bin/, env.sh,
// and never releases/COOKIE (a secret) or a module image.
bool node_reads_locally(const std::string& path, const std::string& vsn) {
  const std::string dir = "releases/" + vsn + "/";
  if (!path.starts_with(dir)) return false;
  const std::string name = path.substr(dir.size());
  if (name.find('/') != std::string::npos) return false;
  return (name.ends_with(".boot") && name.size() > 5) || name == "sys.config" || name == "vm.args" ||
         name == "relup" || name == "runtime.exs";
}

struct ReleaseRow {
  std::int64_t id = 0;
  ReleaseId name;
  std::string erts_vsn;
};

// The Erlang release the channel's generation runs (Impl::generation_release: the same one
// `serve` boots the node with).
std::optional<ReleaseRow> release_of(Store::Impl& impl, const std::string& channel, std::int64_t generation,
                                     const std::map<std::string, std::int64_t>& pins) {
  std::set<std::int64_t> pinned;
  for (const auto& [app, id] : pins) pinned.insert(id);
  const std::int64_t chosen = impl.generation_release(channel, generation, pinned);
  if (chosen == 0) return std::nullopt;
  auto& s = impl.stmt("SELECT name, vsn, erts_vsn FROM releases WHERE id = ?");
  Store::Impl::Done done{s};
  s.bind(1, chosen);
  if (!s.step()) return std::nullopt;
  return ReleaseRow{chosen, {s.text(0), s.text(1)}, s.text(2)};
}

void want_item(std::map<std::string, Want>& want, const TreeItem& item) {
  Want w;
  if (item.directory) {
    w.entry = {Entry::Kind::kDir, "", 0, ""};
    w.dir_mode = item.mode | 0700;
  } else if (!item.link.empty()) {
    w.entry = {Entry::Kind::kLink, "", 0, item.link};
  } else {
    w.entry = {Entry::Kind::kFile, item.sha256, item.mode, ""};
    w.blob_id = item.blob_id;
    w.size = item.size;
  }
  want[item.path] = std::move(w);
}

void want_generated(std::map<std::string, Want>& want, const std::string& path, const std::string& text) {
  Want w;
  w.bytes = bytes_of(text);
  w.entry = {Entry::Kind::kFile, sha256_hex(w.bytes), 0644, ""};
  w.size = w.bytes.size();
  want[path] = std::move(w);
}

// releases/RELEASES as release_handler writes it (do_write_release: a coding line, then the
// list of #release{} records as one term), naming the release permanent with its library
// directories relative to the root, as create_RELEASES/4 with Root "" does (release_handler
// resolves them against code:root_dir(), which is the node's ROOTDIR).
std::string releases_file(const ReleaseRow& rel,
                          const std::vector<std::pair<std::string, std::string>>& apps) {
  std::string out = fmt::format("%% coding: utf-8\n[{{release,{},{},{},\n  [", string_text(rel.name.name),
                                string_text(rel.name.vsn), string_text(rel.erts_vsn));
  for (std::size_t i = 0; i < apps.size(); ++i) {
    const auto& [app, vsn] = apps[i];
    if (i != 0) out += ",\n   ";
    out += fmt::format("{{{},{},{}}}", atom_text(app), string_text(vsn),
                       string_text(fmt::format("lib/{}-{}", app, vsn)));
  }
  out += "],\n  permanent}].\n";
  return out;
}

// --- the plan -----------------------------------------------------------------------------------

enum class Action { kKeep, kWrite, kReplace, kRemove, kGone };

struct Step {
  Action action = Action::kKeep;
  std::optional<Entry> disk;  // what is there now (kReplace, kRemove)
};

std::string describe(const Entry& e) {
  switch (e.kind) {
    case Entry::Kind::kFile: return "a file";
    case Entry::Kind::kLink: return "a link";
    case Entry::Kind::kDir: return "a directory";
    case Entry::Kind::kOther: return "a special file";
  }
  return "something";
}

}  // namespace

Result<MaterializeReport> Store::materialize(const std::string& dir_arg, const MaterializeOptions& options) {
  const std::string& channel = impl_->options.channel;
  return impl_->call(
      [&] { return fmt::format("materialize channel {} into {}", channel, dir_arg); },
      [&]() -> Result<MaterializeReport> {
        if (dir_arg.empty()) fail(Code::kInvalidArgument, "no directory given");
        const fs::path dir(dir_arg);
        MaterializeReport report;
        report.dir = dir_arg;
        report.channel = channel;
        report.dry_run = options.dry_run;

        // One generation, read in one transaction (and kept open while its blobs are read).
        db::Transaction tx(*impl_->db, db::TxKind::kRead);
        const auto row = impl_->require_channel(channel);
        report.generation = row.generation;
        const auto pins = impl_->generation_app_pins(channel, 0);
        const auto release = release_of(*impl_, channel, row.generation, pins);
        std::map<std::string, Want> want;
        std::vector<std::pair<std::string, std::string>> rel_apps;  // (app, vsn) in .rel order
        if (release) {
          report.release = release->name;
          report.erts_vsn = release->erts_vsn;
          auto& s = impl_->stmt(
              "SELECT a.app, a.vsn FROM release_apps ra JOIN app_versions a ON a.id = ra.app_version WHERE "
              "ra.release = ? ORDER BY ra.position");
          Impl::Done done{s};
          s.bind(1, release->id);
          while (s.step()) rel_apps.emplace_back(s.text(0), s.text(1));
        }
        for (const auto& [app, id] : pins) {
          std::string vsn;
          {
            auto& s = impl_->stmt("SELECT vsn FROM app_versions WHERE id = ?");
            Impl::Done done{s};
            s.bind(1, id);
            if (!s.step())
              fail(Code::kCorruption, fmt::format("application {}: revision {} is missing", app, id));
            vsn = s.text(0);
          }
          const std::string prefix = fmt::format("lib/{}-{}/", app, vsn);
          std::vector<TreeItem> items;
          store_internal::collect_app_tree(*impl_, id, prefix, /*modules=*/false, items);
          for (const auto& item : items) {
            const std::string_view rel = std::string_view(item.path).substr(prefix.size());
            if (rel == "priv" || rel.starts_with("priv/")) want_item(want, item);
          }
          if (release) {
            Want ebin;
            ebin.entry = {Entry::Kind::kDir, "", 0, ""};
            want[prefix + "ebin"] = std::move(ebin);
          }
        }
        if (release) {
          std::vector<TreeItem> items;
          store_internal::collect_release_tree(*impl_, release->id, /*modules=*/false, items);
          for (const auto& item : items) {
            if (node_reads_locally(item.path, release->name.vsn)) want_item(want, item);
          }
          want_generated(want, "releases/RELEASES", releases_file(*release, rel_apps));
          // As release_handler:make_permanent/1 writes it (set_permanent_files): "ERTS VSN".
          want_generated(want, "releases/start_erl.data", release->erts_vsn + " " + release->name.vsn);
        } else if (pins.empty()) {
          report.warnings.push_back(
              fmt::format("channel {} generation {} holds no Erlang release and no application (its modules "
                          "were imported "
                          "loose): nothing to write but the manifest",
                          channel, row.generation));
        } else {
          report.warnings.push_back(fmt::format(
              "channel {} generation {} holds no Erlang release (its applications are no stored release's): "
              "only their priv files are written, no releases/ (a node boots it without release_handler)",
              channel, row.generation));
        }
        for (const auto& [path, w] : want) {
          switch (w.entry.kind) {
            case Entry::Kind::kFile:
              report.files++;
              report.bytes += w.size;
              break;
            case Entry::Kind::kLink: report.links++; break;
            default: report.directories++; break;
          }
        }

        // The directory as it is.
        std::error_code ec;
        const auto status = fs::status(dir, ec);  // DIR itself may be a link to the root
        const bool exists = !ec && fs::exists(status);
        if (exists && !fs::is_directory(status))
          fail(Code::kFailedPrecondition, fmt::format("{} exists and is not a directory", dir_arg));
        std::optional<DirLock> lock;
        if (exists && !options.dry_run) lock.emplace(dir);
        const Manifest old = exists ? read_manifest(dir / kManifest) : Manifest{};
        const Manifest pending = exists ? read_manifest(dir / kPending) : Manifest{};
        report.previous_channel = old.channel;
        report.previous_generation = old.generation;
        if (exists && !old.present && !pending.present && !options.force) {
          if (!fs::is_empty(dir, ec) || ec) {
            fail(Code::kFailedPrecondition,
                 fmt::format(
                     "{} is not empty and has no {}: materialize writes only into an empty directory or "
                     "one it wrote (--force takes it as it is; files at other paths are kept)",
                     dir_arg, kManifest));
          }
        }
        const std::string& owner = old.present ? old.channel : pending.channel;
        if ((old.present || pending.present) && owner != channel && !options.force) {
          fail(
              Code::kFailedPrecondition,
              fmt::format("{} holds channel {}'s generation {}: materializing channel {} there takes --force "
                          "(a node follows one channel)",
                          dir_arg, owner, old.present ? old.generation : pending.generation, channel));
        }
        std::multimap<std::string, Entry> claims = old.entries;
        claims.insert(pending.entries.begin(), pending.entries.end());
        auto claimed = [&](const std::string& path, const Entry& disk) {
          auto [from, to] = claims.equal_range(path);
          return std::any_of(from, to, [&](const auto& c) { return c.second == disk; });
        };

        // Every path the run may touch, parents before children.
        std::set<std::string> paths;
        for (const auto& [path, w] : want) paths.insert(path);
        for (const auto& [path, e] : claims) paths.insert(path);
        std::set<std::string> needed_dirs;  // directories above a wanted path
        for (const auto& [path, w] : want) {
          for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1))
            needed_dirs.insert(path.substr(0, slash));
        }
        std::map<std::string, Step> plan;
        std::vector<std::string> conflicts;
        std::vector<std::string> cleared;  // foreign files or links above a wanted path, removed (force)
        for (const auto& path : paths) {
          const auto w = want.find(path);
          const bool wanted = w != want.end();
          std::optional<Entry> disk;
          if (const std::string up = exists ? blocking_parent(dir, path) : ""; !up.empty()) {
            // A file or link where a directory must be: gone before this path is written if
            // the run removes or replaces it; else it is not materialize's.
            auto it = plan.find(up);
            const bool handled = (it != plan.end() && (it->second.action == Action::kRemove ||
                                                       it->second.action == Action::kReplace)) ||
                                 std::find(cleared.begin(), cleared.end(), up) != cleared.end();
            if (!handled) {
              if (!wanted) continue;  // nothing of ours can be below it
              if (options.force) {
                cleared.push_back(up);
              } else {
                conflicts.push_back(
                    fmt::format("{}: not a directory (materialize must write {} in it)", up, path));
                continue;
              }
            }
          } else if (exists) {
            disk = on_disk(dir / path);
          }
          Step step;
          step.disk = disk;
          if (wanted) {
            const Entry& e = w->second.entry;
            if (!disk) {
              step.action = Action::kWrite;
            } else if (*disk == e || (disk->kind == Entry::Kind::kDir && e.kind == Entry::Kind::kDir)) {
              step.action = Action::kKeep;
            } else if (claimed(path, *disk) || options.force) {
              step.action = Action::kReplace;
            } else {
              conflicts.push_back(
                  claims.count(path) != 0
                      ? fmt::format("{}: changed since materialize wrote it", path)
                      : fmt::format("{}: {} materialize did not write", path, describe(*disk)));
              continue;
            }
          } else if (!disk) {
            step.action = Action::kGone;
          } else if (claimed(path, *disk) || options.force) {
            step.action = Action::kRemove;
          } else {
            conflicts.push_back(fmt::format(
                "{}: changed since materialize wrote it (the generation no longer has it)", path));
            continue;
          }
          plan[path] = std::move(step);
        }
        if (!conflicts.empty()) {
          const bool releases = std::any_of(conflicts.begin(), conflicts.end(), [](const std::string& c) {
            return c.starts_with("releases/RELEASES:") || c.starts_with("releases/start_erl.data:");
          });
          fail(Code::kFailedPrecondition,
               fmt::format(
                   "{}: {} path{} hold{} what materialize did not write there: {}{}; --force overwrites "
                   "and removes them",
                   dir_arg, conflicts.size(), conflicts.size() == 1 ? "" : "s",
                   conflicts.size() == 1 ? "s" : "", store_internal::some(conflicts, 8),
                   releases ? " (release_handler rewrites releases/RELEASES and start_erl.data when it "
                              "unpacks, installs or makes permanent a release: the node's own upgrades)"
                            : ""));
        }
        for (const auto& [path, step] : plan) {
          if (step.action == Action::kKeep) report.unchanged++;
          if (step.action == Action::kWrite || step.action == Action::kReplace)
            report.written.push_back(path);
          if (step.action == Action::kRemove) report.removed.push_back(path);
        }
        for (const auto& up : cleared) report.removed.push_back(up);
        std::sort(report.removed.begin(), report.removed.end());
        if (options.dry_run) return report;

        // Write: the pending manifest, removals (children first), then files (parents first),
        // then the manifest.
        if (!exists) make_dirs(dir);
        if (!lock) lock.emplace(dir);
        std::multimap<std::string, Entry> next;
        for (const auto& [path, w] : want) next.emplace(path, w.entry);
        {
          std::multimap<std::string, Entry> all = claims;
          for (const auto& [path, e] : next) {
            if (!claimed(path, e)) all.emplace(path, e);
          }
          replace_file(dir / kPending, manifest_text(channel, row.generation, report.release, all));
        }
        // Work in progress an interrupted run left beside the files it was writing.
        std::set<std::string> dirs_written{""};
        for (const auto& path : paths) dirs_written.insert(fs::path(path).parent_path().string());
        for (const auto& d : dirs_written) {
          const fs::path p = dir / d;
          if (!d.empty() && !blocking_parent(dir, d + "/x").empty()) continue;
          if (!fs::is_directory(fs::symlink_status(p, ec))) continue;
          for (const auto& e : fs::directory_iterator(p, ec)) {
            const auto st = e.symlink_status(ec);
            if (store_internal::is_temporary_name(e.path().filename().string()) &&
                (fs::is_regular_file(st) || fs::is_symlink(st)))
              fs::remove(e.path(), ec);
          }
        }
        auto remove_one = [&](const std::string& path, bool directory) {
          const fs::path p = dir / path;
          if (directory) {
            if (::rmdir(p.c_str()) != 0 && errno != ENOENT) {
              if (errno == ENOTEMPTY || errno == EEXIST) {
                report.warnings.push_back(
                    fmt::format("{}: kept: the generation no longer has it, but files were put in it", path));
                return;
              }
              fail(Code::kIOError, fmt::format("{}: cannot remove: {}", p.string(), errno_text(errno)));
            }
          } else if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
            fail(Code::kIOError, fmt::format("{}: cannot remove: {}", p.string(), errno_text(errno)));
          }
          // Directories a removal leaves empty, up to the root, unless a wanted path needs them.
          for (fs::path up = fs::path(path).parent_path(); !up.empty(); up = up.parent_path()) {
            if (needed_dirs.count(up.string()) != 0 || ::rmdir((dir / up).c_str()) != 0) break;
          }
        };
        for (const auto& up : cleared) remove_one(up, false);
        for (auto it = plan.rbegin(); it != plan.rend(); ++it) {
          const auto& [path, step] = *it;
          if (step.action == Action::kRemove) remove_one(path, step.disk->kind == Entry::Kind::kDir);
        }
        for (const auto& [path, step] : plan) {
          if (step.action != Action::kWrite && step.action != Action::kReplace) continue;
          const Want& w = want.at(path);
          const fs::path p = dir / path;
          // What is there goes first when rename cannot replace it (a directory, or anything
          // where a directory goes).
          if (step.action == Action::kReplace &&
              (step.disk->kind == Entry::Kind::kDir || w.entry.kind == Entry::Kind::kDir)) {
            if (step.disk->kind == Entry::Kind::kDir ? ::rmdir(p.c_str()) != 0 : ::unlink(p.c_str()) != 0) {
              fail(Code::kIOError, fmt::format("{}: cannot replace {}: {}", p.string(), describe(*step.disk),
                                               errno_text(errno)));
            }
          }
          make_dirs(p.parent_path());
          if (w.entry.kind == Entry::Kind::kDir) {
            make_dirs(p);
            ::chmod(p.c_str(), w.dir_mode);
            continue;
          }
          Cleanup tmp{temporary_beside(p)};
          if (w.entry.kind == Entry::Kind::kLink) {
            fs::create_symlink(w.entry.link, tmp.path, ec);
            if (ec)
              fail(Code::kIOError, fmt::format("{}: cannot make the link: {}", p.string(), ec.message()));
          } else if (w.blob_id != 0) {
            write_new_file(tmp.path, impl_->blob_bytes(w.blob_id, path), w.entry.mode, /*sync=*/true);
          } else {
            write_new_file(tmp.path, w.bytes, w.entry.mode, /*sync=*/true);
          }
          if (::rename(tmp.path.c_str(), p.c_str()) != 0)
            fail(Code::kIOError,
                 fmt::format("{}: cannot rename into place: {}", p.string(), errno_text(errno)));
          tmp.keep = true;
        }
        replace_file(dir / kManifest, manifest_text(channel, row.generation, report.release, next));
        if (::unlink((dir / kPending).c_str()) != 0 && errno != ENOENT)
          fail(Code::kIOError,
               fmt::format("{}: cannot remove: {}", (dir / kPending).string(), errno_text(errno)));
        return report;
      });
}

}  // namespace codestore

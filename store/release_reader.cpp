// The release reader (include/codestore/release_reader.h): the build tools' layouts over one
// walk that works alike on a directory and on an archive's members (a Source), apart from the
// store that imports what it reads. Term text is etf::consult's, the .rel and .app checks
// otp's, archives archive::read_archive's (with every check it makes).
#include <codestore/release_reader.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "base/app_dir.h"
#include "base/file.h"
#include "etf/consult.h"
#include "otp/otp_files.h"

namespace codestore {

namespace {

namespace fs = std::filesystem;

// A refusal deep in the walk, carried out to the API as its Status.
struct ReadError {
  Status status;
};
[[noreturn]] void fail(Code code, std::string message) {
  throw ReadError{Status(code, std::move(message))};
}
[[noreturn]] void fail(Status status) {
  throw ReadError{std::move(status)};
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (end > start) out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}
std::string join_components(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}
std::string join_rel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}
std::string parent_of(const std::string& rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}
// `dir`/`target` with "." and ".." resolved lexically; nullopt when ".." climbs above "".
std::optional<std::string> normalize(const std::string& dir, const std::string& target) {
  std::vector<std::string> out = components(dir);
  for (const auto& c : components(target)) {
    if (c == ".") continue;
    if (c == "..") {
      if (out.empty()) return std::nullopt;
      out.pop_back();
    } else {
      out.push_back(c);
    }
  }
  return join_components(out);
}

// One node of a Source.
enum class NodeType { kNone, kFile, kDir, kLink };
struct Node {
  NodeType type = NodeType::kNone;
  std::uint32_t mode = 0;
  std::string link;  // a link's target as written
};

// What is read from: a directory on disk (locations are file-system paths) or an archive's
// members (locations are member paths, "" the archive's root). Not thread-safe: one read.
class Source {
 public:
  virtual ~Source() = default;
  virtual Node lstat(const std::string& loc) const = 0;
  virtual Node stat(const std::string& loc) const = 0;  // through links; kNone when dangling
  virtual std::vector<std::string> list(const std::string& loc) const = 0;  // names, sorted
  virtual std::vector<std::uint8_t> read(const std::string& loc) = 0;       // through links
  virtual std::string join(const std::string& loc, const std::string& name) const = 0;
  virtual std::string real(const std::string& loc) const = 0;  // one name per directory, for loops
  virtual std::string describe(const std::string& loc) const = 0;
};

class DiskSource final : public Source {
 public:
  explicit DiskSource(const archive::Limits& limits) : limits_(limits) {}
  static Node node_of(const fs::file_status& st, const std::string& loc) {
    Node n;
    n.mode = static_cast<std::uint32_t>(st.permissions()) & 0777u;
    if (fs::is_symlink(st)) {
      n.type = NodeType::kLink;
      std::error_code ec;
      n.link = fs::read_symlink(loc, ec).string();
    } else if (fs::is_directory(st)) {
      n.type = NodeType::kDir;
    } else if (fs::is_regular_file(st)) {
      n.type = NodeType::kFile;
    } else if (fs::exists(st)) {
      fail(Code::kInvalidArgument, fmt::format("{}: neither a file, a directory nor a link", loc));
    }
    return n;
  }
  Node lstat(const std::string& loc) const override {
    std::error_code ec;
    return node_of(fs::symlink_status(loc, ec), loc);
  }
  Node stat(const std::string& loc) const override {
    std::error_code ec;
    return node_of(fs::status(loc, ec), loc);
  }
  std::vector<std::string> list(const std::string& loc) const override {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(loc, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) fail(Code::kIOError, fmt::format("{}: {}", loc, ec.message()));
    std::sort(names.begin(), names.end());
    return names;
  }
  std::vector<std::uint8_t> read(const std::string& loc) override {
    const std::uint64_t left = limits_.max_total_bytes - std::min(total_, limits_.max_total_bytes);
    const std::uint64_t limit = std::min(limits_.max_entry_bytes, left);
    auto bytes = base::read_file(loc, static_cast<std::size_t>(limit));
    if (!bytes) {
      if (bytes.error().err == EFBIG) {
        fail(Code::kLimitExceeded,
             fmt::format("{}: over the limit of {} bytes per file ({} bytes read in all)", loc,
                         limits_.max_entry_bytes, total_));
      }
      fail(bytes.error().status(loc));
    }
    total_ += bytes->size();
    return std::move(*bytes);
  }
  std::string join(const std::string& loc, const std::string& name) const override {
    return (fs::path(loc) / name).string();
  }
  std::string real(const std::string& loc) const override {
    std::error_code ec;
    auto r = fs::canonical(loc, ec);
    if (ec) fail(Code::kIOError, fmt::format("{}: {}", loc, ec.message()));
    return r.string();
  }
  std::string describe(const std::string& loc) const override { return loc; }

 private:
  archive::Limits limits_;
  std::uint64_t total_ = 0;
};

class ArchiveSource final : public Source {
 public:
  ArchiveSource(std::string name, std::vector<archive::Entry> entries)
      : name_(std::move(name)), entries_(std::move(entries)) {
    dirs_[""];
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const auto& e = entries_[i];
      index_[e.path] = i;
      if (e.type == archive::Entry::Type::kDirectory) dirs_[e.path];
      // Every parent is a directory, with or without its own member.
      std::string child = e.path;
      for (std::string dir = parent_of(child);; dir = parent_of(dir)) {
        dirs_[dir].insert(child.substr(dir.empty() ? 0 : dir.size() + 1));
        if (dir.empty()) break;
        child = dir;
      }
    }
  }
  Node lstat(const std::string& loc) const override {
    Node n;
    if (auto it = index_.find(loc); it != index_.end()) {
      const auto& e = entries_[it->second];
      n.mode = e.mode;
      switch (e.type) {
        case archive::Entry::Type::kFile: n.type = NodeType::kFile; break;
        case archive::Entry::Type::kDirectory: n.type = NodeType::kDir; break;
        case archive::Entry::Type::kSymlink:
          n.type = NodeType::kLink;
          n.link = e.link_target;
          break;
      }
    } else if (dirs_.count(loc)) {
      n.type = NodeType::kDir;
      n.mode = 0755;
    }
    return n;
  }
  Node stat(const std::string& loc) const override {
    auto r = resolve(loc);
    return r ? lstat(*r) : Node{};
  }
  std::vector<std::string> list(const std::string& loc) const override {
    auto r = resolve(loc);
    if (!r) return {};
    auto it = dirs_.find(*r);
    if (it == dirs_.end()) return {};
    return {it->second.begin(), it->second.end()};
  }
  std::vector<std::uint8_t> read(const std::string& loc) override {
    auto r = resolve(loc);
    auto it = r ? index_.find(*r) : index_.end();
    if (it == index_.end()) fail(Code::kNotFound, fmt::format("{}: no such member", describe(loc)));
    return entries_[it->second].bytes;
  }
  std::string join(const std::string& loc, const std::string& name) const override {
    return join_rel(loc, name);
  }
  std::string real(const std::string& loc) const override { return resolve(loc).value_or(loc); }
  std::string describe(const std::string& loc) const override {
    return loc.empty() ? name_ : fmt::format("{}:{}", name_, loc);
  }

 private:
  // The member `loc` names, through links in any of its components (as the kernel resolves
  // a path); nullopt when it leaves the archive, loops, or is not there.
  std::optional<std::string> resolve(const std::string& loc) const {
    std::vector<std::string> todo = components(loc);
    std::reverse(todo.begin(), todo.end());
    std::string cur;
    for (int hops = 0; !todo.empty();) {
      const std::string next = join_rel(cur, todo.back());
      todo.pop_back();
      auto it = index_.find(next);
      if (it != index_.end() && entries_[it->second].type == archive::Entry::Type::kSymlink) {
        if (++hops > 40) return std::nullopt;  // ELOOP, as the kernel's limit
        auto target = normalize(cur, entries_[it->second].link_target);
        if (!target || starts_with(entries_[it->second].link_target, "/")) return std::nullopt;
        auto parts = components(*target);
        for (auto p = parts.rbegin(); p != parts.rend(); ++p) todo.push_back(*p);
        cur.clear();
        continue;
      }
      if (it == index_.end() && !dirs_.count(next)) return std::nullopt;
      cur = next;
    }
    return cur;
  }

  std::string name_;
  std::vector<archive::Entry> entries_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::set<std::string>> dirs_;  // directory -> names in it
};

// Does a link at `rel` (relative to the tree being read) with `target` stay in that tree?
bool link_stays_inside(const std::string& rel, const std::string& target) {
  if (target.empty() || target.front() == '/') return false;
  return normalize(parent_of(rel), target).has_value();
}

// Reads trees of a Source into ContentFiles (docs in release_reader.h, "Links"), counting
// every entry of one read against Limits::max_entries. Not thread-safe: one read.
class Walker {
 public:
  Walker(Source& src, const archive::Limits& limits, std::vector<std::string>& warnings)
      : src_(src), limits_(limits), warnings_(warnings) {}

  // Everything under `loc` (a directory, or a link to one), paths `rel_prefix`/... relative to
  // the tree's root; `skip(rel)` leaves a file or a whole directory out.
  void tree(const std::string& loc, const std::string& rel_prefix, std::vector<ContentFile>& out,
            const std::function<bool(const std::string&)>& skip = nullptr) {
    skip_ = skip;
    enter(loc, rel_prefix, false, out);
  }

 private:
  void count(const std::string& loc) {
    if (++entries_ > limits_.max_entries) {
      fail(Code::kLimitExceeded, fmt::format("{}: more than {} files, links and directories",
                                             src_.describe(loc), limits_.max_entries));
    }
  }
  void enter(const std::string& loc, const std::string& rel, bool followed, std::vector<ContentFile>& out) {
    const std::string r = src_.real(loc);
    if (std::find(walking_.begin(), walking_.end(), r) != walking_.end()) {
      warnings_.push_back(fmt::format("{}: a link loop (back to {}): not followed", src_.describe(loc), r));
      return;
    }
    walking_.push_back(r);
    const auto names = src_.list(loc);
    if (names.empty() && !rel.empty()) {
      ContentFile d;
      d.path = rel;
      d.directory = true;
      d.mode = src_.stat(loc).mode;
      out.push_back(std::move(d));
    }
    for (const auto& name : names) {
      const std::string child = src_.join(loc, name);
      const std::string crel = join_rel(rel, name);
      if (skip_ && skip_(crel)) continue;
      count(child);
      const Node n = src_.lstat(child);
      if (n.type == NodeType::kLink) {
        const Node t = src_.stat(child);
        if (t.type == NodeType::kNone) {
          warnings_.push_back(
              fmt::format("{}: a dangling link (to {}): left out", src_.describe(child), n.link));
          continue;
        }
        // Inside a followed directory a link is read through: its place there is not its
        // place in the tree, so its target as written would point elsewhere.
        if (!followed && link_stays_inside(crel, n.link)) {
          ContentFile f;
          f.path = crel;
          f.link = n.link;
          f.mode = 0777;
          out.push_back(std::move(f));
        } else if (t.type == NodeType::kDir) {
          enter(child, crel, true, out);
        } else {
          file(child, crel, t.mode, out);
        }
      } else if (n.type == NodeType::kDir) {
        enter(child, crel, followed, out);
      } else if (n.type == NodeType::kFile) {
        file(child, crel, n.mode, out);
      }
    }
    walking_.pop_back();
  }
  void file(const std::string& loc, const std::string& rel, std::uint32_t mode,
            std::vector<ContentFile>& out) {
    ContentFile f;
    f.path = rel;
    f.mode = mode;
    f.bytes = src_.read(loc);
    out.push_back(std::move(f));
  }

  Source& src_;
  archive::Limits limits_;
  std::vector<std::string>& warnings_;
  std::function<bool(const std::string&)> skip_;
  std::vector<std::string> walking_;
  std::uint64_t entries_ = 0;
};

void sort_files(std::vector<ContentFile>& files) {
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
}

// The bytes of `path` among `files`, through links kept among them.
const ContentFile* find_file(const std::vector<ContentFile>& files, std::string path) {
  for (int hops = 0; hops < 40; ++hops) {
    auto it = std::find_if(files.begin(), files.end(), [&](const ContentFile& f) { return f.path == path; });
    if (it == files.end()) return nullptr;
    if (it->link.empty()) return it->directory ? nullptr : &*it;
    auto next = normalize(parent_of(path), it->link);
    if (!next) return nullptr;
    path = *next;
  }
  return nullptr;
}

std::vector<etf::Term> consult_or_fail(const ContentFile& f, const std::string& source) {
  auto terms = etf::consult(std::span<const std::uint8_t>(f.bytes), source);
  if (!terms) fail(terms.error());
  return std::move(*terms);
}

// The .app of an application tree: `ebin/<name>.app` (else the only `ebin/*.app` when
// `name_may_differ`), parsed and named by its file. `where` names the tree in messages.
otp::AppSpec read_app_spec(const std::vector<ContentFile>& files, const std::string& name,
                           bool name_may_differ, const std::string& where) {
  std::string path = "ebin/" + name + ".app";
  const ContentFile* app = find_file(files, path);
  if (!app && name_may_differ) {
    std::vector<std::string> apps;
    for (const auto& f : files) {
      if (starts_with(f.path, "ebin/") && ends_with(f.path, ".app") &&
          f.path.find('/', 5) == std::string::npos) {
        apps.push_back(f.path);
      }
    }
    if (apps.size() == 1) {
      path = apps[0];
      app = find_file(files, path);
    }
  }
  if (!app) fail(Code::kNotFound, fmt::format("{}: no {} (the application resource file)", where, path));
  const std::string source = fmt::format("{}/{}", where, path);
  const auto terms = consult_or_fail(*app, source);
  if (terms.size() != 1) {
    fail(Status(
        Code::kCorruption, "badly_formatted_application",
        fmt::format("{}: {} terms where the application resource file has one", source, terms.size())));
  }
  auto spec = otp::parse_app(terms[0], source);
  if (!spec) fail(spec.error());
  const std::string stem = path.substr(5, path.size() - 5 - 4);
  if (spec->name != stem) {
    fail(Status(Code::kInvalidArgument, "bad_application_name",
                fmt::format("{}: names application {}, not {}", source, spec->name, stem)));
  }
  if (spec->vsn.empty()) fail(Code::kInvalidArgument, fmt::format("{}: no vsn", source));
  return std::move(*spec);
}

// The app entries of a .rel as written: the start type only when the entry has one, the
// included applications as term text.
std::vector<ReleaseContent::AppEntry> app_entries(const otp::RelSpec& rel) {
  std::vector<ReleaseContent::AppEntry> out;
  const auto* release = rel.term.as_tuple();
  auto apps = release && release->elements.size() == 4 ? release->elements[3].list_elements()
                                                       : Result<etf::TermList>();
  for (std::size_t i = 0; i < rel.applications.size(); ++i) {
    ReleaseContent::AppEntry e;
    e.app = rel.applications[i].name;
    e.vsn = rel.applications[i].vsn;
    const etf::Tuple* entry = apps && i < apps->size() ? (*apps)[i].as_tuple() : nullptr;
    if (entry) {
      for (std::size_t k = 2; k < entry->elements.size(); ++k) {
        const auto& el = entry->elements[k];
        if (el.as_atom()) {
          e.type = el.as_atom()->name;
        } else {
          e.included = etf::format_w(el);
        }
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string kind_of(const std::vector<ContentFile>& files, const std::string& name, const std::string& vsn) {
  std::set<std::string> paths;
  for (const auto& f : files) paths.insert(f.path);
  const std::string vdir = "releases/" + vsn + "/";
  const bool consolidated = std::any_of(files.begin(), files.end(), [&](const ContentFile& f) {
    return starts_with(f.path, vdir + "consolidated/");
  });
  if (paths.count("releases/COOKIE") || paths.count(vdir + "env.sh") || consolidated) return "mix";
  if (paths.count("releases/start_erl.data") || paths.count("bin/nodetool") ||
      paths.count("bin/install_upgrade.escript") || paths.count("bin/" + name)) {
    return "relx";
  }
  return "systools";
}

struct Chosen {
  std::string path;  // the .rel among the release's files
  std::string vsn;   // its directory's name ("" for a top-level .rel)
};

// Which .rel of `files` (the release's releases/**) is the release (release_reader.h).
Chosen choose_rel(const std::vector<ContentFile>& files, const ReadOptions& options,
                  const std::string& where) {
  std::map<std::string, std::vector<std::string>> by_vsn;  // vsn -> .rel stems in releases/<vsn>/
  std::vector<std::string> top;                            // stems of releases/<name>.rel
  for (const auto& f : files) {
    const auto parts = components(f.path);
    if (!ends_with(f.path, ".rel") || f.directory) continue;
    const std::string stem = parts.back().substr(0, parts.back().size() - 4);
    if (parts.size() == 3) by_vsn[parts[1]].push_back(stem);
    if (parts.size() == 2) top.push_back(stem);
  }
  std::string vsn = options.vsn;
  if (vsn.empty()) {
    if (const ContentFile* data = find_file(files, "releases/start_erl.data")) {
      // "ERTS_VSN REL_VSN", as relx's and OTP's start scripts read it.
      const std::string text(data->bytes.begin(), data->bytes.end());
      std::vector<std::string> w;
      std::size_t s = 0;
      while (s < text.size()) {
        const std::size_t e = std::min(text.find_first_of(" \t\r\n", s), text.size());
        if (e > s) w.push_back(text.substr(s, e - s));
        s = e + 1;
      }
      if (w.size() == 2 && by_vsn.count(w[1])) vsn = w[1];
    }
  }
  if (vsn.empty() && by_vsn.size() == 1) vsn = by_vsn.begin()->first;
  if (vsn.empty() && by_vsn.empty()) {
    if (!options.name.empty() || top.size() == 1) {
      const std::string name = options.name.empty() ? top[0] : options.name;
      if (std::find(top.begin(), top.end(), name) == top.end()) {
        fail(Code::kNotFound, fmt::format("{}: no releases/{}.rel", where, name));
      }
      return {"releases/" + name + ".rel", ""};
    }
    if (top.empty()) {
      fail(Code::kNotFound,
           fmt::format("{}: no .rel file (releases/<vsn>/<name>.rel or releases/<name>.rel)", where));
    }
    fail(Code::kInvalidArgument, fmt::format("{}: several releases (releases/{}.rel): choose one by name",
                                             where, fmt::join(top, ".rel, releases/")));
  }
  if (vsn.empty()) {
    std::vector<std::string> vsns;
    vsns.reserve(by_vsn.size());
    for (const auto& [v, stems] : by_vsn) vsns.push_back(v);
    fail(Code::kInvalidArgument,
         fmt::format(
             "{}: several release versions ({}) and no releases/start_erl.data naming one: choose a version",
             where, fmt::join(vsns, ", ")));
  }
  auto it = by_vsn.find(vsn);
  if (it == by_vsn.end()) fail(Code::kNotFound, fmt::format("{}: no .rel file in releases/{}/", where, vsn));
  const auto& stems = it->second;
  std::string name = options.name;
  if (name.empty() && stems.size() == 1) name = stems[0];
  if (name.empty()) {
    std::vector<std::string> named;
    for (const auto& s : stems) {
      if (std::find(top.begin(), top.end(), s) != top.end()) named.push_back(s);
    }
    if (named.size() == 1) name = named[0];
  }
  if (name.empty()) {
    fail(Code::kInvalidArgument,
         fmt::format("{}: several .rel files in releases/{}/ ({}.rel): choose one by name", where, vsn,
                     fmt::join(stems, ".rel, ")));
  }
  if (std::find(stems.begin(), stems.end(), name) == stems.end()) {
    fail(Code::kNotFound, fmt::format("{}: no releases/{}/{}.rel", where, vsn, name));
  }
  return {fmt::format("releases/{}/{}.rel", vsn, name), vsn};
}

ReleaseContent read_release_from(Source& src, const std::string& root, const std::string& origin,
                                 const ReadOptions& options) {
  ReleaseContent rel;
  rel.origin = origin;
  Walker walker(src, options.limits, rel.warnings);
  const std::string releases = src.join(root, "releases");
  if (src.stat(releases).type != NodeType::kDir) {
    fail(Code::kInvalidArgument, fmt::format("{}: not a release: no releases/ directory", origin));
  }
  std::vector<ContentFile> files;
  walker.tree(releases, "releases", files, [&](const std::string& rel_path) {
    if (rel_path == "releases/COOKIE" && !options.keep_secrets) {
      rel.warnings.push_back(fmt::format(
          "{}: releases/COOKIE (mix's node cookie, a secret): left out (ReadOptions::keep_secrets keeps it)",
          origin));
      return true;
    }
    return false;
  });
  const Chosen chosen = choose_rel(files, options, origin);
  const ContentFile* rel_file = find_file(files, chosen.path);
  if (!rel_file) fail(Code::kNotFound, fmt::format("{}: {} is not a file", origin, chosen.path));
  const std::string rel_source = fmt::format("{}/{}", origin, chosen.path);
  const auto terms = consult_or_fail(*rel_file, rel_source);
  auto spec = otp::parse_rel(terms, rel_source);
  if (!spec) fail(spec.error());
  if (!chosen.vsn.empty() && spec->vsn != chosen.vsn) {
    fail(Code::kInvalidArgument,
         fmt::format("{}: says version {}, but is in releases/{}/", rel_source, spec->vsn, chosen.vsn));
  }
  rel.name = spec->name;
  rel.vsn = spec->vsn;
  rel.erts_vsn = spec->erts_vsn;
  rel.rel_apps = app_entries(*spec);
  const std::string where = fmt::format("{}: release {}@{}", origin, rel.name, rel.vsn);

  // Other versions' directories are theirs, not this release's.
  std::set<std::string> others;
  std::erase_if(files, [&](const ContentFile& f) {
    const auto parts = components(f.path);
    const bool other = parts.size() >= 3 && parts[1] != rel.vsn;
    if (other) others.insert(parts[1]);
    return other;
  });
  for (const auto& o : others) {
    rel.warnings.push_back(fmt::format("{}: releases/{}/: another version: left out", where, o));
  }
  const std::string bin = src.join(root, "bin");
  if (src.stat(bin).type == NodeType::kDir) walker.tree(bin, "bin", files);
  sort_files(files);
  rel.kind = kind_of(files, rel.name, rel.vsn);
  rel.files = std::move(files);

  const std::string lib = src.join(root, "lib");
  std::set<std::string> named;
  for (const auto& entry : rel.rel_apps) {
    const std::string dir = entry.app + "-" + entry.vsn;
    named.insert(dir);
    const std::string loc = src.join(lib, dir);
    if (src.stat(loc).type != NodeType::kDir) {
      fail(Code::kNotFound, fmt::format("{}: the .rel names {}@{}, but lib/{}/ is not there", where,
                                        entry.app, entry.vsn, dir));
    }
    AppContent app;
    app.origin = src.describe(loc);
    walker.tree(loc, "", app.files);
    sort_files(app.files);
    const auto spec_app = read_app_spec(app.files, entry.app, false, fmt::format("{}: lib/{}", where, dir));
    if (spec_app.vsn != entry.vsn) {
      fail(Code::kInvalidArgument, fmt::format("{}: lib/{}/ebin/{}.app says vsn {}, the .rel {}", where, dir,
                                               entry.app, spec_app.vsn, entry.vsn));
    }
    app.app = spec_app.name;
    app.vsn = spec_app.vsn;
    rel.apps.push_back(std::move(app));
  }
  if (src.stat(lib).type == NodeType::kDir) {
    for (const auto& name : src.list(lib)) {
      if (!named.count(name)) {
        rel.warnings.push_back(fmt::format("{}: lib/{}: not in the .rel: left out", where, name));
      }
    }
  }
  return rel;
}

// An archive holding one directory with the release in it (`myrel/releases/...`) reads as
// that directory.
std::string archive_root(const Source& src) {
  if (src.stat("releases").type == NodeType::kDir) return "";
  const auto top = src.list("");
  if (top.size() == 1 && src.stat(top[0] + "/releases").type == NodeType::kDir) return top[0];
  return "";
}

std::vector<archive::Entry> read_archive_or_fail(const std::string& path, const archive::Limits& limits) {
  auto entries = archive::read_archive(path, limits);
  if (!entries) fail(entries.error());
  return std::move(*entries);
}

}  // namespace

std::string_view path_kind_name(PathKind kind) noexcept {
  switch (kind) {
    case PathKind::kReleaseDir: return "release directory";
    case PathKind::kReleaseArchive: return "release archive";
    case PathKind::kAppDir: return "application directory";
    case PathKind::kAppArchive: return "application archive";
    case PathKind::kBeam: return "beam";
    case PathKind::kDirectory: return "directory";
    case PathKind::kOther: return "other";
  }
  return "other";
}

Result<PathKind> classify(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return error(Code::kIOError, fmt::format("{}: {}", path, ec.message()));
    }
    return error(Code::kNotFound, fmt::format("{}: no such file or directory", path));
  }
  const fs::path p(path);
  if (fs::is_directory(st)) {
    if (fs::is_directory(p / "releases", ec) && fs::is_directory(p / "lib", ec)) return PathKind::kReleaseDir;
    if (fs::is_directory(p / "ebin", ec)) {
      for (fs::directory_iterator it(p / "ebin", ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() == ".app") return PathKind::kAppDir;
      }
    }
    return PathKind::kDirectory;
  }
  const std::string name = p.filename().string();
  if (ends_with(name, ".tar.gz") || ends_with(name, ".tgz") || ends_with(name, ".tar")) {
    return PathKind::kReleaseArchive;
  }
  if (ends_with(name, ".ez")) return PathKind::kAppArchive;
  if (ends_with(name, ".beam")) return PathKind::kBeam;
  return PathKind::kOther;
}

Result<ReleaseContent> read_release(const std::string& path, const ReadOptions& options) {
  try {
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (!fs::exists(st)) return error(Code::kNotFound, fmt::format("{}: no such file or directory", path));
    if (fs::is_directory(st)) {
      DiskSource src(options.limits);
      return read_release_from(src, path, path, options);
    }
    ArchiveSource src(path, read_archive_or_fail(path, options.limits));
    return read_release_from(src, archive_root(src), path, options);
  } catch (const ReadError& e) {
    return error(e.status);
  }
}

Result<AppRead> read_app(const std::string& path, const ReadOptions& options) {
  try {
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (!fs::exists(st)) return error(Code::kNotFound, fmt::format("{}: no such file or directory", path));
    AppRead out;
    std::string root, name;
    std::unique_ptr<Source> src;
    if (fs::is_directory(st)) {
      src = std::make_unique<DiskSource>(options.limits);
      root = path;
      name = base::app_name(path);
    } else {
      src = std::make_unique<ArchiveSource>(path, read_archive_or_fail(path, options.limits));
      // zip:create of an application directory: `<app>-<vsn>/...`, one directory.
      const auto top = src->list("");
      if (top.size() != 1 || src->stat(top[0]).type != NodeType::kDir) {
        return error(
            Code::kInvalidArgument,
            fmt::format("{}: not an application archive: it should hold one directory "
                        "<app>-<vsn>/, and holds {}",
                        path,
                        top.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(top, ", "))));
      }
      root = top[0];
      name = base::app_name(top[0]);
    }
    out.app.origin = src->describe(root);
    Walker(*src, options.limits, out.warnings).tree(root, "", out.app.files);
    sort_files(out.app.files);
    const auto spec = read_app_spec(out.app.files, name, true, out.app.origin);
    out.app.app = spec.name;
    out.app.vsn = spec.vsn;
    return out;
  } catch (const ReadError& e) {
    return error(e.status);
  }
}

}  // namespace codestore

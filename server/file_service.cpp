#include "file_service.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "base/app_dir.h"
#include "base/file.h"

namespace codestore::server {

using protocol::Command;
using protocol::FileInfo;

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_beam_name(std::string_view name) {
  return name.size() > 5 && ends_with(name, ".beam");
}

std::vector<std::string> split_components(std::string_view rel) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < rel.size()) {
    std::size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    if (j > i) out.emplace_back(rel.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

FileInfo from_stat(const struct stat& st) {
  FileInfo info;
  info.size = static_cast<std::uint64_t>(st.st_size);
  if (S_ISREG(st.st_mode)) {
    info.type = FileInfo::Type::kRegular;
  } else if (S_ISDIR(st.st_mode)) {
    info.type = FileInfo::Type::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    info.type = FileInfo::Type::kSymlink;
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    info.type = FileInfo::Type::kDevice;
  } else {
    info.type = FileInfo::Type::kOther;
  }
  // As OTP's unix driver does: the owner's permission bits.
  bool r = (st.st_mode & S_IRUSR) != 0;
  bool w = (st.st_mode & S_IWUSR) != 0;
  info.access = r && w ? FileInfo::Access::kReadWrite
                : r    ? FileInfo::Access::kRead
                : w    ? FileInfo::Access::kWrite
                       : FileInfo::Access::kNone;
  info.atime = st.st_atime;
  info.mtime = st.st_mtime;
  info.ctime = st.st_ctime;
  info.mode = st.st_mode;
  info.links = st.st_nlink;
  info.major_device = st.st_dev;
  info.minor_device = st.st_rdev;
  info.inode = st.st_ino;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  return info;
}

// A directory the store makes up (a store lib without a directory in the fallback).
FileInfo synthetic_dir(std::int64_t time) {
  FileInfo info;
  info.size = 4096;
  info.type = FileInfo::Type::kDirectory;
  info.access = FileInfo::Access::kRead;
  info.atime = info.mtime = info.ctime = time;
  info.mode = S_IFDIR | 0555;
  info.links = 2;
  return info;
}

FileInfo module_info(const ServedModule& m) {
  FileInfo info;
  info.size = m.size;
  info.type = FileInfo::Type::kRegular;
  info.access = FileInfo::Access::kRead;
  info.atime = info.mtime = info.ctime = m.active_since;
  info.mode = S_IFREG | 0444;
  info.links = 1;
  return info;
}

// readdir without "." and "..", sorted so that answers do not depend on the file system.
tl::expected<std::vector<std::string>, int> read_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return tl::unexpected(errno);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return tl::unexpected(err);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string_view posix_atom(int err) noexcept {
  switch (err) {
    case ENOENT: return "enoent";
    case EACCES: return "eacces";
    case EPERM: return "eperm";
    case ENOTDIR: return "enotdir";
    case EISDIR: return "eisdir";
    case ELOOP: return "eloop";
    case ENAMETOOLONG: return "enametoolong";
    case EFBIG: return "efbig";
    case ENOMEM: return "enomem";
    case EMFILE: return "emfile";
    case ENFILE: return "enfile";
    case EINVAL: return "einval";
    case EBUSY: return "ebusy";
    case ENOSPC: return "enospc";
    case EROFS: return "erofs";
    case ENXIO: return "enxio";
    case ENODEV: return "enodev";
    case EAGAIN: return "eagain";
    case EOVERFLOW: return "eoverflow";
    default: return "eio";
  }
}

std::string normalize_path(std::string_view path, std::string_view base) {
  std::string joined;
  if (path.empty() || path[0] != '/') {
    joined.assign(base);
    joined.push_back('/');
  }
  joined.append(path);
  std::vector<std::string> parts;
  for (std::string& c : split_components(joined)) {
    if (c == ".") continue;
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(std::move(c));
  }
  std::string out;
  for (const std::string& p : parts) {
    out.push_back('/');
    out.append(p);
  }
  return out.empty() ? "/" : out;
}

std::string store_lib_for(std::string_view dir_name, const std::vector<std::string>& store_libs) {
  auto has = [&](std::string_view name) {
    return std::binary_search(store_libs.begin(), store_libs.end(), name,
                              [](std::string_view a, std::string_view b) { return a < b; });
  };
  if (has(dir_name)) return std::string(dir_name);
  std::string app = base::app_name(dir_name);
  if (app != dir_name && has(app)) return app;
  return {};
}

FileService::FileService(const std::string& root, ModuleSource& source, std::size_t max_file_bytes)
    : root_(normalize_path(root, "/")), source_(source), max_file_bytes_(max_file_bytes) {}

Result<Resolved> FileService::resolve(std::string_view path) const {
  Resolved r;
  r.fs_path = normalize_path(path, root_);
  std::string_view rel;
  if (root_ == "/") {
    rel = std::string_view(r.fs_path).substr(1);
  } else if (r.fs_path == root_) {
    rel = {};
  } else if (r.fs_path.size() > root_.size() && r.fs_path.compare(0, root_.size(), root_) == 0 &&
             r.fs_path[root_.size()] == '/') {
    rel = std::string_view(r.fs_path).substr(root_.size() + 1);
  } else {
    r.kind = Resolved::Kind::kOutside;
    return r;
  }
  std::vector<std::string> c = split_components(rel);
  bool beam = !c.empty() && is_beam_name(c.back());
  r.kind = beam ? Resolved::Kind::kBeam : Resolved::Kind::kFallback;
  if (c.empty() || c[0] != "lib") return r;
  if (c.size() == 1) {
    r.kind = Resolved::Kind::kLibDir;
    return r;
  }
  if (c.size() == 4 && c[2] == "ebin" && beam) {
    // The hot path: no lib listing, the module lookup decides (see get()).
    r.kind = Resolved::Kind::kModule;
    r.lib = c[1];
    r.module = c[3].substr(0, c[3].size() - 5);
    return r;
  }
  if (c.size() > 3 || (c.size() == 3 && c[2] != "ebin")) return r;
  auto libs = source_.libs();
  if (!libs) return tl::unexpected(libs.error());
  std::string lib = store_lib_for(c[1], *libs);
  if (lib.empty()) return r;
  r.lib = std::move(lib);
  r.kind = c.size() == 2 ? Resolved::Kind::kAppDir : Resolved::Kind::kEbinDir;
  return r;
}

Answer FileService::answer(const protocol::Request& request) const {
  if (request.command == Command::kGetCwd) {
    if (request.has_drive)
      return {protocol::command_error(Command::kGetCwd, "enotsup"), "enotsup (no drives)"};
    return {protocol::cwd_reply(root_), "ok (the root)"};
  }
  if (!request.path_ok)
    return {protocol::command_error(request.command, "badarg"), "badarg (not a file name)"};
  switch (request.command) {
    case Command::kGet: return get(request);
    case Command::kListDir: return list_dir(request);
    default: return file_info(request);
  }
}

namespace {

Answer enoent(Command command, const std::string& why) {
  return {protocol::command_error(command, "enoent"), "enoent (" + why + ")"};
}

Answer store_failure(Command command, const Status& status) {
  return {protocol::command_error(command, "eio"), "eio (store: " + status.to_string() + ")"};
}

Answer posix(Command command, int err, std::string_view where) {
  std::string_view atom = posix_atom(err);
  return {protocol::command_error(command, atom), fmt::format("{} ({})", atom, where)};
}

}  // namespace

// The served version of `module` when it belongs to the store lib that lib directory
// `dir` stands for: the dir's name itself, or that name without "-<vsn>". One lookup by
// module name: this is the hot path of a booting node.
static Result<ServedModule> find_module(ModuleSource& source, const std::string& dir,
                                        const std::string& module) {
  auto found = source.find(module);
  if (!found) return found;
  if (found->lib == dir || found->lib == base::app_name(dir)) return found;
  return error(Code::kNotFound, fmt::format("module {} belongs to lib {}", module, found->lib));
}

// A module find_module did not give: enoent when the store has no such module in that
// lib, the store's failure otherwise.
static Answer module_failure(Command cmd, const std::string& lib, const std::string& module,
                             const Status& status) {
  if (status.code() != Code::kNotFound) return store_failure(cmd, status);
  return enoent(cmd, fmt::format("store: no module {} in lib {}", module, base::app_name(lib)));
}

Answer FileService::get(const protocol::Request& request) const {
  const Command cmd = request.command;
  auto resolved = resolve(request.path);
  if (!resolved) return store_failure(cmd, resolved.error());
  const Resolved& r = *resolved;
  switch (r.kind) {
    case Resolved::Kind::kOutside: return enoent(cmd, "outside the root " + root_);
    case Resolved::Kind::kBeam:
      return enoent(cmd, "a module outside lib/<app>/ebin: modules come only from the store");
    case Resolved::Kind::kLibDir:
    case Resolved::Kind::kAppDir:
    case Resolved::Kind::kEbinDir:
      return {protocol::command_error(cmd, "eisdir"), "eisdir (store directory)"};
    case Resolved::Kind::kModule: {
      auto m = find_module(source_, r.lib, r.module);
      if (!m) return module_failure(cmd, r.lib, r.module, m.error());
      auto bytes = source_.image(*m);
      if (!bytes) return store_failure(cmd, bytes.error());
      if (!*bytes) return store_failure(cmd, Status(Code::kInternal, "the source gave no image"));
      Answer a;
      a.reply = protocol::get_reply_head((*bytes)->size());
      a.body = std::move(*bytes);
      a.log = fmt::format("store {}/{} v{} md5 {} ({} bytes)", m->lib, m->module, m->version,
                          m->md5.empty() ? "?" : m->md5, a.body->size());
      a.served = std::move(*m);
      return a;
    }
    case Resolved::Kind::kFallback: break;
  }
  auto read = base::read_file(r.fs_path, max_file_bytes_);
  if (!read) {
    if (read.error().err == EFBIG) return posix(cmd, EFBIG, "fallback " + read.error().message);
    return posix(cmd, read.error().err, "fallback");
  }
  std::vector<std::uint8_t> bytes = std::move(*read);
  Answer a;
  a.reply = protocol::get_reply_head(bytes.size());
  a.fallback_file_served = true;
  a.log = fmt::format("fallback ({} bytes)", bytes.size());
  a.body = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  return a;
}

Answer FileService::list_dir(const protocol::Request& request) const {
  const Command cmd = request.command;
  auto resolved = resolve(request.path);
  if (!resolved) return store_failure(cmd, resolved.error());
  const Resolved& r = *resolved;
  // Module files of the fallback are never served, so never listed either.
  auto without_beams = [](std::vector<std::string> names) {
    names.erase(
        std::remove_if(names.begin(), names.end(), [](const std::string& n) { return is_beam_name(n); }),
        names.end());
    return names;
  };
  switch (r.kind) {
    case Resolved::Kind::kOutside: return enoent(cmd, "outside the root " + root_);
    case Resolved::Kind::kBeam: return enoent(cmd, "a module outside lib/<app>/ebin");
    case Resolved::Kind::kModule: {
      auto m = find_module(source_, r.lib, r.module);
      if (m) return {protocol::command_error(cmd, "enotdir"), "enotdir (store module)"};
      if (m.error().code() == Code::kNotFound) return enoent(cmd, "store: no such module");
      return store_failure(cmd, m.error());
    }
    case Resolved::Kind::kFallback: {
      auto names = read_dir(r.fs_path);
      if (!names) return posix(cmd, names.error(), "fallback");
      auto listed = without_beams(std::move(*names));
      return {protocol::list_dir_reply(listed), fmt::format("fallback ({} entries)", listed.size())};
    }
    case Resolved::Kind::kLibDir: {
      auto libs = source_.libs();
      if (!libs) return store_failure(cmd, libs.error());
      auto names = read_dir(r.fs_path);
      if (!names && libs->empty()) return posix(cmd, names.error(), "fallback");
      std::vector<std::string> listed = names ? *names : std::vector<std::string>{};
      std::set<std::string> apps;
      for (const std::string& n : listed) {
        apps.insert(n);
        apps.insert(base::app_name(n));
      }
      std::size_t added = 0;
      for (const std::string& lib : *libs) {
        if (apps.count(lib) == 0) {
          listed.push_back(lib);
          ++added;
        }
      }
      std::sort(listed.begin(), listed.end());
      return {protocol::list_dir_reply(listed),
              fmt::format("fallback {} entries + store {} libs without a directory", listed.size() - added,
                          added)};
    }
    case Resolved::Kind::kAppDir: {
      auto names = read_dir(r.fs_path);
      std::vector<std::string> listed = names ? without_beams(std::move(*names)) : std::vector<std::string>{};
      if (std::find(listed.begin(), listed.end(), "ebin") == listed.end()) listed.emplace_back("ebin");
      std::sort(listed.begin(), listed.end());
      return {protocol::list_dir_reply(listed),
              fmt::format("store lib {} ({} entries)", r.lib, listed.size())};
    }
    case Resolved::Kind::kEbinDir: {
      auto modules = source_.modules(r.lib);
      if (!modules) return store_failure(cmd, modules.error());
      auto names = read_dir(r.fs_path);
      std::vector<std::string> listed = names ? without_beams(std::move(*names)) : std::vector<std::string>{};
      std::size_t others = listed.size();
      for (const ServedModule& m : *modules) listed.push_back(m.module + ".beam");
      std::sort(listed.begin(), listed.end());
      return {
          protocol::list_dir_reply(listed),
          fmt::format("store lib {}: {} modules + fallback {} other files", r.lib, modules->size(), others)};
    }
  }
  return enoent(cmd, "unreachable");
}

Answer FileService::file_info(const protocol::Request& request) const {
  const Command cmd = request.command;
  const bool follow = cmd == Command::kReadFileInfo;
  auto resolved = resolve(request.path);
  if (!resolved) return store_failure(cmd, resolved.error());
  const Resolved& r = *resolved;
  auto stat_fallback = [&](std::string_view where) -> Answer {
    struct stat st {};
    int rc = follow ? ::stat(r.fs_path.c_str(), &st) : ::lstat(r.fs_path.c_str(), &st);
    if (rc != 0) return posix(cmd, errno, where);
    return {protocol::file_info_reply(cmd, from_stat(st)), std::string(where)};
  };
  switch (r.kind) {
    case Resolved::Kind::kOutside: return enoent(cmd, "outside the root " + root_);
    case Resolved::Kind::kBeam: return enoent(cmd, "a module outside lib/<app>/ebin");
    case Resolved::Kind::kFallback:
    case Resolved::Kind::kLibDir: return stat_fallback("fallback");
    case Resolved::Kind::kAppDir:
    case Resolved::Kind::kEbinDir: {
      struct stat st {};
      if (::stat(r.fs_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return {protocol::file_info_reply(cmd, from_stat(st)),
                "store lib " + r.lib + " (fallback directory)"};
      }
      struct stat root_st {};
      std::int64_t t = ::stat(root_.c_str(), &root_st) == 0 ? root_st.st_mtime : 0;
      return {protocol::file_info_reply(cmd, synthetic_dir(t)), "store lib " + r.lib + " (directory)"};
    }
    case Resolved::Kind::kModule: {
      auto m = find_module(source_, r.lib, r.module);
      if (!m) return module_failure(cmd, r.lib, r.module, m.error());
      return {protocol::file_info_reply(cmd, module_info(*m)),
              fmt::format("store {}/{} v{} ({} bytes)", m->lib, m->module, m->version, m->size)};
    }
  }
  return enoent(cmd, "unreachable");
}

}  // namespace codestore::server

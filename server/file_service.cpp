#include "file_service.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "agent_files.h"
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

FileService::FileService(const std::string& root, ModuleSource& source, std::size_t max_file_bytes,
                         Routing routing, std::uint16_t agent_port)
    : root_(normalize_path(root, "/")),
      source_(source),
      max_file_bytes_(max_file_bytes),
      routing_(std::move(routing)) {
  if (agent_port != 0) {
    // One agent.config per channel: a node a rule gives another channel reads that channel's
    // name here, and its agent follows it (a hello that names no channel gets the default).
    auto config = [agent_port](const std::string& channel) {
      std::string text = fmt::format(
          "%% codestore serve: the agent port and the channel of the nodes that read this file\n"
          "%% (docs/agent-protocol.md). Read by codestore_agent.\n"
          "{{agent_port, {}}}.\n",
          agent_port);
      // Channel names are letters, digits, '.', '_' and '-' (the store's rule): no escaping.
      if (!channel.empty()) text += fmt::format("{{channel, \"{}\"}}.\n", channel);
      return std::make_shared<const std::vector<std::uint8_t>>(text.begin(), text.end());
    };
    agent_configs_.emplace("", config(""));
    for (const Routing::Rule& rule : routing_.rules)
      agent_configs_.try_emplace(rule.channel, config(rule.channel));
  }
}

Result<Subnet> parse_subnet(const std::string& text, std::string_view what) {
  std::string host = text;
  int prefix = 32;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    host = text.substr(0, slash);
    std::string len = text.substr(slash + 1);
    if (len.empty() || len.size() > 2 || !std::all_of(len.begin(), len.end(), ::isdigit) ||
        std::stoi(len) > 32) {
      return error(Code::kInvalidArgument, fmt::format("{}: bad prefix length in '{}'", what, text));
    }
    prefix = std::stoi(len);
  }
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) {
    // A host name, as OTP's add_slave/1 accepts: its IPv4 address.
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
      return error(Code::kInvalidArgument,
                   fmt::format("{}: '{}' is no IPv4 address, subnet or known host", what, text));
    }
    a = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
    ::freeaddrinfo(res);
  }
  Subnet s;
  s.address = ntohl(a.s_addr);
  s.mask = prefix == 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
  return s;
}

Result<Routing> Routing::make(const BootServerOptions& options,
                              const std::map<std::string, ModuleSource*>& channels) {
  Routing r;
  for (const std::string& root : options.client_roots) {
    if (root.empty() || root[0] != '/') {
      return error(Code::kInvalidArgument, fmt::format("client root '{}': not an absolute path", root));
    }
    std::string n = normalize_path(root, "/");
    if (n == "/") return error(Code::kInvalidArgument, "client root /: every path would be under it");
    if (std::find(r.client_roots.begin(), r.client_roots.end(), n) == r.client_roots.end())
      r.client_roots.push_back(n);
  }
  for (const BootServerOptions::ChannelRule& rule : options.channel_rules) {
    Rule out;
    out.channel = rule.channel;
    auto it = channels.find(rule.channel);
    if (it == channels.end() || it->second == nullptr) {
      return error(Code::kInvalidArgument, fmt::format("channel rule {}={}: no source for channel {}",
                                                       rule.channel, rule.where, rule.channel));
    }
    out.source = it->second;
    if (!rule.where.empty() && rule.where[0] == '/') {
      out.client_root = normalize_path(rule.where, "/");
      if (std::find(r.client_roots.begin(), r.client_roots.end(), out.client_root) == r.client_roots.end()) {
        return error(Code::kInvalidArgument,
                     fmt::format("channel rule {}={}: {} is not a client root (--client-root)", rule.channel,
                                 rule.where, out.client_root));
      }
    } else {
      auto subnet = parse_subnet(rule.where, fmt::format("channel rule {}={}", rule.channel, rule.where));
      if (!subnet) return tl::unexpected(subnet.error());
      out.subnet = *subnet;
    }
    r.rules.push_back(std::move(out));
  }
  return r;
}

namespace {

std::string join_components(const std::vector<std::string>& c, std::size_t from = 0) {
  std::string out;
  for (std::size_t i = from; i < c.size(); ++i) {
    if (!out.empty()) out.push_back('/');
    out.append(c[i]);
  }
  return out;
}

}  // namespace

Result<Resolved> FileService::resolve(std::string_view path, std::uint32_t peer) const {
  Resolved r;
  r.source = &source_;
  // The client root is found on the path as the client wrote it: a mix node asks for
  // `R/lib/../releases/...`, which stays under R; a `..` that climbs out of R is refused
  // rather than read as another client root's or the root's path.
  std::string rel;
  bool under_client_root = false;
  if (!path.empty() && path[0] == '/' && !routing_.client_roots.empty()) {
    std::vector<std::string> comps;
    for (std::string& c : split_components(path)) {
      if (c != ".") comps.push_back(std::move(c));
    }
    std::size_t best_n = 0;
    for (const std::string& root : routing_.client_roots) {
      std::vector<std::string> rc = split_components(root);
      if (rc.size() <= comps.size() && rc.size() > best_n &&
          std::equal(rc.begin(), rc.end(), comps.begin())) {
        r.client_root = root;
        best_n = rc.size();
      }
    }
    if (!r.client_root.empty()) {
      under_client_root = true;
      std::vector<std::string> rest;
      for (std::size_t i = best_n; i < comps.size(); ++i) {
        if (comps[i] != "..") {
          rest.push_back(std::move(comps[i]));
        } else if (!rest.empty()) {
          rest.pop_back();
        } else {
          r.kind = Resolved::Kind::kOutside;
          r.why = "`..` leaves the client root " + r.client_root;
          r.fs_path = normalize_path(path, "/");
          return r;
        }
      }
      rel = join_components(rest);
      r.fs_path = rel.empty() ? root_ : (root_ == "/" ? "/" : root_ + "/") + rel;
    }
  }
  for (const Routing::Rule& rule : routing_.rules) {
    bool match = rule.subnet ? rule.subnet->contains(peer) : rule.client_root == r.client_root;
    if (match) {
      r.channel = rule.channel;
      r.source = rule.source;
      break;
    }
  }
  if (!under_client_root) {
    r.fs_path = normalize_path(path, root_);
    if (root_ == "/") {
      rel = r.fs_path.substr(1);
    } else if (r.fs_path == root_) {
      rel.clear();
    } else if (r.fs_path.size() > root_.size() && r.fs_path.compare(0, root_.size(), root_) == 0 &&
               r.fs_path[root_.size()] == '/') {
      rel = r.fs_path.substr(root_.size() + 1);
    } else {
      r.kind = Resolved::Kind::kOutside;
      r.why = routing_.client_roots.empty() ? "outside the root " + root_
                                            : "outside the root " + root_ + " and every client root";
      return r;
    }
  }
  return resolve_under(std::move(r), rel);
}

Result<Resolved> FileService::resolve_under(Resolved r, std::string_view rel) const {
  ModuleSource& source = *r.source;
  std::vector<std::string> c = split_components(rel);
  if (c.size() >= 2 && c[0] == "releases" && c.back() == "COOKIE") {
    // mix's node cookie: a node reads its own from local disk; the store keeps none unless
    // asked, and the server never hands one out.
    r.kind = Resolved::Kind::kSecret;
    r.why = "a secret (releases/**/COOKIE): never served";
    return r;
  }
  if (!r.client_root.empty()) {
    if (c.size() == 1 && c[0] == "lib") {
      r.kind = Resolved::Kind::kClientLib;
      return r;
    }
    const bool boot_script = c.size() == 2 && c[0] == "bin" && c[1] == "start.boot";
    if ((!c.empty() && c[0] == "releases") || boot_script) {
      auto apps = source.channel_apps();
      if (!apps) return tl::unexpected(apps.error());
      const ReleaseId& running = (*apps)->release;
      if (!running.name.empty()) {
        if (c.size() == 1) {
          r.kind = Resolved::Kind::kReleases;
          r.store_path = "releases";
          return r;
        }
        // bin/start.boot is the boot script of the release the channel runs; releases/<vsn>/
        // is that release's <vsn> (a node still running X after X' was deployed asks for X's).
        ReleaseId id{running.name, boot_script ? running.vsn : c[1]};
        auto release = source.release(id);
        if (release) {
          r.kind = Resolved::Kind::kStoreRelease;
          r.release = std::move(*release);
          r.store_path = boot_script ? "releases/" + running.vsn + "/start.boot" : std::string(rel);
          return r;
        }
        if (release.error().code() != Code::kNotFound) return tl::unexpected(release.error());
        // Not a stored release of that name (OTP's own releases/<otp>): the root's, as erts's.
      }
    }
  }
  if (c.size() >= 2 && c[0] == "lib" &&
      (c[1] == "codestore_agent" || c[1] == fmt::format("codestore_agent-{}", agent_vsn()))) {
    // The agent shipped with this server, for every channel (docs/agent-protocol.md): a stored
    // application of that name and vsn is never served instead.
    r.kind = Resolved::Kind::kAgent;
    r.store_path = join_components(c, 2);
    return r;
  }
  if (c.size() >= 2 && c[0] == "lib") {
    std::string app = base::app_name(c[1]);
    auto has = source.has_app_versions(app);
    if (!has) return tl::unexpected(has.error());
    if (*has) {
      std::string vsn = c[1].size() > app.size() + 1 ? c[1].substr(app.size() + 1) : std::string();
      auto av = source.app_version(app, vsn);
      if (av) {
        r.kind = Resolved::Kind::kStoreApp;
        r.lib = app;
        r.app = std::move(*av);
        r.store_path = join_components(c, 2);
        return r;
      }
      if (av.error().code() != Code::kNotFound) return tl::unexpected(av.error());
      if (!vsn.empty()) {
        // A path that names a version gets that version or nothing.
        r.kind = Resolved::Kind::kNoAppVersion;
        r.why = "store: " + av.error().message();
        return r;
      }
      // lib/<app>/ with no version pinned by the channel: the served set, as before.
    }
  }
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
  auto libs = source.libs();
  if (!libs) return tl::unexpected(libs.error());
  std::string lib = store_lib_for(c[1], *libs);
  if (lib.empty()) return r;
  r.lib = std::move(lib);
  r.kind = c.size() == 2 ? Resolved::Kind::kAppDir : Resolved::Kind::kEbinDir;
  return r;
}

namespace {

Answer enoent(Command command, const std::string& why) {
  return {protocol::command_error(command, "enoent"), "enoent (" + why + ")"};
}

Answer store_failure(Command command, const Status& status) {
  return {protocol::command_error(command, "eio"), "eio (store: " + status.to_string() + ")"};
}

// A get's answer: the reply head, then `body` from where it is; logged as `what` and the size.
Answer get_answer(Answer::Bytes body, std::string_view what) {
  Answer a;
  a.reply = protocol::get_reply_head(body->size());
  a.log = fmt::format("{} ({} bytes)", what, body->size());
  a.body = std::move(body);
  return a;
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

Answer FileService::get(const protocol::Request& request, const Resolved& r) const {
  const Command cmd = request.command;
  switch (r.kind) {
    case Resolved::Kind::kAgent: return agent_answer(request, r);
    case Resolved::Kind::kOutside: return enoent(cmd, r.why);
    case Resolved::Kind::kSecret: return posix(cmd, EACCES, r.why);
    case Resolved::Kind::kNoAppVersion: return enoent(cmd, r.why);
    case Resolved::Kind::kStoreApp:
    case Resolved::Kind::kStoreRelease:
    case Resolved::Kind::kClientLib:
    case Resolved::Kind::kReleases: return store_answer(request, r);
    case Resolved::Kind::kBeam:
      return enoent(cmd, "a module outside lib/<app>/ebin: modules come only from the store");
    case Resolved::Kind::kLibDir:
    case Resolved::Kind::kAppDir:
    case Resolved::Kind::kEbinDir:
      return {protocol::command_error(cmd, "eisdir"), "eisdir (store directory)"};
    case Resolved::Kind::kModule: {
      auto m = find_module(*r.source, r.lib, r.module);
      if (!m) return module_failure(cmd, r.lib, r.module, m.error());
      auto bytes = r.source->image(*m);
      if (!bytes) return store_failure(cmd, bytes.error());
      if (!*bytes) return store_failure(cmd, Status(Code::kInternal, "the source gave no image"));
      Answer a = get_answer(std::move(*bytes), fmt::format("store {}/{} v{} md5 {}", m->lib, m->module,
                                                           m->version, m->md5.empty() ? "?" : m->md5));
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

Answer FileService::list_dir(const protocol::Request& request, const Resolved& r) const {
  const Command cmd = request.command;
  // Module files of the fallback are never served, so never listed either.
  auto without_beams = [](std::vector<std::string> names) {
    names.erase(
        std::remove_if(names.begin(), names.end(), [](const std::string& n) { return is_beam_name(n); }),
        names.end());
    return names;
  };
  switch (r.kind) {
    case Resolved::Kind::kAgent: return agent_answer(request, r);
    case Resolved::Kind::kOutside: return enoent(cmd, r.why);
    case Resolved::Kind::kSecret: return posix(cmd, EACCES, r.why);
    case Resolved::Kind::kNoAppVersion: return enoent(cmd, r.why);
    case Resolved::Kind::kStoreApp:
    case Resolved::Kind::kStoreRelease:
    case Resolved::Kind::kClientLib:
    case Resolved::Kind::kReleases: return store_answer(request, r);
    case Resolved::Kind::kBeam: return enoent(cmd, "a module outside lib/<app>/ebin");
    case Resolved::Kind::kModule: {
      auto m = find_module(*r.source, r.lib, r.module);
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
      auto libs = r.source->libs();
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
      auto modules = r.source->modules(r.lib);
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

Answer FileService::file_info(const protocol::Request& request, const Resolved& r) const {
  const Command cmd = request.command;
  const bool follow = cmd == Command::kReadFileInfo;
  auto stat_fallback = [&](std::string_view where) -> Answer {
    struct stat st {};
    int rc = follow ? ::stat(r.fs_path.c_str(), &st) : ::lstat(r.fs_path.c_str(), &st);
    if (rc != 0) return posix(cmd, errno, where);
    return {protocol::file_info_reply(cmd, from_stat(st)), std::string(where)};
  };
  switch (r.kind) {
    case Resolved::Kind::kAgent: return agent_answer(request, r);
    case Resolved::Kind::kOutside: return enoent(cmd, r.why);
    case Resolved::Kind::kSecret: return posix(cmd, EACCES, r.why);
    case Resolved::Kind::kNoAppVersion: return enoent(cmd, r.why);
    case Resolved::Kind::kStoreApp:
    case Resolved::Kind::kStoreRelease:
    case Resolved::Kind::kClientLib:
    case Resolved::Kind::kReleases: return store_answer(request, r);
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
      auto m = find_module(*r.source, r.lib, r.module);
      if (!m) return module_failure(cmd, r.lib, r.module, m.error());
      return {protocol::file_info_reply(cmd, module_info(*m)),
              fmt::format("store {}/{} v{} ({} bytes)", m->lib, m->module, m->version, m->size)};
    }
  }
  return enoent(cmd, "unreachable");
}

}  // namespace codestore::server

namespace codestore::server {

Answer FileService::answer(const protocol::Request& request, std::uint32_t peer) const {
  if (request.command == Command::kGetCwd) {
    if (request.has_drive)
      return {protocol::command_error(Command::kGetCwd, "enotsup"), "enotsup (no drives)"};
    return {protocol::cwd_reply(root_), "ok (the root)"};
  }
  if (!request.path_ok)
    return {protocol::command_error(request.command, "badarg"), "badarg (not a file name)"};
  auto resolved = resolve(request.path, peer);
  if (!resolved) return store_failure(request.command, resolved.error());
  Answer a;
  switch (request.command) {
    case Command::kGet: a = get(request, *resolved); break;
    case Command::kListDir: a = list_dir(request, *resolved); break;
    default: a = file_info(request, *resolved); break;
  }
  a.source = resolved->source;
  if (!resolved->channel.empty()) a.log += " [channel " + resolved->channel + "]";
  a.client_root = std::move(resolved->client_root);
  if (resolved->kind == Resolved::Kind::kStoreRelease && request.command == Command::kGet && a.body &&
      resolved->release) {
    a.release = resolved->release->release.id;
  }
  return a;
}

Answer FileService::agent_answer(const protocol::Request& request, const Resolved& r) const {
  const Command cmd = request.command;
  auto directory = [&](const std::vector<std::string>& names, std::string what) -> Answer {
    switch (cmd) {
      case Command::kGet: return {protocol::command_error(cmd, "eisdir"), "eisdir (" + what + ")"};
      case Command::kListDir:
        return {protocol::list_dir_reply(names), fmt::format("{} ({} entries)", what, names.size())};
      default: return {protocol::file_info_reply(cmd, synthetic_dir(0)), what + " (directory)"};
    }
  };
  auto file = [&](const Answer::Bytes& bytes, std::string what) -> Answer {
    switch (cmd) {
      case Command::kGet: return get_answer(bytes, what);
      case Command::kListDir: return {protocol::command_error(cmd, "enotdir"), "enotdir (" + what + ")"};
      default: {
        FileInfo info;
        info.size = bytes->size();
        info.mode = S_IFREG | 0444;
        return {protocol::file_info_reply(cmd, info), what + " (file)"};
      }
    }
  };
  const std::string what = fmt::format("agent codestore_agent-{}", agent_vsn());
  const std::string& path = r.store_path;
  const auto config_it = agent_configs_.find(r.channel);
  const Answer::Bytes agent_config = config_it == agent_configs_.end() ? nullptr : config_it->second;
  if (path.empty()) {
    std::vector<std::string> names = {"ebin"};
    if (agent_config) names.emplace_back("priv");
    return directory(names, what);
  }
  if (path == "ebin") {
    std::vector<std::string> names;
    for (const AgentFile& f : agent_ebin()) names.emplace_back(f.name);
    return directory(names, what + " ebin");
  }
  if (agent_config && path == "priv") return directory({"agent.config"}, what + " priv");
  if (agent_config && path == "priv/agent.config") return file(agent_config, what + " priv/agent.config");
  if (path.starts_with("ebin/")) {
    // The embedded bytes, copied once per process into shared buffers the answers point at.
    static const std::map<std::string, Answer::Bytes, std::less<>> bytes = [] {
      std::map<std::string, Answer::Bytes, std::less<>> m;
      for (const AgentFile& f : agent_ebin())
        m.emplace(std::string(f.name),
                  std::make_shared<const std::vector<std::uint8_t>>(f.bytes.begin(), f.bytes.end()));
      return m;
    }();
    auto it = bytes.find(std::string_view(path).substr(5));
    if (it != bytes.end()) return file(it->second, what + " " + path);
  }
  return enoent(cmd, what + ": no " + path);
}

namespace {

// An application version's or a release's files as one tree: modules, files, and the
// directories their paths imply.
struct StoreTree {
  const std::vector<ContentModule>* modules = nullptr;
  const std::vector<ContentEntry>* files = nullptr;
  std::int64_t mtime = 0;
  std::string lib;   // the served modules' lib: the application, or the release's name
  std::string what;  // for the log: "myapp@0.1.0", "release myrel@0.1.0"

  const ContentModule* module_at(std::string_view path) const {
    // The hot path: modules are sorted by name and a module's path ends in <name>.beam.
    std::string_view base = path.substr(path.rfind('/') + 1);
    if (!is_beam_name(base)) return nullptr;
    base.remove_suffix(5);
    auto it = std::lower_bound(modules->begin(), modules->end(), base,
                               [](const ContentModule& m, std::string_view name) { return m.module < name; });
    return it != modules->end() && it->module == base && it->path == path ? &*it : nullptr;
  }
  const ContentEntry* file_at(std::string_view path) const {
    auto it = std::lower_bound(files->begin(), files->end(), path,
                               [](const ContentEntry& e, std::string_view p) { return e.path < p; });
    return it != files->end() && it->path == path ? &*it : nullptr;
  }
  // The names directly under directory `dir` ("" the top); nullopt when no path is under it.
  std::optional<std::set<std::string>> children(std::string_view dir) const {
    std::set<std::string> out;
    bool any = false;
    auto add = [&](std::string_view path) {
      std::string_view rest;
      if (dir.empty()) {
        rest = path;
      } else if (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                 path[dir.size()] == '/') {
        rest = path.substr(dir.size() + 1);
      } else {
        return;
      }
      any = true;
      out.emplace(rest.substr(0, rest.find('/')));
    };
    for (const ContentModule& m : *modules) add(m.path);
    for (const ContentEntry& e : *files) add(e.path);
    if (!any) return std::nullopt;
    return out;
  }
};

FileInfo stored_file_info(std::uint64_t size, std::int64_t mtime) {
  ServedModule m;
  m.size = size;
  m.active_since = mtime;
  return module_info(m);
}

}  // namespace

Answer FileService::store_answer(const protocol::Request& request, const Resolved& r) const {
  const Command cmd = request.command;
  auto directory = [&](const std::vector<std::string>& names, std::int64_t mtime,
                       std::string what) -> Answer {
    switch (cmd) {
      case Command::kGet: return {protocol::command_error(cmd, "eisdir"), "eisdir (" + what + ")"};
      case Command::kListDir:
        return {protocol::list_dir_reply(names), fmt::format("{} ({} entries)", what, names.size())};
      default: return {protocol::file_info_reply(cmd, synthetic_dir(mtime)), what + " (directory)"};
    }
  };
  ModuleSource& source = *r.source;
  if (r.kind == Resolved::Kind::kClientLib) {
    auto apps = source.channel_apps();
    if (!apps) return store_failure(cmd, apps.error());
    std::set<std::string> names, pinned;
    for (const AppVersionSummary& a : (*apps)->apps) {
      names.insert(a.app + "-" + a.vsn);
      pinned.insert(a.app);
    }
    // Libs of modules served without a known application version keep their names.
    auto libs = source.libs();
    if (!libs) return store_failure(cmd, libs.error());
    for (const std::string& lib : *libs) {
      if (!lib.empty() && pinned.count(lib) == 0) names.insert(lib);
    }
    return directory({names.begin(), names.end()}, 0,
                     fmt::format("store: the applications of channel {}", (*apps)->channel));
  }
  if (r.kind == Resolved::Kind::kReleases) {
    auto apps = source.channel_apps();
    if (!apps) return store_failure(cmd, apps.error());
    auto vsns = source.release_vsns((*apps)->release.name);
    if (!vsns) return store_failure(cmd, vsns.error());
    return directory(*vsns, 0, fmt::format("store: the vsns of release {}", (*apps)->release.name));
  }
  StoreTree tree;
  if (r.kind == Resolved::Kind::kStoreApp) {
    tree = {&r.app->modules, &r.app->files, r.app->summary.imported_at, r.app->summary.app,
            fmt::format("{}@{}{}", r.app->summary.app, r.app->summary.vsn,
                        r.app->summary.revision > 1 ? fmt::format("#{}", r.app->summary.revision) : "")};
  } else {
    tree = {&r.release->consolidated, &r.release->files, r.release->release.imported_at,
            r.release->release.id.name,
            fmt::format("release {}@{}", r.release->release.id.name, r.release->release.id.vsn)};
  }
  const std::string& path = r.store_path;
  if (const ContentModule* m = tree.module_at(path)) {
    ServedModule served{.lib = tree.lib,
                        .module = m->module,
                        .version = m->version,
                        .size = m->size,
                        .active_since = tree.mtime,
                        .md5 = m->md5};
    switch (cmd) {
      case Command::kGet: {
        // The byte form this application version (or release) came with, as an export writes it.
        auto bytes = source.file(m->sha256);
        if (!bytes) return store_failure(cmd, bytes.error());
        Answer a = get_answer(std::move(*bytes), fmt::format("store {} {} v{} md5 {}", tree.what, m->module,
                                                             m->version, m->md5));
        a.served = std::move(served);
        return a;
      }
      case Command::kListDir: return {protocol::command_error(cmd, "enotdir"), "enotdir (store module)"};
      default:
        return {protocol::file_info_reply(cmd, module_info(served)),
                fmt::format("store {} {} v{} ({} bytes)", tree.what, m->module, m->version, m->size)};
    }
  }
  if (const ContentEntry* e = tree.file_at(path); e != nullptr && !e->directory) {
    if (!e->link.empty()) {
      // Not followed: a node reads what a link in its application leads to from its local
      // root (materialized), and a link's target may leave the application.
      return enoent(
          cmd, fmt::format("store {}: {} is a symbolic link to {}: not served", tree.what, path, e->link));
    }
    switch (cmd) {
      case Command::kGet: {
        auto bytes = source.file(e->sha256);
        if (!bytes) return store_failure(cmd, bytes.error());
        return get_answer(std::move(*bytes), fmt::format("store {} {}", tree.what, path));
      }
      case Command::kListDir: return {protocol::command_error(cmd, "enotdir"), "enotdir (store file)"};
      default:
        return {protocol::file_info_reply(cmd, stored_file_info(e->size, tree.mtime)),
                fmt::format("store {} {} ({} bytes)", tree.what, path, e->size)};
    }
  }
  auto names = tree.children(path);
  if (!names && !(path.empty() || tree.file_at(path) != nullptr)) {
    return enoent(cmd, fmt::format("store: {} has no {}", tree.what, path.empty() ? "files" : path));
  }
  std::vector<std::string> listed;
  if (names) listed.assign(names->begin(), names->end());
  // A release directory never lists a secret, as a node is never given one.
  listed.erase(std::remove(listed.begin(), listed.end(), "COOKIE"), listed.end());
  return directory(listed, tree.mtime, fmt::format("store {} {}", tree.what, path.empty() ? "/" : path));
}

}  // namespace codestore::server

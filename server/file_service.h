// What a boot-server request is answered with: the mapping of the client's paths onto the
// store (modules, lib and ebin directories) and the fallback directory (everything else),
// as boot_server.h describes it.
//
// Thread safety: a FileService is immutable after construction and its ModuleSource is
// thread-safe, so answer() may be called from many threads at once.
#pragma once

#include <codestore/boot_server.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.h"

namespace codestore::server {

// An IPv4 subnet in host byte order; a single address has mask 0xFFFFFFFF.
struct Subnet {
  std::uint32_t address = 0;
  std::uint32_t mask = 0xFFFFFFFFu;
  bool contains(std::uint32_t a) const { return (a & mask) == (address & mask); }
};
// "a.b.c.d", "a.b.c.d/len" or a host name (its IPv4 address). kInvalidArgument naming `what`.
Result<Subnet> parse_subnet(const std::string& text, std::string_view what = "allow");

// Which channel (which source) serves a request: BootServerOptions::client_roots and
// channel_rules, checked and with their sources.
struct Routing {
  std::vector<std::string> client_roots;  // normalized, absolute
  struct Rule {
    std::string channel;
    ModuleSource* source = nullptr;
    std::string client_root;       // a path rule: requests under this client root
    std::optional<Subnet> subnet;  // an address rule: requests from clients in it
  };
  std::vector<Rule> rules;  // first match wins
  // Checks `options`' client roots and rules against `channels` (the sources by channel).
  static Result<Routing> make(const BootServerOptions& options,
                              const std::map<std::string, ModuleSource*>& channels);
};

// Where a path leads, decided from the path, the client's address and the store.
struct Resolved {
  enum class Kind {
    kOutside,       // not under the root nor a client root, or `..` out of a client root: enoent
    kSecret,        // releases/**/COOKIE: never served
    kFallback,      // a file or directory of the fallback, served as is
    kLibDir,        // <root>/lib: fallback entries plus store libs
    kAppDir,        // <root>/lib/<dir> of a store lib
    kEbinDir,       // <root>/lib/<dir>/ebin of a store lib
    kModule,        // <root>/lib/<dir>/ebin/<m>.beam: from the store or enoent
    kBeam,          // any other .beam under the root: never served
    kStoreApp,      // lib/<app>[-<vsn>]/<path> of an application version in the store
    kNoAppVersion,  // lib/<app>-<vsn>/... of an application the store has, not that vsn: enoent
    kClientLib,     // <client root>/lib: the channel's applications
    kReleases,      // <client root>/releases: the vsns of the channel's release, fallback entries
    kStoreRelease,  // <client root>/releases/<vsn>/<path>, bin/start.boot: a stored release's file
    kAgent,         // lib/codestore_agent[-<vsn>]/<path>: the embedded agent (agent_files.h)
  };
  Kind kind = Kind::kOutside;
  std::string fs_path;               // the normalized absolute path under the root (the fallback's file)
  std::string lib;                   // store lib (kAppDir, kEbinDir, kModule); the application (kStoreApp)
  std::string module;                // kModule
  std::string client_root;           // the client root the path is under ("": under the root)
  std::string channel;               // the channel that serves it ("": the default source's)
  ModuleSource* source = nullptr;    // the source that serves it (never null after resolve)
  std::string why;                   // kOutside, kSecret, kNoAppVersion: what to log
  ModuleSource::AppVersionRef app;   // kStoreApp
  ModuleSource::ReleaseRef release;  // kStoreRelease
  std::string store_path;            // kStoreApp: in the app's directory; kStoreRelease: in the release root;
                                     // kAgent: in the agent's directory ("" the directory itself)
};

struct Answer {
  using Bytes = std::shared_ptr<const std::vector<std::uint8_t>>;
  // term_to_binary of the answer: `reply`, followed by `body` when set.
  std::vector<std::uint8_t> reply;
  std::string log;  // "fallback 1234 bytes", "store stdlib/lists v3 ...", "enoent (...)"
  // The module version sent, when this answer sends one: the caller counts it
  // (ModuleSource::record_served of `source`) once the answer is on its way, not before.
  std::optional<ServedModule> served = std::nullopt;
  ModuleSource* source = nullptr;
  bool fallback_file_served = false;
  // A get's file or module bytes, sent after `reply` from where they are (the image
  // cache) rather than copied into it.
  Bytes body = nullptr;
  // What the request tells about the node that sent it (the server records nodes,
  // node_recorder.h): the client root its path was under ("" none), and the release a get
  // read a file of (a client root's bin/start.boot or releases/<vsn>/...).
  std::string client_root{};
  std::optional<ReleaseId> release = std::nullopt;
};

class FileService {
 public:
  // `root` must be an absolute, existing directory (normalized here). `source` serves the
  // requests no rule of `routing` matches.
  // `agent_port`: the agent port announced in lib/codestore_agent/priv/agent.config, with the
  // channel a rule gives the node that reads it (0: no agent listener, no priv directory).
  FileService(const std::string& root, ModuleSource& source, std::size_t max_file_bytes, Routing routing = {},
              std::uint16_t agent_port = 0);

  const std::string& root() const { return root_; }

  // Answers one request of the client at `peer` (an IPv4 address in host byte order).
  Answer answer(const protocol::Request& request, std::uint32_t peer = 0x7f000001u) const;

  // Exposed for tests: resolves `path` (absolute, or relative to the root) for `peer`.
  Result<Resolved> resolve(std::string_view path, std::uint32_t peer = 0x7f000001u) const;

 private:
  Answer get(const protocol::Request& request, const Resolved& r) const;
  Answer list_dir(const protocol::Request& request, const Resolved& r) const;
  Answer file_info(const protocol::Request& request, const Resolved& r) const;
  // The store's own trees (kStoreApp, kStoreRelease, kClientLib, kReleases).
  Answer store_answer(const protocol::Request& request, const Resolved& r) const;
  // The embedded agent's tree (kAgent): ebin/ (its beams and .app), priv/agent.config.
  Answer agent_answer(const protocol::Request& request, const Resolved& r) const;
  // The rest of resolve once the path is known to be `rel` under the root or a client root.
  Result<Resolved> resolve_under(Resolved r, std::string_view rel) const;

  std::string root_;
  ModuleSource& source_;
  std::size_t max_file_bytes_;
  Routing routing_;
  // priv/agent.config's bytes by the channel a rule serves ("": the default's); empty without an
  // agent listener.
  std::map<std::string, Answer::Bytes> agent_configs_;
};

// Lexically normalizes `path` against `base` (for a relative path): collapses "//", "."
// and "..". The result is absolute; ".." never climbs above "/".
std::string normalize_path(std::string_view path, std::string_view base);

// The lib a directory name under <root>/lib stands for, given the store's libs: the name
// itself when the store has it, else its application name (base::app_name: cut at the
// first '-', as OTP names it and as the store names a lib on import) when the store has
// that. "" when the store has neither.
std::string store_lib_for(std::string_view dir_name, const std::vector<std::string>& store_libs);

// errno -> the POSIX atom Erlang reports (enoent, eacces, ...).
std::string_view posix_atom(int err) noexcept;

}  // namespace codestore::server

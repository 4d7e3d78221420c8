// Erlang's boot-server protocol (OTP's erl_boot_server) served from the store, so that an
// unmodified node started with `erl -loader inet -hosts IP` boots and loads its modules
// from codestore, and an operator's rollback reaches it on its next load.
//
//   auto source = codestore::server::open_store_source("app.db", /*release=*/"");
//   codestore::server::BootServerOptions opts;           // root /usr/lib/erlang, 127.0.0.1
//   opts.log = [](std::string_view line) { std::cerr << line << '\n'; };
//   auto server = codestore::server::BootServer::start(opts, *source);
//   ...
//   (*server)->stop();
//
// The protocol (OTP 25, kernel/src/erl_boot_server.erl, erts/preloaded erl_prim_loader.erl):
//   discovery  UDP port 4368: "EBOOTQ" ++ Version  ->  "EBOOTR", Priority, TcpPort:16/big, Version
//   requests   TCP, each frame a u32 big-endian length then term_to_binary(Request):
//              {get, File} | {list_dir, Dir} | {read_file_info, File} | {read_link_info, File}
//              | get_cwd | {get_cwd, Drive}
//   answers    term_to_binary({Cmd, Result}), Result as erl_prim_loader's primitives give it;
//              {error, badarg} for a frame that does not decode, {error, unknown_command}
//              for a term that is no request.
//
// What is served (paths are the server's, as with OTP's server; relative ones are taken
// from the root, which is also the answer to get_cwd):
//   <root>/lib/<app>[-<vsn>]/ebin/<m>.beam   the served version of m when it belongs to
//                                            store lib <app>; else {error, enoent}. A .beam
//                                            file anywhere under the root is never read.
//   <root>/lib                               the fallback's entries plus the store's libs
//                                            that have no directory there
//   <root>/lib/<app>[-<vsn>]/ebin            the store's modules of <app> plus the
//                                            fallback's other files (.app, .appup)
//   anything else under the root             the fallback directory (the root) as is
//   anything outside the root                {error, enoent}
//
// Under a client root P (BootServerOptions::client_roots: a node whose ROOTDIR is P), with the
// channel the first matching channel rule gives (by client root or client address):
//   P/bin/start.boot                         the boot script of the release the channel runs
//   P/releases/<vsn>/<file>, P/releases      that release's <vsn> as stored (its files, mix's
//                                            consolidated beams), the stored vsns
//   P/lib                                    the channel's applications as <app>-<vsn>
//   anything else under P                    as <root>/<the same path> above (erts's files)
// and under the root and every client root:
//   lib/<app>-<vsn>/<path>                   that application version's file, module or
//                                            directory when the store has versions of <app>
//                                            (ModuleSource::app_version), else enoent; an
//                                            application without versions resolves as above
//   lib/<app>/<path>                         the version the channel pins, if it pins one
//   releases/**/COOKIE                       never: {error, eacces}
// `..` in a path under P is refused when it climbs out of P (a mix node asks for
// P/lib/../releases/...).
//
// Every connection is recorded as a node (BootServerOptions::record_nodes; `codestore nodes`).
//
// Thread safety: BootServer is safe for concurrent use: stop(), wait() and the accessors
// may be called from any thread. A ModuleSource must be safe for concurrent calls: the
// server calls it from one thread per connection.
#pragma once

#include <codestore/node_types.h>
#include <codestore/release_types.h>
#include <codestore/status.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::server {

// One module version as the boot server sees it.
struct ServedModule {
  std::string lib;                // the store lib it belongs to, e.g. "stdlib"
  std::string module;             // e.g. "lists"
  std::int64_t version = 0;       // the store's version number
  std::uint64_t size = 0;         // bytes of the image as imported
  std::int64_t active_since = 0;  // Unix seconds: when this version became active
  std::string md5;                // module md5 as 32 lowercase hex digits ("" if unknown)
};

// What the server serves modules from: the store's active set, or one release's set.
// Every call reflects the store at the time of the call, so that a rollback made by another
// process is seen by the next request (the store's source keeps lookups only while the
// store's generation, which every committed change bumps, stays the same).
//
// Thread safety: implementations must be safe for concurrent calls.
class ModuleSource {
 public:
  virtual ~ModuleSource() = default;

  // For the log: "store app.db (active versions)", "store app.db release r1".
  virtual std::string describe() const = 0;

  // Names of the libs that have at least one module in the served set, sorted.
  virtual Result<std::vector<std::string>> libs() = 0;

  // The served modules of `lib`, sorted by name; empty when the lib has none.
  virtual Result<std::vector<ServedModule>> modules(std::string_view lib) = 0;

  // The served version of `module`, whatever lib it belongs to (the caller checks the
  // lib); kNotFound when the served set has no such module.
  virtual Result<ServedModule> find(std::string_view module) = 0;

  // The image bytes of exactly that version (the bytes imported), shared and never
  // modified (a cache's entry may be handed out as it is).
  using ImageBytes = std::shared_ptr<const std::vector<std::uint8_t>>;
  virtual Result<ImageBytes> image(const ServedModule& module) = 0;

  // Counts one serving of `module` to `peer` ("127.0.0.1:40522") for `codestore stats`.
  virtual Status record_served(const ServedModule& module, std::string_view peer) = 0;

  // --- Application versions and Erlang releases (docs/model.md) -----------------------------
  // What `lib/<app>-<vsn>/`, `releases/<vsn>/` and a client root's `bin/start.boot` are
  // served from. The defaults say the source has none, so that every path resolves as it did
  // before application versions existed (modules by the served set, other files from the root).

  // Whether the store has any application version of `app`. When it has none (an application
  // migrated without a known version), `lib/<app>[-<vsn>]/` resolves through the served set.
  virtual Result<bool> has_app_versions(std::string_view /*app*/) { return false; }
  // The application version `lib/<app>-<vsn>/` names for a node following this source's
  // channel (Store::app_version_for: the revision the channel pins, else the newest the channel
  // ever pinned, else the store's newest); `vsn` "" for the revision the channel pins now.
  // kNotFound when there is none.
  using AppVersionRef = std::shared_ptr<const AppVersionInfo>;
  virtual Result<AppVersionRef> app_version(std::string_view app, std::string_view vsn);
  // The applications the channel pins and the release it runs (Store::channel_apps); an empty
  // ChannelApps when the source has none.
  virtual Result<std::shared_ptr<const ChannelApps>> channel_apps();
  // One Erlang release (Store::erl_release_info); kNotFound when the store lacks it.
  using ReleaseRef = std::shared_ptr<const ErlReleaseInfo>;
  virtual Result<ReleaseRef> release(const ReleaseId& id);
  // The vsns of the Erlang releases named `name` in the store, sorted; empty without.
  virtual Result<std::vector<std::string>> release_vsns(std::string_view /*name*/) {
    return std::vector<std::string>{};
  }
  // A stored file's (or module byte form's) bytes by its SHA-256 (Store::blob).
  virtual Result<ImageBytes> file(std::string_view sha256);

  // --- Nodes (node_types.h, docs/model.md "Nodes") -------------------------------------------
  // The channel this source serves, as nodes are recorded with it ("" none: a snapshot, a
  // source without channels, the default).
  virtual std::string channel() const { return {}; }
  // Whether record_nodes keeps nodes. When it does (and BootServerOptions::record_nodes), the
  // server counts the modules it serves in the nodes' batches (NodeReport::served) instead of
  // one record_served call per module sent.
  virtual bool records_nodes() const { return false; }
  // Records what the server learned about some nodes (Store::record_nodes: one transaction),
  // returning each report's node id. Called by the server's one recording thread, about once
  // per BootServerOptions::node_report_interval, never from a connection's thread. The
  // default, kNotSupported: the source keeps no nodes (the server then stops reporting).
  virtual Result<std::vector<std::int64_t>> record_nodes(const std::vector<NodeReport>& reports);
};

// A source over the store in `db_path`: the active versions of `channel` (StoreOptions::channel,
// docs/model.md), or those the release (snapshot) named `release` records when it is not empty.
// Fails with kNotFound for an unknown release or channel and with the store's error when the
// database cannot be opened.
Result<std::unique_ptr<ModuleSource>> open_store_source(const std::string& db_path,
                                                        const std::string& release,
                                                        const std::string& channel = "default");

// Counters, for tests and the shutdown line. All are totals since start.
struct BootServerStats {
  std::uint64_t discovery_answered = 0;   // UDP requests answered
  std::uint64_t discovery_refused = 0;    // UDP requests refused (address, version, garbage)
  std::uint64_t connections = 0;          // TCP connections accepted and served
  std::uint64_t connections_refused = 0;  // TCP connections closed at once (address, limit)
  std::uint64_t requests = 0;             // frames answered
  std::uint64_t bad_requests = 0;         // undecodable, unknown, oversized, truncated
  std::uint64_t modules_served = 0;       // module images sent
  std::uint64_t fallback_files_served = 0;
  // Per request kind: answers, and the time spent working them out (store lookups, file
  // reads, encoding; not receiving the request or sending the answer).
  struct RequestKind {
    std::uint64_t count = 0;
    std::uint64_t answer_ns = 0;
  };
  RequestKind get, list_dir, read_file_info, read_link_info, get_cwd;
};

struct BootServerOptions {
  // The fallback directory and the root of the served paths (an Erlang root: bin/, lib/,
  // releases/). Files other than modules come from here.
  std::string root = "/usr/lib/erlang";
  // The version a client must send and that is answered; "" = the erts version found
  // under `root` (releases/start_erl.data, else the highest erts-* directory).
  std::string erts_version;
  // Clients allowed to discover and connect: IPv4 addresses or a.b.c.d/len subnets.
  std::vector<std::string> allow = {"127.0.0.1"};
  // Address the sockets bind to.
  std::string bind_address = "0.0.0.0";
  // TCP port for requests; 0 picks a free one (the client learns it through discovery).
  std::uint16_t tcp_port = 0;
  // UDP discovery port. Clients always use 4368; other values exist for tests: 0 picks a
  // free port, -1 opens no discovery socket.
  int udp_port = 4368;
  // Discovery priority byte; clients prefer 0.
  std::uint8_t priority = 0;
  // Limits against hostile or broken clients.
  std::size_t max_request_bytes = 64 * 1024;          // a request frame larger is refused
  std::size_t max_file_bytes = 64u << 20;             // a fallback file larger is {error, efbig}
  std::size_t max_connections = 64;                   // more are closed at once
  std::chrono::milliseconds request_timeout{10'000};  // to receive one frame / send one answer
  std::chrono::milliseconds idle_timeout{600'000};    // between requests
  // One line per event (answers and where they came from, refusals, errors). Called from
  // the server's threads, one call at a time. Empty: no log.
  std::function<void(std::string_view line)> log;
  // When false, only served modules, refusals and errors are logged (not every answer).
  bool log_every_answer = true;

  // Client roots: absolute directories that nodes use as their root (ROOTDIR=P). A request
  // path under P is mapped onto the store of the request's channel (see the top of the file);
  // the longest client root that holds a path is its root. Paths under `root` keep their
  // meaning.
  std::vector<std::string> client_roots;
  // Which channel a request is served from: the first rule that matches, else the source given
  // to start(). `where` is a client root (an absolute path, one of client_roots: the requests
  // under it) or an IPv4 address or a.b.c.d/len subnet (the requests of clients there).
  struct ChannelRule {
    std::string channel;
    std::string where;
  };
  std::vector<ChannelRule> channel_rules;

  // Nodes (docs/model.md, "Nodes"): each connection is recorded as a node (its address, client
  // root, channel, release, the module versions it fetched) through the source given to
  // start() (ModuleSource::record_nodes), when it records nodes (records_nodes()). Connection
  // threads only hand what they learned to one recording thread, which writes every node that
  // changed, and the served counts, in one transaction per `node_report_interval`, and what is
  // left when the server stops: serving itself never writes to the store then.
  bool record_nodes = true;
  std::chrono::milliseconds node_report_interval{1000};

  // The agent port (AgentService, agent_service.h) that lib/codestore_agent/priv/agent.config
  // announces to nodes; 0: no agent listener, no priv directory. The agent's ebin is served
  // under lib/codestore_agent-<vsn>/ and lib/codestore_agent/ of the root and every client root
  // whatever this is (docs/agent-protocol.md).
  std::uint16_t agent_port = 0;
};

// A running boot server: one thread for discovery and accepting, one per connection.
class BootServer {
 public:
  // Binds the sockets and starts serving. `source` must outlive the server. Fails with
  // kInvalidArgument for a bad option (address, root), kIOError when a socket cannot be
  // bound (port 4368 taken by another boot server).
  static Result<std::unique_ptr<BootServer>> start(const BootServerOptions& options, ModuleSource& source);
  // The same with a source per channel that options.channel_rules name (`source` serves the
  // requests no rule matches). Every source must outlive the server. kInvalidArgument for a
  // rule whose channel has no source, whose client root is not in options.client_roots, or
  // whose address does not parse; for a client root that is not an absolute directory.
  static Result<std::unique_ptr<BootServer>> start(const BootServerOptions& options, ModuleSource& source,
                                                   const std::map<std::string, ModuleSource*>& channels);

  // Stops (as stop()) and joins every thread.
  ~BootServer();

  BootServer(const BootServer&) = delete;
  BootServer& operator=(const BootServer&) = delete;

  std::uint16_t tcp_port() const noexcept;
  std::uint16_t udp_port() const noexcept;  // 0 when discovery is off
  const std::string& erts_version() const noexcept;

  // Closes the sockets, ends every connection and joins the threads. Idempotent; safe from
  // any thread except the server's own (its log callback).
  void stop();

  BootServerStats stats() const;

  class Impl;

 private:
  explicit BootServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The erts version of the Erlang root `root`: releases/start_erl.data's first word, else
// the highest erts-<vsn> directory. kNotFound when neither is there.
Result<std::string> find_erts_version(const std::string& root);

}  // namespace codestore::server

// `codestore serve`: Erlang's boot server (erl_boot_server) over the store, so that nodes
// started with `erl -loader inet -hosts IP` boot and load their modules from it. Runs
// until SIGINT or SIGTERM; the log goes to stderr, one line per event. With --follow URI the
// --db file is a replica of a store on PostgreSQL that serve keeps following while it serves
// from it (serve_follow.h, docs/fleet.md).
#include <codestore/agent_service.h>
#include <codestore/boot_server.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "serve_follow.h"

namespace codestore::cli {

namespace {

struct ServeArgs {
  std::string root = "/usr/lib/erlang";
  std::string erts_version;
  std::vector<std::string> allow = {"127.0.0.1"};
  std::string bind = "0.0.0.0";
  int port = 0;
  std::string release;
  std::size_t max_connections = 64;
  std::size_t max_request_bytes = 64 * 1024;
  int request_timeout_ms = 10'000;
  bool quiet = false;
  std::vector<std::string> client_roots;
  std::vector<std::string> channels;  // NAME (the default) or NAME=WHERE (a rule)
  int agent_port = server::kDefaultAgentPort;
  bool no_agents = false;
  std::string follow;  // the primary's URI: keep --db following it
};

// Blocks the stop signals for the life of the object, so that the threads started meanwhile
// (the boot server's, the agent listener's, the follower's) inherit the mask and only serve's
// sigwait sees them; restores the mask the thread had.
class StopSignalsBlocked {
 public:
  StopSignalsBlocked() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~StopSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  StopSignalsBlocked(const StopSignalsBlocked&) = delete;
  StopSignalsBlocked& operator=(const StopSignalsBlocked&) = delete;
  // Waits for SIGINT or SIGTERM; which.
  int wait() const {
    int sig = 0;
    while (sigwait(&set_, &sig) != 0) {
    }
    return sig;
  }

 private:
  sigset_t set_, old_;
};

int serve(Context& ctx, const ServeArgs& args) {
  std::string default_channel = ctx.channel;
  std::vector<server::BootServerOptions::ChannelRule> rules;
  for (const std::string& c : args.channels) {
    auto eq = c.find('=');
    if (eq == std::string::npos) {
      default_channel = c;
    } else if (eq == 0 || eq + 1 == c.size()) {
      report_usage(ctx, fmt::format("serve --channel {}: NAME or NAME=CLIENT_ROOT or NAME=ADDRESS[/LEN]", c));
      return kExitUsage;
    } else {
      rules.push_back({c.substr(0, eq), c.substr(eq + 1)});
    }
  }
  std::ostream* err = ctx.err;
  // The boot server serializes its own calls to the log, but the agent listener and the
  // follower log from threads of their own: one line at a time, flushed so that a supervisor
  // (or a test) reading the pipe sees it at once.
  auto log_mutex = std::make_shared<std::mutex>();
  auto log = [err, log_mutex](std::string_view line) {
    std::lock_guard lock(*log_mutex);
    *err << "codestore serve: " << line << std::endl;
  };
  // Before the first thread starts (the follower's, the servers').
  StopSignalsBlocked stop_signals;
  // The follower first: a new replica gets what it serves from it.
  std::unique_ptr<ServeFollower> follower;
  if (!args.follow.empty()) {
    std::vector<std::string> followed{default_channel};
    for (const auto& rule : rules) followed.push_back(rule.channel);
    auto f = ServeFollower::start(args.follow, ctx.db_path(), followed, log);
    if (!f) {
      report_error(ctx, f.error().with_context("serve --follow"));
      return kExitError;
    }
    follower = std::move(*f);
  }
  auto source = server::open_store_source(ctx.db_path(), args.release, default_channel);
  if (!source) {
    report_error(ctx, source.error().with_context("serve"));
    return kExitError;
  }
  // One source per channel a rule names (each its own store handle and cache).
  std::map<std::string, std::unique_ptr<server::ModuleSource>> owned;
  std::map<std::string, server::ModuleSource*> channels;
  for (const auto& rule : rules) {
    if (channels.count(rule.channel) != 0) continue;
    if (rule.channel == default_channel && args.release.empty()) {
      channels[rule.channel] = source->get();
      continue;
    }
    auto s = server::open_store_source(ctx.db_path(), "", rule.channel);
    if (!s) {
      report_error(ctx, s.error().with_context(fmt::format("serve: channel {}", rule.channel)));
      return kExitError;
    }
    channels[rule.channel] = s->get();
    owned[rule.channel] = std::move(*s);
  }
  server::BootServerOptions opts;
  opts.client_roots = args.client_roots;
  opts.channel_rules = rules;
  opts.root = args.root;
  opts.erts_version = args.erts_version;
  opts.allow = args.allow;
  opts.bind_address = args.bind;
  opts.tcp_port = static_cast<std::uint16_t>(args.port);
  opts.max_connections = args.max_connections;
  opts.max_request_bytes = args.max_request_bytes;
  opts.request_timeout = std::chrono::milliseconds(args.request_timeout_ms);
  opts.log_every_answer = !args.quiet;
  opts.log = log;

  // The agent listener: the boot server announces its port to the agents it serves
  // (lib/codestore_agent/priv/agent.config). A port given is announced as given, and the
  // listener starts once the boot server's options are known good (so a bad rule is reported as
  // such, whoever holds that port); any free port (0) must be bound first to be announced.
  std::unique_ptr<server::AgentService> agents;
  auto start_agents = [&]() -> Status {
    if (args.no_agents) return Status::ok();
    server::AgentServiceOptions aopts;
    aopts.db_path = ctx.db_path();
    aopts.default_channel = default_channel;
    aopts.bind_address = args.bind;
    aopts.port = static_cast<std::uint16_t>(args.agent_port);
    aopts.allow = args.allow;
    aopts.log = opts.log;
    auto a = server::AgentService::start(aopts);
    if (!a) return a.error();
    agents = std::move(*a);
    opts.agent_port = agents->port();
    return Status::ok();
  };
  const bool agents_first = args.agent_port == 0;
  Status agents_started = agents_first ? start_agents() : Status::ok();
  if (!agents_started) {
    report_error(ctx, agents_started.with_context("serve"));
    return kExitError;
  }
  if (!agents_first && !args.no_agents) opts.agent_port = static_cast<std::uint16_t>(args.agent_port);
  auto started = server::BootServer::start(opts, **source, channels);
  if (started && !agents_first) agents_started = start_agents();
  if (!started || !agents_started) {
    report_error(ctx, (started ? agents_started : started.error()).with_context("serve"));
    return kExitError;
  }
  auto& srv = *started;
  const int sig = stop_signals.wait();
  log(fmt::format("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM"));
  srv->stop();
  if (agents) agents->stop();
  if (follower) {
    follower->stop();
    const auto t = follower->totals();
    log(fmt::format("follow: stopping: {} generations applied, {} blobs fetched ({} bytes)", t.generations,
                    t.blobs_fetched, t.bytes_fetched));
  }
  if (ctx.json) {
    auto s = srv->stats();
    nlohmann::json j = {{"tcp_port", srv->tcp_port()},
                        {"erts_version", srv->erts_version()},
                        {"discovery_answered", s.discovery_answered},
                        {"discovery_refused", s.discovery_refused},
                        {"connections", s.connections},
                        {"connections_refused", s.connections_refused},
                        {"requests", s.requests},
                        {"bad_requests", s.bad_requests},
                        {"modules_served", s.modules_served},
                        {"fallback_files_served", s.fallback_files_served}};
    auto kind = [](const codestore::server::BootServerStats::RequestKind& k) {
      return nlohmann::json{{"count", k.count}, {"answer_us", static_cast<double>(k.answer_ns) / 1000.0}};
    };
    j["requests_by_kind"] = {{"get", kind(s.get)},
                             {"list_dir", kind(s.list_dir)},
                             {"read_file_info", kind(s.read_file_info)},
                             {"read_link_info", kind(s.read_link_info)},
                             {"get_cwd", kind(s.get_cwd)}};
    if (agents) {
      auto a = agents->stats();
      j["agents"] = {{"port", agents->port()}, {"accepted", a.accepted}, {"refused", a.refused},
                     {"hellos", a.hellos},     {"dropped", a.dropped},   {"announcements", a.announcements},
                     {"reports", a.reports}};
    }
    if (follower) {
      const auto t = follower->totals();
      j["follow"] = {{"primary", follower->primary()},
                     {"generations", t.generations},
                     {"blobs_fetched", t.blobs_fetched},
                     {"blobs_present", t.blobs_present},
                     {"bytes_fetched", t.bytes_fetched}};
    }
    *ctx.out << j.dump() << "\n";
  }
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the store to Erlang nodes as OTP's boot server does: start a node with "
      "`erl -loader inet -hosts IP` and it loads its modules from the store (UDP discovery on port 4368)");
  cmd->add_option("--root", args->root,
                  "Erlang root: the served paths, and the fallback for files that are not modules "
                  "(boot scripts, .app files)")
      ->capture_default_str();
  cmd->add_option(
      "--erts-version", args->erts_version,
      "Version clients must send (erlang:system_info(version)); default: the erts version under --root");
  cmd->add_option("--allow", args->allow, "Clients allowed: IPv4 addresses or a.b.c.d/len subnets")
      ->capture_default_str();
  cmd->add_option("--bind", args->bind, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port,
                  "TCP port for requests (0: any free port; clients learn it by discovery)")
      ->check(in_range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--release", args->release,
                  "Serve the module versions this release names instead of the active ones");
  cmd->add_option("--max-connections", args->max_connections, "Connections served at once")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--max-request-bytes", args->max_request_bytes, "Largest request frame accepted")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--request-timeout-ms", args->request_timeout_ms,
                  "Time to receive one request or send one answer")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--client-root", args->client_roots,
                  "A node's root directory (its ROOTDIR, repeatable): request paths under it are mapped onto "
                  "the store: lib/<app>-<vsn>/ is that application version, bin/start.boot and "
                  "releases/<vsn>/ the channel's release; erts's own files come from --root");
  cmd->add_option("--channel", args->channels,
                  "The channel served (NAME; default: the global --channel), or a rule NAME=CLIENT_ROOT or "
                  "NAME=ADDRESS[/LEN] choosing channel NAME for the requests under that client root or from "
                  "those clients (repeatable; the first rule that matches wins)");
  cmd->add_option(
         "--agent-port", args->agent_port,
         "TCP port of the agent listener, where nodes running codestore_agent connect to follow their "
         "channel (docs/agent-protocol.md), 0: any free port, announced to the agents served")
      ->check(in_range(0, 65535))
      ->capture_default_str();
  cmd->add_option(
      "--follow", args->follow,
      "Keep the --db file a replica of the store at this postgresql:// URI while serving from it, as "
      "`codestore follow` does (the channels served; docs/fleet.md): while PostgreSQL is away serve keeps "
      "serving the replica as it is and catches up when it is back; the log says what the follower does");
  cmd->add_flag("--no-agents", args->no_agents, "Run no agent listener (nodes are still offered the agent)");
  cmd->add_flag("--quiet", args->quiet, "Log served modules, refusals and errors only, not every answer");
  cmd->callback([&ctx, args] { ctx.exit_code = serve(ctx, *args); });
}

}  // namespace codestore::cli

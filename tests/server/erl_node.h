// What the erl tests share: `codestore serve` as a child process, a node booted over the
// boot-server protocol (with Debian's root, or a release's root of its own), the CLI run as an
// operator runs it, the Erlang that prints loaded modules' MD5s, and their check against the
// store.
//
// Thread safety: thread-compatible (one owner per object).
#pragma once

#include <codestore/store.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "subprocess.h"
#include "support/files.h"
#include "support/real_releases.h"

namespace codestore::server::testing {

using namespace std::chrono_literals;
using codestore::testing::read_text;

// `codestore --db DB serve ARGS...`, stderr (the log) to a file. Its agent listener on any free
// port (`--agent-port 0`) unless ARGS say otherwise: the default port, 4380, is one per host,
// and test runs of several build directories may share the host.
class ServeProcess {
 public:
  ServeProcess(const std::string& db, const std::vector<std::string>& args, const std::string& log)
      : log_(log), argv_({CODESTORE_BINARY, "--db", db, "serve"}) {
    argv_.insert(argv_.end(), args.begin(), args.end());
    if (std::find(args.begin(), args.end(), "--agent-port") == args.end() &&
        std::find(args.begin(), args.end(), "--no-agents") == args.end())
      argv_.insert(argv_.end(), {"--agent-port", "0"});
    proc_ = std::make_unique<Subprocess>(argv_, log, false);
  }
  ~ServeProcess() { stop(); }

  // Waits for the "serving" line; returns the TCP port or 0. The lock keeps this suite's
  // tests apart, but another suite run on the same host (another build directory) may
  // hold port 4368 for a while: then start again, for a bounded time.
  std::uint16_t wait_ready() {
    static const std::regex serving(R"(serving .* on tcp [0-9.]+:([0-9]+),)");
    for (int i = 0; i < 2400; ++i) {
      std::smatch m;
      std::string text = log();
      if (std::regex_search(text, m, serving)) return static_cast<std::uint16_t>(std::stoi(m[1]));
      if (proc_->wait(0ms)) {
        if (text.find("another boot server runs on this host") == std::string::npos)
          return 0;  // the log says why
        std::this_thread::sleep_for(250ms);
        proc_ = std::make_unique<Subprocess>(argv_, log_, false);
      }
      std::this_thread::sleep_for(25ms);
    }
    return 0;
  }
  // SIGTERM; the exit status, or -1 when it did not stop in time.
  int stop() {
    if (stopped_) return status_;
    stopped_ = true;
    proc_->signal(SIGTERM);
    auto st = proc_->wait(20s);
    status_ = st && WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
    proc_->kill_group();
    return status_;
  }
  // SIGKILL, as a crash or the OOM killer ends it: no goodbye to anyone connected.
  void kill() {
    stopped_ = true;
    status_ = -1;
    proc_->kill_group();
  }
  std::string log() const { return read_text(log_); }

 private:
  std::string log_;
  std::vector<std::string> argv_;
  std::unique_ptr<Subprocess> proc_;
  bool stopped_ = false;
  int status_ = -1;
};

// `erl -loader inet -hosts HOSTS... -id ID -noshell -eval EVAL`, stdin and stdout piped.
// `hosts` is one list after one `-hosts` (a second `-hosts` would leave the node none).
inline std::unique_ptr<Subprocess> start_node(const std::string& id, const std::string& eval,
                                              const std::string& log,
                                              const std::vector<std::string>& extra = {},
                                              const std::vector<std::string>& hosts = {"127.0.0.1"}) {
  std::vector<std::string> argv = {find_program("erl"), "-loader", "inet", "-hosts"};
  argv.insert(argv.end(), hosts.begin(), hosts.end());
  argv.insert(argv.end(), {"-id", id, "-noshell"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"-eval", eval});
  return std::make_unique<Subprocess>(argv, log, true);
}

// erts's erlexec with the node's root set to `root` (its ROOTDIR), as a release's own start
// script runs it (Debian's `erl` fixes ROOTDIR at /usr/lib/erlang); its boot servers are
// `hosts` (one `-hosts` list: OTP ignores all but the last `-hosts`). `env` (NAME=VALUE) is
// added to its environment; it runs in `cwd` when given, so that what a node writes beside it
// (a crash dump) stays in a test's directory.
inline std::unique_ptr<Subprocess> start_release_node(const std::string& root, const std::string& id,
                                                      const std::string& eval, const std::string& log,
                                                      const std::vector<std::string>& extra = {},
                                                      const std::vector<std::string>& hosts = {"127.0.0.1"},
                                                      const std::vector<std::string>& env = {},
                                                      const std::string& cwd = "") {
  const auto otp = codestore::testing::otp_versions();
  const std::string bindir = otp.root.string() + "/erts-" + otp.erts + "/bin";
  std::vector<std::string> argv = {"/usr/bin/env"};
  if (!cwd.empty()) argv.insert(argv.end(), {"-C", cwd});
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), {"ROOTDIR=" + root, "BINDIR=" + bindir, "EMU=beam", "PROGNAME=erl",
                           bindir + "/erlexec", "-loader", "inet", "-hosts"});
  argv.insert(argv.end(), hosts.begin(), hosts.end());
  argv.insert(argv.end(), {"-id", id, "-noshell"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"-eval", eval});
  return std::make_unique<Subprocess>(argv, log, true);
}

// What every node a test starts inherits: epmd (nodes are not distributed, but anything that
// starts one) listens on loopback only, and a node that crashes writes no erl_crash.dump into
// the test's working directory.
inline void node_environment() {
  ::setenv("ERL_EPMD_ADDRESS", "127.0.0.1", 1);
  ::setenv("ERL_CRASH_DUMP_SECONDS", "0", 1);
}

// Erlang: prints "loaded=M PATH MD5;M PATH MD5;..." for every module loaded from under `root`.
inline std::string loaded_line(const std::string& root) {
  return "io:format(\"loaded=~s~n\", [lists:join(\";\", [lists:flatten([atom_to_list(M), \" \", F, \" \", "
         "[io_lib:format(\"~2.16.0b\", [B]) || <<B>> <= M:module_info(md5)]]) || {M, F} <- "
         "code:all_loaded(), "
         "is_list(F), lists:prefix(\"" +
         root + "/\", F)])]), ";
}

// What check_loaded found: how many modules it checked, by the directory their path names
// ("myrel-0.1.0", "releases/0.1.0/consolidated"), and each disagreement with the store.
struct LoadedCheck {
  std::size_t checked = 0;
  std::map<std::string, std::size_t> by_dir;
  std::vector<std::string> problems;
};
// Checks a loaded_line() answer (without "loaded=") against the store `db`: each module loaded
// from `root`/lib/<app>-<vsn>/ebin/<m>.beam has the MD5 the store keeps for <m> in that
// application version; from `root`/releases/<vsn>/consolidated/<m>.beam (a mix release's
// consolidated protocols, reached as lib/../releases/...), the MD5 release `release`@<vsn> keeps.
inline LoadedCheck check_loaded(const std::string& db, const std::string& root, const std::string& release,
                                const std::string& list) {
  LoadedCheck out;
  auto store = Store::open(db);
  if (!store) {
    out.problems.push_back(store.error().to_string());
    return out;
  }
  std::map<std::string, std::map<std::string, std::string>> md5s;  // dir -> module -> md5
  auto known = [&](const std::string& dir, const std::vector<ContentModule>& modules) {
    for (const ContentModule& m : modules) md5s[dir][m.module] = m.md5;
  };
  std::stringstream entries(list);
  std::string entry;
  while (std::getline(entries, entry, ';')) {
    const std::size_t sp1 = entry.find(' '), sp2 = entry.rfind(' ');
    if (sp1 == std::string::npos || sp2 <= sp1) {
      out.problems.push_back("unreadable entry: " + entry);
      continue;
    }
    const std::string module = entry.substr(0, sp1), md5 = entry.substr(sp2 + 1);
    const std::string path = std::filesystem::path(entry.substr(sp1 + 1, sp2 - sp1 - 1)).lexically_normal();
    const std::string rel = std::filesystem::path(path).lexically_relative(root).string();
    static const std::regex app_beam(R"(lib/([^/-]+)-([^/]+)/ebin/([^/]+)\.beam)");
    static const std::regex consolidated(R"(releases/([^/]+)/consolidated/([^/]+)\.beam)");
    std::smatch m;
    std::string dir;
    if (std::regex_match(rel, m, app_beam) && m[3] == module) {
      dir = m[1].str() + "-" + m[2].str();
      if (md5s.count(dir) == 0) {
        auto info = (*store)->app_show(m[1].str(), m[2].str());
        if (!info) {
          out.problems.push_back(module + " from " + path + ": " + info.error().to_string());
          continue;
        }
        known(dir, info->modules);
      }
    } else if (std::regex_match(rel, m, consolidated) && m[2] == module) {
      dir = "releases/" + m[1].str() + "/consolidated";
      if (md5s.count(dir) == 0) {
        auto info = (*store)->erl_release_info(ReleaseId{release, m[1].str()});
        if (!info) {
          out.problems.push_back(module + " from " + path + ": " + info.error().to_string());
          continue;
        }
        known(dir, info->consolidated);
      }
    } else {
      out.problems.push_back(module + " from " + path + ": no application's or release's path");
      continue;
    }
    if (md5s[dir][module] != md5) {
      out.problems.push_back(module + " from " + path + ": md5 " + md5 + ", the store's " +
                             md5s[dir][module]);
      continue;
    }
    ++out.checked;
    ++out.by_dir[dir];
  }
  return out;
}

// `codestore --db DB ARGS...` as an operator runs it; its exit code (-1: did not finish).
inline int run_cli(const std::string& db, const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {CODESTORE_BINARY, "--db", db};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv, log, false);
  p.read_rest(60s);
  auto st = p.wait(60s);
  return st && WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
}

// Erlang: prints "md5=<hex>" for module M's md5 as loaded in the node.
inline std::string md5_line(const std::string& module) {
  return "io:format(\"md5=~s~n\", [[io_lib:format(\"~2.16.0b\", [B]) || <<B>> <= " + module +
         ":module_info(md5)]]), ";
}

// `source`, module `module`'s version `v`, compiled by erlc into dir/v<v>/. The .beam's path.
inline std::string compile(const std::filesystem::path& dir, const std::string& module, int v,
                           const std::string& source) {
  const auto d = dir / ("v" + std::to_string(v));
  std::filesystem::create_directories(d);
  codestore::testing::write_file((d / (module + ".erl")).string(), source);
  Subprocess erlc({find_program("erlc"), "-o", d.string(), (d / (module + ".erl")).string()}, "", false);
  erlc.read_rest(60s);
  erlc.wait(60s);
  return (d / (module + ".beam")).string();
}

// agt.erl in version `v` (agt:v() -> v): the module a deploy or a rollback changes in the agent
// and follower tests. The .beam's path.
inline std::string compile_agt(const std::filesystem::path& dir, int v) {
  return compile(dir, "agt", v, "-module(agt).\n-export([v/0]).\nv() -> " + std::to_string(v) + ".\n");
}

// The agent port serve's log names ("agent listener on 0.0.0.0:PORT"), or 0.
inline std::uint16_t agent_port(const ServeProcess& serve) {
  static const std::regex re(R"(agent listener on [0-9.]+:([0-9]+))");
  std::smatch m;
  const std::string text = serve.log();
  return std::regex_search(text, m, re) ? static_cast<std::uint16_t>(std::stoi(m[1])) : 0;
}

// Polls `f` every 20 ms for up to `wait`; its last answer (a bounded wait, not a timing).
template <typename F>
bool eventually(F f, std::chrono::milliseconds wait = 30s) {
  for (auto end = std::chrono::steady_clock::now() + wait; std::chrono::steady_clock::now() < end;) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

// How many times `what` occurs in `text`.
inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Prints the end (the last `tail` bytes) of every *.log in `dir`, the server's and the nodes':
// called when a test failed, to say where it stopped.
inline void dump_logs(const std::filesystem::path& dir, std::size_t tail) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".log") continue;
    std::string text = read_text(e.path().string());
    if (text.size() > tail) text = "..." + text.substr(text.size() - tail);
    std::cerr << "---- " << e.path().filename().string() << "\n" << text << "\n";
  }
}

}  // namespace codestore::server::testing

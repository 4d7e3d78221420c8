// bench_boot: a real node boots real Erlang code three ways, side by side in one run (issue 14,
// "Speed"):
//
//   store   `codestore serve --quiet --bind 127.0.0.1 --client-root R --channel C=R` (the CLI, as
//           an operator runs it; --quiet: a log line per module served, not per answer) and
//           a node with ROOTDIR=R, R a local root that `codestore materialize` wrote (no beam):
//           boot script, .app files and beams come from the store over the boot-server protocol
//   otp     OTP's own erl_boot_server (a plain erl node on loopback) and a node with ROOTDIR=F,
//           F a directory holding the same files (what codestore exports or what was imported)
//   local   the same node reading F itself (no -loader inet, no boot server)
//
// Two cases:
//
//   release  the rebar3 release X (prod profile: stripped beams), built offline here as the
//            tests build it; its boot script (`-boot $ROOT/releases/<vsn>/start`, `-config
//            .../sys`) starts its application; timed from spawning erlexec to the application
//            answering: the -eval (run by init once the boot script has started every
//            application, init:get_status() = {started, started}) calls myrel_server:version/0,
//            a gen_server call, and prints the answer
//   ejabberd Debian's ejabberd and the applications its package depends on (the p1_* family,
//            jose, jiffy, lager, ... and the OTP applications), imported into a channel of their
//            own; a node boots OTP's default script ($ROOT/bin/start.boot: for the store node
//            the fallback under serve's --root) and loads every module of every one of those
//            applications (application:load/1 + code:ensure_modules_loaded/1); timed from
//            spawning erlexec to the load's end (and the load alone, inside the node)
//
// Each round runs the six once, in a turning order, so drift hits all alike; the figures are
// medians over --runs rounds, after --warmup rounds that are not counted. Beside the ratio of
// the medians, the median of each round's own ratio. Each boot server runs for one node only
// (started before the node, not timed; stopped after it), so UDP port 4368, which every boot
// server on the host must bind, is free between runs for others (a taken port is retried).
// The store side's request counts and its time to work out an answer come from serve's log.
//
//   bench_boot [--runs N] [--warmup N] [--keep DIR]
//
// Needs erl, erlc and rebar3 on PATH (the ejabberd case also Debian's ejabberd), loopback only.
// Not run by ctest: benches are run by hand (scripts/dev.sh bench runs them all).
#include <codestore/store.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "erl_node.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/real_releases.h"

namespace fs = std::filesystem;
using codestore::bench::median;
using codestore::server::testing::find_program;
using codestore::server::testing::run_cli;
using codestore::server::testing::ServeProcess;
using codestore::server::testing::Subprocess;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kOtpRoot = "/usr/lib/erlang";
constexpr const char* kEjabberdParent = "/usr/lib/x86_64-linux-gnu";

// OTP's applications that Debian's ejabberd package depends on (erlang-asn1, -crypto, ...),
// with what those name in turn (compiler: goldrush's and p1_utils' .app files list it).
const std::vector<std::string> kEjabberdOtpApps = {"kernel",     "stdlib",       "sasl",  "ssl",     "crypto",
                                                   "public_key", "asn1",         "inets", "mnesia",  "odbc",
                                                   "os_mon",     "syntax_tools", "xmerl", "compiler"};
// Its other dependencies, the directories of /usr/lib/erlang/lib their packages install
// (erlang-p1-* installs p1_<x>-<vsn>, whose application is often named otherwise: p1_xmpp holds
// xmpp). Every p1_* directory is taken.
const std::vector<std::string> kEjabberdDeps = {"base64url", "goldrush",           "idna", "jiffy", "jose",
                                                "lager",     "unicode_util_compat"};

enum Way { kStore = 0, kOtp = 1, kLocal = 2 };
const char* const kWayNames[3] = {"codestore serve", "OTP erl_boot_server", "local disk"};

// What serve's log says of one node's boot.
struct StoreRun {
  double requests = 0, served = 0;  // requests; gets that found a module
  // Spawn to the node's discovery request (the VM starting), the discovery wait (to its
  // connection), connected (to the connection's end), and the server's time working out answers
  // (the sum over request kinds of count x mean), ms.
  double to_discovery = 0, discovery_wait = 0, connected = 0, server_ms = 0;
  std::map<std::string, std::pair<double, double>> kinds;  // request kind -> (count, mean us)
};

// One case: what a node boots, where each way finds it, and how a run is judged.
struct Case {
  std::string title;
  std::string channel;                 // the store's channel
  std::string store_root;              // the node's local root for the store (materialized)
  std::string files_root;              // the same files as plain files (OTP's server, local disk)
  std::vector<std::string> node_args;  // after -noshell; "$ROOT" is replaced by the node's root
  std::string eval;                    // prints one "done ..." line of key=value words, then halts
  std::string which_suffix;            // what the "which" word must be: root + this
  // Per way: node start to the "done" line (ms), the node's own figure (ms), the
  // store's requests per run.
  std::vector<double> wall[3], inner[3];
  std::vector<StoreRun> store_runs;  // what serve's log says of each counted run
  std::string inner_name;            // what `inner` measures
};

std::string erts_bindir() {
  static const std::string dir = [] {
    const auto otp = codestore::testing::otp_versions();
    return otp.root.string() + "/erts-" + otp.erts + "/bin";
  }();
  return dir;
}

// erts's erlexec with the node's root set to `root`, as a release's own start script runs it
// (Debian's `erl` fixes ROOTDIR at /usr/lib/erlang).
std::vector<std::string> node_argv(const Case& c, const std::string& root, bool inet) {
  const std::string bindir = erts_bindir();
  std::vector<std::string> argv = {
      "/usr/bin/env", "ERL_EPMD_ADDRESS=127.0.0.1", "ROOTDIR=" + root, "BINDIR=" + bindir, "EMU=beam",
      "PROGNAME=erl", bindir + "/erlexec"};
  if (inet) argv.insert(argv.end(), {"-loader", "inet", "-hosts", "127.0.0.1", "-id", "bench_boot"});
  argv.push_back("-noshell");
  for (std::string a : c.node_args) {
    if (std::size_t at = a.find("$ROOT"); at != std::string::npos) a.replace(at, 5, root);
    argv.push_back(a);
  }
  argv.insert(argv.end(), {"-eval", c.eval});
  return argv;
}

// The words "key=value" of a line.
std::map<std::string, std::string> words(const std::string& line) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while (at < line.size()) {
    std::size_t end = line.find(' ', at);
    if (end == std::string::npos) end = line.size();
    const std::string w = line.substr(at, end - at);
    if (std::size_t eq = w.find('='); eq != std::string::npos) out[w.substr(0, eq)] = w.substr(eq + 1);
    at = end + 1;
  }
  return out;
}

struct NodeRun {
  bool ok = false;
  double wall_ms = 0, inner_ms = 0;
  std::chrono::system_clock::time_point spawned;  // to compare with serve's log
  std::string detail;
};

// The time of serve's log line `line` ("codestore serve: 2026-12-04T02:02:36.089Z ..."), ms
// after `since`; -1 when it has none.
double log_ms_after(const std::string& line, std::chrono::system_clock::time_point since) {
  static const std::regex stamp(
      R"(([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z)");
  std::smatch m;
  if (!std::regex_search(line, m, stamp)) return -1;
  using namespace std::chrono;
  const sys_days day = year(std::stoi(m[1])) / month(static_cast<unsigned>(std::stoi(m[2]))) /
                       static_cast<unsigned>(std::stoi(m[3]));
  const auto t = day + hours(std::stoi(m[4])) + minutes(std::stoi(m[5])) + seconds(std::stoi(m[6])) +
                 milliseconds(std::stoi(m[7]));
  return duration<double, std::milli>(t - since).count();
}

// serve's log of one node's boot: "discovery from", "connection from", "... ended: ..." lines, then
// "stopped: 1 connections, 21410 requests, 1117 modules served, ..." and "answers by request kind
// (...): get 20551 (mean 25.8 us), list_dir 774 (mean 25.4 us), ...".
std::optional<StoreRun> read_serve_log(const std::string& text,
                                       std::chrono::system_clock::time_point spawned) {
  static const std::regex total(R"(stopped: [0-9]+ connections, ([0-9]+) requests, ([0-9]+) modules served)");
  static const std::regex kind(R"(([a-z_]+) ([0-9]+) \(mean ([0-9.]+) us\))");
  StoreRun run;
  std::smatch m;
  if (!std::regex_search(text, m, total)) return std::nullopt;
  run.requests = std::stod(m[1]);
  run.served = std::stod(m[2]);
  double discovery = -1, connection = -1, ended = -1;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    if (discovery < 0 && line.find(" discovery from ") != std::string::npos) {
      discovery = log_ms_after(line, spawned);
    } else if (connection < 0 && line.find(" connection from ") != std::string::npos) {
      connection = log_ms_after(line, spawned);
    } else if (ended < 0 && line.find(" ended: ") != std::string::npos) {
      ended = log_ms_after(line, spawned);
    }
  }
  if (discovery < 0 || connection < discovery || ended < connection) return std::nullopt;
  run.to_discovery = discovery;
  run.discovery_wait = connection - discovery;
  run.connected = ended - connection;
  at = text.find("answers by request kind");
  if (at == std::string::npos) return std::nullopt;
  const std::string tail = text.substr(at, text.find('\n', at) - at);
  for (auto it = std::sregex_iterator(tail.begin(), tail.end(), kind); it != std::sregex_iterator(); ++it) {
    const double n = std::stod((*it)[2]), mean = std::stod((*it)[3]);
    run.kinds[(*it)[1]] = {n, mean};
    run.server_ms += n * mean / 1000.0;
  }
  return run;
}

// One node: spawned, timed to its "done" line, checked (the code it ran came from `root`).
NodeRun run_node(const Case& c, const std::string& root, bool inet, const std::string& log) {
  NodeRun r;
  r.spawned = std::chrono::system_clock::now();
  auto t0 = Clock::now();
  Subprocess node(node_argv(c, root, inet), log, false);
  std::string skipped;
  auto line = node.read_until("done ", 180s, &skipped);
  r.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!line) {
    r.detail = "the node did not finish (see " + log + "): " + skipped.substr(0, 2000);
    return r;  // node's destructor kills its group
  }
  if (!node.wait(30s)) {
    r.detail = "the node did not halt";
    return r;
  }
  auto w = words(*line);
  if (w["which"] != root + c.which_suffix) {
    r.detail = "the code came from " + w["which"] + ", not " + root + c.which_suffix + ": " + *line;
    return r;
  }
  if (w.count("error") != 0) {
    r.detail = *line;
    return r;
  }
  r.inner_ms = std::atof(w["inner_us"].c_str()) / 1000.0;
  r.ok = true;
  return r;
}

// OTP's erl_boot_server on loopback, in a plain node of its own: started when port 4368 is
// free (retried for a minute while another boot server holds it), ended with the object.
std::unique_ptr<Subprocess> start_otp_boot_server(const std::string& log) {
  const std::string eval =
      "case erl_boot_server:start([\"127.0.0.1\"]) of {ok, _} -> io:format(\"ready~n\"), "
      "receive after infinity -> ok end; E -> io:format(\"busy ~p~n\", [E]), halt(1) end.";
  for (int attempt = 0; attempt < 240; ++attempt) {
    auto p = std::make_unique<Subprocess>(
        std::vector<std::string>{find_program("erl"), "-noshell", "-eval", eval}, log, false);
    auto line = p->read_line(60s);
    if (line && *line == "ready") return p;
    p.reset();
    std::this_thread::sleep_for(250ms);
  }
  return nullptr;
}

// One run of case `c` served `way`.
bool run_one(Case& c, Way way, const std::string& db, const fs::path& work, bool counted) {
  const std::string tag = c.channel + "-" + (way == kStore ? "store" : way == kOtp ? "otp" : "local");
  const std::string node_log = (work / (tag + "-node.log")).string();
  NodeRun r;
  if (way == kStore) {
    ServeProcess serve(db,
                       {"--quiet", "--bind", "127.0.0.1", "--client-root", c.store_root, "--channel",
                        c.channel + "=" + c.store_root},
                       (work / (tag + "-serve.log")).string());
    if (serve.wait_ready() == 0) {
      std::cerr << "bench_boot: codestore serve did not start:\n" << serve.log() << "\n";
      return false;
    }
    r = run_node(c, c.store_root, true, node_log);
    serve.stop();
    if (r.ok && counted) {
      auto run = read_serve_log(serve.log(), r.spawned);
      if (!run) {
        std::cerr << "bench_boot: serve's log lacks its summary or the node's connection:\n"
                  << serve.log() << "\n";
        return false;
      }
      c.store_runs.push_back(*run);
    }
  } else if (way == kOtp) {
    auto server = start_otp_boot_server((work / (tag + "-server.log")).string());
    if (!server) {
      std::cerr << "bench_boot: OTP's erl_boot_server did not start (port 4368 taken for a minute?)\n";
      return false;
    }
    r = run_node(c, c.files_root, true, node_log);
  } else {
    r = run_node(c, c.files_root, false, node_log);
  }
  if (!r.ok) {
    std::cerr << fmt::format("bench_boot: {}, {}: {}\n", c.title, kWayNames[way], r.detail);
    return false;
  }
  if (counted) {
    c.wall[way].push_back(r.wall_ms);
    c.inner[way].push_back(r.inner_ms);
  }
  return true;
}

bool cli(const std::string& db, const std::vector<std::string>& args, const fs::path& work,
         const std::string& name) {
  const std::string log = (work / (name + ".log")).string();
  if (run_cli(db, args, log) == 0) return true;
  std::cerr << "bench_boot: codestore " << fmt::format("{}", fmt::join(args, " ")) << " failed:\n"
            << codestore::testing::read_text(log) << "\n";
  return false;
}

// The rebar3 release X: built, imported into channel `prod`, materialized for the store's
// node, exported for the others.
bool setup_release(Case& c, const std::string& db, const fs::path& work) {
  fs::create_directories(work / "x");
  codestore::testing::Rebar3Release x;
  std::cerr << "bench_boot: building the rebar3 release (prod profile)...\n";
  try {
    x = codestore::testing::build_rebar3_release(
        work / "x", {.vsn = "0.1.0", .version_reply = "", .priv = {}, .dev = false});
  } catch (const std::exception& e) {
    std::cerr << "bench_boot: " << e.what() << "\n";
    return false;
  }
  c.title = "rebar3 release myrel 0.1.0 (prod)";
  c.channel = "prod";
  c.store_root = (work / "x-root").string();
  c.files_root = (work / "x-files").string();
  if (!cli(db, {"--channel", "prod", "import", x.prod_dir.string()}, work, "import-x") ||
      !cli(db, {"--channel", "prod", "materialize", c.store_root}, work, "materialize-x") ||
      !cli(db, {"release", "export", "myrel@0.1.0", "-o", c.files_root}, work, "export-x")) {
    return false;
  }
  c.node_args = {"-boot", "$ROOT/releases/0.1.0/start", "-config", "$ROOT/releases/0.1.0/sys"};
  c.eval =
      "V = myrel_server:version(), "
      "Us = erlang:convert_time_unit(erlang:monotonic_time() - erlang:system_info(start_time), native, "
      "microsecond), "
      "io:format(\"done answer=~s inner_us=~p loaded=~p status=~w which=~s~n\", [V, Us, "
      "length(code:all_loaded()), "
      "init:get_status(), code:which(myrel_server)]), halt().";
  c.which_suffix = "/lib/myrel-0.1.0/ebin/myrel_server.beam";
  c.inner_name = "VM start to answer";
  return true;
}

// ejabberd and its dependencies: their installed directories imported into channel `ejabberd`
// (loose applications, no release); F holds a copy of each as lib/<app>-<vsn> (the store's
// names: p1_xmpp-1.6.1 is xmpp-1.6.1) and OTP's bin/start.boot, what serve falls back to.
bool setup_ejabberd(Case& c, const std::string& db, const fs::path& work, const fs::path& ejabberd) {
  namespace ops = codestore::server::store_ops;
  std::error_code ec;
  std::vector<std::string> dirs = {ejabberd.string()};
  for (const std::string& name : kEjabberdOtpApps) dirs.push_back(ops::otp_lib_dir(kOtpRoot, name));
  for (const std::string& name : kEjabberdDeps) dirs.push_back(ops::otp_lib_dir(kOtpRoot, name));
  for (const auto& e : fs::directory_iterator(fs::path(kOtpRoot) / "lib")) {
    if (e.path().filename().string().rfind("p1_", 0) == 0) dirs.push_back(e.path().string());
  }
  if (std::find(dirs.begin(), dirs.end(), "") != dirs.end()) {
    std::cerr << "bench_boot: an application ejabberd depends on is not installed under " << kOtpRoot << "\n";
    return false;
  }
  c.title = "ejabberd + deps: load every module";
  c.channel = "ejabberd";
  c.store_root = (work / "ejabberd-root").string();
  c.files_root = (work / "ejabberd-files").string();
  std::vector<std::string> import = {"--channel", "ejabberd", "import"};
  import.insert(import.end(), dirs.begin(), dirs.end());
  if (!cli(db, import, work, "import-ejabberd") ||
      !cli(db, {"--channel", "ejabberd", "materialize", c.store_root}, work, "materialize-ejabberd")) {
    return false;
  }
  auto store = codestore::Store::open(db);
  auto apps =
      store ? (*store)->apps()
            : codestore::Result<std::vector<codestore::AppVersionSummary>>(tl::unexpected(store.error()));
  if (!apps) {
    std::cerr << "bench_boot: " << apps.error().to_string() << "\n";
    return false;
  }
  std::vector<std::string> names;
  fs::create_directories(fs::path(c.files_root) / "lib");
  for (const auto& a : *apps) {
    if (std::find(dirs.begin(), dirs.end(), a.origin) == dirs.end()) continue;
    if (std::find(names.begin(), names.end(), a.app) != names.end()) continue;  // kernel of both cases
    names.push_back(a.app);
    // Links followed, as the import follows ejabberd's priv/img (a link out of its tree).
    fs::copy(a.origin, fs::path(c.files_root) / "lib" / (a.app + "-" + a.vsn), fs::copy_options::recursive,
             ec);
    if (ec) {
      std::cerr << "bench_boot: copying " << a.origin << ": " << ec.message() << "\n";
      return false;
    }
  }
  fs::create_directories(fs::path(c.files_root) / "bin");
  fs::copy_file(fs::path(kOtpRoot) / "bin" / "start.boot", fs::path(c.files_root) / "bin" / "start.boot", ec);
  if (ec || names.size() != dirs.size()) {
    std::cerr << fmt::format("bench_boot: {} applications found for {} directories imported {}\n",
                             names.size(), dirs.size(), ec ? ec.message() : "");
    return false;
  }
  c.node_args = {};
  c.eval = fmt::format(
      "Apps = [{}], T0 = erlang:monotonic_time(microsecond), "
      "Ms = lists:append([begin case application:load(A) of ok -> ok; {{error, {{already_loaded, _}}}} -> ok "
      "end, "
      "{{ok, L}} = application:get_key(A, modules), L end || A <- Apps]), "
      "R = code:ensure_modules_loaded(Ms), T1 = erlang:monotonic_time(microsecond), "
      "E = case R of ok -> \"\"; {{error, Bad}} -> io_lib:format(\" error=~w\", [length(Bad)]) end, "
      "io:format(\"done modules=~p inner_us=~p which=~s~s~n\", [length(Ms), T1 - T0, code:which(ejabberd), "
      "E]), "
      "halt().",
      fmt::join(names, ", "));
  for (const auto& a : *apps) {
    if (a.app == "ejabberd") c.which_suffix = "/lib/ejabberd-" + a.vsn + "/ebin/ejabberd.beam";
  }
  c.inner_name = "the load alone";
  std::cerr << fmt::format("bench_boot: ejabberd case: {} applications\n", names.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, warmup = 1;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else if (a == "--keep" && i + 1 < argc) {
      keep = argv[++i];
    } else {
      std::cerr << "usage: bench_boot [--runs N] [--warmup N] [--keep DIR]\n";
      return 2;
    }
  }
  if (find_program("erl").empty() || find_program("rebar3").empty()) {
    std::cerr << "bench_boot: erl or rebar3 is not on PATH: nothing to measure\n";
    return 0;
  }
  std::unique_ptr<codestore::bench::TempDir> temp;
  fs::path work;
  if (keep.empty()) {
    temp = std::make_unique<codestore::bench::TempDir>();
    work = temp->path();
  } else {
    work = keep;
    fs::create_directories(work);
  }
  const std::string db = (work / "store.db").string();
  if (!cli(db, {"init"}, work, "init")) return 1;

  std::vector<Case> cases(1);
  if (!setup_release(cases[0], db, work)) return 1;
  fs::path ejabberd;
  for (const auto& e : fs::directory_iterator(kEjabberdParent)) {
    if (e.path().filename().string().rfind("ejabberd-", 0) == 0 &&
        fs::exists(e.path() / "ebin" / "ejabberd.app"))
      ejabberd = e.path();
  }
  if (ejabberd.empty()) {
    std::cerr << "bench_boot: Debian's ejabberd is not installed: the ejabberd case is left out\n";
  } else {
    cases.emplace_back();
    if (!setup_ejabberd(cases.back(), db, work, ejabberd)) return 1;
  }

  for (int r = 1 - warmup; r <= runs; ++r) {
    for (Case& c : cases) {
      std::string line;
      for (int k = 0; k < 3; ++k) {
        const Way way = static_cast<Way>((k + r + 3) % 3);
        if (!run_one(c, way, db, work, r >= 1)) return 1;
      }
      if (r >= 1) {
        std::cerr << fmt::format(
            "bench_boot: round {}/{}, {}: store / otp / local {:.0f} / {:.0f} / {:.0f} ms\n", r, runs,
            c.title, c.wall[kStore].back(), c.wall[kOtp].back(), c.wall[kLocal].back());
      } else {
        std::cerr << fmt::format("bench_boot: warm-up round, {} done\n", c.title);
      }
    }
  }

  auto paired = [](const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> q;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) q.push_back(a[i] / std::max(0.001, b[i]));
    return median(q);
  };
  std::cout << fmt::format("bench_boot: {} runs of each, medians (ms); a node on loopback, erts {}\n", runs,
                           erts_bindir());
  for (const Case& c : cases) {
    std::cout << fmt::format("\n{}\n", c.title);
    std::cout << fmt::format("  {:<22} {:>22} {:>22}\n", "served by", "node start to done", c.inner_name);
    for (int k = 0; k < 3; ++k) {
      std::cout << fmt::format("  {:<22} {:>22.1f} {:>22.1f}\n", kWayNames[k], median(c.wall[k]),
                               median(c.inner[k]));
    }
    const double store = median(c.wall[kStore]), otp = median(c.wall[kOtp]), local = median(c.wall[kLocal]);
    std::cout << fmt::format(
        "  store / OTP's erl_boot_server: {:.2f}x (median of the rounds' own ratios {:.2f}x; target <= 1.1x: "
        "{})\n",
        store / otp, paired(c.wall[kStore], c.wall[kOtp]), store / otp <= 1.1 ? "met" : "NOT met");
    std::cout << fmt::format(
        "  store / local disk: {:.2f}x (rounds' own {:.2f}x); OTP / local disk: {:.2f}x\n", store / local,
        paired(c.wall[kStore], c.wall[kLocal]), otp / local);
    // serve's log, per round, paired with the same round's local-disk run: local disk has
    // the same VM start (spawn to where the store's node sends its discovery request); what it
    // does after that, the store's node does while connected, plus the server's work and the
    // round trips.
    std::vector<double> requests, served, vm, wait, connected, server_ms, round_trips, per_request;
    std::map<std::string, std::vector<double>> kind_count, kind_mean;
    for (std::size_t i = 0; i < c.store_runs.size() && i < c.wall[kLocal].size(); ++i) {
      const StoreRun& s = c.store_runs[i];
      requests.push_back(s.requests);
      served.push_back(s.served);
      vm.push_back(s.to_discovery);
      wait.push_back(s.discovery_wait);
      connected.push_back(s.connected);
      server_ms.push_back(s.server_ms);
      const double rt = s.connected - (c.wall[kLocal][i] - s.to_discovery) - s.server_ms;
      round_trips.push_back(rt);
      per_request.push_back(rt * 1000.0 / std::max(1.0, s.requests));
      for (const auto& [name, k] : s.kinds) {
        kind_count[name].push_back(k.first);
        kind_mean[name].push_back(k.second);
      }
    }
    std::string kinds;
    for (const auto& [name, counts] : kind_count) {
      kinds += fmt::format("{}{} {:.0f} x {:.1f} us", kinds.empty() ? "" : ", ", name, median(counts),
                           median(kind_mean[name]));
    }
    std::cout << fmt::format(
        "  store: {:.0f} requests per boot, one round trip each, one after the other ({}: the server's mean "
        "time to work out an answer); {:.0f} gets found a module, the others were enoent (the code server "
        "asks each directory of the code path in turn)\n",
        median(requests), kinds, median(served));
    std::cout << fmt::format(
        "  where the store's node spends its time (serve's log, medians of the rounds): {:.0f} ms from spawn "
        "to its discovery request (the VM starting, as on local disk), {:.0f} ms the discovery wait "
        "(erl_prim_loader collects boot-server answers for a fixed 500 ms before it connects), {:.0f} ms "
        "connected until it closed. Beyond local disk: the discovery wait, {:.0f} ms the server working out "
        "answers, {:.0f} ms the rest: the round trips and the node's own protocol work ({:.0f} us per "
        "request: "
        "node -> loopback -> server -> node, the node waiting for each answer before it asks again; a "
        "difference of two runs, within the machine's noise when it is small against the totals)\n",
        median(vm), median(wait), median(connected), median(server_ms), median(round_trips),
        median(per_request));
  }
  return 0;
}

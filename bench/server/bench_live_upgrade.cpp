// bench_live_upgrade: a live upgrade of three running nodes by their agents, beside the same
// upgrade done by OTP's release_handler from a relup, in one run (issue 15, "Speed": from the
// channel change to 3 nodes reporting a 10-module plan applied <= 1 s, median of >= 5).
//
// The release: bench_live, made by bench_live_upgrade.escript in two versions X (0.1.0) and X'
// (0.2.0) with kernel, stdlib and sasl; 13 modules, of which the 10 of the plan differ (four
// gen_servers whose state gains a field, code_change both ways; six plain modules, one with a
// new export that a gen_server calls in X'). X''s .appup is what `codestore plan --appup`
// prints for X -> X' (asked of a scratch store), its relup what systools:make_relup makes of it:
// release_handler runs the same instructions the agents get. Both imported into a temporary
// store, X deployed to channel `default`.
//
// `codestore serve` (the CLI: --bind 127.0.0.1, its agent listener on any free loopback port)
// serves four nodes on loopback, each booted from the store (`-loader inet -hosts 127.0.0.1`, a
// local root `codestore materialize` wrote, X's boot script):
//
//   agents          three nodes running codestore_agent (`-pa ROOT/lib/codestore_agent/ebin -s
//                   codestore_agent`, `-codestore_agent name '"benchN"'`), following `default`
//   release_handler one node without the agent, X''s tarball (`codestore release export`, the
//                   relup inside) unpacked once by release_handler:unpack_release (not timed)
//
// Each change: the bench commits the channel change in process (Store::deploy of X' or
// Store::channel_rollback back to X, alternately) and polls the store's node upgrade history
// (Store::node_upgrades) every --poll-ms (5 ms) until the three nodes' reports of the new
// generation are in: that time is the figure. Then release_handler:install_release of the
// same version on the fourth node (up: "0.2.0"; down: "0.1.0", the relup's down entry), timed
// inside the node with timer:tc: from the call to its return, which is the whole upgrade as an
// operator gets it from release_handler (read the relup, load the 10 modules over the
// boot-server protocol from the store, suspend, code_change, resume, write releases/RELEASES).
// unpack_release is left out: it is the tarball's extraction, done once beforehand, as the
// store side's import is. After each change every node says its gen_servers' state shape,
// what each module's vsn/0 answers and every loaded module's MD5 (checked against the store).
//
// The agents' figure is the stricter one: it holds the server noticing the change (it compares
// the store's generation every 100 ms), the plan made from the diff and sent, three nodes
// applying it, and their reports written to the store and read back; release_handler's is one
// node's install alone, started by hand. Where the agents' time goes comes from serve's log
// (ms timestamps): commit -> first plan sent -> last report recorded -> seen by the bench.
//
//   bench_live_upgrade [--runs N] [--warmup N] [--poll-ms MS] [--keep DIR]
//
// Needs erl, erlc and escript on PATH, UDP port 4368 (retried while another boot server holds
// it), loopback only; every process it starts is stopped at its end, failure or not. Not run
// by ctest: benches are run by hand (scripts/dev.sh bench runs them all).
#include <codestore/plan_term.h>
#include <codestore/store.h>
#include <codestore/upgrade_plan.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "erl_node.h"
#include "subprocess.h"
#include "support/real_releases.h"

namespace fs = std::filesystem;
using codestore::bench::median;
using codestore::server::testing::check_loaded;
using codestore::server::testing::find_program;
using codestore::server::testing::run_cli;
using codestore::server::testing::ServeProcess;
using codestore::server::testing::start_release_node;
using codestore::server::testing::Subprocess;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kAgentNodes = 3;
constexpr std::size_t kAppModules = 13;   // bench_live's modules
constexpr std::size_t kPlanModules = 10;  // those that differ between X and X'
const std::string kScript = std::string(CODESTORE_SOURCE_DIR) + "/bench/server/bench_live_upgrade.escript";
const codestore::ReleaseId kX{"bench_live", "0.1.0"}, kX2{"bench_live", "0.2.0"};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The time of serve's log line (its "2026-12-04T02:02:36.089Z" stamp), or nullopt.
std::optional<SysClock::time_point> log_time(const std::string& line) {
  static const std::regex stamp(
      R"(([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z)");
  std::smatch m;
  if (!std::regex_search(line, m, stamp)) return std::nullopt;
  using namespace std::chrono;
  const sys_days day = year(std::stoi(m[1])) / month(static_cast<unsigned>(std::stoi(m[2]))) /
                       static_cast<unsigned>(std::stoi(m[3]));
  return SysClock::time_point(duration_cast<SysClock::duration>(
      day.time_since_epoch() + hours(std::stoi(m[4])) + minutes(std::stoi(m[5])) + seconds(std::stoi(m[6])) +
      milliseconds(std::stoi(m[7]))));
}

double ms_after(SysClock::time_point since, SysClock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - since).count();
}

// What serve's log says of generation `g`: when the agents were sent its plan and when their
// reports were recorded (the line follows the store's commit), the earliest and latest of each.
struct LogTimes {
  std::optional<SysClock::time_point> first_sent, last_sent, first_report, last_report;
  int sent = 0, reports = 0;
};
LogTimes read_log_times(const std::string& log, std::int64_t g) {
  const std::string sent = fmt::format("sent generation {} of channel", g);
  const std::regex report(fmt::format(R"(\): [a-z]+ generation [0-9]+ -> {} \()", g));
  LogTimes t;
  auto note = [](std::optional<SysClock::time_point>& first, std::optional<SysClock::time_point>& last,
                 SysClock::time_point at) {
    if (!first || at < *first) first = at;
    if (!last || at > *last) last = at;
  };
  std::size_t at = 0;
  while (at < log.size()) {
    std::size_t nl = log.find('\n', at);
    if (nl == std::string::npos) nl = log.size();
    const std::string line = log.substr(at, nl - at);
    at = nl + 1;
    if (line.find("agent ") == std::string::npos) continue;
    auto when = log_time(line);
    if (!when) continue;
    if (line.find(sent) != std::string::npos) {
      note(t.first_sent, t.last_sent, *when);
      ++t.sent;
    } else if (std::regex_search(line, report)) {
      note(t.first_report, t.last_report, *when);
      ++t.reports;
    }
  }
  return t;
}

// One counted change of the channel.
struct Change {
  bool up = true;
  double total_ms = 0;       // commit started -> the bench saw the three reports
  double commit_ms = 0;      // the commit itself (Store::deploy / channel_rollback)
  double to_sent = 0;        // commit done -> the first plan sent (serve's log)
  double to_reports = 0;     // first plan sent -> the last report recorded (serve's log)
  double to_seen = 0;        // the last report recorded -> the bench saw it
  double node_apply_ms = 0;  // the nodes' own time (their reports' time_ms), median of the three
  double plan_ms = 0;        // the plan serve makes, made again here (plan, term, encoding)
  double rh_inner_ms = 0;    // release_handler:install_release in the node (timer:tc)
  double rh_outer_ms = 0;    // the same from the bench: the command written -> its answer read
};

// A node of the bench: booted from the store, answering bl_bench's commands on its stdin.
struct Node {
  std::string id, root;
  std::unique_ptr<Subprocess> proc;
};

std::unique_ptr<Subprocess> boot(const std::string& root, const std::string& id, const std::string& log,
                                 const fs::path& cwd, std::vector<std::string> extra) {
  std::vector<std::string> args = {"-boot", root + "/releases/0.1.0/start", "-config",
                                   root + "/releases/0.1.0/sys"};
  args.insert(args.end(), extra.begin(), extra.end());
  return start_release_node(root, id, "bl_bench:main()", log, args, {"127.0.0.1"}, {}, cwd.string());
}

// `check` on a node: its gen_servers' state sizes, every module's vsn/0 and the loaded MD5s
// against the store, for X (`vsn` 0.1.0: states of 3 elements) or X' (0.2.0: 4).
bool check_node(Node& n, const std::string& db, const std::string& vsn, std::string* why) {
  if (!n.proc->write("check\n")) {
    *why = n.id + ": its stdin is closed";
    return false;
  }
  auto line = n.proc->read_until("check ", 30s);
  if (!line) {
    *why = n.id + ": no answer to check";
    return false;
  }
  const std::string size = vsn == kX.vsn ? "3" : "4";
  const std::string sizes = "sizes=[" + size + "," + size + "," + size + "," + size + "]";
  std::string answers = "answers=[";
  for (int i = 0; i < 10; ++i) answers += (i ? ",\"" : "\"") + vsn + "\"";
  answers += "]";
  if (line->find(sizes) == std::string::npos || line->find(answers) == std::string::npos ||
      line->find(" bumps=[") == std::string::npos) {
    *why = fmt::format("{}: runs other than {} ({} {}): {}", n.id, vsn, sizes, answers, *line);
    return false;
  }
  // Every loaded module but the agent's own (serve's, from lib/codestore_agent/ebin: no
  // application of the store).
  std::string list;
  std::stringstream entries(line->substr(line->find(" loaded=") + 8));
  for (std::string e; std::getline(entries, e, ';');) {
    if (e.find("/lib/codestore_agent/ebin/") == std::string::npos) list += (list.empty() ? "" : ";") + e;
  }
  const auto loaded = check_loaded(db, n.root, kX.name, list);
  // The plan's 10 modules from the version's directory; the 3 it leaves alone stay loaded from
  // where they were (the same MD5 in both), as release_handler leaves them too.
  const std::string dir = kX.name + "-" + vsn;
  const std::size_t here = loaded.by_dir.count(dir) ? loaded.by_dir.at(dir) : 0;
  std::size_t app = 0;
  for (const auto& [d, count] : loaded.by_dir) app += d.rfind(kX.name + "-", 0) == 0 ? count : 0;
  if (!loaded.problems.empty() || here < kPlanModules || app != kAppModules) {
    *why = fmt::format("{}: loaded code is not the store's {} ({} modules from {}, {} of {}): {}", n.id, vsn,
                       here, dir, app, kX.name, fmt::join(loaded.problems, "; "));
    return false;
  }
  return true;
}

bool cli(const std::string& db, const std::vector<std::string>& args, const fs::path& work,
         const std::string& name, std::string* out = nullptr) {
  const std::string log = (work / (name + ".log")).string();
  std::vector<std::string> argv = {CODESTORE_BINARY, "--db", db};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv, log, false);
  std::string text = p.read_rest(120s);
  auto st = p.wait(60s);
  if (st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0) {
    if (out) *out = std::move(text);
    return true;
  }
  std::cerr << "bench_live_upgrade: codestore " << fmt::format("{}", fmt::join(args, " ")) << " failed:\n"
            << text << codestore::testing::read_text(log) << "\n";
  return false;
}

bool escript(const std::vector<std::string>& args, const fs::path& work) {
  std::string cmd = "escript " + codestore::testing::sh_quote(kScript);
  for (const std::string& a : args) cmd += " " + codestore::testing::sh_quote(a);
  try {
    codestore::testing::run_checked(cmd, work, work / "home");
  } catch (const std::exception& e) {
    std::cerr << "bench_live_upgrade: " << e.what() << "\n";
    return false;
  }
  return true;
}

// X and X' built, X''s appup from the store's plan and its relup, both imported into `db` and X
// deployed to channel default.
bool setup(const std::string& db, const fs::path& work) {
  std::cerr << "bench_live_upgrade: building bench_live 0.1.0 and 0.2.0...\n";
  if (!escript({"build", work.string()}, work)) return false;
  const std::string rel1 = (work / "rel1").string(), rel2 = (work / "rel2").string();
  // The appup the store's plan makes (a scratch store: the real one gets X' with its relup).
  const std::string scratch = (work / "plan.db").string();
  std::string appup;
  if (!cli(scratch, {"init"}, work, "plan-init") || !cli(scratch, {"import", rel1}, work, "plan-import1") ||
      !cli(scratch, {"import", rel2}, work, "plan-import2") ||
      !cli(scratch, {"plan", "bench_live@0.1.0", "bench_live@0.2.0", "--appup"}, work, "plan-appup",
           &appup)) {
    return false;
  }
  codestore::testing::write_file(work / "bench_live.appup", appup);
  std::error_code ec;
  fs::remove(scratch, ec);
  if (!escript({"relup", work.string(), (work / "bench_live.appup").string()}, work)) return false;
  return cli(db, {"init"}, work, "init") && cli(db, {"import", rel1}, work, "import-x") &&
         cli(db, {"import", rel2}, work, "import-x2") &&
         cli(db, {"deploy", "bench_live@0.1.0"}, work, "deploy-x");
}

std::string figures(std::vector<double> v) {
  if (v.empty()) return "-";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt::format("{:8.1f} {:8.1f} {:8.1f}", median(v), *lo, *hi);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 7, warmup = 2, poll_ms = 5;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else if (a == "--poll-ms" && i + 1 < argc) {
      poll_ms = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--keep" && i + 1 < argc) {
      keep = argv[++i];
    } else {
      std::cerr << "usage: bench_live_upgrade [--runs N] [--warmup N] [--poll-ms MS] [--keep DIR]\n";
      return 2;
    }
  }
  if (find_program("erl").empty() || find_program("erlc").empty() || find_program("escript").empty()) {
    std::cerr << "bench_live_upgrade: erl, erlc or escript is not on PATH: nothing to measure\n";
    return 0;
  }
  codestore::server::testing::node_environment();
  std::unique_ptr<codestore::bench::TempDir> temp;
  fs::path work;
  if (keep.empty()) {
    temp = std::make_unique<codestore::bench::TempDir>();
    work = temp->path();
  } else {
    work = keep;
    fs::create_directories(work);
  }
  fs::create_directories(work / "home");
  const std::string db = (work / "store.db").string();
  if (!setup(db, work)) return 1;

  // The nodes' roots: what materialize writes for channel default (X); the release_handler
  // node's gets X''s tarball where unpack_release("0.2.0/bench_live") looks.
  const std::string agent_root = (work / "agent-root").string(), rh_root = (work / "rh-root").string();
  if (!cli(db, {"materialize", agent_root}, work, "materialize-agents") ||
      !cli(db, {"materialize", rh_root}, work, "materialize-rh")) {
    return 1;
  }
  fs::create_directories(rh_root + "/releases/0.2.0");
  if (!cli(db, {"release", "export", "bench_live@0.2.0", "-o", rh_root + "/releases/0.2.0/bench_live.tar.gz"},
           work, "export-x2")) {
    return 1;
  }

  // Declared before the nodes, so that the nodes stop first (each Subprocess ends its process
  // group when destroyed: on every return below).
  ServeProcess serve(db,
                     {"--quiet", "--bind", "127.0.0.1", "--client-root", agent_root, "--client-root", rh_root,
                      "--agent-port", "0"},
                     (work / "serve.log").string());
  auto failed = [&](const std::string& why) {
    std::cerr << "bench_live_upgrade: " << why << "\n";
    codestore::server::testing::dump_logs(work, 6000);
    return 1;
  };
  if (serve.wait_ready() == 0) return failed("codestore serve did not start");

  std::vector<Node> nodes;
  for (int i = 1; i <= kAgentNodes; ++i) {
    const std::string id = fmt::format("bench{}", i);
    nodes.push_back({id, agent_root,
                     boot(agent_root, id, (work / (id + ".log")).string(), work,
                          {"-pa", agent_root + "/lib/codestore_agent/ebin", "-s", "codestore_agent",
                           "-codestore_agent", "name", "\"" + id + "\""})});
  }
  Node rh{"rh", rh_root, boot(rh_root, "rh", (work / "rh.log").string(), work, {})};
  std::vector<Node*> all;  // the agents' nodes and release_handler's
  for (Node& n : nodes) all.push_back(&n);
  all.push_back(&rh);
  for (Node* n : all) {
    if (!n->proc->read_until("ready", 120s)) return failed(n->id + " did not boot");
  }
  auto store = codestore::Store::open(db);
  if (!store) return failed(store.error().to_string());
  for (const Node& n : nodes) {
    bool known = false;
    for (auto end = Clock::now() + 60s; !known && Clock::now() < end; std::this_thread::sleep_for(20ms)) {
      auto r = (*store)->nodes({.name = n.id});
      known = r && r->size() == 1 && r->front().channel == "default";
    }
    if (!known) return failed(n.id + "'s agent did not say hello");
  }
  rh.proc->write("unpack\n");
  auto unpacked = rh.proc->read_until("unpack ", 60s);
  if (!unpacked || *unpacked != "unpack {ok,\"0.2.0\"}")
    return failed("unpack_release: " + unpacked.value_or("no answer"));
  std::string why;
  for (Node* n : all) {
    if (!check_node(*n, db, kX.vsn, &why)) return failed(why);
  }
  std::cerr << fmt::format("bench_live_upgrade: {} agent nodes and a release_handler node run X\n",
                           kAgentNodes);

  auto current = (*store)->channel_generation("default");
  if (!current) return failed(current.error().to_string());
  std::int64_t prev_g = current->number;
  std::vector<Change> changes;
  for (int k = 0; k < warmup + runs; ++k) {
    Change c;
    c.up = k % 2 == 0;
    const codestore::ReleaseId& to = c.up ? kX2 : kX;
    // The channel change, then the three reports of its generation in the store.
    const Clock::time_point t0 = Clock::now();
    std::int64_t g = 0;
    if (c.up) {
      auto d = (*store)->deploy(kX2, codestore::Reason("bench_live_upgrade"));
      if (!d) return failed("deploy: " + d.error().to_string());
      g = d->generation;
    } else {
      auto r = (*store)->channel_rollback(codestore::Reason("bench_live_upgrade"));
      if (!r) return failed("channel rollback: " + r.error().to_string());
      g = r->number;
    }
    const Clock::time_point t1 = Clock::now();
    const SysClock::time_point s1 = SysClock::now();
    std::vector<codestore::NodeUpgrade> ups;
    bool done = false;
    Clock::time_point seen;
    for (auto end = t1 + 60s; !done && Clock::now() < end;) {
      auto r = (*store)->node_upgrades("", "default", kAgentNodes);
      if (!r) return failed("node_upgrades: " + r.error().to_string());
      seen = Clock::now();
      std::set<std::string> names;
      for (const auto& u : *r) {
        if (u.to_generation == g) names.insert(u.node_name);
      }
      done = names.size() == static_cast<std::size_t>(kAgentNodes);
      if (done) ups = std::move(*r);
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    }
    const SysClock::time_point s_seen = s1 + std::chrono::duration_cast<SysClock::duration>(seen - t1);
    if (!done) return failed(fmt::format("generation {}: not all {} nodes reported in 60 s", g, kAgentNodes));
    c.total_ms = ms_between(t0, seen);
    c.commit_ms = ms_between(t0, t1);
    std::vector<double> own;
    for (const auto& u : ups) {
      if (u.outcome != "applied" || u.modules.size() != kPlanModules) {
        return failed(
            fmt::format("{}: {} with {} modules: {}", u.node_name, u.outcome, u.modules.size(), u.report));
      }
      own.push_back(static_cast<double>(u.duration_ms));
    }
    c.node_apply_ms = median(own);
    const LogTimes lt = read_log_times(serve.log(), g);
    if (!lt.first_sent || !lt.last_report || lt.sent != kAgentNodes || lt.reports != kAgentNodes)
      return failed(fmt::format("serve's log lacks generation {}'s plans or reports", g));
    c.to_sent = ms_after(s1, *lt.first_sent);
    c.to_reports = ms_after(*lt.first_sent, *lt.last_report);
    c.to_seen = ms_after(*lt.last_report, s_seen);

    // What serve did between the poll that saw the change and the first send: the plan from
    // the previous generation, its term with both sides' code, encoded (made again here, after
    // the figure, with the same calls).
    {
      const Clock::time_point p0 = Clock::now();
      auto plan = codestore::plan_generation_upgrade(**store, "default", prev_g, g);
      if (!plan) return failed("plan: " + plan.error().to_string());
      if (plan->down == c.up) return failed(fmt::format("the plan {} -> {} goes the wrong way", prev_g, g));
      auto term = codestore::plan_term(**store, *plan);
      if (!term) return failed("plan_term: " + term.error().to_string());
      const std::size_t bytes = codestore::etf::encode(*term).size();
      c.plan_ms = ms_between(p0, Clock::now());
      if (bytes == 0) return failed("an empty plan term");
    }
    prev_g = g;

    // release_handler: the same change on its node.
    const Clock::time_point r0 = Clock::now();
    rh.proc->write("install " + to.vsn + "\n");
    auto line = rh.proc->read_until("install ", 60s);
    c.rh_outer_ms = ms_between(r0, Clock::now());
    static const std::regex installed(R"(install us=([0-9]+) result=\{ok,"0\.1\.0",\[\]\})");
    std::smatch m;
    if (!line || !std::regex_match(*line, m, installed))
      return failed("release_handler:install_release(\"" + to.vsn + "\"): " + line.value_or("no answer"));
    c.rh_inner_ms = std::stod(m[1]) / 1000.0;
    for (Node* n : all) {
      if (!check_node(*n, db, to.vsn, &why)) return failed(why);
    }
    std::cerr << fmt::format(
        "bench_live_upgrade: {} {} generation {}: agents {:.0f} ms (commit {:.1f}, to sent {:.0f}, to "
        "reports "
        "{:.0f}, to seen {:.0f}; nodes' own {:.0f}; plan {:.0f}), release_handler {:.1f} ms\n",
        k < warmup ? "warm-up" : "counted", c.up ? "up  " : "down", g, c.total_ms, c.commit_ms, c.to_sent,
        c.to_reports, c.to_seen, c.node_apply_ms, c.plan_ms, c.rh_inner_ms);
    if (k >= warmup) changes.push_back(c);
  }

  auto col = [&](auto field, int dir) {  // dir: 0 all, 1 up, -1 down
    std::vector<double> v;
    for (const Change& c : changes) {
      if (dir == 0 || (dir == 1) == c.up) v.push_back(c.*field);
    }
    return v;
  };
  const double agents = median(col(&Change::total_ms, 0)), rh_ms = median(col(&Change::rh_inner_ms, 0));
  std::cout << fmt::format(
      "bench_live_upgrade: {} changes of channel default counted (after {} warm-up), alternately X -> X' "
      "(deploy) and back (channel rollback); bench_live: 13 modules, a 10-module plan (4 gen_servers with "
      "code_change, 6 plain modules); nodes booted from codestore serve on loopback\n",
      changes.size(), warmup);
  std::cout << fmt::format("  {:<72} {:>8} {:>8} {:>8}\n", "ms", "median", "min", "max");
  auto row = [&](const std::string& name, std::vector<double> v) {
    std::cout << fmt::format("  {:<72} {}\n", name, figures(std::move(v)));
  };
  row(fmt::format("agents: channel change -> {} nodes' reports in the store", kAgentNodes),
      col(&Change::total_ms, 0));
  row("  upgrades (X -> X')", col(&Change::total_ms, 1));
  row("  downgrades (X' -> X)", col(&Change::total_ms, -1));
  row("  the commit (Store::deploy / channel_rollback)", col(&Change::commit_ms, 0));
  row("  commit -> first plan sent (serve's 100 ms generation poll + the plan)", col(&Change::to_sent, 0));
  row("    of which the plan (made again in the bench: plan, term, encoding)", col(&Change::plan_ms, 0));
  row("  first plan sent -> last report recorded (serve's log)", col(&Change::to_reports, 0));
  row(fmt::format("  last report recorded -> seen by the bench (polls every {} ms)", poll_ms),
      col(&Change::to_seen, 0));
  row("  each node's own apply time (its report's time_ms, median of 3)", col(&Change::node_apply_ms, 0));
  row("release_handler:install_release on one node (timer:tc in the node)", col(&Change::rh_inner_ms, 0));
  row("  upgrades (\"0.2.0\")", col(&Change::rh_inner_ms, 1));
  row("  downgrades (\"0.1.0\", the relup's down entry)", col(&Change::rh_inner_ms, -1));
  row("  seen from the bench (command written -> answer read)", col(&Change::rh_outer_ms, 0));
  std::cout << fmt::format(
      "  agents (3 nodes, notice + plan + apply + reports) / release_handler (1 node, install alone): "
      "{:.2f}x\n",
      agents / std::max(0.001, rh_ms));
  std::cout << fmt::format("  target: channel change -> 3 nodes applied <= 1000 ms (median of {} >= 5): {}\n",
                           changes.size(), changes.size() >= 5 && agents <= 1000 ? "met" : "NOT met");
  for (Node* n : all) n->proc->write("halt\n");
  for (Node* n : all) {
    if (!n->proc->wait(10s)) n->proc->kill_group();
  }
  serve.stop();
  return 0;
}

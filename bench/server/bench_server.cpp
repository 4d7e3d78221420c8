// bench_server: wall time for a real Erlang node to boot and load the 200 modules of one
// application, served three ways in the same run:
//
//   codestore   `erl -loader inet` against codestore's boot server over a store
//   otp         `erl -loader inet` against OTP's own erl_boot_server (plain files)
//   files       plain `erl`, reading the files itself (no boot server)
//
// Each round runs the three once, in a turning order, so drift hits all alike; the figures are
// medians over the rounds, after --warmup rounds that are not counted (the first node of a
// run pays for cold caches: the page cache, codestore's decompressed images). Beside the
// ratio of the medians, the median of each round's own ratio (the two servers' nodes of
// one round ran seconds apart, so other work on the machine hits both alike). Both boot servers pay the
// client's fixed 500 ms discovery wait (erl_prim_loader collects answers for EBOOT_REQUEST_DELAY), so
// "boot+load" of the two servers is comparable with each other, not with "files"; "load" is the 200
// code:load_file/1 calls alone, timed inside the node.
//
// Without a node, each round also times the servers alone: 200 {get, File} of the app's
// modules, and the whole request sequence of one node (recorded from codestore's answer log
// before the rounds: ~650 get/list_dir/read_file_info), replayed on one connection; the
// first replay also compares each answer's ok/error between the two servers.
//
// First, without a node or discovery: the app's modules fetched by 10 connections from a server
// that records nodes (served counts in its batches) and from one that does not (one served
// count written per module sent), in turns: what recording nodes costs serving.
//
//   bench_server [--rounds N] [--warmup N] [--modules N] [--keep DIR]
//
// Needs erl and erlc on PATH and UDP port 4368 free (no other boot server on the host).
#include <codestore/boot_server.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "server_test_util.h"
#include "store_ops.h"
#include "subprocess.h"

namespace fs = std::filesystem;
using codestore::server::testing::find_program;
using codestore::server::testing::Subprocess;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kApp = "benchapp";
constexpr const char* kOtpRoot = "/usr/lib/erlang";

// One module of the benchmark app: a few dozen small functions, so that its image has the
// size of a typical application module (a few KB).
std::string module_source(int i) {
  std::string name = fmt::format("bench_app_{:03}", i);
  std::string src = fmt::format("-module({}).\n-export([version/0, run/1", name);
  for (int f = 0; f < 24; ++f) src += fmt::format(", f{}/2", f);
  src +=
      "]).\n\nversion() -> 1.\n\nrun(N) -> lists:foldl(fun(X, A) -> f0(X, A) end, 0, lists:seq(1, N)).\n\n";
  for (int f = 0; f < 24; ++f) {
    src += fmt::format(
        "f{0}(X, A) when is_integer(X) -> case X rem {1} of 0 -> A + X * {1}; 1 -> {{ok, A, \"{2}_{0}\"}}; "
        "_ -> maps:get(k, #{{k => A - X}}, {0}) end;\nf{0}(X, A) -> [X, A | atom_{0}_{1}].\n\n",
        f, i % 7 + 2, name);
  }
  return src;
}

bool run_quiet(const std::vector<std::string>& argv, const std::string& log) {
  Subprocess p(argv, log, false);
  if (!p.started()) return false;
  p.read_rest(std::chrono::minutes(5));
  auto st = p.wait(std::chrono::minutes(5));
  return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0;
}

struct Run {
  double wall_ms = 0;
  double load_ms = 0;
  bool ok = false;
  std::string detail;
};

// One node: boot, load every module (checking where each came from), halt.
Run run_node(const std::string& erl, const std::vector<std::string>& loader_args, const std::string& app_ebin,
             int modules, const std::string& log) {
  std::string eval = fmt::format(
      "Ms = [list_to_atom(lists:flatten(io_lib:format(\"bench_app_~3..0w\", [I]))) || I <- lists:seq(1, "
      "{0})], "
      "T0 = erlang:monotonic_time(microsecond), "
      "[{{module, M}} = code:load_file(M) || M <- Ms], "
      "T1 = erlang:monotonic_time(microsecond), "
      "Where = filename:dirname(code:which(hd(Ms))), "
      "io:format(\"load_us=~p where=~s~n\", [T1 - T0, Where]), halt().",
      modules);
  std::vector<std::string> argv = {erl};
  argv.insert(argv.end(), loader_args.begin(), loader_args.end());
  argv.insert(argv.end(), {"-noshell", "-pa", app_ebin, "-eval", eval});
  auto t0 = Clock::now();
  Subprocess node(argv, log, false);
  Run r;
  auto line = node.read_until("load_us=", std::chrono::seconds(120));
  auto st = node.wait(std::chrono::seconds(60));
  r.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!line || !st) {
    r.detail = "node did not finish (see " + log + ")";
    return r;
  }
  long long us = 0;
  char where[4096] = {};
  if (std::sscanf(line->c_str(), "load_us=%lld where=%4095s", &us, where) != 2) {
    r.detail = "unexpected output: " + *line;
    return r;
  }
  if (app_ebin != where) {
    r.detail = fmt::format("modules came from {}, expected {}", where, app_ebin);
    return r;
  }
  r.load_ms = static_cast<double>(us) / 1000.0;
  r.ok = true;
  return r;
}

// The TCP port a boot server answers discovery with (the way erl_prim_loader finds it).
int discover(const std::string& version) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(4368);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string q = "EBOOTQ" + version;
  int port = -1;
  for (int attempt = 0; attempt < 20 && port < 0; ++attempt) {
    ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 500) != 1) continue;
    unsigned char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n >= 9 && std::memcmp(buf, "EBOOTR", 6) == 0) port = buf[7] * 256 + buf[8];
  }
  ::close(fd);
  return port;
}

// Wall time of {get, File} for every file, one after the other on one connection, as a
// node's code server asks: the servers' own cost per request, without the node's.
double raw_gets_ms(int port, const std::vector<std::string>& files, std::string* problem) {
  codestore::server::testing::RawClient c(static_cast<std::uint16_t>(port));
  if (!c.connected()) {
    *problem = "cannot connect";
    return 0;
  }
  auto t0 = Clock::now();
  for (const std::string& f : files) {
    c.send_term(codestore::server::testing::req("get", f));
    auto answer = c.recv_frame();
    // {get, {ok, Bin}} starts 131, 104, 2, 119|100 ...; an error answer is much shorter.
    if (!answer || answer->size() < 100) {
      *problem = "no image for " + f;
      return 0;
    }
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One request as a node sent it: the command and the path (empty for get_cwd).
struct Recorded {
  std::string command;
  std::string path;
};

// The requests in codestore's answer log lines ("PEER CMD PATH: how"), in order.
std::vector<Recorded> parse_answer_log(const std::vector<std::string>& lines) {
  std::vector<Recorded> out;
  for (const std::string& line : lines) {
    // "<time> 127.0.0.1:40522 get /usr/lib/...: store ..."
    std::size_t peer = line.find(" 127.0.0.1:");
    if (peer == std::string::npos) continue;
    std::size_t cmd = line.find(' ', peer + 1);
    if (cmd == std::string::npos) continue;
    std::size_t cmd_end = line.find(' ', cmd + 1);
    if (cmd_end == std::string::npos) continue;
    std::string command = line.substr(cmd + 1, cmd_end - cmd - 1);
    if (command == "get_cwd") {
      out.push_back({command, ""});
      continue;
    }
    if (command != "get" && command != "list_dir" && command != "read_file_info" &&
        command != "read_link_info") {
      continue;
    }
    std::size_t colon = line.find(": ", cmd_end + 1);
    if (colon == std::string::npos) continue;
    out.push_back({command, line.substr(cmd_end + 1, colon - cmd_end - 1)});
  }
  return out;
}

// "ok" or "error:Reason" of an answer {Cmd, {ok, _}} / {Cmd, {error, Reason}} / {Cmd, {ok, ...}}.
std::string answer_status(const std::vector<std::uint8_t>& a) {
  auto t = codestore::etf::decode(a);
  if (!t) return "undecodable";
  std::string text = codestore::etf::format_w(*t);
  std::size_t comma = text.find(",{");
  if (comma == std::string::npos) return text.substr(0, 40);
  std::string rest = text.substr(comma + 2);
  if (rest.rfind("ok,", 0) == 0) return "ok";
  return rest.substr(0, rest.find('}'));
}

// Wall time to replay `requests` one after the other on one connection (the servers' own
// cost for a node's whole boot, without the node's); `statuses` gets each answer's status
// when not null.
double replay_ms(int port, const std::vector<Recorded>& requests, std::vector<std::string>* statuses,
                 std::string* problem) {
  codestore::server::testing::RawClient c(static_cast<std::uint16_t>(port));
  if (!c.connected()) {
    *problem = "cannot connect";
    return 0;
  }
  std::vector<std::vector<std::uint8_t>> answers;
  answers.reserve(requests.size());
  auto t0 = Clock::now();
  for (const Recorded& r : requests) {
    c.send_term(r.command == "get_cwd" ? codestore::etf::Term::atom("get_cwd")
                                       : codestore::server::testing::req(r.command, r.path));
    auto answer = c.recv_frame();
    if (!answer) {
      *problem = "no answer to " + r.command + " " + r.path;
      return 0;
    }
    answers.push_back(std::move(*answer));
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (statuses != nullptr) {
    for (const auto& a : answers) statuses->push_back(answer_status(a));
  }
  return ms;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 15;
  int warmup = 1;
  int modules = 200;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else if (a == "--modules" && i + 1 < argc) {
      modules = std::clamp(std::atoi(argv[++i]), 1, 999);
    } else if (a == "--keep" && i + 1 < argc) {
      keep = argv[++i];
    } else {
      std::cerr << "usage: bench_server [--rounds N] [--warmup N] [--modules N] [--keep DIR]\n";
      return 2;
    }
  }
  std::string erl = find_program("erl"), erlc = find_program("erlc");
  if (erl.empty() || erlc.empty()) {
    std::cerr << "bench_server: erl/erlc not on PATH: nothing to measure\n";
    return 0;
  }
  fs::path work = keep.empty()
                      ? fs::temp_directory_path() / fmt::format("codestore-bench-server-{}", ::getpid())
                      : fs::path(keep);
  fs::create_directories(work / "src");
  fs::path app_dir = work / fmt::format("{}-1.0", kApp) / "ebin";
  fs::create_directories(app_dir);
  std::vector<std::string> compile = {erlc, "-o", app_dir.string()};
  for (int i = 1; i <= modules; ++i) {
    fs::path src = work / "src" / fmt::format("bench_app_{:03}.erl", i);
    std::ofstream(src) << module_source(i);
    compile.push_back(src.string());
  }
  std::cerr << fmt::format("bench_server: compiling {} modules...\n", modules);
  if (!run_quiet(compile, (work / "erlc.log").string())) {
    std::cerr << "bench_server: erlc failed, see " << (work / "erlc.log").string() << "\n";
    return 1;
  }
  std::string db = (work / "bench.db").string();
  std::cerr << "bench_server: importing kernel, stdlib and the app into a store...\n";
  if (auto s = codestore::server::store_ops::import_otp_libs(db, kOtpRoot, {"kernel", "stdlib"},
                                                             {app_dir.string()});
      !s) {
    std::cerr << "bench_server: import: " << s.to_string() << "\n";
    return 1;
  }
  auto source = codestore::server::open_store_source(db, "");
  if (!source) {
    std::cerr << "bench_server: " << source.error().to_string() << "\n";
    return 1;
  }
  std::string store_ebin = fmt::format("{}/lib/{}/ebin", kOtpRoot, kApp);
  std::vector<std::string> inet = {"-loader", "inet", "-hosts", "127.0.0.1", "-id", "bench"};

  std::vector<double> wall[3], load[3], raw[2], replay[2];
  // codestore's own answer time per request kind, summed over the rounds' nodes (not the
  // raw round trips).
  codestore::server::BootServerStats kinds;
  std::vector<std::string> store_files, otp_files;
  for (int i = 1; i <= modules; ++i) {
    store_files.push_back(fmt::format("{}/bench_app_{:03}.beam", store_ebin, i));
    otp_files.push_back(fmt::format("{}/bench_app_{:03}.beam", app_dir.string(), i));
  }
  std::string problem;
  const char* names[3] = {"codestore serve", "OTP erl_boot_server", "plain files"};

  // Recording nodes (docs/model.md, "Nodes"): the app's modules fetched ({get, File}) by 10
  // connections in a row (10 nodes) from a server that records them and from one that does
  // not, in turns; the recording thread writes while the next connections are served. No node
  // and no discovery: this part runs even when port 4368 is taken.
  {
    std::vector<double> recorded, unrecorded;
    for (int r = 0; r < std::max(7, rounds) && problem.empty(); ++r) {
      for (bool record : {r % 2 == 0, r % 2 != 0}) {
        codestore::server::BootServerOptions o;
        o.log_every_answer = false;
        o.udp_port = -1;
        o.record_nodes = record;
        auto server = codestore::server::BootServer::start(o, **source);
        if (!server) {
          std::cerr << "bench_server: " << server.error().to_string() << "\n";
          return 1;
        }
        double ms = 0;
        for (int c = 0; c < 10 && problem.empty(); ++c)
          ms += raw_gets_ms((*server)->tcp_port(), store_files, &problem);
        (record ? recorded : unrecorded).push_back(ms);
      }
    }
    if (!problem.empty()) {
      std::cerr << "bench_server: node recording: " << problem << "\n";
      return 1;
    }
    std::cout << fmt::format(
        "node recording: {} modules fetched by 10 connections in a row, median of {} rounds (ms): recorded "
        "{:.1f} (min {:.1f}), not recorded {:.1f} (min {:.1f}): {:.3f}x\n",
        modules, recorded.size(), median(recorded), *std::min_element(recorded.begin(), recorded.end()),
        median(unrecorded), *std::min_element(unrecorded.begin(), unrecorded.end()),
        median(recorded) / std::max(0.001, median(unrecorded)));
  }

  // The requests of one node's boot and load, as codestore's answer log lists them, to be
  // replayed to both servers without a node: each server's own cost for the whole
  // sequence. For OTP's server the app's directory is the compiled one.
  std::vector<Recorded> node_requests, otp_requests;
  {
    std::vector<std::string> lines;
    std::mutex lines_mu;
    codestore::server::BootServerOptions o;
    o.log = [&](std::string_view line) {
      std::lock_guard<std::mutex> lock(lines_mu);
      lines.emplace_back(line);
    };
    auto server = codestore::server::BootServer::start(o, **source);
    if (!server) {
      std::cerr << "bench_server: " << server.error().to_string() << "\n";
      return 1;
    }
    Run run = run_node(erl, inet, store_ebin, modules, (work / "node-record.log").string());
    (*server)->stop();
    if (!run.ok) {
      std::cerr << "bench_server: recording a node's requests: " << run.detail << "\n";
      return 1;
    }
    node_requests = parse_answer_log(lines);
    for (Recorded r : node_requests) {
      if (r.path.rfind(store_ebin, 0) == 0) r.path = app_dir.string() + r.path.substr(store_ebin.size());
      otp_requests.push_back(std::move(r));
    }
  }
  std::vector<std::string> statuses[2];  // each answer's ok/error, first replay
  auto run_codestore = [&](int r) {
    codestore::server::BootServerOptions o;
    o.log_every_answer = false;  // the log would be the same work for every round
    auto server = codestore::server::BootServer::start(o, **source);
    if (!server) {
      std::cerr << "bench_server: " << server.error().to_string() << "\n";
      return false;
    }
    Run run = run_node(erl, inet, store_ebin, modules, (work / "node-codestore.log").string());
    if (!run.ok) {
      std::cerr << "bench_server: codestore round " << r << ": " << run.detail << "\n";
      return false;
    }
    auto s = (*server)->stats();
    for (auto [total, k] : {std::pair{&kinds.get, s.get},
                            {&kinds.list_dir, s.list_dir},
                            {&kinds.read_file_info, s.read_file_info},
                            {&kinds.read_link_info, s.read_link_info},
                            {&kinds.get_cwd, s.get_cwd}}) {
      total->count += k.count;
      total->answer_ns += k.answer_ns;
    }
    wall[0].push_back(run.wall_ms);
    load[0].push_back(run.load_ms);
    raw[0].push_back(raw_gets_ms((*server)->tcp_port(), store_files, &problem));
    if (problem.empty()) {
      replay[0].push_back(replay_ms((*server)->tcp_port(), node_requests,
                                    statuses[0].empty() ? &statuses[0] : nullptr, &problem));
    }
    if (!problem.empty()) {
      std::cerr << "bench_server: codestore raw requests: " << problem << "\n";
      return false;
    }
    return true;
  };
  auto run_otp = [&](int r) {
    Subprocess otp({erl, "-noshell", "-eval",
                    "{ok, _} = erl_boot_server:start([\"127.0.0.1\"]), io:format(\"ready~n\"), "
                    "receive after infinity -> ok end."},
                   (work / "otp-server.log").string(), false);
    if (!otp.read_until("ready", std::chrono::seconds(60))) {
      std::cerr << "bench_server: OTP's erl_boot_server did not start (is port 4368 taken?)\n";
      return false;
    }
    Run run = run_node(erl, inet, app_dir.string(), modules, (work / "node-otp.log").string());
    if (!run.ok) {
      std::cerr << "bench_server: otp round " << r << ": " << run.detail << "\n";
      return false;
    }
    int port = discover(codestore::server::find_erts_version(kOtpRoot).value_or(""));
    raw[1].push_back(port > 0 ? raw_gets_ms(port, otp_files, &problem) : 0);
    if (port > 0 && problem.empty()) {
      replay[1].push_back(
          replay_ms(port, otp_requests, statuses[1].empty() ? &statuses[1] : nullptr, &problem));
    }
    if (port <= 0 || !problem.empty()) {
      std::cerr << "bench_server: OTP raw gets: " << (port <= 0 ? "no discovery answer" : problem) << "\n";
      return false;
    }
    wall[1].push_back(run.wall_ms);
    load[1].push_back(run.load_ms);
    return true;
  };
  auto run_files = [&](int r) {
    Run run = run_node(erl, {}, app_dir.string(), modules, (work / "node-files.log").string());
    if (!run.ok) {
      std::cerr << "bench_server: files round " << r << ": " << run.detail << "\n";
      return false;
    }
    wall[2].push_back(run.wall_ms);
    load[2].push_back(run.load_ms);
    return true;
  };
  for (int r = 1 - warmup; r <= rounds; ++r) {
    if (r == 1) {
      // The warm-up rounds are done: count from here.
      for (auto* v : {&wall[0], &wall[1], &wall[2], &load[0], &load[1], &load[2], &raw[0], &raw[1],
                      &replay[0], &replay[1]}) {
        v->clear();
      }
      kinds = {};
    }
    // The order turns each round, so that whatever drifts during a round (other work on
    // the machine, caches) does not always favour the same one.
    for (int k = 0; k < 3; ++k) {
      int which = (k + r) % 3;
      bool ok = which == 0 ? run_codestore(r) : which == 1 ? run_otp(r) : run_files(r);
      if (!ok) return 1;
    }
    std::cerr << fmt::format(
        "bench_server: {} {}/{}: boot+load {:.0f} / {:.0f} / {:.0f} ms, "
        "load {:.0f} / {:.0f} / {:.0f} ms, round trips {:.0f} / {:.0f} ms, "
        "node's requests replayed {:.0f} / {:.0f} ms\n",
        r < 1 ? "warm-up round" : "round", r < 1 ? r + warmup : r, r < 1 ? warmup : rounds, wall[0].back(),
        wall[1].back(), wall[2].back(), load[0].back(), load[1].back(), load[2].back(), raw[0].back(),
        raw[1].back(), replay[0].back(), replay[1].back());
  }
  std::cout << fmt::format("bench_server: boot a node and load {} modules of one app, {} rounds, medians\n",
                           modules, rounds);
  // The minimum beside the median: on a shared machine the median carries other work's
  // preemptions, the minimum is closest to each path's own cost.
  auto low = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
  };
  std::cout << fmt::format("{:<22} {:>16} {:>16} {:>12} {:>12}\n", "served by", "boot+load (ms)",
                           "load only (ms)", "min b+l", "min load");
  for (int k = 0; k < 3; ++k) {
    std::cout << fmt::format("{:<22} {:>16.1f} {:>16.1f} {:>12.1f} {:>12.1f}\n", names[k], median(wall[k]),
                             median(load[k]), low(wall[k]), low(load[k]));
  }
  std::cout << fmt::format(
      "{} sequential {{get, File}} round trips on one connection, no node (ms): "
      "codestore {:.1f} (min {:.1f}), erl_boot_server {:.1f} (min {:.1f})\n",
      modules, median(raw[0]), low(raw[0]), median(raw[1]), low(raw[1]));
  std::cout << fmt::format(
      "a node's {} requests (boot and load) replayed on one connection, no node (ms): "
      "codestore {:.1f} (min {:.1f}), erl_boot_server {:.1f} (min {:.1f})\n",
      node_requests.size(), median(replay[0]), low(replay[0]), median(replay[1]), low(replay[1]));
  // Both servers should answer alike, but for what codestore serves differently by design
  // (the app is a store lib under the root for codestore, a directory elsewhere for OTP).
  std::map<std::string, std::pair<std::size_t, std::string>>
      differ;  // kind of difference -> count, an example
  std::size_t compared = std::min(statuses[0].size(), statuses[1].size()), differing = 0;
  for (std::size_t i = 0; i < compared; ++i) {
    if (statuses[0][i] == statuses[1][i]) continue;
    ++differing;
    auto& d = differ[fmt::format("{}: {} / {}", node_requests[i].command, statuses[0][i], statuses[1][i])];
    if (d.first++ == 0) d.second = node_requests[i].path;
  }
  std::cout << fmt::format("answers whose ok/error differ (codestore / erl_boot_server): {} of {}\n",
                           differing, compared);
  for (const auto& [kind, d] : differ)
    std::cout << fmt::format("  {} x {} (e.g. {})\n", d.first, kind, d.second);
  std::string per_kind;
  for (auto [name, k] : {std::pair{"get", kinds.get},
                         {"list_dir", kinds.list_dir},
                         {"read_file_info", kinds.read_file_info},
                         {"read_link_info", kinds.read_link_info},
                         {"get_cwd", kinds.get_cwd}}) {
    if (k.count == 0) continue;
    per_kind += fmt::format("{}{} {} x {:.1f} us", per_kind.empty() ? "" : ", ", name, k.count / rounds,
                            static_cast<double>(k.answer_ns) / 1000.0 / static_cast<double>(k.count));
  }
  std::cout << "codestore requests per node and mean time to work out an answer: " << per_kind << "\n";
  auto ratio = [](const std::vector<double>& a, const std::vector<double>& b) {
    return median(a) / std::max(0.001, median(b));
  };
  std::cout << fmt::format(
      "codestore / erl_boot_server: boot+load {:.2f}x, load {:.2f}x, round trips {:.2f}x, "
      "replayed requests {:.2f}x\n",
      ratio(wall[0], wall[1]), ratio(load[0], load[1]), ratio(raw[0], raw[1]), ratio(replay[0], replay[1]));
  auto paired = [](const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) r.push_back(a[i] / std::max(0.001, b[i]));
    return median(r);
  };
  std::cout << fmt::format(
      "median of the rounds' own ratios: boot+load {:.3f}x, load {:.3f}x, round trips {:.2f}x, "
      "replayed requests {:.2f}x\n",
      paired(wall[0], wall[1]), paired(load[0], load[1]), paired(raw[0], raw[1]),
      paired(replay[0], replay[1]));
  if (keep.empty()) {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return 0;
}

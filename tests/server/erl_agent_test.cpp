// The real agent on a real node (issue 15 items 1 and 4): a node booted by `codestore serve`
// over the boot-server protocol runs `-pa /usr/lib/erlang/lib/codestore_agent/ebin -s
// codestore_agent`, so the agent's code, and the agent port it connects to (priv/agent.config),
// come from serve itself, and the server from -hosts. Its hello is recorded as a node whose
// modules carry the MD5s the node itself reports; a peer sending garbage is dropped while the
// agent stays connected; a change committed by another process (`codestore import`, `channel rollback`)
// is announced and the agent's report recorded; a restarted serve is reconnected to and announces
// the next change. One node, one serve at a time; UDP port 4368 (RESOURCE_LOCK boot_server_port).
#include <arpa/inet.h>
#include <codestore/store.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "erl_node.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

using codestore::testing::TempDir;
using testing::agent_port;
using testing::compile;
using testing::compile_agt;
using testing::count;
using testing::eventually;
using testing::find_program;
using testing::ServeProcess;
using testing::start_node;
using namespace std::chrono_literals;

// `codestore serve` on an ephemeral boot port and agent port `port` (0: an ephemeral one, which
// `port` then names), ready to serve; null when it did not start (its log says why).
std::unique_ptr<ServeProcess> start_serve(const std::string& db, const std::string& log,
                                          std::uint16_t& port) {
  auto serve = std::make_unique<ServeProcess>(
      db, std::vector<std::string>{"--port", "0", "--agent-port", std::to_string(port)}, log);
  if (serve->wait_ready() == 0) return nullptr;
  if (port == 0 && !eventually([&] { return (port = agent_port(*serve)) != 0; }, 10s)) return nullptr;
  return serve;
}

TEST(ErlAgentTest, AgentFollowsItsChannelAcrossAServerRestart) {
  if (find_program("erl").empty()) GTEST_SKIP() << "erl is not installed: no node to boot";
  testing::node_environment();
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  auto log = [&](const std::string& name) { return dir.path().string() + "/" + name + ".log"; };
  const std::string v1 = compile_agt(dir.path(), 1), v2 = compile_agt(dir.path(), 2);
  ASSERT_TRUE(store_ops::import_otp_libs(db, "/usr/lib/erlang", {"kernel", "stdlib"}));
  ASSERT_TRUE(store_ops::import_file(db, v1, "agt"));

  std::uint16_t port = 0;
  auto serve = start_serve(db, log("serve1"), port);
  ASSERT_TRUE(serve) << codestore::testing::read_text(log("serve1"));

  // agt loaded before the agent starts, so that the hello lists it; the node then prints its
  // name and every loaded module's MD5, then what agt:v() answers each time it changes (the
  // agent's applier switches the code under this running loop). What the printing and the loop
  // use is loaded before the list is made (else they would load after it, and a hello sent after
  // that, on a busy machine, would list modules the printed list lacks).
  auto node = start_node(
      "a1",
      "[{module, _} = code:ensure_loaded(M) || M <- [io, io_lib_format, io_lib_pretty, timer, maps]], "
      "F = fun() -> lists:join(\",\", [[atom_to_list(M), $:, [io_lib:format(\"~2.16.0b\", [B]) "
      "|| <<B>> <= M:module_info(md5)]] || {M, _} <- lists:sort(code:all_loaded())]) end, "
      "_ = F(), io:format(\"mods=~s~n\", [F()]), "
      "io:format(\"name=~s~n\", [maps:get(name, codestore_agent_conn:hello(undefined, 0))]), "
      "Loop = fun L(Last) -> V = agt:v(), _ = V =:= Last orelse io:format(\"v=~p~n\", [V]), "
      "timer:sleep(20), L(V) end, Loop(0).",
      log("node"),
      {"-pa", "/usr/lib/erlang/lib/agt/ebin", "-pa", "/usr/lib/erlang/lib/codestore_agent/ebin", "-eval",
       "agt:v()", "-s", "codestore_agent"});
  auto mods = node->read_until("mods=", 60s);
  ASSERT_TRUE(mods) << "the node did not boot\n" << serve->log();
  auto name_line = node->read_until("name=", 20s);
  ASSERT_TRUE(name_line);
  const std::string name = name_line->substr(5);
  std::map<std::string, std::string> loaded;
  std::istringstream in(mods->substr(5));
  for (std::string item; std::getline(in, item, ',');)
    loaded[item.substr(0, item.find(':'))] = item.substr(item.find(':') + 1);

  auto store = Store::open(db);
  ASSERT_TRUE(store);
  NodeInfo n;
  auto node_info = [&] {
    auto r = (*store)->nodes({.with_modules = true, .name = name});
    if (!r || r->size() != 1) return false;
    n = r->front();
    return true;
  };
  ASSERT_TRUE(eventually(node_info)) << serve->log();
  // Its hello: the channel's modules it has loaded, each with the node's own MD5.
  EXPECT_EQ(n.channel, "default");
  EXPECT_EQ(n.agent_vsn, CODESTORE_VERSION_TEXT);
  ASSERT_GT(n.modules.size(), 20u);
  std::size_t agt = 0;
  for (const NodeModule& m : n.modules) {
    ASSERT_EQ(loaded.count(m.module), 1u) << m.module;
    EXPECT_EQ(m.md5, loaded[m.module]) << m.module;
    agt += m.module == "agt";
  }
  EXPECT_EQ(agt, 1u);
  EXPECT_FALSE(n.behind) << n.runs_generation << " " << n.channel_generation;

  // Garbage from another peer: dropped; the agent keeps its connection (one welcome so far).
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const char junk[] = {0, 0, 0, 3, 'b', 'a', 'd'};
    ASSERT_EQ(::send(fd, junk, sizeof junk, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof junk));
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
    char c;
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0);  // closed by the server
    ::close(fd);
  }

  // A deploy in another process: the agent is sent generation G2 and reports.
  ASSERT_EQ(testing::run_cli(db, {"import", "--lib", "agt", v2}, log("import2")), 0)
      << codestore::testing::read_text(log("import2"));
  auto g2 = (*store)->channel_generation("default");
  ASSERT_TRUE(g2);
  std::vector<NodeUpgrade> ups;
  auto reported = [&](std::int64_t g) {
    return [&, g] {
      auto r = (*store)->node_upgrades(name);
      ups = r ? *r : std::vector<NodeUpgrade>{};
      return !ups.empty() && ups.front().to_generation == g;
    };
  };
  ASSERT_TRUE(node->read_until("v=1", 20s));
  ASSERT_TRUE(eventually(reported(g2->number))) << serve->log();
  // The plan (plan_term) applied by codestore_agent_apply on the running node: its loop now
  // runs agt v2, and the report names the node's own MD5 of it.
  EXPECT_EQ(ups.front().outcome, "applied") << ups.front().report;
  EXPECT_TRUE(node->read_until("v=2", 20s)) << ups.front().report;
  auto v2_md5 = (*store)->versions("agt");
  ASSERT_TRUE(v2_md5);
  bool reported_v2 = false;
  for (const NodeUpgradeModule& m : ups.front().modules)
    reported_v2 |= m.module == "agt" && m.outcome == "loaded" && m.detail == v2_md5->back().md5;
  EXPECT_TRUE(reported_v2) << ups.front().report;
  EXPECT_EQ(count(serve->log(), "(" + name + "): welcome"), 1u) << serve->log();

  // serve stops and starts again on the same agent port: the agent connects again, and the
  // next change reaches it through the new server.
  ASSERT_EQ(serve->stop(), 0) << serve->log();
  serve = start_serve(db, log("serve2"), port);
  ASSERT_TRUE(serve) << codestore::testing::read_text(log("serve2"));
  ASSERT_TRUE(eventually([&] { return count(serve->log(), "(" + name + "): welcome") == 1; }))
      << serve->log();
  ASSERT_EQ(testing::run_cli(db, {"channel", "rollback", "default"}, log("rollback")), 0)
      << codestore::testing::read_text(log("rollback"));
  auto g3 = (*store)->channel_generation("default");
  ASSERT_TRUE(g3);
  ASSERT_GT(g3->number, g2->number);
  ASSERT_TRUE(eventually(reported(g3->number))) << serve->log();
  // The new server did not send again what the node had applied (the history says it did); the
  // rollback's plan took the node back to agt v1.
  EXPECT_EQ(count(serve->log(), "sent generation " + std::to_string(g2->number)), 0u) << serve->log();
  EXPECT_EQ(ups.front().outcome, "applied") << ups.front().report;
  EXPECT_TRUE(node->read_until("v=1", 20s)) << ups.front().report;
  ASSERT_TRUE(node_info());
  EXPECT_EQ(n.last_upgrade.to_generation, g3->number);
  EXPECT_FALSE(n.behind) << n.runs_generation << " " << n.channel_generation;
  node.reset();
  EXPECT_EQ(serve->stop(), 0) << serve->log();
}

// A node that a `--channel b=ADDRESS` rule serves boots from channel b, and its agent follows b:
// the agent.config serve answers it names b, the hello says b, and a change to b (not to the
// default channel) is applied on the running node.
TEST(ErlAgentTest, ANodeAChannelRuleServesFollowsThatChannel) {
  if (find_program("erl").empty()) GTEST_SKIP() << "erl is not installed: no node to boot";
  testing::node_environment();
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  auto log = [&](const std::string& name) { return dir.path().string() + "/" + name + ".log"; };
  const std::string v1 = compile_agt(dir.path(), 1), v2 = compile_agt(dir.path(), 2),
                    v3 = compile_agt(dir.path(), 3);
  // The default channel: kernel, stdlib, agt 1. Channel b: the same libraries, agt 2.
  ASSERT_TRUE(store_ops::import_otp_libs(db, "/usr/lib/erlang", {"kernel", "stdlib"}));
  ASSERT_TRUE(store_ops::import_file(db, v1, "agt"));
  const std::string kernel = store_ops::otp_lib_dir("/usr/lib/erlang", "kernel"),
                    stdlib = store_ops::otp_lib_dir("/usr/lib/erlang", "stdlib");
  ASSERT_EQ(
      testing::run_cli(db, {"--channel", "b", "import", kernel + "/ebin", stdlib + "/ebin"}, log("import-b")),
      0)
      << codestore::testing::read_text(log("import-b"));
  ASSERT_EQ(testing::run_cli(db, {"--channel", "b", "import", "--lib", "agt", v2}, log("import-b2")), 0)
      << codestore::testing::read_text(log("import-b2"));

  ServeProcess serve(db, {"--port", "0", "--channel", "b=127.0.0.0/8"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  auto node =
      start_node("r1",
                 "io:format(\"channel=~s~n\", [maps:get(channel, codestore_agent_conn:status())]), "
                 "io:format(\"name=~s~n\", [maps:get(name, codestore_agent_conn:hello(undefined, 0))]), "
                 "Loop = fun L(Last) -> V = agt:v(), _ = V =:= Last orelse io:format(\"v=~p~n\", [V]), "
                 "timer:sleep(20), L(V) end, Loop(0).",
                 log("node"),
                 {"-pa", "/usr/lib/erlang/lib/agt/ebin", "-pa", "/usr/lib/erlang/lib/codestore_agent/ebin",
                  "-s", "codestore_agent"});
  // Before the welcome, the channel the agent read from agent.config.
  EXPECT_EQ(node->read_until("channel=", 60s).value_or("the node did not boot"), "channel=b") << serve.log();
  auto name_line = node->read_until("name=", 20s);
  ASSERT_TRUE(name_line);
  const std::string name = name_line->substr(5);
  EXPECT_TRUE(node->read_until("v=2", 20s)) << "not booted from channel b\n" << serve.log();

  auto store = Store::open(db);
  ASSERT_TRUE(store);
  auto on_b = [&] {
    auto r = (*store)->nodes({.name = name});
    return r && r->size() == 1 && r->front().channel == "b";
  };
  ASSERT_TRUE(eventually(on_b)) << serve.log();
  ASSERT_EQ(testing::run_cli(db, {"--channel", "b", "import", "--lib", "agt", v3}, log("import-b3")), 0)
      << codestore::testing::read_text(log("import-b3"));
  EXPECT_TRUE(node->read_until("v=3", 30s)) << serve.log();
  auto g = (*store)->channel_generation("b");
  ASSERT_TRUE(g);
  std::vector<NodeUpgrade> ups;
  ASSERT_TRUE(eventually([&] {
    auto r = (*store)->node_upgrades(name);
    ups = r ? *r : std::vector<NodeUpgrade>{};
    return !ups.empty() && ups.front().to_generation == g->number;
  })) << serve.log();
  EXPECT_EQ(ups.front().channel, "b");
  EXPECT_EQ(ups.front().outcome, "applied") << ups.front().report;
  node.reset();
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

// Issue 15's faults: the server dies (SIGKILL: no goodbye) while a plan is in flight on the
// node, here held in its suspend step by a gen_server busy in a call. The node does not depend
// on the server to finish: the plan completes once the call returns, the process is resumed
// (same pid, the new code's state), and the report, queued while no server was there, reaches
// the next serve and the store's history. The connection dropping mid-plan is the same event
// seen from the node.
TEST(ErlAgentTest, APlanInFlightWhenTheServerDiesFinishesAndIsReportedToTheNextServer) {
  if (find_program("erl").empty()) GTEST_SKIP() << "erl is not installed: no node to boot";
  testing::node_environment();
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  const std::string release = dir.path().string() + "/release-the-call";
  auto log = [&](const std::string& name) { return dir.path().string() + "/" + name + ".log"; };
  // A gen_server whose `hold` call returns only once a file exists: while it holds, the
  // applier's sys:suspend waits (within the plan's deadline), so the plan is mid-flight for as
  // long as the test wants.
  auto busy = [&](int v) {
    const std::string V = std::to_string(v);
    return compile(
        dir.path(), "busy", v,
        "-module(busy).\n-behaviour(gen_server).\n-vsn(\"" + V +
            "\").\n"
            "-export([start/0, v/0, hold/1, init/1, handle_call/3, handle_cast/2, code_change/3]).\n"
            "start() -> {ok, _} = gen_server:start({local, busy}, ?MODULE, [], []), ok.\n"
            "v() -> gen_server:call(busy, v, infinity).\n"
            "hold(File) -> gen_server:call(busy, {hold, File}, infinity).\n"
            "init([]) -> {ok, #{vsn => " +
            V +
            "}}.\n"
            "handle_call(v, _From, S) -> {reply, " +
            V +
            ", S};\n"
            "handle_call({hold, File}, _From, S) -> {reply, wait_for(File), S}.\n"
            "handle_cast(_, S) -> {noreply, S}.\n"
            "code_change(_Old, S, _Extra) -> {ok, S#{vsn => " +
            V +
            "}}.\n"
            "wait_for(File) -> case filelib:is_file(File) of true -> ok; "
            "false -> timer:sleep(20), wait_for(File) end.\n");
  };
  const std::string v1 = busy(1), v2 = busy(2);
  ASSERT_TRUE(store_ops::import_otp_libs(db, "/usr/lib/erlang", {"kernel", "stdlib"}));
  ASSERT_TRUE(store_ops::import_file(db, v1, "busy"));

  std::uint16_t port = 0;
  auto serve = start_serve(db, log("serve1"), port);
  ASSERT_TRUE(serve) << codestore::testing::read_text(log("serve1"));

  // busy runs before the agent starts (so the hello lists it); then one process holds it and a
  // loop calls it, printing what it answers, its pid and state, whenever the answer changes.
  auto node =
      start_node("f1",
                 "io:format(\"pid=~p~n\", [whereis(busy)]), "
                 "io:format(\"name=~s~n\", [maps:get(name, codestore_agent_conn:hello(undefined, 0))]), "
                 "io:format(\"v=~p~n\", [busy:v()]), "
                 "spawn(fun() -> busy:hold(\"" +
                     release +
                     "\") end), timer:sleep(200), io:format(\"holding~n\"), "
                     "Loop = fun L(Last) -> V = busy:v(), _ = V =:= Last orelse "
                     "io:format(\"v=~p pid=~p state=~p~n\", [V, whereis(busy), sys:get_state(busy)]), "
                     "timer:sleep(20), L(V) end, Loop(1).",
                 log("node"),
                 {"-pa", "/usr/lib/erlang/lib/busy/ebin", "-pa", "/usr/lib/erlang/lib/codestore_agent/ebin",
                  "-eval", "busy:start()", "-s", "codestore_agent"});
  auto pid = node->read_until("pid=", 60s);
  ASSERT_TRUE(pid) << "the node did not boot\n" << serve->log();
  auto name_line = node->read_until("name=", 20s);
  ASSERT_TRUE(name_line);
  const std::string name = name_line->substr(5);
  ASSERT_TRUE(node->read_until("v=1", 20s));
  ASSERT_TRUE(node->read_until("holding", 20s));
  auto store = Store::open(db);
  ASSERT_TRUE(store);
  auto known = [&] {
    auto r = (*store)->nodes({.name = name});
    return r && r->size() == 1;
  };
  ASSERT_TRUE(eventually(known)) << serve->log();

  ASSERT_EQ(testing::run_cli(db, {"import", "--lib", "busy", v2}, log("import2")), 0)
      << codestore::testing::read_text(log("import2"));
  auto g2 = (*store)->channel_generation("default");
  ASSERT_TRUE(g2);
  const std::string sent = "(" + name + "): sent generation " + std::to_string(g2->number);
  ASSERT_TRUE(eventually([&] { return serve->log().find(sent) != std::string::npos; })) << serve->log();
  // The server dies with the plan on the node, which is still held before its switch.
  std::this_thread::sleep_for(200ms);
  serve->kill();
  EXPECT_FALSE(node->read_until("v=2", 500ms)) << "the plan was not in flight when the server died";

  serve = start_serve(db, log("serve2"), port);
  ASSERT_TRUE(serve) << codestore::testing::read_text(log("serve2"));
  ASSERT_TRUE(eventually([&] { return count(serve->log(), "(" + name + "): welcome") == 1; }))
      << serve->log();
  // The call returns: the applier's suspend goes through, the switch, code_change, resume.
  codestore::testing::write_file(release, "");
  auto after = node->read_until("v=2", 30s);
  ASSERT_TRUE(after) << serve->log();
  // The same process, resumed, in the new code's state.
  EXPECT_NE(after->find("pid=" + pid->substr(4) + " "), std::string::npos) << *after << " vs " << *pid;
  EXPECT_NE(after->find("vsn => 2"), std::string::npos) << *after;

  // The history: the plan's report, sent to the second server, says applied; nothing failed.
  std::vector<NodeUpgrade> ups;
  auto applied = [&] {
    auto r = (*store)->node_upgrades(name);
    ups = r ? *r : std::vector<NodeUpgrade>{};
    return std::any_of(ups.begin(), ups.end(), [&](const NodeUpgrade& u) {
      return u.to_generation == g2->number && u.outcome == "applied";
    });
  };
  ASSERT_TRUE(eventually(applied)) << serve->log();
  for (const NodeUpgrade& u : ups)
    EXPECT_TRUE(u.outcome == "applied" || u.outcome == "already") << u.outcome << ": " << u.report;
  // No mixed code: the node's busy is v2's, and the store says the node is not behind.
  auto versions = (*store)->versions("busy");
  ASSERT_TRUE(versions);
  NodeInfo n;
  auto current = [&] {
    auto r = (*store)->nodes({.with_modules = true, .name = name});
    if (!r || r->size() != 1) return false;
    n = r->front();
    for (const NodeModule& m : n.modules)
      if (m.module == "busy") return m.md5 == versions->back().md5 && !n.behind;
    return false;
  };
  EXPECT_TRUE(eventually(current, 10s)) << n.runs_generation << " " << n.channel_generation;
  node.reset();
  EXPECT_EQ(serve->stop(), 0) << serve->log();
}

}  // namespace
}  // namespace codestore::server

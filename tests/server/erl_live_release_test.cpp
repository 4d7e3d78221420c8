// Issue 15's first "Done when", end to end through the product: a real rebar3 release X runs on a
// node booted by `codestore serve` (boot-server protocol, embedded mode as relx's start script
// runs it, its local root empty), with codestore_agent listed in the release; a client process
// on the node calls X's gen_server about 1,000 times a second. `codestore import` of X' and
// `codestore deploy` (X''s gen_server state gains a field, its code_change/3 converts it)
// upgrade the running node through the agent: no failed call, the gen_server's pid unchanged
// (nothing killed), sys:get_state in the new shape, every loaded module's MD5 the store's for
// the application version its path names, and the store's report for the node `applied`.
// `codestore channel rollback` returns it (code_change({down, "1"}, ...)), again with no failed
// call, through a serve restarted between the two: the rollback moves the application's version
// back (its .app and code path, read through the node's boot-server loader), which the agent
// makes the loader do at once, not after OTP's 60 s loader idle timeout. And `codestore plan
// myrel@0.1.0 myrel@0.2.0 --appup` on these two releases is accepted by systools:make_relup.
//
// How the release gets the agent: rebar3 knows only its deps and OTP's libraries, and the agent
// is neither. relx's `lib_dirs` names where more applications are: here a directory laid out as
// `cmake --install` lays out the agent (<dir>/codestore_agent-<vsn>/ebin), so the release lists
// codestore_agent and its boot script starts it (docs/agent-protocol.md, "Where the agent
// comes from").
//
// One test case (gtest_discover_tests makes each its own process): the two rebar3 builds run
// at once, then one node. Skipped when erl or rebar3 is not installed. UDP port 4368 is fixed
// in the client: RESOURCE_LOCK boot_server_port.
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>
#include <sstream>

#include "erl_node.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/real_releases.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_text;
using codestore::testing::run_checked;
using codestore::testing::TempDir;
using codestore::testing::write_file;
using testing::check_loaded;
using testing::dump_logs;
using testing::find_program;
using testing::LoadedCheck;
using testing::ServeProcess;
using testing::start_release_node;
using namespace std::chrono_literals;

const std::string kAgentVsn = CODESTORE_VERSION_TEXT;

// myrel_server in X ("1": state {state, Count}) and in X' ("2": {state, Count, LastCaller}). X''s
// code_change/3 converts both ways, and only when given exactly what release_handler passes
// (OldVsn "1" up, {down, "1"} down, Extra the application's versions): anything else crashes
// the gen_server, and the client sees it. X's keeps the state as it is (were it called on the
// way down, which release_handler never does, X's code would get X''s state: the calls fail).
const char* const kServerV1 = R"(-module(myrel_server).
-behaviour(gen_server).
-vsn("1").
-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, code_change/3]).
-record(state, {count = 0}).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
init([]) -> {ok, #state{}}.
handle_call(bump, _From, S = #state{count = C}) -> {reply, C + 1, S#state{count = C + 1}}.
handle_cast(_Msg, S) -> {noreply, S}.
code_change(_OldVsn, S, _Extra) -> {ok, S}.
)";
const char* const kServerV2 = R"(-module(myrel_server).
-behaviour(gen_server).
-vsn("2").
-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, code_change/3]).
-record(state, {count = 0, last}).
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).
init([]) -> {ok, #state{}}.
handle_call(bump, {Pid, _}, S = #state{count = C}) -> {reply, C + 1, S#state{count = C + 1, last = Pid}}.
handle_cast(_Msg, S) -> {noreply, S}.
code_change({down, "1"}, #state{count = C}, {"0.2.0", "0.1.0"}) -> {ok, {state, C}};
code_change("1", {state, C}, {"0.1.0", "0.2.0"}) -> {ok, #state{count = C}}.
)";

// The rebar3 project of release myrel at `vsn` in `dir`/myrel (the application myrel: its
// application callback, a supervisor, myrel_server), built with `rebar3 release` (relx, not in
// dev mode: lib/ holds copies) offline. Returns the release's directory.
fs::path build_myrel(const fs::path& dir, const std::string& vsn, const std::string& server,
                     const fs::path& agent_lib) {
  const fs::path p = dir / "myrel";
  write_file(p / "rebar.config",
             "{erl_opts, [debug_info]}.\n{deps, []}.\n"
             "{relx, [{release, {myrel, \"" +
                 vsn +
                 "\"}, [myrel, sasl, codestore_agent]},\n"
                 "        {lib_dirs, [\"" +
                 agent_lib.string() +
                 "\"]},\n"
                 "        {sys_config, \"./config/sys.config\"}, {vm_args, \"./config/vm.args\"},\n"
                 "        {dev_mode, false}, {include_erts, false}, {include_src, false},\n"
                 "        {extended_start_script, true}]}.\n");
  write_file(p / "config" / "sys.config", "[{myrel, []}].\n");
  write_file(p / "config" / "vm.args", "-sname myrel\n-setcookie myrel\n");
  write_file(
      p / "src" / "myrel.app.src",
      "{application, myrel,\n [{description, \"a gen_server whose state survives upgrades\"},\n  {vsn, \"" +
          vsn +
          "\"},\n  {registered, [myrel_sup, myrel_server]},\n  {mod, {myrel_app, []}},\n"
          "  {applications, [kernel, stdlib, sasl]},\n  {env, []},\n  {modules, []}]}.\n");
  write_file(p / "src" / "myrel_app.erl",
             "-module(myrel_app).\n-behaviour(application).\n-export([start/2, stop/1]).\n"
             "start(_Type, _Args) -> myrel_sup:start_link().\nstop(_State) -> ok.\n");
  write_file(p / "src" / "myrel_sup.erl",
             "-module(myrel_sup).\n-behaviour(supervisor).\n-export([start_link/0, init/1]).\n"
             "start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).\n"
             "init([]) ->\n    {ok, {#{strategy => one_for_one, intensity => 1, period => 5},\n"
             "          [#{id => myrel_server, start => {myrel_server, start_link, []}}]}}.\n");
  write_file(p / "src" / "myrel_server.erl", server);
  run_checked("rebar3 release", p, dir / "home");
  return p / "_build" / "default" / "rel" / "myrel";
}

class ErlLiveReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty() || find_program("rebar3").empty())
      GTEST_SKIP() << "erl or rebar3 is not installed (apt-get install erlang-nox rebar3)";
    testing::node_environment();
  }
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 8000);
  }
  std::string log(const std::string& name) const { return dir_.path().string() + "/" + name + ".log"; }
  // `codestore --db DB ARGS...`: its output, and a failure naming it when it exits non-zero.
  std::string cli(const std::vector<std::string>& args, const std::string& name) {
    std::vector<std::string> argv = {CODESTORE_BINARY, "--db", db_};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::Subprocess p(argv, log(name), false);
    std::string out = p.read_rest(60s);
    const auto st = p.wait(60s);
    EXPECT_TRUE(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << ::testing::PrintToString(args) << "\n"
                                                               << out << read_text(log(name));
    return out;
  }

  TempDir dir_;
  std::string db_;
};

// The node's script (-eval, run by erl_eval once the boot script started the release): it says
// who it is, starts the client, and after each "go" on stdin says where it is (KEY=VALUE lines).
std::string node_script(const std::string& root) {
  return R"(
Out = fun(K, F, A) -> io:format("~s=" ++ F ++ "~n", [K | A]) end,
Client = fun Loop(Ok, Failed, First) ->
    receive
        {stop, From} -> From ! {client, Ok, Failed, First};
        {count, From} -> From ! {count, Ok}, Loop(Ok, Failed, First)
    after 1 ->
        case catch gen_server:call(myrel_server, bump, 10000) of
            N when is_integer(N) -> Loop(Ok + 1, Failed, First);
            Other when First =:= none -> Loop(Ok, Failed + 1, Other);
            _ -> Loop(Ok, Failed + 1, First)
        end
    end
end,
Count = fun(C) -> C ! {count, self()}, receive {count, N} -> N end end,
Welcomed = fun W(0) -> false;
               W(N) -> case codestore_agent:status() of
                           #{welcomed := true} -> true;
                           _ -> timer:sleep(50), W(N - 1)
                       end
           end,
Where = fun(Tag, C) ->
    Out(Tag ++ "_pid", "~p", [whereis(myrel_server)]),
    Out(Tag ++ "_state", "~0p", [sys:get_state(myrel_server)]),
    Out(Tag ++ "_vsn", "~0p", [application:get_key(myrel, vsn)]),
    Out(Tag ++ "_calls", "~p", [Count(C)]),
    )" + testing::loaded_line(root) +
         R"(ok
end,
Out("pid", "~p", [whereis(myrel_server)]),
Out("state", "~0p", [sys:get_state(myrel_server)]),
Out("mode", "~p", [code:get_mode()]),
Out("welcomed", "~p", [Welcomed(600)]),
Out("name", "~s", [maps:get(name, codestore_agent_conn:hello(undefined, 0))]),
C = spawn(fun() -> Client(0, 0, none) end),
Out("calls", "~p", [Count(C)]),
io:get_line(""),
Where("up", C),
io:get_line(""),
Where("down", C),
C ! {stop, self()},
receive {client, Ok, Failed, First} ->
    Out("client_ok", "~p", [Ok]), Out("client_failed", "~p", [Failed]), Out("client_first_failure", "~0p", [First])
end,
halt().
)";
}

// A string as the report's text has it (a list of characters, shown as ~tp shows it): "1".
std::string q(const std::string& s) {
  return '"' + s + '"';
}

std::size_t commas(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), ','));
}

TEST_F(ErlLiveReleaseTest, ARunningReleaseFollowsItsChannelUpAndBackWithNoFailedCall) {
  const fs::path& d = dir_.path();
  db_ = (d / "store.db").string();
  // The agent where `cmake --install` puts it: <libdir>/codestore/lib/codestore_agent-<vsn>/ebin.
  const fs::path agent_lib = d / "codestore-lib";
  fs::create_directories(agent_lib / ("codestore_agent-" + kAgentVsn) / "ebin");
  for (const auto& e : fs::directory_iterator(CODESTORE_AGENT_EBIN))
    fs::copy_file(e.path(), agent_lib / ("codestore_agent-" + kAgentVsn) / "ebin" / e.path().filename());

  // X and X', built by rebar3 at once.
  fs::create_directories(d / "x");
  fs::create_directories(d / "x2");
  auto fx = std::async(std::launch::async, build_myrel, d / "x", "0.1.0", kServerV1, agent_lib);
  auto fx2 = std::async(std::launch::async, build_myrel, d / "x2", "0.2.0", kServerV2, agent_lib);
  fs::path x, x2;
  try {
    x = fx.get();
    x2 = fx2.get();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  ASSERT_TRUE(fs::is_directory(x / "lib" / ("codestore_agent-" + kAgentVsn) / "ebin")) << x;

  // X imported into channel prod (a generation of it); the node's root: an empty directory.
  cli({"init"}, "init");
  cli({"--channel", "prod", "import", x.string()}, "import-x");
  const std::string root = (d / "node-root").string();
  fs::create_directories(root);
  auto serve = std::make_unique<ServeProcess>(
      db_, std::vector<std::string>{"--port", "0", "--client-root", root, "--channel", "prod"}, log("serve"));
  ASSERT_NE(serve->wait_ready(), 0) << serve->log();

  // The release's own boot: relx's start script runs `-mode embedded -boot releases/VSN/start
  // -config releases/VSN/sys`.
  auto node = start_release_node(
      root, "live1", node_script(root), log("node"),
      {"-mode", "embedded", "-boot", root + "/releases/0.1.0/start", "-config", root + "/releases/0.1.0/sys"},
      {"127.0.0.1"}, {}, d.string());
  const std::string pid = node->read_until("pid=", 120s).value_or("the node did not boot");
  ASSERT_EQ(pid.rfind("pid=<", 0), 0u) << pid;
  EXPECT_EQ(node->read_until("state=", 20s).value_or("no state"), "state={state,0}");
  EXPECT_EQ(node->read_until("mode=", 20s).value_or("no mode"), "mode=embedded");
  ASSERT_EQ(node->read_until("welcomed=", 60s).value_or("no welcome"), "welcomed=true") << serve->log();
  const std::string name = node->read_until("name=", 20s).value_or("name=").substr(5);
  ASSERT_FALSE(name.empty());
  ASSERT_TRUE(node->read_until("calls=", 20s));

  auto store = Store::open(db_);
  ASSERT_TRUE(store) << store.error().to_string();
  std::vector<NodeUpgrade> ups;
  auto reported = [&](std::int64_t g) {
    // Less than erl_prim_loader's 60 s idle timeout (INET_IDLE_TIMEOUT): a report that waited for
    // it would be a loader left on a dead connection.
    for (auto end = std::chrono::steady_clock::now() + 40s; std::chrono::steady_clock::now() < end;) {
      auto r = (*store)->node_upgrades(name);
      ups = r ? *r : std::vector<NodeUpgrade>{};
      if (!ups.empty() && ups.front().to_generation == g) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  auto md5_of = [&](const std::string& vsn) {
    auto info = (*store)->app_show("myrel", vsn);
    if (!info) return info.error().to_string();
    for (const ContentModule& m : info->modules)
      if (m.module == "myrel_server") return m.md5;
    return std::string("no myrel_server in myrel@") + vsn;
  };
  // What the node says after a plan: the same gen_server, the state's shape, the application's
  // vsn, the client still calling, and every loaded module the store's.
  auto expect_at = [&](const std::string& tag, const std::string& vsn, std::size_t state_commas,
                       std::size_t calls_before) -> std::size_t {
    SCOPED_TRACE(tag + " at " + vsn);
    EXPECT_EQ(node->read_until(tag + "_pid=", 30s).value_or("no pid"), tag + "_" + pid);
    const std::string state = node->read_until(tag + "_state=", 20s).value_or("no state");
    EXPECT_EQ(state.rfind(tag + "_state={state,", 0), 0u) << state;
    EXPECT_EQ(commas(state), state_commas) << state;
    EXPECT_EQ(node->read_until(tag + "_vsn=", 20s).value_or("no vsn"), tag + "_vsn={ok,\"" + vsn + "\"}");
    const std::string calls = node->read_until(tag + "_calls=", 20s).value_or("x=0");
    const std::size_t n = std::stoul(calls.substr(calls.find('=') + 1));
    EXPECT_GT(n, calls_before) << "the client stopped calling";
    const std::string list = node->read_until("loaded=", 20s).value_or("loaded=").substr(7);
    const LoadedCheck loaded = check_loaded(db_, root, "myrel", list);
    EXPECT_TRUE(loaded.problems.empty()) << ::testing::PrintToString(loaded.problems);
    EXPECT_GE(loaded.checked, 50u) << list;
    EXPECT_EQ(loaded.by_dir.count("myrel-" + vsn), 1u) << list;
    EXPECT_EQ(loaded.by_dir.count("codestore_agent-" + kAgentVsn), 1u) << list;
    // Every module of myrel the node has loaded is the one `codestore app show myrel@VSN`
    // prints, by MD5: myrel_server from the new path; myrel_app and myrel_sup, the same code in
    // both versions, where the node first loaded them (release_handler leaves them there too).
    const std::string shown = cli({"app", "show", "myrel@" + vsn}, "show-" + vsn);
    std::size_t mine = 0;
    std::stringstream entries(list);
    for (std::string e; std::getline(entries, e, ';');) {
      if (e.find(root + "/lib/myrel-") == std::string::npos) continue;
      ++mine;
      const std::string module = e.substr(0, e.find(' ')), md5 = e.substr(e.rfind(' ') + 1);
      EXPECT_NE(shown.find(md5), std::string::npos) << module << " " << md5 << " not in\n" << shown;
    }
    EXPECT_EQ(mine, 3u) << list;
    EXPECT_NE(
        list.find("myrel_server " + root + "/lib/myrel-" + vsn + "/ebin/myrel_server.beam " + md5_of(vsn)),
        std::string::npos)
        << list;
    return n;
  };
  auto expect_report = [&](const std::string& vsn, const std::string& code_change) {
    SCOPED_TRACE("report for " + vsn);
    const NodeUpgrade& u = ups.front();
    EXPECT_EQ(u.outcome, "applied") << u.report;
    EXPECT_EQ(u.channel, "prod");
    EXPECT_EQ(u.suspended, 1u) << u.report;
    EXPECT_EQ(u.killed, 0u) << u.report;
    EXPECT_EQ(u.blocking, 0u) << u.report;
    bool loaded = false;
    for (const NodeUpgradeModule& m : u.modules)
      loaded |= m.module == "myrel_server" && m.outcome == "loaded" && m.detail == md5_of(vsn);
    EXPECT_TRUE(loaded) << u.report;
    EXPECT_NE(u.report.find(code_change), std::string::npos) << u.report;
    // The node as the store knows it now: at that generation, running that release, not behind.
    auto nodes = (*store)->nodes({.name = name});
    ASSERT_TRUE(nodes) << nodes.error().to_string();
    ASSERT_EQ(nodes->size(), 1u);
    const NodeInfo& n = nodes->front();
    EXPECT_EQ(n.generation, u.to_generation);
    EXPECT_EQ(n.release.name + "@" + n.release.vsn, "myrel@" + vsn);
    EXPECT_FALSE(n.behind) << "runs " << n.runs_generation << ", channel at " << n.channel_generation;
  };

  // X' imported, then deployed to prod: the agent applies the plan under the client's calls.
  cli({"import", x2.string()}, "import-x2");
  cli({"--channel", "prod", "deploy", "myrel@0.2.0"}, "deploy-x2");
  auto g2 = (*store)->channel_generation("prod");
  ASSERT_TRUE(g2) << g2.error().to_string();
  ASSERT_TRUE(reported(g2->number)) << serve->log();
  // code_change got what release_handler passes: OldVsn the old module's -vsn, Extra the
  // application's versions.
  expect_report("0.2.0", "code_change => [#{extra => {" + q("0.1.0") + "," + q("0.2.0") +
                             "},module => myrel_server,old_vsn => " + q("1") + ",pid => " + pid.substr(4) +
                             ",result => ok}]");
  ASSERT_TRUE(node->write("go\n"));
  const std::size_t up_calls = expect_at("up", "0.2.0", 2, 0);

  // serve restarts (same agent port, a new boot port): the node's loader connection to the old
  // one is dead, and OTP 25's erl_prim_loader is not told; the agent, which monitors the
  // loader's port, tells it, so that it connects again at its next request
  // (codestore_agent_conn:watch_loader/1).
  const std::uint16_t agent_port = testing::agent_port(*serve);
  ASSERT_NE(agent_port, 0) << serve->log();
  ASSERT_EQ(serve->stop(), 0) << serve->log();
  serve = std::make_unique<ServeProcess>(
      db_,
      std::vector<std::string>{"--port", "0", "--client-root", root, "--channel", "prod", "--agent-port",
                               std::to_string(agent_port)},
      log("serve2"));
  ASSERT_NE(serve->wait_ready(), 0) << serve->log();
  ASSERT_TRUE(testing::eventually(
      [&] { return serve->log().find("(" + name + "): welcome") != std::string::npos; }, 30s))
      << serve->log();

  // Rolled back: the same node returns to X, X''s code converting the state before the switch.
  cli({"channel", "rollback", "prod"}, "rollback");
  auto g3 = (*store)->channel_generation("prod");
  ASSERT_TRUE(g3) << g3.error().to_string();
  ASSERT_GT(g3->number, g2->number);
  ASSERT_TRUE(reported(g3->number)) << serve->log();
  expect_report("0.1.0", "code_change => [#{extra => {" + q("0.2.0") + "," + q("0.1.0") +
                             "},module => myrel_server,old_vsn => {down," + q("1") + "},pid => " +
                             pid.substr(4) + ",result => ok}]");
  ASSERT_TRUE(node->write("go\n"));
  expect_at("down", "0.1.0", 1, up_calls);

  const std::string ok = node->read_until("client_ok=", 20s).value_or("client_ok=0");
  EXPECT_GT(std::stoul(ok.substr(10)), 0u) << ok;
  const std::string failed = node->read_until("client_failed=", 20s).value_or("no client");
  EXPECT_EQ(failed, "client_failed=0") << node->read_until("client_first_failure=", 5s).value_or("");
  if (!node->wait(20s)) {
    node->kill_group();  // a node whose server is gone ignores SIGTERM
    ADD_FAILURE() << "the node did not halt";
  }
  // `codestore nodes` shows the node on prod at the rollback's generation.
  const std::string nodes = cli({"nodes", "--channel", "prod"}, "nodes");
  EXPECT_NE(nodes.find(name), std::string::npos) << nodes;
  EXPECT_EQ(serve->stop(), 0);

  // The same two releases as an operator's .appup: `codestore plan --appup`, written where
  // systools:make_relup reads it (X''s ebin), accepted, its relup with code_change both ways.
  const std::string appup = cli({"plan", "myrel@0.1.0", "myrel@0.2.0", "--appup"}, "appup");
  ASSERT_EQ(appup.rfind("%% lib/myrel-0.2.0/ebin/myrel.appup\n", 0), 0u) << appup;
  write_file(x2 / "lib" / "myrel-0.2.0" / "ebin" / "myrel.appup", appup);
  const fs::path rel1 = x / "releases" / "0.1.0" / "myrel", rel2 = x2 / "releases" / "0.2.0" / "myrel";
  std::string relup;
  try {
    relup = run_checked("erl -noshell -eval '{ok, Relup, _, []} = systools:make_relup(\"" + rel2.string() +
                            "\", [\"" + rel1.string() + "\"], [\"" + rel1.string() + "\"], [{path, [\"" +
                            x2.string() + "/lib/*/ebin\", \"" + x.string() + "/lib/*/ebin\"]}, {outdir, \"" +
                            d.string() +
                            "\"}, silent, warnings_as_errors]), io:format(\"~0p~n\", [Relup]), halt().'",
                        d, d / "home");
  } catch (const std::exception& e) {
    FAIL() << e.what() << "\n" << appup;
  }
  EXPECT_NE(relup.find("{code_change,up,[{myrel_server,{\"0.1.0\",\"0.2.0\"}}]}"), std::string::npos)
      << relup;
  EXPECT_NE(relup.find("{code_change,down,[{myrel_server,{\"0.2.0\",\"0.1.0\"}}]}"), std::string::npos)
      << relup;
}

}  // namespace
}  // namespace codestore::server

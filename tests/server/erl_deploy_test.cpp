// `codestore deploy --wait` and canary rollouts with real nodes (issue 15 items 4 and 5): nodes
// booted by `codestore serve` from a systools release in the store (kernel, stdlib and `agtapp`:
// agt, whose v() says its version, and prb, a health probe: ok() -> ok, bad() -> error, here()
// -> error on a node started with -prb_fail, else ok), each
// running the agent served by serve; the CLI run as an operator runs it, in another process.
// Each node answers a line on stdin with the MD5 of its loaded agt ("md5=HEX"), so what it runs
// is asked of the node itself. One serve at a time (RESOURCE_LOCK boot_server_port).
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "debian_release.h"
#include "erl_node.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

using codestore::testing::TempDir;
using testing::find_program;
using testing::ServeProcess;
using testing::start_node;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The releases rel@1 and rel@2, built once for the suite (erlc, systools).
struct Releases {
  TempDir dir;
  std::string rel1, rel2, error;
};
Releases* releases = nullptr;

std::string build_app(const fs::path& dir, int v) {
  const fs::path app = dir / ("agtapp-" + std::to_string(v));
  fs::create_directories(app / "ebin");
  fs::create_directories(app / "src");
  codestore::testing::write_file((app / "src/agt.erl").string(),
                                 "-module(agt).\n-export([v/0]).\nv() -> " + std::to_string(v) + ".\n");
  codestore::testing::write_file(
      (app / "src/prb.erl").string(),
      "-module(prb).\n-export([ok/0, bad/0, here/0]).\nok() -> ok.\nbad() -> error.\n"
      "here() -> case init:get_argument(prb_fail) of {ok, _} -> error; _ -> ok end.\n");
  codestore::testing::write_file(
      (app / "ebin/agtapp.app").string(),
      "{application, agtapp, [{description, \"agt\"}, {vsn, \"" + std::to_string(v) +
          "\"}, {modules, [agt, prb]}, {registered, []}, {applications, [kernel, stdlib]}]}.\n");
  testing::Subprocess erlc({find_program("erlc"), "-o", (app / "ebin").string(),
                            (app / "src/agt.erl").string(), (app / "src/prb.erl").string()},
                           (dir / "erlc.log").string(), false);
  erlc.read_rest(60s);
  erlc.wait(60s);
  fs::remove_all(app / "src");
  return app.string();
}

class ErlDeployTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (find_program("erl").empty() || find_program("escript").empty()) return;
    releases = new Releases;
    const fs::path d = releases->dir.path();
    for (int v : {1, 2}) {
      const std::string app = build_app(d, v);
      const std::string out = (d / ("rel" + std::to_string(v))).string();
      const std::string err = testing::make_debian_release(out, "rel", std::to_string(v), {"load:" + app},
                                                           (d / "release.log").string());
      if (!err.empty()) releases->error += err;
      (v == 1 ? releases->rel1 : releases->rel2) = out;
    }
  }
  static void TearDownTestSuite() {
    delete releases;
    releases = nullptr;
  }
  void SetUp() override {
    if (releases == nullptr) GTEST_SKIP() << "erl is not installed: no node to boot";
    ASSERT_EQ(releases->error, "");
    testing::node_environment();
    db_ = path("store.db");
    ASSERT_EQ(testing::run_cli(db_, {"init"}, log("init")), 0);
    ASSERT_EQ(testing::run_cli(db_, {"--channel", "default", "import", releases->rel1}, log("import1")), 0)
        << codestore::testing::read_text(log("import1"));
    ASSERT_EQ(testing::run_cli(db_, {"import", releases->rel2}, log("import2")), 0)
        << codestore::testing::read_text(log("import2"));
    auto store = Store::open(db_);
    ASSERT_TRUE(store);
    store_ = std::move(*store);
    auto versions = store_->versions("agt");
    ASSERT_TRUE(versions);
    ASSERT_EQ(versions->size(), 2u);
    md5_v1_ = versions->front().md5;
    md5_v2_ = versions->back().md5;
    base_ = store_->channel_generation("default")->number;
    serve_ = std::make_unique<ServeProcess>(db_, std::vector<std::string>{"--port", "0"}, log("serve"));
    ASSERT_NE(serve_->wait_ready(), 0) << serve_->log();
  }
  void TearDown() override {
    nodes_.clear();
    if (serve_) EXPECT_EQ(serve_->stop(), 0) << serve_->log();
    if (HasFailure()) testing::dump_logs(dir_.path(), 4000);
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string log(const std::string& name) const { return path(name + ".log"); }

  // Boots a node running rel@1 and the agent; waits until the store knows it connected.
  std::string boot(const std::string& id, const std::vector<std::string>& extra = {}) {
    auto node =
        start_node(id,
                   "io:format(\"name=~s~n\", [maps:get(name, codestore_agent_conn:hello(undefined, 0))]), "
                   "spawn(fun R() -> case io:get_line(\"\") of eof -> ok; _ -> io:format(\"md5=~s~n\", "
                   "[[io_lib:format(\"~2.16.0b\", [B]) || <<B>> <= agt:module_info(md5)]]), R() end end), "
                   "receive after infinity -> ok end.",
                   log(id), [&] {
                     std::vector<std::string> args = {"-pa", "/usr/lib/erlang/lib/codestore_agent/ebin", "-s",
                                                      "codestore_agent"};
                     args.insert(args.end(), extra.begin(), extra.end());
                     return args;
                   }());
    auto line = node->read_until("name=", 60s);
    EXPECT_TRUE(line) << "node " << id << " did not boot\n" << serve_->log();
    if (!line) return "";
    const std::string name = line->substr(5);
    nodes_[name] = std::move(node);
    for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;) {
      auto n = store_->nodes({.name = name});
      if (n && n->size() == 1 && n->front().agent_connected) return name;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << name << " never connected\n" << serve_->log();
    return name;
  }
  // The MD5 of the agt the node runs, asked of the node.
  std::string md5_of(const std::string& name) {
    auto& node = nodes_.at(name);
    if (!node->write("md5\n")) return "no stdin";
    auto line = node->read_until("md5=", 20s);
    return line ? line->substr(4) : "no answer";
  }
  // `codestore ARGS`: its exit code, its stdout in `out`.
  int cli(const std::vector<std::string>& args, std::string& out, const std::string& name) {
    std::vector<std::string> argv = {CODESTORE_BINARY, "--db", db_};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::Subprocess p(argv, log(name), false);
    out = p.read_rest(120s);
    auto st = p.wait(60s);
    out += codestore::testing::read_text(log(name));  // stderr after stdout
    return st && WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
  }

  TempDir dir_;
  std::string db_, md5_v1_, md5_v2_;
  std::int64_t base_ = 0;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ServeProcess> serve_;
  std::map<std::string, std::unique_ptr<testing::Subprocess>> nodes_;
};

TEST_F(ErlDeployTest, DeployWaitsForEachNodesOutcomeAndAFailingProbeReverts) {
  const std::string name = boot("w1");
  ASSERT_FALSE(name.empty());
  ASSERT_EQ(md5_of(name), md5_v1_);
  std::string out;
  ASSERT_EQ(cli({"deploy", "rel@2", "--wait=60", "--deadline", "5000"}, out, "deploy2"), 0) << out;
  EXPECT_NE(out.find(name), std::string::npos) << out;
  EXPECT_NE(out.find("applied"), std::string::npos) << out;
  EXPECT_EQ(md5_of(name), md5_v2_);
  // A rollback whose probe fails: the node applies it, the probe says error, the node goes back.
  const int code =
      cli({"--json", "channel", "rollback", "default", "--probe", "prb:bad", "--wait=60"}, out, "rb");
  EXPECT_EQ(code, 3) << out;
  auto doc = nlohmann::json::parse(out.substr(0, out.find('\n')), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  ASSERT_EQ(doc["wait"]["nodes"].size(), 1u) << out;
  const auto& n = doc["wait"]["nodes"][0];
  EXPECT_EQ(n["node"], name);
  EXPECT_EQ(n["outcome"], "reverted") << out;
  EXPECT_NE(n["reason"].get<std::string>().find("prb"), std::string::npos) << out;
  EXPECT_GT(n["modules"].size(), 0u) << out;
  EXPECT_EQ(md5_of(name), md5_v2_);
}

TEST_F(ErlDeployTest, ACanaryWhoseProbeFailsIsRevertedAndTheOthersNeverChange) {
  const std::string a = boot("c1"), b = boot("c2");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  std::string out;
  EXPECT_EQ(cli({"deploy", "rel@2", "--canary", "1", "--probe", "prb:bad", "--wait=60"}, out, "canary-bad"),
            3)
      << out;
  EXPECT_NE(out.find("dropped"), std::string::npos) << out;
  auto ro = store_->rollouts("default");
  ASSERT_TRUE(ro && ro->size() == 1);
  ASSERT_EQ(ro->front().nodes.size(), 1u);
  const std::string canary = ro->front().nodes[0].node_name, other = canary == a ? b : a;
  EXPECT_EQ(ro->front().nodes[0].outcome, "reverted");
  EXPECT_EQ(ro->front().state, "dropped");
  // The channel stays at its generation; the canary is back at rel@1; the other never changed
  // and was never sent anything.
  EXPECT_EQ(store_->channel_generation("default")->number, base_);
  EXPECT_EQ(md5_of(canary), md5_v1_);
  EXPECT_EQ(md5_of(other), md5_v1_);
  EXPECT_TRUE(store_->node_upgrades(other)->empty());

  // With a probe that passes: the canary applies it, the candidate becomes current, the other follows.
  EXPECT_EQ(cli({"deploy", "rel@2", "--canary", "1", "--probe", "prb:ok", "--wait=60"}, out, "canary-ok"), 0)
      << out;
  EXPECT_NE(out.find("promoted"), std::string::npos) << out;
  EXPECT_EQ(store_->channel_generation("default")->number, base_ + 1);
  EXPECT_EQ(md5_of(a), md5_v2_);
  EXPECT_EQ(md5_of(b), md5_v2_);
  auto ups = store_->node_upgrades(other);
  ASSERT_TRUE(ups && ups->size() == 1);
  EXPECT_EQ(ups->front().outcome, "applied");
}

// Two canaries, the probe failing on one of them only: whichever reports first, the other
// may have applied the candidate, so the drop rolls the candidate back as a new generation with
// the base's content, which takes that canary back to rel@1. Both nodes end on rel@1 and the
// channel on a generation after the candidate, with the base's content.
TEST_F(ErlDeployTest, TwoCanariesOneFailsTheOneThatAppliedIsTakenBack) {
  const std::string a = boot("d1"), b = boot("d2", {"-prb_fail"});
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  std::string out;
  EXPECT_EQ(cli({"deploy", "rel@2", "--canary", "2", "--probe", "prb:here", "--wait=60"}, out, "canary-two"),
            3)
      << out;
  auto ro = store_->rollouts("default");
  ASSERT_TRUE(ro && ro->size() == 1);
  EXPECT_EQ(ro->front().state, "dropped") << ro->front().reason;
  const std::int64_t cand = ro->front().candidate;
  EXPECT_NE(ro->front().reason.find(b + " reverted"), std::string::npos) << ro->front().reason;
  auto g = store_->channel_generation("default");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->number, cand + 1) << out;
  auto same = store_->generation_diff("default", base_, "default", g->number);
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->changed.empty() && same->added.empty() && same->removed.empty());
  // The canary whose probe passed ran the candidate; the channel's new generation takes it back.
  std::string md5_a;
  for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end;) {
    if ((md5_a = md5_of(a)) == md5_v1_) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(md5_a, md5_v1_) << serve_->log();
  EXPECT_EQ(md5_of(b), md5_v1_);
  auto ups = store_->node_upgrades(a);
  ASSERT_TRUE(ups);
  bool back = false;
  for (const NodeUpgrade& u : *ups) back |= u.to_generation == cand + 1 && u.outcome == "applied";
  EXPECT_TRUE(back) << serve_->log();
}

}  // namespace
}  // namespace codestore::server

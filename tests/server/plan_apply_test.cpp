// Issue 15 item 3: an upgrade plan applied on a running node. The application `live` in two
// versions (tests/fixtures/live, whose README.md tables what changes) is built as two releases,
// imported into a store with the CLI, the plan derived both ways by plan_release_upgrade and
// written as plan_term's term_to_binary; a real node (tests/server/plan_apply.escript, with
// agent/src/codestore_agent_apply.erl compiled by erlc) applies it with
// codestore_agent_apply:apply/2 while its processes run, and says what it saw. After each step
// every loaded module's MD5 is checked against the store (erl_node.h's check_loaded).
//
// One test case (gtest_discover_tests makes each its own process): the fixture (erlc of six
// small modules, two systools boot scripts, two imports) is built once, and each part runs its
// own node. No boot server: the node loads from its own root.
#include <codestore/plan_term.h>
#include <codestore/store.h>
#include <codestore/upgrade_plan.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "erl_node.h"
#include "support/files.h"
#include "support/real_releases.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::run_checked;
using codestore::testing::run_command;
using codestore::testing::sh_quote;
using codestore::testing::TempDir;
using codestore::testing::write_file;
using testing::check_loaded;
using testing::find_program;

const std::string kScript = std::string(CODESTORE_SOURCE_DIR) + "/tests/server/plan_apply.escript";
const std::string kSources = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/live";
const std::string kApplier = std::string(CODESTORE_SOURCE_DIR) + "/agent/src/codestore_agent_apply.erl";

class PlanApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty() || find_program("erlc").empty())
      GTEST_SKIP() << "erl is not installed (apt-get install erlang-nox erlang-dev)";
    testing::node_environment();
    const fs::path& d = dir_.path();
    run_checked("escript " + sh_quote(kScript) + " build " + sh_quote(kSources) + " " + sh_quote(d.string()),
                d, d / "home");
    fs::create_directories(d / "agent");
    run_checked("erlc -o " + sh_quote((d / "agent").string()) + " " + sh_quote(kApplier), d, d / "home");
    db_ = (d / "live.db").string();
    ASSERT_EQ(testing::run_cli(db_, {"init"}, (d / "init.log").string()), 0);
    for (const char* rel : {"rel1", "rel2"})
      ASSERT_EQ(testing::run_cli(db_, {"import", (d / rel).string()}, (d / "import.log").string()), 0)
          << codestore::testing::read_text((d / "import.log").string());
    auto store = Store::open(db_);
    ASSERT_TRUE(store) << store.error().to_string();
    const ReleaseId v1{"live", "0.1.0"}, v2{"live", "0.2.0"};
    for (auto [from, to, file] : {std::tuple{v1, v2, "up.plan"}, std::tuple{v2, v1, "down.plan"}}) {
      auto plan = plan_release_upgrade(**store, from, to);
      ASSERT_TRUE(plan) << plan.error().to_string();
      auto term = plan_term(**store, *plan);
      ASSERT_TRUE(term) << term.error().to_string();
      write_file(d / file, etf::encode(*term));
      plans_[file] = std::move(*plan);
    }
  }

  // Runs the node through `scenario`; its KEY=VALUE lines (a key seen twice: the later, and
  // every "loaded" line in order).
  std::map<std::string, std::string> run(const std::string& scenario) {
    const fs::path& d = dir_.path();
    auto r = run_command("escript " + sh_quote(kScript) + " run " + scenario + " " + sh_quote(d.string()) +
                             " " + sh_quote((d / "agent").string()) + " " +
                             sh_quote((d / "up.plan").string()) + " " + sh_quote((d / "down.plan").string()),
                         d, d / "home");
    output_ = r.output;
    loaded_.clear();
    std::map<std::string, std::string> out;
    std::istringstream lines(r.output);
    std::string line;
    while (std::getline(lines, line)) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = line.substr(0, eq);
      if (key == "loaded")
        loaded_.push_back(line.substr(eq + 1));
      else
        out[key] = line.substr(eq + 1);
    }
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(out.count("crash"), 0u) << r.output;
    return out;
  }

  // Every module loaded from the root is the store's (its file names the application version).
  void expect_loaded(std::size_t index, const std::string& app_dir) {
    ASSERT_LT(index, loaded_.size()) << output_;
    const auto check = check_loaded(db_, (dir_.path() / "root").string(), "live", loaded_[index]);
    EXPECT_TRUE(check.problems.empty()) << ::testing::PrintToString(check.problems) << "\n" << output_;
    EXPECT_EQ(check.checked, 3u) << loaded_[index];
    EXPECT_EQ(check.by_dir.count(app_dir), 1u) << loaded_[index];
    EXPECT_EQ(check.by_dir.size(), 1u) << loaded_[index];
  }

  void ThePlanIsWhatTheFixtureSays();
  void UpgradeAndDowngradeUnderLoad();
  void ALingeringProcessBlocksTheSoftPurgeAndFailuresAfterTheSwitchRevert();
  void TheApplierKilledMidPlanLeavesNoSuspendedProcessAndNoMixedCode();

  TempDir dir_;
  std::string db_;
  std::map<std::string, UpgradePlan> plans_;
  std::vector<std::string> loaded_;
  std::string output_;
};

void PlanApplyTest::ThePlanIsWhatTheFixtureSays() {
  const UpgradePlan& up = plans_.at("up.plan");
  ASSERT_EQ(up.modules.size(), 3u);
  EXPECT_FALSE(up.needs_restart());
  std::map<std::string, const PlanModule*> by;
  for (const auto& m : up.modules) by[m.module] = &m;
  EXPECT_EQ(by.at("live_srv")->update_kind, "advanced");
  EXPECT_EQ(by.at("live_lib")->instruction, "load_module");
  EXPECT_EQ(by.at("live_loop")->instruction, "load_module");
  // The term the node reads: decode(encode) gives it back, with each side's object code.
  auto store = Store::open(db_);
  ASSERT_TRUE(store);
  auto term = plan_term(**store, up);
  ASSERT_TRUE(term);
  auto back = etf::decode(etf::encode(*term));
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back == *term);
  // A node that has loaded only the applier decodes both plans with binary_to_term(B, [safe]):
  // no atom it has not seen (the modules' names are binaries).
  const fs::path& d = dir_.path();
  const std::string eval =
      "{module, _} = code:ensure_loaded(codestore_agent_apply), "
      "[begin {ok, B} = file:read_file(F), #{format := 1} = binary_to_term(B, [safe]) end "
      "|| F <- [\"" +
      (d / "up.plan").string() + "\", \"" + (d / "down.plan").string() +
      "\"]], "
      "io:format(\"safe~n\"), halt().";
  auto r = run_command("erl -noshell -pa " + sh_quote((d / "agent").string()) + " -eval " + sh_quote(eval), d,
                       d / "home");
  EXPECT_EQ(r.output, "safe\n");
}

// A gen_server called about 1,000 times a second: up and down, no call fails, no process is
// killed, the state has the new shape and back, code_change got OldVsn and Extra both ways.
void PlanApplyTest::UpgradeAndDowngradeUnderLoad() {
  auto out = run("load");
  EXPECT_EQ(out["md5s"], "[true]") << output_;
  EXPECT_EQ(out["up_outcome"], "{ok,applied}") << output_;
  EXPECT_EQ(out["up_suspended"], "[true]") << output_;
  EXPECT_EQ(out["up_code_change"], R"([{live_srv,"1",{"0.1.0","0.2.0"},ok}])") << output_;
  EXPECT_EQ(out["state_up"].rfind("{state,", 0), 0u) << output_;
  EXPECT_EQ(std::count(out["state_up"].begin(), out["state_up"].end(), ','), 2) << out["state_up"];
  EXPECT_EQ(out["down_outcome"], "{ok,applied}") << output_;
  EXPECT_EQ(out["down_code_change"], R"([{live_srv,{down,"1"},{"0.2.0","0.1.0"},ok}])") << output_;
  EXPECT_EQ(std::count(out["state_down"].begin(), out["state_down"].end(), ','), 1) << out["state_down"];
  EXPECT_EQ(out["client_failed"], "0") << out["client_first_failure"];
  EXPECT_GE(std::stoi(out["client_ok"]), 600) << output_;
  EXPECT_EQ(out["same_pid"], "true");
  ASSERT_EQ(loaded_.size(), 2u) << output_;
  expect_loaded(0, "live-0.2.0");
  expect_loaded(1, "live-0.1.0");
}

// A process busy past the deadline: the plan stops before the switch. The three-version rule: after the
// upgrade a process lingers in live_loop's old code; the downgrade's soft purge refuses (nothing changes,
// nothing stays suspended) and names it; with brutal it is killed and the report says so. Then the two
// failures after the switch: a health probe (the reverse plan) and a code_change (the old code back inside
// the critical section).
void PlanApplyTest::ALingeringProcessBlocksTheSoftPurgeAndFailuresAfterTheSwitchRevert() {
  auto out = run("linger");
  EXPECT_EQ(out["restart_refused"], "{refused,needs_restart}") << output_;
  EXPECT_EQ(out["down_at_from"], "already") << output_;  // the node already runs its TO
  // Bounded in time: a process that cannot be suspended within the deadline stops the plan
  // before the switch; it is resumed once it answers.
  EXPECT_EQ(out["busy_outcome"], "aborted") << output_;
  EXPECT_EQ(out["busy_reason"], "suspend_failed") << output_;
  EXPECT_EQ(out["busy_status"], "running") << output_;
  EXPECT_EQ(out["busy_where"], "from") << output_;
  EXPECT_EQ(out["up_outcome"], "{ok,applied}") << output_;
  EXPECT_EQ(out["up_lingering"], "[{true,{live_loop,loop,0}}]") << output_;
  EXPECT_EQ(out["ping_up"], "1");  // still the old code
  EXPECT_EQ(out["soft_outcome"], "refused") << output_;
  EXPECT_EQ(out["soft_reason"], "{old_processes,[live_loop]}") << output_;
  EXPECT_EQ(out["soft_blocking"], "[{true,{live_loop,loop,0}}]") << output_;
  EXPECT_EQ(out["soft_suspended"], "[]") << output_;
  EXPECT_EQ(out["brutal_outcome"], "{ok,applied}") << output_;
  EXPECT_EQ(out["brutal_killed"], "[{true,{live_loop,loop,0}}]") << output_;
  EXPECT_EQ(out["loop_alive"], "false");
  EXPECT_EQ(std::count(out["state_down"].begin(), out["state_down"].end(), ','), 1) << out["state_down"];
  // A failing health probe: the reverse plan applied, the node back at 0.1.0.
  EXPECT_EQ(out["probe_outcome"], "reverted") << output_;
  EXPECT_EQ(out["probe_reason"], "{probe,{erlang,is_atom,[1],false}}") << output_;
  EXPECT_EQ(out["probe_reverse"], "applied") << output_;
  EXPECT_EQ(std::count(out["state_probe"].begin(), out["state_probe"].end(), ','), 1) << out["state_probe"];
  // A failing code_change after the switch: the old code back before the resume.
  EXPECT_EQ(out["cc_outcome"], "reverted") << output_;
  EXPECT_EQ(out["cc_back"], "{reverted,ok}") << output_;
  EXPECT_EQ(out["cc_suspended"], "1") << output_;
  EXPECT_EQ(std::count(out["state_cc"].begin(), out["state_cc"].end(), ','), 1) << out["state_cc"];
  EXPECT_EQ(out["answers"].rfind("{v1,", 0), 0u) << out["answers"];
  ASSERT_EQ(loaded_.size(), 4u) << output_;
  expect_loaded(0, "live-0.2.0");  // the refused downgrade changed nothing
  expect_loaded(1, "live-0.1.0");
  expect_loaded(2, "live-0.1.0");
  expect_loaded(3, "live-0.1.0");
}

// The process applying the plan killed at points spread over the plan (a twentieth of a whole apply
// apart, until five rounds ended on each side of the switch, at most 100): every time the
// suspended gen_server is resumed and answers, its state's shape is its code's, the node's code
// is all of one side (MD5s), no call fails and nothing is killed.
void PlanApplyTest::TheApplierKilledMidPlanLeavesNoSuspendedProcessAndNoMixedCode() {
  auto out = run("kill");
  const std::string rounds = out["kill_rounds"];
  EXPECT_EQ(out["kill_mixed"], "0") << output_;
  EXPECT_EQ(out["kill_running"], rounds) << output_;
  EXPECT_EQ(out["kill_bad"], "[]") << output_;
  // The kills landed on both sides of the switch.
  EXPECT_GT(std::stoi(out["kill_from"]), 0) << output_;
  EXPECT_GT(std::stoi(out["kill_to"]), 0) << output_;
  EXPECT_EQ(out["client_failed"], "0") << out["client_first_failure"];
  EXPECT_EQ(out["same_pid"], "true");
  ASSERT_EQ(loaded_.size(), 1u) << output_;
  expect_loaded(0, "live-0.1.0");
}

// One test: ctest runs each test in a process of its own, and the fixture (two releases built,
// the applier compiled, two imports) costs seconds; each part runs its own node and says its
// name on failure.
TEST_F(PlanApplyTest, LiveNodeAppliesThePlan) {
  {
    SCOPED_TRACE("ThePlanIsWhatTheFixtureSays");
    ThePlanIsWhatTheFixtureSays();
  }
  {
    SCOPED_TRACE("UpgradeAndDowngradeUnderLoad");
    UpgradeAndDowngradeUnderLoad();
  }
  {
    SCOPED_TRACE("ALingeringProcessBlocksTheSoftPurgeAndFailuresAfterTheSwitchRevert");
    ALingeringProcessBlocksTheSoftPurgeAndFailuresAfterTheSwitchRevert();
  }
  {
    SCOPED_TRACE("TheApplierKilledMidPlanLeavesNoSuspendedProcessAndNoMixedCode");
    TheApplierKilledMidPlanLeavesNoSuspendedProcessAndNoMixedCode();
  }
}

}  // namespace
}  // namespace codestore::server

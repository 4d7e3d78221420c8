// `codestore plan` (cli/plan_command.cpp) in-process through cli::run, over the application `pa`
// in two versions laid out as two releases and imported through the CLI
// (tests/store/upgrade_fixture.h: one Erlang run for the suite). The plan's rules are tested in
// tests/store/upgrade_plan_test.cpp, systools:make_relup's verdict on the .appup there too;
// here: the JSON document, the .appup text, the text table, usage and errors.
#include <codestore/store.h>
#include <codestore/upgrade_plan.h>
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "etf/consult.h"
#include "store/upgrade_fixture.h"

namespace codestore::cli {
namespace {

using Json = nlohmann::json;

struct Ran {
  int code;
  std::string out, err;
};

class PlanCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v escript >/dev/null 2>&1") != 0) return;
    fixture_ = testing::build_upgrade_fixture().release();
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override {
    if (fixture_ == nullptr) GTEST_SKIP() << "no escript";
  }
  static Ran cs(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", fixture_->db.string()});
    std::istringstream in;
    std::ostringstream out, err;
    const int code = run(args, in, out, err);
    return {code, out.str(), err.str()};
  }
  void JsonHasEveryModuleInOrder();
  void AppupTextIsTheLibrarysAndReadsBack();
  void TextSaysWhatNeedsARestart();
  void UsageAndErrors();

  static testing::UpgradeFixture* fixture_;
};
testing::UpgradeFixture* PlanCliTest::fixture_ = nullptr;

void PlanCliTest::JsonHasEveryModuleInOrder() {
  const auto r = cs({"plan", "pa@0.1.0", "pa@0.2.0", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["from"], "pa@0.1.0");
  EXPECT_EQ(j["direction"], "up");
  EXPECT_EQ(j["purge"], "soft_purge");
  EXPECT_EQ(j["needs_restart"], true);
  ASSERT_EQ(j["modules"].size(), 9u);
  std::map<std::string, Json> by_name;
  std::vector<std::string> order;
  for (const auto& m : j["modules"]) {
    by_name[m["module"]] = m;
    order.push_back(m["module"]);
  }
  const Json& srv = by_name["pa_srv"];
  EXPECT_EQ(srv["instruction"], "update");
  EXPECT_EQ(srv["update_kind"], "advanced");
  EXPECT_EQ(srv["old_vsn"], "\"1\"");
  EXPECT_EQ(srv["extra"], "{\"0.1.0\",\"0.2.0\"}");
  EXPECT_EQ(srv["appup"], "{update,pa_srv,{advanced,{\"0.1.0\",\"0.2.0\"}},soft_purge,soft_purge,[]}");
  EXPECT_EQ(by_name["pa_fsm"]["vsn_trap"], true);
  EXPECT_EQ(by_name["pa_fsm"]["older_vsn_default"], true);
  EXPECT_TRUE(by_name["pa_new"]["from"]["version"].is_null());
  EXPECT_EQ(by_name["pa_a_caller"]["depends_on"], Json::array({"pa_z_lib"}));
  EXPECT_LT(std::find(order.begin(), order.end(), "pa_z_lib"),
            std::find(order.begin(), order.end(), "pa_a_caller"));
  std::set<std::string> kinds;
  for (const auto& x : j["restart"]) kinds.insert(x["kind"]);
  EXPECT_EQ(kinds, (std::set<std::string>{"config", "nif", "supervisor"}));

  const auto down = cs({"plan", "pa@0.2.0", "pa@0.1.0", "--json", "--brutal"});
  ASSERT_EQ(down.code, 0) << down.err;
  const Json d = Json::parse(down.out);
  EXPECT_EQ(d["direction"], "down");
  EXPECT_EQ(d["purge"], "brutal_purge");
  for (const auto& m : d["modules"]) {
    if (m["module"] == "pa_srv") {
      EXPECT_EQ(m["old_vsn"], "{down,\"1\"}");
    }
  }
}

void PlanCliTest::AppupTextIsTheLibrarysAndReadsBack() {
  const auto r = cs({"plan", "pa@0.1.0", "pa@0.2.0", "--appup"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto store = Store::open(fixture_->db.string(), {});
  ASSERT_TRUE(store.has_value());
  auto plan = plan_release_upgrade(**store, {"pa", "0.1.0"}, {"pa", "0.2.0"});
  ASSERT_TRUE(plan.has_value());
  const auto appups = plan_appups(*plan);
  ASSERT_EQ(appups.size(), 1u);
  EXPECT_EQ(r.out, "%% lib/pa-0.2.0/ebin/pa.appup\n" + appups[0].text);
  auto terms = etf::consult(r.out, "out");  // the comment line is a comment to file:consult/1
  ASSERT_TRUE(terms.has_value()) << terms.error().to_string();
  ASSERT_EQ(terms->size(), 1u);
  EXPECT_TRUE((*terms)[0] == appups[0].term);

  const auto j = cs({"plan", "pa@0.1.0", "pa@0.2.0", "--appup", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  const Json doc = Json::parse(j.out);
  ASSERT_EQ(doc["appups"].size(), 1u);
  EXPECT_EQ(doc["appups"][0]["path"], "lib/pa-0.2.0/ebin/pa.appup");
  EXPECT_EQ(doc["appups"][0]["text"], appups[0].text);
}

void PlanCliTest::TextSaysWhatNeedsARestart() {
  const auto r = cs({"plan", "pa@0.1.0", "pa@0.2.0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("plan pa@0.1.0 -> pa@0.2.0 (upgrade, soft_purge)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("needs a restart"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vsn-trap"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warning: pa_fsm: the -vsn trap"), std::string::npos) << r.out;
  const auto same = cs({"plan", "pa@0.1.0", "pa@0.1.0"});
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_NE(same.out.find("no module changes"), std::string::npos) << same.out;
}

void PlanCliTest::UsageAndErrors() {
  auto r = cs({"plan", "pa", "pa@0.2.0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("NAME@VSN"), std::string::npos) << r.err;
  r = cs({"--channel", "c", "plan", "one", "2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("generation numbers"), std::string::npos) << r.err;
  r = cs({"plan", "pa@0.1.0", "pa@7", "--json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Json::parse(r.out)["error"]["kind"], "not_found");
  EXPECT_NE(r.err.find("pa@7"), std::string::npos) << r.err;
  r = cs({"--channel", "nosuch", "plan", "1", "2"});
  EXPECT_EQ(r.code, 1) << r.out;
}

// One test: ctest runs each test in a process of its own, and the fixture (an Erlang run and
// an import of kernel, stdlib and sasl) costs seconds; each part says its name on failure.
TEST_F(PlanCliTest, PlanCommand) {
  {
    SCOPED_TRACE("JsonHasEveryModuleInOrder");
    JsonHasEveryModuleInOrder();
  }
  {
    SCOPED_TRACE("AppupTextIsTheLibrarysAndReadsBack");
    AppupTextIsTheLibrarysAndReadsBack();
  }
  {
    SCOPED_TRACE("TextSaysWhatNeedsARestart");
    TextSaysWhatNeedsARestart();
  }
  {
    SCOPED_TRACE("UsageAndErrors");
    UsageAndErrors();
  }
}

}  // namespace
}  // namespace codestore::cli

// `codestore nodes` after a real `codestore serve` session (the built executable, stopped with
// SIGTERM as an operator stops it) that raw protocol clients drove as booting nodes ask: the
// nodes as --json and as a table, --channel, behind after a deploy, and the usage of
// --forget-older-than. The serve process takes UDP port 4368 (fixed in OTP's client), so the
// test holds the boot_server_port lock like the erl tests.
#include <codestore/store.h>
#include <codestore/term.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "erl_node.h"
#include "server_test_util.h"
#include "srvtest_release.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using server::testing::RawClient;
using server::testing::ServeProcess;

struct CliResult {
  int code = -1;
  std::string out, err;
};

CliResult run(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out, err;
  CliResult r;
  r.code = cli::run(args, in, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string get(RawClient& c, const std::string& path) {
  if (!c.send_term(server::testing::req("get", path))) return "<not sent>";
  auto t = c.recv_term();
  if (!t) return "<no answer>";
  const etf::Tuple* answer = t->as_tuple();
  const etf::Tuple* ok = answer && answer->elements.size() == 2 ? answer->elements[1].as_tuple() : nullptr;
  return ok && ok->elements.size() == 2 && ok->elements[0].is_atom("ok") ? "ok" : etf::format_w(*t);
}

class NodesCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.path().string() + "/s.db";
    root_ = dir_.path().string() + "/root";
    fs::create_directories(root_ + "/bin");
    auto store = Store::open(db_);
    ASSERT_TRUE(store) << store.error().to_string();
    const std::string fixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images";
    for (const auto& [vsn, beam] :
         {std::pair{"1.0", "/server/v1/m.beam"}, std::pair{"2.0", "/server/v2/m.beam"}}) {
      auto r = (*store)->import_release(server::testing::release_of(vsn, fixtures + beam));
      ASSERT_TRUE(r) << r.error().to_string();
    }
    store->reset();
    ASSERT_TRUE(server::testing::deploy(db_, "prod", "1.0"));
  }
  void TearDown() override {
    if (HasFailure()) server::testing::dump_logs(dir_.path(), 4000);
  }

  testing::TempDir dir_;
  std::string db_, root_;
};

TEST_F(NodesCliTest, NodesListsWhatAServeSessionServed) {
  {
    ServeProcess serve(
        db_,
        {"--root", root_, "--erts-version", "13.1.5", "--bind", "127.0.0.1", "--allow", "127.0.0.0/8",
         "--client-root", "/srv/prod", "--channel", "prod=/srv/prod", "--quiet"},
        dir_.path().string() + "/serve.log");
    const std::uint16_t port = serve.wait_ready();
    ASSERT_NE(port, 0) << serve.log();
    for (int node = 0; node < 2; ++node) {
      RawClient c(port);
      ASSERT_TRUE(c.connected());
      EXPECT_EQ(get(c, "/srv/prod/bin/start.boot"), "ok");
      EXPECT_EQ(get(c, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"), "ok");
      if (node == 1) {
        EXPECT_EQ(get(c, "/srv/prod/lib/../releases/1.0/consolidated/hello.beam"), "ok");
      }
    }
    ASSERT_EQ(serve.stop(), 0) << serve.log();  // SIGTERM: the last reports are written first
  }

  CliResult r = run({"--db", db_, "--json", "nodes", "--modules"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["nodes"].size(), 2u) << r.out;
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& n = j["nodes"][i];
    EXPECT_EQ(n["address"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << n;
    EXPECT_EQ(n["client_root"], "/srv/prod");
    EXPECT_EQ(n["channel"], "prod");
    EXPECT_EQ(n["erts_vsn"], "13.1.5");
    EXPECT_EQ(n["release"], (nlohmann::json{{"name", "rel"}, {"vsn", "1.0"}}));
    EXPECT_EQ(n["channel_release"], n["release"]);
    EXPECT_EQ(n["behind"], false);
    EXPECT_EQ(n["modules"].size(), i + 1) << n;
    EXPECT_EQ(n["modules"][i == 0 ? 0 : 1]["module"], "m");
    EXPECT_EQ(n["modules"][i == 0 ? 0 : 1]["app"], "srvtest");
  }
  EXPECT_NE(j["nodes"][0]["id"], j["nodes"][1]["id"]);  // one connection, one node

  // 2.0 deployed: both nodes run 1.0's code and release, behind.
  ASSERT_TRUE(server::testing::deploy(db_, "prod", "2.0"));
  r = run({"--db", db_, "--json", "nodes", "--channel", "prod"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["nodes"].size(), 2u);
  for (const auto& n : j["nodes"]) {
    EXPECT_EQ(n["behind"], true) << n;
    EXPECT_LT(n["runs_generation"].get<std::int64_t>(), n["channel_generation"].get<std::int64_t>());
    EXPECT_FALSE(n.contains("modules"));
  }
  r = run({"--db", db_, "nodes"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("rel@1.0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("yes (runs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("release rel@2.0"), std::string::npos) << r.out;
  r = run({"--db", db_, "--json", "nodes", "--channel", "staging"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["nodes"].empty());

  // Pruning: a duration is N with s, m, h or d; nodes seen within it stay.
  r = run({"--db", db_, "nodes", "--forget-older-than", "3 days"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("a duration is N followed by s, m, h or d"), std::string::npos) << r.err;
  r = run({"--db", db_, "--json", "nodes", "--forget-older-than", "1d"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["forgotten"], 0);
  EXPECT_EQ(nlohmann::json::parse(run({"--db", db_, "--json", "nodes"}).out)["nodes"].size(), 2u);
}

}  // namespace
}  // namespace codestore

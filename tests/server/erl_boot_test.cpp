// Real, unmodified Erlang nodes (`erl -loader inet -hosts 127.0.0.1`) booting from
// `codestore serve` over a real store: the node's modules are the store's versions, an
// operator's rollback reaches the node on its next load, a release is served exactly, and
// bad clients do not stop the server. Skipped when erl is not installed.
//
// These tests use UDP port 4368 (fixed in the client), so CTest runs them one at a time
// (RESOURCE_LOCK boot_server_port). Every wait is bounded.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "erl_node.h"
#include "server_test_util.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/files.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using testing::dump_logs;
using testing::find_program;
using testing::md5_line;
using testing::RawClient;
using testing::run_cli;
using testing::ServeProcess;
using testing::start_node;
using testing::Subprocess;
using testing::TempDir;
using namespace std::chrono_literals;

const std::string kOtpRoot = "/usr/lib/erlang";
const std::string kFixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/server";

class ErlBootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (find_program("erl").empty()) return;
    base_ = new TempDir();
    base_db_ = base_->path().string() + "/base.db";
    // kernel and stdlib are all a start_clean boot loads; the rest stays out of the store.
    Status s = store_ops::import_otp_libs(base_db_, kOtpRoot, {"kernel", "stdlib"});
    if (!s) {
      base_error_ = s.to_string();
      return;
    }
  }
  static void TearDownTestSuite() {
    delete base_;
    base_ = nullptr;
  }

  void SetUp() override {
    if (find_program("erl").empty())
      GTEST_SKIP() << "erl is not installed: no node to boot (apt-get install erlang-nox)";
    ASSERT_TRUE(base_error_.empty()) << base_error_;
    db_ = dir_.path().string() + "/store.db";
    fs::copy_file(base_db_, db_);
  }

  // Dumps the server and node logs when a test fails, to say where it stopped.
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 6000);
  }

  std::string log(const std::string& name) const { return dir_.path().string() + "/" + name + ".log"; }

  static TempDir* base_;
  static std::string base_db_;
  static std::string base_error_;
  TempDir dir_;
  std::string db_;
};
TempDir* ErlBootTest::base_ = nullptr;
std::string ErlBootTest::base_db_;
std::string ErlBootTest::base_error_;

TEST_F(ErlBootTest, NodeBootsAndItsModulesAreTheStoresVersions) {
  ServeProcess serve(db_, {"--port", "0"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  auto node =
      start_node("t1",
                 "io:format(\"apps=~w~n\", [[A || {A, _, _} <- application:which_applications()]]), " +
                     md5_line("lists") + "io:format(\"which=~s~n\", [code:which(lists)]), halt().",
                 log("node"));
  auto apps = node->read_until("apps=", 60s);
  ASSERT_TRUE(apps) << "the node did not boot";
  EXPECT_EQ(*apps, "apps=[stdlib,kernel]");
  auto md5 = node->read_until("md5=", 20s);
  ASSERT_TRUE(md5);
  auto expected = store_ops::active_md5(db_, "lists");
  ASSERT_TRUE(expected) << expected.error().to_string();
  EXPECT_EQ(md5->substr(4), *expected);
  EXPECT_EQ(node->read_until("which=", 20s).value_or(""),
            "which=" + kOtpRoot + "/lib/stdlib-4.2/ebin/lists.beam");
  ASSERT_TRUE(node->wait(20s));
  EXPECT_EQ(serve.stop(), 0);
  std::string text = serve.log();
  EXPECT_NE(text.find("discovery from 127.0.0.1:"), std::string::npos);
  EXPECT_NE(text.find("lists.beam: store stdlib/lists v1 md5 " + *expected), std::string::npos);
  EXPECT_NE(text.find("start.boot: fallback"), std::string::npos);
  // Every served version is counted for `codestore stats`.
  auto served = store_ops::served_count(db_, "lists");
  ASSERT_TRUE(served) << served.error().to_string();
  EXPECT_GE(*served, 1);
}

TEST_F(ErlBootTest, RollbackReachesTheNodeOnItsNextLoad) {
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v1/m.beam", "srvtest"));
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v2/m.beam", "srvtest"));
  ServeProcess serve(db_, {"--port", "0"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  auto node = start_node("t1",
                         "io:format(\"v=~p~n\", [m:version()]), io:get_line(\"\"), "
                         "code:purge(m), {module, m} = code:load_file(m), "
                         "io:format(\"v=~p~n\", [m:version()]), halt().",
                         log("node"));
  ASSERT_EQ(node->read_until("v=", 60s).value_or("no answer"), "v=2");
  // The operator's rollback while the node runs.
  ASSERT_EQ(run_cli(db_, {"rollback", "m"}, log("rollback")), 0);
  ASSERT_TRUE(node->write("go\n"));
  EXPECT_EQ(node->read_until("v=", 30s).value_or("no answer"), "v=1");
  ASSERT_TRUE(node->wait(20s));
  std::string text = serve.log();
  EXPECT_NE(text.find("store srvtest/m v2"), std::string::npos);
  EXPECT_NE(text.find("store srvtest/m v1"), std::string::npos);
}

TEST_F(ErlBootTest, ReleaseRollbackReachesTheNodeOnItsNextLoad) {
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v1/m.beam", "srvtest"));
  ASSERT_EQ(run_cli(db_, {"release", "create", "r1"}, log("release-create")), 0);
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v2/m.beam", "srvtest"));
  ASSERT_TRUE(store_ops::import_file(
      db_, std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/hello.beam", "srvtest"));
  ServeProcess serve(db_, {"--port", "0"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  auto node = start_node("t1",
                         "io:format(\"v=~p ~p~n\", [m:version(), hello:version()]), io:get_line(\"\"), "
                         "code:purge(m), {module, m} = code:load_file(m), "
                         "code:purge(hello), code:delete(hello), code:purge(hello), "
                         "io:format(\"v=~p ~p~n\", [m:version(), code:load_file(hello)]), halt().",
                         log("node"));
  ASSERT_EQ(node->read_until("v=", 60s).value_or("no answer"), "v=2 1");
  // The release's set becomes the active set: m back to v1, hello (not in r1) inactive.
  ASSERT_EQ(run_cli(db_, {"release", "rollback", "r1"}, log("release-rollback")), 0);
  ASSERT_TRUE(node->write("go\n"));
  EXPECT_EQ(node->read_until("v=", 30s).value_or("no answer"), "v=1 {error,nofile}");
  ASSERT_TRUE(node->wait(20s));
}

TEST_F(ErlBootTest, ReleaseIsServedExactlyEvenAfterLaterImports) {
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v1/m.beam", "srvtest"));
  Status made = store_ops::create_release(db_, "r1");
  ASSERT_TRUE(made) << made.to_string();
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v2/m.beam", "srvtest"));
  ServeProcess serve(db_, {"--port", "0", "--release", "r1"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  auto node = start_node("t1",
                         "io:format(\"v=~p~n\", [m:version()]), io:get_line(\"\"), "
                         "code:purge(m), {module, m} = code:load_file(m), "
                         "io:format(\"v=~p~n\", [m:version()]), "
                         "io:format(\"hello=~p~n\", [code:ensure_loaded(hello)]), halt().",
                         log("node"));
  EXPECT_EQ(node->read_until("v=", 60s).value_or("no answer"), "v=1");
  // Imports while the node runs change the active set, not the release.
  ASSERT_TRUE(store_ops::import_file(
      db_, std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/hello.beam", "srvtest"));
  ASSERT_TRUE(node->write("go\n"));
  EXPECT_EQ(node->read_until("v=", 30s).value_or("no answer"), "v=1");
  EXPECT_EQ(node->read_until("hello=", 30s).value_or("no answer"), "hello={error,nofile}");
  ASSERT_TRUE(node->wait(20s));
}

TEST_F(ErlBootTest, BadClientsDoNotStopTheServer) {
  ServeProcess serve(db_, {"--port", "0", "--max-request-bytes", "4096", "--request-timeout-ms", "500"},
                     log("serve"));
  std::uint16_t port = serve.wait_ready();
  ASSERT_NE(port, 0) << serve.log();
  auto text = [](const std::optional<etf::Term>& t) { return t ? etf::format_w(*t) : "<none>"; };
  {
    RawClient c(port);
    ASSERT_TRUE(c.send_frame({0xde, 0xad, 0xbe, 0xef}));
    EXPECT_EQ(text(c.recv_term()), "{error,badarg}");
    ASSERT_TRUE(c.send_term(testing::req("format_disk", "/")));
    EXPECT_EQ(text(c.recv_term()), "{error,unknown_command}");
    ASSERT_TRUE(c.send_raw({0, 0, 0, 50, 131, 104}));  // truncated
    c.shutdown_write();
    EXPECT_EQ(text(c.recv_term()), "{error,truncated}");
  }
  {
    RawClient c(port);
    ASSERT_TRUE(c.send_raw({0x7f, 0xff, 0xff, 0xff}));  // a 2 GiB request
    EXPECT_EQ(text(c.recv_term()), "{error,emsgsize}");
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawClient c(port, "127.0.0.3");  // not in --allow (default 127.0.0.1)
    c.send_term(testing::req("get", kOtpRoot + "/bin/start.boot"));
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_EQ(text(c.recv_term(200ms)), "<none>");
  }
  // A real node still boots.
  auto node = start_node("t1", "io:format(\"ok=~p~n\", [lists:sum([1,2])]), halt().", log("node"));
  EXPECT_EQ(node->read_until("ok=", 60s).value_or("no answer"), "ok=3");
  ASSERT_TRUE(node->wait(20s));
  EXPECT_EQ(serve.stop(), 0);
  std::string log_text = serve.log();
  EXPECT_NE(log_text.find("refused connection from 127.0.0.3"), std::string::npos);
  EXPECT_NE(log_text.find("{error,emsgsize}"), std::string::npos);
}

TEST_F(ErlBootTest, ADisallowedNodeFindsNoServer) {
  // Only 127.0.0.2 may boot: the node on 127.0.0.1 is refused at discovery, keeps
  // asking (as erl_prim_loader does), and the server logs each refusal.
  ServeProcess serve(db_, {"--port", "0", "--allow", "127.0.0.2"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  auto node = start_node("t1", "halt().", log("node"));
  for (int i = 0; i < 200 && serve.log().find("refused discovery from 127.0.0.1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_NE(serve.log().find("refused discovery from 127.0.0.1"), std::string::npos) << serve.log();
  EXPECT_FALSE(node->wait(0ms));  // still looking for a server
  node->kill_group();
  EXPECT_EQ(serve.stop(), 0);
}

}  // namespace
}  // namespace codestore::server

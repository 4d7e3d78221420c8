// More than one boot server (issue 14, item 6): two `codestore serve` processes over one
// database, each bound to its own loopback address (127.0.0.2 and 127.0.0.3, so both hold UDP
// port 4368), and a node given both in one `-hosts` list boots while either one is down. What
// the operator guide says about nodes and their servers, checked: `-hosts A -hosts B` leaves a
// node no server; a node whose only server is gone hangs on its next load and ignores SIGTERM
// (it is stopped with SIGKILL). The nodes boot OTP's own kernel and stdlib from the store
// (Debian's root: nothing to build).
//
// Skipped when erl is not installed. UDP port 4368: RESOURCE_LOCK boot_server_port.
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "erl_node.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::TempDir;
using testing::dump_logs;
using testing::find_program;
using testing::md5_line;
using testing::ServeProcess;
using testing::start_node;
using namespace std::chrono_literals;

const std::string kOtpRoot = "/usr/lib/erlang";

class ErlTwoServersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty()) GTEST_SKIP() << "erl is not installed (apt-get install erlang-nox)";
    testing::node_environment();
    db_ = dir_.path().string() + "/store.db";
    // kernel and stdlib are all a start_clean boot loads.
    Status s = store_ops::import_otp_libs(db_, kOtpRoot, {"kernel", "stdlib"});
    ASSERT_TRUE(s) << s.to_string();
  }
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 6000);
  }
  std::string log(const std::string& name) const { return dir_.path().string() + "/" + name + ".log"; }
  // `serve` bound to `address` (its TCP port any free one), answering loopback clients: a
  // node's connections to 127.0.0.2 leave from 127.0.0.1.
  std::unique_ptr<ServeProcess> serve_on(const std::string& address, const std::string& log_name) {
    return std::make_unique<ServeProcess>(
        db_, std::vector<std::string>{"--bind", address, "--allow", "127.0.0.0/8", "--port", "0"},
        log(log_name));
  }

  TempDir dir_;
  std::string db_;
};

TEST_F(ErlTwoServersTest, ANodeGivenBothBootsWhileEitherIsDown) {
  auto expected = store_ops::active_md5(db_, "lists");
  ASSERT_TRUE(expected) << expected.error().to_string();
  const std::vector<std::string> hosts = {"127.0.0.2", "127.0.0.3"};
  for (std::size_t down = 0; down < hosts.size(); ++down) {
    const std::size_t up = 1 - down;
    SCOPED_TRACE(hosts[down] + " down, " + hosts[up] + " up");
    const std::string tag = std::to_string(down);
    auto a = serve_on(hosts[0], "serve-a-" + tag);
    auto b = serve_on(hosts[1], "serve-b-" + tag);
    ServeProcess* servers[] = {a.get(), b.get()};
    // Each answers on its own address, UDP port 4368 included.
    ASSERT_NE(servers[0]->wait_ready(), 0) << servers[0]->log();
    ASSERT_NE(servers[1]->wait_ready(), 0) << servers[1]->log();
    EXPECT_NE(servers[0]->log().find("on tcp 127.0.0.2:"), std::string::npos) << servers[0]->log();
    EXPECT_NE(servers[1]->log().find("on tcp 127.0.0.3:"), std::string::npos) << servers[1]->log();
    ASSERT_EQ(servers[down]->stop(), 0);

    auto node =
        start_node("t" + tag, md5_line("lists") + "io:format(\"which=~s~n\", [code:which(lists)]), halt().",
                   log("node-" + tag), {}, hosts);
    EXPECT_EQ(node->read_until("md5=", 60s).value_or("the node did not boot"), "md5=" + *expected);
    EXPECT_EQ(node->read_until("which=", 20s).value_or("no which"),
              "which=" + kOtpRoot + "/lib/stdlib-4.2/ebin/lists.beam");
    if (!node->wait(20s)) {
      node->kill_group();
      ADD_FAILURE() << "the node did not halt";
    }
    EXPECT_EQ(servers[up]->stop(), 0);
    // The one that was up served it, from the shared database.
    EXPECT_NE(servers[up]->log().find("lists.beam: store stdlib/lists v1 md5 " + *expected),
              std::string::npos);
    EXPECT_NE(servers[up]->log().find("discovery from 127.0.0.1:"), std::string::npos);
    EXPECT_EQ(servers[down]->log().find(" get "), std::string::npos) << servers[down]->log();
  }
}

// `-hosts A -hosts B` is accepted without a word and leaves the node no server at all (what the
// operator guide says): it never asks either, says 'no server found' and waits.
TEST_F(ErlTwoServersTest, TwoHostsFlagsGiveTheNodeNoServer) {
  auto a = serve_on("127.0.0.2", "serve-a");
  auto b = serve_on("127.0.0.3", "serve-b");
  ASSERT_NE(a->wait_ready(), 0) << a->log();
  ASSERT_NE(b->wait_ready(), 0) << b->log();
  auto node = start_node("t1", "io:format(\"booted~n\"), halt().", log("node"), {"-hosts", "127.0.0.3"},
                         {"127.0.0.2"});
  // erl_prim_loader says it with erlang:display/1 (a line ending "\r\n").
  std::string before;
  EXPECT_TRUE(node->read_until("{erl_prim_loader,'no server found'}", 20s, &before).has_value()) << before;
  EXPECT_EQ(node->read_until("booted", 1s), std::nullopt);
  node->kill_group();
  EXPECT_EQ(a->stop(), 0);
  EXPECT_EQ(b->stop(), 0);
  EXPECT_EQ(a->log().find("discovery from"), std::string::npos) << a->log();
  EXPECT_EQ(b->log().find("discovery from"), std::string::npos) << b->log();
}

TEST_F(ErlTwoServersTest, ANodeWhoseOnlyServerIsGoneHangsAndIgnoresSigterm) {
  auto serve = serve_on("127.0.0.2", "serve");
  ASSERT_NE(serve->wait_ready(), 0) << serve->log();
  // digraph is in stdlib and not loaded by a boot: code:which/1 asks the server for it.
  auto node = start_node("t1",
                         "io:format(\"up=~p~n\", [code:is_loaded(digraph)]), io:get_line(\"\"), "
                         "io:format(\"which=~s~n\", [code:which(digraph)]), halt().",
                         log("node"), {}, {"127.0.0.2"});
  ASSERT_EQ(node->read_until("up=", 60s).value_or("the node did not boot"), "up=false");
  ASSERT_EQ(serve->stop(), 0);
  ASSERT_TRUE(node->write("go\n"));
  // No answer and no exit: the loader waits for a server that is gone. (Bounded waits that
  // must run out; how long the node would wait is not measured.)
  EXPECT_EQ(node->read_until("which=", 3s), std::nullopt);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(3s), std::nullopt) << "the node stopped on SIGTERM";
  // SIGKILL ends it: it died of that signal, not of the SIGTERM before.
  node->kill_group();
  auto status = node->wait(0ms);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
}

}  // namespace
}  // namespace codestore::server

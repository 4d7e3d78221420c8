// `codestore serve --follow URI` (issue 16 item 2; docs/fleet.md): a host's boot server keeps
// its --db replica following a store on the tests' real PostgreSQL and serves real nodes from
// it. A channel rollback committed on PostgreSQL reaches a running node through its agent and
// the next node booted; while PostgreSQL is stopped (a server of the test's own) the replica
// is served as it is, and the follower catches up once it is back. UDP port 4368 like the other
// erl tests (RESOURCE_LOCK boot_server_port).
#include <codestore/store.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "erl_node.h"
#include "store/backend.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/pg_server.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

using codestore::store_testing::Backend;
using codestore::testing::TempDir;
using testing::agent_port;
using testing::compile_agt;
using testing::count;
using testing::eventually;
using testing::find_program;
using testing::ServeProcess;
using testing::start_node;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// PostgreSQL only: the name ends in /postgresql, so CTest gives it the label `postgres` and the
// fixture's server (tests/CMakeLists.txt).
class ErlFollow : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (find_program("erl").empty()) GTEST_SKIP() << "erl is not installed: no node to boot";
    testing::node_environment();
  }
};
INSTANTIATE_TEST_SUITE_P(Backends, ErlFollow, ::testing::Values(Backend::kPostgresql),
                         store_testing::backend_name);

// A database of the fixture's server, dropped at the end.
struct Database {
  std::string uri = codestore::testing::pg_create_database();
  ~Database() { codestore::testing::pg_drop_database(uri); }
};

// A server of the test's own under /tmp (its socket path stays short, every parent searchable),
// stopped and removed at the end, also when the test fails.
struct PrivateServer {
  fs::path dir;
  PrivateServer() {
    char name[] = "/tmp/cs-serve-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp");
    dir = name;
    ::chmod(name, 0755);
    codestore::testing::PgServer::start(dir);
  }
  ~PrivateServer() { codestore::testing::PgServer::stop(dir); }
};

std::int64_t current_generation(const std::string& uri) {
  auto store = Store::open(uri);
  if (!store) return -1;
  auto g = (*store)->channel_generation("default");
  return g ? g->number : -1;
}

// The line a node prints with what agt:v() answers: "v=N".
const char* const kPrintV = "io:format(\"v=~p~n\", [agt:v()]).";
const std::vector<std::string> kAgtPath = {"-pa", "/usr/lib/erlang/lib/agt/ebin"};

TEST_P(ErlFollow, AChannelRollbackOnThePrimaryReachesARunningNodeAndTheNextBoot) {
  TempDir dir;
  Database primary;
  const std::string replica = dir / "replica.db";
  auto log = [&](const std::string& name) { return (dir / (name + ".log")).string(); };
  const std::string v1 = compile_agt(dir.path(), 1), v2 = compile_agt(dir.path(), 2);
  ASSERT_TRUE(store_ops::import_otp_libs(primary.uri, "/usr/lib/erlang", {"kernel", "stdlib"}));
  ASSERT_TRUE(store_ops::import_file(primary.uri, v1, "agt"));
  ASSERT_TRUE(store_ops::import_file(primary.uri, v2, "agt"));
  const std::int64_t before = current_generation(primary.uri);

  // A new replica: serve fills it from the primary before it serves.
  ServeProcess serve(replica, {"--follow", primary.uri, "--port", "0", "--agent-port", "0"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  EXPECT_NE(serve.log().find("follow: replica " + replica + " follows "), std::string::npos) << serve.log();
  EXPECT_NE(serve.log().find("channel default at generation " + std::to_string(before)), std::string::npos)
      << serve.log();
  ASSERT_TRUE(eventually([&] { return agent_port(serve) != 0; }, 10s)) << serve.log();

  // A node running the agent (its code from serve), and a loop printing agt:v() each time it
  // changes.
  auto node =
      start_node("f1",
                 "Loop = fun L(Last) -> V = agt:v(), _ = V =:= Last orelse io:format(\"v=~p~n\", [V]), "
                 "timer:sleep(20), L(V) end, Loop(0).",
                 log("node1"),
                 {"-pa", "/usr/lib/erlang/lib/agt/ebin", "-pa", "/usr/lib/erlang/lib/codestore_agent/ebin",
                  "-s", "codestore_agent"});
  ASSERT_TRUE(node->read_until("v=2", 60s)) << "the node did not boot\n" << serve.log();
  ASSERT_TRUE(eventually([&] { return count(serve.log(), "): welcome") == 1; })) << serve.log();

  // The rollback, committed on PostgreSQL by another process.
  ASSERT_EQ(testing::run_cli(primary.uri, {"channel", "rollback", "default"}, log("rollback")), 0)
      << codestore::testing::read_text(log("rollback"));
  const std::int64_t rolled = current_generation(primary.uri);
  ASSERT_EQ(rolled, before + 1);
  const std::string applied = "follow: applied generation " + std::to_string(rolled) + " of channel default";
  ASSERT_TRUE(eventually([&] { return count(serve.log(), applied) == 1; })) << serve.log();
  // The running node, through its agent: agt v1 again, reported to the host's replica.
  EXPECT_TRUE(node->read_until("v=1", 30s)) << serve.log();
  const std::string reported =
      "applied generation " + std::to_string(before) + " -> " + std::to_string(rolled);
  EXPECT_TRUE(eventually([&] { return count(serve.log(), reported) == 1; })) << serve.log();
  node.reset();
  // The next node booted loads the rolled-back code.
  auto next = start_node("f2", kPrintV, log("node2"), kAgtPath);
  EXPECT_TRUE(next->read_until("v=1", 60s)) << serve.log();
  next.reset();
  EXPECT_EQ(serve.stop(), 0) << serve.log();
  EXPECT_NE(serve.log().find(fmt::format("follow: stopping: {} generations applied", rolled)),
            std::string::npos)
      << serve.log();
  // The replica holds the rollback as the primary does.
  auto local = Store::open(replica);
  ASSERT_TRUE(local) << local.error().to_string();
  auto g = (*local)->channel_generation("default");
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->number, rolled);
}

TEST_P(ErlFollow, ServesItsReplicaWhilePostgresqlIsStoppedAndCatchesUpAfter) {
  PrivateServer server;
  TempDir dir;
  const std::string uri = codestore::testing::pg_uri_in(server.dir.string(), "codestore_template");
  const std::string replica = dir / "replica.db";
  auto log = [&](const std::string& name) { return (dir / (name + ".log")).string(); };
  const std::string v1 = compile_agt(dir.path(), 1), v2 = compile_agt(dir.path(), 2);
  ASSERT_TRUE(store_ops::import_otp_libs(uri, "/usr/lib/erlang", {"kernel", "stdlib"}));
  ASSERT_TRUE(store_ops::import_file(uri, v1, "agt"));

  ServeProcess serve(replica, {"--follow", uri, "--port", "0", "--no-agents"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();

  // PostgreSQL goes away: the follower says so and retries; serve keeps serving the replica.
  codestore::testing::PgServer::halt(server.dir);
  ASSERT_TRUE(eventually([&] { return count(serve.log(), "reconnecting in") > 0; })) << serve.log();
  auto away = start_node("s1", kPrintV, log("node1"), kAgtPath);
  EXPECT_TRUE(away->read_until("v=1", 60s)) << serve.log();
  away.reset();

  // Back, with a change made on it: the follower catches up, and the next node loads it.
  codestore::testing::PgServer::resume(server.dir);
  ASSERT_TRUE(store_ops::import_file(uri, v2, "agt"));
  const std::int64_t now = current_generation(uri);
  const std::string applied = "follow: applied generation " + std::to_string(now) + " of channel default";
  ASSERT_TRUE(eventually([&] { return count(serve.log(), applied) == 1; })) << serve.log();
  auto back = start_node("s2", kPrintV, log("node2"), kAgtPath);
  EXPECT_TRUE(back->read_until("v=2", 60s)) << serve.log();
  back.reset();
  EXPECT_EQ(serve.stop(), 0) << serve.log();
}

}  // namespace
}  // namespace codestore::server

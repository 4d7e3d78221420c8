// The nodes a boot server records (issue 14 item 5), over loopback against a real temporary
// store holding two versions of one release (srvtest_release.h) deployed to two channels:
// two connections are two nodes, each with its client root, channel (by client root, by
// address), release (the boot script it read), erts version and the module versions it
// fetched; a node is reported while it is connected (one row, not one per report); after a
// deploy the node that booted the old release is behind; and nothing is recorded when told.
#include <codestore/store.h>
#include <codestore/term.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "server_test_util.h"
#include "srvtest_release.h"
#include "store_ops.h"
#include "support/files.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_file;
using testing::deploy;
using testing::RawClient;
using testing::release_of;
using testing::TempDir;

const std::string kFixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images";

// The answer to {get, Path}: "ok" with the bytes received, else the answer's text.
std::string get(RawClient& c, const std::string& path) {
  if (!c.send_term(testing::req("get", path))) return "<not sent>";
  auto t = c.recv_term();
  if (!t) return "<no answer>";
  const etf::Tuple* answer = t->as_tuple();
  const etf::Tuple* ok = answer && answer->elements.size() == 2 ? answer->elements[1].as_tuple() : nullptr;
  if (ok && ok->elements.size() == 2 && ok->elements[0].is_atom("ok")) return "ok";
  return etf::format_w(*t);
}

class NodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.path().string() + "/s.db";
    root_ = dir_.path().string() + "/root";
    fs::create_directories(root_ + "/bin");
    codestore::testing::write_file(root_ + "/bin/start_clean.boot", "erts's own boot script");
    auto store = Store::open(db_);
    ASSERT_TRUE(store) << store.error().to_string();
    for (const auto& [vsn, beam] :
         {std::pair{"1.0", "/server/v1/m.beam"}, std::pair{"2.0", "/server/v2/m.beam"}}) {
      auto r = (*store)->import_release(release_of(vsn, kFixtures + beam));
      ASSERT_TRUE(r) << r.error().to_string();
    }
    md5_v1_ = (*store)->app_show("srvtest", "1.0")->modules.at(0).md5;
    md5_v2_ = (*store)->app_show("srvtest", "2.0")->modules.at(0).md5;
    ASSERT_NE(md5_v1_, md5_v2_);
    store->reset();
    ASSERT_TRUE(deploy(db_, "prod", "1.0"));
    ASSERT_TRUE(deploy(db_, "staging", "2.0"));
    for (const char* channel : {"default", "prod", "staging"}) {
      auto s = open_store_source(db_, "", channel);
      ASSERT_TRUE(s) << s.error().to_string();
      sources_[channel] = std::move(*s);
    }
  }

  // A server on loopback: client root /srv/prod follows prod, clients from 127.0.0.2 staging.
  std::unique_ptr<BootServer> start(bool record = true,
                                    std::chrono::milliseconds interval = std::chrono::seconds(1)) {
    BootServerOptions o;
    o.root = root_;
    o.erts_version = "13.1.5";
    o.allow = {"127.0.0.0/8"};
    o.bind_address = "127.0.0.1";
    o.udp_port = -1;
    o.client_roots = {"/srv/prod"};
    o.channel_rules = {{"staging", "127.0.0.2"}, {"prod", "/srv/prod"}};
    o.record_nodes = record;
    o.node_report_interval = interval;
    auto server = BootServer::start(
        o, *sources_["default"], {{"staging", sources_["staging"].get()}, {"prod", sources_["prod"].get()}});
    EXPECT_TRUE(server) << server.error().to_string();
    return server ? std::move(*server) : nullptr;
  }

  std::vector<NodeInfo> nodes() {
    auto store = Store::open(db_);
    EXPECT_TRUE(store) << store.error().to_string();
    if (!store) return {};
    auto n = (*store)->nodes({.with_modules = true});
    EXPECT_TRUE(n) << n.error().to_string();
    return n ? *n : std::vector<NodeInfo>{};
  }

  TempDir dir_;
  std::string db_, root_, md5_v1_, md5_v2_;
  std::map<std::string, std::unique_ptr<ModuleSource>> sources_;
};

TEST_F(NodesTest, TwoConnectionsAreTwoNodesWithTheirRootChannelReleaseAndModules) {
  auto server = start();
  ASSERT_TRUE(server);
  const std::string port = std::to_string(server->tcp_port());
  {
    RawClient prod(server->tcp_port());
    RawClient staging(server->tcp_port(), "127.0.0.2");
    ASSERT_TRUE(prod.connected() && staging.connected());
    // As a node booting release rel from its client root asks.
    EXPECT_EQ(get(prod, "/srv/prod/bin/start.boot"), "ok");
    EXPECT_EQ(get(prod, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"), "ok");
    EXPECT_EQ(get(prod, "/srv/prod/lib/../releases/1.0/consolidated/hello.beam"), "ok");
    EXPECT_EQ(get(prod, "/srv/prod/lib/srvtest-9.9/ebin/m.beam"), "{get,{error,enoent}}");
    EXPECT_EQ(get(staging, "/srv/prod/bin/start.boot"), "ok");
    EXPECT_EQ(get(staging, "/srv/prod/lib/srvtest/ebin/m.beam"), "ok");
  }
  server->stop();  // writes what the connections reported last

  std::vector<NodeInfo> n = nodes();
  ASSERT_EQ(n.size(), 2u);
  const NodeInfo& a = n[0].channel == "prod" ? n[0] : n[1];
  const NodeInfo& b = n[0].channel == "prod" ? n[1] : n[0];
  EXPECT_EQ(a.address.rfind("127.0.0.1:", 0), 0u) << a.address;
  EXPECT_EQ(b.address.rfind("127.0.0.2:", 0), 0u) << b.address;
  for (const NodeInfo* x : {&a, &b}) {
    EXPECT_EQ(x->server, "127.0.0.1:" + port);
    EXPECT_EQ(x->client_root, "/srv/prod");
    EXPECT_EQ(x->erts_vsn, "13.1.5");
    EXPECT_GT(x->first_seen, 0);
    EXPECT_GE(x->last_seen, x->first_seen);
    EXPECT_GT(x->generation, 0);
    EXPECT_EQ(x->generation, x->channel_generation);
    EXPECT_FALSE(x->behind);
  }
  EXPECT_EQ(a.channel, "prod");
  EXPECT_EQ(a.release, (ReleaseId{"rel", "1.0"}));
  EXPECT_EQ(a.requests, 4u);
  EXPECT_EQ(a.modules_fetched, 2u);
  ASSERT_EQ(a.modules.size(), 2u);
  EXPECT_EQ(a.modules[0].module, "hello");
  EXPECT_EQ(a.modules[0].app, "rel");  // the release's own (consolidated) module
  EXPECT_EQ(a.modules[1].module, "m");
  EXPECT_EQ(a.modules[1].md5, md5_v1_);
  EXPECT_EQ(a.modules[1].app, "srvtest");
  EXPECT_EQ(b.channel, "staging");
  EXPECT_EQ(b.release, (ReleaseId{"rel", "2.0"}));
  ASSERT_EQ(b.modules.size(), 1u);
  EXPECT_EQ(b.modules[0].md5, md5_v2_);
  // Served modules are counted in the nodes' batches, not one write each (`codestore stats`).
  EXPECT_EQ(store_ops::served_count(db_, "m").value_or(-1), 2);
  EXPECT_EQ(store_ops::served_count(db_, "hello").value_or(-1), 1);

  // rel 2.0 deployed to prod: the node that booted 1.0 there is behind; staging's is not.
  const std::int64_t booted_generation = a.generation;  // `a` refers into `n`, reassigned next
  ASSERT_TRUE(deploy(db_, "prod", "2.0"));
  n = nodes();
  ASSERT_EQ(n.size(), 2u);
  const NodeInfo& a2 = n[0].channel == "prod" ? n[0] : n[1];
  const NodeInfo& b2 = n[0].channel == "prod" ? n[1] : n[0];
  EXPECT_TRUE(a2.behind);
  EXPECT_EQ(a2.runs_generation, booted_generation);
  EXPECT_GT(a2.channel_generation, booted_generation);
  EXPECT_EQ(a2.channel_release, (ReleaseId{"rel", "2.0"}));
  EXPECT_FALSE(b2.behind);
}

TEST_F(NodesTest, AConnectedNodeIsReportedAsItGoesOneRowPerConnection) {
  auto server = start(true, std::chrono::milliseconds(20));
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(get(c, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"), "ok");
  // Reported while connected (bounded wait: the recording thread writes every 20 ms).
  auto wait_for = [&](auto done) {
    for (int i = 0; i < 500; ++i) {
      auto n = nodes();
      if (done(n)) return n;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      // The tracker hands over after an answer once the interval passed: ask again.
      EXPECT_EQ(get(c, "/srv/prod/bin/start.boot"), "ok");
    }
    return nodes();
  };
  auto n = wait_for([](const std::vector<NodeInfo>& got) { return !got.empty(); });
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].modules.size(), 1u);
  const std::int64_t id = n[0].id;
  // Later reports of the same connection update its row.
  EXPECT_EQ(get(c, "/srv/prod/lib/../releases/1.0/consolidated/hello.beam"), "ok");
  n = wait_for(
      [](const std::vector<NodeInfo>& got) { return got.size() == 1 && got[0].modules.size() == 2; });
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].id, id);
  EXPECT_EQ(n[0].modules.size(), 2u);
  EXPECT_EQ(n[0].release, (ReleaseId{"rel", "1.0"}));
  server->stop();
  n = nodes();
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].id, id);
  EXPECT_EQ(n[0].modules_fetched, 2u);
}

TEST_F(NodesTest, NothingIsRecordedWhenTold) {
  auto server = start(/*record=*/false);
  ASSERT_TRUE(server);
  {
    RawClient c(server->tcp_port());
    EXPECT_EQ(get(c, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"), "ok");
  }
  server->stop();
  EXPECT_TRUE(nodes().empty());
  EXPECT_EQ(server->stats().modules_served, 1u);
  EXPECT_EQ(store_ops::served_count(db_, "m").value_or(-1), 1);  // counted one write each, as before
}

}  // namespace
}  // namespace codestore::server

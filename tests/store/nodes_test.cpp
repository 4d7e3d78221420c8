// The nodes a boot server served (issue 14 item 5; docs/model.md, "Nodes"), at the store's API
// on real temporary databases: record_nodes (new nodes, later reports of one, a forgotten node
// coming back, one transaction that leaves generation() alone), nodes() (filters, modules, and
// "behind" against the channel's generations as imports, rollbacks and other channels move
// them), forget_nodes, and a schema-4 database migrating to the nodes' schema with its backup.
// The behaviour runs on both backends (backend.h); the schema-4 migration is a SQLite file's.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <map>

#include "backend.h"
#include "db/migrations.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

NodeModule fetched(Store& store, const std::string& module, std::int64_t version) {
  auto v = store.version_info(module, version);
  EXPECT_TRUE(v) << v.error().to_string();
  return {module, version, v ? v->md5 : "", v ? v->lib : "", 1700000000};
}

NodeReport report(std::string address, std::string channel, std::vector<NodeModule> modules,
                  std::int64_t seen_at) {
  NodeReport r;
  r.address = std::move(address);
  r.server = "127.0.0.1:4000";
  r.channel = std::move(channel);
  r.erts_vsn = "13.1.5";
  r.seen_at = seen_at;
  r.requests = 10;
  r.modules_sent = modules.size();
  r.modules = std::move(modules);
  return r;
}

class StoreNodesTest : public BackendTest {
 protected:
  void SetUp() override {
    store_ = open_or_die(store_at(dir_));
    ASSERT_TRUE(store_);
    // hello@1 and attrs@1 active in default: generation 1 (one import batch each: 1, 2).
    ASSERT_EQ(import_bytes(*store_, variant("hello.beam", 0), "h", "hello_app"), 1);
    ASSERT_EQ(import_bytes(*store_, read_file(fixture("attrs.beam")), "a", "attrs_app"), 1);
  }
  std::int64_t current(const std::string& channel = "default") {
    auto g = store_->channel_generation(channel);
    EXPECT_TRUE(g) << g.error().to_string();
    return g ? g->number : -1;
  }
  NodeInfo only(const NodeQuery& q = {}) {
    auto n = store_->nodes(q);
    EXPECT_TRUE(n) << n.error().to_string();
    EXPECT_EQ(n ? n->size() : 0u, 1u);
    return n && n->size() == 1 ? (*n)[0] : NodeInfo{};
  }

  void TearDown() override {
    store_.reset();  // before its database is dropped
    BackendTest::TearDown();
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};
CODESTORE_BOTH_BACKENDS(StoreNodesTest);

TEST_P(StoreNodesTest, RecordsNewNodesAndLaterReportsOfThem) {
  const auto gen_before = store_->generation();
  ASSERT_TRUE(gen_before);
  NodeReport a = report("127.0.0.1:40001", "default", {fetched(*store_, "hello", 1)}, 1700000100);
  a.client_root = "/srv/prod";
  a.release = {"rel", "1.0"};
  a.generation = 2;
  NodeReport b = report("127.0.0.2:40002", "default", {}, 1700000200);
  auto ids = store_->record_nodes({a, b});
  ASSERT_TRUE(ids) << ids.error().to_string();
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_NE((*ids)[0], 0);
  EXPECT_NE((*ids)[0], (*ids)[1]);
  // Not a change of code: no reader's cache is invalidated.
  EXPECT_EQ(*store_->generation(), *gen_before);

  // A later report of node a: empty fields keep what is recorded, counts add, a module's new
  // fetch replaces its row, last_seen moves forward only.
  NodeReport later = report("127.0.0.1:40001", "", {fetched(*store_, "attrs", 1)}, 1700000300);
  later.id = (*ids)[0];
  later.erts_vsn = "";
  later.requests = 5;
  ASSERT_TRUE(store_->record_nodes({later}));
  NodeReport stale = report("127.0.0.1:40001", "", {}, 1700000050);
  stale.id = (*ids)[0];
  stale.requests = 1;
  ASSERT_TRUE(store_->record_nodes({stale}));

  auto nodes = store_->nodes({.with_modules = true});
  ASSERT_TRUE(nodes) << nodes.error().to_string();
  ASSERT_EQ(nodes->size(), 2u);
  const NodeInfo& n = (*nodes)[0];
  EXPECT_EQ(n.id, (*ids)[0]);
  EXPECT_EQ(n.address, "127.0.0.1:40001");
  EXPECT_EQ(n.server, "127.0.0.1:4000");
  EXPECT_EQ(n.client_root, "/srv/prod");
  EXPECT_EQ(n.channel, "default");
  EXPECT_EQ(n.erts_vsn, "13.1.5");
  EXPECT_EQ(n.release, (ReleaseId{"rel", "1.0"}));
  EXPECT_EQ(n.generation, 2);
  EXPECT_EQ(n.first_seen, 1700000100);
  EXPECT_EQ(n.last_seen, 1700000300);
  EXPECT_EQ(n.requests, 16u);
  EXPECT_EQ(n.modules_fetched, 2u);
  ASSERT_EQ(n.module_count, 2u);
  ASSERT_EQ(n.modules.size(), 2u);
  EXPECT_EQ(n.modules[0].module, "attrs");
  EXPECT_EQ(n.modules[1].module, "hello");
  EXPECT_EQ(n.modules[1].version, 1);
  EXPECT_EQ(n.modules[1].md5, store_->version_info("hello", 1)->md5);
  EXPECT_EQ(n.modules[1].app, "hello_app");
  EXPECT_EQ((*nodes)[1].address, "127.0.0.2:40002");
  EXPECT_TRUE((*nodes)[1].modules.empty());
  EXPECT_TRUE(store_->nodes()->at(0).modules.empty());  // without with_modules
}

TEST_P(StoreNodesTest, ServedCountsAddToWhatRecordServedCounts) {
  ASSERT_TRUE(store_->record_served("hello", 1, "127.0.0.1:9"));
  NodeReport r = report("127.0.0.1:40001", "default", {fetched(*store_, "hello", 1)}, 1700000100);
  r.served = {{"hello", 1, 3}, {"attrs", 1, 2}};
  auto recorded = store_->record_nodes({r});
  ASSERT_TRUE(recorded) << recorded.error().to_string();
  auto stats = store_->stats();
  ASSERT_TRUE(stats) << stats.error().to_string();
  std::map<std::string, std::uint64_t> counts;
  for (const auto& row : stats->served) counts[row.module + "@" + std::to_string(row.version)] = row.count;
  EXPECT_EQ(counts, (std::map<std::string, std::uint64_t>{{"attrs@1", 2}, {"hello@1", 4}}));
}

TEST_P(StoreNodesTest, BehindIsTheNewestGenerationHoldingItsCodeAgainstTheCurrentOne) {
  const std::int64_t g1 = current();
  ASSERT_TRUE(store_->record_nodes(
      {report("127.0.0.1:1", "default", {fetched(*store_, "hello", 1), fetched(*store_, "attrs", 1)}, 1)}));
  NodeInfo n = only();
  EXPECT_EQ(n.channel_generation, g1);
  EXPECT_EQ(n.runs_generation, g1);
  EXPECT_FALSE(n.behind);

  // A new hello: the node's hello is generation g1's, not the current one's.
  ASSERT_EQ(import_bytes(*store_, variant("hello.beam", 1), "h2", "hello_app"), 2);
  const std::int64_t g2 = current();
  ASSERT_GT(g2, g1);
  n = only();
  EXPECT_EQ(n.channel_generation, g2);
  EXPECT_EQ(n.runs_generation, g1);
  EXPECT_TRUE(n.behind);

  // Rolled back: the current generation holds the node's code again.
  ASSERT_TRUE(store_->rollback("hello"));
  const std::int64_t g3 = current();
  n = only();
  EXPECT_EQ(n.runs_generation, g3);
  EXPECT_FALSE(n.behind);

  // A change that does not touch its modules does not make it behind (same code, new
  // generation): a module it never fetched.
  ASSERT_EQ(import_bytes(*store_, read_file(fixture("server/v1/m.beam")), "m", "other"), 1);
  n = only();
  EXPECT_GT(n.channel_generation, g3);
  EXPECT_EQ(n.runs_generation, n.channel_generation);
  EXPECT_FALSE(n.behind);
}

TEST_P(StoreNodesTest, CodeNoGenerationHadTogetherIsBehindWithNoGeneration) {
  ASSERT_EQ(import_bytes(*store_, variant("hello.beam", 1), "h2", "hello_app"), 2);
  // hello@2 with attrs@1 is the current generation; hello@1 with a code attrs never had is
  // none of the channel's.
  NodeModule alien = fetched(*store_, "attrs", 1);
  alien.md5 = "0123456789abcdef0123456789abcdef";
  ASSERT_TRUE(
      store_->record_nodes({report("127.0.0.1:1", "default", {fetched(*store_, "hello", 1), alien}, 1)}));
  NodeInfo n = only();
  EXPECT_EQ(n.runs_generation, 0);
  EXPECT_TRUE(n.behind);
  // A node that fetched no module follows the current generation; one of a channel that does
  // not exist (or a snapshot's, channel "") is compared with nothing.
  ASSERT_TRUE(store_->forget_nodes(2));
  ASSERT_TRUE(store_->record_nodes({report("127.0.0.1:2", "default", {}, 5),
                                    report("127.0.0.1:3", "nosuch", {fetched(*store_, "hello", 1)}, 5),
                                    report("127.0.0.1:4", "", {fetched(*store_, "hello", 1)}, 5)}));
  auto nodes = store_->nodes();
  ASSERT_TRUE(nodes);
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].runs_generation, current());
  EXPECT_FALSE((*nodes)[0].behind);
  for (std::size_t i : {1u, 2u}) {
    EXPECT_EQ((*nodes)[i].channel_generation, 0);
    EXPECT_FALSE((*nodes)[i].behind);
  }
}

TEST_P(StoreNodesTest, ChannelsAreComparedWithTheirOwnGenerations) {
  StoreOptions o;
  o.channel = "prod";
  auto prod = open_or_die(store_at(dir_), o);
  ASSERT_TRUE(prod);
  ASSERT_EQ(import_bytes(*prod, variant("hello.beam", 1), "h2", "hello_app"), 2);  // prod: hello@2
  ASSERT_TRUE(store_->record_nodes({report("127.0.0.1:1", "default", {fetched(*store_, "hello", 1)}, 1),
                                    report("127.0.0.1:2", "prod", {fetched(*store_, "hello", 1)}, 1),
                                    report("127.0.0.1:3", "prod", {fetched(*store_, "hello", 2)}, 1)}));
  auto all = store_->nodes();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_FALSE((*all)[0].behind);  // default still runs hello@1
  EXPECT_TRUE((*all)[1].behind);   // prod never ran hello@1
  EXPECT_EQ((*all)[1].runs_generation, 0);
  EXPECT_FALSE((*all)[2].behind);
  auto of_prod = store_->nodes({.channel = "prod"});
  ASSERT_TRUE(of_prod);
  ASSERT_EQ(of_prod->size(), 2u);
  EXPECT_EQ((*of_prod)[0].address, "127.0.0.1:2");
  EXPECT_EQ(store_->nodes({.seen_since = 2})->size(), 0u);
}

TEST_P(StoreNodesTest, ForgetRemovesOldNodesAndAForgottenNodeComesBackAsNew) {
  auto ids = store_->record_nodes({report("127.0.0.1:1", "default", {fetched(*store_, "hello", 1)}, 100),
                                   report("127.0.0.1:2", "default", {fetched(*store_, "hello", 1)}, 300)});
  ASSERT_TRUE(ids);
  auto forgotten = store_->forget_nodes(200);
  ASSERT_TRUE(forgotten) << forgotten.error().to_string();
  EXPECT_EQ(*forgotten, 1u);
  NodeInfo left = only({.with_modules = true});
  EXPECT_EQ(left.address, "127.0.0.1:2");
  EXPECT_EQ(left.modules.size(), 1u);
  // The server still holds node 1's id: its next report makes it a node again, with what the
  // report carries.
  NodeReport again = report("127.0.0.1:1", "default", {}, 400);
  again.id = (*ids)[0];
  auto back = store_->record_nodes({again});
  ASSERT_TRUE(back);
  EXPECT_NE((*back)[0], (*ids)[0]);
  EXPECT_EQ(store_->nodes()->size(), 2u);
}

TEST_P(StoreNodesTest, AReadOnlyStoreRecordsNothing) {
  StoreOptions o;
  o.read_only = true;
  auto ro = open_or_die(store_at(dir_), o);
  ASSERT_TRUE(ro);
  auto r = ro->record_nodes({report("127.0.0.1:1", "default", {}, 1)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kPermissionDenied);
  EXPECT_EQ(ro->forget_nodes(10).error().code(), Code::kPermissionDenied);
  EXPECT_TRUE(ro->nodes()->empty());
}

// A schema-4 database (before nodes) migrates: a backup first, then the nodes' tables.
TEST(StoreNodesMigration, ASchema4DatabaseGetsTheNodesTablesAfterABackup) {
  TempDir dir;
  const std::string db = dir / "old.db";
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
              SQLITE_OK);
    auto exec = [&](const std::string& sql) {
      char* msg = nullptr;
      EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &msg), SQLITE_OK)
          << sql << ": " << (msg ? msg : "");
      sqlite3_free(msg);
    };
    exec("PRAGMA application_id = 1130648436");
    exec(
        "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT "
        "NULL, "
        "applied_at INTEGER NOT NULL)");
    for (const auto& m : db::embedded_migrations()) {
      if (m.number > 4) break;
      exec(m.sql);
      exec(fmt::format("INSERT INTO schema_migrations VALUES ({}, '{}', '{}', 1700000000)", m.number, m.name,
                       db::migration_checksum(m.sql)));
    }
    exec("PRAGMA user_version = 4");
    sqlite3_close(raw);
  }
  auto store = open_or_die(db);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->stats()->schema_version, Store::schema_version());
  EXPECT_GE(Store::schema_version(), 5);
  std::size_t backups = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string prefix = "old.db.backup-4-to-" + std::to_string(Store::schema_version()) + "-";
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++backups;
  }
  EXPECT_EQ(backups, 1u);
  auto ids = store->record_nodes({report("127.0.0.1:1", "default", {}, 1)});
  ASSERT_TRUE(ids) << ids.error().to_string();
  EXPECT_EQ(store->nodes()->size(), 1u);
  EXPECT_TRUE(store->verify()->ok());
}

// Agents' nodes and their reported upgrades (migration 0008; docs/agent-protocol.md), on both
// backends.
class StoreAgentNodes : public BackendTest {};

TEST_P(StoreAgentNodes, AnAgentIsOneNodeByNameAndItsOutcomesAreItsHistory) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  ASSERT_TRUE(store);
  ASSERT_EQ(import_bytes(*store, variant("hello.beam", 0), "h", "hello_app"), 1);
  ASSERT_EQ(import_bytes(*store, read_file(fixture("attrs.beam")), "a", "attrs_app"), 1);
  NodeReport hello = report("127.0.0.1:5001", "default",
                            {fetched(*store, "hello", 1), fetched(*store, "attrs", 1)}, 1700000100);
  hello.name = "a1@host";
  hello.agent_vsn = "0.1.0";
  hello.replace_modules = true;
  auto first = store->record_nodes({hello});
  ASSERT_TRUE(first) << first.error().to_string();
  // It reconnects from another port, with one module less loaded: the same node, its modules replaced.
  hello.address = "127.0.0.1:5002";
  hello.modules = {fetched(*store, "hello", 1)};
  hello.seen_at = 1700000200;
  auto second = store->record_nodes({hello});
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(first->front(), second->front());
  auto nodes = store->nodes({.with_modules = true, .name = "a1@host"});
  ASSERT_TRUE(nodes) << nodes.error().to_string();
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ(nodes->front().address, "127.0.0.1:5002");
  EXPECT_EQ(nodes->front().agent_vsn, "0.1.0");
  ASSERT_EQ(nodes->front().modules.size(), 1u);
  EXPECT_EQ(nodes->front().modules[0].module, "hello");
  EXPECT_EQ(nodes->front().last_upgrade.id, 0);

  NodeUpgrade u;
  u.node = first->front();
  u.node_name = "a1@host";
  u.channel = "default";
  u.from_generation = 2;
  u.to_generation = 7;
  u.outcome = "sideways";
  EXPECT_EQ(store->record_node_upgrade(u).error().code(), Code::kInvalidArgument);
  u.outcome = "applied";
  u.duration_ms = 40;
  u.suspended = 3;
  u.blocking = 1;
  u.modules = {{"hello", "loaded", ""}, {"attrs", "refused", "old code lingers"}};
  u.report = "#{outcome => applied}";
  auto id = store->record_node_upgrade(u);
  ASSERT_TRUE(id) << id.error().to_string();
  auto ups = store->node_upgrades("a1@host");
  ASSERT_TRUE(ups) << ups.error().to_string();
  ASSERT_EQ(ups->size(), 1u);
  EXPECT_EQ(ups->front().id, *id);
  EXPECT_EQ(ups->front().outcome, "applied");
  EXPECT_EQ(ups->front().suspended, 3u);
  EXPECT_EQ(ups->front().blocking, 1u);
  ASSERT_EQ(ups->front().modules.size(), 2u);
  EXPECT_EQ(ups->front().modules[0].module, "attrs");  // by module
  EXPECT_EQ(ups->front().modules[0].detail, "old code lingers");
  nodes = store->nodes({.name = "a1@host"});
  ASSERT_TRUE(nodes);
  EXPECT_EQ(nodes->front().generation, 7);  // applied: it runs the plan's target
  EXPECT_EQ(nodes->front().last_upgrade.id, *id);
  auto history = store->history();
  ASSERT_TRUE(history);
  EXPECT_EQ(history->back().action, "node-upgrade");
  EXPECT_EQ(history->back().channel, "default");
  EXPECT_EQ(history->back().from_version, 2);
  EXPECT_EQ(history->back().to_version, 7);

  // The applier's word on the node's code after a plan: "loaded" with an MD5 replaces what the
  // hello said, so that the node is judged by the code it runs now.
  ASSERT_EQ(import_bytes(*store, variant("hello.beam", 1), "h", "hello_app"), 2);
  auto gen = store->channel_generation("default");
  ASSERT_TRUE(gen);
  nodes = store->nodes({.name = "a1@host"});
  ASSERT_TRUE(nodes);
  EXPECT_TRUE(nodes->front().behind);  // its hello said hello v1
  auto versions = store->versions("hello");
  ASSERT_TRUE(versions);
  const std::string md5_v2 = versions->back().md5;
  NodeUpgrade already = u;
  already.from_generation = 7;
  already.to_generation = gen->number;
  already.outcome = "already";
  already.modules = {{"hello", "loaded", md5_v2}};
  ASSERT_TRUE(store->record_node_upgrade(already));
  nodes = store->nodes({.with_modules = true, .name = "a1@host"});
  ASSERT_TRUE(nodes);
  EXPECT_EQ(nodes->front().generation, gen->number);  // already: it runs the plan's target
  ASSERT_EQ(nodes->front().modules.size(), 1u);
  EXPECT_EQ(nodes->front().modules[0].md5, md5_v2);
  EXPECT_FALSE(nodes->front().behind) << nodes->front().runs_generation;
  // Forgotten, the node goes; its history stays.
  auto forgot = store->forget_nodes(1800000000);
  ASSERT_TRUE(forgot);
  EXPECT_EQ(*forgot, 1u);
  ups = store->node_upgrades("", "default");
  ASSERT_TRUE(ups);
  EXPECT_EQ(ups->size(), 2u);
}

CODESTORE_BOTH_BACKENDS(StoreAgentNodes);

}  // namespace
}  // namespace codestore

// Followers (issue 16 item 2; include/codestore/follow.h, docs/fleet.md): a local SQLite
// replica of a store on the tests' real PostgreSQL server. The replica must end equal to the
// primary, row for row, in every table a follower writes; these tests compare them raw.
#include <codestore/follow.h>
#include <codestore/store.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "db/connection.h"
#include "db/pg_listener.h"
#include "follow_test_util.h"
#include "release_test_util.h"
#include "store_test_util.h"
#include "support/pg_server.h"

namespace codestore {
namespace {

using namespace store_testing;
namespace fs = std::filesystem;

class Follow : public BackendTest {
 protected:
  std::string fresh() {
    auto uri = testing::pg_create_database();
    mine_.push_back(uri);
    return uri;
  }
  void TearDown() override {
    for (const auto& uri : mine_) testing::pg_drop_database(uri);
    BackendTest::TearDown();
  }

 private:
  std::vector<std::string> mine_;
};
INSTANTIATE_TEST_SUITE_P(Backends, Follow, ::testing::Values(Backend::kPostgresql), backend_name);

std::unique_ptr<Follower> follower_or_die(const std::string& uri, const std::string& replica,
                                          FollowOptions options = {}) {
  auto f = Follower::open(uri, replica, std::move(options));
  EXPECT_TRUE(f.has_value()) << f.error().to_string();
  return f ? std::move(*f) : nullptr;
}

std::unique_ptr<Store> channel_store(const std::string& uri, const std::string& channel) {
  StoreOptions o;
  o.channel = channel;
  return open_or_die(uri, o);
}

TEST_P(Follow, CatchesUpAfterMissedAnnouncementsAndEndsEqualToThePrimary) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  auto primary = open_or_die(uri);
  auto beta = channel_store(uri, "beta");
  for (int i = 1; i <= 4; ++i) import_bytes(*primary, variant("hello.beam", i));
  import_bytes(*beta, variant("hello.beam", 2));  // a blob the replica has by then
  import_bytes(*beta, variant("hello.beam", 7));
  ASSERT_TRUE(primary->rollback("hello"));
  ASSERT_TRUE(primary->release_create("snap1", {}));

  auto f = follower_or_die(uri, replica);
  auto first = f->catch_up();
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_EQ(first->generations, 8u);  // default: 4 imports, a rollback, a snapshot; beta: 2 imports
  expect_replica_equal(uri, replica);

  // Changes nobody heard announced (no follower was listening): read on the next catch-up.
  import_bytes(*primary, variant("hello.beam", 5));
  ASSERT_TRUE(primary->channel_rollback());
  import_bytes(*beta, variant("hello.beam", 8));
  auto second = f->catch_up();
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(second->generations, 3u);
  expect_replica_equal(uri, replica);
  auto again = f->catch_up();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->generations, 0u);

  // The replica reads as the primary does, through the store's own API.
  auto local = open_or_die(replica);
  for (const std::string channel : {"default", "beta"}) {
    auto p = channel_store(uri, channel);
    StoreOptions o;
    o.channel = channel;
    auto r = open_or_die(replica, o);
    auto pb = p->active("hello");
    auto rb = r->active("hello");
    ASSERT_TRUE(pb && rb) << (pb ? rb.error().to_string() : pb.error().to_string());
    EXPECT_EQ(pb->info.version, rb->info.version) << channel;
    EXPECT_EQ(pb->info.rollback_target, rb->info.rollback_target) << channel;
    EXPECT_EQ(pb->bytes, rb->bytes) << channel;
    auto ph = p->channel_history(channel);
    auto rh = r->channel_history(channel);
    ASSERT_TRUE(ph && rh);
    ASSERT_EQ(ph->size(), rh->size());
    for (std::size_t i = 0; i < ph->size(); ++i) {
      EXPECT_EQ((*ph)[i].number, (*rh)[i].number);
      EXPECT_EQ((*ph)[i].action, (*rh)[i].action);
      EXPECT_EQ((*ph)[i].changes.size(), (*rh)[i].changes.size());
    }
  }
  auto st = follow_status(replica, true);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_TRUE(st->primary_reached) << st->primary_error.to_string();
  ASSERT_EQ(st->channels.size(), 2u);
  for (const auto& c : st->channels) {
    ASSERT_TRUE(c.primary.has_value()) << c.channel;
    EXPECT_EQ(c.applied, *c.primary) << c.channel;
  }
}

// An Erlang release over OTP's own applications (read by the test's walker), with the files a
// relx release keeps in releases/.
ReleaseContent otp_release(const std::string& name, const std::string& vsn,
                           const std::vector<std::string>& apps) {
  ReleaseContent r;
  r.name = name;
  r.vsn = vsn;
  r.erts_vsn =
      release_testing::run("erl -noshell -eval 'io:format(\"~s\", [erlang:system_info(version)]), halt().'")
          .output;
  r.kind = "relx";
  r.origin = "test";
  std::vector<fs::path> dirs;
  for (const auto& a : apps) {
    for (const auto& e : fs::directory_iterator("/usr/lib/erlang/lib")) {
      if (e.path().filename().string().rfind(a + "-", 0) == 0) dirs.push_back(e.path());
    }
  }
  std::string rel = "{release, {\"" + name + "\", \"" + vsn + "\"}, {erts, \"" + r.erts_vsn + "\"}, [";
  for (auto& a : release_testing::read_app_dirs(dirs)) {
    rel += (r.rel_apps.empty() ? "{" : ", {") + a.app + ", \"" + a.vsn + "\"}";
    r.rel_apps.push_back({a.app, a.vsn, "", ""});
    r.apps.push_back(std::move(a));
  }
  rel += "]}.\n";
  auto text = [](const std::string& path, const std::string& t) {
    ContentFile f;
    f.path = path;
    f.bytes.assign(t.begin(), t.end());
    f.mode = 0644;
    return f;
  };
  r.files.push_back(text("releases/" + vsn + "/" + name + ".rel", rel));
  r.files.push_back(text("releases/" + vsn + "/start.boot", "boot script of " + name + "@" + vsn));
  r.files.push_back(text("releases/" + vsn + "/sys.config", "[{sasl, [{vsn, \"" + vsn + "\"}]}].\n"));
  r.files.push_back(text("releases/start_erl.data", r.erts_vsn + " " + vsn + "\n"));
  return r;
}

// Every file under `dir` (but the manifest) with its bytes.
std::map<std::string, std::string> files_under(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == ".codestore-materialized") continue;
    const auto bytes = read_file(e.path());
    out[fs::relative(e.path(), dir).string()] = std::string(bytes.begin(), bytes.end());
  }
  return out;
}

TEST_P(Follow, DeploysAndAChannelRollbackReachTheReplicaAndMaterializeReadsItAsThePrimary) {
  if (release_testing::run("erl -noshell -eval 'halt().'").code != 0) GTEST_SKIP() << "erl is not installed";
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  auto prod = channel_store(uri, "prod");
  for (const auto& r : {otp_release("web", "1", {"sasl", "runtime_tools"}),
                        otp_release("web", "2", {"sasl", "runtime_tools", "tools"})}) {
    auto i = prod->import_release(r);
    ASSERT_TRUE(i) << i.error().to_string();
    auto d = prod->deploy({r.name, r.vsn});
    ASSERT_TRUE(d) << d.error().to_string();
  }
  auto f = follower_or_die(uri, replica);
  ASSERT_TRUE(f->catch_up());
  expect_replica_equal(uri, replica);
  // The rollback: web@1 again, without a deploy naming it.
  ASSERT_TRUE(prod->channel_rollback());
  auto b = f->catch_up();
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->generations, 1u);
  EXPECT_EQ(b->blobs_fetched, 0u);  // everything web@1 needs is there
  expect_replica_equal(uri, replica);

  auto local = channel_store(replica, "prod");
  auto pa = prod->channel_apps("prod");
  auto ra = local->channel_apps("prod");
  ASSERT_TRUE(pa && ra) << (pa ? ra.error().to_string() : pa.error().to_string());
  EXPECT_EQ(pa->release.vsn, "1");
  EXPECT_EQ(ra->release.vsn, "1");
  EXPECT_EQ(pa->apps.size(), ra->apps.size());
  auto pm = prod->materialize(dir / "from-primary");
  auto rm = local->materialize(dir / "from-replica");
  ASSERT_TRUE(pm && rm) << (pm ? rm.error().to_string() : pm.error().to_string());
  EXPECT_EQ(pm->written, rm->written);
  EXPECT_EQ(files_under(dir / "from-primary"), files_under(dir / "from-replica"));
  EXPECT_NE(files_under(dir / "from-replica").count("releases/1/sys.config"), 0u);
}

TEST_P(Follow, FetchesOnlyTheBlobsItLacks) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  auto primary = open_or_die(uri);
  auto beta = channel_store(uri, "beta");
  import_bytes(*primary, variant("hello.beam", 1));
  import_bytes(*primary, variant("hello.beam", 2));
  auto f = follower_or_die(uri, replica);
  auto a = f->catch_up();
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->generations, 2u);
  EXPECT_EQ(a->blobs_fetched, 2u);
  EXPECT_EQ(a->blobs_present, 0u);
  EXPECT_GT(a->bytes_fetched, 0u);

  // A rollback and the same two images imported into another channel: nothing new to fetch.
  ASSERT_TRUE(primary->rollback("hello"));
  import_bytes(*beta, variant("hello.beam", 1));
  import_bytes(*beta, variant("hello.beam", 2));
  import_bytes(*beta, variant("hello.beam", 3));  // one new
  auto b = f->catch_up();
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->generations, 4u);
  EXPECT_EQ(b->blobs_fetched, 1u);
  EXPECT_EQ(b->blobs_present, 3u);  // the rollback's version 1, beta's 1 and 2
  EXPECT_EQ(count_rows(replica, "SELECT count(*) FROM blobs"), 3);
  expect_replica_equal(uri, replica);
}

// What each of the primary's module versions is, by SHA-256: its image's and, in order, its
// chunks' (the ids behind them are each database's own).
const std::string kVersionShas =
    "SELECT v.module, v.version, HEX(b.sha256) FROM versions v JOIN blobs b ON b.id = v.blob_id ORDER BY 1, "
    "2";
const std::string kVersionChunkShas =
    "SELECT v.module, v.version, bc.seq, HEX(c.sha256) FROM versions v JOIN blob_chunks bc ON bc.blob_id = "
    "v.blob_id JOIN chunks c ON c.id = bc.chunk_id ORDER BY 1, 2, 3";

// Every row of the primary's `sql` is a row of the replica's (the replica also keeps what the
// primary's gc deleted since).
void expect_replica_holds(const std::string& uri, const std::string& replica, const std::string& sql) {
  const auto local = sqlite_rows(replica, for_sqlite(sql));
  const std::set<std::string> have(local.begin(), local.end());
  const auto primary = testing::pg_rows(uri, for_postgresql(sql));
  ASSERT_FALSE(primary.empty()) << sql;
  for (const auto& row : primary) EXPECT_EQ(have.count(row), 1u) << row << " of " << sql;
}

// How many rows of `table` the replica holds under another id than the primary's (same SHA-256).
std::size_t ids_differing(const std::string& uri, const std::string& replica, const std::string& table) {
  const std::string sql = "SELECT HEX(sha256), id FROM " + table + " ORDER BY 1";
  const auto local = sqlite_rows(replica, for_sqlite(sql));
  const std::set<std::string> have(local.begin(), local.end());
  std::size_t n = 0;
  for (const auto& row : testing::pg_rows(uri, for_postgresql(sql))) n += have.count(row) == 0;
  return n;
}

// hello.beam's variant n (store_test_util.h) with a Docs chunk of its own: the store keeps a
// debug chunk of 64 bytes or more apart, as a chunk row (store/chunk_layout.h), so version n has
// a blob and a chunk no other version shares.
std::vector<std::uint8_t> with_docs(int n) {
  const auto bytes = variant("hello.beam", n);
  auto img = image::Image::parse(bytes, image::Strictness::kStrict, "hello.beam");
  EXPECT_TRUE(img.has_value());
  const std::string docs = std::string(100, 'd') + " of variant " + std::to_string(n);
  std::vector<image::ChunkData> chunks;
  for (const auto& c : img->chunks()) chunks.push_back({std::string(c.id_view()), img->data(c)});
  chunks.push_back({"Docs", image::Bytes(reinterpret_cast<const std::uint8_t*>(docs.data()), docs.size())});
  auto built = image::build_module(chunks);
  EXPECT_TRUE(built.has_value());
  return *built;
}

// The primary's gc deletes a blob and chunks the replica keeps; the same bytes imported again
// get new ids there, and an id the primary hands out again (its identity restarted) names
// other bytes than the replica's row of that id. The follower matches rows by SHA-256: it
// converges, and every version reads as on the primary.
TEST_P(Follow, RowsTheReplicaHoldsUnderOtherIdsAreMatchedBySha256) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  const std::string db = db_name(uri);
  auto primary = open_or_die(uri);
  for (int i = 1; i <= 3; ++i) import_bytes(*primary, with_docs(i));
  auto f = follower_or_die(uri, replica);
  ASSERT_TRUE(f->catch_up());
  const auto v1_blob =
      testing::pg_rows(uri, "SELECT blob_id FROM versions WHERE module = 'hello' AND version = 1");
  ASSERT_EQ(v1_blob.size(), 1u);
  // Version 1 is neither active, nor a rollback target, nor the previous generation's.
  auto gc = primary->gc({});
  ASSERT_TRUE(gc) << gc.error().to_string();
  ASSERT_EQ(gc->blobs_deleted, 1);
  ASSERT_EQ(gc->chunks_deleted, 1);  // its Docs

  // Version 1's blob id handed out again, to other bytes.
  testing::pg_exec(
      db, "ALTER TABLE blobs ALTER COLUMN id RESTART WITH " + v1_blob[0].substr(0, v1_blob[0].size() - 1));
  import_bytes(*primary, with_docs(4));
  testing::pg_exec(db, "SELECT setval(pg_get_serial_sequence('blobs', 'id'), (SELECT max(id) FROM blobs))");
  // Version 1's bytes again: a new blob id on the primary, new chunk ids for the chunks gc
  // deleted.
  import_bytes(*primary, with_docs(1));
  auto caught = f->catch_up();
  ASSERT_TRUE(caught) << caught.error().to_string();
  EXPECT_EQ(caught->generations, 2u);
  EXPECT_EQ(caught->blobs_fetched, 1u);  // variant 4's; variant 1's the replica has
  EXPECT_EQ(caught->blobs_present, 1u);
  EXPECT_EQ(ids_differing(uri, replica, "blobs"), 2u);   // variant 4's (id taken) and 1's (kept its id)
  EXPECT_EQ(ids_differing(uri, replica, "chunks"), 1u);  // variant 1's Docs (kept its id)
  expect_replica_holds(uri, replica, kVersionShas);
  expect_replica_holds(uri, replica, kVersionChunkShas);
  EXPECT_EQ(count_rows(replica, "SELECT count(*) FROM blobs"), 4);

  // The store reads the replica as the primary: every version's bytes, and the active one.
  auto local = open_or_die(replica);
  for (std::int64_t v = 2; v <= 5; ++v) {
    auto p = primary->get("hello", v, /*verify_sha256=*/true);
    auto r = local->get("hello", v, /*verify_sha256=*/true);
    ASSERT_TRUE(p && r) << v << ": " << (p ? r.error().to_string() : p.error().to_string());
    EXPECT_EQ(*p, *r) << v;
  }
  auto active = local->active("hello");
  ASSERT_TRUE(active) << active.error().to_string();
  EXPECT_EQ(active->bytes, with_docs(1));
  auto verified = local->verify();
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_TRUE(verified->damage.empty());
  auto again = f->catch_up();
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->generations, 0u);
}

TEST_P(Follow, OnlyTheChannelsAskedFor) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  import_bytes(*open_or_die(uri), variant("hello.beam", 1));
  import_bytes(*channel_store(uri, "beta"), variant("hello.beam", 2));
  auto f = follower_or_die(uri, replica, {.channels = {"beta"}});
  auto a = f->catch_up();
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->generations, 1u);
  EXPECT_EQ(count_rows(replica, "SELECT count(*) FROM generations WHERE channel = 'default'"), 0);
  EXPECT_EQ(count_rows(replica, "SELECT count(*) FROM blobs"), 1);
  auto st = follow_status(replica, true);
  ASSERT_TRUE(st);
  ASSERT_EQ(st->channels.size(), 1u);
  EXPECT_EQ(st->channels[0].channel, "beta");
  EXPECT_EQ(st->channels[0].applied, 1);
}

TEST_P(Follow, AnAnnouncementIsTheGenerationNumberOnlyEvenFor100Modules) {
  TempDir dir;
  const std::string uri = fresh();
  auto primary = open_or_die(uri);
  import_bytes(*primary, variant("hello.beam", 1));
  auto listener = db::listen_postgresql(uri, db::kGenerationTopic);
  // OTP's own kernel and stdlib: well over 100 modules, one import, one generation.
  const std::vector<std::string> ebins = otp_ebins({"kernel", "stdlib"});
  auto imported = primary->import_tree(ebins);
  ASSERT_TRUE(imported) << imported.error().to_string();
  ASSERT_GE(imported->items.size(), 100u);
  std::vector<std::string> heard;
  for (int i = 0; i < 100 && heard.empty(); ++i) heard = listener->wait(std::chrono::milliseconds(100));
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0], "2");
  EXPECT_LT(heard[0].size(), 64u);
  // A transaction that rolls back announces nothing: a refused import (a damaged image).
  std::vector<std::uint8_t> junk(100, 0x42);
  EXPECT_FALSE(primary->import(junk, "junk"));
  EXPECT_TRUE(listener->wait(std::chrono::milliseconds(300)).empty());
}

TEST_P(Follow, RunHearsAnnouncementsAndReconnectsWhenItsBackendIsTerminated) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  auto primary = open_or_die(uri);
  import_bytes(*primary, variant("hello.beam", 1));
  std::mutex m;
  std::vector<std::int64_t> applied;
  FollowOptions o;
  o.poll = std::chrono::minutes(10);  // only announcements and reconnects make it read
  o.backoff_min = std::chrono::milliseconds(20);
  o.applied = [&](std::string_view, std::int64_t k) {
    std::lock_guard lock(m);
    applied.push_back(k);
  };
  auto f = follower_or_die(uri, replica, o);
  std::atomic<bool> stop{false};
  Status result;
  std::thread t([&] { result = f->run(stop); });
  auto reaches = [&](std::int64_t k) {
    return eventually([&] { return applied_generation(replica, "default") >= k; });
  };
  EXPECT_TRUE(reaches(1));
  import_bytes(*primary, variant("hello.beam", 2));
  EXPECT_TRUE(reaches(2));  // heard
  // Its listening session ends; what commits meanwhile is announced to nobody.
  const std::string db = db_name(uri);
  EXPECT_TRUE(eventually([&] { return terminate_listeners(db) > 0; }));
  import_bytes(*primary, variant("hello.beam", 3));
  import_bytes(*primary, variant("hello.beam", 4));
  EXPECT_TRUE(reaches(4));  // read after the reconnect
  stop = true;
  t.join();
  EXPECT_TRUE(result) << result.to_string();
  EXPECT_EQ(applied, (std::vector<std::int64_t>{1, 2, 3, 4}));
  expect_replica_equal(uri, replica);
}

TEST_P(Follow, AFollowerKilledWhileApplyingRecoversOnRestart) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  {
    auto primary = open_or_die(uri);
    for (int i = 1; i <= 5; ++i) import_bytes(*primary, variant("hello.beam", i));
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // SIGKILL inside generation 3's local transaction: its rows written, not committed.
    FollowOptions o;
    o.inside_apply = [](std::string_view, std::int64_t k) {
      if (k == 3) ::raise(SIGKILL);
    };
    auto f = Follower::open(uri, replica, o);
    if (f) static_cast<void>((*f)->catch_up());
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(applied_generation(replica, "default"), 2);
  {
    auto r = open_or_die(replica);
    auto ch = r->channel_generation("default");
    ASSERT_TRUE(ch) << ch.error().to_string();
    EXPECT_EQ(ch->number, 2);  // what the replica serves: generation 2, whole
  }
  std::vector<std::int64_t> applied;
  auto f = follower_or_die(uri, replica,
                           {.applied = [&](std::string_view, std::int64_t k) { applied.push_back(k); }});
  auto rest = f->catch_up();
  ASSERT_TRUE(rest) << rest.error().to_string();
  EXPECT_EQ(applied, (std::vector<std::int64_t>{3, 4, 5}));
  expect_replica_equal(uri, replica);
}

TEST_P(Follow, AReplicaRefusesChangesAndNamesItsPrimary) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  import_bytes(*open_or_die(uri), variant("hello.beam", 1));
  ASSERT_TRUE(follower_or_die(uri, replica)->catch_up());
  auto r = open_or_die(replica);
  auto imported = r->import(variant("hello.beam", 2), "local");
  ASSERT_FALSE(imported);
  EXPECT_EQ(imported.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(imported.error().message().find("replica of " + uri), std::string::npos)
      << imported.error().message();
  EXPECT_FALSE(r->rollback("hello"));
  EXPECT_FALSE(r->gc({}));
  // Reads work; what is the host's own (served counts, the nodes served) it still records.
  EXPECT_TRUE(r->active("hello"));
  EXPECT_TRUE(r->record_served("hello", 1, "127.0.0.1"));
  // And what its nodes' agents report (serve --follow: the agents report to the host's replica).
  NodeUpgrade u;
  u.node_name = "a@host";
  u.channel = "default";
  u.from_generation = 0;
  u.to_generation = 1;
  u.outcome = "applied";
  auto reported = r->record_node_upgrade(u);
  EXPECT_TRUE(reported) << reported.error().to_string();

  // The command line says the same, exit 1.
  write_file(dir / "m.beam", variant("hello.beam", 3));
  auto cli = run_cli(replica, {"import", (dir / "m.beam").string()});
  EXPECT_EQ(cli.code, 1);
  EXPECT_NE(cli.err.find("replica of " + uri), std::string::npos) << cli.err;
}

TEST_P(Follow, BadInputIsRefusedSayingWhy) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  import_bytes(*open_or_die(uri), variant("hello.beam", 1));
  {
    // A replica is a SQLite file, never a store on PostgreSQL.
    auto f = Follower::open(uri, fresh());
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), Code::kInvalidArgument) << f.error().to_string();
    EXPECT_NE(f.error().message().find("a replica is a local SQLite file"), std::string::npos);
  }
  {
    auto f = Follower::open("postgresql://[::1/db", replica);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), Code::kInvalidArgument) << f.error().to_string();
    EXPECT_NE(f.error().message().find("malformed PostgreSQL URI"), std::string::npos);
    auto g = Follower::open("/some/file.db", replica);
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().code(), Code::kInvalidArgument) << g.error().to_string();
  }
  {
    const std::string wrong =
        "postgresql://codestore_test_user:wrong@/" + db_name(uri) + "?host=" + testing::pg_server_dir();
    auto f = Follower::open(wrong, replica);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), Code::kPermissionDenied) << f.error().to_string();
    EXPECT_EQ(f.error().message().find("wrong"), std::string::npos) << f.error().message();
  }
  {
    // No replica yet: the primary must be named; a store with content is no replica.
    auto f = Follower::open("", dir / "none.db");
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), Code::kInvalidArgument);
    const std::string own = dir / "own.db";
    import_bytes(*open_or_die(own), variant("hello.beam", 1));
    auto g = Follower::open(uri, own);
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().code(), Code::kFailedPrecondition) << g.error().to_string();
    auto st = follow_status(own, false);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code(), Code::kFailedPrecondition);
  }
  {
    // A replica follows one store: another store is refused, even at the same URI later. (The
    // tests' databases are copies of one template, so of one store: this one is made another.)
    ASSERT_TRUE(follower_or_die(uri, replica)->catch_up());
    const std::string other = fresh();
    testing::pg_exec(db_name(other), "UPDATE meta SET value = value / 2 + 1 WHERE key = 'store_id'");
    auto f = Follower::open(other, replica);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), Code::kFailedPrecondition) << f.error().to_string();
    EXPECT_NE(f.error().message().find("follows store"), std::string::npos) << f.error().message();
    auto st = follow_status(replica, true, other);
    ASSERT_TRUE(st);
    EXPECT_FALSE(st->primary_reached);
    EXPECT_EQ(st->primary_error.code(), Code::kFailedPrecondition);
  }
  {
    // A primary with a newer schema than this build knows.
    testing::pg_exec(db_name(uri),
                     "INSERT INTO schema_migrations (number, name, checksum, applied_at) VALUES (999, "
                     "'9999_future', 'x', 0)");
    auto f = Follower::open(uri, replica);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), Code::kNotSupported) << f.error().to_string();
  }
  {
    // A primary that is not there: the replica's status still answers, from the replica.
    const std::string gone = "postgresql:///nodb?host=" + (dir / "nosocket").string() + "&user=postgres";
    auto st = follow_status(replica, true, gone);
    ASSERT_TRUE(st) << st.error().to_string();
    EXPECT_FALSE(st->primary_reached);
    EXPECT_EQ(st->primary_error.code(), Code::kIOError) << st->primary_error.to_string();
    ASSERT_EQ(st->channels.size(), 1u);
    EXPECT_EQ(st->channels[0].applied, 1);
  }
}

TEST_P(Follow, TheCommandLineFollowsOnceAndSaysHowFarBehind) {
  TempDir dir;
  const std::string uri = fresh();
  const std::string replica = dir / "replica.db";
  auto primary = open_or_die(uri);
  import_bytes(*primary, variant("hello.beam", 1));
  auto once = run_cli(replica, {"follow", uri, "--once"});
  ASSERT_EQ(once.code, 0) << once.err;
  EXPECT_NE(once.out.find("applied 1 generations: 1 blobs fetched"), std::string::npos) << once.out;
  import_bytes(*primary, variant("hello.beam", 2));
  import_bytes(*primary, variant("hello.beam", 3));
  auto st = run_cli(replica, {"follow", "--status"});
  ASSERT_EQ(st.code, 0) << st.err;
  EXPECT_NE(st.out.find("default\tgeneration 1\t2 behind (primary at 3)"), std::string::npos) << st.out;
  auto again = run_cli(replica, {"follow", "--once"});  // the recorded primary
  ASSERT_EQ(again.code, 0) << again.err;
  auto json = run_cli(replica, {"--json", "follow", "--status"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_NE(json.out.find("\"channel\":\"default\",\"applied\":3"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"behind\":0"), std::string::npos) << json.out;
  auto bad = run_cli(replica, {"follow", "postgresql://[::1/x", "--once"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("malformed PostgreSQL URI"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace codestore

// A schema-2 database (one flat active set, snapshot releases) migrates to channels and
// generations with nothing lost (issue 13 item 7): its active set is channel default's current
// generation, with every module's activation time and rollback target; each snapshot keeps its
// exact set as a labelled generation that release show/rollback still find by name; the events
// stay; a backup is written first. The database is built the way schema 2 left one: the
// embedded migrations 0001 and 0002 run by hand, rows written with SQL.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>

#include "db/migrations.h"
#include "raw_db.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

// hello@1..4 (lib hello_app) and attrs@1 (lib attrs_app), stored by today's code: real blobs
// for the schema-2 file to take, whole (StoreOptions::chunks off) as before schema 6.
void make_source(const std::string& path) {
  StoreOptions whole;
  whole.chunks = false;
  auto s = open_or_die(path, whole);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(import_bytes(*s, variant("hello.beam", i), "h", "hello_app"), i + 1);
  ASSERT_EQ(import_bytes(*s, read_file(fixture("attrs.beam")), "a", "attrs_app"), 1);
  ASSERT_TRUE(s->checkpoint());
}

// A schema-2 file: hello active 3 since 1700000300 (rollback target 4), attrs inactive (target
// 1, as a release rollback to a snapshot without it leaves it); snapshots r1 = {attrs 1,
// hello 1} ("first note") and r2 = {hello 2}; three events.
void make_schema2(const std::string& path, const std::string& source) {
  RawDb raw(path);
  raw.exec("PRAGMA application_id = 1130648436");  // 0x43645374, "CdSt"
  raw.exec(
      "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT "
      "NULL, "
      "applied_at INTEGER NOT NULL)");
  for (const auto& m : db::embedded_migrations()) {
    if (m.number > 2) break;
    raw.exec(m.sql);
    raw.exec(fmt::format("INSERT INTO schema_migrations VALUES ({}, '{}', '{}', 1700000000)", m.number,
                         m.name, db::migration_checksum(m.sql)));
  }
  raw.exec("PRAGMA user_version = 2");
  raw.exec("ATTACH DATABASE '" + source + "' AS src");
  raw.exec(
      "INSERT INTO blobs (id, sha256, raw_size, stored_size, level, dictionary_id, data, load_verdict) "
      "SELECT id, "
      "sha256, raw_size, stored_size, level, dictionary_id, data, load_verdict FROM src.blobs");
  raw.exec(
      "INSERT INTO modules (name, high_water, active_version, active_since, previous_version) VALUES "
      "('hello', 4, 3, 1700000300, 4), ('attrs', 1, 0, 0, 1)");
  raw.exec(
      "INSERT INTO versions (module, version, blob_id, lib, md5, vsn, origin, note, warning, imported_at) "
      "SELECT "
      "module, version, blob_id, lib, md5, vsn, origin, note, warning, imported_at FROM src.versions");
  raw.exec("DETACH DATABASE src");
  raw.exec(
      "INSERT INTO releases (name, created_at, note) VALUES ('r2', 1700000200, ''), ('r1', 1700000100, "
      "'first "
      "note')");
  raw.exec(
      "INSERT INTO release_modules (release, module, version) VALUES ('r1', 'attrs', 1), ('r1', 'hello', 1), "
      "('r2', 'hello', 2)");
  raw.exec(
      "INSERT INTO events (time, action, module, from_version, to_version, reason) VALUES (1700000001, "
      "'import', "
      "'hello', 0, 1, 'h'), (1700000002, 'release-create', '', 0, 0, 'r1'), (1700000003, 'load', 'hello', 0, "
      "1, "
      "'loader')");
}

TEST(StoreMigrationToChannels, ASchema2DatabaseLosesNothing) {
  TempDir dir;
  make_source(dir / "src.db");
  const std::string db = dir / "old.db";
  make_schema2(db, dir / "src.db");

  auto store = open_or_die(db);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->stats()->schema_version, Store::schema_version());
  std::vector<std::string> backups;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string prefix = "old.db.backup-2-to-" + std::to_string(Store::schema_version()) + "-";
    if (e.path().filename().string().rfind(prefix, 0) == 0) backups.push_back(e.path().string());
  }
  EXPECT_EQ(backups.size(), 1u);

  // The active set, with activation times and rollback targets.
  auto list = store->list();
  ASSERT_TRUE(list) << list.error().to_string();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].module, "attrs");
  EXPECT_EQ((*list)[0].active_version, 0);
  EXPECT_EQ((*list)[1].module, "hello");
  EXPECT_EQ((*list)[1].active_version, 3);
  EXPECT_EQ((*list)[1].active_since, 1700000300);
  EXPECT_EQ((*list)[1].lib, "hello_app");
  for (const auto& [module, target] : {std::pair{"hello", 4}, std::pair{"attrs", 1}}) {
    const auto versions = store->versions(module);
    ASSERT_TRUE(versions);
    for (const auto& v : *versions) EXPECT_EQ(v.rollback_target, v.version == target) << module;
  }

  // Channel default: the snapshots as generations 1 and 2 in the order they were made, the
  // active set as generation 3.
  auto channels = store->channels();
  ASSERT_EQ(channels->size(), 1u);
  EXPECT_EQ((*channels)[0].name, "default");
  EXPECT_EQ((*channels)[0].generation, 3);
  EXPECT_EQ((*channels)[0].previous, 0);
  auto h = store->channel_history("default");
  ASSERT_TRUE(h) << h.error().to_string();
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].action, "migrate");
  EXPECT_EQ((*h)[1].label, "r2");
  EXPECT_EQ((*h)[1].created_at, 1700000200);
  EXPECT_EQ((*h)[2].label, "r1");
  EXPECT_EQ((*h)[2].reason, "first note");
  EXPECT_EQ((*h)[2].modules, 2);
  EXPECT_EQ(store->channel_generation("default")->content,
            (std::vector<ReleaseEntry>{{"hello", 3, "hello_app"}}));

  // The snapshots, by name, with their exact sets.
  auto releases = store->release_list();
  ASSERT_TRUE(releases);
  ASSERT_EQ(releases->size(), 2u);
  EXPECT_EQ((*releases)[0].name, "r1");
  EXPECT_EQ((*releases)[0].note, "first note");
  EXPECT_EQ((*releases)[0].created_at, 1700000100);
  EXPECT_EQ((*releases)[0].module_count, 2);
  EXPECT_EQ((*releases)[1].name, "r2");
  EXPECT_EQ(store->release_show("r1")->modules,
            (std::vector<ReleaseEntry>{{"attrs", 1, "attrs_app"}, {"hello", 1, "hello_app"}}));
  EXPECT_EQ(store->release_show("r2")->modules, (std::vector<ReleaseEntry>{{"hello", 2, "hello_app"}}));

  // The events, those that changed the active set now of channel default.
  auto events = store->history();
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].channel, "default");
  EXPECT_EQ((*events)[2].action, "load");
  EXPECT_EQ((*events)[2].channel, "");

  // Nothing a rollback or a snapshot needs is collectable; the store is sound.
  EXPECT_TRUE(store->gc({0, true})->deleted.empty());
  EXPECT_TRUE(store->verify()->ok());

  // And it all still works: release rollback by name, module rollback, channel rollback.
  auto to_r1 = store->release_rollback("r1");
  ASSERT_TRUE(to_r1) << to_r1.error().to_string();
  EXPECT_EQ(*to_r1, (std::vector<Activation>{{"attrs", 0, 1}, {"hello", 3, 1}}));
  auto to_r2 = store->release_rollback("r2");
  ASSERT_TRUE(to_r2);
  EXPECT_EQ(*to_r2, (std::vector<Activation>{{"attrs", 1, 0}, {"hello", 1, 2}}));
  EXPECT_EQ(store->rollback("hello")->to_version, 1);
  auto back = store->channel_rollback();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->changes, (std::vector<Activation>{{"hello", 1, 2}}));
  EXPECT_TRUE(store->verify()->ok());

  // Schema 6 left the blobs whole; compact splits them into chunks (docs/store.md, "Chunks"),
  // and every version still reads back as the source store has it.
  auto c = store->compact({});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->blobs_chunked, 5);
  EXPECT_GT(store->stats()->chunks, 0);
  auto source = open_or_die(dir / "src.db");
  for (const auto& [module, n] : {std::pair{"hello", 4}, std::pair{"attrs", 1}}) {
    for (int v = 1; v <= n; ++v) {
      auto got = store->get(module, v, /*verify_sha256=*/true);
      ASSERT_TRUE(got) << got.error().to_string();
      EXPECT_EQ(*got, *source->get(module, v)) << module << "@" << v;
    }
  }
  EXPECT_TRUE(store->verify()->ok());
}

TEST(StoreMigrationToChannels, AFreshDatabaseHasAnEmptyDefaultChannel) {
  TempDir dir;
  auto store = open_or_die(dir / "s.db");
  auto channels = store->channels();
  ASSERT_TRUE(channels);
  ASSERT_EQ(channels->size(), 1u);
  EXPECT_EQ((*channels)[0].name, "default");
  EXPECT_EQ((*channels)[0].generation, 0);
  EXPECT_TRUE(store->channel_history("default")->empty());
  auto g = store->channel_generation("default");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->number, 0);
  EXPECT_TRUE(g->content.empty());
  EXPECT_TRUE(store->list()->empty());
}

}  // namespace
}  // namespace codestore

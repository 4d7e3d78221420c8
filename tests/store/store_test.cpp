// The store's import, read and maintenance paths on real temporary databases and real images,
// on both backends (backend.h: each test once on a SQLite file, once on PostgreSQL).
#include <codestore/term.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <thread>

#include "backend.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

class StoreTest : public BackendTest {};
CODESTORE_BOTH_BACKENDS(StoreTest);
class StoreCli : public BackendTest {};
CODESTORE_BOTH_BACKENDS(StoreCli);

TEST_P(StoreTest, ImportGivesVersionOneActiveAndGetReturnsTheBytes) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  const auto bytes = read_file(fixture("hello.beam"));
  auto r = store->import(bytes, "hello.beam", {.lib = "demo", .note = "first"});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->module, "hello");
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->previous, 0);
  EXPECT_FALSE(r->unchanged);
  EXPECT_TRUE(r->new_blob);

  auto got = store->get("hello", 1, /*verify_sha256=*/true);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, bytes);

  auto active = store->active("hello");
  ASSERT_TRUE(active);
  EXPECT_EQ(active->info.version, 1);
  EXPECT_EQ(active->info.lib, "demo");
  EXPECT_EQ(active->bytes, bytes);
  EXPECT_TRUE(active->info.active);
  EXPECT_GT(active->info.active_since, 0);

  // Metadata as the image library reads it.
  auto img = image::Image::parse(bytes, image::Strictness::kStrict);
  ASSERT_TRUE(img);
  EXPECT_EQ(active->info.md5, image::md5_hex(*img->md5()));
  EXPECT_EQ(active->info.vsn, etf::format_w(*img->vsn()));
  EXPECT_EQ(active->info.raw_size, bytes.size());
  EXPECT_EQ(active->info.origin, "hello.beam");
  EXPECT_EQ(active->info.note, "first");
  EXPECT_EQ(active->info.sha256.size(), 64u);
}

TEST_P(StoreTest, VersionsCountUpAndIdenticalToActiveIsANoOp) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  EXPECT_EQ(import_bytes(*store, variant("hello.beam", 0)), 1);
  EXPECT_EQ(import_bytes(*store, variant("hello.beam", 1)), 2);
  const auto gen = *store->generation();
  const auto events = store->history()->size();

  auto again = store->import(variant("hello.beam", 1), "again");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->version, 2);
  EXPECT_EQ(*store->generation(), gen);
  EXPECT_EQ(store->history()->size(), events);
  EXPECT_EQ(store->versions("hello")->size(), 2u);
}

TEST_P(StoreTest, BytesOfAnOlderVersionMakeANewVersionSharingTheBlob) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  import_bytes(*store, variant("hello.beam", 0));
  import_bytes(*store, variant("hello.beam", 1));
  auto r = store->import(variant("hello.beam", 0), "old again");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->version, 3);
  EXPECT_FALSE(r->new_blob);
  auto st = store->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->versions, 3);
  EXPECT_EQ(st->blobs, 2);
  auto v = store->versions("hello");
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)[0].sha256, (*v)[2].sha256);
  EXPECT_EQ(*store->get("hello", 3), variant("hello.beam", 0));
}

TEST_P(StoreTest, SameBytesUnderAnotherLibAreANewVersionInThatLib) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  import_bytes(*store, variant("hello.beam", 0), "a", "app1");
  EXPECT_EQ(import_bytes(*store, variant("hello.beam", 0), "b", "app2"), 2);
  EXPECT_EQ(store->active_info("hello")->lib, "app2");
  EXPECT_TRUE(store->lib_modules("app1")->empty());
  ASSERT_EQ(store->lib_modules("app2")->size(), 1u);
  EXPECT_EQ(*store->libs(), std::vector<std::string>{"app2"});
}

TEST(StorePaths, LibOfPathFollowsOtpsAppNameRule) {
  EXPECT_EQ(lib_of_path("/usr/lib/erlang/lib/stdlib-4.2/ebin/lists.beam"), "stdlib");
  EXPECT_EQ(lib_of_path("/x/foo-1.0-rc1/ebin/m.beam"), "foo");
  EXPECT_EQ(lib_of_path("/usr/lib/elixir/lib/elixir/ebin/Elixir.Enum.beam"), "elixir");
  EXPECT_EQ(lib_of_path("ebin/m.beam"), "");
  EXPECT_EQ(lib_of_path("/tmp/m.beam"), "");
}

TEST_P(StoreTest, ImportTreeWalksDirectoriesAndDerivesTheLib) {
  TempDir dir;
  write_file(dir / "tree/myapp-1.2/ebin/hello.beam", read_file(fixture("hello.beam")));
  write_file(dir / "tree/other/ebin/attrs.beam", read_file(fixture("attrs.beam")));
  write_file(dir / "tree/other/ebin/README", "x");  // not a .beam: skipped
  auto store = open_or_die(store_at(dir));
  auto r = store->import_tree({dir / "tree"}, {});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->files, 2u);
  EXPECT_EQ(r->new_versions, 2u);
  EXPECT_EQ(store->active_info("hello")->lib, "myapp");
  EXPECT_EQ(store->active_info("attrs")->lib, "other");

  // A named lib wins; unchanged bytes in the same lib are a no-op.
  ImportOptions o;
  o.lib = "forced";
  auto again = store->import_tree({dir / "tree/myapp-1.2/ebin/hello.beam"}, o);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->new_versions, 1u);
  EXPECT_EQ(store->active_info("hello")->lib, "forced");
  auto same = store->import_tree({dir / "tree/other"}, {});
  ASSERT_TRUE(same);
  EXPECT_EQ(same->unchanged, 1u);
}

TEST_P(StoreTest, DryRunWritesNothing) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  ImportOptions o;
  o.dry_run = true;
  auto r = store->import_tree({fixture("hello.beam")}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->new_versions, 1u);
  EXPECT_TRUE(store->list()->empty());
  EXPECT_EQ(*store->generation(), 0u);
  auto single = store->import(read_file(fixture("hello.beam")), "x", {.dry_run = true});
  ASSERT_TRUE(single);
  EXPECT_EQ(single->version, 1);
  EXPECT_TRUE(store->list()->empty());
}

TEST_P(StoreTest, GzipWrappedImageIsKeptAsGiven) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  const auto gz = read_file(fixture("loader/gz/m.beam"));
  ASSERT_EQ(gz[0], 0x1f);
  const auto v = import_bytes(*store, gz);
  EXPECT_EQ(*store->get("m", v, true), gz);
}

TEST_P(StoreTest, UnknownModuleOrVersionIsNotFoundNamingIt) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  import_bytes(*store, read_file(fixture("hello.beam")));
  auto a = store->get("nosuch", 1);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Code::kNotFound);
  EXPECT_NE(a.error().message().find("nosuch"), std::string::npos) << a.error().message();
  auto b = store->get("hello", 7);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Code::kNotFound);
  EXPECT_NE(b.error().message().find("hello has no version 7"), std::string::npos) << b.error().message();
  EXPECT_EQ(store->active("nosuch").error().code(), Code::kNotFound);
  EXPECT_EQ(store->versions("nosuch").error().code(), Code::kNotFound);
  EXPECT_EQ(store->activate("hello", 9).error().code(), Code::kNotFound);
  EXPECT_EQ(store->delete_version("nosuch", 1).code(), Code::kNotFound);
  EXPECT_EQ(store->release_show("r9").error().code(), Code::kNotFound);
}

TEST_P(StoreTest, GenerationGrowsWithChangesOnly) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  const auto g0 = *store->generation();
  import_bytes(*store, variant("hello.beam", 0));
  const auto g1 = *store->generation();
  EXPECT_GT(g1, g0);
  ASSERT_TRUE(store->get("hello", 1));
  ASSERT_TRUE(store->record_served("hello", 1, "127.0.0.1:1"));
  ASSERT_TRUE(store->record_event("purge", "hello", Reason("loader")));
  EXPECT_EQ(*store->generation(), g1);
  import_bytes(*store, variant("hello.beam", 1));
  ASSERT_TRUE(store->rollback("hello"));
  EXPECT_EQ(*store->generation(), g1 + 2);

  // Another connection sees it too (the loader's sync() in another process).
  auto other = open_or_die(store_at(dir));
  EXPECT_EQ(*other->generation(), g1 + 2);
}

TEST_P(StoreTest, LoaderEventsAndServedCounts) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  import_bytes(*store, variant("hello.beam", 0));
  ASSERT_TRUE(store->record_event("kill", "hello", Reason("process 7 lingered in old code"), 1, 0));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->record_served("hello", 1, "127.0.0.1:4000"));
  auto h = store->history("hello");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].action, "import");
  EXPECT_EQ((*h)[1].action, "kill");
  EXPECT_EQ((*h)[1].reason, "process 7 lingered in old code");
  auto st = store->stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->served_total, 3u);
  ASSERT_EQ(st->served.size(), 1u);
  EXPECT_EQ(st->served[0].module, "hello");
  EXPECT_EQ(st->served[0].count, 3u);
  auto last = store->history("", 1);
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ((*last)[0].action, "kill");
}

TEST_P(StoreTest, DictionaryAndCompactKeepEveryImageExact) {
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  // Enough real samples for ZDICT: the stdlib images.
  const std::string stdlib_dir = [] {
    for (const auto& e : fs::directory_iterator("/usr/lib/erlang/lib")) {
      if (e.path().filename().string().rfind("stdlib-", 0) == 0) return (e.path() / "ebin").string();
    }
    return std::string();
  }();
  if (stdlib_dir.empty()) GTEST_SKIP() << "no /usr/lib/erlang/lib/stdlib-*";
  auto first = store->import_tree({stdlib_dir}, {});
  ASSERT_TRUE(first) << first.error().to_string();
  auto dict = store->train_dictionary({});
  ASSERT_TRUE(dict) << dict.error().to_string();
  EXPECT_GT(dict->size, 0u);
  // New blobs use the dictionary; old ones keep none until compact.
  import_bytes(*store, read_file(fixture("hello.beam")));
  auto st = store->stats();
  EXPECT_EQ(st->blobs_with_dictionary, 1);
  EXPECT_EQ(*store->get("hello", 1, true), read_file(fixture("hello.beam")));
  const auto before = st->stored_bytes;
  auto c = store->compact({});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->dictionary_id, dict->id);
  EXPECT_LT(c->bytes_after, before);
  st = store->stats();
  EXPECT_EQ(st->blobs_with_dictionary, st->blobs);
  EXPECT_EQ(st->stored_bytes, c->bytes_after);
  for (const auto& item : first->items) {
    auto got = store->get(item.module, item.version, true);
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(*got, read_file(item.file)) << item.file;
  }
  auto v = store->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok());
}

TEST_P(StoreTest, OpcodeOnlyFailureIsAcceptedWithAWarning) {
  // An opcode number beyond OTP 25's table in the first instruction of Code: the only
  // complaint of the loader check is the unknown opcode.
  auto bytes = read_file(fixture("hello.beam"));
  auto img = image::Image::parse(bytes, image::Strictness::kStrict);
  ASSERT_TRUE(img);
  const auto* code = img->find("Code");
  ASSERT_NE(code, nullptr);
  const std::uint32_t header = (std::uint32_t{bytes[code->offset]} << 24) | (bytes[code->offset + 1] << 16) |
                               (bytes[code->offset + 2] << 8) | bytes[code->offset + 3];
  bytes[code->offset + 4 + header] = 250;
  auto damaged = image::Image::parse(bytes, image::Strictness::kStrict);
  ASSERT_TRUE(damaged);
  const auto verdict = damaged->check_loadable();
  if (verdict.loadable || !verdict.opcode_only)
    GTEST_SKIP() << "could not build an opcode-only image: " << verdict.reason;
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  auto r = store->import(bytes, "newer.beam");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(r->warning.empty());
  EXPECT_EQ(store->active_info("hello")->warning, r->warning);
}

TEST_P(StoreTest, ActiveInfoIsOneSnapshotWhileAnotherConnectionRollsBack) {
  // active_info reads the module row and then the version: without one read transaction
  // around both, a rollback committed in between gave a version marked inactive.
  TempDir dir;
  const std::string db = store_at(dir);
  auto reader = open_or_die(db);
  import_bytes(*reader, variant("hello.beam", 1));
  import_bytes(*reader, variant("hello.beam", 2));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    auto w = open_or_die(db);
    for (int i = 0; i < 200; ++i) EXPECT_TRUE(w->rollback("hello"));
    done.store(true);
  });
  int reads = 0;
  while (!done.load()) {
    auto v = reader->active_info("hello");
    ASSERT_TRUE(v) << v.error().to_string();
    EXPECT_TRUE(v->active) << "version " << v->version << " after " << reads << " reads";
    EXPECT_TRUE(v->version == 1 || v->version == 2) << v->version;
    if (!v->active) break;
    ++reads;
  }
  writer.join();
}

// Many writers (issue 16): two importers of one module, each on its own connection (two hosts
// on PostgreSQL, two processes on a SQLite file), get versions n and n + 1, never the same one,
// and each import commits one generation of the channel.
TEST_P(StoreTest, TwoImportersOfOneModuleOnTwoConnectionsGetDistinctVersions) {
  TempDir dir;
  const std::string db = store_at(dir);
  auto first = open_or_die(db);
  constexpr int kEach = 12;
  std::vector<std::vector<std::uint8_t>> images[2];
  for (int t = 0; t < 2; ++t) {
    for (int i = 0; i < kEach; ++i) images[t].push_back(variant("hello.beam", t * 100 + i + 1));
  }
  std::vector<std::int64_t> got[2];
  std::vector<std::thread> importers;
  for (int t = 0; t < 2; ++t) {
    importers.emplace_back([&, t] {
      auto store = open_or_die(db);
      for (const auto& image : images[t]) got[t].push_back(import_bytes(*store, image));
    });
  }
  for (auto& t : importers) t.join();
  std::vector<std::int64_t> all = got[0];
  all.insert(all.end(), got[1].begin(), got[1].end());
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(2 * kEach);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(all, expected);
  EXPECT_EQ(first->versions("hello")->size(), 2u * kEach);
  EXPECT_EQ(first->channel_generation("default")->number, 2 * kEach);
}

TEST_P(StoreCli, CommandsPrintJsonAndUseExitCodes) {
  TempDir dir;
  const std::string db = store_at(dir, "c.db");
  write_file(dir / "v1/app-1/ebin/hello.beam", variant("hello.beam", 0));
  write_file(dir / "v2/app-1/ebin/hello.beam", variant("hello.beam", 1));
  ASSERT_EQ(run_cli(db, {"init"}).code, 0);
  auto imp = run_cli(db, {"--json", "import", dir / "v1", fixture("attrs.beam")});
  ASSERT_EQ(imp.code, 0) << imp.err;
  auto j = nlohmann::json::parse(imp.out);
  EXPECT_EQ(j["files"], 2);
  EXPECT_EQ(j["new_versions"], 2);
  ASSERT_EQ(run_cli(db, {"import", dir / "v2", "--note", "second"}).code, 0);

  auto ls = nlohmann::json::parse(run_cli(db, {"--json", "ls", "hel*"}).out);
  ASSERT_EQ(ls["modules"].size(), 1u);
  EXPECT_EQ(ls["modules"][0]["active"], 2);
  EXPECT_EQ(ls["modules"][0]["lib"], "app");

  auto versions = nlohmann::json::parse(run_cli(db, {"--json", "versions", "hello"}).out);
  EXPECT_EQ(versions["versions"].size(), 2u);
  EXPECT_EQ(versions["versions"][1]["note"], "second");

  auto show = nlohmann::json::parse(run_cli(db, {"--json", "show", "hello@1"}).out);
  EXPECT_EQ(show["version"], 1);
  EXPECT_GE(show["exports"].get<int>(), 2);

  auto diff = nlohmann::json::parse(run_cli(db, {"--json", "diff", "hello@1", "hello@2"}).out);
  EXPECT_EQ(diff["chunks_only_in_b"], nlohmann::json::array({"XTra"}));
  EXPECT_TRUE(diff["exports_added"].empty());

  ASSERT_EQ(run_cli(db, {"export", "hello@1", "-o", dir / "out.beam"}).code, 0);
  EXPECT_EQ(read_file(dir / "out.beam"), variant("hello.beam", 0));

  auto rb = nlohmann::json::parse(run_cli(db, {"--json", "rollback", "hello"}).out);
  EXPECT_EQ(rb["from"], 2);
  EXPECT_EQ(rb["to"], 1);
  EXPECT_EQ(run_cli(db, {"activate", "hello@2"}).code, 0);
  EXPECT_EQ(run_cli(db, {"release", "create", "r1"}).code, 0);
  EXPECT_EQ(nlohmann::json::parse(run_cli(db, {"--json", "release", "show", "r1"}).out)["modules"], 2);
  auto del = run_cli(db, {"delete", "hello@1"});
  EXPECT_EQ(del.code, 1);  // the rollback target
  EXPECT_NE(del.err.find("hello@1"), std::string::npos) << del.err;
  EXPECT_EQ(run_cli(db, {"verify"}).code, 0);
  auto stats = nlohmann::json::parse(run_cli(db, {"--json", "stats"}).out);
  EXPECT_EQ(stats["versions"], 3);
  auto history = nlohmann::json::parse(run_cli(db, {"--json", "history", "hello"}).out);
  EXPECT_EQ(history["events"].size(), 4u);  // import, import, rollback, activate

  // Errors: unknown module (1, naming it), usage (2).
  auto unknown = run_cli(db, {"versions", "nosuch"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("nosuch"), std::string::npos);
  EXPECT_EQ(run_cli(db, {"activate", "hello"}).code, 2);
  EXPECT_EQ(run_cli(db, {"gc", "--keep", "x"}).code, 2);
  // A read command on a missing database does not create it.
  auto missing = run_cli(dir / "none.db", {"ls"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_FALSE(fs::exists(dir / "none.db"));
}

}  // namespace
}  // namespace codestore

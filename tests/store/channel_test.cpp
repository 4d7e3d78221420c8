// Channels and generations (docs/model.md): two channels never affect each other, every change
// of a channel is one generation (one per import batch, none when nothing moved), a channel's
// history says what changed, a channel rollback returns to the previous generation and a
// second one switches back, snapshots are labelled generations, generation_diff, and what gc
// and delete keep for every channel.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "backend.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

// Every row that belongs to `channel` in the channel tables, as text: what another channel's
// changes must leave exactly as it was.
std::vector<std::string> rows_of_channel(const std::string& db, const std::string& channel) {
  if (db.starts_with("postgresql://")) {
    std::vector<std::string> out;
    for (
        const char* sql :
        {"SELECT 'channels', name, generation, previous, created_at FROM channels WHERE name = $1",
         "SELECT 'generations', number, created_at, action, release, label, reason FROM generations WHERE "
         "channel = $1 ORDER BY number",
         "SELECT 'generation_modules', module, version, first, until FROM generation_modules WHERE channel = "
         "$1 ORDER BY module, first",
         "SELECT 'generation_apps', app, app_version, first, until FROM generation_apps WHERE channel = $1 "
         "ORDER BY app, first",
         "SELECT 'channel_modules', module, version, since, previous FROM channel_modules WHERE channel = $1 "
         "ORDER BY module"}) {
      for (auto& row : testing::pg_rows(db, sql, {channel})) out.push_back(std::move(row));
    }
    return out;
  }
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::vector<std::string> out;
  for (const char* sql :
       {"SELECT 'channels', name, generation, previous, created_at FROM channels WHERE name = ?1",
        "SELECT 'generations', number, created_at, action, release, label, reason FROM generations WHERE "
        "channel = "
        "?1 ORDER BY number",
        "SELECT 'generation_modules', module, version, first, until FROM generation_modules WHERE channel = "
        "?1 "
        "ORDER BY module, first",
        "SELECT 'generation_apps', app, app_version, first, until FROM generation_apps WHERE channel = ?1 "
        "ORDER BY "
        "app, first",
        "SELECT 'channel_modules', module, version, since, previous FROM channel_modules WHERE channel = ?1 "
        "ORDER "
        "BY module"}) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(raw, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
    sqlite3_bind_text(s, 1, channel.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const auto* t = sqlite3_column_text(s, i);
        row += (t != nullptr ? reinterpret_cast<const char*>(t) : "NULL") + std::string("|");
      }
      out.push_back(row);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(raw);
  return out;
}

std::int64_t active_version(Store& s, const std::string& module) {
  auto v = s.active_info(module);
  return v ? v->version : 0;
}

class StoreChannels : public BackendTest {
 protected:
  void SetUp() override {
    main_ = open_or_die(db());
    blue_ = open_or_die(db(), {.channel = "blue"});
  }
  std::string db() { return store_at(dir_); }
  std::int64_t imp(Store& s, int n) { return import_bytes(s, variant("hello.beam", n)); }
  std::int64_t generation_of(Store& s, const std::string& channel) {
    auto g = s.channel_generation(channel);
    EXPECT_TRUE(g) << g.error().to_string();
    return g ? g->number : -1;
  }

  TempDir dir_;
  std::unique_ptr<Store> main_, blue_;
};
CODESTORE_BOTH_BACKENDS(StoreChannels);

TEST_P(StoreChannels, TwoChannelsNeverAffectEachOther) {
  ASSERT_EQ(imp(*main_, 0), 1);
  ASSERT_EQ(imp(*main_, 1), 2);
  ASSERT_TRUE(main_->release_create("main-snap"));
  const auto before = rows_of_channel(db(), "default");
  ASSERT_FALSE(before.empty());

  // Everything a channel does, done in blue.
  EXPECT_EQ(imp(*blue_, 2), 3);
  EXPECT_EQ(imp(*blue_, 3), 4);
  ASSERT_TRUE(blue_->activate("hello", 1));
  ASSERT_TRUE(blue_->rollback("hello"));
  ASSERT_TRUE(blue_->rollback("hello", 3));
  ASSERT_TRUE(blue_->release_create("blue-snap"));
  ASSERT_TRUE(blue_->channel_rollback());
  ASSERT_TRUE(blue_->release_rollback("main-snap"));
  ASSERT_TRUE(blue_->import(read_file(fixture("attrs.beam")), "attrs"));

  EXPECT_EQ(rows_of_channel(db(), "default"), before);
  EXPECT_EQ(active_version(*main_, "hello"), 2);
  EXPECT_EQ(active_version(*blue_, "hello"), 2);  // main-snap's content, made blue's
  EXPECT_EQ(main_->active_info("attrs").error().code(), Code::kNotFound);
  EXPECT_EQ(active_version(*blue_, "attrs"), 1);

  // And the other way round.
  const auto blue_before = rows_of_channel(db(), "blue");
  EXPECT_EQ(imp(*main_, 4), 5);
  ASSERT_TRUE(main_->rollback("hello"));
  ASSERT_TRUE(main_->channel_rollback());
  EXPECT_EQ(rows_of_channel(db(), "blue"), blue_before);
  EXPECT_TRUE(main_->verify()->ok());
}

TEST_P(StoreChannels, ANewChannelStartsEmptyAndAnUnknownOneIsNotFound) {
  ASSERT_EQ(imp(*main_, 0), 1);
  auto a = blue_->active_info("hello");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Code::kNotFound);
  EXPECT_NE(a.error().message().find("unknown channel blue"), std::string::npos) << a.error().message();
  EXPECT_EQ(blue_->list().error().code(), Code::kNotFound);
  EXPECT_EQ(blue_->libs().error().code(), Code::kNotFound);
  EXPECT_EQ(main_->channel_history("blue").error().code(), Code::kNotFound);
  EXPECT_EQ(blue_->release_create("x").error().code(), Code::kNotFound);
  EXPECT_EQ(blue_->channel_rollback().error().code(), Code::kNotFound);
  ASSERT_EQ(main_->channels()->size(), 1u);

  // Its first change makes it, empty but for that change: a new version of hello, not main's.
  ASSERT_EQ(imp(*blue_, 0), 2);
  auto channels = main_->channels();
  ASSERT_TRUE(channels);
  ASSERT_EQ(channels->size(), 2u);
  EXPECT_EQ((*channels)[0].name, "blue");
  EXPECT_EQ((*channels)[0].generation, 1);
  EXPECT_EQ((*channels)[0].previous, 0);
  EXPECT_EQ((*channels)[0].modules, 1);
  EXPECT_EQ((*channels)[1].name, "default");
  auto list = blue_->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].active_version, 2);

  // Names that could become paths or escapes are refused at open.
  for (const std::string& bad :
       std::vector<std::string>{"", "../x", ".hidden", "-x", "a/b", "a b", std::string(129, 'c'), "tab\t"}) {
    auto s = Store::open(db(), {.channel = bad});
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code(), Code::kInvalidArgument) << bad;
  }
}

TEST_P(StoreChannels, HistorySaysWhatChangedAndChannelRollbackSwitchesBack) {
  ASSERT_EQ(imp(*main_, 0), 1);                                                          // g1: hello +1
  ASSERT_TRUE(main_->import(read_file(fixture("attrs.beam")), "attrs", {.note = "n"}));  // g2: attrs +1
  ASSERT_EQ(imp(*main_, 1), 2);                                                          // g3: hello 1->2
  auto h = main_->channel_history("default");
  ASSERT_TRUE(h) << h.error().to_string();
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].number, 3);
  EXPECT_EQ((*h)[0].action, "import");
  EXPECT_EQ((*h)[0].changes, (std::vector<Activation>{{"hello", 1, 2}}));
  EXPECT_EQ((*h)[0].changed, 1);
  EXPECT_EQ((*h)[0].modules, 2);
  EXPECT_EQ((*h)[1].changes, (std::vector<Activation>{{"attrs", 0, 1}}));
  EXPECT_EQ((*h)[1].added, 1);
  EXPECT_EQ((*h)[1].reason, "n");
  EXPECT_EQ((*h)[1].modules, 2);
  EXPECT_EQ((*h)[2].changes, (std::vector<Activation>{{"hello", 0, 1}}));
  EXPECT_EQ((*h)[2].modules, 1);
  EXPECT_EQ(main_->channel_history("default", 1)->size(), 1u);

  // Back to generation 2's content, as a new generation 4 whose previous is 3.
  auto r = main_->channel_rollback(Reason("bad build"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->number, 4);
  EXPECT_EQ(r->action, "channel-rollback");
  EXPECT_EQ(r->changes, (std::vector<Activation>{{"hello", 2, 1}}));
  EXPECT_NE(r->reason.find("bad build"), std::string::npos);
  EXPECT_EQ(active_version(*main_, "hello"), 1);
  EXPECT_EQ((*main_->channels())[0].previous, 3);
  // A second one switches back.
  auto back = main_->channel_rollback();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->number, 5);
  EXPECT_EQ(back->changes, (std::vector<Activation>{{"hello", 1, 2}}));
  EXPECT_EQ(active_version(*main_, "hello"), 2);
  EXPECT_EQ((*main_->channels())[0].previous, 4);
  // The module's own rollback target moved as an activation's does.
  EXPECT_EQ(main_->rollback("hello")->to_version, 1);

  // Generation 3's content as it was, whatever came after.
  auto g3 = main_->channel_generation("default", 3);
  ASSERT_TRUE(g3);
  EXPECT_EQ(g3->content, (std::vector<ReleaseEntry>{{"attrs", 1, ""}, {"hello", 2, ""}}));
  EXPECT_EQ(main_->channel_generation("default", 99).error().code(), Code::kNotFound);

  // A fresh channel's first generation has nothing to return to.
  ASSERT_EQ(imp(*blue_, 5), 3);
  auto none = blue_->channel_rollback();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(main_->verify()->ok());
}

TEST_P(StoreChannels, AnImportBatchIsOneGenerationAndNoChangeIsNone) {
  // Real files nobody here wrote: OTP's syntax_tools.
  const auto ebin =
      fs::path(*std::find_if(fs::directory_iterator("/usr/lib/erlang/lib"), fs::directory_iterator(),
                             [](const fs::directory_entry& e) {
                               return e.path().filename().string().rfind("syntax_tools-", 0) == 0;
                             })) /
      "ebin";
  auto r = main_->import_tree({ebin.string()}, {.bytes = false});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_GT(r->new_versions, 3u);
  auto h = main_->channel_history("default");
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].added, static_cast<std::int64_t>(r->new_versions));
  EXPECT_EQ((*h)[0].modules, static_cast<std::int64_t>(r->new_versions));
  EXPECT_EQ((*h)[0].changes.size(), r->new_versions);

  // The same files again, an activation of the active version, a dry run: no generation.
  ASSERT_EQ(main_->import_tree({ebin.string()}, {.bytes = false})->new_versions, 0u);
  const std::string some = r->items[0].module;
  ASSERT_TRUE(main_->activate(some, 1));
  ASSERT_TRUE(main_->import(variant("hello.beam", 0), "x", {.dry_run = true}));
  EXPECT_EQ(main_->channel_history("default")->size(), 1u);

  // Two modules in one batch of files: one generation with both.
  write_file(dir_ / "in/hello.beam", variant("hello.beam", 1));
  write_file(dir_ / "in/attrs.beam", read_file(fixture("attrs.beam")));
  ASSERT_TRUE(main_->import_tree({dir_ / "in"}));
  h = main_->channel_history("default");
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].added, 2);
  EXPECT_EQ((*h)[0].modules, (*h)[1].modules + 2);
}

TEST_P(StoreChannels, SnapshotsAreLabelledGenerationsOfTheirChannel) {
  ASSERT_EQ(imp(*main_, 0), 1);
  ASSERT_EQ(imp(*main_, 1), 2);
  auto snap = main_->release_create("r1", Reason("before the change"));
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->channel, "default");
  EXPECT_EQ(snap->generation, 3);
  EXPECT_EQ(snap->modules, (std::vector<ReleaseEntry>{{"hello", 2, ""}}));
  auto h = main_->channel_history("default");
  EXPECT_EQ((*h)[0].action, "snapshot");
  EXPECT_EQ((*h)[0].label, "r1");
  EXPECT_TRUE((*h)[0].changes.empty());
  // The same content: channel rollback still returns to the generation before the last change.
  EXPECT_EQ((*main_->channels())[0].previous, 1);

  // Labels are unique in the store, whatever the channel.
  ASSERT_EQ(imp(*blue_, 3), 3);
  EXPECT_EQ(blue_->release_create("r1").error().code(), Code::kAlreadyExists);
  // A snapshot of one channel can become another's content.
  auto moved = blue_->release_rollback("r1");
  ASSERT_TRUE(moved);
  EXPECT_EQ(*moved, (std::vector<Activation>{{"hello", 3, 2}}));
  EXPECT_EQ((*blue_->channel_history("blue", 1))[0].action, "snapshot-rollback");
  EXPECT_TRUE(blue_->release_rollback("r1")->empty());
  EXPECT_EQ(blue_->channel_history("blue")->size(), 2u) << "a rollback that changes nothing makes none";

  // Deleting a snapshot removes the label; the generation stays in the history.
  ASSERT_TRUE(main_->release_delete("r1"));
  EXPECT_EQ(main_->release_show("r1").error().code(), Code::kNotFound);
  EXPECT_EQ(main_->channel_history("default")->size(), 3u);
  EXPECT_TRUE(main_->release_create("r1"));
}

TEST_P(StoreChannels, GenerationDiffNamesAddedRemovedAndChangedModules) {
  ASSERT_EQ(imp(*main_, 0), 1);
  ASSERT_TRUE(main_->import(read_file(fixture("attrs.beam")), "attrs"));
  ASSERT_EQ(imp(*blue_, 1), 2);
  auto d = main_->generation_diff("default", 0, "blue", 0);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_TRUE(d->added.empty());
  ASSERT_EQ(d->removed.size(), 1u);
  EXPECT_EQ(d->removed[0].module, "attrs");
  ASSERT_EQ(d->changed.size(), 1u);
  EXPECT_EQ(d->changed[0].module, "hello");
  EXPECT_EQ(d->changed[0].from_version, 1);
  EXPECT_EQ(d->changed[0].to_version, 2);
  EXPECT_EQ(d->changed[0].from_md5, main_->version_info("hello", 1)->md5);
  EXPECT_EQ(d->changed[0].to_md5, main_->version_info("hello", 2)->md5);
  EXPECT_NE(d->changed[0].from_md5, d->changed[0].to_md5);
  // Within one channel, between generations; and a generation with itself.
  auto within = main_->generation_diff("default", 1, "default", 2);
  ASSERT_TRUE(within);
  ASSERT_EQ(within->added.size(), 1u);
  EXPECT_EQ(within->added[0].module, "attrs");
  EXPECT_EQ(within->added[0].md5, main_->version_info("attrs", 1)->md5);
  auto same = main_->generation_diff("blue", 1, "blue", 0);
  EXPECT_TRUE(same->added.empty() && same->removed.empty() && same->changed.empty());
  EXPECT_EQ(main_->generation_diff("default", 7, "blue", 0).error().code(), Code::kNotFound);
  EXPECT_EQ(main_->generation_diff("default", 0, "green", 0).error().code(), Code::kNotFound);
}

TEST_P(StoreChannels, GcAndDeleteKeepWhatAnyChannelNeeds) {
  ASSERT_EQ(imp(*main_, 0), 1);
  ASSERT_TRUE(blue_->activate("hello", 1));     // blue pins 1
  for (int i = 1; i <= 4; ++i) imp(*main_, i);  // default: 2..5, active 5, target 4
  auto d = main_->delete_version("hello", 1);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.code(), Code::kFailedPrecondition);
  EXPECT_NE(d.message().find("channel blue"), std::string::npos) << d.message();
  // 2 and 3 go: 1 is blue's, 4 default's rollback target and its previous generation's, 5 active.
  auto gc = main_->gc({0, false});
  ASSERT_TRUE(gc) << gc.error().to_string();
  std::set<std::int64_t> deleted;
  for (const auto& v : gc->deleted) deleted.insert(v.version);
  EXPECT_EQ(deleted, (std::set<std::int64_t>{2, 3}));
  EXPECT_TRUE(blue_->get("hello", 1, true));
  // An old generation may now name a version that is gone: its history still says so.
  auto h = main_->channel_history("default");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->back().changes, (std::vector<Activation>{{"hello", 0, 1}}));
  EXPECT_TRUE(main_->verify()->ok());
  // Once blue moves on, nothing pins 1.
  ASSERT_TRUE(blue_->activate("hello", 4));
  ASSERT_TRUE(blue_->activate("hello", 5));  // blue: active 5, target 4, previous generation {4}
  EXPECT_TRUE(main_->delete_version("hello", 1));
}

TEST_P(StoreChannels, ThePreviousGenerationIsKeptForChannelRollback) {
  ASSERT_EQ(imp(*main_, 0), 1);  // generation 1: hello 1
  // Two files of hello in one batch: 2 then 3 (OTP's order of x-1.0 and x-2.0), one generation
  // whose rollback target is 2 and whose previous generation pins 1.
  write_file(dir_ / "in/x-1.0/ebin/hello.beam", variant("hello.beam", 1));
  write_file(dir_ / "in/x-2.0/ebin/hello.beam", variant("hello.beam", 2));
  auto r = main_->import_tree({dir_ / "in"});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(active_version(*main_, "hello"), 3);
  auto d = main_->delete_version("hello", 1);
  EXPECT_EQ(d.code(), Code::kFailedPrecondition);
  EXPECT_NE(d.message().find("channel default's rollback returns to it (generation 1)"), std::string::npos)
      << d.message();
  EXPECT_TRUE(main_->gc({0, false})->deleted.empty());
  auto back = main_->channel_rollback();
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->changes, (std::vector<Activation>{{"hello", 3, 1}}));
}

}  // namespace
}  // namespace codestore

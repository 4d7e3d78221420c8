// Application versions and Erlang releases in the store (docs/model.md), on real files nobody
// here wrote: OTP's own application directories (/usr/lib/erlang/lib/*) and its .rel
// (releases/25/start_sasl.rel), read by the test-only walker (release_test_util.h) with the
// names Erlang's file:consult/1 gives; tarballs read back by Erlang's erl_tar. The release
// that rebar3 builds is release_build_test.cpp's.
#include <codestore/image.h>
#include <codestore/release_types.h>
#include <codestore/store.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend.h"
#include "release_test_util.h"
#include "store_test_util.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using release_testing::read_app_dir;
using release_testing::read_app_dirs;
using release_testing::run;
using release_testing::sh_quote;
using release_testing::walk;
using testing::TempDir;

bool have_erl() {
  return std::system("command -v erl >/dev/null 2>&1") == 0;
}

// The installed directory of an OTP application.
fs::path otp_app(const std::string& app) {
  for (const auto& e : fs::directory_iterator("/usr/lib/erlang/lib")) {
    if (e.path().filename().string().starts_with(app + "-")) return e.path();
  }
  ADD_FAILURE() << "no OTP application " << app;
  return {};
}

// An installed OTP application as an AppContent, read once per test program (erl answers
// for its name and version).
AppContent otp(const std::string& app) {
  static std::map<std::string, AppContent> cache;
  auto it = cache.find(app);
  if (it == cache.end()) it = cache.emplace(app, read_app_dir(otp_app(app))).first;
  return it->second;
}

// Rows of every table an import writes: an import that fails must leave them as they were.
std::map<std::string, std::int64_t> row_counts(const std::string& db) {
  std::map<std::string, std::int64_t> counts;
  if (db.starts_with("postgresql://")) {
    for (const char* t : {"blobs", "modules", "versions", "app_versions", "app_modules", "app_files",
                          "releases", "release_apps", "release_files", "release_modules", "events"}) {
      const auto rows = testing::pg_rows(db, fmt::format("SELECT count(*) FROM {}", t));
      counts[t] = std::stoll(rows.at(0));
    }
    return counts;
  }
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db;
    sqlite3_close(h);
    return counts;
  }
  for (const char* t : {"blobs", "modules", "versions", "app_versions", "app_modules", "app_files",
                        "releases", "release_apps", "release_files", "release_modules", "events"}) {
    sqlite3_stmt* s = nullptr;
    const std::string sql = fmt::format("SELECT count(*) FROM {}", t);
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
      counts[t] = sqlite3_column_int64(s, 0);
    } else {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(h);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(h);
  return counts;
}

ContentFile* find(std::vector<ContentFile>& files, const std::string& path) {
  auto it = std::find_if(files.begin(), files.end(), [&](const ContentFile& f) { return f.path == path; });
  return it == files.end() ? nullptr : &*it;
}

std::string text(const std::vector<std::uint8_t>& bytes) {
  return {bytes.begin(), bytes.end()};
}
std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

// OTP's start_sasl release (kernel, stdlib, sasl as installed) as a ReleaseContent named
// NAME@VSN, its .rel and boot script among its files.
ReleaseContent read_start_sasl(const std::string& name, const std::string& vsn);
ReleaseContent start_sasl(const std::string& name = "start_sasl", const std::string& vsn = "25") {
  static std::map<std::pair<std::string, std::string>, ReleaseContent> cache;
  auto it = cache.find({name, vsn});
  if (it == cache.end()) it = cache.emplace(std::pair(name, vsn), read_start_sasl(name, vsn)).first;
  return it->second;
}
ReleaseContent read_start_sasl(const std::string& name, const std::string& vsn) {
  ReleaseContent r;
  r.name = name;
  r.vsn = vsn;
  r.kind = "systools";
  r.origin = "/usr/lib/erlang";
  const auto erl =
      run("erl -noshell -eval " + sh_quote("{ok, [{release, _, {erts, E}, Apps}]} = "
                                           "file:consult(\"/usr/lib/erlang/releases/25/start_sasl.rel\"), "
                                           "io:format(\"~ts~n\", [E]), "
                                           "[io:format(\"~ts ~ts~n\", [A, V]) || {A, V} <- Apps], halt()."));
  EXPECT_EQ(erl.code, 0) << erl.output;
  std::istringstream in(erl.output);
  in >> r.erts_vsn;
  std::string app, avsn;
  std::vector<fs::path> dirs;
  while (in >> app >> avsn) {
    r.rel_apps.push_back({app, avsn, "", ""});
    dirs.push_back(fs::path("/usr/lib/erlang/lib") / (app + "-" + avsn));
  }
  r.apps = read_app_dirs(dirs);
  ContentFile rel;
  rel.path = fmt::format("releases/{}/{}.rel", vsn, name);
  rel.bytes = testing::read_file("/usr/lib/erlang/releases/25/start_sasl.rel");
  r.files.push_back(rel);
  ContentFile boot;
  boot.path = fmt::format("releases/{}/start.boot", vsn);
  boot.bytes = testing::read_file("/usr/lib/erlang/releases/25/start_sasl.boot");
  r.files.push_back(boot);
  ContentFile data;
  data.path = "releases/start_erl.data";
  data.bytes = bytes_of(r.erts_vsn + " " + vsn + "\n");
  r.files.push_back(data);
  return r;
}

// The trees hold the same files, links and empty directories, byte for byte.
void expect_same_tree(const fs::path& want, const fs::path& got) {
  const auto a = walk(want), b = walk(got);
  std::vector<std::string> pa, pb;
  for (const auto& f : a) pa.push_back(f.path);
  for (const auto& f : b) pb.push_back(f.path);
  ASSERT_EQ(pa, pb) << want << " vs " << got;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i].bytes == b[i].bytes) << a[i].path;
    EXPECT_EQ(a[i].link, b[i].link) << a[i].path;
    EXPECT_EQ(a[i].directory, b[i].directory) << a[i].path;
  }
}

bool any_contains(const std::vector<std::string>& v, std::string_view what) {
  return std::any_of(v.begin(), v.end(),
                     [&](const std::string& s) { return s.find(what) != std::string::npos; });
}

class ReleaseStore : public store_testing::BackendTest {
 protected:
  void SetUp() override {
    if (!have_erl()) GTEST_SKIP() << "erl is not installed";
    auto s = Store::open(db(), {});
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    store = std::move(*s);
  }
  std::string db() { return store_at(dir); }
  TempDir dir;
  std::unique_ptr<Store> store;
};
CODESTORE_BOTH_BACKENDS(ReleaseStore);

TEST_P(ReleaseStore, ImportsAnOtpApplicationAsItsAppVersion) {
  const AppContent app = otp("parsetools");
  ASSERT_EQ(app.app, "parsetools");
  auto r = store->import_app(app);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_FALSE(r->unchanged);
  EXPECT_EQ(r->revision, 1);
  std::size_t beams = 0;
  for (const auto& f : app.files) beams += f.path.starts_with("ebin/") && f.path.ends_with(".beam");
  EXPECT_EQ(r->modules, beams);
  EXPECT_EQ(r->modules + r->files, app.files.size());
  EXPECT_EQ(r->new_versions, beams);

  auto list = store->apps();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].app, "parsetools");
  EXPECT_EQ((*list)[0].vsn, app.vsn);
  EXPECT_EQ((*list)[0].modules, static_cast<std::int64_t>(beams));
  EXPECT_EQ((*list)[0].files, static_cast<std::int64_t>(app.files.size() - beams));

  auto show = store->app_show("parsetools", app.vsn);
  ASSERT_TRUE(show.has_value()) << show.error().to_string();
  ASSERT_EQ(show->modules.size(), beams);
  // Each module's MD5 is the one beam_lib gives for the installed file.
  std::string eval;
  for (const auto& m : show->modules) {
    eval += fmt::format(
        "{{ok, {{_, M{0}}}}} = beam_lib:md5(\"{1}/{2}\"), io:format(\"~s~n\", [[io_lib:format(\"~2.16.0b\", "
        "[B]) "
        "|| <<B>> <= M{0}]]), ",
        &m - show->modules.data(), app.origin, m.path);
  }
  const auto c = run("erl -noshell -eval " + sh_quote(eval + "halt()."));
  ASSERT_EQ(c.code, 0) << c.output;
  std::istringstream md5s(c.output);
  for (const auto& m : show->modules) {
    std::string md5;
    md5s >> md5;
    EXPECT_EQ(md5, m.md5) << m.module;
  }
  // Importing the same directory again changes nothing.
  const auto before = row_counts(db());
  auto again = store->import_app(app);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->revision, 1);
  EXPECT_EQ(row_counts(db()), before);
  // Nothing was activated: a deploy does that.
  auto active = store->active_info("yecc");
  EXPECT_FALSE(active.has_value());
}

// A Store handle on `channel` of the test's database.
std::unique_ptr<Store> open_channel(const fs::path& db, const std::string& channel) {
  auto s = Store::open(db.string(), {.channel = channel});
  EXPECT_TRUE(s.has_value()) << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

// An application `name`@`vsn` whose .app lists `modules`, carrying `beams` (path -> bytes).
AppContent small_app(const std::string& name, const std::string& vsn, const std::vector<std::string>& modules,
                     const std::vector<ContentFile>& beams) {
  AppContent a;
  a.app = name;
  a.vsn = vsn;
  a.origin = "test:" + name;
  ContentFile res;
  res.path = "ebin/" + name + ".app";
  res.bytes = bytes_of(fmt::format("{{application, {}, [{{vsn, \"{}\"}}, {{modules, [{}]}}]}}.\n", name, vsn,
                                   fmt::join(modules, ", ")));
  a.files.push_back(res);
  for (const auto& b : beams) a.files.push_back(b);
  std::sort(a.files.begin(), a.files.end(),
            [](const ContentFile& x, const ContentFile& y) { return x.path < y.path; });
  return a;
}

TEST_P(ReleaseStore, ImportAppsActivatesThemInTheHandlesChannelInOneGeneration) {
  auto blue = open_channel(db(), "blue");
  ASSERT_NE(blue, nullptr);
  const std::vector<AppContent> apps{otp("parsetools"), otp("syntax_tools")};
  auto r = blue->import_apps(apps, {.activate = true});
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->channel, "blue");
  EXPECT_EQ(r->generation, 1);
  ASSERT_EQ(r->apps.size(), 2u);
  EXPECT_EQ(r->revisions_made, 2u);
  std::size_t modules = 0;
  for (const auto& a : r->apps) {
    modules += a.modules;
    auto show = blue->app_show(a.app, a.vsn);
    ASSERT_TRUE(show.has_value());
    for (const auto& m : show->modules) {
      auto active = blue->active_info(m.module);
      ASSERT_TRUE(active.has_value()) << m.module;
      EXPECT_EQ(active->version, m.version) << m.module;
      EXPECT_EQ(active->md5, m.md5) << m.module;
    }
  }
  EXPECT_EQ(r->changed.size(), modules);
  auto history = blue->channel_history("blue");
  ASSERT_TRUE(history.has_value());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].action, "import");
  EXPECT_EQ((*history)[0].app_changes.size(), 2u);
  // The default channel was not touched.
  EXPECT_FALSE(store->active_info("yecc").has_value());
  auto def = store->channel_generation("default");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->number, 0);
  // The same applications again: nothing moves, no generation.
  const auto before = row_counts(db());
  auto again = blue->import_apps(apps, {.activate = true});
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_EQ(again->generation, 0);
  EXPECT_TRUE(again->changed.empty());
  EXPECT_EQ(row_counts(db()), before);
  // A dry run writes nothing.
  auto dry = open_channel(db(), "green")->import_apps(apps, {.dry_run = true, .activate = true});
  ASSERT_TRUE(dry.has_value()) << dry.error().to_string();
  EXPECT_EQ(dry->generation, 0);
  EXPECT_EQ(row_counts(db()), before);
  auto green = blue->channel_generation("green");
  EXPECT_FALSE(green.has_value());
}

TEST_P(ReleaseStore, ANewRevisionTakesItsPlaceAndTheModulesItDroppedLeaveTheChannel) {
  auto blue = open_channel(db(), "blue");
  ASSERT_NE(blue, nullptr);
  const AppContent app = otp("parsetools");
  ASSERT_TRUE(blue->import_apps({app}, {.activate = true}).has_value());
  const auto leex = blue->active_info("leex");
  ASSERT_TRUE(leex.has_value());
  // Revision 2: leex gone, yecc other code.
  std::vector<ContentFile> beams;
  std::vector<std::string> listed;
  for (const auto& f : app.files) {
    if (!f.path.starts_with("ebin/") || !f.path.ends_with(".beam") || f.path == "ebin/leex.beam") continue;
    ContentFile b = f;
    if (b.path == "ebin/yecc.beam") b.bytes = store_testing::variant_of(b.bytes, "yecc.beam", 1);
    listed.push_back(fs::path(b.path).stem().string());
    beams.push_back(std::move(b));
  }
  auto r = blue->import_apps({small_app("parsetools", app.vsn, listed, beams)}, {.activate = true});
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  ASSERT_EQ(r->apps.size(), 1u);
  EXPECT_EQ(r->apps[0].revision, 2);
  EXPECT_EQ(r->generation, 2);
  ASSERT_FALSE(r->warnings.empty());
  EXPECT_TRUE(r->warnings[0].starts_with("NEW REVISION: parsetools@")) << r->warnings[0];
  EXPECT_NE(r->warnings[0].find("modules yecc, leex"), std::string::npos) << r->warnings[0];
  EXPECT_FALSE(blue->active_info("leex").has_value());
  auto yecc = blue->active_info("yecc");
  ASSERT_TRUE(yecc.has_value());
  EXPECT_EQ(yecc->version, 2);
  std::vector<std::string> moved;
  for (const auto& a : r->changed) moved.push_back(a.module);
  EXPECT_EQ(moved, (std::vector<std::string>{"leex", "yecc"}));
  auto g = blue->channel_generation("blue");
  ASSERT_TRUE(g.has_value());
  ASSERT_EQ(g->app_changes.size(), 1u);
  EXPECT_EQ(g->app_changes[0], (AppChange{"parsetools", app.vsn, app.vsn + "#2"}));
  // The channel's rollback returns to revision 1 with leex.
  auto back = blue->channel_rollback();
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  auto leex_back = blue->active_info("leex");
  ASSERT_TRUE(leex_back.has_value());
  EXPECT_EQ(leex_back->version, leex->version);
}

TEST_P(ReleaseStore, AModuleOfTwoApplicationsIsRefusedNamingBothAndWritesNothing) {
  auto blue = open_channel(db(), "blue");
  ASSERT_NE(blue, nullptr);
  const AppContent parsetools = otp("parsetools");
  const ContentFile* yecc = nullptr;
  for (const auto& f : parsetools.files) {
    if (f.path == "ebin/yecc.beam") yecc = &f;
  }
  ASSERT_NE(yecc, nullptr);
  const AppContent mine = small_app("mine", "1.0", {"yecc"}, {*yecc});
  auto before = row_counts(db());
  auto both = blue->import_apps({parsetools, mine}, {.activate = true});
  ASSERT_FALSE(both.has_value());
  EXPECT_EQ(both.error().code(), Code::kInvalidArgument);
  EXPECT_NE(both.error().message().find("yecc (in parsetools@" + parsetools.vsn + " and mine@1.0)"),
            std::string::npos)
      << both.error().message();
  EXPECT_EQ(row_counts(db()), before);
  // One pinned by the channel, the other imported into it: refused too, naming both.
  ASSERT_TRUE(blue->import_apps({parsetools}, {.activate = true}).has_value());
  before = row_counts(db());
  auto later = blue->import_apps({mine}, {.activate = true});
  ASSERT_FALSE(later.has_value());
  EXPECT_EQ(later.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(
      later.error().message().find("module yecc is carried by both mine@1.0 (imported) and parsetools@" +
                                   parsetools.vsn + ", which channel blue pins"),
      std::string::npos)
      << later.error().message();
  EXPECT_EQ(row_counts(db()), before);
  // In another channel, or stored without activating, it is fine.
  auto green = open_channel(db(), "green");
  ASSERT_TRUE(green->import_apps({mine}, {.activate = true}).has_value());
  // The same application twice cannot be pinned at once.
  const AppContent mine2 = small_app("mine", "2.0", {"yecc"}, {*yecc});
  auto twice = green->import_apps({mine, mine2}, {.activate = true});
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message().find("application mine is given twice (mine@1.0 and mine@2.0)"),
            std::string::npos)
      << twice.error().message();
  EXPECT_TRUE(green->import_apps({mine, mine2}).has_value());
}

TEST_P(ReleaseStore, AnotherByteFormOfTheSameCodeKeepsItsVersionAndItsBytes) {
  AppContent app = otp("parsetools");
  ASSERT_TRUE(store->import_app(app).has_value());
  // rebar3's prod build: the same code stripped and gzip-wrapped, under another vsn.
  AppContent stripped = app;
  stripped.vsn = "9.9";
  for (auto& f : stripped.files) {
    if (f.path.ends_with(".beam")) {
      auto img = image::Image::parse(f.bytes, image::Strictness::kStrict, f.path);
      ASSERT_TRUE(img.has_value());
      auto s = image::strip(*img);
      ASSERT_TRUE(s.has_value());
      f.bytes = *s;
    }
  }
  ContentFile* dot_app = find(stripped.files, "ebin/parsetools.app");
  ASSERT_NE(dot_app, nullptr);
  std::string t = text(dot_app->bytes);
  t.replace(t.find("\"" + app.vsn + "\""), app.vsn.size() + 2, "\"9.9\"");
  dot_app->bytes = bytes_of(t);
  auto r = store->import_app(stripped);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->new_versions, 0u);
  EXPECT_EQ(r->reused_versions, r->modules);
  auto show = store->app_show("parsetools", "9.9");
  ASSERT_TRUE(show.has_value());
  for (const auto& m : show->modules) {
    EXPECT_EQ(m.version, 1) << m.module;  // the first import's version
    const ContentFile* f = find(stripped.files, m.path);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(m.size, f->bytes.size()) << m.module;  // this byte form is kept
  }
  // The same (app, vsn) in another byte form: the same content, said so.
  AppContent again = stripped;
  again.vsn = app.vsn;
  again.files = app.files;
  for (auto& f : again.files) {
    if (f.path.ends_with(".beam")) f.bytes = find(stripped.files, f.path)->bytes;
  }
  auto u = store->import_app(again);
  ASSERT_TRUE(u.has_value()) << u.error().to_string();
  EXPECT_TRUE(u->unchanged);
  EXPECT_TRUE(any_contains(u->warnings, "other byte forms"));
}

TEST_P(ReleaseStore, OtherContentIsANewRevisionNamingWhatDiffers) {
  AppContent app = otp("parsetools");
  ASSERT_TRUE(store->import_app(app).has_value());
  AppContent changed = app;
  ContentFile* yecc = find(changed.files, "ebin/yecc.beam");
  ASSERT_NE(yecc, nullptr);
  yecc->bytes = store_testing::variant_of(yecc->bytes, "yecc.beam", 1);
  ContentFile* appup = find(changed.files, "ebin/parsetools.appup");
  ASSERT_NE(appup, nullptr);
  appup->bytes.push_back('\n');
  auto r = store->import_app(changed);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_FALSE(r->unchanged);
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(r->differs, (std::vector<std::string>{"module yecc", "file ebin/parsetools.appup"}));
  ASSERT_FALSE(r->warnings.empty());
  EXPECT_NE(r->warnings[0].find("yecc"), std::string::npos) << r->warnings[0];
  EXPECT_EQ(r->new_versions, 1u);  // only yecc's code is new
  auto list = store->apps();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_NE((*list)[1].warning.find("yecc"), std::string::npos);
  auto newest = store->app_show("parsetools", app.vsn);
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->summary.revision, 2);
  auto first = store->app_show("parsetools", app.vsn, 1);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->summary.revision, 1);
  auto none = store->app_show("parsetools", app.vsn, 3);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), Code::kNotFound);
  EXPECT_NE(none.error().message().find("1, 2"), std::string::npos) << none.error().message();
  // The first content again is its revision 1, not a third.
  auto back = store->import_app(app);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->unchanged);
  EXPECT_EQ(back->revision, 1);
}

TEST_P(ReleaseStore, TheAppIsCheckedAsSystoolsChecksItAndABadOneWritesNothing) {
  ASSERT_TRUE(store->import_app(otp("ftp")).has_value());
  const auto before = row_counts(db());
  const AppContent app = otp("parsetools");
  auto refused = [&](AppContent a, std::string_view why) {
    auto r = store->import_app(a);
    ASSERT_FALSE(r.has_value()) << why;
    EXPECT_NE(r.error().message().find(why), std::string::npos) << r.error().message();
    EXPECT_EQ(row_counts(db()), before) << why;
  };
  {
    AppContent a = app;  // a listed module without its beam
    a.files.erase(std::find_if(a.files.begin(), a.files.end(),
                               [](const ContentFile& f) { return f.path == "ebin/yecc.beam"; }));
    refused(a, "yecc");
  }
  {
    AppContent a = app;  // no .app at all
    a.files.erase(std::find_if(a.files.begin(), a.files.end(),
                               [](const ContentFile& f) { return f.path == "ebin/parsetools.app"; }));
    refused(a, "ebin/parsetools.app");
  }
  {
    AppContent a = app;  // named otherwise than its .app
    a.vsn = "1.0";
    refused(a, "named by its .app");
  }
  {
    AppContent a = app;  // a beam holding another module than its name says
    find(a.files, "ebin/leex.beam")->bytes = find(a.files, "ebin/yecc.beam")->bytes;
    refused(a, "holds module yecc");
  }
  {
    AppContent a = app;  // a damaged beam
    auto& b = find(a.files, "ebin/leex.beam")->bytes;
    b.resize(b.size() / 2);
    refused(a, "leex.beam");
  }
  for (const std::string path : {"../x", "/etc/x", "priv//x", "priv/./x"}) {
    AppContent a = app;
    ContentFile f;
    f.path = path;
    a.files.push_back(f);
    refused(a, path);
  }
  {
    AppContent a = app;
    ContentFile f;
    f.path = "priv/run";
    f.mode = 04755;
    a.files.push_back(f);
    refused(a, "setuid");
  }
  {
    AppContent a = app;
    ContentFile f;
    f.path = "priv/out";
    f.link = "../../../etc/passwd";
    a.files.push_back(f);
    refused(a, "out of its tree");
  }
}

TEST_P(ReleaseStore, ABeamTheAppDoesNotListIsAWarning) {
  AppContent app = otp("parsetools");
  ContentFile extra;
  extra.path = "ebin/ftp_sup.beam";
  extra.bytes = testing::read_file(otp_app("ftp") / "ebin/ftp_sup.beam");
  app.files.push_back(extra);
  auto r = store->import_app(app);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_TRUE(any_contains(r->warnings, "ftp_sup")) << ::testing::PrintToString(r->warnings);
}

TEST_P(ReleaseStore, AReleaseImportsExportsAndUnpacksByteForByte) {
  const ReleaseContent rel = start_sasl();
  ASSERT_EQ(rel.rel_apps.size(), 3u);
  auto r = store->import_release(rel);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_FALSE(r->unchanged);
  EXPECT_EQ(r->revisions_made, 3u);
  ASSERT_EQ(r->apps.size(), 3u);

  auto list = store->erl_releases();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, (ReleaseId{"start_sasl", "25"}));
  EXPECT_EQ((*list)[0].erts_vsn, rel.erts_vsn);
  EXPECT_EQ((*list)[0].apps, 3);
  auto info = store->erl_release_info({"start_sasl", "25"});
  ASSERT_TRUE(info.has_value()) << info.error().to_string();
  ASSERT_EQ(info->apps.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(info->apps[i].app, rel.rel_apps[i].app);
    EXPECT_EQ(info->apps[i].vsn, rel.rel_apps[i].vsn);
    EXPECT_EQ(info->apps[i].revision, 1);
  }
  EXPECT_EQ(info->files.size(), 3u);

  // The directory: every file of every application as installed, the release's own.
  const fs::path out = dir / "out";
  auto x = store->erl_release_export({"start_sasl", "25"}, out.string());
  ASSERT_TRUE(x.has_value()) << x.error().to_string();
  for (const auto& e : rel.rel_apps) {
    expect_same_tree(fs::path("/usr/lib/erlang/lib") / (e.app + "-" + e.vsn),
                     out / "lib" / (e.app + "-" + e.vsn));
  }
  for (const auto& f : rel.files) EXPECT_TRUE(testing::read_file(out / f.path) == f.bytes) << f.path;
  // Never over what is there.
  auto again = store->erl_release_export({"start_sasl", "25"}, out.string());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);

  // The tarball, as Erlang's erl_tar reads it: relx's names, releases/<name>.rel at the top.
  const fs::path tgz = dir / "start_sasl-25.tar.gz";
  auto t = store->erl_release_export({"start_sasl", "25"}, tgz.string());
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  EXPECT_TRUE(t->tarball);
  const fs::path unpacked = dir / "unpacked";
  fs::create_directory(unpacked);
  const auto c =
      run("erl -noshell -eval " +
          sh_quote(fmt::format("ok = erl_tar:extract(\"{}\", [compressed, {{cwd, \"{}\"}}]), halt().",
                               tgz.string(), unpacked.string())));
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_TRUE(testing::read_file(unpacked / "releases/start_sasl.rel") == rel.files[0].bytes);
  fs::remove(unpacked / "releases/start_sasl.rel");
  expect_same_tree(out, unpacked);

  // The same release again: unchanged, nothing written.
  const auto before = row_counts(db());
  auto same = store->import_release(rel);
  ASSERT_TRUE(same.has_value()) << same.error().to_string();
  EXPECT_TRUE(same->unchanged);
  EXPECT_EQ(row_counts(db()), before);
}

TEST_P(ReleaseStore, AReleaseIsImmutableUnlessReplaced) {
  ReleaseContent rel = start_sasl();
  ASSERT_TRUE(store->import_release(rel).has_value());
  const auto before = row_counts(db());
  rel.files[2].bytes.push_back('\n');  // another releases/start_erl.data
  auto r = store->import_release(rel);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kAlreadyExists);
  EXPECT_NE(r.error().message().find("releases/start_erl.data"), std::string::npos) << r.error().message();
  EXPECT_EQ(row_counts(db()), before);
  auto replaced = store->import_release(rel, {.replace = true});
  ASSERT_TRUE(replaced.has_value()) << replaced.error().to_string();
  EXPECT_TRUE(replaced->replaced);
  auto info = store->erl_release_info({"start_sasl", "25"});
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->files.size(), 3u);
  auto x = store->erl_release_export({"start_sasl", "25"}, (dir / "out").string());
  ASSERT_TRUE(x.has_value()) << x.error().to_string();
  EXPECT_TRUE(testing::read_file(dir / "out/releases/start_erl.data") == rel.files[2].bytes);
}

TEST_P(ReleaseStore, ABadReleaseIsAClearErrorAndWritesNothing) {
  ASSERT_TRUE(store->import_app(otp("parsetools")).has_value());
  const auto before = row_counts(db());
  {
    ReleaseContent rel = start_sasl();  // the .rel names sasl, the release lacks it
    rel.apps.pop_back();
    auto r = store->import_release(rel);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("sasl@"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("lacks"), std::string::npos) << r.error().message();
    EXPECT_EQ(row_counts(db()), before);
  }
  {
    ReleaseContent rel = start_sasl();  // two applications carry lists
    AppContent ftp = otp("ftp");
    ContentFile lists;
    lists.path = "ebin/lists.beam";
    lists.bytes = testing::read_file(otp_app("stdlib") / "ebin/lists.beam");
    ftp.files.push_back(lists);
    rel.rel_apps.push_back({ftp.app, ftp.vsn, "", ""});
    rel.apps.push_back(ftp);
    auto r = store->import_release(rel);
    ASSERT_FALSE(r.has_value());
    const std::string m = r.error().message();
    EXPECT_NE(m.find("lists"), std::string::npos) << m;
    EXPECT_NE(m.find("stdlib@"), std::string::npos) << m;
    EXPECT_NE(m.find("ftp@"), std::string::npos) << m;
    EXPECT_EQ(row_counts(db()), before);
  }
  {
    ReleaseContent rel = start_sasl();  // one bad application spoils the release
    auto& sasl = rel.apps.back();
    sasl.files.erase(std::find_if(sasl.files.begin(), sasl.files.end(),
                                  [](const ContentFile& f) { return f.path.ends_with(".beam"); }));
    auto r = store->import_release(rel);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("without their .beam"), std::string::npos) << r.error().message();
    EXPECT_EQ(row_counts(db()), before);
  }
}

TEST_P(ReleaseStore, DiffNamesApplicationsModulesAndFiles) {
  ASSERT_TRUE(store->import_release(start_sasl()).has_value());
  // 26: sasl in a second revision (one module's code changed), ftp added, another boot file.
  ReleaseContent b = start_sasl("start_sasl", "26");
  AppContent& sasl = b.apps.back();
  ASSERT_EQ(sasl.app, "sasl");
  ContentFile* rh = find(sasl.files, "ebin/release_handler.beam");
  ASSERT_NE(rh, nullptr);
  rh->bytes = store_testing::variant_of(rh->bytes, "release_handler.beam", 1);
  AppContent ftp = otp("ftp");
  b.rel_apps.push_back({ftp.app, ftp.vsn, "load", ""});
  b.apps.push_back(ftp);
  find(b.files, "releases/26/start.boot")->bytes =
      testing::read_file("/usr/lib/erlang/releases/25/start_clean.boot");
  auto r = store->import_release(b);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_TRUE(any_contains(r->warnings, "release_handler"));

  auto d = store->erl_release_diff({"start_sasl", "25"}, {"start_sasl", "26"});
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  ASSERT_EQ(d->apps_added.size(), 1u);
  EXPECT_EQ(d->apps_added[0].app, "ftp");
  EXPECT_EQ(d->apps_added[0].type, "load");
  EXPECT_TRUE(d->apps_removed.empty());
  ASSERT_EQ(d->apps_upgraded.size(), 1u);
  EXPECT_EQ(d->apps_upgraded[0].app, "sasl");
  EXPECT_EQ(d->apps_upgraded[0].from_revision, 1);
  EXPECT_EQ(d->apps_upgraded[0].to_revision, 2);
  ASSERT_EQ(d->modules_changed.size(), 1u);
  EXPECT_EQ(d->modules_changed[0].module, "release_handler");
  EXPECT_NE(d->modules_changed[0].from_md5, d->modules_changed[0].to_md5);
  std::size_t ftp_beams = 0;
  for (const auto& f : ftp.files) ftp_beams += f.path.ends_with(".beam");
  EXPECT_EQ(d->modules_added.size(), ftp_beams);
  EXPECT_TRUE(d->modules_removed.empty());
  // Files: the boot script changed (releases/<vsn>/ is one directory in both); start_erl.data
  // too; the release file named by vsn is not "added".
  std::vector<std::string> changed;
  for (const auto& f : d->files_changed) changed.push_back(f.app + ":" + f.path);
  EXPECT_EQ(changed, (std::vector<std::string>{":releases/26/start.boot", ":releases/start_erl.data"}));
  EXPECT_EQ(d->files_added.size(), ftp.files.size() - ftp_beams);
  EXPECT_TRUE(d->files_removed.empty());

  auto back = store->erl_release_diff({"start_sasl", "26"}, {"start_sasl", "25"});
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->apps_removed.size(), 1u);
  EXPECT_EQ(back->modules_removed.size(), ftp_beams);
  auto none = store->erl_release_diff({"start_sasl", "25"}, {"start_sasl", "27"});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), Code::kNotFound);
  EXPECT_NE(none.error().message().find("25, 26"), std::string::npos) << none.error().message();
}

TEST_P(ReleaseStore, GcAndDeleteKeepWhatApplicationVersionsHold) {
  const AppContent app = otp("parsetools");
  ASSERT_TRUE(store->import_app(app).has_value());
  auto gc = store->gc({});
  ASSERT_TRUE(gc.has_value()) << gc.error().to_string();
  EXPECT_TRUE(gc->deleted.empty());
  EXPECT_EQ(gc->blobs_deleted, 0);
  auto del = store->delete_version("yecc", 1);
  ASSERT_FALSE(del.is_ok());
  EXPECT_EQ(del.code(), Code::kFailedPrecondition);
  EXPECT_NE(del.message().find("parsetools@"), std::string::npos) << del.message();
  auto show = store->app_show("parsetools", app.vsn);
  ASSERT_TRUE(show.has_value());
  auto v = store->verify();
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->ok());
}

TEST_P(ReleaseStore, TheCommandLineShowsApplicationsAndReleasesBesideSnapshots) {
  using store_testing::run_cli;
  ASSERT_TRUE(store->import_release(start_sasl()).has_value());
  ASSERT_TRUE(store->release_create("snap1").has_value());  // a snapshot: names without '@'
  const std::string db_path = db();
  {
    const auto r = run_cli(db_path, {"--json", "release", "list"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["releases"].size(), 1u);
    EXPECT_EQ(j["releases"][0]["name"], "snap1");
    ASSERT_EQ(j["erl_releases"].size(), 1u);
    EXPECT_EQ(j["erl_releases"][0]["name"], "start_sasl");
    EXPECT_EQ(j["erl_releases"][0]["vsn"], "25");
  }
  {
    const auto r = run_cli(db_path, {"--json", "release", "show", "start_sasl@25"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["apps"].size(), 3u);
    EXPECT_EQ(j["apps"][0]["app"], "kernel");
    EXPECT_EQ(j["apps"][2]["app"], "sasl");
  }
  {
    const auto r = run_cli(db_path, {"release", "show", "snap1"});  // the snapshot, as before
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("release snap1"), std::string::npos) << r.out;
  }
  {
    const auto r = run_cli(db_path, {"--json", "apps"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["apps"].size(), 3u);
  }
  {
    const auto r = run_cli(db_path, {"--json", "app", "show", "sasl@4.2#1"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["revision"], 1);
    EXPECT_EQ(j["module_list"].size(), j["modules"].get<std::size_t>());
  }
  {
    const auto r = run_cli(db_path, {"--json", "app", "show", "sasl"});
    EXPECT_EQ(r.code, 2) << r.out;
  }
  {
    const auto r = run_cli(db_path, {"--json", "release", "show", "start_sasl@24"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(nlohmann::json::parse(r.out)["error"]["kind"], "not_found");
  }
  {
    const auto r = run_cli(db_path, {"--json", "release", "diff", "start_sasl@25", "start_sasl@25"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["modules"]["changed"].empty());
    EXPECT_TRUE(j["apps"]["upgraded"].empty());
  }
  {
    const std::string out = (dir / "x.tar.gz").string();
    const auto r = run_cli(db_path, {"--json", "release", "export", "start_sasl@25", "-o", out});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["tarball"].get<bool>());
    EXPECT_TRUE(fs::exists(out));
    const auto again = run_cli(db_path, {"release", "export", "start_sasl@25", "-o", out});
    EXPECT_EQ(again.code, 1);  // never over an existing file
  }
}

}  // namespace
}  // namespace codestore

// The CLI's manners, as a new user meets them (issue 11, items 8 and 12): who creates a
// database, --version, help for every argument, unknown commands, range errors that say
// what is allowed, errors as JSON under --json, null for "none", tables aligned by display
// width, diff's and history's exit codes, versions' rollback mark, ls's patterns and --lib.
// The commands run as the real executable, on real temporary databases.
#include <codestore/store.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.h"
#include "cli_process.h"
#include "glob.h"
#include "json_util.h"
#include "store/backend.h"
#include "store/store_test_util.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using cli_testing::CliRun;
using Json = nlohmann::json;
using store_testing::fixture;
using store_testing::read_file;
using store_testing::TempDir;
using store_testing::variant;
using store_testing::write_file;

const std::string kCodestore = CODESTORE_BINARY;

// On both backends (`--db FILE`, `--db postgresql://...`: store/backend.h) where the commands
// show a store's content; CliFileManners where a missing file or a snapshot is the point, or
// nothing is read (usage errors).
class CliManners : public store_testing::BackendTest {
 protected:
  void SetUp() override { db_ = store_at(dir_); }
  // `codestore --db <db> args...`
  CliRun cs(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", db_});
    return cli_testing::run_process(kCodestore, args, dir_.path());
  }
  // `codestore args...` (no --db)
  CliRun bare(const std::vector<std::string>& args) {
    return cli_testing::run_process(kCodestore, args, dir_.path());
  }

  // hello@1 (lib app), hello@2 (lib app, an XTra chunk more), attrs@1 (no lib).
  void make_store() {
    write_file(dir_ / "v1/app-1/ebin/hello.beam", variant("hello.beam", 0));
    write_file(dir_ / "v2/app-1/ebin/hello.beam", variant("hello.beam", 1));
    ASSERT_EQ(cs({"init"}).code, 0);
    for (const std::string& p : {(dir_ / "v1").string(), (dir_ / "v2").string(), fixture("attrs.beam")}) {
      auto r = cs({"import", p});
      ASSERT_EQ(r.code, 0) << r.err;
    }
  }

  TempDir dir_;
  std::string db_;
};
CODESTORE_BOTH_BACKENDS(CliManners);

class CliFileManners : public CliManners {};
INSTANTIATE_TEST_SUITE_P(Backends, CliFileManners, ::testing::Values(store_testing::Backend::kSqlite),
                         store_testing::backend_name);

Json parse(const CliRun& r) {
  Json j = Json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not one JSON document: " << r.out << r.err;
  return j;
}

// ---- item 8: one rule for creating a database ----------------------------------------------

TEST_P(CliFileManners, OnlyInitCreatesADatabase) {
  // A mistyped --db is an error for every command, import included, and creates nothing.
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"import", fixture("hello.beam")},
                                             {"ls"},
                                             {"versions", "hello"},
                                             {"stats"},
                                             {"gc"},
                                             {"release", "list"}}) {
    auto r = cs(cmd);
    EXPECT_EQ(r.code, 1) << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find("`codestore --db " + db_ + " init` creates one"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(db_)) << cmd[0] << " created the database";
  }
  ASSERT_EQ(cs({"init"}).code, 0);
  EXPECT_TRUE(fs::exists(db_));
  auto imp = cs({"import", fixture("hello.beam")});
  EXPECT_EQ(imp.code, 0) << imp.err;
  // --help says which command creates.
  EXPECT_NE(bare({"--help"}).out.find("Only `init` creates one"), std::string::npos);
  EXPECT_NE(bare({"init", "--help"}).out.find("the only command that creates one"), std::string::npos);
}

// ---- item 12: manners ----------------------------------------------------------------------

TEST_P(CliFileManners, VersionFlagPrintsTheVersion) {
  auto r = bare({"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, fmt::format("codestore {} (database schema version {})\n", CODESTORE_VERSION,
                               Store::schema_version()));
}

TEST(CliHelp, EveryOptionAndPositionalIsDescribed) {
  cli::Context ctx;
  auto app = cli::make_app(ctx);
  std::vector<std::string> bare;
  std::function<void(const CLI::App&, const std::string&)> walk = [&](const CLI::App& a,
                                                                      const std::string& path) {
    for (const CLI::Option* o : a.get_options()) {
      if (o->get_description().empty()) bare.push_back(path + " " + o->get_name());
    }
    for (const CLI::App* sub : a.get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_description().empty()) bare.push_back(path + " " + sub->get_name());
      walk(*sub, path + " " + sub->get_name());
    }
  };
  walk(*app, "codestore");
  EXPECT_TRUE(bare.empty()) << "without a description: " << ::testing::PrintToString(bare);
  // And the help shows them, e.g. versions' MODULE.
  std::ostringstream out, err;
  std::istringstream in;
  EXPECT_EQ(cli::run({"versions", "--help"}, in, out, err), 0);
  EXPECT_NE(out.str().find("Module name"), std::string::npos) << out.str();
}

TEST_P(CliFileManners, UnknownCommandIsAUsageErrorNamingIt) {
  auto r = bare({"bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown command bogus"), std::string::npos) << r.err;
  auto sub = bare({"--db", db_, "release", "bogus", "x"});
  EXPECT_EQ(sub.code, 2);
  EXPECT_NE(sub.err.find("unknown command release bogus"), std::string::npos) << sub.err;
}

TEST_P(CliFileManners, RangeErrorsSayWhatIsAllowed) {
  make_store();
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c :
       std::vector<Case>{{{"gc", "--keep", "0"}, "--keep must be at least 1, not 0"},
                         {{"gc", "--keep", "x"}, "--keep must be an integer at least 1, not 'x'"},
                         {{"rollback", "hello", "--to", "0"}, "--to must be at least 1, not 0"},
                         {{"compact", "--level", "23"}, "--level must be from 1 to 22, not 23"},
                         {{"history", "--limit", "-1"}, "--limit must be at least 1, not -1"}}) {
    auto r = cs(c.args);
    EXPECT_EQ(r.code, 2) << c.args[0];
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_EQ(cs({"versions", "hello"}).code, 0);  // nothing was changed
  EXPECT_EQ(parse(cs({"--json", "ls", "hello"}))["modules"][0]["active"], 2);
}

TEST_P(CliFileManners, WithJsonAnErrorIsAJsonObjectOnStdout) {
  // Missing database, unknown module, usage errors from a command and from parsing.
  auto missing = cs({"--json", "ls"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(parse(missing)["error"]["kind"], "not_found");
  auto shell = cs({"--json", "shell"});
  EXPECT_EQ(shell.code, 1);
  EXPECT_EQ(parse(shell)["error"]["kind"], "not_found");
  make_store();
  auto unknown = cs({"--json", "versions", "nosuch"});
  EXPECT_EQ(unknown.code, 1);
  Json j = parse(unknown);
  EXPECT_EQ(j["error"]["kind"], "not_found");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("nosuch"), std::string::npos) << j;
  EXPECT_NE(unknown.err.find("nosuch"), std::string::npos);  // and still on stderr
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--json", "activate", "hello"},
           {"--json", "bogus"},
           {"gc", "--keep", "0", "--json"},
           {"--json", "image", "strip", fixture("attrs.beam"), "-o", dir_ / "x.beam", "--keep", "abc"},
           {"--json", "ls", "he[l"}}) {
    auto r = cs(args);
    EXPECT_EQ(r.code, 2) << args[1];
    Json e = parse(r);
    EXPECT_EQ(e["error"]["kind"], "usage") << e;
    EXPECT_FALSE(e["error"]["message"].get<std::string>().empty());
  }
  // image strip that cannot write its output: one object, as for an image it cannot read.
  auto unwritable =
      cs({"--json", "image", "strip", fixture("attrs.beam"), "-o", dir_ / "no/such/dir/x.beam"});
  EXPECT_EQ(unwritable.code, 1);
  Json w = parse(unwritable);
  EXPECT_EQ(w["error"]["kind"], "file_error") << w;
  EXPECT_NE(w["error"]["message"].get<std::string>().find("no/such/dir"), std::string::npos) << w;
}

TEST_P(CliManners, NoneIsNullInJson) {
  make_store();
  // attrs has no lib; nothing has a note.
  Json ls = parse(cs({"--json", "ls", "attrs"}));
  EXPECT_TRUE(ls["modules"][0]["lib"].is_null()) << ls;
  Json versions = parse(cs({"--json", "versions", "attrs"}));
  EXPECT_TRUE(versions["versions"][0]["lib"].is_null()) << versions;
  EXPECT_TRUE(versions["versions"][0]["note"].is_null()) << versions;
  // The first import came from no version; a global event names no module.
  ASSERT_EQ(cs({"release", "create", "r1"}).code, 0);
  Json history = parse(cs({"--json", "history"}));
  ASSERT_FALSE(history["events"].empty());
  EXPECT_TRUE(history["events"][0]["from"].is_null()) << history["events"][0];
  bool saw_global = false;
  for (const auto& e : history["events"]) {
    if (e["action"] == "release-create") {
      saw_global = true;
      EXPECT_TRUE(e["module"].is_null()) << e;
      EXPECT_TRUE(e["from"].is_null()) << e;
    }
  }
  EXPECT_TRUE(saw_global);
  Json release = parse(cs({"--json", "release", "show", "r1"}));
  EXPECT_TRUE(release["note"].is_null()) << release;
  for (const auto& m : release["contents"]) {
    if (m["module"] == "attrs") {
      EXPECT_TRUE(m["lib"].is_null()) << m;
    }
  }
  Json stats = parse(cs({"--json", "stats"}));
  EXPECT_TRUE(stats["dictionary_id"].is_null());
  EXPECT_TRUE(stats["dictionary_size"].is_null()) << stats;
  // An import's first version came from none, and a file outside <app>/ebin/ has no lib.
  write_file(dir_ / "loose/m.beam", read_file(fixture("loader/v1/m.beam")));
  Json import = parse(cs({"--json", "import", dir_ / "loose/m.beam"}));
  ASSERT_EQ(import["items"].size(), 1u) << import;
  EXPECT_TRUE(import["items"][0]["previous"].is_null()) << import;
  EXPECT_TRUE(import["items"][0]["lib"].is_null()) << import;
  EXPECT_TRUE(import["changed"][0]["from"].is_null()) << import;
}

TEST(CliText, DisplayWidthCountsColumnsNotBytes) {
  EXPECT_EQ(cli::display_width("hello"), 5u);
  EXPECT_EQ(cli::display_width("h\xC3\xA9llo"), 5u);              // é: 2 bytes, 1 column
  EXPECT_EQ(cli::display_width("\xE6\x97\xA5\xE6\x9C\xAC"), 4u);  // 日本: wide
  EXPECT_EQ(cli::display_width("e\xCC\x81"), 1u);                 // e + combining acute
  EXPECT_EQ(cli::display_width("\xFF"), 1u);                      // a stray byte
}

TEST_P(CliManners, TablesAlignUtf8NamesByDisplayWidth) {
  make_store();
  for (const char* name : {"r1", "r\xC3\xA9sum\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC"}) {
    ASSERT_EQ(cs({"release", "create", name, "--note", "n"}).code, 0);
  }
  auto r = cs({"release", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The CREATED column starts at the same display column on every line.
  std::istringstream lines(r.out);
  std::vector<std::size_t> starts;
  for (std::string line; std::getline(lines, line);) {
    const std::size_t gap = line.find("  ");
    ASSERT_NE(gap, std::string::npos) << line;
    const std::size_t start = line.find_first_not_of(' ', gap);
    starts.push_back(cli::display_width(line.substr(0, start)));
  }
  ASSERT_EQ(starts.size(), 4u) << r.out;
  for (std::size_t s : starts) EXPECT_EQ(s, starts[0]) << r.out;
}

TEST_P(CliManners, DiffExitsThreeWhenTheVersionsDiffer) {
  make_store();
  auto differ = cs({"diff", "hello@1", "hello@2"});
  EXPECT_EQ(differ.code, 3) << differ.err;
  EXPECT_NE(differ.out.find("XTra"), std::string::npos);
  auto json = cs({"--json", "diff", "hello@1", "hello@2"});
  EXPECT_EQ(json.code, 3);
  EXPECT_EQ(parse(json)["chunks_only_in_b"], Json::array({"XTra"}));
  auto same = cs({"diff", "hello@2", "hello@2"});
  EXPECT_EQ(same.code, 0) << same.out << same.err;
}

TEST_P(CliManners, HistoryOfAnUnknownModuleIsAnError) {
  make_store();
  auto r = cs({"history", "nosuch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
  EXPECT_EQ(cs({"history", "hello"}).code, 0);
}

TEST_P(CliManners, VersionsMarksTheVersionARollbackReturnsTo) {
  make_store();
  auto marks = [&] {
    std::vector<std::string> m;
    const Json j = parse(cs({"--json", "versions", "hello"}));
    for (const auto& v : j["versions"]) {
      m.push_back(v["active"].get<bool>() ? "active" : v["rollback_target"].get<bool>() ? "rollback-to" : "");
    }
    return m;
  };
  EXPECT_EQ(marks(), (std::vector<std::string>{"rollback-to", "active"}));
  auto text = cs({"versions", "hello"});
  EXPECT_NE(text.out.find("rollback-to  1 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("active       2 "), std::string::npos) << text.out;
  ASSERT_EQ(cs({"rollback", "hello"}).code, 0);
  EXPECT_EQ(marks(), (std::vector<std::string>{"active", "rollback-to"}));
}

TEST_P(CliManners, LsTakesSeveralPatternsBracketsAndLib) {
  make_store();
  auto names = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--json", "ls"});
    std::vector<std::string> n;
    auto r = cs(args);
    EXPECT_EQ(r.code, 0) << r.err;
    const Json j = parse(r);
    for (const auto& m : j["modules"]) n.push_back(m["module"]);
    return n;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names({"hello", "attrs"}), (V{"attrs", "hello"}));
  EXPECT_EQ(names({"h*", "nomatch*"}), (V{"hello"}));
  EXPECT_EQ(names({"--lib", "app"}), (V{"hello"}));
  EXPECT_EQ(names({"*", "--lib", "nosuchlib"}), V{});
  EXPECT_EQ(names({"[a-g]*"}), (V{"attrs"}));
  EXPECT_EQ(names({"[!a-g]*"}), (V{"hello"}));
  EXPECT_EQ(names({"h?ll[aeiou]"}), (V{"hello"}));
  EXPECT_EQ(names({"\\hello"}), (V{"hello"}));
  // A pattern that cannot be read is refused, not matched literally.
  for (const char* bad : {"he[l", "[z-a]*", "hello\\"}) {
    auto r = cs({"ls", bad});
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  }
}

TEST(CliGlob, MatchesByCharacterWithSetsRangesAndEscapes) {
  auto m = [](const char* pattern, const char* name) {
    auto g = cli::Glob::compile(pattern);
    EXPECT_TRUE(g.has_value()) << pattern << ": " << g.error().to_string();
    return g && g->matches(name);
  };
  EXPECT_TRUE(m("caf?", "caf\xC3\xA9"));  // ? is one character, é two bytes
  EXPECT_FALSE(m("caf??", "caf\xC3\xA9"));
  EXPECT_TRUE(m("[\xC3\xA0-\xC3\xBF]t\xC3\xA9", "\xC3\xA9t\xC3\xA9"));  // [à-ÿ]té
  EXPECT_TRUE(m("gen_[a-s]*", "gen_server"));
  EXPECT_FALSE(m("gen_[a-s]*", "gen_tcp"));
  EXPECT_TRUE(m("gen_[^a-s]*", "gen_tcp"));
  EXPECT_TRUE(m("[]x]", "]"));     // ']' first is itself
  EXPECT_TRUE(m("[a-]", "-"));     // '-' last is itself
  EXPECT_TRUE(m("a\\*b", "a*b"));  // an escaped '*' is a star
  EXPECT_FALSE(m("a\\*b", "axb"));
  EXPECT_TRUE(m("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_FALSE(m("*a*b*c*", "xxaxxcxxbxx"));
  for (const char* bad : {"[abc", "[z-a]", "x\\", "[!"}) {
    auto g = cli::Glob::compile(bad);
    ASSERT_FALSE(g.has_value()) << bad;
    EXPECT_EQ(g.error().code(), Code::kInvalidArgument);
    EXPECT_NE(g.error().message().find(bad), std::string::npos) << g.error().message();
  }
}

TEST_P(CliFileManners, SnapshotIsForTheCommandsThatRead) {
  make_store();
  auto ls = cs({"--snapshot", "--json", "ls"});
  EXPECT_EQ(ls.code, 0) << ls.err;
  EXPECT_EQ(parse(ls)["modules"].size(), 2u);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--snapshot", "import", fixture("attrs.beam")},
                                             {"--snapshot", "rollback", "hello"},
                                             {"--snapshot", "image", "md5", fixture("attrs.beam")}}) {
    auto r = cs(args);
    EXPECT_EQ(r.code, 2) << args[1];
    EXPECT_NE(r.err.find("--snapshot"), std::string::npos) << r.err;
  }
  EXPECT_EQ(parse(cs({"--json", "ls", "hello"}))["modules"][0]["active"], 2);
}

}  // namespace
}  // namespace codestore

// `codestore import` of real releases and `deploy` (issue 13, docs/model.md), driven in-process
// through cli::run on real temporary databases, with releases the real tools build here
// offline (tests/support/real_releases.h): a systools:make_tar tarball and a mix release.
// What is checked is what a node in the channel would run: the channel's active versions by
// module MD5, against the files the tools wrote.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/store_test_util.h"
#include "support/files.h"
#include "support/real_releases.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using store_testing::CliResult;
using store_testing::run_cli;
using store_testing::TempDir;

class ReleaseCli : public ::testing::Test {
 protected:
  CliResult cs(const std::vector<std::string>& args) { return run_cli(db_, args); }
  Json json(const std::vector<std::string>& args, int code = 0) {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = cs(a);
    EXPECT_EQ(r.code, code) << r.out << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not one JSON document: " << r.out << r.err;
    return j;
  }
  // The module MD5 of a file, as `codestore image md5` (beam_lib:md5/1) says.
  std::string md5_of(const fs::path& beam) {
    auto j = json({"image", "md5", beam.string()});
    const std::string md5 = j.value("md5", "");
    EXPECT_EQ(md5.size(), 32u) << beam << ": " << j.dump();
    return md5;
  }
  // The active version's MD5 of `module` in `channel` ("" when it has none).
  std::string active_md5(const std::string& channel, const std::string& module) {
    auto r = cs({"--json", "--channel", channel, "show", module});
    EXPECT_EQ(r.code, 0) << module << " in " << channel << ": " << r.err;
    if (r.code != 0) return "";
    return Json::parse(r.out).value("md5", "");
  }
  // The modules with an active version in `channel` (ls lists every module the store has).
  std::size_t module_count(const std::string& channel) {
    auto r = cs({"--json", "--channel", channel, "ls"});
    EXPECT_EQ(r.code, 0) << r.err;
    if (r.code != 0) return 0;
    std::size_t n = 0;
    const Json j = Json::parse(r.out);
    for (const auto& m : j["modules"]) n += m["active"].is_null() ? 0 : 1;
    return n;
  }
  void SetUp() override { ASSERT_EQ(cs({"init"}).code, 0); }

  TempDir dir_;
  std::string db_ = dir_ / "s.db";
};

TEST_F(ReleaseCli, ASystoolsTarballImportsIntoItsChannelAndNowhereElse) {
  const auto rel = testing::build_systools_tar(dir_ / "build");
  auto imported = json({"--channel", "prod", "import", rel.tar.string()});
  EXPECT_EQ(imported["release"], rel.name + "@" + rel.vsn);
  EXPECT_EQ(imported["kind"], "systools");
  EXPECT_EQ(imported["channel"], "prod");
  ASSERT_TRUE(imported["generation"].is_number()) << imported.dump();
  // The channel runs the tarball's code: its application's module and OTP's, by MD5.
  EXPECT_EQ(active_md5("prod", rel.app), md5_of(rel.app_dir / "ebin" / (rel.app + ".beam")));
  EXPECT_EQ(active_md5("prod", "lists"),
            md5_of(rel.otp.root / "lib" / ("stdlib-" + rel.otp.stdlib) / "ebin" / "lists.beam"));
  EXPECT_GT(module_count("prod"), 100u);  // kernel and stdlib too
  // The default channel was not touched.
  EXPECT_EQ(module_count("default"), 0u);
  // Deploying the same release again changes nothing, and says so.
  auto again = json({"--channel", "prod", "deploy", rel.name + "@" + rel.vsn});
  EXPECT_TRUE(again["generation"].is_null()) << again.dump();
  // Importing the same tarball again is unchanged; without --channel nothing is deployed.
  auto second = json({"import", rel.tar.string()});
  EXPECT_EQ(second["unchanged"], true) << second.dump();
  EXPECT_TRUE(second["channel"].is_null());
  EXPECT_EQ(module_count("default"), 0u);
  // The channel's history names the deploy.
  auto history = json({"channel", "history", "prod"});
  ASSERT_FALSE(history["generations"].empty()) << history.dump();
  EXPECT_EQ(history["generations"][0]["action"], "deploy") << history.dump();
}

TEST_F(ReleaseCli, ATarballCutShortWritesNothing) {
  const auto rel = testing::build_systools_tar(dir_ / "build");
  auto bytes = testing::read_file(rel.tar);
  bytes.resize(bytes.size() * 2 / 3);
  const fs::path cut = dir_ / "cut.tar.gz";
  testing::write_file(cut, bytes);
  auto r = cs({"--channel", "prod", "import", cut.string()});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cut.tar.gz"), std::string::npos) << r.err;
  EXPECT_TRUE(json({"release", "list"})["erl_releases"].empty());
  EXPECT_TRUE(json({"apps"})["apps"].empty());
}

TEST_F(ReleaseCli, AMixReleasesChannelRunsTheConsolidatedProtocols) {
  const auto mix = testing::build_mix_release(dir_ / "build");
  auto imported = json({"--channel", "web", "import", mix.dir.string()});
  EXPECT_EQ(imported["kind"], "mix") << imported.dump();
  const fs::path consolidated = mix.dir / "releases" / mix.vsn / "consolidated" / "Elixir.Enumerable.beam";
  ASSERT_TRUE(fs::exists(consolidated));
  fs::path elixir_ebin;
  for (const auto& e : fs::directory_iterator(mix.dir / "lib")) {
    if (e.path().filename().string().starts_with("elixir-")) elixir_ebin = e.path() / "ebin";
  }
  ASSERT_FALSE(elixir_ebin.empty());
  const std::string own = md5_of(elixir_ebin / "Elixir.Enumerable.beam");
  ASSERT_NE(md5_of(consolidated), own) << "the consolidated protocol is other code";
  // In the channel, the consolidated one; Elixir's application keeps its own.
  EXPECT_EQ(active_md5("web", "Elixir.Enumerable"), md5_of(consolidated));
  const std::string elixir = "elixir@" + elixir_ebin.parent_path().filename().string().substr(7);
  auto app = json({"app", "show", elixir});
  bool found = false;
  for (const auto& m : app["module_list"]) {
    if (m["module"] == "Elixir.Enumerable") {
      found = true;
      EXPECT_EQ(m["md5"], own);
    }
  }
  EXPECT_TRUE(found) << app.dump().substr(0, 400);
  // The secret stayed out.
  auto show = json({"release", "show", mix.name + "@" + mix.vsn});
  EXPECT_EQ(show.dump().find("releases/COOKIE"), std::string::npos);
}

}  // namespace
}  // namespace codestore

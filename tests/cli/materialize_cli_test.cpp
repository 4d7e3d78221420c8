// `codestore materialize` (issue 14) end to end, driven in-process through cli::run on a real
// database, with a real rebar3 release built here offline in two versions
// (tests/support/real_releases.h), its application carrying priv files. What is checked is the
// node's local root as a set of files: exactly the priv files (byte for byte with what rebar3
// put in the release), the boot files, sys.config, vm.args, start_erl.data and RELEASES, never a
// beam; RELEASES is compared with the one OTP's own release_handler:create_RELEASES/4 writes
// for the same .rel, both read by file:consult/1. A mix release too: its consolidated protocols
// (module images) and its releases/COOKIE (a secret) never reach the disk.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
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

bool have_tools() {
  return std::system("command -v rebar3 >/dev/null 2>&1 && command -v erl >/dev/null 2>&1") == 0;
}

// Every regular file, link and empty directory under `root`: path -> bytes ("<dir>", "-> T").
std::map<std::string, std::string> files_under(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      if (fs::is_empty(it->path())) out[rel] = "<dir>";
    } else {
      out[rel] = testing::read_text(it->path());
    }
  }
  return out;
}

std::vector<std::string> keys(const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

// What materialize must write for the release rebar3 built in `rel` (version `vsn`): each
// lib/<app>-<vsn>/ with an empty ebin/ and its priv files, the release's boot scripts,
// sys.config and vm.args, RELEASES, start_erl.data, and the manifest.
std::map<std::string, std::string> expected(const fs::path& rel, const std::string& vsn) {
  std::map<std::string, std::string> out;
  for (const auto& lib : fs::directory_iterator(rel / "lib")) {
    const std::string dir = "lib/" + lib.path().filename().string() + "/";
    out[dir + "ebin"] = "<dir>";
    if (!fs::is_directory(lib.path() / "priv")) continue;
    for (const auto& [path, bytes] : files_under(lib.path() / "priv")) out[dir + "priv/" + path] = bytes;
  }
  for (const auto& f : fs::directory_iterator(rel / "releases" / vsn)) {
    const std::string name = f.path().filename().string();
    if (name.ends_with(".boot") || name == "sys.config" || name == "vm.args")
      out["releases/" + vsn + "/" + name] = testing::read_text(f.path());
  }
  for (const char* generated : {"releases/RELEASES", "releases/start_erl.data", ".codestore-materialized"})
    out[generated] = "";
  return out;
}

// Whether `releases` holds what release_handler:create_RELEASES/4 writes for `rel_file` with
// library directories relative to the root (Root ""), both read by file:consult/1, and the
// release it names: "true NAME VSN permanent".
std::string same_as_release_handlers(const fs::path& releases, const fs::path& rel_file,
                                     const fs::path& scratch) {
  fs::create_directories(scratch);
  const std::string eval = fmt::format(
      "ok = release_handler:create_RELEASES(\"\", \"{0}\", \"{1}\", []), "
      "{{ok, Theirs}} = file:consult(\"{0}/RELEASES\"), {{ok, Ours}} = file:consult(\"{2}\"), "
      "[[{{release, N, V, _, _, S}}]] = Ours, io:format(\"~p ~s ~s ~p~n\", [Theirs =:= Ours, N, V, S]), "
      "halt().",
      scratch.string(), rel_file.string(), releases.string());
  return testing::run_checked("erl -noshell -eval " + testing::sh_quote(eval), scratch, scratch);
}

TEST(MaterializeCli, ARebar3ReleaseAndItsUpgradeMaterializeExactly) {
  if (!have_tools()) GTEST_SKIP() << "rebar3 or erl is not installed";
  TempDir dir;
  const std::string binary("\x00\x01\x02 not text \xff", 15);
  const testing::Rebar3Options o1{
      .vsn = "0.1.0",
      .version_reply = "",
      .priv = {{"data.txt", "priv data of 0.1.0\n"}, {"old/only-in-0.1.0.txt", "gone in 0.2.0\n"}},
      .dev = false};
  const testing::Rebar3Options o2{
      .vsn = "0.2.0",
      .version_reply = "",
      .priv = {{"data.txt", "priv data of 0.2.0\n"}, {"new/only-in-0.2.0.bin", binary}},
      .dev = false};
  fs::create_directories(dir / "b1");
  fs::create_directories(dir / "b2");
  const auto x1 = testing::build_rebar3_release(dir / "b1", o1);
  const auto x2 = testing::build_rebar3_release(dir / "b2", o2);

  const std::string db = (dir / "s.db").string();
  auto cs = [&](const std::vector<std::string>& args) { return run_cli(db, args); };
  auto json = [&](const std::vector<std::string>& args, int code) {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    const CliResult r = cs(a);
    EXPECT_EQ(r.code, code) << r.out << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  };
  ASSERT_EQ(cs({"init"}).code, 0);
  json({"--channel", "prod", "import", x1.prod_dir.string()}, 0);

  // An unknown channel: a clear error, nothing written.
  const fs::path root = dir / "node-root";
  auto unknown = json({"--channel", "nosuch", "materialize", root.string()}, 1);
  EXPECT_EQ(unknown["error"]["kind"], "not_found") << unknown.dump();
  EXPECT_NE(unknown["error"]["message"].get<std::string>().find("unknown channel nosuch"), std::string::npos);
  EXPECT_FALSE(fs::exists(root));

  // A directory with someone's files and no manifest: refused, naming it, untouched.
  const fs::path theirs = dir / "theirs";
  testing::write_file(theirs / "keep.txt", "not materialize's");
  auto refused = json({"--channel", "prod", "materialize", theirs.string()}, 1);
  EXPECT_EQ(refused["error"]["kind"], "failed_precondition") << refused.dump();
  EXPECT_NE(refused["error"]["message"].get<std::string>().find(theirs.string() + " is not empty"),
            std::string::npos)
      << refused.dump();
  EXPECT_EQ(keys(files_under(theirs)), std::vector<std::string>{"keep.txt"});

  // 0.1.0: exactly what the node reads on local disk.
  auto m1 = json({"--channel", "prod", "materialize", root.string()}, 0);
  EXPECT_EQ(m1["release"], "myrel@0.1.0");
  EXPECT_EQ(m1["channel"], "prod");
  EXPECT_TRUE(m1["previous_generation"].is_null());
  auto got = files_under(root);
  EXPECT_EQ(keys(got), keys(expected(x1.prod_dir, "0.1.0")));
  for (const auto& [path, bytes] : expected(x1.prod_dir, "0.1.0")) {
    if (!bytes.empty() && got.count(path)) {
      EXPECT_TRUE(got[path] == bytes) << path;
    }
  }
  for (const auto& [path, bytes] : got) {
    EXPECT_FALSE(path.ends_with(".beam")) << path;
    EXPECT_FALSE(path.ends_with("COOKIE")) << path;
  }
  EXPECT_EQ(got["lib/myrel-0.1.0/priv/data.txt"], "priv data of 0.1.0\n");
  EXPECT_EQ(got["lib/myrel-0.1.0/priv/old/only-in-0.1.0.txt"], "gone in 0.2.0\n");
  EXPECT_EQ(same_as_release_handlers(root / "releases/RELEASES", x1.prod_dir / "releases/0.1.0/myrel.rel",
                                     dir / "rh1"),
            "true myrel 0.1.0 permanent\n");
  EXPECT_EQ(got["releases/start_erl.data"], m1["erts"].get<std::string>() + " 0.1.0");

  // The operator's own files, beside and inside what materialize wrote.
  testing::write_file(root / "etc/operator.conf", "mine");
  testing::write_file(root / "lib/myrel-0.1.0/priv/operator-notes.txt", "mine too");

  // 0.2.0 deployed: the directory follows; 0.1.0's files are gone, the operator's stay.
  json({"--channel", "prod", "import", x2.prod_dir.string()}, 0);
  auto m2 = json({"--channel", "prod", "materialize", root.string()}, 0);
  EXPECT_EQ(m2["release"], "myrel@0.2.0");
  EXPECT_EQ(m2["previous_generation"], m1["generation"]);
  const auto removed = m2["removed"].get<std::vector<std::string>>();
  for (const char* path : {"lib/myrel-0.1.0/priv/data.txt", "lib/myrel-0.1.0/priv/old/only-in-0.1.0.txt",
                           "lib/myrel-0.1.0/ebin", "releases/0.1.0/start.boot"}) {
    EXPECT_TRUE(std::find(removed.begin(), removed.end(), path) != removed.end()) << path;
  }
  got = files_under(root);
  EXPECT_EQ(got["etc/operator.conf"], "mine");
  EXPECT_EQ(got["lib/myrel-0.1.0/priv/operator-notes.txt"], "mine too");
  got.erase("etc/operator.conf");
  got.erase("lib/myrel-0.1.0/priv/operator-notes.txt");
  EXPECT_EQ(keys(got), keys(expected(x2.prod_dir, "0.2.0")));
  EXPECT_EQ(got["lib/myrel-0.2.0/priv/data.txt"], "priv data of 0.2.0\n");
  EXPECT_TRUE(got["lib/myrel-0.2.0/priv/new/only-in-0.2.0.bin"] == binary);
  EXPECT_FALSE(fs::exists(root / "releases/0.1.0"));
  EXPECT_EQ(same_as_release_handlers(root / "releases/RELEASES", x2.prod_dir / "releases/0.2.0/myrel.rel",
                                     dir / "rh2"),
            "true myrel 0.2.0 permanent\n");

  // Once more: nothing to do, said in text.
  const CliResult again = cs({"--channel", "prod", "materialize", root.string()});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("0 written, 0 removed"), std::string::npos) << again.out;
}

TEST(MaterializeCli, AMixReleaseGetsNoConsolidatedBeamAndNoCookie) {
  if (std::system("command -v mix >/dev/null 2>&1 && command -v erl >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "mix or erl is not installed";
  TempDir dir;
  fs::create_directories(dir / "build");
  const auto mix = testing::build_mix_release(dir / "build");
  ASSERT_TRUE(fs::exists(mix.dir / "releases/COOKIE"));
  ASSERT_TRUE(fs::is_directory(mix.dir / "releases" / mix.vsn / "consolidated"));
  const std::string db = (dir / "s.db").string();
  ASSERT_EQ(run_cli(db, {"init"}).code, 0);
  const CliResult imported = run_cli(db, {"--channel", "web", "import", mix.dir.string()});
  ASSERT_EQ(imported.code, 0) << imported.out << imported.err;

  const fs::path root = dir / "node-root";
  const CliResult m = run_cli(db, {"--json", "--channel", "web", "materialize", root.string()});
  ASSERT_EQ(m.code, 0) << m.out << m.err;
  EXPECT_EQ(Json::parse(m.out)["release"], mix.name + "@" + mix.vsn);
  const auto got = files_under(root);
  EXPECT_EQ(keys(got), keys(expected(mix.dir, mix.vsn)));
  for (const auto& [path, bytes] : got) {
    EXPECT_FALSE(path.ends_with(".beam")) << path;
    EXPECT_EQ(path.find("COOKIE"), std::string::npos) << path;
    EXPECT_EQ(path.find("consolidated"), std::string::npos) << path;
  }
  EXPECT_EQ(same_as_release_handlers(root / "releases/RELEASES",
                                     mix.dir / "releases" / mix.vsn / (mix.name + ".rel"), dir / "rh"),
            fmt::format("true {} {} permanent\n", mix.name, mix.vsn));
}

}  // namespace
}  // namespace codestore

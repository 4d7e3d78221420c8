// A real release, built offline by rebar3 in the test (`rebar3 new release`, a gen_server
// with version/0, the prod profile: stripped, gzip-wrapped beams), in two versions: each is
// imported from its directory, exported as a directory (compared file by file, byte for byte,
// with modes) and as a tarball; the diff names the changed module and application; the
// exported 0.1.0 boots with erts's own erlexec and answers version(); on that node,
// release_handler:unpack_release/1 takes the exported tarball of 0.2.0. Nodes run without
// distribution (no epmd, nothing listens) and are stopped by their own halt() or a timeout.
#include <codestore/release_types.h>
#include <codestore/store.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "release_test_util.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using release_testing::read_release_dir;
using release_testing::run;
using release_testing::sh_quote;
using release_testing::walk;
using testing::TempDir;

bool have_tools() {
  return std::system("command -v rebar3 >/dev/null 2>&1 && command -v erl >/dev/null 2>&1") == 0;
}

// erts as Debian installs it: /usr/lib/erlang/erts-<vsn>.
fs::path erts_dir() {
  for (const auto& e : fs::directory_iterator("/usr/lib/erlang")) {
    if (e.path().filename().string().starts_with("erts-")) return e.path();
  }
  return {};
}

void edit(const fs::path& file, const std::string& from, const std::string& to) {
  std::string t = testing::read_text(file);
  const auto at = t.find(from);
  ASSERT_NE(at, std::string::npos) << file << " has no " << from;
  t.replace(at, from.size(), to);
  testing::write_file(file, t);
}

// Builds myrel VSN with the prod profile and copies the release directory to `out`.
void build(const fs::path& home, const fs::path& project, const std::string& vsn, const fs::path& out) {
  const auto c = run(fmt::format("cd {} && HOME={} rebar3 as prod release", sh_quote(project.string()),
                                 sh_quote(home.string())));
  ASSERT_EQ(c.code, 0) << c.output;
  const fs::path rel = project / "_build/prod/rel/myrel";
  ASSERT_TRUE(fs::exists(rel / "releases" / vsn / "myrel.rel")) << c.output;
  fs::copy(rel, out, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::remove_all(rel);
}

// Runs the release in `root` with erts's erlexec, its boot script for `vsn`, evaluating
// `eval` (which must halt); returns what it printed.
release_testing::Command boot(const fs::path& root, const std::string& vsn, const std::string& eval) {
  const fs::path erts = erts_dir();
  return run(
      fmt::format("cd {0} && ROOTDIR={0} BINDIR={1}/bin EMU=beam PROGNAME=erl timeout 60 {1}/bin/erlexec "
                  "-boot {0}/releases/{2}/start -noshell -eval {3}",
                  sh_quote(root.string()), sh_quote(erts.string()), vsn, sh_quote(eval)));
}

// Every file of the release as built (erts-* aside: never stored) is in the export, with its
// bytes, its permission bits and its link target; and nothing else is.
void expect_exported(const fs::path& built, const fs::path& exported) {
  auto skip_erts = [](const std::string& p) { return p.starts_with("erts-"); };
  const auto a = walk(built, skip_erts), b = walk(exported);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].path, b[i].path);
    EXPECT_TRUE(a[i].bytes == b[i].bytes) << a[i].path;
    EXPECT_EQ(a[i].link, b[i].link) << a[i].path;
    if (a[i].link.empty()) {
      EXPECT_EQ(a[i].mode, b[i].mode) << a[i].path;
    }
  }
}

TEST(ReleaseBuild, Rebar3ReleaseImportsExportsBootsDiffsAndUpgrades) {
  if (!have_tools()) GTEST_SKIP() << "rebar3 or erl is not installed";
  TempDir dir;
  const fs::path home = dir / "home";
  fs::create_directory(home);
  {
    const auto c = run(fmt::format("cd {} && HOME={} rebar3 new release myrel", sh_quote(dir.path().string()),
                                   sh_quote(home.string())));
    ASSERT_EQ(c.code, 0) << c.output;
  }
  const fs::path project = dir / "myrel";
  const fs::path server = project / "apps/myrel/src/myrel_server.erl";
  testing::write_file(server,
                      "-module(myrel_server).\n"
                      "-behaviour(gen_server).\n"
                      "-export([start_link/0, version/0, init/1, handle_call/3, handle_cast/2]).\n"
                      "start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).\n"
                      "version() -> \"0.1.0\".\n"
                      "init([]) -> {ok, #{}}.\n"
                      "handle_call(version, _From, S) -> {reply, version(), S}.\n"
                      "handle_cast(_, S) -> {noreply, S}.\n");
  build(home, project, "0.1.0", dir / "rel1");
  edit(server, "version() -> \"0.1.0\".", "version() -> \"0.2.0\".");
  edit(project / "apps/myrel/src/myrel.app.src", "{vsn, \"0.1.0\"}", "{vsn, \"0.2.0\"}");
  edit(project / "rebar.config", "{myrel, \"0.1.0\"}", "{myrel, \"0.2.0\"}");
  build(home, project, "0.2.0", dir / "rel2");

  auto opened = Store::open((dir / "s.db").string(), {});
  ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
  Store& store = **opened;
  const ReleaseContent x1 = read_release_dir(dir / "rel1", "myrel", "0.1.0");
  const ReleaseContent x2 = read_release_dir(dir / "rel2", "myrel", "0.2.0");
  auto r1 = store.import_release(x1);
  ASSERT_TRUE(r1.has_value()) << r1.error().to_string();
  auto r2 = store.import_release(x2);
  ASSERT_TRUE(r2.has_value()) << r2.error().to_string();
  // kernel, stdlib and sasl are the same in both: stored once.
  EXPECT_EQ(r2->revisions_made, 1u);
  EXPECT_EQ(r2->new_versions, 1u) << "only myrel_server's code is new";

  // Both round-trip byte for byte.
  ASSERT_TRUE(store.erl_release_export({"myrel", "0.1.0"}, (dir / "out1").string()).has_value());
  expect_exported(dir / "rel1", dir / "out1");
  ASSERT_TRUE(store.erl_release_export({"myrel", "0.2.0"}, (dir / "out2").string()).has_value());
  expect_exported(dir / "rel2", dir / "out2");

  // The diff names the changed module and application.
  auto d = store.erl_release_diff({"myrel", "0.1.0"}, {"myrel", "0.2.0"});
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  ASSERT_EQ(d->apps_upgraded.size(), 1u);
  EXPECT_EQ(d->apps_upgraded[0].app, "myrel");
  EXPECT_EQ(d->apps_upgraded[0].from_vsn, "0.1.0");
  EXPECT_EQ(d->apps_upgraded[0].to_vsn, "0.2.0");
  ASSERT_EQ(d->modules_changed.size(), 1u);
  EXPECT_EQ(d->modules_changed[0].module, "myrel_server");
  EXPECT_TRUE(d->apps_added.empty());
  EXPECT_TRUE(d->apps_removed.empty());
  // The CLI says the same (the built executable, --json).
  {
    const auto c = run(fmt::format("{} --db {} --json release diff myrel@0.1.0 myrel@0.2.0", CODESTORE_BINARY,
                                   sh_quote((dir / "s.db").string())));
    ASSERT_EQ(c.code, 0) << c.output;
    const auto j = nlohmann::json::parse(c.output);
    ASSERT_EQ(j["modules"]["changed"].size(), 1u) << c.output;
    EXPECT_EQ(j["modules"]["changed"][0]["module"], "myrel_server");
    EXPECT_EQ(j["apps"]["upgraded"][0]["app"], "myrel");
  }

  // The exported directories boot, and answer their own version().
  const std::string ask = "io:format(\"~s~n\", [myrel_server:version()]), halt().";
  {
    const auto c = boot(dir / "out1", "0.1.0", ask);
    EXPECT_EQ(c.code, 0) << c.output;
    EXPECT_EQ(c.output, "0.1.0\n");
  }
  {
    const auto c = boot(dir / "out2", "0.2.0", ask);
    EXPECT_EQ(c.code, 0) << c.output;
    EXPECT_EQ(c.output, "0.2.0\n");
  }

  // The exported tarball of 0.2.0, as relx names it for release_handler ("VSN/NAME"), is
  // unpacked by a node running 0.1.0.
  const fs::path tgz = dir / "out1/releases/0.2.0/myrel.tar.gz";
  fs::create_directories(tgz.parent_path());
  {
    const auto c = run(fmt::format("{} --db {} release export myrel@0.2.0 -o {}", CODESTORE_BINARY,
                                   sh_quote((dir / "s.db").string()), sh_quote(tgz.string())));
    ASSERT_EQ(c.code, 0) << c.output;
  }
  {
    const auto c =
        boot(dir / "out1", "0.1.0",
             "{ok, V} = release_handler:unpack_release(\"0.2.0/myrel\"), "
             "io:format(\"~s ~p~n\", [V, [{Vsn, S} || {_, Vsn, _, S} <- release_handler:which_releases()]]), "
             "halt().");
    EXPECT_EQ(c.code, 0) << c.output;
    EXPECT_NE(c.output.find("0.2.0 [{\"0.2.0\",unpacked},{\"0.1.0\",permanent}]"), std::string::npos)
        << c.output;
  }
  EXPECT_TRUE(testing::read_file(dir / "out1/lib/myrel-0.2.0/ebin/myrel_server.beam") ==
              testing::read_file(dir / "rel2/lib/myrel-0.2.0/ebin/myrel_server.beam"));
}

}  // namespace
}  // namespace codestore

// A mix release with consolidated protocols boots from the store through a client root (issue
// 14): `mix new` + `MIX_ENV=prod mix release` offline, imported and deployed to channel web,
// the node's local root materialized (no beam), and the node started as the release's own
// script starts it (`-mode embedded`, its `start` boot script and `sys.config`, `-boot_var
// RELEASE_LIB <root>/lib`). Its boot script names the consolidated protocols as
// `$RELEASE_LIB/../releases/<vsn>/consolidated`: the node asks for `<root>/lib/../releases/...`.
// It runs Elixir code (the project's Foo.hello/0, Enum over a Range and String.Chars, both
// dispatched through consolidated protocols), and every loaded module's MD5 is the store's.
//
// Skipped when erl or mix is not installed. UDP port 4368: RESOURCE_LOCK boot_server_port.
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "erl_node.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/real_releases.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::TempDir;
using testing::check_loaded;
using testing::dump_logs;
using testing::find_program;
using testing::loaded_line;
using testing::LoadedCheck;
using testing::md5_line;
using testing::run_cli;
using testing::ServeProcess;
using testing::start_release_node;
using namespace std::chrono_literals;

class ErlMixReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty() || find_program("mix").empty())
      GTEST_SKIP() << "erl or mix is not installed (apt-get install erlang-nox elixir)";
    testing::node_environment();
  }
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 8000);
  }
  std::string log(const std::string& name) const { return dir_.path().string() + "/" + name + ".log"; }

  TempDir dir_;
};

TEST_F(ErlMixReleaseTest, ConsolidatedProtocolsBootFromTheStoreAndRunElixir) {
  fs::create_directories(dir_.path() / "build");
  codestore::testing::MixRelease mix;
  try {
    mix = codestore::testing::build_mix_release(dir_.path() / "build", "foo", "0.1.0");
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const std::string db = dir_.path().string() + "/store.db";
  ASSERT_EQ(run_cli(db, {"init"}, log("init")), 0);
  ASSERT_EQ(run_cli(db, {"--channel", "web", "import", mix.dir.string()}, log("import")), 0);
  const std::string root = dir_.path().string() + "/node-root";
  ASSERT_EQ(run_cli(db, {"--channel", "web", "materialize", root}, log("materialize")), 0);
  for (const auto& e : fs::recursive_directory_iterator(root))
    EXPECT_NE(e.path().extension(), ".beam") << e.path();

  // The consolidated Enumerable the release holds differs from elixir's own.
  std::string consolidated_md5, elixir_md5, elixir_vsn;
  {
    auto store = Store::open(db);
    ASSERT_TRUE(store) << store.error().to_string();
    auto info = (*store)->erl_release_info(ReleaseId{"foo", "0.1.0"});
    ASSERT_TRUE(info) << info.error().to_string();
    for (const ContentModule& m : info->consolidated) {
      if (m.module == "Elixir.Enumerable") consolidated_md5 = m.md5;
    }
    for (const ErlReleaseApp& a : info->apps) {
      if (a.app != "elixir") continue;
      elixir_vsn = a.vsn;
      auto app = (*store)->app_show("elixir", a.vsn);
      ASSERT_TRUE(app) << app.error().to_string();
      for (const ContentModule& m : app->modules) {
        if (m.module == "Elixir.Enumerable") elixir_md5 = m.md5;
      }
    }
  }
  ASSERT_FALSE(consolidated_md5.empty());
  ASSERT_FALSE(elixir_md5.empty());
  ASSERT_NE(consolidated_md5, elixir_md5);

  ServeProcess serve(db, {"--port", "0", "--client-root", root, "--channel", "web=" + root}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  // A Range is the struct #{'__struct__' => 'Elixir.Range', ...}: Enum.sum/1 dispatches on it
  // through Enumerable, to_string/1 through String.Chars.
  const std::string range = "#{'__struct__' => 'Elixir.Range', first => 1, last => 10, step => 1}";
  const std::string eval =
      "io:format(\"hello=~p~n\", ['Elixir.Foo':hello()]), "
      "io:format(\"sum=~p~n\", ['Elixir.Enum':sum(" +
      range +
      ")]), "
      "io:format(\"map=~p~n\", ['Elixir.Enum':map(" +
      range +
      ", fun(X) -> X * X end)]), "
      "io:format(\"chars=~s~n\", ['Elixir.String.Chars':to_string(42)]), "
      "io:format(\"consolidated=~p~n\", ['Elixir.Enumerable':'__protocol__'('consolidated?')]), "
      "io:format(\"which=~s~n\", [code:which('Elixir.Enumerable')]), " +
      md5_line("'Elixir.Enumerable'") + loaded_line(root) + "halt().";
  auto node = start_release_node(root, "m1", eval, log("node"),
                                 {"-mode", "embedded", "-config", root + "/releases/0.1.0/sys", "-boot",
                                  root + "/releases/0.1.0/start", "-boot_var", "RELEASE_LIB", root + "/lib"});
  EXPECT_EQ(node->read_until("hello=", 90s).value_or("the node did not boot"), "hello=world");
  EXPECT_EQ(node->read_until("sum=", 20s).value_or("no sum"), "sum=55");
  EXPECT_EQ(node->read_until("map=", 20s).value_or("no map"), "map=[1,4,9,16,25,36,49,64,81,100]");
  EXPECT_EQ(node->read_until("chars=", 20s).value_or("no chars"), "chars=42");
  EXPECT_EQ(node->read_until("consolidated=", 20s).value_or("no consolidated"), "consolidated=true");
  EXPECT_EQ(node->read_until("which=", 20s).value_or("no which"),
            "which=" + root + "/lib/../releases/0.1.0/consolidated/Elixir.Enumerable.beam");
  EXPECT_EQ(node->read_until("md5=", 20s).value_or("no md5"), "md5=" + consolidated_md5);
  std::string list = node->read_until("loaded=", 20s).value_or("loaded=").substr(7);
  LoadedCheck loaded = check_loaded(db, root, "foo", list);
  EXPECT_TRUE(loaded.problems.empty()) << ::testing::PrintToString(loaded.problems);
  // Embedded mode loads every module of the boot script: elixir's hundreds among them.
  EXPECT_GE(loaded.by_dir["elixir-" + elixir_vsn], 100u) << list;
  EXPECT_EQ(loaded.by_dir.count("foo-0.1.0"), 1u) << list;
  EXPECT_GE(loaded.by_dir["releases/0.1.0/consolidated"], 5u) << list;
  if (!node->wait(20s)) {
    node->kill_group();  // a node whose server is gone ignores SIGTERM
    ADD_FAILURE() << "the node did not halt";
  }
  EXPECT_EQ(serve.stop(), 0);
  EXPECT_NE(serve.log().find("get " + root + "/lib/../releases/0.1.0/consolidated/Elixir.Enumerable.beam"),
            std::string::npos);
}

}  // namespace
}  // namespace codestore::server

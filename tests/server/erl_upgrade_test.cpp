// OTP's upgrade path against the store (issue 14, item 4): a node runs release X (rebar3, prod
// profile) from the store, its local root holding only what `codestore materialize` wrote
// (no beam: erts's preloaded modules are in the emulator), and installs X' through
// release_handler: `unpack_release` of the tarball `codestore release export` makes of X'
// (imported into the store first, with the relup systools:make_relup made), `install_release`,
// `make_permanent`; then `install_release` of X. After each step the node's code is the store's
// for the version its paths name: `code:which`, the application version, `which_releases`,
// what the server answers, and every loaded module's MD5.
//
// What happens (found here): unpack_release extracts X''s beams into the local root's lib/,
// but release_handler loads them with erl_prim_loader:get_file, so over the boot-server
// protocol: the node gets lib/myrel-0.2.0/ebin/... from the store (a local copy made
// unreadable changes nothing), and going back gets lib/myrel-0.1.0/... from the store, X's.
//
// Skipped when erl or rebar3 is not installed. UDP port 4368: RESOURCE_LOCK boot_server_port.
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "erl_node.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/real_releases.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_text;
using codestore::testing::Rebar3Release;
using codestore::testing::run_checked;
using codestore::testing::TempDir;
using codestore::testing::write_file;
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

class ErlUpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty() || find_program("rebar3").empty())
      GTEST_SKIP() << "erl or rebar3 is not installed (apt-get install erlang-nox rebar3)";
    testing::node_environment();
  }
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 8000);
  }
  std::string log(const std::string& name) const { return dir_.path().string() + "/" + name + ".log"; }

  TempDir dir_;
};

// Every regular file under `dir` whose name ends in ".beam".
std::vector<std::string> beams_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".beam") out.push_back(e.path().string());
  }
  return out;
}

TEST_F(ErlUpgradeTest, ReleaseHandlerInstallsXPrimeFromTheStoreAndXAgain) {
  // X and X' built offline by rebar3 at once (prod profile: stripped beams, OTP's
  // applications copied in); X''s myrel_server answers "0.2.0".
  fs::create_directories(dir_.path() / "x");
  fs::create_directories(dir_.path() / "x2");
  auto build = [](fs::path dir, std::string vsn) {
    return codestore::testing::build_rebar3_release(
        dir, {.vsn = vsn, .version_reply = "", .priv = {}, .dev = false, .prod_tar = true});
  };
  auto fx = std::async(std::launch::async, build, dir_.path() / "x", "0.1.0");
  auto fx2 = std::async(std::launch::async, build, dir_.path() / "x2", "0.2.0");
  Rebar3Release x, x2;
  try {
    x = fx.get();
    x2 = fx2.get();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  // X''s upgrade plan, as its developer writes it: the appup, and the relup systools makes of
  // it (both directions: {"0.1.0", ...} up and down).
  const fs::path x_rel = x.prod_dir / "releases" / "0.1.0" / "myrel";
  const fs::path x2_rel = x2.prod_dir / "releases" / "0.2.0" / "myrel";
  write_file(x2.prod_dir / "lib" / "myrel-0.2.0" / "ebin" / "myrel.appup",
             "{\"0.2.0\",\n [{\"0.1.0\", [{load_module, myrel_server}]}],\n"
             " [{\"0.1.0\", [{load_module, myrel_server}]}]}.\n");
  try {
    run_checked("erl -noshell -eval '{ok, _, _, []} = systools:make_relup(\"" + x2_rel.string() + "\", [\"" +
                    x_rel.string() + "\"], [\"" + x_rel.string() + "\"], [{path, [\"" + x2.prod_dir.string() +
                    "/lib/*/ebin\", \"" + x.prod_dir.string() + "/lib/*/ebin\"]}, {outdir, \"" +
                    x2_rel.parent_path().string() + "\"}, silent, warnings_as_errors]), halt().'",
                dir_.path(), dir_.path() / "home");
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  ASSERT_TRUE(fs::is_regular_file(x2_rel.parent_path() / "relup"));

  // X imported and deployed to prod; X' imported only (release_handler installs it, not a deploy).
  const std::string db = dir_.path().string() + "/store.db";
  ASSERT_EQ(run_cli(db, {"init"}, log("init")), 0);
  ASSERT_EQ(run_cli(db, {"--channel", "prod", "import", x.prod_dir.string()}, log("import-x")), 0);
  ASSERT_EQ(run_cli(db, {"import", x2.prod_dir.string()}, log("import-x2")), 0);

  // The node's local root: what materialize wrote, and no beam.
  const std::string root = dir_.path().string() + "/node-root";
  ASSERT_EQ(run_cli(db, {"--channel", "prod", "materialize", root}, log("materialize")), 0);
  EXPECT_TRUE(beams_under(root).empty()) << ::testing::PrintToString(beams_under(root));
  ASSERT_TRUE(fs::is_regular_file(root + "/releases/RELEASES"));
  ASSERT_TRUE(fs::is_regular_file(root + "/releases/0.1.0/start.boot"));
  // X''s tarball where release_handler:unpack_release("0.2.0/myrel") looks for it, made from
  // the store (relx's layout; the relup inside).
  fs::create_directories(root + "/releases/0.2.0");
  ASSERT_EQ(run_cli(db, {"release", "export", "myrel@0.2.0", "-o", root + "/releases/0.2.0/myrel.tar.gz"},
                    log("export")),
            0);

  ServeProcess serve(db, {"--port", "0", "--client-root", root, "--channel", "prod=" + root}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();

  std::map<std::string, std::string> want;  // vsn -> the store's myrel_server MD5
  {
    auto store = Store::open(db);
    ASSERT_TRUE(store) << store.error().to_string();
    for (const std::string vsn : {"0.1.0", "0.2.0"}) {
      auto info = (*store)->app_show("myrel", vsn);
      ASSERT_TRUE(info) << info.error().to_string();
      for (const ContentModule& m : info->modules) {
        if (m.module == "myrel_server") want[vsn] = m.md5;
      }
    }
  }
  ASSERT_EQ(want.size(), 2u);
  ASSERT_NE(want["0.1.0"], want["0.2.0"]);

  // After each step: what runs, and "step=" to wait for the test's "go" before the next.
  const std::string report =
      "io:format(\"which=~s~n\", [code:which(myrel_server)]), " + md5_line("myrel_server") +
      "io:format(\"vsn=~p~n\", [application:get_key(myrel, vsn)]), "
      "io:format(\"reply=~s~n\", [myrel_server:version()]), "
      "io:format(\"releases=~s~n\", [lists:join(\",\", [V ++ \" \" ++ atom_to_list(S) || {_, V, _, S} <- "
      "release_handler:which_releases()])]), " +
      loaded_line(root);
  const std::string step = "io:format(\"step=~p~n\", [";
  const std::string wait = "]), io:get_line(\"\"), ";
  auto node = start_release_node(
      root, "u1",
      report + step + "x" + wait + step + "release_handler:unpack_release(\"0.2.0/myrel\")" + wait + report +
          step + "release_handler:install_release(\"0.2.0\")" + wait + report + step +
          "release_handler:make_permanent(\"0.2.0\")" + wait + report + step +
          "release_handler:install_release(\"0.1.0\")" + wait + report + "halt().",
      log("node"), {"-config", root + "/releases/0.1.0/sys"});

  // What the node reports after a step: myrel_server's path, MD5 and answer, the application
  // version, the releases, and every loaded module checked against the store.
  auto expect_running = [&](testing::Subprocess* n, const std::string& vsn, const std::string& releases) {
    SCOPED_TRACE("running " + vsn);
    EXPECT_EQ(n->read_until("which=", 60s).value_or("no which"),
              "which=" + root + "/lib/myrel-" + vsn + "/ebin/myrel_server.beam");
    EXPECT_EQ(n->read_until("md5=", 20s).value_or("no md5"), "md5=" + want[vsn]);
    EXPECT_EQ(n->read_until("vsn=", 20s).value_or("no vsn"), "vsn={ok,\"" + vsn + "\"}");
    EXPECT_EQ(n->read_until("reply=", 20s).value_or("no reply"), "reply=" + vsn);
    EXPECT_EQ(n->read_until("releases=", 20s).value_or("no releases"), "releases=" + releases);
    std::string list = n->read_until("loaded=", 20s).value_or("loaded=").substr(7);
    const LoadedCheck loaded = check_loaded(db, root, "myrel", list);
    EXPECT_TRUE(loaded.problems.empty()) << ::testing::PrintToString(loaded.problems);
    EXPECT_GE(loaded.checked, 50u) << list;
    EXPECT_EQ(loaded.by_dir.count("myrel-" + vsn), 1u) << list;
  };

  expect_running(node.get(), "0.1.0", "0.1.0 permanent");
  EXPECT_EQ(node->read_until("step=", 20s).value_or("no step"), "step=x");
  ASSERT_TRUE(node->write("go\n"));
  EXPECT_EQ(node->read_until("step=", 60s).value_or("no step"), "step={ok,\"0.2.0\"}");
  // unpack_release extracted X''s beams into the local root; the node never reads them: made
  // unreadable as beams here, they change nothing below.
  const std::string local_x2 = root + "/lib/myrel-0.2.0/ebin/myrel_server.beam";
  EXPECT_TRUE(fs::is_regular_file(local_x2));
  write_file(local_x2, "not a beam: the node loads over the boot-server protocol\n");
  ASSERT_TRUE(node->write("go\n"));
  expect_running(node.get(), "0.1.0", "0.2.0 unpacked,0.1.0 permanent");
  EXPECT_EQ(node->read_until("step=", 60s).value_or("no step"), "step={ok,\"0.1.0\",[]}");
  ASSERT_TRUE(node->write("go\n"));
  expect_running(node.get(), "0.2.0", "0.2.0 current,0.1.0 permanent");
  EXPECT_EQ(node->read_until("step=", 20s).value_or("no step"), "step=ok");
  ASSERT_TRUE(node->write("go\n"));
  expect_running(node.get(), "0.2.0", "0.2.0 permanent,0.1.0 old");
  // release_handler wrote its own RELEASES and start_erl.data on the local disk.
  EXPECT_NE(read_text(root + "/releases/start_erl.data").find(" 0.2.0"), std::string::npos);
  // A downgrade answers the version it went to (the relup's down entry), an upgrade the one
  // it came from: both "0.1.0".
  EXPECT_EQ(node->read_until("step=", 60s).value_or("no step"), "step={ok,\"0.1.0\",[]}");
  ASSERT_TRUE(node->write("go\n"));
  expect_running(node.get(), "0.1.0", "0.2.0 permanent,0.1.0 current");
  if (!node->wait(20s)) {
    node->kill_group();  // a node whose server is gone ignores SIGTERM
    ADD_FAILURE() << "the node did not halt";
  }
  // Restarted as a release's own script restarts it (the boot script and sys.config of the
  // version start_erl.data names: the permanent one), the node runs X' from the store.
  const std::string start_erl = read_text(root + "/releases/start_erl.data");
  const std::string permanent =
      start_erl.substr(start_erl.find(' ') + 1, start_erl.find_last_not_of("\n") - start_erl.find(' '));
  EXPECT_EQ(permanent, "0.2.0") << start_erl;
  auto restarted = start_release_node(root, "u2", report + "halt().", log("node-restarted"),
                                      {"-boot", root + "/releases/" + permanent + "/start", "-config",
                                       root + "/releases/" + permanent + "/sys"});
  expect_running(restarted.get(), "0.2.0", "0.2.0 permanent,0.1.0 old");
  if (!restarted->wait(20s)) {
    restarted->kill_group();
    ADD_FAILURE() << "the restarted node did not halt";
  }
  EXPECT_EQ(serve.stop(), 0);
  // Both versions came from the store, each for the path that names it.
  const std::string text = serve.log();
  EXPECT_NE(
      text.find("get " + root + "/lib/myrel-0.2.0/ebin/myrel_server.beam: store myrel@0.2.0 myrel_server"),
      std::string::npos);
  EXPECT_NE(
      text.find("get " + root + "/lib/myrel-0.1.0/ebin/myrel_server.beam: store myrel@0.1.0 myrel_server"),
      std::string::npos);
  // The restarted node's boot script is X''s, from the store (the channel still runs X).
  EXPECT_NE(text.find("get " + root +
                      "/releases/0.2.0/start.boot: store release myrel@0.2.0 releases/0.2.0/start.boot"),
            std::string::npos);
}

}  // namespace
}  // namespace codestore::server

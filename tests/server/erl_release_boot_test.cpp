// A real node boots a real rebar3 release (prod profile) from the store through a client root
// (issue 14, items 2 and 3): two versions of the release are imported, X deployed to channel
// prod, `codestore serve --client-root P --channel prod=P`, and an unmodified erts started
// with ROOTDIR=P (its local root holds nothing: the boot script, the .app files and every
// beam come over the boot-server protocol) runs X: `code:which` names the versioned path and
// every checked module's MD5 is the store's for X. Once X' is deployed, the node still running
// X reloads X's code for its versioned paths, and a raw client asking for X's path gets X's
// bytes. Skipped when erl or rebar3 is not installed.
//
// UDP port 4368 is fixed in the client: RESOURCE_LOCK boot_server_port.
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "erl_node.h"
#include "server_test_util.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/real_releases.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using testing::dump_logs;
using testing::find_program;
using testing::md5_line;
using testing::RawClient;
using testing::run_cli;
using testing::ServeProcess;
using testing::start_release_node;
using testing::Subprocess;
using testing::TempDir;
using namespace std::chrono_literals;

class ErlReleaseBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty() || find_program("rebar3").empty())
      GTEST_SKIP() << "erl or rebar3 is not installed (apt-get install erlang-nox rebar3)";
  }
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 8000);
  }
  std::string log(const std::string& name) const { return dir_.path().string() + "/" + name + ".log"; }

  TempDir dir_;
};

// The store's module `module` of application version (app, vsn): its MD5 and the bytes of the
// byte form that version holds.
struct StoredModule {
  std::string md5;
  std::string bytes;
};
Result<StoredModule> stored_module(const std::string& db, const std::string& app, const std::string& vsn,
                                   const std::string& module) {
  auto store = Store::open(db);
  if (!store) return tl::unexpected(store.error());
  auto info = (*store)->app_show(app, vsn);
  if (!info) return tl::unexpected(info.error());
  for (const ContentModule& m : info->modules) {
    if (m.module != module) continue;
    auto bytes = (*store)->blob(m.sha256);
    if (!bytes) return tl::unexpected(bytes.error());
    return StoredModule{m.md5, std::string((*bytes)->begin(), (*bytes)->end())};
  }
  return tl::unexpected(Status(Code::kNotFound, module + " not in " + app + "@" + vsn));
}

TEST_F(ErlReleaseBootTest, ANodeRunsTheChannelsReleaseAndItsVersionedPathsNeverLie) {
  // X and X' of one rebar3 release, built offline by rebar3 (prod profile: stripped beams).
  fs::create_directories(dir_.path() / "x");
  fs::create_directories(dir_.path() / "x2");
  codestore::testing::Rebar3Release x, x2;
  try {
    x = codestore::testing::build_rebar3_release(
        dir_.path() / "x", {.vsn = "0.1.0", .version_reply = "", .priv = {}, .dev = false});
    x2 = codestore::testing::build_rebar3_release(
        dir_.path() / "x2", {.vsn = "0.2.0", .version_reply = "", .priv = {}, .dev = false});
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const std::string db = dir_.path().string() + "/store.db";
  ASSERT_EQ(run_cli(db, {"init"}, log("init")), 0);
  // X imported and deployed to prod; X' imported only.
  ASSERT_EQ(run_cli(db, {"--channel", "prod", "import", x.prod_dir.string()}, log("import-x")), 0);
  ASSERT_EQ(run_cli(db, {"import", x2.prod_dir.string()}, log("import-x2")), 0);

  // The node's root: an empty local directory (nothing on its disk but erts).
  const std::string root = dir_.path().string() + "/node-root";
  fs::create_directories(root);
  ServeProcess serve(db, {"--port", "0", "--client-root", root, "--channel", "prod=" + root}, log("serve"));
  std::uint16_t port = serve.wait_ready();
  ASSERT_NE(port, 0) << serve.log();

  const std::string server = "myrel_server";
  auto want_x = stored_module(db, "myrel", "0.1.0", server);
  ASSERT_TRUE(want_x) << want_x.error().to_string();
  auto want_x2 = stored_module(db, "myrel", "0.2.0", server);
  ASSERT_TRUE(want_x2) << want_x2.error().to_string();
  ASSERT_NE(want_x->md5, want_x2->md5);

  // The default boot script, $ROOTDIR/bin/start, is the channel's release's; so is sys.config.
  const std::string report =
      "io:format(\"which=~s~n\", [code:which(" + server + ")]), " + md5_line(server) +
      "io:format(\"vsn=~p~n\", [application:get_key(myrel, vsn)]), "
      "io:format(\"running=~p~n\", [[A || {A, _, _} <- application:which_applications(), A =:= myrel]]), "
      "io:format(\"kernel=~s~n\", [code:which(kernel)]), ";
  auto node =
      start_release_node(root, "n1",
                         report + testing::loaded_line(root) + "io:get_line(\"\"), code:purge(" + server +
                             "), {module, _} = code:load_file(" + server + "), " + report + "halt().",
                         log("node"), {"-config", root + "/releases/0.1.0/sys"});
  EXPECT_EQ(node->read_until("which=", 90s).value_or("the node did not boot"),
            "which=" + root + "/lib/myrel-0.1.0/ebin/" + server + ".beam");
  EXPECT_EQ(node->read_until("md5=", 20s).value_or("no md5"), "md5=" + want_x->md5);
  EXPECT_EQ(node->read_until("vsn=", 20s).value_or("no vsn"), "vsn={ok,\"0.1.0\"}");
  EXPECT_EQ(node->read_until("running=", 20s).value_or("no apps"), "running=[myrel]");
  std::string kernel = node->read_until("kernel=", 20s).value_or("no kernel");
  EXPECT_EQ(kernel.rfind("kernel=" + root + "/lib/kernel-", 0), 0u) << kernel;

  // Every loaded module's MD5 is the store's for the application version its path names.
  std::string list = node->read_until("loaded=", 20s).value_or("loaded=").substr(7);
  const testing::LoadedCheck loaded = testing::check_loaded(db, root, "myrel", list);
  EXPECT_TRUE(loaded.problems.empty()) << ::testing::PrintToString(loaded.problems);
  // kernel's, stdlib's and myrel's modules that a boot loads: many, all checked.
  EXPECT_GE(loaded.checked, 50u) << list;
  EXPECT_EQ(loaded.by_dir.count("myrel-0.1.0"), 1u) << list;

  // X' deployed: the node still running X gets X's code for its versioned paths.
  ASSERT_EQ(run_cli(db, {"--channel", "prod", "deploy", "myrel@0.2.0"}, log("deploy-x2")), 0);
  ASSERT_TRUE(node->write("go\n"));
  EXPECT_EQ(node->read_until("which=", 30s).value_or("no which"),
            "which=" + root + "/lib/myrel-0.1.0/ebin/" + server + ".beam");
  EXPECT_EQ(node->read_until("md5=", 20s).value_or("no md5"), "md5=" + want_x->md5);
  EXPECT_EQ(node->read_until("vsn=", 20s).value_or("no vsn"), "vsn={ok,\"0.1.0\"}");
  if (!node->wait(20s)) {
    // A node whose server is gone ignores SIGTERM: SIGKILL its group.
    node->kill_group();
    ADD_FAILURE() << "the node did not halt";
  }

  // A raw client: X's path is X's bytes, X''s path X''s, and the unversioned path follows prod.
  RawClient c(port);
  auto get = [&](const std::string& path) -> std::string {
    if (!c.send_term(testing::req("get", path))) return "<not sent>";
    auto frame = c.recv_frame();
    if (!frame) return "<no answer>";
    auto t = etf::decode(*frame);
    // {get, {ok, Bin}}: the bytes are the binary's.
    const etf::Tuple* answer = t ? t->as_tuple() : nullptr;
    const etf::Tuple* ok = answer && answer->elements.size() == 2 ? answer->elements[1].as_tuple() : nullptr;
    if (ok && ok->elements.size() == 2 && ok->elements[0].is_atom("ok")) {
      if (const etf::Binary* b = ok->elements[1].as_binary())
        return std::string(b->bytes.begin(), b->bytes.end());
    }
    return t ? etf::format_w(*t) : "<undecodable>";
  };
  EXPECT_TRUE(get(root + "/lib/myrel-0.1.0/ebin/" + server + ".beam") == want_x->bytes);
  EXPECT_TRUE(get(root + "/lib/myrel-0.2.0/ebin/" + server + ".beam") == want_x2->bytes);
  EXPECT_TRUE(get(root + "/lib/myrel/ebin/" + server + ".beam") == want_x2->bytes);
  EXPECT_EQ(get(root + "/lib/myrel-0.3.0/ebin/" + server + ".beam"), "{get,{error,enoent}}");
  EXPECT_EQ(get(root + "/lib/../../" + server + ".beam"), "{get,{error,enoent}}");
  EXPECT_EQ(serve.stop(), 0);
  std::string text = serve.log();
  EXPECT_NE(text.find("store myrel@0.1.0 " + server), std::string::npos);
  EXPECT_NE(text.find("bin/start.boot: store release myrel@0.1.0"), std::string::npos);
  EXPECT_NE(text.find("[channel prod]"), std::string::npos);
}

}  // namespace
}  // namespace codestore::server

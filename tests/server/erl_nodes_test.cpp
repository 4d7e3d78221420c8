// A real, unmodified node (`erl -loader inet`) booted by `codestore serve` is recorded as one
// node (issue 14 item 5): its erts version is the node's own erlang:system_info(version), and
// the module versions recorded for it are exactly the modules it has loaded, each with the MD5
// the node itself reports. Skipped when erl is not installed; UDP port 4368 like the other erl
// tests (RESOURCE_LOCK boot_server_port).
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "erl_node.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

using codestore::testing::TempDir;
using testing::find_program;
using testing::ServeProcess;
using testing::start_node;
using namespace std::chrono_literals;

TEST(ErlNodesTest, ABootedNodeIsOneNodeWithTheModulesItLoaded) {
  if (find_program("erl").empty()) GTEST_SKIP() << "erl is not installed: no node to boot";
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  auto log = [&](const std::string& name) { return dir.path().string() + "/" + name + ".log"; };
  ASSERT_TRUE(store_ops::import_otp_libs(db, "/usr/lib/erlang", {"kernel", "stdlib"}));
  ServeProcess serve(db, {"--port", "0", "--quiet"}, log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();
  // The node prints its erts version and every module it loaded (not preloaded) with its MD5.
  // The listing is made twice and the second printed: making it loads modules (eval_bits for
  // the binary comprehension), and the second finds them loaded.
  auto node = start_node(
      "n1",
      "io:format(\"erts=~s~n\", [erlang:system_info(version)]), "
      "F = fun() -> lists:join(\",\", [[atom_to_list(M), $:, [io_lib:format(\"~2.16.0b\", [B]) "
      "|| <<B>> <= M:module_info(md5)]] || {M, P} <- lists:sort(code:all_loaded()), is_list(P)]) end, "
      "_ = F(), io:format(\"mods=~s~n\", [F()]), halt().",
      log("node"));
  auto erts = node->read_until("erts=", 60s);
  ASSERT_TRUE(erts) << "the node did not boot";
  auto mods = node->read_until("mods=", 20s);
  ASSERT_TRUE(mods);
  ASSERT_TRUE(node->wait(20s));
  ASSERT_EQ(serve.stop(), 0) << serve.log();  // SIGTERM: the nodes are written before it exits

  std::map<std::string, std::string> loaded;  // module -> MD5, as the node reports them
  std::istringstream in(mods->substr(5));
  for (std::string item; std::getline(in, item, ',');) {
    const auto colon = item.find(':');
    ASSERT_NE(colon, std::string::npos) << item;
    loaded[item.substr(0, colon)] = item.substr(colon + 1);
  }
  ASSERT_GT(loaded.size(), 20u);

  auto store = Store::open(db);
  ASSERT_TRUE(store) << store.error().to_string();
  auto nodes = (*store)->nodes({.with_modules = true});
  ASSERT_TRUE(nodes) << nodes.error().to_string();
  ASSERT_EQ(nodes->size(), 1u) << serve.log();  // the node's loader used one connection
  const NodeInfo& n = (*nodes)[0];
  EXPECT_EQ(n.erts_vsn, erts->substr(5));
  EXPECT_EQ(n.channel, "default");
  EXPECT_EQ(n.client_root, "");
  EXPECT_EQ(n.address.rfind("127.0.0.1:", 0), 0u) << n.address;
  EXPECT_FALSE(n.behind);
  std::map<std::string, std::string> recorded;
  for (const NodeModule& m : n.modules) recorded[m.module] = m.md5;
  EXPECT_EQ(recorded, loaded);
  EXPECT_EQ(n.modules_fetched, loaded.size());
}

}  // namespace
}  // namespace codestore::server

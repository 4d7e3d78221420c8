// The code server over a real store (store_lib_source): lib:NAME path entries, sync() after
// an operator's import and rollback, and the loader's events in the store's history.
#include <codestore/store.h>

#include <sstream>

#include "cli.h"
#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

class StoreLibs : public LoaderFixture {
 protected:
  void SetUp() override {
    LoaderFixture::SetUp();
    auto s = Store::open((dir_ / "app.db").string());
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::shared_ptr<Store>(std::move(*s));
  }
  void import(const std::string& image, const std::string& lib) {
    auto r = store_->import(bytes(image), image, {.lib = lib});
    ASSERT_TRUE(r) << r.error().to_string();
  }
  std::unique_ptr<CodeServer> server(bool record = false) {
    Options options;
    options.libs = store_lib_source(store_);
    options.record_events = record;
    options.path = {"lib:app", dir("v3")};
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs) << (cs ? "" : cs.error().to_string());
    return cs ? std::move(*cs) : nullptr;
  }
  std::shared_ptr<Store> store_;
};

TEST_F(StoreLibs, ModulesOfTheLibComeFromTheStore) {
  import("v1/m.beam", "app");
  import("v2/n.beam", "other");
  auto cs = server();
  ASSERT_TRUE(cs->load_file("m"));
  EXPECT_EQ(cs->is_loaded("m"), "lib:app/m.beam");
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false}));
  auto n = cs->load_file("n");
  ASSERT_FALSE(n) << "n's active version belongs to lib other, and v3 has no n";
  EXPECT_EQ(n.error().reason(), reason::kNofile);
  EXPECT_EQ(cs->which("m"), "lib:app/m.beam");
}

TEST_F(StoreLibs, SyncFollowsImportAndRollback) {
  import("v1/m.beam", "app");
  auto cs = server(/*record=*/true);
  auto p = cs->spawn("p");
  ASSERT_TRUE(p->call("m", "loop", 0));
  import("v2/m.beam", "app");
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified);
  auto up = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(up.changed.size(), 1u);
  EXPECT_EQ(snap(*cs), (Snapshot{"[50]", true}));
  ASSERT_TRUE(store_->rollback("m"));  // the operator's `codestore rollback m`
  auto soft = cs->sync(SyncPolicy::kSoft);
  EXPECT_EQ(soft.left_in_use, std::vector<std::string>{"m"}) << "p still runs v1";
  auto brutal = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(brutal.changed.size(), 1u);
  EXPECT_EQ(brutal.changed[0].killed, std::vector<ProcessId>{p->id()});
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", true}));
  auto history = store_->history("m");
  ASSERT_TRUE(history);
  std::vector<std::string> actions;
  for (const auto& e : *history) actions.push_back(e.action);
  for (const char* a : {"load", "sync", "kill", "purge"}) {
    EXPECT_NE(std::find(actions.begin(), actions.end(), a), actions.end()) << a;
  }
}

TEST_F(StoreLibs, ShellTakesLibEntriesWithDb) {
  import("v2/m.beam", "app");
  store_.reset();
  auto cwd = fs::current_path();
  fs::current_path(dir_);
  std::istringstream in(
      "add_path last lib:app\nadd_path last lib:nope\nwhich m\nload m\nstate m\nsync brutal\n");
  std::ostringstream out, err;
  int rc = cli::run({"--db", "app.db", "shell"}, in, out, err);
  fs::current_path(cwd);
  EXPECT_EQ(rc, 0) << err.str();
  EXPECT_EQ(
      out.str(),
      R"({"op":"add_path","result":true})"
      "\n"
      R"({"op":"add_path","result":"bad_directory"})"
      "\n"
      R"({"op":"which","result":"lib:app/m.beam"})"
      "\n"
      R"({"op":"load","result":"ok"})"
      "\n"
      R"({"op":"state","result":{"current":{"file":"lib:app/m.beam","md5":"bd69b734a592a3fbe670210ff64870ff","vsn":"[50]"},"has_old":false}})"
      "\n"
      R"({"op":"sync","result":{"changed":[],"left_in_use":[],"failed":[]}})"
      "\n");
}

}  // namespace
}  // namespace codestore::loader::testing

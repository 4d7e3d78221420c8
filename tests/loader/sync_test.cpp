// Store libs on the code path and sync() (docs/code-server.md §6), over a real store in the
// test's scratch directory (store_lib_source): an operator's import or rollback moves a
// module's active version, and sync() follows it.
#include <codestore/image.h>
#include <codestore/store.h>

#include <algorithm>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

class Sync : public LoaderFixture {
 protected:
  void SetUp() override {
    LoaderFixture::SetUp();
    auto s = Store::open((dir_ / "sync.db").string());
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::shared_ptr<Store>(std::move(*s));
  }
  // The operator's `codestore import`: `image` becomes the active version of its module,
  // in `lib`.
  void import(const std::vector<std::uint8_t>& image, const std::string& lib = "app") {
    auto r = store_->import(image, "import", {.lib = lib});
    ASSERT_TRUE(r) << r.error().to_string();
  }
  std::unique_ptr<CodeServer> make_with_libs(std::vector<std::string> path, bool record = false) {
    Options options;
    options.path = std::move(path);
    options.libs = store_lib_source(store_);
    options.record_events = record;
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs.has_value()) << (cs ? "" : cs.error().to_string());
    return cs ? std::move(*cs) : nullptr;
  }
  // The code server's events in the store's history ("load m", "kill m", ...), oldest first.
  std::vector<std::string> loader_events() {
    std::vector<std::string> out;
    auto history = store_->history();
    EXPECT_TRUE(history) << history.error().to_string();
    if (!history) return out;
    for (const auto& e : *history) {
      for (const char* kind : {"load", "sync", "kill", "purge", "delete"}) {
        if (e.action == kind) out.push_back(e.action + " " + e.module);
      }
    }
    return out;
  }
  std::shared_ptr<Store> store_;
};

TEST_F(Sync, LibEntriesHaveTheModulesWhoseActiveVersionBelongsToThem) {
  import(bytes("v2/m.beam"));
  auto cs = make_with_libs({"lib:app/", dir("v1")});
  EXPECT_EQ(cs->get_path(), (std::vector<std::string>{"lib:app", dir("v1")}));
  EXPECT_EQ(cs->which("m"), "lib:app/m.beam");
  EXPECT_EQ(cs->which("n"), dir("v1") + "/n.beam");
  ASSERT_TRUE(cs->load_file("m"));
  EXPECT_EQ(cs->is_loaded("m"), "lib:app/m.beam");
  EXPECT_EQ(snap(*cs), (Snapshot{"[50]", false}));
  EXPECT_EQ(cs->lib_dir("app"), "lib:app");
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kLoaded);
  import(bytes("v3/m.beam"));  // an operator imports v3
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified);
  EXPECT_EQ(cs->add_pathz("lib:nope").code(), Code::kInvalidArgument) << "bad_directory";
  EXPECT_TRUE(cs->del_path("app"));
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified) << "v1/m.beam differs from what is loaded";
}

TEST_F(Sync, BrutalSyncFollowsTheStoreAndKillsWhoLingers) {
  import(bytes("v1/m.beam"));
  auto cs = make_with_libs({"lib:app"}, /*record=*/true);
  auto p = cs->spawn("p", [this](ProcessId id) { killed_.push_back(id); });
  ASSERT_TRUE(p->call("m", "loop", 0));  // autoloads v1 from the lib
  import(bytes("v2/m.beam"));
  auto first = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(first.changed.size(), 1u);
  EXPECT_EQ(first.changed[0].from_vsn, "[49]");
  EXPECT_EQ(first.changed[0].to_vsn, "[50]");
  EXPECT_TRUE(first.changed[0].killed.empty());
  EXPECT_TRUE(cs->check_process_code(*p, "m")) << "p lingers in v1";
  // The operator rolls back to v1: the third version arrives, v1 (old) is purged.
  ASSERT_TRUE(store_->rollback("m"));
  auto rollback = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(rollback.changed.size(), 1u);
  EXPECT_EQ(rollback.changed[0].killed, std::vector<ProcessId>{p->id()});
  EXPECT_EQ(killed_, std::vector<ProcessId>{p->id()});
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", true}));
  EXPECT_TRUE(cs->sync(SyncPolicy::kBrutal).changed.empty()) << "already at the active version";
  std::vector<std::string> expected = {"load m", "load m", "sync m", "kill m", "purge m", "load m", "sync m"};
  EXPECT_EQ(loader_events(), expected);
}

TEST_F(Sync, SoftSyncLeavesModulesInUse) {
  import(bytes("v1/m.beam"));
  import(bytes("v1/n.beam"));
  auto cs = make_with_libs({"lib:app", dir("v3")});
  auto p = cs->spawn("p");
  ASSERT_TRUE(p->call("m", "loop", 0));
  ASSERT_TRUE(cs->load_file("n"));
  ASSERT_TRUE(cs->load_binary("m", "lib:app/m.beam", bytes("v2/m.beam")));  // p lingers in v1
  import(bytes("v3/m.beam"));
  import(bytes("v2/n.beam"));
  auto r = cs->sync(SyncPolicy::kSoft);
  EXPECT_EQ(r.left_in_use, std::vector<std::string>{"m"});
  ASSERT_EQ(r.changed.size(), 1u);
  EXPECT_EQ(r.changed[0].module, "n");
  EXPECT_TRUE(p->alive());
  EXPECT_EQ(snap(*cs), (Snapshot{"[50]", true}));
  ASSERT_TRUE(p->tail_call("m", "switched", 1));  // p moves on; now m can follow
  auto again = cs->sync(SyncPolicy::kSoft);
  ASSERT_EQ(again.changed.size(), 1u);
  EXPECT_EQ(snap(*cs), (Snapshot{"[51]", true}));
}

TEST_F(Sync, ModulesFromDirectoriesAreLeftAlone) {
  auto cs = make_with_libs({dir("v1")});
  ASSERT_TRUE(cs->load_file("m"));
  ASSERT_TRUE(cs->set_path({dir("v2")}).is_ok());
  EXPECT_TRUE(cs->sync(SyncPolicy::kBrutal).changed.empty());
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false}));
}

// The store takes an image that fails only the opcode check (compiled for a later OTP,
// with a warning); the loader refuses it.
std::vector<std::uint8_t> for_a_later_runtime(std::vector<std::uint8_t> image) {
  auto img = image::Image::parse(image, image::Strictness::kStrict);
  EXPECT_TRUE(img) << img.error().to_string();
  if (!img) return image;
  const image::Chunk* code = img->find("Code");
  EXPECT_NE(code, nullptr);
  if (code == nullptr) return image;
  image[code->offset + 11] = 250;  // the header's highest opcode: u32 at offset 8 of the data
  return image;
}

TEST_F(Sync, BadActiveImageIsReportedAndChangesNothing) {
  import(bytes("v1/m.beam"));
  auto cs = make_with_libs({"lib:app"});
  ASSERT_TRUE(cs->load_file("m"));
  const auto later = for_a_later_runtime(bytes("v2/m.beam"));
  auto verdict = image::Image::parse(later, image::Strictness::kStrict)->check_loadable();
  ASSERT_FALSE(verdict.loadable);
  ASSERT_TRUE(verdict.opcode_only) << verdict.reason;
  import(later);
  auto r = cs->sync(SyncPolicy::kBrutal);
  EXPECT_EQ(reasons(r.failed), (Reasons{{"m", "badfile"}}));
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false}));
}

}  // namespace
}  // namespace codestore::loader::testing

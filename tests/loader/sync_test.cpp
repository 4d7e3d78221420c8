// Store libs on the code path and sync() (docs/code-server.md §6), against a LibSource
// fake: the store's active version per module and lib is whatever the test sets.
#include <map>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

class FakeLibs : public LibSource {
 public:
  struct Event {
    std::string kind, module, detail;
  };
  std::map<std::string, std::map<std::string, std::vector<std::uint8_t>>> active;  // lib -> module -> image
  std::vector<Event> events;

  bool has_lib(const std::string& lib) override { return active.count(lib) != 0; }
  std::optional<std::vector<std::uint8_t>> active_image(const std::string& lib,
                                                        const std::string& module) override {
    auto l = active.find(lib);
    if (l == active.end()) return std::nullopt;
    auto m = l->second.find(module);
    if (m == l->second.end()) return std::nullopt;
    return m->second;
  }
  std::vector<std::string> modules(const std::string& lib) override {
    std::vector<std::string> out;
    for (const auto& [m, image] : active[lib]) out.push_back(m);
    return out;
  }
  void record_event(const std::string& kind, const std::string& module, const std::string& detail) override {
    events.push_back({kind, module, detail});
  }
  std::vector<std::string> kinds() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.kind + " " + e.module);
    return out;
  }
};

class Sync : public LoaderFixture {
 protected:
  std::unique_ptr<CodeServer> make_with_libs(std::vector<std::string> path, bool record = false) {
    Options options;
    options.path = std::move(path);
    options.libs = libs_;
    options.record_events = record;
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs.has_value()) << (cs ? "" : cs.error().to_string());
    return cs ? std::move(*cs) : nullptr;
  }
  std::shared_ptr<FakeLibs> libs_ = std::make_shared<FakeLibs>();
};

TEST_F(Sync, LibEntriesHaveTheModulesWhoseActiveVersionBelongsToThem) {
  libs_->active["app"]["m"] = bytes("v2/m.beam");
  auto cs = make_with_libs({"lib:app/", dir("v1")});
  EXPECT_EQ(cs->get_path(), (std::vector<std::string>{"lib:app", dir("v1")}));
  EXPECT_EQ(cs->which("m"), "lib:app/m.beam");
  EXPECT_EQ(cs->which("n"), dir("v1") + "/n.beam");
  ASSERT_TRUE(cs->load_file("m"));
  EXPECT_EQ(cs->is_loaded("m"), "lib:app/m.beam");
  EXPECT_EQ(snap(*cs), (Snapshot{"[50]", false}));
  EXPECT_EQ(cs->lib_dir("app"), "lib:app");
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kLoaded);
  libs_->active["app"]["m"] = bytes("v3/m.beam");  // an operator imports v3
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified);
  EXPECT_EQ(cs->add_pathz("lib:nope").code(), Code::kInvalidArgument) << "bad_directory";
  EXPECT_TRUE(cs->del_path("app"));
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified) << "v1/m.beam differs from what is loaded";
}

TEST_F(Sync, BrutalSyncFollowsTheStoreAndKillsWhoLingers) {
  libs_->active["app"]["m"] = bytes("v1/m.beam");
  auto cs = make_with_libs({"lib:app"}, /*record=*/true);
  auto p = cs->spawn("p", [this](ProcessId id) { killed_.push_back(id); });
  ASSERT_TRUE(p->call("m", "loop", 0));  // autoloads v1 from the lib
  libs_->active["app"]["m"] = bytes("v2/m.beam");
  auto first = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(first.changed.size(), 1u);
  EXPECT_EQ(first.changed[0].from_vsn, "[49]");
  EXPECT_EQ(first.changed[0].to_vsn, "[50]");
  EXPECT_TRUE(first.changed[0].killed.empty());
  EXPECT_TRUE(cs->check_process_code(*p, "m")) << "p lingers in v1";
  // The operator rolls back to v1: the third version arrives, v1 (old) is purged.
  libs_->active["app"]["m"] = bytes("v1/m.beam");
  auto rollback = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(rollback.changed.size(), 1u);
  EXPECT_EQ(rollback.changed[0].killed, std::vector<ProcessId>{p->id()});
  EXPECT_EQ(killed_, std::vector<ProcessId>{p->id()});
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", true}));
  EXPECT_TRUE(cs->sync(SyncPolicy::kBrutal).changed.empty()) << "already at the active version";
  std::vector<std::string> expected = {"load m", "load m", "sync m", "kill m", "purge m", "load m", "sync m"};
  EXPECT_EQ(libs_->kinds(), expected);
}

TEST_F(Sync, SoftSyncLeavesModulesInUse) {
  libs_->active["app"]["m"] = bytes("v1/m.beam");
  libs_->active["app"]["n"] = bytes("v1/n.beam");
  auto cs = make_with_libs({"lib:app", dir("v3")});
  auto p = cs->spawn("p");
  ASSERT_TRUE(p->call("m", "loop", 0));
  ASSERT_TRUE(cs->load_file("n"));
  ASSERT_TRUE(cs->load_binary("m", "lib:app/m.beam", bytes("v2/m.beam")));  // p lingers in v1
  libs_->active["app"]["m"] = bytes("v3/m.beam");
  libs_->active["app"]["n"] = bytes("v2/n.beam");
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

TEST_F(Sync, BadActiveImageIsReportedAndChangesNothing) {
  libs_->active["app"]["m"] = bytes("v1/m.beam");
  auto cs = make_with_libs({"lib:app"});
  ASSERT_TRUE(cs->load_file("m"));
  libs_->active["app"]["m"] = bytes("junk/m.beam");
  auto r = cs->sync(SyncPolicy::kBrutal);
  EXPECT_EQ(r.failed, (std::vector<ModuleError>{{"m", LoadError::kBadfile}}));
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false}));
}

}  // namespace
}  // namespace codestore::loader::testing

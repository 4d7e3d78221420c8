// The version state machine of docs/store.md, transition by transition. Each module's state
// is (active A, rollback target P, stored versions, high-water mark H); every test checks
// the whole state after the transition, so that a step taken twice (fungos/cr's rollback
// bug) or a number reused cannot pass.
#include <gtest/gtest.h>

#include "backend.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

struct State {
  std::int64_t active = 0;
  std::vector<std::int64_t> versions;
  bool operator==(const State&) const = default;
};

State state_of(Store& store, const std::string& module) {
  State s;
  auto v = store.versions(module);
  if (!v) return s;
  for (const auto& x : *v) {
    s.versions.push_back(x.version);
    if (x.active) s.active = x.version;
  }
  return s;
}

class StoreStateMachine : public BackendTest {
 protected:
  void SetUp() override { store_ = open_or_die(store_at(dir_)); }
  // Imports hello variant n; returns its version.
  std::int64_t imp(int n) { return import_bytes(*store_, variant("hello.beam", n)); }
  State st() { return state_of(*store_, "hello"); }
  std::string last_action() { return store_->history("", 1)->back().action; }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};
CODESTORE_BOTH_BACKENDS(StoreStateMachine);

TEST_P(StoreStateMachine, ImportMakesTheNewVersionActiveAndTheOldOneTheRollbackTarget) {
  EXPECT_EQ(imp(0), 1);
  EXPECT_EQ(st(), (State{1, {1}}));
  EXPECT_EQ(imp(1), 2);
  EXPECT_EQ(st(), (State{2, {1, 2}}));
  auto rb = store_->rollback("hello");
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->from_version, 2);
  EXPECT_EQ(rb->to_version, 1);
}

TEST_P(StoreStateMachine, RollbackWithoutPreviousIsRefused) {
  imp(0);
  auto rb = store_->rollback("hello");
  ASSERT_FALSE(rb);
  EXPECT_EQ(rb.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(st(), (State{1, {1}}));
}

TEST_P(StoreStateMachine, RollbackTogglesLikeCdDashAndNeverStepsTwice) {
  imp(0);
  imp(1);
  imp(2);
  EXPECT_EQ(st(), (State{3, {1, 2, 3}}));
  ASSERT_EQ(store_->rollback("hello")->to_version, 2);
  EXPECT_EQ(st(), (State{2, {1, 2, 3}}));
  EXPECT_EQ(last_action(), "rollback");
  // The second rollback returns to 3 (the version active before 2), not to 1.
  ASSERT_EQ(store_->rollback("hello")->to_version, 3);
  EXPECT_EQ(st(), (State{3, {1, 2, 3}}));
  ASSERT_EQ(store_->rollback("hello")->to_version, 2);
  EXPECT_EQ(st().active, 2);
}

TEST_P(StoreStateMachine, ActivateAnyVersionSetsTheRollbackTarget) {
  imp(0);
  imp(1);
  imp(2);
  auto a = store_->activate("hello", 1, Reason("test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->from_version, 3);
  EXPECT_EQ(st(), (State{1, {1, 2, 3}}));
  EXPECT_EQ(last_action(), "activate");
  EXPECT_EQ(store_->rollback("hello")->to_version, 3);
}

TEST_P(StoreStateMachine, ActivatingTheActiveVersionChangesNothing) {
  imp(0);
  imp(1);
  const auto events = store_->history()->size();
  const auto gen = *store_->generation();
  auto a = store_->activate("hello", 2);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->from_version, 2);
  EXPECT_EQ(a->to_version, 2);
  EXPECT_EQ(store_->history()->size(), events);
  EXPECT_EQ(*store_->generation(), gen);
  // The rollback target is still 1.
  EXPECT_EQ(store_->rollback("hello")->to_version, 1);
}

TEST_P(StoreStateMachine, RollbackToAVersionGoesAnywhere) {
  imp(0);
  imp(1);
  imp(2);
  imp(3);
  auto a = store_->rollback("hello", 1);
  ASSERT_TRUE(a);
  EXPECT_EQ(st(), (State{1, {1, 2, 3, 4}}));
  EXPECT_EQ(last_action(), "rollback");
  EXPECT_EQ(store_->rollback("hello")->to_version, 4);
  EXPECT_EQ(store_->rollback("hello", 9).error().code(), Code::kNotFound);
}

TEST_P(StoreStateMachine, DeleteIsRefusedForActiveRollbackTargetAndReleaseVersions) {
  imp(0);
  imp(1);
  imp(2);
  imp(3);  // active 4, target 3
  EXPECT_EQ(store_->delete_version("hello", 4).code(), Code::kFailedPrecondition);
  EXPECT_EQ(store_->delete_version("hello", 3).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(store_->activate("hello", 1));  // active 1, target 4
  ASSERT_TRUE(store_->release_create("r1"));  // names 1
  ASSERT_TRUE(store_->activate("hello", 4));  // active 4, target 1
  ASSERT_TRUE(store_->activate("hello", 3));  // active 3, target 4
  auto refused = store_->delete_version("hello", 1);
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.message().find("release r1"), std::string::npos) << refused.message();
  EXPECT_EQ(st(), (State{3, {1, 2, 3, 4}}));
  // Version 2 is none of those: it goes.
  ASSERT_TRUE(store_->delete_version("hello", 2, Reason("bad build")));
  EXPECT_EQ(st(), (State{3, {1, 3, 4}}));
  EXPECT_EQ(last_action(), "delete");
  EXPECT_EQ(store_->get("hello", 2).error().code(), Code::kNotFound);
  // The number is never reused.
  EXPECT_EQ(imp(7), 5);
  // Once the release is gone, 1 can be deleted.
  ASSERT_TRUE(store_->release_delete("r1"));
  EXPECT_TRUE(store_->delete_version("hello", 1));
  EXPECT_EQ(st(), (State{5, {3, 4, 5}}));
}

TEST_P(StoreStateMachine, ReleaseRollbackRestoresExactlyTheSnapshot) {
  import_bytes(*store_, variant("attrs.beam", 0));  // attrs 1
  imp(0);                                           // hello 1
  ASSERT_TRUE(store_->release_create("r1", Reason("first")));
  imp(1);                                                         // hello 2
  import_bytes(*store_, read_file(fixture("loader/v1/m.beam")));  // m 1: new since r1
  ASSERT_TRUE(store_->release_create("r2"));
  auto diff = store_->release_diff("r1", "r2");
  ASSERT_TRUE(diff);
  ASSERT_EQ(diff->added.size(), 1u);
  EXPECT_EQ(diff->added[0].module, "m");
  ASSERT_EQ(diff->changed.size(), 1u);
  EXPECT_EQ(diff->changed[0].module, "hello");
  EXPECT_EQ(diff->changed[0].from_version, 1);
  EXPECT_EQ(diff->changed[0].to_version, 2);
  EXPECT_TRUE(diff->removed.empty());

  auto changed = store_->release_rollback("r1");
  ASSERT_TRUE(changed) << changed.error().to_string();
  ASSERT_EQ(changed->size(), 2u);
  EXPECT_EQ(st(), (State{1, {1, 2}}));
  EXPECT_EQ(state_of(*store_, "m"), (State{0, {1}}));  // inactive, still stored
  EXPECT_EQ(store_->active("m").error().code(), Code::kNotFound);
  EXPECT_EQ(state_of(*store_, "attrs"), (State{1, {1}}));
  auto r1 = store_->release_show("r1");
  std::vector<ReleaseEntry> active_set;
  const auto list = store_->list();
  for (const auto& m : *list) {
    if (m.active_version != 0) active_set.push_back({m.module, m.active_version, m.lib});
  }
  EXPECT_EQ(active_set, r1->modules);

  // Rolling back to the same release again changes nothing; to r2 brings m back.
  EXPECT_TRUE(store_->release_rollback("r1")->empty());
  EXPECT_EQ(store_->release_rollback("r2")->size(), 2u);
  EXPECT_EQ(state_of(*store_, "m"), (State{1, {1}}));
  // A module's own rollback after a release rollback returns to what was active before it.
  ASSERT_TRUE(store_->release_rollback("r1"));
  EXPECT_EQ(store_->rollback("m")->to_version, 1);
  EXPECT_EQ(store_->release_create("r1").error().code(), Code::kAlreadyExists);
}

TEST_P(StoreStateMachine, GcKeepsWhatIsNeededAndFreesTheRest) {
  for (int i = 0; i < 6; ++i) imp(i);         // 1..6, active 6, target 5
  ASSERT_TRUE(store_->activate("hello", 2));  // active 2, target 6
  ASSERT_TRUE(store_->release_create("r"));   // names 2
  ASSERT_TRUE(store_->activate("hello", 3));  // active 3, target 2
  // Keep active 3, target 2 (also in r), and the newest one (6): 1, 4, 5 go.
  auto dry = store_->gc({1, true});
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->deleted.size(), 3u);
  EXPECT_EQ(dry->deleted[0].version, 1);
  EXPECT_EQ(dry->deleted[1].version, 4);
  EXPECT_EQ(dry->deleted[2].version, 5);
  EXPECT_EQ(st(), (State{3, {1, 2, 3, 4, 5, 6}}));  // a dry run deletes nothing
  auto real = store_->gc({1, false});
  ASSERT_TRUE(real);
  EXPECT_EQ(real->deleted.size(), 3u);
  EXPECT_EQ(real->blobs_deleted, 3);
  EXPECT_EQ(st(), (State{3, {2, 3, 6}}));
  // keep_last 3 keeps everything that is left.
  EXPECT_TRUE(store_->gc({3, false})->deleted.empty());
}

TEST_P(StoreStateMachine, GcDeletesVersionsAndUnreferencedBlobs) {
  for (int i = 0; i < 5; ++i) imp(i);                          // 1..5, active 5, target 4
  ASSERT_TRUE(store_->import(variant("hello.beam", 0), "x"));  // 6 shares blob with 1
  // active 6, target 5; keep_last 0: delete 1, 2, 3, 4. Blob of 1 is still used by 6.
  auto r = store_->gc({0, false});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->deleted.size(), 4u);
  EXPECT_EQ(r->blobs_deleted, 3);
  EXPECT_GT(r->bytes_freed, 0u);
  EXPECT_EQ(st(), (State{6, {5, 6}}));
  EXPECT_EQ(*store_->get("hello", 6, true), variant("hello.beam", 0));
  EXPECT_EQ(last_action(), "gc");
  EXPECT_EQ(store_->stats()->blobs, 2);
  // Numbers continue past the high-water mark.
  EXPECT_EQ(imp(9), 7);
  auto again = store_->gc({0, false});
  ASSERT_TRUE(again);
  ASSERT_EQ(again->deleted.size(), 1u);  // 5: no longer the rollback target (6 is)
  EXPECT_EQ(again->deleted[0].version, 5);
  EXPECT_EQ(st(), (State{7, {6, 7}}));
  EXPECT_TRUE(store_->verify()->ok());
}

TEST_P(StoreStateMachine, VersionZeroOrNegativeIsAnInvalidArgumentNotADeactivation) {
  // Version numbers start at 1; 0 means "none" inside the store and must never reach it
  // from a caller (it used to deactivate the module).
  imp(0);
  imp(1);
  const auto before_history = store_->history()->size();
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}}) {
    auto a = store_->activate("hello", v);
    ASSERT_FALSE(a) << v;
    EXPECT_EQ(a.error().code(), Code::kInvalidArgument);
    EXPECT_NE(a.error().message().find("versions are whole numbers from 1"), std::string::npos)
        << a.error().message();
    auto r = store_->rollback("hello", v);
    ASSERT_FALSE(r) << v;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
    EXPECT_NE(r.error().message().find("versions are whole numbers from 1"), std::string::npos)
        << r.error().message();
    Status d = store_->delete_version("hello", v);
    EXPECT_EQ(d.code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(st(), (State{2, {1, 2}}));
  EXPECT_EQ(store_->history()->size(), before_history);
  EXPECT_TRUE(store_->active("hello"));
}

}  // namespace
}  // namespace codestore

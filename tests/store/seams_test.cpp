// Issue 12 §2 and §4 for the store: the import planner that the CLI and Store::import_tree
// share, and the public API's guards against swapped arguments.
#include <codestore/import_plan.h>
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <concepts>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "store_test_util.h"

namespace codestore::store_testing {
namespace {

// --- the API (compile-time: these fail to build on the old store.h) --------------------------

// rollback("m", "3") no longer picks the reason overload silently: a reason is a Reason.
template <typename S>
concept RollbackTakesBareText = requires(S& s) {
  s.rollback("m", "3");
};
template <typename S>
concept RollbackTakesReason = requires(S& s) {
  s.rollback("m", Reason("3"));
};
template <typename S>
concept RollbackTakesVersion = requires(S& s) {
  s.rollback("m", 3);
};
static_assert(!RollbackTakesBareText<Store>);
static_assert(RollbackTakesReason<Store>);
static_assert(RollbackTakesVersion<Store>);
static_assert(!std::is_convertible_v<const char*, Reason>);

// import takes bytes, an origin and options: lib and note are named, never three adjacent strings.
template <typename S>
concept ImportTakesAdjacentStrings = requires(S& s, std::span<const std::uint8_t> b) {
  s.import(b, "origin", "lib", "note");
};
template <typename S>
concept ImportTakesNamedOptions = requires(S& s, std::span<const std::uint8_t> b) {
  s.import(b, "origin", ImportOptions{.lib = "lib", .note = "n"});
};
static_assert(!ImportTakesAdjacentStrings<Store>);
static_assert(ImportTakesNamedOptions<Store>);

TEST(StoreApi, ReasonAndNamedImportOptionsReachTheHistory) {
  TempDir dir;
  auto store = open_or_die(dir / "s.db");
  auto one = store->import(read_file(fixture("hello.beam")), "one.beam", {.lib = "demo", .note = "first"});
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(one->lib, "demo");
  auto two = store->import(variant("hello.beam", 1), "two.beam", {.lib = "demo"});
  ASSERT_TRUE(two) << two.error().to_string();
  auto back = store->rollback("hello", Reason("3"));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->to_version, 1);
  auto history = store->history("hello");
  ASSERT_TRUE(history);
  ASSERT_FALSE(history->empty());
  EXPECT_EQ(history->back().action, "rollback");
  EXPECT_EQ(history->back().reason, "3");
  EXPECT_EQ(history->front().reason, "one.beam: first");
  auto v1 = store->version_info("hello", 1);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->note, "first");
}

// --- the planner ------------------------------------------------------------------------------

std::vector<std::string> paths_of(const ImportPlan& plan) {
  std::vector<std::string> out;
  for (const auto& f : plan.files) out.push_back(f.path);
  return out;
}

TEST(ImportPlan, WalksSortedAndGivesEachFileItsLib) {
  TempDir dir;
  const auto hello = read_file(fixture("hello.beam"));
  write_file(dir / "lib/zeta-1.0/ebin/b.beam", hello);
  write_file(dir / "lib/alpha-2.1/ebin/a.beam", hello);
  write_file(dir / "lib/alpha-2.1/ebin/README", "x");  // not a .beam: not planned
  write_file(dir / "loose/c.beam", hello);
  auto plan = plan_import({dir / "lib", dir / "loose/c.beam"});
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_EQ(paths_of(*plan),
            (std::vector<std::string>{dir / "lib/alpha-2.1/ebin/a.beam", dir / "lib/zeta-1.0/ebin/b.beam",
                                      dir / "loose/c.beam"}));
  EXPECT_EQ(plan->files[0].lib, "alpha");
  EXPECT_EQ(plan->files[1].lib, "zeta");
  EXPECT_EQ(plan->files[2].lib, "");
  EXPECT_TRUE(plan->warnings.empty());
}

TEST(ImportPlan, PrecedenceFollowsOtpsBundleOrder) {
  // code_server's choose_bundles: 0.10.0 after 0.9.0 (numbers, not text), files outside an
  // <app>-<vsn>/ebin directory before any inside one.
  TempDir dir;
  const auto hello = read_file(fixture("hello.beam"));
  write_file(dir / "lib/app-0.10.0/ebin/m.beam", hello);
  write_file(dir / "lib/app-0.9.0/ebin/m.beam", hello);
  write_file(dir / "loose/m.beam", hello);
  auto plan = plan_import({dir / "lib", dir / "loose"});
  ASSERT_TRUE(plan) << plan.error().to_string();
  ASSERT_EQ(plan->files.size(), 3u);
  auto precedence = [&](const std::string& path) {
    const auto it = std::find_if(plan->files.begin(), plan->files.end(),
                                 [&](const ImportFile& f) { return f.path == path; });
    EXPECT_NE(it, plan->files.end()) << path;
    return it == plan->files.end() ? std::size_t{0} : it->precedence;
  };
  EXPECT_LT(precedence(dir / "loose/m.beam"), precedence(dir / "lib/app-0.9.0/ebin/m.beam"));
  EXPECT_LT(precedence(dir / "lib/app-0.9.0/ebin/m.beam"), precedence(dir / "lib/app-0.10.0/ebin/m.beam"));
}

TEST(ImportPlan, RefusesMissingPathsAndDirectoriesWithoutImages) {
  TempDir dir;
  std::filesystem::create_directories(dir / "empty");
  auto missing = plan_import({dir / "nope"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
  auto empty = plan_import({dir / "empty"});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Code::kNotFound);
  EXPECT_NE(empty.error().message().find("no module images"), std::string::npos);
  auto stopped = plan_import({fixture("hello.beam")}, [] { return true; });
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code(), Code::kCancelled);
}

TEST(ImportPlan, DanglingLinksAreWarnings) {
  TempDir dir;
  write_file(dir / "rel/lib/app-1.0/ebin/hello.beam", read_file(fixture("hello.beam")));
  std::filesystem::create_directory_symlink("../nowhere", dir / "rel/lib/gone-1.0");
  auto plan = plan_import({dir / "rel"});
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_EQ(plan->files.size(), 1u);
  ASSERT_EQ(plan->warnings.size(), 1u);
  EXPECT_NE(plan->warnings[0].find("dangling"), std::string::npos) << plan->warnings[0];
}

TEST(ImportPlan, ImportFilesImportsThePlanAndTheHighestBundleEndsActive) {
  TempDir dir;
  write_file(dir / "lib/app-0.10.0/ebin/hello.beam", variant("hello.beam", 2));
  write_file(dir / "lib/app-0.9.0/ebin/hello.beam", variant("hello.beam", 1));
  auto store = open_or_die(dir / "s.db");
  auto plan = plan_import({dir / "lib"});
  ASSERT_TRUE(plan) << plan.error().to_string();
  auto r = store->import_files(*plan, {});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->new_versions, 2u);
  auto active = store->active_info("hello");
  ASSERT_TRUE(active);
  EXPECT_EQ(active->origin, dir / "lib/app-0.10.0/ebin/hello.beam");
  EXPECT_EQ(active->lib, "app");
}

}  // namespace
}  // namespace codestore::store_testing

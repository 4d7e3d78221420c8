// The store's ModuleSource keeps lookups per store generation: whatever another connection
// (another process: the CLI) commits is seen by the very next call, for each kind of
// lookup the boot server makes (the lib list, a lib's modules, one module, an absent one).
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "server_test_util.h"
#include "store_ops.h"

namespace codestore::server {
namespace {

using testing::TempDir;

const std::string kFixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/server";

class StoreSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.path().string() + "/s.db";
    // A new store with one module (in lib "first").
    ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v1/m.beam", "first"));
  }
  bool has_lib(ModuleSource& s, const std::string& lib) {
    auto libs = s.libs();
    return libs && std::find(libs->begin(), libs->end(), lib) != libs->end();
  }
  TempDir dir_;
  std::string db_;
};

TEST_F(StoreSourceTest, EveryLookupSeesTheNextCommitOfAnotherConnection) {
  auto source = open_store_source(db_, "");
  ASSERT_TRUE(source) << source.error().to_string();
  ModuleSource& s = **source;
  // Every lookup twice: the second comes from the cache of this generation.
  for (int i = 0; i < 2; ++i) {
    auto m = s.find("m");
    ASSERT_TRUE(m) << m.error().to_string();
    EXPECT_EQ(m->version, 1);
    EXPECT_EQ(m->lib, "first");
    EXPECT_EQ(s.find("absent").error().code(), Code::kNotFound);
    EXPECT_TRUE(has_lib(s, "first"));
    EXPECT_EQ(s.modules("first").value_or(std::vector<ServedModule>{}).size(), 1u);
  }
  // Another connection imports version 2 (a new active version): seen at once.
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v2/m.beam", "first"));
  EXPECT_EQ(s.find("m").value_or(ServedModule{}).version, 2);
  auto listed = s.modules("first");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].version, 2);
  // A rollback by another connection: seen at once.
  ASSERT_TRUE(store_ops::rollback(db_, "m"));
  EXPECT_EQ(s.find("m").value_or(ServedModule{}).version, 1);
  EXPECT_EQ(s.modules("first").value_or(std::vector<ServedModule>{}).at(0).version, 1);
  auto image = s.image(*s.find("m"));
  ASSERT_TRUE(image && *image);
  EXPECT_EQ((*image)->size(), s.find("m")->size);
  EXPECT_FALSE(has_lib(s, "second"));
  EXPECT_TRUE(s.modules("second").value_or(std::vector<ServedModule>{{}}).empty());
}

TEST_F(StoreSourceTest, AnAbsentModuleOrLibAppearsWithTheCommitThatAddsIt) {
  auto source = open_store_source(db_, "");
  ASSERT_TRUE(source) << source.error().to_string();
  ModuleSource& s = **source;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(s.find("n").error().code(), Code::kNotFound);
    EXPECT_FALSE(has_lib(s, "second"));
    EXPECT_TRUE(s.modules("second").value_or(std::vector<ServedModule>{{}}).empty());
  }
  ASSERT_TRUE(store_ops::import_file(
      db_, std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/loader/v1/n.beam", "second"));
  auto n = s.find("n");
  ASSERT_TRUE(n) << n.error().to_string();
  EXPECT_EQ(n->lib, "second");
  EXPECT_TRUE(has_lib(s, "second"));
  EXPECT_EQ(s.modules("second").value_or(std::vector<ServedModule>{}).size(), 1u);
}

TEST_F(StoreSourceTest, ConcurrentLookupsDuringCommitsEndOnTheLastCommit) {
  ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/v2/m.beam", "first"));
  auto source = open_store_source(db_, "");
  ASSERT_TRUE(source) << source.error().to_string();
  ModuleSource& s = **source;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::mutex first_bad_mu;
  std::string first_bad;  // guarded by first_bad_mu
  auto report = [&](const std::string& what) {
    ++bad;
    std::lock_guard<std::mutex> lock(first_bad_mu);
    if (first_bad.empty()) first_bad = what;
  };
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        auto m = s.find("m");
        if (!m)
          report("find: " + m.error().to_string());
        else if (m->version != 1 && m->version != 2)
          report("find: version " + std::to_string(m->version));
        auto libs = s.libs();
        if (!libs)
          report("libs: " + libs.error().to_string());
        else if (libs->size() != 1)
          report("libs: " + std::to_string(libs->size()));
        auto listed = s.modules("first");
        if (!listed)
          report("modules: " + listed.error().to_string());
        else if (listed->size() != 1)
          report("modules: " + std::to_string(listed->size()));
      }
    });
  }
  // Each rollback toggles between the two versions.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_ops::rollback(db_, "m"));
  done.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0) << "first: " << first_bad;
  // Ten toggles from v2: v2 again, whatever the readers cached on the way.
  EXPECT_EQ(s.find("m").value_or(ServedModule{}).version, 2);
  EXPECT_EQ(s.modules("first").value_or(std::vector<ServedModule>{{}}).at(0).version, 2);
}

}  // namespace
}  // namespace codestore::server

// The store's behaviour suites run against both backends (issue 16): a suite is a
// value-parameterized test over {sqlite, postgresql}, and a test asks store_at(dir) where
// its store lives: a file in its TempDir, or a database of its own on the tests' PostgreSQL
// server (tests/support/pg_server.h), dropped when the test ends. The PostgreSQL half is
// named .../postgresql, labelled `postgres` (tests/CMakeLists.txt).
//
//   class Store : public store_testing::BackendTest {};
//   CODESTORE_BOTH_BACKENDS(Store);
//   TEST_P(Store, ...) { TempDir dir; auto store = open_or_die(store_at(dir)); ... }
//
// Thread safety: thread-compatible (each test owns its fixture).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>

#include "support/pg_server.h"
#include "support/temp_dir.h"

namespace codestore::store_testing {

enum class Backend { kSqlite, kPostgresql };

class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  bool postgresql() const { return GetParam() == Backend::kPostgresql; }

  // Where the store named `name` of this test lives: `dir / name` (SQLite), or a fresh
  // database of this test's (PostgreSQL; the same one for the same name).
  std::string store_at(const testing::TempDir& dir, const std::string& name = "s.db") {
    if (!postgresql()) return dir / name;
    auto it = databases_.find(name);
    if (it == databases_.end()) it = databases_.emplace(name, testing::pg_create_database()).first;
    return it->second;
  }

  void TearDown() override {
    for (const auto& [name, uri] : databases_) testing::pg_drop_database(uri);
  }

 private:
  std::map<std::string, std::string> databases_;
};

// What CTest's test names show after "GetParam() = ".
inline void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::kSqlite ? "sqlite" : "postgresql");
}

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgresql";
}

}  // namespace codestore::store_testing

#define CODESTORE_BOTH_BACKENDS(suite)                                                          \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                                     \
                           ::testing::Values(::codestore::store_testing::Backend::kSqlite,      \
                                             ::codestore::store_testing::Backend::kPostgresql), \
                           ::codestore::store_testing::backend_name)

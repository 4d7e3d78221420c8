// A raw SQLite connection to a store's file, for the tests that do to it what a user or another
// program might (damage a blob, read a column the API does not show).
//
// Thread safety: one connection; use it from one thread.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace codestore::store_testing {

class RawDb {
 public:
  explicit RawDb(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, flags, nullptr), SQLITE_OK) << path;
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* msg = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg), SQLITE_OK)
        << sql << ": " << (msg ? msg : "");
    sqlite3_free(msg);
  }
  // The first column of the first row as an integer; -1 when there is no row.
  std::int64_t scalar(const std::string& sql) {
    sqlite3_stmt* s = prepare(sql);
    std::int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
  }
  // The first column of the first row as bytes; empty when there is no row.
  std::vector<std::uint8_t> blob(const std::string& sql) {
    sqlite3_stmt* s = prepare(sql);
    std::vector<std::uint8_t> out;
    if (sqlite3_step(s) == SQLITE_ROW) {
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, 0));
      out.assign(p, p + sqlite3_column_bytes(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  // Runs `sql` with `bytes` bound to its ?1.
  void set_blob(const std::string& sql, std::span<const std::uint8_t> bytes) {
    sqlite3_stmt* s = prepare(sql);
    sqlite3_bind_blob(s, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE) << sql;
    sqlite3_finalize(s);
  }

 private:
  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
    return s;
  }
  sqlite3* db_ = nullptr;
};

}  // namespace codestore::store_testing

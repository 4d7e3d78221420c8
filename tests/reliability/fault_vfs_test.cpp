// The fault VFS itself, proven on a raw SQLite database before it is trusted over the
// store: for every N from 1 until the operation runs clean, the Nth write / sync / read
// fails (or the disk is full); the operation reports an error (never a crash), and after
// reopening with the normal VFS the database passes integrity_check and holds either the
// whole transaction or none of it. This is SQLite's own "ioerr" test method; it also
// shows what the store can promise on top of SQLite.
#include "fault_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace fs = std::filesystem;
using codestore::testing::FaultKind;
using codestore::testing::FaultVfs;

namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close_v2(db); }
};

int exec(sqlite3* db, const std::string& sql) {
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

std::string query_text(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    return "prepare failed: " + std::string(sqlite3_errmsg(db));
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* t = sqlite3_column_text(st, 0);
    out += t ? reinterpret_cast<const char*>(t) : "NULL";
    out += ";";
  }
  sqlite3_finalize(st);
  return out;
}

// A digest of the whole table that tells "before", "after" and anything else apart.
std::string state(sqlite3* db) {
  return query_text(db,
                    "SELECT count(*) || ':' || coalesce(sum(length(v)),0) || ':' || "
                    "coalesce(sum(id*7+length(v)),0) FROM t");
}

class FaultVfsRaw : public ::testing::TestWithParam<std::tuple<FaultKind, const char*, bool>> {
 protected:
  void SetUp() override {
    FaultVfs::install();
    dir_ = tmp_.path();
  }

  codestore::testing::TempDir tmp_;
  fs::path dir_;  // tmp_.path()
};

}  // namespace

TEST_P(FaultVfsRaw, EveryFaultPointIsAllOrNothing) {
  const auto [kind, sync_mode, persistent] = GetParam();
  const fs::path base = dir_ / "base.db";
  {
    Db d;
    ASSERT_EQ(sqlite3_open(base.c_str(), &d.db), SQLITE_OK);
    ASSERT_EQ(exec(d.db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"),
              SQLITE_OK);
    ASSERT_EQ(exec(d.db,
                   "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<40) "
                   "INSERT INTO t SELECT i, randomblob(3000) FROM n; COMMIT;"),
              SQLITE_OK);
  }
  std::string before, after;
  int failures = 0, points = 0;
  std::vector<std::pair<std::int64_t, std::string>> failed_states;
  for (std::int64_t n = 1; n < 5000; ++n) {
    const fs::path db = dir_ / ("n" + std::to_string(n) + ".db");
    fs::copy_file(base, db);  // WAL was checkpointed at close: the .db file is complete
    int rc = SQLITE_OK;
    {
      Db d;
      FaultVfs::arm(kind, n, persistent);
      rc = sqlite3_open_v2(db.c_str(), &d.db, SQLITE_OPEN_READWRITE, FaultVfs::kName);
      if (rc == SQLITE_OK) rc = exec(d.db, std::string("PRAGMA synchronous=") + sync_mode);
      if (rc == SQLITE_OK) {
        rc = exec(d.db,
                  "BEGIN IMMEDIATE;"
                  "WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL SELECT i+1 FROM n WHERE i<130) "
                  "INSERT INTO t SELECT i, randomblob(2500) FROM n;"
                  "UPDATE t SET v = zeroblob(1000) WHERE id % 3 = 0;"
                  "DELETE FROM t WHERE id % 5 = 0;"
                  "COMMIT;");
        if (rc != SQLITE_OK) (void)exec(d.db, "ROLLBACK");
        // A checkpoint makes the WAL's content reach the database file under the fault too.
        if (rc == SQLITE_OK) (void)exec(d.db, "PRAGMA wal_checkpoint(TRUNCATE)");
      }
      // close runs under the fault as well (it checkpoints); whatever it reports, no crash.
    }
    const bool fired = FaultVfs::fired();
    FaultVfs::disarm();
    ++points;
    if (rc != SQLITE_OK) ++failures;

    Db check;
    ASSERT_EQ(sqlite3_open(db.c_str(), &check.db), SQLITE_OK);
    EXPECT_EQ(query_text(check.db, "PRAGMA integrity_check"), "ok;") << "fault at " << n;
    const std::string s = state(check.db);
    if (before.empty()) {
      Db b;
      ASSERT_EQ(sqlite3_open(base.c_str(), &b.db), SQLITE_OK);
      before = state(b.db);
    }
    if (rc == SQLITE_OK && !fired) {
      after = s;  // the run the fault never reached: the whole operation
    } else if (rc == SQLITE_OK) {
      // Reported success, the fault hit later (close's checkpoint): all of it is there.
      EXPECT_NE(s, before) << "the operation reported success with the fault at " << n << " but is not there";
      failed_states.push_back({n, s});
    } else {
      // Failed: none of it, or (the fault hit after the commit point, e.g. the checkpoint)
      // all of it; compared with `after` once it is known, below.
      failed_states.push_back({n, s});
    }
    fs::remove(db);
    fs::remove(fs::path(db.string() + "-wal"));
    fs::remove(fs::path(db.string() + "-shm"));
    if (!fired) break;
  }
  ASSERT_FALSE(after.empty()) << "the operation never ran clean";
  for (const auto& [n, s] : failed_states)
    EXPECT_TRUE(s == before || s == after) << "fault at " << n << ": partial state " << s;
  EXPECT_GT(failures, 0);
  RecordProperty("fault_points", points);
  std::printf("  %s %s %s: %d fault points, %d reported errors\n", codestore::testing::fault_kind_name(kind),
              sync_mode, persistent ? "persistent" : "transient", points, failures);
}

INSTANTIATE_TEST_SUITE_P(Kinds, FaultVfsRaw,
                         ::testing::Values(std::make_tuple(FaultKind::kWrite, "NORMAL", true),
                                           std::make_tuple(FaultKind::kWrite, "FULL", false),
                                           std::make_tuple(FaultKind::kSync, "FULL", true),
                                           std::make_tuple(FaultKind::kSync, "NORMAL", false),
                                           std::make_tuple(FaultKind::kRead, "NORMAL", true),
                                           std::make_tuple(FaultKind::kRead, "FULL", false),
                                           std::make_tuple(FaultKind::kDiskFull, "NORMAL", true)),
                         [](const ::testing::TestParamInfo<FaultVfsRaw::ParamType>& p) {
                           std::string kind = codestore::testing::fault_kind_name(std::get<0>(p.param));
                           if (kind == "disk-full") kind = "diskfull";
                           return kind + "_" + std::get<1>(p.param) +
                                  (std::get<2>(p.param) ? "_persistent" : "_transient");
                         });

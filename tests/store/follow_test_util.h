// What the follower tests share (follow_test.cpp, follow_chaos_test.cpp): a replica compared
// with its primary table by table, raw (the primary through libpq as testing::pg_rows reads it,
// the replica through SQLite's C API in the same "a|b|" form), and the small waits and server
// actions the tests take.
//
// Thread safety: the functions are stateless; each opens its own connections.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/pg_server.h"

namespace codestore::store_testing {

// The rows of `sql` on the SQLite file `path`, each as its columns' text joined by "|" after
// each, NULL as "NULL" (testing::pg_rows's form).
inline std::vector<std::string> sqlite_rows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string why = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("open " + path + ": " + why);
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    const std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error(sql + ": " + why);
  }
  std::vector<std::string> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const auto* t = sqlite3_column_text(st, i);
      row += t != nullptr ? reinterpret_cast<const char*>(t) : "NULL";
      row += "|";
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

inline std::int64_t count_rows(const std::string& path, const std::string& sql) {
  const auto rows = sqlite_rows(path, sql);
  return rows.empty() ? -1 : std::stoll(rows.front());
}

inline std::int64_t applied_generation(const std::string& replica, const std::string& channel) {
  const auto rows =
      sqlite_rows(replica, "SELECT generation FROM follower_channels WHERE channel = '" + channel + "'");
  return rows.empty() ? 0 : std::stoll(rows.front());
}

// The tables a follower writes, as both databases list them: HEX(x) is a bytes column in hex.
inline const std::vector<std::string>& replicated_queries() {
  static const std::vector<std::string> q = {
      "SELECT name, generation, previous, created_at FROM channels WHERE generation > 0 ORDER BY name",
      "SELECT channel, number, created_at, action, coalesce(release, 0), coalesce(label, ''), reason FROM "
      "generations ORDER BY channel, number",
      "SELECT channel, module, version, first, coalesce(until, -1) FROM generation_modules ORDER BY channel, "
      "module, first",
      "SELECT channel, app, app_version, first, coalesce(until, -1) FROM generation_apps ORDER BY channel, "
      "app, "
      "first",
      "SELECT channel, module, version, since, previous FROM channel_modules ORDER BY channel, module",
      "SELECT name, high_water FROM modules ORDER BY name",
      "SELECT module, version, blob_id, lib, md5, vsn, origin, note, warning, imported_at FROM versions "
      "ORDER BY "
      "module, version",
      "SELECT id, HEX(sha256), raw_size, stored_size, level, coalesce(dictionary_id, 0), "
      "coalesce(load_verdict, "
      "-1), HEX(frame_checksum), HEX(data) FROM blobs ORDER BY id",
      "SELECT id, app, vsn, revision, content, origin, warning, imported_at FROM app_versions ORDER BY id",
      "SELECT app_version, module, version, blob_id, path FROM app_modules ORDER BY app_version, module",
      "SELECT app_version, path, coalesce(blob_id, 0), mode, coalesce(link, '') FROM app_files ORDER BY "
      "app_version, path",
      "SELECT id, name, vsn, erts_vsn, kind, origin, imported_at FROM releases ORDER BY id",
      "SELECT release, position, app_version, type, included FROM release_apps ORDER BY release, position",
      "SELECT release, path, coalesce(blob_id, 0), mode, coalesce(link, '') FROM release_files ORDER BY "
      "release, "
      "path",
      "SELECT release, module, version, blob_id, path FROM release_modules ORDER BY release, module",
  };
  return q;
}

inline std::string for_postgresql(const std::string& sql) {
  return std::regex_replace(sql, std::regex(R"(HEX\(([\w.]+)\))"), "encode($1, 'hex')");
}
inline std::string for_sqlite(const std::string& sql) {
  return std::regex_replace(sql, std::regex(R"(HEX\(([\w.]+)\))"), "lower(hex($1))");
}

// Every table a follower writes holds on `replica` what it holds on the primary `uri`.
inline void expect_replica_equal(const std::string& uri, const std::string& replica) {
  for (const auto& q : replicated_queries()) {
    EXPECT_EQ(sqlite_rows(replica, for_sqlite(q)), testing::pg_rows(uri, for_postgresql(q))) << q;
  }
}

// Whether `done` becomes true within 30 s (a bounded wait, not a timing).
template <typename F>
bool eventually(F done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

inline std::string db_name(const std::string& uri) {
  const std::size_t start = uri.find(":///") + 4;
  return uri.substr(start, uri.find('?') - start);
}

// Ends the listening sessions of followers (application_name "codestore follow") on database
// `db` of the server in `dir`; how many.
inline std::size_t terminate_listeners(const std::string& db,
                                       const std::string& dir = testing::pg_server_dir()) {
  return testing::pg_rows(testing::pg_uri_in(dir, "postgres"),
                          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                          "'codestore follow' AND datname = $1",
                          {db})
      .size();
}

// The ebin directories of OTP's applications `apps` (/usr/lib/erlang/lib/<app>-<vsn>/ebin).
inline std::vector<std::string> otp_ebins(const std::vector<std::string>& apps) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/erlang/lib")) {
    const std::string name = e.path().filename().string();
    for (const auto& a : apps) {
      if (name.rfind(a + "-", 0) == 0) out.push_back((e.path() / "ebin").string());
    }
  }
  return out;
}

}  // namespace codestore::store_testing

// The schema steps (migrations/NNNN_*.sql, embedded at build time) and the runner that
// brings a database to the newest step.
//
// Thread safety: embedded_migrations() returns an immutable list; migrate() works on the
// connection it is given (the caller serializes use of that connection).
#pragma once

#include <codestore/status.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace SQLite {
class Database;
}

namespace codestore::db {

struct Migration {
  std::int64_t number;
  const char* name;  // "0001_initial.sql"
  const char* sql;
};

// In number order (generated from migrations/ by embed_migrations.cmake).
const std::vector<Migration>& embedded_migrations();

// Hex SHA-256 of a migration's text: what the runner records and compares.
std::string migration_checksum(std::string_view sql);

// Our files carry this in PRAGMA application_id ("CdSt").
inline constexpr std::int32_t kApplicationId = 0x43645374;

struct MigrateOptions {
  bool read_only = false;  // only check: a pending step is refused (kFailedPrecondition)
  bool backup = true;      // VACUUM INTO beside the file before the first step on a non-empty database
  bool apply = true;       // false: refuse a stale schema instead of applying
};

// Checks that `db` (opened on `path`) is ours and not newer than us, refuses an edited
// applied step, then applies each pending step in its own BEGIN IMMEDIATE transaction.
// Writes nothing before the checks pass. Throws SQLite::Exception (the caller's boundary
// turns it into a Status); returns the refusals as a Status.
Status migrate(SQLite::Database& db, const std::string& path, const MigrateOptions& options);

// The highest step applied to `db` (0 for a fresh file).
std::int64_t applied_schema_version(SQLite::Database& db);

}  // namespace codestore::db

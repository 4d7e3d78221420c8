// The schema steps (migrations/NNNN_*.sql, embedded at build time) and the runner that
// brings a database to the newest step.
//
// Thread safety: embedded_migrations() returns an immutable list; migrate() works on the
// connection it is given (the caller serializes use of that connection).
#pragma once

#include <codestore/status.h>

#include <cstdint>
#include <map>
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
// The PostgreSQL twins, in number order (migrations/postgresql/NNNN_*.sql): the same steps
// in PostgreSQL's dialect, one for each of embedded_migrations() with its number
// (docs/store.md "Adding a migration"; tests/store/migration_test.cpp checks the pairs).
const std::vector<Migration>& embedded_postgresql_migrations();

// A migration as a database records it (schema_migrations).
struct AppliedMigration {
  std::string name;
  std::string checksum;
};

// The refusals both backends share, given what `known` (this library's steps) and
// `applied` (the database's schema_migrations) say: a step newer than ours (kNotSupported),
// one unknown to us or edited after it was applied (kCorruption).
Status check_applied(const std::vector<Migration>& known,
                     const std::map<std::int64_t, AppliedMigration>& applied);

// The steps of `known` not in `applied`, in order; a Status refusing them when `options`
// forbid applying (read-only: kPermissionDenied; migrate off: kFailedPrecondition).
Result<std::vector<const Migration*>> pending_migrations(
    const std::vector<Migration>& known, const std::map<std::int64_t, AppliedMigration>& applied,
    bool read_only, bool apply);

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

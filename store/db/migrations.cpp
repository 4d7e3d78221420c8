#include "db/migrations.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fmt/format.h>

#include <ctime>
#include <filesystem>
#include <map>

#include "base/hex.h"
#include "db/codec.h"

namespace codestore::db {

std::string migration_checksum(std::string_view sql) {
  return base::hex(sha256(std::span(reinterpret_cast<const std::uint8_t*>(sql.data()), sql.size())));
}

namespace {

constexpr const char* kMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " number INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)";

bool has_table(SQLite::Database& db, const char* name) {
  SQLite::Statement q(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  q.bind(1, name);
  return q.executeStep();
}

using Applied = AppliedMigration;

std::map<std::int64_t, Applied> read_applied(SQLite::Database& db) {
  std::map<std::int64_t, Applied> applied;
  if (!has_table(db, "schema_migrations")) return applied;
  SQLite::Statement q(db, "SELECT number, name, checksum FROM schema_migrations ORDER BY number");
  while (q.executeStep())
    applied[q.getColumn(0).getInt64()] = {q.getColumn(1).getString(), q.getColumn(2).getString()};
  return applied;
}

// Refusals that need no writes: not ours, newer than us, an applied step edited.
Status check_state(SQLite::Database& db, const std::map<std::int64_t, Applied>& applied, bool fresh) {
  const auto& known = embedded_migrations();
  const std::int32_t app_id = db.execAndGet("PRAGMA application_id").getInt();
  if (app_id != kApplicationId && !(app_id == 0 && fresh)) {
    return Status(
        Code::kInvalidArgument,
        fmt::format("not a codestore database (application_id {:#010x}, expected {:#010x})",
                    static_cast<std::uint32_t>(app_id), static_cast<std::uint32_t>(kApplicationId)));
  }
  if (app_id == kApplicationId && !has_table(db, "schema_migrations")) {
    return Status(Code::kCorruption, "codestore database without its schema_migrations table");
  }
  return check_applied(known, applied);
}

bool is_fresh(SQLite::Database& db) {
  return db.execAndGet("SELECT count(*) FROM sqlite_master").getInt64() == 0;
}

}  // namespace

Status check_applied(const std::vector<Migration>& known,
                     const std::map<std::int64_t, AppliedMigration>& applied) {
  const std::int64_t newest = known.empty() ? 0 : known.back().number;
  for (const auto& [number, row] : applied) {
    if (number > newest) {
      return Status(
          Code::kNotSupported,
          fmt::format("schema version {} ({}) is newer than this library's ({}): use a newer codestore",
                      number, row.name, newest));
    }
    const Migration* ours = nullptr;
    for (const auto& m : known) {
      if (m.number == number) ours = &m;
    }
    if (ours == nullptr) {
      return Status(Code::kCorruption,
                    fmt::format("applied migration {} ({}) is unknown to this library", number, row.name));
    }
    if (migration_checksum(ours->sql) != row.checksum) {
      return Status(Code::kCorruption,
                    fmt::format("migration {} was edited after it was applied: recorded checksum {}, ours {}",
                                ours->name, row.checksum, migration_checksum(ours->sql)));
    }
  }
  return Status::ok();
}

Result<std::vector<const Migration*>> pending_migrations(
    const std::vector<Migration>& known, const std::map<std::int64_t, AppliedMigration>& applied,
    bool read_only, bool apply) {
  std::vector<const Migration*> pending;
  for (const auto& m : known) {
    if (!applied.count(m.number)) pending.push_back(&m);
  }
  if (!pending.empty() && (read_only || !apply)) {
    return error(read_only ? Code::kPermissionDenied : Code::kFailedPrecondition,
                 fmt::format("schema version {} needs migration to {} ({}), which a {} store cannot apply",
                             applied.empty() ? 0 : applied.rbegin()->first, known.back().number,
                             pending.front()->name, read_only ? "read-only" : "non-migrating"));
  }
  return pending;
}

std::int64_t applied_schema_version(SQLite::Database& db) {
  if (!has_table(db, "schema_migrations")) return 0;
  return db.execAndGet("SELECT coalesce(max(number), 0) FROM schema_migrations").getInt64();
}

Status migrate(SQLite::Database& db, const std::string& path, const MigrateOptions& options) {
  const auto& known = embedded_migrations();
  const bool fresh = is_fresh(db);
  auto applied = read_applied(db);
  if (Status s = check_state(db, applied, fresh); !s) return s;

  auto planned = pending_migrations(known, applied, options.read_only, options.apply);
  if (!planned) return planned.error();
  const std::vector<const Migration*>& pending = *planned;
  if (pending.empty()) return Status::ok();

  if (!fresh && options.backup) {
    // Beside the file, named after the steps, so an operator can go back by copying it.
    const std::string backup =
        fmt::format("{}.backup-{}-to-{}-{}", path, applied.empty() ? 0 : applied.rbegin()->first,
                    known.back().number, static_cast<long long>(std::time(nullptr)));
    SQLite::Statement q(db, "VACUUM INTO ?");
    q.bind(1, backup);
    q.exec();
  }

  for (const Migration* m : pending) {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    // Another process may have applied it while we waited for the write lock.
    db.exec(kMigrationsTable);
    SQLite::Statement done(db, "SELECT checksum FROM schema_migrations WHERE number = ?");
    done.bind(1, m->number);
    if (done.executeStep()) continue;  // tx rolls back; nothing to do
    if (db.execAndGet("PRAGMA application_id").getInt() != kApplicationId) {
      db.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
    }
    db.exec(m->sql);
    SQLite::Statement rec(
        db, "INSERT INTO schema_migrations (number, name, checksum, applied_at) VALUES (?, ?, ?, ?)");
    rec.bind(1, m->number);
    rec.bind(2, m->name);
    rec.bind(3, migration_checksum(m->sql));
    rec.bind(4, static_cast<std::int64_t>(std::time(nullptr)));
    rec.exec();
    db.exec(fmt::format("PRAGMA user_version = {}", m->number));
    tx.commit();
  }
  // Checks again: a concurrent process may have written a newer schema meanwhile.
  return check_state(db, read_applied(db), false);
}

}  // namespace codestore::db

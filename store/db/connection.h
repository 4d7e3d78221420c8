// The SQL seam: everything the store's logic asks of a database, so that the store's files
// (store/*.cpp) name no driver. Two backends implement these two classes with an open
// function each: SQLite (db/sqlite_connection.cpp, the reference) and PostgreSQL
// (db/pg_connection.cpp, libpq: how it maps what follows is in its header); Store::open
// chooses by the location (a postgresql:// URI or a file).
//
// What a backend must provide:
// - Connection: one session on the database, used by one thread at a time (the store
//   serializes its calls under Store::Impl's mutex).
//   * prepare(sql): a Statement for the store's SQL text. The text is plain SQL with
//     positional parameters written `?` (or `?N` for the N-th, used where one value appears
//     twice); a backend whose driver spells them otherwise ($1, $2, ...) rewrites them.
//     Functions used: count, sum, max, coalesce, length, lower; `INSERT ... ON CONFLICT (...)
//     DO UPDATE ... excluded.x` (PostgreSQL has the same syntax); LIMIT with a bound value.
//   * exec(sql): a statement without rows or parameters.
//   * begin(kind) / commit() / rollback(): one transaction at a time; kWrite takes the write
//     lock at once (SQLite's BEGIN IMMEDIATE; PostgreSQL: BEGIN plus a lock or SERIALIZABLE),
//     waiting for it as StoreOptions::busy_timeout_ms / on_busy say; kRead is a consistent
//     snapshot for several reads (BEGIN DEFERRED; REPEATABLE READ). rollback() never throws.
//   * last_insert_id(): the id of the row the last INSERT on this connection created (blobs,
//     dictionaries have an integer key the database assigns).
//   * integrity_check(), checkpoint(), reclaim_space(), schema_version(): the maintenance the
//     store offers whose SQL differs per database (PRAGMA integrity_check / amcheck; WAL
//     checkpoint / CHECKPOINT; VACUUM; the highest migration applied).
// - Statement: bind (1-based: integers, text, blobs, NULL), step through rows, read columns
//   (0-based) as int64 (NULL and false read as 0, true as 1), text (NULL: "") or blob bytes
//   (valid until the next step or reset); reset() ends the statement's use (its implicit read)
//   and keeps its bindings; clear_bindings() unbinds them.
// - Errors: a backend throws, and db::current_exception_status (db/sqlite_error.cpp) turns the
//   exception into a Status: either db::StatusError (db::fail) with one of our codes, or the
//   driver's own exception type, given a catch clause there that keeps the driver's error code
//   in the message (as SQLite's extended code is kept today). Busy/lock timeouts are kBusy, a
//   write refused by the database kPermissionDenied, damaged pages kCorruption.
// - Opening (db/sqlite_connection.h: open_sqlite): checks the file is ours, applies the
//   embedded migrations (migrations/*.sql) after a backup, honours StoreOptions (read_only,
//   snapshot, create, busy_timeout_ms, on_busy, migrate, backup_before_migrate).
//
// Blobs are stored compressed by db/codec.h (zstd); the backend keeps them as opaque bytes.
//
// Thread safety: a Connection and its Statements are thread-compatible: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::db {

class Statement {
 public:
  virtual ~Statement() = default;

  virtual void bind(int index, std::int64_t value) = 0;
  virtual void bind(int index, std::string_view text) = 0;                     // copied
  virtual void bind_blob(int index, std::span<const std::uint8_t> bytes) = 0;  // copied
  // Not copied: `bytes` must stay alive until the statement is executed and reset.
  virtual void bind_blob_no_copy(int index, std::span<const std::uint8_t> bytes) = 0;
  virtual void bind_null(int index) = 0;
  virtual void clear_bindings() = 0;

  // The next row: true while there is one.
  virtual bool step() = 0;
  // Runs a statement that returns no rows.
  virtual void exec() = 0;
  virtual void reset() = 0;

  virtual std::int64_t int64(int column) = 0;
  virtual std::string text(int column) = 0;
  virtual std::span<const std::uint8_t> blob(int column) = 0;
};

enum class TxKind { kRead, kWrite };

class Connection {
 public:
  virtual ~Connection() = default;

  virtual std::unique_ptr<Statement> prepare(const std::string& sql) = 0;
  virtual void exec(const std::string& sql) = 0;
  virtual void begin(TxKind kind) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  virtual std::int64_t last_insert_id() = 0;

  // The database's own consistency check: "ok" alone when sound, else one line per problem.
  virtual std::vector<std::string> integrity_check() = 0;
  // Writes what a log holds into the main file (SQLite: the WAL).
  virtual void checkpoint() = 0;
  // Returns the space deleted rows held to the file system (after compact).
  virtual void reclaim_space() = 0;
  // The highest migration applied (0 for a fresh database).
  virtual std::int64_t schema_version() = 0;
};

// A transaction that rolls back unless committed (also when an error unwinds it).
class Transaction {
 public:
  Transaction(Connection& connection, TxKind kind) : connection_(connection) { connection_.begin(kind); }
  ~Transaction() {
    if (!done_) connection_.rollback();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    connection_.commit();
    done_ = true;
  }

 private:
  Connection& connection_;
  bool done_ = false;
};

}  // namespace codestore::db

// The PostgreSQL backend of db::Connection (db/connection.h), over libpq: a store named by a
// URI `postgresql://[user[:password]@][host][:port]/dbname[?param=value...]` (libpq's own
// syntax: `?host=/run/postgresql` names a Unix socket directory) lives in that database, in
// the same schema as a SQLite file, written in PostgreSQL's dialect
// (migrations/postgresql/NNNN_*.sql, one twin of each migrations/NNNN_*.sql).
//
// What the backend does for the store's SQL (written for SQLite, docs/store.md "Backends"):
// - `?` and `?N` parameters become `$N` (SQLite's numbering: `?` is one more than the
//   highest number so far); text and integers go as text and the server infers their type
//   from the statement, blobs go as binary bytea.
// - Statements are prepared on the server at their first execution and kept while the
//   Statement lives (the store caches its statements per connection).
// - Results come as text: integers parse, booleans read 1/0 ('t'/'f'), bytea is decoded.
// - last_insert_id() is lastval(): the identity column the last INSERT filled.
// - begin(kWrite) is a READ COMMITTED transaction holding a transaction-level advisory lock
//   (kWriteLockKey) for its whole life: the store's writers run one at a time, as SQLite's
//   BEGIN IMMEDIATE makes them, on every host. This is the simplest correct choice: the
//   store's write logic reads then writes (the next version is high_water + 1) and was written
//   for one writer at a time; SERIALIZABLE would instead fail one of two importers at commit
//   and need every Store call to be retried from its start. Under READ COMMITTED each
//   statement after the lock sees every write committed before it, so two importers of one
//   module on two hosts get versions n and n + 1. kRead is REPEATABLE READ: one snapshot.
//
// Errors are thrown as db::StatusError: SQLSTATE mapped by code_of_sqlstate, and the
// message keeps the SQLSTATE and names the server ("socket /tmp/x/.s.PGSQL.5432").
//
// Thread safety: as db::Connection (one thread at a time); the free functions are stateless.
#pragma once

#include <codestore/status.h>
#include <codestore/store_options.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "db/connection.h"

namespace codestore::db {

// The advisory lock (pg_advisory_xact_lock) every write transaction and migration step
// holds: "CdStWrit".
inline constexpr std::int64_t kWriteLockKey = 0x4364537457726974;

// True for a location libpq reads as a PostgreSQL URI ("postgresql://", "postgres://").
bool is_postgresql_uri(std::string_view location);

// The URI with its password (user:PASSWORD@ or ?password=) replaced by "***": what messages,
// Store::path() and logs show.
std::string redact_uri(std::string_view uri);

// Our code for a PostgreSQL SQLSTATE: lock and serialization failures (55P03, 40001, 40P01)
// kBusy; a read-only transaction or missing privilege (25006, 42501, class 28)
// kPermissionDenied; data corrupted (XX001, XX002) kCorruption; constraints (class 23)
// kFailedPrecondition; connection and system errors (08, 57P, 58, 53100) kIOError;
// resources and limits (53, 54) kLimitExceeded; an unknown database (3D000) kNotFound.
Code code_of_sqlstate(std::string_view sqlstate) noexcept;

// Connects to the database `uri` names and brings its schema to the newest migration, as
// open_sqlite does for a file (StoreOptions: read_only, create, busy_timeout_ms, on_busy,
// migrate; snapshot is a SQLite file's and refused here; backup_before_migrate is the
// operator's pg_dump). Throws db::StatusError: kInvalidArgument for a malformed URI,
// kPermissionDenied for refused credentials, kNotFound for a missing database (or, with
// create = false, a database without our schema), kIOError for a server that cannot be
// reached (naming host or socket), the refusals of the migration runner (a newer schema:
// kNotSupported).
std::unique_ptr<Connection> open_postgresql(const std::string& uri, const StoreOptions& options);

}  // namespace codestore::db

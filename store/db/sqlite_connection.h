// The SQLite backend of db::Connection (db/connection.h): one SQLiteCpp connection in WAL
// mode, prepared statements, the busy handler that asks StoreOptions::on_busy, and the open
// rules for read-only and snapshot use (docs/store.md).
//
// Thread safety: as db::Connection (one thread at a time).
#pragma once

#include <codestore/store_options.h>

#include <memory>
#include <string>

#include "db/connection.h"

namespace codestore::db {

// Opens (or creates) the database in `path` and brings its schema to the newest migration.
// Throws (db::StatusError or SQLite::Exception; db::guard turns them into a Status):
// kNotFound for a missing file that may not be created, the refusals of db::migrate, and
// kFailedPrecondition for a read-only open that would create files another user then owns.
std::unique_ptr<Connection> open_sqlite(const std::string& path, const StoreOptions& options);

}  // namespace codestore::db

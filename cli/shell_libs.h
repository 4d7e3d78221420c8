// The store libs `codestore shell` offers as `lib:NAME` path entries: those of the database
// every command uses (--db, else $CODESTORE_DB, else ./codestore.db).
#pragma once

#include <codestore/code_server.h>
#include <codestore/status.h>

#include <memory>
#include <string>

#include "cli.h"

namespace codestore::cli {

struct ShellLibs {
  std::shared_ptr<loader::LibSource> libs;  // nullptr when there is no database
  std::string missing;                      // then: why, naming the path looked at
};

// The database as a LibSource. A database named by --db must exist (rehearsing against a
// store that does not exist is a mistake); the default one ($CODESTORE_DB or
// ./codestore.db) may be absent, for a shell over plain directories: `missing` says so.
// An existing database that does not open is an error.
Result<ShellLibs> open_shell_libs(const Context& ctx);

}  // namespace codestore::cli

// The store libs `codestore shell` offers as `lib:NAME` path entries (with --db).
#pragma once

#include <codestore/code_server.h>
#include <codestore/status.h>

#include <memory>

#include "cli.h"

namespace codestore::cli {

// The store named by --db as a LibSource; nullptr without --db (no lib: entries then).
Result<std::shared_ptr<loader::LibSource>> open_shell_libs(const Context& ctx);

}  // namespace codestore::cli

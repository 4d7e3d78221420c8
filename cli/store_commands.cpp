#include "cli.h"

#include <CLI/CLI.hpp>

namespace codestore::cli {

// Not built yet: the issue that brings these commands fills this in.
void add_store_commands(CLI::App& /*app*/, Context& /*ctx*/) {}

}  // namespace codestore::cli

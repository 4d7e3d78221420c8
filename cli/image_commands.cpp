#include "cli.h"

#include <CLI/CLI.hpp>

namespace codestore::cli {

// Not built yet: filled in by the image commands.
void add_image_commands(CLI::App& /*app*/, Context& /*ctx*/) {}

}  // namespace codestore::cli

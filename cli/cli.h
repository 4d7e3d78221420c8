// The `codestore` command line: a thin frame over the library. main() calls run(); tests
// call it too, with their own streams.
//
// Conventions (README.md): data to `out`, diagnostics to `err`; `--json` prints one
// JSON document (one object per line for commands over many inputs); exit 0 success,
// 1 operational error, 2 usage error, 3 a check found what it looks for.
//
// Thread safety: run() uses only its arguments and the process environment; concurrent
// calls with distinct streams are safe.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace codestore::cli {

enum ExitCode : int { kExitOk = 0, kExitError = 1, kExitUsage = 2, kExitFound = 3 };

// What every command sees: the global options, the streams, and where it leaves its exit
// code.
struct Context {
  bool json = false;
  std::string db_option;  // --db as given ("" when absent)
  std::string wait_option;  // --wait SECONDS as given ("" when absent: the store's busy timeout)
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  int exit_code = kExitOk;

  // --db, else $CODESTORE_DB, else ./codestore.db.
  std::string db_path() const;
  // True when `out` is the process's stdout and that is a terminal (progress lines).
  bool out_is_terminal() const;
};

// Each group adds its subcommands to the app; their callbacks report through `ctx`.
void add_image_commands(CLI::App& app, Context& ctx);
void add_store_commands(CLI::App& app, Context& ctx);
void add_shell_command(CLI::App& app, Context& ctx);
void add_serve_command(CLI::App& app, Context& ctx);

// Runs one command line (args excludes the program name) and returns the exit code.
int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace codestore::cli

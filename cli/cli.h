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

#include <codestore/status.h>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace codestore::cli {

enum ExitCode : int { kExitOk = 0, kExitError = 1, kExitUsage = 2, kExitFound = 3 };

// What every command sees: the global options, the streams, and where it leaves its exit
// code.
struct Context {
  bool json = false;
  // --snapshot: read the database file as it is, without locks and without its -wal
  // (SQLite's immutable=1). Safe only while no process writes; reading commands only.
  bool snapshot = false;
  std::string db_option;            // --db as given ("" when absent)
  std::string wait_option;          // --wait SECONDS as given ("" when absent: the store's busy timeout)
  std::string channel = "default";  // --channel NAME: the channel store commands work in
  bool channel_given = false;       // --channel was given (import of a release deploys it there)
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  int exit_code = kExitOk;

  // --db, else $CODESTORE_DB, else ./codestore.db.
  std::string db_path() const;
  // True when `out` is the process's stdout and that is a terminal (progress lines).
  bool out_is_terminal() const;
};

// Errors, for every command: a line on `err` ("codestore: ..."); with --json also one
// {"error": {"kind", "message"}} object on `out` (kind: the Status code name, or "usage").
// The exit code becomes at least 1 (report_error) or 2 (report_usage).
void report_error(Context& ctx, const Status& status);
void report_usage(Context& ctx, std::string_view message);

// Option checks whose message says what is allowed ("--keep must be at least 1, not 0"):
// integers only, checked before CLI11 converts them.
CLI::Validator at_least(std::int64_t min);
CLI::Validator in_range(std::int64_t min, std::int64_t max);

// Each group adds its subcommands to the app; their callbacks report through `ctx`.
void add_image_commands(CLI::App& app, Context& ctx);
void add_store_commands(CLI::App& app, Context& ctx);
// After add_store_commands: it adds `release export` to that group (release_commands.cpp).
void add_release_commands(CLI::App& app, Context& ctx);
void add_shell_command(CLI::App& app, Context& ctx);
void add_serve_command(CLI::App& app, Context& ctx);
void add_channel_commands(CLI::App& app, Context& ctx);
// `plan`: the upgrade plan between two releases or two generations (plan_command.cpp).
void add_plan_command(CLI::App& app, Context& ctx);

// The application with every command, its callbacks reporting through `ctx` (tests walk
// it to check that every option and positional is described).
std::unique_ptr<CLI::App> make_app(Context& ctx);

// Runs one command line (args excludes the program name) and returns the exit code.
int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace codestore::cli

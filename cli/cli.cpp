#include "cli.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

namespace codestore::cli {

std::string Context::db_path() const {
  if (!db_option.empty()) return db_option;
  if (const char* env = std::getenv("CODESTORE_DB"); env != nullptr && *env != '\0') return env;
  return "./codestore.db";
}

bool Context::out_is_terminal() const { return out == &std::cout && ::isatty(STDOUT_FILENO) == 1; }

int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  Context ctx;
  ctx.in = &in;
  ctx.out = &out;
  ctx.err = &err;

  CLI::App app{"codestore: versioned module images in SQLite, loaded as Erlang's code server does",
               "codestore"};
  app.set_help_all_flag("--help-all", "Every command's help");
  app.add_flag("--json", ctx.json, "Print JSON (one document; one object per line for many inputs)");
  app.add_option("--db", ctx.db_option, "Database file (default: $CODESTORE_DB, else ./codestore.db)");
  app.add_option("--wait", ctx.wait_option,
                 "Seconds to wait for another process's lock on the database (default 5; a number from 0)");
  app.require_subcommand(1);
  app.fallthrough();

  add_image_commands(app, ctx);
  add_store_commands(app, ctx);
  add_shell_command(app, ctx);
  add_serve_command(app, ctx);

  // CLI11 parses a reversed argv-style vector.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace codestore::cli

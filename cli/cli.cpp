#include "cli.h"

#include <codestore/store.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "json_util.h"

namespace codestore::cli {

std::string Context::db_path() const {
  if (!db_option.empty()) return db_option;
  if (const char* env = std::getenv("CODESTORE_DB"); env != nullptr && *env != '\0') return env;
  return "./codestore.db";
}

bool Context::out_is_terminal() const {
  return out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
}

namespace {

void print_error(Context& ctx, std::string_view kind, std::string_view text, std::string_view message,
                 int code) {
  *ctx.err << "codestore: " << text << "\n";
  if (ctx.json) {
    // A kind is a key for programs: "not found" becomes "not_found".
    std::string key(kind);
    std::replace(key.begin(), key.end(), ' ', '_');
    nlohmann::ordered_json j;
    j["error"] = {{"kind", key}, {"message", text_to_json_string(message)}};
    *ctx.out << j.dump() << "\n";
  }
  ctx.exit_code = std::max(ctx.exit_code, code);
}

std::optional<std::int64_t> parse_integer(const std::string& s) {
  std::int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end) return std::nullopt;
  return v;
}

CLI::Validator integer_range(std::int64_t min, std::optional<std::int64_t> max) {
  std::string allowed = max ? fmt::format("from {} to {}", min, *max) : fmt::format("at least {}", min);
  return CLI::Validator(
      [min, max, allowed](std::string& s) -> std::string {
        const auto v = parse_integer(s);
        if (!v) return fmt::format("must be an integer {}, not '{}'", allowed, s);
        if (*v < min || (max && *v > *max)) return fmt::format("must be {}, not {}", allowed, s);
        return "";
      },
      allowed);
}

// Where a command is expected, the first word that is none: "bogus" for `codestore bogus`,
// "release bogus" for `codestore release bogus`. Options (and the values of those that
// take one) are skipped, as CLI11 would take them.
std::optional<std::string> unknown_command(CLI::App& app, const std::vector<std::string>& args) {
  CLI::App* cur = &app;
  std::string path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return std::nullopt;
    if (a.size() > 1 && a[0] == '-') {
      if (a.find('=') != std::string::npos) continue;
      for (CLI::App* p = cur; p != nullptr; p = p->get_parent()) {
        if (const CLI::Option* o = p->get_option_no_throw(a)) {
          if (o->get_items_expected_min() > 0) ++i;
          break;
        }
      }
      continue;
    }
    const auto subs = cur->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) return std::nullopt;  // a command's own arguments
    const auto it =
        std::find_if(subs.begin(), subs.end(), [&](const CLI::App* s) { return s->check_name(a); });
    if (it == subs.end()) return path + a;
    path += a + " ";
    cur = const_cast<CLI::App*>(*it);
  }
  return std::nullopt;
}

// CLI11's message, said as ours: "--keep must be at least 1, not 0" (a validator's
// "--keep: must ..."), "unknown command bogus".
std::string usage_message(CLI::App& app, const std::vector<std::string>& args, const CLI::ParseError& e) {
  if (auto word = unknown_command(app, args))
    return fmt::format("unknown command {} (codestore --help lists them)", *word);
  std::string m = e.what();
  if (const auto at = m.find(": must be "); at != std::string::npos) m.erase(at, 1);
  if (m == "A subcommand is required") return "a command is required (codestore --help lists them)";
  return m;
}

bool asks_for_json(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "--json") return true;
  }
  return false;
}

}  // namespace

void report_error(Context& ctx, const Status& status) {
  print_error(ctx, code_name(status.code()), status.to_string(), status.message(), kExitError);
}

void report_usage(Context& ctx, std::string_view message) {
  print_error(ctx, "usage", fmt::format("usage: {}", message), message, kExitUsage);
}

CLI::Validator at_least(std::int64_t min) {
  return integer_range(min, std::nullopt);
}
CLI::Validator in_range(std::int64_t min, std::int64_t max) {
  return integer_range(min, max);
}

std::unique_ptr<CLI::App> make_app(Context& ctx) {
  auto app = std::make_unique<CLI::App>(
      "codestore: versioned module images in SQLite, loaded as Erlang's code server does", "codestore");
  app->set_help_all_flag("--help-all", "Every command's help");
  app->set_version_flag("--version", fmt::format("codestore {} (database schema version {})",
                                                 CODESTORE_VERSION, Store::schema_version()));
  app->add_flag("--json", ctx.json,
                "Print JSON (one document; one object per line for many inputs); errors too, as "
                "{\"error\": {\"kind\", \"message\"}}");
  app->add_option(
      "--db", ctx.db_option,
      "Database file (default: $CODESTORE_DB, else ./codestore.db). Only `init` creates one; every "
      "other command refuses a missing file");
  app->add_option(
         "--channel", ctx.channel,
         "The channel (a named active set that a group of nodes follows) the store commands work in: "
         "import, activate, rollback, ls, release create/rollback, serve... (default: default). A new "
         "channel is made by its first change and starts empty")
      ->each([&ctx](const std::string&) { ctx.channel_given = true; });
  app->add_option("--wait", ctx.wait_option,
                  "Seconds to wait for another process's lock on the database (default 5; a number from 0)");
  app->add_flag(
      "--snapshot", ctx.snapshot,
      "Read the database file as it is: no locks, its -wal not read, nothing written beside it "
      "(SQLite's immutable=1). Only while no process writes it (a copy, a backup, read-only media); "
      "reading commands only");
  app->require_subcommand(1);
  app->fallthrough();

  add_image_commands(*app, ctx);
  add_store_commands(*app, ctx);
  add_release_commands(*app, ctx);
  add_shell_command(*app, ctx);
  add_serve_command(*app, ctx);
  add_channel_commands(*app, ctx);
  add_plan_command(*app, ctx);

  // A snapshot is for the store's reading commands (they check it themselves, as they open
  // the store); these others would silently ignore it.
  app->parse_complete_callback([&ctx, a = app.get()] {
    if (!ctx.snapshot) return;
    for (const CLI::App* sub : a->get_subcommands()) {
      const std::string& name = sub->get_name();
      if (name == "image" || name == "shell" || name == "serve") {
        throw CLI::ValidationError(
            fmt::format("--snapshot is for the commands that read the store, not {}", name));
      }
    }
  });
  return app;
}

int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  Context ctx;
  ctx.in = &in;
  ctx.out = &out;
  ctx.err = &err;
  auto app = make_app(ctx);

  // CLI11 parses a reversed argv-style vector.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app->parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --help-all, --version
      app->exit(e, out, err);
      return kExitOk;
    }
    ctx.json = ctx.json || asks_for_json(args);
    report_usage(ctx, usage_message(*app, args, e));
    return kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace codestore::cli

// OTP's application and release files, read into typed values and checked as OTP checks
// them: the application resource file (`.app`), its check against the beams of its `ebin`,
// the release resource file (`.rel`), the boot script (`start.boot`) and the upgrade file
// (`.appup`). Pure parsing: nothing here opens a store; only check_app_dir and the read_*
// functions touch the file system. docs/otp-files.md describes the formats and the checks.
//
//   auto rel = codestore::otp::read_rel_file("releases/0.1.0/myrel.rel");
//   for (const auto& app : rel->applications) ...  // app.name, app.vsn, app.type
//
// Errors are values: kCorruption (kLimitExceeded for etf::consult's bounds, the file
// system's own codes for a file that cannot be read), the message naming the file first
// ("myrel.rel: ..."), and where Erlang has one, Erlang's reason (`bad_param`,
// `missing_param`, `badly_formatted_application`, `bad_rel_file`, `bad_rel_data`,
// `illegal_applications`, `missing_mandatory_app`, `mandatory_app`, `bad_script`).
//
// Thread safety: plain values and free functions; thread-safe.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::otp {

// --- .app ----------------------------------------------------------------------------

// {application, Name, [{Key, Value}]}. Types are checked as systools_make:
// parse_application/4 checks them (a value of the wrong type is `bad_param`); a key that
// systools requires but the file lacks is listed in `missing`, not refused, because the
// runtime (application_controller) loads such a file with defaults: the caller decides
// (a release built by systools, relx or mix never lacks one). The first entry of a key
// counts (lists:keysearch/3). Strings are UTF-8.
struct AppSpec {
  std::string name;                  // the application
  std::string vsn;                   // "" when missing
  std::string description;           // "" when absent
  std::string id;                    // "" when absent
  std::vector<std::string> modules;  // in file order, repeats kept
  std::vector<std::string> registered;
  std::vector<std::string> applications;  // to start first
  std::vector<std::string> included_applications;
  std::vector<std::string> optional_applications;  // OTP 24+
  std::optional<etf::Term> mod;                    // {Module, StartArgs}; none when absent or []
  std::optional<etf::Term> start_phases;           // [{Phase, Args}]; none when absent or undefined
  etf::Term env;                                   // [{Par, Val}]; [] when absent
  std::optional<std::int64_t> max_t, max_p;        // none: infinity
  std::vector<std::string> missing;                // required by systools, absent: vsn, description,
                                                   // modules, registered, applications
  etf::Term term;                                  // the term as read
};

// The checks on one term; `source` names it in errors ("x/ebin/x.app").
Result<AppSpec> parse_app(const etf::Term& term, std::string_view source);
// A `.app` file: exactly one term (application_controller reads it so).
Result<AppSpec> read_app_file(const std::string& path);

// What check_app_modules found: errors stop systools:make_script; warnings do not.
struct AppIssue {
  enum class Severity { kError, kWarning };
  Severity severity;
  std::string kind;     // Erlang's name where it has one: module_not_found, duplicate_modules,
                        // bad_application_name; ours: module_not_listed
  std::string module;   // the module concerned, or "" (bad_application_name)
  std::string message;  // for people, naming the file and the module
};
struct AppCheck {
  std::vector<AppIssue> issues;  // errors first, each group in module order
  bool ok() const;               // no error (warnings allowed)
};

// The `.app` against the modules whose `.beam` files are in its ebin (`beams`: module names,
// without the extension), as systools_make:check_modules/3 does under its src_tests option
// (always here, every finding at once): a listed module without a
// beam is an error (module_not_found), a module listed twice an error (duplicate_modules),
// and `file_stem`, when given, the `.app` file's name without `.app`, must be the
// application's (bad_application_name). A beam the `.app` does not list is a warning
// (module_not_listed): systools does not look, a release's boot script never loads it, and
// an interactive node loads it only when it is called. `source` names the `.app` file.
AppCheck check_app_modules(const AppSpec& app, std::span<const std::string> beams, std::string_view source,
                           std::string_view file_stem = {});
// The same over a directory: the `*.beam` files of `ebin_dir` (not its subdirectories).
// Fails only when the directory cannot be listed.
Result<AppCheck> check_app_dir(const AppSpec& app, const std::string& ebin_dir, std::string_view source,
                               std::string_view file_stem = {});

// --- .rel ----------------------------------------------------------------------------

// One application of a release: {App, Vsn}, {App, Vsn, Type}, {App, Vsn, IncApps} or
// {App, Vsn, Type, IncApps} (mix writes {iex, "1.14.0", none}).
struct RelApp {
  std::string name;
  std::string vsn;
  std::string type = "permanent";  // permanent | transient | temporary | load | none
  // IncApps as the .rel gives them (they override the .app's included_applications);
  // none when the entry has no list.
  std::optional<std::vector<std::string>> included_applications;
};

// {release, {Name, Vsn}, {erts, EVsn}, [RelApp]}: exactly one term in the file
// (release_handler: bad_rel_file), of this shape (bad_rel_data), checked as
// systools_make:check_rel/1 (illegal_applications; kernel and stdlib present and permanent:
// missing_mandatory_app, mandatory_app). An application named twice is refused too (ours:
// one lib directory per application).
struct RelSpec {
  std::string name;
  std::string vsn;
  std::string erts_vsn;
  std::vector<RelApp> applications;  // in file order
  bool has_sasl = false;             // systools warns (missing_sasl) when false
  etf::Term term;
};

Result<RelSpec> parse_rel(std::span<const etf::Term> terms, std::string_view source);
Result<RelSpec> read_rel_file(const std::string& path);

// --- start.boot ------------------------------------------------------------------------

// A boot script: binary_to_term of {script, {Name, Vsn}, Instructions} (systools writes
// `start.boot` so, init reads it so). Enough of it to know which code a node boots with.
struct BootScript {
  std::string name;
  std::string vsn;
  // Each {path, [Dir]} in order, the directories as written ("$ROOT/lib/kernel-8.5.3/ebin").
  std::vector<std::vector<std::string>> paths;
  // Each {primLoad, [Module]} in order.
  std::vector<std::vector<std::string>> prim_loads;
  // The applications the script loads, in order: kernel from {kernelProcess,
  // application_controller, {application_controller, start, [{application, kernel, _}]}},
  // the others from {apply, {application, load, [{application, App, _}]}}.
  std::vector<std::string> applications;
  etf::TermList instructions;  // every instruction as read
};

// `bytes` is the file (etf::decode's bounds apply). Malformed scripts are `bad_script`.
Result<BootScript> parse_boot(std::span<const std::uint8_t> bytes, std::string_view source);
Result<BootScript> read_boot_file(const std::string& path);

// --- .appup ----------------------------------------------------------------------------

// One {Version, Instructions} of an .appup: Version is a string, or a binary holding a
// regular expression (OTP's own appups match earlier versions so).
struct AppupStep {
  std::string version;         // the string, or the regular expression's text
  bool is_regexp = false;      // Version was a binary
  etf::TermList instructions;  // as written: a parser, not a planner
};

// {Vsn, [{UpFromVsn, Instructions}], [{DownToVsn, Instructions}]}: exactly one term.
struct Appup {
  std::string vsn;
  std::vector<AppupStep> up;
  std::vector<AppupStep> down;
  etf::Term term;
};

Result<Appup> parse_appup(std::span<const etf::Term> terms, std::string_view source);
Result<Appup> read_appup_file(const std::string& path);

}  // namespace codestore::otp

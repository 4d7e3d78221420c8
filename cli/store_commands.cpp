// The store's commands: a thin frame over codestore::Store (include/codestore/store.h).
//
//   init                                   create the database (or check an existing one)
//   import PATH... [--lib L] [--note N] [--dry-run] [--bytes]
//                                          files and directories, all or nothing; a release
//                                          or applications (ebin/*.app, .ez) as such
//   ls [PATTERN...] [--lib L]              modules, active version, lib, version count
//   versions MODULE                        every stored version; marks the active one and
//                                          the one rollback returns to
//   show MODULE[@V]                        image info of a stored version
//   diff MODULE@V1 MODULE@V2               chunks that differ, exports added/removed
//   export MODULE[@V] -o FILE              the exact bytes imported
//   activate MODULE@V | rollback MODULE [--to V] | delete MODULE@V
//   release create|list|show|diff|delete|rollback   snapshots of the active set; list, show
//                                          and diff also take Erlang releases, NAME@VSN
//                                          (release_commands.cpp, with release export)
//   history [MODULE] | gc [--keep N] [--dry-run] | verify | stats | dict train | compact
//
// Every command takes --json (one JSON document; an error is {"error": {...}} too) and
// --wait SECONDS (for another process's lock). Only init creates a database. Errors go to
// stderr with exit 1; usage errors exit 2; verify exits 3 when it finds damage, diff when
// the versions differ; a Ctrl-C ends import, compact and dict train with exit 130, nothing
// written. MODULE@V: V is the text after the last '@' (see parse_ref).
#include <codestore/image.h>
#include <codestore/store.h>
#include <codestore/term.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "glob.h"
#include "json_util.h"
#include "store_cli.h"

namespace codestore::cli {
namespace {

using Json = nlohmann::ordered_json;

void fail(Context& ctx, int code) {
  ctx.exit_code = std::max(ctx.exit_code, code);
}

void report(Context& ctx, const Status& s) {
  report_error(ctx, s);
}

void usage(Context& ctx, const std::string& message) {
  report_usage(ctx, message);
}

// A version number as the user writes it: a whole number from 1 (0 is "none" inside the
// store; a sign, a fraction or more than 18 digits is not a version).
std::optional<std::int64_t> parse_version(std::string_view text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const std::int64_t v = std::stoll(std::string(text));
  if (v < 1) return std::nullopt;
  return v;
}

constexpr std::string_view kVersionRule = "versions are whole numbers from 1";

// MODULE[@V]. The text after the last '@' is the version; without an '@', or with nothing
// after the last one, the reference names the active version. Atoms may contain '@'
// themselves, so a module named a@b is written `a@b@` (its active version) or `a@b@3`.
struct ModuleRef {
  std::string module;
  std::int64_t version = 0;  // 0: none named (the active version)
  std::string error;         // why the reference is malformed, for a usage error ("" when sound)
};
constexpr const char* kRefHelp =
    "A module and version, MODULE@V (V a whole number from 1; without @V the active version). A module whose "
    "name "
    "contains '@' is written NAME@ (its active version) or NAME@V";
ModuleRef parse_ref(const std::string& s) {
  const auto at = s.rfind('@');
  if (at == std::string::npos) return {s, 0, ""};
  ModuleRef r{s.substr(0, at), 0, ""};
  const std::string_view tail = std::string_view(s).substr(at + 1);
  if (r.module.empty()) {
    r.error = fmt::format(
        "{}: no module name before '@' (MODULE@V; a module whose name starts with '@' is written {}@)", s, s);
  } else if (tail.empty()) {
    // NAME@: the active version of NAME.
  } else if (auto v = parse_version(tail)) {
    r.version = *v;
  } else if (std::all_of(tail.begin(), tail.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
             tail.size() <= 18) {
    r.error = fmt::format("{}: there is no version {}: {}", s, tail, kVersionRule);  // 0, 00
  } else {
    r.error = fmt::format(
        "{}: {} is not a version: {} (a module whose name contains '@' is written {}@ for its active "
        "version, or {}@V)",
        s, tail, kVersionRule, s, s);
  }
  // Callers that only check `version` (0) still refuse a malformed reference.
  if (!r.error.empty()) r.version = 0;
  return r;
}

}  // namespace

// Shared with the other store command groups (store_cli.h).
std::string when(std::int64_t t) {
  if (t == 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string human_bytes(std::uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1024 * 1024));
}

double ratio(std::uint64_t stored, std::uint64_t raw) {
  return raw == 0 ? 0.0 : static_cast<double>(stored) / static_cast<double>(raw);
}

// Aligned columns, by the width a terminal gives each cell (UTF-8 module names, wide
// characters); the last column is not padded.
void table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], display_width(r[i]));
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - display_width(r[i]) + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string version_text(std::int64_t v) {
  return v == 0 ? "-" : std::to_string(v);
}

// "None" is null in JSON, whatever the text output shows for it ("-", nothing): version 0,
// an empty lib, note, vsn or reason.
Json version_or_null(std::int64_t v) {
  return v == 0 ? Json(nullptr) : Json(v);
}
Json text_or_null(const std::string& s) {
  return s.empty() ? Json(nullptr) : Json(text_to_json_string(s));
}

namespace {

Json version_json(const ModuleVersion& v) {
  Json j;
  j["module"] = text_to_json_string(v.module);
  j["version"] = v.version;
  j["lib"] = text_or_null(v.lib);
  j["active"] = v.active;
  j["rollback_target"] = v.rollback_target;
  j["md5"] = v.md5;
  j["vsn"] = text_or_null(v.vsn);
  j["sha256"] = v.sha256;
  j["raw_size"] = v.raw_size;
  j["stored_size"] = v.stored_size;
  j["origin"] = text_or_null(v.origin);
  j["note"] = text_or_null(v.note);
  j["warning"] = text_or_null(v.warning);
  j["imported_at"] = v.imported_at;
  j["active_since"] = v.active ? Json(v.active_since) : Json(nullptr);
  return j;
}

Json activation_json(const Activation& a) {
  return Json{{"module", text_to_json_string(a.module)},
              {"from", version_or_null(a.from_version)},
              {"to", version_or_null(a.to_version)}};
}

void print_activation(Context& ctx, const Activation& a, std::string_view verb) {
  if (ctx.json) {
    *ctx.out << activation_json(a).dump() << "\n";
  } else if (a.from_version == a.to_version) {
    *ctx.out << fmt::format("{}: version {} is already active\n", a.module, version_text(a.to_version));
  } else {
    *ctx.out << fmt::format("{} {}: {} -> {}\n", verb, a.module, version_text(a.from_version),
                            version_text(a.to_version));
  }
}

// --- long work: Ctrl-C, progress, --wait ---------------------------------------------------

// Ends a command that a Ctrl-C stopped (the shells' 128 + SIGINT).
constexpr int kExitInterrupted = 128 + SIGINT;

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) {
  g_interrupted = 1;
  static const char kMessage[] =
      "\ncodestore: interrupted: stopping, nothing will be written (Ctrl-C again to stop at once)\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

// While long work runs: the first SIGINT asks it to stop between items (its transaction is
// rolled back, so nothing is half-written) and says so at once; a second one ends the
// process as usual (SA_RESETHAND), which SQLite's journal survives too.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_RESTART;  // a worker blocked in read() or open() goes on
    installed_ = ::sigaction(SIGINT, &sa, &old_) == 0;
  }
  ~InterruptScope() {
    if (installed_) ::sigaction(SIGINT, &old_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  static bool interrupted() { return g_interrupted != 0; }
  static std::function<bool()> check() {
    return [] { return interrupted(); };
  }

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

// Reports an error of long work: a Ctrl-C's kCancelled (or a lock wait it ended) as
// "interrupted" (exit 130); a lock not granted in time with the option that waits longer.
void report_work(Context& ctx, const Status& s) {
  if (s.code() == Code::kCancelled || InterruptScope::interrupted()) {
    report(ctx, Status(Code::kCancelled,
                       (s.code() == Code::kCancelled ? s.message() : "interrupted: nothing written") +
                           std::string(" (its transaction was rolled back)")));
    return fail(ctx, kExitInterrupted);
  }
  if (s.code() == Code::kBusy) {
    return report(ctx, Status(Code::kBusy, s.message() + "; another process is writing the database, and "
                                                         "--wait SECONDS waits longer for it"));
  }
  report(ctx, s);
}

// The terminal's width in columns: the window's (TIOCGWINSZ), else $COLUMNS, else 80.
std::size_t terminal_width() {
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS"); c != nullptr) {
    const long n = std::strtol(c, nullptr, 10);
    if (n > 0 && n < 10000) return static_cast<std::size_t>(n);
  }
  return 80;
}

// Rewrites the progress line in place, cut to the terminal's width less one column (a line
// that fills the last column wraps on some terminals, and "\r" then rewrites only the
// wrapped part). Counts characters, not bytes: UTF-8 file names are cut between characters.
void progress_line(Context& ctx, const std::string& text) {
  const std::size_t width = terminal_width();
  const std::size_t room = width > 1 ? width - 1 : 1;
  std::size_t chars = 0, end = 0;
  for (; end < text.size(); ++end) {
    const auto c = static_cast<unsigned char>(text[end]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: part of the character before
    if (chars == room) break;
    ++chars;
  }
  *ctx.out << "\r\x1b[K" << text.substr(0, end) << std::flush;
}
void progress_done(Context& ctx) {
  *ctx.out << "\r\x1b[K" << std::flush;
}

// On a terminal (and not --json), sets `progress` to draw "<what> done/total" every 16
// items; says whether it did, so that the caller clears the line after.
bool show_progress(Context& ctx, std::function<void(std::size_t, std::size_t)>& progress,
                   std::string_view what) {
  if (!ctx.out_is_terminal() || ctx.json) return false;
  progress = [&ctx, what](std::size_t done, std::size_t total) {
    if (done % 16 == 0 || done == total) progress_line(ctx, fmt::format("{} {}/{}", what, done, total));
  };
  return true;
}

// --wait SECONDS as milliseconds; nullopt when it is not a number of seconds from 0.
std::optional<int> parse_wait(const std::string& text) {
  char* end = nullptr;
  const double seconds = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(seconds >= 0)) return std::nullopt;
  return static_cast<int>(std::min(seconds * 1000.0, static_cast<double>(INT_MAX)));
}
}  // namespace

// Opens the store for a command; reports and returns null on failure. Only `init` creates
// a database: a mistyped --db must not quietly become a new, empty store. --snapshot opens
// the file as it is, for reading commands only. It waits --wait seconds for another
// process's lock (without it, the store's default 5 s); a writer tells the user once that it
// waits, and stops waiting at a Ctrl-C.
std::unique_ptr<Store> open_store(Context& ctx, bool write, bool create) {
  if (ctx.snapshot && write) {
    usage(ctx, "--snapshot is for the commands that read the store; this one writes");
    return nullptr;
  }
  StoreOptions o;
  o.create = create;
  o.channel = ctx.channel;
  o.read_only = !write;
  o.snapshot = ctx.snapshot;
  if (!ctx.wait_option.empty()) {
    const auto ms = parse_wait(ctx.wait_option);
    if (!ms) {
      usage(ctx, fmt::format("--wait {}: a number of seconds from 0", ctx.wait_option));
      return nullptr;
    }
    o.busy_timeout_ms = *ms;
  }
  if (write) {
    o.on_busy = [&ctx, told = false, seconds = o.busy_timeout_ms / 1000.0](int) mutable {
      if (!told) {
        *ctx.err << fmt::format(
                        "codestore: waiting up to {:g} s for another writer's lock on {} (--wait SECONDS)\n",
                        seconds, ctx.db_path())
                 << std::flush;
        told = true;
      }
      return !InterruptScope::interrupted();
    };
  }
  auto s = Store::open(ctx.db_path(), o);
  if (!s) {
    if (s.error().code() == Code::kNotFound && !create) {
      const std::string init =
          ctx.db_option.empty() ? "codestore init" : "codestore --db " + ctx.db_option + " init";
      report(ctx, Status(Code::kNotFound, fmt::format("{} (`{}` creates one)", s.error().message(), init)));
    } else {
      report(ctx, s.error());
    }
    return nullptr;
  }
  return std::move(*s);
}

namespace {

// --- commands ----------------------------------------------------------------------------

void cmd_init(Context& ctx) {
  auto store = open_store(ctx, true, true);
  if (!store) return;
  if (ctx.json) {
    *ctx.out << Json{{"db", ctx.db_path()}, {"schema_version", Store::schema_version()}}.dump() << "\n";
  } else {
    *ctx.out << fmt::format("{}: codestore database, schema version {}\n", ctx.db_path(),
                            Store::schema_version());
  }
}

struct ImportArgs {
  std::vector<std::string> paths;
  std::string lib, note;
  bool dry_run = false, bytes = false;
};

// The summary of an import: which modules changed (and from which file), which files were
// shadowed by a higher application version, which left their lib; the ratio counts the new
// bytes only.
void print_import(Context& ctx, const ImportArgs& a, const ImportSummary& r) {
  const double rt = ratio(r.bytes_stored, r.bytes_new);
  if (ctx.json) {
    Json items = Json::array();
    Json changed = Json::array();
    for (const auto& i : r.items) {
      items.push_back({{"file", text_to_json_string(i.file)},
                       {"module", text_to_json_string(i.module)},
                       {"version", i.version},
                       {"previous", version_or_null(i.previous)},
                       {"unchanged", i.unchanged},
                       {"new_blob", i.new_blob},
                       {"repaired", i.repaired},
                       {"lib", text_or_null(i.lib)},
                       {"lib_left", text_or_null(i.lib_left)},
                       {"shadowed_by", text_or_null(i.shadowed_by)},
                       {"warning", text_or_null(i.warning)},
                       {"raw_size", i.raw_size},
                       {"stored_size", i.stored_size}});
      if (!i.unchanged) {
        changed.push_back({{"module", text_to_json_string(i.module)},
                           {"from", version_or_null(i.previous)},
                           {"to", i.version},
                           {"file", text_to_json_string(i.file)}});
      }
    }
    Json warnings = Json::array();
    for (const auto& w : r.warnings) warnings.push_back(text_to_json_string(w));
    *ctx.out << Json{{"dry_run", a.dry_run},
                     {"files", r.files},
                     {"new_versions", r.new_versions},
                     {"unchanged", r.unchanged},
                     {"repaired", r.repaired},
                     {"bytes_in", r.bytes_in},
                     {"bytes_new", r.bytes_new},
                     {"bytes_stored", r.bytes_stored},
                     {"ratio", rt},
                     {"changed", changed},
                     {"warnings", warnings},
                     {"items", items}}
                    .dump()
             << "\n";
    return;
  }
  for (const auto& w : r.warnings) *ctx.err << fmt::format("codestore: warning: {}\n", w);
  for (const auto& i : r.items) {
    if (!i.warning.empty()) *ctx.err << fmt::format("codestore: warning: {}: {}\n", i.file, i.warning);
    if (!i.lib_left.empty()) {
      *ctx.err << fmt::format(
          "codestore: WARNING: {} leaves lib {} for lib \"\": {} is not under <app>/ebin/, and the code "
          "server's "
          "lib: entries and `serve` look for it in lib {}; import it with --lib {} to keep it there\n",
          i.module, i.lib_left, i.file, i.lib_left, i.lib_left);
    }
  }
  const std::string dry = a.dry_run ? " (dry run)" : "";
  for (const auto& i : r.items) {
    if (i.repaired)
      *ctx.out << fmt::format("{}: repaired its damaged stored copy from {}{}\n", i.module, i.file, dry);
    if (i.unchanged) {
      if (r.files == 1) {
        *ctx.out << fmt::format("{}: unchanged ({} the active version {})\n", i.module,
                                a.bytes ? "the same bytes as" : "the same code as", i.version);
      }
      continue;
    }
    *ctx.out << fmt::format("{}: {} -> {}{}  {}\n", i.module, version_text(i.previous), i.version, dry,
                            i.file);
    if (!i.shadowed_by.empty()) {
      *ctx.out << fmt::format("  shadowed: {} is active instead (a higher application version)\n",
                              i.shadowed_by);
    }
  }
  *ctx.out << fmt::format(
      "{}files {}, new versions {}, unchanged {}{}, bytes in {}, new bytes {}, stored {}, ratio {:.3f}\n",
      a.dry_run ? "dry run: " : "", r.files, r.new_versions, r.unchanged,
      r.repaired == 0 ? "" : fmt::format(", repaired {}", r.repaired), r.bytes_in, r.bytes_new,
      r.bytes_stored, rt);
}

void cmd_import(Context& ctx, const ImportArgs& a) {
  // A release is one unit, and so are applications (directories with ebin/*.app, .ez
  // archives): their files, all or nothing, as application versions (docs/model.md).
  if (a.lib.empty() && !a.bytes &&
      (import_app_paths(ctx, a.paths, a.note, a.dry_run) ||
       (a.paths.size() == 1 && import_release_path(ctx, a.paths.front(), a.note, a.dry_run))))
    return;
  InterruptScope interrupt;
  auto store = open_store(ctx, true);
  if (!store) return;
  // The files first (the planner shared with every importer), then the store's transaction.
  auto plan = plan_import(a.paths, InterruptScope::check());
  if (!plan)
    return report_work(ctx, plan.error().with_context(fmt::format("store {}: import", store->path())));
  ImportOptions o;
  o.lib = a.lib;
  o.note = a.note;
  o.dry_run = a.dry_run;
  o.bytes = a.bytes;
  o.interrupted = InterruptScope::check();
  const bool progress = ctx.out_is_terminal() && !ctx.json;
  if (progress) {
    o.progress = [&ctx](std::size_t done, std::size_t total, const std::string& file) {
      if (done % 16 == 0 || done == total) {
        progress_line(ctx, fmt::format("importing {}/{} {}", done, total,
                                       std::filesystem::path(file).filename().string()));
      }
    };
  }
  auto r = store->import_files(*plan, o);
  if (progress) progress_done(ctx);
  if (!r) return report_work(ctx, r.error());
  print_import(ctx, a, *r);
}

struct LsArgs {
  std::vector<std::string> patterns;
  std::string lib;
  bool by_lib = false;  // --lib given ("" selects the modules without a lib)
};

void cmd_ls(Context& ctx, const LsArgs& a) {
  std::vector<Glob> globs;
  for (const auto& p : a.patterns) {
    auto g = Glob::compile(p);
    if (!g) return usage(ctx, g.error().message());
    globs.push_back(std::move(*g));
  }
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->list();
  if (!r) return report(ctx, r.error());
  std::vector<ModuleSummary> rows;
  for (auto& m : *r) {
    const bool named = globs.empty() || std::any_of(globs.begin(), globs.end(),
                                                    [&](const Glob& g) { return g.matches(m.module); });
    if (named && (!a.by_lib || m.lib == a.lib)) rows.push_back(std::move(m));
  }
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& m : rows) {
      j.push_back({{"module", text_to_json_string(m.module)},
                   {"active", version_or_null(m.active_version)},
                   {"lib", text_or_null(m.lib)},
                   {"md5", text_or_null(m.md5)},
                   {"versions", m.versions},
                   {"latest", m.latest_version},
                   {"active_since", m.active_version == 0 ? Json(nullptr) : Json(m.active_since)}});
    }
    *ctx.out << Json{{"modules", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{{"MODULE", "ACTIVE", "LIB", "VERSIONS", "SINCE"}};
  for (const auto& m : rows) {
    t.push_back({m.module, version_text(m.active_version), m.lib.empty() ? "-" : m.lib,
                 std::to_string(m.versions), when(m.active_since)});
  }
  table(*ctx.out, t);
}

void cmd_versions(Context& ctx, const std::string& module) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->versions(module);
  if (!r) return report(ctx, r.error());
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& v : *r) j.push_back(version_json(v));
    *ctx.out << Json{{"module", text_to_json_string(module)}, {"versions", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{
      {"STATE", "VERSION", "LIB", "MD5", "SIZE", "STORED", "IMPORTED", "ORIGIN", "NOTE"}};
  for (const auto& v : *r) {
    t.push_back(
        {v.active            ? "active"
         : v.rollback_target ? "rollback-to"
                             : "",
         std::to_string(v.version), v.lib.empty() ? "-" : v.lib, v.md5, std::to_string(v.raw_size),
         std::to_string(v.stored_size), when(v.imported_at), v.origin,
         v.warning.empty() ? v.note : (v.note.empty() ? "" : v.note + "; ") + "warning: " + v.warning});
  }
  table(*ctx.out, t);
}

// Resolves a parsed MODULE[@V] to a version's metadata (the active one without a version).
Result<ModuleVersion> resolve(Store& store, const ModuleRef& r) {
  return r.version == 0 ? store.active_info(r.module) : store.version_info(r.module, r.version);
}

void cmd_show(Context& ctx, const std::string& ref) {
  const ModuleRef r = parse_ref(ref);
  if (!r.error.empty()) return usage(ctx, r.error);
  auto store = open_store(ctx, false);
  if (!store) return;
  auto v = resolve(*store, r);
  if (!v) return report(ctx, v.error());
  auto bytes = store->get(v->module, v->version);
  if (!bytes) return report(ctx, bytes.error());
  auto img =
      image::Image::parse(*bytes, image::Strictness::kLenient, fmt::format("{}@{}", v->module, v->version));
  if (!img) return report(ctx, img.error());
  auto exports = img->exports();
  auto imports = img->imports();
  if (ctx.json) {
    Json j = version_json(*v);
    j["gzipped"] = img->gzipped();
    j["exports"] = exports ? Json(exports->size()) : Json(nullptr);
    j["imports"] = imports ? Json(imports->size()) : Json(nullptr);
    Json chunks = Json::array();
    for (const auto& c : img->chunks())
      chunks.push_back({{"id", bytes_to_json_string(c.id_view())}, {"size", c.size}});
    j["chunks"] = chunks;
    *ctx.out << j.dump() << "\n";
    return;
  }
  table(*ctx.out, {{"module:", v->module},
                   {"version:", std::to_string(v->version) + (v->active ? " (active)" : "")},
                   {"lib:", v->lib.empty() ? "-" : v->lib},
                   {"md5:", v->md5},
                   {"vsn:", v->vsn},
                   {"sha256:", v->sha256},
                   {"size:", fmt::format("{} bytes{}, stored {} bytes", v->raw_size,
                                         img->gzipped() ? " (gzip)" : "", v->stored_size)},
                   {"exports:", exports ? std::to_string(exports->size()) : "-"},
                   {"imports:", imports ? std::to_string(imports->size()) : "-"},
                   {"origin:", v->origin},
                   {"imported:", when(v->imported_at)},
                   {"note:", v->note},
                   {"warning:", v->warning.empty() ? "-" : v->warning}});
  std::vector<std::vector<std::string>> t{{"CHUNK", "SIZE"}};
  for (const auto& c : img->chunks()) t.push_back({printable_bytes(c.id_view()), std::to_string(c.size)});
  table(*ctx.out, t);
}

void cmd_diff(Context& ctx, const std::string& a_ref, const std::string& b_ref) {
  const ModuleRef ra = parse_ref(a_ref), rb = parse_ref(b_ref);
  if (ra.version == 0 || rb.version == 0) return usage(ctx, "diff MODULE@V1 MODULE@V2");
  auto store = open_store(ctx, false);
  if (!store) return;
  std::vector<image::Image> imgs;
  for (const auto& r : {ra, rb}) {
    auto bytes = store->get(r.module, r.version);
    if (!bytes) return report(ctx, bytes.error());
    auto img =
        image::Image::parse(*bytes, image::Strictness::kLenient, fmt::format("{}@{}", r.module, r.version));
    if (!img) return report(ctx, img.error());
    imgs.push_back(std::move(*img));
  }
  // Chunks by id (the first of duplicates, as beam_lib): added, removed, differing.
  std::map<std::string, image::Bytes> ca, cb;
  for (const auto& c : imgs[0].chunks()) ca.emplace(std::string(c.id_view()), imgs[0].data(c));
  for (const auto& c : imgs[1].chunks()) cb.emplace(std::string(c.id_view()), imgs[1].data(c));
  std::vector<std::string> differ, only_a, only_b;
  for (const auto& [id, data] : ca) {
    auto it = cb.find(id);
    if (it == cb.end()) {
      only_a.push_back(id);
    } else if (!std::equal(data.begin(), data.end(), it->second.begin(), it->second.end())) {
      differ.push_back(id);
    }
  }
  for (const auto& [id, data] : cb) {
    if (!ca.count(id)) only_b.push_back(id);
  }
  auto names = [](const image::Image& img) {
    std::set<std::string> s;
    if (auto e = img.exports()) {
      for (const auto& f : *e) s.insert(fmt::format("{}/{}", f.name, f.arity));
    }
    return s;
  };
  const auto ea = names(imgs[0]), eb = names(imgs[1]);
  std::vector<std::string> added, removed;
  std::set_difference(eb.begin(), eb.end(), ea.begin(), ea.end(), std::back_inserter(added));
  std::set_difference(ea.begin(), ea.end(), eb.begin(), eb.end(), std::back_inserter(removed));
  const auto md5a = imgs[0].md5(), md5b = imgs[1].md5();
  const bool same_md5 = md5a && md5b && *md5a == *md5b;
  // As `image cmp` (and diff(1)): exit 3 when the versions differ.
  if (!same_md5 || !differ.empty() || !only_a.empty() || !only_b.empty() || !added.empty() ||
      !removed.empty()) {
    fail(ctx, kExitFound);
  }
  if (ctx.json) {
    auto ids = [](const std::vector<std::string>& v) {
      Json j = Json::array();
      for (const auto& s : v) j.push_back(bytes_to_json_string(s));
      return j;
    };
    auto texts = [](const std::vector<std::string>& v) {
      Json j = Json::array();
      for (const auto& s : v) j.push_back(text_to_json_string(s));
      return j;
    };
    *ctx.out << Json{{"a", a_ref},
                     {"b", b_ref},
                     {"same_md5", same_md5},
                     {"chunks_differ", ids(differ)},
                     {"chunks_only_in_a", ids(only_a)},
                     {"chunks_only_in_b", ids(only_b)},
                     {"exports_added", texts(added)},
                     {"exports_removed", texts(removed)}}
                    .dump()
             << "\n";
    return;
  }
  auto join = [](const std::vector<std::string>& v, bool ids) {
    if (v.empty()) return std::string("-");
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + (ids ? printable_bytes(x) : x);
    return s;
  };
  table(*ctx.out, {{"md5:", same_md5 ? "same" : "different"},
                   {"chunks that differ:", join(differ, true)},
                   {"chunks only in " + a_ref + ":", join(only_a, true)},
                   {"chunks only in " + b_ref + ":", join(only_b, true)},
                   {"exports added:", join(added, false)},
                   {"exports removed:", join(removed, false)}});
}

void cmd_export(Context& ctx, const std::string& ref, const std::string& output) {
  const ModuleRef r = parse_ref(ref);
  if (!r.error.empty()) return usage(ctx, r.error);
  auto store = open_store(ctx, false);
  if (!store) return;
  auto v = resolve(*store, r);
  if (!v) return report(ctx, v.error());
  auto bytes = store->get(v->module, v->version, /*verify_sha256=*/true);
  if (!bytes) return report(ctx, bytes.error());
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return report(ctx, Status(Code::kIOError, output + ": cannot write"));
  if (ctx.json) {
    *ctx.out << Json{{"module", text_to_json_string(v->module)},
                     {"version", v->version},
                     {"file", output},
                     {"size", bytes->size()}}
                    .dump()
             << "\n";
  } else {
    *ctx.out << fmt::format("{}@{} -> {} ({} bytes)\n", v->module, v->version, output, bytes->size());
  }
}

void cmd_activate(Context& ctx, const std::string& ref, const std::string& reason) {
  const ModuleRef r = parse_ref(ref);
  if (!r.error.empty()) return usage(ctx, r.error);
  if (r.version == 0)
    return usage(ctx, fmt::format("activate MODULE@V: name the version ({})", kVersionRule));
  auto store = open_store(ctx, true);
  if (!store) return;
  auto a = store->activate(r.module, r.version, Reason(reason));
  if (!a) return report(ctx, a.error());
  print_activation(ctx, *a, "activated");
}

void cmd_rollback(Context& ctx, const std::string& module, std::int64_t to, const std::string& reason) {
  auto store = open_store(ctx, true);
  if (!store) return;
  auto a = to == 0 ? store->rollback(module, Reason(reason)) : store->rollback(module, to, Reason(reason));
  if (!a) return report(ctx, a.error());
  print_activation(ctx, *a, "rolled back");
}

void cmd_delete(Context& ctx, const std::string& ref, const std::string& reason) {
  const ModuleRef r = parse_ref(ref);
  if (!r.error.empty()) return usage(ctx, r.error);
  if (r.version == 0) return usage(ctx, fmt::format("delete MODULE@V: name the version ({})", kVersionRule));
  auto store = open_store(ctx, true);
  if (!store) return;
  if (Status s = store->delete_version(r.module, r.version, Reason(reason)); !s) return report(ctx, s);
  if (ctx.json) {
    *ctx.out
        << Json{{"module", text_to_json_string(r.module)}, {"version", r.version}, {"deleted", true}}.dump()
        << "\n";
  } else {
    *ctx.out << fmt::format("deleted {}@{}\n", r.module, r.version);
  }
}

Json release_json(const Release& r) {
  Json j{{"name", r.name},
         {"created_at", r.created_at},
         {"note", text_or_null(r.note)},
         {"modules", r.module_count},
         {"channel", r.channel},
         {"generation", r.generation}};
  if (!r.modules.empty()) {
    Json m = Json::array();
    for (const auto& e : r.modules) {
      m.push_back(
          {{"module", text_to_json_string(e.module)}, {"version", e.version}, {"lib", text_or_null(e.lib)}});
    }
    j["contents"] = m;
  }
  return j;
}

struct ReleaseArgs {
  std::string name, other, note;
};

void cmd_release(Context& ctx, const std::string& verb, const ReleaseArgs& a) {
  const bool write = verb == "create" || verb == "delete" || verb == "rollback";
  auto store = open_store(ctx, write);
  if (!store) return;
  // NAME@VSN names an Erlang release (release_commands.cpp).
  if (verb == "show" && show_erl_release(ctx, *store, a.name)) return;
  if (verb == "diff" && diff_erl_releases(ctx, *store, a.name, a.other)) return;
  if (verb == "create" || verb == "show") {
    auto r = verb == "create" ? store->release_create(a.name, Reason(a.note)) : store->release_show(a.name);
    if (!r) return report(ctx, r.error());
    if (ctx.json) {
      *ctx.out << release_json(*r).dump() << "\n";
    } else if (verb == "create") {
      *ctx.out << fmt::format("release {}: {} modules\n", r->name, r->module_count);
    } else {
      *ctx.out << fmt::format("release {} created {} ({} modules){}\n", r->name, when(r->created_at),
                              r->module_count, r->note.empty() ? "" : ": " + r->note);
      std::vector<std::vector<std::string>> t{{"MODULE", "VERSION", "LIB"}};
      for (const auto& e : r->modules)
        t.push_back({e.module, std::to_string(e.version), e.lib.empty() ? "-" : e.lib});
      table(*ctx.out, t);
    }
  } else if (verb == "list") {
    auto r = store->release_list();
    if (!r) return report(ctx, r.error());
    Json doc;
    if (ctx.json) {
      Json j = Json::array();
      for (const auto& x : *r) j.push_back(release_json(x));
      doc["releases"] = j;
    } else {
      std::vector<std::vector<std::string>> t{{"RELEASE", "CREATED", "MODULES", "NOTE"}};
      for (const auto& x : *r)
        t.push_back({x.name, when(x.created_at), std::to_string(x.module_count), x.note});
      table(*ctx.out, t);
    }
    if (!list_erl_releases(ctx, *store, doc)) return;
    if (ctx.json) *ctx.out << doc.dump() << "\n";
  } else if (verb == "diff") {
    auto d = store->release_diff(a.name, a.other);
    if (!d) return report(ctx, d.error());
    if (ctx.json) {
      auto entries = [](const std::vector<ReleaseEntry>& v) {
        Json j = Json::array();
        for (const auto& e : v)
          j.push_back({{"module", text_to_json_string(e.module)}, {"version", e.version}});
        return j;
      };
      Json changed = Json::array();
      for (const auto& c : d->changed)
        changed.push_back(
            {{"module", text_to_json_string(c.module)}, {"from", c.from_version}, {"to", c.to_version}});
      *ctx.out << Json{{"a", a.name},
                       {"b", a.other},
                       {"added", entries(d->added)},
                       {"removed", entries(d->removed)},
                       {"changed", changed}}
                      .dump()
               << "\n";
    } else {
      std::vector<std::vector<std::string>> t{{"", "MODULE", a.name, a.other}};
      for (const auto& e : d->added) t.push_back({"+", e.module, "-", std::to_string(e.version)});
      for (const auto& e : d->removed) t.push_back({"-", e.module, std::to_string(e.version), "-"});
      for (const auto& c : d->changed)
        t.push_back({"~", c.module, std::to_string(c.from_version), std::to_string(c.to_version)});
      table(*ctx.out, t);
    }
  } else if (verb == "delete") {
    if (Status s = store->release_delete(a.name); !s) return report(ctx, s);
    if (ctx.json) {
      *ctx.out << Json{{"release", a.name}, {"deleted", true}}.dump() << "\n";
    } else {
      *ctx.out << fmt::format("deleted release {}\n", a.name);
    }
  } else if (verb == "rollback") {
    auto r = store->release_rollback(a.name, Reason(a.note));
    if (!r) return report(ctx, r.error());
    if (ctx.json) {
      Json j = Json::array();
      for (const auto& x : *r) j.push_back(activation_json(x));
      *ctx.out << Json{{"release", a.name}, {"changed", j}}.dump() << "\n";
    } else {
      *ctx.out << fmt::format("release {}: {} modules changed\n", a.name, r->size());
      for (const auto& x : *r)
        *ctx.out << fmt::format("  {}: {} -> {}\n", x.module, version_text(x.from_version),
                                version_text(x.to_version));
    }
  }
}

void cmd_history(Context& ctx, const std::string& module, std::size_t limit) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->history(module, limit);
  if (!r) return report(ctx, r.error());
  // Every module has events (its imports at least): none means no such module, an error
  // as for `versions`.
  if (!module.empty() && r->empty()) {
    if (auto v = store->versions(module); !v) return report(ctx, v.error());
  }
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& e : *r) {
      j.push_back({{"id", e.id},
                   {"time", e.time},
                   {"action", e.action},
                   {"module", text_or_null(e.module)},
                   {"from", version_or_null(e.from_version)},
                   {"to", version_or_null(e.to_version)},
                   {"reason", text_or_null(e.reason)},
                   {"channel", text_or_null(e.channel)}});
    }
    *ctx.out << Json{{"events", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{{"TIME", "ACTION", "MODULE", "FROM", "TO", "REASON"}};
  for (const auto& e : *r) {
    t.push_back({when(e.time), e.action, e.module.empty() ? "-" : e.module, version_text(e.from_version),
                 version_text(e.to_version), e.reason});
  }
  table(*ctx.out, t);
}

void cmd_gc(Context& ctx, std::int64_t keep, bool dry_run) {
  auto store = open_store(ctx, true);
  if (!store) return;
  auto r = store->gc({keep, dry_run});
  if (!r) return report(ctx, r.error());
  if (ctx.json) {
    Json d = Json::array();
    for (const auto& v : r->deleted)
      d.push_back({{"module", text_to_json_string(v.module)}, {"version", v.version}});
    *ctx.out << Json{{"dry_run", dry_run},
                     {"versions_deleted", d},
                     {"blobs_deleted", r->blobs_deleted},
                     {"bytes_freed", r->bytes_freed}}
                    .dump()
             << "\n";
    return;
  }
  for (const auto& v : r->deleted)
    *ctx.out << fmt::format("{}{}@{}\n", dry_run ? "would delete " : "deleted ", v.module, v.version);
  *ctx.out << fmt::format("{}versions {}, blobs {}, bytes freed {}\n", dry_run ? "dry run: " : "",
                          r->deleted.size(), r->blobs_deleted, r->bytes_freed);
}

void cmd_verify(Context& ctx) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->verify();
  if (!r) return report(ctx, r.error());
  if (ctx.json) {
    Json d = Json::array();
    for (const auto& x : r->damage) {
      d.push_back({{"module", x.module.empty() ? Json(nullptr) : Json(text_to_json_string(x.module))},
                   {"version", x.version == 0 ? Json(nullptr) : Json(x.version)},
                   {"message", text_to_json_string(x.message)}});
    }
    *ctx.out << Json{{"ok", r->ok()},
                     {"blobs_checked", r->blobs_checked},
                     {"versions_checked", r->versions_checked},
                     {"damage", d},
                     {"integrity_check", r->integrity}}
                    .dump()
             << "\n";
  } else {
    for (const auto& x : r->damage) {
      if (x.module.empty()) {
        *ctx.out << fmt::format("damaged: {}\n", x.message);
      } else {
        *ctx.out << fmt::format("damaged: {}@{}: {}\n", x.module, x.version, x.message);
      }
    }
    *ctx.out << fmt::format("{}: {} blobs, {} versions checked, {} damaged, integrity_check {}\n",
                            r->ok() ? "ok" : "DAMAGE", r->blobs_checked, r->versions_checked,
                            r->damage.size(), r->integrity.size() == 1 ? r->integrity[0] : "failed");
  }
  if (!r->ok()) fail(ctx, kExitFound);
}

void cmd_stats(Context& ctx) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->stats();
  if (!r) return report(ctx, r.error());
  if (ctx.json) {
    Json served = Json::array();
    for (const auto& s : r->served) {
      served.push_back({{"module", text_to_json_string(s.module)},
                        {"version", s.version},
                        {"count", s.count},
                        {"last_served", s.last_served}});
    }
    Json kinds = Json::array();
    for (const auto& k : r->chunk_kinds) {
      kinds.push_back({{"kind", k.kind},
                       {"chunks", k.chunks},
                       {"raw_bytes", k.raw_bytes},
                       {"stored_bytes", k.stored_bytes},
                       {"inflated", k.inflated}});
    }
    *ctx.out << Json{{"modules", r->modules},
                     {"active_modules", r->active_modules},
                     {"versions", r->versions},
                     {"blobs", r->blobs},
                     {"raw_bytes", r->raw_bytes},
                     {"stored_bytes", r->stored_bytes},
                     {"ratio", ratio(r->stored_bytes, r->raw_bytes)},
                     {"releases", r->releases},
                     {"events", r->events},
                     {"dictionaries", r->dictionaries},
                     {"dictionary_id", r->dictionary_id == 0 ? Json(nullptr) : Json(r->dictionary_id)},
                     {"dictionary_size", r->dictionary_id == 0 ? Json(nullptr) : Json(r->dictionary_size)},
                     {"blobs_with_dictionary", r->blobs_with_dictionary},
                     {"served_total", r->served_total},
                     {"served", served},
                     {"chunks", r->chunks},
                     {"chunk_kinds", kinds},
                     {"schema_version", r->schema_version}}
                    .dump()
             << "\n";
    return;
  }
  table(*ctx.out,
        {{"modules:", fmt::format("{} ({} active)", r->modules, r->active_modules)},
         {"versions:", std::to_string(r->versions)},
         {"blobs:", std::to_string(r->blobs)},
         {"raw bytes:", fmt::format("{} ({})", r->raw_bytes, human_bytes(r->raw_bytes))},
         {"stored bytes:", fmt::format("{} ({})", r->stored_bytes, human_bytes(r->stored_bytes))},
         {"ratio:", fmt::format("{:.3f}", ratio(r->stored_bytes, r->raw_bytes))},
         {"dictionary:", r->dictionary_id == 0
                             ? std::string("none")
                             : fmt::format("#{} ({} bytes; {} blobs use a dictionary)", r->dictionary_id,
                                           r->dictionary_size, r->blobs_with_dictionary)},
         {"releases:", std::to_string(r->releases)},
         {"events:", std::to_string(r->events)},
         {"served:", std::to_string(r->served_total)},
         {"schema:", std::to_string(r->schema_version)}});
  if (!r->chunk_kinds.empty()) {
    std::vector<std::vector<std::string>> t{{"KIND", "ROWS", "RAW", "STORED", "RATIO", "INFLATED"}};
    for (const auto& k : r->chunk_kinds) {
      t.push_back({k.kind, std::to_string(k.chunks), human_bytes(k.raw_bytes), human_bytes(k.stored_bytes),
                   fmt::format("{:.3f}", ratio(k.stored_bytes, k.raw_bytes)), std::to_string(k.inflated)});
    }
    table(*ctx.out, t);
  }
  const std::size_t top = std::min<std::size_t>(r->served.size(), 10);
  if (top > 0) {
    std::vector<std::vector<std::string>> t{{"SERVED", "MODULE", "VERSION", "LAST"}};
    for (std::size_t i = 0; i < top; ++i) {
      const auto& s = r->served[i];
      t.push_back({std::to_string(s.count), s.module, std::to_string(s.version), when(s.last_served)});
    }
    table(*ctx.out, t);
  }
}

void cmd_dict_train(Context& ctx, std::size_t size) {
  InterruptScope interrupt;
  auto store = open_store(ctx, true);
  if (!store) return;
  DictionaryOptions o;
  if (size != 0) o.size = size;
  o.interrupted = InterruptScope::check();
  const bool progress = show_progress(ctx, o.progress, "reading images");
  auto r = store->train_dictionary(o);
  if (progress) progress_done(ctx);
  if (!r) return report_work(ctx, r.error());
  if (ctx.json) {
    *ctx.out << Json{{"id", r->id}, {"size", r->size}, {"samples", r->samples}}.dump() << "\n";
  } else {
    *ctx.out << fmt::format("dictionary #{}: {} bytes trained from {} images; new blobs use it\n", r->id,
                            r->size, r->samples);
  }
}

void cmd_compact(Context& ctx, int level, bool keep_deflated) {
  InterruptScope interrupt;
  auto store = open_store(ctx, true);
  if (!store) return;
  CompactOptions o;
  o.level = level;
  o.inflate = !keep_deflated;
  o.interrupted = InterruptScope::check();
  const bool progress = show_progress(ctx, o.progress, "compacting");
  auto r = store->compact(o);
  if (progress) progress_done(ctx);
  if (!r) return report_work(ctx, r.error());
  if (Status s = store->checkpoint(); !s) return report(ctx, s);
  for (const auto& x : r->skipped) *ctx.err << fmt::format("codestore: warning: damaged, skipped: {}\n", x);
  if (ctx.json) {
    Json skipped = Json::array();
    for (const auto& x : r->skipped) skipped.push_back(text_to_json_string(x));
    *ctx.out << Json{{"blobs", r->blobs},
                     {"level", level},
                     {"bytes_before", r->bytes_before},
                     {"bytes_after", r->bytes_after},
                     {"dictionary_id", r->dictionary_id == 0 ? Json(nullptr) : Json(r->dictionary_id)},
                     {"skipped", skipped}}
                    .dump()
             << "\n";
  } else {
    *ctx.out << fmt::format(
        "compacted {} blobs at level {}{}: {} -> {} bytes{}\n", r->blobs, level,
        r->dictionary_id == 0 ? "" : fmt::format(" with dictionary #{}", r->dictionary_id), r->bytes_before,
        r->bytes_after,
        r->skipped.empty() ? ""
                           : fmt::format("; {} damaged blobs skipped (see `verify`)", r->skipped.size()));
  }
}

}  // namespace

void add_store_commands(CLI::App& app, Context& ctx) {
  // The options outlive this function: CLI11 fills them in during parse, after it returns.
  struct Options {
    ImportArgs import;
    ReleaseArgs release;
    LsArgs ls;
    std::string module, ref, ref2, output, reason;
    std::int64_t to = 0, keep = 0;
    std::size_t limit = 0, dict_size = 0;
    int level = 19;
    bool keep_deflated = false;
    bool dry_run = false;
  };
  auto o = std::make_shared<Options>();

  app.add_subcommand(
         "init",
         "Create the database (the only command that creates one), or check that an existing one is "
         "ours and current")
      ->callback([&ctx] { cmd_init(ctx); });

  auto* import = app.add_subcommand(
      "import",
      "Import .beam files and directories (recursive), all or nothing, into a database `init` created");
  import->add_option("PATH", o->import.paths, "Files and directories")->required();
  import->add_option("--lib", o->import.lib,
                     "The lib (application) of every image; default: <app> of <app>-<vsn>/ebin/");
  import->add_option("--note", o->import.note, "A note kept on each new version");
  import->add_flag("--dry-run", o->import.dry_run, "Validate and report; write nothing");
  import->add_flag(
      "--bytes", o->import.bytes,
      "A file is unchanged only when byte-identical to the active version (default: the same code, "
      "by module MD5: a stripped or gzip-wrapped copy is no new version)");
  import->callback([&ctx, o] { cmd_import(ctx, o->import);
});

auto* ls = app.add_subcommand("ls", "Modules with their active version, lib and version count");
ls->add_option(
    "PATTERN", o->ls.patterns,
    "Module names or shell patterns (* any run, ? one character, [a-z] [!a-z] one of a set); a module "
    "matching any is listed (default: every module)");
auto* ls_lib =
    ls->add_option("--lib", o->ls.lib, "Only the modules whose active version belongs to this lib");
ls->callback([&ctx, o, ls_lib] {
  o->ls.by_lib = ls_lib->count() > 0;
  cmd_ls(ctx, o->ls);
});

auto* versions = app.add_subcommand(
    "versions",
    "Every stored version of a module; STATE marks the active one and the one `rollback` returns to");
versions->add_option("MODULE", o->module, "Module name")->required();
versions->callback([&ctx, o] { cmd_versions(ctx, o->module); });

auto* show = app.add_subcommand("show", "Image info of a stored version (the active one without @V)");
show->add_option("MODULE[@V]", o->ref, kRefHelp)->required();
show->callback([&ctx, o] { cmd_show(ctx, o->ref); });

auto* diff =
    app.add_subcommand("diff", "Chunks that differ, exports added and removed (exit 3 when they differ)");
diff->add_option("MODULE@V1", o->ref, "The version to compare from")->required();
diff->add_option("MODULE@V2", o->ref2, "The version to compare to")->required();
diff->callback([&ctx, o] { cmd_diff(ctx, o->ref, o->ref2); });

auto* exp = app.add_subcommand("export", "Write the exact bytes imported");
exp->add_option("MODULE[@V]", o->ref, kRefHelp)->required();
exp->add_option("-o,--output", o->output, "File to write")->required();
exp->callback([&ctx, o] { cmd_export(ctx, o->ref, o->output); });

auto* activate = app.add_subcommand("activate", "Make a version the active one");
activate->add_option("MODULE@V", o->ref, kRefHelp)->required();
activate->add_option("--reason", o->reason, "Kept in the history");
activate->callback([&ctx, o] { cmd_activate(ctx, o->ref, o->reason); });

auto* rollback = app.add_subcommand("rollback", "Return to the previously active version (or --to V)");
rollback->add_option("MODULE", o->module, "Module name")->required();
rollback->add_option("--to", o->to, "Any stored version")->check(at_least(1));
rollback->add_option("--reason", o->reason, "Kept in the history");
rollback->callback([&ctx, o] { cmd_rollback(ctx, o->module, o->to, o->reason); });

auto* del = app.add_subcommand("delete",
                               "Delete a version (not the active one, the rollback target, or a release's)");
del->add_option("MODULE@V", o->ref, kRefHelp)->required();
del->add_option("--reason", o->reason, "Kept in the history");
del->callback([&ctx, o] { cmd_delete(ctx, o->ref, o->reason); });

auto* release = app.add_subcommand("release", "Named snapshots of the active set");
release->require_subcommand(1);
auto* rc = release->add_subcommand("create", "Snapshot the active set");
rc->add_option("NAME", o->release.name, "Name of the new release")->required();
rc->add_option("--note", o->release.note, "A note kept with the release");
rc->callback([&ctx, o] { cmd_release(ctx, "create", o->release); });
release->add_subcommand("list", "Every release")->callback([&ctx, o] {
  cmd_release(ctx, "list", o->release);
});
auto* rs = release->add_subcommand("show", "A release's modules and versions");
rs->add_option("NAME", o->release.name, "Release name")->required();
rs->callback([&ctx, o] { cmd_release(ctx, "show", o->release); });
auto* rd = release->add_subcommand("diff", "Modules added, removed and changed from A to B");
rd->add_option("A", o->release.name, "The release to compare from")->required();
rd->add_option("B", o->release.other, "The release to compare to")->required();
rd->callback([&ctx, o] { cmd_release(ctx, "diff", o->release); });
auto* rdel = release->add_subcommand("delete", "Delete a release (its versions become collectable)");
rdel->add_option("NAME", o->release.name, "Release name")->required();
rdel->callback([&ctx, o] { cmd_release(ctx, "delete", o->release); });
auto* rr = release->add_subcommand("rollback", "Make the active set exactly the release's");
rr->add_option("NAME", o->release.name, "Release name")->required();
rr->add_option("--reason", o->release.note, "Kept in the history");
rr->callback([&ctx, o] { cmd_release(ctx, "rollback", o->release); });

auto* history = app.add_subcommand("history", "Every change (of one module), oldest first");
history->add_option("MODULE", o->module, "Only this module's events (default: every event)");
history->add_option("--limit", o->limit, "Only the newest N events")->check(at_least(1));
history->callback([&ctx, o] { cmd_history(ctx, o->module, o->limit); });

auto* gc = app.add_subcommand("gc", "Delete versions no one needs and unreferenced blobs");
gc->add_option("--keep", o->keep, "Also keep the newest N versions of each module")->check(at_least(1));
gc->add_flag("--dry-run", o->dry_run, "Report; delete nothing");
gc->callback([&ctx, o] { cmd_gc(ctx, o->keep, o->dry_run); });

app.add_subcommand("verify", "Check every blob and reference (exit 3 on damage)")->callback([&ctx] {
  cmd_verify(ctx);
});
app.add_subcommand("stats", "Counts, sizes, ratio, dictionary, served counts")->callback([&ctx] {
  cmd_stats(ctx);
});

auto* dict = app.add_subcommand("dict", "zstd dictionaries");
dict->require_subcommand(1);
auto* train = dict->add_subcommand("train", "Train a dictionary from the stored images; new blobs use it");
train->add_option("--size", o->dict_size, "Dictionary size in bytes (default 112 KiB)")->check(at_least(1));
train->callback([&ctx, o] { cmd_dict_train(ctx, o->dict_size); });

auto* compact = app.add_subcommand("compact", "Re-encode every blob (higher level, newest dictionary)");
compact->add_option("--level", o->level, "zstd level (default 19)")->check(in_range(1, 22));
compact->add_flag(
    "--keep-deflated", o->keep_deflated,
    "Keep Dbgi/Docs deflated as they came (larger; a whole get, as serving does, never deflates)");
compact->callback([&ctx, o] { cmd_compact(ctx, o->level, o->keep_deflated); });
}  // namespace codestore::cli

}  // namespace codestore::cli

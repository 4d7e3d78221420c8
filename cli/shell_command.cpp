// `codestore shell`: a line-oriented driver of one code server (docs/code-server.md), for
// operators rehearsing an upgrade and for the differential test against Erlang's code
// server (tests/loader/scenarios/). One command per line on stdin, one JSON object per
// command on stdout: {"op": OP, "result": R} (+ "killed" for purge, + "down" when
// processes ended), or {"op": OP, "error": "..."} for a bad line. `help` lists the commands.
// With a database (--db, else $CODESTORE_DB, else ./codestore.db when it exists), `add_path`
// takes `lib:NAME` (a store lib) and `sync brutal|soft` follows the store's active versions.
#include <codestore/code_server.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <istream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "cli.h"
#include "json_util.h"
#include "shell_libs.h"

namespace codestore::cli {

namespace {

using Json = nlohmann::ordered_json;
using loader::CodeServer;
using loader::Process;

// A bad line: reported, and the shell goes on.
struct LineError {
  std::string message;
};

// Every string value in a reply, as JSON text (README.md's conventions): UTF-8 as is, other bytes
// one code point per byte. The values echo the line (op, module and process names, paths,
// error messages) and what the code server answers about them (origins, directories), and
// dump() throws on a string that is not UTF-8.
void to_json_text(Json& j) {
  if (j.is_string()) {
    j = text_to_json_string(j.get_ref<const std::string&>());
  } else if (j.is_structured()) {
    for (auto& item : j) to_json_text(item);
  }
}

// Every command and its arguments, in the order `help` lists them: the one source of the
// usage a bad line is told.
constexpr std::pair<std::string_view, std::string_view> kCommands[] = {
    {"help", "help"},
    {"add_path", "add_path first|last DIR|lib:NAME"},
    {"del_path", "del_path DIR"},
    {"get_path", "get_path"},
    {"load", "load M"},
    {"load_abs", "load_abs FILE.beam"},
    {"load_binary", "load_binary M FILE"},
    {"ensure_loaded", "ensure_loaded M"},
    {"delete", "delete M"},
    {"purge", "purge M"},
    {"soft_purge", "soft_purge M"},
    {"check_old_code", "check_old_code M"},
    {"is_sticky", "is_sticky M"},
    {"is_loaded", "is_loaded M"},
    {"which", "which M"},
    {"module_status", "module_status M"},
    {"state", "state M"},
    {"stick_dir", "stick_dir DIR"},
    {"unstick_dir", "unstick_dir DIR"},
    {"call", "call M F ARITY"},
    {"spawn", "spawn P M"},
    {"switch", "switch P"},
    {"ping", "ping P"},
    {"stop", "stop P"},
    {"alive", "alive P"},
    {"uses_old_code", "uses_old_code P M"},
    {"sync", "sync brutal|soft"},
};

// A module's vsn in a reply: null when it has none (an image without an Attr chunk).
Json vsn_json(const loader::Instance& instance) {
  return instance.has_vsn() ? Json(instance.vsn_text()) : Json(nullptr);
}

// Thread safety: single-threaded (one shell reads one stream).
class Shell {
 public:
  // `no_libs`: why lib:NAME entries cannot work (no usable database), when `libs` is unset.
  Shell(std::unique_ptr<CodeServer> server, std::string no_libs, std::ostream& out)
      : server_(std::move(server)), no_libs_(std::move(no_libs)), out_(out) {}

  void run_line(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty()) return;
    Json reply;
    reply["op"] = words[0];
    try {
      dispatch(words, reply);
    } catch (const LineError& e) {
      reply.erase("result");
      reply.erase("killed");
      reply["error"] = e.message;
    }
    if (!down_.empty()) {
      std::sort(down_.begin(), down_.end());
      Json list = Json::array();
      for (const auto& [proc, reason] : down_) list.push_back(Json{{"proc", proc}, {"reason", reason}});
      reply["down"] = std::move(list);
      down_.clear();
    }
    to_json_text(reply);
    // Keys are literals; replace rather than throw anyway, so no line can end the shell.
    out_ << reply.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  }

 private:
  struct Proc {
    std::shared_ptr<Process> process;
    std::string module;
  };

  // The line has `n` arguments, else a usage error (from kCommands).
  static void arity(const std::vector<std::string>& w, std::size_t n) {
    if (w.size() == n + 1) return;
    for (const auto& [op, usage] : kCommands) {
      if (op == w[0]) throw LineError{"usage: " + std::string(usage)};
    }
    throw LineError{"unknown command " + w[0]};
  }

  // Erlang's reason; a store lib that could not be read has none (Erlang has no store) and
  // shows as store_error.
  static std::string reason_of(const Status& status) {
    return status.reason().empty() ? std::string("store_error") : std::string(status.reason());
  }

  static Json load_result(const Result<void>& r) { return r ? Json("ok") : Json(reason_of(r.error())); }

  Proc& proc(const std::string& name) {
    auto it = procs_.find(name);
    if (it == procs_.end()) throw LineError{"unknown process " + name};
    return it->second;
  }

  // The process ends (its frames released) and is reported as down.
  void end(Proc& p, const char* reason) {
    p.process->exit();
    down_.emplace_back(p.process->name(), reason);
  }

  void dispatch(const std::vector<std::string>& w, Json& reply) {
    const std::string& op = w[0];
    CodeServer& cs = *server_;
    if (op == "help") {
      arity(w, 0);
      Json list = Json::array();
      for (const auto& [name, usage] : kCommands) list.push_back(std::string(usage));
      reply["result"] = std::move(list);
    } else if (op == "add_path") {
      arity(w, 2);
      if (w[1] != "first" && w[1] != "last") throw LineError{"add_path takes first or last"};
      if (w[2].starts_with("lib:") && !no_libs_.empty()) throw LineError{w[2] + ": " + no_libs_};
      Status s = w[1] == "first" ? cs.add_patha(w[2]) : cs.add_pathz(w[2]);
      reply["result"] = s ? Json(true) : Json("bad_directory");
    } else if (op == "del_path") {
      arity(w, 1);
      reply["result"] = cs.del_path(w[1]);
    } else if (op == "get_path") {
      arity(w, 0);
      reply["result"] = cs.get_path();
    } else if (op == "load") {
      arity(w, 1);
      reply["result"] = load_result(cs.load_file(w[1]));
    } else if (op == "load_abs") {
      arity(w, 1);
      if (w[1].size() <= 5 || !std::string_view(w[1]).ends_with(".beam"))
        throw LineError{"load_abs takes a FILE.beam"};
      reply["result"] = load_result(cs.load_abs(w[1]));
    } else if (op == "load_binary") {
      arity(w, 2);
      auto bytes = base::read_file(w[2], image::Limits().max_image_bytes);
      if (!bytes) throw LineError{"cannot read " + w[2] + ": " + bytes.error().message};
      reply["result"] = load_result(cs.load_binary(w[1], w[2], *bytes));
    } else if (op == "ensure_loaded") {
      arity(w, 1);
      reply["result"] = load_result(cs.ensure_loaded(w[1]));
    } else if (op == "delete") {
      arity(w, 1);
      reply["result"] = cs.delete_module(w[1]);
    } else if (op == "purge") {
      arity(w, 1);
      auto r = cs.purge(w[1]);
      reply["result"] = r.killed;
      reply["killed"] = r.processes.size();
    } else if (op == "soft_purge") {
      arity(w, 1);
      reply["result"] = cs.soft_purge(w[1]).ok;
    } else if (op == "check_old_code") {
      arity(w, 1);
      reply["result"] = cs.check_old_code(w[1]);
    } else if (op == "is_sticky") {
      arity(w, 1);
      reply["result"] = cs.is_sticky(w[1]);
    } else if (op == "is_loaded") {
      arity(w, 1);
      auto origin = cs.is_loaded(w[1]);
      reply["result"] = origin ? Json(*origin) : Json(false);
    } else if (op == "which") {
      arity(w, 1);
      auto origin = cs.which(w[1]);
      reply["result"] = origin ? *origin : std::string("non_existing");
    } else if (op == "module_status") {
      arity(w, 1);
      reply["result"] = std::string(loader::module_status_name(cs.module_status(w[1])));
    } else if (op == "state") {
      arity(w, 1);
      Json current = nullptr;
      if (auto inst = cs.current_shared(w[1])) {
        current =
            Json{{"file", inst->origin()}, {"md5", image::md5_hex(inst->md5())}, {"vsn", vsn_json(*inst)}};
      }
      reply["result"] = Json{{"current", current}, {"has_old", cs.check_old_code(w[1])}};
    } else if (op == "stick_dir" || op == "unstick_dir") {
      arity(w, 1);
      bool ok = op == "stick_dir" ? cs.stick_dir(w[1]) : cs.unstick_dir(w[1]);
      reply["result"] = ok ? "ok" : "error";
    } else if (op == "call") {
      arity(w, 3);
      std::uint32_t n = parse_arity(w[3]);
      auto caller = cs.spawn("");  // a transient process: enters, then returns and ends
      auto r = caller->call(w[1], w[2], n);
      caller->exit();
      reply["result"] = r ? "ok" : "undef";
    } else if (op == "spawn") {
      arity(w, 2);
      if (procs_.count(w[1]) != 0) throw LineError{"process name in use: " + w[1]};
      auto process =
          cs.spawn(w[1], [this, name = w[1]](loader::ProcessId) { down_.emplace_back(name, "killed"); });
      Proc& p = procs_[w[1]] = Proc{process, w[2]};
      // A process started in M's code (a receive loop of M), whatever M exports: it enters
      // M's current instance and stays there. Only "M has no code" is undef.
      auto r = process->enter_module(w[2]);
      if (r) {
        reply["result"] = vsn_json(**r);
      } else {
        end(p, "undef");
        reply["result"] = "undef";
      }
    } else if (op == "switch") {
      arity(w, 1);
      Proc& p = proc(w[1]);
      if (!p.process->alive()) {
        reply["result"] = "dead";
        return;
      }
      // A fully qualified tail call out of the loop into M's current instance (whichever
      // exported function the loop calls: that M exports it is M's business, as for spawn).
      auto r = p.process->enter_module(p.module, /*tail=*/true);
      if (r) {
        reply["result"] = vsn_json(**r);
      } else {
        end(p, "undef");
        reply["result"] = "undef";
      }
    } else if (op == "ping") {
      arity(w, 1);
      Proc& p = proc(w[1]);
      const loader::Instance* top = p.process->alive() ? p.process->top() : nullptr;
      reply["result"] = top != nullptr ? vsn_json(*top) : Json("dead");
    } else if (op == "stop") {
      arity(w, 1);
      Proc& p = proc(w[1]);
      if (!p.process->alive()) {
        reply["result"] = "dead";
        return;
      }
      end(p, "normal");
      reply["result"] = "ok";
    } else if (op == "alive") {
      arity(w, 1);
      reply["result"] = proc(w[1]).process->alive();
    } else if (op == "uses_old_code") {
      arity(w, 2);
      Proc& p = proc(w[1]);
      reply["result"] = p.process->alive() ? Json(cs.check_process_code(*p.process, w[2])) : Json("dead");
    } else if (op == "sync") {
      arity(w, 1);
      if (w[1] != "brutal" && w[1] != "soft") throw LineError{"sync takes brutal or soft"};
      auto r = cs.sync(w[1] == "brutal" ? loader::SyncPolicy::kBrutal : loader::SyncPolicy::kSoft);
      Json changed = Json::array(), failed = Json::array();
      for (const auto& c : r.changed)
        changed.push_back(Json{{"module", c.module}, {"from", c.from_vsn}, {"to", c.to_vsn}});
      for (const auto& f : r.failed)
        failed.push_back(Json{{"module", f.module}, {"reason", reason_of(f.status)}});
      reply["result"] = Json{{"changed", changed}, {"left_in_use", r.left_in_use}, {"failed", failed}};
    } else {
      throw LineError{"unknown command " + op};
    }
  }

  static std::uint32_t parse_arity(const std::string& text) {
    if (text.empty() || text.size() > 3 || !std::all_of(text.begin(), text.end(), ::isdigit)) {
      throw LineError{"bad arity " + text};
    }
    return static_cast<std::uint32_t>(std::stoul(text));
  }

  std::unique_ptr<CodeServer> server_;
  std::string no_libs_;
  std::ostream& out_;
  std::map<std::string, Proc> procs_;
  std::vector<std::pair<std::string, std::string>> down_;  // ended during the current command
};

}  // namespace

void add_shell_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("shell", "Drive one code server from stdin, one JSON object per command");
  auto mode = std::make_shared<std::string>("interactive");
  auto record = std::make_shared<bool>(false);
  cmd->add_option("--mode", *mode, "interactive (default) or embedded")
      ->check(CLI::IsMember({"interactive", "embedded"}));
  cmd->add_flag("--record", *record,
                "Write loads, purges and kills to the store's history (needs the database)");
  cmd->callback([&ctx, mode, record] {
    loader::Options options;
    options.mode = *mode == "embedded" ? loader::Mode::kEmbedded : loader::Mode::kInteractive;
    options.stick_default = false;  // the shell starts with nothing sticky
    auto libs = open_shell_libs(ctx);
    if (!libs) {
      report_error(ctx, libs.error().with_context("shell"));
      return;
    }
    if (*record && !libs->libs) {
      report_error(ctx, Status(Code::kFailedPrecondition,
                               "shell: --record writes to the store's history: " + libs->missing));
      return;
    }
    options.libs = std::move(libs->libs);
    options.record_events = *record;
    auto server = CodeServer::create(std::move(options));
    if (!server) {
      report_error(ctx, server.error().with_context("shell"));
      return;
    }
    Shell shell(std::move(*server), std::move(libs->missing), *ctx.out);
    for (std::string line; std::getline(*ctx.in, line);) {
      shell.run_line(line);
      ctx.out->flush();
    }
  });
}

}  // namespace codestore::cli

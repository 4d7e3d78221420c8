// The upgrade plan: what a running node must do to go from one Erlang release (or one
// generation of a channel) to another without a restart, derived from the store's diff and
// the modules' images, in release_handler's terms (docs/upgrade-plan.md has every rule and the
// OTP source it follows).
//
//   auto plan = codestore::plan_release_upgrade(*store, {"myrel", "0.1.0"}, {"myrel", "0.2.0"});
//   if (!plan) return plan.error();
//   for (const auto& m : plan->modules) ...        // in the order release_handler loads them
//   if (plan->needs_restart()) ...                  // plan->restart says why
//   for (const auto& a : codestore::plan_appups(*plan)) write(a.path, a.text);  // systools reads them
//
// Per module: added, removed, changed (MD5), its exports added and removed, its behaviour
// (gen_server, gen_statem, gen_event, gen_fsm, supervisor: the `behaviour`/`behavior`
// attributes) and whether it exports code_change, the instruction an .appup would hold
// (load_module, update, add_module, delete_module), the OldVsn release_handler passes to
// code_change (the module's `vsn` attribute as release_handler_1:get_vsn/1 reads it; `{down,
// Vsn}` for a downgrade) and Extra ({FromAppVsn, ToAppVsn}). Flags: the `-vsn` trap (a module
// updated with code_change whose OldVsn is the compiler's default, an integer derived from its
// MD5), and what cannot be done safely in place: a supervisor changed (its child specs may
// have), a NIF library changed, configuration changed (application env, sys.config), erts
// changed.
//
// Errors are values: the store's codes (kNotFound for an unknown release, channel or
// generation, naming it; kCorruption for a damaged blob or image, naming the module and
// version), with the plan's ends as context ("plan myrel@0.1.0 -> myrel@0.2.0: ...").
//
// Thread safety: free functions over a Store (itself safe for concurrent use) and plain values;
// thread-safe.
#pragma once

#include <codestore/release_types.h>
#include <codestore/status.h>
#include <codestore/term.h>

#include <cstdint>
#include <string>
#include <vector>

namespace codestore {

class Store;

// The purge methods of every load in the plan (release_handler_1's PrePurge and PostPurge).
// Never kill unless told: soft_purge refuses to start while a process runs old code of a
// module (release_handler: {error, {old_processes, M}}, nothing changed).
struct UpgradePlanOptions {
  bool brutal_purge = false;  // brutal_purge instead of soft_purge
};

// One module of the plan, in the plan's direction (from -> to).
struct PlanModule {
  std::string module;
  enum class Change { kAdded, kRemoved, kChanged };
  Change change = Change::kChanged;
  // The application it belongs to: the newer side's (the older's when only there); "" for a
  // module of no application (a channel's plain import, a release's consolidated module).
  std::string app;
  std::string from_app_vsn, to_app_vsn;           // the application's vsn on each side ("" when absent)
  std::int64_t from_version = 0, to_version = 0;  // store versions (0: absent on that side)
  std::string from_md5, to_md5;
  std::vector<std::string> exports_added, exports_removed;  // "F/A", from -> to, sorted
  // supervisor, gen_statem, gen_server, gen_event or gen_fsm: the first in this order that its
  // behaviour attributes name; "" for none of them.
  std::string behaviour;
  // The newer version exports code_change/3 (gen_statem, gen_fsm: code_change/4).
  bool code_change = false;
  // What an .appup says for it: load_module, update, add_module, delete_module; for update,
  // update_kind: "advanced" (code_change with Extra), "soft" (suspend, load, resume: a
  // behaviour module without code_change), "supervisor" (supervisor:code_change re-reads init/1).
  std::string instruction;
  std::string update_kind;
  // The older version's `vsn` attribute as release_handler_1:get_vsn/1 reads it (a printable
  // string as it is, else [X] as X: the default [MD5 integer] gives the integer); the
  // newer's. Nil when the side has no such version.
  etf::Term older_vsn, newer_vsn;
  bool older_vsn_default = false;  // the older version's vsn is the compiler's default
  bool newer_vsn_default = false;
  // What code_change gets for an update: OldVsn (up: older_vsn; down: {down, older_vsn}) and
  // Extra ({FromAppVsn, ToAppVsn}, strings, `undefined` for no application). Nil otherwise.
  etf::Term old_vsn, extra;
  // The `-vsn` trap: an update with code_change whose OldVsn is the compiler's default integer,
  // so a code_change that matches an application version never matches
  // (docs/upgrade-plan.md, "The -vsn trap").
  bool vsn_trap = false;
  bool on_load = false;   // the newer version has -on_load (loaded alone, as OTP requires)
  bool load_nif = false;  // the newer version calls erlang:load_nif/2
  // Modules of the plan that must go before this one in the up direction (this one calls
  // their new exports): the DepMods of its .appup instruction. Sorted.
  std::vector<std::string> depends_on;
  // Its place in the base order, before dependencies: applications in the newer release's .rel
  // order (a channel's: by name), then the older's, then modules of none; by module name in each.
  std::size_t base = 0;
  std::vector<std::string> warnings;
};

// An application on both sides, or on one.
struct PlanApp {
  std::string app;
  std::string from_vsn, to_vsn;  // "" when absent on that side
  std::int64_t from_revision = 0, to_revision = 0;
};

// Something that cannot be done safely in place: the agent does not apply a plan with one
// unless forced.
struct RestartReason {
  std::string kind;     // supervisor, nif, config, erts
  std::string app;      // "" when it is the release's (sys.config, erts)
  std::string subject;  // the module, file or key concerned
  std::string message;  // for people, saying "may" where the plan cannot know
};

struct UpgradePlan {
  // The ends as named: "myrel@0.1.0", or "CHANNEL#G".
  std::string from, to;
  bool down = false;                   // a downgrade: `to` is older than `from`
  ReleaseId from_release, to_release;  // the releases (empty when a generation runs none)
  std::string channel;                 // for a plan between generations
  std::int64_t from_generation = 0, to_generation = 0;
  std::string from_erts, to_erts;   // the releases' erts versions ("" without a release)
  std::vector<PlanApp> apps;        // every application on either side, by name
  std::vector<PlanModule> modules;  // in the order release_handler loads them (below)
  std::vector<RestartReason> restart;
  std::vector<std::string> warnings;
  UpgradePlanOptions options;
  bool needs_restart() const { return !restart.empty(); }
  bool empty() const { return modules.empty() && restart.empty(); }
};

// The plan from release `from` to release `to` (their diff, erl_release_diff). A downgrade
// when both have one name and `to`'s vsn is the older (numbers compared as numbers).
[[nodiscard]] Result<UpgradePlan> plan_release_upgrade(Store& store, const ReleaseId& from,
                                                       const ReleaseId& to,
                                                       const UpgradePlanOptions& options = {});
// The plan from generation `from` to generation `to` of `channel` (0: the current one). A
// downgrade by what the generations run, not by their numbers (a channel rollback, a newer
// generation with older content, is one): by the release's vsn when both run releases of one
// name; else by the applications whose vsn moves, when they all move the same way; else when
// `to` < `from`.
[[nodiscard]] Result<UpgradePlan> plan_generation_upgrade(Store& store, const std::string& channel,
                                                          std::int64_t from, std::int64_t to,
                                                          const UpgradePlanOptions& options = {});

// One `.appup` file: {NewerVsn, [{OlderVsn, UpInstructions}], [{OlderVsn, DownInstructions}]}
// for an application whose vsn differs between the plan's sides, as `lib/<app>-<NewerVsn>/ebin/
// <app>.appup` (whichever way the plan goes: release_handler reads the newer version's appup
// both ways). Instructions as systools_rc reads them, with the plan's purge methods and DepMods.
struct AppupFile {
  std::string app;
  std::string vsn;   // the newer vsn
  std::string path;  // lib/<app>-<vsn>/ebin/<app>.appup
  etf::Term term;
  std::string text;  // the term as file:consult/1 reads it back, ending in ".\n"
};
// Applications on one side only, or with one vsn on both, have none (release_handler adds and
// removes applications from the .rel; a new revision of one vsn is no upgrade for it: the
// plan's warnings say so).
std::vector<AppupFile> plan_appups(const UpgradePlan& plan);

// The .appup instruction for `m` in the plan's direction, with all of m.depends_on as DepMods
// (what plan_appups writes for it, where DepMods name only modules some appup carries).
etf::Term plan_instruction(const UpgradePlan& plan, const PlanModule& m);

// Term text that file:consult/1 reads back as `term`, with printable lists written as
// strings ("0.1.0"), as io_lib's ~p would; everything else as etf::format_w.
std::string term_text(const etf::Term& term);

}  // namespace codestore

// The plan term: an upgrade plan (upgrade_plan.h) as the Erlang term the agent applies on a live
// node (agent/src/codestore_agent_apply.erl, `codestore_agent_apply:apply(PlanTerm, Opts)`),
// with each module's object code on both sides taken from the store, so that the node needs
// nothing else to go forward and, on a failure, back. Its shape, and the report apply/2
// answers with, are in docs/plan-apply.md.
//
//   auto plan = codestore::plan_release_upgrade(*store, {"myrel", "0.1.0"}, {"myrel", "0.2.0"});
//   auto term = codestore::plan_term(*store, *plan);
//   if (!term) return term.error();
//   write_file(path, codestore::etf::encode(*term));   // term_to_binary: the agent reads it so
//
// A map with atom keys (format 1):
//
//   #{format => 1, from => <<"myrel@0.1.0">>, to => <<"myrel@0.2.0">>, direction => up | down,
//     purge => soft_purge | brutal_purge,
//     apps => [{App, FromVsn, ToVsn}],                 % App a binary; strings, or undefined when absent
//     needs_restart => [#{kind => supervisor | nif | config | erts, app => binary(),
//                         subject => binary(), message => binary()}],
//     warnings => [binary()], probe => default | {M, F, A},
//     modules => [#{module => binary(), change => added | removed | changed,
//                   instruction => load_module | update | add_module | delete_module,
//                   update_kind => none | advanced | soft | supervisor,
//                   behaviour => binary() | undefined, app => binary() | undefined,
//                   from_md5, to_md5 => <<16 bytes>> | undefined,
//                   from_file, to_file => "lib/App-Vsn/ebin/M.beam" | undefined,
//                   from_code, to_code => binary() | undefined,      % object code, as imported
//                   old_vsn => OldVsn | {down, Vsn} | undefined,     % what code_change gets
//                   extra => {FromAppVsn, ToAppVsn} | undefined,
//                   dep_mods => [binary()], on_load => boolean(), vsn_trap => boolean()}]}
//
// Names from the store (modules, applications, behaviours) are binaries and every atom is one
// of codestore_agent_apply:vocabulary/0, so that a node decodes the term with
// binary_to_term(B, [safe]) before it has seen a new module's name; the applier makes the
// atoms it needs.
// `modules` is in the plan's order (release_handler's). Files are relative to the node's root
// (where lib/ is), as a release's boot script names them; a module of no application has none.
//
// Errors are values: the store's (kNotFound, kCorruption: a blob that fails its checksum),
// naming the module and version, with the plan's ends as context.
//
// Thread safety: a free function over a Store (safe for concurrent use) and plain values;
// thread-safe.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>
#include <codestore/upgrade_plan.h>

namespace codestore {

class Store;

struct PlanTermOptions {
  // The health probe the node runs after the switch: an {M, F, A} term whose call must return
  // ok or true; nil for the default (every suspended process is alive and answers
  // sys:get_state). apply/2's probe option overrides it.
  etf::Term probe;
};

// The plan as the agent's plan term (above), with every module's object code read from
// `store` (Store::get, the zstd checksum checked).
[[nodiscard]] Result<etf::Term> plan_term(Store& store, const UpgradePlan& plan,
                                          const PlanTermOptions& options = {});

}  // namespace codestore

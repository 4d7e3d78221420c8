// agent_plan_term (agent_service.h): the plan an agent is sent with a generation, in the shape
// docs/agent-protocol.md ("The plan term") documents. Until the applier's own builder
// (codestore_agent_apply's plan term) replaces it, this is the plan's essential fields: its
// ends, the modules in the plan's order with their .appup instruction, and the new code.
//
// Every atom here is one of the protocol's (codestore_agent_conn:vocabulary/0 names them all, so
// that they exist on a node running the agent and binary_to_term(B, [safe]) accepts them); names
// from the store are binaries.
#include <codestore/agent_service.h>
#include <codestore/store.h>
#include <fmt/format.h>

#include <string_view>

namespace codestore::server {

namespace {

using etf::Term;

Term bin(std::string_view text) {
  return Term::binary(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

Term boolean(bool b) {
  return Term::atom(b ? "true" : "false");
}

Term map(std::vector<std::pair<Term, Term>> pairs) {
  return Term(etf::Map{std::move(pairs)});
}

Term release(const ReleaseId& id) {
  if (id.name.empty()) return Term::atom("undefined");
  return Term::tuple({bin(id.name), bin(id.vsn)});
}

Term binaries(const std::vector<std::string>& names) {
  etf::TermList out;
  out.reserve(names.size());
  for (const std::string& n : names) out.push_back(bin(n));
  return Term::list(std::move(out));
}

// Nil (the plan's "none") as `undefined`; everything else as it is.
Term or_undefined(const Term& t) {
  return t.is_nil() ? Term::atom("undefined") : t;
}

std::string_view change_name(PlanModule::Change c) {
  switch (c) {
    case PlanModule::Change::kAdded: return "added";
    case PlanModule::Change::kRemoved: return "removed";
    case PlanModule::Change::kChanged: break;
  }
  return "changed";
}

}  // namespace

Result<etf::Term> agent_plan_term(Store& store, const UpgradePlan& plan) {
  etf::TermList modules;
  modules.reserve(plan.modules.size());
  for (const PlanModule& m : plan.modules) {
    // The code the node must run: the `to` side's bytes as stored (none for a removed module).
    Term code = Term::atom("undefined");
    if (m.to_version != 0) {
      auto bytes = store.get_shared(m.module, m.to_version);
      if (!bytes) {
        return tl::unexpected(bytes.error().with_context(
            fmt::format("plan {} -> {}: module {} v{}", plan.from, plan.to, m.module, m.to_version)));
      }
      code = Term::binary(**bytes);
    }
    modules.push_back(map({
        {Term::atom("module"), bin(m.module)},
        {Term::atom("change"), Term::atom(change_name(m.change))},
        {Term::atom("app"), bin(m.app)},
        {Term::atom("from_app_vsn"), bin(m.from_app_vsn)},
        {Term::atom("to_app_vsn"), bin(m.to_app_vsn)},
        {Term::atom("from_md5"), bin(m.from_md5)},
        {Term::atom("to_md5"), bin(m.to_md5)},
        {Term::atom("instruction"), Term::atom(m.instruction.empty() ? "undefined" : m.instruction)},
        {Term::atom("update_kind"), Term::atom(m.update_kind.empty() ? "undefined" : m.update_kind)},
        {Term::atom("behaviour"), bin(m.behaviour)},
        {Term::atom("code_change"), boolean(m.code_change)},
        {Term::atom("old_vsn"), or_undefined(m.old_vsn)},
        {Term::atom("extra"), or_undefined(m.extra)},
        {Term::atom("depends_on"), binaries(m.depends_on)},
        {Term::atom("on_load"), boolean(m.on_load)},
        {Term::atom("vsn_trap"), boolean(m.vsn_trap)},
        {Term::atom("binary"), code},
    }));
  }
  etf::TermList restart;
  for (const RestartReason& r : plan.restart) {
    restart.push_back(map({{Term::atom("kind"), bin(r.kind)},
                           {Term::atom("app"), bin(r.app)},
                           {Term::atom("subject"), bin(r.subject)},
                           {Term::atom("message"), bin(r.message)}}));
  }
  return map({
      {Term::atom("format"), Term::atom("codestore_plan_v0")},
      {Term::atom("channel"), bin(plan.channel)},
      {Term::atom("from"), Term::integer(plan.from_generation)},
      {Term::atom("to"), Term::integer(plan.to_generation)},
      {Term::atom("down"), boolean(plan.down)},
      {Term::atom("from_release"), release(plan.from_release)},
      {Term::atom("to_release"), release(plan.to_release)},
      {Term::atom("brutal_purge"), boolean(plan.options.brutal_purge)},
      {Term::atom("needs_restart"), Term::list(std::move(restart))},
      {Term::atom("warnings"), binaries(plan.warnings)},
      {Term::atom("modules"), Term::list(std::move(modules))},
  });
}

}  // namespace codestore::server

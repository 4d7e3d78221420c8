// The plan term (include/codestore/plan_term.h; docs/plan-apply.md): the upgrade plan as the
// Erlang map the agent's codestore_agent_apply:apply/2 reads, with both sides' object code.
// Built on Store's public API only.
#include <codestore/plan_term.h>
#include <codestore/store.h>
#include <fmt/format.h>

#include <string_view>

#include "base/hex.h"

namespace codestore {

namespace {

using etf::Term;

Term bin(std::string_view s) {
  return Term::binary(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

// A name from the store (a module, an application, a behaviour) as a binary: the node turns
// it into an atom, so that binary_to_term(B, [safe]) accepts the term (docs/plan-apply.md).
Term name_or_undefined(const std::string& s) {
  return s.empty() ? Term::atom("undefined") : bin(s);
}

Term string_or_undefined(const std::string& s) {
  return s.empty() ? Term::atom("undefined") : Term::string(s);
}

Term nil_or_undefined(const Term& t) {
  return t.is_nil() ? Term::atom("undefined") : t;
}

// The store's hex MD5 as the 16 bytes erlang:get_module_info(M, md5) gives.
Result<Term> md5_term(const std::string& hex, const std::string& what) {
  if (hex.empty()) return Term::atom("undefined");
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    const int hi = base::hex_digit(hex[i]), lo = base::hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0) break;
    bytes.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  if (hex.size() != 32 || bytes.size() != 16)
    return error(Code::kCorruption, fmt::format("{}: md5 \"{}\" is not 32 hex digits", what, hex));
  return Term::binary(bytes);
}

// Where a release's boot script names the module's file, relative to the root.
Term file_term(const PlanModule& m, const std::string& app_vsn) {
  if (m.app.empty() || app_vsn.empty()) return Term::atom("undefined");
  return Term::string(fmt::format("lib/{}-{}/ebin/{}.beam", m.app, app_vsn, m.module));
}

Result<Term> code_term(Store& store, const std::string& module, std::int64_t version) {
  if (version == 0) return Term::atom("undefined");
  auto bytes = store.get(module, version);
  if (!bytes) return error(bytes.error().with_context(fmt::format("{} version {}", module, version)));
  return Term::binary(*bytes);
}

std::pair<Term, Term> pair(std::string_view key, Term value) {
  return {Term::atom(key), std::move(value)};
}

// A map with atom keys, in the order given.
Term map_of(std::vector<std::pair<Term, Term>> pairs) {
  return Term(etf::Map{std::move(pairs)});
}

const char* change_name(PlanModule::Change c) {
  switch (c) {
    case PlanModule::Change::kAdded: return "added";
    case PlanModule::Change::kRemoved: return "removed";
    case PlanModule::Change::kChanged: break;
  }
  return "changed";
}

Result<Term> module_term(Store& store, const PlanModule& m) {
  const std::string what = fmt::format("{} ({} -> {})", m.module, m.from_version, m.to_version);
  auto from_md5 = md5_term(m.from_md5, what);
  if (!from_md5) return error(from_md5.error());
  auto to_md5 = md5_term(m.to_md5, what);
  if (!to_md5) return error(to_md5.error());
  auto from_code = code_term(store, m.module, m.from_version);
  if (!from_code) return error(from_code.error());
  auto to_code = code_term(store, m.module, m.to_version);
  if (!to_code) return error(to_code.error());
  // DepMods as the plan's instruction carries them (its last element).
  etf::TermList deps;
  for (const auto& d : m.depends_on) deps.push_back(bin(d));
  return map_of({
      pair("module", bin(m.module)),
      pair("change", Term::atom(change_name(m.change))),
      pair("instruction", Term::atom(m.instruction)),
      pair("update_kind", Term::atom(m.update_kind.empty() ? "none" : m.update_kind)),
      pair("behaviour", name_or_undefined(m.behaviour)),
      pair("app", name_or_undefined(m.app)),
      pair("from_md5", std::move(*from_md5)),
      pair("to_md5", std::move(*to_md5)),
      pair("from_file", m.from_version == 0 ? Term::atom("undefined") : file_term(m, m.from_app_vsn)),
      pair("to_file", m.to_version == 0 ? Term::atom("undefined") : file_term(m, m.to_app_vsn)),
      pair("from_code", std::move(*from_code)),
      pair("to_code", std::move(*to_code)),
      pair("old_vsn", nil_or_undefined(m.old_vsn)),
      pair("extra", nil_or_undefined(m.extra)),
      pair("dep_mods", Term::list(std::move(deps))),
      pair("on_load", Term::atom(m.on_load ? "true" : "false")),
      pair("vsn_trap", Term::atom(m.vsn_trap ? "true" : "false")),
  });
}

}  // namespace

Result<Term> plan_term(Store& store, const UpgradePlan& plan, const PlanTermOptions& options) {
  etf::TermList modules;
  for (const auto& m : plan.modules) {
    auto t = module_term(store, m);
    if (!t) return error(t.error().with_context(fmt::format("plan term {} -> {}", plan.from, plan.to)));
    modules.push_back(std::move(*t));
  }
  etf::TermList apps, restart, warnings;
  for (const auto& a : plan.apps)
    apps.push_back(Term::tuple({bin(a.app), string_or_undefined(a.from_vsn), string_or_undefined(a.to_vsn)}));
  for (const auto& r : plan.restart)
    restart.push_back(map_of({pair("kind", Term::atom(r.kind)), pair("app", bin(r.app)),
                              pair("subject", bin(r.subject)), pair("message", bin(r.message))}));
  for (const auto& w : plan.warnings) warnings.push_back(bin(w));
  for (const auto& m : plan.modules)
    for (const auto& w : m.warnings) warnings.push_back(bin(w));
  return map_of({
      pair("format", Term::integer(1)),
      pair("from", bin(plan.from)),
      pair("to", bin(plan.to)),
      pair("direction", Term::atom(plan.down ? "down" : "up")),
      pair("purge", Term::atom(plan.options.brutal_purge ? "brutal_purge" : "soft_purge")),
      pair("apps", Term::list(std::move(apps))),
      pair("needs_restart", Term::list(std::move(restart))),
      pair("warnings", Term::list(std::move(warnings))),
      pair("probe", options.probe.is_nil() ? Term::atom("default") : options.probe),
      pair("modules", Term::list(std::move(modules))),
  });
}

}  // namespace codestore

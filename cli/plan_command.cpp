// The upgrade plan on the command line (include/codestore/upgrade_plan.h, docs/upgrade-plan.md):
//
//   plan FROM@VSN TO@VSN [--appup] [--brutal]   from one Erlang release to another
//   plan --channel C G G' [--appup] [--brutal]  from generation G of channel C to G'
//
// Prints each module in the order release_handler loads it (change, instruction, behaviour,
// code_change, OldVsn, Extra, flags), what needs a restart, and warnings; --json the same as
// one document; --appup the plan as .appup files (one per application whose vsn changes, each
// headed by a comment naming where it goes), which systools:make_relup accepts.
#include <codestore/store.h>
#include <codestore/upgrade_plan.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "json_util.h"
#include "store_cli.h"

namespace codestore::cli {
namespace {

using Json = nlohmann::ordered_json;

struct PlanArgs {
  std::string from, to;
  bool appup = false;
  bool brutal = false;
};

std::optional<ReleaseId> parse_release(const std::string& text) {
  const auto at = text.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == text.size()) return std::nullopt;
  return ReleaseId{text.substr(0, at), text.substr(at + 1)};
}

std::optional<std::int64_t> parse_generation(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const std::int64_t n = std::stoll(text);
  if (n < 1) return std::nullopt;
  return n;
}

const char* change_name(PlanModule::Change c) {
  switch (c) {
    case PlanModule::Change::kAdded: return "added";
    case PlanModule::Change::kRemoved: return "removed";
    case PlanModule::Change::kChanged: break;
  }
  return "changed";
}

Json term_or_null(const etf::Term& t) {
  return t.is_nil() ? Json() : Json(text_to_json_string(term_text(t)));
}

Json strings(const std::vector<std::string>& v) {
  Json j = Json::array();
  for (const auto& s : v) j.push_back(text_to_json_string(s));
  return j;
}

std::string flags_of(const PlanModule& m) {
  std::vector<std::string> f;
  if (m.vsn_trap) f.emplace_back("vsn-trap");
  if (m.older_vsn_default && !m.vsn_trap && !m.older_vsn.is_nil()) f.emplace_back("default-vsn");
  if (!m.exports_added.empty() || !m.exports_removed.empty()) f.emplace_back("interface");
  if (m.on_load) f.emplace_back("on_load");
  if (m.load_nif) f.emplace_back("load_nif");
  if (!m.depends_on.empty()) f.push_back(fmt::format("after:{}", fmt::join(m.depends_on, ",")));
  return f.empty() ? "-" : fmt::format("{}", fmt::join(f, " "));
}

void print_json(Context& ctx, const UpgradePlan& p) {
  Json apps = Json::array();
  for (const auto& a : p.apps) {
    apps.push_back({{"app", text_to_json_string(a.app)},
                    {"from", text_or_null(a.from_vsn)},
                    {"to", text_or_null(a.to_vsn)},
                    {"from_revision", version_or_null(a.from_revision)},
                    {"to_revision", version_or_null(a.to_revision)}});
  }
  Json modules = Json::array();
  for (const auto& m : p.modules) {
    modules.push_back({{"module", text_to_json_string(m.module)},
                       {"change", change_name(m.change)},
                       {"app", text_or_null(m.app)},
                       {"from",
                        {{"version", version_or_null(m.from_version)},
                         {"md5", text_or_null(m.from_md5)},
                         {"app_vsn", text_or_null(m.from_app_vsn)}}},
                       {"to",
                        {{"version", version_or_null(m.to_version)},
                         {"md5", text_or_null(m.to_md5)},
                         {"app_vsn", text_or_null(m.to_app_vsn)}}},
                       {"exports_added", strings(m.exports_added)},
                       {"exports_removed", strings(m.exports_removed)},
                       {"behaviour", text_or_null(m.behaviour)},
                       {"code_change", m.code_change},
                       {"instruction", m.instruction},
                       {"update_kind", text_or_null(m.update_kind)},
                       {"appup", text_to_json_string(term_text(plan_instruction(p, m)))},
                       {"older_vsn", term_or_null(m.older_vsn)},
                       {"newer_vsn", term_or_null(m.newer_vsn)},
                       {"older_vsn_default", m.older_vsn_default},
                       {"newer_vsn_default", m.newer_vsn_default},
                       {"old_vsn", term_or_null(m.old_vsn)},
                       {"extra", term_or_null(m.extra)},
                       {"vsn_trap", m.vsn_trap},
                       {"on_load", m.on_load},
                       {"load_nif", m.load_nif},
                       {"depends_on", strings(m.depends_on)},
                       {"warnings", strings(m.warnings)}});
  }
  Json restart = Json::array();
  for (const auto& r : p.restart) {
    restart.push_back({{"kind", r.kind},
                       {"app", text_or_null(r.app)},
                       {"subject", text_to_json_string(r.subject)},
                       {"message", text_to_json_string(r.message)}});
  }
  auto release = [](const ReleaseId& id) {
    return id.name.empty() ? Json() : Json(text_to_json_string(id.name + "@" + id.vsn));
  };
  Json doc{{"from", text_to_json_string(p.from)},
           {"to", text_to_json_string(p.to)},
           {"direction", p.down ? "down" : "up"},
           {"channel", text_or_null(p.channel)},
           {"from_generation", version_or_null(p.from_generation)},
           {"to_generation", version_or_null(p.to_generation)},
           {"from_release", release(p.from_release)},
           {"to_release", release(p.to_release)},
           {"purge", p.options.brutal_purge ? "brutal_purge" : "soft_purge"},
           {"apps", apps},
           {"modules", modules},
           {"needs_restart", p.needs_restart()},
           {"restart", restart},
           {"warnings", strings(p.warnings)}};
  *ctx.out << doc.dump() << "\n";
}

void print_text(Context& ctx, const UpgradePlan& p) {
  std::ostream& out = *ctx.out;
  out << fmt::format("plan {} -> {} ({}, {})\n", p.from, p.to, p.down ? "downgrade" : "upgrade",
                     p.options.brutal_purge ? "brutal_purge" : "soft_purge");
  for (const auto& a : p.apps) {
    if (a.from_vsn == a.to_vsn && a.from_revision == a.to_revision) continue;
    out << fmt::format("application {}: {} -> {}\n", a.app, a.from_vsn.empty() ? "-" : a.from_vsn,
                       a.to_vsn.empty() ? "-" : a.to_vsn);
  }
  if (p.modules.empty()) {
    out << "no module changes\n";
  } else {
    std::vector<std::vector<std::string>> rows{{"#", "MODULE", "APP", "CHANGE", "INSTRUCTION", "BEHAVIOUR",
                                                "CODE_CHANGE", "OLDVSN", "EXTRA", "FLAGS"}};
    std::size_t n = 0;
    for (const auto& m : p.modules) {
      const std::string instr = m.update_kind.empty() ? m.instruction : m.instruction + " " + m.update_kind;
      rows.push_back({std::to_string(++n), printable_bytes(m.module), m.app.empty() ? "-" : m.app,
                      change_name(m.change), instr, m.behaviour.empty() ? "-" : m.behaviour,
                      m.behaviour.empty() ? "-" : (m.code_change ? "yes" : "no"),
                      m.old_vsn.is_nil() ? "-" : term_text(m.old_vsn),
                      m.extra.is_nil() ? "-" : term_text(m.extra), flags_of(m)});
    }
    table(out, rows);
  }
  if (p.needs_restart()) {
    out << "needs a restart (not applied in place unless forced):\n";
    for (const auto& r : p.restart) out << fmt::format("  {}: {}\n", r.kind, r.message);
  }
  for (const auto& m : p.modules)
    for (const auto& w : m.warnings) out << fmt::format("warning: {}: {}\n", m.module, w);
  for (const auto& w : p.warnings) out << fmt::format("warning: {}\n", w);
}

void print_appups(Context& ctx, const UpgradePlan& p) {
  const auto appups = plan_appups(p);
  if (ctx.json) {
    Json list = Json::array();
    for (const auto& a : appups) {
      list.push_back({{"app", text_to_json_string(a.app)},
                      {"vsn", text_to_json_string(a.vsn)},
                      {"path", text_to_json_string(a.path)},
                      {"text", text_to_json_string(a.text)}});
    }
    *ctx.out << Json{{"from", text_to_json_string(p.from)},
                     {"to", text_to_json_string(p.to)},
                     {"appups", list}}
                    .dump()
             << "\n";
    return;
  }
  if (appups.empty()) *ctx.err << "codestore: no application changes its vsn: no .appup to write\n";
  for (const auto& a : appups) *ctx.out << fmt::format("%% {}\n{}", a.path, a.text);
}

void cmd_plan(Context& ctx, const PlanArgs& args) {
  const UpgradePlanOptions options{.brutal_purge = args.brutal};
  Result<UpgradePlan> plan = error(Code::kInternal, "no plan");
  if (ctx.channel_given) {
    const auto from = parse_generation(args.from), to = parse_generation(args.to);
    if (!from || !to) {
      return report_usage(ctx, fmt::format("plan --channel {} FROM TO: FROM and TO are generation numbers "
                                           "(whole numbers from 1), not {} {}",
                                           ctx.channel, args.from, args.to));
    }
    auto store = open_store(ctx, false);
    if (!store) return;
    plan = plan_generation_upgrade(*store, ctx.channel, *from, *to, options);
  } else {
    const auto from = parse_release(args.from), to = parse_release(args.to);
    if (!from || !to) {
      return report_usage(ctx, fmt::format("plan FROM TO: two Erlang releases NAME@VSN (or --channel C G G' "
                                           "for two generations), not {} {}",
                                           args.from, args.to));
    }
    auto store = open_store(ctx, false);
    if (!store) return;
    plan = plan_release_upgrade(*store, *from, *to, options);
  }
  if (!plan) return report_error(ctx, plan.error());
  if (args.appup) return print_appups(ctx, *plan);
  if (ctx.json) return print_json(ctx, *plan);
  print_text(ctx, *plan);
}

}  // namespace

void add_plan_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<PlanArgs>();
  auto* plan = app.add_subcommand(
      "plan",
      "The upgrade plan from one Erlang release to another (NAME@VSN NAME@VSN), or between two generations "
      "of a channel (--channel C G G'): per module the .appup instruction in release_handler's order, "
      "OldVsn and Extra for code_change, the -vsn trap, and what needs a restart");
  plan->add_option("FROM", args->from,
                   "The release running now (NAME@VSN), or with --channel a generation number")
      ->required();
  plan->add_option("TO", args->to, "The release to go to (NAME@VSN), or with --channel a generation number")
      ->required();
  plan->add_flag("--appup", args->appup,
                 "Print the plan as .appup files, one per application whose vsn changes (systools:make_relup "
                 "reads them from the newer version's ebin)");
  plan->add_flag(
      "--brutal", args->brutal,
      "brutal_purge instead of soft_purge in every instruction (kills processes that linger in old "
      "code)");
  plan->callback([&ctx, args] { cmd_plan(ctx, *args); });
}

}  // namespace codestore::cli

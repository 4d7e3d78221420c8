// The channel commands (docs/model.md, "Channels and generations"): a thin frame over
// Store::channels, channel_generation, channel_history and channel_rollback.
//
//   channel list                           every channel: current and previous generation, modules
//   channel show C [--generation N]        a generation (default: the current one) and its modules
//   channel history C [--limit N]          generations, newest first, with what changed in each
//   channel rollback C [--reason R]        C's content becomes its previous generation's (a new
//         [--wait[=S]] [--deadline MS]     generation; a second rollback switches back); the
//         [--brutal] [--force] [--probe M:F]  agents' options and --wait as deploy's (deploy_wait.h)
//   channel canary C [--promote|--drop]    C's canary rollouts (deploy --canary), newest first;
//                                          --promote/--drop end the pending one by hand
//   channel diff C[#G] C[#G]               what differs from one generation to another, of one
//                                          channel or two (C alone: its current generation):
//                                          modules added, removed, changed (version, MD5), and
//                                          applications (APP@VSN#REV pinned)
//   nodes [--channel C] [--modules]        the nodes `serve` served (docs/model.md, "Nodes"): name, address,
//         [--forget-older-than D]          client root, channel, release, erts, first and last seen,
//                                          and whether each is behind its channel's current
//                                          generation; --forget-older-than removes those not seen
//                                          for D (30d, 12h, 90m, 45s)
//   nodes exclude NAME / nodes include NAME   an agent node (its Erlang node name) is never
//                                          upgraded automatically, nor a canary / follows again
//
// Every command takes --json (one JSON document; an error is {"error": {...}} too). The other
// store commands work in the channel the global --channel names (default: default).
#include <codestore/store.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "deploy_wait.h"
#include "json_util.h"
#include "store_cli.h"

namespace codestore::cli {
namespace {

using Json = nlohmann::ordered_json;

Json changes_json(const Generation& g) {
  Json modules = Json::array();
  for (const auto& c : g.changes) {
    modules.push_back({{"module", text_to_json_string(c.module)},
                       {"from", version_or_null(c.from_version)},
                       {"to", version_or_null(c.to_version)}});
  }
  Json apps = Json::array();
  for (const auto& a : g.app_changes) {
    apps.push_back(
        {{"app", text_to_json_string(a.app)}, {"from", text_or_null(a.from)}, {"to", text_or_null(a.to)}});
  }
  return Json{{"added", g.added},
              {"removed", g.removed},
              {"changed", g.changed},
              {"modules", modules},
              {"apps", apps}};
}

Json generation_json(const Generation& g) {
  Json j{{"channel", g.channel},
         {"generation", g.number},
         {"created_at", g.created_at},
         {"action", text_or_null(g.action)},
         {"reason", text_or_null(g.reason)},
         {"label", text_or_null(g.label)},
         {"release", text_or_null(g.release)},
         {"modules", g.modules},
         {"changes", changes_json(g)}};
  j["upgrade"] = {{"deadline_ms", version_or_null(g.upgrade.deadline_ms)},
                  {"brutal", g.upgrade.brutal},
                  {"force", g.upgrade.force},
                  {"probe", text_or_null(g.upgrade.probe)}};
  if (g.candidate) j["candidate"] = true;
  return j;
}

// "+2 -1 ~3": modules added, removed, changed.
std::string change_counts(const Generation& g) {
  std::string out = fmt::format("+{} -{} ~{}", g.added, g.removed, g.changed);
  if (!g.app_changes.empty()) out += fmt::format(" apps {}", g.app_changes.size());
  return out;
}

// The first few changes, for a table cell: "m 1->2, n +3, o 4->-".
std::string change_list(const Generation& g, std::size_t most = 4) {
  std::string out;
  for (std::size_t i = 0; i < g.changes.size() && i < most; ++i) {
    const auto& c = g.changes[i];
    if (!out.empty()) out += ", ";
    if (c.from_version == 0) {
      out += fmt::format("{} +{}", c.module, c.to_version);
    } else if (c.to_version == 0) {
      out += fmt::format("{} -{}", c.module, c.from_version);
    } else {
      out += fmt::format("{} {}->{}", c.module, c.from_version, c.to_version);
    }
  }
  if (g.changes.size() > most) out += fmt::format(", ... ({} more)", g.changes.size() - most);
  return out;
}

std::string what_made(const Generation& g) {
  std::string out = g.action;
  if (!g.label.empty()) out += " " + g.label;
  if (!g.release.empty()) out += " " + g.release;
  return out;
}

void cmd_list(Context& ctx) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->channels();
  if (!r) return report_error(ctx, r.error());
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& c : *r) {
      j.push_back({{"name", c.name},
                   {"generation", c.generation},
                   {"previous", version_or_null(c.previous)},
                   {"modules", c.modules},
                   {"created_at", c.created_at}});
    }
    *ctx.out << Json{{"channels", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{{"CHANNEL", "GENERATION", "PREVIOUS", "MODULES", "CREATED"}};
  for (const auto& c : *r) {
    t.push_back({c.name, std::to_string(c.generation), c.previous == 0 ? "-" : std::to_string(c.previous),
                 std::to_string(c.modules), when(c.created_at)});
  }
  table(*ctx.out, t);
}

void cmd_show(Context& ctx, const std::string& channel, std::int64_t number) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto g = store->channel_generation(channel, number);
  if (!g) return report_error(ctx, g.error());
  if (ctx.json) {
    Json j = generation_json(*g);
    Json m = Json::array();
    for (const auto& e : g->content) {
      m.push_back(
          {{"module", text_to_json_string(e.module)}, {"version", e.version}, {"lib", text_or_null(e.lib)}});
    }
    j["contents"] = m;
    *ctx.out << j.dump() << "\n";
    return;
  }
  if (g->number == 0) {
    *ctx.out << fmt::format("channel {}: no generation yet (empty)\n", channel);
    return;
  }
  *ctx.out << fmt::format("channel {} generation {}: {} ({}), {} modules{}\n", channel, g->number,
                          what_made(*g), when(g->created_at), g->modules,
                          g->reason.empty() ? "" : ": " + g->reason);
  std::vector<std::vector<std::string>> t{{"MODULE", "VERSION", "LIB"}};
  for (const auto& e : g->content)
    t.push_back({e.module, std::to_string(e.version), e.lib.empty() ? "-" : e.lib});
  table(*ctx.out, t);
}

void cmd_history(Context& ctx, const std::string& channel, std::size_t limit) {
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->channel_history(channel, limit);
  if (!r) return report_error(ctx, r.error());
  if (ctx.json) {
    Json j = Json::array();
    for (const auto& g : *r) j.push_back(generation_json(g));
    *ctx.out << Json{{"channel", channel}, {"generations", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{{"GEN", "TIME", "ACTION", "MODULES", "CHANGES", "REASON"}};
  for (const auto& g : *r) {
    std::string changes = change_counts(g);
    if (const std::string list = change_list(g); !list.empty()) changes += ": " + list;
    t.push_back({std::to_string(g.number), when(g.created_at), what_made(g), std::to_string(g.modules),
                 changes, g.reason.empty() ? "-" : g.reason});
  }
  table(*ctx.out, t);
}

void cmd_rollback(Context& ctx, const std::string& channel, const std::string& reason,
                  const UpgradeArgs& args) {
  if (ctx.channel != "default" && ctx.channel != channel) {
    return report_usage(
        ctx, fmt::format("channel rollback {}: --channel {} names another channel", channel, ctx.channel));
  }
  const auto up = check_upgrade_args(ctx, args);
  if (!up) return;
  ctx.channel = channel;
  auto store = open_store(ctx, true);
  if (!store) return;
  const std::int64_t since = up->wait ? newest_outcome_id(*store, channel) : 0;
  auto g = store->channel_rollback(Reason(reason), up->options);
  if (!g) return report_error(ctx, g.error());
  if (ctx.json) {
    Json doc = generation_json(*g);
    if (up->wait) wait_for_outcomes(ctx, *store, channel, g->number, false, since, *up->wait, &doc);
    *ctx.out << doc.dump() << "\n";
    return;
  }
  auto wait = [&] {
    if (!up->wait) return;
    ctx.out->flush();
    wait_for_outcomes(ctx, *store, channel, g->number, false, since, *up->wait, nullptr);
  };
  *ctx.out << fmt::format("channel {}: generation {} ({}): {}\n", channel, g->number, g->reason,
                          change_counts(*g));
  for (const auto& c : g->changes) {
    *ctx.out << fmt::format("  {} {} -> {}\n", c.module,
                            c.from_version == 0 ? "-" : std::to_string(c.from_version),
                            c.to_version == 0 ? "-" : std::to_string(c.to_version));
  }
  wait();
}

Json rollout_json(const Rollout& r) {
  Json nodes = Json::array();
  for (const auto& n : r.nodes)
    nodes.push_back({{"node", text_to_json_string(n.node_name)}, {"outcome", text_or_null(n.outcome)}});
  return {{"id", r.id},
          {"channel", text_to_json_string(r.channel)},
          {"base", r.base},
          {"candidate", r.candidate},
          {"canaries", r.canaries},
          {"release", text_or_null(r.release)},
          {"state", r.state},
          {"reason", text_or_null(r.reason)},
          {"created_at", r.created_at},
          {"ended_at", version_or_null(r.ended_at)},
          {"nodes", nodes}};
}

void cmd_canary(Context& ctx, const std::string& channel, bool promote, bool drop,
                const std::string& reason) {
  if (promote && drop) return report_usage(ctx, "channel canary: --promote or --drop, not both");
  auto store = open_store(ctx, promote || drop);
  if (!store) return;
  std::vector<Rollout> shown;
  if (promote || drop) {
    auto r = store->end_rollout(channel, promote, Reason(reason));
    if (!r) return report_error(ctx, r.error());
    shown.push_back(*r);
  } else {
    auto r = store->rollouts(channel);
    if (!r) return report_error(ctx, r.error());
    shown = std::move(*r);
  }
  if (ctx.json) {
    Json a = Json::array();
    for (const auto& r : shown) a.push_back(rollout_json(r));
    *ctx.out << Json{{"rollouts", a}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{
      {"CANDIDATE", "BASE", "RELEASE", "STATE", "CANARIES", "CREATED", "ENDED", "REASON"}};
  for (const auto& r : shown) {
    std::vector<std::string> nodes;
    for (const auto& n : r.nodes) nodes.push_back(n.node_name + (n.outcome.empty() ? "" : " " + n.outcome));
    t.push_back({std::to_string(r.candidate), std::to_string(r.base), r.release.empty() ? "-" : r.release,
                 r.state,
                 fmt::format("{} of {}{}", r.nodes.size(), r.canaries,
                             nodes.empty() ? "" : fmt::format(": {}", fmt::join(nodes, ", "))),
                 when(r.created_at), when(r.ended_at), r.reason.empty() ? "-" : r.reason});
  }
  table(*ctx.out, t);
}

void cmd_exclude(Context& ctx, const std::string& name, bool excluded) {
  auto store = open_store(ctx, true);
  if (!store) return;
  if (Status st = store->exclude_node(name, excluded); !st) return report_error(ctx, st);
  if (ctx.json) {
    *ctx.out << Json{{"node", text_to_json_string(name)}, {"excluded", excluded}}.dump() << "\n";
    return;
  }
  *ctx.out << fmt::format("{}: {}\n", name,
                          excluded ? "excluded: never upgraded automatically, never a canary"
                                   : "included: follows its channel again");
}

// CHANNEL or CHANNEL#GEN (a channel name has no '#'); GEN a whole number from 1. nullopt when
// malformed.
std::optional<std::pair<std::string, std::int64_t>> parse_generation_ref(const std::string& text) {
  const auto hash = text.rfind('#');
  if (hash == std::string::npos) return std::pair{text, std::int64_t{0}};
  const std::string digits = text.substr(hash + 1);
  if (hash == 0 || digits.empty() || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const std::int64_t n = std::stoll(digits);
  if (n < 1) return std::nullopt;
  return std::pair{text.substr(0, hash), n};
}

void cmd_diff(Context& ctx, const std::string& a, const std::string& b) {
  const auto ra = parse_generation_ref(a), rb = parse_generation_ref(b);
  for (const auto& [text, ref] : {std::pair{a, ra}, std::pair{b, rb}}) {
    if (!ref) {
      return report_usage(ctx, fmt::format("{}: a generation is CHANNEL (its current one) or CHANNEL#N, N a "
                                           "whole number from 1",
                                           text));
    }
  }
  auto store = open_store(ctx, false);
  if (!store) return;
  auto d = store->generation_diff(ra->first, ra->second, rb->first, rb->second);
  if (!d) return report_error(ctx, d.error());
  if (ctx.json) {
    auto entries = [](const std::vector<GenerationDiff::Entry>& v) {
      Json j = Json::array();
      for (const auto& e : v) {
        j.push_back({{"module", text_to_json_string(e.module)},
                     {"version", e.version},
                     {"md5", text_or_null(e.md5)},
                     {"lib", text_or_null(e.lib)}});
      }
      return j;
    };
    Json changed = Json::array();
    for (const auto& c : d->changed) {
      changed.push_back({{"module", text_to_json_string(c.module)},
                         {"from", {{"version", c.from_version}, {"md5", text_or_null(c.from_md5)}}},
                         {"to", {{"version", c.to_version}, {"md5", text_or_null(c.to_md5)}}},
                         {"same_code", !c.from_md5.empty() && c.from_md5 == c.to_md5}});
    }
    Json apps = Json::array();
    for (const auto& x : d->apps) {
      apps.push_back(
          {{"app", text_to_json_string(x.app)}, {"from", text_or_null(x.from)}, {"to", text_or_null(x.to)}});
    }
    *ctx.out << Json{{"a", text_to_json_string(a)},
                     {"b", text_to_json_string(b)},
                     {"modules",
                      {{"added", entries(d->added)}, {"removed", entries(d->removed)}, {"changed", changed}}},
                     {"apps", apps}}
                    .dump()
             << "\n";
    return;
  }
  if (d->added.empty() && d->removed.empty() && d->changed.empty() && d->apps.empty()) {
    *ctx.out << fmt::format("{} and {}: the same content\n", a, b);
    return;
  }
  if (!d->apps.empty()) {
    std::vector<std::vector<std::string>> t{{"", "APPLICATION", a, b}};
    for (const auto& x : d->apps) {
      const char* mark = x.from.empty() ? "+" : x.to.empty() ? "-" : "~";
      t.push_back({mark, x.app, x.from.empty() ? "-" : x.app + "@" + x.from,
                   x.to.empty() ? "-" : x.app + "@" + x.to});
    }
    table(*ctx.out, t);
  }
  // "lists@3 1a2b3c4d": the module version and the start of its MD5.
  auto mv = [](const std::string& module, std::int64_t v, const std::string& md5) {
    return fmt::format("{}@{} {}", module, v, md5.empty() ? "(deleted)" : md5.substr(0, 8));
  };
  std::vector<std::vector<std::string>> t{{"", "MODULE", a, b}};
  for (const auto& e : d->added) t.push_back({"+", e.module, "-", mv(e.module, e.version, e.md5)});
  for (const auto& e : d->removed) t.push_back({"-", e.module, mv(e.module, e.version, e.md5), "-"});
  for (const auto& c : d->changed) {
    t.push_back(
        {"~", c.module, mv(c.module, c.from_version, c.from_md5), mv(c.module, c.to_version, c.to_md5)});
  }
  table(*ctx.out, t);
  *ctx.out << fmt::format("modules: {} added, {} removed, {} changed; applications: {} changed\n",
                          d->added.size(), d->removed.size(), d->changed.size(), d->apps.size());
}

// "30d", "12h", "90m", "45s" (or plain seconds) -> seconds; nullopt when malformed.
std::optional<std::int64_t> parse_duration(const std::string& text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || text.size() - digits > 1) return std::nullopt;
  const std::int64_t n = std::stoll(text.substr(0, digits));
  const char unit = digits < text.size() ? text[digits] : 's';
  switch (unit) {
    case 's': return n;
    case 'm': return n * 60;
    case 'h': return n * 3600;
    case 'd': return n * 86400;
    default: return std::nullopt;
  }
}

std::string release_text(const ReleaseId& r) {
  return r.name.empty() ? std::string("-") : r.name + "@" + r.vsn;
}

Json release_json(const ReleaseId& r) {
  if (r.name.empty()) return nullptr;
  return Json{{"name", text_to_json_string(r.name)}, {"vsn", text_to_json_string(r.vsn)}};
}

void cmd_nodes(Context& ctx, std::string channel, bool modules, const std::string& forget) {
  if (channel.empty() && ctx.channel != "default") channel = ctx.channel;
  if (!forget.empty()) {
    const auto seconds = parse_duration(forget);
    if (!seconds) {
      return report_usage(ctx,
                          fmt::format("nodes --forget-older-than {}: a duration is N followed by s, m, h "
                                      "or d (45s, 90m, 12h, 30d)",
                                      forget));
    }
    auto store = open_store(ctx, true);
    if (!store) return;
    const std::int64_t before = static_cast<std::int64_t>(std::time(nullptr)) - *seconds;
    auto n = store->forget_nodes(before);
    if (!n) return report_error(ctx, n.error());
    if (ctx.json) {
      *ctx.out << Json{{"forgotten", *n}, {"last_seen_before", before}}.dump() << "\n";
    } else {
      *ctx.out << fmt::format("forgot {} nodes last seen before {}\n", *n, when(before));
    }
    return;
  }
  auto store = open_store(ctx, false);
  if (!store) return;
  auto r = store->nodes({.channel = channel, .with_modules = modules});
  if (!r) return report_error(ctx, r.error());
  if (ctx.json) {
    Json j = Json::array();
    for (const NodeInfo& n : *r) {
      Json node{{"id", n.id},
                {"address", n.address},
                {"server", text_or_null(n.server)},
                {"client_root", text_or_null(n.client_root)},
                {"channel", text_or_null(n.channel)},
                {"erts_vsn", text_or_null(n.erts_vsn)},
                {"release", release_json(n.release)},
                {"generation", version_or_null(n.generation)},
                {"first_seen", n.first_seen},
                {"last_seen", n.last_seen},
                {"requests", n.requests},
                {"modules_fetched", n.modules_fetched},
                {"module_count", n.module_count},
                {"channel_generation", version_or_null(n.channel_generation)},
                {"channel_release", release_json(n.channel_release)},
                {"runs_generation", version_or_null(n.runs_generation)},
                {"behind", n.behind},
                {"name", text_or_null(n.name)},
                {"agent_vsn", text_or_null(n.agent_vsn)},
                {"excluded", n.excluded},
                {"agent_connected", n.agent_connected}};
      if (n.last_upgrade.id != 0) {
        const NodeUpgrade& u = n.last_upgrade;
        node["last_outcome"] = {{"outcome", u.outcome},
                                {"from_generation", u.from_generation},
                                {"to_generation", u.to_generation},
                                {"reported_at", u.reported_at},
                                {"duration_ms", u.duration_ms},
                                {"suspended", u.suspended},
                                {"blocking", u.blocking},
                                {"killed", u.killed},
                                {"reason", text_or_null(u.reason)}};
      } else {
        node["last_outcome"] = nullptr;
      }
      if (modules) {
        Json m = Json::array();
        for (const NodeModule& x : n.modules) {
          m.push_back({{"module", text_to_json_string(x.module)},
                       {"version", x.version},
                       {"md5", text_or_null(x.md5)},
                       {"app", text_or_null(x.app)},
                       {"fetched_at", x.fetched_at}});
        }
        node["modules"] = m;
      }
      j.push_back(std::move(node));
    }
    *ctx.out << Json{{"nodes", j}}.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> t{{"ID", "NAME", "ADDRESS", "CLIENT ROOT", "CHANNEL", "RELEASE",
                                           "ERTS", "GEN", "MODULES", "FIRST SEEN", "LAST SEEN", "BEHIND",
                                           "LAST OUTCOME"}};
  for (const NodeInfo& n : *r) {
    std::string behind = "-";
    if (!n.channel.empty() && n.channel_generation != 0) {
      behind = n.behind ? fmt::format("yes (runs {}, channel at {}{})",
                                      n.runs_generation == 0 ? std::string("none")
                                                             : std::to_string(n.runs_generation),
                                      n.channel_generation,
                                      n.release == n.channel_release || n.channel_release.name.empty()
                                          ? ""
                                          : ", release " + release_text(n.channel_release))
                        : "no";
    }
    // An agent's last report: "applied 3->4 (12 ms)".
    const std::string outcome =
        n.last_upgrade.id == 0
            ? "-"
            : fmt::format(
                  "{} {}->{} ({} ms{})", n.last_upgrade.outcome, n.last_upgrade.from_generation,
                  n.last_upgrade.to_generation, n.last_upgrade.duration_ms,
                  n.last_upgrade.blocking != 0 ? fmt::format(", {} blocking", n.last_upgrade.blocking) : "");
    t.push_back({std::to_string(n.id), n.name.empty() ? "-" : n.name + (n.excluded ? " (excluded)" : ""),
                 n.address, n.client_root.empty() ? "-" : n.client_root, n.channel.empty() ? "-" : n.channel,
                 release_text(n.release), n.erts_vsn.empty() ? "-" : n.erts_vsn,
                 n.generation == 0 ? "-" : std::to_string(n.generation), std::to_string(n.module_count),
                 when(n.first_seen), when(n.last_seen), behind, outcome});
    if (modules) {
      for (const NodeModule& x : n.modules) {
        t.push_back({"", "", fmt::format("  {}@{}", x.module, x.version), x.md5.empty() ? "-" : x.md5,
                     x.app.empty() ? "-" : x.app, "", "", "", "", when(x.fetched_at), "", "", ""});
      }
    }
  }
  table(*ctx.out, t);
}

}  // namespace

void add_channel_commands(CLI::App& app, Context& ctx) {
  struct Options {
    std::string channel, reason, a, b;
    std::int64_t generation = 0;
    std::size_t limit = 0;
  };
  auto o = std::make_shared<Options>();
  auto* channel = app.add_subcommand(
      "channel", "Channels: named active sets that groups of nodes follow, each change a generation");
  channel->require_subcommand(1);
  channel->add_subcommand("list", "Every channel with its current and previous generation")->callback([&ctx] {
    cmd_list(ctx);
  });
  auto* show =
      channel->add_subcommand("show", "A generation of a channel (default: the current one) and its modules");
  show->add_option("CHANNEL", o->channel, "Channel name")->required();
  show->add_option("--generation", o->generation, "The generation's number (default: the current one)")
      ->check(at_least(1));
  show->callback([&ctx, o] { cmd_show(ctx, o->channel, o->generation); });
  auto* history =
      channel->add_subcommand("history", "A channel's generations, newest first, with what changed");
  history->add_option("CHANNEL", o->channel, "Channel name")->required();
  history->add_option("--limit", o->limit, "Only the newest N generations")->check(at_least(1));
  history->callback([&ctx, o] { cmd_history(ctx, o->channel, o->limit); });
  auto* rollback = channel->add_subcommand(
      "rollback",
      "Return a channel to its previous generation (a new generation; a second rollback switches back)");
  rollback->add_option("CHANNEL", o->channel, "Channel name")->required();
  rollback->add_option("--reason", o->reason, "Kept in the history");
  auto rb = std::make_shared<UpgradeArgs>();
  add_upgrade_options(rollback, *rb);
  rollback->callback([&ctx, o, rb] { cmd_rollback(ctx, o->channel, o->reason, *rb); });
  struct CanaryArgs {
    std::string channel, reason;
    bool promote = false, drop = false;
  };
  auto ca = std::make_shared<CanaryArgs>();
  auto* canary = channel->add_subcommand(
      "canary",
      "A channel's canary rollouts (deploy --canary), newest first; --promote or --drop the pending one");
  canary->add_option("CHANNEL", ca->channel, "Channel name")->required();
  canary->add_flag("--promote", ca->promote, "Make the pending candidate the current generation now");
  canary->add_flag("--drop", ca->drop, "Drop the pending candidate: the channel stays at its generation");
  canary->add_option("--reason", ca->reason, "Kept in the history");
  canary->callback([&ctx, ca] { cmd_canary(ctx, ca->channel, ca->promote, ca->drop, ca->reason); });
  auto* diff = channel->add_subcommand(
      "diff",
      "What differs between two generations, of one channel or two: modules (version, MD5), applications");
  diff->add_option("A", o->a, "CHANNEL (its current generation) or CHANNEL#N")->required();
  diff->add_option("B", o->b, "CHANNEL (its current generation) or CHANNEL#N")->required();
  diff->callback([&ctx, o] { cmd_diff(ctx, o->a, o->b); });

  struct NodesOptions {
    std::string channel, forget;
    bool modules = false;
  };
  auto n = std::make_shared<NodesOptions>();
  auto* nodes = app.add_subcommand(
      "nodes",
      "The nodes `codestore serve` served (one per connection): address, client root, channel, release, "
      "erts, first and last seen, and whether each is behind its channel's current generation");
  nodes->add_option("--channel", n->channel, "Only the nodes of this channel (default: every channel)");
  nodes->add_flag("--modules", n->modules,
                  "Also list the module versions each node fetched (module@version, MD5)");
  nodes->add_option("--forget-older-than", n->forget,
                    "Remove the nodes not seen for this long (45s, 90m, 12h, 30d) instead of listing");
  auto name = std::make_shared<std::string>();
  auto* exclude = nodes->add_subcommand(
      "exclude", "Never upgrade this agent node automatically, nor choose it as a canary");
  exclude->add_option("NAME", *name, "The node's Erlang node name (NAME in `codestore nodes`)")->required();
  exclude->callback([&ctx, name] { cmd_exclude(ctx, *name, true); });
  auto* include = nodes->add_subcommand("include", "An excluded agent node follows its channel again");
  include->add_option("NAME", *name, "The node's Erlang node name")->required();
  include->callback([&ctx, name] { cmd_exclude(ctx, *name, false); });
  nodes->callback([&ctx, n, nodes] {
    if (nodes->get_subcommands().empty()) cmd_nodes(ctx, n->channel, n->modules, n->forget);
  });
}

}  // namespace codestore::cli

// The channel commands (docs/model.md, "Channels and generations"): a thin frame over
// Store::channels, channel_generation, channel_history and channel_rollback.
//
//   channel list                           every channel: current and previous generation, modules
//   channel show C [--generation N]        a generation (default: the current one) and its modules
//   channel history C [--limit N]          generations, newest first, with what changed in each
//   channel rollback C [--reason R]        C's content becomes its previous generation's (a new
//                                          generation; a second rollback switches back)
//
// Every command takes --json (one JSON document; an error is {"error": {...}} too). The other
// store commands work in the channel the global --channel names (default: default).
#include <codestore/store.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.h"
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

void cmd_rollback(Context& ctx, const std::string& channel, const std::string& reason) {
  if (ctx.channel != "default" && ctx.channel != channel) {
    return report_usage(
        ctx, fmt::format("channel rollback {}: --channel {} names another channel", channel, ctx.channel));
  }
  ctx.channel = channel;
  auto store = open_store(ctx, true);
  if (!store) return;
  auto g = store->channel_rollback(Reason(reason));
  if (!g) return report_error(ctx, g.error());
  if (ctx.json) {
    *ctx.out << generation_json(*g).dump() << "\n";
    return;
  }
  *ctx.out << fmt::format("channel {}: generation {} ({}): {}\n", channel, g->number, g->reason,
                          change_counts(*g));
  for (const auto& c : g->changes) {
    *ctx.out << fmt::format("  {} {} -> {}\n", c.module,
                            c.from_version == 0 ? "-" : std::to_string(c.from_version),
                            c.to_version == 0 ? "-" : std::to_string(c.to_version));
  }
}

}  // namespace

void add_channel_commands(CLI::App& app, Context& ctx) {
  struct Options {
    std::string channel, reason;
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
  rollback->callback([&ctx, o] { cmd_rollback(ctx, o->channel, o->reason); });
}

}  // namespace codestore::cli

// deploy_wait.h: --wait polls the store (the agents report to a `serve` that may be another
// process; what it records is what this command reads), every 100 ms, until every node waited
// for has an outcome for the generation or the time runs out.
#include "deploy_wait.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "json_util.h"
#include "store_cli.h"

namespace codestore::cli {

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(100);

// The agent nodes of `channel` whose agent is connected and that are not excluded, by name.
std::optional<std::vector<std::string>> connected_nodes(Context& ctx, Store& store,
                                                        const std::string& channel) {
  auto r = store.nodes({.channel = channel});
  if (!r) {
    report_error(ctx, r.error());
    return std::nullopt;
  }
  std::set<std::string> names;
  for (const NodeInfo& n : *r) {
    if (!n.name.empty() && n.agent_connected && !n.excluded) names.insert(n.name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

// The newest outcome node `name` reported for generation `to` of `channel`.
std::optional<NodeUpgrade> outcome_of(Store& store, const std::string& name, const std::string& channel,
                                      std::int64_t to, std::int64_t since_id) {
  auto r = store.node_upgrades(name, channel, 8);
  if (!r) return std::nullopt;
  for (const NodeUpgrade& u : *r) {
    if (u.to_generation == to && u.id > since_id) return u;
  }
  return std::nullopt;
}

using Outcomes = std::map<std::string, std::optional<NodeUpgrade>>;

// Polls until each of `names` has an outcome for `to`, or `end`.
Outcomes wait_nodes(Store& store, const std::string& channel, std::int64_t to, std::int64_t since_id,
                    const std::vector<std::string>& names, Clock::time_point end) {
  Outcomes out;
  for (const auto& n : names) out[n];
  for (;;) {
    bool all = true;
    for (auto& [name, u] : out) {
      if (!u) u = outcome_of(store, name, channel, to, since_id);
      all = all && u.has_value();
    }
    if (all || Clock::now() >= end) return out;
    std::this_thread::sleep_for(kPoll);
  }
}

std::string module_counts(const NodeUpgrade& u) {
  std::map<std::string, int> by;
  for (const auto& m : u.modules) by[m.outcome.empty() ? "-" : m.outcome]++;
  std::vector<std::string> parts;
  for (const auto& [o, n] : by) parts.push_back(fmt::format("{} {}", n, o));
  return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, ", "));
}

bool applied(const std::optional<NodeUpgrade>& u) {
  return u && (u->outcome == "applied" || u->outcome == "already");
}

Json outcomes_json(const Outcomes& o) {
  Json a = Json::array();
  for (const auto& [name, u] : o) {
    if (!u) {
      a.push_back({{"node", text_to_json_string(name)}, {"outcome", nullptr}});
      continue;
    }
    Json counts = Json::object();
    for (const auto& m : u->modules) {
      const std::string k = m.outcome.empty() ? "-" : m.outcome;
      counts[k] = counts.value(k, 0) + 1;
    }
    a.push_back({{"node", text_to_json_string(name)},
                 {"outcome", u->outcome},
                 {"from_generation", u->from_generation},
                 {"to_generation", u->to_generation},
                 {"reported_at", u->reported_at},
                 {"duration_ms", u->duration_ms},
                 {"suspended", u->suspended},
                 {"blocking", u->blocking},
                 {"killed", u->killed},
                 {"reason", text_or_null(u->reason)},
                 {"modules", counts}});
  }
  return a;
}

void print_outcomes(Context& ctx, const Outcomes& o) {
  std::vector<std::vector<std::string>> t{
      {"NODE", "OUTCOME", "TIME", "SUSPENDED", "BLOCKING", "KILLED", "MODULES", "REASON"}};
  for (const auto& [name, u] : o) {
    if (!u) {
      t.push_back({name, "no report", "-", "-", "-", "-", "-", "-"});
      continue;
    }
    t.push_back({name, u->outcome, fmt::format("{} ms", u->duration_ms), std::to_string(u->suspended),
                 std::to_string(u->blocking), std::to_string(u->killed), module_counts(*u),
                 u->reason.empty() ? "-" : u->reason});
  }
  table(*ctx.out, t);
}

int exit_of(const Outcomes& o) {
  int code = kExitOk;
  for (const auto& [name, u] : o) {
    if (!u) return kExitTimedOut;
    if (!applied(u)) code = kExitNotApplied;
  }
  return code;
}

}  // namespace

void add_upgrade_options(CLI::App* cmd, UpgradeArgs& args) {
  cmd->add_flag(
      fmt::format("--wait{{{}}}", kDefaultWaitSeconds), args.wait,
      fmt::format("Wait for the outcome each connected agent node reports, print them; exit {} when one "
                  "did not apply, {} when time ran out (--wait=SECONDS; default {}). Before the "
                  "command, --wait is the wait for a database lock",
                  kExitNotApplied, kExitTimedOut, kDefaultWaitSeconds));
  cmd->add_option(
      "--deadline", args.deadline_ms,
      "Milliseconds each node has for everything before the switch (default: the agent's, 30000)");
  cmd->add_flag("--brutal", args.brutal,
                "Kill processes that linger in old code that must go (else: refused)");
  cmd->add_flag("--force", args.force, "Apply a plan that needs a restart");
  cmd->add_option(
      "--probe", args.probe,
      "The health probe after the switch: MODULE:FUNCTION (called with no arguments; must return ok "
      "or true; a failure reverts the node). Default: every suspended process answers");
}

std::optional<CheckedUpgrade> check_upgrade_args(Context& ctx, const UpgradeArgs& args) {
  CheckedUpgrade c;
  c.options = {
      .deadline_ms = args.deadline_ms, .brutal = args.brutal, .force = args.force, .probe = args.probe};
  if (args.deadline_ms < 0) {
    report_usage(ctx, fmt::format("--deadline {}: milliseconds, from 1", args.deadline_ms));
    return std::nullopt;
  }
  if (!args.probe.empty() && !parse_probe(args.probe)) {
    report_usage(ctx,
                 fmt::format("--probe {}: a probe is MODULE:FUNCTION (or MODULE:FUNCTION/0), Erlang atoms "
                             "without quotes",
                             args.probe));
    return std::nullopt;
  }
  if (!args.wait.empty()) {
    const bool digits = args.wait.size() <= 9 && std::all_of(args.wait.begin(), args.wait.end(),
                                                             [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits) {
      report_usage(ctx, fmt::format("--wait={}: seconds, a whole number", args.wait));
      return std::nullopt;
    }
    c.wait = std::chrono::seconds(std::stoll(args.wait));
  }
  return c;
}

std::int64_t newest_outcome_id(Store& store, const std::string& channel) {
  auto r = store.node_upgrades("", channel, 1);
  return r && !r->empty() ? r->front().id : 0;
}

void wait_for_outcomes(Context& ctx, Store& store, const std::string& channel, std::int64_t to,
                       bool candidate, std::int64_t since_id, std::chrono::seconds wait, Json* doc) {
  const auto end = Clock::now() + wait;
  Json w = Json::object();
  std::vector<std::string> canaries;
  if (candidate) {
    // The rollout first: decided by the store when the canaries report (deploy.cpp).
    Rollout r;
    for (;;) {
      auto rs = store.rollouts(channel, 4);
      if (!rs) return report_error(ctx, rs.error());
      auto it = std::find_if(rs->begin(), rs->end(), [&](const Rollout& x) { return x.candidate == to; });
      if (it == rs->end()) {
        return report_error(ctx, Status(Code::kNotFound,
                                        fmt::format("channel {}: no rollout of generation {}", channel, to)));
      }
      r = *it;
      if (r.state != "pending" || Clock::now() >= end) break;
      std::this_thread::sleep_for(kPoll);
    }
    for (const auto& n : r.nodes) canaries.push_back(n.node_name);
    Outcomes co;
    for (const auto& n : canaries) co[n] = outcome_of(store, n, channel, to, since_id);
    if (ctx.json) {
      w["canary"] = {{"state", r.state},     {"reason", text_or_null(r.reason)},
                     {"base", r.base},       {"candidate", r.candidate},
                     {"wanted", r.canaries}, {"canaries", outcomes_json(co)}};
    } else {
      *ctx.out << fmt::format("canaries ({} of {} chosen):\n", r.nodes.size(), r.canaries);
      if (!co.empty()) print_outcomes(ctx, co);
    }
    if (r.state == "dropped") {
      // Dropped with a canary on it: rolled back, as a new generation with the base's content.
      const auto current = store.channel_generation(channel);
      const std::int64_t at = current ? current->number : r.base;
      if (!ctx.json) {
        *ctx.out << fmt::format(
            "candidate generation {} dropped ({}): channel {} {}\n", to, r.reason, channel,
            at == r.base ? fmt::format("stays at generation {}", r.base)
                         : fmt::format("is at generation {}, generation {}'s content", at, r.base));
      }
      ctx.exit_code = kExitNotApplied;
    } else if (r.state == "pending") {
      if (!ctx.json)
        *ctx.out << fmt::format(
            "candidate generation {} still pending after {} s (codestore channel canary {} shows it)\n", to,
            wait.count(), channel);
      ctx.exit_code = kExitTimedOut;
    } else if (!ctx.json) {
      *ctx.out << fmt::format("candidate generation {} promoted ({}): channel {} is at generation {}\n", to,
                              r.reason, channel, to);
    }
    if (r.state != "promoted") {
      if (ctx.json && doc != nullptr) (*doc)["wait"] = w;
      return;
    }
  }
  auto names = connected_nodes(ctx, store, channel);
  if (!names) return;
  std::erase_if(*names, [&](const std::string& n) {
    return std::find(canaries.begin(), canaries.end(), n) != canaries.end();
  });
  const Outcomes o = wait_nodes(store, channel, to, since_id, *names, end);
  if (ctx.json) {
    w["nodes"] = outcomes_json(o);
    w["timed_out"] = exit_of(o) == kExitTimedOut;
    if (doc != nullptr) (*doc)["wait"] = w;
  } else if (o.empty()) {
    *ctx.out << fmt::format("no {}agent node of channel {} is connected: nothing to wait for\n",
                            candidate ? "other " : "", channel);
  } else {
    print_outcomes(ctx, o);
  }
  ctx.exit_code = exit_of(o);
}

}  // namespace codestore::cli

// deploy: an Erlang release becomes a channel's content (docs/model.md, "Channels and
// generations"). The release's application revisions, their module versions, then its own
// module versions (mix's consolidated protocols) over them, as the boot path gives them; in
// one new generation of the handle's channel (Impl::replace_channel), so modules and
// applications the release does not carry become inactive there.
//
// Canary rollouts (`deploy --canary N`, docs/operator-guide.md "Canary deploys"): the content is
// written as a candidate generation after the current one, which stays current, and a pending
// rollout waits for its canaries. The DECISION is the store's, in record_node_upgrade's
// transaction (rollout_report): the report of the last canary to apply the candidate promotes it,
// a canary's report of anything else drops it. Not the server's: several `serve` processes may
// share the store and a serve may restart mid-rollout, but every report passes through one
// transaction here, so exactly one report decides and the decision is never lost or made twice.
// The agent listener only chooses the canaries among the agents it has (add_canaries, also one
// transaction, so two serves cannot choose more than wanted) and sends them the candidate.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::now;

namespace {

// Merges two sorted maps: emit(key, before, after) for each key whose value differs (0 absent).
template <typename Emit>
void each_moved(const std::map<std::string, std::int64_t>& before,
                const std::map<std::string, std::int64_t>& after, Emit emit) {
  std::set<std::string> keys;
  for (const auto& [k, v] : before) keys.insert(k);
  for (const auto& [k, v] : after) keys.insert(k);
  for (const std::string& k : keys) {
    const auto a = before.find(k);
    const auto b = after.find(k);
    const std::int64_t from = a == before.end() ? 0 : a->second;
    const std::int64_t to = b == after.end() ? 0 : b->second;
    if (from != to) emit(k, from, to);
  }
}

std::map<std::string, std::int64_t> pin_map(const std::vector<Store::Impl::Pin>& pins) {
  std::map<std::string, std::int64_t> out;
  for (const auto& p : pins) out[p.module] = p.version;
  return out;
}

// "M:F" or "M:F/0", each an Erlang atom written without quotes (a lower-case letter, then
// letters, digits, '_' or '@'). kInvalidArgument otherwise.
void require_probe(std::string_view probe) {
  if (probe.empty()) return;
  auto atom = [](std::string_view a) {
    return !a.empty() && a.size() <= 255 && a[0] >= 'a' && a[0] <= 'z' &&
           std::all_of(a.begin(), a.end(), [](char c) {
             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '@';
           });
  };
  std::string_view text = probe;
  if (text.size() > 2 && text.substr(text.size() - 2) == "/0") text.remove_suffix(2);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || !atom(text.substr(0, colon)) || !atom(text.substr(colon + 1)))
    fail(Code::kInvalidArgument,
         fmt::format("probe '{}': a probe is Module:Function (or Module:Function/0), a function of no "
                     "arguments that returns ok or true",
                     probe));
}

void require_upgrade(const UpgradeOptions& u) {
  if (u.deadline_ms < 0) fail(Code::kInvalidArgument, fmt::format("deadline {} ms: negative", u.deadline_ms));
  require_probe(u.probe);
}

}  // namespace

std::optional<std::pair<std::string, std::string>> parse_probe(std::string_view probe) {
  try {
    require_probe(probe);
  } catch (...) {
    return std::nullopt;
  }
  if (probe.empty()) return std::nullopt;
  if (probe.size() > 2 && probe.substr(probe.size() - 2) == "/0") probe.remove_suffix(2);
  const auto colon = probe.find(':');
  return std::pair{std::string(probe.substr(0, colon)), std::string(probe.substr(colon + 1))};
}

Result<DeployResult> Store::deploy(const ReleaseId& id, Reason reason, const DeployOptions& options) {
  return impl_->call(
      [&] { return fmt::format("deploy {}@{} to channel {}", id.name, id.vsn, impl_->options.channel); },
      [&]() -> Result<DeployResult> {
        impl_->require_writable("deploy");
        require_upgrade(options.upgrade);
        if (options.canary < 0)
          fail(Code::kInvalidArgument, fmt::format("canary {}: negative", options.canary));
        Impl::WriteTx tx(*impl_);
        const std::int64_t rid = impl_->require_release(id);
        Impl::ChannelContent content;
        std::map<std::string, std::string> carrier;  // module -> the application that carries it
        {
          auto& s = impl_->stmt(
              "SELECT a.app, a.id, a.vsn, a.revision, coalesce(am.module, ''), coalesce(am.version, 0) FROM "
              "release_apps ra "
              "JOIN app_versions a ON a.id = ra.app_version "
              "LEFT JOIN app_modules am ON am.app_version = a.id WHERE ra.release = ? "
              "ORDER BY ra.position, am.module");
          Impl::Done done{s};
          s.bind(1, rid);
          while (s.step()) {
            const std::string app = s.text(0);
            content.apps[app] = s.int64(1);
            const std::string module = s.text(4);
            if (module.empty()) continue;  // an application without modules
            const std::string label =
                fmt::format("{}@{}{}", app, s.text(2), s.int64(3) > 1 ? fmt::format("#{}", s.int64(3)) : "");
            // import_release refuses this; a release that holds it anyway is not deployed.
            if (auto [it, fresh] = carrier.emplace(module, label); !fresh) {
              fail(Code::kFailedPrecondition,
                   fmt::format("module {} is carried by both {} and {}", module, it->second, label));
            }
            content.modules[module] = s.int64(5);
          }
        }
        {
          // The release's own modules take precedence (releases/<vsn>/consolidated comes first
          // on a mix release's boot path).
          auto& s = impl_->stmt("SELECT module, version FROM release_modules WHERE release = ?");
          Impl::Done done{s};
          s.bind(1, rid);
          while (s.step()) content.modules[s.text(0)] = s.int64(1);
        }
        const auto before = impl_->channel_row(impl_->options.channel);
        const Impl::GenerationMeta meta{
            .action = "deploy", .reason = reason.text, .release_id = rid, .upgrade = options.upgrade};
        Impl::ChannelWrite w =
            options.canary > 0 ? impl_->write_candidate(impl_->options.channel, content, meta, options.canary)
                               : impl_->replace_channel(impl_->options.channel, content, meta);
        tx.commit(w.generation != 0);
        return DeployResult{.channel = impl_->options.channel,
                            .generation = w.generation,
                            .base = before ? before->generation : 0,
                            .candidate = options.canary > 0 && w.generation != 0,
                            .canaries = w.generation != 0 ? options.canary : 0,
                            .modules = static_cast<std::int64_t>(content.modules.size()),
                            .apps = static_cast<std::int64_t>(content.apps.size()),
                            .changed = std::move(w.changed)};
      });
}

// --- canary rollouts ---------------------------------------------------------------------------

Store::Impl::ChannelWrite Store::Impl::write_candidate(std::string_view channel,
                                                       const ChannelContent& content,
                                                       const GenerationMeta& meta, std::int64_t canaries) {
  require_channel_name(channel);
  const auto row = channel_row(channel);
  if (!row || row->generation == 0)
    fail(Code::kFailedPrecondition,
         fmt::format(
             "a canary deploy keeps channel {}'s current generation for the other nodes, and it has none "
             "(deploy without --canary first)",
             channel));
  if (row->candidate != 0)
    fail(Code::kFailedPrecondition,
         fmt::format("channel {} has a canary candidate (generation {}) pending already", channel,
                     row->candidate));
  const std::int64_t number = row->generation + 1;
  ChannelWrite out;
  const auto modules = pin_map(generation_pins(channel, row->generation));
  const auto apps = generation_app_pins(channel, row->generation);
  // The interval rows as ChannelChange::commit writes them, without channel_modules or
  // channels.generation: generation `number` reads right, the current one is untouched.
  auto close = [&](const char* sql, const std::string& name) {
    auto& s = stmt(sql);
    s.bind(1, number);
    s.bind(2, channel);
    s.bind(3, name);
    s.exec();
  };
  auto open = [&](const char* sql, const std::string& name, std::int64_t value) {
    auto& s = stmt(sql);
    s.bind(1, channel);
    s.bind(2, name);
    s.bind(3, value);
    s.bind(4, number);
    s.exec();
  };
  each_moved(modules, content.modules, [&](const std::string& m, std::int64_t from, std::int64_t to) {
    if (from != 0)
      close("UPDATE generation_modules SET until = ? WHERE channel = ? AND module = ? AND until IS NULL", m);
    if (to != 0) {
      require_version(m, to);
      open(
          "INSERT INTO generation_modules (channel, module, version, first, until) VALUES (?, ?, ?, ?, NULL)",
          m, to);
    }
    out.changed.push_back({m, from, to});
  });
  bool apps_moved = false;
  each_moved(apps, content.apps, [&](const std::string& a, std::int64_t from, std::int64_t to) {
    apps_moved = true;
    if (from != 0)
      close("UPDATE generation_apps SET until = ? WHERE channel = ? AND app = ? AND until IS NULL", a);
    if (to != 0)
      open("INSERT INTO generation_apps (channel, app, app_version, first, until) VALUES (?, ?, ?, ?, NULL)",
           a, to);
  });
  if (out.changed.empty() && !apps_moved) return out;  // the channel has this content: no candidate
  insert_generation(channel, number, meta);
  {
    auto& s = stmt("UPDATE channels SET candidate = ? WHERE name = ?");
    s.bind(1, number);
    s.bind(2, channel);
    s.exec();
  }
  {
    // A dropped candidate's number is used again: its old rollout row goes.
    auto& d = stmt("DELETE FROM rollouts WHERE channel = ? AND candidate = ?");
    d.bind(1, channel);
    d.bind(2, number);
    d.exec();
    auto& s = stmt(
        "INSERT INTO rollouts (channel, base, candidate, canaries, release, state, reason, created_at, "
        "ended_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', '', ?, 0)");
    s.bind(1, channel);
    s.bind(2, row->generation);
    s.bind(3, number);
    s.bind(4, canaries);
    if (meta.release_id != 0) {
      s.bind(5, meta.release_id);
    } else {
      s.bind_null(5);
    }
    s.bind(6, now());
    s.exec();
  }
  event("deploy-candidate", "", row->generation, number,
        fmt::format("canary candidate for {} canaries{}{}", canaries, meta.reason.empty() ? "" : ": ",
                    meta.reason),
        channel);
  out.generation = number;
  return out;
}

Rollout Store::Impl::pending_rollout(std::string_view channel) {
  Rollout r;
  {
    auto& s = stmt(
        "SELECT ro.id, ro.channel, ro.base, ro.candidate, ro.canaries, coalesce(r.name || '@' || r.vsn, ''), "
        "ro.state, ro.reason, ro.created_at, ro.ended_at FROM rollouts ro LEFT JOIN releases r ON r.id = "
        "ro.release WHERE ro.channel = ? AND ro.state = 'pending' ORDER BY ro.id DESC LIMIT 1");
    Done done{s};
    s.bind(1, channel);
    if (!s.step()) return r;
    r = {s.int64(0), s.text(1), s.int64(2), s.int64(3), s.int64(4), s.text(5),
         s.text(6),  s.text(7), s.int64(8), s.int64(9), {}};
  }
  auto& s = stmt("SELECT node_name, outcome FROM rollout_canaries WHERE rollout = ? ORDER BY node_name");
  Done done{s};
  s.bind(1, r.id);
  while (s.step()) r.nodes.push_back({s.text(0), s.text(1)});
  return r;
}

std::string Store::Impl::end_rollout(std::int64_t id, std::string_view channel, bool promote,
                                     std::string_view why) {
  const ChannelRow row = require_channel(channel);
  const std::int64_t base = row.generation, number = row.candidate;
  if (number == 0)
    fail(Code::kInternal, fmt::format("channel {}: a pending rollout without a candidate", channel));
  // The canaries that run the candidate, or may yet (chosen, no report: a plan in flight
  // finishes). Deleting its rows under them would leave them on code no generation describes,
  // and the channel's next change would take its number: they would pass for current. So a
  // candidate they hold is dropped by promoting it and rolling it back at once: a new
  // generation with the base's content, which the agent listener sends them (and which changes
  // nothing on the nodes that stayed at the base).
  std::vector<std::string> on_candidate;
  if (!promote) {
    auto& s = stmt(
        "SELECT node_name FROM rollout_canaries WHERE rollout = ? AND outcome IN ('applied', 'already', '') "
        "ORDER BY node_name");
    Done done{s};
    s.bind(1, id);
    while (s.step()) on_candidate.push_back(s.text(0));
  }
  std::string recorded(why);
  if (promote || !on_candidate.empty()) {
    // channel_modules as ChannelChange::set_module would have moved it, then the channel's row.
    const auto before = pin_map(generation_pins(channel, base));
    const auto after = pin_map(generation_pins(channel, number));
    const std::string reason = fmt::format("canary rollout to generation {}: {}", number, why);
    each_moved(before, after, [&](const std::string& m, std::int64_t from, std::int64_t to) {
      auto& s = stmt(
          "INSERT INTO channel_modules (channel, module, version, since, previous) VALUES (?, ?, ?, ?, ?) "
          "ON CONFLICT (channel, module) DO UPDATE SET version = excluded.version, since = excluded.since, "
          "previous = excluded.previous");
      s.bind(1, channel);
      s.bind(2, m);
      s.bind(3, to);
      s.bind(4, to != 0 ? now() : 0);
      s.bind(5, from);
      s.exec();
      event("deploy", m, from, to, reason, channel);
    });
    auto& s = stmt("UPDATE channels SET generation = ?, previous = ?, candidate = 0 WHERE name = ?");
    s.bind(1, number);
    s.bind(2, base);
    s.bind(3, channel);
    s.exec();
    db->notify(db::kGenerationTopic, std::to_string(number));
    if (!promote) {
      const std::int64_t back = roll_back_channel(
          std::string(channel), fmt::format("canary rollout to generation {} dropped: {}", number, why),
          generation_info(channel, number).upgrade);
      recorded += fmt::format("; generation {} (generation {}'s content) takes back the canaries on it ({})",
                              back, base, fmt::join(on_candidate, ", "));
    }
  } else {
    // The candidate's rows go, the rows it closed are the current generation's open ones again.
    for (const char* sql : {"DELETE FROM generation_modules WHERE channel = ?1 AND first = ?2",
                            "UPDATE generation_modules SET until = NULL WHERE channel = ?1 AND until = ?2",
                            "DELETE FROM generation_apps WHERE channel = ?1 AND first = ?2",
                            "UPDATE generation_apps SET until = NULL WHERE channel = ?1 AND until = ?2",
                            "DELETE FROM generations WHERE channel = ?1 AND number = ?2",
                            "UPDATE channels SET candidate = 0 WHERE name = ?1 AND ?2 = ?2"}) {
      auto& s = stmt(sql);
      s.bind(1, channel);
      s.bind(2, number);
      s.exec();
    }
  }
  auto& s = stmt("UPDATE rollouts SET state = ?, reason = ?, ended_at = ? WHERE id = ?");
  s.bind(1, promote ? "promoted" : "dropped");
  s.bind(2, recorded);
  s.bind(3, now());
  s.bind(4, id);
  s.exec();
  event(promote ? "rollout-promoted" : "rollout-dropped", "", base, number, recorded, channel);
  return recorded;
}

bool Store::Impl::rollout_report(const NodeUpgrade& u) {
  const Rollout r = pending_rollout(u.channel);
  if (r.id == 0 || u.to_generation != r.candidate) return false;
  if (std::none_of(r.nodes.begin(), r.nodes.end(),
                   [&](const RolloutCanary& c) { return c.node_name == u.node_name; }))
    return false;
  {
    auto& s = stmt("UPDATE rollout_canaries SET outcome = ? WHERE rollout = ? AND node_name = ?");
    s.bind(1, u.outcome);
    s.bind(2, r.id);
    s.bind(3, u.node_name);
    s.exec();
  }
  const bool healthy = u.outcome == "applied" || u.outcome == "already";
  if (!healthy) {
    end_rollout(
        r.id, u.channel, false,
        fmt::format("canary {} {}{}", u.node_name, u.outcome, u.reason.empty() ? "" : ": " + u.reason));
    return true;
  }
  std::size_t applied = 0;
  for (const RolloutCanary& c : r.nodes)
    applied += c.node_name == u.node_name || c.outcome == "applied" || c.outcome == "already";
  if (static_cast<std::int64_t>(applied) < r.canaries) return false;
  std::vector<std::string> names;
  for (const RolloutCanary& c : r.nodes) names.push_back(c.node_name);
  end_rollout(r.id, u.channel, true, fmt::format("every canary applied it ({})", fmt::join(names, ", ")));
  return true;
}

Result<std::vector<Rollout>> Store::rollouts(const std::string& channel, std::size_t limit) {
  return impl_->call(
      [&] { return "rollouts of channel " + channel; },
      [&]() -> Result<std::vector<Rollout>> {
        db::Transaction tx(*impl_->db, db::TxKind::kRead);
        std::vector<Rollout> out;
        {
          auto& s = impl_->stmt(
              "SELECT ro.id, ro.channel, ro.base, ro.candidate, ro.canaries, coalesce(r.name || "
              "'@' || r.vsn, ''), ro.state, ro.reason, ro.created_at, ro.ended_at FROM rollouts ro "
              "LEFT JOIN releases r ON r.id = ro.release WHERE ro.channel = ? ORDER BY ro.id DESC "
              "LIMIT ?");
          Impl::Done done{s};
          s.bind(1, channel);
          s.bind(2, limit == 0 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(limit));
          while (s.step())
            out.push_back({s.int64(0),
                           s.text(1),
                           s.int64(2),
                           s.int64(3),
                           s.int64(4),
                           s.text(5),
                           s.text(6),
                           s.text(7),
                           s.int64(8),
                           s.int64(9),
                           {}});
        }
        for (Rollout& r : out) {
          auto& s = impl_->stmt(
              "SELECT node_name, outcome FROM rollout_canaries WHERE rollout = ? ORDER BY node_name");
          Impl::Done done{s};
          s.bind(1, r.id);
          while (s.step()) r.nodes.push_back({s.text(0), s.text(1)});
        }
        tx.commit();
        return out;
      });
}

Result<Rollout> Store::add_canaries(const std::string& channel, std::int64_t candidate,
                                    const std::vector<std::string>& names) {
  return impl_->call(
      [&] { return fmt::format("choose canaries for channel {} generation {}", channel, candidate); },
      [&]() -> Result<Rollout> {
        impl_->require_writable("choose canaries");
        Impl::WriteTx tx(*impl_);
        Rollout r = impl_->pending_rollout(channel);
        if (r.id == 0 || r.candidate != candidate)
          fail(Code::kNotFound,
               fmt::format("channel {} has no pending rollout of generation {}", channel, candidate));
        bool added = false;
        for (const std::string& name : names) {
          if (static_cast<std::int64_t>(r.nodes.size()) >= r.canaries) break;
          if (std::any_of(r.nodes.begin(), r.nodes.end(),
                          [&](const RolloutCanary& c) { return c.node_name == name; }))
            continue;
          auto& q = impl_->stmt("SELECT count(*) FROM nodes WHERE name = ? AND name != '' AND excluded = 0");
          {
            Impl::Done done{q};
            q.bind(1, name);
            q.step();
            if (q.int64(0) == 0) continue;
          }
          auto& s =
              impl_->stmt("INSERT INTO rollout_canaries (rollout, node_name, outcome) VALUES (?, ?, '')");
          s.bind(1, r.id);
          s.bind(2, name);
          s.exec();
          r.nodes.push_back({name, ""});
          impl_->event("canary", "", r.base, r.candidate, fmt::format("{} is a canary", name), channel);
          added = true;
        }
        std::sort(r.nodes.begin(), r.nodes.end(),
                  [](const RolloutCanary& a, const RolloutCanary& b) { return a.node_name < b.node_name; });
        tx.commit(added);
        return r;
      });
}

Result<Rollout> Store::end_rollout(const std::string& channel, bool promote, Reason reason) {
  return impl_->call(
      [&] { return fmt::format("{} the candidate of channel {}", promote ? "promote" : "drop", channel); },
      [&]() -> Result<Rollout> {
        impl_->require_writable("end a rollout");
        Impl::WriteTx tx(*impl_);
        Rollout r = impl_->pending_rollout(channel);
        if (r.id == 0)
          fail(Code::kNotFound, fmt::format("channel {} has no pending canary rollout", channel));
        const std::string why =
            reason.text.empty() ? std::string(promote ? "promoted by an operator" : "dropped by an operator")
                                : std::string(reason.text);
        r.reason = impl_->end_rollout(r.id, channel, promote, why);
        r.state = promote ? "promoted" : "dropped";
        r.ended_at = now();
        tx.commit();
        return r;
      });
}

}  // namespace codestore

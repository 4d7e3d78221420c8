// The nodes a boot server served (docs/model.md, "Nodes"; migrations/0005_nodes.sql):
// record_nodes writes what `serve` learned in one transaction for many nodes, nodes() lists
// them with whether each is behind its channel, forget_nodes prunes.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>

#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::now;

namespace {

// The generations [first, last] of a channel in which a module had the code a node fetched.
struct Span {
  std::int64_t first = 0, last = 0;
};

// The newest generation <= `current` covered by a span of every module (intersection of
// unions): start at `current`; while some module does not cover K, move K down to the newest
// generation <= K that module covers; stop when all cover K (the answer) or K < 1 (none: 0).
// K only decreases, and each step lands on a span's end, so it ends.
std::int64_t newest_common(const std::map<std::string, std::vector<Span>>& spans, std::int64_t current) {
  std::int64_t k = current;
  while (k >= 1) {
    std::int64_t next = k;
    for (const auto& [module, list] : spans) {
      std::int64_t best = 0;
      for (const Span& s : list) {
        if (s.first <= k) best = std::max(best, std::min(s.last, k));
      }
      next = std::min(next, best);
    }
    if (next == k) return k;
    k = next;
  }
  return 0;
}

// A node's module as it says it runs it (a fetch, a hello, an agent's report): its row, replaced;
// an app of '' keeps the one known.
void put_node_module(Store::Impl& impl, std::int64_t node, const NodeModule& nm, std::int64_t at) {
  auto& m = impl.stmt(
      "INSERT INTO node_modules (node, module, version, md5, app, fetched_at) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (node, module) DO UPDATE SET version = excluded.version, md5 = excluded.md5, "
      "app = CASE WHEN excluded.app = '' THEN node_modules.app ELSE excluded.app END, "
      "fetched_at = excluded.fetched_at");
  m.reset();
  m.clear_bindings();
  m.bind(1, node);
  m.bind(2, nm.module);
  m.bind(3, nm.version);
  m.bind(4, nm.md5);
  m.bind(5, nm.app);
  m.bind(6, nm.fetched_at != 0 ? nm.fetched_at : at);
  m.exec();
}

// A node_upgrades row, selected as record_node_upgrade writes it (id, node, node_name, channel,
// from_generation, to_generation, outcome, reported_at, duration_ms, suspended, blocking,
// killed, report, reason).
NodeUpgrade upgrade_row(db::Statement& s) {
  NodeUpgrade u;
  u.id = s.int64(0);
  u.node = s.int64(1);
  u.node_name = s.text(2);
  u.channel = s.text(3);
  u.from_generation = s.int64(4);
  u.to_generation = s.int64(5);
  u.outcome = s.text(6);
  u.reported_at = s.int64(7);
  u.duration_ms = s.int64(8);
  u.suspended = static_cast<std::uint64_t>(s.int64(9));
  u.blocking = static_cast<std::uint64_t>(s.int64(10));
  u.killed = static_cast<std::uint64_t>(s.int64(11));
  u.report = s.text(12);
  u.reason = s.text(13);
  return u;
}

}  // namespace

Result<std::vector<std::int64_t>> Store::record_nodes(const std::vector<NodeReport>& reports) {
  return impl_->call(
      [&] { return fmt::format("record {} nodes", reports.size()); },
      [&]() -> Result<std::vector<std::int64_t>> {
        impl_->require_writable_local("record nodes");
        std::vector<std::int64_t> ids;
        ids.reserve(reports.size());
        if (reports.empty()) return ids;
        Impl::WriteTx tx(*impl_);
        for (const NodeReport& r : reports) {
          const std::int64_t seen = r.seen_at != 0 ? r.seen_at : now();
          std::int64_t id = r.id;
          if (id != 0) {
            // A node forgotten meanwhile (`nodes --forget-older-than`) comes back as a new row.
            auto& s = impl_->stmt("SELECT 1 FROM nodes WHERE id = ?");
            Impl::Done done{s};
            s.bind(1, id);
            if (!s.step()) id = 0;
          }
          if (id == 0 && !r.name.empty()) {
            // An agent's node is one node per Erlang node name, across connections and servers.
            auto& s = impl_->stmt("SELECT id FROM nodes WHERE name = ? ORDER BY id DESC LIMIT 1");
            Impl::Done done{s};
            s.bind(1, r.name);
            if (s.step()) id = s.int64(0);
          }
          if (id == 0) {
            auto& s = impl_->stmt(
                "INSERT INTO nodes (address, server, client_root, channel, erts_vsn, release_name, "
                "release_vsn, "
                "generation, first_seen, last_seen, requests, modules, name, agent_vsn) VALUES (?, ?, ?, ?, "
                "?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?)");
            s.bind(1, r.address);
            s.bind(2, r.server);
            s.bind(3, r.client_root);
            s.bind(4, r.channel);
            s.bind(5, r.erts_vsn);
            s.bind(6, r.release.name);
            s.bind(7, r.release.vsn);
            s.bind(8, r.generation);
            s.bind(9, r.first_seen != 0 ? r.first_seen : seen);
            s.bind(10, seen);
            s.bind(11, static_cast<std::int64_t>(r.requests));
            s.bind(12, static_cast<std::int64_t>(r.modules_sent));
            s.bind(13, r.name);
            s.bind(14, r.agent_vsn);
            s.exec();
            id = impl_->db->last_insert_id();
          } else {
            // Empty fields keep what is recorded: a report carries only what changed.
            auto& s = impl_->stmt(
                "UPDATE nodes SET "
                "client_root = CASE WHEN ?2 = '' THEN client_root ELSE ?2 END, "
                "channel = CASE WHEN ?3 = '' THEN channel ELSE ?3 END, "
                "erts_vsn = CASE WHEN ?4 = '' THEN erts_vsn ELSE ?4 END, "
                "release_name = CASE WHEN ?5 = '' THEN release_name ELSE ?5 END, "
                "release_vsn = CASE WHEN ?5 = '' THEN release_vsn ELSE ?6 END, "
                "generation = CASE WHEN ?7 = 0 THEN generation ELSE ?7 END, "
                "last_seen = CASE WHEN ?8 > last_seen THEN ?8 ELSE last_seen END, "
                "requests = requests + ?9, modules = modules + ?10, "
                "address = CASE WHEN ?11 = '' THEN address ELSE ?12 END, "
                "server = CASE WHEN ?11 = '' THEN server ELSE ?13 END, "
                "agent_vsn = CASE WHEN ?14 = '' THEN agent_vsn ELSE ?14 END WHERE id = ?1");
            s.bind(1, id);
            s.bind(2, r.client_root);
            s.bind(3, r.channel);
            s.bind(4, r.erts_vsn);
            s.bind(5, r.release.name);
            s.bind(6, r.release.vsn);
            s.bind(7, r.generation);
            s.bind(8, seen);
            s.bind(9, static_cast<std::int64_t>(r.requests));
            s.bind(10, static_cast<std::int64_t>(r.modules_sent));
            // An agent's node that reconnected: its new connection's addresses.
            s.bind(11, r.name);
            s.bind(12, r.address);
            s.bind(13, r.server);
            s.bind(14, r.agent_vsn);
            s.exec();
          }
          if (r.replace_modules) {
            auto& d = impl_->stmt("DELETE FROM node_modules WHERE node = ?");
            d.bind(1, id);
            d.exec();
          }
          for (const NodeModule& nm : r.modules) {
            if (nm.module.empty()) fail(Code::kInvalidArgument, "a node's module needs a name");
            put_node_module(*impl_, id, nm, seen);
          }
          auto& sv = impl_->stmt(
              "INSERT INTO served (module, version, count, last_served, last_peer) VALUES (?, ?, ?, ?, ?) "
              "ON CONFLICT (module, version) DO UPDATE SET count = served.count + excluded.count, "
              "last_served = excluded.last_served, last_peer = excluded.last_peer");
          for (const NodeServed& x : r.served) {
            sv.reset();
            sv.clear_bindings();
            sv.bind(1, x.module);
            sv.bind(2, x.version);
            sv.bind(3, static_cast<std::int64_t>(x.count));
            sv.bind(4, seen);
            sv.bind(5, r.address);
            sv.exec();
          }
          ids.push_back(id);
        }
        // Not a change of code: readers' caches (keyed by the generation) stay valid.
        tx.commit(false);
        return ids;
      });
}

Result<std::vector<NodeInfo>> Store::nodes(const NodeQuery& query) {
  return impl_->call(
      [&] { return query.channel.empty() ? std::string("nodes") : "nodes of channel " + query.channel; },
      [&]() -> Result<std::vector<NodeInfo>> {
        // One read transaction: the nodes and the channels they are compared with are one state.
        db::Transaction tx(*impl_->db, db::TxKind::kRead);
        std::vector<NodeInfo> out;
        {
          auto& s = impl_->stmt(
              "SELECT n.id, n.address, n.server, n.client_root, n.channel, n.erts_vsn, n.release_name, "
              "n.release_vsn, n.generation, n.first_seen, n.last_seen, n.requests, n.modules, "
              "(SELECT count(*) FROM node_modules nm WHERE nm.node = n.id), n.name, n.agent_vsn, n.excluded, "
              "n.agent_connected "
              "FROM nodes n WHERE (?1 = '' OR n.channel = ?1) AND n.last_seen >= ?2 AND (?3 = '' OR n.name = "
              "?3) "
              "ORDER BY n.id");
          Impl::Done done{s};
          s.bind(1, query.channel);
          s.bind(2, query.seen_since);
          s.bind(3, query.name);
          while (s.step()) {
            NodeInfo n;
            n.id = s.int64(0);
            n.address = s.text(1);
            n.server = s.text(2);
            n.client_root = s.text(3);
            n.channel = s.text(4);
            n.erts_vsn = s.text(5);
            n.release = {s.text(6), s.text(7)};
            n.generation = s.int64(8);
            n.first_seen = s.int64(9);
            n.last_seen = s.int64(10);
            n.requests = static_cast<std::uint64_t>(s.int64(11));
            n.modules_fetched = static_cast<std::uint64_t>(s.int64(12));
            n.module_count = static_cast<std::size_t>(s.int64(13));
            n.name = s.text(14);
            n.agent_vsn = s.text(15);
            n.excluded = s.int64(16) != 0;
            n.agent_connected = s.int64(17) != 0;
            out.push_back(std::move(n));
          }
        }
        // Each channel's current generation and release, once.
        struct Current {
          bool exists = false;
          std::int64_t generation = 0;
          ReleaseId release;
        };
        std::map<std::string, Current> channels;
        for (const NodeInfo& n : out) {
          if (n.channel.empty() || channels.count(n.channel) != 0) continue;
          Current c;
          if (auto row = impl_->channel_row(n.channel)) {
            c.exists = true;
            c.generation = row->generation;
            if (c.generation != 0)
              c.release = impl_->release_name(impl_->generation_release(n.channel, c.generation));
          }
          channels.emplace(n.channel, std::move(c));
        }
        for (NodeInfo& n : out) {
          if (!n.name.empty()) {
            auto& s = impl_->stmt(
                "SELECT id, node, node_name, channel, from_generation, to_generation, outcome, reported_at, "
                "duration_ms, "
                "suspended, blocking, killed, report, reason FROM node_upgrades WHERE node = ? ORDER BY id "
                "DESC "
                "LIMIT 1");
            Impl::Done done{s};
            s.bind(1, n.id);
            if (s.step()) n.last_upgrade = upgrade_row(s);
          }
          if (query.with_modules) {
            auto& s = impl_->stmt(
                "SELECT module, version, md5, app, fetched_at FROM node_modules WHERE node = ? ORDER BY "
                "module");
            Impl::Done done{s};
            s.bind(1, n.id);
            while (s.step()) {
              n.modules.push_back({s.text(0), s.int64(1), s.text(2), s.text(3), s.int64(4)});
            }
          }
          auto it = channels.find(n.channel);
          if (it == channels.end() || !it->second.exists) continue;
          const Current& c = it->second;
          n.channel_generation = c.generation;
          n.channel_release = c.release;
          // docs/model.md, "Nodes": the generations in which each fetched module had the code
          // the node has (by MD5: another byte form of the same code is the same code; by
          // version where the MD5 is not known).
          std::map<std::string, std::vector<Span>> spans;
          {
            auto& s = impl_->stmt(
                "SELECT nm.module, gm.first, coalesce(gm.until, 0) FROM node_modules nm "
                "JOIN generation_modules gm ON gm.channel = ?2 AND gm.module = nm.module "
                "JOIN versions v ON v.module = gm.module AND v.version = gm.version "
                "WHERE nm.node = ?1 AND (v.md5 = nm.md5 OR (nm.md5 = '' AND v.version = nm.version))");
            Impl::Done done{s};
            s.bind(1, n.id);
            s.bind(2, n.channel);
            while (s.step()) {
              const std::int64_t until = s.int64(2);
              spans[s.text(0)].push_back({s.int64(1), until == 0 ? c.generation : until - 1});
            }
          }
          if (n.module_count == 0) {
            n.runs_generation = c.generation;
          } else if (spans.size() < n.module_count) {
            n.runs_generation = 0;  // a module the channel never ran with that code
          } else {
            n.runs_generation = newest_common(spans, c.generation);
          }
          const bool other_release =
              !n.release.name.empty() && !c.release.name.empty() && !(n.release == c.release);
          n.behind = n.runs_generation < c.generation || other_release;
        }
        tx.commit();
        return out;
      });
}

Result<std::size_t> Store::forget_nodes(std::int64_t last_seen_before) {
  return impl_->call(
      [&] { return fmt::format("forget nodes last seen before {}", last_seen_before); },
      [&]() -> Result<std::size_t> {
        impl_->require_writable_local("forget nodes");
        Impl::WriteTx tx(*impl_);
        std::size_t n = 0;
        {
          auto& s = impl_->stmt("SELECT count(*) FROM nodes WHERE last_seen < ?");
          Impl::Done done{s};
          s.bind(1, last_seen_before);
          if (s.step()) n = static_cast<std::size_t>(s.int64(0));
        }
        // node_modules first: a backend without ON DELETE CASCADE leaves none behind either.
        auto& m =
            impl_->stmt("DELETE FROM node_modules WHERE node IN (SELECT id FROM nodes WHERE last_seen < ?)");
        m.bind(1, last_seen_before);
        m.exec();
        auto& d = impl_->stmt("DELETE FROM nodes WHERE last_seen < ?");
        d.bind(1, last_seen_before);
        d.exec();
        tx.commit(false);
        return n;
      });
}

Result<std::int64_t> Store::record_node_upgrade(const NodeUpgrade& u) {
  return impl_->call(
      [&] {
        return fmt::format("record the upgrade of node {} ({}#{} -> #{})",
                           u.node_name.empty() ? "?" : u.node_name, u.channel, u.from_generation,
                           u.to_generation);
      },
      [&]() -> Result<std::int64_t> {
        // What a node reported is the host's own, like the nodes it served: a replica records
        // it (the agents of a `serve --follow` report to their host's replica).
        impl_->require_writable_local("record a node's upgrade");
        if (!is_upgrade_outcome(u.outcome))
          fail(Code::kInvalidArgument,
               fmt::format("outcome '{}': not one of {}", u.outcome, fmt::join(kUpgradeOutcomes, ", ")));
        const std::int64_t at = u.reported_at != 0 ? u.reported_at : now();
        Impl::WriteTx tx(*impl_);
        auto& s = impl_->stmt(
            "INSERT INTO node_upgrades (node, node_name, channel, from_generation, to_generation, outcome, "
            "reported_at, duration_ms, suspended, blocking, killed, report, reason) VALUES (?, ?, ?, ?, ?, "
            "?, "
            "?, ?, ?, ?, ?, ?, ?)");
        s.bind(1, u.node);
        s.bind(2, u.node_name);
        s.bind(3, u.channel);
        s.bind(4, u.from_generation);
        s.bind(5, u.to_generation);
        s.bind(6, u.outcome);
        s.bind(7, at);
        s.bind(8, u.duration_ms);
        s.bind(9, static_cast<std::int64_t>(u.suspended));
        s.bind(10, static_cast<std::int64_t>(u.blocking));
        s.bind(11, static_cast<std::int64_t>(u.killed));
        s.bind(12, u.report);
        s.bind(13, u.reason);
        s.exec();
        const std::int64_t id = impl_->db->last_insert_id();
        auto& m = impl_->stmt(
            "INSERT INTO node_upgrade_modules (upgrade, module, outcome, detail) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (upgrade, module) DO UPDATE SET outcome = excluded.outcome, detail = "
            "excluded.detail");
        for (const NodeUpgradeModule& x : u.modules) {
          if (x.module.empty()) fail(Code::kInvalidArgument, "an upgrade's module needs a name");
          m.reset();
          m.clear_bindings();
          m.bind(1, id);
          m.bind(2, x.module);
          m.bind(3, x.outcome);
          m.bind(4, x.detail);
          m.exec();
        }
        // The code the node says it runs after it all (codestore_agent_apply's modules: "loaded"
        // with the MD5, or "not_loaded"), so that "behind" judges the node by its code now and
        // not by what its hello said before the upgrade.
        if (u.node != 0) {
          auto& gone = impl_->stmt("DELETE FROM node_modules WHERE node = ? AND module = ?");
          for (const NodeUpgradeModule& x : u.modules) {
            if (x.outcome == "loaded" && x.detail.size() == 32) {
              put_node_module(*impl_, u.node, {.module = x.module, .version = 0, .md5 = x.detail}, at);
            } else if (x.outcome == "not_loaded") {
              gone.reset();
              gone.clear_bindings();
              gone.bind(1, u.node);
              gone.bind(2, x.module);
              gone.exec();
            }
          }
        }
        // The node now runs the generation the outcome left it at.
        const std::int64_t runs = generation_after(u.outcome, u.from_generation, u.to_generation);
        if (u.node != 0 && runs != 0) {
          auto& n = impl_->stmt(
              "UPDATE nodes SET generation = ?2, last_seen = CASE WHEN ?3 > last_seen THEN ?3 ELSE last_seen "
              "END "
              "WHERE id = ?1");
          n.bind(1, u.node);
          n.bind(2, runs);
          n.bind(3, at);
          n.exec();
          // ... and that generation's Erlang release, when it has one: after a live upgrade the
          // node runs X''s code while its hello (release_handler, the boot script) still names
          // X, which would leave it "behind" for good.
          // (A report may name a generation the store does not have: the agent's word is kept.)
          const auto channel = impl_->channel_row(u.channel);
          const ReleaseId release = channel && runs <= channel->generation
                                        ? impl_->release_name(impl_->generation_release(u.channel, runs))
                                        : ReleaseId{};
          if (!release.name.empty()) {
            auto& r = impl_->stmt("UPDATE nodes SET release_name = ?2, release_vsn = ?3 WHERE id = ?1");
            r.bind(1, u.node);
            r.bind(2, release.name);
            r.bind(3, release.vsn);
            r.exec();
          }
        }
        impl_->event("node-upgrade", "", u.from_generation, u.to_generation,
                     fmt::format("{} {}: generation {} -> {} ({} ms, {} modules, processes: {} suspended, {} "
                                 "blocking, {} killed)",
                                 u.node_name, u.outcome, u.from_generation, u.to_generation, u.duration_ms,
                                 u.modules.size(), u.suspended, u.blocking, u.killed),
                     u.channel);
        // A canary's report may end its rollout (deploy.cpp says why the decision is made here).
        const bool decided = impl_->rollout_report(u);
        // A report is no change of code (readers' caches stay valid), unless it ended a rollout.
        tx.commit(decided);
        return id;
      });
}

Result<std::vector<NodeUpgrade>> Store::node_upgrades(const std::string& node_name,
                                                      const std::string& channel, std::size_t limit) {
  return impl_->call(
      [&] { return fmt::format("node upgrades{}", node_name.empty() ? "" : " of " + node_name); },
      [&]() -> Result<std::vector<NodeUpgrade>> {
        db::Transaction tx(*impl_->db, db::TxKind::kRead);
        std::vector<NodeUpgrade> out;
        {
          auto& s = impl_->stmt(
              "SELECT id, node, node_name, channel, from_generation, to_generation, outcome, reported_at, "
              "duration_ms, "
              "suspended, blocking, killed, report, reason FROM node_upgrades "
              "WHERE (?1 = '' OR node_name = ?1) AND (?2 = '' OR channel = ?2) ORDER BY id DESC LIMIT ?3");
          Impl::Done done{s};
          s.bind(1, node_name);
          s.bind(2, channel);
          s.bind(3, limit == 0 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(limit));
          while (s.step()) out.push_back(upgrade_row(s));
        }
        for (NodeUpgrade& u : out) {
          auto& s = impl_->stmt(
              "SELECT module, outcome, detail FROM node_upgrade_modules WHERE upgrade = ? ORDER BY module");
          Impl::Done done{s};
          s.bind(1, u.id);
          while (s.step()) u.modules.push_back({s.text(0), s.text(1), s.text(2)});
        }
        tx.commit();
        return out;
      });
}

Status Store::exclude_node(const std::string& name, bool excluded) {
  auto r = impl_->call([&] { return fmt::format("{} node {}", excluded ? "exclude" : "include", name); },
                       [&]() -> Result<bool> {
                         impl_->require_writable("exclude a node");
                         Impl::WriteTx tx(*impl_);
                         {
                           auto& s = impl_->stmt("SELECT count(*) FROM nodes WHERE name = ? AND name != ''");
                           Impl::Done done{s};
                           s.bind(1, name);
                           s.step();
                           if (s.int64(0) == 0)
                             fail(Code::kNotFound,
                                  fmt::format("no agent node named {} (codestore nodes lists them)", name));
                         }
                         auto& s = impl_->stmt("UPDATE nodes SET excluded = ? WHERE name = ?");
                         s.bind(1, std::int64_t{excluded ? 1 : 0});
                         s.bind(2, name);
                         s.exec();
                         impl_->event(excluded ? "node-exclude" : "node-include", "", 0, 0, name);
                         tx.commit();
                         return true;
                       });
  return r ? Status::ok() : r.error();
}

Result<std::vector<std::string>> Store::excluded_nodes() {
  return impl_->call("excluded nodes", [&]() -> Result<std::vector<std::string>> {
    auto& s = impl_->stmt("SELECT DISTINCT name FROM nodes WHERE excluded != 0 AND name != '' ORDER BY name");
    Impl::Done done{s};
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  });
}

Status Store::set_agent_connected(std::int64_t id, bool connected) {
  auto r =
      impl_->call([&] { return fmt::format("node {} {}", id, connected ? "connected" : "disconnected"); },
                  [&]() -> Result<bool> {
                    impl_->require_writable_local("record a node's connection");
                    Impl::WriteTx tx(*impl_);
                    auto& s = impl_->stmt("UPDATE nodes SET agent_connected = ? WHERE id = ?");
                    s.bind(1, std::int64_t{connected ? 1 : 0});
                    s.bind(2, id);
                    s.exec();
                    tx.commit(false);
                    return true;
                  });
  return r ? Status::ok() : r.error();
}

Result<std::int64_t> Store::forget_agent_connections(const std::vector<std::string>& servers) {
  return impl_->call(
      [&] { return fmt::format("agent connections at {}", fmt::join(servers, ", ")); },
      [&]() -> Result<std::int64_t> {
        impl_->require_writable_local("record a node's connection");
        Impl::WriteTx tx(*impl_);
        std::int64_t changed = 0;
        for (const std::string& server : servers) {
          {
            auto& q = impl_->stmt("SELECT count(*) FROM nodes WHERE agent_connected <> 0 AND server = ?");
            Impl::Done done{q};
            q.bind(1, server);
            if (q.step()) changed += q.int64(0);
          }
          auto& s =
              impl_->stmt("UPDATE nodes SET agent_connected = 0 WHERE agent_connected <> 0 AND server = ?");
          s.bind(1, server);
          s.exec();
        }
        tx.commit(false);
        return changed;
      });
}

}  // namespace codestore

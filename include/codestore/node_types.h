// The nodes a boot server served (docs/model.md, "Nodes"): what `codestore serve` reports
// (NodeReport, through Store::record_nodes) and what Store::nodes returns (NodeInfo).
//
// A node is one TCP connection: the boot-server protocol carries no node name, so a node that
// reconnects (its loader does after 60 s idle, or after a server restart) is a new node. A node
// that runs the agent (docs/agent-protocol.md) says its Erlang node name, and is one node per
// name: NodeReport::name finds its row again.
//
// Thread safety: plain values.
#pragma once

#include <codestore/release_types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace codestore {

// One module version a node fetched: the last of each module it asked for.
struct NodeModule {
  std::string module{};
  std::int64_t version = 0;     // the store's version number
  std::string md5{};            // beam_lib:md5/1 of the code sent, 32 hex digits ("" unknown)
  std::string app{};            // the application (or store lib) it was served as part of
  std::int64_t fetched_at = 0;  // Unix seconds
};

// How often a node was sent one module version since the last report: counted into `served`
// (what Store::record_served counts, for `codestore stats`).
struct NodeServed {
  std::string module{};
  std::int64_t version = 0;
  std::uint64_t count = 0;
};

// What a boot server learned about one node since it last reported it. Fields left empty (or
// 0) keep what is recorded; a new node (id 0) gets them as given.
struct NodeReport {
  std::int64_t id = 0;              // nodes.id; 0: a node not recorded yet (record_nodes assigns one)
  std::string address;              // the client's "ip:port"
  std::string server;               // the server's "ip:port" the connection came in on
  std::string client_root;          // the client root its paths are under ("" none or not known yet)
  std::string channel;              // the channel serving it ("" none known)
  std::string erts_vsn;             // erlang:system_info(version) of the node
  ReleaseId release;                // the release whose files it read last ({} none)
  std::int64_t generation = 0;      // the channel's generation when it was first served (0: not known)
  std::int64_t first_seen = 0;      // Unix seconds; for a new node (0: seen_at)
  std::int64_t seen_at = 0;         // Unix seconds of the last request in this report
  std::uint64_t requests = 0;       // requests answered since the last report (added)
  std::uint64_t modules_sent = 0;   // module images sent since the last report (added)
  std::vector<NodeModule> modules;  // fetched since the last report (each replaces the module's row)
  std::vector<NodeServed> served;   // every module version sent since the last report, with counts
  // An agent's node (docs/agent-protocol.md): its Erlang node name, which finds the node's row
  // when id is 0 (the newest row of that name), and the agent's vsn. "" for a boot-server
  // connection.
  std::string name;
  std::string agent_vsn;
  // `modules` is everything the node has loaded (an agent's hello): the node's other module
  // rows are removed.
  bool replace_modules = false;
};

// One module's outcome in a node's upgrade, as its agent reported it.
struct NodeUpgradeModule {
  std::string module{};
  std::string outcome{};  // loaded, reverted, refused, skipped, ... (the agent's word)
  std::string detail{};   // "" none
};

// The outcomes of a plan on a node, as codestore_agent_apply:apply/2 reports them
// (docs/plan-apply.md, "The report"): applied (switched, probe passed), already (the node ran
// the plan's TO), refused (nothing touched), aborted (stopped before the switch, nothing
// changed), reverted (back at FROM after a failure past the switch), failed (could not be undone).
inline constexpr std::string_view kUpgradeOutcomes[] = {"applied", "already",  "refused",
                                                        "aborted", "reverted", "failed"};

inline bool is_upgrade_outcome(std::string_view outcome) {
  for (std::string_view o : kUpgradeOutcomes) {
    if (o == outcome) return true;
  }
  return false;
}

// The generation a node runs after a plan from `from` to `to` ended with `outcome`: `to` when
// applied or already, `from` when reverted or aborted; 0 (not known) when refused or failed.
inline std::int64_t generation_after(std::string_view outcome, std::int64_t from, std::int64_t to) {
  if (outcome == "applied" || outcome == "already") return to;
  if (outcome == "reverted" || outcome == "aborted") return from;
  return 0;
}

// One outcome an agent reported for a generation of its channel (Store::record_node_upgrade,
// Store::node_upgrades): what the history keeps of a live upgrade.
struct NodeUpgrade {
  std::int64_t id = 0;    // node_upgrades.id (0: not recorded yet)
  std::int64_t node = 0;  // nodes.id (0 none; the node may have been forgotten since)
  std::string node_name{};
  std::string channel{};
  std::int64_t from_generation = 0, to_generation = 0;
  std::string outcome{};         // one of kUpgradeOutcomes
  std::int64_t reported_at = 0;  // Unix seconds (0: now, when recording)
  std::int64_t duration_ms = 0;
  std::uint64_t suspended = 0, blocking = 0, killed = 0;  // processes
  std::vector<NodeUpgradeModule> modules{};
  std::string report{};  // the agent's report as Erlang term text (~tw)
  std::string reason{};  // the report's `reason` as Erlang term text ("" none: applied, already)
};

// One canary of a rollout, and what it reported for the candidate ("" nothing yet).
struct RolloutCanary {
  std::string node_name{};
  std::string outcome{};
};

// A canary rollout (`deploy --canary N`; Store::rollouts). The decision is the store's: the
// report of the last canary to apply the candidate promotes it (in the transaction that records
// that report), a canary's report of anything else drops it.
struct Rollout {
  std::int64_t id = 0;
  std::string channel{};
  std::int64_t base = 0;                      // the channel's current generation when the candidate was made
  std::int64_t candidate = 0;                 // the candidate generation
  std::int64_t canaries = 0;                  // how many canaries it wants
  std::string release{};                      // NAME@VSN deployed ("" none)
  std::string state{};                        // pending, promoted or dropped
  std::string reason{};                       // why it ended ("" while pending)
  std::int64_t created_at = 0, ended_at = 0;  // Unix seconds (ended_at 0 while pending)
  std::vector<RolloutCanary> nodes{};         // the canaries chosen so far, by name
};

// Which nodes Store::nodes lists. Every member has a default initializer, so that
// `{.channel = "prod"}` names only what it sets.
struct NodeQuery {
  std::string channel{};        // "" every channel
  bool with_modules = false;    // fill NodeInfo::modules
  std::string name{};           // "" every node; else only the agent nodes of this Erlang node name
  std::int64_t seen_since = 0;  // only nodes last seen at or after (Unix seconds; 0 all)
};

// One recorded node, and whether it is behind its channel.
struct NodeInfo {
  std::int64_t id = 0;
  std::string address, server, client_root, channel, erts_vsn;
  ReleaseId release;            // the release whose files it read last ({} none)
  std::int64_t generation = 0;  // the channel's generation when it was first served
  std::int64_t first_seen = 0, last_seen = 0;
  std::uint64_t requests = 0;
  std::uint64_t modules_fetched = 0;  // module images sent (every fetch counted)
  std::size_t module_count = 0;       // distinct modules fetched (NodeModule rows)
  std::vector<NodeModule> modules;    // by module name, with NodeQuery::with_modules
  std::string name, agent_vsn;        // an agent's node: its Erlang node name ("" none)
  bool excluded = false;              // `nodes exclude`: never upgraded automatically
  bool agent_connected = false;       // its agent is connected to a serve (as the serves said)
  NodeUpgrade last_upgrade;           // the newest outcome its agent reported (id 0: none), no modules

  // Against the channel now (docs/model.md, "Nodes"; all 0/{}/false without a channel):
  std::int64_t channel_generation = 0;  // the channel's current generation
  ReleaseId channel_release;            // the release the current generation runs ({} none)
  // The newest generation of the channel that pins every module the node fetched, each at the
  // MD5 it fetched: the generation its code is. 0: none does (it fetched code the channel never
  // ran together: mixed, or from another channel or an undeployed release). Equal to
  // `channel_generation` when the node fetched no module.
  std::int64_t runs_generation = 0;
  // runs_generation < channel_generation (its code is not the current generation's), or its
  // release and the channel's current release are both known and differ.
  bool behind = false;
};

}  // namespace codestore

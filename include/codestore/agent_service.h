// The agent listener: where the node agents (agent/, the Erlang application codestore_agent)
// connect to follow their channel (docs/agent-protocol.md has the frames and the rules).
//
//   codestore::server::AgentServiceOptions opts;
//   opts.db_path = "app.db";                      // the store; its channels' generations
//   opts.port = 0;                                // any free port (default kDefaultAgentPort)
//   auto agents = codestore::server::AgentService::start(opts);
//   ...                                           // `deploy` in another process: each agent of the
//   (*agents)->stop();                            // channel is sent {generation, C, G, PlanTerm}
//
// Frames both ways are {packet, 4}: a u32 big-endian length, then term_to_binary(Term). An
// agent says hello (its node name, release, loaded modules with their MD5s); the service
// records it as a node (Store::record_nodes, by node name), answers with a welcome (its
// channel and that channel's current generation), and whenever the channel's current
// generation changes (a deploy or rollback committed by any process: the store's generation()
// is polled every poll_interval) sends each of its agents the new generation with the plan from
// the generation the agent runs (plan_generation_upgrade, as the term plan_term.h writes). The
// outcome each agent reports goes into the store (Store::record_node_upgrade: the history and
// `codestore nodes`). An agent that sends what is no frame of the protocol is dropped; the
// others never notice.
//
// Thread safety: AgentService is safe for concurrent use: stop(), port(), agents() and stats()
// may be called from any thread. One thread of its own does all socket I/O and every store call.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>
#include <codestore/upgrade_plan.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace codestore {
class Store;
}

namespace codestore::server {

// `codestore serve --agent-port`'s default.
inline constexpr std::uint16_t kDefaultAgentPort = 4380;

struct AgentServiceOptions {
  // The store (a path or a postgresql:// URI) whose channels the agents follow.
  std::string db_path;
  // The channel of an agent that names none in its hello.
  std::string default_channel = "default";
  std::string bind_address = "0.0.0.0";
  // TCP port; 0 picks a free one.
  std::uint16_t port = kDefaultAgentPort;
  // Agents allowed to connect: IPv4 addresses or a.b.c.d/len subnets.
  std::vector<std::string> allow = {"127.0.0.1"};
  // Limits against broken or hostile peers.
  std::size_t max_frame_bytes = 16u << 20;          // an agent's frame larger is refused (dropped)
  std::size_t max_agents = 1024;                    // more are closed at once
  std::chrono::milliseconds hello_timeout{10'000};  // from accept to the hello
  std::chrono::milliseconds send_timeout{10'000};   // to send one frame
  // How often the store's generation is compared (a deploy reaches the agents this fast).
  std::chrono::milliseconds poll_interval{100};
  // One line per event (agents connecting, announcements, reports, refusals). Called from the
  // service's thread. Empty: no log.
  std::function<void(std::string_view line)> log;
  // The plan term for a generation change; empty: codestore::plan_term (plan_term.h).
  std::function<Result<etf::Term>(Store&, const UpgradePlan&)> plan_term;
};

// One connected agent that said hello.
struct AgentInfo {
  std::string name;     // its Erlang node name
  std::string address;  // "ip:port"
  std::string channel;
  std::int64_t node = 0;        // nodes.id
  std::int64_t generation = 0;  // the generation it runs, as far as the service knows
  std::int64_t announced = 0;   // the last generation it was sent (0: none)
  int protocol = 1;             // the protocol its hello said (docs/agent-protocol.md)
  bool excluded = false;        // `nodes exclude`: sent no generation
  bool canary = false;          // a canary of its channel's pending rollout
};

struct AgentServiceStats {
  std::uint64_t accepted = 0;       // connections accepted
  std::uint64_t refused = 0;        // connections closed at once (address, limit) or hellos refused
  std::uint64_t hellos = 0;         // agents welcomed
  std::uint64_t dropped = 0;        // agents dropped for a bad frame, a timeout or a failed send
  std::uint64_t announcements = 0;  // generations sent
  std::uint64_t reports = 0;        // outcomes recorded
};

class AgentService {
 public:
  // Opens the store, binds the socket and starts the service's thread. kInvalidArgument for a bad
  // option (address, allow), kIOError when the port cannot be bound, the store's error when it
  // cannot be opened.
  static Result<std::unique_ptr<AgentService>> start(const AgentServiceOptions& options);
  // Stops (as stop()).
  ~AgentService();
  AgentService(const AgentService&) = delete;
  AgentService& operator=(const AgentService&) = delete;

  std::uint16_t port() const noexcept;
  // Closes every connection and the socket and joins the thread. Idempotent.
  void stop();
  // The agents connected now that said hello, by node name.
  std::vector<AgentInfo> agents() const;
  AgentServiceStats stats() const;

  class Impl;

 private:
  explicit AgentService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace codestore::server

// The node agent's ebin (agent/, docs/agent-protocol.md), embedded in the server library at
// build time (agent/agent_embed.cmake), so that `serve` offers every channel the agent that
// was built with it, whatever is installed where: lib/codestore_agent-<vsn>/ebin/* and
// lib/codestore_agent/ebin/*.
//
// Thread safety: immutable data; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace codestore::server {

struct AgentFile {
  std::string_view name;  // "codestore_agent.beam", "codestore_agent.app"
  std::span<const std::uint8_t> bytes;
};

// The agent application's vsn (the project's version).
std::string_view agent_vsn();
// Every file of its ebin, sorted by name.
const std::vector<AgentFile>& agent_ebin();

}  // namespace codestore::server

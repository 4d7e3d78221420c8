// Socket helpers the boot server (boot_server.cpp) and the agent listener (agent_service.cpp)
// share: peer and time text for the logs, poll() deadlines, and sending one {packet, 4} frame.
//
// Thread safety: free functions without shared state; thread-safe.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace codestore::server {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err);
// "ip:port".
std::string peer_text(const sockaddr_in& a);
// The log's time stamp: "2026-12-04T05:50:52.123Z".
std::string utc_now();
// Milliseconds left until `deadline` for poll(): 0 when it has passed.
int remaining_ms(Clock::time_point deadline);

// Why a read or a send stopped short.
enum class IoEnd { kDone, kClosed, kTimeout, kError };

// Sends one frame (a u32 big-endian length, `payload`, then `body`) on the non-blocking socket
// `fd` before `deadline`, in one sendmsg when the socket takes it all: a module image goes out
// from the cache as it is.
IoEnd send_frame(int fd, std::span<const std::uint8_t> payload, Clock::time_point deadline,
                 std::span<const std::uint8_t> body = {});

}  // namespace codestore::server

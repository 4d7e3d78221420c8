// socket_io.h: what the boot server and the agent listener share.
#include "socket_io.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace codestore::server {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string peer_text(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return fmt::format("{}:{}", buf, ntohs(a.sin_port));
}

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

IoEnd send_frame(int fd, std::span<const std::uint8_t> payload, Clock::time_point deadline,
                 std::span<const std::uint8_t> body) {
  auto n = static_cast<std::uint32_t>(payload.size() + body.size());
  std::uint8_t header[4] = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                            static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  const std::span<const std::uint8_t> parts[3] = {std::span<const std::uint8_t>(header, 4), payload, body};
  std::size_t total = 4 + payload.size() + body.size();
  std::size_t sent = 0;
  while (sent < total) {
    iovec iov[3];
    int count = 0;
    std::size_t skip = sent;
    for (const auto& part : parts) {
      if (skip >= part.size()) {
        skip -= part.size();
        continue;
      }
      iov[count++] = {const_cast<std::uint8_t*>(part.data()) + skip, part.size() - skip};
      skip = 0;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (w > 0) {
      sent += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return IoEnd::kError;
    pollfd p{fd, POLLOUT, 0};
    int left = remaining_ms(deadline);
    if (left == 0) return IoEnd::kTimeout;
    int pr = ::poll(&p, 1, left);
    if (pr == 0) return IoEnd::kTimeout;
    if (pr < 0 && errno != EINTR) return IoEnd::kError;
  }
  return IoEnd::kDone;
}

}  // namespace codestore::server

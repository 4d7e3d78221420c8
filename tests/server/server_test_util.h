// Helpers shared by the boot-server tests: an in-memory ModuleSource,
// and a raw loopback client that speaks the framing by hand (so tests can also send what
// no well-behaved node would).
//
// Thread safety: FakeSource is safe for concurrent calls (a mutex guards its maps); the
// other helpers are thread-compatible.
#pragma once

#include <arpa/inet.h>
#include <codestore/boot_server.h>
#include <codestore/term.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace codestore::server::testing {

using codestore::testing::TempDir;

// Modules keyed by name; each has one served version in one lib.
class FakeSource : public ModuleSource {
 public:
  void put(const std::string& lib, const std::string& module, std::int64_t version,
           const std::string& bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    ServedModule m;
    m.lib = lib;
    m.module = module;
    m.version = version;
    m.size = bytes.size();
    m.active_since = 1700000000 + version;
    m.md5 = "00112233445566778899aabbccddeeff";
    modules_[module] = m;
    images_[module + "#" + std::to_string(version)] = std::vector<std::uint8_t>(bytes.begin(), bytes.end());
  }
  std::vector<std::string> served_log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return served_;
  }

  std::string describe() const override { return "fake source"; }
  Result<std::vector<std::string>> libs() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, m] : modules_) {
      if (std::find(out.begin(), out.end(), m.lib) == out.end()) out.push_back(m.lib);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  Result<std::vector<ServedModule>> modules(std::string_view lib) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ServedModule> out;
    for (const auto& [name, m] : modules_) {
      if (m.lib == lib) out.push_back(m);
    }
    return out;
  }
  Result<ServedModule> find(std::string_view module) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = modules_.find(std::string(module));
    if (it == modules_.end()) return error(Code::kNotFound, "no module");
    return it->second;
  }
  Result<ImageBytes> image(const ServedModule& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = images_.find(m.module + "#" + std::to_string(m.version));
    if (it == images_.end()) return error(Code::kNotFound, "no image");
    return std::make_shared<const std::vector<std::uint8_t>>(it->second);
  }
  Status record_served(const ServedModule& m, std::string_view peer) override {
    std::lock_guard<std::mutex> lock(mu_);
    served_.push_back(m.module + " v" + std::to_string(m.version) + " to " + std::string(peer).substr(0, 9));
    return Status::ok();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ServedModule> modules_;              // guarded by mu_
  std::map<std::string, std::vector<std::uint8_t>> images_;  // guarded by mu_
  std::vector<std::string> served_;                          // guarded by mu_
};

// A blocking loopback TCP client with a deadline on every read.
class RawClient {
 public:
  // Connects to 127.0.0.1:port, from `from` (another loopback address) when given.
  explicit RawClient(std::uint16_t port, const char* from = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (from != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, from, &local.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool send_raw(const std::vector<std::uint8_t>& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  bool send_frame(const std::vector<std::uint8_t>& payload) {
    auto n = static_cast<std::uint32_t>(payload.size());
    std::vector<std::uint8_t> f = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    f.insert(f.end(), payload.begin(), payload.end());
    return send_raw(f);
  }
  bool send_term(const etf::Term& t) { return send_frame(etf::encode(t)); }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // One answer frame, or nullopt on close/timeout.
  std::optional<std::vector<std::uint8_t>> recv_frame(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::uint8_t h[4];
    if (!read_exact(h, 4, timeout)) return std::nullopt;
    std::uint32_t n =
        (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) | (std::uint32_t{h[2]} << 8) | h[3];
    std::vector<std::uint8_t> body(n);
    if (n > 0 && !read_exact(body.data(), n, timeout)) return std::nullopt;
    return body;
  }
  std::optional<etf::Term> recv_term(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto f = recv_frame(timeout);
    if (!f) return std::nullopt;
    auto t = etf::decode(*f);
    if (!t) return std::nullopt;
    return *t;
  }
  // True when the server closed the connection (EOF) within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    std::uint8_t b;
    ssize_t r = ::recv(fd_, &b, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }

 private:
  bool read_exact(std::uint8_t* buf, std::size_t n, std::chrono::milliseconds timeout) {
    std::size_t got = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got < n) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      ssize_t r = ::recv(fd_, buf + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
};

inline etf::Term req(std::string_view cmd, std::string_view path) {
  return etf::Term::tuple({etf::Term::atom(cmd), etf::Term::string(path)});
}

}  // namespace codestore::server::testing

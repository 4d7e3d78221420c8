// Releases made of installed applications (Debian's yaws, ejabberd and their dependencies),
// for tests and benchmarks that import them into a store and boot nodes from it: where the
// applications are, debian_release.escript run as a child (a systools release directory that
// `codestore import` takes), ejabberd's arguments and configuration, and plain TCP exchanges
// with what such a node serves.
//
// Thread safety: free functions over the file system and sockets; safe to call from several
// threads on distinct paths.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "subprocess.h"
#include "support/files.h"

namespace codestore::server::testing {

// The newest directory `parent`/`prefix`* that holds ebin/`app`.app (Debian's names need not
// be the application's: p1_tls-1.1.16 holds fast_tls), or "".
inline std::string installed_app_dir(const std::filesystem::path& parent, const std::string& prefix,
                                     const std::string& app) {
  std::error_code ec;
  std::vector<std::filesystem::path> found;
  for (std::filesystem::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(prefix, 0) == 0 &&
        std::filesystem::exists(it->path() / "ebin" / (app + ".app")))
      found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? "" : found.back().string();
}

// Debian's ejabberd (/usr/lib/<arch>/ejabberd-<vsn>, its dependencies in /usr/lib/erlang/lib),
// or "" when it is not installed.
inline std::string installed_ejabberd() {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/usr/lib", ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory()) continue;
    std::string dir = installed_app_dir(it->path(), "ejabberd-", "ejabberd");
    if (!dir.empty()) return dir;
  }
  return "";
}

// `debian_release.escript OUT NAME VSN SPEC...` (its header says what a SPEC is: DIR, APP,
// load:DIR, DIR@NEWVSN): OUT becomes a systools release directory (releases/VSN/NAME.rel and
// start.boot, lib/APP-VSN). "" when it was made, else what went wrong; its stderr goes to `log`.
inline std::string make_debian_release(const std::string& out, const std::string& name,
                                       const std::string& vsn, const std::vector<std::string>& specs,
                                       const std::string& log) {
  const std::string escript = find_program("escript");
  if (escript.empty()) return "escript is not installed";
  std::vector<std::string> argv = {
      escript, std::string(CODESTORE_SOURCE_DIR) + "/tests/server/debian_release.escript", out, name, vsn};
  argv.insert(argv.end(), specs.begin(), specs.end());
  Subprocess p(argv, log, false);
  std::string said = p.read_rest(std::chrono::seconds(120));
  auto st = p.wait(std::chrono::seconds(10));
  if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0 || said.rfind("ok ", 0) != 0)
    return said + codestore::testing::read_text(log);
  return "";
}

// Writes `dir`/ejabberd.yml (host localhost, c2s on 127.0.0.1:`port`, no modules) and returns
// the erl arguments that run ejabberd with it, Mnesia in `dir`/mnesia and its log in `dir`.
inline std::vector<std::string> ejabberd_node_args(const std::filesystem::path& dir, std::uint16_t port) {
  const std::string yml = (dir / "ejabberd.yml").string();
  codestore::testing::write_file(
      yml, "hosts: [\"localhost\"]\nloglevel: info\nlisten:\n  -\n    port: " + std::to_string(port) +
               "\n    ip: \"127.0.0.1\"\n    module: ejabberd_c2s\nmodules: {}\n");
  return {"-mnesia",         "dir",      "\"" + (dir / "mnesia").string() + "\"",      "-ejabberd", "config",
          "\"" + yml + "\"", "log_path", "\"" + (dir / "ejabberd.log").string() + "\""};
}

// A free loopback TCP port (bound and released: a node binds it right after), or 0.
inline std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// Sends `request` to 127.0.0.1:`port` and reads until the answer holds `until`, the peer
// closes, or `timeout` passes; what was read ("" when nothing listens).
inline std::string tcp_exchange(std::uint16_t port, const std::string& request, const std::string& until,
                                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.find(until) == std::string::npos) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

// An XMPP client's stream header to host localhost; ejabberd's answer holds kXmppAnswered.
inline const std::string kXmppStreamHeader =
    "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
inline const std::string kXmppAnswered = "from='localhost'";

}  // namespace codestore::server::testing

// The boot server's sockets and threads. One loop thread polls the discovery socket and
// the listening socket; each accepted connection gets its own thread (bounded by
// max_connections), because a node sends one request at a time and waits for the answer,
// so a thread per node keeps the code straight and the latency low. All socket I/O is
// non-blocking with poll() deadlines, so no client can hold a thread past its timeouts.
#include <arpa/inet.h>
#include <codestore/boot_server.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "file_service.h"
#include "node_recorder.h"
#include "protocol.h"
#include "socket_io.h"

namespace codestore::server {

namespace {

// A connection's incoming bytes. A request frame (a path, ~60 bytes) usually arrives in
// one segment, so one poll and one recv take the whole frame; bytes past the frame (a
// client that does not wait for its answers) stay for the next.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd), buf_(4096) {}

  // Buffers at least `n` bytes before `deadline`.
  IoEnd need(std::size_t n, Clock::time_point deadline) {
    if (available() >= n) return IoEnd::kDone;
    if (buf_.size() - start_ < n) {
      std::memmove(buf_.data(), buf_.data() + start_, available());
      end_ -= start_;
      start_ = 0;
      if (buf_.size() < n) buf_.resize(n);
    }
    while (available() < n) {
      // Poll first: right after an answer the next request is rarely there yet, so a
      // speculative recv would only fail with EAGAIN.
      pollfd p{fd_, POLLIN, 0};
      int left = remaining_ms(deadline);
      if (left == 0) return IoEnd::kTimeout;
      int pr = ::poll(&p, 1, left);
      if (pr == 0) return IoEnd::kTimeout;
      if (pr < 0) {
        if (errno == EINTR) continue;
        return IoEnd::kError;
      }
      ssize_t r = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (r > 0) {
        end_ += static_cast<std::size_t>(r);
        continue;
      }
      if (r == 0) return IoEnd::kClosed;
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return IoEnd::kError;
    }
    return IoEnd::kDone;
  }
  std::size_t available() const { return end_ - start_; }
  const std::uint8_t* data() const { return buf_.data() + start_; }
  void consume(std::size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }

 private:
  int fd_;
  std::vector<std::uint8_t> buf_;
  std::size_t start_ = 0, end_ = 0;  // the unread bytes are buf_[start_, end_)
};

// Compares dot-separated version strings numerically ("13.10" > "13.9").
bool version_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    unsigned long x = 0, y = 0;
    while (i < a.size() && a[i] != '.') x = x * 10 + static_cast<unsigned long>(a[i++] - '0');
    while (j < b.size() && b[j] != '.') y = y * 10 + static_cast<unsigned long>(b[j++] - '0');
    if (x != y) return x < y;
    ++i;
    ++j;
  }
  return false;
}

}  // namespace

Result<std::string> find_erts_version(const std::string& root) {
  std::ifstream data(root + "/releases/start_erl.data");
  std::string vsn;
  if (data && (data >> vsn) && !vsn.empty()) return vsn;
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr)
    return error(Code::kNotFound, fmt::format("erts version: cannot read {}: {}", root, errno_text(errno)));
  std::string best;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() <= 5 || n.substr(0, 5) != "erts-") continue;
    std::string v(n.substr(5));
    if (!std::all_of(v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) continue;
    if (best.empty() || version_less(best, v)) best = v;
  }
  ::closedir(d);
  if (best.empty())
    return error(Code::kNotFound, "erts version: no releases/start_erl.data and no erts-* in " + root);
  return best;
}

// Thread safety: the counters are atomics; `conns_` is guarded by `conns_mu_`; the log
// callback is serialized by `log_mu_`; `recorder_` is safe for concurrent use (its own
// thread writes); everything else is fixed after start().
class BootServer::Impl {
 public:
  Impl(const BootServerOptions& options, ModuleSource& source, const std::string& root, std::string version,
       std::vector<Subnet> allowed, Routing routing)
      : options_(options),
        source_(source),
        files_(root, source, options.max_file_bytes, std::move(routing), options.agent_port),
        version_(std::move(version)),
        allowed_(std::move(allowed)) {}

  ~Impl() { stop(); }

  Status open_sockets();
  void start_loop() {
    if (options_.record_nodes && source_.records_nodes()) {
      recorder_ = std::make_unique<NodeRecorder>(source_, options_.node_report_interval,
                                                 [this](std::string_view line) { log(line); });
    }
    loop_ = std::thread([this] { loop(); });
  }
  void stop();
  BootServerStats stats() const;
  void log(std::string_view line);

  std::uint16_t tcp_port_ = 0;
  std::uint16_t udp_port_ = 0;
  const std::string& version() const { return version_; }

 private:
  struct Conn {
    int fd = -1;
    std::uint64_t number = 0;  // the server's own count, for the node recorder
    std::string peer;
    std::uint32_t address = 0;  // the peer's IPv4 address, host byte order
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void loop();
  void on_datagram();
  void on_accept();
  void serve(Conn& conn);
  void reap(bool all);
  bool allowed(std::uint32_t host_order_address) const;

  const BootServerOptions options_;
  ModuleSource& source_;
  const FileService files_;
  const std::string version_;
  const std::vector<Subnet> allowed_;

  int udp_fd_ = -1;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread loop_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;  // serializes stop()
  bool stopped_ = false;

  std::mutex conns_mu_;
  std::list<std::unique_ptr<Conn>> conns_;  // guarded by conns_mu_

  std::mutex log_mu_;

  std::unique_ptr<NodeRecorder> recorder_;  // null when nodes are not recorded
  std::uint64_t next_conn_ = 0;             // the loop thread's alone (on_accept)

  // Per request kind (indexed by protocol::Command): answers and the time spent working
  // them out.
  struct KindCounter {
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> ns{0};
    void add(Clock::duration d) {
      ++count;
      ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    }
    BootServerStats::RequestKind load() const { return {count.load(), ns.load()}; }
  };
  std::array<KindCounter, 5> kinds_;

  std::atomic<std::uint64_t> discovery_answered_{0}, discovery_refused_{0}, connections_{0},
      connections_refused_{0}, requests_{0}, bad_requests_{0}, modules_served_{0}, fallback_served_{0};
};

void BootServer::Impl::log(std::string_view line) {
  if (!options_.log) return;
  std::string full = utc_now() + " " + std::string(line);
  std::lock_guard<std::mutex> lock(log_mu_);
  options_.log(full);
}

bool BootServer::Impl::allowed(std::uint32_t a) const {
  return std::any_of(allowed_.begin(), allowed_.end(), [a](const Subnet& s) { return s.contains(a); });
}

Status BootServer::Impl::open_sockets() {
  in_addr bind_addr{};
  if (::inet_pton(AF_INET, options_.bind_address.c_str(), &bind_addr) != 1) {
    return Status(Code::kInvalidArgument, "bind address '" + options_.bind_address + "' is no IPv4 address");
  }
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
    return Status(Code::kIOError, "pipe: " + errno_text(errno));

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return Status(Code::kIOError, "tcp socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = bind_addr;
  a.sin_port = htons(options_.tcp_port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 128) != 0) {
    return Status(Code::kIOError, fmt::format("tcp port {}: {}", options_.tcp_port, errno_text(errno)));
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  tcp_port_ = ntohs(a.sin_port);

  if (options_.udp_port >= 0) {
    if (options_.udp_port > 65535) return Status(Code::kInvalidArgument, "udp port out of range");
    udp_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (udp_fd_ < 0) return Status(Code::kIOError, "udp socket: " + errno_text(errno));
    // No SO_REUSEADDR: as with OTP, a second boot server on the host must fail to start
    // rather than share the discovery port.
    sockaddr_in u{};
    u.sin_family = AF_INET;
    u.sin_addr = bind_addr;
    u.sin_port = htons(static_cast<std::uint16_t>(options_.udp_port));
    if (::bind(udp_fd_, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0) {
      int err = errno;
      return Status(Code::kIOError,
                    fmt::format("udp port {}: {}{}", options_.udp_port, errno_text(err),
                                err == EADDRINUSE ? " (another boot server runs on this host)" : ""));
    }
    len = sizeof u;
    ::getsockname(udp_fd_, reinterpret_cast<sockaddr*>(&u), &len);
    udp_port_ = ntohs(u.sin_port);
  }
  return Status::ok();
}

void BootServer::Impl::loop() {
  while (!stopping_.load()) {
    pollfd fds[3];
    nfds_t n = 0;
    fds[n++] = {wake_[0], POLLIN, 0};
    fds[n++] = {listen_fd_, POLLIN, 0};
    if (udp_fd_ >= 0) fds[n++] = {udp_fd_, POLLIN, 0};
    // The timeout only paces the reaping of finished connection threads.
    int pr = ::poll(fds, n, 1000);
    if (pr < 0 && errno != EINTR) {
      log(fmt::format("error: poll: {}", errno_text(errno)));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (stopping_.load() || (fds[0].revents & POLLIN) != 0) break;
    if (pr > 0) {
      if (udp_fd_ >= 0 && (fds[2].revents & POLLIN) != 0) on_datagram();
      if ((fds[1].revents & POLLIN) != 0) on_accept();
    }
    reap(false);
  }
}

void BootServer::Impl::on_datagram() {
  for (int i = 0; i < 64; ++i) {  // drain, but let accepts interleave under a flood
    std::uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t r = ::recvfrom(udp_fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log(fmt::format("error: discovery recvfrom: {}", errno_text(errno)));
      }
      return;
    }
    std::string peer = peer_text(from);
    if (!allowed(ntohl(from.sin_addr.s_addr))) {
      ++discovery_refused_;
      log(fmt::format("refused discovery from {}: not an allowed address", peer));
      continue;
    }
    auto version = protocol::parse_discovery(std::span<const std::uint8_t>(buf, static_cast<std::size_t>(r)));
    if (!version) {
      ++discovery_refused_;
      log(fmt::format("refused discovery from {}: unrecognizable request ({} bytes)", peer, r));
      continue;
    }
    if (*version != version_) {
      ++discovery_refused_;
      log(fmt::format("refused discovery from {}: client version is {}, this server's is {}", peer,
                      version->substr(0, 64), version_));
      continue;
    }
    auto reply = protocol::discovery_reply(options_.priority, tcp_port_, version_);
    // Counted before sending, so that a client holding the answer sees the count too.
    ++discovery_answered_;
    if (::sendto(udp_fd_, reply.data(), reply.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&from), len) <
        0) {
      log(fmt::format("error: discovery reply to {}: {}", peer, errno_text(errno)));
      continue;
    }
    log(fmt::format("discovery from {} (version {}): answered with tcp port {}", peer, *version, tcp_port_));
  }
}

void BootServer::Impl::on_accept() {
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log(fmt::format("error: accept: {}", errno_text(errno)));
        // Out of descriptors: back off instead of spinning on a listen socket that stays readable.
        if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return;
    }
    std::string peer = peer_text(from);
    if (!allowed(ntohl(from.sin_addr.s_addr))) {
      ++connections_refused_;
      ::close(fd);
      log(fmt::format("refused connection from {}: not an allowed address", peer));
      continue;
    }
    std::lock_guard<std::mutex> lock(conns_mu_);
    std::size_t active = static_cast<std::size_t>(
        std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return !c->done.load(); }));
    if (active >= options_.max_connections) {
      ++connections_refused_;
      ::close(fd);
      log(fmt::format("refused connection from {}: {} connections already (--max-connections)", peer,
                      active));
      continue;
    }
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    conn->peer = peer;
    conn->address = ntohl(from.sin_addr.s_addr);
    conn->number = ++next_conn_;
    Conn* raw = conn.get();
    try {
      conn->thread = std::thread([this, raw] {
        try {
          serve(*raw);
        } catch (const std::exception& e) {
          log(fmt::format("error: {}: connection ended: {}", raw->peer, e.what()));
        }
        raw->done.store(true);
      });
    } catch (const std::system_error& e) {
      ++connections_refused_;
      ::close(fd);
      log(fmt::format("refused connection from {}: no thread: {}", peer, e.what()));
      continue;
    }
    ++connections_;
    conns_.push_back(std::move(conn));
  }
}

void BootServer::Impl::serve(Conn& conn) {
  const int fd = conn.fd;
  const std::string& peer = conn.peer;
  int one = 1;
  // Answers are written in one sendmsg; requests are small and strictly alternate with
  // answers, so Nagle would only add a delay to every round trip.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  log(fmt::format("connection from {}", peer));
  std::optional<NodeTracker> node;
  if (recorder_) {
    sockaddr_in local{};
    socklen_t local_len = sizeof local;
    std::string server =
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0 ? peer_text(local) : "";
    node.emplace(peer, std::move(server), version_, options_.node_report_interval);
  }
  FrameReader in(fd);
  std::uint64_t served = 0;
  std::string end = "closed by the client";
  while (!stopping_.load()) {
    IoEnd e = in.need(1, Clock::now() + options_.idle_timeout);
    if (e != IoEnd::kDone) {
      // Between frames: a clean end, whatever the reason.
      if (e == IoEnd::kTimeout) end = "idle timeout";
      if (e == IoEnd::kError) end = "error: " + errno_text(errno);
      break;
    }
    e = in.need(4, Clock::now() + options_.request_timeout);
    if (e != IoEnd::kDone) {
      ++bad_requests_;
      const char* reason = e == IoEnd::kTimeout ? "timeout" : "truncated";
      (void)send_frame(fd, protocol::error_reply(reason), Clock::now() + options_.request_timeout);
      end =
          fmt::format("truncated frame header: {} of 4 bytes: answered {{error,{}}}", in.available(), reason);
      break;
    }
    std::uint32_t length = protocol::frame_length(in.data());
    if (length > options_.max_request_bytes) {
      ++bad_requests_;
      // The frame cannot be skipped without reading it, so the connection ends here.
      (void)send_frame(fd, protocol::error_reply("emsgsize"), Clock::now() + options_.request_timeout);
      end = fmt::format("request frame of {} bytes, limit {}: answered {{error,emsgsize}}", length,
                        options_.max_request_bytes);
      break;
    }
    e = in.need(4 + std::size_t{length}, Clock::now() + options_.request_timeout);
    if (e != IoEnd::kDone) {
      ++bad_requests_;
      const char* reason = e == IoEnd::kTimeout ? "timeout" : "truncated";
      (void)send_frame(fd, protocol::error_reply(reason), Clock::now() + options_.request_timeout);
      end = fmt::format("truncated frame: {} of {} bytes ({}): answered {{error,{}}}", in.available() - 4,
                        length, e == IoEnd::kTimeout ? "request timeout" : "connection closed", reason);
      break;
    }
    ++requests_;
    protocol::ParsedRequest parsed =
        protocol::parse_request(std::span<const std::uint8_t>(in.data() + 4, length));
    in.consume(4 + std::size_t{length});
    std::vector<std::uint8_t> reply;
    Answer::Bytes body;  // sent after `reply`: a file's or module's bytes, not copied
    // What is done once the answer is sent: the log line and counting the module served.
    // Neither changes the answer, and the client waits for nothing but the answer.
    std::string line;
    std::optional<ServedModule> sent_module;
    ModuleSource* sent_by = &source_;
    Answer told;  // what the answer tells about the node (its body and reply moved out)
    if (!parsed.request) {
      ++bad_requests_;
      bool undecodable = parsed.error == protocol::RequestError::kUndecodable;
      reply = protocol::error_reply(undecodable ? "badarg" : "unknown_command");
      line = fmt::format("{} bad request ({} bytes): {} -> {}", peer, length, parsed.detail,
                         undecodable ? "{error,badarg}" : "{error,unknown_command}");
    } else {
      const auto t0 = Clock::now();
      Answer a = files_.answer(*parsed.request, conn.address);
      kinds_[static_cast<std::size_t>(parsed.request->command)].add(Clock::now() - t0);
      reply = std::move(a.reply);
      body = std::move(a.body);
      if (a.served) {
        ++modules_served_;
        ++served;
      }
      if (a.fallback_file_served) ++fallback_served_;
      if (options_.log && (options_.log_every_answer || a.served)) {
        line = fmt::format("{} {} {}: {}", peer, protocol::command_name(parsed.request->command),
                           parsed.request->path, a.log);
      }
      sent_module = std::move(a.served);
      if (a.source != nullptr) sent_by = a.source;
      if (node) {
        told.source = a.source;
        told.client_root = std::move(a.client_root);
        told.release = std::move(a.release);
      }
    }
    e = send_frame(fd, reply, Clock::now() + options_.request_timeout,
                   body ? std::span<const std::uint8_t>(*body) : std::span<const std::uint8_t>());
    const int send_errno = errno;
    // Counted in the node's next report when nodes are recorded (one transaction for many), else
    // here, one write per module sent.
    if (e == IoEnd::kDone && sent_module && !node) {
      if (Status s = sent_by->record_served(*sent_module, peer); !s)
        line += "; not counted: " + s.to_string();
    }
    if (node && e == IoEnd::kDone && parsed.request) {
      const auto now = Clock::now();
      told.served = std::move(sent_module);
      node->answered(told, now);
      if (node->due(now)) recorder_->hand_over(conn.number, node->take(now), false);
    }
    if (!line.empty()) log(line);
    if (e != IoEnd::kDone) {
      end = e == IoEnd::kTimeout ? "answer not taken within the request timeout"
                                 : "send failed: " + errno_text(send_errno);
      break;
    }
  }
  if (stopping_.load()) end = "server stopping";
  if (node && node->seen()) recorder_->hand_over(conn.number, node->take(Clock::now()), true);
  // The peer sees the end now; the descriptor itself is closed when the thread is reaped.
  ::shutdown(fd, SHUT_RDWR);
  log(fmt::format("connection from {} ended: {} ({} modules served)", peer, end, served));
}

void BootServer::Impl::reap(bool all) {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (c->thread.joinable()) c->thread.join();
    ::close(c->fd);
  }
}

void BootServer::Impl::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  if (wake_[1] >= 0) {
    char b = 1;
    (void)!::write(wake_[1], &b, 1);
  }
  if (loop_.joinable()) loop_.join();
  {
    // Wakes every connection thread from its poll; the descriptors stay open (and so
    // their numbers unused by anyone else) until the threads are joined.
    std::lock_guard<std::mutex> conns_lock(conns_mu_);
    for (auto& c : conns_) ::shutdown(c->fd, SHUT_RDWR);
  }
  reap(true);
  // After every connection handed over its last report: the nodes are written before stop
  // returns.
  if (recorder_) recorder_->stop();
  for (int* fd : {&udp_fd_, &listen_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  log(fmt::format(
      "stopped: {} connections, {} requests, {} modules served, {} fallback files, {} bad requests",
      connections_.load(), requests_.load(), modules_served_.load(), fallback_served_.load(),
      bad_requests_.load()));
  std::string kinds;
  for (protocol::Command c :
       {protocol::Command::kGet, protocol::Command::kListDir, protocol::Command::kReadFileInfo,
        protocol::Command::kReadLinkInfo, protocol::Command::kGetCwd}) {
    auto k = kinds_[static_cast<std::size_t>(c)].load();
    if (k.count == 0) continue;
    kinds += fmt::format("{}{} {} (mean {:.1f} us)", kinds.empty() ? "" : ", ", protocol::command_name(c),
                         k.count, static_cast<double>(k.answer_ns) / 1000.0 / static_cast<double>(k.count));
  }
  if (!kinds.empty()) log("answers by request kind (time to work one out, not to send it): " + kinds);
}

BootServerStats BootServer::Impl::stats() const {
  BootServerStats s;
  s.discovery_answered = discovery_answered_.load();
  s.discovery_refused = discovery_refused_.load();
  s.connections = connections_.load();
  s.connections_refused = connections_refused_.load();
  s.requests = requests_.load();
  s.bad_requests = bad_requests_.load();
  s.modules_served = modules_served_.load();
  s.fallback_files_served = fallback_served_.load();
  s.get = kinds_[static_cast<std::size_t>(protocol::Command::kGet)].load();
  s.list_dir = kinds_[static_cast<std::size_t>(protocol::Command::kListDir)].load();
  s.read_file_info = kinds_[static_cast<std::size_t>(protocol::Command::kReadFileInfo)].load();
  s.read_link_info = kinds_[static_cast<std::size_t>(protocol::Command::kReadLinkInfo)].load();
  s.get_cwd = kinds_[static_cast<std::size_t>(protocol::Command::kGetCwd)].load();
  return s;
}

Result<std::unique_ptr<BootServer>> BootServer::start(const BootServerOptions& options,
                                                      ModuleSource& source) {
  return start(options, source, {});
}

Result<std::unique_ptr<BootServer>> BootServer::start(const BootServerOptions& options, ModuleSource& source,
                                                      const std::map<std::string, ModuleSource*>& channels) {
  auto routing = Routing::make(options, channels);
  if (!routing) return error(routing.error());
  if (options.root.empty()) return error(Code::kInvalidArgument, "root: empty");
  std::string root = options.root;
  if (root[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return error(Code::kIOError, "getcwd: " + errno_text(errno));
    root = std::string(cwd) + "/" + root;
  }
  root = normalize_path(root, "/");
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return error(Code::kInvalidArgument, "root " + root + ": not a directory");
  }
  std::string version = options.erts_version;
  if (version.empty()) {
    auto found = find_erts_version(root);
    if (!found) return error(found.error().with_context("--erts-version not given"));
    version = *found;
  }
  if (options.allow.empty()) return error(Code::kInvalidArgument, "allow: no address allowed");
  std::vector<Subnet> allowed;
  for (const std::string& a : options.allow) {
    auto s = parse_subnet(a);
    if (!s) return error(s.error());
    allowed.push_back(*s);
  }
  if (options.max_connections == 0) return error(Code::kInvalidArgument, "max_connections: 0");
  std::string routing_text;
  for (const std::string& c : routing->client_roots) routing_text += ", client root " + c;
  for (const Routing::Rule& r : routing->rules) {
    routing_text +=
        fmt::format(", channel {} for {}", r.channel,
                    r.subnet ? "clients in " + options.channel_rules[&r - routing->rules.data()].where
                             : "client root " + r.client_root);
  }
  auto impl = std::make_unique<Impl>(options, source, root, version, std::move(allowed), std::move(*routing));
  if (Status s = impl->open_sockets(); !s) return error(s);
  std::string allow_text;
  for (const std::string& a : options.allow) allow_text += (allow_text.empty() ? "" : ",") + a;
  impl->log(fmt::format("serving {} on tcp {}:{}, discovery udp {}, version {}, fallback {}, allow {}{}",
                        source.describe(), options.bind_address, impl->tcp_port_,
                        impl->udp_port_ == 0 ? std::string("off") : std::to_string(impl->udp_port_), version,
                        root, allow_text, routing_text));
  impl->start_loop();
  return std::unique_ptr<BootServer>(new BootServer(std::move(impl)));
}

BootServer::BootServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BootServer::~BootServer() {
  stop();
}
std::uint16_t BootServer::tcp_port() const noexcept {
  return impl_->tcp_port_;
}
std::uint16_t BootServer::udp_port() const noexcept {
  return impl_->udp_port_;
}
const std::string& BootServer::erts_version() const noexcept {
  return impl_->version();
}
void BootServer::stop() {
  impl_->stop();
}
BootServerStats BootServer::stats() const {
  return impl_->stats();
}

}  // namespace codestore::server

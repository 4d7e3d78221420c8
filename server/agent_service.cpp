// The agent listener (agent_service.h; the protocol: docs/agent-protocol.md). One thread polls
// the listening socket, every agent's socket and a wake pipe, and every poll_interval compares
// the store's generation: agents are few (one per node) and mostly quiet, and what they send
// (a hello, a report) is written to the store at once, so one thread keeps the order of
// announcements and reports per agent without locks around the store. Sends have a deadline
// (send_timeout), so a stuck agent delays the others by at most that much, then is dropped.
#include <arpa/inet.h>
#include <codestore/agent_service.h>
#include <codestore/plan_term.h>
#include <codestore/store.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/hex.h"
#include "file_service.h"
#include "socket_io.h"

namespace codestore::server {

namespace {

using etf::Term;

constexpr std::size_t kMaxReportText = 64 * 1024;  // the report's ~tw text kept in the store

Term bin(std::string_view text) {
  return Term::binary(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

// The value under atom key `key` of a map (nullptr: no such key, or no map).
const Term* map_get(const Term& m, std::string_view key) {
  const auto* map = std::get_if<etf::Map>(&m.value());
  if (map == nullptr) return nullptr;
  for (const auto& [k, v] : map->pairs) {
    if (k.is_atom(key)) return &v;
  }
  return nullptr;
}

// A proplist's or a map's value under `key`.
const Term* field(const Term& t, std::string_view key) {
  if (const Term* v = map_get(t, key)) return v;
  if (const auto* list = t.as_list()) {
    for (const Term& e : list->elements) {
      const auto* tuple = e.as_tuple();
      if (tuple != nullptr && tuple->elements.size() == 2 && tuple->elements[0].is_atom(key))
        return &tuple->elements[1];
    }
  }
  return nullptr;
}

// Text as Erlang carries it: a binary, an atom, a string (a list of character codes < 256, or []).
std::optional<std::string> text_of(const Term* t) {
  if (t == nullptr) return std::nullopt;
  if (const auto* b = t->as_binary()) {
    if (b->bits != 8) return std::nullopt;
    return std::string(b->bytes.begin(), b->bytes.end());
  }
  if (const auto* a = t->as_atom()) return a->name;
  if (t->is_nil()) return std::string();
  if (const auto* l = t->as_list()) {
    if (l->tail) return std::nullopt;
    std::string out;
    for (const Term& e : l->elements) {
      const auto* c = e.as_int();
      if (c == nullptr || *c < 0 || *c > 255) return std::nullopt;
      out.push_back(static_cast<char>(*c));
    }
    return out;
  }
  return std::nullopt;
}

std::optional<std::int64_t> int_of(const Term* t) {
  if (t == nullptr) return std::nullopt;
  if (const auto* i = t->as_int()) return *i;
  return std::nullopt;
}

// A count: an integer, or a list (its length).
std::uint64_t count_of(const Term* t) {
  if (t == nullptr) return 0;
  if (const auto* i = t->as_int()) return *i < 0 ? 0 : static_cast<std::uint64_t>(*i);
  if (const auto* l = t->as_list()) return l->elements.size();
  return 0;
}

std::vector<const Term*> elements(const Term* t) {
  std::vector<const Term*> out;
  if (t == nullptr) return out;
  if (const auto* l = t->as_list()) {
    for (const Term& e : l->elements) out.push_back(&e);
  }
  return out;
}

// The hello's body (docs/agent-protocol.md, "Hello"), as far as the service uses it.
struct Hello {
  int protocol = 1;
  std::string node, agent_vsn, erts_vsn, channel;
  ReleaseId release;
  std::int64_t generation = 0;
  std::vector<std::pair<std::string, std::string>> modules;  // module, md5 as hex
};

Result<Hello> parse_hello(const Term& body) {
  Hello h;
  auto bad = [](std::string_view why) -> Result<Hello> {
    return error(Code::kInvalidArgument, fmt::format("hello: {}", why));
  };
  if (std::get_if<etf::Map>(&body.value()) == nullptr) return bad("not a map");
  // 1: announcements are {generation, C, G, Plan}; 2: {generation, C, G, Plan, Opts}.
  auto protocol = int_of(map_get(body, "protocol"));
  if (!protocol || (*protocol != 1 && *protocol != 2)) return bad("protocol: not 1 or 2");
  h.protocol = static_cast<int>(*protocol);
  // `name` (what the agent calls its node: node() when alive, else made unique) over `node`
  // (node(), nonode@nohost on every node that is not alive).
  auto node = text_of(map_get(body, "name"));
  if (!node) node = text_of(map_get(body, "node"));
  if (!node || node->empty()) return bad("name: no node name");
  h.node = *node;
  h.agent_vsn = text_of(map_get(body, "agent_vsn")).value_or("");
  h.erts_vsn = text_of(map_get(body, "erts_vsn")).value_or("");
  if (const Term* c = map_get(body, "channel"); c != nullptr && !c->is_atom("undefined")) {
    auto ch = text_of(c);
    if (!ch) return bad("channel: not text");
    h.channel = *ch;
  }
  if (const Term* r = map_get(body, "release");
      r != nullptr && r->as_tuple() != nullptr && r->as_tuple()->elements.size() == 2) {
    h.release = {text_of(&r->as_tuple()->elements[0]).value_or(""),
                 text_of(&r->as_tuple()->elements[1]).value_or("")};
  }
  h.generation = int_of(map_get(body, "generation")).value_or(0);
  if (h.generation < 0) return bad("generation: negative");
  const Term* modules = map_get(body, "modules");
  if (modules == nullptr || (!modules->is_nil() && modules->as_list() == nullptr))
    return bad("modules: not a list");
  for (const Term* e : elements(modules)) {
    const auto* t = e->as_tuple();
    if (t == nullptr || t->elements.size() != 2 || t->elements[0].as_atom() == nullptr ||
        t->elements[1].as_binary() == nullptr || t->elements[1].as_binary()->bytes.size() != 16)
      return bad("modules: not a list of {Module, MD5}");
    h.modules.emplace_back(t->elements[0].as_atom()->name, base::hex(t->elements[1].as_binary()->bytes));
  }
  return h;
}

// A report's modules (docs/agent-protocol.md, "Reports"): a list of maps (or proplists) with
// module and outcome (and detail), or of {Module, Outcome} / {Module, Outcome, Detail}; or a
// map Module => Outcome. codestore_agent_apply's entries say the code the node runs after it
// all, #{module, md5 => <<"hex">> | not_loaded, file}: outcome "loaded" with the MD5 as detail,
// or "not_loaded".
std::vector<NodeUpgradeModule> report_modules(const Term* t) {
  std::vector<NodeUpgradeModule> out;
  if (t == nullptr) return out;
  auto text = [](const Term* x) -> std::string {
    if (x == nullptr) return {};
    if (auto s = text_of(x)) return *s;
    return etf::format_w(*x);
  };
  if (const auto* m = std::get_if<etf::Map>(&t->value())) {
    for (const auto& [k, v] : m->pairs) out.push_back({text(&k), text(&v), {}});
    return out;
  }
  for (const Term* e : elements(t)) {
    if (const auto* tuple = e->as_tuple(); tuple != nullptr && tuple->elements.size() >= 2) {
      out.push_back({text(&tuple->elements[0]), text(&tuple->elements[1]),
                     tuple->elements.size() > 2 ? text(&tuple->elements[2]) : std::string()});
    } else if (const Term* mod = field(*e, "module")) {
      if (field(*e, "outcome") == nullptr) {
        if (const Term* md5 = field(*e, "md5")) {
          const bool loaded = md5->as_atom() == nullptr;
          out.push_back({text(mod), loaded ? "loaded" : "not_loaded", loaded ? text(md5) : std::string()});
          continue;
        }
      }
      std::string detail;
      if (const Term* d = field(*e, "detail"))
        detail = text(d);
      else if (const Term* d2 = field(*e, "reason"))
        detail = text(d2);
      out.push_back({text(mod), text(field(*e, "outcome")), detail});
    }
  }
  std::erase_if(out, [](const NodeUpgradeModule& m) { return m.module.empty(); });
  return out;
}

// Printable as ~tp prints it in quotes: no control character but newline, and no quote or
// backslash (those would need escaping; such text shows as ~tw shows it). `utf8`: bytes from
// 0x80 up are taken as UTF-8 (a binary's); a list's characters are code points, kept to ASCII.
bool printable_text(const std::string& bytes, bool utf8) {
  return !bytes.empty() && std::all_of(bytes.begin(), bytes.end(), [utf8](char ch) {
    const auto c = static_cast<std::uint8_t>(ch);
    return (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') || (utf8 && c >= 0x80) || c == '\n';
  });
}

std::string quoted(const std::string& bytes) {
  std::string out = "\"";
  for (char c : bytes) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out + '"';
}

// A report as text for people: Erlang's ~tw, but printable text shows as ~tp would show it: a
// binary as <<"text">> (the reasons the agent gives are binaries), a list of characters as
// "text" (a -vsn, a version in code_change's Extra).
void report_text(const Term& t, std::string& out) {
  const auto* b = t.as_binary();
  const bool is_binary = b != nullptr && b->bits == 8;
  const auto text = is_binary || t.as_list() != nullptr ? text_of(&t) : std::nullopt;
  if (text && printable_text(*text, is_binary)) {
    out += is_binary ? "<<" + quoted(*text) + ">>" : quoted(*text);
  } else if (const auto* tuple = t.as_tuple()) {
    out += '{';
    for (std::size_t i = 0; i < tuple->elements.size(); ++i) {
      if (i != 0) out += ',';
      report_text(tuple->elements[i], out);
    }
    out += '}';
  } else if (const auto* map = std::get_if<etf::Map>(&t.value())) {
    out += "#{";
    for (std::size_t i = 0; i < map->pairs.size(); ++i) {
      if (i != 0) out += ',';
      report_text(map->pairs[i].first, out);
      out += " => ";
      report_text(map->pairs[i].second, out);
    }
    out += '}';
  } else if (const auto* list = t.as_list(); list != nullptr && !list->tail && text_of(&t) == std::nullopt) {
    out += '[';
    for (std::size_t i = 0; i < list->elements.size(); ++i) {
      if (i != 0) out += ',';
      report_text(list->elements[i], out);
    }
    out += ']';
  } else {
    out += etf::format_w(t);
  }
  if (out.size() > kMaxReportText) out.resize(kMaxReportText);
}

std::string local_text(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return {};
  return peer_text(a);
}

}  // namespace

// Thread safety: the thread of run() alone touches the sockets, the store and conns_; agents_
// (the snapshot agents() returns) is guarded by info_mu_; the counters are atomics.
class AgentService::Impl {
 public:
  Impl(AgentServiceOptions options, std::unique_ptr<Store> store, std::vector<Subnet> allowed)
      : options_(std::move(options)), store_(std::move(store)), allowed_(std::move(allowed)) {
    if (!options_.plan_term) {
      options_.plan_term = [](Store& from, const UpgradePlan& plan) {
        return codestore::plan_term(from, plan);
      };
    }
  }
  ~Impl() { stop(); }

  Status open_socket();
  void forget_stale_connections();
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop();
  std::uint16_t port() const { return port_; }
  std::vector<AgentInfo> agents() const {
    std::lock_guard<std::mutex> lock(info_mu_);
    return agents_;
  }
  AgentServiceStats stats() const {
    return {accepted_.load(), refused_.load(),       hellos_.load(),
            dropped_.load(),  announcements_.load(), reports_.load()};
  }

 private:
  struct Conn {
    int fd = -1;
    std::string peer, local;
    Clock::time_point accepted_at;
    std::vector<std::uint8_t> in;  // bytes received and not yet a whole frame
    bool welcomed = false;
    bool closed = false;
    AgentInfo info;
    bool awaiting_report = false;  // announced info.announced, no report yet
  };

  void run();
  void log(std::string_view line) {
    if (options_.log) options_.log(utc_now() + " " + std::string(line));
  }
  void on_accept();
  void on_readable(Conn& c);
  void on_frame(Conn& c, std::span<const std::uint8_t> bytes);
  void on_hello(Conn& c, const Term& body);
  void on_report(Conn& c, const Term& body);
  void check_generations(bool force);
  // Sends c the channel's current generation when it runs another and is not busy with one.
  void maybe_announce(Conn& c);
  bool send(Conn& c, const Term& t);
  void drop(Conn& c, std::string_view why);
  void publish();  // agents_ from conns_
  // The failure of a plan the service could not make, into the history.
  void record_failure(Conn& c, std::int64_t to, const Status& why);
  // The canary rollout of each channel that has one pending (Store::rollouts), as last read;
  // chooses canaries among this service's agents when it lacks some.
  void check_rollout(const std::string& channel);
  // What an announcement of generation `to` tells apply/2 (protocol 2): the generation's
  // UpgradeOptions, and whether it is a canary's candidate.
  Result<Term> apply_options(const std::string& channel, std::int64_t to);

  AgentServiceOptions options_;
  std::unique_ptr<Store> store_;
  const std::vector<Subnet> allowed_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  bool stopped_ = false;

  // The thread's own:
  std::list<Conn> conns_;
  std::uint64_t store_generation_ = 0;
  std::map<std::string, std::int64_t> current_;  // channel -> its current generation, as last read
  std::map<std::string, Rollout> rollouts_;      // channel -> its pending rollout, as last read
  std::set<std::string> excluded_;               // excluded node names, as last read
  // Announcement frames made this round, by (channel, from, to): agents on the same generation
  // share one plan.
  // (channel, from, to, protocol) -> the frame.
  std::map<std::tuple<std::string, std::int64_t, std::int64_t, int>, std::vector<std::uint8_t>> frames_;

  mutable std::mutex info_mu_;
  std::vector<AgentInfo> agents_;  // guarded by info_mu_

  std::atomic<std::uint64_t> accepted_{0}, refused_{0}, hellos_{0}, dropped_{0}, announcements_{0},
      reports_{0};
};

Status AgentService::Impl::open_socket() {
  in_addr bind_addr{};
  if (::inet_pton(AF_INET, options_.bind_address.c_str(), &bind_addr) != 1)
    return Status(Code::kInvalidArgument,
                  fmt::format("agent listener: bind address {} is no IPv4 address", options_.bind_address));
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status(Code::kIOError, "agent listener: socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = bind_addr;
  a.sin_port = htons(options_.port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 128) != 0) {
    return Status(Code::kIOError, fmt::format("agent listener: cannot listen on {}:{}: {}",
                                              options_.bind_address, options_.port, errno_text(errno)));
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
    return Status(Code::kIOError, "agent listener: pipe: " + errno_text(errno));
  auto g = store_->generation();
  if (!g) return g.error().with_context("agent listener");
  store_generation_ = *g;
  forget_stale_connections();
  return Status::ok();
}

// Nodes the store says are connected to this address and port were connected to a serve that is
// gone without saying so (SIGKILL, a crash, a power cut): no serve can listen here while another
// does, so they are not connected now. Their agents reconnect here, which sets it again.
void AgentService::Impl::forget_stale_connections() {
  std::vector<std::string> here;
  if (options_.bind_address == "0.0.0.0") {
    // Every local IPv4 address: an agent's row names the one it connected to.
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
      for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
        sockaddr_in a = *reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        a.sin_port = htons(port_);
        here.push_back(peer_text(a));
      }
      ::freeifaddrs(list);
    }
  } else {
    here.push_back(fmt::format("{}:{}", options_.bind_address, port_));
  }
  auto n = store_->forget_agent_connections(here);
  if (!n) {
    log("agent listener: forgetting the connections of a serve that stopped here: " + n.error().to_string());
  } else if (*n > 0) {
    log(
        fmt::format("agent listener: {} node(s) recorded as connected here by a serve that stopped without "
                    "saying so: not connected until their agents connect again",
                    *n));
  }
}

void AgentService::Impl::run() {
  log(fmt::format("agent listener on {}:{} (store {}, default channel {})", options_.bind_address, port_,
                  store_->path(), options_.default_channel));
  auto next_check = Clock::now() + options_.poll_interval;
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Conn& c : conns_) fds.push_back({c.fd, POLLIN, 0});
    int pr = ::poll(fds.data(), fds.size(), std::max(1, remaining_ms(next_check)));
    if (stopping_.load()) break;
    if (pr < 0 && errno != EINTR) {
      log("agent listener: poll: " + errno_text(errno));
      break;
    }
    if (pr > 0) {
      if ((fds[1].revents & POLLIN) != 0) on_accept();
      std::size_t i = 2;
      for (Conn& c : conns_) {
        if (i >= fds.size()) break;  // accepted in this round: polled next round
        if (fds[i].fd == c.fd && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) on_readable(c);
        ++i;
      }
    }
    const auto now = Clock::now();
    for (Conn& c : conns_) {
      if (!c.closed && !c.welcomed && now - c.accepted_at > options_.hello_timeout)
        drop(c, "no hello in time");
    }
    bool changed = false;
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->closed) {
        ::close(it->fd);
        it = conns_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (now >= next_check) {
      check_generations(false);
      next_check = now + options_.poll_interval;
    }
    if (changed) publish();
  }
  for (Conn& c : conns_) {
    if (c.welcomed && !c.closed && c.info.node != 0) (void)store_->set_agent_connected(c.info.node, false);
    ::close(c.fd);
  }
  conns_.clear();
  publish();
}

void AgentService::Impl::on_accept() {
  for (;;) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log("agent listener: accept: " + errno_text(errno));
      return;
    }
    const std::string peer = peer_text(a);
    const std::uint32_t addr = ntohl(a.sin_addr.s_addr);
    const bool ok =
        std::any_of(allowed_.begin(), allowed_.end(), [addr](const Subnet& s) { return s.contains(addr); });
    if (!ok || conns_.size() >= options_.max_agents) {
      ++refused_;
      log(fmt::format("agent {}: refused ({})", peer, ok ? "too many agents" : "address not allowed"));
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    ++accepted_;
    Conn& c = conns_.emplace_back();
    c.fd = fd;
    c.peer = peer;
    c.local = local_text(fd);
    c.accepted_at = Clock::now();
    c.info.address = peer;
  }
}

void AgentService::Impl::on_readable(Conn& c) {
  std::uint8_t buf[65536];
  for (;;) {
    ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
    if (r > 0) {
      c.in.insert(c.in.end(), buf, buf + r);
      if (static_cast<std::size_t>(r) < sizeof buf) break;
      continue;
    }
    if (r == 0) return drop(c, "closed by the agent");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return drop(c, "recv: " + errno_text(errno));
  }
  std::size_t at = 0;
  while (!c.closed && c.in.size() - at >= 4) {
    const std::uint8_t* p = c.in.data() + at;
    const std::size_t n =
        (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    if (n > options_.max_frame_bytes)
      return drop(c, fmt::format("a frame of {} bytes, over the limit of {}", n, options_.max_frame_bytes));
    if (c.in.size() - at - 4 < n) break;
    on_frame(c, std::span<const std::uint8_t>(p + 4, n));
    at += 4 + n;
  }
  if (!c.closed) c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(at));
}

void AgentService::Impl::on_frame(Conn& c, std::span<const std::uint8_t> bytes) {
  etf::DecodeLimits limits;
  limits.max_inflated_bytes = options_.max_frame_bytes;
  auto t = etf::decode(bytes, limits);
  if (!t) return drop(c, "a frame that is no term: " + t.error().message());
  const auto* tuple = t->as_tuple();
  if (!c.welcomed) {
    if (tuple == nullptr || tuple->elements.size() != 2 || !tuple->elements[0].is_atom("hello"))
      return drop(c, "the first frame is no {hello, Map}");
    return on_hello(c, tuple->elements[1]);
  }
  if (t->is_atom("pong")) return;
  if (tuple != nullptr && tuple->elements.size() == 2 && tuple->elements[0].is_atom("report"))
    return on_report(c, tuple->elements[1]);
  drop(c, "a frame that is no report: " + etf::format_w(*t).substr(0, 200));
}

void AgentService::Impl::on_hello(Conn& c, const Term& body) {
  auto hello = parse_hello(body);
  if (!hello) return drop(c, hello.error().message());
  const std::string channel = hello->channel.empty() ? options_.default_channel : hello->channel;
  auto gen = store_->channel_generation(channel);
  if (!gen) {
    ++refused_;
    log(fmt::format("agent {} ({}): refused: {}", c.peer, hello->node, gen.error().to_string()));
    (void)send(c, Term::tuple({Term::atom("refused"), bin(gen.error().message())}));
    c.closed = true;
    return;
  }
  current_[channel] = gen->number;
  // The node's loaded modules that its channel knows: what says which generation its code is
  // (Store::nodes' runs_generation); erts's and other applications' modules are left out.
  std::set<std::string> known;
  for (const ReleaseEntry& e : gen->content) known.insert(e.module);
  NodeReport r;
  r.name = hello->node;
  r.agent_vsn = hello->agent_vsn;
  r.address = c.peer;
  r.server = c.local;
  r.channel = channel;
  r.erts_vsn = hello->erts_vsn;
  r.release = hello->release;
  // After a live upgrade a node's hello still names the release it booted (the boot script's);
  // one that reconnects runs the release of the generation it last applied, when that has one.
  if (hello->generation != 0 && hello->generation <= gen->number) {
    if (auto apps = store_->channel_apps(channel, hello->generation); apps && !apps->release.name.empty())
      r.release = apps->release;
  }
  // A new agent takes the channel's current generation as its own (the welcome says it); one
  // that reconnects says the generation it last applied.
  r.generation = hello->generation != 0 ? hello->generation : gen->number;
  r.seen_at = static_cast<std::int64_t>(std::time(nullptr));
  r.replace_modules = true;
  for (const auto& [m, md5] : hello->modules) {
    if (known.count(m) != 0)
      r.modules.push_back({.module = m, .version = 0, .md5 = md5, .app = "", .fetched_at = 0});
  }
  auto ids = store_->record_nodes({r});
  if (!ids) {
    log(fmt::format("agent {} ({}): recording the node failed: {}", c.peer, hello->node,
                    ids.error().to_string()));
  }
  c.info.name = hello->node;
  c.info.channel = channel;
  c.info.node = ids ? ids->front() : 0;
  c.info.generation = r.generation;
  c.info.protocol = hello->protocol;
  if (auto ex = store_->excluded_nodes()) {
    excluded_ = std::set<std::string>(ex->begin(), ex->end());
  } else {
    log("agent listener: excluded nodes: " + ex.error().to_string());
  }
  c.info.excluded = excluded_.count(c.info.name) != 0;
  if (c.info.node != 0) {
    if (Status st = store_->set_agent_connected(c.info.node, true); !st)
      log(fmt::format("agent {} ({}): recording its connection failed: {}", c.peer, hello->node,
                      st.to_string()));
  }
  // A plan this node refused or failed (reported to this server or another): not sent again
  // until the channel moves on.
  if (auto last = store_->node_upgrades(hello->node, channel, 1); last && !last->empty()) {
    const NodeUpgrade& u = last->front();
    if ((u.outcome == "refused" || u.outcome == "aborted" || u.outcome == "failed") &&
        u.from_generation == c.info.generation)
      c.info.announced = u.to_generation;
  }
  const Term welcome = Term::tuple(
      {Term::atom("welcome"), Term(etf::Map{{{Term::atom("channel"), bin(channel)},
                                             {Term::atom("generation"), Term::integer(gen->number)},
                                             {Term::atom("server_time"), Term::integer(r.seen_at)}}})});
  if (!send(c, welcome)) return;
  c.welcomed = true;
  ++hellos_;
  log(fmt::format(
      "agent {} ({}): welcome: channel {} at generation {}, node runs {}, {} of its {} modules in the "
      "channel, release {}",
      c.peer, hello->node, channel, gen->number, c.info.generation, r.modules.size(), hello->modules.size(),
      hello->release.name.empty() ? "-" : hello->release.name + "@" + hello->release.vsn));
  check_rollout(channel);
  maybe_announce(c);
  publish();
}

void AgentService::Impl::on_report(Conn& c, const Term& body) {
  NodeUpgrade u;
  u.node = c.info.node;
  u.node_name = c.info.name;
  u.channel = text_of(map_get(body, "channel")).value_or(c.info.channel);
  u.from_generation = int_of(map_get(body, "from")).value_or(0);
  u.to_generation = int_of(map_get(body, "to")).value_or(0);
  u.outcome = text_of(map_get(body, "outcome")).value_or("");
  if (!is_upgrade_outcome(u.outcome))
    return drop(c, fmt::format("a report whose outcome '{}' is not one of {}", u.outcome,
                               fmt::join(kUpgradeOutcomes, ", ")));
  const Term nil;
  const Term* report = map_get(body, "report");
  if (report == nullptr) report = &nil;
  // The applier's time_ms (docs/plan-apply.md); duration_ms/_us from other appliers.
  if (auto t = int_of(field(*report, "time_ms"))) {
    u.duration_ms = *t;
  } else if (auto ms = int_of(field(*report, "duration_ms"))) {
    u.duration_ms = *ms;
  } else if (auto us = int_of(field(*report, "duration_us"))) {
    u.duration_ms = *us / 1000;
  }
  u.suspended = count_of(field(*report, "suspended"));
  u.blocking = count_of(field(*report, "blocking"));
  u.killed = count_of(field(*report, "killed"));
  u.modules = report_modules(field(*report, "modules"));
  report_text(*report, u.report);
  if (u.report.size() >= kMaxReportText) u.report += "...";
  if (const Term* why = field(*report, "reason")) report_text(*why, u.reason);
  auto id = store_->record_node_upgrade(u);
  if (!id)
    log(fmt::format("agent {} ({}): recording its report failed: {}", c.peer, c.info.name,
                    id.error().to_string()));
  ++reports_;
  log(fmt::format(
      "agent {} ({}): {} generation {} -> {} ({} ms, {} modules; processes {} suspended, {} blocking, "
      "{} killed)",
      c.peer, c.info.name, u.outcome, u.from_generation, u.to_generation, u.duration_ms, u.modules.size(),
      u.suspended, u.blocking, u.killed));
  if (const std::int64_t runs = generation_after(u.outcome, u.from_generation, u.to_generation); runs != 0)
    c.info.generation = runs;
  if (u.to_generation == c.info.announced) c.awaiting_report = false;
  maybe_announce(c);
  publish();
}

void AgentService::Impl::check_generations(bool force) {
  auto g = store_->generation();
  if (!g) {
    log("agent listener: the store's generation: " + g.error().to_string());
    return;
  }
  if (*g == store_generation_ && !force) return;
  store_generation_ = *g;
  std::set<std::string> channels;
  for (const Conn& c : conns_) {
    if (c.welcomed && !c.closed) channels.insert(c.info.channel);
  }
  for (const std::string& ch : channels) {
    auto cg = store_->channel_generation(ch);
    if (!cg) {
      log(fmt::format("agent listener: channel {}: {}", ch, cg.error().to_string()));
      continue;
    }
    current_[ch] = cg->number;
  }
  if (auto ex = store_->excluded_nodes()) {
    excluded_ = std::set<std::string>(ex->begin(), ex->end());
    for (Conn& c : conns_) c.info.excluded = excluded_.count(c.info.name) != 0;
  } else {
    log("agent listener: excluded nodes: " + ex.error().to_string());
  }
  for (const std::string& ch : channels) check_rollout(ch);
  frames_.clear();
  for (Conn& c : conns_) {
    if (c.welcomed && !c.closed) maybe_announce(c);
  }
  frames_.clear();
}

void AgentService::Impl::check_rollout(const std::string& ch) {
  auto r = store_->rollouts(ch, 1);
  if (!r) {
    log(fmt::format("agent listener: channel {}: rollouts: {}", ch, r.error().to_string()));
    return;
  }
  if (r->empty() || r->front().state != "pending") {
    if (auto was = rollouts_.find(ch); was != rollouts_.end()) {
      // A dropped candidate's number is the channel's next one: not "announced already" then.
      for (Conn& c : conns_) {
        if (c.info.channel == ch && c.info.announced == was->second.candidate &&
            c.info.generation != was->second.candidate)
          c.info.announced = 0;
      }
    }
    rollouts_.erase(ch);
    for (Conn& c : conns_) {
      if (c.info.channel == ch) c.info.canary = false;
    }
    return;
  }
  Rollout ro = r->front();
  if (static_cast<std::int64_t>(ro.nodes.size()) < ro.canaries) {
    // Canaries: this service's agents of the channel that run the base, are not excluded and
    // have no plan under way, by name (the store takes as many as the rollout still wants).
    std::vector<std::string> names;
    for (const Conn& c : conns_) {
      if (c.welcomed && !c.closed && c.info.channel == ch && c.info.generation == ro.base &&
          !c.info.excluded && !c.awaiting_report && c.info.protocol >= 2)
        names.push_back(c.info.name);
    }
    std::sort(names.begin(), names.end());
    if (!names.empty()) {
      auto added = store_->add_canaries(ch, ro.candidate, names);
      if (!added) {
        log(fmt::format("agent listener: channel {}: choosing canaries: {}", ch, added.error().to_string()));
      } else {
        if (added->nodes.size() != ro.nodes.size())
          log(fmt::format("agent listener: channel {}: canaries for generation {}: {}", ch, ro.candidate,
                          fmt::join(
                              [&] {
                                std::vector<std::string> v;
                                for (const RolloutCanary& n : added->nodes) v.push_back(n.node_name);
                                return v;
                              }(),
                              ", ")));
        ro = *added;
      }
    }
  }
  for (Conn& c : conns_) {
    if (c.info.channel != ch) continue;
    c.info.canary = std::any_of(ro.nodes.begin(), ro.nodes.end(),
                                [&](const RolloutCanary& n) { return n.node_name == c.info.name; });
  }
  rollouts_[ch] = std::move(ro);
}

Result<Term> AgentService::Impl::apply_options(const std::string& channel, std::int64_t to) {
  auto g = store_->channel_generation(channel, to);
  if (!g) return tl::unexpected(g.error());
  const UpgradeOptions& u = g->upgrade;
  std::vector<std::pair<Term, Term>> pairs;
  if (u.deadline_ms > 0) pairs.emplace_back(Term::atom("deadline"), Term::integer(u.deadline_ms));
  pairs.emplace_back(Term::atom("brutal"), Term::atom(u.brutal ? "true" : "false"));
  pairs.emplace_back(Term::atom("force"), Term::atom(u.force ? "true" : "false"));
  if (auto probe = parse_probe(u.probe))
    pairs.emplace_back(Term::atom("probe"), Term::tuple({bin(probe->first), bin(probe->second)}));
  pairs.emplace_back(Term::atom("canary"), Term::atom(g->candidate ? "true" : "false"));
  return Term(etf::Map{std::move(pairs)});
}

void AgentService::Impl::maybe_announce(Conn& c) {
  auto it = current_.find(c.info.channel);
  if (it == current_.end() || c.closed || !c.welcomed) return;
  // An excluded node is never upgraded automatically.
  if (c.info.excluded) return;
  std::int64_t to = it->second;
  // A canary of a pending rollout is sent the candidate (once: a report for it ends that).
  if (auto r = rollouts_.find(c.info.channel); r != rollouts_.end() && c.info.canary)
    to = r->second.candidate;
  // One plan at a time per agent; never the same target twice (a refused or failed one stays
  // refused until the channel moves again).
  if (to == 0 || to == c.info.generation || to == c.info.announced || c.awaiting_report) return;
  const auto key = std::make_tuple(c.info.channel, c.info.generation, to, c.info.protocol);
  auto f = frames_.find(key);
  if (f == frames_.end()) {
    auto plan = plan_generation_upgrade(*store_, c.info.channel, c.info.generation, to);
    Result<Term> term =
        plan ? options_.plan_term(*store_, *plan) : Result<Term>(tl::unexpected(plan.error()));
    Result<Term> opts = term ? apply_options(c.info.channel, to) : Result<Term>(tl::unexpected(term.error()));
    if (!opts) {
      c.info.announced = to;
      record_failure(c, to, opts.error());
      return;
    }
    std::vector<Term> frame{Term::atom("generation"), bin(c.info.channel), Term::integer(to),
                            std::move(*term)};
    // Protocol 1's agents know only the 4-tuple: the deploy's options do not reach them.
    if (c.info.protocol >= 2) frame.push_back(std::move(*opts));
    f = frames_.emplace(key, etf::encode(Term::tuple(std::move(frame)))).first;
  }
  if (send_frame(c.fd, f->second, Clock::now() + options_.send_timeout) != IoEnd::kDone)
    return drop(c, "sending a generation failed or timed out");
  ++announcements_;
  log(fmt::format("agent {} ({}): sent generation {} of channel {} (from {}, {} bytes)", c.peer, c.info.name,
                  to, c.info.channel, c.info.generation, f->second.size()));
  c.info.announced = to;
  c.awaiting_report = true;
  publish();
}

void AgentService::Impl::record_failure(Conn& c, std::int64_t to, const Status& why) {
  log(fmt::format("agent {} ({}): no plan from generation {} to {}: {}", c.peer, c.info.name,
                  c.info.generation, to, why.to_string()));
  NodeUpgrade u;
  u.node = c.info.node;
  u.node_name = c.info.name;
  u.channel = c.info.channel;
  u.from_generation = c.info.generation;
  u.to_generation = to;
  u.outcome = "failed";
  u.report = "server: no plan: " + why.to_string();
  if (auto id = store_->record_node_upgrade(u); !id)
    log(fmt::format("agent {}: recording the failure failed: {}", c.peer, id.error().to_string()));
}

bool AgentService::Impl::send(Conn& c, const Term& t) {
  const auto bytes = etf::encode(t);
  if (send_frame(c.fd, bytes, Clock::now() + options_.send_timeout) == IoEnd::kDone) return true;
  drop(c, "send failed or timed out");
  return false;
}

void AgentService::Impl::drop(Conn& c, std::string_view why) {
  if (c.closed) return;
  c.closed = true;
  const bool orderly = why == "closed by the agent";
  if (!orderly) ++dropped_;
  log(fmt::format("agent {}{}: {}: {}", c.peer, c.info.name.empty() ? "" : " (" + c.info.name + ")",
                  orderly ? "gone" : "dropped", why));
  if (c.welcomed && c.info.node != 0) {
    if (Status st = store_->set_agent_connected(c.info.node, false); !st)
      log(fmt::format("agent {}: recording its disconnection failed: {}", c.peer, st.to_string()));
  }
}

void AgentService::Impl::publish() {
  std::vector<AgentInfo> out;
  for (const Conn& c : conns_) {
    if (c.welcomed && !c.closed) out.push_back(c.info);
  }
  std::sort(out.begin(), out.end(), [](const AgentInfo& a, const AgentInfo& b) { return a.name < b.name; });
  std::lock_guard<std::mutex> lock(info_mu_);
  agents_ = std::move(out);
}

void AgentService::Impl::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  if (wake_[1] >= 0) {
    const std::uint8_t b = 1;
    (void)!::write(wake_[1], &b, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int* fd : {&listen_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

Result<std::unique_ptr<AgentService>> AgentService::start(const AgentServiceOptions& options) {
  std::vector<Subnet> allowed;
  for (const std::string& a : options.allow) {
    auto s = parse_subnet(a, "agent allow");
    if (!s) return tl::unexpected(s.error());
    allowed.push_back(*s);
  }
  if (options.poll_interval.count() <= 0)
    return error(Code::kInvalidArgument, "agent listener: poll interval must be positive");
  auto store = Store::open(options.db_path);
  if (!store) return tl::unexpected(store.error().with_context("agent listener"));
  auto impl = std::make_unique<Impl>(options, std::move(*store), std::move(allowed));
  if (Status s = impl->open_socket(); !s) return tl::unexpected(s);
  impl->start();
  return std::unique_ptr<AgentService>(new AgentService(std::move(impl)));
}

AgentService::AgentService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AgentService::~AgentService() {
  stop();
}
std::uint16_t AgentService::port() const noexcept {
  return impl_->port();
}
void AgentService::stop() {
  impl_->stop();
}
std::vector<AgentInfo> AgentService::agents() const {
  return impl_->agents();
}
AgentServiceStats AgentService::stats() const {
  return impl_->stats();
}

}  // namespace codestore::server

// The agent listener in process (agent_service.h, docs/agent-protocol.md), spoken to over
// loopback by a peer that writes the protocol's terms with our encoder: the hello recorded as a
// node, the welcome, a generation announced after a change committed by another Store handle
// with the plan's new code, a report recorded in the history and in `nodes`, and peers that
// send garbage dropped while the others keep their connection. And the agent's ebin as the boot
// server's file service offers it (lib/codestore_agent[-<vsn>]/), byte for byte the beams erlc
// built. The real agent on a real node: erl_agent_test.cpp.
#include <arpa/inet.h>
#include <codestore/agent_service.h>
#include <codestore/boot_server.h>
#include <codestore/store.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include "erl_node.h"
#include "file_service.h"
#include "store_ops.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

using codestore::testing::TempDir;
using etf::Term;
using testing::compile_agt;
using namespace std::chrono_literals;

Term bin(std::string_view s) {
  return Term::binary(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

std::string text(const Term* t) {
  if (t == nullptr || t->as_binary() == nullptr) return "(no binary)";
  return std::string(t->as_binary()->bytes.begin(), t->as_binary()->bytes.end());
}

const Term* get(const Term& m, std::string_view key) {
  const auto* map = std::get_if<etf::Map>(&m.value());
  if (map == nullptr) return nullptr;
  for (const auto& [k, v] : map->pairs)
    if (k.is_atom(key)) return &v;
  return nullptr;
}

// A peer on the agent port: raw frames.
class Peer {
 public:
  explicit Peer(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Peer() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send_raw(const std::vector<std::uint8_t>& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  bool send(const Term& t) {
    auto body = etf::encode(t);
    const auto n = static_cast<std::uint32_t>(body.size());
    std::vector<std::uint8_t> frame = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                                       static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    frame.insert(frame.end(), body.begin(), body.end());
    return send_raw(frame);
  }
  // The next frame, or nullopt when the connection closed (closed() then says so) or nothing came.
  std::optional<Term> recv(std::chrono::milliseconds wait = 10s) {
    std::vector<std::uint8_t> head;
    if (!read(4, head, wait)) return std::nullopt;
    const std::size_t n =
        (std::size_t{head[0]} << 24) | (std::size_t{head[1]} << 16) | (std::size_t{head[2]} << 8) | head[3];
    std::vector<std::uint8_t> body;
    if (!read(n, body, wait)) return std::nullopt;
    auto t = etf::decode(body);
    if (!t) return std::nullopt;
    return *t;
  }
  bool closed() const { return closed_; }

 private:
  bool read(std::size_t n, std::vector<std::uint8_t>& out, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (out.size() < n) {
      pollfd p{fd_, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      std::uint8_t buf[65536];
      ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (r <= 0) {
        closed_ = true;
        return false;
      }
      out.insert(out.end(), buf, buf + r);
    }
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

TEST(AgentServiceTest, HelloAnnouncementReportAndGarbage) {
  if (testing::find_program("erlc").empty()) GTEST_SKIP() << "erlc is not installed";
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  const std::string v1 = compile_agt(dir.path(), 1), v2 = compile_agt(dir.path(), 2);
  ASSERT_TRUE(store_ops::import_file(db, v1, "agt"));
  auto store = Store::open(db);
  ASSERT_TRUE(store) << store.error().to_string();
  auto g1 = (*store)->channel_generation("default");
  ASSERT_TRUE(g1);

  AgentServiceOptions opts;
  opts.db_path = db;
  opts.port = 0;
  opts.poll_interval = 20ms;
  auto service = AgentService::start(opts);
  ASSERT_TRUE(service) << service.error().to_string();
  const std::uint16_t port = (*service)->port();

  // The good agent: hello, welcome.
  auto v1md5 = (*store)->versions("agt");
  ASSERT_TRUE(v1md5);
  std::vector<std::uint8_t> md5;
  for (std::size_t i = 0; i < 32; i += 2)
    md5.push_back(static_cast<std::uint8_t>(std::stoi(v1md5->at(0).md5.substr(i, 2), nullptr, 16)));
  Peer good(port);
  ASSERT_TRUE(good.connected());
  const Term modules =
      Term::list({Term::tuple({Term::atom("agt"), Term::binary(md5)}),
                  Term::tuple({Term::atom("erlang"), Term::binary(std::vector<std::uint8_t>(16, 7))})});
  ASSERT_TRUE(good.send(Term::tuple(
      {Term::atom("hello"), Term(etf::Map{{{Term::atom("protocol"), Term::integer(1)},
                                           {Term::atom("node"), Term::atom("nonode@nohost")},
                                           {Term::atom("name"), bin("a1@test")},
                                           {Term::atom("agent_vsn"), bin("0.1.0")},
                                           {Term::atom("erts_vsn"), bin("13.1.5")},
                                           {Term::atom("release"), Term::tuple({bin("rel"), bin("1")})},
                                           {Term::atom("channel"), Term::atom("undefined")},
                                           {Term::atom("generation"), Term::integer(0)},
                                           {Term::atom("modules"), modules}}})})));
  auto welcome = good.recv();
  ASSERT_TRUE(welcome);
  ASSERT_TRUE(welcome->as_tuple() && welcome->as_tuple()->elements[0].is_atom("welcome"))
      << etf::format_w(*welcome);
  const Term& wm = welcome->as_tuple()->elements[1];
  EXPECT_EQ(text(get(wm, "channel")), "default");
  EXPECT_EQ(*get(wm, "generation")->as_int(), g1->number);

  // Garbage, in three kinds: each peer dropped, the good one untouched.
  Peer junk(port), huge(port), wrong(port);
  ASSERT_TRUE(junk.send_raw({0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e'}));
  ASSERT_TRUE(huge.send_raw({0x7f, 0xff, 0xff, 0xff, 131}));
  ASSERT_TRUE(wrong.send(Term::tuple({Term::atom("report"), Term::atom("x")})));  // no hello first
  for (Peer* p : {&junk, &huge, &wrong}) {
    EXPECT_FALSE(p->recv());
    EXPECT_TRUE(p->closed());
  }

  // A change committed by another handle: the good agent is sent the new generation.
  ASSERT_TRUE(store_ops::import_file(db, v2, "agt"));
  auto g2 = (*store)->channel_generation("default");
  ASSERT_TRUE(g2);
  ASSERT_GT(g2->number, g1->number);
  auto announced = good.recv();
  ASSERT_TRUE(announced) << "no announcement";
  const auto* a = announced->as_tuple();
  ASSERT_TRUE(a != nullptr && a->elements.size() == 4 && a->elements[0].is_atom("generation"))
      << etf::format_w(*announced);
  EXPECT_EQ(*a->elements[2].as_int(), g2->number);
  // plan_term's term (docs/plan-apply.md) from the generation the agent runs.
  const Term& plan = a->elements[3];
  ASSERT_NE(get(plan, "format"), nullptr) << etf::format_w(plan);
  EXPECT_EQ(*get(plan, "format")->as_int(), 1);
  EXPECT_EQ(text(get(plan, "from")), fmt::format("default#{}", g1->number));
  EXPECT_EQ(text(get(plan, "to")), fmt::format("default#{}", g2->number));
  EXPECT_TRUE(get(plan, "direction")->is_atom("up"));
  auto mods = get(plan, "modules")->list_elements();
  ASSERT_TRUE(mods);
  ASSERT_EQ(mods->size(), 1u);
  EXPECT_EQ(text(get((*mods)[0], "module")), "agt");
  EXPECT_TRUE(get((*mods)[0], "change")->is_atom("changed"));
  // Both sides' code, as stored: v1's bytes and v2's.
  EXPECT_EQ(get((*mods)[0], "from_code")->as_binary()->bytes, codestore::testing::read_file(v1));
  EXPECT_EQ(get((*mods)[0], "to_code")->as_binary()->bytes, codestore::testing::read_file(v2));

  // The report: recorded in the history and shown with the node.
  ASSERT_TRUE(good.send(Term::tuple(
      {Term::atom("report"),
       Term(etf::Map{
           {{Term::atom("channel"), bin("default")},
            {Term::atom("from"), Term::integer(g1->number)},
            {Term::atom("to"), Term::integer(g2->number)},
            {Term::atom("outcome"), Term::atom("applied")},
            {Term::atom("report"),
             Term(etf::Map{
                 {{Term::atom("duration_ms"), Term::integer(12)},
                  {Term::atom("suspended"), Term::list({Term::atom("p1"), Term::atom("p2")})},
                  {Term::atom("killed"), Term::integer(0)},
                  {Term::atom("modules"),
                   Term::list({Term(etf::Map{{{Term::atom("module"), Term::atom("agt")},
                                              {Term::atom("outcome"), Term::atom("loaded")}}})})}}})}}})})));
  std::vector<NodeUpgrade> ups;
  for (int i = 0; i < 500 && ups.empty(); ++i) {
    auto u = (*store)->node_upgrades("a1@test");
    ASSERT_TRUE(u) << u.error().to_string();
    ups = *u;
    if (ups.empty()) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].outcome, "applied");
  EXPECT_EQ(ups[0].from_generation, g1->number);
  EXPECT_EQ(ups[0].to_generation, g2->number);
  EXPECT_EQ(ups[0].duration_ms, 12);
  EXPECT_EQ(ups[0].suspended, 2u);
  ASSERT_EQ(ups[0].modules.size(), 1u);
  EXPECT_EQ(ups[0].modules[0].module, "agt");
  EXPECT_EQ(ups[0].modules[0].outcome, "loaded");
  auto nodes = (*store)->nodes({.with_modules = true, .name = "a1@test"});
  ASSERT_TRUE(nodes);
  ASSERT_EQ(nodes->size(), 1u);
  const NodeInfo& n = nodes->front();
  EXPECT_EQ(n.channel, "default");
  EXPECT_EQ(n.agent_vsn, "0.1.0");
  EXPECT_EQ(n.release, (ReleaseId{"rel", "1"}));
  EXPECT_EQ(n.generation, g2->number);
  EXPECT_EQ(n.last_upgrade.outcome, "applied");
  ASSERT_EQ(n.modules.size(), 1u);  // erlang is no module of the channel
  EXPECT_EQ(n.modules[0].md5, v1md5->at(0).md5);
  auto history = (*store)->history();
  ASSERT_TRUE(history);
  EXPECT_EQ(history->back().action, "node-upgrade");
  EXPECT_NE(history->back().reason.find("a1@test applied"), std::string::npos) << history->back().reason;

  const auto stats = (*service)->stats();
  EXPECT_EQ(stats.hellos, 1u);
  EXPECT_EQ(stats.dropped, 3u);
  EXPECT_EQ(stats.announcements, 1u);
  EXPECT_EQ(stats.reports, 1u);
  ASSERT_EQ((*service)->agents().size(), 1u);
  EXPECT_EQ((*service)->agents()[0].generation, g2->number);
}

TEST(AgentServiceTest, TheBootServerOffersTheAgentBuiltWithIt) {
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  ASSERT_TRUE(store_ops::import_file(
      db, store_ops::otp_lib_dir("/usr/lib/erlang", "stdlib") + "/ebin/lists.beam", "stdlib"));
  auto source = open_store_source(db, "");
  ASSERT_TRUE(source) << source.error().to_string();
  FileService files("/usr/lib/erlang", **source, 1 << 20, {}, 4381);
  auto ask = [&](protocol::Command cmd, const std::string& path) {
    protocol::Request r;
    r.command = cmd;
    r.path = path;
    return files.answer(r);
  };
  const std::filesystem::path ebin = CODESTORE_AGENT_EBIN;
  std::set<std::string> built;
  for (const auto& e : std::filesystem::directory_iterator(ebin)) built.insert(e.path().filename().string());
  ASSERT_TRUE(built.count("codestore_agent.app") && built.count("codestore_agent_conn.beam"));
  for (const std::string& lib :
       {std::string("lib/codestore_agent"), std::string("lib/codestore_agent-") + CODESTORE_VERSION}) {
    auto listed = ask(protocol::Command::kListDir, "/usr/lib/erlang/" + lib + "/ebin");
    auto names = etf::decode(listed.reply);
    ASSERT_TRUE(names);
    ASSERT_TRUE(names->as_tuple()) << etf::format_w(*names);
    const Term ok = names->as_tuple()->elements[1];  // {ok, Names}
    ASSERT_TRUE(ok.as_tuple()) << etf::format_w(*names);
    auto list = ok.as_tuple()->elements[1].list_elements();
    ASSERT_TRUE(list);
    std::set<std::string> served;
    for (const Term& n : *list) {
      auto chars = n.list_elements();
      ASSERT_TRUE(chars);
      std::string s;
      for (const Term& c : *chars) s.push_back(static_cast<char>(*c.as_int()));
      served.insert(s);
    }
    EXPECT_EQ(served, built) << lib;
    for (const std::string& f : built) {
      auto a = ask(protocol::Command::kGet, lib + "/ebin/" + f);
      ASSERT_TRUE(a.body) << lib << "/ebin/" << f << ": " << a.log;
      EXPECT_EQ(*a.body, codestore::testing::read_file((ebin / f).string())) << f;
    }
    auto config = ask(protocol::Command::kGet, lib + "/priv/agent.config");
    ASSERT_TRUE(config.body) << config.log;
    EXPECT_NE(std::string(config.body->begin(), config.body->end()).find("{agent_port, 4381}."),
              std::string::npos);
  }
  // Another vsn is not ours: the store's (it has none).
  EXPECT_FALSE(ask(protocol::Command::kGet, "lib/codestore_agent-0.0.0/ebin/codestore_agent.app").body);
}

// A serve killed without a goodbye leaves its agents' nodes recorded as connected (what
// `deploy --wait` waits for). The next agent listener on that address and port says they are
// not, until their agents connect again; a node connected to another server keeps its flag.
TEST(AgentServiceTest, AListenerForgetsTheConnectionsAServeThatDiedLeftAtItsAddress) {
  TempDir dir;
  const std::string db = dir.path().string() + "/store.db";
  auto store = Store::open(db);
  ASSERT_TRUE(store) << store.error().to_string();

  // A free port for the listener (bound, read, released).
  std::uint16_t port = 0;
  {
    AgentServiceOptions probe;
    probe.db_path = db;
    probe.port = 0;
    auto s = AgentService::start(probe);
    ASSERT_TRUE(s) << s.error().to_string();
    port = (*s)->port();
    (*s)->stop();
  }
  NodeReport here, elsewhere;
  here.address = "127.0.0.1:50001";
  here.server = fmt::format("127.0.0.1:{}", port);
  here.name = "a1@test";
  elsewhere.address = "127.0.0.1:50002";
  elsewhere.server = fmt::format("10.99.0.1:{}", port);
  elsewhere.name = "a2@test";
  auto ids = (*store)->record_nodes({here, elsewhere});
  ASSERT_TRUE(ids) << ids.error().to_string();
  for (std::int64_t id : *ids) ASSERT_TRUE((*store)->set_agent_connected(id, true));
  auto connected = [&](const std::string& name) {
    auto n = (*store)->nodes({.name = name});
    return n && n->size() == 1 && n->front().agent_connected;
  };
  ASSERT_TRUE(connected("a1@test") && connected("a2@test"));

  AgentServiceOptions opts;
  opts.db_path = db;
  opts.port = port;
  auto service = AgentService::start(opts);
  ASSERT_TRUE(service) << service.error().to_string();
  EXPECT_FALSE(connected("a1@test"));
  EXPECT_TRUE(connected("a2@test"));
  (*service)->stop();
}

}  // namespace
}  // namespace codestore::server

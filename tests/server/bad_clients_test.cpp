// Bad clients and bad paths end to end (issue 14): a `codestore serve` process over a real
// store, and raw protocol clients that send what no node would: `..` out of a client root,
// absolute paths outside every root, an application version the store lacks, frame lengths
// of 2 GiB and 4 GiB, a frame at the limit and one byte over it, a frame that never completes,
// a client that asks for a big file again and again and never reads. Each gets a clear
// error (and a log line that says why), nothing from outside the roots is ever answered, and
// a second client is answered while the bad ones are stuck. The channel a client gets by its
// source address (127.0.0.2 and 127.0.0.3, bound by the client: a node cannot choose it) is
// checked here too, over the same process.
//
// One serve process for the suite (SetUpTestSuite). Its discovery port (UDP 4368) is fixed:
// RESOURCE_LOCK boot_server_port.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "erl_node.h"
#include "server_test_util.h"
#include "subprocess.h"
#include "support/files.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_file;
using codestore::testing::read_text;
using codestore::testing::write_file;
using testing::RawClient;
using testing::req;
using testing::run_cli;
using testing::ServeProcess;
using testing::TempDir;
using namespace std::chrono_literals;

const std::string kFixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/server";
constexpr std::size_t kBigFile = 32u << 20;  // more than loopback's socket buffers hold

// An application directory srvtest-VSN with the fixture's module m of that version.
void write_app(const fs::path& dir, const std::string& vsn, const std::string& beam) {
  fs::create_directories(dir / "ebin");
  write_file((dir / "ebin/srvtest.app").string(),
             "{application, srvtest, [{vsn, \"" + vsn +
                 "\"}, {modules, [m]}, {registered, []}, {applications, [kernel, stdlib]}]}.\n");
  fs::copy_file(beam, dir / "ebin/m.beam");
}

// The answer to `request` on `c` as Erlang prints it; a binary's bytes go to `*bytes`.
std::string ask(RawClient& c, const etf::Term& request, std::string* bytes = nullptr) {
  if (!c.send_term(request)) return "<not sent>";
  auto frame = c.recv_frame();
  if (!frame) return "<no answer>";
  auto t = etf::decode(*frame);
  if (!t) return "<undecodable>";
  const etf::Tuple* answer = t->as_tuple();
  const etf::Tuple* ok = answer && answer->elements.size() == 2 ? answer->elements[1].as_tuple() : nullptr;
  if (bytes && ok && ok->elements.size() == 2 && ok->elements[0].is_atom("ok")) {
    if (const etf::Binary* b = ok->elements[1].as_binary()) {
      *bytes = std::string(b->bytes.begin(), b->bytes.end());
      return "{get,{ok,<<" + std::to_string(b->bytes.size()) + " bytes>>}}";
    }
  }
  return etf::format_w(*t);
}

std::vector<std::uint8_t> header(std::uint32_t n) {
  return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
          static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

class BadClientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const fs::path d = dir_->path();
    db_ = (d / "store.db").string();
    root_ = (d / "root").string();
    client_root_ = (d / "node").string();
    // The served root: a small file, a big one, and a secret beside it that no path may reach.
    fs::create_directories(root_);
    write_file(root_ + "/hello.txt", "hello from the root");
    {
      std::ofstream big(root_ + "/big.bin", std::ios::binary);
      std::string block(1u << 20, 'b');
      for (std::size_t i = 0; i < kBigFile / block.size(); ++i) big << block;
    }
    write_file((d / "outside.txt").string(), "OUTSIDE-THE-ROOT");
    // srvtest 1.0 (module m v1) runs on channel a, 2.0 (m v2) on channel b.
    write_app(d / "apps/srvtest-1.0", "1.0", kFixtures + "/v1/m.beam");
    write_app(d / "apps/srvtest-2.0", "2.0", kFixtures + "/v2/m.beam");
    ok_ =
        run_cli(db_, {"init"}, log("init")) == 0 &&
        run_cli(db_, {"--channel", "a", "import", (d / "apps/srvtest-1.0").string()}, log("import-a")) == 0 &&
        run_cli(db_, {"--channel", "b", "import", (d / "apps/srvtest-2.0").string()}, log("import-b")) == 0;
    if (!ok_) return;
    // 127.0.0.2 follows a, the rest of 127/8 follows b (first rule first), the default is a.
    serve_ =
        new ServeProcess(db_,
                         {"--port", "0", "--root", root_, "--erts-version", "13.1.5", "--allow",
                          "127.0.0.0/8", "--client-root", client_root_, "--channel", "a=127.0.0.2/32",
                          "--channel", "b=127.0.0.0/8", "--channel", "a", "--request-timeout-ms", "3000"},
                         log("serve"));
    port_ = serve_->wait_ready();
  }
  static void TearDownTestSuite() {
    delete serve_;
    serve_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(ok_) << "store setup failed: " << read_text(log("import-a")) << read_text(log("import-b"));
    ASSERT_NE(port_, 0) << serve_->log();
  }
  void TearDown() override {
    if (HasFailure()) testing::dump_logs(dir_->path(), 6000);
  }
  static std::string log(const std::string& name) { return (dir_->path() / (name + ".log")).string(); }
  // Polls the server's log (bounded) for `text`.
  static bool log_shows(const std::string& text, std::chrono::milliseconds timeout = 20s) {
    for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(20ms)) {
      if (serve_->log().find(text) != std::string::npos) return true;
    }
    return false;
  }
  // A well-behaved client's answer, to show that the server still serves.
  static bool still_serves() {
    RawClient c(port_);
    std::string bytes;
    return c.connected() &&
           ask(c, req("get", root_ + "/hello.txt"), &bytes).find("{ok,") != std::string::npos &&
           bytes == "hello from the root";
  }

  static TempDir* dir_;
  static ServeProcess* serve_;
  static std::string db_, root_, client_root_;
  static std::uint16_t port_;
  static bool ok_;
};

TempDir* BadClientsTest::dir_ = nullptr;
ServeProcess* BadClientsTest::serve_ = nullptr;
std::string BadClientsTest::db_, BadClientsTest::root_, BadClientsTest::client_root_;
std::uint16_t BadClientsTest::port_ = 0;
bool BadClientsTest::ok_ = false;

TEST_F(BadClientsTest, TheSourceAddressChoosesTheChannelFirstRuleFirst) {
  const std::string v1 = [] {
    auto b = read_file(kFixtures + "/v1/m.beam");
    return std::string(b.begin(), b.end());
  }();
  const std::string v2 = [] {
    auto b = read_file(kFixtures + "/v2/m.beam");
    return std::string(b.begin(), b.end());
  }();
  ASSERT_NE(v1, v2);
  const std::string unversioned = client_root_ + "/lib/srvtest/ebin/m.beam";
  struct Case {
    const char* from;
    const std::string* want;
    const char* channel;
  };
  // 127.0.0.2: the first rule (a), though the second matches too; 127.0.0.3: the subnet rule
  // (b) over the default (a); 127.0.0.1: b as well.
  for (const Case& k :
       {Case{"127.0.0.2", &v1, "a"}, Case{"127.0.0.3", &v2, "b"}, Case{"127.0.0.1", &v2, "b"}}) {
    SCOPED_TRACE(k.from);
    RawClient c(port_, k.from);
    ASSERT_TRUE(c.connected());
    std::string bytes;
    EXPECT_EQ(ask(c, req("get", unversioned), &bytes),
              "{get,{ok,<<" + std::to_string(k.want->size()) + " bytes>>}}");
    EXPECT_TRUE(bytes == *k.want);
    // The versioned path names the version whatever the channel.
    EXPECT_EQ(ask(c, req("get", client_root_ + "/lib/srvtest-1.0/ebin/m.beam"), &bytes),
              "{get,{ok,<<" + std::to_string(v1.size()) + " bytes>>}}");
    EXPECT_TRUE(bytes == v1);
    EXPECT_TRUE(log_shows(std::string(k.from) + ":")) << "no log line for " << k.from;
  }
  // The log names the channel of each answer.
  std::string text = serve_->log();
  EXPECT_NE(text.find("[channel a]"), std::string::npos);
  EXPECT_NE(text.find("[channel b]"), std::string::npos);
}

TEST_F(BadClientsTest, NothingOutsideTheRootsIsServed) {
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  const std::string outside = dir_->path().string() + "/outside.txt";
  // `..` out of the client root (at once, or after going down), out of --root, and absolute
  // paths outside both. The file is there: the refusal is the server's, not the disk's.
  for (const std::string& path :
       {client_root_ + "/../outside.txt", client_root_ + "/lib/srvtest-1.0/ebin/../../../../outside.txt",
        client_root_ + "/lib/../../outside.txt", root_ + "/../outside.txt", outside,
        std::string("/etc/passwd"), std::string("/../../../../etc/passwd")}) {
    SCOPED_TRACE(path);
    std::string bytes;
    EXPECT_EQ(ask(c, req("get", path), &bytes), "{get,{error,enoent}}");
    EXPECT_EQ(bytes, "");
    EXPECT_EQ(ask(c, req("read_file_info", path)).rfind("{read_file_info,{error,", 0), 0u);
    EXPECT_EQ(ask(c, req("list_dir", path + "/..")).rfind("{list_dir,{error,", 0), 0u);
  }
  EXPECT_TRUE(log_shows("`..` leaves the client root " + client_root_));
  EXPECT_TRUE(log_shows("outside the root " + root_ + " and every client root"));
  // `..` that stays inside the client root is a path like any other (mix nodes ask for them).
  std::string bytes;
  EXPECT_EQ(
      ask(c, req("get", client_root_ + "/lib/../lib/srvtest-2.0/ebin/m.beam"), &bytes).rfind("{get,{ok,", 0),
      0u);
  // The connection was never ended by a refusal.
  EXPECT_EQ(ask(c, req("get", root_ + "/hello.txt"), &bytes).rfind("{get,{ok,", 0), 0u);
  EXPECT_EQ(bytes, "hello from the root");
  EXPECT_EQ(serve_->log().find("OUTSIDE-THE-ROOT"), std::string::npos);
}

TEST_F(BadClientsTest, AnApplicationVersionTheStoreLacksIsEnoent) {
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  for (const std::string& path :
       {client_root_ + "/lib/srvtest-9.9/ebin/m.beam", client_root_ + "/lib/srvtest-9.9/ebin/srvtest.app",
        client_root_ + "/lib/srvtest-1.0/ebin/nosuchmodule.beam"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(ask(c, req("get", path)), "{get,{error,enoent}}");
  }
  EXPECT_EQ(ask(c, req("list_dir", client_root_ + "/lib/srvtest-9.9/ebin")), "{list_dir,{error,enoent}}");
  EXPECT_TRUE(log_shows("lib/srvtest-9.9/ebin/m.beam: enoent (store: "));
  std::string bytes;
  EXPECT_EQ(ask(c, req("get", client_root_ + "/lib/srvtest-2.0/ebin/m.beam"), &bytes).rfind("{get,{ok,", 0),
            0u);
}

TEST_F(BadClientsTest, HugeFramesAreRefusedAndAFrameAtTheLimitIsRead) {
  // 2 GiB and 4 GiB - 1 announced: {error,emsgsize} at once (nothing is read or allocated for
  // them), and the connection ends.
  for (std::uint32_t n : {0x80000000u, 0xffffffffu, 64u * 1024u + 1u}) {
    SCOPED_TRACE(n);
    RawClient c(port_);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send_raw(header(n)));
    auto t = c.recv_term();
    ASSERT_TRUE(t);
    EXPECT_EQ(etf::format_w(*t), "{error,emsgsize}");
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_TRUE(
        log_shows(fmt::format("request frame of {} bytes, limit 65536: answered {{error,emsgsize}}", n)));
  }
  // A frame of exactly the limit is read whole: garbage is badarg, and a get with a path of
  // 65 KB is enoent; the connection goes on.
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_frame(std::vector<std::uint8_t>(64u * 1024u, 0xab)));
  auto t = c.recv_term();
  ASSERT_TRUE(t);
  EXPECT_EQ(etf::format_w(*t), "{error,badarg}");
  std::string long_path = root_ + "/" + std::string(64u * 1024u - 100u, 'x');
  ASSERT_LE(etf::encode(req("get", long_path)).size(), 64u * 1024u);
  std::string reply = ask(c, req("get", long_path));
  EXPECT_EQ(reply.rfind("{get,{error,", 0), 0u) << reply.substr(0, 200);
  std::string bytes;
  EXPECT_EQ(ask(c, req("get", root_ + "/hello.txt"), &bytes).rfind("{get,{ok,", 0), 0u);
  EXPECT_TRUE(log_shows("bad request (65536 bytes)"));
}

TEST_F(BadClientsTest, ClientsThatStopReadingOrSendingDoNotStopOthers) {
  // One client asks for a 32 MiB file four times and never reads: the first answer fills the
  // socket buffers and the server's send waits. Another sends half a frame and stops.
  RawClient stuck(port_, "127.0.0.4");
  ASSERT_TRUE(stuck.connected());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(stuck.send_term(req("get", root_ + "/big.bin")));
  RawClient half(port_, "127.0.0.5");
  ASSERT_TRUE(half.connected());
  auto partial = header(1000);
  partial.insert(partial.end(), 10, 0x83);
  ASSERT_TRUE(half.send_raw(partial));
  // Meanwhile others are answered, many times over.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(still_serves()) << "round " << i;
  // Within the request timeout (3 s), each bad one is ended with a log line that says why.
  EXPECT_TRUE(log_shows("connection from 127.0.0.4:")) << "the stuck client was never served";
  EXPECT_TRUE(log_shows("ended: answer not taken within the request timeout"));
  auto t = half.recv_term();
  ASSERT_TRUE(t);
  EXPECT_EQ(etf::format_w(*t), "{error,timeout}");
  EXPECT_TRUE(log_shows("truncated frame: 10 of 1000 bytes (request timeout): answered {error,timeout}"));
  EXPECT_TRUE(half.closed_by_peer());
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace codestore::server

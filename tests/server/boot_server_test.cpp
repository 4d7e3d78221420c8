// The boot server over loopback with an in-memory module source: the path mapping, the
// protocol's answers and errors, the limits, and discovery on an ephemeral UDP port (the
// real port 4368 is exercised by the erl tests, which hold the boot_server_port lock).
#include <codestore/store.h>  // lib_of_path
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "file_service.h"
#include "protocol.h"
#include "server_test_util.h"
#include "support/files.h"

namespace codestore::server {
namespace {

using etf::Term;
using testing::FakeSource;
using testing::RawClient;
using testing::req;
using testing::TempDir;

std::string text(const Term& t) {
  return etf::format_w(t);
}
std::string text(const std::vector<std::uint8_t>& bytes) {
  auto t = etf::decode(bytes);
  return t ? etf::format_w(*t) : "<undecodable: " + t.error().to_string() + ">";
}

// The binary inside {get, {ok, Bin}} as a string, or "" when the answer is something else.
std::string got_bytes(const Term& t) {
  const etf::Tuple* outer = t.as_tuple();
  if (outer == nullptr || outer->elements.size() != 2) return "";
  const etf::Tuple* inner = outer->elements[1].as_tuple();
  if (inner == nullptr || inner->elements.size() != 2 || !inner->elements[0].is_atom("ok")) return "";
  const etf::Binary* b = inner->elements[1].as_binary();
  return b ? std::string(b->bytes.begin(), b->bytes.end()) : "";
}

// The names of {list_dir, {ok, Names}}, joined with ",".
std::string listed(const Term& t) {
  const etf::Tuple* outer = t.as_tuple();
  if (outer == nullptr || outer->elements.size() != 2) return "<" + text(t) + ">";
  const etf::Tuple* inner = outer->elements[1].as_tuple();
  if (inner == nullptr || !inner->elements[0].is_atom("ok")) return "<" + text(t) + ">";
  auto names = inner->elements[1].list_elements();
  std::string out;
  for (const Term& n : *names) {
    auto chars = n.list_elements();
    std::string s;
    for (const Term& c : *chars) s.push_back(static_cast<char>(*c.as_int()));
    out += (out.empty() ? "" : ",") + s;
  }
  return out;
}

// {read_file_info, {ok, {file_info, Size, Type, ...}}} -> "Type Size".
std::string info_of(const Term& t) {
  const etf::Tuple* outer = t.as_tuple();
  const etf::Tuple* inner = outer ? outer->elements[1].as_tuple() : nullptr;
  if (inner == nullptr || !inner->elements[0].is_atom("ok")) return "<" + text(t) + ">";
  const etf::Tuple* fi = inner->elements[1].as_tuple();
  if (fi == nullptr || fi->elements.size() != 14 || !fi->elements[0].is_atom("file_info"))
    return "<" + text(t) + ">";
  return fi->elements[2].as_atom()->name + " " + std::to_string(*fi->elements[1].as_int());
}

class BootServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    codestore::testing::write_file(root_ / "bin/start.boot", "BOOT");
    codestore::testing::write_file(root_ / "releases/start_erl.data", "13.1.5 25\n");
    codestore::testing::write_file(root_ / "lib/stdlib-4.2/ebin/lists.beam", "FALLBACK-LISTS");
    codestore::testing::write_file(root_ / "lib/stdlib-4.2/ebin/stdlib.app", "{application,stdlib,[]}.");
    codestore::testing::write_file(root_ / "lib/other-1.0/ebin/o.beam", "FALLBACK-O");
    codestore::testing::write_file(root_ / "lib/other-1.0/ebin/other.app", "{application,other,[]}.");
    codestore::testing::write_file(root_ / "m.beam", "CWD-M");
    source_.put("stdlib", "lists", 3, "LISTSV3");
    source_.put("mylib", "m", 2, "MV2");
  }

  BootServerOptions options() {
    BootServerOptions o;
    o.root = root_.path().string();
    o.udp_port = -1;
    o.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_ += std::string(line) + "\n";
    };
    return o;
  }
  std::unique_ptr<BootServer> start(const BootServerOptions& o) {
    auto s = BootServer::start(o, source_);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
    return s ? std::move(*s) : nullptr;
  }
  std::string log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }
  Term ask(RawClient& c, const Term& request) {
    EXPECT_TRUE(c.send_term(request));
    auto t = c.recv_term();
    EXPECT_TRUE(t.has_value()) << "no answer to " << text(request);
    return t ? *t : Term::atom("no_answer");
  }
  std::string p(const std::string& rel) { return root_.path().string() + "/" + rel; }

  TempDir root_;
  FakeSource source_;
  std::mutex log_mu_;
  std::string log_;
};

TEST(BootProtocol, ParsesEveryRequest) {
  auto parse = [](const Term& t) { return protocol::parse_request(etf::encode(t)); };
  auto r = parse(req("get", "/a/b.beam"));
  ASSERT_TRUE(r.request);
  EXPECT_EQ(r.request->command, protocol::Command::kGet);
  EXPECT_EQ(r.request->path, "/a/b.beam");
  EXPECT_EQ(parse(req("list_dir", "/a")).request->command, protocol::Command::kListDir);
  EXPECT_EQ(parse(req("read_file_info", "/a")).request->command, protocol::Command::kReadFileInfo);
  EXPECT_EQ(parse(req("read_link_info", "/a")).request->command, protocol::Command::kReadLinkInfo);
  auto cwd = parse(Term::atom("get_cwd"));
  ASSERT_TRUE(cwd.request);
  EXPECT_FALSE(cwd.request->has_drive);
  EXPECT_TRUE(parse(req("get_cwd", "c")).request->has_drive);
  // Binaries and atoms are file names too; code points above 255 become UTF-8.
  auto bin = parse(Term::tuple({Term::atom("get"), Term::binary(std::vector<std::uint8_t>{'/', 'x'})}));
  EXPECT_EQ(bin.request->path, "/x");
  auto uni = parse(Term::tuple({Term::atom("get"), Term::list({Term::integer('/'), Term::integer(0x3bb)})}));
  EXPECT_EQ(uni.request->path, "/\xce\xbb");
  auto bad_name = parse(Term::tuple({Term::atom("get"), Term::integer(42)}));
  ASSERT_TRUE(bad_name.request);
  EXPECT_FALSE(bad_name.request->path_ok);
  auto nul = parse(Term::tuple({Term::atom("get"), Term::string(std::string("/etc\0x", 6))}));
  ASSERT_TRUE(nul.request);
  EXPECT_FALSE(nul.request->path_ok);
}

TEST(BootProtocol, RefusesWhatIsNoRequest) {
  std::vector<std::uint8_t> garbage = {1, 2, 3, 4};
  EXPECT_EQ(protocol::parse_request(garbage).error, protocol::RequestError::kUndecodable);
  EXPECT_EQ(protocol::parse_request({}).error, protocol::RequestError::kUndecodable);
  auto unknown = protocol::parse_request(etf::encode(req("delete", "/x")));
  EXPECT_FALSE(unknown.request);
  EXPECT_EQ(unknown.error, protocol::RequestError::kUnknown);
  EXPECT_EQ(protocol::parse_request(etf::encode(Term::atom("hello"))).error,
            protocol::RequestError::kUnknown);
  EXPECT_EQ(
      protocol::parse_request(etf::encode(Term::tuple({Term::atom("get"), Term::string("a"), Term()}))).error,
      protocol::RequestError::kUnknown);
}

TEST(BootProtocol, ListDirAnswerIsTheEncodingOfItsTerm) {
  // list_dir_reply is built by hand: byte for byte what etf::encode makes of the term.
  auto by_term = [](const std::vector<std::string>& names) {
    etf::TermList list;
    for (const std::string& n : names) list.push_back(protocol::name_term(n));
    return etf::encode(
        Term::tuple({Term::atom("list_dir"), Term::tuple({Term::atom("ok"), Term::list(std::move(list))})}));
  };
  std::vector<std::vector<std::string>> cases = {
      {},
      {""},
      {"a", "b"},
      {"lists.beam", "stdlib.app", "", "x"},
      {"caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "bad\xFF\xC3", "\xF0\x9F\x98\x80.beam", "\xED\xA0\x80"},
      {std::string(70000, 'a'), std::string(65535, 'b'), "m\xE2\x82\xAC" + std::string(300, 'c')},
  };
  for (const auto& names : cases) {
    EXPECT_EQ(protocol::list_dir_reply(names), by_term(names)) << names.size() << " names";
  }
  std::vector<std::string> many;
  for (int i = 0; i < 300; ++i) many.push_back("module_" + std::to_string(i) + ".beam");
  EXPECT_EQ(protocol::list_dir_reply(many), by_term(many));
}

TEST(BootProtocol, AnswersAreTheTermsErlPrimLoaderExpects) {
  std::vector<std::uint8_t> bytes = {1, 2, 3};
  EXPECT_EQ(text(protocol::get_reply(bytes)), "{get,{ok,<<1,2,3>>}}");
  EXPECT_EQ(text(protocol::error_reply("unknown_command")), "{error,unknown_command}");
  EXPECT_EQ(text(protocol::command_error(protocol::Command::kReadFileInfo, "enoent")),
            "{read_file_info,{error,enoent}}");
  EXPECT_EQ(text(protocol::list_dir_reply({"a", "b"})), "{list_dir,{ok,[[97],[98]]}}");
  protocol::FileInfo fi;
  fi.size = 7;
  fi.mode = 0100444;
  auto info = text(protocol::file_info_reply(protocol::Command::kReadFileInfo, fi));
  EXPECT_EQ(info.rfind("{read_file_info,{ok,{file_info,7,regular,read,{{", 0), 0u) << info;
  auto d = protocol::discovery_reply(0, 0x1234, "13.1.5");
  EXPECT_EQ(std::string(d.begin(), d.end()), std::string("EBOOTR\0\x12\x34", 9) + "13.1.5");
  auto v = protocol::parse_discovery(std::vector<std::uint8_t>{'E', 'B', 'O', 'O', 'T', 'Q', '1', '3'});
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "13");
  EXPECT_FALSE(protocol::parse_discovery(std::vector<std::uint8_t>{'E', 'B', 'O'}));
}

TEST(BootPaths, NormalizeAndLibNames) {
  EXPECT_EQ(normalize_path("/a//b/./c/../d", "/"), "/a/b/d");
  EXPECT_EQ(normalize_path("../../etc/passwd", "/usr/lib/erlang"), "/usr/etc/passwd");
  EXPECT_EQ(normalize_path("/../..", "/"), "/");
  EXPECT_EQ(normalize_path("./m.beam", "/r"), "/r/m.beam");
  std::vector<std::string> libs = {"foo-1.0", "stdlib"};
  EXPECT_EQ(store_lib_for("stdlib-4.2", libs), "stdlib");
  EXPECT_EQ(store_lib_for("stdlib", libs), "stdlib");
  EXPECT_EQ(store_lib_for("foo-1.0", libs), "foo-1.0");
  EXPECT_EQ(store_lib_for("kernel-8.5.3", libs), "");
}

// A directory stands for the lib the store files it under on import (lib_of_path): OTP's
// application name, cut at the first '-' (base::app_name). Before, the server cut at the
// last '-' before a numeric version, so lib/my-app-1.0/ebin and lib/foo-1.0-rc1/ebin found
// nothing in libs that an import of those very directories had made.
TEST(BootPaths, DirectoriesNameTheLibTheImportGaveThem) {
  for (const char* dir : {"my-app-1.0", "foo-1.0-rc1"}) {
    const std::string file = std::string("/otp/lib/") + dir + "/ebin/m.beam";
    const std::string lib = lib_of_path(file);
    ASSERT_FALSE(lib.empty()) << file;
    EXPECT_EQ(store_lib_for(dir, {lib}), lib) << dir;
  }
}

TEST_F(BootServerTest, ModulesComeOnlyFromTheStore) {
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(got_bytes(ask(c, req("get", p("lib/stdlib-4.2/ebin/lists.beam")))), "LISTSV3");
  EXPECT_EQ(got_bytes(ask(c, req("get", p("lib/stdlib/ebin/lists.beam")))), "LISTSV3");
  EXPECT_EQ(got_bytes(ask(c, req("get", p("lib/mylib/ebin/m.beam")))), "MV2");
  // Not in the store there: enoent, even when the fallback has the file.
  EXPECT_EQ(text(ask(c, req("get", p("lib/stdlib-4.2/ebin/nope.beam")))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("get", p("lib/other-1.0/ebin/o.beam")))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("get", p("lib/stdlib-4.2/ebin/m.beam")))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("get", "./m.beam"))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("get", p("m.beam")))), "{get,{error,enoent}}");
  auto served = source_.served_log();
  ASSERT_EQ(served.size(), 3u);
  EXPECT_EQ(served[0], "lists v3 to 127.0.0.1");
  EXPECT_EQ(server->stats().modules_served, 3u);
  EXPECT_NE(log().find("store stdlib/lists v3"), std::string::npos) << log();
}

TEST_F(BootServerTest, OtherFilesComeFromTheFallbackInsideTheRootOnly) {
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  EXPECT_EQ(got_bytes(ask(c, req("get", p("bin/start.boot")))), "BOOT");
  EXPECT_EQ(got_bytes(ask(c, req("get", "bin/start.boot"))), "BOOT");  // relative: from the root
  EXPECT_EQ(got_bytes(ask(c, req("get", p("lib/stdlib-4.2/ebin/stdlib.app")))), "{application,stdlib,[]}.");
  EXPECT_EQ(text(ask(c, req("get", p("bin/nothing")))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("get", p("bin")))), "{get,{error,eisdir}}");
  EXPECT_EQ(text(ask(c, req("get", "/etc/passwd"))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("get", p("../../../../../../etc/passwd")))), "{get,{error,enoent}}");
  EXPECT_EQ(text(ask(c, Term::atom("get_cwd"))), text(protocol::cwd_reply(root_.path().string())).c_str());
  EXPECT_EQ(text(ask(c, req("get_cwd", "c"))), "{get_cwd,{error,enotsup}}");
  EXPECT_EQ(text(ask(c, Term::tuple({Term::atom("get"), Term::integer(42)}))), "{get,{error,badarg}}");
  EXPECT_NE(log().find("bin/start.boot: fallback (4 bytes)"), std::string::npos) << log();
}

TEST_F(BootServerTest, DirectoriesMergeTheStoreAndTheFallback) {
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  EXPECT_EQ(listed(ask(c, req("list_dir", p("lib")))), "mylib,other-1.0,stdlib-4.2");
  EXPECT_EQ(listed(ask(c, req("list_dir", p("lib/stdlib-4.2/ebin")))), "lists.beam,stdlib.app");
  EXPECT_EQ(listed(ask(c, req("list_dir", p("lib/mylib/ebin")))), "m.beam");
  EXPECT_EQ(listed(ask(c, req("list_dir", p("lib/mylib")))), "ebin");
  EXPECT_EQ(listed(ask(c, req("list_dir", p("lib/other-1.0/ebin")))), "other.app");
  EXPECT_EQ(text(ask(c, req("list_dir", p("lib/nolib")))), "{list_dir,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("list_dir", "/etc"))), "{list_dir,{error,enoent}}");

  EXPECT_EQ(info_of(ask(c, req("read_file_info", p("lib/mylib")))), "directory 4096");
  EXPECT_EQ(info_of(ask(c, req("read_file_info", p("lib/mylib/ebin")))), "directory 4096");
  EXPECT_EQ(info_of(ask(c, req("read_file_info", p("lib/mylib/ebin/m.beam")))), "regular 3");
  {
    // A module's times are when its version became active (FakeSource: 1700000000 + v),
    // in local time as prim_file gives them.
    Term answer = ask(c, req("read_file_info", p("lib/mylib/ebin/m.beam")));
    const etf::Tuple* fi = answer.as_tuple()->elements[1].as_tuple()->elements[1].as_tuple();
    std::time_t t = 1700000000 + 2;
    std::tm tm{};
    ::localtime_r(&t, &tm);
    std::string expected = fmt::format("{{{{{},{},{}}},{{{},{},{}}}}}", tm.tm_year + 1900, tm.tm_mon + 1,
                                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    EXPECT_EQ(text(fi->elements[5]), expected);  // mtime
    EXPECT_EQ(text(fi->elements[7]), "33060");   // mode 8#100444: a read-only regular file
  }
  EXPECT_EQ(info_of(ask(c, req("read_link_info", p("lib/stdlib-4.2/ebin/lists.beam")))), "regular 7");
  EXPECT_EQ(info_of(ask(c, req("read_file_info", p("bin/start.boot")))), "regular 4");
  EXPECT_EQ(info_of(ask(c, req("read_file_info", p("lib/stdlib-4.2/ebin")))).substr(0, 9), "directory");
  EXPECT_EQ(text(ask(c, req("read_file_info", p("lib/other-1.0/ebin/o.beam")))),
            "{read_file_info,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("read_file_info", p("lib/nolib/ebin")))), "{read_file_info,{error,enoent}}");
  EXPECT_EQ(text(ask(c, req("read_file_info", "/etc/passwd"))), "{read_file_info,{error,enoent}}");
}

TEST_F(BootServerTest, BadFramesGetTheProtocolErrorAndTheConnectionGoesOn) {
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  ASSERT_TRUE(c.send_frame({1, 2, 3, 4, 5}));
  EXPECT_EQ(text(*c.recv_term()), "{error,badarg}");
  ASSERT_TRUE(c.send_frame({}));
  EXPECT_EQ(text(*c.recv_term()), "{error,badarg}");
  ASSERT_TRUE(c.send_frame({131, 104, 2, 119}));  // a tuple cut short
  EXPECT_EQ(text(*c.recv_term()), "{error,badarg}");
  EXPECT_EQ(text(ask(c, req("delete", p("bin/start.boot")))), "{error,unknown_command}");
  EXPECT_EQ(text(ask(c, Term::atom("hello"))), "{error,unknown_command}");
  EXPECT_EQ(got_bytes(ask(c, req("get", p("bin/start.boot")))), "BOOT");
  EXPECT_EQ(server->stats().bad_requests, 5u);
}

TEST_F(BootServerTest, FramesAreCutFromTheByteStreamWhateverTheSegments) {
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  auto framed = [](const Term& t) {
    auto payload = etf::encode(t);
    auto n = static_cast<std::uint32_t>(payload.size());
    std::vector<std::uint8_t> f = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    f.insert(f.end(), payload.begin(), payload.end());
    return f;
  };
  // Three requests in one segment (a client that does not wait): three answers, in order.
  std::vector<std::uint8_t> three;
  for (const char* path : {"lib/mylib/ebin/m.beam", "bin/start.boot", "lib/stdlib-4.2/ebin/lists.beam"}) {
    auto f = framed(req("get", p(path)));
    three.insert(three.end(), f.begin(), f.end());
  }
  ASSERT_TRUE(c.send_raw(three));
  EXPECT_EQ(got_bytes(*c.recv_term()), "MV2");
  EXPECT_EQ(got_bytes(*c.recv_term()), "BOOT");
  EXPECT_EQ(got_bytes(*c.recv_term()), "LISTSV3");
  // One request a byte at a time, then one and a half: the half waits for its rest.
  auto one = framed(req("get", p("bin/start.boot")));
  for (std::uint8_t b : one) {
    ASSERT_TRUE(c.send_raw({b}));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(got_bytes(*c.recv_term()), "BOOT");
  auto next = framed(req("get", p("lib/mylib/ebin/m.beam")));
  std::vector<std::uint8_t> chunk = one;
  chunk.insert(chunk.end(), next.begin(), next.begin() + 6);
  ASSERT_TRUE(c.send_raw(chunk));
  EXPECT_EQ(got_bytes(*c.recv_term()), "BOOT");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(c.send_raw(std::vector<std::uint8_t>(next.begin() + 6, next.end())));
  EXPECT_EQ(got_bytes(*c.recv_term()), "MV2");
  EXPECT_EQ(server->stats().requests, 6u);
  EXPECT_EQ(server->stats().bad_requests, 0u);
}

TEST_F(BootServerTest, AnImageLargerThanTheSocketBufferArrivesWhole) {
  // Sent from the cache in several sendmsg calls (the client reads late): every byte, in
  // order, and the connection goes on.
  std::string big(6u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) >> 7);
  source_.put("mylib", "big", 1, big);
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient c(server->tcp_port());
  ASSERT_TRUE(c.send_term(req("get", p("lib/mylib/ebin/big.beam"))));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto answer = c.recv_term();
  ASSERT_TRUE(answer);
  EXPECT_TRUE(got_bytes(*answer) == big);
  EXPECT_EQ(got_bytes(ask(c, req("get", p("lib/mylib/ebin/m.beam")))), "MV2");
}

TEST_F(BootServerTest, OversizedFrameIsRefusedAndClosesOnlyThatConnection) {
  auto o = options();
  o.max_request_bytes = 1024;
  auto server = start(o);
  ASSERT_TRUE(server);
  RawClient other(server->tcp_port());
  RawClient c(server->tcp_port());
  ASSERT_TRUE(c.send_raw({0x00, 0x10, 0x00, 0x00, 131}));  // claims 1 MiB
  EXPECT_EQ(text(*c.recv_term()), "{error,emsgsize}");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(got_bytes(ask(other, req("get", p("lib/mylib/ebin/m.beam")))), "MV2");
}

TEST_F(BootServerTest, TruncatedFramesAreAnsweredAndClosed) {
  auto o = options();
  o.request_timeout = std::chrono::milliseconds(300);
  auto server = start(o);
  ASSERT_TRUE(server);
  {
    RawClient c(server->tcp_port());  // the peer closes mid-frame
    ASSERT_TRUE(c.send_raw({0, 0, 0, 100, 131, 104}));
    c.shutdown_write();
    EXPECT_EQ(text(*c.recv_term()), "{error,truncated}");
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawClient c(server->tcp_port());  // the peer stalls mid-frame
    ASSERT_TRUE(c.send_raw({0, 0, 0, 100, 131, 104}));
    EXPECT_EQ(text(*c.recv_term()), "{error,timeout}");
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawClient c(server->tcp_port());  // the peer stalls inside the length header
    ASSERT_TRUE(c.send_raw({0, 0}));
    EXPECT_EQ(text(*c.recv_term()), "{error,timeout}");
    EXPECT_TRUE(c.closed_by_peer());
  }
  RawClient c(server->tcp_port());
  EXPECT_EQ(got_bytes(ask(c, req("get", p("bin/start.boot")))), "BOOT");
  EXPECT_EQ(server->stats().bad_requests, 3u);
}

TEST_F(BootServerTest, DisallowedAddressGetsNoAnswerAndOthersAreServed) {
  auto o = options();
  o.allow = {"127.0.0.2", "10.1.0.0/16"};
  auto server = start(o);
  ASSERT_TRUE(server);
  RawClient refused(server->tcp_port());  // from 127.0.0.1
  ASSERT_TRUE(refused.connected());
  refused.send_term(req("get", p("bin/start.boot")));
  EXPECT_TRUE(refused.closed_by_peer());
  // 127.0.0.2 is allowed: bind the client there (all of 127/8 is loopback on Linux).
  RawClient allowed(server->tcp_port(), "127.0.0.2");
  ASSERT_TRUE(allowed.connected());
  EXPECT_EQ(got_bytes(ask(allowed, req("get", p("bin/start.boot")))), "BOOT");
  EXPECT_EQ(server->stats().connections_refused, 1u);
  EXPECT_NE(log().find("not an allowed address"), std::string::npos) << log();
}

TEST_F(BootServerTest, ConnectionLimitRefusesTheExtraOnes) {
  auto o = options();
  o.max_connections = 1;
  auto server = start(o);
  ASSERT_TRUE(server);
  RawClient first(server->tcp_port());
  EXPECT_EQ(got_bytes(ask(first, req("get", p("bin/start.boot")))), "BOOT");
  RawClient second(server->tcp_port());
  EXPECT_TRUE(second.closed_by_peer());
  EXPECT_EQ(got_bytes(ask(first, req("get", p("bin/start.boot")))), "BOOT");
}

TEST_F(BootServerTest, ConcurrentClientsEachGetTheirAnswers) {
  auto server = start(options());
  ASSERT_TRUE(server);
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      RawClient c(server->tcp_port());
      for (int i = 0; i < 50; ++i) {
        bool module = (i + t) % 2 == 0;
        c.send_term(req("get", p(module ? "lib/mylib/ebin/m.beam" : "bin/start.boot")));
        auto answer = c.recv_term();
        if (answer && got_bytes(*answer) == (module ? "MV2" : "BOOT")) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 400);
}

TEST_F(BootServerTest, StopEndsOpenConnections) {
  auto server = start(options());
  ASSERT_TRUE(server);
  RawClient idle(server->tcp_port());
  EXPECT_EQ(got_bytes(ask(idle, req("get", p("bin/start.boot")))), "BOOT");
  server->stop();  // returns although a client is connected and idle
  EXPECT_TRUE(idle.closed_by_peer());
  EXPECT_NE(log().find("stopped:"), std::string::npos);
}

TEST_F(BootServerTest, DiscoveryAnswersTheRightVersionFromAllowedAddresses) {
  auto o = options();
  o.udp_port = 0;  // an ephemeral port: this test need not hold 4368
  auto server = start(o);
  ASSERT_TRUE(server);
  ASSERT_NE(server->udp_port(), 0);
  EXPECT_EQ(server->erts_version(), "13.1.5");  // from releases/start_erl.data
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server->udp_port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto ask_udp = [&](const std::string& msg, int wait_ms) -> std::string {
    ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd pf{fd, POLLIN, 0};
    if (::poll(&pf, 1, wait_ms) != 1) return "<none>";
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  };
  std::string port = {static_cast<char>(server->tcp_port() >> 8),
                      static_cast<char>(server->tcp_port() & 0xFF)};
  EXPECT_EQ(ask_udp("EBOOTQ13.1.5", 10000), std::string("EBOOTR\0", 7) + port + "13.1.5");
  // Refusals get no answer; a bounded wait shows none comes.
  EXPECT_EQ(ask_udp("EBOOTQ12.0", 300), "<none>");
  EXPECT_EQ(ask_udp("garbage", 300), "<none>");
  EXPECT_EQ(ask_udp("EBOOTQ13.1.5", 10000), std::string("EBOOTR\0", 7) + port + "13.1.5");
  ::close(fd);
  EXPECT_EQ(server->stats().discovery_answered, 2u);
  EXPECT_EQ(server->stats().discovery_refused, 2u);
  EXPECT_NE(log().find("client version is 12.0"), std::string::npos) << log();
}

TEST_F(BootServerTest, DiscoveryFromADisallowedAddressIsRefused) {
  auto o = options();
  o.udp_port = 0;
  o.allow = {"127.0.0.2"};
  auto server = start(o);
  ASSERT_TRUE(server);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server->udp_port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string msg = "EBOOTQ13.1.5";
  ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  pollfd pf{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&pf, 1, 300), 0);
  ::close(fd);
  // The refusal is counted once the datagram is read; wait for that, bounded.
  for (int i = 0; i < 100 && server->stats().discovery_refused == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(server->stats().discovery_refused, 1u);
}

TEST_F(BootServerTest, StartRefusesBadOptions) {
  auto o = options();
  o.allow = {"not an address!"};
  auto s = BootServer::start(o, source_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kInvalidArgument);
  o = options();
  o.root = root_.path().string() + "/missing";
  EXPECT_FALSE(BootServer::start(o, source_));
  o = options();
  o.allow = {"127.0.0.1/33"};
  EXPECT_FALSE(BootServer::start(o, source_));
}

TEST(ErtsVersion, FromStartErlDataOrErtsDirectories) {
  TempDir a;
  codestore::testing::write_file(a / "erts-9.3/bin/x", "");
  codestore::testing::write_file(a / "erts-13.1.5/bin/x", "");
  codestore::testing::write_file(a / "erts-13.1.10/bin/x", "");
  EXPECT_EQ(*find_erts_version(a.path().string()), "13.1.10");
  codestore::testing::write_file(a / "releases/start_erl.data", "13.1.5 25");
  EXPECT_EQ(*find_erts_version(a.path().string()), "13.1.5");
  TempDir empty;
  EXPECT_EQ(find_erts_version(empty.path().string()).error().code(), Code::kNotFound);
}

}  // namespace
}  // namespace codestore::server

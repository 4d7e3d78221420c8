// Client roots and paths that never lie (issue 14, items 2 and 3), against a real temporary
// store holding two versions of one application and of one release (made by the store's own
// import_release from the real server fixtures' module images m v1 and v2), deployed to
// channels: which channel a request is served from (by client root, by address, first rule
// first), how paths are normalized (`..` inside and out of a client root, absolute paths
// outside), that a versioned path gets that version even after another is deployed, that an
// application version the store lacks is enoent, and that a secret is never served.
#include <codestore/store.h>
#include <codestore/term.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "file_service.h"
#include "server_test_util.h"
#include "srvtest_release.h"
#include "store_ops.h"
#include "support/files.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_file;
using testing::deploy;
using testing::release_of;
using testing::TempDir;

const std::string kFixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images";

std::uint32_t ip(const char* text) {
  in_addr a{};
  ::inet_pton(AF_INET, text, &a);
  return ntohl(a.s_addr);
}

class ClientRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.path().string() + "/s.db";
    root_ = dir_.path().string() + "/root";
    fs::create_directories(root_ + "/bin");
    fs::create_directories(root_ + "/releases");
    codestore::testing::write_file(root_ + "/bin/start_clean.boot", "erts's own boot script");
    codestore::testing::write_file(root_ + "/releases/COOKIE", "ROOTSECRET");
    // A module imported without an application version (lib "legacy"), as before issue 13.
    ASSERT_TRUE(store_ops::import_file(db_, kFixtures + "/hello.beam", "legacy"));
    auto store = Store::open(db_);
    ASSERT_TRUE(store) << store.error().to_string();
    for (const auto& [vsn, beam] :
         {std::pair{"1.0", "/server/v1/m.beam"}, std::pair{"2.0", "/server/v2/m.beam"}}) {
      auto r = (*store)->import_release(release_of(vsn, kFixtures + beam));
      ASSERT_TRUE(r) << r.error().to_string();
    }
    auto v1 = (*store)->app_show("srvtest", "1.0");
    auto v2 = (*store)->app_show("srvtest", "2.0");
    ASSERT_TRUE(v1 && v2);
    ASSERT_EQ(v1->modules.size(), 1u);
    md5_v1_ = v1->modules[0].md5;
    md5_v2_ = v2->modules[0].md5;
    ASSERT_NE(md5_v1_, md5_v2_);
    store->reset();
    ASSERT_TRUE(deploy(db_, "prod", "1.0"));
    ASSERT_TRUE(deploy(db_, "staging", "2.0"));
  }

  // A FileService over `root_` with `client_roots` and `rules` (channel=where), the default
  // channel "default", one store source per channel.
  std::unique_ptr<FileService> service(const std::vector<std::string>& client_roots,
                                       const std::vector<std::pair<std::string, std::string>>& rules) {
    BootServerOptions o;
    o.client_roots = client_roots;
    std::map<std::string, ModuleSource*> channels;
    for (const auto& [channel, where] : rules) {
      o.channel_rules.push_back({channel, where});
      if (sources_.count(channel) == 0) {
        auto s = open_store_source(db_, "", channel);
        EXPECT_TRUE(s) << s.error().to_string();
        if (!s) return nullptr;
        sources_[channel] = std::move(*s);
      }
      channels[channel] = sources_[channel].get();
    }
    auto def = open_store_source(db_, "", "default");
    EXPECT_TRUE(def) << def.error().to_string();
    if (!def) return nullptr;
    default_ = std::move(*def);
    auto routing = Routing::make(o, channels);
    EXPECT_TRUE(routing) << routing.error().to_string();
    if (!routing) return nullptr;
    return std::make_unique<FileService>(root_, *default_, 1 << 20, std::move(*routing));
  }

  static Answer ask(const FileService& fs, protocol::Command cmd, const std::string& path,
                    const char* peer = "127.0.0.1") {
    protocol::Request r;
    r.command = cmd;
    r.path = path;
    return fs.answer(r, ip(peer));
  }
  // The bytes a get answered, or "{error,Reason}".
  static std::string get(const FileService& fs, const std::string& path, const char* peer = "127.0.0.1") {
    Answer a = ask(fs, protocol::Command::kGet, path, peer);
    if (a.body) return std::string(a.body->begin(), a.body->end());
    auto t = etf::decode(a.reply);
    return t ? etf::format_w(*t) : "<undecodable>";
  }
  // {list_dir,{ok,Names}} as the answer's text: names are lists of bytes, as
  // erl_prim_loader's primitives give them.
  static std::string listing(const std::vector<std::string>& names) {
    etf::TermList l;
    for (const std::string& n : names) l.push_back(etf::Term::string(n));
    return etf::format_w(
        etf::Term::tuple({etf::Term::atom("list_dir"),
                          etf::Term::tuple({etf::Term::atom("ok"), etf::Term::list(std::move(l))})}));
  }
  static std::string term(const Answer& a) {
    auto t = etf::decode(a.reply);
    return t ? etf::format_w(*t) : "<undecodable>";
  }

  TempDir dir_;
  std::string db_, root_, md5_v1_, md5_v2_;
  std::map<std::string, std::unique_ptr<ModuleSource>> sources_;
  std::unique_ptr<ModuleSource> default_;
};

const std::string kV1 = kFixtures + "/server/v1/m.beam";
const std::string kV2 = kFixtures + "/server/v2/m.beam";
std::string bytes_of(const std::string& path) {
  auto b = read_file(path);
  return {b.begin(), b.end()};
}

TEST_F(ClientRootTest, AVersionedPathGetsThatVersionBeforeAndAfterADeploy) {
  auto fs = service({"/srv/prod"}, {{"prod", "/srv/prod"}});
  ASSERT_TRUE(fs);
  Answer a = ask(*fs, protocol::Command::kGet, "/srv/prod/lib/srvtest-1.0/ebin/m.beam");
  ASSERT_TRUE(a.body) << a.log;
  EXPECT_EQ(std::string(a.body->begin(), a.body->end()), bytes_of(kV1));
  ASSERT_TRUE(a.served);
  EXPECT_EQ(a.served->md5, md5_v1_);
  EXPECT_EQ(a.source, sources_["prod"].get());  // counted in the channel that served it
  EXPECT_NE(a.log.find("[channel prod]"), std::string::npos) << a.log;
  // The version the channel does not run is still that version (the store's revision of it).
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest-2.0/ebin/m.beam"), bytes_of(kV2));
  // Unversioned names go through the channel alone.
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest/ebin/m.beam"), bytes_of(kV1));
  EXPECT_EQ(get(*fs, "/srv/prod/bin/start.boot"), "boot script of 1.0");
  EXPECT_EQ(
      get(*fs, "/srv/prod/lib/srvtest-1.0/ebin/srvtest.app").find("{vsn, \"1.0\"}") != std::string::npos,
      true);
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest-1.0/priv/data.txt"), "data of 1.0");
  // An application version the store lacks: enoent, never another version.
  Answer missing = ask(*fs, protocol::Command::kGet, "/srv/prod/lib/srvtest-3.0/ebin/m.beam");
  EXPECT_EQ(term(missing), "{get,{error,enoent}}");
  EXPECT_NE(missing.log.find("no application version srvtest@3.0"), std::string::npos) << missing.log;
  EXPECT_EQ(term(ask(*fs, protocol::Command::kReadFileInfo, "/srv/prod/lib/srvtest-3.0/ebin")),
            "{read_file_info,{error,enoent}}");

  // X' deployed: a node still running 1.0 gets 1.0's files for its versioned paths; the
  // unversioned ones and the boot script follow the channel.
  ASSERT_TRUE(deploy(db_, "prod", "2.0"));
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"), bytes_of(kV1));
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest-1.0/priv/data.txt"), "data of 1.0");
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest-2.0/ebin/m.beam"), bytes_of(kV2));
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest/ebin/m.beam"), bytes_of(kV2));
  EXPECT_EQ(get(*fs, "/srv/prod/bin/start.boot"), "boot script of 2.0");
  EXPECT_EQ(get(*fs, "/srv/prod/releases/1.0/start.boot"), "boot script of 1.0");
  EXPECT_EQ(get(*fs, "/srv/prod/releases/1.0/sys.config"), "[{srvtest, [{v, \"1.0\"}]}].\n");

  // A channel rollback makes 1.0's content current again, in a generation that names no
  // release: the boot script is 1.0's, not that of the newest deploy.
  {
    StoreOptions o;
    o.channel = "prod";
    auto store = Store::open(db_, o);
    ASSERT_TRUE(store);
    auto back = (*store)->channel_rollback(Reason("client_root_test"));
    ASSERT_TRUE(back) << back.error().to_string();
  }
  EXPECT_EQ(get(*fs, "/srv/prod/bin/start.boot"), "boot script of 1.0");
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest/ebin/m.beam"), bytes_of(kV1));
  EXPECT_EQ(get(*fs, "/srv/prod/lib/srvtest-2.0/ebin/m.beam"), bytes_of(kV2));
}

TEST_F(ClientRootTest, ListingsAndFileInfoComeFromTheStore) {
  auto fs = service({"/srv/prod"}, {{"prod", "/srv/prod"}});
  ASSERT_TRUE(fs);
  // The channel's applications by version, and the lib of a module it serves without one
  // (the release's own hello, whose version was imported first as lib legacy), by name.
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv/prod/lib")), listing({"legacy", "srvtest-1.0"}));
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv/prod/lib/srvtest-1.0")),
            listing({"ebin", "priv"}));
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv/prod/lib/srvtest-1.0/ebin")),
            listing({"m.beam", "srvtest.app"}));
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv/prod/releases")), listing({"1.0", "2.0"}));
  // A release directory never lists its secret.
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv/prod/releases/1.0")),
            listing({"consolidated", "rel.rel", "start.boot", "sys.config"}));
  std::string info =
      term(ask(*fs, protocol::Command::kReadFileInfo, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"));
  EXPECT_EQ(
      info.rfind("{read_file_info,{ok,{file_info," + std::to_string(fs::file_size(kV1)) + ",regular,", 0), 0u)
      << info;
  info = term(ask(*fs, protocol::Command::kReadFileInfo, "/srv/prod/lib/srvtest-1.0/priv"));
  EXPECT_NE(info.find(",directory,"), std::string::npos) << info;
  EXPECT_EQ(term(ask(*fs, protocol::Command::kGet, "/srv/prod/lib/srvtest-1.0/ebin")),
            "{get,{error,eisdir}}");
  EXPECT_EQ(term(ask(*fs, protocol::Command::kGet, "/srv/prod/lib/srvtest-1.0/ebin/absent.beam")),
            "{get,{error,enoent}}");
  // erts's own files come from the root.
  EXPECT_EQ(get(*fs, "/srv/prod/bin/start_clean.boot"), "erts's own boot script");
}

TEST_F(ClientRootTest, DotDotIsRefusedOnlyWhenItLeavesTheClientRoot) {
  auto fs = service({"/srv/prod"}, {{"prod", "/srv/prod"}});
  ASSERT_TRUE(fs);
  // As a mix node asks for its release's files.
  EXPECT_EQ(get(*fs, "/srv/prod/lib/../releases/1.0/start.boot"), "boot script of 1.0");
  Answer consolidated =
      ask(*fs, protocol::Command::kGet, "/srv/prod/lib/../releases/1.0/consolidated/hello.beam");
  ASSERT_TRUE(consolidated.body) << consolidated.log;
  EXPECT_EQ(std::string(consolidated.body->begin(), consolidated.body->end()),
            bytes_of(kFixtures + "/hello.beam"));
  ASSERT_TRUE(consolidated.served);
  EXPECT_EQ(consolidated.served->lib, "rel");
  EXPECT_EQ(get(*fs, "/srv/prod/./lib//srvtest-1.0/ebin/../ebin/m.beam"), bytes_of(kV1));
  Answer out = ask(*fs, protocol::Command::kGet, "/srv/prod/lib/../../prod/bin/start.boot");
  EXPECT_EQ(term(out), "{get,{error,enoent}}");
  EXPECT_NE(out.log.find("leaves the client root /srv/prod"), std::string::npos) << out.log;
  EXPECT_EQ(get(*fs, "/srv/prod/../../" + root_ + "/bin/start_clean.boot"), "{get,{error,enoent}}");
  // Absolute paths outside every client root and the root.
  Answer abs = ask(*fs, protocol::Command::kGet, "/etc/passwd");
  EXPECT_EQ(term(abs), "{get,{error,enoent}}");
  EXPECT_NE(abs.log.find("outside the root"), std::string::npos) << abs.log;
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv")), "{list_dir,{error,enoent}}");
  EXPECT_EQ(get(*fs, "/srv/production/bin/start.boot"), "{get,{error,enoent}}");  // not a prefix by name
  // The root's own paths keep their meaning.
  EXPECT_EQ(get(*fs, root_ + "/bin/start_clean.boot"), "erts's own boot script");
}

TEST_F(ClientRootTest, ASecretIsNeverServed) {
  auto fs = service({"/srv/prod"}, {{"prod", "/srv/prod"}});
  ASSERT_TRUE(fs);
  for (const std::string& path :
       {std::string("/srv/prod/releases/1.0/COOKIE"), std::string("/srv/prod/lib/../releases/1.0/COOKIE"),
        std::string("/srv/prod/releases/COOKIE"), root_ + "/releases/COOKIE"}) {
    Answer a = ask(*fs, protocol::Command::kGet, path);
    EXPECT_EQ(term(a), "{get,{error,eacces}}") << path;
    EXPECT_FALSE(a.body) << path;
    EXPECT_NE(a.log.find("never served"), std::string::npos) << a.log;
    EXPECT_EQ(term(ask(*fs, protocol::Command::kReadFileInfo, path)), "{read_file_info,{error,eacces}}");
  }
}

TEST_F(ClientRootTest, TwoClientRootsFollowTwoChannels) {
  auto fs = service({"/srv/a", "/srv/b"}, {{"prod", "/srv/a"}, {"staging", "/srv/b"}});
  ASSERT_TRUE(fs);
  EXPECT_EQ(get(*fs, "/srv/a/bin/start.boot"), "boot script of 1.0");
  EXPECT_EQ(get(*fs, "/srv/b/bin/start.boot"), "boot script of 2.0");
  EXPECT_EQ(get(*fs, "/srv/a/lib/srvtest/ebin/m.beam"), bytes_of(kV1));
  EXPECT_EQ(get(*fs, "/srv/b/lib/srvtest/ebin/m.beam"), bytes_of(kV2));
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, "/srv/b/lib")), listing({"legacy", "srvtest-2.0"}));
  // The default channel has no release: bin/start.boot under the root is erts's (none here),
  // and the module imported without an application version resolves as before.
  EXPECT_EQ(get(*fs, root_ + "/lib/legacy-1.0/ebin/hello.beam"), bytes_of(kFixtures + "/hello.beam"));
  EXPECT_EQ(get(*fs, root_ + "/lib/legacy/ebin/hello.beam"), bytes_of(kFixtures + "/hello.beam"));
  // Nested client roots: the longest holds the path.
  auto nested = service({"/srv", "/srv/b"}, {{"prod", "/srv"}, {"staging", "/srv/b"}});
  ASSERT_TRUE(nested);
  EXPECT_EQ(get(*nested, "/srv/b/bin/start.boot"), "boot script of 2.0");
  EXPECT_EQ(get(*nested, "/srv/bin/start.boot"), "boot script of 1.0");
}

TEST_F(ClientRootTest, AddressRulesMatchSubnetsAndSingleAddressesFirstRuleFirst) {
  auto fs =
      service({"/srv/prod"}, {{"staging", "10.0.0.0/24"}, {"prod", "/srv/prod"}, {"staging", "192.168.1.5"}});
  ASSERT_TRUE(fs);
  const std::string boot = "/srv/prod/bin/start.boot";
  EXPECT_EQ(get(*fs, boot, "10.0.0.7"), "boot script of 2.0");  // the subnet's rule comes first
  EXPECT_EQ(get(*fs, boot, "10.0.0.255"), "boot script of 2.0");
  EXPECT_EQ(get(*fs, boot, "10.0.1.7"), "boot script of 1.0");  // outside /24: the client root's rule
  EXPECT_EQ(get(*fs, boot, "127.0.0.1"), "boot script of 1.0");
  // Outside the client roots only address rules match, else the default channel.
  EXPECT_EQ(term(ask(*fs, protocol::Command::kListDir, root_ + "/lib/srvtest-1.0/ebin", "192.168.1.5")),
            listing({"m.beam", "srvtest.app"}));
  Answer a = ask(*fs, protocol::Command::kGet, root_ + "/lib/srvtest/ebin/m.beam", "192.168.1.5");
  ASSERT_TRUE(a.body) << a.log;  // staging pins 2.0
  EXPECT_EQ(std::string(a.body->begin(), a.body->end()), bytes_of(kV2));
  Answer d = ask(*fs, protocol::Command::kGet, root_ + "/lib/srvtest/ebin/m.beam", "192.168.1.6");
  EXPECT_EQ(term(d), "{get,{error,enoent}}") << d.log;  // default pins no srvtest, has no m
}

// Over loopback through a real BootServer: the connection's source address chooses the
// channel (a raw client binds it; a node cannot), and refused paths leave the connection
// serving.
TEST_F(ClientRootTest, TheClientsAddressChoosesTheChannelOverTheWire) {
  auto staging = open_store_source(db_, "", "staging");
  auto prod = open_store_source(db_, "", "prod");
  auto def = open_store_source(db_, "", "default");
  ASSERT_TRUE(staging && prod && def);
  BootServerOptions o;
  o.root = root_;
  o.erts_version = "13.1.5";
  o.allow = {"127.0.0.0/8"};
  o.bind_address = "127.0.0.1";
  o.udp_port = -1;
  o.client_roots = {"/srv/prod"};
  o.channel_rules = {{"staging", "127.0.0.2"}, {"prod", "/srv/prod"}};
  auto server = BootServer::start(o, **def, {{"staging", staging->get()}, {"prod", prod->get()}});
  ASSERT_TRUE(server) << server.error().to_string();
  auto get = [](testing::RawClient& c, const std::string& path) -> std::string {
    if (!c.send_term(testing::req("get", path))) return "<not sent>";
    auto t = c.recv_term();
    if (!t) return "<no answer>";
    const etf::Tuple* answer = t->as_tuple();
    const etf::Tuple* ok = answer && answer->elements.size() == 2 ? answer->elements[1].as_tuple() : nullptr;
    if (ok && ok->elements.size() == 2 && ok->elements[0].is_atom("ok")) {
      if (const etf::Binary* b = ok->elements[1].as_binary())
        return std::string(b->bytes.begin(), b->bytes.end());
    }
    return etf::format_w(*t);
  };
  testing::RawClient from2((*server)->tcp_port(), "127.0.0.2");
  testing::RawClient from1((*server)->tcp_port());
  ASSERT_TRUE(from2.connected() && from1.connected());
  EXPECT_EQ(get(from2, "/srv/prod/bin/start.boot"), "boot script of 2.0");
  EXPECT_EQ(get(from1, "/srv/prod/bin/start.boot"), "boot script of 1.0");
  EXPECT_EQ(get(from1, "/srv/prod/releases/1.0/COOKIE"), "{get,{error,eacces}}");
  EXPECT_EQ(get(from1, "/srv/prod/lib/../../../etc/passwd"), "{get,{error,enoent}}");
  EXPECT_EQ(get(from1, "/srv/prod/lib/srvtest-9.9/ebin/m.beam"), "{get,{error,enoent}}");
  EXPECT_EQ(get(from1, "/srv/prod/lib/srvtest-1.0/ebin/m.beam"), bytes_of(kV1));  // still serving
  EXPECT_EQ(get(from2, "/srv/prod/lib/srvtest/ebin/m.beam"), bytes_of(kV2));
  (*server)->stop();
  EXPECT_EQ((*server)->stats().modules_served, 2u);
}

TEST_F(ClientRootTest, BadRulesAreRefusedAtStart) {
  BootServerOptions o;
  o.client_roots = {"/srv/prod"};
  auto prod = open_store_source(db_, "", "prod");
  ASSERT_TRUE(prod);
  std::map<std::string, ModuleSource*> channels = {{"prod", prod->get()}};
  auto refused = [&](std::vector<BootServerOptions::ChannelRule> rules, const std::string& says) {
    o.channel_rules = std::move(rules);
    auto r = Routing::make(o, channels);
    ASSERT_FALSE(r) << says;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().to_string();
  };
  refused({{"prod", "/srv/other"}}, "/srv/other is not a client root");
  refused({{"prod", "10.0.0.0/33"}}, "bad prefix length");
  refused({{"nosuch", "/srv/prod"}}, "no source for channel nosuch");
  o.channel_rules = {{"prod", "/srv/prod/"}};
  EXPECT_TRUE(Routing::make(o, channels));  // normalized
  o.client_roots = {"relative/root"};
  o.channel_rules.clear();
  EXPECT_FALSE(Routing::make(o, channels));
  // An unknown channel is refused when its source is opened.
  auto unknown = open_store_source(db_, "", "nosuch");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
}

}  // namespace
}  // namespace codestore::server

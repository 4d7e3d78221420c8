// Two channels from one database, chosen by client root (issue 14): Debian's yaws runs on one
// node and Debian's ejabberd on another, both booted from one `codestore serve` over one store,
// each with its own jose, eldap and base64url.
//
// The operator's path for applications that come without a release (docs/operator-guide.md,
// "Applications without a release"): a .rel naming them and systools' boot script
// (debian_release.escript beside this file, run by debian_release.h), imported as a release and deployed to a
// channel, then `materialize` for each node's root. Channel yaws runs yaws with Debian's jose 1.11.5, OTP's
// eldap 1.2.10 and Debian's base64url 1.0.1; channel ej runs ejabberd with jose 1.11.5-cs1 and
// base64url 1.0.1-cs1 (copies whose main module was compiled again, so its MD5 differs) and ejabberd's own
// eldap module. Checked on the nodes: yaws answers HTTP and loads its setuid driver from its materialized
// root; ejabberd answers an XMPP stream header with its NIFs mapped from its materialized root (and from
// nowhere else); each node's jose, eldap and base64url modules have the MD5 the store holds for its channel's
// application versions, and the two differ. ejabberd's priv/img, a link out of its directory, is materialized
// as the files behind it. Skipped when erl, yaws or ejabberd is not installed.
//
// UDP port 4368 is fixed in the client: RESOURCE_LOCK boot_server_port.
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "debian_release.h"
#include "erl_node.h"
#include "subprocess.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::server {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_file;
using codestore::testing::read_text;
using codestore::testing::TempDir;
using codestore::testing::write_file;
using testing::dump_logs;
using testing::find_program;
using testing::installed_app_dir;
using testing::md5_line;
using testing::run_cli;
using testing::ServeProcess;
using testing::start_release_node;
using testing::Subprocess;
using namespace std::chrono_literals;

// The version in `dir`'s name (<app>-<vsn>).
std::string dir_vsn(const std::string& dir, const std::string& prefix) {
  return fs::path(dir).filename().string().substr(prefix.size());
}

// The files process `pid` has mapped whose path has "/priv/" in it (NIFs and drivers).
std::set<std::string> mapped_priv_files(const std::string& pid) {
  std::set<std::string> out;
  std::istringstream maps(read_text("/proc/" + pid + "/maps"));
  for (std::string line; std::getline(maps, line);) {
    std::size_t slash = line.find('/');
    if (slash != std::string::npos && line.find("/priv/", slash) != std::string::npos)
      out.insert(line.substr(slash));
  }
  return out;
}

class ErlTwoChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("erl").empty() || find_program("escript").empty())
      GTEST_SKIP() << "erl is not installed (apt-get install erlang-nox)";
    yaws_ = installed_app_dir("/usr/lib", "yaws-", "yaws");
    ejabberd_ = testing::installed_ejabberd();
    jose_ = installed_app_dir(kOtpLib, "jose-", "jose");
    eldap_ = installed_app_dir(kOtpLib, "eldap-", "eldap");
    base64url_ = installed_app_dir(kOtpLib, "base64url-", "base64url");
    if (yaws_.empty() || ejabberd_.empty() || jose_.empty() || eldap_.empty() || base64url_.empty())
      GTEST_SKIP() << "yaws or ejabberd is not installed (apt-get install yaws ejabberd)";
  }
  void TearDown() override {
    if (HasFailure()) dump_logs(dir_.path(), 6000);
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string log(const std::string& name) const { return path(name + ".log"); }

  std::string make_release(const std::string& out, const std::string& name,
                           const std::vector<std::string>& specs) {
    return testing::make_debian_release(out, name, "1.0", specs, log("release-" + name));
  }

  static constexpr const char* kOtpLib = "/usr/lib/erlang/lib";
  TempDir dir_;
  std::string yaws_, ejabberd_, jose_, eldap_, base64url_;
};

// What a node prints about module M: "which=PATH" and "md5=HEX".
std::string report(const std::string& module) {
  return "io:format(\"which=~s~n\", [code:which(" + module + ")]), " + md5_line(module);
}

TEST_F(ErlTwoChannelsTest, YawsAndEjabberdFollowTheirChannelsEachWithItsOwnDependencies) {
  const std::string jose_vsn = dir_vsn(jose_, "jose-"), eldap_vsn = dir_vsn(eldap_, "eldap-"),
                    b64_vsn = dir_vsn(base64url_, "base64url-");
  const std::string ej_vsn = dir_vsn(ejabberd_, "ejabberd-"), yaws_vsn = dir_vsn(yaws_, "yaws-");
  const std::string yaws_lib = "/lib/yaws-" + yaws_vsn;
  // The two releases: yaws and its companions loaded, not started (yaws starts embedded;
  // it compiles a module at start, so compiler comes along); ejabberd started at boot.
  ASSERT_EQ(make_release(
                path("rel-yaws"), "yawsnode",
                {"load:" + yaws_, "load:compiler", "load:" + jose_, "load:" + eldap_, "load:" + base64url_}),
            "");
  ASSERT_EQ(make_release(
                path("rel-ej"), "ejnode",
                {ejabberd_, jose_ + "@" + jose_vsn + "-cs1", "load:" + base64url_ + "@" + b64_vsn + "-cs1"}),
            "");

  const std::string db = path("store.db"), root_y = path("root-yaws"), root_e = path("root-ej");
  ASSERT_EQ(run_cli(db, {"init"}, log("init")), 0);
  ASSERT_EQ(run_cli(db, {"--channel", "yaws", "import", path("rel-yaws")}, log("import-yaws")), 0);
  ASSERT_EQ(run_cli(db, {"--channel", "ej", "import", path("rel-ej")}, log("import-ej")), 0);
  ASSERT_EQ(run_cli(db, {"--channel", "yaws", "materialize", root_y}, log("materialize-yaws")), 0);
  ASSERT_EQ(run_cli(db, {"--channel", "ej", "materialize", root_e}, log("materialize-ej")), 0);

  // ejabberd's priv/img links to ../../../../share/ejabberd/img, out of its directory: the
  // import read the files behind it, and the node's root holds them as files.
  const fs::path img_link = fs::path(ejabberd_) / "priv/img";
  ASSERT_TRUE(fs::is_symlink(img_link));
  std::size_t images = 0;
  for (const auto& e : fs::directory_iterator(fs::canonical(img_link))) {
    const fs::path there = fs::path(root_e) / ("lib/ejabberd-" + ej_vsn) / "priv/img" / e.path().filename();
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(there))) << there;
    EXPECT_TRUE(read_file(there.string()) == read_file(e.path().string())) << there;
    ++images;
  }
  EXPECT_GT(images, 0u);
  // The NIFs and drivers are on the nodes' disks; no module image is.
  EXPECT_TRUE(read_file(root_y + yaws_lib + "/priv/lib/setuid_drv.so") ==
              read_file(yaws_ + "/priv/lib/setuid_drv.so"));
  for (const std::string& root : {root_y, root_e}) {
    for (const auto& f : fs::recursive_directory_iterator(root))
      EXPECT_NE(f.path().extension(), ".beam") << f.path();
  }

  ServeProcess serve(db,
                     {"--port", "0", "--client-root", root_y, "--client-root", root_e, "--channel",
                      "yaws=" + root_y, "--channel", "ej=" + root_e, "--quiet"},
                     log("serve"));
  ASSERT_NE(serve.wait_ready(), 0) << serve.log();

  const std::uint16_t http = testing::free_loopback_port(), xmpp = testing::free_loopback_port();
  ASSERT_NE(http, 0);
  ASSERT_NE(xmpp, 0);
  fs::create_directories(path("www"));
  fs::create_directories(path("home"));
  fs::create_directories(path("yaws-logs"));
  fs::create_directories(path("ej"));
  write_file(path("www/index.html"), "served by yaws from the store\n");
  // Each node's report: its pid, then jose's, eldap's and base64url's path and MD5, then
  // whether jose is a copy; it halts on a line on stdin.
  const std::string deps = report("jose") + report("eldap") + report("base64url") +
                           "io:format(\"copy=~p~n\", [erlang:function_exported(jose, codestore_copy, 0)]), "
                           "io:format(\"pid=~s~n\", [os:getpid()]), io:get_line(\"\"), halt().";
  const std::vector<std::string> env = {"HOME=" + path("home"), "ERL_EPMD_ADDRESS=127.0.0.1"};
  auto ynode = start_release_node(
      root_y, "yaws",
      "io:format(\"started=~p~n\", [yaws:start_embedded(\"" + path("www") + "\", [{port, " +
          std::to_string(http) + "}, {listen, {127,0,0,1}}, {servername, \"localhost\"}], [{logdir, \"" +
          path("yaws-logs") +
          "\"}], \"cs\")]), io:format(\"driver=~p ~s~n\", [erl_ddll:load(code:priv_dir(yaws) ++ \"/lib\", "
          "setuid_drv), code:priv_dir(yaws)]), " +
          deps,
      log("node-yaws"), {}, {"127.0.0.1"}, env, dir_.path().string());
  auto enode = start_release_node(
      root_e, "ej",
      "io:format(\"started=~p~n\", [lists:keymember(ejabberd, 1, application:which_applications())]), "
      "io:format(\"nif=~s~n\", [code:priv_dir(fast_xml)]), " +
          deps,
      log("node-ej"), testing::ejabberd_node_args(path("ej"), xmpp), {"127.0.0.1"}, env,
      dir_.path().string());

  struct Seen {
    std::map<std::string, std::string> which, md5;
    std::string copy, pid;
  };
  auto read_deps = [](Subprocess& node, Seen& s) {
    for (const std::string m : {"jose", "eldap", "base64url"}) {
      s.which[m] = node.read_until("which=", 60s).value_or("which=<none>").substr(6);
      s.md5[m] = node.read_until("md5=", 20s).value_or("md5=<none>").substr(4);
    }
    s.copy = node.read_until("copy=", 20s).value_or("copy=<none>").substr(5);
    s.pid = node.read_until("pid=", 20s).value_or("pid=<none>").substr(4);
  };
  Seen y, e;
  EXPECT_EQ(ynode->read_until("started=", 90s).value_or("yaws did not boot"), "started=ok");
  std::string driver = ynode->read_until("driver=", 20s).value_or("driver=<none>");
  EXPECT_EQ(driver, "driver=ok " + root_y + yaws_lib + "/priv");
  read_deps(*ynode, y);
  EXPECT_EQ(enode->read_until("started=", 120s).value_or("ejabberd did not boot"), "started=true");
  std::string nif = enode->read_until("nif=", 20s).value_or("nif=<none>");
  EXPECT_EQ(nif.rfind("nif=" + root_e + "/lib/fast_xml-", 0), 0u) << nif;
  read_deps(*enode, e);

  // yaws answers HTTP, ejabberd an XMPP stream header.
  std::string page =
      testing::tcp_exchange(http, "GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n", "from the store");
  EXPECT_EQ(page.rfind("HTTP/1.1 200 OK", 0), 0u) << page;
  EXPECT_NE(page.find("served by yaws from the store"), std::string::npos) << page;
  std::string stream = testing::tcp_exchange(xmpp, testing::kXmppStreamHeader, testing::kXmppAnswered);
  EXPECT_NE(stream.find("<stream:stream "), std::string::npos) << stream;
  EXPECT_NE(stream.find(testing::kXmppAnswered), std::string::npos) << stream;

  // Drivers and NIFs were loaded from each node's own materialized root, and from nowhere else.
  auto ymapped = mapped_priv_files(y.pid), emapped = mapped_priv_files(e.pid);
  EXPECT_EQ(ymapped.count(root_y + yaws_lib + "/priv/lib/setuid_drv.so"), 1u);
  for (const std::string so : {"fast_xml-*/priv/lib/fxml.so", "fast_yaml-*/priv/lib/fast_yaml.so",
                               "stringprep-*/priv/lib/stringprep.so"}) {
    const std::string dir = so.substr(0, so.find('*')), file = so.substr(so.find('*') + 1);
    EXPECT_TRUE(std::any_of(emapped.begin(), emapped.end(), [&](const std::string& m) {
      return m.rfind(root_e + "/lib/" + dir, 0) == 0 && m.size() > file.size() &&
             m.compare(m.size() - file.size(), file.size(), file) == 0;
    })) << so;
  }
  for (const auto& [mapped, root] : {std::pair{&ymapped, root_y}, std::pair{&emapped, root_e}}) {
    for (const std::string& m : *mapped) EXPECT_EQ(m.rfind(root + "/lib/", 0), 0u) << m;
  }

  // Each node runs its channel's jose, eldap and base64url: the paths name the versions, the
  // MD5s are the store's for them, and the two nodes' differ.
  auto store = Store::open(db);
  ASSERT_TRUE(store) << store.error().to_string();
  auto stored_md5 = [&](const std::string& app, const std::string& vsn, const std::string& module) {
    auto info = (*store)->app_show(app, vsn);
    if (!info) return "<" + info.error().to_string() + ">";
    for (const ContentModule& m : info->modules) {
      if (m.module == module) return m.md5;
    }
    return std::string("<no module>");
  };
  struct Want {
    std::string module, y_app, y_vsn, e_app, e_vsn;
  };
  for (const Want& w : {Want{"jose", "jose", jose_vsn, "jose", jose_vsn + "-cs1"},
                        Want{"eldap", "eldap", eldap_vsn, "ejabberd", ej_vsn},
                        Want{"base64url", "base64url", b64_vsn, "base64url", b64_vsn + "-cs1"}}) {
    SCOPED_TRACE(w.module);
    EXPECT_EQ(y.which[w.module], root_y + "/lib/" + w.y_app + "-" + w.y_vsn + "/ebin/" + w.module + ".beam");
    EXPECT_EQ(e.which[w.module], root_e + "/lib/" + w.e_app + "-" + w.e_vsn + "/ebin/" + w.module + ".beam");
    EXPECT_EQ(y.md5[w.module], stored_md5(w.y_app, w.y_vsn, w.module));
    EXPECT_EQ(e.md5[w.module], stored_md5(w.e_app, w.e_vsn, w.module));
    EXPECT_NE(y.md5[w.module], e.md5[w.module]);
  }
  store->reset();
  EXPECT_EQ(y.copy, "false");
  EXPECT_EQ(e.copy, "true");

  for (Subprocess* node : {ynode.get(), enode.get()}) {
    ASSERT_TRUE(node->write("halt\n"));
    if (!node->wait(20s)) {
      node->kill_group();  // a node whose server is gone ignores SIGTERM
      ADD_FAILURE() << "a node did not halt";
    }
  }
  EXPECT_EQ(serve.stop(), 0);
  std::string text = serve.log();
  EXPECT_NE(text.find("store yaws@" + yaws_vsn + " yaws "), std::string::npos);
  EXPECT_NE(text.find("[channel yaws]"), std::string::npos);
  EXPECT_NE(text.find("store ejabberd@" + ej_vsn + " ejabberd "), std::string::npos);
  EXPECT_NE(text.find("[channel ej]"), std::string::npos);
}

}  // namespace
}  // namespace codestore::server

// Store::materialize (issue 14): a node's local root made to hold what the node opens on local
// disk for a channel's current generation, and nothing else. On real files nobody here wrote:
// OTP's own applications (crypto's NIFs, os_mon's port programs, kernel, stdlib, sasl) and
// Debian's yaws (a driver, a setuid helper, data), jiffy and fast_tls (ejabberd's NIFs), read by
// the test-only
// walker with the names Erlang's file:consult/1 gives; releases/RELEASES read back by Erlang's
// file:consult/1. The rebar3 release end to end is tests/cli/materialize_cli_test.cpp's.
#include <codestore/release_types.h>
#include <codestore/store.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "release_test_util.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using release_testing::read_app_dir;
using release_testing::run;
using release_testing::sh_quote;
using release_testing::walk;
using testing::TempDir;

bool have_erl() {
  return std::system("command -v erl >/dev/null 2>&1") == 0;
}

// An installed application's directory (the one holding ebin/<app>.app): OTP's and Debian's
// under /usr/lib/erlang/lib (Debian's fast_tls is in p1_tls-<vsn>), yaws's in /usr/lib.
fs::path app_dir(const std::string& app) {
  for (const fs::path root : {"/usr/lib/erlang/lib", "/usr/lib"}) {
    if (!fs::is_directory(root)) continue;
    for (const auto& e : fs::directory_iterator(root)) {
      if (fs::exists(e.path() / "ebin" / (app + ".app"))) return e.path();
    }
  }
  return {};
}

// An installed application as an AppContent, read once per test program.
const AppContent& installed(const std::string& app) {
  static std::map<std::string, AppContent> cache;
  auto it = cache.find(app);
  if (it == cache.end()) it = cache.emplace(app, read_app_dir(app_dir(app))).first;
  return it->second;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

ContentFile file(const std::string& path, const std::string& text, std::uint32_t mode = 0644) {
  ContentFile f;
  f.path = path;
  f.bytes = bytes_of(text);
  f.mode = mode;
  return f;
}

std::string erts_vsn() {
  static const std::string v = [] {
    auto c = run("erl -noshell -eval 'io:format(\"~s\", [erlang:system_info(version)]), halt().'");
    return c.output;
  }();
  return v;
}

// A release NAME@VSN over installed applications, with the files a relx release has in
// releases/ (and some a node must never get: the .rel, a script, the cookie, bin/).
ReleaseContent release(const std::string& name, const std::string& vsn,
                       const std::vector<std::string>& apps) {
  ReleaseContent r;
  r.name = name;
  r.vsn = vsn;
  r.erts_vsn = erts_vsn();
  r.kind = "relx";
  r.origin = "test";
  std::string rel = fmt::format("{{release, {{\"{}\", \"{}\"}}, {{erts, \"{}\"}}, [", name, vsn, r.erts_vsn);
  for (std::size_t i = 0; i < apps.size(); ++i) {
    const AppContent& a = installed(apps[i]);
    r.rel_apps.push_back({a.app, a.vsn, "", ""});
    r.apps.push_back(a);
    rel += fmt::format("{}{{{}, \"{}\"}}", i == 0 ? "" : ", ", a.app, a.vsn);
  }
  rel += "]}.\n";
  const std::string v = "releases/" + vsn + "/";
  r.files.push_back(file(v + name + ".rel", rel));
  r.files.push_back(file(v + "start.boot", "boot script of " + name + "@" + vsn));
  r.files.push_back(file(v + "start_clean.boot", "clean boot script"));
  r.files.push_back(file(v + "start.script", "{script, ...}."));
  r.files.push_back(file(v + "sys.config", "[{" + apps.back() + ", [{vsn, \"" + vsn + "\"}]}].\n"));
  r.files.push_back(file(v + "vm.args", "-sname " + name + "\n"));
  r.files.push_back(file("releases/COOKIE", "secret-cookie-" + vsn, 0400));
  r.files.push_back(file("releases/start_erl.data", r.erts_vsn + " " + vsn + "\n"));
  r.files.push_back(file("bin/" + name, "#!/bin/sh\n", 0755));
  return r;
}

// What a directory holds: path -> its bytes (or "-> target" of a link, "<dir>" of an empty
// directory), with the mode of a file.
std::map<std::string, std::pair<std::string, std::uint32_t>> tree(const fs::path& dir) {
  std::map<std::string, std::pair<std::string, std::uint32_t>> out;
  for (const auto& f : walk(dir)) {
    if (f.directory) {
      out[f.path] = {"<dir>", 0};
    } else if (!f.link.empty()) {
      out[f.path] = {"-> " + f.link, 0};
    } else {
      out[f.path] = {std::string(f.bytes.begin(), f.bytes.end()), f.mode};
    }
  }
  return out;
}

// What materialize must write for release `r`: each application's priv files as installed
// (bytes and modes), an empty ebin/, the boot scripts, sys.config and vm.args as given, and the
// files it generates (RELEASES and start_erl.data, checked apart): nothing else.
std::map<std::string, std::pair<std::string, std::uint32_t>> expected(const ReleaseContent& r) {
  std::map<std::string, std::pair<std::string, std::uint32_t>> out;
  for (const auto& a : r.apps) {
    const std::string lib = fmt::format("lib/{}-{}/", a.app, a.vsn);
    out[lib + "ebin"] = {"<dir>", 0};
    const fs::path priv = app_dir(a.app) / "priv";
    if (!fs::is_directory(priv)) continue;
    for (auto& [path, v] : tree(priv)) out[lib + "priv/" + path] = v;
  }
  for (const auto& f : r.files) {
    const std::string name = fs::path(f.path).filename().string();
    if (f.path.starts_with("releases/" + r.vsn + "/") &&
        (name.ends_with(".boot") || name == "sys.config" || name == "vm.args")) {
      out[f.path] = {std::string(f.bytes.begin(), f.bytes.end()), f.mode};
    }
  }
  return out;
}

// The tree without the generated files and the manifest (checked by their own tests).
std::map<std::string, std::pair<std::string, std::uint32_t>> tree_without_generated(const fs::path& dir) {
  auto t = tree(dir);
  t.erase("releases/RELEASES");
  t.erase("releases/start_erl.data");
  t.erase(".codestore-materialized");
  return t;
}

std::vector<std::string> keys(const std::map<std::string, std::pair<std::string, std::uint32_t>>& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

// RELEASES as Erlang reads it: one line per release, "Name Vsn Erts Status" then one line per
// library "App Vsn Dir".
std::string consult_releases(const fs::path& file) {
  const auto c =
      run("erl -noshell -eval " +
          sh_quote(fmt::format("{{ok, [Rs]}} = file:consult(\"{}\"), "
                               "[begin io:format(\"~s ~s ~s ~p~n\", [N, V, E, S]), "
                               "[io:format(\"~p ~s ~s~n\", [A, AV, D]) || {{A, AV, D}} <- Libs] end "
                               "|| {{release, N, V, E, Libs, S}} <- Rs], halt().",
                               file.string())));
  EXPECT_EQ(c.code, 0) << c.output;
  return c.output;
}

std::string releases_as_erlang_reads_it(const ReleaseContent& r) {
  std::string out = fmt::format("{} {} {} permanent\n", r.name, r.vsn, r.erts_vsn);
  for (const auto& a : r.apps) out += fmt::format("{} {} lib/{}-{}\n", a.app, a.vsn, a.app, a.vsn);
  return out;
}

class Materialize : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_erl()) GTEST_SKIP() << "erl is not installed";
    for (const char* app : {"yaws", "jiffy", "fast_tls"}) {
      if (app_dir(app).empty()) GTEST_SKIP() << "Debian's " << app << " is not installed";
    }
  }
  std::unique_ptr<Store> open(const std::string& channel = "prod") {
    auto s = Store::open(db_.string(), {.channel = channel});
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }
  void import_and_deploy(const ReleaseContent& r, const std::string& channel = "prod") {
    auto s = open(channel);
    auto i = s->import_release(r);
    ASSERT_TRUE(i.has_value()) << i.error().to_string();
    auto d = s->deploy({r.name, r.vsn});
    ASSERT_TRUE(d.has_value()) << d.error().to_string();
  }
  MaterializeReport materialize(const fs::path& dir, MaterializeOptions options = {},
                                const std::string& channel = "prod") {
    auto m = open(channel)->materialize(dir.string(), options);
    EXPECT_TRUE(m.has_value()) << m.error().to_string();
    return m ? *m : MaterializeReport{};
  }
  Status materialize_error(const fs::path& dir, MaterializeOptions options = {},
                           const std::string& channel = "prod") {
    auto m = open(channel)->materialize(dir.string(), options);
    EXPECT_FALSE(m.has_value());
    return m ? Status() : m.error();
  }

  TempDir tmp_;
  fs::path db_ = tmp_ / "s.db";
  ReleaseContent web1_ = release("web", "1", {"kernel", "stdlib", "sasl", "crypto", "yaws"});
  ReleaseContent web2_ = release("web", "2", {"kernel", "stdlib", "sasl", "os_mon", "jiffy", "fast_tls"});
};

TEST_F(Materialize, WritesWhatANodeReadsLocallyAndNothingElse) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  const auto m = materialize(root);
  EXPECT_EQ(m.release, (ReleaseId{"web", "1"}));
  EXPECT_EQ(m.erts_vsn, erts_vsn());
  EXPECT_EQ(m.generation, 1);
  EXPECT_TRUE(m.warnings.empty()) << m.warnings.front();
  const auto want = expected(web1_);
  const auto got = tree_without_generated(root);
  EXPECT_EQ(keys(got), keys(want));
  for (const auto& [path, v] : want) {
    auto it = got.find(path);
    if (it == got.end()) continue;
    EXPECT_TRUE(it->second.first == v.first) << path << " differs from the installed file";
    EXPECT_EQ(it->second.second, v.second) << path << ": mode";
  }
  // Real priv files from real packages: crypto's NIF, yaws's driver and its setuid helper (0755).
  EXPECT_TRUE(got.count(fmt::format("lib/crypto-{}/priv/lib/crypto.so", installed("crypto").vsn)));
  const std::string yaws = fmt::format("lib/yaws-{}/priv/", installed("yaws").vsn);
  EXPECT_TRUE(got.count(yaws + "lib/setuid_drv.so"));
  ASSERT_TRUE(got.count(yaws + "epam"));
  EXPECT_EQ(got.at(yaws + "epam").second, 0755u);
  for (const auto& path : keys(tree(root))) {
    EXPECT_FALSE(path.ends_with(".beam")) << path;
    EXPECT_NE(path, "releases/COOKIE");
    EXPECT_FALSE(path.starts_with("bin/")) << path;
    EXPECT_FALSE(path.ends_with(".rel") || path.ends_with(".script")) << path;
  }
  EXPECT_EQ(m.files + m.directories, got.size() + 2);  // with RELEASES and start_erl.data
  EXPECT_EQ(m.written.size(), got.size() + 2);
  // RELEASES as release_handler reads it (file:consult), start_erl.data as make_permanent writes it.
  EXPECT_EQ(consult_releases(root / "releases/RELEASES"), releases_as_erlang_reads_it(web1_));
  EXPECT_EQ(testing::read_text(root / "releases/start_erl.data"), erts_vsn() + " 1");

  // Again: nothing to do.
  const auto again = materialize(root);
  EXPECT_TRUE(again.written.empty());
  EXPECT_TRUE(again.removed.empty());
  EXPECT_EQ(again.unchanged, m.written.size());
  EXPECT_EQ(again.previous_generation, 1);
  EXPECT_EQ(again.previous_channel, "prod");
}

TEST_F(Materialize, ADeployBringsTheDirectoryToTheNewGenerationAndKeepsTheOperatorsFiles) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  materialize(root);
  const std::string crypto = fmt::format("lib/crypto-{}", installed("crypto").vsn);
  testing::write_file(root / "operator.txt", "mine");
  testing::write_file(root / crypto / "priv/operator.conf", "mine too");

  import_and_deploy(web2_);
  const auto m = materialize(root);
  EXPECT_EQ(m.release, (ReleaseId{"web", "2"}));
  EXPECT_EQ(m.previous_generation, 1);
  EXPECT_EQ(m.generation, 2);
  auto got = tree_without_generated(root);
  // The operator's files stay (and so does the directory they are in); nothing else of web@1.
  EXPECT_EQ(got["operator.txt"].first, "mine");
  EXPECT_EQ(got[crypto + "/priv/operator.conf"].first, "mine too");
  got.erase("operator.txt");
  got.erase(crypto + "/priv/operator.conf");
  EXPECT_EQ(keys(got), keys(expected(web2_)));
  EXPECT_FALSE(fs::exists(root / fmt::format("lib/yaws-{}", installed("yaws").vsn)));
  EXPECT_FALSE(fs::exists(root / "releases/1"));
  EXPECT_FALSE(fs::exists(root / crypto / "ebin"));
  EXPECT_TRUE(std::find(m.removed.begin(), m.removed.end(), "releases/1/start.boot") != m.removed.end());
  // ejabberd's NIFs as Debian ships them and os_mon's port programs, byte for byte.
  EXPECT_TRUE(got.count(fmt::format("lib/jiffy-{}/priv/jiffy.so", installed("jiffy").vsn)));
  EXPECT_TRUE(got.count(fmt::format("lib/fast_tls-{}/priv/lib/fast_tls.so", installed("fast_tls").vsn)));
  EXPECT_EQ(got[fmt::format("lib/os_mon-{}/priv/bin/memsup", installed("os_mon").vsn)].second, 0755u);
  EXPECT_EQ(consult_releases(root / "releases/RELEASES"), releases_as_erlang_reads_it(web2_));

  // A channel rollback brings web@1's content back without a deploy naming it: the release is
  // found by its applications.
  ASSERT_TRUE(open()->channel_rollback().has_value());
  const auto back = materialize(root);
  EXPECT_EQ(back.release, (ReleaseId{"web", "1"}));
  EXPECT_EQ(back.generation, 3);
  got = tree_without_generated(root);
  got.erase("operator.txt");
  got.erase(crypto + "/priv/operator.conf");
  EXPECT_EQ(keys(got), keys(expected(web1_)));
  EXPECT_EQ(consult_releases(root / "releases/RELEASES"), releases_as_erlang_reads_it(web1_));
}

TEST_F(Materialize, ANonEmptyDirectoryWithoutAManifestIsRefusedUnlessForced) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  testing::write_file(root / "etc/node.conf", "operator's");
  testing::write_file(root / "releases/1/vm.args", "-sname mine\n");
  const Status st = materialize_error(root);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find(root.string()), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--force"), std::string::npos) << st.message();
  EXPECT_EQ(keys(tree(root)), (std::vector<std::string>{"etc/node.conf", "releases/1/vm.args"}));

  const auto m = materialize(root, {.force = true});
  EXPECT_EQ(testing::read_text(root / "etc/node.conf"), "operator's");
  EXPECT_EQ(testing::read_text(root / "releases/1/vm.args"), "-sname web\n");  // forced: the release's
  EXPECT_TRUE(std::find(m.written.begin(), m.written.end(), "releases/1/vm.args") != m.written.end());
}

TEST_F(Materialize, AnUnknownChannelIsAnErrorAndWritesNothing) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  const Status st = materialize_error(root, {}, "nosuch");
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("unknown channel nosuch"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(root));
  fs::create_directory(root);
  EXPECT_EQ(materialize_error(root, {}, "nosuch").code(), Code::kNotFound);
  EXPECT_TRUE(fs::is_empty(root));
}

TEST_F(Materialize, AFileChangedSinceItWasWrittenIsRefusedUnlessForced) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  materialize(root);
  // As release_handler:unpack_release/1 rewrites it on the node.
  const std::string handler = "%% coding: utf-8\n[{release,\"web\",\"1\",\"x\",[],permanent}].\n";
  testing::write_file(root / "releases/RELEASES", handler);
  import_and_deploy(web2_);
  const auto before = tree(root);
  const Status st = materialize_error(root);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("releases/RELEASES: changed since materialize wrote it"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("release_handler"), std::string::npos) << st.message();
  EXPECT_EQ(tree(root), before);  // nothing written
  // A dry run says the same; --force takes the generation's.
  EXPECT_EQ(materialize_error(root, {.dry_run = true}).code(), Code::kFailedPrecondition);
  materialize(root, {.force = true});
  EXPECT_EQ(consult_releases(root / "releases/RELEASES"), releases_as_erlang_reads_it(web2_));
}

TEST_F(Materialize, ADirectoryOfAnotherChannelIsRefusedUnlessForced) {
  import_and_deploy(web1_);
  import_and_deploy(web2_, "staging");
  const fs::path root = tmp_ / "root";
  materialize(root);
  const Status st = materialize_error(root, {}, "staging");
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("holds channel prod's generation 1"), std::string::npos) << st.message();
  const auto m = materialize(root, {.force = true}, "staging");
  EXPECT_EQ(m.previous_channel, "prod");
  EXPECT_EQ(keys(tree_without_generated(root)), keys(expected(web2_)));
}

TEST_F(Materialize, ADryRunWritesNothing) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  const auto m = materialize(root, {.dry_run = true});
  EXPECT_TRUE(m.dry_run);
  EXPECT_EQ(m.written.size(), expected(web1_).size() + 2);
  EXPECT_FALSE(fs::exists(root));
}

// A run that fails half-way (a damaged blob) leaves its pending manifest; the next run, after
// the channel moved on, removes what the failed run wrote and leaves exactly the generation.
TEST_F(Materialize, AnInterruptedRunIsRedoneCleanlyEvenAfterTheChannelMoved) {
  import_and_deploy(web1_);
  const fs::path root = tmp_ / "root";
  materialize(root);
  import_and_deploy(web2_);
  // Damage the blob of os_mon's memsup: the run writes lib/fast_tls-*/, lib/jiffy-*/ and
  // cpu_sup first (in path order).
  const auto memsup = testing::read_file(app_dir("os_mon") / "priv/bin/memsup");
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &h), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(h,
                           "UPDATE blobs SET data = zeroblob(length(data)) WHERE raw_size = ? AND id IN "
                           "(SELECT blob_id FROM app_files WHERE path = 'priv/bin/memsup')",
                           -1, &s, nullptr),
        SQLITE_OK);
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(memsup.size()));
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    EXPECT_EQ(sqlite3_changes(h), 1);
    sqlite3_finalize(s);
    sqlite3_close(h);
  }
  const Status st = materialize_error(root);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
  EXPECT_NE(st.message().find("priv/bin/memsup"), std::string::npos) << st.message();
  EXPECT_TRUE(fs::exists(root / ".codestore-materialized.pending"));
  const std::string jiffy = fmt::format("lib/jiffy-{}", installed("jiffy").vsn);
  EXPECT_TRUE(fs::exists(root / jiffy / "priv/jiffy.so"));  // written before the failure

  // The channel goes back to web@1; the next run takes back what the failed one wrote.
  ASSERT_TRUE(open()->channel_rollback().has_value());
  const auto m = materialize(root);
  EXPECT_EQ(m.release, (ReleaseId{"web", "1"}));
  EXPECT_EQ(keys(tree_without_generated(root)), keys(expected(web1_)));
  EXPECT_FALSE(fs::exists(root / jiffy));
  EXPECT_FALSE(fs::exists(root / ".codestore-materialized.pending"));
  EXPECT_EQ(consult_releases(root / "releases/RELEASES"), releases_as_erlang_reads_it(web1_));
}

// An application's links and empty directories in priv/ are links and directories on disk, and a
// later generation that has a file where a link was replaces it.
TEST_F(Materialize, LinksAndEmptyDirectoriesInPrivAreKeptAndReplaced) {
  AppContent jiffy = installed("jiffy");
  ContentFile link;
  link.path = "priv/current.so";
  link.link = "jiffy.so";
  ContentFile cache;
  cache.path = "priv/cache";
  cache.directory = true;
  cache.mode = 0750;
  jiffy.files.push_back(link);
  jiffy.files.push_back(cache);
  ReleaseContent r3 = release("web", "3", {"kernel", "stdlib", "sasl"});
  r3.rel_apps.push_back({jiffy.app, jiffy.vsn, "", ""});
  r3.apps.push_back(jiffy);
  import_and_deploy(r3);
  const fs::path root = tmp_ / "root";
  const auto m = materialize(root);
  EXPECT_EQ(m.links, 1u);
  const fs::path priv = root / fmt::format("lib/jiffy-{}/priv", jiffy.vsn);
  ASSERT_TRUE(fs::is_symlink(priv / "current.so"));
  EXPECT_EQ(fs::read_symlink(priv / "current.so"), "jiffy.so");
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(priv / "cache")));
  EXPECT_TRUE(fs::is_empty(priv / "cache"));

  // web@4: the link is a file now, the empty directory is gone.
  AppContent jiffy2 = installed("jiffy");
  jiffy2.files.push_back(file("priv/current.so", "a file now"));
  ReleaseContent r4 = release("web", "4", {"kernel", "stdlib", "sasl"});
  r4.rel_apps.push_back({jiffy2.app, jiffy2.vsn, "", ""});
  r4.apps.push_back(jiffy2);
  import_and_deploy(r4);
  materialize(root);
  EXPECT_FALSE(fs::is_symlink(priv / "current.so"));
  EXPECT_EQ(testing::read_text(priv / "current.so"), "a file now");
  EXPECT_FALSE(fs::exists(priv / "cache"));
  EXPECT_EQ(testing::read_file(priv / "jiffy.so"), testing::read_file(app_dir("jiffy") / "priv/jiffy.so"));
}

// A generation that is no release's: its applications' priv files only, and it says so.
TEST_F(Materialize, WithoutAReleaseOnlyPrivFilesAreWrittenAndItSaysSo) {
  import_and_deploy(web1_);
  // web@1 replaced with other applications: prod still pins the old ones, which no release has.
  ReleaseContent other = release("web", "1", {"kernel", "stdlib", "sasl", "os_mon"});
  {
    auto i = open()->import_release(other, {.replace = true});
    ASSERT_TRUE(i.has_value()) << i.error().to_string();
  }
  const fs::path root = tmp_ / "root";
  const auto m = materialize(root);
  EXPECT_TRUE(m.release.name.empty());
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_NE(m.warnings[0].find("no Erlang release"), std::string::npos) << m.warnings[0];
  std::map<std::string, std::pair<std::string, std::uint32_t>> want;
  for (const auto& [path, v] : expected(web1_)) {
    if (path.find("/priv/") != std::string::npos) want[path] = v;
  }
  EXPECT_EQ(keys(tree_without_generated(root)), keys(want));
  EXPECT_FALSE(fs::exists(root / "releases"));

  // Modules imported loose: no application, nothing but the manifest.
  auto loose = open("loose");
  auto r = loose->import_tree({(app_dir("stdlib") / "ebin/lists.beam").string()});
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  const fs::path root2 = tmp_ / "root2";
  const auto l = materialize(root2, {}, "loose");
  ASSERT_EQ(l.warnings.size(), 1u);
  EXPECT_NE(l.warnings[0].find("no application"), std::string::npos) << l.warnings[0];
  EXPECT_EQ(keys(tree(root2)), (std::vector<std::string>{".codestore-materialized"}));
}

}  // namespace
}  // namespace codestore

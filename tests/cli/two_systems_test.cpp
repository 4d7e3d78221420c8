// Two systems in one store (issue 13's "Done when"): Debian's ejabberd with the applications
// it uses, imported into channel `ejabberd`, and Debian's RabbitMQ's plugins into channel
// `rabbitmq`, as an operator would (`codestore --channel C import DIR...`). Real software
// nobody here wrote; Erlang (two_systems_truth.escript: the .app files, the beams' imports,
// beam_lib:md5/1) says which applications ejabberd uses and what each file's code is.
//
// Skipped, naming the package, when ejabberd or rabbitmq-server is not installed (scripts/dev.sh
// installs both for CI).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "store/store_test_util.h"
#include "support/real_releases.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using store_testing::CliResult;
using store_testing::run_cli;
using store_testing::TempDir;

const std::string kTruth = std::string(CODESTORE_SOURCE_DIR) + "/tests/cli/two_systems_truth.escript";

// What Erlang says of a system's applications.
struct System {
  struct App {
    std::string name, vsn;
    fs::path dir;
    std::map<std::string, std::string> md5;  // module -> beam_lib:md5/1
  };
  std::vector<App> apps;
  const App* find(const std::string& name) const {
    for (const auto& a : apps) {
      if (a.name == name) return &a;
    }
    return nullptr;
  }
  // module -> MD5 over every application (the test asserts no module is carried twice).
  std::map<std::string, std::string> modules() const {
    std::map<std::string, std::string> out;
    for (const auto& a : apps) out.insert(a.md5.begin(), a.md5.end());
    return out;
  }
  std::vector<std::string> dirs() const {
    std::vector<std::string> out;
    for (const auto& a : apps) out.push_back(a.dir.string());
    return out;
  }
};

System ask_erlang(const std::vector<std::string>& args, const fs::path& home) {
  std::string command = "escript " + testing::sh_quote(kTruth);
  for (const auto& a : args) command += " " + testing::sh_quote(a);
  std::istringstream in(testing::run_checked(command, home, home));
  System s;
  std::string kind;
  while (in >> kind) {
    if (kind == "app") {
      System::App a;
      std::string dir;
      in >> a.name >> a.vsn;
      std::getline(in >> std::ws, dir);
      a.dir = dir;
      s.apps.push_back(std::move(a));
    } else if (kind == "module") {
      std::string app, module, md5;
      in >> app >> module >> md5;
      if (s.apps.empty() || s.apps.back().name != app)
        throw std::runtime_error("truth: " + app + " out of order");
      s.apps.back().md5[module] = md5;
    } else {
      std::string rest;
      std::getline(in, rest);
      throw std::runtime_error("truth: unexpected line: " + kind + rest);
    }
  }
  return s;
}

// Debian's ejabberd application directory: `ejabberd-*` with ebin/ejabberd.app, under OTP's
// lib/ or /usr/lib/<multiarch>/ (where Debian puts it). Debian's `ejabberd-23.01` link to
// `ejabberd-23.01-1` is preferred: the store must name the application by its .app, not by
// the directory it was given.
fs::path find_ejabberd(const fs::path& otp_lib) {
  std::vector<fs::path> roots{otp_lib};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib", ec)) {
    if (e.is_directory(ec)) roots.push_back(e.path());
  }
  fs::path found;
  for (const auto& root : roots) {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string name = e.path().filename().string();
      if (!name.starts_with("ejabberd-") || !fs::exists(e.path() / "ebin" / "ejabberd.app", ec)) continue;
      if (found.empty() || (e.is_symlink(ec) && !fs::is_symlink(found, ec))) found = e.path();
    }
  }
  return found;
}

fs::path find_rabbitmq_plugins() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/rabbitmq/lib", ec)) {
    if (e.path().filename().string().starts_with("rabbitmq_server-") &&
        fs::is_directory(e.path() / "plugins"))
      return e.path() / "plugins";
  }
  return {};
}

class TwoSystems : public ::testing::Test {
 protected:
  CliResult cs(const std::vector<std::string>& args) { return run_cli(db_, args); }
  Json json(const std::vector<std::string>& args) {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    const CliResult r = cs(a);
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not one JSON document: " << r.out << r.err;
    return j;
  }
  // module -> MD5 of every module active in `channel`.
  std::map<std::string, std::string> channel_md5s(const std::string& channel) {
    std::map<std::string, std::string> out;
    const Json j = json({"--channel", channel, "ls"});
    for (const auto& m : j["modules"]) {
      if (!m["active"].is_null()) out[m["module"].get<std::string>()] = m["md5"].get<std::string>();
    }
    return out;
  }
  std::int64_t generation(const std::string& channel) {
    return json({"channel", "show", channel})["generation"].get<std::int64_t>();
  }
  void SetUp() override { ASSERT_EQ(cs({"init"}).code, 0); }

  TempDir dir_;
  std::string db_ = dir_ / "s.db";
};

// Every module a channel runs is its own system's code, by MD5, with nothing missing and
// nothing else: `expected` module -> MD5.
void expect_runs(const std::string& channel, const std::map<std::string, std::string>& actual,
                 const std::map<std::string, std::string>& expected) {
  EXPECT_EQ(actual.size(), expected.size()) << "modules active in channel " << channel;
  std::size_t wrong = 0;
  for (const auto& [module, md5] : expected) {
    const auto it = actual.find(module);
    if (it == actual.end()) {
      ADD_FAILURE() << channel << ": " << module << " is not active";
    } else if (it->second != md5) {
      ADD_FAILURE() << channel << ": " << module << " has MD5 " << it->second << ", its file " << md5;
    }
    if ((it == actual.end() || it->second != md5) && ++wrong > 20) return;
  }
  for (const auto& [module, md5] : actual) {
    if (!expected.contains(module)) ADD_FAILURE() << channel << ": " << module << " is not its system's";
  }
}

TEST_F(TwoSystems, EjabberdAndRabbitmqEachRunTheirOwnCodeInTheirOwnChannel) {
  if (testing::run_command("command -v escript", dir_.path(), dir_.path()).code != 0)
    GTEST_SKIP() << "escript (Debian package erlang-base) is not installed";
  const fs::path otp_lib = testing::otp_versions().root / "lib";
  const fs::path ejabberd = find_ejabberd(otp_lib);
  if (ejabberd.empty()) GTEST_SKIP() << "ejabberd (Debian package ejabberd) is not installed";
  const fs::path plugins = find_rabbitmq_plugins();
  if (plugins.empty()) GTEST_SKIP() << "RabbitMQ (Debian package rabbitmq-server) is not installed";

  const System ej = ask_erlang({"closure", ejabberd.string(), otp_lib.string()}, dir_.path());
  std::vector<std::string> plugin_dirs;
  for (const auto& e : fs::directory_iterator(plugins)) {
    if (fs::exists(e.path() / "ebin")) plugin_dirs.push_back(e.path().string());
  }
  std::sort(plugin_dirs.begin(), plugin_dirs.end());
  std::vector<std::string> md5_args{"md5"};
  md5_args.insert(md5_args.end(), plugin_dirs.begin(), plugin_dirs.end());
  const System rmq = ask_erlang(md5_args, dir_.path());

  // What the two systems are, by Erlang: ejabberd with OTP's applications, both with their
  // own jose and base64url, base64url of the same vsn with other code.
  const System::App* ej_app = ej.find("ejabberd");
  ASSERT_NE(ej_app, nullptr);
  for (const auto* name : {"kernel", "stdlib", "jose", "base64url"})
    ASSERT_NE(ej.find(name), nullptr) << name;
  for (const auto* name : {"rabbit", "jose", "base64url"}) ASSERT_NE(rmq.find(name), nullptr) << name;
  const System::App& ej_b64 = *ej.find("base64url");
  const System::App& rmq_b64 = *rmq.find("base64url");
  ASSERT_EQ(ej_b64.vsn, rmq_b64.vsn) << "the fixture: one base64url vsn in both systems";
  ASSERT_NE(ej_b64.md5, rmq_b64.md5) << "the fixture: RabbitMQ's base64url is other code than Debian's";
  ASSERT_NE(ej.find("jose")->md5, rmq.find("jose")->md5);
  for (const System* s : {&ej, &rmq}) {
    std::size_t n = 0;
    for (const auto& a : s->apps) n += a.md5.size();
    ASSERT_EQ(s->modules().size(), n) << "a module carried by two applications of one system";
  }

  // ejabberd, through Debian's link (its name is not the application's vsn).
  std::vector<std::string> args{"--channel", "ejabberd", "import"};
  for (const auto& d : ej.dirs()) args.push_back(d == ej_app->dir.string() ? ejabberd.string() : d);
  const Json first = json(args);
  ASSERT_EQ(first["apps"].size(), ej.apps.size()) << first.dump().substr(0, 2000);
  for (const auto& a : first["apps"]) {
    const System::App* truth = ej.find(a["app"].get<std::string>());
    ASSERT_NE(truth, nullptr) << a.dump();
    EXPECT_EQ(a["vsn"], truth->vsn) << "named by its .app";
    EXPECT_EQ(a["revision"], 1) << a.dump();
    EXPECT_EQ(a["modules"], truth->md5.size()) << a.dump();
  }
  EXPECT_EQ(first["channel"], "ejabberd");
  EXPECT_EQ(json({"app", "show", "ejabberd@" + ej_app->vsn})["modules"], ej_app->md5.size());
  const std::int64_t ej_generation = generation("ejabberd");
  EXPECT_EQ(first["generation"], ej_generation);

  // RabbitMQ's plugins: a second base64url@1.0.1, other code: a new revision, loudly.
  args = {"--channel", "rabbitmq", "import"};
  args.insert(args.end(), plugin_dirs.begin(), plugin_dirs.end());
  const CliResult second = cs([&] {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }());
  ASSERT_EQ(second.code, 0) << second.err;
  const Json rj = Json::parse(second.out);
  ASSERT_EQ(rj["apps"].size(), rmq.apps.size());
  bool saw_b64 = false;
  for (const auto& a : rj["apps"]) {
    if (a["app"] != "base64url") {
      EXPECT_EQ(a["revision"], 1) << a.dump();
      continue;
    }
    saw_b64 = true;
    EXPECT_EQ(a["revision"], 2) << a.dump();
    EXPECT_FALSE(a["unchanged"].get<bool>());
    // What differs, by Erlang: each module whose MD5 is not Debian's.
    for (const auto& [module, md5] : rmq_b64.md5) {
      const auto it = ej_b64.md5.find(module);
      if (it != ej_b64.md5.end() && it->second == md5) continue;
      const std::string needle = "module " + module;
      EXPECT_NE(std::find(a["differs"].begin(), a["differs"].end(), needle), a["differs"].end())
          << needle << " in " << a.dump();
    }
  }
  EXPECT_TRUE(saw_b64);
  const std::string loud = "NEW REVISION: base64url@" + rmq_b64.vsn + " differs from revision 1";
  EXPECT_NE(second.err.find(loud), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("modules base64url"), std::string::npos) << second.err;

  // Neither import touched the other channel; each runs its own system's code.
  EXPECT_EQ(generation("ejabberd"), ej_generation);
  expect_runs("ejabberd", channel_md5s("ejabberd"), ej.modules());
  expect_runs("rabbitmq", channel_md5s("rabbitmq"), rmq.modules());
  EXPECT_EQ(channel_md5s("default").size(), 0u);
  // channel diff names the two base64url revisions the channels pin.
  const Json diff = json({"channel", "diff", "ejabberd", "rabbitmq"});
  bool b64_pins = false;
  for (const auto& a : diff["apps"]) {
    if (a["app"] == "base64url") b64_pins = a["from"] == rmq_b64.vsn && a["to"] == rmq_b64.vsn + "#2";
  }
  EXPECT_TRUE(b64_pins) << diff["apps"].dump();

  // OTP's own eldap application carries modules ejabberd carries too (eldap): into
  // ejabberd's channel it is refused, naming both, instead of replacing ejabberd's code.
  const fs::path otp_eldap = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(otp_lib, ec)) {
      if (e.path().filename().string().starts_with("eldap-") && fs::exists(e.path() / "ebin" / "eldap.app"))
        return e.path();
    }
    return fs::path();
  }();
  if (!otp_eldap.empty() && ej_app->md5.contains("eldap")) {
    const CliResult r = cs({"--channel", "ejabberd", "import", otp_eldap.string()});
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find(" is carried by both eldap@"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("ejabberd@" + ej_app->vsn), std::string::npos) << r.err;
    EXPECT_EQ(generation("ejabberd"), ej_generation);
    expect_runs("ejabberd", channel_md5s("ejabberd"), ej.modules());
  }
}

}  // namespace
}  // namespace codestore

// `codestore shell` through cli::run(): the JSON it prints per command, bad lines, modes.
#include <codestore/store.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli.h"
#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

class Shell : public LoaderFixture {
 protected:
  // Runs the shell over `input` with the fixture dir as the working directory.
  std::vector<std::string> run(const std::string& input, std::vector<std::string> args = {"shell"}) {
    auto cwd = fs::current_path();
    fs::current_path(dir_);
    std::istringstream in(input);
    std::ostringstream out, err;
    exit_code_ = cli::run(args, in, out, err);
    fs::current_path(cwd);
    err_ = err.str();
    std::vector<std::string> lines;
    std::istringstream o(out.str());
    for (std::string l; std::getline(o, l);) lines.push_back(l);
    return lines;
  }
  int exit_code_ = -1;
  std::string err_;
};

TEST_F(Shell, OneJsonObjectPerCommand) {
  auto out =
      run("add_path last v1/\n\nget_path\nload m\nstate m\nspawn a m\nload_binary m v2/m.beam\n"
          "load_binary m v3/m.beam\npurge m\nis_loaded m\nwhich n\n");
  EXPECT_EQ(exit_code_, 0) << err_;
  EXPECT_EQ(
      out,
      (std::vector<std::string>{
          R"({"op":"add_path","result":true})",
          R"({"op":"get_path","result":["v1"]})",
          R"({"op":"load","result":"ok"})",
          R"({"op":"state","result":{"current":{"file":"v1/m.beam","md5":"4934b0d6df8ce2e831d48cf4bb76da3a","vsn":"[49]"},"has_old":false}})",
          R"({"op":"spawn","result":"[49]"})",
          R"({"op":"load_binary","result":"ok"})",
          R"({"op":"load_binary","result":"ok","down":[{"proc":"a","reason":"killed"}]})",
          R"({"op":"purge","result":false,"killed":0})",
          R"({"op":"is_loaded","result":"v3/m.beam"})",
          R"({"op":"which","result":"v1/n.beam"})",
      }));
}

TEST_F(Shell, BadLinesAreReportedAndTheShellGoesOn) {
  auto out =
      run("bogus 1 2\nload\nping nobody\nadd_path middle v1\ncall m f x\nspawn a m\nspawn a m\n"
          "load_binary m nofile.beam\nload_abs v1/m\nis_loaded m\n");
  ASSERT_EQ(out.size(), 10u);
  const char* ops[] = {"bogus", "load",  "ping",        "add_path", "call",
                       "spawn", "spawn", "load_binary", "load_abs"};
  for (std::size_t i = 0; i < 9; ++i) {
    if (i == 5) continue;
    EXPECT_NE(out[i].find(std::string(R"({"op":")") + ops[i] + R"(","error":")"), std::string::npos)
        << out[i];
  }
  EXPECT_EQ(out[5], R"({"op":"spawn","result":"undef","down":[{"proc":"a","reason":"undef"}]})");
  EXPECT_EQ(out[9], R"({"op":"is_loaded","result":false})");
  EXPECT_EQ(exit_code_, 0);
}

TEST_F(Shell, ProcessesEndAndReportDown) {
  auto out =
      run("add_path last v1\nspawn b m\nspawn a m\nalive a\nstop a\nstop a\nping a\nuses_old_code a m\n"
          "load_binary m v2/m.beam\nuses_old_code b m\nswitch b\nuses_old_code b m\npurge m\ndelete m\n"
          "del_path v1\nswitch b\nalive b\n");
  EXPECT_EQ(out, (std::vector<std::string>{
                     R"({"op":"add_path","result":true})",
                     R"({"op":"spawn","result":"[49]"})",
                     R"({"op":"spawn","result":"[49]"})",
                     R"({"op":"alive","result":true})",
                     R"({"op":"stop","result":"ok","down":[{"proc":"a","reason":"normal"}]})",
                     R"({"op":"stop","result":"dead"})",
                     R"({"op":"ping","result":"dead"})",
                     R"({"op":"uses_old_code","result":"dead"})",
                     R"({"op":"load_binary","result":"ok"})",
                     R"({"op":"uses_old_code","result":true})",
                     R"({"op":"switch","result":"[50]"})",
                     R"({"op":"uses_old_code","result":false})",
                     R"({"op":"purge","result":false,"killed":0})",
                     R"({"op":"delete","result":true})",
                     R"({"op":"del_path","result":true})",
                     R"({"op":"switch","result":"undef","down":[{"proc":"b","reason":"undef"}]})",
                     R"({"op":"alive","result":false})",
                 }));
}

TEST_F(Shell, EmbeddedModeRefusesOnDemandLoads) {
  auto out = run("add_path last v1\nensure_loaded m\ncall m f 0\nload m\ncall m f 0\n",
                 {"shell", "--mode", "embedded"});
  EXPECT_EQ(out, (std::vector<std::string>{
                     R"({"op":"add_path","result":true})",
                     R"({"op":"ensure_loaded","result":"embedded"})",
                     R"({"op":"call","result":"undef"})",
                     R"({"op":"load","result":"ok"})",
                     R"({"op":"call","result":"ok"})",
                 }));
  run("", {"shell", "--mode", "lazy"});
  EXPECT_EQ(exit_code_, cli::kExitUsage);
}

// Issue 11: spawn must not need M to export any particular function (here counter, a
// gen_server-style module without start/1): the process enters M's current instance and
// lingers there; switch moves it to the current one; only "M has no code" is undef.
TEST_F(Shell, SpawnEntersAModuleWhateverItExports) {
  auto out =
      run("add_path last foreign/v1\nspawn a counter\nload_binary counter foreign/v2/counter.beam\n"
          "uses_old_code a counter\nping a\nswitch a\nping a\nuses_old_code a counter\nspawn b counter\n"
          "load_binary counter foreign/v1/counter.beam\npurge counter\ndelete counter\npurge counter\n"
          "del_path foreign/v1\nswitch a\nspawn c counter\n");
  EXPECT_EQ(exit_code_, 0) << err_;
  EXPECT_EQ(
      out,
      (std::vector<std::string>{
          R"({"op":"add_path","result":true})",
          R"({"op":"spawn","result":"[49]"})",
          R"({"op":"load_binary","result":"ok"})",
          R"({"op":"uses_old_code","result":true})",
          R"({"op":"ping","result":"[49]"})",
          R"({"op":"switch","result":"[50]"})",
          R"({"op":"ping","result":"[50]"})",
          R"({"op":"uses_old_code","result":false})",
          R"({"op":"spawn","result":"[50]"})",
          R"({"op":"load_binary","result":"ok"})",
          R"({"op":"purge","result":true,"killed":2,"down":[{"proc":"a","reason":"killed"},{"proc":"b","reason":"killed"}]})",
          R"({"op":"delete","result":true})",
          R"({"op":"purge","result":false,"killed":0})",
          R"({"op":"del_path","result":true})",
          R"({"op":"switch","result":"dead"})",
          R"({"op":"spawn","result":"undef","down":[{"proc":"c","reason":"undef"}]})",
      }));
}

// Issue 11: an image without an Attr chunk loads (as code:load_binary loads it); its vsn
// is absent: null wherever the shell shows a vsn.
TEST_F(Shell, AnImageWithoutAttrLoadsAndHasNoVsn) {
  write_without("v1/m.beam", {"Attr"}, "noattr/m.beam");
  auto out = run("load_binary m noattr/m.beam\nstate m\nspawn a m\nping a\nadd_path last noattr\nload n\n");
  EXPECT_EQ(
      out,
      (std::vector<std::string>{
          R"({"op":"load_binary","result":"ok"})",
          R"({"op":"state","result":{"current":{"file":"noattr/m.beam","md5":"4934b0d6df8ce2e831d48cf4bb76da3a","vsn":null},"has_old":false}})",
          R"({"op":"spawn","result":null})",
          R"({"op":"ping","result":null})",
          R"({"op":"add_path","result":true})",
          R"({"op":"load","result":"nofile"})",
      }));
}

// Issue 11, item 12: `help` lists the commands, one JSON object like every answer.
TEST_F(Shell, HelpListsTheCommands) {
  auto out = run("help\nhelp me\n");
  ASSERT_EQ(out.size(), 2u);
  auto help = nlohmann::json::parse(out[0]);
  EXPECT_EQ(help["op"], "help");
  ASSERT_TRUE(help["result"].is_array());
  std::vector<std::string> usages = help["result"];
  for (const char* expected : {"add_path first|last DIR|lib:NAME", "spawn P M", "sync brutal|soft", "help"}) {
    EXPECT_NE(std::find(usages.begin(), usages.end(), expected), usages.end()) << expected << "\n" << out[0];
  }
  // Every listed command is one the shell knows: none answers "unknown command".
  std::string input;
  for (const auto& u : usages) input += u.substr(0, u.find(' ')) + "\n";
  for (const auto& line : run(input)) EXPECT_EQ(line.find("unknown command"), std::string::npos) << line;
  EXPECT_EQ(out[1], R"({"op":"help","error":"usage: help"})");
}

// Issue 11, item 6: like every command, the shell uses --db, else $CODESTORE_DB, else
// ./codestore.db.
class ShellDb : public Shell {
 protected:
  void SetUp() override {
    Shell::SetUp();
    const char* env = std::getenv("CODESTORE_DB");
    if (env != nullptr) saved_env_ = env;
    ::unsetenv("CODESTORE_DB");
  }
  void TearDown() override {
    if (saved_env_) {
      ::setenv("CODESTORE_DB", saved_env_->c_str(), 1);
    } else {
      ::unsetenv("CODESTORE_DB");
    }
    Shell::TearDown();
  }
  // A database at `name` under the fixture dir whose lib app has m version 2.
  void make_db(const std::string& name) {
    auto s = Store::open(file(name));
    ASSERT_TRUE(s) << s.error().to_string();
    auto r = (*s)->import(bytes("v2/m.beam"), "v2/m.beam", {.lib = "app"});
    ASSERT_TRUE(r) << r.error().to_string();
  }
  std::optional<std::string> saved_env_;
};

TEST_F(ShellDb, UsesCodestoreDbFromTheEnvironment) {
  make_db("env.db");
  ::setenv("CODESTORE_DB", file("env.db").c_str(), 1);
  auto out = run("add_path last lib:app\nwhich m\n", {"shell", "--record"});
  EXPECT_EQ(exit_code_, 0) << err_;
  EXPECT_EQ(out, (std::vector<std::string>{R"({"op":"add_path","result":true})",
                                           R"({"op":"which","result":"lib:app/m.beam"})"}));
}

TEST_F(ShellDb, UsesCodestoreDbInTheWorkingDirectory) {
  make_db("codestore.db");
  auto out = run("add_path last lib:app\nload m\n", {"shell", "--record"});
  EXPECT_EQ(exit_code_, 0) << err_;
  EXPECT_EQ(out, (std::vector<std::string>{R"({"op":"add_path","result":true})",
                                           R"({"op":"load","result":"ok"})"}));
  auto s = Store::open(file("codestore.db"));
  ASSERT_TRUE(s);
  auto history = (*s)->history("m");
  ASSERT_TRUE(history) << history.error().to_string();
  EXPECT_FALSE(history->empty()) << "--record wrote the load to the history";
}

TEST_F(ShellDb, WithoutADatabaseLibEntriesAndRecordAreErrors) {
  auto out = run("add_path last lib:stdlib\nadd_path last v1\n");
  EXPECT_EQ(exit_code_, 0) << err_;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(
      out[0].find(R"({"op":"add_path","error":"lib:stdlib: no database: ./codestore.db does not exist)"),
      std::string::npos)
      << out[0];
  EXPECT_EQ(out[1], R"({"op":"add_path","result":true})");
  EXPECT_FALSE(fs::exists(file("codestore.db"))) << "the shell created a database";

  out = run("add_path last v1\n", {"shell", "--record"});
  EXPECT_EQ(exit_code_, cli::kExitError);
  EXPECT_TRUE(out.empty());
  EXPECT_NE(err_.find("--record"), std::string::npos) << err_;
  EXPECT_NE(err_.find("no database"), std::string::npos) << err_;

  ::setenv("CODESTORE_DB", file("missing.db").c_str(), 1);
  out = run("add_path first lib:app\n");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].find("missing.db does not exist"), std::string::npos) << out[0];
  EXPECT_FALSE(fs::exists(file("missing.db")));
}

}  // namespace
}  // namespace codestore::loader::testing

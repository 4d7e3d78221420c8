// `codestore shell` through cli::run(): the JSON it prints per command, bad lines, modes.
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

}  // namespace
}  // namespace codestore::loader::testing

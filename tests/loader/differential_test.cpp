// The differential test: each scenario under tests/loader/scenarios/ runs against the real
// Erlang code server (code_server_shell.escript, real processes) and against the built
// `codestore shell`, in a scratch copy of tests/fixtures/images/loader/ plus the images of
// make_foreign.escript (modules without our conventions: a gen_server-style module compiled
// at test time, a real OTP module, an image without Attr), and the two answers are compared
// command by command (a bad line compares by having an error).
//
// Scenario files: the shell's command language, one command per line. `#` starts a
// comment. A first line `# mode: embedded` runs both in embedded mode. A command marked
// `# differs: WHY` is a deliberate difference: there the answers must differ. The only one
// is kDeliberateDifference below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/files.h"
#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;

// A refused load changes nothing (docs/code-server.md, "Deliberate differences from OTP 25").
// OTP 25's load_binary purges the old instance (killing the processes in it) before it
// validates the binary or checks stickiness; we validate first, so a refused load_binary
// purges nothing.
constexpr const char* kDeliberateDifference = "refused_load";

struct Step {
  std::string command;
  int line = 0;
  bool differs = false;
};

struct Scenario {
  std::string mode = "interactive";
  std::vector<Step> steps;
};

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

Scenario parse(const fs::path& file) {
  Scenario sc;
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::string comment;
    if (auto hash = line.find('#'); hash != std::string::npos) {
      comment = trim(line.substr(hash + 1));
      line = line.substr(0, hash);
    }
    if (comment.rfind("mode:", 0) == 0) sc.mode = trim(comment.substr(5));
    line = trim(line);
    if (line.empty()) continue;
    sc.steps.push_back(Step{line, n, comment.rfind("differs:", 0) == 0});
  }
  return sc;
}

std::vector<std::string> scenario_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(CODESTORE_SOURCE_DIR) / "tests/loader/scenarios")) {
    if (e.path().extension() == ".txt") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool have_escript() {
  return std::system("command -v escript > /dev/null 2>&1") == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Runs `command` in `dir` with `input` on stdin; returns its stdout.
std::string run_in(const fs::path& dir, const std::string& command, const std::string& input,
                   const char* tag) {
  fs::path in = dir / (std::string("_in_") + tag), out = dir / (std::string("_out_") + tag);
  std::ofstream(in) << input;
  std::string cmd = "cd '" + dir.string() + "' && " + command + " < '" + in.string() + "' > '" +
                    out.string() + "' 2> '" + (dir / (std::string("_err_") + tag)).string() + "'";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << codestore::testing::read_text(dir / (std::string("_err_") + tag));
  return codestore::testing::read_text(out);
}

// A bad line's message is ours or Erlang's: compare only that it is an error.
nlohmann::json normalized(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error")) j["error"] = true;
  return j;
}

class Differential : public ::testing::TestWithParam<std::string> {};

TEST_P(Differential, SameAnswersAsErlang) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  const std::string name = GetParam();
  Scenario sc = parse(fs::path(CODESTORE_SOURCE_DIR) / "tests/loader/scenarios" / (name + ".txt"));
  ASSERT_FALSE(sc.steps.empty());

  const codestore::testing::TempDir tmp;
  const fs::path& dir = tmp.path();
  fs::copy(fs::path(CODESTORE_SOURCE_DIR) / "tests/fixtures/images/loader", dir, fs::copy_options::recursive);
  // Modules that do not follow the fixtures' conventions: compiled now, copied from the
  // system's OTP, rebuilt without Attr (make_foreign.escript says which).
  run_in(dir,
         "escript '" + std::string(CODESTORE_SOURCE_DIR) + "/tests/loader/make_foreign.escript' '" +
             std::string(CODESTORE_SOURCE_DIR) + "' .",
         "", "make");

  std::string input;
  for (const auto& s : sc.steps) input += s.command + "\n";
  std::string erl_flags = sc.mode == "embedded" ? "ERL_FLAGS='-mode embedded' " : "";
  std::string erlang = run_in(dir,
                              erl_flags + "escript '" + std::string(CODESTORE_SOURCE_DIR) +
                                  "/tests/loader/code_server_shell.escript'",
                              input, "erl");
  std::string ours =
      run_in(dir, "'" + std::string(CODESTORE_BINARY) + "' shell --mode " + sc.mode, input, "cs");

  auto erl_lines = lines_of(erlang), our_lines = lines_of(ours);
  ASSERT_EQ(erl_lines.size(), sc.steps.size()) << erlang;
  ASSERT_EQ(our_lines.size(), sc.steps.size()) << ours;
  for (std::size_t i = 0; i < sc.steps.size(); ++i) {
    const Step& step = sc.steps[i];
    auto e = normalized(erl_lines[i]), o = normalized(our_lines[i]);
    ASSERT_FALSE(e.is_discarded()) << erl_lines[i];
    ASSERT_FALSE(o.is_discarded()) << our_lines[i];
    if (step.differs) {
      EXPECT_EQ(name, kDeliberateDifference)
          << name << ".txt:" << step.line << ": only the refused-load scenario may differ";
      EXPECT_NE(e, o) << name << ".txt:" << step.line << " `" << step.command
                      << "` was marked as a difference";
    } else {
      EXPECT_EQ(e, o) << name << ".txt:" << step.line << " `" << step.command
                      << "`\n  erlang:    " << erl_lines[i] << "\n  codestore: " << our_lines[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Differential, ::testing::ValuesIn(scenario_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace

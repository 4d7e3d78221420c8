// `codestore serve`'s client roots and channel rules as the command line gives them: a rule
// that is neither NAME=CLIENT_ROOT nor NAME=ADDRESS is a usage error, and a rule naming no
// client root, an unknown channel or a bad subnet stops serve before it opens a socket, with
// a message that names the rule. (Serving itself: tests/server/erl_release_boot_test.cpp.)
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

struct CliResult {
  int code = -1;
  std::string out, err;
};

CliResult run(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out, err;
  CliResult r;
  r.code = cli::run(args, in, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

class ServeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.path().string() + "/s.db";
    ASSERT_EQ(run({"--db", db_, "init"}).code, 0);
  }
  testing::TempDir dir_;
  std::string db_;
};

TEST_F(ServeCliTest, ARuleWithoutNameOrPlaceIsAUsageError) {
  for (const char* rule : {"=/srv/prod", "prod="}) {
    CliResult r = run({"--db", db_, "serve", "--client-root", "/srv/prod", "--channel", rule});
    EXPECT_EQ(r.code, 2) << rule << ": " << r.err;
    EXPECT_NE(r.err.find("NAME=CLIENT_ROOT"), std::string::npos) << r.err;
  }
}

TEST_F(ServeCliTest, BadRulesStopServeBeforeItServes) {
  CliResult r = run({"--db", db_, "serve", "--client-root", "/srv/prod", "--channel", "default=/srv/other"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("/srv/other is not a client root"), std::string::npos) << r.err;
  r = run({"--db", db_, "serve", "--client-root", "/srv/prod", "--channel", "default=10.0.0.0/40"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("channel rule default=10.0.0.0/40: bad prefix length"), std::string::npos) << r.err;
  r = run({"--db", db_, "serve", "--client-root", "/srv/prod", "--channel", "nosuch=/srv/prod"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("channel nosuch"), std::string::npos) << r.err;
  r = run({"--db", db_, "serve", "--client-root", "relative", "--channel", "default=relative"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("client root 'relative': not an absolute path"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("serving"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace codestore

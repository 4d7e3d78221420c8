// The channel commands and the global --channel (docs/model.md), driven in-process through
// cli::run on real temporary databases: every store command works in the channel --channel
// names; `channel list/show/history/rollback` with --json and their errors. On both backends
// (store/backend.h): `--db FILE` and `--db postgresql://...`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/backend.h"
#include "store/store_test_util.h"

namespace codestore {
namespace {

using Json = nlohmann::json;
using store_testing::CliResult;
using store_testing::fixture;
using store_testing::run_cli;
using store_testing::TempDir;
using store_testing::variant;
using store_testing::write_file;

class ChannelCli : public store_testing::BackendTest {
 protected:
  CliResult cs(const std::vector<std::string>& args) { return run_cli(db_, args); }
  Json json(const std::vector<std::string>& args, int code = 0) {
    std::vector<std::string> a{"--json"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = cs(a);
    EXPECT_EQ(r.code, code) << r.out << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not one JSON document: " << r.out << r.err;
    return j;
  }
  void SetUp() override {
    db_ = store_at(dir_);
    ASSERT_EQ(cs({"init"}).code, 0);
    write_file(dir_ / "h1.beam", variant("hello.beam", 0));
    write_file(dir_ / "h2.beam", variant("hello.beam", 1));
  }

  TempDir dir_;
  std::string db_;
};
CODESTORE_BOTH_BACKENDS(ChannelCli);

TEST_P(ChannelCli, StoreCommandsWorkInTheChannelNamed) {
  ASSERT_EQ(cs({"import", dir_ / "h1.beam"}).code, 0);
  auto r = cs({"--channel", "blue", "import", dir_ / "h2.beam"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json({"ls"})["modules"][0]["active"], 1);
  EXPECT_EQ(json({"--channel", "blue", "ls"})["modules"][0]["active"], 2);
  // An activation in blue moves blue only.
  ASSERT_EQ(cs({"--channel", "blue", "activate", "hello@1"}).code, 0);
  EXPECT_EQ(json({"--channel", "blue", "ls"})["modules"][0]["active"], 1);
  EXPECT_EQ(json({"versions", "hello"})["versions"][0]["active"], true);
  EXPECT_EQ(json({"--channel", "blue", "show", "hello"})["version"], 1);
  // A channel never made is not found, by name; a bad name is refused.
  auto unknown = json({"--channel", "green", "ls"}, 1);
  EXPECT_EQ(unknown["error"]["kind"], "not_found");
  EXPECT_NE(unknown["error"]["message"].get<std::string>().find("unknown channel green"), std::string::npos);
  EXPECT_EQ(json({"--channel", "../x", "ls"}, 1)["error"]["kind"], "invalid_argument");
}

TEST_P(ChannelCli, DiffComparesTwoGenerationsOfOneChannelOrTwo) {
  ASSERT_EQ(cs({"--channel", "blue", "import", dir_ / "h1.beam"}).code, 0);
  ASSERT_EQ(cs({"--channel", "blue", "import", dir_ / "h2.beam"}).code, 0);
  const Json versions = json({"versions", "hello"})["versions"];
  ASSERT_EQ(versions.size(), 2u);
  const std::string md5_1 = versions[0]["md5"], md5_2 = versions[1]["md5"];
  ASSERT_NE(md5_1, md5_2);

  auto d = json({"channel", "diff", "blue#1", "blue#2"});
  EXPECT_EQ(d["a"], "blue#1");
  EXPECT_EQ(d["b"], "blue#2");
  EXPECT_TRUE(d["modules"]["added"].empty());
  EXPECT_TRUE(d["modules"]["removed"].empty());
  ASSERT_EQ(d["modules"]["changed"].size(), 1u);
  EXPECT_EQ(d["modules"]["changed"][0], (Json{{"module", "hello"},
                                              {"from", {{"version", 1}, {"md5", md5_1}}},
                                              {"to", {{"version", 2}, {"md5", md5_2}}},
                                              {"same_code", false}}));
  // A channel alone is its current generation; another channel compares as well.
  EXPECT_EQ(json({"channel", "diff", "blue#2", "blue"})["modules"]["changed"].size(), 0u);
  auto other = json({"channel", "diff", "blue", "default"});
  ASSERT_EQ(other["modules"]["removed"].size(), 1u);
  EXPECT_EQ(other["modules"]["removed"][0]["version"], 2);
  EXPECT_EQ(other["modules"]["removed"][0]["md5"], md5_2);
  auto text = cs({"channel", "diff", "blue#1", "blue#2"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("hello@1 " + md5_1.substr(0, 8)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("hello@2 " + md5_2.substr(0, 8)), std::string::npos) << text.out;
  EXPECT_NE(cs({"channel", "diff", "blue", "blue"}).out.find("the same content"), std::string::npos);
  // Errors: a generation the channel lacks, an unknown channel, a malformed reference.
  EXPECT_EQ(json({"channel", "diff", "blue#3", "blue"}, 1)["error"]["kind"], "not_found");
  EXPECT_EQ(json({"channel", "diff", "green", "blue"}, 1)["error"]["kind"], "not_found");
  for (const char* bad : {"blue#0", "blue#", "#2", "blue#x"})
    EXPECT_EQ(cs({"channel", "diff", bad, "blue"}).code, 2) << bad;
}

TEST_P(ChannelCli, ListShowHistoryAndRollback) {
  ASSERT_EQ(cs({"--channel", "blue", "import", dir_ / "h1.beam"}).code, 0);
  auto lonely = json({"channel", "rollback", "blue"}, 1);
  EXPECT_EQ(lonely["error"]["kind"], "failed_precondition");
  ASSERT_EQ(cs({"--channel", "blue", "import", "--note", "second", dir_ / "h2.beam"}).code, 0);

  auto list = json({"channel", "list"});
  ASSERT_EQ(list["channels"].size(), 2u);
  EXPECT_EQ(list["channels"][0]["name"], "blue");
  EXPECT_EQ(list["channels"][0]["generation"], 2);
  EXPECT_EQ(list["channels"][0]["previous"], 1);
  EXPECT_EQ(list["channels"][0]["modules"], 1);
  EXPECT_EQ(list["channels"][1]["name"], "default");
  EXPECT_EQ(list["channels"][1]["generation"], 0);
  EXPECT_TRUE(list["channels"][1]["previous"].is_null());

  auto show = json({"channel", "show", "blue"});
  EXPECT_EQ(show["generation"], 2);
  EXPECT_EQ(show["action"], "import");
  EXPECT_EQ(show["reason"], "second");
  ASSERT_EQ(show["contents"].size(), 1u);
  EXPECT_EQ(show["contents"][0]["module"], "hello");
  EXPECT_EQ(show["contents"][0]["version"], 2);
  EXPECT_EQ(json({"channel", "show", "blue", "--generation", "1"})["contents"][0]["version"], 1);
  EXPECT_EQ(json({"channel", "show", "blue", "--generation", "3"}, 1)["error"]["kind"], "not_found");

  auto history = json({"channel", "history", "blue"});
  ASSERT_EQ(history["generations"].size(), 2u);
  const Json& newest = history["generations"][0];
  EXPECT_EQ(newest["generation"], 2);
  EXPECT_EQ(newest["changes"]["changed"], 1);
  EXPECT_EQ(newest["changes"]["modules"][0], (Json{{"module", "hello"}, {"from", 1}, {"to", 2}}));
  EXPECT_EQ(history["generations"][1]["changes"]["modules"][0],
            (Json{{"module", "hello"}, {"from", nullptr}, {"to", 1}}));
  EXPECT_EQ(json({"channel", "history", "blue", "--limit", "1"})["generations"].size(), 1u);

  // Rollback: generation 3 with generation 1's content; a second one switches back.
  auto back = json({"channel", "rollback", "blue", "--reason", "bad"});
  EXPECT_EQ(back["generation"], 3);
  EXPECT_EQ(back["action"], "channel-rollback");
  EXPECT_EQ(back["changes"]["modules"][0], (Json{{"module", "hello"}, {"from", 2}, {"to", 1}}));
  EXPECT_EQ(json({"--channel", "blue", "ls"})["modules"][0]["active"], 1);
  auto again = cs({"channel", "rollback", "blue"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("generation 4"), std::string::npos) << again.out;
  EXPECT_EQ(json({"--channel", "blue", "ls"})["modules"][0]["active"], 2);
  // Text output: a table per command.
  auto text = cs({"channel", "history", "blue"});
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("channel-rollback"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("hello 1->2"), std::string::npos) << text.out;
  EXPECT_NE(cs({"channel", "list"}).out.find("blue"), std::string::npos);

  // Errors: an unknown channel, a --channel that names another one.
  EXPECT_EQ(json({"channel", "history", "green"}, 1)["error"]["kind"], "not_found");
  EXPECT_EQ(json({"channel", "show", "green"}, 1)["error"]["kind"], "not_found");
  EXPECT_EQ(json({"--channel", "red", "channel", "rollback", "blue"}, 2)["error"]["kind"], "usage");
  EXPECT_EQ(json({"channel", "history", "blue", "--limit", "0"}, 2)["error"]["kind"], "usage");
}

}  // namespace
}  // namespace codestore

// Read-only use (issue 11, item 10): a user who may not write the database or its directory
// can run the reading commands, and a reader never leaves files behind that lock the owner
// out. Root may write anywhere, so these tests run the commands as two unprivileged users
// (an owner and a reader, by numeric uid): they need root to switch, and skip without it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_process.h"
#include "store/store_test_util.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using cli_testing::CliRun;
using store_testing::fixture;
using store_testing::read_file;
using store_testing::TempDir;
using store_testing::variant;
using store_testing::write_file;

constexpr uid_t kOwner = 65534;   // nobody on Debian; any unprivileged uid will do
constexpr uid_t kReader = 65533;  // another one, with no passwd entry needed

class ReadOnlyUse : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "needs root to run the commands as other users (root itself writes anywhere)";
    // Everyone may pass through the scratch directory; the owner's directory is the owner's.
    fs::permissions(tmp_.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec);
    fs::create_directories(home_);
    ASSERT_EQ(::chown(home_.c_str(), kOwner, kOwner), 0);
    fs::permissions(home_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    fs::create_directories(out_);
    ASSERT_EQ(::chown(out_.c_str(), kReader, kReader), 0);
    write_file(tmp_ / "in/hello.beam", variant("hello.beam", 0));
    write_file(tmp_ / "in/v2/hello.beam", variant("hello.beam", 1));
    write_file(tmp_ / "in/v3/hello.beam", variant("hello.beam", 2));
    fs::permissions(tmp_ / "in", fs::perms::all, fs::perm_options::add);
    fs::permissions(tmp_ / "in/v2", fs::perms::all, fs::perm_options::add);
    fs::permissions(tmp_ / "in/v3", fs::perms::all, fs::perm_options::add);
    for (const char* f : {"in/hello.beam", "in/v2/hello.beam", "in/v3/hello.beam"}) {
      fs::permissions(tmp_ / f, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    }
    // The executable as the unprivileged users can run it: in place if they may, else a copy.
    binary_ = CODESTORE_BINARY;
    if (as(kReader, {"--help"}, false).code == 127) {
      binary_ = tmp_ / "codestore";
      fs::copy_file(CODESTORE_BINARY, binary_);
      fs::permissions(binary_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec |
                                   fs::perms::group_read | fs::perms::others_read);
    }
    ASSERT_EQ(as(kReader, {"--help"}, false).code, 0) << "the unprivileged user cannot run " << binary_;
    auto init = owner({"init"});
    ASSERT_EQ(init.code, 0) << init.err;
    auto first = owner({"import", tmp_ / "in/hello.beam"});
    ASSERT_EQ(first.code, 0) << first.err;
    auto second = owner({"import", tmp_ / "in/v2/hello.beam"});
    ASSERT_EQ(second.code, 0) << second.err;
  }

  CliRun as(uid_t uid, std::vector<std::string> args, bool with_db = true) {
    if (with_db) args.insert(args.begin(), {"--db", db_});
    return cli_testing::run_process(binary_, args, tmp_.path(), uid);
  }
  CliRun owner(const std::vector<std::string>& args) { return as(kOwner, args); }
  CliRun reader(const std::vector<std::string>& args) { return as(kReader, args); }

  // Every file in the owner's directory with its owner's uid.
  std::map<std::string, uid_t> files() const {
    std::map<std::string, uid_t> m;
    for (const auto& e : fs::directory_iterator(home_)) {
      struct stat st {};
      ::stat(e.path().c_str(), &st);
      m[e.path().filename().string()] = st.st_uid;
    }
    return m;
  }

  // The reading commands, each as the reader; all succeed.
  void read_everything() {
    auto ls = reader({"--json", "ls"});
    EXPECT_EQ(ls.code, 0) << ls.err;
    EXPECT_EQ(nlohmann::json::parse(ls.out, nullptr, false)["modules"][0]["module"], "hello") << ls.out;
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"show", "hello@1"}, {"versions", "hello"}, {"verify"}, {"stats"}, {"history", "hello"}}) {
      auto r = reader(args);
      EXPECT_EQ(r.code, 0) << args[0] << ": " << r.err;
    }
    const std::string exported = out_ + "/hello.beam";
    auto exp = reader({"export", "hello@1", "-o", exported});
    EXPECT_EQ(exp.code, 0) << exp.err;
    EXPECT_EQ(read_file(exported), variant("hello.beam", 0));
  }

  TempDir tmp_;
  std::string home_ = tmp_ / "owner";  // the owner's directory, holding the database
  std::string out_ = tmp_ / "reader";  // where the reader may write (its exports)
  std::string db_ = home_ + "/s.db";
  std::string binary_;
};

TEST_F(ReadOnlyUse, AUserWhoCannotWriteTheDatabaseOrItsDirectoryReadsIt) {
  const auto before = files();
  read_everything();
  EXPECT_EQ(files(), before);
  // Writing is the owner's: refused for the reader, and the owner still can.
  auto refused = reader({"import", tmp_ / "in/v3/hello.beam"});
  EXPECT_EQ(refused.code, 1);
  auto imp = owner({"import", tmp_ / "in/v3/hello.beam"});
  EXPECT_EQ(imp.code, 0) << imp.err;
  read_everything();
}

TEST_F(ReadOnlyUse, AReaderInAWritableDirectoryLeavesNothingThatLocksTheOwnerOut) {
  fs::permissions(home_, fs::perms::all);  // anyone may create files beside the database
  const auto before = files();
  read_everything();
  EXPECT_EQ(files(), before);
  for (const auto& [name, uid] : files()) EXPECT_EQ(uid, kOwner) << name << " belongs to another user";
  auto imp = owner({"import", tmp_ / "in/v3/hello.beam"});
  EXPECT_EQ(imp.code, 0) << imp.err;
}

TEST_F(ReadOnlyUse, WithoutItsWalFilesAReaderIsRefusedClearlyOrReadsASnapshot) {
  // As a database another tool closed last (SQLite removes -wal and -shm with its last
  // connection): a reader would have to create them.
  fs::permissions(home_, fs::perms::all);
  fs::remove(db_ + "-wal");
  fs::remove(db_ + "-shm");
  const auto before = files();
  auto refused = reader({"ls"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("s.db-wal"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--snapshot"), std::string::npos) << refused.err;
  EXPECT_EQ(files(), before);
  // The explicit snapshot reads the file as it is and writes nothing.
  auto snap = reader({"--snapshot", "--json", "versions", "hello"});
  EXPECT_EQ(snap.code, 0) << snap.err;
  EXPECT_EQ(nlohmann::json::parse(snap.out, nullptr, false)["versions"].size(), 2u) << snap.out;
  auto verify = reader({"--snapshot", "verify"});
  EXPECT_EQ(verify.code, 0) << verify.err;
  EXPECT_EQ(files(), before);
  // The owner's next write brings the files back, and the reader reads again.
  auto imp = owner({"import", tmp_ / "in/v3/hello.beam"});
  EXPECT_EQ(imp.code, 0) << imp.err;
  read_everything();
  for (const auto& [name, uid] : files()) EXPECT_EQ(uid, kOwner) << name << " belongs to another user";
}

}  // namespace
}  // namespace codestore

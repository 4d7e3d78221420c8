// Two real processes (the built `codestore` binary) importing into one database at the
// same time: both succeed, no version is lost, no number is given twice.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <set>

#include "store_test_util.h"

extern char** environ;

namespace codestore {
namespace {

using namespace store_testing;

// Runs `script` with /bin/sh in a new process; returns its pid.
pid_t spawn_shell(const std::string& script) {
  pid_t pid = -1;
  std::vector<std::string> argv{"/bin/sh", "-c", script};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, args.data(), environ), 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(StoreProcesses, ConcurrentImportsLoseNothingAndNeverReuseANumber) {
  TempDir dir;
  const std::string db = dir / "s.db";
  ASSERT_EQ(run_cli(db, {"init"}).code, 0);
  constexpr int kPerProcess = 12;
  std::set<std::string> expected;
  for (int p = 0; p < 2; ++p) {
    for (int i = 0; i < kPerProcess; ++i) {
      const int n = 1 + p * kPerProcess + i;
      const std::string file =
          dir / ("p" + std::to_string(p) + "/hello_" + std::to_string(100 + i) + ".beam");
      write_file(file, variant("hello.beam", n));
    }
  }
  // Each process imports its files one command at a time, so the two interleave.
  std::vector<pid_t> pids;
  for (int p = 0; p < 2; ++p) {
    const std::string script = "for f in " + (dir / "p").string() + std::to_string(p) + "/*.beam; do " +
                               CODESTORE_BINARY + " --db " + db + " import \"$f\" >/dev/null || exit 1; done";
    pids.push_back(spawn_shell(script));
  }
  for (pid_t pid : pids) EXPECT_EQ(wait_exit(pid), 0);

  auto store = open_or_die(db);
  auto versions = store->versions("hello");
  ASSERT_TRUE(versions) << versions.error().to_string();
  ASSERT_EQ(versions->size(), 2u * kPerProcess);
  std::set<std::int64_t> numbers;
  std::set<std::string> shas, origins;
  for (const auto& v : *versions) {
    numbers.insert(v.version);
    shas.insert(v.sha256);
    origins.insert(v.origin);
  }
  EXPECT_EQ(numbers.size(), 2u * kPerProcess);
  EXPECT_EQ(*numbers.begin(), 1);
  EXPECT_EQ(*numbers.rbegin(), 2 * kPerProcess);
  EXPECT_EQ(shas.size(), 2u * kPerProcess);
  EXPECT_EQ(origins.size(), 2u * kPerProcess);
  for (const auto& v : *versions) {
    auto bytes = store->get("hello", v.version, true);
    ASSERT_TRUE(bytes);
    EXPECT_EQ(*bytes, read_file(v.origin));
  }
  EXPECT_TRUE(store->verify()->ok());
}

TEST(StoreProcesses, ConcurrentTreeImportsOfOneFreshDatabase) {
  // Two processes create the same database (`init`, the only command that creates one) and
  // import different trees at once: the migration runner and BEGIN IMMEDIATE make them
  // take turns.
  TempDir dir;
  const std::string db = dir / "fresh.db";
  for (int p = 0; p < 2; ++p) {
    for (int i = 0; i < 8; ++i) {
      write_file(dir / ("t" + std::to_string(p) + "/app" + std::to_string(p) + "/ebin/h" + std::to_string(i) +
                        ".beam"),
                 variant("hello.beam", 100 * (p + 1) + i));
    }
  }
  std::vector<pid_t> pids;
  for (int p = 0; p < 2; ++p) {
    const std::string cs = std::string(CODESTORE_BINARY) + " --db " + db;
    pids.push_back(spawn_shell(cs + " init >/dev/null && " + cs + " import " + (dir / "t").string() +
                               std::to_string(p) + " >/dev/null"));
  }
  for (pid_t pid : pids) EXPECT_EQ(wait_exit(pid), 0);
  auto store = open_or_die(db);
  auto versions = store->versions("hello");
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->size(), 16u);
  for (std::size_t i = 0; i < versions->size(); ++i)
    EXPECT_EQ((*versions)[i].version, static_cast<std::int64_t>(i + 1));
}

}  // namespace
}  // namespace codestore

// Killed mid-write (SQLite's crash tests, leveldb's corruption suites): a child process
// imports round after round of real images into one database (each round one import_tree
// batch: new versions of ~150 modules, alternating between two overlapping sets), and is
// killed with SIGKILL at a random moment, 50 times. After each kill:
//   * the database opens; integrity_check and verify pass;
//   * each round is all there or not at all (a batch is one transaction);
//   * every version seen committed before is still there and reads back byte-identical;
//   * every stored image is byte-identical to one we imported, and no blob is orphaned or
//     missing.
// CODESTORE_KILL_ROUNDS overrides the number of kills (default 50).
#include <codestore/store.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store_util.h"

namespace fs = std::filesystem;
using namespace codestore;
using namespace codestore::testing;

namespace {

constexpr std::size_t kModules = 200;
constexpr std::size_t kPerRound = 150;  // round r imports modules [0,150) when even, [50,200) when odd

struct Rounds {
  fs::path dir;
  std::vector<std::vector<std::uint8_t>> base;
  std::vector<std::string> names;
  // tag -> module -> bytes, for every round written so far
  std::map<std::string, std::map<std::string, std::vector<std::uint8_t>>> written;

  static std::string tag(int round) { return "round-" + std::to_string(round); }
  fs::path path(int round) const { return dir / tag(round); }

  // Writes round `r`'s files (once).
  void write(int r) {
    if (written.count(tag(r))) return;
    fs::create_directories(path(r));
    const std::size_t first = (r % 2 == 0) ? 0 : kModules - kPerRound;
    auto& m = written[tag(r)];
    for (std::size_t i = first; i < first + kPerRound; ++i) {
      auto bytes = variant(base[i], tag(r));
      write_file((path(r) / (names[i] + ".beam")).string(), bytes);
      m[names[i]] = std::move(bytes);
    }
  }
};

// The child: imports rounds first..last, one import_tree each, then exits. Never returns.
[[noreturn]] void child(const std::string& db, const Rounds& rounds, int first, int last) {
  auto store = Store::open(db);
  if (!store) _exit(10);
  for (int r = first; r <= last; ++r) {
    ImportOptions o;
    o.lib = "killtest";
    o.note = Rounds::tag(r);
    auto s = (*store)->import_tree({rounds.path(r).string()}, o);
    if (!s) _exit(11);
  }
  _exit(0);
}

}  // namespace

TEST(KillTest, SigkillAtRandomMomentsNeverLosesOrCorrupts) {
  TempDir tmp;
  Rounds rounds;
  rounds.dir = fs::path(tmp.path()) / "rounds";
  rounds.base = small_otp_images(kModules);
  if (rounds.base.size() < kModules)
    GTEST_SKIP() << "needs " << kModules << " images from an Erlang/OTP installation";
  for (const auto& b : rounds.base) rounds.names.push_back(module_of(b));
  const std::string db = (fs::path(tmp.path()) / "kill.db").string();
  const int kills =
      std::getenv("CODESTORE_KILL_ROUNDS") ? std::atoi(std::getenv("CODESTORE_KILL_ROUNDS")) : 50;

  // Round 0 runs to completion once: it creates the database and tells how long a round takes.
  rounds.write(0);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child(db, rounds, 0, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  const auto round_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();

  std::mt19937_64 rng(std::random_device{}());
  Catalog committed;  // every version seen committed so far
  std::map<std::pair<std::string, std::int64_t>, std::string> old_tags;  // its round
  int next_round = 1;
  int killed_mid_work = 0, finished = 0, partial_rounds_seen = 0;
  std::set<std::string> complete_tags = {Rounds::tag(0)};
  for (int k = 0; k < kills; ++k) {
    constexpr int kAhead = 8;
    for (int r = next_round; r < next_round + kAhead; ++r) rounds.write(r);
    // A moment within about two rounds (round 0 also created the database: an overestimate).
    std::uniform_int_distribution<long> delay(0, 2 * round_us);
    const long wait_us = delay(rng);
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child(db, rounds, next_round, next_round + kAhead - 1);
    std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
    kill(pid, SIGKILL);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      ++killed_mid_work;
    } else {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "the importer failed on its own";
      ++finished;
    }

    const std::string ctx = "after kill " + std::to_string(k + 1);
    auto store = Store::open(db);
    ASSERT_TRUE(store) << ctx << ": " << store.error().to_string();
    Catalog now = check_store(**store, ctx);
    if (::testing::Test::HasFailure()) return;

    // Committed versions are never lost, never change.
    for (const auto& [key, sha] : committed) {
      auto it = now.find(key);
      ASSERT_NE(it, now.end()) << ctx << ": lost committed version " << key.first << "@" << key.second;
      EXPECT_EQ(it->second, sha) << ctx << ": " << key.first << "@" << key.second << " changed";
    }
    // Every stored image is one we imported; count which rounds are present, and how much of each.
    std::map<std::string, std::size_t> per_tag;
    for (const auto& [key, sha] : now) {
      if (auto old = committed.find(key); old != committed.end() && old->second == sha) {
        ++per_tag[old_tags[key]];  // checked when it first appeared; its SHA-256 is unchanged
        continue;
      }
      auto bytes = (*store)->get(key.first, key.second);
      ASSERT_TRUE(bytes) << ctx;
      const std::string tag = tag_of(*bytes);
      auto round = rounds.written.find(tag);
      ASSERT_NE(round, rounds.written.end())
          << ctx << ": " << key.first << "@" << key.second << " has unknown tag " << tag;
      auto mod = round->second.find(key.first);
      ASSERT_NE(mod, round->second.end()) << ctx << ": " << key.first << " is not in " << tag;
      ASSERT_EQ(*bytes, mod->second) << ctx << ": " << key.first << "@" << key.second
                                     << " is not byte-identical";
      ++per_tag[tag];
      old_tags[key] = tag;
    }
    int highest = -1;
    for (const auto& [tag, count] : per_tag) {
      EXPECT_EQ(count, kPerRound) << ctx << ": " << tag << " is partly there (" << count << " of "
                                  << kPerRound << ")";
      if (count != kPerRound) ++partial_rounds_seen;
      highest = std::max(highest, std::atoi(tag.c_str() + 6));
    }
    // Rounds commit in order: every round up to the highest one present is there.
    for (int r = 0; r <= highest; ++r)
      EXPECT_TRUE(per_tag.count(Rounds::tag(r))) << ctx << ": round " << r << " missing";
    // The newest round's modules are active at its versions.
    committed = std::move(now);
    next_round = highest + 1;
    if (::testing::Test::HasFailure()) return;
  }
  std::printf("  round 0 took %ld us\n", static_cast<long>(round_us));
  std::printf("  %d kills: %d mid-work, %d after the child finished; %d rounds committed, %zu versions\n",
              kills, killed_mid_work, finished, next_round, committed.size());
  EXPECT_GT(killed_mid_work, kills / 2) << "most kills should land while the child works";
}

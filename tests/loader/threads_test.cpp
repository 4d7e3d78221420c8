// Threads (docs/code-server.md §5): readers look up current instances and processes call
// and switch while another thread loads, deletes and purges. Run under ThreadSanitizer in
// CI (`ctest -L threads` in a TSan build); here it asserts what every thread saw.
#include <atomic>
#include <mutex>
#include <thread>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

using Threads = LoaderFixture;

TEST_F(Threads, CallsAndLookupsWhileLoadingAndPurging) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  const std::vector<std::vector<std::uint8_t>> images = {bytes("v1/m.beam"), bytes("v2/m.beam"),
                                                         bytes("v3/m.beam")};
  constexpr int kRounds = 300;
  std::atomic<bool> done{false};
  std::atomic<long> kills{0}, calls{0}, lookups{0};
  std::atomic<std::uint64_t> progress{0};  // worker iterations: the writer waits for some each round

  auto worker = [&](int id) {
    std::shared_ptr<Process> p;
    auto respawn = [&] { p = cs->spawn("w" + std::to_string(id), [&](ProcessId) { ++kills; }); };
    respawn();
    for (std::uint64_t i = 0; !done.load(); ++i, ++progress) {
      // A server loop: enter m once, then local calls inside the instance it is in, and
      // now and then a qualified tail call that moves it to the current instance.
      if (p->depth() == 0) {
        auto in = p->call("m", "loop", 0);
        if (!in && in.error().reason() == reason::kKilled) respawn();
        if (!in) continue;
        EXPECT_EQ((*in)->module(), "m");
      }
      auto local = p->local_call();
      if (local) {
        EXPECT_GT((*local)->bytes().size(), 100u);  // readable, whatever the purger does
        ++calls;
        p->ret();
      } else if (local.error().reason() == reason::kKilled) {
        EXPECT_TRUE(p->killed());  // its kill callback runs once the purger drops its lock
        respawn();
        continue;
      }
      if (i % 4 == 0) (void)p->tail_call("m", "switched", 1);
      ReadGuard guard;
      if (const Instance* cur = cs->current(guard, "m")) {
        EXPECT_EQ(cur->module(), "m");
        EXPECT_FALSE(cur->vsn_text().empty());
        ++lookups;
      }
    }
  };
  auto reader = [&] {
    ModuleRef ref = cs->module_ref("m");
    while (!done.load()) {
      ReadGuard guard;
      if (const Instance* cur = ref.current(guard)) {
        EXPECT_EQ(cur->bytes()[0], 'F');  // "FOR1"
        ++lookups;
      }
    }
  };

  std::vector<std::thread> threads;
  threads.emplace_back(worker, 1);
  threads.emplace_back(worker, 2);
  threads.emplace_back(reader);
  for (int i = 0; i < kRounds; ++i) {
    const auto& img = images[i % 3];
    switch (i % 5) {
      case 0: (void)cs->load_binary("m", "m.beam", img); break;  // the three-version rule
      case 1: (void)cs->soft_purge("m"); break;
      case 2:
        (void)cs->load_binary("m", "m.beam", img);
        (void)cs->purge("m");
        break;
      case 3: (void)cs->delete_module("m"); break;  // workers autoload it again
      case 4: (void)cs->load_file("m"); break;
    }
    // Let the workers run between two changes (no timing: wait for their iterations).
    for (auto seen = progress.load(); progress.load() < seen + 4;) std::this_thread::yield();
  }
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(calls.load(), 0);
  EXPECT_GT(lookups.load(), 0);
  EXPECT_GT(kills.load(), 0) << "purges met processes lingering in old code";
  // Whatever happened, the module ends in a consistent state.
  ASSERT_TRUE(cs->load_binary("m", "end", images[0]));
  EXPECT_EQ(cs->is_loaded("m"), "end");
}

// A call takes no lock (loader/process.cpp): it lands in an instance that a purge will
// see, or it sees the load that came first and looks again. Workers tail-call (through the
// export table) and enter while this thread loads (the three-version rule purges) and soft
// purges: whatever a worker holds stays readable (ThreadSanitizer would report a read of
// freed code), and a soft purge that refuses names only processes that are alive.
TEST_F(Threads, TailCallsRaceLoadsAndPurges) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  const std::vector<std::vector<std::uint8_t>> images = {bytes("v1/m.beam"), bytes("v2/m.beam"),
                                                         bytes("v3/m.beam")};
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> progress{0};
  std::atomic<long> kills{0};
  std::vector<std::shared_ptr<Process>> current(2);
  std::mutex current_mutex;  // guards `current`: the workers' processes, for the soft purges

  auto worker = [&](int id) {
    std::shared_ptr<Process> p;
    auto respawn = [&] {
      p = cs->spawn("t" + std::to_string(id), [&](ProcessId) { ++kills; });
      std::lock_guard<std::mutex> lock(current_mutex);
      current[id] = p;
    };
    respawn();
    for (std::uint64_t i = 0; !done.load(); ++i, ++progress) {
      auto in = i % 3 == 0 ? p->enter_module("m", /*tail=*/true) : p->tail_call("m", "switched", 1);
      if (!in) {
        EXPECT_EQ(in.error().reason(), reason::kKilled);
        respawn();
        continue;
      }
      EXPECT_EQ((*in)->bytes()[0], 'F');
      EXPECT_FALSE((*in)->exports().empty());
      EXPECT_LE(p->depth(), 1u) << "a tail call replaces the top frame (0: killed meanwhile)";
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(worker, 0);
  threads.emplace_back(worker, 1);
  // At least 300 rounds, and on until a load has met a worker still in the code it purges:
  // whether one does in any given round is up to the scheduler (7 runs in 30 met none in 300
  // rounds on an idle machine), and a kill is what this test is about.
  for (int round = 0; round < 300 || (kills.load() == 0 && round < 300'000); ++round) {
    (void)cs->load_binary("m", "m.beam", images[round % 3]);
    if (round % 2 == 0) {
      auto soft = cs->soft_purge("m");
      for (ProcessId blocker : soft.blockers) {
        std::lock_guard<std::mutex> lock(current_mutex);
        EXPECT_TRUE(blocker == current[0]->id() || blocker == current[1]->id()) << blocker;
      }
    }
    for (auto seen = progress.load(); progress.load() < seen + 4;) std::this_thread::yield();
  }
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(kills.load(), 0) << "loads met workers lingering in old code";
}

TEST_F(Threads, ManyNamesResolvedWhileTheTableGrows) {
  auto cs = make();
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      ReadGuard guard;
      EXPECT_EQ(cs->current(guard, "m"), nullptr);
      (void)cs->current(guard, "name17");
    }
  });
  std::vector<ModuleRef> refs;
  for (int i = 0; i < 2000; ++i) refs.push_back(cs->module_ref("name" + std::to_string(i)));
  done = true;
  reader.join();
  for (int i = 0; i < 2000; ++i) {
    EXPECT_TRUE(refs[i]);
    ReadGuard guard;
    EXPECT_EQ(refs[i].current(guard), nullptr);
  }
  ModuleRef again = cs->module_ref("name17");
  ReadGuard guard;
  EXPECT_EQ(again.current(guard), refs[17].current(guard));
}

// An instance's MD5 is computed on first use (Instance::md5()); threads asking at once all
// get beam_lib's value, computed once.
TEST_F(Threads, FirstMd5CallsRaceSafely) {
  auto cs = make();
  const auto v2 = bytes("v2/m.beam");
  auto expected = image::Image::parse(v2, image::Strictness::kLenient)->md5();
  ASSERT_TRUE(expected);
  for (int round = 0; round < 50; ++round) {
    ASSERT_TRUE(cs->load_binary("m", "v2/m.beam", v2));
    auto inst = cs->current_shared("m");
    std::atomic<int> ready{0};
    std::vector<image::Md5> seen(4);
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t) {
      pool.emplace_back([&, t] {
        ++ready;
        while (ready.load() < 4) std::this_thread::yield();
        seen[t] = inst->md5();
      });
    }
    for (auto& th : pool) th.join();
    for (const auto& md5 : seen) EXPECT_EQ(md5, *expected);
  }
}

}  // namespace
}  // namespace codestore::loader::testing

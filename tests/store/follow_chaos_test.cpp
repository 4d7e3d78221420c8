// The followers' chaos test (issue 16, "Done when"): 20 followers of one store on PostgreSQL,
// 500 generations committed while a loop terminates the followers' listening sessions
// (pg_terminate_backend) and PostgreSQL is restarted twice, as a crash would. Every follower must
// end with the same generations and blobs as PostgreSQL, each generation applied exactly once
// and in order (none skipped, none twice). Announcements and reconnects alone must get them
// there: the followers' timer is set beyond the test's length.
//
// On a PostgreSQL of its own (PgServer::start in a directory of this test's), since it restarts
// it. Generations are small (one module image each; every tenth a rollback, no new blob) so that
// the test stays well under a minute on two cores.
#include <codestore/follow.h>
#include <codestore/store.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "follow_test_util.h"
#include "store_test_util.h"
#include "support/pg_server.h"

namespace codestore {
namespace {

using namespace store_testing;
namespace fs = std::filesystem;

constexpr int kFollowers = 20;
constexpr std::int64_t kGenerations = 500;

class FollowChaos : public BackendTest {};
INSTANTIATE_TEST_SUITE_P(Backends, FollowChaos, ::testing::Values(Backend::kPostgresql), backend_name);

// A server directory of this test's under /tmp (its socket path stays short, and every parent is
// searchable by the server's user), stopped and removed at the end, also when the test fails.
struct PrivateServer {
  fs::path dir;
  PrivateServer() {
    char name[] = "/tmp/cs-chaos-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp");
    dir = name;
    ::chmod(name, 0755);
    testing::PgServer::start(dir);
  }
  ~PrivateServer() { testing::PgServer::stop(dir); }
};

TEST_P(FollowChaos, TwentyFollowersEndEqualToThePrimaryThroughTerminationsAndRestarts) {
  PrivateServer server;
  TempDir dir;
  const std::string uri = testing::pg_uri_in(server.dir.string(), "codestore_template");

  struct Tracked {
    std::mutex m;
    std::vector<std::int64_t> applied;
    std::unique_ptr<Follower> follower;
    Status result;
    std::thread thread;
  };
  std::vector<Tracked> followers(kFollowers);
  std::atomic<bool> stop{false};
  for (int i = 0; i < kFollowers; ++i) {
    auto& t = followers[static_cast<std::size_t>(i)];
    FollowOptions o;
    o.poll = std::chrono::minutes(10);
    o.backoff_min = std::chrono::milliseconds(20);
    o.backoff_max = std::chrono::milliseconds(500);
    o.applied = [&t](std::string_view, std::int64_t k) {
      std::lock_guard lock(t.m);
      t.applied.push_back(k);
    };
    auto f = Follower::open(uri, dir / ("r" + std::to_string(i) + ".db"), o);
    ASSERT_TRUE(f) << f.error().to_string();
    t.follower = std::move(*f);
    t.thread = std::thread([&t, &stop] { t.result = t.follower->run(stop); });
  }

  // The writer: one generation at a time until the channel has kGenerations, through restarts
  // (an import that fails is retried on a new connection; the count is the primary's).
  std::atomic<std::int64_t> committed{0};
  std::atomic<bool> written{false};
  std::thread writer([&] {
    std::unique_ptr<Store> store;
    int n = 0;
    while (committed.load() < kGenerations) {
      if (!store) {
        auto s = Store::open(uri, {});
        if (!s) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        store = std::move(*s);
      }
      ++n;
      const bool ok = n % 10 == 0 ? store->rollback("hello").has_value()
                                  : store->import(variant("hello.beam", n), "chaos").has_value();
      if (!ok) {
        store.reset();
        continue;
      }
      auto ch = store->channel_generation("default");
      if (!ch) {
        store.reset();
        continue;
      }
      committed = ch->number;
    }
    written = true;
  });

  // The chaos: listening sessions terminated every few milliseconds; two restarts as crashes.
  std::size_t terminated = 0;
  int restarts = 0;
  while (!written.load()) {
    try {
      terminated += terminate_listeners("codestore_template", server.dir.string());
    } catch (const std::exception&) {  // the server is restarting
    }
    if ((restarts == 0 && committed.load() >= kGenerations / 3) ||
        (restarts == 1 && committed.load() >= 2 * kGenerations / 3)) {
      testing::PgServer::restart(server.dir);
      ++restarts;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  writer.join();
  EXPECT_EQ(restarts, 2);
  EXPECT_GT(terminated, 0u);

  const auto head = testing::pg_rows(uri, "SELECT generation FROM channels WHERE name = 'default'");
  ASSERT_EQ(head.size(), 1u);
  const std::int64_t generation = std::stoll(head[0]);
  ASSERT_GE(generation, kGenerations);
  for (int i = 0; i < kFollowers; ++i) {
    const std::string replica = dir / ("r" + std::to_string(i) + ".db");
    EXPECT_TRUE(eventually([&] { return applied_generation(replica, "default") == generation; }))
        << "follower " << i << " stopped at " << applied_generation(replica, "default");
  }
  stop = true;
  for (auto& t : followers) t.thread.join();

  std::vector<std::int64_t> every;
  for (std::int64_t k = 1; k <= generation; ++k) every.push_back(k);
  for (int i = 0; i < kFollowers; ++i) {
    auto& t = followers[static_cast<std::size_t>(i)];
    EXPECT_TRUE(t.result) << t.result.to_string();
    EXPECT_EQ(t.applied, every) << "follower " << i << ": each generation once, in order";
    expect_replica_equal(uri, dir / ("r" + std::to_string(i) + ".db"));
  }
}

}  // namespace
}  // namespace codestore

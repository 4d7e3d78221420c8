// bench_follow (issue 16 item 2): how soon a follower serves what was committed on PostgreSQL,
// and a get from a follower's replica next to the same get from a plain SQLite store, in one run.
//
//   bench_follow [--generations N]
//
// Starts its own PostgreSQL (tests/support/pg_server.h: fsync on, commits not waited for, as
// bench_postgresql). Each generation is one import of 100 real modules (distinct .beam files of
// the corpus, /usr/lib/erlang/lib) into the primary. A follower runs (Follower::run, listening);
// the latency is from the import's return (its commit) to the moment a reader of the replica
// (a Store open on it, as `serve` has) reads the generation's last module: median and max.
// Then every module is read from the replica and from a SQLite store that imported the same
// files (Store::get of the active version, all of them, several passes each): medians per get.
#include <codestore/follow.h>
#include <codestore/store.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "support/pg_server.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string server_dir;

void stop_server() {
  if (!server_dir.empty()) codestore::testing::PgServer::stop(server_dir);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_follow: %s\n", what.c_str());
  std::exit(1);
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Per-get time of reading every module's active version, `passes` times, from `store`.
double get_seconds(codestore::Store& store, const std::vector<std::string>& modules, int passes) {
  std::vector<double> per;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = Clock::now();
    for (const auto& m : modules) {
      auto r = store.active(m);
      if (!r) die("get " + m + " from " + store.path() + ": " + r.error().to_string());
    }
    per.push_back(seconds(Clock::now() - t0) / static_cast<double>(modules.size()));
  }
  return codestore::bench::median(per);
}

}  // namespace

int main(int argc, char** argv) {
  int generations = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--generations" && i + 1 < argc) {
      generations = std::max(1, std::atoi(argv[++i]));
    } else {
      die("usage: bench_follow [--generations N]");
    }
  }
  // Batches of 100 files with distinct module names (a module appears in one batch only).
  std::vector<std::vector<std::string>> batches;
  {
    std::set<std::string> seen;
    std::vector<std::string> batch;
    for (const auto& f : codestore::bench::real_images()) {
      if (!seen.insert(fs::path(f).filename().string()).second) continue;
      batch.push_back(f);
      if (batch.size() == 100) {
        batches.push_back(std::move(batch));
        batch.clear();
        if (static_cast<int>(batches.size()) == generations) break;
      }
    }
  }
  if (batches.empty()) die("fewer than 100 distinct images under /usr/lib/erlang/lib");
  generations = static_cast<int>(batches.size());

  char tmpl[] = "/tmp/csfollow-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
  server_dir = tmpl;
  std::atexit(stop_server);
  try {
    codestore::testing::PgServer::start(server_dir, /*durable=*/true);
  } catch (const std::exception& e) {
    die(e.what());
  }
  const std::string uri = codestore::testing::pg_uri_in(server_dir, "codestore_template");
  codestore::bench::TempDir dir;
  const std::string replica = dir / "replica.db";
  const std::string plain = dir / "plain.db";

  auto primary = codestore::Store::open(uri, {});
  if (!primary) die(primary.error().to_string());
  std::mutex m;
  std::condition_variable cv;
  std::int64_t applied = 0;
  codestore::FollowOptions o;
  o.applied = [&](std::string_view, std::int64_t k) {
    std::lock_guard lock(m);
    applied = k;
    cv.notify_all();
  };
  auto follower = codestore::Follower::open(uri, replica, o);
  if (!follower) die(follower.error().to_string());
  std::atomic<bool> stop{false};
  std::thread runner([&] { static_cast<void>((*follower)->run(stop)); });
  auto reader = codestore::Store::open(replica, {});
  if (!reader) die(reader.error().to_string());

  std::vector<double> latency, commit;
  std::vector<std::string> modules;
  for (const auto& batch : batches) {
    const auto t0 = Clock::now();
    auto s = (*primary)->import_tree(batch, {});
    const auto committed = Clock::now();
    if (!s) die("import: " + s.error().to_string());
    auto ch = (*primary)->channel_generation("default");
    if (!ch) die(ch.error().to_string());
    const std::int64_t k = ch->number;
    {
      std::unique_lock lock(m);
      if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return applied >= k; }))
        die("the follower did not apply generation " + std::to_string(k) + " within 30 s");
    }
    const std::string last = s->items.back().module;
    auto got = (*reader)->active(last);
    if (!got) die("replica: " + got.error().to_string());
    latency.push_back(seconds(Clock::now() - committed));
    commit.push_back(seconds(committed - t0));
    for (const auto& item : s->items) modules.push_back(item.module);
  }
  stop = true;
  runner.join();

  auto sqlite = codestore::Store::open(plain, {});
  if (!sqlite) die(sqlite.error().to_string());
  for (const auto& batch : batches) {
    auto s = (*sqlite)->import_tree(batch, {});
    if (!s) die("import into SQLite: " + s.error().to_string());
  }
  // Alternate the two, several rounds: the machine is shared and noisy.
  std::vector<double> from_replica, from_sqlite;
  for (int round = 0; round < 5; ++round) {
    from_replica.push_back(get_seconds(**reader, modules, 3));
    from_sqlite.push_back(get_seconds(**sqlite, modules, 3));
  }
  const auto t = (*follower)->totals();
  std::printf("bench_follow: %d generations of 100 modules (real .beam files), PostgreSQL %s\n", generations,
              server_dir.c_str());
  std::printf("  commit on PostgreSQL (import_tree of 100 files): median %.3f s\n",
              codestore::bench::median(commit));
  std::printf(
      "  commit -> replica serves the generation: median %.3f s, max %.3f s (target <= 0.5 s median)\n",
      codestore::bench::median(latency), *std::max_element(latency.begin(), latency.end()));
  std::printf("  follower fetched %llu blobs (%llu bytes), %llu present\n",
              static_cast<unsigned long long>(t.blobs_fetched),
              static_cast<unsigned long long>(t.bytes_fetched),
              static_cast<unsigned long long>(t.blobs_present));
  const double r = codestore::bench::median(from_replica), q = codestore::bench::median(from_sqlite);
  std::printf(
      "  get (active version, %zu modules): replica %.2f us, plain SQLite store %.2f us: ratio %.2f\n",
      modules.size(), r * 1e6, q * 1e6, r / q);
  return 0;
}

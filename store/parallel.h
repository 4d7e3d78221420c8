// An ordered pipeline over both cores: worker threads compute item i (validate, hash,
// compress) while the calling thread consumes items in index order (the SQLite inserts,
// which must stay on the one connection). Import of the OTP corpus is bound by zstd and
// validation, not by SQLite (SQLite alone inserts about twice as fast), so two workers keep the
// inserting thread fed.
//
// Thread safety: `work` runs on worker threads, concurrently for distinct indexes, with its
// own per-worker state; `consume` runs on the calling thread only.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace codestore::store_internal {

// State: per-worker scratch (zstd contexts), default-constructed in each worker.
// consume returns false (or throws) to stop early: the workers finish their current item and stop.
template <typename Out, typename State>
void parallel_ordered(std::size_t n, const std::function<Out(std::size_t, State&)>& work,
                      const std::function<bool(std::size_t, Out&)>& consume, unsigned threads = 0) {
  if (threads == 0) threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(n, 1)));
  std::vector<std::optional<Out>> slots(n);
  std::mutex mutex;
  std::condition_variable ready;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  // Joins on every exit, also when `consume` throws (a SQLite error mid-batch).
  struct Joiner {
    std::vector<std::thread>& threads;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop.store(true);
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{workers, stop};
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      State state;
      for (;;) {
        const std::size_t i = next.fetch_add(1);
        if (i >= n || stop.load()) return;
        Out out = work(i, state);
        {
          std::lock_guard lock(mutex);
          slots[i].emplace(std::move(out));
        }
        ready.notify_all();
      }
    });
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::unique_lock lock(mutex);
    ready.wait(lock, [&] { return slots[i].has_value(); });
    Out out = std::move(*slots[i]);
    slots[i].reset();
    lock.unlock();
    if (!consume(i, out)) break;
  }
}

}  // namespace codestore::store_internal

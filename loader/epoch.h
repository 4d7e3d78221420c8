// Epoch-based reclamation for the code server's lock-free readers (docs/code-server.md §5).
//
// A reader pins its thread (ReadGuard) before it loads a pointer to an instance and unpins
// after its last use. A writer that has unlinked an object retires it; the object is freed
// once every thread pinned at the moment it was retired has unpinned. Pinning is one atomic
// exchange on a line the thread owns; nothing shared is counted.
//
// Records are written on every pin, so each owns its cache lines (kCacheLinePair): heap
// neighbours would otherwise be written by two threads at once (a record of 24 bytes
// shares its line with whatever the allocator put next to it, another thread's record or
// frames), and the line would move between cores on every lookup.
//
// Thread safety: EpochDomain is safe for concurrent use. `retired_mutex_` guards `retired_`;
// the epoch and the records are atomics. A Record belongs to one thread at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace codestore::loader::detail {

// Two lines: x86's spatial prefetcher fetches lines in pairs, so writers one line apart
// still slow each other down.
inline constexpr std::size_t kCacheLinePair = 128;

class EpochDomain {
 public:
  struct alignas(kCacheLinePair) Record {
    std::atomic<std::uint64_t> pinned{0};  // 0 = not pinned, else the epoch seen at pinning
    std::atomic<bool> in_use{true};        // owned by a live thread
    std::uint32_t depth = 0;               // nesting, touched only by the owning thread
    Record* next = nullptr;                // immutable once published
  };

  // The process-wide domain (never destroyed: threads may exit after static destruction).
  static EpochDomain& global();

  // The calling thread's record (made or reused on first use).
  Record* thread_record();
  void pin(Record* record) noexcept;
  void unpin(Record* record) noexcept;

  // Frees `object` (drops this reference) once no thread pinned now can still see it.
  void retire(std::shared_ptr<const void> object);
  // Frees whatever retired objects are now safe to free.
  void reclaim();

 private:
  std::uint64_t min_pinned() const;

  std::atomic<std::uint64_t> epoch_{1};
  std::atomic<Record*> records_{nullptr};  // a push-only list; records are reused, never freed
  std::mutex retired_mutex_;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const void>>> retired_;  // guarded by retired_mutex_
};

}  // namespace codestore::loader::detail

// The code server's private state, shared by code_server.cpp and process.cpp.
#pragma once

#include <codestore/code_server.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "code_path.h"

namespace codestore::loader::detail {

// One module name's slot. Created on first use, never freed before the code server.
struct ModuleEntry : ModuleSlotHead {
  std::string name;
  std::size_t hash = 0;
  // Writer side, guarded by CodeServer::Impl::mutex. `current` (the atomic in the head)
  // always equals cur.get().
  std::shared_ptr<Instance> cur;
  std::shared_ptr<Instance> old;
  bool known = false;  // ever loaded: delete_module answers true without code (OTP)
};

// An open-addressing table from name to slot that only grows. Readers probe it without a
// lock; a writer inserts into an empty cell (release) or publishes a bigger copy. Old
// tables stay alive until the code server dies (they only add up to the newest one's size).
struct NameTable {
  explicit NameTable(std::size_t capacity)
      : mask(capacity - 1), cells(new std::atomic<ModuleEntry*>[capacity]) {
    for (std::size_t i = 0; i < capacity; ++i) cells[i].store(nullptr, std::memory_order_relaxed);
  }
  std::size_t mask;
  std::unique_ptr<std::atomic<ModuleEntry*>[]> cells;
  std::size_t used = 0;  // writer only
};

inline std::size_t hash_name(std::string_view name) noexcept {
  // Eight bytes at a time (module names are 5–30 bytes): a multiply and a shift per word.
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = name.size() * kMul;
  const char* p = name.data();
  std::size_t n = name.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (n != 0) {
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < n; ++i)
      w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  return static_cast<std::size_t>(h ^ (h >> 32));
}

}  // namespace codestore::loader::detail

namespace codestore::loader {

// Kill callbacks collected under the lock and run after it is released.
using PendingKills = std::vector<std::pair<KillCallback, ProcessId>>;

struct CodeServer::Impl {
  explicit Impl(Options opts) : options(std::move(opts)), path(options.libs.get()) {}

  Options options;

  mutable std::mutex mutex;
  detail::CodePath path;                                     // guarded by mutex
  std::set<std::string, std::less<>> sticky;                 // guarded by mutex
  std::deque<std::unique_ptr<detail::ModuleEntry>> entries;  // guarded by mutex
  std::vector<std::unique_ptr<detail::NameTable>> tables;    // guarded by mutex
  std::atomic<detail::NameTable*> table{nullptr};            // readers: lock-free
  std::vector<std::weak_ptr<Process>> processes;             // guarded by mutex
  ProcessId next_pid = 1;                                    // guarded by mutex
  std::uint64_t next_serial = 1;                             // guarded by mutex

  // Lock-free.
  detail::ModuleEntry* find(std::string_view name) const noexcept {
    std::size_t h = detail::hash_name(name);
    const detail::NameTable* t = table.load(std::memory_order_acquire);
    for (std::size_t i = h & t->mask;; i = (i + 1) & t->mask) {
      detail::ModuleEntry* e = t->cells[i].load(std::memory_order_acquire);
      if (e == nullptr) return nullptr;
      if (e->hash == h && e->name == name) return e;
    }
  }
  const Instance* lookup_current(std::string_view name) const noexcept {
    const detail::ModuleEntry* e = find(name);
    return e == nullptr ? nullptr : e->current.load(std::memory_order_acquire);
  }

  // REQUIRES: mutex held.
  detail::ModuleEntry* find_or_add(std::string_view name);
  std::vector<std::shared_ptr<Process>> live_processes();
};

}  // namespace codestore::loader

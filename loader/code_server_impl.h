// The code server's private state, shared by code_server.cpp and process.cpp: the module
// table, and the state behind the public Instance and Process classes.
#pragma once

#include <codestore/code_server.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "code_path.h"
#include "epoch.h"

namespace codestore::loader::detail {

// A loader failure with Erlang's `reason` (a reason:: constant) and the code that reason
// has (docs/code-server.md "Errors"); `message` says what and where, for people.
Status load_error(std::string_view reason, std::string message);

// One M:F/A a call has named, as OTP's export table has: the instance a fully qualified
// call of it enters, so that a call finds it with one probe. Made on the first call of the
// name (under the writer lock), never freed before the code server.
struct ExportEntry {
  std::size_t hash = 0;
  // M's current instance when it exports F/A, else nullptr. Stored (seq_cst) with the
  // module's `current`, before any purge of the instance it replaces.
  std::atomic<const Instance*> current{nullptr};
  std::uint32_t arity = 0;
  std::string module;
  std::string function;
};

// One module name's slot. Created on first use, never freed before the code server.
struct ModuleEntry : ModuleSlotHead {
  std::string name;
  std::size_t hash = 0;
  // Writer side, guarded by CodeServer::Impl::mutex. `current` (the atomic in the head)
  // always equals cur.get().
  std::shared_ptr<Instance> cur;
  std::shared_ptr<Instance> old;
  bool known = false;                 // ever loaded: delete_module answers true without code (OTP)
  std::vector<ExportEntry*> exports;  // this module's export entries
};

// An open-addressing set of entries (each with its `hash`) that only grows. Readers probe
// it without a lock; a writer inserts into an empty cell (release) or publishes a bigger
// copy. Old cell arrays stay alive until the table dies (they only add up to the newest
// one's size).
template <class Entry>
class GrowOnlyTable {
 public:
  GrowOnlyTable() {
    all_.push_back(std::make_unique<Cells>(64));
    cells_.store(all_.back().get(), std::memory_order_release);
  }

  // Lock-free. `match(entry)` tells the entry with this hash apart.
  template <class Match>
  Entry* find(std::size_t hash, const Match& match) const noexcept {
    const Cells* t = cells_.load(std::memory_order_acquire);
    for (std::size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      Entry* e = t->cells[i].load(std::memory_order_acquire);
      if (e == nullptr) return nullptr;
      if (e->hash == hash && match(*e)) return e;
    }
  }

  // REQUIRES: the writer lock; `entry` not in the table.
  void insert(Entry* entry) {
    Cells* t = cells_.load(std::memory_order_relaxed);
    if ((t->used + 1) * 2 > t->mask + 1) {  // keep the load factor at most 1/2
      auto bigger = std::make_unique<Cells>((t->mask + 1) * 2);
      for (std::size_t i = 0; i <= t->mask; ++i) {
        if (Entry* e = t->cells[i].load(std::memory_order_relaxed)) bigger->add(e);
      }
      t = bigger.get();
      all_.push_back(std::move(bigger));
      cells_.store(t, std::memory_order_release);
    }
    t->add(entry);
  }

 private:
  struct Cells {
    explicit Cells(std::size_t capacity) : mask(capacity - 1), cells(new std::atomic<Entry*>[capacity]) {
      for (std::size_t i = 0; i < capacity; ++i) cells[i].store(nullptr, std::memory_order_relaxed);
    }
    void add(Entry* e) {
      std::size_t i = e->hash & mask;
      while (cells[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & mask;
      cells[i].store(e, std::memory_order_release);
      ++used;
    }
    std::size_t mask;
    std::unique_ptr<std::atomic<Entry*>[]> cells;
    std::size_t used = 0;  // writer only
  };
  std::vector<std::unique_ptr<Cells>> all_;  // guarded by the writer lock
  std::atomic<Cells*> cells_{nullptr};
};

// Unaligned loads of a name's bytes (names are 5–30 bytes; a call hashes and compares two).
inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
inline std::uint32_t load32(const char* p) noexcept {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// The last bytes of a name after its whole words, read as one word: overlapping loads
// rather than a loop over the bytes. REQUIRES: 0 < n, and n < 8 unless `size` >= 8.
inline std::uint64_t tail_word(const char* begin, std::size_t size, std::size_t n) noexcept {
  const char* end = begin + size;
  if (size >= 8) return load64(end - 8);
  if (n >= 4) return load32(begin) | (static_cast<std::uint64_t>(load32(end - 4)) << 32);
  return static_cast<unsigned char>(begin[0]) |
         (static_cast<std::uint64_t>(static_cast<unsigned char>(begin[n / 2])) << 8) |
         (static_cast<std::uint64_t>(static_cast<unsigned char>(end[-1])) << 16);
}

inline std::size_t hash_name(std::string_view name) noexcept {
  // Eight bytes at a time: a multiply and a shift per word. The length is mixed in first,
  // so the overlapping tail tells names of different lengths apart.
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = name.size() * kMul;
  const char* p = name.data();
  std::size_t n = name.size();
  for (; n >= 8; p += 8, n -= 8) {
    h = (h ^ load64(p)) * kMul;
    h ^= h >> 29;
  }
  if (n != 0) {
    h = (h ^ tail_word(name.data(), name.size(), n)) * kMul;
    h ^= h >> 29;
  }
  return static_cast<std::size_t>(h ^ (h >> 32));
}

// Name equality without a call to memcmp (the call path compares a module and a function
// name on every call).
inline bool same_name(std::string_view a, std::string_view b) noexcept {
  const std::size_t size = a.size();
  if (size != b.size()) return false;
  if (size >= 8) {
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      if (load64(a.data() + i) != load64(b.data() + i)) return false;
    }
    return i == size || load64(a.data() + size - 8) == load64(b.data() + size - 8);
  }
  if (size >= 4) {
    return load32(a.data()) == load32(b.data()) && load32(a.data() + size - 4) == load32(b.data() + size - 4);
  }
  for (std::size_t i = 0; i < size; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

inline std::size_t hash_export(std::string_view module, std::string_view function,
                               std::uint32_t arity) noexcept {
  std::size_t h = hash_name(module) * 31 + hash_name(function);
  return h ^ (static_cast<std::size_t>(arity) * 0x9E3779B97F4A7C15ull);
}

// Test only (tests/loader/call_protocol_test.cpp): the steps of a call between which a
// load, purge or delete on another thread must be safe (loader/process.cpp), and a reader
// finding a tentative frame. The test sets the hook to run such an operation exactly
// there; null otherwise, so each step costs one load and a branch not taken.
enum class CallStep { kLooked, kPublished, kChecked, kReaderWaits };
inline std::atomic<void (*)(CallStep)> call_step_hook{nullptr};
inline void at_call_step(CallStep step) {
  if (auto* hook = call_step_hook.load(std::memory_order_relaxed)) [[unlikely]]
    hook(step);
}

// What an Instance is: the public class shows no fields; every instance the code server
// makes is an InstanceImpl (Instance's functions downcast to it).
struct InstanceImpl final : Instance {
  explicit InstanceImpl(image::Image image) : image_(std::move(image)) {}
  static const InstanceImpl& of(const Instance& instance) {
    return static_cast<const InstanceImpl&>(instance);
  }
  static InstanceImpl& of(Instance& instance) { return static_cast<InstanceImpl&>(instance); }

  std::string module_;
  std::string origin_;
  mutable std::once_flag md5_once_;
  mutable image::Md5 md5_{};  // written once, under md5_once_
  etf::Term vsn_;
  bool has_vsn_ = false;
  std::string vsn_text_;
  std::vector<image::Function> exports_;  // sorted by (name, arity): image::Image::exports
  image::Image image_;
  bool has_on_load_ = false;
  std::uint64_t serial_ = 0;  // set by install, before the instance is published
};

// A process's frames. Only the thread running the process writes them; a purge's scan and
// the queries read them from other threads, without a lock (docs/code-server.md §5).
//
// A frame is a slot holding an instance pointer. Slots live in segments that are never
// moved or freed while the process lives (segment 0 inline, segment k >= 1 of kInline << k
// slots), so a reader never meets a reallocated array. A slot whose low bit is set is
// *tentative*: the owner has published it and is checking that its instance is still
// current; readers wait until the owner confirms it or takes it back (a few instructions,
// no lock, no allocation in between).
class FrameStack {
 public:
  static constexpr std::uintptr_t kTentative = 1;
  static constexpr std::size_t kInline = 16;
  static constexpr int kSegments = 40;

  FrameStack() {
    for (auto& s : inline_) s.store(0, std::memory_order_relaxed);
    for (auto& s : segments_) s.store(nullptr, std::memory_order_relaxed);
  }
  ~FrameStack() {
    for (int k = 1; k < kSegments; ++k) delete[] segments_[k].load(std::memory_order_relaxed);
  }
  FrameStack(const FrameStack&) = delete;
  FrameStack& operator=(const FrameStack&) = delete;

  std::atomic<std::size_t>& depth() { return depth_; }
  const std::atomic<std::size_t>& depth() const { return depth_; }

  // The slot of frame `i`; REQUIRES: i < depth (or the owner, who makes the segment first).
  std::atomic<std::uintptr_t>& slot(std::size_t i) const {
    if (i < kInline) return inline_[i];
    auto [k, offset] = locate(i);
    return segments_[k].load(std::memory_order_acquire)[offset];
  }
  // Owner only: the slot for frame `i`, its segment made if needed (before it is published).
  std::atomic<std::uintptr_t>& slot_for_write(std::size_t i) {
    if (i < kInline) return inline_[i];
    auto [k, offset] = locate(i);
    std::atomic<std::uintptr_t>* segment = segments_[k].load(std::memory_order_relaxed);
    if (segment == nullptr) {
      segment = new std::atomic<std::uintptr_t>[kInline << k];
      for (std::size_t j = 0; j < (kInline << k); ++j) segment[j].store(0, std::memory_order_relaxed);
      segments_[k].store(segment, std::memory_order_release);
    }
    return segment[offset];
  }

  // Another thread's view of frame `i`: waits out a tentative slot (the owner resolves it
  // without blocking). 0 when the frame was taken back meanwhile.
  const Instance* settled(std::size_t i) const {
    std::uintptr_t v = slot(i).load(std::memory_order_seq_cst);
    while ((v & kTentative) != 0) {
      at_call_step(CallStep::kReaderWaits);
      std::this_thread::yield();
      v = slot(i).load(std::memory_order_seq_cst);
    }
    // A frame slot holds an Instance pointer with a tag bit (kTentative) in an atomic word:
    // the tag must live in the same word as the pointer for one atomic store to publish both.
    return reinterpret_cast<const Instance*>(v);  // NOLINT(performance-no-int-to-ptr)
  }

 private:
  // Segment k >= 1 holds frames [kInline * (2^k - 1), kInline * (2^(k+1) - 1)).
  static std::pair<int, std::size_t> locate(std::size_t i) {
    const std::size_t block = i / kInline + 1;
    const int k = static_cast<int>(std::bit_width(block)) - 1;
    return {k, i - kInline * ((std::size_t{1} << k) - 1)};
  }

  std::atomic<std::size_t> depth_{0};
  mutable std::atomic<std::uintptr_t> inline_[kInline];
  mutable std::atomic<std::atomic<std::uintptr_t>*> segments_[kSegments];  // [0] unused
};

// What a Process is. Each owns its cache lines: a call writes the frames on every call, and
// a heap neighbour written by another thread (another process's frames, a ReadGuard record)
// would make the line move between cores (docs/code-server.md §5).
class alignas(kCacheLinePair) ProcessImpl final : public Process {
 public:
  enum class State : std::uint8_t { kRunning, kKilled, kExited };

  ProcessImpl(CodeServer* server, CodeServer::Impl* impl, ProcessId id, std::string name,
              KillCallback on_kill)
      : server_(server), impl_(impl), id_(id), name_(std::move(name)), on_kill_(std::move(on_kill)) {}
  static const ProcessImpl& of(const Process& p) { return static_cast<const ProcessImpl&>(p); }
  static ProcessImpl& of(Process& p) { return static_cast<ProcessImpl&>(p); }

  struct Callee {
    std::string_view function;
    std::uint32_t arity;
  };
  // A fully qualified call M:F/A (with `tail`, it replaces the top frame).
  Result<const Instance*> call(std::string_view module, std::string_view function, std::uint32_t arity,
                               bool tail);
  // `callee` nullptr: any code of the module will do (enter_module). The general path: a
  // call comes here when its M:F/A has no export entry yet, or the entry has no instance.
  [[gnu::noinline]] Result<const Instance*> enter(std::string_view module, const Callee* callee, bool tail);
  Result<const Instance*> local_call();
  void ret();
  void exit();

  State state() const { return state_.load(std::memory_order_seq_cst); }
  const Instance* top() const;
  std::size_t depth() const;
  bool in_instance(const Instance* instance) const;

  enum class Attempt { kEntered, kMoved, kNotExported, kEnded };
  Attempt attempt(const std::atomic<const Instance*>& current, const Instance* inst, const Callee* callee,
                  bool tail);

  // The purge's side, REQUIRES: the code server's writer lock; `instance` not current.
  // Kills the process if it is running: later calls fail, and every instance its frames
  // reach is kept alive by this object (released_) until the host's thread has noticed.
  // False when it had ended meanwhile.
  bool kill();

  ProcessId id() const { return id_; }
  const std::string& name() const { return name_; }
  const KillCallback& on_kill() const { return on_kill_; }

 private:
  CodeServer* const server_;
  CodeServer::Impl* const impl_;
  const ProcessId id_;
  const std::string name_;
  const KillCallback on_kill_;
  std::atomic<State> state_{State::kRunning};
  FrameStack frames_;
  std::vector<std::shared_ptr<const Instance>> released_;  // guarded by the writer lock
};

}  // namespace codestore::loader::detail

namespace codestore::loader {

// Kill callbacks collected under the lock and run after it is released.
using PendingKills = std::vector<std::pair<KillCallback, ProcessId>>;

struct CodeServer::Impl {
  explicit Impl(Options opts) : options(std::move(opts)), path(options.libs.get()) {}

  Options options;

  mutable std::mutex mutex;
  detail::CodePath path;                                            // guarded by mutex
  std::set<std::string, std::less<>> sticky;                        // guarded by mutex
  std::deque<std::unique_ptr<detail::ModuleEntry>> entries;         // guarded by mutex
  detail::GrowOnlyTable<detail::ModuleEntry> names;                 // readers: lock-free
  std::deque<std::unique_ptr<detail::ExportEntry>> export_entries;  // guarded by mutex
  detail::GrowOnlyTable<detail::ExportEntry> exports;               // readers: lock-free
  std::vector<std::weak_ptr<Process>> processes;                    // guarded by mutex
  ProcessId next_pid = 1;                                           // guarded by mutex
  std::uint64_t next_serial = 1;                                    // guarded by mutex

  // Lock-free.
  detail::ModuleEntry* find(std::string_view name) const noexcept {
    return names.find(detail::hash_name(name),
                      [name](const detail::ModuleEntry& e) { return detail::same_name(e.name, name); });
  }
  detail::ExportEntry* find_export(std::size_t hash, std::string_view module, std::string_view function,
                                   std::uint32_t arity) const noexcept {
    return exports.find(hash, [&](const detail::ExportEntry& e) {
      return e.arity == arity && detail::same_name(e.function, function) &&
             detail::same_name(e.module, module);
    });
  }
  const Instance* lookup_current(std::string_view name) const noexcept {
    const detail::ModuleEntry* e = find(name);
    return e == nullptr ? nullptr : e->current.load(std::memory_order_acquire);
  }

  // REQUIRES: mutex held.
  detail::ModuleEntry* find_or_add(std::string_view name);
  detail::ExportEntry* find_or_add_export(std::string_view module, std::string_view function,
                                          std::uint32_t arity);
  // Makes `instance` (or nullptr) the module's current code, for lookups and for calls.
  static void set_current(detail::ModuleEntry& entry, const Instance* instance);
  std::vector<std::shared_ptr<Process>> live_processes();
};

}  // namespace codestore::loader

// Processes: the call path (docs/code-server.md §5). A call takes no lock and writes only
// the process's own frames; a purge finds who lingers by reading them.
//
// Why a purge never misses a process in old code: a purge runs under the writer lock after
// the instance stopped being current (install and delete_module store `current` with
// seq_cst), and reads the frames with seq_cst loads. A call publishes its frame (seq_cst),
// then looks at `current` again (seq_cst). In the single order of seq_cst operations either
// the call's second look comes after the change (it sees another instance, takes the frame
// back and looks the module up again) or its frame comes before the purge's reads (the
// purge sees it, waiting while it is tentative). Until the second look the call does not
// touch the instance: it may have been freed already. A kill works the same way with the
// process's state in place of `current`.
#include <codestore/code_server.h>

#include "code_server_impl.h"

namespace codestore::loader {

using detail::ProcessImpl;

namespace {
// Off the call path's fast lane: a failed call builds its Status here.
[[gnu::cold, gnu::noinline]] tl::unexpected<Status> call_error(std::string_view reason, std::string message) {
  return tl::unexpected<Status>(detail::load_error(reason, std::move(message)));
}

[[gnu::cold, gnu::noinline]] tl::unexpected<Status> undef(std::string_view module,
                                                          const ProcessImpl::Callee* callee) {
  std::string what(module);
  if (callee != nullptr) what += ":" + std::string(callee->function) + "/" + std::to_string(callee->arity);
  return call_error(reason::kUndef, what + " is undefined");
}

std::uintptr_t bits(const Instance* instance) {
  return reinterpret_cast<std::uintptr_t>(instance);
}
}  // namespace

namespace detail {

// The owner's answer once the process has ended; a killed process drops its frames here
// (the purge that killed it holds their instances: ProcessImpl::kill).
static Result<const Instance*> ended(FrameStack& frames, ProcessImpl::State state) {
  frames.depth().store(0, std::memory_order_release);
  return state == ProcessImpl::State::kKilled
             ? call_error(reason::kKilled, "the process was killed by a purge")
             : call_error(reason::kExited, "the process has exited");
}

// Pushes a frame in `inst`, which `current` held a moment ago (or makes it the top frame,
// with `tail` and a frame to replace). With `callee`, F/A must be exported too.
inline ProcessImpl::Attempt ProcessImpl::attempt(const std::atomic<const Instance*>& current,
                                                 const Instance* inst, const Callee* callee, bool tail) {
  at_call_step(CallStep::kLooked);  // test hook (code_server_impl.h)
  const std::size_t depth = frames_.depth().load(std::memory_order_relaxed);
  const bool replace = tail && depth != 0;
  const std::size_t at = replace ? depth - 1 : depth;
  std::atomic<std::uintptr_t>& slot = frames_.slot_for_write(at);
  const std::uintptr_t previous = slot.load(std::memory_order_relaxed);
  // Publish the frame, tentative, then look again (the file comment says why).
  if (replace) {
    slot.store(bits(inst) | FrameStack::kTentative, std::memory_order_seq_cst);
  } else {
    slot.store(bits(inst) | FrameStack::kTentative, std::memory_order_relaxed);
    frames_.depth().store(depth + 1, std::memory_order_seq_cst);
  }
  at_call_step(CallStep::kPublished);  // test hook
  const bool still_current = current.load(std::memory_order_seq_cst) == inst;
  const bool running = state_.load(std::memory_order_seq_cst) == State::kRunning;
  at_call_step(CallStep::kChecked);  // test hook
  // Still current after the frame was published: a purge of it must scan later, and waits
  // on this slot, so the instance can be read now.
  const bool exported =
      callee == nullptr || (still_current && inst->exports_function(callee->function, callee->arity));
  if (still_current && running && exported) {
    slot.store(bits(inst), std::memory_order_release);
    return Attempt::kEntered;
  }
  if (replace) {
    slot.store(previous, std::memory_order_release);
  } else {
    slot.store(0, std::memory_order_release);
    frames_.depth().store(depth, std::memory_order_release);
  }
  if (!running) return Attempt::kEnded;
  return still_current ? Attempt::kNotExported : Attempt::kMoved;
}

Result<const Instance*> ProcessImpl::call(std::string_view module, std::string_view function,
                                          std::uint32_t arity, bool tail) {
  // The common case: M:F/A has an export entry (OTP's export table), which holds the
  // instance that exports it: one probe, no check of the exports.
  const ExportEntry* exported =
      impl_->find_export(hash_export(module, function, arity), module, function, arity);
  if (exported != nullptr && state_.load(std::memory_order_relaxed) == State::kRunning) {
    const Instance* inst = exported->current.load(std::memory_order_acquire);
    if (inst != nullptr && attempt(exported->current, inst, nullptr, tail) == Attempt::kEntered) return inst;
  }
  const Callee callee{function, arity};
  return enter(module, &callee, tail);
}

Result<const Instance*> ProcessImpl::enter(std::string_view module, const Callee* callee, bool tail) {
  const std::size_t hash = callee != nullptr ? hash_export(module, callee->function, callee->arity) : 0;
  bool tried_load = false;
  for (;;) {
    if (State s = state_.load(std::memory_order_relaxed); s != State::kRunning) return ended(frames_, s);
    const ExportEntry* exported =
        callee != nullptr ? impl_->find_export(hash, module, callee->function, callee->arity) : nullptr;
    const ModuleEntry* entry = exported == nullptr ? impl_->find(module) : nullptr;
    const std::atomic<const Instance*>* current = exported != nullptr ? &exported->current
                                                  : entry != nullptr  ? &entry->current
                                                                      : nullptr;
    if (const Instance* inst = current == nullptr ? nullptr : current->load(std::memory_order_acquire)) {
      switch (attempt(*current, inst, exported == nullptr ? callee : nullptr, tail)) {
        case Attempt::kEntered:
          if (callee != nullptr && exported == nullptr) {
            std::lock_guard<std::mutex> lock(impl_->mutex);  // once per name: later calls find it
            impl_->find_or_add_export(module, callee->function, callee->arity);
          }
          return inst;
        case Attempt::kEnded: return ended(frames_, state());
        case Attempt::kNotExported: return undef(module, callee);
        case Attempt::kMoved: continue;  // a load or a delete came in between: look again
      }
    }
    // An export entry without an instance: M has no code, or its code does not export F/A
    // (unless a load came in between: the entry is stored before the module's `current`).
    if (exported != nullptr && impl_->lookup_current(module) != nullptr) {
      if (exported->current.load(std::memory_order_acquire) != nullptr) continue;
      return undef(module, callee);
    }
    // No current code: interactive mode loads it, as the error handler does; any load
    // failure is undef.
    if (tried_load || server_->get_mode() != Mode::kInteractive) return undef(module, callee);
    tried_load = true;
    if (!server_->ensure_loaded(module)) return undef(module, callee);
  }
}

Result<const Instance*> ProcessImpl::local_call() {
  if (State s = state_.load(std::memory_order_relaxed); s != State::kRunning) return ended(frames_, s);
  const std::size_t depth = frames_.depth().load(std::memory_order_relaxed);
  if (depth == 0) return call_error(reason::kUndef, "a local call with no frame");
  // A copy of the top frame: no new instance, so nothing to check (a purge that sees
  // neither copy saw the top frame gone first).
  const std::uintptr_t top = frames_.slot(depth - 1).load(std::memory_order_relaxed);
  frames_.slot_for_write(depth).store(top, std::memory_order_relaxed);
  frames_.depth().store(depth + 1, std::memory_order_release);
  // Untagged: only settled frames are below depth (code_server_impl.h, FrameStack::settled).
  return reinterpret_cast<const Instance*>(top);  // NOLINT(performance-no-int-to-ptr)
}

void ProcessImpl::ret() {
  if (state_.load(std::memory_order_relaxed) != State::kRunning) {
    frames_.depth().store(0, std::memory_order_release);
    return;
  }
  const std::size_t depth = frames_.depth().load(std::memory_order_relaxed);
  if (depth != 0) frames_.depth().store(depth - 1, std::memory_order_release);
}

void ProcessImpl::exit() {
  State running = State::kRunning;
  state_.compare_exchange_strong(running, State::kExited, std::memory_order_seq_cst);
  frames_.depth().store(0, std::memory_order_release);
}

const Instance* ProcessImpl::top() const {
  if (state() != State::kRunning) return nullptr;
  const std::size_t depth = frames_.depth().load(std::memory_order_seq_cst);
  return depth == 0 ? nullptr : frames_.settled(depth - 1);
}

std::size_t ProcessImpl::depth() const {
  return state() == State::kRunning ? frames_.depth().load(std::memory_order_seq_cst) : 0;
}

bool ProcessImpl::in_instance(const Instance* instance) const {
  if (state() != State::kRunning) return false;
  const std::size_t depth = frames_.depth().load(std::memory_order_seq_cst);
  for (std::size_t i = 0; i < depth; ++i) {
    if (frames_.settled(i) == instance) return true;
  }
  return false;
}

bool ProcessImpl::kill() {
  State running = State::kRunning;
  if (!state_.compare_exchange_strong(running, State::kKilled, std::memory_order_seq_cst)) return false;
  // The owner checks the state after it publishes a frame: every frame it can still be in
  // was published before it could see the kill, so this scan sees it. Nothing is freed
  // meanwhile (only purges free, under the writer lock this thread holds).
  const std::size_t depth = frames_.depth().load(std::memory_order_seq_cst);
  for (std::size_t i = 0; i < depth; ++i) {
    const Instance* frame = frames_.settled(i);
    if (frame == nullptr) continue;
    if (auto owned = frame->weak_from_this().lock()) released_.push_back(std::move(owned));
  }
  return true;
}

}  // namespace detail

ProcessId Process::id() const {
  return ProcessImpl::of(*this).id();
}

const std::string& Process::name() const {
  return ProcessImpl::of(*this).name();
}

Result<const Instance*> Process::call(std::string_view module, std::string_view function,
                                      std::uint32_t arity) {
  return ProcessImpl::of(*this).call(module, function, arity, /*tail=*/false);
}

Result<const Instance*> Process::tail_call(std::string_view module, std::string_view function,
                                           std::uint32_t arity) {
  return ProcessImpl::of(*this).call(module, function, arity, /*tail=*/true);
}

Result<const Instance*> Process::enter_module(std::string_view module, bool tail) {
  return ProcessImpl::of(*this).enter(module, nullptr, tail);
}

Result<const Instance*> Process::local_call() {
  return ProcessImpl::of(*this).local_call();
}

void Process::ret() {
  ProcessImpl::of(*this).ret();
}

void Process::exit() {
  ProcessImpl::of(*this).exit();
}

bool Process::alive() const {
  return ProcessImpl::of(*this).state() == ProcessImpl::State::kRunning;
}

bool Process::killed() const {
  return ProcessImpl::of(*this).state() == ProcessImpl::State::kKilled;
}

const Instance* Process::top() const {
  return ProcessImpl::of(*this).top();
}

std::size_t Process::depth() const {
  return ProcessImpl::of(*this).depth();
}

bool Process::in_instance(const Instance* instance) const {
  return ProcessImpl::of(*this).in_instance(instance);
}

}  // namespace codestore::loader

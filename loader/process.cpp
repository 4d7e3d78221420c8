#include <codestore/code_server.h>

#include <algorithm>

#include "code_server_impl.h"

namespace codestore::loader {

std::string_view call_error_name(CallError error) noexcept {
  switch (error) {
    case CallError::kUndef: return "undef";
    case CallError::kKilled: return "killed";
    case CallError::kExited: return "exited";
  }
  return "undef";
}

Process::Process(CodeServer* server, ProcessId id, std::string name, KillCallback on_kill)
    : server_(server), id_(id), name_(std::move(name)), on_kill_(std::move(on_kill)) {}

Process::~Process() = default;

namespace {
tl::unexpected<CallError> call_error(CallError e) {
  return tl::unexpected<CallError>(e);
}
}  // namespace

CallResult Process::enter(std::string_view module, std::optional<Callee> callee, bool tail) {
  bool tried_load = false;
  for (;;) {
    {
      ReadGuard guard;
      const Instance* inst = server_->impl_->lookup_current(module);
      std::lock_guard<std::mutex> lock(mutex_);
      if (state_ == State::kKilled) return call_error(CallError::kKilled);
      if (state_ == State::kExited) return call_error(CallError::kExited);
      if (inst != nullptr) {
        // A purge marks an instance before it scans the processes and scans under this
        // mutex: seeing no mark here means the scan will see this frame (and kill us).
        if (inst->retiring_.load(std::memory_order_acquire)) continue;
        if (callee && !inst->exports_function(callee->function, callee->arity)) {
          return call_error(CallError::kUndef);
        }
        if (tail && !frames_.empty()) {
          frames_.back() = inst;
        } else {
          frames_.push_back(inst);
        }
        return inst;
      }
    }
    // No current code: interactive mode loads it, as the error handler does; any load
    // failure is undef.
    if (tried_load || server_->get_mode() != Mode::kInteractive) return call_error(CallError::kUndef);
    tried_load = true;
    if (!server_->ensure_loaded(module)) return call_error(CallError::kUndef);
  }
}

CallResult Process::call(std::string_view module, std::string_view function, std::uint32_t arity) {
  return enter(module, Callee{function, arity}, /*tail=*/false);
}

CallResult Process::tail_call(std::string_view module, std::string_view function, std::uint32_t arity) {
  return enter(module, Callee{function, arity}, /*tail=*/true);
}

CallResult Process::enter_module(std::string_view module, bool tail) {
  return enter(module, std::nullopt, tail);
}

CallResult Process::local_call() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::kKilled) return call_error(CallError::kKilled);
  if (state_ == State::kExited) return call_error(CallError::kExited);
  if (frames_.empty()) return call_error(CallError::kUndef);
  frames_.push_back(frames_.back());
  return frames_.back();
}

void Process::ret() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!frames_.empty()) frames_.pop_back();
}

void Process::exit() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == State::kRunning) state_ = State::kExited;
  frames_.clear();
}

bool Process::alive() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ == State::kRunning;
}

bool Process::killed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_ == State::kKilled;
}

const Instance* Process::top() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return frames_.empty() ? nullptr : frames_.back();
}

std::size_t Process::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return frames_.size();
}

bool Process::in_instance(const Instance* instance) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::find(frames_.begin(), frames_.end(), instance) != frames_.end();
}

}  // namespace codestore::loader

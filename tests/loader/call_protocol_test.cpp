// The call protocol (loader/process.cpp, docs/code-server.md §5), step by step: a call
// pauses at each step (the test hook in code_server_impl.h) while another thread loads,
// purges, soft-purges, deletes or kills exactly there, and the outcome is Erlang's: a
// process never runs in purged code that the purge did not kill. The random races of
// threads_test.cpp rarely hit these windows (a few ns); here each one is hit every time.
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "code_server_impl.h"  // loader/: the test hook
#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

using detail::CallStep;

std::string step_name(CallStep step) {
  switch (step) {
    case CallStep::kLooked: return "Looked";
    case CallStep::kPublished: return "Published";
    case CallStep::kChecked: return "Checked";
    case CallStep::kReaderWaits: return "ReaderWaits";
  }
  return "?";
}

// One window: when the calling thread reaches `step` (once), `operation` runs on another
// thread; the call goes on once the operation has finished or waits on the call's tentative
// frame (it cannot finish before the call resolves it).
class Window {
 public:
  Window(CallStep step, std::function<void()> operation) : step_(step), operation_(std::move(operation)) {
    active_ = this;
    detail::call_step_hook.store(&Window::hook);
  }
  ~Window() {
    detail::call_step_hook.store(nullptr);
    if (runner_.joinable()) runner_.join();
    active_ = nullptr;
  }
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;

  // Waits for the operation (after the call came back).
  void finish() {
    if (runner_.joinable()) runner_.join();
  }
  bool hit() const { return hit_; }
  bool operation_waited() const { return waited_.load(); }

 private:
  static void hook(CallStep step) {
    Window* w = active_;
    if (step == CallStep::kReaderWaits) {
      w->waited_.store(true);
      return;
    }
    if (step != w->step_ || std::this_thread::get_id() != w->caller_ || w->hit_) return;
    w->hit_ = true;
    w->runner_ = std::thread([w] {
      w->operation_();
      w->done_.store(true);
    });
    while (!w->done_.load() && !w->waited_.load()) std::this_thread::yield();
  }

  static inline Window* active_ = nullptr;
  const CallStep step_;
  const std::function<void()> operation_;
  const std::thread::id caller_ = std::this_thread::get_id();
  bool hit_ = false;  // the caller's thread only
  std::atomic<bool> done_{false};
  std::atomic<bool> waited_{false};
  std::thread runner_;
};

class CallProtocol : public LoaderFixture, public ::testing::WithParamInterface<CallStep> {
 protected:
  // m version 1 current, p has called m:loop/0 once and returned (so the next call takes
  // the export entry's path, the hot one). Embedded mode: a call never loads m again.
  void SetUp() override {
    LoaderFixture::SetUp();
    cs_ = make(Mode::kEmbedded);
    ASSERT_TRUE(cs_->load_binary("m", "v1/m.beam", bytes("v1/m.beam")));
    v1_ = cs_->current_shared("m");  // kept alive: compared after it is purged
    p_ = cs_->spawn("caller", [this](ProcessId id) { killed_.push_back(id); });
    ASSERT_TRUE(p_->call("m", "loop", 0));
    p_->ret();
  }
  // Before the call re-checks, the operation came first in seq_cst order: the call must see
  // it. After the re-check, the call came first: the operation must see the call's frame.
  bool call_sees_operation() const { return GetParam() != CallStep::kChecked; }

  // Erlang's invariant: a process still running is in no instance a purge removed.
  void expect_not_in_purged(const Instance* purged) {
    if (p_->alive()) {
      EXPECT_FALSE(p_->in_instance(purged)) << "a live process runs in purged code";
    }
  }

  std::unique_ptr<CodeServer> cs_;
  std::shared_ptr<const Instance> v1_;
  std::shared_ptr<Process> p_;
};

// Issue: load + purge inside the window. Either the call sees the load and enters the new
// current instance, or the purge sees the call's frame in the old one and kills the process.
TEST_P(CallProtocol, LoadAndPurge) {
  PurgeResult purged;
  std::shared_ptr<const Instance> v2;
  Window window(GetParam(), [&] {
    ASSERT_TRUE(cs_->load_binary("m", "v2/m.beam", bytes("v2/m.beam")));
    v2 = cs_->current_shared("m");
    purged = cs_->purge("m");
  });
  auto in = p_->call("m", "loop", 0);
  window.finish();
  ASSERT_TRUE(window.hit());
  ASSERT_TRUE(in) << in.error().to_string();
  expect_not_in_purged(v1_.get());
  if (call_sees_operation()) {
    EXPECT_EQ(*in, v2.get()) << "the call entered the purged instance";
    EXPECT_TRUE(p_->alive());
    EXPECT_FALSE(purged.killed);
    EXPECT_EQ(p_->top(), v2.get());
  } else {
    EXPECT_EQ(*in, v1_.get());
    EXPECT_TRUE(window.operation_waited()) << "the purge read the tentative frame without waiting";
    EXPECT_TRUE(purged.killed) << "the purge missed the process in the old code";
    EXPECT_EQ(purged.processes, std::vector<ProcessId>{p_->id()});
    EXPECT_TRUE(p_->killed());
    EXPECT_EQ(killed_, std::vector<ProcessId>{p_->id()});
    auto next = p_->call("m", "loop", 0);
    ASSERT_FALSE(next);
    EXPECT_EQ(next.error().reason(), reason::kKilled);
  }
}

// delete_module + purge inside the window: the call fails undef (no code left, and embedded
// mode does not load), or the purge kills the process it finds in the deleted code.
TEST_P(CallProtocol, DeleteAndPurge) {
  PurgeResult purged;
  Window window(GetParam(), [&] {
    EXPECT_TRUE(cs_->delete_module("m"));
    purged = cs_->purge("m");
  });
  auto in = p_->call("m", "loop", 0);
  window.finish();
  ASSERT_TRUE(window.hit());
  expect_not_in_purged(v1_.get());
  if (call_sees_operation()) {
    ASSERT_FALSE(in) << "the call entered deleted code";
    EXPECT_EQ(in.error().reason(), reason::kUndef);
    EXPECT_TRUE(p_->alive());
    EXPECT_EQ(p_->depth(), 0u);
    EXPECT_FALSE(purged.killed);
  } else {
    ASSERT_TRUE(in) << in.error().to_string();
    EXPECT_EQ(*in, v1_.get());
    EXPECT_TRUE(purged.killed) << "the purge missed the process in the deleted code";
    EXPECT_TRUE(p_->killed());
  }
}

// load + soft_purge inside the window: soft_purge refuses while it sees the call's frame in
// the old instance, or the call looks again and enters the new one (and the purge goes on).
TEST_P(CallProtocol, LoadAndSoftPurge) {
  SoftPurgeResult soft;
  std::shared_ptr<const Instance> v2;
  Window window(GetParam(), [&] {
    ASSERT_TRUE(cs_->load_binary("m", "v2/m.beam", bytes("v2/m.beam")));
    v2 = cs_->current_shared("m");
    soft = cs_->soft_purge("m");
  });
  auto in = p_->call("m", "loop", 0);
  window.finish();
  ASSERT_TRUE(window.hit());
  ASSERT_TRUE(in) << in.error().to_string();
  EXPECT_TRUE(p_->alive()) << "soft_purge kills nobody";
  if (call_sees_operation()) {
    EXPECT_EQ(*in, v2.get()) << "the call entered the instance soft_purge removed";
    EXPECT_TRUE(soft.ok);
    EXPECT_FALSE(cs_->check_old_code("m"));
    EXPECT_FALSE(p_->in_instance(v1_.get())) << "a live process runs in purged code";
  } else {
    EXPECT_EQ(*in, v1_.get());
    EXPECT_FALSE(soft.ok) << "soft_purge removed code a process is in";
    EXPECT_EQ(soft.blockers, std::vector<ProcessId>{p_->id()});
    EXPECT_TRUE(cs_->check_old_code("m"));
    EXPECT_TRUE(cs_->check_process_code(*p_, "m"));
  }
}

// A kill inside the window: p lingers in n's old code (its first frame) and calls m; a purge
// of n kills it meanwhile. Before the call's re-check the call answers killed; after it, the
// call entered m first and the kill's scan sees that frame too. Either way no frame remains.
TEST_P(CallProtocol, Kill) {
  ASSERT_TRUE(cs_->load_binary("n", "v1/n.beam", bytes("v1/n.beam")));
  ASSERT_TRUE(p_->call("n", "loop", 0));
  ASSERT_TRUE(cs_->load_binary("n", "v2/n.beam", bytes("v2/n.beam")));  // p lingers in old n
  PurgeResult purged;
  Window window(GetParam(), [&] { purged = cs_->purge("n"); });
  auto in = p_->call("m", "loop", 0);
  window.finish();
  ASSERT_TRUE(window.hit());
  EXPECT_TRUE(purged.killed);
  EXPECT_EQ(purged.processes, std::vector<ProcessId>{p_->id()});
  EXPECT_TRUE(p_->killed());
  EXPECT_EQ(killed_, std::vector<ProcessId>{p_->id()});
  if (call_sees_operation()) {
    ASSERT_FALSE(in) << "a killed process entered m";
    EXPECT_EQ(in.error().reason(), reason::kKilled);
  } else {
    ASSERT_TRUE(in) << in.error().to_string();  // entered before the kill
    EXPECT_EQ(*in, v1_.get());
    EXPECT_TRUE(window.operation_waited()) << "the kill read the tentative frame without waiting";
    auto next = p_->call("m", "loop", 0);
    ASSERT_FALSE(next);
    EXPECT_EQ(next.error().reason(), reason::kKilled);
  }
  EXPECT_EQ(p_->depth(), 0u);
  EXPECT_EQ(p_->top(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Steps, CallProtocol,
                         ::testing::Values(CallStep::kLooked, CallStep::kPublished, CallStep::kChecked),
                         [](const ::testing::TestParamInfo<CallStep>& param) {
                           return step_name(param.param);
                         });

}  // namespace
}  // namespace codestore::loader::testing

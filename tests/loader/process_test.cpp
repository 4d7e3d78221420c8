// Processes (docs/code-server.md "Processes"): frames, lingering, switching, kills.
#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

using ProcessTest = LoaderFixture;

TEST_F(ProcessTest, LocalCallsStayQualifiedCallsMove) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto p = cs->spawn("p");
  auto v1 = p->call("m", "loop", 0);
  ASSERT_TRUE(v1);
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  auto local = p->local_call();
  ASSERT_TRUE(local);
  EXPECT_EQ(*local, *v1) << "a local call stays in the instance it is in";
  EXPECT_TRUE(cs->check_process_code(*p, "m"));
  auto v2 = p->call("m", "f", 0);
  ASSERT_TRUE(v2);
  EXPECT_EQ((*v2)->vsn_text(), "[50]");
  EXPECT_TRUE(cs->check_process_code(*p, "m")) << "frames below are still in v1";
  p->ret();
  p->ret();
  EXPECT_TRUE(cs->check_process_code(*p, "m"));
  p->ret();
  EXPECT_FALSE(cs->check_process_code(*p, "m")) << "returned out of v1";
  EXPECT_EQ(p->depth(), 0u);
}

TEST_F(ProcessTest, TailCallReplacesTheTopFrame) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto p = cs->spawn("p");
  ASSERT_TRUE(p->call("m", "loop", 0));
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  auto moved = p->tail_call("m", "switched", 1);
  ASSERT_TRUE(moved);
  EXPECT_EQ(p->depth(), 1u);
  EXPECT_EQ(p->top(), *moved);
  EXPECT_FALSE(cs->check_process_code(*p, "m"));
  EXPECT_TRUE(cs->soft_purge("m").ok);
}

// Issue 11: a process the host starts in M's code enters M's current instance whatever M
// exports (counter has no start/1, no loop/0); only "M has no code" is undef.
TEST_F(ProcessTest, EnterModuleNeedsNoParticularExport) {
  auto cs = make(Mode::kInteractive, {dir("foreign/v1")});
  auto p = cs->spawn("p");
  EXPECT_EQ(p->call("counter", "start", 1).error().reason(), reason::kUndef)
      << "a call still needs the export";
  auto v1 = p->enter_module("counter");  // loads counter on demand, as a call does
  ASSERT_TRUE(v1);
  EXPECT_EQ((*v1)->vsn_text(), "[49]");
  ASSERT_TRUE(cs->load_binary("counter", "v2", bytes("foreign/v2/counter.beam")));
  EXPECT_TRUE(cs->check_process_code(*p, "counter")) << "it lingers in v1";
  auto v2 = p->enter_module("counter", /*tail=*/true);
  ASSERT_TRUE(v2);
  EXPECT_EQ((*v2)->vsn_text(), "[50]");
  EXPECT_EQ(p->depth(), 1u);
  EXPECT_FALSE(cs->check_process_code(*p, "counter"));
  EXPECT_EQ(p->enter_module("nosuch").error().reason(), reason::kUndef);

  auto embedded = make(Mode::kEmbedded, {dir("foreign/v1")});
  EXPECT_EQ(embedded->spawn("q")->enter_module("counter").error().reason(), reason::kUndef)
      << "embedded mode loads nothing on demand";
}

TEST_F(ProcessTest, KilledProcessFailsCleanlyAndItsInstanceStaysReadable) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto p = cs->spawn("p");
  auto in_v1 = p->call("m", "loop", 0);
  ASSERT_TRUE(in_v1);
  const Instance* v1 = *in_v1;
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  auto r = cs->purge("m");
  EXPECT_TRUE(r.killed);
  EXPECT_TRUE(p->killed());
  EXPECT_FALSE(p->alive());
  // The host's thread may still be reading v1 before it notices the kill.
  EXPECT_EQ(v1->module(), "m");
  EXPECT_EQ(std::vector<std::uint8_t>(v1->bytes().begin(), v1->bytes().end()), bytes("v1/m.beam"));
  EXPECT_EQ(p->call("m", "f", 0).error().reason(), reason::kKilled);
  EXPECT_EQ(p->local_call().error().reason(), reason::kKilled);
}

TEST_F(ProcessTest, SharedHoldersKeepBytesAfterPurge) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  ASSERT_TRUE(cs->load_file("m"));
  auto held = cs->current_shared("m");
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  cs->purge("m");
  cs.reset();
  EXPECT_EQ(held->vsn_text(), "[49]");
  EXPECT_EQ(held->bytes().size(), bytes("v1/m.beam").size());
}

TEST_F(ProcessTest, ExitedProcessDoesNotLinger) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto p = cs->spawn("p");
  ASSERT_TRUE(p->call("m", "loop", 0));
  p->exit();
  EXPECT_EQ(p->call("m", "f", 0).error().reason(), reason::kExited);
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  EXPECT_FALSE(cs->purge("m").killed);
}

TEST_F(ProcessTest, KillCallbackMayCallTheCodeServer) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  bool called = false;
  auto p = cs->spawn("p", [&](ProcessId) { called = cs->is_loaded("m") == "v3"; });
  ASSERT_TRUE(p->call("m", "loop", 0));
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  ASSERT_TRUE(cs->load_binary("m", "v3", bytes("v3/m.beam")));  // purges v1: p killed
  EXPECT_TRUE(called) << "run after the lock is released, once the purge is complete";
}

TEST_F(ProcessTest, SoftPurgeReportsWhoBlocks) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto a = cs->spawn("a"), b = cs->spawn("b"), c = cs->spawn("c");
  ASSERT_TRUE(a->call("m", "loop", 0));
  ASSERT_TRUE(b->call("m", "loop", 0));
  ASSERT_TRUE(c->call("n", "loop", 0));
  ASSERT_TRUE(cs->load_binary("m", "v2", bytes("v2/m.beam")));
  auto r = cs->soft_purge("m");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.blockers, (std::vector<ProcessId>{a->id(), b->id()}));
  auto hard = cs->purge("m");
  EXPECT_EQ(hard.processes, (std::vector<ProcessId>{a->id(), b->id()}));
  EXPECT_TRUE(c->alive());
}

TEST_F(ProcessTest, ModuleRefFollowsTheCurrentInstance) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  ModuleRef ref = cs->module_ref("m");
  {
    ReadGuard guard;
    EXPECT_EQ(ref.current(guard), nullptr);
    EXPECT_EQ(cs->current(guard, "m"), nullptr);
  }
  ASSERT_TRUE(cs->load_file("m"));
  ReadGuard guard;
  ASSERT_NE(ref.current(guard), nullptr);
  EXPECT_EQ(ref.current(guard), cs->current(guard, "m"));
  EXPECT_EQ(ref.current(guard)->vsn_text(), "[49]");
  EXPECT_EQ(cs->current(guard, "nope"), nullptr);
}

}  // namespace
}  // namespace codestore::loader::testing

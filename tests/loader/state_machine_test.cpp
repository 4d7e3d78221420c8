// docs/code-server.md §2, cell by cell: every operation in each of the four states of a
// module (none, current, current+old, old only). Each TEST_P is one row of the table; its
// four instances are the cells.
#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

constexpr const char* kV1 = "[49]";
constexpr const char* kV2 = "[50]";
constexpr const char* kV3 = "[51]";

class Cell : public LoaderFixture, public ::testing::WithParamInterface<State> {
 protected:
  State state() const { return GetParam(); }
  // The path has v3 only, so path loads give [51] and are told apart from the set-up's.
  std::unique_ptr<CodeServer> server(Mode mode = Mode::kInteractive) { return make(mode, {dir("v3")}); }
};

std::string cell_name(const ::testing::TestParamInfo<State>& info) {
  return state_name(info.param);
}

#define CELLS(Row) INSTANTIATE_TEST_SUITE_P(StateMachine, Row, ::testing::ValuesIn(kAllStates), cell_name)

// Before each operation: the snapshot of each state (LoaderFixture::enter_state).
Snapshot before(State s) {
  switch (s) {
    case State::kNone: return {"", false};
    case State::kCurrent: return {kV1, false};
    case State::kCurrentOld: return {kV2, true};
    case State::kOldOnly: return {"", true};
  }
  return {};
}

// --- Loads -------------------------------------------------------------------------------

class LoadFile : public Cell {};
TEST_P(LoadFile, Cell) {
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  auto r = cs->load_file("m");
  switch (state()) {
    case State::kNone:
      EXPECT_TRUE(r);
      EXPECT_EQ(snap(*cs), (Snapshot{kV3, false}));
      break;
    case State::kCurrent:
      EXPECT_TRUE(r);
      EXPECT_EQ(snap(*cs), (Snapshot{kV3, true}));
      break;
    case State::kCurrentOld:
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().reason(), reason::kNotPurged);
      EXPECT_EQ(snap(*cs), before(state()));
      break;
    case State::kOldOnly:  // OTP: the load is allowed and the old instance is kept
      EXPECT_TRUE(r);
      EXPECT_EQ(snap(*cs), (Snapshot{kV3, true}));
      EXPECT_TRUE(cs->check_process_code(*p, "m")) << "the old instance is still the deleted v1";
      break;
  }
  EXPECT_TRUE(!p || p->alive()) << "load_file never kills";
}
CELLS(LoadFile);

class LoadAbs : public Cell {};
TEST_P(LoadAbs, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  auto r = cs->load_abs(file("v3/m"));  // no extension: ".beam" is appended, as OTP does
  if (state() == State::kCurrentOld) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason(), reason::kNotPurged);
    EXPECT_EQ(snap(*cs), before(state()));
  } else {
    ASSERT_TRUE(r);
    EXPECT_EQ(snap(*cs), (Snapshot{kV3, state() != State::kNone}));
    EXPECT_EQ(cs->is_loaded("m"), file("v3/m.beam"));
  }
}
CELLS(LoadAbs);

class LoadBinary : public Cell {};
TEST_P(LoadBinary, Cell) {
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  auto r = cs->load_binary("m", "x/m.beam", bytes("v3/m.beam"));
  ASSERT_TRUE(r) << "load_binary always gets past not_purged";
  EXPECT_EQ(snap(*cs), (Snapshot{kV3, state() != State::kNone}));
  EXPECT_EQ(cs->is_loaded("m"), "x/m.beam");
  switch (state()) {
    case State::kCurrentOld:  // the three-version rule: old (v1) purged, its process killed
      EXPECT_TRUE(p->killed());
      EXPECT_EQ(killed_, std::vector<ProcessId>{p->id()});
      break;
    case State::kOldOnly:  // no current code: no purge, the deleted v1 stays old
      EXPECT_TRUE(p->alive());
      EXPECT_TRUE(cs->check_process_code(*p, "m"));
      break;
    case State::kCurrent:  // the process was in v1, which is old now: it lingers
      EXPECT_TRUE(p->alive());
      EXPECT_TRUE(cs->check_process_code(*p, "m"));
      break;
    case State::kNone: EXPECT_TRUE(p->alive()); break;
  }
}
CELLS(LoadBinary);

class LoadBinarySameBytes : public Cell {};
TEST_P(LoadBinarySameBytes, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  const char* same = state() == State::kCurrentOld ? "v2/m.beam" : "v1/m.beam";
  ASSERT_TRUE(cs->load_binary("m", same, bytes(same)));
  // No MD5 deduplication: identical bytes still rotate current into old (OTP).
  std::string vsn = state() == State::kCurrentOld ? kV2 : kV1;
  EXPECT_EQ(snap(*cs), (Snapshot{vsn, state() != State::kNone}));
}
CELLS(LoadBinarySameBytes);

class LoadBinaryRefused : public Cell {};
TEST_P(LoadBinaryRefused, Cell) {
  // A refused load changes nothing (docs/code-server.md §2): junk is badfile and purges nothing.
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  auto r = cs->load_binary("m", "junk/m.beam", bytes("junk/m.beam"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason(), reason::kBadfile);
  EXPECT_EQ(snap(*cs), before(state()));
  EXPECT_TRUE(p->alive());
  EXPECT_TRUE(killed_.empty());
}
CELLS(LoadBinaryRefused);

class LoadBinarySticky : public Cell {};
TEST_P(LoadBinarySticky, Cell) {
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  cs->stick_mod("m");
  auto r = cs->load_binary("m", "v3/m.beam", bytes("v3/m.beam"));
  bool has_current = state() == State::kCurrent || state() == State::kCurrentOld;
  if (has_current) {  // sticky = loaded and the name sticky; refused before any purge
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason(), reason::kStickyDirectory);
    EXPECT_EQ(snap(*cs), before(state()));
    EXPECT_TRUE(p->alive());
  } else {  // not loaded: the first load of a sticky module is allowed
    EXPECT_TRUE(r);
    EXPECT_EQ(snap(*cs), (Snapshot{kV3, state() == State::kOldOnly}));
  }
  EXPECT_EQ(cs->is_sticky("m"), true) << "loaded now (or still) with a sticky name";
}
CELLS(LoadBinarySticky);

class EnsureLoaded : public Cell {};
TEST_P(EnsureLoaded, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  EXPECT_TRUE(cs->ensure_loaded("m"));
  switch (state()) {
    case State::kNone: EXPECT_EQ(snap(*cs), (Snapshot{kV3, false})); break;
    case State::kOldOnly: EXPECT_EQ(snap(*cs), (Snapshot{kV3, true})); break;
    default: EXPECT_EQ(snap(*cs), before(state())) << "never reloads"; break;
  }
}
CELLS(EnsureLoaded);

class EnsureLoadedEmbedded : public Cell {};
TEST_P(EnsureLoadedEmbedded, Cell) {
  auto cs = server(Mode::kEmbedded);
  enter_state(*cs, state());
  auto r = cs->ensure_loaded("m");
  if (state() == State::kNone || state() == State::kOldOnly) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason(), reason::kEmbedded);
  } else {
    EXPECT_TRUE(r);
  }
  EXPECT_EQ(snap(*cs), before(state()));
}
CELLS(EnsureLoadedEmbedded);

class AtomicLoad : public Cell {};
TEST_P(AtomicLoad, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  // m is in the state under test; n (fresh) loads with it or not at all.
  auto r = cs->atomic_load({LoadItem{"m", {}, {}}, LoadItem{"n", "v2/n.beam", bytes("v2/n.beam")}});
  if (state() == State::kCurrentOld) {
    ASSERT_FALSE(r);
    EXPECT_EQ(reasons(r.failed), (Reasons{{"m", "not_purged"}}));
    EXPECT_EQ(snap(*cs), before(state()));
    EXPECT_FALSE(cs->is_loaded("n")) << "all or nothing";
  } else {
    ASSERT_TRUE(r);
    EXPECT_EQ(snap(*cs), (Snapshot{kV3, state() != State::kNone}));
    EXPECT_EQ(cs->is_loaded("n"), "v2/n.beam");
  }
}
CELLS(AtomicLoad);

// --- Delete and purge --------------------------------------------------------------------

class Delete : public Cell {};
TEST_P(Delete, Cell) {
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  bool r = cs->delete_module("m");
  switch (state()) {
    case State::kNone:
      EXPECT_FALSE(r) << "never loaded";
      EXPECT_EQ(snap(*cs), before(state()));
      break;
    case State::kCurrent:
      EXPECT_TRUE(r);
      EXPECT_EQ(snap(*cs), (Snapshot{"", true}));
      EXPECT_TRUE(cs->check_process_code(*p, "m")) << "the process in v1 now lingers";
      break;
    case State::kCurrentOld:
      EXPECT_FALSE(r) << "purge first";
      EXPECT_EQ(snap(*cs), before(state()));
      break;
    case State::kOldOnly:
      EXPECT_FALSE(r) << "old exists";
      EXPECT_EQ(snap(*cs), before(state()));
      break;
  }
}
CELLS(Delete);

TEST_F(LoaderFixture, DeleteOfKnownModuleWithoutCodeIsTrue) {
  auto cs = make();
  enter_state(*cs, State::kOldOnly);
  cs->purge("m");
  EXPECT_TRUE(cs->delete_module("m")) << "OTP: a known module with no code at all";
  EXPECT_EQ(snap(*cs), (Snapshot{"", false}));
}

TEST_F(LoaderFixture, DeleteIgnoresStickiness) {
  auto cs = make();
  enter_state(*cs, State::kCurrent);
  cs->stick_mod("m");
  EXPECT_TRUE(cs->delete_module("m"));
  EXPECT_FALSE(cs->is_sticky("m")) << "not loaded any more";
  EXPECT_TRUE(cs->load_binary("m", "v2/m.beam", bytes("v2/m.beam")));
}

class Purge : public Cell {};
TEST_P(Purge, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  auto r = cs->purge("m");
  EXPECT_FALSE(r.killed) << "true only if it killed";
  EXPECT_EQ(r.had_old, state() == State::kCurrentOld || state() == State::kOldOnly);
  Snapshot after = before(state());
  after.has_old = false;
  EXPECT_EQ(snap(*cs), after);
}
CELLS(Purge);

class PurgeLingering : public Cell {};
TEST_P(PurgeLingering, Cell) {
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  auto r = cs->purge("m");
  bool lingers = state() == State::kCurrentOld || state() == State::kOldOnly;
  EXPECT_EQ(r.killed, lingers);
  EXPECT_EQ(r.processes, lingers ? std::vector<ProcessId>{p->id()} : std::vector<ProcessId>{});
  EXPECT_EQ(killed_, r.processes) << "the kill callback ran for each";
  EXPECT_EQ(p->killed(), lingers);
  EXPECT_FALSE(cs->check_old_code("m"));
  if (lingers) {
    EXPECT_EQ(p->depth(), 0u) << "its frames are released";
    auto call = p->call("m", "f", 0);
    ASSERT_FALSE(call);
    EXPECT_EQ(call.error().reason(), reason::kKilled) << "a killed process's calls fail cleanly";
  }
}
CELLS(PurgeLingering);

class SoftPurge : public Cell {};
TEST_P(SoftPurge, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  auto r = cs->soft_purge("m");
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.blockers.empty());
  Snapshot after = before(state());
  after.has_old = false;
  EXPECT_EQ(snap(*cs), after);
}
CELLS(SoftPurge);

class SoftPurgeLingering : public Cell {};
TEST_P(SoftPurgeLingering, Cell) {
  auto cs = server();
  auto p = enter_state(*cs, state(), /*lingerer=*/true);
  auto r = cs->soft_purge("m");
  bool lingers = state() == State::kCurrentOld || state() == State::kOldOnly;
  EXPECT_EQ(r.ok, !lingers);
  EXPECT_EQ(r.blockers, lingers ? std::vector<ProcessId>{p->id()} : std::vector<ProcessId>{});
  EXPECT_TRUE(p->alive()) << "soft purge never kills";
  EXPECT_EQ(cs->check_old_code("m"), lingers) << "the old instance is kept while in use";
}
CELLS(SoftPurgeLingering);

// --- Queries -----------------------------------------------------------------------------

class Queries : public Cell {};
TEST_P(Queries, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  bool has_current = state() == State::kCurrent || state() == State::kCurrentOld;
  EXPECT_EQ(cs->check_old_code("m"), state() == State::kCurrentOld || state() == State::kOldOnly);
  if (has_current) {
    std::string origin = state() == State::kCurrent ? "v1/m.beam" : "v2/m.beam";
    EXPECT_EQ(cs->is_loaded("m"), origin);
    EXPECT_EQ(cs->which("m"), origin) << "the recorded origin, not the path";
    EXPECT_EQ(cs->all_loaded(), (std::vector<std::pair<std::string, std::string>>{{"m", origin}}));
  } else {
    EXPECT_EQ(cs->is_loaded("m"), std::nullopt);
    EXPECT_EQ(cs->which("m"), dir("v3") + "/m.beam") << "the first path match";
    EXPECT_TRUE(cs->all_loaded().empty()) << "old-only modules are not in all_loaded";
  }
}
CELLS(Queries);

class ModuleStatusCell : public Cell {};
TEST_P(ModuleStatusCell, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  switch (state()) {
    case State::kNone:
    case State::kOldOnly: EXPECT_EQ(cs->module_status("m"), ModuleStatus::kNotLoaded); break;
    default:
      // v1/v2 loaded, the path has v3: modified. Path gone: removed. Path = what is loaded: loaded.
      EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified);
      EXPECT_EQ(cs->modified_modules(), std::vector<std::string>{"m"});
      ASSERT_TRUE(cs->set_path({dir("bad")}).is_ok());
      EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified) << "an unreadable image counts as modified";
      ASSERT_TRUE(cs->set_path({}).is_ok());
      EXPECT_EQ(cs->module_status("m"), ModuleStatus::kRemoved);
      ASSERT_TRUE(cs->set_path({dir(state() == State::kCurrent ? "v1" : "v2")}).is_ok());
      EXPECT_EQ(cs->module_status("m"), ModuleStatus::kLoaded);
      EXPECT_TRUE(cs->modified_modules().empty());
      break;
  }
}
CELLS(ModuleStatusCell);

class IsSticky : public Cell {};
TEST_P(IsSticky, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  EXPECT_FALSE(cs->is_sticky("m"));
  cs->stick_mod("m");
  EXPECT_EQ(cs->is_sticky("m"), state() == State::kCurrent || state() == State::kCurrentOld);
  cs->unstick_mod("m");
  EXPECT_FALSE(cs->is_sticky("m"));
}
CELLS(IsSticky);

// --- Qualified calls ---------------------------------------------------------------------

class CallInteractive : public Cell {};
TEST_P(CallInteractive, Cell) {
  auto cs = server();
  enter_state(*cs, state());
  auto p = cs->spawn("caller");
  auto r = p->call("m", "f", 0);
  ASSERT_TRUE(r) << "autoloads when there is no current code";
  switch (state()) {
    case State::kNone:
      EXPECT_EQ((*r)->vsn_text(), kV3);
      EXPECT_EQ(snap(*cs), (Snapshot{kV3, false}));
      break;
    case State::kOldOnly:
      EXPECT_EQ((*r)->vsn_text(), kV3);
      EXPECT_EQ(snap(*cs), (Snapshot{kV3, true}));
      break;
    default:
      EXPECT_EQ((*r)->vsn_text(), before(state()).current);
      EXPECT_EQ(snap(*cs), before(state()));
      break;
  }
  p->ret();
  auto missing = p->call("m", "nothere", 0);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().reason(), reason::kUndef);
}
CELLS(CallInteractive);

class CallEmbedded : public Cell {};
TEST_P(CallEmbedded, Cell) {
  auto cs = server(Mode::kEmbedded);
  enter_state(*cs, state());
  auto p = cs->spawn("caller");
  auto r = p->call("m", "f", 0);
  if (state() == State::kNone || state() == State::kOldOnly) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason(), reason::kUndef) << "no autoload in embedded mode";
  } else {
    ASSERT_TRUE(r);
    EXPECT_EQ((*r)->vsn_text(), before(state()).current);
  }
  EXPECT_EQ(snap(*cs), before(state()));
}
CELLS(CallEmbedded);

}  // namespace
}  // namespace codestore::loader::testing

// Modules with -on_load (docs/code-server.md, "Deliberate differences from OTP 25"): the
// host's callback decides, as the on_load function's answer does in Erlang; atomic_load and
// prepare_loading refuse them. The modules are compiled with erlc at test time (OTP 25
// answers, checked with `erl`: code:atomic_load([M]) is {error,[{M,on_load_not_allowed}]};
// a failing on_load keeps the current code, and load_binary has purged the old one first).
#include <cstdlib>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

bool have_erlc() {
  return std::system("command -v erlc >/dev/null 2>&1") == 0;
}

// `ol` in three builds: version 1 without -on_load, versions 2 and 3 with it.
class OnLoad : public LoaderFixture {
 protected:
  static void SetUpTestSuite() {
    if (!have_erlc()) return;
    src_dir_ = std::make_unique<codestore::testing::TempDir>();
    src_ = src_dir_->path();
    std::ofstream(src_ / "ol.erl") << "-module(ol).\n-export([init/0, start/0, loop/0]).\n-vsn(?VSN).\n"
                                      "-ifdef(ON_LOAD).\n-on_load(init/0).\n-endif.\n"
                                      "init() -> ok.\nstart() -> ok.\nloop() -> ok.\n";
    for (int v = 1; v <= 3; ++v) {
      const fs::path out = src_ / ("v" + std::to_string(v));
      fs::create_directories(out);
      const std::string cmd = "erlc +deterministic -DVSN=" + std::to_string(v) + (v > 1 ? " -DON_LOAD" : "") +
                              " -o '" + out.string() + "' '" + (src_ / "ol.erl").string() +
                              "' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) return;
    }
    compiled_ = true;
  }
  static void TearDownTestSuite() { src_dir_.reset(); }
  void SetUp() override {
    if (!have_erlc()) GTEST_SKIP() << "erlc (Erlang/OTP) is not installed: no module with -on_load to load";
    ASSERT_TRUE(compiled_) << "erlc failed to compile ol.erl in " << src_;
    LoaderFixture::SetUp();
    fs::copy(src_ / "v1", dir_ / "ol1");
    fs::copy(src_ / "v2", dir_ / "ol2");
    fs::copy(src_ / "v3", dir_ / "ol3");
  }

  std::vector<std::uint8_t> ol(int version) const {
    return bytes("ol" + std::to_string(version) + "/ol.beam");
  }

  // A code server whose on_load callback answers `*answer` and counts its calls.
  std::unique_ptr<CodeServer> with_callback(const bool* answer, std::vector<std::string> path = {}) {
    Options options;
    options.path = std::move(path);
    options.on_load = [this, answer](const Instance& inst) {
      calls_.push_back(inst.module() + " " + inst.vsn_text() + (inst.has_on_load() ? " on_load" : ""));
      return *answer;
    };
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs) << (cs ? "" : cs.error().to_string());
    return cs ? std::move(*cs) : nullptr;
  }

  static inline std::unique_ptr<codestore::testing::TempDir> src_dir_;
  static inline fs::path src_;  // src_dir_->path()
  static inline bool compiled_ = false;
  std::vector<std::string> calls_;
};

TEST_F(OnLoad, InstanceReportsOnLoad) {
  auto cs = make();
  ASSERT_TRUE(cs->load_binary("ol", "ol1/ol.beam", ol(1)));
  EXPECT_FALSE(cs->current_shared("ol")->has_on_load());
  ASSERT_TRUE(cs->load_binary("ol", "ol2/ol.beam", ol(2)));
  EXPECT_TRUE(cs->current_shared("ol")->has_on_load());
  ASSERT_TRUE(cs->load_binary("m", "v1/m.beam", bytes("v1/m.beam")));
  EXPECT_FALSE(cs->current_shared("m")->has_on_load());
}

TEST_F(OnLoad, CallbackOkMakesItCurrent) {
  bool answer = true;
  auto cs = with_callback(&answer);
  ASSERT_TRUE(cs->load_binary("ol", "ol1/ol.beam", ol(1)));
  EXPECT_TRUE(calls_.empty()) << "the callback runs only for modules with -on_load";
  ASSERT_TRUE(cs->load_binary("ol", "ol2/ol.beam", ol(2)));
  EXPECT_EQ(calls_, (std::vector<std::string>{"ol [2] on_load"}));
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[2]", true}));
  EXPECT_EQ(cs->is_loaded("ol"), "ol2/ol.beam");
}

TEST_F(OnLoad, CallbackFailureKeepsTheCurrentInstance) {
  bool answer = false;
  auto cs = with_callback(&answer);
  // none: stays none.
  auto first = cs->load_binary("ol", "ol2/ol.beam", ol(2));
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().reason(), reason::kOnLoadFailure);
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"", false}));
  EXPECT_FALSE(cs->is_loaded("ol"));
  // current: C stays, no old code appears.
  ASSERT_TRUE(cs->load_binary("ol", "ol1/ol.beam", ol(1)));
  auto p = cs->spawn("in_current", [this](ProcessId id) { killed_.push_back(id); });
  ASSERT_TRUE(p->call("ol", "loop", 0));
  const std::uint64_t serial = cs->current_shared("ol")->serial();
  auto failed = cs->load_binary("ol", "ol2/ol.beam", ol(2));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().reason(), reason::kOnLoadFailure);
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[1]", false}));
  EXPECT_EQ(cs->current_shared("ol")->serial(), serial);
  EXPECT_EQ(cs->is_loaded("ol"), "ol1/ol.beam");
  EXPECT_TRUE(p->alive());
  EXPECT_EQ(p->top(), cs->current_shared("ol").get());
  EXPECT_EQ(calls_.size(), 2u);
  EXPECT_TRUE(killed_.empty());
}

TEST_F(OnLoad, CallbackFailureAfterTheThreeVersionPurge) {
  // current+old: load_binary purges O before the new code runs its on_load (OTP 25 too:
  // the old code is gone, the current stays).
  bool answer = true;
  auto cs = with_callback(&answer);
  ASSERT_TRUE(cs->load_binary("ol", "ol1/ol.beam", ol(1)));
  auto p = cs->spawn("lingerer", [this](ProcessId id) { killed_.push_back(id); });
  ASSERT_TRUE(p->call("ol", "loop", 0));
  ASSERT_TRUE(cs->load_binary("ol", "ol2/ol.beam", ol(2)));
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[2]", true}));
  answer = false;
  auto failed = cs->load_binary("ol", "ol3/ol.beam", ol(3));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().reason(), reason::kOnLoadFailure);
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[2]", false}));
  EXPECT_EQ(killed_, (std::vector<ProcessId>{p->id()}));
}

TEST_F(OnLoad, CallbackDecidesForPathLoadsToo) {
  bool answer = false;
  auto cs = with_callback(&answer, {dir("ol2")});
  auto failed = cs->load_file("ol");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().reason(), reason::kOnLoadFailure);
  auto p = cs->spawn("caller");
  auto call = p->call("ol", "start", 0);  // autoload fails: undef
  ASSERT_FALSE(call);
  EXPECT_EQ(call.error().reason(), reason::kUndef);
  EXPECT_FALSE(cs->is_loaded("ol"));
  answer = true;
  ASSERT_TRUE(cs->ensure_loaded("ol"));
  EXPECT_EQ(cs->is_loaded("ol"), dir("ol2") + "/ol.beam");
}

TEST_F(OnLoad, WithoutCallbackItLoadsLikeAnyOther) {
  auto cs = make(Mode::kInteractive, {dir("ol2")});
  ASSERT_TRUE(cs->load_file("ol"));
  ASSERT_TRUE(cs->load_binary("ol", "ol3/ol.beam", ol(3)));
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[3]", true}));
  EXPECT_TRUE(cs->current_shared("ol")->has_on_load());
}

TEST_F(OnLoad, AtomicLoadAndPrepareLoadingRefuseIt) {
  bool answer = true;
  auto cs = with_callback(&answer, {dir("ol2"), dir("v1")});
  ASSERT_TRUE(cs->load_binary("ol", "ol1/ol.beam", ol(1)));
  const Reasons refused = {{"ol", "on_load_not_allowed"}};
  // From the path and from bytes, alone and with a module that would load.
  for (const auto& items :
       std::vector<std::vector<LoadItem>>{{LoadItem{"ol", {}, {}}},
                                          {LoadItem{"m", {}, {}}, LoadItem{"ol", {}, {}}},
                                          {LoadItem{"ol", "ol3/ol.beam", ol(3)}, LoadItem{"n", {}, {}}}}) {
    auto atomic = cs->atomic_load(items);
    ASSERT_FALSE(atomic);
    EXPECT_EQ(reasons(atomic.failed), refused);
    auto prepared = cs->prepare_loading(items);
    ASSERT_FALSE(prepared);
    EXPECT_EQ(reasons(prepared.failed), refused);
  }
  EXPECT_TRUE(calls_.empty()) << "a refused module's on_load never runs";
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[1]", false}));
  EXPECT_EQ(cs->all_loaded(), (std::vector<std::pair<std::string, std::string>>{{"ol", "ol1/ol.beam"}}));
  // Errors of the loading phase come first (OTP: prepare_loading_3 before the on_load check).
  auto bad = cs->atomic_load({LoadItem{"ol", {}, {}}, LoadItem{"nope", {}, {}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(reasons(bad.failed), (Reasons{{"nope", "nofile"}}));
  // The same module without -on_load goes through.
  ASSERT_TRUE(cs->atomic_load({LoadItem{"ol", "ol1/ol.beam", ol(1)}}));
  EXPECT_EQ(snap(*cs, "ol"), (Snapshot{"[1]", true}));
}

}  // namespace
}  // namespace codestore::loader::testing

// The upgrade plan (include/codestore/upgrade_plan.h) over real compiled modules: the
// application `pa` in two versions (tests/fixtures/upgrade/README.md tables them), laid out as
// two releases and imported through the CLI (upgrade_fixture.h, one Erlang run for the suite).
// Erlang is the reference: release_handler_1:get_current_vsn/1 for what code_change gets, and
// systools:make_relup for the .appup. The 34 .appup files OTP ships parse as file:consult/1
// reads them: tests/etf/consult_erl_test.cpp (ConsultErl.EveryInstalledAppAppupAndRelReadsAsErlangReadsIt)
// and tests/otp/otp_files_test.cpp (OtpAppup.EveryInstalledAppupParses) prove it; not repeated here.
#include <codestore/plan_term.h>
#include <codestore/store.h>
#include <codestore/upgrade_plan.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "base/hex.h"
#include "etf/consult.h"
#include "otp/otp_files.h"
#include "upgrade_fixture.h"

namespace codestore {
namespace {

using etf::Term;

class UpgradePlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v escript >/dev/null 2>&1") != 0) return;
    fixture_ = testing::build_upgrade_fixture().release();
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override {
    if (fixture_ == nullptr) GTEST_SKIP() << "no escript";
    auto s = Store::open(fixture_->db.string(), {});
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    store_ = std::move(*s);
  }
  UpgradePlan plan(const std::string& from, const std::string& to, UpgradePlanOptions o = {}) {
    auto p = plan_release_upgrade(*store_, {"pa", from}, {"pa", to}, o);
    EXPECT_TRUE(p.has_value()) << p.error().to_string();
    return p ? *p : UpgradePlan{};
  }
  static const PlanModule* find(const UpgradePlan& p, const std::string& m) {
    for (const auto& x : p.modules)
      if (x.module == m) return &x;
    return nullptr;
  }
  static std::size_t position(const UpgradePlan& p, const std::string& m) {
    for (std::size_t i = 0; i < p.modules.size(); ++i)
      if (p.modules[i].module == m) return i;
    return p.modules.size();
  }
  static bool restart_has(const UpgradePlan& p, const std::string& kind, const std::string& subject) {
    return std::any_of(p.restart.begin(), p.restart.end(),
                       [&](const RestartReason& r) { return r.kind == kind && r.subject == subject; });
  }

  void EveryModuleIsClassifiedFromItsImage();
  void OldVsnIsWhatReleaseHandlerPasses();
  void TheVsnTrapIsFlagged();
  void AModuleGoesBeforeThoseThatCallItsNewExports();
  void ADowngradeIsTheReverseChange();
  void WhatCannotBeDoneInPlaceNeedsARestart();
  void PurgeMethodsAreSoftUnlessBrutal();
  void TheAppupIsAcceptedBySystoolsMakeRelup();
  void GenerationsPlanAsTheirReleases();
  void UnknownReleasesAreNotFound();
  void ThePlanTermCarriesBothSidesCode();

  static testing::UpgradeFixture* fixture_;
  std::unique_ptr<Store> store_;
};
testing::UpgradeFixture* UpgradePlanTest::fixture_ = nullptr;

void UpgradePlanTest::EveryModuleIsClassifiedFromItsImage() {
  const auto p = plan("0.1.0", "0.2.0");
  EXPECT_FALSE(p.down);
  EXPECT_EQ(find(p, "pa_same"), nullptr) << "the same code is no change";
  ASSERT_EQ(p.modules.size(), 9u);
  struct Want {
    const char* module;
    PlanModule::Change change;
    const char* instruction;
    const char* update_kind;
    const char* behaviour;
    bool code_change;
  };
  using C = PlanModule::Change;
  for (const Want& w : {Want{"pa_srv", C::kChanged, "update", "advanced", "gen_server", true},
                        Want{"pa_fsm", C::kChanged, "update", "advanced", "gen_statem", true},
                        Want{"pa_plain_srv", C::kChanged, "update", "soft", "gen_server", false},
                        Want{"pa_sup", C::kChanged, "update", "supervisor", "supervisor", false},
                        Want{"pa_nif", C::kChanged, "load_module", "", "", false},
                        Want{"pa_z_lib", C::kChanged, "load_module", "", "", false},
                        Want{"pa_a_caller", C::kChanged, "load_module", "", "", false},
                        Want{"pa_gone", C::kRemoved, "delete_module", "", "", false},
                        Want{"pa_new", C::kAdded, "add_module", "", "", false}}) {
    const PlanModule* m = find(p, w.module);
    ASSERT_NE(m, nullptr) << w.module;
    EXPECT_EQ(m->change, w.change) << w.module;
    EXPECT_EQ(m->instruction, w.instruction) << w.module;
    EXPECT_EQ(m->update_kind, w.update_kind) << w.module;
    EXPECT_EQ(m->behaviour, w.behaviour) << w.module;
    EXPECT_EQ(m->code_change, w.code_change) << w.module;
    EXPECT_EQ(m->app, "pa") << w.module;
    EXPECT_EQ(m->from_app_vsn, "0.1.0") << w.module;
    EXPECT_EQ(m->to_app_vsn, "0.2.0") << w.module;
  }
  // Interfaces: exports added and removed, by F/A.
  EXPECT_EQ(find(p, "pa_z_lib")->exports_added, std::vector<std::string>{"new_fun/0"});
  EXPECT_EQ(find(p, "pa_nif")->exports_added, std::vector<std::string>{"sub/2"});
  EXPECT_TRUE(find(p, "pa_srv")->exports_added.empty());
  EXPECT_TRUE(find(p, "pa_fsm")->exports_removed.empty());
  // NIF modules: -on_load and erlang:load_nif/2 seen in the newer image.
  EXPECT_TRUE(find(p, "pa_nif")->on_load);
  EXPECT_TRUE(find(p, "pa_nif")->load_nif);
  EXPECT_FALSE(find(p, "pa_srv")->on_load);
  // Extra carries the application versions.
  EXPECT_TRUE(find(p, "pa_srv")->extra == Term::tuple({Term::string("0.1.0"), Term::string("0.2.0")}));
  EXPECT_TRUE(find(p, "pa_z_lib")->extra.is_nil()) << "load_module calls no code_change";
}

void UpgradePlanTest::OldVsnIsWhatReleaseHandlerPasses() {
  const auto up = plan("0.1.0", "0.2.0");
  const auto down = plan("0.2.0", "0.1.0");
  std::size_t compared = 0;
  for (const auto& [module, truth] : fixture_->vsns) {
    const PlanModule* u = find(up, module);
    if (u == nullptr || u->change != PlanModule::Change::kChanged) continue;
    // release_handler_1:get_current_vsn/1 of each version, as Erlang computed it.
    EXPECT_TRUE(u->older_vsn == truth.v1)
        << module << ": ours " << term_text(u->older_vsn) << ", erl " << term_text(truth.v1);
    EXPECT_TRUE(u->newer_vsn == truth.v2) << module;
    EXPECT_EQ(u->older_vsn_default, truth.default1) << module;
    EXPECT_EQ(u->newer_vsn_default, truth.default2) << module;
    if (u->update_kind == "advanced" || u->update_kind == "supervisor") {
      // Up: OldVsn; down: {down, Vsn}, Vsn the older code's (release_handler_1 # add_vsns/3).
      EXPECT_TRUE(u->old_vsn == truth.v1) << module;
      const PlanModule* d = find(down, module);
      ASSERT_NE(d, nullptr) << module;
      EXPECT_TRUE(d->old_vsn == Term::tuple({Term::atom("down"), truth.v1}))
          << module << ": " << term_text(d->old_vsn);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 3u);  // pa_srv, pa_fsm, pa_sup
  EXPECT_TRUE(find(up, "pa_srv")->old_vsn == Term::string("1"));
}

void UpgradePlanTest::TheVsnTrapIsFlagged() {
  const auto p = plan("0.1.0", "0.2.0");
  const PlanModule* fsm = find(p, "pa_fsm");  // code_change/4, no -vsn
  EXPECT_TRUE(fsm->vsn_trap);
  EXPECT_TRUE(fsm->older_vsn_default);
  ASSERT_FALSE(fsm->warnings.empty());
  EXPECT_NE(fsm->warnings[0].find("-vsn trap"), std::string::npos) << fsm->warnings[0];
  EXPECT_FALSE(find(p, "pa_srv")->vsn_trap) << "-vsn(\"1\") is no trap";
  EXPECT_FALSE(find(p, "pa_plain_srv")->vsn_trap) << "no code_change is called";
}

void UpgradePlanTest::AModuleGoesBeforeThoseThatCallItsNewExports() {
  const auto up = plan("0.1.0", "0.2.0");
  EXPECT_EQ(find(up, "pa_a_caller")->depends_on, std::vector<std::string>{"pa_z_lib"});
  EXPECT_LT(position(up, "pa_z_lib"), position(up, "pa_a_caller"));
  // Stable otherwise: the others keep the base order (by module name within the application).
  std::vector<std::string> rest;
  for (const auto& m : up.modules)
    if (m.module != "pa_a_caller") rest.push_back(m.module);
  EXPECT_TRUE(std::is_sorted(rest.begin(), rest.end()));
  // A downgrade: the caller first (systools_rc: loaded in the order of dependency).
  const auto down = plan("0.2.0", "0.1.0");
  EXPECT_LT(position(down, "pa_a_caller"), position(down, "pa_z_lib"));
}

void UpgradePlanTest::ADowngradeIsTheReverseChange() {
  const auto p = plan("0.2.0", "0.1.0");
  EXPECT_TRUE(p.down);
  EXPECT_EQ(find(p, "pa_gone")->change, PlanModule::Change::kAdded);
  EXPECT_EQ(find(p, "pa_gone")->instruction, "add_module");
  EXPECT_EQ(find(p, "pa_new")->instruction, "delete_module");
  EXPECT_EQ(find(p, "pa_nif")->exports_removed, std::vector<std::string>{"sub/2"});
  EXPECT_TRUE(find(p, "pa_srv")->extra == Term::tuple({Term::string("0.2.0"), Term::string("0.1.0")}));
  EXPECT_EQ(find(p, "pa_srv")->from_app_vsn, "0.2.0");
}

void UpgradePlanTest::WhatCannotBeDoneInPlaceNeedsARestart() {
  const auto p = plan("0.1.0", "0.2.0");
  EXPECT_TRUE(p.needs_restart());
  EXPECT_TRUE(restart_has(p, "supervisor", "pa_sup"));
  EXPECT_TRUE(restart_has(p, "nif", "pa_nif"));
  EXPECT_TRUE(restart_has(p, "nif", "priv/lib/pa_nif.so"));
  EXPECT_TRUE(restart_has(p, "config", "env level")) << "only `level` differs in the .app's env";
  EXPECT_TRUE(restart_has(p, "config", "sys.config"));
  EXPECT_FALSE(restart_has(p, "erts", "erts"));
  for (const auto& r : p.restart) {
    if (r.kind == "supervisor") {
      EXPECT_NE(r.message.find("may"), std::string::npos) << r.message;
    }
  }
  // The same release both ways: nothing.
  const auto none = plan("0.1.0", "0.1.0");
  EXPECT_TRUE(none.empty());
}

void UpgradePlanTest::PurgeMethodsAreSoftUnlessBrutal() {
  const auto soft = plan("0.1.0", "0.2.0");
  const auto brutal = plan("0.1.0", "0.2.0", {.brutal_purge = true});
  const auto text = term_text(plan_instruction(soft, *find(soft, "pa_srv")));
  EXPECT_EQ(text, "{update,pa_srv,{advanced,{\"0.1.0\",\"0.2.0\"}},soft_purge,soft_purge,[]}");
  EXPECT_EQ(term_text(plan_instruction(brutal, *find(brutal, "pa_z_lib"))),
            "{load_module,pa_z_lib,brutal_purge,brutal_purge,[]}");
  EXPECT_EQ(term_text(plan_instruction(soft, *find(soft, "pa_a_caller"))),
            "{load_module,pa_a_caller,soft_purge,soft_purge,[pa_z_lib]}");
}

// The .appup, as text: our reader and Erlang's read the same term; systools:make_relup accepts
// it, and its relup holds the instructions in release_handler's order.
void UpgradePlanTest::TheAppupIsAcceptedBySystoolsMakeRelup() {
  for (bool down : {false, true}) {
    SCOPED_TRACE(down ? "from a downgrade plan" : "from an upgrade plan");
    const auto p = down ? plan("0.2.0", "0.1.0") : plan("0.1.0", "0.2.0");
    const auto appups = plan_appups(p);
    ASSERT_EQ(appups.size(), 1u);
    const AppupFile& a = appups[0];
    EXPECT_EQ(a.path, "lib/pa-0.2.0/ebin/pa.appup");
    auto ours = etf::consult(a.text, a.path);
    ASSERT_TRUE(ours.has_value()) << ours.error().to_string();
    ASSERT_EQ(ours->size(), 1u);
    EXPECT_TRUE((*ours)[0] == a.term);
    auto parsed = otp::parse_appup(*ours, a.path);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
    EXPECT_EQ(parsed->vsn, "0.2.0");
    ASSERT_EQ(parsed->up.size(), 1u);
    EXPECT_EQ(parsed->up[0].version, "0.1.0");
    EXPECT_EQ(parsed->up[0].instructions.size(), 9u);
    if (down) continue;  // one Erlang run: both plans give the same appup
    EXPECT_EQ(plan_appups(plan("0.2.0", "0.1.0"))[0].text, a.text);

    const auto relup = testing::make_relup(*fixture_, a.text);
    ASSERT_EQ(relup.error, "") << a.text;
    EXPECT_TRUE(relup.appup == Term::list({a.term})) << "file:consult/1 reads " << term_text(relup.appup);
    // {"0.2.0", [{"0.1.0", Descr, UpInstrs}], [{"0.1.0", Descr, DownInstrs}]}
    const std::string text = term_text(relup.relup);
    const auto up_at = text.find("[{\"0.1.0\",[],[");
    const auto down_at = text.find("[{\"0.1.0\",[],[", up_at + 1);
    ASSERT_NE(down_at, std::string::npos) << text;
    const std::string up_script = text.substr(up_at, down_at - up_at), down_script = text.substr(down_at);
    for (const char* want : {"{code_change,up,[{pa_srv,{\"0.1.0\",\"0.2.0\"}}]}",
                             "{code_change,up,[{pa_fsm,{\"0.1.0\",\"0.2.0\"}}]}", "{suspend,[pa_plain_srv]}",
                             "{remove,{pa_gone,", "{load,{pa_new,", "{load,{pa_srv,soft_purge,soft_purge}}"})
      EXPECT_NE(up_script.find(want), std::string::npos) << want << " in " << up_script;
    for (const char* want :
         {"{code_change,down,[{pa_srv,{\"0.2.0\",\"0.1.0\"}}]}", "{load,{pa_gone,", "{remove,{pa_new,"})
      EXPECT_NE(down_script.find(want), std::string::npos) << want << " in " << down_script;
    // Dependencies: up, pa_z_lib's new export is loaded before its caller; down, after.
    EXPECT_LT(up_script.find("{load,{pa_z_lib,"), up_script.find("{load,{pa_a_caller,"));
    EXPECT_GT(down_script.find("{load,{pa_z_lib,"), down_script.find("{load,{pa_a_caller,"));
    // A downgrade runs code_change({down, _}) in the newer code, before the load.
    EXPECT_LT(down_script.find("{code_change,down,[{pa_srv"), down_script.find("{load,{pa_srv,"));
  }
}

// A channel's generations: deploying pa@0.1.0 then pa@0.2.0 makes the same plan; rolling the
// channel back makes the releases' downgrade.
void UpgradePlanTest::GenerationsPlanAsTheirReleases() {
  auto w = Store::open(fixture_->db.string(), {.channel = "plan-test"});
  ASSERT_TRUE(w.has_value()) << w.error().to_string();
  auto d1 = (*w)->deploy({"pa", "0.1.0"});
  ASSERT_TRUE(d1.has_value()) << d1.error().to_string();
  auto d2 = (*w)->deploy({"pa", "0.2.0"});
  ASSERT_TRUE(d2.has_value()) << d2.error().to_string();
  const auto by_release = plan("0.1.0", "0.2.0");
  for (bool down : {false, true}) {
    auto g = down ? plan_generation_upgrade(*store_, "plan-test", d2->generation, d1->generation)
                  : plan_generation_upgrade(*store_, "plan-test", d1->generation, d2->generation);
    ASSERT_TRUE(g.has_value()) << g.error().to_string();
    EXPECT_EQ(g->down, down);
    EXPECT_EQ(g->from, "plan-test#" + std::to_string(down ? d2->generation : d1->generation));
    if (down) continue;
    EXPECT_EQ(g->from_release, (ReleaseId{"pa", "0.1.0"}));
    ASSERT_EQ(g->modules.size(), by_release.modules.size());
    for (std::size_t i = 0; i < g->modules.size(); ++i) {
      EXPECT_EQ(g->modules[i].module, by_release.modules[i].module);
      EXPECT_EQ(g->modules[i].instruction, by_release.modules[i].instruction);
      EXPECT_TRUE(g->modules[i].extra == by_release.modules[i].extra) << g->modules[i].module;
    }
    EXPECT_EQ(g->restart.size(), by_release.restart.size());
  }
  // A channel rollback is a newer generation with the older release: a downgrade, as the
  // releases' own plan says ({down, Vsn} to code_change in the code the node runs), and the
  // step after it (a second rollback) an upgrade again.
  auto r3 = (*w)->channel_rollback();
  ASSERT_TRUE(r3.has_value()) << r3.error().to_string();
  auto r4 = (*w)->channel_rollback();
  ASSERT_TRUE(r4.has_value()) << r4.error().to_string();
  ASSERT_GT(r3->number, d2->generation);
  const auto release_down = plan("0.2.0", "0.1.0");
  for (auto [from, to, down] :
       {std::tuple{d2->generation, r3->number, true}, std::tuple{r3->number, r4->number, false}}) {
    auto g = plan_generation_upgrade(*store_, "plan-test", from, to);
    ASSERT_TRUE(g.has_value()) << g.error().to_string();
    EXPECT_EQ(g->down, down) << from << " -> " << to;
    EXPECT_EQ(g->from_release, (ReleaseId{"pa", down ? "0.2.0" : "0.1.0"}));
    EXPECT_EQ(g->to_release, (ReleaseId{"pa", down ? "0.1.0" : "0.2.0"}));
    const auto& want = down ? release_down : by_release;
    ASSERT_EQ(g->modules.size(), want.modules.size());
    for (std::size_t i = 0; i < g->modules.size(); ++i) {
      EXPECT_EQ(g->modules[i].module, want.modules[i].module);
      EXPECT_EQ(g->modules[i].instruction, want.modules[i].instruction);
      EXPECT_TRUE(g->modules[i].old_vsn == want.modules[i].old_vsn) << g->modules[i].module;
      EXPECT_TRUE(g->modules[i].extra == want.modules[i].extra) << g->modules[i].module;
    }
  }
  auto bad = plan_generation_upgrade(*store_, "plan-test", 1, 99);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Code::kNotFound);
  EXPECT_NE(bad.error().message().find("plan plan-test#1 -> plan-test#99"), std::string::npos)
      << bad.error().message();
}

void UpgradePlanTest::UnknownReleasesAreNotFound() {
  auto p = plan_release_upgrade(*store_, {"pa", "0.1.0"}, {"pa", "9.9.9"});
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), Code::kNotFound);
  EXPECT_NE(p.error().message().find("pa@9.9.9"), std::string::npos) << p.error().message();
}

Term bin(std::string_view s) {
  return Term::binary(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

// plan_term (include/codestore/plan_term.h, docs/plan-apply.md): each module's entry as the
// plan says, with the store's bytes of each side; the term survives term_to_binary.
void UpgradePlanTest::ThePlanTermCarriesBothSidesCode() {
  const auto p = plan("0.1.0", "0.2.0");
  auto t = plan_term(*store_, p, {Term::tuple({Term::atom("pa_probe"), Term::atom("ok"), Term::list({})})});
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  auto back = etf::decode(etf::encode(*t));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(*back == *t);
  const auto* top = std::get_if<etf::Map>(&t->value());
  ASSERT_NE(top, nullptr);
  auto get = [](const etf::Map& m, const std::string& key) -> Term {
    for (const auto& [k, v] : m.pairs)
      if (k.is_atom(key)) return v;
    ADD_FAILURE() << "no key " << key;
    return Term();
  };
  EXPECT_TRUE(get(*top, "format") == Term::integer(1));
  EXPECT_TRUE(get(*top, "direction").is_atom("up"));
  EXPECT_TRUE(get(*top, "purge").is_atom("soft_purge"));
  EXPECT_TRUE(get(*top, "probe") == Term::tuple({Term::atom("pa_probe"), Term::atom("ok"), Term::list({})}));
  auto restart = get(*top, "needs_restart").list_elements();
  ASSERT_TRUE(restart.has_value());
  EXPECT_EQ(restart->size(), p.restart.size());
  auto mods = get(*top, "modules").list_elements();
  ASSERT_TRUE(mods.has_value());
  ASSERT_EQ(mods->size(), p.modules.size());
  for (std::size_t i = 0; i < mods->size(); ++i) {
    const PlanModule& pm = p.modules[i];
    SCOPED_TRACE(pm.module);
    const auto* m = std::get_if<etf::Map>(&(*mods)[i].value());
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(get(*m, "module") == bin(pm.module)) << "in the plan's order (names as binaries)";
    EXPECT_TRUE(get(*m, "instruction").is_atom(pm.instruction));
    EXPECT_TRUE(get(*m, "update_kind").is_atom(pm.update_kind.empty() ? "none" : pm.update_kind));
    EXPECT_TRUE(get(*m, "on_load").is_atom(pm.on_load ? "true" : "false"));
    EXPECT_TRUE(get(*m, "vsn_trap").is_atom(pm.vsn_trap ? "true" : "false"));
    EXPECT_TRUE(get(*m, "old_vsn") == (pm.old_vsn.is_nil() ? Term::atom("undefined") : pm.old_vsn));
    for (auto [side, version, md5, vsn] : {std::tuple{"from", pm.from_version, pm.from_md5, pm.from_app_vsn},
                                           std::tuple{"to", pm.to_version, pm.to_md5, pm.to_app_vsn}}) {
      const Term code = get(*m, std::string(side) + "_code");
      const Term file = get(*m, std::string(side) + "_file");
      const Term md5_term = get(*m, std::string(side) + "_md5");
      if (version == 0) {
        EXPECT_TRUE(code.is_atom("undefined")) << side;
        EXPECT_TRUE(file.is_atom("undefined")) << side;
        EXPECT_TRUE(md5_term.is_atom("undefined")) << side;
        continue;
      }
      auto bytes = store_->get(pm.module, version);
      ASSERT_TRUE(bytes.has_value());
      ASSERT_NE(code.as_binary(), nullptr) << side;
      EXPECT_EQ(code.as_binary()->bytes, *bytes) << side;
      EXPECT_TRUE(file == Term::string("lib/pa-" + vsn + "/ebin/" + pm.module + ".beam")) << side;
      ASSERT_NE(md5_term.as_binary(), nullptr) << side;
      EXPECT_EQ(base::hex(md5_term.as_binary()->bytes), md5) << side;
    }
  }
  // DepMods as the .appup's: pa_a_caller calls pa_z_lib's new export.
  for (const auto& e : *mods) {
    const auto& m = std::get<etf::Map>(e.value());
    if (get(m, "module") == bin("pa_a_caller")) {
      EXPECT_TRUE(get(m, "dep_mods") == Term::list({bin("pa_z_lib")}));
    }
  }
}

// One test: ctest runs each test in a process of its own, and the fixture (an Erlang run and
// an import of kernel, stdlib and sasl) costs seconds; each part says its name on failure.
TEST_F(UpgradePlanTest, PlanOfTwoRealReleases) {
  {
    SCOPED_TRACE("EveryModuleIsClassifiedFromItsImage");
    EveryModuleIsClassifiedFromItsImage();
  }
  {
    SCOPED_TRACE("OldVsnIsWhatReleaseHandlerPasses");
    OldVsnIsWhatReleaseHandlerPasses();
  }
  {
    SCOPED_TRACE("TheVsnTrapIsFlagged");
    TheVsnTrapIsFlagged();
  }
  {
    SCOPED_TRACE("AModuleGoesBeforeThoseThatCallItsNewExports");
    AModuleGoesBeforeThoseThatCallItsNewExports();
  }
  {
    SCOPED_TRACE("ADowngradeIsTheReverseChange");
    ADowngradeIsTheReverseChange();
  }
  {
    SCOPED_TRACE("WhatCannotBeDoneInPlaceNeedsARestart");
    WhatCannotBeDoneInPlaceNeedsARestart();
  }
  {
    SCOPED_TRACE("PurgeMethodsAreSoftUnlessBrutal");
    PurgeMethodsAreSoftUnlessBrutal();
  }
  {
    SCOPED_TRACE("TheAppupIsAcceptedBySystoolsMakeRelup");
    TheAppupIsAcceptedBySystoolsMakeRelup();
  }
  {
    SCOPED_TRACE("ThePlanTermCarriesBothSidesCode");
    ThePlanTermCarriesBothSidesCode();
  }
  {
    SCOPED_TRACE("GenerationsPlanAsTheirReleases");
    GenerationsPlanAsTheirReleases();
  }
  {
    SCOPED_TRACE("UnknownReleasesAreNotFound");
    UnknownReleasesAreNotFound();
  }
}

}  // namespace
}  // namespace codestore

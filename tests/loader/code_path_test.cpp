// The code path (docs/code-server.md §3–4): OTP's mutation rules,
// lookups, app names, sticky set-up and the multi-module loads.
#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

using Dirs = std::vector<std::string>;

class CodePath : public LoaderFixture {
 protected:
  // apps/NAME-VSN/ebin dirs with copies of the fixture images.
  std::string app(const std::string& name_vsn, const std::string& image) {
    fs::path ebin = dir_ / "apps" / name_vsn / "ebin";
    fs::create_directories(ebin);
    fs::copy_file(dir_ / image, ebin / fs::path(image).filename(), fs::copy_options::overwrite_existing);
    return ebin.string();
  }
};

TEST_F(CodePath, FirstEntryThatHasTheModuleWins) {
  auto cs = make(Mode::kInteractive, {dir("v3"), dir("v1"), dir("v2")});
  EXPECT_EQ(cs->which("n"), dir("v1") + "/n.beam") << "v3 has no n";
  ASSERT_TRUE(cs->load_file("n"));
  EXPECT_EQ(snap(*cs, "n"), (Snapshot{"[49]", false}));
  EXPECT_EQ(cs->is_loaded("n"), dir("v1") + "/n.beam");
}

TEST_F(CodePath, AddPathzKeepsAnExistingEntryWhereItIs) {
  auto cs = make(Mode::kInteractive, {dir("v1"), dir("v2")});
  ASSERT_TRUE(cs->add_pathz(dir("v1") + "/").is_ok());
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1"), dir("v2")}));
}

TEST_F(CodePath, AddPathaMovesAnExistingEntryToTheFront) {
  auto cs = make(Mode::kInteractive, {dir("v1"), dir("v2")});
  ASSERT_TRUE(cs->add_patha(dir("v2")).is_ok());
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v2"), dir("v1")}));
  EXPECT_EQ(cs->which("n"), dir("v2") + "/n.beam");
}

TEST_F(CodePath, TrailingSlashesAreDropped) {
  auto cs = make();
  ASSERT_TRUE(cs->add_pathz(dir("v1") + "//").is_ok());
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1")}));
}

TEST_F(CodePath, BadDirectoryChangesNothing) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  EXPECT_EQ(cs->add_pathz(dir("nope")).code(), Code::kInvalidArgument);
  EXPECT_EQ(cs->add_patha(dir("nope")).code(), Code::kInvalidArgument);
  EXPECT_EQ(cs->set_path({dir("v2"), dir("nope")}).code(), Code::kInvalidArgument);
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1")})) << "set_path is all or nothing";
  Options bad;
  bad.path = {dir("nope")};
  EXPECT_FALSE(CodeServer::create(std::move(bad)).has_value());
}

TEST_F(CodePath, AddPathsSkipsInvalidAndPathsaReverses) {
  auto cs = make();
  cs->add_pathsz({dir("v1"), dir("nope"), dir("v2")});
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1"), dir("v2")}));
  ASSERT_TRUE(cs->set_path({}).is_ok());
  cs->add_pathsa({dir("v1"), dir("v2"), dir("v3")});
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v3"), dir("v2"), dir("v1")}));
}

TEST_F(CodePath, DelPathByDirOrAppName) {
  std::string foo = app("foo-1.0", "v1/m.beam");
  auto cs = make(Mode::kInteractive, {dir("v1"), foo, dir("v2")});
  EXPECT_TRUE(cs->del_path("foo"));
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1"), dir("v2")}));
  EXPECT_FALSE(cs->del_path("foo"));
  EXPECT_TRUE(cs->del_path(dir("v2") + "/"));
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1")}));
  EXPECT_TRUE(cs->del_path("v1")) << "the app name of .../v1 is v1";
  EXPECT_TRUE(cs->get_path().empty());
}

TEST_F(CodePath, ReplacePathInPlaceOrAppended) {
  std::string foo1 = app("foo-1.0", "v1/m.beam"), foo2 = app("foo-2.0", "v2/m.beam");
  auto cs = make(Mode::kInteractive, {dir("v1"), foo1, dir("v2")});
  ASSERT_TRUE(cs->replace_path("foo", foo2).is_ok());
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1"), foo2, dir("v2")}));
  EXPECT_EQ(cs->replace_path("bar", foo2).code(), Code::kNotFound) << "bad_name";
  EXPECT_EQ(cs->replace_path("foo", dir_.string() + "/apps/foo-3.0/ebin").code(), Code::kInvalidArgument);
  ASSERT_TRUE(cs->set_path({dir("v1")}).is_ok());
  ASSERT_TRUE(cs->replace_path("foo", foo1).is_ok());
  EXPECT_EQ(cs->get_path(), (Dirs{dir("v1"), foo1})) << "appended when no entry has the name";
}

TEST_F(CodePath, LibDirAndPrivDirByAppName) {
  std::string foo1 = app("foo-1.0", "v1/m.beam"), foo2 = app("foo-2.0", "v2/m.beam");
  auto cs = make(Mode::kInteractive, {foo2, foo1});
  EXPECT_EQ(cs->lib_dir("foo"), dir_.string() + "/apps/foo-2.0") << "the earliest entry";
  EXPECT_EQ(cs->priv_dir("foo"), dir_.string() + "/apps/foo-2.0/priv");
  EXPECT_EQ(cs->lib_dir("bar"), std::nullopt);
}

TEST_F(CodePath, WhereIsFileAndClash) {
  auto cs = make(Mode::kInteractive, {dir("v3"), dir("v1"), dir("v2")});
  EXPECT_EQ(cs->where_is_file("n.beam"), dir("v1") + "/n.beam");
  EXPECT_EQ(cs->where_is_file("nope.beam"), std::nullopt);
  EXPECT_EQ(cs->clash(), (std::vector<Clash>{{"m", dir("v3") + "/m.beam", dir("v1") + "/m.beam"},
                                             {"m", dir("v3") + "/m.beam", dir("v2") + "/m.beam"},
                                             {"n", dir("v1") + "/n.beam", dir("v2") + "/n.beam"}}));
}

TEST_F(CodePath, GetObjectCodeReadsWithoutLoading) {
  auto cs = make(Mode::kInteractive, {dir("v2")});
  auto oc = cs->get_object_code("m");
  ASSERT_TRUE(oc);
  EXPECT_EQ(oc->bytes, bytes("v2/m.beam"));
  EXPECT_EQ(oc->file, dir("v2") + "/m.beam");
  EXPECT_FALSE(cs->is_loaded("m"));
  EXPECT_FALSE(cs->get_object_code("nope"));
}

TEST_F(CodePath, AllAvailableMergesLoadedAndPathInInteractiveModeOnly) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  ASSERT_TRUE(cs->load_binary("m", "x.beam", bytes("v2/m.beam")));
  EXPECT_EQ(cs->all_available(),
            (std::vector<AvailableModule>{{"m", "x.beam", true}, {"n", dir("v1") + "/n.beam", false}}));
  auto embedded = make(Mode::kEmbedded, {dir("v1")});
  ASSERT_TRUE(embedded->load_binary("m", "x.beam", bytes("v2/m.beam")));
  EXPECT_EQ(embedded->all_available(), (std::vector<AvailableModule>{{"m", "x.beam", true}}));
}

TEST_F(CodePath, LoadErrors) {
  auto cs = make(Mode::kInteractive, {dir("bad")});
  EXPECT_EQ(cs->load_file("m").error().reason(), reason::kBadfile) << "truncated";
  EXPECT_EQ(cs->load_file("nope").error().reason(), reason::kNofile);
  EXPECT_EQ(cs->load_file("v1/m").error().reason(), reason::kNofile) << "a name with a separator";
  ASSERT_TRUE(cs->set_path({dir("wrong")}).is_ok());
  auto wrong = cs->load_file("m");
  EXPECT_EQ(wrong.error().reason(), reason::kBadfile);
  EXPECT_EQ(wrong.error().message(), "module name in object code is n");
  EXPECT_EQ(cs->load_binary("m", "j", bytes("junk/m.beam")).error().reason(), reason::kBadfile);
  EXPECT_EQ(cs->load_abs(file("v1/none.beam")).error().reason(), reason::kNofile);
  EXPECT_EQ(cs->ensure_loaded("nope").error().reason(), reason::kNofile);
  EXPECT_EQ(cs->load_binary("", "j", bytes("v1/m.beam")).error().reason(), reason::kBadarg);
  EXPECT_TRUE(cs->all_loaded().empty());
}

// One error type: a loader Status carries Erlang's reason and the code that reason has
// (docs/code-server.md "Errors"); a multi-module load's Status is its first module's.
TEST_F(CodePath, EachReasonComesWithItsCode) {
  auto cs = make(Mode::kInteractive, {dir("bad")});
  EXPECT_EQ(cs->load_file("m").error().code(), Code::kCorruption) << "badfile: a truncated image";
  EXPECT_EQ(cs->load_file("nope").error().code(), Code::kNotFound) << "nofile";
  EXPECT_EQ(cs->load_binary("", "j", bytes("v1/m.beam")).error().code(), Code::kInvalidArgument) << "badarg";
  ASSERT_TRUE(cs->set_path({dir("wrong")}).is_ok());
  EXPECT_EQ(cs->load_file("m").error().code(), Code::kInvalidArgument) << "badfile: another module's image";

  ASSERT_TRUE(cs->set_path({dir("v1")}).is_ok());
  ASSERT_TRUE(cs->load_file("m"));
  ASSERT_TRUE(cs->load_file("m"));  // current and old
  auto not_purged = cs->load_file("m");
  EXPECT_EQ(not_purged.error().reason(), reason::kNotPurged);
  EXPECT_EQ(not_purged.error().code(), Code::kFailedPrecondition);
  cs->stick_mod("m");
  auto sticky = cs->load_binary("m", "x", bytes("v2/m.beam"));
  EXPECT_EQ(sticky.error().reason(), reason::kStickyDirectory);
  EXPECT_EQ(sticky.error().code(), Code::kPermissionDenied);
  EXPECT_EQ(make(Mode::kEmbedded, {dir("v1")})->ensure_loaded("m").error().code(), Code::kPermissionDenied)
      << "embedded";

  auto dup = cs->atomic_load({LoadItem{"n", {}, {}}, LoadItem{"n", {}, {}}});
  EXPECT_EQ(dup.failed.at(0).status.code(), Code::kInvalidArgument) << "duplicated";
  auto bad = cs->atomic_load({LoadItem{"nope", {}, {}}, LoadItem{"m", "j", bytes("junk/m.beam")}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status.reason(), reason::kNofile) << bad.status.to_string();
  EXPECT_EQ(bad.status.code(), Code::kNotFound);
  EXPECT_EQ(bad.status.message(), "nope: nope") << "the module named";

  auto p = cs->spawn("p");
  auto undef = p->call("m", "nosuch", 3);
  EXPECT_EQ(undef.error().reason(), reason::kUndef);
  EXPECT_EQ(undef.error().code(), Code::kNotFound);
  EXPECT_EQ(undef.error().message(), "m:nosuch/3 is undefined");
  p->exit();
  auto exited = p->call("m", "module_info", 0);
  EXPECT_EQ(exited.error().reason(), reason::kExited);
  EXPECT_EQ(exited.error().code(), Code::kFailedPrecondition);
}

TEST_F(CodePath, GzipImagesLoadLikePlainOnes) {
  auto cs = make(Mode::kInteractive, {dir("gz")});
  ASSERT_TRUE(cs->load_file("m"));
  auto gz = cs->current_shared("m");
  ASSERT_TRUE(cs->load_binary("m", "v3", bytes("v3/m.beam")));
  auto plain = cs->current_shared("m");
  EXPECT_EQ(gz->md5(), plain->md5());
  EXPECT_EQ(gz->vsn_text(), "[51]");
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kLoaded);
}

TEST_F(CodePath, InteractiveModeSticksKernelStdlibCompiler) {
  std::string kernel = app("kernel-8.5", "v1/n.beam"), other = app("foo-1.0", "v1/m.beam");
  auto cs = make(Mode::kInteractive, {kernel, other});
  ASSERT_TRUE(cs->load_file("n")) << "the first load of a sticky module is allowed";
  EXPECT_TRUE(cs->is_sticky("n"));
  EXPECT_EQ(cs->load_binary("n", "x", bytes("v2/n.beam")).error().reason(), reason::kStickyDirectory);
  ASSERT_TRUE(cs->load_file("m"));
  EXPECT_FALSE(cs->is_sticky("m"));
  auto embedded = make(Mode::kEmbedded, {kernel});
  ASSERT_TRUE(embedded->load_file("n"));
  EXPECT_FALSE(embedded->is_sticky("n")) << "nothing is sticky in embedded mode";
}

TEST_F(CodePath, StickDirListsModulesAtThatMoment) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  EXPECT_FALSE(cs->stick_dir(dir("nope")));
  ASSERT_TRUE(cs->stick_dir(dir("v1")));
  ASSERT_TRUE(cs->load_file("m"));
  ASSERT_TRUE(cs->load_file("n"));
  EXPECT_TRUE(cs->is_sticky("m"));
  EXPECT_TRUE(cs->is_sticky("n"));
  ASSERT_TRUE(cs->unstick_dir(dir("v1")));
  EXPECT_FALSE(cs->is_sticky("m"));
}

TEST_F(CodePath, AtomicLoadReportsEveryErrorOfTheFailingPhase) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto dup = cs->atomic_load({LoadItem{"m", {}, {}}, LoadItem{"m", {}, {}}, LoadItem{"n", {}, {}}});
  ASSERT_FALSE(dup);
  EXPECT_EQ(reasons(dup.failed), (Reasons{{"m", "duplicated"}}));
  auto bad = cs->atomic_load(
      {LoadItem{"m", "j", bytes("junk/m.beam")}, LoadItem{"nope", {}, {}}, LoadItem{"n", {}, {}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(reasons(bad.failed), (Reasons{{"m", "badfile"}, {"nope", "nofile"}}));
  EXPECT_TRUE(cs->all_loaded().empty());
  cs->stick_mod("m");
  ASSERT_TRUE(cs->load_file("m"));
  auto sticky = cs->atomic_load({LoadItem{"m", "v2", bytes("v2/m.beam")}, LoadItem{"n", {}, {}}});
  ASSERT_FALSE(sticky);
  EXPECT_EQ(reasons(sticky.failed), (Reasons{{"m", "sticky_directory"}}));
  EXPECT_FALSE(cs->is_loaded("n"));
}

TEST_F(CodePath, PreparedHandleIsSingleUse) {
  auto cs = make(Mode::kInteractive, {dir("v1")});
  auto prepared = cs->prepare_loading({LoadItem{"m", {}, {}}, LoadItem{"n", {}, {}}});
  ASSERT_TRUE(prepared);
  EXPECT_FALSE(cs->is_loaded("m")) << "nothing is visible before finish_loading";
  ASSERT_TRUE(cs->finish_loading(prepared.prepared));
  EXPECT_TRUE(prepared.prepared.used());
  auto again = cs->finish_loading(prepared.prepared);
  ASSERT_FALSE(again);
  EXPECT_EQ(reasons(again.failed), (Reasons{{"", "badarg"}}));
  Prepared empty;
  EXPECT_FALSE(cs->finish_loading(empty));
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false})) << "the reuse changed nothing";
}

TEST_F(CodePath, EmbeddedBootLoadsTheListInOrder) {
  auto cs = make(Mode::kEmbedded, {dir("v2")});
  ASSERT_TRUE(cs->boot({"n", "m"}));
  EXPECT_EQ(cs->all_loaded().size(), 2u);
  auto failed = cs->boot({"nope"});
  ASSERT_FALSE(failed);
  EXPECT_EQ(reasons(failed.failed), (Reasons{{"nope", "nofile"}}));
  EXPECT_EQ(cs->get_mode(), Mode::kEmbedded);
}

}  // namespace
}  // namespace codestore::loader::testing

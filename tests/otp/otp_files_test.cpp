// The OTP file readers (otp/otp_files.h) on the files OTP and Elixir install, compared with
// what Erlang reads from them (otp_truth.escript, one run per kind), and on bad input.
#include "otp/otp_files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "etf/consult.h"
#include "otp/otp_truth.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::otp {
namespace {

using namespace testing_truth;  // NOLINT: the tests' helpers

namespace fs = std::filesystem;
using etf::Term;

std::vector<std::string> app_files() {
  auto out = files_in("/usr/lib/erlang/lib", "ebin", ".app");
  for (auto& f : files_in("/usr/lib/elixir/lib", "ebin", ".app")) out.push_back(f);
  return out;
}

TEST(OtpApp, EveryInstalledAppReadsAsErlangReadsIt) {
  auto files = app_files();
  if (files.empty()) GTEST_SKIP() << "no OTP under /usr/lib/erlang";
  EXPECT_GE(files.size(), 30u);
  if (!have_erl()) GTEST_SKIP() << "no escript";
  auto truth = erl_truth("apps", files);
  ASSERT_EQ(truth.size(), files.size());
  std::size_t modules = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto app = read_app_file(files[i]);
    ASSERT_TRUE(app.has_value()) << app.error().to_string();
    EXPECT_TRUE(app->missing.empty()) << files[i] << " lacks " << app->missing.front();
    Term ours =
        Term::tuple({Term::atom(app->name), str(app->vsn), atoms(app->modules), atoms(app->registered),
                     atoms(app->applications), atoms(app->included_applications)});
    EXPECT_TRUE(ours == truth[i]) << files[i] << "\n ours " << etf::format_w(ours) << "\n erl  "
                                  << etf::format_w(truth[i]);
    modules += app->modules.size();
  }
  EXPECT_GT(modules, 1000u);  // erl_interface lists none; the others make up for it
}

TEST(OtpApp, EveryInstalledAppMatchesItsEbin) {
  auto files = app_files();
  if (files.empty()) GTEST_SKIP() << "no OTP under /usr/lib/erlang";
  for (const auto& f : files) {
    auto app = read_app_file(f);
    ASSERT_TRUE(app.has_value()) << app.error().to_string();
    auto check = check_app_dir(*app, fs::path(f).parent_path().string(), f, fs::path(f).stem().string());
    ASSERT_TRUE(check.has_value()) << check.error().to_string();
    for (const auto& issue : check->issues) {
      EXPECT_EQ(issue.severity, AppIssue::Severity::kWarning) << issue.message;
    }
  }
}

// A copy of a real application's ebin (stdlib's .app and a few of its beams), made wrong in
// each of the ways systools catches.
TEST(OtpApp, CheckFindsMissingUnlistedAndDuplicatedModules) {
  auto files = files_in("/usr/lib/erlang/lib", "ebin", ".app");
  auto it = std::find_if(files.begin(), files.end(),
                         [](const std::string& f) { return f.ends_with("/stdlib.app"); });
  if (it == files.end()) GTEST_SKIP() << "no stdlib.app";
  auto app = read_app_file(*it);
  ASSERT_TRUE(app.has_value()) << app.error().to_string();
  std::vector<std::string> beams = app->modules;
  ASSERT_TRUE(check_app_modules(*app, beams, "stdlib.app", "stdlib").ok());
  EXPECT_TRUE(check_app_modules(*app, beams, "stdlib.app", "stdlib").issues.empty());

  // lists.beam gone, extra.beam added.
  std::vector<std::string> changed;
  for (const auto& m : beams)
    if (m != "lists") changed.push_back(m);
  changed.push_back("extra");
  auto check = check_app_modules(*app, changed, "stdlib.app", "stdlib");
  EXPECT_FALSE(check.ok());
  ASSERT_EQ(check.issues.size(), 2u);
  EXPECT_EQ(check.issues[0].kind, "module_not_found");
  EXPECT_EQ(check.issues[0].module, "lists");
  EXPECT_EQ(check.issues[0].severity, AppIssue::Severity::kError);
  EXPECT_NE(check.issues[0].message.find("stdlib.app"), std::string::npos);
  EXPECT_EQ(check.issues[1].kind, "module_not_listed");
  EXPECT_EQ(check.issues[1].module, "extra");
  EXPECT_EQ(check.issues[1].severity, AppIssue::Severity::kWarning);

  // Only the unlisted beam: a warning, still ok.
  beams.push_back("extra");
  EXPECT_TRUE(check_app_modules(*app, beams, "stdlib.app", "stdlib").ok());

  // A module listed twice, and a file named for another application.
  AppSpec twice = *app;
  twice.modules.push_back("lists");
  check = check_app_modules(twice, app->modules, "stdlib.app", "other");
  EXPECT_FALSE(check.ok());
  std::vector<std::string> kinds;
  for (const auto& i : check.issues) kinds.push_back(i.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"bad_application_name", "duplicate_modules"}));

  // The same over a real directory.
  testing::TempDir dir;
  for (const char* m : {"lists", "maps", "extra"})
    testing::write_file(dir / "ebin" / (std::string(m) + ".beam"), "x");
  fs::create_directories(dir / "ebin" / "sub.beam");  // a directory is not a beam
  AppSpec small = *app;
  small.modules = {"lists", "maps", "sub", "gone"};
  auto on_disk = check_app_dir(small, (dir / "ebin").string(), "stdlib.app", "stdlib");
  ASSERT_TRUE(on_disk.has_value()) << on_disk.error().to_string();
  kinds.clear();
  for (const auto& i : on_disk->issues) kinds.push_back(i.kind + ":" + i.module);
  EXPECT_EQ(kinds, (std::vector<std::string>{"module_not_found:gone", "module_not_found:sub",
                                             "module_not_listed:extra"}));
  auto missing = check_app_dir(small, (dir / "nope").string(), "stdlib.app");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST(OtpApp, BadAppFilesAreRefusedNamingTheFile) {
  testing::TempDir dir;
  struct Bad {
    const char* text;
    const char* reason;
  };
  const Bad bad[] = {
      {"{application, x, [{vsn, v1}]}.\n", "bad_param"},
      {"{application, x, [{vsn, \"1\"}, {modules, [a, \"b\"]}]}.\n", "bad_param"},
      {"{application, x, [{vsn, \"1\"}, {env, [{1, 2}]}]}.\n", "bad_param"},
      {"{application, x, [{vsn, \"1\"}, {mod, {\"m\", []}}]}.\n", "bad_param"},
      {"{application, x, [{vsn, \"1\"}, {maxT, 0}]}.\n", "bad_param"},
      {"{application, x, [{vsn, \"1\", extra}]}.\n", "missing_param"},
      {"{application, \"x\", []}.\n", "badly_formatted_application"},
      {"{app, x, []}.\n", "badly_formatted_application"},
      {"{application, x, [a|b]}.\n", "badly_formatted_application"},
      {"{application, x, []}.\n{application, y, []}.\n", "badly_formatted_application"},
      {"", "badly_formatted_application"},
      {"{application, x, [{vsn, \"1\"}]\n", ""},  // no dot: consult's error
  };
  int i = 0;
  for (const auto& b : bad) {
    std::string path = (dir / ("bad" + std::to_string(i++) + ".app")).string();
    testing::write_file(path, b.text);
    auto app = read_app_file(path);
    ASSERT_FALSE(app.has_value()) << b.text;
    EXPECT_EQ(app.error().code(), Code::kCorruption) << b.text;
    EXPECT_EQ(app.error().message().rfind(path + ":", 0), 0u) << app.error().message();
    EXPECT_EQ(app.error().reason(), b.reason) << b.text << ": " << app.error().to_string();
  }
  // What systools requires and the runtime does not: listed, not refused.
  std::string path = (dir / "min.app").string();
  testing::write_file(path, "{application, min, [{vsn, \"1\"}, {mod, []}, {start_phases, undefined}]}.\n");
  auto app = read_app_file(path);
  ASSERT_TRUE(app.has_value()) << app.error().to_string();
  EXPECT_EQ(app->missing, (std::vector<std::string>{"description", "modules", "registered", "applications"}));
  EXPECT_FALSE(app->mod.has_value());
  EXPECT_FALSE(app->start_phases.has_value());
  EXPECT_TRUE(app->env.is_nil());
}

TEST(OtpRel, EveryInstalledRelReadsAsErlangReadsIt) {
  auto files = files_in("/usr/lib/erlang/releases", "", ".rel");
  if (files.empty()) GTEST_SKIP() << "no OTP releases";
  if (!have_erl()) GTEST_SKIP() << "no escript";
  auto truth = erl_truth("rels", files);
  ASSERT_EQ(truth.size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto rel = read_rel_file(files[i]);
    ASSERT_TRUE(rel.has_value()) << rel.error().to_string();
    etf::TermList names, vsns;
    for (const auto& a : rel->applications) {
      names.push_back(Term::atom(a.name));
      vsns.push_back(str(a.vsn));
      EXPECT_EQ(a.type, "permanent") << files[i] << " " << a.name;  // OTP's own give no type
    }
    Term ours =
        Term::tuple({str(rel->name), str(rel->vsn), str(rel->erts_vsn), Term::list(names), Term::list(vsns)});
    EXPECT_TRUE(ours == truth[i]) << files[i] << "\n ours " << etf::format_w(ours) << "\n erl  "
                                  << etf::format_w(truth[i]);
  }
}

TEST(OtpRel, EntryFormsAsRelxAndMixWriteThem) {
  auto terms = etf::consult(
      "%% mix\n{release,{\"demo\",\"0.1.0\"},{erts,\"13.1.5\"},\n"
      " [{kernel,\"8.5.3\"},{stdlib,\"4.2\",permanent},{elixir,\"1.14.0\",permanent},\n"
      "  {iex,\"1.14.0\",none},{sasl,\"4.2\",load},{demo,\"0.1.0\",[iex]},{x,\"1\",temporary,[]}]}.\n",
      "demo.rel");
  ASSERT_TRUE(terms.has_value()) << terms.error().to_string();
  auto rel = parse_rel(*terms, "demo.rel");
  ASSERT_TRUE(rel.has_value()) << rel.error().to_string();
  EXPECT_EQ(rel->name, "demo");
  EXPECT_EQ(rel->vsn, "0.1.0");
  EXPECT_EQ(rel->erts_vsn, "13.1.5");
  EXPECT_TRUE(rel->has_sasl);
  ASSERT_EQ(rel->applications.size(), 7u);
  EXPECT_EQ(rel->applications[3].name, "iex");
  EXPECT_EQ(rel->applications[3].type, "none");
  EXPECT_FALSE(rel->applications[3].included_applications.has_value());
  EXPECT_EQ(rel->applications[4].type, "load");
  EXPECT_EQ(rel->applications[5].type, "permanent");
  EXPECT_EQ(rel->applications[5].included_applications, std::vector<std::string>{"iex"});
  EXPECT_EQ(rel->applications[6].type, "temporary");
  EXPECT_EQ(rel->applications[6].included_applications, std::vector<std::string>{});
}

TEST(OtpRel, BadRelFilesAreRefusedWithReleaseHandlersReasons) {
  testing::TempDir dir;
  struct Bad {
    const char* text;
    const char* reason;
  };
  const char* ok_apps = "[{kernel,\"1\"},{stdlib,\"1\"}]";
  std::string two = std::string("{release,{\"r\",\"1\"},{erts,\"1\"},") + ok_apps + "}.\n{extra}.\n";
  const Bad bad[] = {
      {"", "bad_rel_file"},
      {two.c_str(), "bad_rel_file"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},[{kernel,\"1\"}\n", "bad_rel_file"},
      {"{release,{\"r\",\"1\"},[{kernel,\"1\"},{stdlib,\"1\"}]}.\n", "bad_rel_data"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},apps}.\n", "bad_rel_data"},
      {"{release,{r,\"1\"},{erts,\"1\"},[{kernel,\"1\"},{stdlib,\"1\"}]}.\n", "illegal_name"},
      {"{release,{\"r\",1},{erts,\"1\"},[{kernel,\"1\"},{stdlib,\"1\"}]}.\n", "illegal_form"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},[{kernel,\"1\"},{stdlib,\"1\"},{x,\"1\",forever}]}.\n",
       "illegal_applications"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},[{kernel,\"1\"},{stdlib,\"1\"},{x,1}]}.\n",
       "illegal_applications"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},[{kernel,\"1\"},{stdlib,\"1\"},{x,\"1\"},{x,\"2\"}]}.\n",
       "illegal_applications"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},[{kernel,\"1\"}]}.\n", "missing_mandatory_app"},
      {"{release,{\"r\",\"1\"},{erts,\"1\"},[{kernel,\"1\",load},{stdlib,\"1\"}]}.\n", "mandatory_app"},
  };
  int i = 0;
  for (const auto& b : bad) {
    std::string path = (dir / ("bad" + std::to_string(i++) + ".rel")).string();
    testing::write_file(path, b.text);
    auto rel = read_rel_file(path);
    ASSERT_FALSE(rel.has_value()) << b.text;
    EXPECT_EQ(rel.error().code(), Code::kCorruption) << b.text;
    EXPECT_EQ(rel.error().message().rfind(path + ":", 0), 0u) << rel.error().message();
    EXPECT_EQ(rel.error().reason(), b.reason) << b.text << ": " << rel.error().to_string();
  }
  auto missing = read_rel_file((dir / "none.rel").string());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

std::vector<std::string> boot_files() {
  std::vector<std::string> out = files_in("/usr/lib/erlang/releases", "", ".boot");
  for (const char* f : {"/usr/lib/erlang/bin/start.boot", "/usr/lib/erlang/bin/start_clean.boot",
                        "/usr/lib/erlang/bin/start_sasl.boot"}) {
    if (fs::exists(f)) out.push_back(f);
  }
  return out;
}

TEST(OtpBoot, RealBootScriptsDecodeAsErlangReadsThem) {
  auto files = boot_files();
  if (files.empty()) GTEST_SKIP() << "no boot scripts";
  if (!have_erl()) GTEST_SKIP() << "no escript";
  auto truth = erl_truth("boots", files);
  ASSERT_EQ(truth.size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto boot = read_boot_file(files[i]);
    ASSERT_TRUE(boot.has_value()) << boot.error().to_string();
    etf::TermList paths, loads;
    for (const auto& p : boot->paths) {
      etf::TermList dirs;
      for (const auto& d : p) dirs.push_back(str(d));
      paths.push_back(Term::list(std::move(dirs)));
    }
    for (const auto& m : boot->prim_loads) loads.push_back(atoms(m));
    Term ours = Term::tuple({str(boot->name), str(boot->vsn), Term::list(paths), Term::list(loads)});
    EXPECT_TRUE(ours == truth[i]) << files[i] << "\n ours " << etf::format_w(ours) << "\n erl  "
                                  << etf::format_w(truth[i]);
    // Every boot script loads kernel and stdlib, kernel first.
    ASSERT_GE(boot->applications.size(), 2u) << files[i];
    EXPECT_EQ(boot->applications[0], "kernel") << files[i];
    EXPECT_EQ(boot->applications[1], "stdlib") << files[i];
    EXPECT_FALSE(boot->paths.empty());
  }
}

TEST(OtpBoot, DamagedBootScriptsAreErrorsNamingTheFile) {
  auto files = boot_files();
  if (files.empty()) GTEST_SKIP() << "no boot scripts";
  auto bytes = testing::read_file(files[0]);
  ASSERT_GT(bytes.size(), 100u);
  testing::TempDir dir;
  std::string cut = (dir / "cut.boot").string();
  testing::write_file(cut, std::span<const std::uint8_t>(bytes.data(), bytes.size() / 2));
  auto boot = read_boot_file(cut);
  ASSERT_FALSE(boot.has_value());
  EXPECT_NE(boot.error().message().find(cut), std::string::npos) << boot.error().message();

  std::string other = (dir / "other.boot").string();
  testing::write_file(other, etf::encode(Term::tuple({Term::atom("script"), Term::atom("x"), Term()})));
  boot = read_boot_file(other);
  ASSERT_FALSE(boot.has_value());
  EXPECT_EQ(boot.error().reason(), "bad_script");
  EXPECT_EQ(boot.error().message().rfind(other + ":", 0), 0u) << boot.error().message();
}

TEST(OtpAppup, EveryInstalledAppupParses) {
  auto files = files_in("/usr/lib/erlang/lib", "ebin", ".appup");
  if (files.empty()) GTEST_SKIP() << "no OTP appups";
  EXPECT_GE(files.size(), 30u);
  std::size_t regexps = 0;
  for (const auto& f : files) {
    auto appup = read_appup_file(f);
    ASSERT_TRUE(appup.has_value()) << appup.error().to_string();
    // The version is the application's, from the .app beside it.
    fs::path app_file = fs::path(f).replace_extension(".app");
    if (fs::exists(app_file)) {
      auto app = read_app_file(app_file.string());
      ASSERT_TRUE(app.has_value()) << app.error().to_string();
      EXPECT_EQ(appup->vsn, app->vsn) << f;
    }
    for (const auto* steps : {&appup->up, &appup->down}) {
      for (const auto& s : *steps) regexps += s.is_regexp;
    }
  }
  EXPECT_GT(regexps, 0u);
}

TEST(OtpAppup, BadAppupsAreErrors) {
  auto ok = etf::consult("{\"2\", [{\"1\", [{load_module, m}]}, {<<\"^1\\\\.\">>, []}], [{\"1\", []}]}.",
                         "x.appup");
  ASSERT_TRUE(ok.has_value());
  auto appup = parse_appup(*ok, "x.appup");
  ASSERT_TRUE(appup.has_value()) << appup.error().to_string();
  ASSERT_EQ(appup->up.size(), 2u);
  EXPECT_EQ(appup->up[0].version, "1");
  EXPECT_FALSE(appup->up[0].is_regexp);
  EXPECT_TRUE(appup->up[0].instructions[0] == Term::tuple({Term::atom("load_module"), Term::atom("m")}));
  EXPECT_EQ(appup->up[1].version, "^1\\.");
  EXPECT_TRUE(appup->up[1].is_regexp);
  ASSERT_EQ(appup->down.size(), 1u);

  for (const char* text : {"{\"2\", [], []}. {x}.", "{2, [], []}.", "{\"2\", [{\"1\", x}], []}.",
                           "{\"2\", [{1, []}], []}.", "{\"2\", [x], []}.", "{\"2\", []}."}) {
    auto terms = etf::consult(text, "bad.appup");
    ASSERT_TRUE(terms.has_value()) << text;
    auto bad = parse_appup(*terms, "bad.appup");
    ASSERT_FALSE(bad.has_value()) << text;
    EXPECT_EQ(bad.error().message().rfind("bad.appup: ", 0), 0u) << bad.error().message();
  }
}

}  // namespace
}  // namespace codestore::otp

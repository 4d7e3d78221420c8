// Our check of an .app against its ebin (otp::check_app_dir) against systools:make_script
// itself. Slow: systools' src_tests looks for the source of every module of kernel, stdlib
// and sasl.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "otp/otp_files.h"
#include "otp/otp_truth.h"

namespace codestore::otp {
namespace {

using namespace testing_truth;  // NOLINT: the tests' helpers

// systools:make_script itself (with src_tests, the option under which it checks that each
// listed module's beam exists) on small applications made wrong: it stops at the first
// class of error (duplicates, then missing beams) and says nothing of an unlisted beam; our
// check reports the same modules, every class at once, and the unlisted beam as a warning.
TEST(OtpApp, CheckAgreesWithSystools) {
  if (!have_erl()) GTEST_SKIP() << "no escript";
  testing::TempDir dir;
  struct Case {
    const char* name;
    const char* modules;
    std::vector<std::string> beams;
  };
  const Case cases[] = {
      {"good", "[x_a, x_b]", {"x_a", "x_b", "x_c"}},
      {"missing", "[x_a, x_b, x_d]", {"x_a", "x_c"}},
      {"duplicate", "[x_a, x_b, x_a]", {"x_a"}},
  };
  std::vector<std::string> dirs;
  for (const auto& c : cases) {
    fs::path ebin = dir / c.name / "lib" / "x-1" / "ebin";
    testing::write_file(ebin / "x.app",
                        std::string("{application, x, [{vsn, \"1\"}, {description, \"x\"}, {modules, ") +
                            c.modules + "}, {registered, []}, {applications, [kernel, stdlib]}]}.\n");
    for (const auto& b : c.beams) testing::write_file(ebin / (b + ".beam"), "not looked at by systools");
    dirs.push_back((dir / c.name).string());
  }
  auto truth = erl_truth("systools", dirs);
  ASSERT_EQ(truth.size(), dirs.size());
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    std::string ebin = dirs[i] + "/lib/x-1/ebin";
    auto app = read_app_file(ebin + "/x.app");
    ASSERT_TRUE(app.has_value()) << app.error().to_string();
    auto check = check_app_dir(*app, ebin, "x.app", "x");
    ASSERT_TRUE(check.has_value()) << check.error().to_string();
    const auto* verdict = truth[i].as_tuple();
    ASSERT_NE(verdict, nullptr) << cases[i].name << ": " << etf::format_w(truth[i]);
    const std::string& kind = verdict->elements[0].as_atom()->name;
    std::vector<std::string> ours;
    bool has_duplicates = std::any_of(check->issues.begin(), check->issues.end(),
                                      [](const AppIssue& x) { return x.kind == "duplicate_modules"; });
    for (const auto& issue : check->issues) {
      if (issue.severity == AppIssue::Severity::kError &&
          issue.kind == (has_duplicates ? "duplicate_modules" : "module_not_found")) {
        ours.push_back(issue.module);
      }
    }
    if (kind == "ok") {
      EXPECT_TRUE(check->ok()) << cases[i].name;
      EXPECT_TRUE(verdict->elements[1].is_nil()) << "systools warned: " << etf::format_w(truth[i]);
      EXPECT_EQ(check->issues.size(), 1u) << cases[i].name;  // x_c, unlisted: our warning
    } else {
      EXPECT_FALSE(check->ok()) << cases[i].name;
      EXPECT_EQ(kind, has_duplicates ? "duplicate_modules" : "module_not_found") << cases[i].name;
      EXPECT_TRUE(atoms(ours) == verdict->elements[1])
          << cases[i].name << ": ours " << etf::format_w(atoms(ours)) << ", systools "
          << etf::format_w(truth[i]);
    }
  }
}

}  // namespace
}  // namespace codestore::otp

// The upgrade plan's fixture, shared by tests/store/upgrade_plan_test.cpp and
// tests/cli/plan_cli_test.cpp: the application `pa` in two versions (tests/fixtures/upgrade,
// whose README.md tables what changes), compiled and laid out as two releases pa@0.1.0 and
// pa@0.2.0 by upgrade_fixture.escript (one Erlang run), and imported into a store through the
// CLI (`codestore init`, `codestore import DIR`), as an operator would. With it, Erlang's
// truth: for each module, what release_handler passes as its vsn in each version.
//
// Thread safety: thread-compatible (a test suite builds it once and only reads it).
#pragma once

#include <codestore/term.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace codestore::testing {

struct UpgradeFixture {
  TempDir dir;
  std::filesystem::path db;  // the store, both releases imported
  // release_handler_1:get_current_vsn/1 of each module with v1's, then v2's ebin on the path
  // (the atom undefined where the version has no such module), and whether its vsn attribute
  // is the compiler's default.
  struct Vsns {
    etf::Term v1, v2;
    bool default1 = false, default2 = false;
  };
  std::map<std::string, Vsns> vsns;
};

// Builds it; throws std::runtime_error (with the tool's output) when a step fails.
std::unique_ptr<UpgradeFixture> build_upgrade_fixture();

// Writes `appup_text` as lib/pa-0.2.0/ebin/pa.appup of the second release and runs
// systools:make_relup (0.1.0 -> 0.2.0 and back). `error` is systools' message when it refused.
struct RelupResult {
  etf::Term relup;  // the relup term
  etf::Term appup;  // file:consult/1 of the .appup, as Erlang read it (a list of terms)
  std::string error;
};
RelupResult make_relup(const UpgradeFixture& fixture, const std::string& appup_text);

}  // namespace codestore::testing

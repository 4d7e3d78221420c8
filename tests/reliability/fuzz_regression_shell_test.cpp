// Replays fuzz/regressions/shell/ and fuzz/corpus/shell/ through the shell fuzz entry point
// (`codestore shell` with the file as stdin), in the normal suite: a crash the fuzzer (or a
// person) once found in the shell must stay fixed. Separate from fuzz_regression_test
// because it links the whole CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../../fuzz/shell_entry.h"
#include "support/files.h"

namespace fs = std::filesystem;

TEST(FuzzRegression, Shell) {
  std::vector<fs::path> files;
  for (const char* kind : {"regressions", "corpus"}) {
    const fs::path dir = fs::path(CODESTORE_SOURCE_DIR) / "fuzz" / kind / "shell";
    if (!fs::exists(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
    }
  }
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    const std::vector<std::uint8_t> bytes = codestore::testing::read_file(p);
    codestore::fuzz::fuzz_shell(bytes.data(), bytes.size());  // an uncaught exception aborts the test
  }
  EXPECT_FALSE(files.empty());
}

// Replays every input kept under fuzz/regressions/<target>/ (and the seed corpus) through
// the fuzz entry points, built with g++ in the normal suite (and under ASan/UBSan in CI's
// sanitizer pass): a crash the fuzzer once found must stay fixed.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../../fuzz/entries.h"
#include "image/damage.h"
#include "support/files.h"

namespace fs = std::filesystem;

namespace {

// Every regular file (dot files aside) in fuzz/<kind>/<target>/.
std::vector<fs::path> inputs(const std::string& kind, const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(CODESTORE_SOURCE_DIR) / "fuzz" / kind / target;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  }
  return out;
}

template <typename Entry>
void replay(const std::string& target, Entry entry) {
  for (const char* kind : {"regressions", "corpus"}) {
    for (const fs::path& p : inputs(kind, target)) {
      SCOPED_TRACE(p.string());
      const auto bytes = codestore::testing::read_file(p);
      entry(bytes.data(), bytes.size());  // aborts (and fails the test binary) on a bug
    }
  }
}

}  // namespace

TEST(FuzzRegression, Image) {
  replay("image", codestore::fuzz::fuzz_image);
}
TEST(FuzzRegression, Term) {
  replay("term", codestore::fuzz::fuzz_term);
}
TEST(FuzzRegression, Gzip) {
  replay("gzip", codestore::fuzz::fuzz_gzip);
}
TEST(FuzzRegression, Consult) {
  replay("consult", codestore::fuzz::fuzz_consult);
}
TEST(FuzzRegression, Archive) {
  replay("archive", codestore::fuzz::fuzz_archive);
}

// The damaged-image generator's variants of every seed image, through the image entry
// point: every view on every damage, at both strictness levels.
TEST(FuzzRegression, DamagedVariantsOfSeeds) {
  std::size_t variants = 0;
  for (const fs::path& p : inputs("corpus", "image")) {
    if (p.extension() != ".beam") continue;
    const auto bytes = codestore::testing::read_file(p);
    for (const auto& v : codestore::testing::damage_variants(bytes)) {
      SCOPED_TRACE(p.filename().string() + ": " + v.name);
      codestore::fuzz::fuzz_image(v.bytes.data(), v.bytes.size());
      ++variants;
    }
  }
  EXPECT_GT(variants, 10u);
}

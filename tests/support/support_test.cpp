// The test-support library itself: the scratch directory lives under TMPDIR and goes away,
// a file a test cannot read fails the test, and the corpus listing is the one every suite
// uses (the listings it replaces disagreed about OTP's examples/ebin directories).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/corpus.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::testing {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for a scope, then puts back what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(TempDir, LivesUnderTmpdirAndIsRemovedWithEverythingInIt) {
  const TempDir outer;
  fs::path inner_path;
  {
    const ScopedEnv tmpdir("TMPDIR", outer.path().string());
    const TempDir inner;
    inner_path = inner.path();
    EXPECT_EQ(inner.path().parent_path(), outer.path());
    EXPECT_TRUE(fs::is_directory(inner.path()));
    EXPECT_EQ(inner / "a/b.txt", inner.path() / "a" / "b.txt");
    write_file(inner / "a/b.txt", "x");
  }
  EXPECT_FALSE(fs::exists(inner_path));
  EXPECT_TRUE(fs::is_empty(outer.path()));
}

TEST(TempDir, KeptWithCodestoreKeepTmp) {
  const TempDir outer;
  fs::path kept;
  {
    const ScopedEnv tmpdir("TMPDIR", outer.path().string());
    const ScopedEnv keep("CODESTORE_KEEP_TMP", "1");
    const TempDir dir;
    kept = dir.path();
  }
  EXPECT_TRUE(fs::is_directory(kept));  // outer removes it
}

TEST(Files, WriteMakesParentsAndReadGivesTheBytesBack) {
  const TempDir dir;
  const std::vector<std::uint8_t> bytes{0, 1, 0xff, '\n', 0};
  write_file(dir / "deep/er/bytes.bin", bytes);
  EXPECT_EQ(read_file(dir / "deep/er/bytes.bin"), bytes);
  write_file(dir / "text.txt", "hello\n");
  EXPECT_EQ(read_text(dir / "text.txt"), "hello\n");
}

// The readers this replaces returned nothing for a missing file, so a test comparing two
// missing files passed.
TEST(Files, AFileThatCannotBeReadFailsTheTest) {
  const TempDir dir;
  EXPECT_NONFATAL_FAILURE((void)read_file(dir / "missing.beam"), "cannot open");
  EXPECT_NONFATAL_FAILURE((void)read_text(dir.path()), "cannot");
}

TEST(Corpus, EveryBeamInAnEbinDirectorySorted) {
  const auto files = real_images();
  if (real_image_roots().empty()) GTEST_SKIP() << "Erlang/OTP is not installed";
  ASSERT_FALSE(files.empty());
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  for (const auto& f : files) {
    const fs::path p = f;
    EXPECT_EQ(p.extension(), ".beam") << f;
    EXPECT_EQ(p.parent_path().filename(), "ebin") << f;
    EXPECT_TRUE(fs::is_regular_file(p)) << f;
  }
  const auto has = [&](const std::string& tail) {
    return std::any_of(files.begin(), files.end(), [&](const std::string& f) {
      return f.size() >= tail.size() && f.compare(f.size() - tail.size(), tail.size(), tail) == 0;
    });
  };
  EXPECT_TRUE(has("/ebin/lists.beam"));
  if (fs::is_directory("/usr/lib/elixir/lib")) {
    EXPECT_TRUE(has("/ebin/Elixir.Enum.beam"));
  }
  // OTP's examples are real images too; two of the three listings left them out.
  if (fs::exists("/usr/lib/erlang/lib") && !fs::is_empty("/usr/lib/erlang/lib")) {
    std::vector<std::string> examples;
    for (const auto& f : files) {
      if (f.find("/examples/ebin/") != std::string::npos) examples.push_back(f);
    }
    std::vector<std::string> on_disk;
    for (const auto& app : fs::directory_iterator("/usr/lib/erlang/lib")) {
      const fs::path ebin = app.path() / "examples/ebin";
      if (!fs::is_directory(ebin)) continue;
      for (const auto& e : fs::directory_iterator(ebin)) {
        if (e.path().extension() == ".beam") on_disk.push_back(e.path().string());
      }
    }
    std::sort(on_disk.begin(), on_disk.end());
    EXPECT_EQ(examples, on_disk);
  }
  EXPECT_EQ(real_images({"/nonexistent/lib"}), std::vector<std::string>{});
}

}  // namespace
}  // namespace codestore::testing

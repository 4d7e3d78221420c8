// The tests' one scratch directory: a fresh directory under the system temp dir (TMPDIR, so
// `scripts/dev.sh` can check that no test leaves files behind), removed with the object.
// Set CODESTORE_KEEP_TMP to keep it for debugging a failing case (its path goes to stderr).
//
// Thread safety: thread-compatible (each test owns its directories).
#pragma once

#include <filesystem>

namespace codestore::testing {

class TempDir {
 public:
  // Throws std::runtime_error when the directory cannot be made (a test then fails, rather
  // than writing into the current directory).
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / rel: a path inside the directory (not created).
  std::filesystem::path operator/(const std::filesystem::path& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

}  // namespace codestore::testing

// The "shell" fuzz target: the fuzz input is the stdin of `codestore shell`, driven through
// cli::run() as main() does. The first call makes a scratch directory (the working
// directory from then on) with the fixture image in v1/ and v2/, so that inputs can name
// real paths ("add_path last v1", "load hello"). Separate from entries.h because it links
// the whole CLI.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"

namespace codestore::fuzz {

// The scratch directory lives as long as the process, and is removed when it exits (a
// fuzzer's run, a regression test's binary), so that no run leaves files behind.
class ShellScratchDir {
 public:
  ShellScratchDir() {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "codestore-shell-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
    const fs::path hello = fs::path(CODESTORE_SOURCE_DIR) / "tests/fixtures/images/hello.beam";
    for (const char* v : {"v1", "v2"}) {
      fs::create_directories(dir_ / v);
      fs::copy_file(hello, dir_ / v / "hello.beam", fs::copy_options::overwrite_existing);
    }
    fs::current_path(dir_);
    // No store: the shell must not pick up a database from the environment.
    unsetenv("CODESTORE_DB");
  }
  ~ShellScratchDir() {
    std::error_code ec;
    std::filesystem::current_path(dir_.parent_path(), ec);
    std::filesystem::remove_all(dir_, ec);
  }
  ShellScratchDir(const ShellScratchDir&) = delete;
  ShellScratchDir& operator=(const ShellScratchDir&) = delete;

 private:
  std::filesystem::path dir_;
};

inline void shell_scratch_dir() {
  static ShellScratchDir dir;
}

inline void fuzz_shell(const std::uint8_t* data, std::size_t size) {
  shell_scratch_dir();
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::ostringstream out, err;
  (void)cli::run({"shell"}, in, out, err);
}

}  // namespace codestore::fuzz

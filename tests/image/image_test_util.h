// Helpers shared by the image reader's tests: running Erlang (image_truth.escript) to ask what OTP says.
#pragma once

#include <codestore/image.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/corpus.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::testing {

inline std::string source_dir() {
  return CODESTORE_SOURCE_DIR;
}

inline bool have_escript() {
  return std::system("command -v escript >/dev/null 2>&1") == 0;
}

// Runs a shell command; its stdout, or "" with *ok false when it fails.
inline std::string run(const std::string& cmd, bool* ok) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *ok = false;
    return out;
  }
  char buf[65536];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *ok = pclose(p) == 0;
  return out;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// image_truth.escript in `mode`; one vector of tab-separated fields per output line.
// Erlang's diagnostics (the loader logs why each image is badfile) go to `log`.
inline std::vector<std::vector<std::string>> ask_erlang(const std::string& args, const std::string& log,
                                                        bool* ok) {
  const std::string cmd =
      "escript " + source_dir() + "/tests/image/image_truth.escript " + args + " 2>" + log;
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : split(run(cmd, ok), '\n')) {
    if (!line.empty()) rows.push_back(split(line, '\t'));
  }
  return rows;
}

// "ok", or the error's beam_lib kind.
template <typename T>
std::string verdict(const Result<T>& r) {
  return r ? "ok" : std::string(image::kind_name(image::kind_of(r.error()).value()));
}

}  // namespace codestore::testing

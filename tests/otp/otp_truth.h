// What the tests of tests/otp share: Erlang's answers through otp_truth.escript, and the
// installed files to ask about.
//
// Thread safety: free functions for one test at a time.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "etf/consult.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::otp::testing_truth {

namespace fs = std::filesystem;
using etf::Term;

inline const std::string kScript = std::string(CODESTORE_SOURCE_DIR) + "/tests/otp/otp_truth.escript";

inline bool have_erl() {
  return std::system("command -v escript >/dev/null 2>&1") == 0;
}

inline std::vector<std::uint8_t> unhex(const std::string& h) {
  std::vector<std::uint8_t> b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    b.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return b;
}

// Erlang's answer (a term) for each file, in one escript run.
inline std::vector<Term> erl_truth(const std::string& mode, const std::vector<std::string>& files) {
  testing::TempDir dir;
  std::string list;
  for (const auto& f : files) list += f + "\n";
  testing::write_file(dir / "files", list);
  std::string command = "escript " + kScript + " " + mode + " " + (dir / "files").string();
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {};
  char buf[65536];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << command;
  std::vector<Term> terms;
  std::istringstream in(out);
  std::string hex;
  while (in >> hex) {
    auto t = etf::decode(unhex(hex));
    EXPECT_TRUE(t.has_value());
    terms.push_back(t ? *t : Term());
  }
  EXPECT_EQ(terms.size(), files.size()) << out;
  return terms;
}

inline std::vector<std::string> files_in(const std::string& parent, const std::string& sub,
                                         const std::string& ext) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) return out;
  for (const auto& d : fs::directory_iterator(parent)) {
    fs::path dir = d.path() / sub;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& f : fs::directory_iterator(dir)) {
      if (f.path().extension() == ext) out.push_back(f.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline Term atoms(const std::vector<std::string>& names) {
  etf::TermList l;
  for (const auto& n : names) l.push_back(Term::atom(n));
  return Term::list(std::move(l));
}
inline Term str(const std::string& s) {
  return Term::string(s);
}  // ASCII in these files

}  // namespace codestore::otp::testing_truth

#include "bench_support.h"

#include <codestore/image.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "base/file.h"
#include "support/files.h"

namespace codestore::bench {

std::vector<std::uint8_t> read_file(const std::string& path) {
  auto bytes = base::read_file(path, std::size_t{1} << 30);
  if (!bytes) {
    std::fprintf(stderr, "bench: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  return std::move(*bytes);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<std::uint8_t> renamed(const std::vector<std::uint8_t>& image, const std::string& name,
                                  const std::string& to) {
  auto img = image::Image::parse(image, image::Strictness::kStrict);
  const image::Chunk* atoms = img ? img->find("AtU8") : nullptr;
  std::size_t at = atoms != nullptr ? atoms->offset + 4 : 0;  // after the atom count
  if (atoms == nullptr || to.size() != name.size() || at + 1 + name.size() > image.size() ||
      image[at] != name.size() || std::memcmp(&image[at + 1], name.data(), name.size()) != 0) {
    std::fprintf(stderr, "bench: cannot rename %s to %s\n", name.c_str(), to.c_str());
    std::exit(1);
  }
  std::vector<std::uint8_t> out = image;
  std::memcpy(&out[at + 1], to.data(), to.size());
  return out;
}

}  // namespace codestore::bench

// tests/support/files.h without gtest, for the tests' helpers the benches reuse (real_releases.cpp,
// the erl harness): a file that cannot be read or written ends the program with a message naming
// it, as bench::read_file does, where the tests' version adds a test failure.
namespace codestore::testing {

namespace fs = std::filesystem;

std::vector<std::uint8_t> read_file(const fs::path& path) {
  return bench::read_file(path.string());
}

std::string read_text(const fs::path& path) {
  const std::vector<std::uint8_t> bytes = bench::read_file(path.string());
  return {bytes.begin(), bytes.end()};
}

void write_file(const fs::path& path, std::string_view text) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "bench: cannot write %s\n", path.string().c_str());
    std::exit(1);
  }
}

void write_file(const fs::path& path, std::span<const std::uint8_t> bytes) {
  write_file(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace codestore::testing

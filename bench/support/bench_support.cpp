#include "bench_support.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "base/file.h"

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

}  // namespace codestore::bench

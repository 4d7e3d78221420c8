// What every bench program shares: the tests' one TempDir, real-image corpus listing and real
// releases built by rebar3, mix and systools (tests/support/temp_dir.h, corpus.h,
// real_releases.h, compiled here without gtest: tests/support/files.h is defined in
// bench_support.cpp, ending the program where a test would fail), a whole file read, and the
// timing helpers the figures are made of (thread CPU time, medians).
//
// Thread safety: free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/corpus.h"
#include "support/temp_dir.h"

namespace codestore::bench {

using testing::real_image_roots;
using testing::real_images;
using testing::TempDir;

// The bytes of `path`, or the program ends with a message naming it (a bench has nothing to
// measure without its input).
std::vector<std::uint8_t> read_file(const std::string& path);

// The calling thread's CPU time, in seconds: what an operation costs while it runs, without
// the time slices other jobs on a shared machine took.
double thread_cpu_seconds();

double median(std::vector<double> v);

// `image` (module `name`) renamed to `to`, a name of the same length: atom #1 of AtU8
// rewritten in place, so every other byte stays (a synthetic module for benches that need
// thousands). The program ends with a message when the image has no such atom.
std::vector<std::uint8_t> renamed(const std::vector<std::uint8_t>& image, const std::string& name,
                                  const std::string& to);

}  // namespace codestore::bench

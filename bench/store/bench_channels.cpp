// bench_channels: channels and generations (docs/model.md) at the size of a real system, each
// figure next to its baseline measured in the same run, interleaved (the machines are noisy),
// as medians.
//
// The store: 2,000 modules (synthetic copies of a small corpus image under other names) in
// channel "a", then 40 generations of small changes (5 modules each, so an old generation is
// read from interval rows that later ones closed), and channel "b" with the same 2,000 names,
// 200 of them other code.
//
// * generation_diff of two 2,000-module generations: a's first generation (interval rows)
//   against b's current one, and a's first against a's current. Target (issue 13): <= 50 ms.
// * Baselines: reading one generation with its content (channel_generation of a's first) and
//   list() of a's active set (what `codestore ls` reads).
// * channel_history of a's 41 generations, and one import into a (what a change costs, one
//   generation).
//
//   bench_channels [--runs N]
//
// Each figure is timed by the thread's CPU time and by the wall clock.
#include <codestore/store.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_support.h"

namespace {

namespace fs = std::filesystem;
using namespace codestore;
using Clock = std::chrono::steady_clock;
using bench::median;
using bench::thread_cpu_seconds;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_channels: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}

struct Image {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

void write(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

struct Figure {
  std::vector<double> cpu, wall;
  void add(double c, double w) {
    cpu.push_back(c * 1e3);
    wall.push_back(w * 1e3);
  }
  std::string text() const {
    return fmt::format("{:8.3f} ms cpu {:8.3f} ms wall", median(cpu), median(wall));
  }
};

template <typename F>
void timed(Figure& f, F&& body) {
  const double cpu0 = thread_cpu_seconds();
  const auto wall0 = Clock::now();
  body();
  f.add(thread_cpu_seconds() - cpu0, std::chrono::duration<double>(Clock::now() - wall0).count());
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 21;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::max(1, std::atoi(argv[++i]));
  }
  // Two small real images with names of the same length: copies of the first are the
  // 2,000 modules, copies of the second under the same names are "other code".
  std::vector<Image> small;
  for (const std::string& file : bench::real_images({"/usr/lib/erlang/lib"})) {
    const std::string name = fs::path(file).stem().string();
    if (name.size() != 8) continue;
    auto bytes = bench::read_file(file);
    if (bytes.size() > 6000) continue;
    small.push_back({name, std::move(bytes)});
    if (small.size() == 2) break;
  }
  if (small.size() < 2) die("no two small images with 8-character names under /usr/lib/erlang/lib");
  constexpr int kModules = 2000;
  auto module = [](int i) { return fmt::format("m{:07}", i); };

  bench::TempDir tmp;
  const std::string db = (tmp / "bench.db").string();
  for (int i = 0; i < kModules; ++i) {
    write(tmp / "a" / "ebin" / (module(i) + ".beam"),
          bench::renamed(small[0].bytes, small[0].name, module(i)));
    const Image& b = i % 10 == 0 ? small[1] : small[0];
    write(tmp / "b" / "ebin" / (module(i) + ".beam"), bench::renamed(b.bytes, b.name, module(i)));
    if (i < 40 * 5)
      write(tmp / "c" / std::to_string(i / 5) / (module(i) + ".beam"),
            bench::renamed(small[1].bytes, small[1].name, module(i)));
  }
  auto a = must(Store::open(db, {.channel = "a"}), "open a");
  auto b = must(Store::open(db, {.channel = "b"}), "open b");
  const auto t0 = Clock::now();
  must(a->import_tree({(tmp / "a").string()}, {.bytes = false}), "import a");
  const double import_s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int g = 0; g < 40; ++g)
    must(a->import_tree({(tmp / "c" / std::to_string(g)).string()}, {.bytes = false}), "c");
  must(b->import_tree({(tmp / "b").string()}, {.bytes = false}), "import b");

  const auto check = must(a->generation_diff("a", 1, "b", 0), "diff");
  const auto within = must(a->generation_diff("a", 1, "a", 0), "diff");
  std::size_t other_code = 0;
  for (const auto& c : check.changed) other_code += c.from_md5 != c.to_md5 ? 1 : 0;

  Figure diff_ab, diff_aa, read_gen, list, history, import_one;
  for (int r = 0; r < runs; ++r) {
    timed(diff_ab, [&] { must(a->generation_diff("a", 1, "b", 0), "diff a1 b"); });
    timed(read_gen, [&] { must(a->channel_generation("a", 1), "generation a1"); });
    timed(diff_aa, [&] { must(a->generation_diff("a", 1, "a", 0), "diff a1 a"); });
    timed(list, [&] { must(a->list(), "list"); });
    timed(history, [&] { must(a->channel_history("a"), "history"); });
  }
  // One change: hello-sized imports alternate between two forms of one module.
  for (int r = 0; r < std::min(runs, 9); ++r) {
    const Image& form = small[static_cast<std::size_t>(r % 2)];
    const auto bytes = bench::renamed(form.bytes, form.name, module(kModules - 1));
    timed(import_one, [&] { must(a->import(bytes, "one"), "import one"); });
  }

  std::printf("bench_channels: %d modules per channel, %d runs (medians)\n", kModules, runs);
  std::printf("  setup: import of %d modules into channel a (one generation): %.2f s\n", kModules, import_s);
  std::printf("  generation_diff a@1 (interval rows) vs b (current): %s  [%zu changed, %zu by code]\n",
              diff_ab.text().c_str(), check.changed.size(), other_code);
  std::printf("  generation_diff a@1 vs a (current, 40 generations on):  %s  [%zu changed]\n",
              diff_aa.text().c_str(), within.changed.size());
  std::printf("  baseline: channel_generation a@1 (one generation's content): %s\n", read_gen.text().c_str());
  std::printf("  baseline: list() of channel a (the active set):           %s\n", list.text().c_str());
  std::printf("  channel_history a (%zu generations):                       %s\n",
              must(a->channel_history("a"), "history").size(), history.text().c_str());
  std::printf("  import of one module into a (one new generation):         %s\n", import_one.text().c_str());
  std::printf("  target: generation_diff of two 2,000-module generations <= 50 ms: %s\n",
              median(diff_ab.wall) <= 50.0 && median(diff_aa.wall) <= 50.0 ? "met" : "NOT MET");
  return 0;
}

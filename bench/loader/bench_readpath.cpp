// bench_readpath: the loader's read path from a store (store_reader.h, store_lib_source)
// next to its baseline measured in the same run, interleaved (the machines are noisy), as
// medians and ratios.
//
// * load_file of the corpus-median image (by size, of /usr/lib/erlang/lib/*/ebin) through a
//   store lib, with the image caches off (the store's image cache and the reader's checked
//   images: every load reads the blob, decompresses, parses and checks it; the page cache
//   is warm), and with them warm. Bytes the store validated at import and that a load proves
//   unchanged by their SHA-256 (the version row names the content the reader checked once)
//   skip re-validation: that is the warm case. Baseline: load_binary of the same bytes
//   already in memory. Every load (ours and the baseline's) is preceded by a purge, so each
//   makes a new current instance.
// * sync() with nothing changed over 2,000 loaded modules of one store lib (synthetic copies
//   of a small corpus image under other names): it compares MD5 strings from the md5 column.
//
//   bench_readpath [--runs N] [--iters K]
//
// Each figure is timed twice: by the thread's CPU time (what the operation costs while it
// runs, without the time slices other jobs on a shared machine took; the ratios use it) and
// by the wall clock.
//
// Targets (issue 12 §3): cold load_file <= 1.3x load_binary; warm <= 1.05x; sync <= 1 ms.
#include <codestore/code_server.h>
#include <codestore/image.h>
#include <codestore/store.h>
#include <codestore/store_reader.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bench_support.h"

namespace {

namespace fs = std::filesystem;
using namespace codestore;
using namespace codestore::loader;
using Clock = std::chrono::steady_clock;
using bench::median;
using bench::thread_cpu_seconds;

// Seconds per call of `body` over `n` calls: thread CPU time and wall clock.
struct Took {
  double cpu, wall;
};
template <typename F>
Took time_calls(int n, F&& body) {
  const double cpu0 = thread_cpu_seconds();
  const auto wall0 = Clock::now();
  for (int i = 0; i < n; ++i) body();
  return {(thread_cpu_seconds() - cpu0) / n, std::chrono::duration<double>(Clock::now() - wall0).count() / n};
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_readpath: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}

std::unique_ptr<CodeServer> server_over(std::shared_ptr<LibSource> libs, std::vector<std::string> path) {
  Options options;
  options.path = std::move(path);
  options.libs = std::move(libs);
  options.stick_default = false;
  return must(CodeServer::create(std::move(options)), "create");
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 11, iters = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--iters") == 0) iters = std::atoi(argv[++i]);
  }
  // The corpus: loadable images only.
  struct Entry {
    std::string name;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<Entry> corpus;
  {
    auto probe = must(CodeServer::create(Options{}), "create");
    for (const std::string& file : bench::real_images({"/usr/lib/erlang/lib"})) {
      Entry e{fs::path(file).stem().string(), bench::read_file(file)};
      if (probe->load_binary(e.name, file, e.bytes)) corpus.push_back(std::move(e));
    }
  }
  if (corpus.empty()) die("no loadable images under /usr/lib/erlang/lib");
  std::sort(corpus.begin(), corpus.end(),
            [](const Entry& a, const Entry& b) { return a.bytes.size() < b.bytes.size(); });
  const Entry& med = corpus[corpus.size() / 2];

  bench::TempDir tmp;
  const std::string db = (tmp / "bench.db").string();
  auto writer = must(Store::open(db), "open");
  must(writer->import(med.bytes, med.name + ".beam", {.lib = "med"}), "import");

  // 2,000 modules for sync: the smallest image with a name of at least 6 characters, renamed.
  const Entry* small = nullptr;
  for (const Entry& e : corpus) {
    if (e.name.size() >= 6 && e.name.size() <= 12) {
      small = &e;
      break;
    }
  }
  if (small == nullptr) die("no image to copy for sync");
  constexpr int kSyncModules = 2000;
  fs::create_directories(tmp / "synth" / "ebin");
  std::vector<std::string> synth;
  for (int i = 0; i < kSyncModules; ++i) {
    std::string name = fmt::format("s{:0{}}", i, small->name.size() - 1);
    auto bytes = bench::renamed(small->bytes, small->name, name);
    std::ofstream(tmp / "synth" / "ebin" / (name + ".beam"), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    synth.push_back(name);
  }
  ImportOptions io;
  io.lib = "synth";
  must(writer->import_tree({(tmp / "synth").string()}, io), "import_tree");

  // Cold: no image cache in the store, no checked images in the reader.
  StoreOptions no_cache;
  no_cache.image_cache_bytes = 0;
  auto cold_reader =
      std::make_shared<StoreReader>(std::shared_ptr<Store>(must(Store::open(db, no_cache), "open")),
                                    ReaderOptions{.checked_image_bytes = 0});
  auto warm_reader = std::make_shared<StoreReader>(std::shared_ptr<Store>(must(Store::open(db), "open")));
  auto cs_cold = server_over(store_lib_source(cold_reader), {"lib:med"});
  auto cs_warm = server_over(store_lib_source(warm_reader), {"lib:med"});
  // The store's image cache off, the reader's checked images kept (for information).
  auto kept_reader =
      std::make_shared<StoreReader>(std::shared_ptr<Store>(must(Store::open(db, no_cache), "open")));
  auto cs_kept = server_over(store_lib_source(kept_reader), {"lib:med"});
  auto cs_binary = server_over(nullptr, {});

  auto check = [](const Result<void>& r) {
    if (!r) die(fmt::format("load: {} {}", r.error().reason(), r.error().to_string()));
  };
  struct Series {
    std::vector<double> cpu, wall;
    void add(Took t) {
      cpu.push_back(t.cpu);
      wall.push_back(t.wall);
    }
  };
  Series binary, cold, warm, kept;
  check(cs_warm->load_file(med.name));  // warms the checked images
  check(cs_kept->load_file(med.name));
  for (int r = 0; r < runs; ++r) {
    binary.add(time_calls(iters, [&] {
      (void)cs_binary->purge(med.name);
      check(cs_binary->load_binary(med.name, med.name + ".beam", med.bytes));
    }));
    cold.add(time_calls(iters, [&] {
      (void)cs_cold->purge(med.name);
      check(cs_cold->load_file(med.name));
    }));
    warm.add(time_calls(iters, [&] {
      (void)cs_warm->purge(med.name);
      check(cs_warm->load_file(med.name));
    }));
    kept.add(time_calls(iters, [&] {
      (void)cs_kept->purge(med.name);
      check(cs_kept->load_file(med.name));
    }));
  }
  const double b = median(binary.cpu) * 1e6, c = median(cold.cpu) * 1e6, w = median(warm.cpu) * 1e6;
  std::printf(
      "median image: %s, %zu bytes (%zu loadable images in the corpus); %d runs x %d loads, medians\n",
      med.name.c_str(), med.bytes.size(), corpus.size(), runs, iters);
  std::printf("%-44s %9s %7s %9s\n", "", "cpu us", "ratio", "wall us");
  std::printf("%-44s %9.2f %7s %9.2f\n", "load_binary, bytes in memory (baseline)", b, "1.00x",
              median(binary.wall) * 1e6);
  std::printf("%-44s %9.2f %6.2fx %9.2f  (target <= 1.30x)\n", "load_file via store lib, caches off", c,
              c / b, median(cold.wall) * 1e6);
  std::printf("%-44s %9.2f %6.2fx %9.2f  (target <= 1.05x)\n", "load_file via store lib, caches warm", w,
              w / b, median(warm.wall) * 1e6);

  std::printf("%-44s %9.2f %6.2fx %9.2f  (store image cache off, checked images kept)\n",
              "load_file via store lib, checked images only", median(kept.cpu) * 1e6,
              median(kept.cpu) * 1e6 / b, median(kept.wall) * 1e6);

  // Where the cold load's time goes: the store read (SQL + zstd), a strict parse, the
  // loader's verdict (check_loadable), each alone.
  {
    auto v = must(cold_reader->active(med.name), "active");
    Series read, parse, verdict;
    auto img = must(image::Image::parse(med.bytes, image::Strictness::kStrict), "parse");
    for (int r = 0; r < runs; ++r) {
      read.add(time_calls(iters, [&] { (void)must(cold_reader->bytes(med.name, v->version), "bytes"); }));
      parse.add(time_calls(iters, [&] { (void)image::Image::parse(med.bytes, image::Strictness::kStrict); }));
      verdict.add(time_calls(iters, [&] { (void)img.check_loadable(); }));
    }
    std::printf(
        "  parts: store read (SQL + zstd) %.2f us, strict parse %.2f us, check_loadable %.2f us (cpu)\n",
        median(read.cpu) * 1e6, median(parse.cpu) * 1e6, median(verdict.cpu) * 1e6);
  }

  // sync over 2,000 loaded modules, nothing changed.
  auto cs_sync = server_over(store_lib_source(warm_reader), {"lib:synth"});
  for (const auto& name : synth) check(cs_sync->load_file(name));
  auto first = cs_sync->sync(SyncPolicy::kSoft);
  if (!first.changed.empty() || !first.failed.empty()) die("sync changed something");
  Series sync;
  for (int r = 0; r < runs; ++r) {
    sync.add(time_calls(1, [&] {
      auto report = cs_sync->sync(SyncPolicy::kSoft);
      if (!report.changed.empty() || !report.failed.empty()) die("sync changed something");
    }));
  }
  std::printf("%-44s %9.3f ms cpu %9.3f ms wall  (target <= 1 ms; %zu modules loaded)\n",
              "sync(), nothing changed", median(sync.cpu) * 1e3, median(sync.wall) * 1e3,
              cs_sync->all_loaded().size());
  return 0;
}

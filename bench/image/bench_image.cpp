// bench_image: how fast codestore reads real images, next to Erlang's beam_lib doing the
// same work on the same files in the same run (the machines are noisy, so
// the baseline runs interleaved with ours and we report medians and ratios).
//
// The work per image: the chunk table, exports, imports, attributes and the module md5.
// The corpus: every .beam under /usr/lib/erlang/lib/*/ebin and /usr/lib/elixir/lib/*/ebin.
// Everything runs pinned to one core (the escript inherits the pinning and runs +S 1:1).
//
//   bench_image [--runs N] [--no-erlang] [--profile]
//
// --profile repeats only our from-memory pass (for perf/callgrind) and prints its median.
//
// Targets (the issue): >= 10x beam_lib, and the whole set in under 0.3 s on one core.
#include <codestore/image.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/md5.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using codestore::image::Image;
using codestore::image::Strictness;
using Clock = std::chrono::steady_clock;

std::vector<std::string> real_images() {
  std::vector<std::string> files;
  for (const char* root : {"/usr/lib/erlang/lib", "/usr/lib/elixir/lib"}) {
    std::error_code ec;
    for (const auto& app : fs::directory_iterator(root, ec)) {
      fs::path ebin = app.path() / "ebin";
      if (!fs::is_directory(ebin)) continue;
      for (const auto& f : fs::directory_iterator(ebin)) {
        if (f.path().extension() == ".beam" && f.is_regular_file()) files.push_back(f.path().string());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  std::vector<std::uint8_t> b(static_cast<std::size_t>(std::max<std::streamoff>(0, f.tellg())));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return b;
}

// Keeps the optimizer from dropping work whose results nobody reads.
volatile std::uint64_t g_sink = 0;
std::uint64_t g_failures = 0;

// The work the escript does with beam_lib:chunks(B, [exports, imports, attributes]) and
// beam_lib:md5(B), plus the chunk table (beam_lib scans it inside chunks/2 as well).
void inspect(const codestore::Result<Image>& img) {
  if (!img) {
    ++g_failures;
    return;
  }
  std::uint64_t s = img->chunks().size();
  auto exports = img->exports();
  auto imports = img->imports();
  auto attributes = img->attributes();
  auto md5 = img->md5();
  if (!exports || !imports || !attributes || !md5) {
    ++g_failures;
    return;
  }
  s += exports->size() + imports->size() + (*md5)[0];
  g_sink = g_sink + s;
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct ErlangRun {
  bool ok = false;
  double binaries = 0, files = 0;
};

ErlangRun run_beam_lib(const std::string& list_file) {
  std::string cmd = fmt::format("escript '{}/bench/image/beam_lib_bench.escript' '{}' 2>&1",
                                CODESTORE_SOURCE_DIR, list_file);
  ErlangRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char line[512] = {};
  long long bin_us = 0, file_us = 0, n = 0, bytes = 0;
  if (std::fgets(line, sizeof line, p) != nullptr &&
      std::sscanf(line, "%lld %lld %lld %lld", &bin_us, &file_us, &n, &bytes) == 4) {
    r.ok = true;
    r.binaries = static_cast<double>(bin_us) / 1e6;
    r.files = static_cast<double>(file_us) / 1e6;
  } else {
    std::fprintf(stderr, "bench_image: beam_lib_bench.escript said: %s\n", line);
  }
  ::pclose(p);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  bool erlang = true;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--no-erlang") {
      erlang = false;
    } else if (a == "--profile") {
      profile = true;
    } else {
      std::fprintf(stderr, "usage: bench_image [--runs N] [--no-erlang] [--profile]\n");
      return 2;
    }
  }

  // One core for us and for the escript we start (it inherits the mask).
  int cpu = ::sched_getcpu();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu < 0 ? 0 : cpu, &set);
  bool pinned = ::sched_setaffinity(0, sizeof set, &set) == 0;

  const auto files = real_images();
  if (files.empty()) {
    std::fprintf(stderr, "bench_image: no .beam files under /usr/lib/erlang/lib or /usr/lib/elixir/lib\n");
    return 1;
  }
  std::vector<std::vector<std::uint8_t>> bytes;
  std::size_t total = 0;
  for (const auto& f : files) {
    bytes.push_back(slurp(f));
    total += bytes.back().size();
  }
  fs::path list_file = fs::temp_directory_path() / fmt::format("bench_image_{}.txt", ::getpid());
  {
    std::ofstream l(list_file);
    for (const auto& f : files) l << f << '\n';
  }
  if (erlang && std::system("command -v escript >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "bench_image: escript not found; printing our figures only\n");
    erlang = false;
  }

  auto from_memory = [&] {
    for (const auto& b : bytes) inspect(Image::parse(b, Strictness::kLenient));
  };
  auto from_files = [&] {
    for (const auto& f : files) inspect(Image::read_file(f, Strictness::kLenient));
  };
  from_memory();  // warm-up: page cache, allocator, lazy tables
  if (profile) {
    std::vector<double> t;
    for (int r = 0; r < runs; ++r) t.push_back(seconds_of(from_memory));
    fmt::print("from memory: median {:.4f} s over {} runs\n", median(t), runs);
    return 0;
  }
  from_files();
  if (g_failures != 0) {
    std::fprintf(stderr, "bench_image: %llu of %zu images failed to read in the warm-up\n",
                 static_cast<unsigned long long>(g_failures / 2), files.size());
  }

  // Where our time goes: each step alone over images parsed beforehand.
  std::vector<Image> parsed;
  for (const auto& b : bytes) {
    if (auto img = Image::parse(b, Strictness::kLenient)) parsed.push_back(*img);
  }
  struct Step {
    const char* name;
    std::function<void()> body;
    std::vector<double> times;
  };
  std::vector<Step> steps = {
      {"parse (lenient)",
       [&] {
         for (const auto& b : bytes) g_sink = g_sink + Image::parse(b, Strictness::kLenient).has_value();
       },
       {}},
      {"exports",
       [&] {
         for (const auto& i : parsed) g_sink = g_sink + i.exports()->size();
       },
       {}},
      {"imports",
       [&] {
         for (const auto& i : parsed) g_sink = g_sink + i.imports()->size();
       },
       {}},
      {"attributes",
       [&] {
         for (const auto& i : parsed) g_sink = g_sink + i.attributes().has_value();
       },
       {}},
      {"md5",
       [&] {
         for (const auto& i : parsed) g_sink = g_sink + (*i.md5())[0];
       },
       {}},
      {"read files only",
       [&] {
         for (const auto& f : files) g_sink = g_sink + slurp(f).size();
       },
       {}},
      // Floors: what no reader can avoid. Copying every image once, and MD5 over the bytes
      // beam_lib:md5/1 hashes (the md5 chunks, FunT as is: zeroing 4 bytes costs nothing).
      {"floor: copy bytes",
       [&] {
         for (const auto& b : bytes) {
           std::vector<std::uint8_t> copy(b);
           g_sink = g_sink + copy[copy.size() / 2];
         }
       },
       {}},
      {"floor: MD5 (OpenSSL)",
       [&] {
         for (const auto& i : parsed) {
           MD5_CTX ctx;
           MD5_Init(&ctx);
           for (const char* id : {"AtU8", "Atom", "Code", "StrT", "ImpT", "ExpT", "FunT", "LitT", "Meta"}) {
             if (const auto* c = i.find(id)) {
               auto d = i.data(*c);
               MD5_Update(&ctx, d.data(), d.size());
             }
           }
           unsigned char out[16];
           MD5_Final(out, &ctx);
           g_sink = g_sink + out[0];
         }
       },
       {}},
  };

  std::vector<double> mem, file, erl_bin, erl_file;
  // Ratios of the runs made back to back: steadier than a ratio of medians on a busy machine.
  std::vector<double> paired_mem, paired_file;
  for (int r = 0; r < runs; ++r) {
    mem.push_back(seconds_of(from_memory));
    file.push_back(seconds_of(from_files));
    for (auto& s : steps) s.times.push_back(seconds_of(s.body));
    if (erlang) {
      ErlangRun e = run_beam_lib(list_file.string());
      if (e.ok) {
        erl_bin.push_back(e.binaries);
        erl_file.push_back(e.files);
        paired_mem.push_back(e.binaries / mem.back());
        paired_file.push_back(e.files / file.back());
      }
    }
  }
  fs::remove(list_file);

  const double n = static_cast<double>(files.size());
  const double mb = static_cast<double>(total) / 1e6;
  fmt::print("bench_image: {} images, {:.1f} MB (Erlang/OTP + Elixir), one core ({}), median of {} runs\n",
             files.size(), mb, pinned ? fmt::format("pinned to cpu {}", cpu) : "not pinned", runs);
  fmt::print(
      "work per image: chunk table, exports, imports, attributes, md5 "
      "(beam_lib: chunks(B, [exports, imports, attributes]) + md5(B))\n\n");
  fmt::print("{:<26} {:>11} {:>11} {:>10} {:>8} {:>11}\n", "", "whole set", "per image", "images/s", "MB/s",
             "vs beam_lib");
  auto row = [&](const char* name, double t, double baseline) {
    std::string ratio = baseline > 0 ? fmt::format("{:.1f}x", baseline / t) : "";
    fmt::print("{:<26} {:>9.4f} s {:>8.1f} us {:>10.0f} {:>8.0f} {:>11}\n", name, t, t / n * 1e6, n / t,
               mb / t, ratio);
  };
  double m_mem = median(mem), m_file = median(file);
  double m_erl_bin = median(erl_bin), m_erl_file = median(erl_file);
  row("codestore, from memory", m_mem, m_erl_bin);
  row("codestore, from files", m_file, m_erl_file);
  if (!erl_bin.empty()) {
    row("beam_lib, from binaries", m_erl_bin, 0);
    row("beam_lib, from files", m_erl_file, 0);
  }
  fmt::print("\ncodestore, each step alone over the whole set (median):\n");
  for (const auto& s : steps) fmt::print("  {:<22} {:>8.2f} ms\n", s.name, median(s.times) * 1e3);

  fmt::print("\nall runs (s): codestore memory [{:.4f}]  files [{:.4f}]", fmt::join(mem, " "),
             fmt::join(file, " "));
  if (!erl_bin.empty()) {
    fmt::print("  beam_lib binaries [{:.4f}]  files [{:.4f}]", fmt::join(erl_bin, " "),
               fmt::join(erl_file, " "));
  }
  fmt::print("\n");
  if (!erl_bin.empty()) {
    fmt::print(
        "paired ratios (beam_lib / codestore, per run): from memory [{:.1f}] median {:.1f}x; "
        "from files [{:.1f}] median {:.1f}x\n",
        fmt::join(paired_mem, " "), median(paired_mem), fmt::join(paired_file, " "), median(paired_file));
    fmt::print("targets: >= 10x beam_lib: from memory {} ({:.1f}x), from files {} ({:.1f}x); ",
               median(paired_mem) >= 10 ? "met" : "MISSED", median(paired_mem),
               median(paired_file) >= 10 ? "met" : "MISSED", median(paired_file));
  }
  fmt::print("whole set < 0.3 s: from memory {}, from files {}\n", m_mem < 0.3 ? "met" : "MISSED",
             m_file < 0.3 ? "met" : "MISSED");
  if (g_failures != 0) fmt::print("WARNING: {} image reads failed (see above)\n", g_failures);
  return 0;
}

// bench_store: the store on the real corpus (every .beam under /usr/lib/erlang/lib and
// /usr/lib/elixir/lib), each figure next to its baseline measured in the same run
// (the machines are noisy: compare side by side, report medians and ratios).
//
//   bench_store [--runs N] [--gets N] [--dir DIR]
//
// 1. import: the whole set into a fresh database (Store::import_tree: strict validation,
//    SHA-256, zstd-3, one transaction; workers on every core), against the floor of
//    inserting the same bytes, uncompressed and unvalidated, into a plain SQLite table in
//    one transaction. Target >= 3,000 images/s.
// 2. get: a random module version, one call at a time, interleaved with reading the same
//    image from a plain file whose path is known, and with finding it Erlang's way: walking
//    a 25-directory code path (stat each dir) and reading it. Targets: median <= 15 us,
//    no slower than the known-path file, >= 3x faster than the walk. Again after compact.
//    Twice: with the image cache off (every get decompresses) and with the default cache
//    warmed by a first pass (what a long-lived reader such as `serve` sees).
// 3. size: stored blob bytes and the database file (after a checkpoint) against raw and
//    against gzip -6 of each file; then after train_dictionary + compact (level 19). Also
//    how much of the corpus is already deflated (Dbgi, LitT) and what zstd makes of it.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <codestore/image.h>
#include <codestore/store.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct File {
  std::string path, dir, module;
  std::vector<std::uint8_t> bytes;
};

std::vector<File> corpus() {
  std::vector<File> files;
  for (const char* root : {"/usr/lib/erlang/lib", "/usr/lib/elixir/lib"}) {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".beam") {
        File f;
        f.path = e.path().string();
        f.dir = e.path().parent_path().string();
        f.module = e.path().stem().string();
        std::ifstream in(f.path, std::ios::binary);
        f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        files.push_back(std::move(f));
      }
    }
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.path < b.path; });
  return files;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}
double median(std::vector<double> v) {
  return percentile(std::move(v), 0.5);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_store: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(codestore::Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}

std::uint64_t gzip6(const std::vector<std::uint8_t>& raw) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // gzip wrapper, as gzip -6
  std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(raw.size())) + 32);
  z.next_in = const_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  const std::uint64_t n = z.total_out;
  deflateEnd(&z);
  return n;
}

std::uint64_t zstd_size(const std::vector<std::uint8_t>& raw, int level) {
  std::vector<std::uint8_t> out(ZSTD_compressBound(raw.size()));
  return ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), level);
}

std::vector<std::uint8_t> read_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<std::uint8_t> b(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < b.size()) {
    const ssize_t n = ::read(fd, b.data() + got, b.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return b;
}

// Erlang's way: try each code-path directory in order (a stat per directory), then read.
std::vector<std::uint8_t> walk_and_read(const std::vector<std::string>& path, const std::string& module) {
  struct stat st {};
  for (const auto& dir : path) {
    std::string file = dir;
    file += '/';
    file += module;
    file += ".beam";
    if (::stat(file.c_str(), &st) == 0) return read_path(file);
  }
  return {};
}

struct GetFigures {
  double cold_us, cached_us, shared_us, file_us, walk_us, cold_p90, cached_p90;
};

// Interleaved: each sample runs the five reads in a rotating order. `cold` is a second
// store on the same file with the image cache off (every get decompresses its blob);
// `cached` has the default cache, which the warm-up pass filled: get copies the cached
// bytes out, get_shared hands out the cache's own.
GetFigures bench_get(codestore::Store& cold, codestore::Store& cached,
                     const std::vector<const File*>& samples,
                     const std::map<const File*, std::int64_t>& version,
                     const std::vector<std::string>& code_path) {
  std::vector<double> t_cold, t_cached, t_shared, t_file, t_walk;
  std::size_t sink = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const File* f = samples[i];
    for (std::size_t k = 0; k < 5; ++k) {
      const std::size_t which = (i + k) % 5;
      const auto t0 = Clock::now();
      if (which < 2) {
        auto b = (which == 0 ? cold : cached).get(f->module, version.at(f));
        const auto t1 = Clock::now();
        if (!b || b->size() != f->bytes.size()) die("get " + f->module + ": wrong bytes");
        (which == 0 ? t_cold : t_cached).push_back(micros(t1 - t0));
      } else if (which == 2) {
        auto b = cached.get_shared(f->module, version.at(f));
        const auto t1 = Clock::now();
        if (!b || (*b)->size() != f->bytes.size()) die("get_shared " + f->module + ": wrong bytes");
        t_shared.push_back(micros(t1 - t0));
      } else if (which == 3) {
        auto b = read_path(f->path);
        const auto t1 = Clock::now();
        sink += b.size();
        t_file.push_back(micros(t1 - t0));
      } else {
        auto b = walk_and_read(code_path, f->module);
        const auto t1 = Clock::now();
        if (b.size() != f->bytes.size()) die("walk " + f->module + ": not found");
        t_walk.push_back(micros(t1 - t0));
      }
    }
  }
  if (sink == 0) die("nothing read");
  return {median(t_cold), median(t_cached),        median(t_shared),         median(t_file),
          median(t_walk), percentile(t_cold, 0.9), percentile(t_cached, 0.9)};
}

void print_get(const char* label, const GetFigures& g) {
  std::printf("%s\n", label);
  std::printf("  store get, image cache off     %8.1f us   (p90 %.1f us; target <= 15)\n", g.cold_us,
              g.cold_p90);
  std::printf("  store get, image cache on      %8.1f us   (p90 %.1f us)\n", g.cached_us, g.cached_p90);
  std::printf("  store get_shared, cache on     %8.1f us\n", g.shared_us);
  std::printf(
      "  plain file, known path         %8.1f us   store/file = %.2f off, %.2f on, %.2f shared (target <= "
      "1)\n",
      g.file_us, g.cold_us / g.file_us, g.cached_us / g.file_us, g.shared_us / g.file_us);
  std::printf(
      "  25-dir code path walk + read   %8.1f us   walk/store = %.2fx off, %.2fx on, %.2fx shared (target >= "
      "3)\n",
      g.walk_us, g.walk_us / g.cold_us, g.walk_us / g.cached_us, g.walk_us / g.shared_us);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  std::size_t gets = 20000;
  std::string dir = (fs::temp_directory_path() / "bench_store").string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--gets" && i + 1 < argc) {
      gets = static_cast<std::size_t>(std::atoll(argv[++i]));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_store [--runs N] [--gets N] [--dir DIR]\n");
      return 2;
    }
  }
  fs::create_directories(dir);
  const auto files = corpus();
  if (files.empty()) die("no images under /usr/lib/erlang/lib");
  std::uint64_t raw_total = 0, gzip_total = 0;
  for (const auto& f : files) {
    raw_total += f.bytes.size();
    gzip_total += gzip6(f.bytes);
  }
  std::printf("corpus: %zu images, %llu bytes; %u cores\n", files.size(),
              static_cast<unsigned long long>(raw_total), std::thread::hardware_concurrency());
  const std::vector<std::string> roots{"/usr/lib/erlang/lib", "/usr/lib/elixir/lib"};

  // --- 1. import -------------------------------------------------------------------------
  std::vector<double> ours, floor;
  const std::string db = dir + "/store.db";
  for (int r = 0; r < runs; ++r) {
    for (const auto& p :
         {db, db + "-wal", db + "-shm", dir + "/floor.db", dir + "/floor.db-wal", dir + "/floor.db-shm"}) {
      fs::remove(p);
    }
    {
      auto store = must(codestore::Store::open(db), "open");
      const auto t0 = Clock::now();
      auto s = must(store->import_tree(roots, {}), "import");
      ours.push_back(static_cast<double>(s.files) / seconds(Clock::now() - t0));
    }
    {
      SQLite::Database fdb(dir + "/floor.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      fdb.exec(
          "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
          "CREATE TABLE t (name TEXT PRIMARY KEY, data BLOB)");
      const auto t0 = Clock::now();
      SQLite::Transaction tx(fdb, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement ins(fdb, "INSERT INTO t VALUES (?, ?)");
      for (const auto& f : files) {
        auto bytes = read_path(f.path);  // the store reads the files too
        ins.bind(1, f.path);
        ins.bind(2, bytes.data(), static_cast<int>(bytes.size()));
        ins.exec();
        ins.reset();
      }
      tx.commit();
      floor.push_back(static_cast<double>(files.size()) / seconds(Clock::now() - t0));
    }
  }
  std::printf("\nimport of the whole set (median of %d runs)\n", runs);
  std::printf("  store import_tree             %8.0f images/s   (target >= 3000)\n", median(ours));
  std::printf("  floor: plain SQLite insert    %8.0f images/s   store/floor = %.2f\n", median(floor),
              median(ours) / median(floor));

  // --- 2. get ----------------------------------------------------------------------------
  auto store = must(codestore::Store::open(db), "open");
  codestore::StoreOptions no_cache;
  no_cache.image_cache_bytes = 0;
  auto cold = must(codestore::Store::open(db, no_cache), "open");
  std::map<std::string, std::int64_t> by_module;
  for (const auto& m : must(store->list(), "list")) by_module[m.module] = m.active_version;
  // The code path: 25 ebin directories (sorted); samples are modules that live in them.
  std::vector<std::string> dirs;
  for (const auto& f : files) {
    if (dirs.empty() || dirs.back() != f.dir) dirs.push_back(f.dir);
  }
  const std::vector<std::string> code_path(
      dirs.begin(), dirs.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(25, dirs.size())));
  std::vector<const File*> pool;
  std::map<const File*, std::int64_t> version;
  for (const auto& f : files) {
    if (std::find(code_path.begin(), code_path.end(), f.dir) != code_path.end() &&
        by_module.count(f.module)) {
      pool.push_back(&f);
      version[&f] = by_module[f.module];
    }
  }
  std::mt19937 rng(42);
  std::vector<const File*> samples;
  for (std::size_t i = 0; i < gets; ++i) samples.push_back(pool[rng() % pool.size()]);
  std::printf("\nget of a random module version (%zu gets over %zu modules in a %zu-dir code path)\n", gets,
              pool.size(), code_path.size());
  const std::vector<const File*> warm(
      samples.begin(),
      samples.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(2000, samples.size())));
  bench_get(*cold, *store, warm, version, code_path);
  print_get("default level (zstd 3, no dictionary)", bench_get(*cold, *store, samples, version, code_path));

  // --- 3. size ---------------------------------------------------------------------------
  auto size_line = [&](const char* label) {
    auto st = must(store->stats(), "stats");
    if (auto s = store->checkpoint(); !s) die(s.to_string());
    const auto file_size = fs::file_size(db);
    std::printf("%s\n", label);
    std::printf("  stored blob bytes   %10llu   /raw %.3f   /gzip-6 %.3f\n",
                static_cast<unsigned long long>(st.stored_bytes),
                static_cast<double>(st.stored_bytes) / static_cast<double>(raw_total),
                static_cast<double>(st.stored_bytes) / static_cast<double>(gzip_total));
    std::printf("  database file       %10llu   /raw %.3f   /gzip-6 %.3f\n",
                static_cast<unsigned long long>(file_size),
                static_cast<double>(file_size) / static_cast<double>(raw_total),
                static_cast<double>(file_size) / static_cast<double>(gzip_total));
  };
  std::printf("\nsize: raw %llu bytes; gzip -6 of each file %llu bytes (%.3f of raw)\n",
              static_cast<unsigned long long>(raw_total), static_cast<unsigned long long>(gzip_total),
              static_cast<double>(gzip_total) / static_cast<double>(raw_total));
  size_line("default level (zstd 3)");

  const auto t_train = Clock::now();
  auto dict = must(store->train_dictionary({}), "train");
  const double train_s = seconds(Clock::now() - t_train);
  const auto t_compact = Clock::now();
  auto c = must(store->compact({}), "compact");
  std::printf(
      "\ntrain_dictionary: %llu bytes from %lld images in %.1f s; compact (level 19): %lld blobs in %.1f s\n",
      static_cast<unsigned long long>(dict.size), static_cast<long long>(dict.samples), train_s,
      static_cast<long long>(c.blobs), seconds(Clock::now() - t_compact));
  size_line("after compact (zstd 19 + dictionary)");
  // A new cached store: the one above holds the images from before compact.
  store.reset();
  store = must(codestore::Store::open(db), "open");
  bench_get(*cold, *store, warm, version, code_path);
  print_get("get after compact", bench_get(*cold, *store, samples, version, code_path));

  // --- already-deflated chunks ------------------------------------------------------------
  std::uint64_t deflated = 0, deflated_zstd = 0, rest = 0, rest_zstd = 0;
  for (const auto& f : files) {
    auto img = codestore::image::Image::parse(f.bytes, codestore::image::Strictness::kLenient);
    if (!img) continue;
    for (const auto& ch : img->chunks()) {
      const auto data = img->data(ch);
      const std::vector<std::uint8_t> v(data.begin(), data.end());
      const bool z = ch.id_view() == "Dbgi" || ch.id_view() == "LitT";
      (z ? deflated : rest) += v.size();
      (z ? deflated_zstd : rest_zstd) += zstd_size(v, 3);
    }
  }
  std::printf(
      "\nalready deflated: Dbgi+LitT are %.1f %% of the chunk bytes; zstd-3 per chunk keeps %.3f of them "
      "(the other chunks: %.3f)\n",
      100.0 * static_cast<double>(deflated) / static_cast<double>(deflated + rest),
      static_cast<double>(deflated_zstd) / static_cast<double>(deflated),
      static_cast<double>(rest_zstd) / static_cast<double>(rest));
  return 0;
}

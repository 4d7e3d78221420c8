// bench_store: the store on the real corpus (the .beam files of Debian's Erlang/OTP and Elixir
// packages, copied under DIR/corpus; without dpkg, every .beam under /usr/lib/erlang/lib and
// /usr/lib/elixir/lib), each figure next to its baseline measured in the same run
// (the machines are noisy: compare side by side, report medians and ratios).
//
//   bench_store [--runs N] [--gets N] [--dir DIR] [--layout-settings]
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
// Issue 17 (images as their chunks, docs/store.md "Chunks"), each beside today's whole-image
// storage (a second store opened with StoreOptions::chunks = false) in the same run:
// import rate (target >= 0.8x whole), a read for loading (get_for_loading, image cache off)
// against a plain file read at a known path (target <=, median) and the floor under it (zstd
// alone decompressing the same layout frames from memory), stored bytes after dict
// train + compact (target <= 0.62 of raw, <= 0.75 of gzip -6) with bytes by chunk kind, and
// the bytes a second build adds per changed module. With --layout-settings, also what other
// encodings of the layouts would cost in bytes and gain in decompression time.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <codestore/image.h>
#include <codestore/store.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_c_literalCompressionMode (--layout-settings)
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

// The lines a command prints (empty when it cannot run).
std::vector<std::string> command_lines(const std::string& command) {
  std::vector<std::string> out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::string line;
  for (int c = std::fgetc(p); c != EOF; c = std::fgetc(p)) {
    if (c != '\n') {
      line.push_back(static_cast<char>(c));
    } else {
      out.push_back(line);
      line.clear();
    }
  }
  pclose(p);
  return out;
}

// The fixed list (issue 17): the .beam files of Debian's Erlang/OTP and Elixir packages (the
// binary packages built from the sources `erlang` and `elixir-lang`; other packages add
// applications to /usr/lib/erlang/lib), copied under `dir`/corpus with their paths, so that
// import_tree imports exactly them. Without dpkg: every .beam under the two roots, as found.
std::vector<File> corpus(const std::string& dir, std::vector<std::string>& roots, std::string& what) {
  std::vector<std::string> paths;
  for (const auto& line : command_lines(
           "dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package} ${source:Package}\\n' 2>/dev/null")) {
    char status[8], package[256], source[256];
    if (std::sscanf(line.c_str(), "%7s %255s %255s", status, package, source) != 3) continue;
    if (std::string(status) != "ii" ||
        (std::string(source) != "erlang" && std::string(source) != "elixir-lang"))
      continue;
    for (auto& path : command_lines(std::string("dpkg-query -L ") + package)) {
      if (path.size() > 5 && path.ends_with(".beam") &&
          (path.starts_with("/usr/lib/erlang/lib/") || path.starts_with("/usr/lib/elixir/lib/")))
        paths.push_back(path);
    }
  }
  const std::string copy = dir + "/corpus";
  if (!paths.empty()) {
    what = "the .beam files of Debian's packages from the sources erlang and elixir-lang";
    fs::remove_all(copy);
    roots = {copy + "/usr/lib/erlang/lib", copy + "/usr/lib/elixir/lib"};
  } else {
    what = "every .beam under /usr/lib/erlang/lib and /usr/lib/elixir/lib (no dpkg here)";
    roots = {"/usr/lib/erlang/lib", "/usr/lib/elixir/lib"};
    for (const char* root : {"/usr/lib/erlang/lib", "/usr/lib/elixir/lib"}) {
      std::error_code ec;
      for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".beam") paths.push_back(e.path().string());
      }
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  std::vector<File> files;
  for (const auto& original : paths) {
    File f;
    f.path = what.starts_with("the") ? copy + original : original;
    if (f.path != original) {
      fs::create_directories(fs::path(f.path).parent_path());
      fs::copy_file(original, f.path, fs::copy_options::overwrite_existing);
    }
    f.dir = fs::path(f.path).parent_path().string();
    f.module = fs::path(f.path).stem().string();
    std::ifstream in(f.path, std::ios::binary);
    f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    files.push_back(std::move(f));
  }
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

struct LoadFigures {
  double load_us, whole_us, file_us, load_p90;
};

// Interleaved: a read for loading from the chunk store with the image cache off, today's
// get from the whole-image store with the cache off, a plain file read at a known path.
LoadFigures bench_load(codestore::Store& chunks, codestore::Store& whole,
                       const std::vector<const File*>& samples,
                       const std::map<const File*, std::int64_t>& version) {
  std::vector<double> t_load, t_whole, t_file;
  std::size_t sink = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const File* f = samples[i];
    for (std::size_t k = 0; k < 3; ++k) {
      const std::size_t which = (i + k) % 3;
      const auto t0 = Clock::now();
      if (which == 0) {
        auto b = chunks.get_for_loading(f->module, version.at(f));
        const auto t1 = Clock::now();
        if (!b || (*b)->empty()) die("get_for_loading " + f->module);
        t_load.push_back(micros(t1 - t0));
      } else if (which == 1) {
        auto b = whole.get(f->module, version.at(f));
        const auto t1 = Clock::now();
        if (!b || b->size() != f->bytes.size()) die("get " + f->module + ": wrong bytes");
        t_whole.push_back(micros(t1 - t0));
      } else {
        auto b = read_path(f->path);
        const auto t1 = Clock::now();
        sink += b.size();
        t_file.push_back(micros(t1 - t0));
      }
    }
  }
  if (sink == 0) die("nothing read");
  return {median(t_load), median(t_whole), median(t_file), percentile(t_load, 0.9)};
}

// `frame` decompressed into `out` (sized to its content) with `dict`, or with none when null:
// what zstd returned (an error code or the size written).
std::size_t decompress_frame(ZSTD_DCtx* dctx, std::vector<std::uint8_t>& out, const void* frame,
                             std::size_t size, const ZSTD_DDict* dict) {
  return dict ? ZSTD_decompress_usingDDict(dctx, out.data(), out.size(), frame, size, dict)
              : ZSTD_decompressDCtx(dctx, out.data(), out.size(), frame, size);
}

// The floor under a read for loading: zstd alone, decompressing the same layout frames from
// memory (read from the database beforehand, each dictionary digested once, one reused
// context), interleaved with the plain file read. Whatever the store does around it (the
// query, the read transaction, the view) comes on top of this.
struct FloorFigures {
  double zstd_us, file_us, frame_bytes, out_bytes;  // medians; bytes per sample on average
};

FloorFigures bench_zstd_floor(const std::string& db, const std::vector<const File*>& samples,
                              const std::map<const File*, std::int64_t>& version) {
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  struct Frame {
    std::vector<std::uint8_t> data;
    std::size_t size = 0;
    ZSTD_DDict* dict = nullptr;
  };
  std::map<std::int64_t, ZSTD_DDict*> dicts;
  std::vector<Frame> frames;
  SQLite::Statement q(sql,
                      "SELECT b.data, CASE b.layout WHEN 0 THEN b.raw_size ELSE b.layout_size END, "
                      "COALESCE(b.dictionary_id, 0) FROM versions v JOIN blobs b ON b.id = v.blob_id "
                      "WHERE v.module = ? AND v.version = ?");
  double frame_total = 0, out_total = 0;
  for (const File* f : samples) {
    q.reset();
    q.bind(1, f->module);
    q.bind(2, static_cast<std::int64_t>(version.at(f)));
    if (!q.executeStep()) die("floor: no blob for " + f->module);
    const auto col = q.getColumn(0);
    const auto* p = static_cast<const std::uint8_t*>(col.getBlob());
    Frame fr{std::vector<std::uint8_t>(p, p + col.getBytes()),
             static_cast<std::size_t>(q.getColumn(1).getInt64()), nullptr};
    if (const std::int64_t id = q.getColumn(2).getInt64(); id != 0) {
      if (!dicts.count(id)) {
        SQLite::Statement d(sql, "SELECT bytes FROM dictionaries WHERE id = ?");
        d.bind(1, static_cast<std::int64_t>(id));
        if (!d.executeStep()) die("floor: no dictionary");
        const auto bytes = d.getColumn(0);
        dicts[id] = ZSTD_createDDict(bytes.getBlob(), static_cast<std::size_t>(bytes.getBytes()));
      }
      fr.dict = dicts[id];
    }
    frame_total += static_cast<double>(fr.data.size());
    out_total += static_cast<double>(fr.size);
    frames.push_back(std::move(fr));
  }
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::vector<double> t_zstd, t_file;
  std::size_t sink = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    for (std::size_t k = 0; k < 2; ++k) {
      const auto t0 = Clock::now();
      if ((i + k) % 2 == 0) {
        const Frame& fr = frames[i];
        std::vector<std::uint8_t> out(fr.size);
        const std::size_t n = decompress_frame(dctx, out, fr.data.data(), fr.data.size(), fr.dict);
        const auto t1 = Clock::now();
        if (ZSTD_isError(n) || n != fr.size) die("floor: zstd failed for " + samples[i]->module);
        t_zstd.push_back(micros(t1 - t0));
      } else {
        auto b = read_path(samples[i]->path);
        const auto t1 = Clock::now();
        sink += b.size();
        t_file.push_back(micros(t1 - t0));
      }
    }
  }
  ZSTD_freeDCtx(dctx);
  for (auto& [id, d] : dicts) ZSTD_freeDDict(d);
  if (sink == 0) die("nothing read");
  const auto n = static_cast<double>(samples.size());
  return {median(t_zstd), median(t_file), frame_total / n, out_total / n};
}

void print_floor(const FloorFigures& g) {
  std::printf("  floor: zstd alone, from memory %8.1f us   zstd/file = %.2f (%.0f -> %.0f bytes per read)\n",
              g.zstd_us, g.zstd_us / g.file_us, g.frame_bytes, g.out_bytes);
  std::printf("         plain file, same run    %8.1f us\n", g.file_us);
}

// --layout-settings: what other encodings of the layouts would cost in bytes and gain in
// decompression, over every layout of the compacted store (the read-for-loading floor above
// is the stored one): each layout decompressed, compressed again with the setting, and 6,000
// random layouts decompressed from memory (median). The dictionary is the store's newest,
// loaded raw so that minMatch applies (a CDict keeps its own parameters).
void layout_settings(const std::string& db) {
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  SQLite::Statement d(sql, "SELECT bytes FROM dictionaries ORDER BY id DESC LIMIT 1");
  if (!d.executeStep()) die("layout settings: no dictionary");
  const auto dcol = d.getColumn(0);
  const auto* dp = static_cast<const std::uint8_t*>(dcol.getBlob());
  const std::vector<std::uint8_t> dict(dp, dp + dcol.getBytes());
  ZSTD_DDict* ddict = ZSTD_createDDict(dict.data(), dict.size());
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::vector<std::vector<std::uint8_t>> raws;
  std::size_t stored = 0, raw_bytes = 0;
  SQLite::Statement q(sql,
                      "SELECT data, layout_size, COALESCE(dictionary_id, 0) FROM blobs WHERE layout = 1");
  while (q.executeStep()) {
    const auto c = q.getColumn(0);
    std::vector<std::uint8_t> out(static_cast<std::size_t>(q.getColumn(1).getInt64()));
    const std::size_t n = decompress_frame(dctx, out, c.getBlob(), static_cast<std::size_t>(c.getBytes()),
                                           q.getColumn(2).getInt64() != 0 ? ddict : nullptr);
    if (ZSTD_isError(n) || n != out.size()) die("layout settings: a layout does not decompress");
    stored += static_cast<std::size_t>(c.getBytes());
    raw_bytes += out.size();
    raws.push_back(std::move(out));
  }
  if (raws.empty()) die("layout settings: no layouts");
  std::printf(
      "\nlayout settings: %zu layouts, %zu bytes, stored now %zu (level 19, dictionary, raw literals)\n",
      raws.size(), raw_bytes, stored);
  struct Setting {
    const char* name;
    int level;
    bool dict, raw;
    int min_match;  // 0: the level's
  };
  const Setting settings[] = {
      {"level 19, dictionary, raw literals", 19, true, true, 0},
      {"  minMatch 6", 19, true, true, 6},
      {"  minMatch 7", 19, true, true, 7},
      {"level 19, dictionary, Huffman literals", 19, true, false, 0},
      {"level 12, dictionary, raw literals", 12, true, true, 0},
      {"level 19, no dictionary, raw literals", 19, false, true, 0},
      {"level 3, no dictionary, raw literals", 3, false, true, 0},
  };
  std::mt19937 rng(7);
  std::vector<std::size_t> order;
  for (int i = 0; i < 6000; ++i) order.push_back(rng() % raws.size());
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  for (const auto& st : settings) {
    std::vector<std::vector<std::uint8_t>> frames;
    std::size_t total = 0;
    for (const auto& r : raws) {
      ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, st.level);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
      if (st.raw) ZSTD_CCtx_setParameter(cctx, ZSTD_c_literalCompressionMode, ZSTD_ps_disable);
      if (st.min_match != 0) ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, st.min_match);
      if (st.dict) ZSTD_CCtx_loadDictionary(cctx, dict.data(), dict.size());
      std::vector<std::uint8_t> f(ZSTD_compressBound(r.size()));
      const std::size_t n = ZSTD_compress2(cctx, f.data(), f.size(), r.data(), r.size());
      if (ZSTD_isError(n)) die(std::string("layout settings: ") + ZSTD_getErrorName(n));
      f.resize(n);
      total += n;
      frames.push_back(std::move(f));
    }
    std::vector<double> t;
    for (const std::size_t i : order) {
      std::vector<std::uint8_t> out(raws[i].size());
      const auto t0 = Clock::now();
      const std::size_t n =
          decompress_frame(dctx, out, frames[i].data(), frames[i].size(), st.dict ? ddict : nullptr);
      const auto t1 = Clock::now();
      if (n != out.size()) die("layout settings: a frame does not decompress");
      t.push_back(micros(t1 - t0));
    }
    std::printf(
        "  %-40s %9zu bytes (%+5.1f %%)   decompression %5.2f us median\n", st.name, total,
        100.0 * (static_cast<double>(total) - static_cast<double>(stored)) / static_cast<double>(stored),
        median(t));
  }
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  ZSTD_freeDDict(ddict);
}

void print_load(const char* label, const LoadFigures& g) {
  std::printf("%s (image cache off)\n", label);
  std::printf("  get_for_loading, chunks        %8.1f us   (p90 %.1f us)\n", g.load_us, g.load_p90);
  std::printf("  get, whole images (today)      %8.1f us\n", g.whole_us);
  std::printf(
      "  plain file, known path         %8.1f us   loading/file = %.2f (target <= 1), whole/file = %.2f\n",
      g.file_us, g.load_us / g.file_us, g.whole_us / g.file_us);
}

// A second build of a module, as a rebuild with a small change makes it: StrT grows, the
// debug info's term changes (inflated, one byte changed, deflated again at level 6 as
// term_to_binary does) and a chunk is added; Code, LitT, Line and the tables stay. Empty
// when the image has no StrT or no compressed Dbgi.
std::vector<std::uint8_t> second_build(const std::vector<std::uint8_t>& bytes) {
  namespace image = codestore::image;
  auto img = image::Image::parse(bytes, image::Strictness::kStrict);
  if (!img) return {};
  std::vector<std::vector<std::uint8_t>> keep;
  std::vector<image::ChunkData> chunks;
  bool strt = false, dbgi = false;
  for (const auto& c : img->chunks()) {
    const auto d = img->data(c);
    if (c.id_view() == "StrT") {
      keep.emplace_back(d.begin(), d.end());
      const std::string more = "second build";
      keep.back().insert(keep.back().end(), more.begin(), more.end());
      chunks.push_back({"StrT", keep.back()});
      strt = true;
    } else if (c.id_view() == "Dbgi" && d.size() > 6 && d[0] == 131 && d[1] == 80) {
      std::vector<std::uint8_t> term((std::size_t{d[2]} << 24) | (std::size_t{d[3]} << 16) |
                                     (std::size_t{d[4]} << 8) | d[5]);
      uLongf n = static_cast<uLongf>(term.size());
      if (::uncompress(term.data(), &n, d.data() + 6, static_cast<uLong>(d.size() - 6)) != Z_OK) return {};
      term.back() ^= 1;
      std::vector<std::uint8_t> out(d.begin(), d.begin() + 6);
      std::vector<std::uint8_t> z(compressBound(static_cast<uLong>(term.size())));
      uLongf zn = static_cast<uLongf>(z.size());
      if (::compress2(z.data(), &zn, term.data(), static_cast<uLong>(term.size()), 6) != Z_OK) return {};
      out.insert(out.end(), z.begin(), z.begin() + static_cast<std::ptrdiff_t>(zn));
      keep.push_back(std::move(out));
      chunks.push_back({"Dbgi", keep.back()});
      dbgi = true;
    } else {
      chunks.push_back({std::string(c.id_view()), d});
    }
  }
  if (!strt || !dbgi) return {};
  static const std::string extra = "a chunk of the second build";
  chunks.push_back({"XBld", image::Bytes(reinterpret_cast<const std::uint8_t*>(extra.data()), extra.size())});
  auto built = image::build_module(chunks);
  return built ? *built : std::vector<std::uint8_t>{};
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  std::size_t gets = 20000;
  std::string dir = (fs::temp_directory_path() / "bench_store").string();
  bool settings = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--gets" && i + 1 < argc) {
      gets = static_cast<std::size_t>(std::atoll(argv[++i]));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--layout-settings") {
      settings = true;
    } else {
      std::fprintf(stderr, "usage: bench_store [--runs N] [--gets N] [--dir DIR] [--layout-settings]\n");
      return 2;
    }
  }
  fs::create_directories(dir);
  std::vector<std::string> roots;
  std::string what;
  const auto files = corpus(dir, roots, what);
  if (files.empty()) die("no images under /usr/lib/erlang/lib");
  std::printf("corpus: %s\n", what.c_str());
  std::uint64_t raw_total = 0, gzip_total = 0;
  for (const auto& f : files) {
    raw_total += f.bytes.size();
    gzip_total += gzip6(f.bytes);
  }
  std::printf("corpus: %zu images, %llu bytes; %u cores\n", files.size(),
              static_cast<unsigned long long>(raw_total), std::thread::hardware_concurrency());

  // --- 1. import -------------------------------------------------------------------------
  std::vector<double> ours, whole_rate, floor;
  const std::string db = dir + "/store.db";
  const std::string whole_db = dir + "/whole.db";  // today's whole-image storage
  codestore::StoreOptions whole_options;
  whole_options.chunks = false;
  for (int r = 0; r < runs; ++r) {
    for (const auto& p : {db, db + "-wal", db + "-shm", whole_db, whole_db + "-wal", whole_db + "-shm",
                          dir + "/floor.db", dir + "/floor.db-wal", dir + "/floor.db-shm"}) {
      fs::remove(p);
    }
    {
      auto store = must(codestore::Store::open(whole_db, whole_options), "open");
      const auto t0 = Clock::now();
      auto s = must(store->import_tree(roots, {}), "import");
      whole_rate.push_back(static_cast<double>(s.files) / seconds(Clock::now() - t0));
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
  std::printf("  whole images (before chunks)  %8.0f images/s   chunks/whole = %.2f (target >= 0.8)\n",
              median(whole_rate), median(ours) / median(whole_rate));
  std::printf("  floor: plain SQLite insert    %8.0f images/s   store/floor = %.2f\n", median(floor),
              median(ours) / median(floor));

  // --- 2. get ----------------------------------------------------------------------------
  auto store = must(codestore::Store::open(db), "open");
  codestore::StoreOptions no_cache;
  no_cache.image_cache_bytes = 0;
  auto cold = must(codestore::Store::open(db, no_cache), "open");
  codestore::StoreOptions whole_no_cache = whole_options;
  whole_no_cache.image_cache_bytes = 0;
  auto whole = must(codestore::Store::open(whole_db, whole_no_cache), "open");
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
  bench_load(*cold, *whole, warm, version);
  print_load("read for loading, default level", bench_load(*cold, *whole, samples, version));
  print_floor(bench_zstd_floor(db, samples, version));

  // --- 3. size ---------------------------------------------------------------------------
  auto size_line = [&](const char* label, codestore::Store& which, const std::string& path) {
    auto st = must(which.stats(), "stats");
    if (auto s = which.checkpoint(); !s) die(s.to_string());
    const auto file_size = fs::file_size(path);
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
  auto whole_store = must(codestore::Store::open(whole_db, whole_options), "open");
  size_line("default level (zstd 3), chunks", *store, db);
  size_line("default level (zstd 3), whole images", *whole_store, whole_db);

  for (auto* which : {whole_store.get(), store.get()}) {
    const auto t_train = Clock::now();
    auto dict = must(which->train_dictionary({}), "train");
    const double train_s = seconds(Clock::now() - t_train);
    const auto t_compact = Clock::now();
    auto c = must(which->compact({}), "compact");
    std::printf(
        "\n%s: train_dictionary: %llu bytes from %lld images in %.1f s; compact (level 19): %lld blobs, %lld "
        "chunks (%lld inflated, %lld deflated kept as they came, %zu skipped) in %.1f s\n",
        which == store.get() ? "chunks" : "whole images", static_cast<unsigned long long>(dict.size),
        static_cast<long long>(dict.samples), train_s, static_cast<long long>(c.blobs),
        static_cast<long long>(c.chunks), static_cast<long long>(c.chunks_inflated),
        static_cast<long long>(c.chunks_kept_deflated), c.skipped.size(), seconds(Clock::now() - t_compact));
  }
  size_line("after compact (zstd 19 + dictionary), chunks", *store, db);
  size_line("after compact (zstd 19 + dictionary), whole images", *whole_store, whole_db);
  {
    auto st = must(store->stats(), "stats");
    std::printf("  bytes by chunk kind (chunks store):\n  %-14s %7s %12s %12s %6s %8s\n", "kind", "rows",
                "raw", "stored", "ratio", "inflated");
    for (const auto& k : st.chunk_kinds) {
      std::printf("  %-14s %7lld %12llu %12llu %6.3f %8lld\n", k.kind.c_str(),
                  static_cast<long long>(k.chunks), static_cast<unsigned long long>(k.raw_bytes),
                  static_cast<unsigned long long>(k.stored_bytes),
                  k.raw_bytes ? static_cast<double>(k.stored_bytes) / static_cast<double>(k.raw_bytes) : 0.0,
                  static_cast<long long>(k.inflated));
    }
  }
  // Exact: every image of both stores, by SHA-256 (get with verify_sha256 compares it).
  {
    std::size_t checked = 0;
    for (const auto& f : files) {
      if (!by_module.count(f.module) || version.count(&f) == 0) continue;
      for (auto* which : {store.get(), whole_store.get()}) {
        auto b = must(which->get(f.module, version.at(&f), true), "get");
        if (b != f.bytes) die("get " + f.module + ": not the imported bytes");
      }
      ++checked;
    }
    std::printf(
        "  exact after compact: %zu active images of the code path checked by SHA-256 in both stores\n",
        checked);
  }
  // A new cached store: the one above holds the images from before compact.
  store.reset();
  store = must(codestore::Store::open(db), "open");
  bench_get(*cold, *store, warm, version, code_path);
  print_get("get after compact", bench_get(*cold, *store, samples, version, code_path));
  bench_load(*cold, *whole, warm, version);
  print_load("read for loading after compact", bench_load(*cold, *whole, samples, version));
  print_floor(bench_zstd_floor(db, samples, version));
  if (settings) layout_settings(db);
  // A store that serves whole files (the boot protocol: erl_prim_loader reads each .beam
  // whole): compact keeping Dbgi/Docs deflated as they came (CompactOptions::inflate = false).
  {
    codestore::CompactOptions keep;
    keep.inflate = false;
    const auto t0 = Clock::now();
    auto c = must(store->compact(keep), "compact");
    std::printf(
        "\nchunks: compact keeping every chunk as it came (level 19): %lld chunks (%lld deflated back) in "
        "%.1f s\n",
        static_cast<long long>(c.chunks), static_cast<long long>(c.chunks_kept_deflated),
        seconds(Clock::now() - t0));
  }
  size_line("after compact keeping chunks deflated, chunks", *store, db);
  store.reset();
  store = must(codestore::Store::open(db), "open");
  bench_get(*cold, *store, warm, version, code_path);
  print_get("get after compact keeping chunks deflated",
            bench_get(*cold, *store, samples, version, code_path));
  bench_load(*cold, *whole, warm, version);
  print_load("read for loading after compact keeping chunks deflated",
             bench_load(*cold, *whole, samples, version));

  // --- a second build: a few modules changed ----------------------------------------------
  {
    std::vector<std::vector<std::uint8_t>> changed;
    for (std::size_t i = 0; i < files.size() && changed.size() < 20; i += files.size() / 20) {
      auto b = second_build(files[i].bytes);
      if (!b.empty()) changed.push_back(std::move(b));
    }
    std::printf("\na second build: %zu modules changed (StrT grows, Dbgi's term changes, a new chunk)\n",
                changed.size());
    for (auto* which : {store.get(), whole_store.get()}) {
      const auto before = must(which->stats(), "stats").stored_bytes;
      for (std::size_t i = 0; i < changed.size(); ++i)
        must(which->import(changed[i], "second build"), "import");
      const auto after = must(which->stats(), "stats").stored_bytes;
      std::printf("  %-13s bytes added per changed module (import level 3, newest dictionary): %.0f\n",
                  which == store.get() ? "chunks:" : "whole images:",
                  static_cast<double>(after - before) / static_cast<double>(changed.size()));
    }
  }

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

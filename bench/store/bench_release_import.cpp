// bench_release_import: importing a release from its tarball next to importing the same
// release from its directory, in the same run (issue 13: the tarball's rate >= 0.8x the
// directory's), and the plain import of the same images (Store::import_tree of every
// lib/*/ebin, schema 2's import) beside them.
//
//   bench_release_import [--runs N]
//
// The release is real: OTP's own applications as installed (kernel, stdlib, sasl, compiler,
// crypto, ssl, inets, mnesia, ...), packed by systools:make_script and systools:make_tar in
// the run; the directory is that tarball unpacked by tar(1). Each run imports into a fresh
// database (read_release + import_release: read, validate, hash, compress, insert), the two
// forms alternately, so that a noisy machine weighs on both alike. Wall-clock medians: the
// import's workers run on other threads. The floor of reading the tarball is printed beside
// them: inflating it alone, with zlib (the streaming reader) and with libdeflate (the
// whole-buffer one, which read_archive uses when it can).
#include <codestore/release_reader.h>
#include <codestore/store.h>
#include <fmt/format.h>
#include <libdeflate.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_support.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_release_import: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(codestore::Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.error().to_string());
  return std::move(*r);
}

void sh(const std::string& command) {
  if (std::system(command.c_str()) != 0) die(command + " failed");
}

// OTP's applications as a systools release `benchrel@1` in `dir`: benchrel.tar.gz, and the
// same unpacked in dir/unpacked.
void build_release(const fs::path& dir) {
  const std::string eval =
      "Apps = [kernel, stdlib, sasl, compiler, syntax_tools, tools, parsetools, crypto, asn1, public_key, "
      "ssl, inets, mnesia, xmerl, runtime_tools], "
      "[ok = application:load(A) || A <- Apps -- [kernel, stdlib]], "
      "Loaded = application:loaded_applications(), "
      "Vsns = [{A, element(3, lists:keyfind(A, 1, Loaded))} || A <- Apps], "
      "Rel = {release, {\"benchrel\", \"1\"}, {erts, erlang:system_info(version)}, Vsns}, "
      "ok = file:write_file(\"benchrel.rel\", io_lib:format(\"~p.~n\", [Rel])), "
      "ok = systools:make_script(\"benchrel\", [no_warn_sasl]), "
      "ok = systools:make_tar(\"benchrel\", [no_warn_sasl]), halt().";
  sh(fmt::format("cd '{}' && erl -noshell -eval '{}' >/dev/null", dir.string(), eval));
  fs::create_directories(dir / "unpacked");
  sh(fmt::format("tar xzf '{}' -C '{}'", (dir / "benchrel.tar.gz").string(), (dir / "unpacked").string()));
}

// The floor of reading a tarball: zlib inflating the whole file into a scratch buffer, nothing
// kept (what gzip -dc does). Seconds.
double inflate_seconds(const std::vector<std::uint8_t>& gz) {
  const auto t0 = Clock::now();
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) die("inflateInit2");
  std::vector<std::uint8_t> out(256 * 1024);
  zs.next_in = const_cast<Bytef*>(gz.data());
  zs.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) die("inflate failed");
  }
  inflateEnd(&zs);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The same floor with libdeflate, which read_archive uses for a tarball whose gzip trailer
// promises a bounded size: the whole file into one buffer of the trailer's ISIZE. Seconds.
double libdeflate_seconds(const std::vector<std::uint8_t>& gz) {
  const auto t0 = Clock::now();
  const std::size_t isize =
      static_cast<std::size_t>(gz[gz.size() - 4]) | static_cast<std::size_t>(gz[gz.size() - 3]) << 8 |
      static_cast<std::size_t>(gz[gz.size() - 2]) << 16 | static_cast<std::size_t>(gz[gz.size() - 1]) << 24;
  std::vector<std::uint8_t> out(isize);
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  if (!d) die("libdeflate_alloc_decompressor");
  const auto rc = libdeflate_gzip_decompress(d, gz.data(), gz.size(), out.data(), out.size(), nullptr);
  libdeflate_free_decompressor(d);
  if (rc != LIBDEFLATE_SUCCESS) die("libdeflate_gzip_decompress failed");
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Run {
  double seconds = 0;
  double read_seconds = 0;  // read_release alone
  std::size_t modules = 0;
  std::uint64_t bytes = 0;
};

Run import_release(const fs::path& db, const std::string& path) {
  fs::remove(db);
  fs::remove(db.string() + "-wal");
  fs::remove(db.string() + "-shm");
  auto store = must(codestore::Store::open(db.string(), {.create = true}), "open " + db.string());
  const auto t0 = Clock::now();
  const auto content = must(codestore::read_release(path), "read " + path);
  const double read_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto r = must(store->import_release(content), "import " + path);
  Run run;
  run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run.read_seconds = read_seconds;
  for (const auto& a : r.apps) run.modules += a.modules;
  run.bytes = r.bytes_in;
  return run;
}

Run import_tree(const fs::path& db, const fs::path& lib) {
  fs::remove(db);
  fs::remove(db.string() + "-wal");
  fs::remove(db.string() + "-shm");
  auto store = must(codestore::Store::open(db.string(), {.create = true}), "open " + db.string());
  std::vector<std::string> ebins;
  for (const auto& e : fs::directory_iterator(lib)) ebins.push_back((e.path() / "ebin").string());
  const auto t0 = Clock::now();
  const auto r = must(store->import_tree(ebins, {}), "import_tree " + lib.string());
  Run run;
  run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run.modules = r.files;
  run.bytes = r.bytes_in;
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_release_import [--runs N]\n");
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  codestore::bench::TempDir dir;
  const fs::path root = dir.path();
  build_release(root);
  const std::string tar = (root / "benchrel.tar.gz").string();
  const std::string unpacked = (root / "unpacked").string();
  const fs::path db = root / "bench.db";

  const auto gz = codestore::bench::read_file(tar);
  std::vector<double> inflate_ms, libdeflate_ms;
  std::vector<double> tar_rate, dir_rate, tree_rate, tar_mb, dir_mb, tar_read, dir_read, tar_all, dir_all;
  Run last_tar, last_dir, last_tree;
  for (int i = 0; i < runs; ++i) {
    last_tar = import_release(db, tar);
    last_dir = import_release(db, unpacked);
    last_tree = import_tree(db, root / "unpacked" / "lib");
    tar_rate.push_back(static_cast<double>(last_tar.modules) / last_tar.seconds);
    dir_rate.push_back(static_cast<double>(last_dir.modules) / last_dir.seconds);
    tree_rate.push_back(static_cast<double>(last_tree.modules) / last_tree.seconds);
    tar_mb.push_back(static_cast<double>(last_tar.bytes) / 1e6 / last_tar.seconds);
    dir_mb.push_back(static_cast<double>(last_dir.bytes) / 1e6 / last_dir.seconds);
    tar_read.push_back(last_tar.read_seconds * 1e3);
    dir_read.push_back(last_dir.read_seconds * 1e3);
    tar_all.push_back(last_tar.seconds * 1e3);
    inflate_ms.push_back(inflate_seconds(gz) * 1e3);
    libdeflate_ms.push_back(libdeflate_seconds(gz) * 1e3);
    dir_all.push_back(last_dir.seconds * 1e3);
  }
  if (last_tar.modules != last_dir.modules) {
    die(fmt::format("the tarball has {} modules, the directory {}", last_tar.modules, last_dir.modules));
  }
  using codestore::bench::median;
  std::printf("release benchrel@1 (OTP's applications, systools): %zu modules, %llu bytes in its files; %s\n",
              last_dir.modules, static_cast<unsigned long long>(last_dir.bytes), tar.c_str());
  std::printf("import into a fresh store, read_release + import_release (median of %d runs)\n", runs);
  std::printf(
      "  from the tarball        %8.0f modules/s  %6.1f MB/s   tarball/directory = %.2f (target >= 0.8)\n",
      median(tar_rate), median(tar_mb), median(tar_rate) / median(dir_rate));
  std::printf("  from the directory      %8.0f modules/s  %6.1f MB/s\n", median(dir_rate), median(dir_mb));
  std::printf("  of which read_release: tarball %.0f ms of %.0f ms, directory %.0f ms of %.0f ms\n",
              median(tar_read), median(tar_all), median(dir_read), median(dir_all));
  std::printf("  floor: inflating the tarball alone: zlib %.0f ms, libdeflate %.0f ms\n", median(inflate_ms),
              median(libdeflate_ms));
  std::printf("  plain import_tree of lib/*/ebin (beams only) %8.0f modules/s\n", median(tree_rate));
  return 0;
}

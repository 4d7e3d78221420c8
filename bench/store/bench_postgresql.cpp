// bench_postgresql: the same import into a store on PostgreSQL over its Unix socket and into
// a SQLite file, side by side in one run (issue 16: PostgreSQL >= 0.5x SQLite's rate).
//
//   bench_postgresql [--runs N] [--pg URI]
//
// The whole real corpus (every .beam under /usr/lib/erlang/lib and /usr/lib/elixir/lib) by
// Store::import_tree into a fresh store, alternating SQLite and PostgreSQL each run (the
// machines are noisy: medians, and the ratio). Without --pg the bench starts its own server
// (tests/support/pg_server.h) with fsync and full-page writes on and commits not waited for
// (synchronous_commit off), as SQLite's WAL with synchronous = NORMAL runs; with --pg, a
// database URI whose role may CREATE DATABASE: each run gets a fresh database beside it.
// Opening (the schema) is not timed, only the import.
#include <codestore/store.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_support.h"
#include "support/pg_server.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string server_dir;

void stop_server() {
  if (!server_dir.empty()) codestore::testing::PgServer::stop(server_dir);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_postgresql: %s\n", what.c_str());
  std::exit(1);
}

double import_rate(const std::string& location, const std::vector<std::string>& roots, std::size_t& files) {
  auto store = codestore::Store::open(location, {});
  if (!store) die("open " + location + ": " + store.error().to_string());
  const auto t0 = Clock::now();
  auto s = (*store)->import_tree(roots, {});
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!s) die("import into " + location + ": " + s.error().to_string());
  files = s->files;
  return static_cast<double>(s->files) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  std::string pg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--pg" && i + 1 < argc) {
      pg = argv[++i];
    } else {
      die("usage: bench_postgresql [--runs N] [--pg URI]");
    }
  }
  const auto roots = codestore::testing::real_image_roots();
  if (roots.empty()) die("no images under /usr/lib/erlang/lib");
  if (pg.empty()) {
    char tmpl[] = "/tmp/cspg-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
    server_dir = tmpl;
    std::atexit(stop_server);
    try {
      codestore::testing::PgServer::start(server_dir, /*durable=*/true);
    } catch (const std::exception& e) {
      die(e.what());
    }
    ::setenv("CODESTORE_TEST_PG_DIR", server_dir.c_str(), 1);
  }
  std::vector<double> sqlite, postgresql;
  std::size_t files = 0;
  for (int r = 0; r < runs; ++r) {
    {
      codestore::bench::TempDir dir;
      sqlite.push_back(import_rate(dir.path() / "s.db", roots, files));
    }
    if (pg.empty()) {
      const std::string uri = codestore::testing::pg_create_database(/*empty=*/true);
      postgresql.push_back(import_rate(uri, roots, files));
      codestore::testing::pg_drop_database(uri);
    } else {
      postgresql.push_back(import_rate(pg, roots, files));
    }
    std::printf("run %d: sqlite %.0f images/s, postgresql %.0f images/s\n", r + 1, sqlite.back(),
                postgresql.back());
  }
  const double s = codestore::bench::median(sqlite), p = codestore::bench::median(postgresql);
  std::printf("\nimport_tree of %zu images (median of %d runs)\n", files, runs);
  std::printf("  SQLite file                  %8.0f images/s\n", s);
  std::printf("  PostgreSQL, Unix socket      %8.0f images/s   postgresql/sqlite = %.2f (target >= 0.5)\n", p,
              p / s);
  return 0;
}

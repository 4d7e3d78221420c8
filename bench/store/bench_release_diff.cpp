// bench_release_diff: Store::erl_release_diff of two 2,000-module releases (target <= 50 ms),
// next to its baseline measured in the same run: reading the same rows (each release's
// modules with their MD5, and its files) with plain SQLite into maps, which any diff must
// do at least.
//
//   bench_release_diff [--modules N] [--runs N]
//
// The releases are real: N small modules compiled by Erlang's own compiler (compile:forms,
// one erl process), application bench_app 1.0 in release benchrel@1 and bench_app 2.0 in
// benchrel@2, where every tenth module has other code, 50 modules are gone and 50 new.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <codestore/store.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench_support.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using codestore::AppContent;
using codestore::ContentFile;
using codestore::ReleaseContent;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Compiles modules bench_m<first>..bench_m<last> into `dir`; `salt` changes the code of every
// tenth one.
void compile_modules(const fs::path& dir, int first, int last, int salt) {
  fs::create_directories(dir);
  const std::string script = fmt::format(
      "#!/usr/bin/env escript\n"
      "main(_) ->\n"
      "  lists:foreach(fun(I) ->\n"
      "    M = list_to_atom(\"bench_m\" ++ integer_to_list(I)),\n"
      "    S = case I rem 10 of 0 -> {}; _ -> 0 end,\n"
      "    Forms = [{{attribute, 1, module, M}}, {{attribute, 2, export, [{{f, 1}}]}},\n"
      "             {{function, 3, f, 1, [{{clause, 3, [{{var, 3, 'X'}}], [],\n"
      "               [{{op, 3, '+', {{var, 3, 'X'}}, {{integer, 3, I + S}}}}]}}]}}],\n"
      "    {{ok, M, B}} = compile:forms(Forms, []),\n"
      "    ok = file:write_file(\"{}/\" ++ atom_to_list(M) ++ \".beam\", B)\n"
      "  end, lists:seq({}, {})).\n",
      salt, dir.string(), first, last);
  const fs::path file = dir / "make.escript";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    if (f == nullptr || std::fwrite(script.data(), 1, script.size(), f) != script.size() ||
        std::fclose(f) != 0) {
      std::fprintf(stderr, "bench_release_diff: cannot write %s\n", file.c_str());
      std::exit(1);
    }
  }
  const std::string cmd = "escript '" + file.string() + "'";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "bench_release_diff: %s failed\n", cmd.c_str());
    std::exit(1);
  }
  fs::remove(file);
}

AppContent app_of(const fs::path& ebin, const std::string& vsn) {
  AppContent a;
  a.app = "bench_app";
  a.vsn = vsn;
  a.origin = ebin.string();
  std::string modules;
  for (const auto& e : fs::directory_iterator(ebin)) {
    ContentFile f;
    f.path = "ebin/" + e.path().filename().string();
    f.bytes = codestore::bench::read_file(e.path().string());
    modules += (modules.empty() ? "" : ",") + e.path().stem().string();
    a.files.push_back(std::move(f));
  }
  ContentFile app;
  app.path = "ebin/bench_app.app";
  const std::string text =
      fmt::format("{{application, bench_app, [{{vsn, \"{}\"}}, {{modules, [{}]}}]}}.\n", vsn, modules);
  app.bytes.assign(text.begin(), text.end());
  a.files.push_back(std::move(app));
  return a;
}

ReleaseContent release_of(const std::string& vsn, AppContent app) {
  ReleaseContent r;
  r.name = "benchrel";
  r.vsn = vsn;
  r.erts_vsn = "13.1.5";
  r.rel_apps.push_back({app.app, app.vsn, "", ""});
  ContentFile rel;
  rel.path = fmt::format("releases/{}/benchrel.rel", vsn);
  const std::string text =
      fmt::format("{{release, {{\"benchrel\", \"{}\"}}, {{erts, \"13.1.5\"}}, [{{bench_app, \"{}\"}}]}}.\n",
                  vsn, app.vsn);
  rel.bytes.assign(text.begin(), text.end());
  r.files.push_back(std::move(rel));
  r.apps.push_back(std::move(app));
  return r;
}

// The floor: the rows a diff reads, into maps, with plain SQLite.
std::size_t read_rows(SQLite::Database& db, const char* vsn) {
  std::map<std::string, std::string> modules, files;
  SQLite::Statement m(
      db,
      "SELECT am.module, v.md5 FROM releases r JOIN release_apps ra ON ra.release = r.id JOIN "
      "app_modules am ON am.app_version = ra.app_version JOIN versions v ON v.module = am.module AND "
      "v.version = am.version WHERE r.name = 'benchrel' AND r.vsn = ?");
  m.bind(1, vsn);
  while (m.executeStep()) modules[m.getColumn(0).getString()] = m.getColumn(1).getString();
  SQLite::Statement f(
      db,
      "SELECT f.path, hex(b.sha256) FROM releases r JOIN release_apps ra ON ra.release = r.id JOIN "
      "app_files f ON f.app_version = ra.app_version JOIN blobs b ON b.id = f.blob_id WHERE r.name = "
      "'benchrel' AND r.vsn = ?");
  f.bind(1, vsn);
  while (f.executeStep()) files[f.getColumn(0).getString()] = f.getColumn(1).getString();
  return modules.size() + files.size();
}

}  // namespace

int main(int argc, char** argv) {
  int n = 2000, runs = 21;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--modules") n = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
  }
  codestore::bench::TempDir dir;
  compile_modules(dir / "a", 1, n, 0);
  compile_modules(dir / "b", 51, n + 50, 7);
  auto store = codestore::Store::open((dir / "s.db").string(), {});
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().to_string().c_str());
    return 1;
  }
  for (const auto& [vsn, app] :
       {std::pair{"1", app_of(dir / "a", "1.0")}, std::pair{"2", app_of(dir / "b", "2.0")}}) {
    auto r = (*store)->import_release(release_of(vsn, app));
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
      return 1;
    }
  }
  SQLite::Database db((dir / "s.db").string(), SQLite::OPEN_READONLY);
  std::vector<double> diff_ms, floor_ms;
  std::size_t changed = 0, rows = 0;
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    auto d = (*store)->erl_release_diff({"benchrel", "1"}, {"benchrel", "2"});
    diff_ms.push_back(ms_since(t0));
    if (!d) {
      std::fprintf(stderr, "%s\n", d.error().to_string().c_str());
      return 1;
    }
    changed = d->modules_changed.size() + d->modules_added.size() + d->modules_removed.size();
    t0 = Clock::now();
    rows = read_rows(db, "1") + read_rows(db, "2");
    floor_ms.push_back(ms_since(t0));
  }
  const double diff = codestore::bench::median(diff_ms), floor = codestore::bench::median(floor_ms);
  std::printf(
      "release diff of two %d-module releases (%zu modules differ): median %.2f ms over %d runs "
      "(target <= 50 ms)\n",
      n, changed, diff, runs);
  std::printf(
      "baseline: the same %zu rows read into maps with plain SQLite: median %.2f ms (diff / baseline "
      "%.2fx)\n",
      rows, floor, floor > 0 ? diff / floor : 0.0);
  return diff <= 50.0 ? 0 : 2;
}

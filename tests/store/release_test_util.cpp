#include "release_test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "support/files.h"

namespace codestore::release_testing {

Command run(const std::string& command) {
  Command c;
  const std::string full = "(" + command + ") </dev/null 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "cannot run: " << command;
    return c;
  }
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) c.output.append(buf, n);
  const int status = ::pclose(p);
  c.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'') {
      out += "'\\''";
    } else {
      out += ch;
    }
  }
  return out + "'";
}

std::vector<ContentFile> walk(const fs::path& root, bool (*skip)(const std::string&)) {
  std::vector<ContentFile> files;
  std::vector<fs::path> pending{root};
  while (!pending.empty()) {
    const fs::path dir = pending.back();
    pending.pop_back();
    bool empty = true;
    for (const auto& e : fs::directory_iterator(dir)) {
      empty = false;
      const std::string rel = fs::relative(e.path(), root).generic_string();
      if (skip != nullptr && skip(rel)) continue;
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) != 0) {
        ADD_FAILURE() << "cannot stat " << e.path();
        continue;
      }
      ContentFile f;
      f.path = rel;
      f.mode = st.st_mode & 0777;
      if (S_ISLNK(st.st_mode)) {
        f.link = fs::read_symlink(e.path()).string();
      } else if (S_ISDIR(st.st_mode)) {
        pending.push_back(e.path());
        continue;
      } else {
        f.bytes = testing::read_file(e.path());
      }
      files.push_back(std::move(f));
    }
    if (empty && dir != root) {
      ContentFile d;
      d.path = fs::relative(dir, root).generic_string();
      d.directory = true;
      struct stat st {};
      if (::stat(dir.c_str(), &st) == 0) d.mode = st.st_mode & 0777;
      files.push_back(std::move(d));
    }
  }
  std::sort(files.begin(), files.end(),
            [](const ContentFile& a, const ContentFile& b) { return a.path < b.path; });
  return files;
}

std::vector<std::pair<std::string, std::string>> app_names(const std::vector<fs::path>& app_files) {
  std::string list = "[";
  for (std::size_t i = 0; i < app_files.size(); ++i) {
    list += (i ? ",\"" : "\"") + app_files[i].string() + "\"";
  }
  list += "]";
  const std::string eval =
      "lists:foreach(fun(F) -> {ok, [{application, A, P}]} = file:consult(F), "
      "io:format(\"~ts ~ts~n\", [A, proplists:get_value(vsn, P)]) end, " +
      list + "), halt().";
  const Command c = run("erl -noshell -eval " + sh_quote(eval));
  EXPECT_EQ(c.code, 0) << c.output;
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(c.output);
  std::string app, vsn;
  while (in >> app >> vsn) out.emplace_back(app, vsn);
  EXPECT_EQ(out.size(), app_files.size()) << c.output;
  return out;
}

std::vector<AppContent> read_app_dirs(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> app_files;
  for (const auto& d : dirs) {
    fs::path found;
    for (const auto& e : fs::directory_iterator(d / "ebin")) {
      if (e.path().extension() == ".app") found = e.path();
    }
    EXPECT_FALSE(found.empty()) << "no .app in " << d;
    app_files.push_back(found);
  }
  const auto names = app_names(app_files);
  std::vector<AppContent> apps;
  for (std::size_t i = 0; i < dirs.size() && i < names.size(); ++i) {
    AppContent a;
    a.app = names[i].first;
    a.vsn = names[i].second;
    a.origin = dirs[i].string();
    a.files = walk(dirs[i]);
    apps.push_back(std::move(a));
  }
  return apps;
}

AppContent read_app_dir(const fs::path& dir) {
  auto apps = read_app_dirs({dir});
  return apps.empty() ? AppContent{} : std::move(apps.front());
}

ReleaseContent read_release_dir(const fs::path& root, const std::string& name, const std::string& vsn) {
  ReleaseContent r;
  r.kind = "relx";
  r.origin = root.string();
  const fs::path rel = root / "releases" / vsn / (name + ".rel");
  const std::string eval =
      "{ok, [{release, {N, V}, {erts, E}, Apps}]} = file:consult(\"" + rel.string() +
      "\"), io:format(\"~ts ~ts ~ts~n\", [N, V, E]), "
      "lists:foreach(fun(T) -> [A, AV | Rest] = tuple_to_list(T), "
      "Type = [X || X <- Rest, is_atom(X)], Inc = [X || X <- Rest, is_list(X)], "
      "io:format(\"~ts ~ts ~ts ~ts~n\", [A, AV, case Type of [Ty] -> atom_to_list(Ty); [] -> \"-\" end, "
      "case Inc of [I] -> io_lib:format(\"~w\", [I]); [] -> \"-\" end]) end, Apps), halt().";
  const Command c = run("erl -noshell -eval " + sh_quote(eval));
  EXPECT_EQ(c.code, 0) << c.output;
  std::istringstream in(c.output);
  in >> r.name >> r.vsn >> r.erts_vsn;
  std::string app, avsn, type, included;
  std::vector<fs::path> dirs;
  while (in >> app >> avsn >> type >> included) {
    r.rel_apps.push_back({app, avsn, type == "-" ? "" : type, included == "-" ? "" : included});
    dirs.push_back(root / "lib" / (app + "-" + avsn));
  }
  r.apps = read_app_dirs(dirs);
  r.files = walk(root, [](const std::string& p) {
    return p == "lib" || p.starts_with("erts-") || p.ends_with(".tar.gz");
  });
  return r;
}

}  // namespace codestore::release_testing

#include "support/real_releases.h"

#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::testing {

namespace fs = std::filesystem;

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

CommandResult run_command(const std::string& command, const fs::path& cwd, const fs::path& home) {
  fs::create_directories(home);
  const std::string h = sh_quote(home.string());
  // The tools' caches and configuration under `home`; nothing fetched (no dependencies, and
  // hex told it is offline).
  const std::string full = "cd " + sh_quote(cwd.string()) + " && HOME=" + h + " MIX_HOME=" + h +
                           "/.mix HEX_HOME=" + h + "/.hex HEX_OFFLINE=1 REBAR_CACHE_DIR=" + h +
                           "/.cache/rebar3 ERL_CRASH_DUMP=/dev/null sh -c " + sh_quote(command) +
                           " </dev/null 2>&1";
  CommandResult r;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("cannot run: " + command);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string run_checked(const std::string& command, const fs::path& cwd, const fs::path& home) {
  auto r = run_command(command, cwd, home);
  if (r.code != 0) {
    throw std::runtime_error("`" + command + "` in " + cwd.string() + " exited with " +
                             std::to_string(r.code) + ":\n" + r.output);
  }
  return r.output;
}

OtpVersions otp_versions() {
  const TempDir tmp_dir;
  const fs::path& tmp = tmp_dir.path();
  const std::string out = run_checked(
      "erl -noshell -eval '"
      "V = fun(A) -> application:load(A), {ok, Vsn} = application:get_key(A, vsn), Vsn end, "
      "io:format(\"~s ~s ~s ~s ~s~n\", [erlang:system_info(version), V(kernel), V(stdlib), V(sasl), "
      "code:root_dir()]), "
      "halt().'",
      tmp, tmp / "home");
  OtpVersions v;
  std::string root;
  std::string* fields[] = {&v.erts, &v.kernel, &v.stdlib, &v.sasl, &root};
  std::size_t at = 0;
  for (auto* f : fields) {
    const std::size_t end = out.find_first_of(" \n", at);
    if (end == std::string::npos) throw std::runtime_error("erl said: " + out);
    *f = out.substr(at, end - at);
    at = end + 1;
  }
  v.root = root;
  return v;
}

namespace {

// Replaces the first `from` in the file with `to` (throws when it is not there).
void replace_in(const fs::path& file, const std::string& from, const std::string& to) {
  std::string text = read_text(file);
  const auto at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error(file.string() + ": no '" + from + "' to replace");
  text.replace(at, from.size(), to);
  write_file(file, text);
}

// A tiny application `dir/<app>-<vsn>`: one module with version/0, compiled with erlc.
fs::path tiny_app(const fs::path& dir, const std::string& app, const std::string& vsn) {
  const fs::path root = dir / (app + "-" + vsn);
  fs::create_directories(root / "src");
  fs::create_directories(root / "ebin");
  write_file(root / "src" / (app + ".erl"),
             "-module(" + app + ").\n-export([version/0]).\nversion() -> \"" + vsn + "\".\n");
  write_file(root / "ebin" / (app + ".app"),
             "{application, " + app + ",\n [{description, \"a tiny application\"},\n  {vsn, \"" + vsn +
                 "\"},\n  {modules, [" + app +
                 "]},\n  {registered, []},\n  {applications, [kernel, stdlib]}]}.\n");
  run_checked("erlc -o ebin src/" + app + ".erl", root, dir / "home");
  return root;
}

}  // namespace

Rebar3Release build_rebar3_release(const fs::path& dir, const Rebar3Options& options) {
  const fs::path home = dir / "home";
  const std::string& name = options.name;
  run_checked("rebar3 new release " + name, dir, home);
  Rebar3Release r;
  r.project = dir / name;
  r.name = name;
  r.vsn = options.vsn;
  const fs::path src = r.project / "apps" / name / "src";
  replace_in(src / (name + ".app.src"), "{vsn, \"0.1.0\"}", "{vsn, \"" + options.vsn + "\"}");
  replace_in(r.project / "rebar.config", "{release, {" + name + ", \"0.1.0\"}",
             "{release, {" + name + ", \"" + options.vsn + "\"}");
  const std::string reply = options.version_reply.empty() ? options.vsn : options.version_reply;
  write_file(src / (name + "_server.erl"),
             "-module(" + name +
                 "_server).\n-behaviour(gen_server).\n"
                 "-export([start_link/0, version/0]).\n"
                 "-export([init/1, handle_call/3, handle_cast/2]).\n\n"
                 "start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).\n"
                 "version() -> gen_server:call(?MODULE, version).\n\n"
                 "init([]) -> {ok, #{}}.\n"
                 "handle_call(version, _From, State) -> {reply, \"" +
                 reply +
                 "\", State}.\n"
                 "handle_cast(_Msg, State) -> {noreply, State}.\n");
  replace_in(src / (name + "_sup.erl"), "ChildSpecs = [],",
             "ChildSpecs = [#{id => " + name + "_server, start => {" + name + "_server, start_link, []}}],");
  for (const auto& [path, bytes] : options.priv) {
    const fs::path file = r.project / "apps" / name / "priv" / path;
    fs::create_directories(file.parent_path());
    write_file(file, bytes);
  }
  if (options.dev) {
    run_checked("rebar3 release", r.project, home);
    r.dev_dir = r.project / "_build" / "default" / "rel" / name;
  }
  if (options.prod_tar) {
    run_checked("rebar3 as prod tar", r.project, home);
    r.prod_dir = r.project / "_build" / "prod" / "rel" / name;
    r.prod_tar = r.prod_dir / (name + "-" + options.vsn + ".tar.gz");
  }
  return r;
}

MixRelease build_mix_release(const fs::path& dir, const std::string& name, const std::string& vsn) {
  const fs::path home = dir / "home";
  run_checked("mix new " + name, dir, home);
  MixRelease r;
  r.project = dir / name;
  r.name = name;
  r.vsn = vsn;
  replace_in(r.project / "mix.exs", "version: \"0.1.0\"", "version: \"" + vsn + "\"");
  run_checked("MIX_ENV=prod mix release", r.project, home);
  r.dir = r.project / "_build" / "prod" / "rel" / name;
  return r;
}

SystoolsRelease build_systools_tar(const fs::path& dir, const std::string& name, const std::string& app,
                                   const std::string& vsn) {
  SystoolsRelease r;
  r.name = name;
  r.vsn = vsn;
  r.app = app;
  r.otp = otp_versions();
  r.app_dir = tiny_app(dir, app, vsn);
  r.rel = dir / (name + ".rel");
  write_file(r.rel, "{release, {\"" + name + "\", \"" + vsn + "\"}, {erts, \"" + r.otp.erts +
                        "\"},\n [{kernel, \"" + r.otp.kernel + "\"}, {stdlib, \"" + r.otp.stdlib + "\"}, {" +
                        app + ", \"" + vsn + "\"}]}.\n");
  const std::string path = "[\"" + app + "-" + vsn + "/ebin\"]";
  run_checked("erl -noshell -eval 'ok = systools:make_script(\"" + name + "\", [{path, " + path +
                  "}, no_warn_sasl]), ok = systools:make_tar(\"" + name + "\", [{path, " + path +
                  "}, {erts, code:root_dir()}, no_warn_sasl]), halt().'",
              dir, dir / "home");
  r.tar = dir / (name + ".tar.gz");
  return r;
}

fs::path build_ez(const fs::path& dir, const std::string& app, const std::string& vsn) {
  const fs::path root = tiny_app(dir, app, vsn);
  fs::create_directories(root / "priv");
  write_file(root / "priv" / "data.txt", "priv data of " + app + "\n");
  const std::string base = app + "-" + vsn;
  run_checked("erl -noshell -eval '{ok, _} = zip:create(\"" + base + ".ez\", [\"" + base + "\"]), halt().'",
              dir, dir / "home");
  return dir / (base + ".ez");
}

}  // namespace codestore::testing

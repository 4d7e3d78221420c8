// Real releases, built in the test by the real tools, offline, into a directory the test owns
// (a TempDir): `rebar3 new release` + `rebar3 release` (dev mode: lib/* are links) and
// `rebar3 as prod tar` (stripped beams, a tarball); `mix new` + `MIX_ENV=prod mix release`;
// a tiny application compiled with erlc and packed by `systools:make_script` +
// `systools:make_tar`; an `.ez` archive made by `zip:create/3`. Nothing is cached across
// runs: each call builds anew (a rebar3 release takes ~15-30 s, the others a few seconds).
// HOME (and MIX_HOME, HEX_HOME, REBAR_CACHE_DIR) point inside `dir`, HEX_OFFLINE is set:
// nothing is fetched and nothing outside `dir` is written.
//
// Failures throw std::runtime_error with the command and its output (a test then fails).
//
// Thread safety: thread-compatible (each call owns its `dir`).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace codestore::testing {

struct CommandResult {
  int code = -1;       // the exit status (-1 when it did not exit normally)
  std::string output;  // stdout and stderr together
};
// Runs `command` with /bin/sh in `cwd`, HOME and the tools' caches under `home`, stdin from
// /dev/null.
CommandResult run_command(const std::string& command, const std::filesystem::path& cwd,
                          const std::filesystem::path& home);
// The same, throwing std::runtime_error (with the output) when the exit status is not 0.
std::string run_checked(const std::string& command, const std::filesystem::path& cwd,
                        const std::filesystem::path& home);
// Single-quoted for /bin/sh.
std::string sh_quote(const std::string& s);

// What the installed Erlang/OTP has, asked of `erl`.
struct OtpVersions {
  std::string erts, kernel, stdlib, sasl;
  std::filesystem::path root;  // code:root_dir()
};
OtpVersions otp_versions();

struct Rebar3Options {
  std::string name = "myrel";  // the release and its application
  std::string vsn = "0.1.0";   // both
  // What `<name>_server:version()` answers (a gen_server the supervisor starts); "" : vsn.
  std::string version_reply;
  // Files written into the application's priv/ before the builds: (path under priv/, bytes).
  std::vector<std::pair<std::string, std::string>> priv;
  bool dev = true;       // `rebar3 release` (dev mode, links into _build)
  bool prod_tar = true;  // `rebar3 as prod tar` (prod mode: copies, stripped beams)
};
struct Rebar3Release {
  std::filesystem::path project;   // dir/<name>, the rebar3 project
  std::filesystem::path dev_dir;   // project/_build/default/rel/<name> (when dev)
  std::filesystem::path prod_dir;  // project/_build/prod/rel/<name> (when prod_tar)
  std::filesystem::path prod_tar;  // prod_dir/<name>-<vsn>.tar.gz (when prod_tar)
  std::string name, vsn;
};
// `rebar3 new release NAME` in `dir` (which must exist), with NAME_server (a gen_server with
// version/0) started by the supervisor, then the builds asked for.
Rebar3Release build_rebar3_release(const std::filesystem::path& dir, const Rebar3Options& options = {});

struct MixRelease {
  std::filesystem::path project;  // dir/<name>
  std::filesystem::path dir;      // project/_build/prod/rel/<name>
  std::string name, vsn;
};
// `mix new NAME` in `dir` (no dependencies), version `vsn`, then `MIX_ENV=prod mix release`.
MixRelease build_mix_release(const std::filesystem::path& dir, const std::string& name = "foo",
                             const std::string& vsn = "0.1.0");

struct SystoolsRelease {
  std::filesystem::path app_dir;  // dir/<app>-<vsn>: src/<app>.erl, ebin/<app>.beam, ebin/<app>.app
  std::filesystem::path rel;      // dir/<name>.rel
  std::filesystem::path tar;      // dir/<name>.tar.gz, erts included
  std::string name, vsn, app;
  OtpVersions otp;  // what the .rel names
};
// A tiny application (one module `<app>` with version/0) compiled with erlc, a .rel naming it
// with kernel and stdlib, `systools:make_script` and `systools:make_tar(Name, [{erts, Root}])`.
SystoolsRelease build_systools_tar(const std::filesystem::path& dir, const std::string& name = "tinyrel",
                                   const std::string& app = "tiny", const std::string& vsn = "1.0");

// A tiny application directory `dir/<app>-<vsn>` (as build_systools_tar's) and its `.ez`,
// `dir/<app>-<vsn>.ez`, made by zip:create/3 of `<app>-<vsn>/` with a priv file. Returns the .ez.
std::filesystem::path build_ez(const std::filesystem::path& dir, const std::string& app = "tiny",
                               const std::string& vsn = "1.0");

}  // namespace codestore::testing

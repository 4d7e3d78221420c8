// Helpers for the tests of application versions and Erlang releases in the store: a small
// test-only walker that turns a directory into AppContent / ReleaseContent (the real reader,
// which knows tarballs, .ez archives and the build tools' layouts, is another component's),
// with the names and versions asked of the real Erlang (file:consult/1), and commands run
// with their output.
//
// Thread safety: thread-compatible (each test owns its directories).
#pragma once

#include <codestore/release_content.h>

#include <filesystem>
#include <string>
#include <vector>

namespace codestore::release_testing {

namespace fs = std::filesystem;

struct Command {
  int code = -1;       // the exit status (-1 when it did not exit normally)
  std::string output;  // stdout and stderr together
};
// Runs `command` with /bin/sh; stdin from /dev/null.
Command run(const std::string& command);

// Single-quoted for /bin/sh.
std::string sh_quote(const std::string& s);

// Every file, link and empty directory under `root`, paths relative to it, sorted;
// `skip(relative_path)` leaves a file or a whole directory out. Links are kept as links.
std::vector<ContentFile> walk(const fs::path& root, bool (*skip)(const std::string&) = nullptr);

// {App, Vsn} of each .app file, asked of `erl` in one call (file:consult/1).
std::vector<std::pair<std::string, std::string>> app_names(const std::vector<fs::path>& app_files);

// An application directory (it has ebin/<app>.app) as an AppContent, named by its .app.
AppContent read_app_dir(const fs::path& dir);
std::vector<AppContent> read_app_dirs(const std::vector<fs::path>& dirs);

// A release directory (releases/<vsn>/<name>.rel, lib/<app>-<vsn>/, bin/...) as a
// ReleaseContent: the .rel asked of `erl`; every lib/ entry named by the .rel read as an
// application; every other file but erts-* (never stored) and releases/RELEASES kept
// with it. kind "relx".
ReleaseContent read_release_dir(const fs::path& root, const std::string& name, const std::string& vsn);

}  // namespace codestore::release_testing

// The `codestore` executable run as a user runs it: a real process, stdout and stderr
// captured in files (large outputs cannot deadlock a pipe), stdin empty; optionally as
// another user (privileges dropped in the child, after it opened its output files).
//
// Thread safety: thread-compatible (each test owns its scratch directory).
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/files.h"

namespace codestore::cli_testing {

struct CliRun {
  int code = -1;  // exit code; 128 + signal when killed by one
  std::string out, err;
};

// Runs `binary args...` in `cwd` (default: the current directory). With `uid`, the child
// becomes that user and group (no supplementary groups) before exec: exit 126 if it cannot,
// 127 if the exec fails (e.g. the user may not read the binary).
inline CliRun run_process(const std::string& binary, const std::vector<std::string>& args,
                          const std::string& scratch, std::optional<uid_t> uid = std::nullopt,
                          const std::string& cwd = "") {
  static int counter = 0;
  const std::string out = scratch + "/run" + std::to_string(counter) + ".out";
  const std::string err = scratch + "/run" + std::to_string(counter++) + ".err";
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(126);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    if (uid) {
      const gid_t gid = static_cast<gid_t>(*uid);
      if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
          ::setresuid(*uid, *uid, *uid) != 0) {
        ::_exit(126);
      }
    }
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  CliRun r;
  if (pid < 0) return r;
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = testing::read_text(out);
  r.err = testing::read_text(err);
  std::error_code ec;
  std::filesystem::remove(out, ec);
  std::filesystem::remove(err, ec);
  return r;
}

}  // namespace codestore::cli_testing

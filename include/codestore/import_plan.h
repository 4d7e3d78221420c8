// The import planner: which files an import of paths reads, with OTP's path rules (the lib
// of an `<app>[-<vsn>]/ebin/` directory, the order of `<app>-<vsn>` bundles), apart from the
// store that then imports them. The `codestore import` command and a release importer share
// it: plan, show or check the plan, then Store::import_files (include/codestore/store.h).
//
//   auto plan = codestore::plan_import({"/usr/lib/erlang/lib"});
//   if (!plan) return plan.error();
//   auto summary = store->import_files(*plan, {});
//
// Thread safety: plan_import and lib_of_path are pure functions of the file system and
// their arguments.
#pragma once

#include <codestore/status.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace codestore {

// One file to import.
struct ImportFile {
  std::string path;  // as found: an argument, or an argument joined with the walked names
  std::string lib;   // lib_of_path(path)
  // Of several files of one plan that carry the same module, the one with the highest
  // precedence is imported last and so ends active: files in `<app>-<vsn>/ebin/` after files
  // elsewhere, by OTP's bundle order among them (code_server's choose_bundles: 0.10.0 after
  // 0.9.0), then by path. Distinct for distinct files.
  std::size_t precedence = 0;
};

struct ImportPlan {
  std::vector<ImportFile> files;      // each argument in turn; a directory's files sorted by path
  std::vector<std::string> warnings;  // links skipped while walking directories (dangling, loops)
};

// The `*.beam` files of `paths` (files and directories). Directories are walked recursively,
// sorted, following symlinked directories (a `rebar3 release` makes every lib/* entry a
// link), each real directory and file once: a link back to a directory being walked (a loop)
// and a dangling link are skipped with a warning; a second path to a directory or file
// already found is skipped silently. Errors: kNotFound for a path that does not exist and
// for a directory without any `*.beam` file, kIOError for one that cannot be read, kCancelled
// when `interrupted` (asked between arguments) says so.
[[nodiscard]] Result<ImportPlan> plan_import(const std::vector<std::string>& paths,
                                             const std::function<bool()>& interrupted = nullptr);

// OTP's app name of a directory (docs/code-server.md §3): the last component before
// `ebin` (or the last component), cut at its first `-`. "" when there is none.
// "/usr/lib/erlang/lib/stdlib-4.2/ebin/lists.beam" -> "stdlib" (given the file's path).
std::string lib_of_path(std::string_view file_path);

}  // namespace codestore

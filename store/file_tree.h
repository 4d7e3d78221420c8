// Files of application versions and Erlang releases as the store holds them, and writing them
// out: what release export (store/release_export.cpp: a whole release, byte for byte) and
// materialize (store/materialize.cpp: what a node must have on local disk) share.
//
// Thread safety: the collect_* functions use Impl under its mutex (inside Impl::call), like
// every Impl method; the file functions are free functions over their arguments.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "store_impl.h"

namespace codestore::store_internal {

// One file of a tree, by its path under the release root (`lib/<app>-<vsn>/priv/x.so`,
// `releases/0.1.0/start.boot`): a regular file (its blob), a symbolic link or an empty
// directory. A plain value.
struct TreeItem {
  std::string path;
  std::uint32_t mode = 0644;
  std::string link;  // a link's target ("" otherwise)
  bool directory = false;
  std::int64_t blob_id = 0;  // a regular file's blob
  std::string sha256;        // a regular file's SHA-256 (hex), from its blob row
  std::uint64_t size = 0;    // a regular file's size
  bool regular() const { return !directory && link.empty(); }
};

// Appends application version `app_version`'s files under `prefix` ("lib/<app>-<vsn>/"): its
// modules' byte forms (when `modules`) and its other files (app_files).
void collect_app_tree(Store::Impl& impl, std::int64_t app_version, const std::string& prefix, bool modules,
                      std::vector<TreeItem>& out);
// Appends release `release`'s own files (release_files), and its consolidated modules
// (release_modules) when `modules`.
void collect_release_tree(Store::Impl& impl, std::int64_t release, bool modules, std::vector<TreeItem>& out);

std::string errno_text(int err);
// A fresh name beside `target` for work in progress: `.<name>.tmp-<pid>-<8 hex digits>`
// (is_temporary_name recognizes it).
std::filesystem::path temporary_beside(const std::filesystem::path& target);
bool is_temporary_name(const std::string& filename);
// Writes `bytes` to a new file `path` (O_EXCL) with exactly `mode` (the umask does not apply);
// with `sync`, fsync before closing, so that a rename after it never exposes a file whose
// bytes a power cut lost. kIOError naming the path.
void write_new_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                    std::uint32_t mode, bool sync = false);
// create_directories; kIOError naming the directory.
void make_dirs(const std::filesystem::path& dir);

// Removes the work in progress (a file or a tree) when a writer fails. Thread safety: one
// writer's own object.
struct Cleanup {
  std::filesystem::path path;
  bool keep = false;
  ~Cleanup() {
    if (keep || path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace codestore::store_internal

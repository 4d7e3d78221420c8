// What the boot-server tests and the benchmark do to a store, through the store's public
// API (as the CLI does it): import OTP's libs and single images, roll back, make releases,
// read what the node should see.
//
// Thread safety: free functions; each opens its own Store, so they are thread-safe.
#pragma once

#include <codestore/store.h>
#include <dirent.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/files.h"

namespace codestore::server::store_ops {

// The directory <root>/lib/<name>-<vsn> (the first one found), or "".
inline std::string otp_lib_dir(const std::string& root, const std::string& name) {
  std::string lib = root + "/lib";
  DIR* d = ::opendir(lib.c_str());
  if (d == nullptr) return "";
  std::string found;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(name + "-", 0) == 0 && n.size() > name.size() + 1 && std::isdigit(n[name.size() + 1])) {
      found = lib + "/" + n;
      break;
    }
  }
  ::closedir(d);
  return found;
}

// Imports the ebin directories of OTP apps `names` (and any `extra` paths) in one batch;
// each file's lib is derived from its <app>-<vsn>/ebin directory.
inline Status import_otp_libs(const std::string& db, const std::string& root,
                              const std::vector<std::string>& names,
                              const std::vector<std::string>& extra = {}) {
  auto store = Store::open(db);
  if (!store) return store.error();
  std::vector<std::string> paths;
  for (const std::string& n : names) {
    std::string dir = otp_lib_dir(root, n);
    if (dir.empty()) return Status(Code::kNotFound, "no " + n + "-* under " + root + "/lib");
    paths.push_back(dir + "/ebin");
  }
  paths.insert(paths.end(), extra.begin(), extra.end());
  auto summary = (*store)->import_tree(paths);
  if (!summary) return summary.error();
  // Everything in the main file, so that a copy of it alone is the whole store.
  return (*store)->checkpoint();
}

inline Status import_file(const std::string& db, const std::string& file, const std::string& lib) {
  if (!std::filesystem::is_regular_file(file)) return Status(Code::kNotFound, "no file " + file);
  const std::vector<std::uint8_t> bytes = codestore::testing::read_file(file);
  auto store = Store::open(db);
  if (!store) return store.error();
  auto r = (*store)->import(bytes, file, {.lib = lib});
  if (!r) return r.error();
  return Status::ok();
}

inline Status rollback(const std::string& db, const std::string& module) {
  auto store = Store::open(db);
  if (!store) return store.error();
  auto r = (*store)->rollback(module, Reason("boot server test"));
  if (!r) return r.error();
  return Status::ok();
}

inline Status create_release(const std::string& db, const std::string& name) {
  auto store = Store::open(db);
  if (!store) return store.error();
  auto r = (*store)->release_create(name);
  if (!r) return r.error();
  return Status::ok();
}

inline Result<std::string> active_md5(const std::string& db, const std::string& module) {
  auto store = Store::open(db);
  if (!store) return tl::unexpected(store.error());
  auto v = (*store)->active_info(module);
  if (!v) return tl::unexpected(v.error());
  return v->md5;
}

// How often any version of `module` was served (stats()).
inline Result<std::int64_t> served_count(const std::string& db, const std::string& module) {
  auto store = Store::open(db);
  if (!store) return tl::unexpected(store.error());
  auto s = (*store)->stats();
  if (!s) return tl::unexpected(s.error());
  std::int64_t n = 0;
  for (const auto& row : s->served) {
    if (row.module == module) n += static_cast<std::int64_t>(row.count);
  }
  return n;
}

}  // namespace codestore::server::store_ops

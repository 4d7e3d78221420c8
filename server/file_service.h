// What a boot-server request is answered with: the mapping of the client's paths onto the
// store (modules, lib and ebin directories) and the fallback directory (everything else),
// as boot_server.h describes it.
//
// Thread safety: a FileService is immutable after construction and its ModuleSource is
// thread-safe, so answer() may be called from many threads at once.
#pragma once

#include <codestore/boot_server.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.h"

namespace codestore::server {

// Where a path leads, decided from the path and the store's libs.
struct Resolved {
  enum class Kind {
    kOutside,   // not under the root: enoent
    kFallback,  // a file or directory of the fallback, served as is
    kLibDir,    // <root>/lib: fallback entries plus store libs
    kAppDir,    // <root>/lib/<dir> of a store lib
    kEbinDir,   // <root>/lib/<dir>/ebin of a store lib
    kModule,    // <root>/lib/<dir>/ebin/<m>.beam: from the store or enoent
    kBeam,      // any other .beam under the root: never served
  };
  Kind kind = Kind::kOutside;
  std::string fs_path;  // the normalized absolute path under the root
  std::string lib;      // store lib (kAppDir, kEbinDir, kModule)
  std::string module;   // kModule
};

struct Answer {
  using Bytes = std::shared_ptr<const std::vector<std::uint8_t>>;
  // term_to_binary of the answer: `reply`, followed by `body` when set.
  std::vector<std::uint8_t> reply;
  std::string log;  // "fallback 1234 bytes", "store stdlib/lists v3 ...", "enoent (...)"
  // The module version sent, when this answer sends one: the caller counts it
  // (ModuleSource::record_served) once the answer is on its way, not before.
  std::optional<ServedModule> served = std::nullopt;
  bool fallback_file_served = false;
  // A get's file or module bytes, sent after `reply` from where they are (the image
  // cache) rather than copied into it.
  Bytes body = nullptr;
};

class FileService {
 public:
  // `root` must be an absolute, existing directory (normalized here).
  FileService(const std::string& root, ModuleSource& source, std::size_t max_file_bytes);

  const std::string& root() const { return root_; }

  // Answers one request.
  Answer answer(const protocol::Request& request) const;

  // Exposed for tests: resolves `path` (absolute, or relative to the root).
  Result<Resolved> resolve(std::string_view path) const;

 private:
  Answer get(const protocol::Request& request) const;
  Answer list_dir(const protocol::Request& request) const;
  Answer file_info(const protocol::Request& request) const;

  std::string root_;
  ModuleSource& source_;
  std::size_t max_file_bytes_;
};

// Lexically normalizes `path` against `base` (for a relative path): collapses "//", "."
// and "..". The result is absolute; ".." never climbs above "/".
std::string normalize_path(std::string_view path, std::string_view base);

// The lib a directory name under <root>/lib stands for, given the store's libs: the name
// itself when the store has it, else its application name (base::app_name: cut at the
// first '-', as OTP names it and as the store names a lib on import) when the store has
// that. "" when the store has neither.
std::string store_lib_for(std::string_view dir_name, const std::vector<std::string>& store_libs);

// errno -> the POSIX atom Erlang reports (enoent, eacces, ...).
std::string_view posix_atom(int err) noexcept;

}  // namespace codestore::server

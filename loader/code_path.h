// The code path: an ordered list of entries, each a directory of `.beam` files or a lib of
// a store (`lib:NAME`), with OTP's mutation rules (docs/code-server.md §3).
//
// Thread safety: thread-compatible. The code server guards its CodePath with its mutex.
#pragma once

#include <codestore/code_server.h>
#include <codestore/status.h>
#include <codestore/store_reader.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::loader::detail {

struct PathEntry {
  std::string dir;  // as given, trailing slashes dropped ("lib:NAME" for a store lib)
  std::string lib;  // NAME for a store lib, else ""
  std::string app;  // the app name (§3.4)

  bool is_lib() const { return !lib.empty(); }
  // What a module found here is recorded as: "DIR/M.beam" or "lib:NAME/M.beam".
  std::string file_of(std::string_view module) const;
};

// Drops trailing slashes ("v1/" -> "v1"; "/" stays).
std::string normalize_dir(std::string_view dir);
// The app name of a dir: the last component before "ebin" (or the last), cut at the first
// '-'; for "lib:NAME" it is NAME.
std::string app_name(std::string_view dir);
PathEntry make_entry(std::string_view dir);

// Reads a whole file; nullopt when it cannot be read.
std::optional<std::vector<std::uint8_t>> read_file(const std::string& path);

class CodePath {
 public:
  explicit CodePath(LibSource* libs) : libs_(libs) {}

  const std::vector<PathEntry>& entries() const { return entries_; }
  std::vector<std::string> dirs() const;

  bool valid(const PathEntry& entry) const;
  Status set(const std::vector<std::string>& dirs);
  Status add_z(std::string_view dir);
  Status add_a(std::string_view dir);
  bool del(std::string_view name_or_dir);
  Status replace(std::string_view name, std::string_view dir);

  struct Found {
    std::string origin;
    const PathEntry* entry;
    // A directory's file (always read: its MD5 needs its bytes), or a store lib's image
    // with LibRead::kBytes (as imported).
    std::shared_ptr<const std::vector<std::uint8_t>> bytes;
    // A store lib's active version (LibImage): its MD5 (hex) and row.
    std::string md5;
    std::shared_ptr<const ModuleVersion> version;
  };
  // The first entry that has M.beam (nullopt: none has). From a store lib, what `read`
  // asks for; a store that cannot be read is an error (its kind kept), not a miss. With
  // `refresh`, the libs catch up with the store first (LibSource::refresh); a caller that
  // looks up many modules at once refreshes once itself.
  Result<std::optional<Found>> find(std::string_view module, LibRead read = LibRead::kMeta,
                                    bool refresh = true) const;
  Status refresh_libs() const;
  // For a look at many modules at once (sync): the module table of each lib entry (null for
  // a directory), as of the last refresh_libs(); then first_in_lib(M) is the row of M when
  // the first entry that has M.beam is a store lib (nullptr otherwise), with no store read.
  Result<std::vector<std::shared_ptr<const LibModules>>> lib_tables() const;
  const ModuleSummary* first_in_lib(std::string_view module,
                                    const std::vector<std::shared_ptr<const LibModules>>& tables) const;
  // Module names of an entry's images, sorted; nullopt when it cannot be listed.
  std::optional<std::vector<std::string>> list(const PathEntry& entry) const;
  std::optional<std::vector<std::string>> list(std::string_view dir) const { return list(make_entry(dir)); }

  std::optional<std::string> where_is_file(std::string_view file_name) const;
  std::vector<Clash> clash() const;
  std::optional<std::string> lib_dir(std::string_view app) const;

 private:
  LibSource* libs_;
  std::vector<PathEntry> entries_;
};

}  // namespace codestore::loader::detail

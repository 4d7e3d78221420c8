// The one read path from a store to its readers: the loader's store libs
// (loader::store_lib_source) and the boot server's store source (server::open_store_source)
// both read through a StoreReader.
//
//   auto reader = std::make_shared<codestore::StoreReader>(store);
//   if (Status s = reader->refresh(); !s) fail(s);   // one indexed read: the generation
//   auto v = reader->active("lists");                 // metadata only: version, lib, md5
//   auto img = reader->checked_image(**v);            // parsed, judged loadable, shared bytes
//
// * Metadata apart from bytes. active(), version(), lib() and libs() read rows, never a blob:
//   a reader that needs only a module's MD5 (the loader's sync() and module_status) never
//   decompresses an image.
// * Cached per store generation. Store::generation() grows with every committed change by
//   any process. What was read under a generation (the lib list, a lib's modules, a
//   module's active version or its absence) is kept until refresh() finds the generation
//   moved; so an operator's import or rollback is seen by the first lookup after the next
//   refresh(). Lookups themselves never read the generation: a caller refreshes once per
//   operation (a load, a sync over 2,000 modules, a boot server's request).
// * Shared immutable bytes. bytes() hands out the store's image cache entry
//   (Store::get_shared), and checked_image() parses it with image::Image::parse_shared: no
//   copy anywhere on the way to the loader.
// * Validated once, at import. The store judges every image when it imports it (a strict
//   parse and check_loadable: what erlang:prepare_loading/2 does) and records the verdict
//   with the blob (blobs.load_verdict, migrations/0002_load_verdict.sql). checked_image()
//   reads the bytes through the blob's zstd frame, whose content checksum (checked on every
//   decompression, a damaged frame is kCorruption) proves them the bytes the blob was made
//   of at import, and so the bytes the store judged: it parses them strictly (the loader
//   needs the parse) and skips check_loadable. The SHA-256 is not read here: it would cost
//   as much as the rest of a cold load (11 us of 17 KB) and proves nothing more against
//   accidental damage; whoever can rewrite a blob can rewrite its verdict too. verify() and
//   Store::get(..., verify_sha256 = true) check it. Images kept parsed are keyed by the
//   SHA-256 their row names.
//   A blob stored before schema 2, or judged not loadable (an opcode_only warning), is
//   checked on every read as before. The checked images are also kept by SHA-256, so a
//   later load of the same content skips the read and the parse too; with
//   ReaderOptions::checked_image_bytes = 0 nothing is kept and every call reads, verifies
//   and parses.
// * Errors are values that keep their kind: a damaged blob is kCorruption, a lock not
//   granted kBusy, a module without an active version kNotFound (Store's codes).
//
// Thread safety: safe for concurrent use. The Store serializes its own calls; the caches
// are guarded by one mutex. A lookup made under generation G is kept only while the cache is
// still at G, so a thread that read G before another process's commit cannot plant its
// answer into the cache of G+1.
#pragma once

#include <codestore/image.h>
#include <codestore/status.h>
#include <codestore/store.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace codestore {

struct ReaderOptions {
  // Bytes of images kept parsed and judged loadable, by SHA-256 (least recently used go
  // first; the bytes are shared with the store's image cache while it holds them too).
  // 0: checked_image() reads and parses every time.
  std::size_t checked_image_bytes = std::size_t{64} << 20;
};

// A store image parsed strictly (image::Strictness::kStrict) with the loader's verdict.
// Immutable; its bytes are the store's shared bytes.
struct CheckedImage {
  image::Image image;
  image::Image::LoadVerdict verdict;
};

// The modules of one lib (their active versions), as Store::lib_modules gives them.
struct LibModules {
  std::vector<ModuleSummary> modules;  // sorted by module
  // The row of `module`, or nullptr when its active version is not in this lib.
  const ModuleSummary* find(std::string_view module) const;
};

class StoreReader {
 public:
  using VersionRef = std::shared_ptr<const ModuleVersion>;

  explicit StoreReader(std::shared_ptr<Store> store, ReaderOptions options = {});
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  Store& store() const { return *store_; }

  // Reads the store's generation (one indexed read) and drops the metadata cached under an
  // older one. Returns the generation.
  Result<std::uint64_t> refresh();

  // --- Metadata (rows only, cached until the generation moves) ---------------------------
  // Libs with at least one active module, sorted (Store::libs).
  Result<std::vector<std::string>> libs();
  // The modules whose active version belongs to `lib` (Store::lib_modules).
  Result<std::shared_ptr<const LibModules>> lib(std::string_view lib);
  // The active version's metadata (Store::active_info): kNotFound for an unknown module or
  // one without an active version.
  Result<VersionRef> active(std::string_view module);
  // One version's metadata (Store::version_info).
  Result<VersionRef> version(std::string_view module, std::int64_t version);

  // --- Bytes -------------------------------------------------------------------------------
  // The bytes of module@version exactly as imported, shared with the store's image cache.
  Result<Store::SharedBytes> bytes(std::string_view module, std::int64_t version);
  // `v`'s image parsed strictly and judged (see the top of the file). `file` names it in
  // errors. A parse failure is kCorruption (the store validated the bytes at import, so it
  // means damage); a verdict that is not loadable is returned as such (an image the store
  // accepted with an opcode_only warning).
  Result<std::shared_ptr<const CheckedImage>> checked_image(const ModuleVersion& v,
                                                            std::string_view file = "");

 private:
  class Cache;
  std::shared_ptr<Store> store_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace codestore

// The options of codestore::Store's calls (include/codestore/store.h), apart from the class
// as leveldb keeps its options.h: what a caller sets, with the defaults.
//
// Thread safety: plain values; the callbacks run on the calling thread of the Store call
// they are given to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace codestore {

struct StoreOptions {
  // Open with SQLITE_OPEN_READONLY; every write is kPermissionDenied. Needs no write access
  // to the file or its directory, and creates nothing beside the file: a WAL database's
  // <db>-wal and <db>-shm must exist (read-write opens keep them; see docs/store.md), else
  // kFailedPrecondition unless this user owns the file or is root (the files SQLite would
  // create, owned by another user, would lock the owner out).
  bool read_only = false;
  // Read the file as a snapshot: SQLite's immutable=1, no locks, the -wal not read (commits
  // not yet checkpointed into the file are not seen), nothing created. Implies read_only.
  // Safe only while no process writes the database (a copy, a backup, read-only media).
  bool snapshot = false;
  bool create = true;          // create the file (and the schema) if it does not exist
  int busy_timeout_ms = 5000;  // on every connection, readers too
  // Called on this connection each time a lock it waits for is still taken (`attempt` counts
  // from 0, so 0 is the start of a wait), before it waits again within busy_timeout_ms;
  // false gives up at once (kBusy). Unset: SQLite's own busy timeout.
  std::function<bool(int attempt)> on_busy = nullptr;
  int zstd_level = 3;  // level of new blobs (compact() takes its own)
  // Module images are stored as their chunks (docs/store.md, "Chunks"); false stores them
  // whole, as before schema 6, and compact leaves them whole: the baseline bench_store
  // measures chunks against. Both kinds of blob are read by every store.
  bool chunks = true;
  bool migrate = true;  // apply pending migrations (after a backup); false: refuse a stale schema
  bool backup_before_migrate = true;  // VACUUM INTO "<db>.backup-<from>-<to>-<unix time>" first
  // Decompressed images kept in memory for get/active, keyed by their SHA-256 (so never
  // stale); least recently used go first. 0: every get decompresses its blob.
  std::size_t image_cache_bytes = std::size_t{64} << 20;
  // The channel (docs/model.md: a named active set that a group of nodes follows) this handle
  // works on: every read of "the active version" and every change (import, activate, rollback,
  // release create/rollback, channel_rollback) is in it; other channels are never touched.
  // A channel other than "default" is made by its first change (an import, an activation) and
  // starts empty; reading one that was never made is kNotFound naming it. Names: 1 to 128 of
  // [A-Za-z0-9._-], not starting with '.' or '-' (else open() is kInvalidArgument).
  std::string channel = "default";
};

// What import, import_files and import_tree do with the images they are given.
// Every member has a default initializer, so that `{.lib = "stdlib"}` names only what it sets
// (GCC's -Wmissing-field-initializers is quiet then).
struct ImportOptions {
  // The lib (application) of every image. import_files/import_tree: "" = each file's own
  // (ImportFile::lib: `<app>` for a file under `<app>[-<vsn>]/ebin/`). import: as given ("" = none).
  std::string lib{};
  std::string note{};
  bool dry_run = false;  // validate and report, write nothing
  // What "unchanged" means: true, the same bytes as the active version (SHA-256); false, the
  // same code (the module MD5, beam_lib:md5/1: a stripped or gzip-wrapped copy of the same
  // code is no new version; the CLI's default). Either way the lib must be the active one's.
  bool bytes = true;
  // Called after each file of import_files is read and checked (done counts files, total
  // known up front).
  std::function<void(std::size_t done, std::size_t total, const std::string& file)> progress = nullptr;
  // Asked between files: true stops the import with kCancelled and writes nothing (a Ctrl-C).
  std::function<bool()> interrupted = nullptr;
};

struct GcOptions {
  std::int64_t keep_last = 0;  // also keep the newest N versions of each module
  bool dry_run = false;
};

struct DictionaryOptions {
  std::size_t size = 112 * 1024;  // target dictionary size
  int max_samples = 0;            // 0: every blob
  // Called after each image read (done, total); asked between images: true stops with
  // kCancelled and writes nothing.
  std::function<void(std::size_t done, std::size_t total)> progress;
  std::function<bool()> interrupted;
};

struct CompactOptions {
  int level = 19;
  // true: a debug chunk (Dbgi, Docs, ExCk) whose zlib stream deflates again exactly is stored
  // inflated (docs/store.md, "Chunks"): the smallest store, but a whole get (export, the boot
  // protocol, which reads each .beam whole) deflates it again on every read the image cache
  // misses. false: every chunk is kept as it came (an inflated one deflated back): for a store
  // that serves nodes, a whole get then only decompresses. A read for loading never deflates.
  bool inflate = true;
  // Called after each blob (done, total).
  std::function<void(std::size_t done, std::size_t total)> progress;
  // Asked between blobs: true stops with kCancelled and writes nothing (a Ctrl-C).
  std::function<bool()> interrupted;
};

// Why a change was made, kept in the history (StoreEvent::reason). A type of its own so that
// a reason cannot be taken for a version or a name: `rollback("m", Reason("3"))` says what it
// means, and `rollback("m", "3")` does not compile.
struct Reason {
  Reason() = default;
  explicit Reason(std::string_view why) : text(why) {}
  std::string_view text;
};

}  // namespace codestore

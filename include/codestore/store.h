// The versioned module store: module images kept in one SQLite file, keyed by
// (module name, version), with one active version per module, named releases (snapshots of
// the active set), and a history of every change (docs/store.md for the version
// state machine, docs/schema.md for the tables).
//
//   auto store = codestore::Store::open("app.db", {});
//   if (!store) return store.error();
//   auto r = (*store)->import(bytes, "/x/lists.beam", "stdlib", "");   // lists v1, active
//   auto active = (*store)->active("lists");                           // version, lib, bytes
//   (*store)->rollback("lists");                                       // the previous active
//
// Errors are values. Codes used here: kNotFound (unknown module, version, release; the
// message names it), kAlreadyExists (release name taken), kFailedPrecondition (deleting a
// version that is needed), kCorruption (a damaged blob or database page, a malformed image),
// kNotSupported (a database with a newer schema), kInvalidArgument (not our SQLite file, a bad
// name), kBusy (a lock not granted within busy_timeout_ms), kPermissionDenied (a write on a
// read-only store or file), kIOError. SQLite's extended result code is kept in the message:
// "busy: store app.db: import: database is locked (SQLITE_BUSY, extended code 5)".
//
// Thread safety: a Store is safe for concurrent use from many threads: every call takes an
// internal mutex around the one SQLite connection, so calls are serialized (a reader that
// needs parallel reads opens a second Store on the same file; SQLite's WAL lets readers run
// beside one writer). Several processes may open the same file at once: writers take
// `BEGIN IMMEDIATE` and wait up to busy_timeout_ms for each other.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <codestore/status.h>

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
  bool create = true;            // create the file (and the schema) if it does not exist
  int busy_timeout_ms = 5000;    // on every connection, readers too
  // Called on this connection each time a lock it waits for is still taken (`attempt` counts
  // from 0, so 0 is the start of a wait), before it waits again within busy_timeout_ms;
  // false gives up at once (kBusy). Unset: SQLite's own busy timeout.
  std::function<bool(int attempt)> on_busy = nullptr;
  int zstd_level = 3;            // level of new blobs (compact() takes its own)
  bool migrate = true;           // apply pending migrations (after a backup); false: refuse a stale schema
  bool backup_before_migrate = true;  // VACUUM INTO "<db>.backup-<from>-<to>-<unix time>" first
  // Decompressed images kept in memory for get/active, keyed by their SHA-256 (so never
  // stale); least recently used go first. 0: every get decompresses its blob.
  std::size_t image_cache_bytes = std::size_t{64} << 20;
};

// One stored version of a module.
struct ModuleVersion {
  std::string module;
  std::int64_t version = 0;      // 1, 2, 3, ... per module name; never reused
  std::string lib;               // the application it belongs to ("" if none)
  std::string md5;               // beam_lib:md5/1, 32 lowercase hex digits
  std::string vsn;               // beam_lib:version/1's value as text ("[1234]")
  std::string sha256;            // of the bytes as imported, 64 hex digits: the blob's key
  std::uint64_t raw_size = 0;    // bytes as imported
  std::uint64_t stored_size = 0; // bytes of its zstd frame (shared with every version of the same blob)
  std::string origin;            // where it came from (a path, "-")
  std::string note;
  std::string warning;           // why it was accepted despite a check (opcode_only), else ""
  std::int64_t imported_at = 0;  // Unix seconds
  bool active = false;
  std::int64_t active_since = 0; // Unix seconds the current activation began (0 when inactive)
  bool rollback_target = false;  // the version rollback(module) returns to
};

// A version with its image bytes (exactly the bytes imported).
struct ModuleImage {
  ModuleVersion info;
  std::vector<std::uint8_t> bytes;
};

// One row of list(): a module name and its state.
struct ModuleSummary {
  std::string module;
  std::int64_t active_version = 0;  // 0: no active version (after a release rollback)
  std::string lib;                  // of the active version ("" when none is active)
  std::string md5;                  // of the active version
  std::int64_t versions = 0;        // stored versions
  std::int64_t latest_version = 0;  // the highest stored version
  std::int64_t active_since = 0;
};

struct ImportOptions {
  std::string lib;        // "" = derive it: `<app>` for a file under `<app>[-<vsn>]/ebin/`
  std::string note;
  bool dry_run = false;   // validate and report, write nothing
  // What "unchanged" means: true, the same bytes as the active version (SHA-256); false, the
  // same code (the module MD5, beam_lib:md5/1: a stripped or gzip-wrapped copy of the same
  // code is no new version; the CLI's default). Either way the lib must be the active one's.
  bool bytes = true;
  // Called after each file of import_tree is read and checked (done counts files, total
  // known up front).
  std::function<void(std::size_t done, std::size_t total, const std::string& file)> progress;
  // Asked between files: true stops the import with kCancelled and writes nothing (a Ctrl-C).
  std::function<bool()> interrupted;
};

struct ImportResult {
  std::string file;               // origin as given
  std::string module;
  std::int64_t version = 0;       // the version now active (the existing one when unchanged)
  std::int64_t previous = 0;      // the version active before (0: none)
  bool unchanged = false;         // the active version's code and lib (ImportOptions::bytes): nothing was written
  bool new_blob = false;          // the bytes were not stored before
  bool repaired = false;          // the bytes' stored blob was damaged (verify) and is whole again
  std::string shadowed_by;        // import_tree: the file of the same batch whose version of this
                                  // module became active instead ("" when none; OTP's order of
                                  // `<app>-<vsn>` directories picks it)
  std::string lib_left;           // the lib of the module's active version when this version moves
                                  // it to lib "" (a file outside `<app>/ebin/`); "" otherwise
  std::string lib;
  std::string warning;            // kept on the version (opcode_only)
  std::uint64_t raw_size = 0;
  std::uint64_t stored_size = 0;  // 0 when the blob existed already
};

struct ImportSummary {
  std::vector<ImportResult> items;  // in the order imported (file order; shadowed files first)
  std::size_t files = 0;
  std::size_t new_versions = 0;
  std::size_t unchanged = 0;
  std::size_t repaired = 0;         // damaged blobs made whole by their original bytes
  std::uint64_t bytes_in = 0;       // raw bytes of every file
  std::uint64_t bytes_new = 0;      // raw bytes of the new blobs
  std::uint64_t bytes_stored = 0;   // stored bytes of the new blobs (ratio: bytes_stored / bytes_new)
  std::vector<std::string> warnings;  // links skipped while walking directories (dangling, loops)
};

// A row of the history.
struct StoreEvent {
  std::int64_t id = 0;
  std::int64_t time = 0;          // Unix seconds
  std::string action;             // import, activate, rollback, delete, release-create, release-delete,
                                  // release-rollback, gc, dict-train, compact; loader: load, purge, kill, ...
  std::string module;             // "" for store-wide events
  std::int64_t from_version = 0;  // 0: none
  std::int64_t to_version = 0;    // 0: none
  std::string reason;
};

struct Activation {
  std::string module;
  std::int64_t from_version = 0;  // 0: there was none
  std::int64_t to_version = 0;    // 0: now inactive
};

struct ReleaseEntry {
  std::string module;
  std::int64_t version = 0;
  std::string lib;
  bool operator==(const ReleaseEntry&) const = default;
};

struct Release {
  std::string name;
  std::int64_t created_at = 0;
  std::string note;
  std::vector<ReleaseEntry> modules;  // sorted by module (empty in release_list())
  std::int64_t module_count = 0;
};

struct ReleaseDiff {
  std::vector<ReleaseEntry> added;    // in b, not in a
  std::vector<ReleaseEntry> removed;  // in a, not in b
  struct Changed {
    std::string module;
    std::int64_t from_version = 0;
    std::int64_t to_version = 0;
  };
  std::vector<Changed> changed;       // in both, different versions
};

struct GcOptions {
  std::int64_t keep_last = 0;  // also keep the newest N versions of each module
  bool dry_run = false;
};

struct GcReport {
  std::vector<ModuleVersion> deleted;  // versions deleted (or that would be)
  std::int64_t blobs_deleted = 0;
  std::uint64_t bytes_freed = 0;       // stored bytes of the deleted blobs
};

struct VerifyReport {
  std::int64_t blobs_checked = 0;
  std::int64_t versions_checked = 0;
  struct Damage {
    std::string module;     // "" for damage not tied to a version (orphans, integrity_check)
    std::int64_t version = 0;
    std::string message;    // e.g. "corruption: blob 3f2a...: zstd: checksum mismatch"
  };
  std::vector<Damage> damage;
  std::vector<std::string> integrity;  // PRAGMA integrity_check's lines ("ok" when sound)
  bool ok() const { return damage.empty(); }
};

struct StoreStats {
  std::int64_t modules = 0;
  std::int64_t active_modules = 0;
  std::int64_t versions = 0;
  std::int64_t blobs = 0;
  std::uint64_t raw_bytes = 0;      // sum of raw sizes of the blobs
  std::uint64_t stored_bytes = 0;   // sum of stored sizes of the blobs
  std::int64_t releases = 0;
  std::int64_t events = 0;
  std::int64_t dictionaries = 0;
  std::int64_t dictionary_id = 0;   // newest (0: none)
  std::uint64_t dictionary_size = 0;
  std::int64_t blobs_with_dictionary = 0;
  std::uint64_t served_total = 0;
  struct Served {
    std::string module;
    std::int64_t version = 0;
    std::uint64_t count = 0;
    std::int64_t last_served = 0;
  };
  std::vector<Served> served;       // most served first
  std::int64_t schema_version = 0;
};

struct DictionaryOptions {
  std::size_t size = 112 * 1024;    // target dictionary size
  int max_samples = 0;              // 0: every blob
  // Called after each image read (done, total); asked between images: true stops with
  // kCancelled and writes nothing.
  std::function<void(std::size_t done, std::size_t total)> progress;
  std::function<bool()> interrupted;
};
struct DictionaryInfo {
  std::int64_t id = 0;
  std::uint64_t size = 0;
  std::int64_t samples = 0;
};

struct CompactOptions {
  int level = 19;
  // Called after each blob (done, total).
  std::function<void(std::size_t done, std::size_t total)> progress;
  // Asked between blobs: true stops with kCancelled and writes nothing (a Ctrl-C).
  std::function<bool()> interrupted;
};
struct CompactReport {
  std::int64_t blobs = 0;           // re-encoded
  // Blobs that do not decompress to their SHA-256 (verify reports them): left as they are,
  // one line each naming the versions that use it. Re-importing the original bytes repairs one.
  std::vector<std::string> skipped;
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
  std::int64_t dictionary_id = 0;   // the dictionary they use now (0: none)
};

class Store {
 public:
  // Opens (or with options.create, creates) the store in `path`. Applies pending migrations
  // (each in one transaction, after a `VACUUM INTO` backup beside the file). Refuses with
  // kNotSupported a schema newer than this library, with kCorruption a database whose
  // applied migration differs from ours (edited), with kInvalidArgument a SQLite file that
  // is not a codestore database, with kNotFound a missing file when !create.
  static Result<std::unique_ptr<Store>> open(const std::string& path, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;
  // The newest schema version this library knows.
  static std::int64_t schema_version();

  // --- Import ------------------------------------------------------------------------------
  // Validates `bytes` strictly (Image::parse kStrict + check_loadable; an image that fails only
  // the opcode check is accepted with a warning) and stores it as the next version of its
  // module, made active. Bytes identical to the active version (and the same lib): nothing is
  // written and `unchanged` is set. Bytes whose stored blob is damaged repair it (`repaired`).
  // `lib` may be "". Errors: kInvalidArgument naming `origin` for bytes that are not a module
  // image at all (saying what they look like: a zip or tar archive, Erlang source, ...),
  // kCorruption for a damaged or unloadable image.
  Result<ImportResult> import(std::span<const std::uint8_t> bytes, const std::string& origin,
                              const std::string& lib, const std::string& note, bool dry_run = false);
  // Imports files and directories (recursively, `*.beam` files) in one transaction: all or
  // nothing. The first bad file fails the batch with an error naming it; so does a directory
  // without any `*.beam` file (kNotFound). Symlinked directories are followed, each real
  // directory and file once (a link loop or a dangling link is skipped with a warning).
  // "Unchanged" is judged by bytes, or by code (module MD5) without options.bytes. When several files carry
  // one module, the one in the highest `<app>-<vsn>` directory by OTP's order (code_server's
  // choose_bundles: 0.10.0 after 0.9.0) is imported last and so becomes active; the others
  // name it in `shadowed_by`.
  Result<ImportSummary> import_tree(const std::vector<std::string>& paths, const ImportOptions& options = {});

  // --- Read --------------------------------------------------------------------------------
  // The bytes of `module` version `version`, exactly as imported. The zstd frame checksum is
  // always checked (kCorruption on mismatch); with verify_sha256 the SHA-256 too.
  Result<std::vector<std::uint8_t>> get(std::string_view module, std::int64_t version, bool verify_sha256 = false);
  // The same bytes, shared with the image cache instead of copied: for hot readers (a boot
  // server, a loader) that only read them. Immutable; valid as long as the pointer lives.
  using SharedBytes = std::shared_ptr<const std::vector<std::uint8_t>>;
  Result<SharedBytes> get_shared(std::string_view module, std::int64_t version, bool verify_sha256 = false);
  // The active version with its bytes; kNotFound when the module is unknown or has no active version.
  Result<ModuleImage> active(std::string_view module);
  // The metadata only (no decompression).
  Result<ModuleVersion> active_info(std::string_view module);
  Result<ModuleVersion> version_info(std::string_view module, std::int64_t version);
  // Every stored version of `module`, oldest first; kNotFound for an unknown module.
  Result<std::vector<ModuleVersion>> versions(std::string_view module);
  // Every module, sorted by name (also those with no active version).
  Result<std::vector<ModuleSummary>> list();
  // The modules whose active version belongs to `lib`, sorted by name.
  Result<std::vector<ModuleSummary>> lib_modules(std::string_view lib);
  // Libs that have at least one active module, sorted.
  Result<std::vector<std::string>> libs();
  // History, oldest first; `module` "" = every event. limit 0 = all (else the newest `limit`).
  Result<std::vector<StoreEvent>> history(std::string_view module = "", std::size_t limit = 0);

  // A counter that grows with every committed change by any process (imports, activations,
  // releases, deletions, gc; not events or served counts). Cheap: one indexed read. Compare
  // it with an earlier value to learn whether anything changed (a loader's sync()).
  Result<std::uint64_t> generation();

  // --- Change ------------------------------------------------------------------------------
  // Makes `version` the active one. Activating the active version is a no-op (from == to).
  // kInvalidArgument for a version below 1 (versions are whole numbers from 1).
  Result<Activation> activate(std::string_view module, std::int64_t version, std::string_view reason = "");
  // Returns to the version that was active before the current one (a rollback is itself an
  // activation, so a second rollback toggles back). kFailedPrecondition when there is none.
  Result<Activation> rollback(std::string_view module, std::string_view reason = "");
  // Activates any stored version (recorded as a rollback); kInvalidArgument below 1.
  Result<Activation> rollback(std::string_view module, std::int64_t version, std::string_view reason = "");
  // Deletes one version. Refused (kFailedPrecondition) for the active version, the version a
  // rollback would return to, and versions a release names. Its blob goes at the next gc.
  Status delete_version(std::string_view module, std::int64_t version, std::string_view reason = "");

  // --- Releases ----------------------------------------------------------------------------
  // Snapshots the whole active set under `name` (kAlreadyExists when taken).
  Result<Release> release_create(const std::string& name, const std::string& note = "");
  Result<std::vector<Release>> release_list();
  Result<Release> release_show(const std::string& name);
  Result<ReleaseDiff> release_diff(const std::string& a, const std::string& b);
  Status release_delete(const std::string& name);
  // In one transaction: the active set becomes exactly the release's; modules the release
  // does not name become inactive. Returns each module whose active version changed.
  Result<std::vector<Activation>> release_rollback(const std::string& name, std::string_view reason = "");

  // --- Maintenance -------------------------------------------------------------------------
  Result<GcReport> gc(const GcOptions& options);
  // Decompresses every blob and checks its SHA-256, every version's reference, and runs
  // PRAGMA integrity_check. Damage is reported, not returned as an error.
  Result<VerifyReport> verify();
  Result<StoreStats> stats();
  // Trains a zstd dictionary from the stored images; new blobs use it. kFailedPrecondition
  // when the store holds too few images for zstd to train on (the message says how many).
  Result<DictionaryInfo> train_dictionary(const DictionaryOptions& options = {});
  // Re-encodes every blob at options.level with the newest dictionary (one transaction). A
  // damaged blob is skipped and reported (CompactReport::skipped), not a reason to stop.
  Result<CompactReport> compact(const CompactOptions& options = {});
  // Writes the WAL into the database file (PRAGMA wal_checkpoint(TRUNCATE)).
  Status checkpoint();

  // --- For the loader and the boot server --------------------------------------------------
  // Records a loader event (load, purge, kill, delete, sync, ...) in the history.
  Status record_event(std::string_view action, std::string_view module, std::string_view reason,
                      std::int64_t from_version = 0, std::int64_t to_version = 0);
  // Counts one serving of module@version (shown by stats()).
  Status record_served(std::string_view module, std::int64_t version, std::string_view peer = "");

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// OTP's app name of a directory (docs/code-server.md §3): the last component before
// `ebin` (or the last component), cut at its first `-`. "" when there is none.
// "/usr/lib/erlang/lib/stdlib-4.2/ebin/lists.beam" -> "stdlib" (given the file's path).
std::string lib_of_path(std::string_view file_path);

}  // namespace codestore

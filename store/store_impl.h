// Store::Impl: the state of an open store and the steps its calls share. The store's logic
// is split along its seams, one file each:
//   store.cpp        open, the connection, transactions, the one error path (call)
//   blobs.cpp        blobs, dictionaries, the image cache: a blob row in, image bytes out
//   versions.cpp     module and version lookups, reads, activation, rollback, delete
//   import.cpp       validation of images and their insertion (import, import_files)
//   releases.cpp     snapshots (labelled generations): create, list, show, diff, delete, rollback
//   channels.cpp     channels and generations: ChannelChange (the one way a channel's content
//                    changes), history, diff, channel rollback, replace_channel (a deploy)
//   applications.cpp application versions: checks against the .app, preparing files on the
//                    workers, storing (unchanged, new, new revision), apps, app_show
//   release_import.cpp  Erlang releases: import_release (all or nothing)
//   release_read.cpp    Erlang releases read back: list, info, diff
//   release_export.cpp  Erlang releases written out: a directory or a .tar.gz (libarchive)
//   materialize.cpp     a node's local root from a channel's generation (with file_tree.h,
//                       the files of application versions and releases, which export shares)
//   maintenance.cpp  gc, verify, stats, dictionary training, compact, checkpoint, events
//   nodes.cpp        the nodes a boot server served: record_nodes (batched), nodes (behind or not),
//                    forget_nodes
// The database is reached only through db::Connection (db/connection.h); zstd only through
// db/codec.h. Walking directories is the planner's (import_plan.cpp).
//
// Thread safety: every public method holds `mutex` for its whole body (Impl::call), so all
// of Impl is used by one thread at a time; only compact's and import's workers run beside
// it, on their own codec state (WorkerState) and data handed to them.
#pragma once

#include <codestore/store.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "db/codec.h"
#include "db/connection.h"
#include "db/image_cache.h"
#include "db/sqlite_error.h"

namespace codestore {

namespace store_internal {

using db::fail;

inline std::int64_t now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

// "hello@3": a module version as messages name it.
inline std::string mv(std::string_view module, std::int64_t version) {
  return fmt::format("{}@{}", module, version);
}

// A chunk of an image split for storing (chunk_layout.h): its chunks row but the id.
struct PreparedChunk {
  std::string kind;  // chunk_kind(id)
  db::Sha256 sha{};  // of the chunk's data as in the image
  std::uint64_t raw_size = 0;
  std::vector<std::uint8_t> frame;  // zstd of the data as it is (deflate 0: import's fast form)
};

// A validated image ready to insert: everything but the database work.
struct Prepared {
  std::string origin;
  std::string lib;
  db::Sha256 sha{};
  std::string module, md5, vsn, warning;
  std::uint64_t raw_size = 0;
  std::vector<std::uint8_t> frame;  // layout 0: the whole file's; layout 1: the recipe's
  int level = 0;
  std::int64_t dictionary_id = 0;
  std::int64_t load_verdict = 0;  // blobs.load_verdict (migrations/0002_load_verdict.sql)
  // blobs.layout (migrations/0006_chunks.sql): 1 when the image is kept as its chunks (then
  // layout_size is the recipe's size and `chunks` its REFs in order).
  int layout = 0;
  std::uint64_t layout_size = 0;
  std::vector<PreparedChunk> chunks;
};
// Prepared::load_verdict of a file that is not a module image (stored as NULL).
inline constexpr std::int64_t kNoLoadVerdict = -1;

// blobs.load_verdict (migrations/0002_load_verdict.sql; NULL read as -1) as ModuleVersion
// holds it.
inline ModuleVersion::LoadVerdict load_verdict_of(std::int64_t column) {
  switch (column) {
    case 0: return ModuleVersion::LoadVerdict::kNotLoadable;
    case 1: return ModuleVersion::LoadVerdict::kLoadable;
    case 2: return ModuleVersion::LoadVerdict::kLoadableOnLoad;
    default: return ModuleVersion::LoadVerdict::kUnknown;
  }
}

// Per-thread codec state of the workers of import and compact.
struct WorkerState {
  db::Compressor compressor;
  db::Decompressor decompressor;
};

// A stored blob as read from its row: the columns kBlobColumns names, in that order.
struct BlobRow {
  std::span<const std::uint8_t> sha256;
  std::uint64_t raw_size = 0;
  std::int64_t dictionary_id = 0;  // 0: none
  std::span<const std::uint8_t> frame;
  std::span<const std::uint8_t> frame_checksum;  // the frame's last 4 bytes, as recorded (empty: none)
  std::int64_t id = 0;
  std::int64_t layout = 0;  // 1: `frame` is a recipe of layout_size bytes (migrations/0006_chunks.sql)
  std::uint64_t layout_size = 0;
  // The size of what `frame` holds: the image's, or the recipe's.
  std::uint64_t frame_content_size() const { return layout == 1 ? layout_size : raw_size; }
};
inline constexpr const char* kBlobColumns =
    "b.sha256, b.raw_size, b.dictionary_id, b.data, b.frame_checksum, b.id, b.layout, b.layout_size";
// Reads a BlobRow from `s`, whose columns from `first` on are kBlobColumns. The spans are
// valid until the statement steps again or is reset.
BlobRow blob_row(db::Statement& s, int first);

// Decompresses a blob's frame with its dictionary (null: none) into `out`: the frame must end
// with the recorded frame_checksum (migrations/0003_applications_releases.sql), the zstd frame
// checksum always, the SHA-256 with `check_sha256` (layout 0 only: a layout-1 frame is a
// recipe, which Impl::decode rebuilds the image from). kCorruption (or the codec's code) when it fails.
Status decode_blob(db::Decompressor& decompressor, const BlobRow& row, const db::Dictionary* dict,
                   bool check_sha256, std::vector<std::uint8_t>& out);

// Strict validation (the VM loader's judgement), then the blob frame. Pure: no database.
// `chunks`: as its chunks (StoreOptions::chunks), else whole.
Result<Prepared> prepare(std::span<const std::uint8_t> bytes, std::string_view origin,
                         db::Compressor& compressor, int level, const db::Dictionary* dict,
                         bool chunks = true);
// The blob of any file (a .app, priv/x.so, start.boot): SHA-256 and zstd frame, no module
// fields, load_verdict kNoLoadVerdict. Pure: no database.
Result<Prepared> prepare_blob(std::span<const std::uint8_t> bytes, std::string_view origin,
                              db::Compressor& compressor, int level, const db::Dictionary* dict);
// A module image's blob as its chunks (chunk_layout.h's split_image: layout 1, p.chunks at
// import's level, deflated chunks as they came); an image that is no IFF (gzip-wrapped) whole.
Status compress_chunks(Prepared& p, std::span<const std::uint8_t> bytes, std::string_view name,
                       db::Compressor& compressor, int level, const db::Dictionary* dict);
// The columns of a chunk row that Impl::decode_chunk reads, in its order (alias c).
inline constexpr const char* kChunkColumns =
    "c.id, c.sha256, c.kind, c.raw_size, c.content_size, c.deflate, c.head, c.dictionary_id, c.data, "
    "c.frame_checksum";
// The last 4 bytes of a zstd frame (its content checksum): blobs/chunks.frame_checksum.
std::vector<std::uint8_t> last4(std::span<const std::uint8_t> frame);
// The blob part both share: raw_size, sha, frame, level, dictionary_id of `p`.
Status compress_into(Prepared& p, std::span<const std::uint8_t> bytes, std::string_view name,
                     db::Compressor& compressor, int level, const db::Dictionary* dict);

// --- application versions and releases (applications.cpp) ------------------------------------
// A file of an application version or a release, checked (check_files) and then prepared
// (Impl::prepare_files): everything but the database work.
struct PreparedFile {
  const ContentFile* source = nullptr;  // the caller's; outlives the import
  std::string path;
  std::uint32_t mode = 0644;
  std::string link;
  bool directory = false;
  bool module = false;          // a module image of its tree (ebin/<m>.beam, consolidated/<m>.beam)
  std::string expected_module;  // the file's stem, which the image's module must be
  std::string origin;           // where it came from, for messages and versions.origin
  Prepared blob;                // a regular file's: prepare() for a module, prepare_blob() else
  bool regular() const { return !directory && link.empty(); }
};
// An application version checked against its .app (check_app), its files sorted by path.
struct PreparedApp {
  const AppContent* content = nullptr;
  std::vector<PreparedFile> files;
  std::vector<std::string> warnings;  // beams the .app does not list
  std::string key;                    // the content key, once the files are prepared (store_app)
};
// Why a path inside an application or a release is refused ("an absolute path"), or nullopt.
std::optional<std::string> bad_relative_path(std::string_view path);
// Why `name` (an application, a vsn, a release) cannot name a directory, or nullopt.
std::optional<std::string> bad_name(std::string_view what, std::string_view name);
// Why a link at `path` to `target` leaves its tree (absolute, or too many ".."), or nullopt.
std::optional<std::string> escaping_link(std::string_view path, std::string_view target);
// The files checked one by one: sane relative paths, each once, permission bits only, links
// inside the tree; a regular file `<module_dir><m>.beam` is a module image.
Result<std::vector<PreparedFile>> check_files(const std::vector<ContentFile>& files, std::string_view owner,
                                              std::string_view module_dir);
// check_files, then the .app (ebin/<app>.app) as systools checks it: named as `c` says, each
// listed module's beam present (else an error), each beam listed (else a warning).
Result<PreparedApp> check_app(const AppContent& c);
// docs/model.md's content key: the listing's value of a file (the module MD5, the SHA-256,
// "link:TARGET", "directory"), and the SHA-256 (hex) of "path NUL value NUL" in path order.
std::string listing_value(const PreparedFile& f);
std::string content_key(const std::map<std::string, std::string>& listing);
// "stdlib@4.2", "stdlib@4.2#2" (revision 0 or 1: no "#").
std::string app_name_vsn(std::string_view app, std::string_view vsn, std::int64_t revision);
// The module a listing path names ("ebin/m.beam" -> "m"), or nullopt.
std::optional<std::string> module_path_name(std::string_view path);
// "a, b, c and 4 more".
std::string some(const std::vector<std::string>& items, std::size_t max);
// Where a file of an application came from: "<origin>/<path>" ("app@vsn:path" without one).
std::string origin_of(const AppContent& app, std::string_view path);
// The regular files of `app` for the workers to read, validate and compress (prepare_files),
// each given its origin; adds every file's size to `bytes_in`.
void add_work(PreparedApp& app, std::vector<PreparedFile*>& work, std::uint64_t& bytes_in);
// What the store needs of a .app: {application, Name, [{vsn, Vsn}, {modules, Ms}...]}.
struct AppResource {
  std::string name;
  std::string vsn;
  std::vector<std::string> modules;  // as listed, in order
};
// The one place a .app is read (etf::consult, then otp::parse_app). kInvalidArgument, or
// consult's and parse_app's kCorruption (Erlang's reason: bad_param...), naming `source`.
Result<AppResource> read_app_resource(std::span<const std::uint8_t> bytes, std::string_view source);

// A blob's dictionary_id: NULL for none (0), as the schema keeps it.
inline void bind_dictionary(db::Statement& s, int index, std::int64_t id) {
  if (id != 0) {
    s.bind(index, id);
  } else {
    s.bind_null(index);
  }
}

// Binds (owner, path, blob_id, mode, link) to an `INSERT INTO app_files|release_files (...,
// path, blob_id, mode, link) VALUES (?, ?, ?, ?, ?)` and runs it: the two file tables share
// their columns (migrations/0003_applications_releases.sql). blob_id 0 and an empty link are NULL.
inline void insert_file_row(db::Statement& s, std::int64_t owner, const std::string& path,
                            std::int64_t blob_id, std::uint32_t mode, const std::string& link) {
  s.bind(1, owner);
  s.bind(2, path);
  bind_dictionary(s, 3, blob_id);  // the same rule: 0 is NULL
  s.bind(4, static_cast<std::int64_t>(mode));
  if (!link.empty()) {
    s.bind(5, link);
  } else {
    s.bind_null(5);
  }
  s.exec();
}

}  // namespace store_internal

struct Store::Impl {
  std::string path;
  StoreOptions options;
  std::unique_ptr<db::Connection> db;
  // A replica's primary, as the follower table records it ("": not a replica; docs/fleet.md):
  // require_writable refuses what would make the replica differ from it.
  std::string primary;
  std::mutex mutex;  // guards everything below: calls are serialized on the connection
  std::unordered_map<const char*, std::unique_ptr<db::Statement>> statements;
  std::map<std::int64_t, std::shared_ptr<db::Dictionary>> dictionaries;
  db::Compressor compressor;
  db::Decompressor decompressor;
  db::ImageCache image_cache{0};
  // A layout's recipe, decompressed by a read (decode, loading_bytes) and used before the read
  // returns: kept between reads so that a read allocates (and faults in) no buffer for it.
  std::vector<std::uint8_t> recipe_scratch;

  std::string context() const { return "store " + path; }

  // The one error path of every public method: runs `body` (returning Status or Result<T>)
  // under the store's lock, and turns whatever it throws (db::fail, a backend's error) into
  // an error value whose message names the store and the call: `what`, a string or a
  // callable that makes one, only run on failure (a hot get formats nothing).
  template <typename What, typename Body>
  auto call(What&& what, Body&& body) -> decltype(body()) {
    std::lock_guard lock(mutex);
    return db::guard(
        [&] {
          if constexpr (std::is_invocable_v<What>) {
            return context() + ": " + std::string(what());
          } else {
            return context() + ": " + std::string(what);
          }
        },
        body);
  }

  // --- connection and transactions (store.cpp) ------------------------------------------------
  // A cached prepared statement, reset and unbound. Keyed by the literal's address.
  db::Statement& stmt(const char* sql);
  // Ends the statement's implicit read transaction when the scope ends.
  struct Done {
    db::Statement& s;
    ~Done() { s.reset(); }
  };
  struct WriteTx {
    Impl& impl;
    db::Transaction tx;
    explicit WriteTx(Impl& i) : impl(i), tx(*i.db, db::TxKind::kWrite) {}
    // `changed`: bump the generation (the loader's "has anything changed" counter).
    void commit(bool changed = true);
  };
  // The one value a query without parameters returns (a count, a sum).
  std::int64_t scalar(const char* sql);
  void require_writable(std::string_view what) const;
  // For what is the host's own and never comes from a primary (the nodes a boot server
  // served, served counts, the loader's events): read-only refuses it, a replica does not.
  void require_writable_local(std::string_view what) const;
  // `channel`: the channel the change was made in ("" for store-wide events).
  void event(std::string_view action, std::string_view module, std::int64_t from, std::int64_t to,
             std::string_view reason, std::string_view channel = {});

  // --- blobs, dictionaries, image cache (blobs.cpp) ------------------------------------------
  std::shared_ptr<db::Dictionary> dictionary(std::int64_t id);
  std::shared_ptr<db::Dictionary> newest_dictionary();
  // decode_blob with the row's dictionary (a missing one is kCorruption); a layout-1 blob is
  // rebuilt from its recipe and chunks (chunks.cpp), each chunk's checksums checked.
  Status decode(const store_internal::BlobRow& row, bool check_sha256, std::vector<std::uint8_t>& out);

  // --- chunks (chunks.cpp, migrations/0006_chunks.sql) ------------------------------------------
  // The image of a layout-1 blob from its recipe (already decompressed) and its chunk rows.
  // `loading`: only the chunks a loader needs, as chunk_layout.h's loading_image; the debug
  // chunks are not read at all.
  Status decode_chunked(const store_internal::BlobRow& row, std::span<const std::uint8_t> recipe,
                        bool check_sha256, bool loading, std::vector<std::uint8_t>& out);
  // One chunk row's data as in the image (the deflate layer put back), its frame checksums
  // always and its SHA-256 with `check_sha256`. kCorruption saying what failed.
  Status decode_chunk(db::Statement& s, int first, bool check_sha256, std::vector<std::uint8_t>& out);
  // The chunk rows and blob_chunks rows of a layout-1 blob `blob_id` (0: the blob of p.sha,
  // named by its SHA-256) (import, compact, repair): each chunk found by its SHA-256 or
  // inserted; one that is damaged is replaced by `p`'s frame when `repair` (returns how many
  // were). `known`: the chunk ids a batch import read beforehand (ImportLookups::chunks),
  // kept true as this inserts; a chunk not in it is looked up here. Nothing is read back
  // after an INSERT: a new chunk (and a blob given as 0) is named by its SHA-256 in the
  // blob_chunks row, so that a server receives an import's writes without answering between
  // them (db/pg_connection.cpp's pipeline). `stored_bytes`: adds the frames of the chunks it
  // inserted.
  std::int64_t insert_chunks(std::int64_t blob_id, const store_internal::Prepared& p, bool repair,
                             std::map<db::Sha256, std::int64_t>* known = nullptr,
                             std::uint64_t* stored_bytes = nullptr);
  // ImportLookups::chunks's value for a chunk the import itself inserted (its id unread).
  static constexpr std::int64_t kChunkInserted = -1;
  // Whether chunk `id` no longer gives its SHA-256.
  bool chunk_damaged(std::int64_t id);
  // The bytes a loader needs of name@version (Store::get_for_loading).
  std::shared_ptr<const std::vector<std::uint8_t>> loading_bytes(std::string_view name, std::int64_t version);
  // "hello@2, hello@3": every version whose blob uses chunk `id`.
  std::string users_of_chunk(std::int64_t id);
  // The bytes of name@version; the zstd checksum always, the SHA-256 on request (which
  // reads the stored blob even when the image cache has it: it checks the disk).
  // Shared: the cache may hold it too (then it must not be changed); a caller that finds
  // itself the only owner may take the vector.
  std::shared_ptr<std::vector<std::uint8_t>> shared_bytes(std::string_view name, std::int64_t version,
                                                          bool verify_sha256);
  std::vector<std::uint8_t> bytes(std::string_view name, std::int64_t version, bool verify_sha256);
  // Whether blob `id` no longer decompresses to its SHA-256 (what verify reports as damage).
  bool blob_damaged(std::int64_t id);
  // Whether the blob's load_verdict is recorded (NULL: stored before schema 2).
  bool has_load_verdict(std::int64_t id);
  // "hello@2, hello@3": the versions that use blob `id` ("no version" when none does).
  std::string users_of_blob(std::int64_t id);

  // --- versions (versions.cpp) ----------------------------------------------------------------
  // A module's row (high_water, store-wide) with its state in one channel (channel_modules:
  // active, since, previous; 0 when the channel has no row for it).
  struct ModuleRow {
    std::int64_t high_water = 0, active = 0, active_since = 0, previous = 0;
  };
  std::optional<ModuleRow> module_row(std::string_view name, std::string_view channel);
  std::optional<ModuleRow> module_row(std::string_view name) { return module_row(name, options.channel); }
  ModuleRow require_module(std::string_view name, std::string_view channel);
  ModuleRow require_module(std::string_view name) { return require_module(name, options.channel); }
  // require_module, and the module must be active in the handle's channel (kNotFound).
  ModuleRow require_active(std::string_view name);
  bool version_exists_any(std::string_view name);
  bool version_exists(std::string_view name, std::int64_t version);
  // A version a caller names: 0 means "none" inside the store (an inactive module) and
  // must never arrive from outside, where it would deactivate the module.
  static void require_version_number(std::int64_t version);
  void require_version(std::string_view name, std::int64_t version);
  // Binds name (?first) and version (?first+1) to `s` and steps to its row; kNotFound (naming
  // what is missing: the module or its version) when there is none.
  void step_version_row(db::Statement& s, std::string_view name, std::int64_t version, int first = 1);
  // The columns version_of reads, then FROM: append WHERE/ORDER BY. ?1 is the channel whose
  // active version and rollback target the row reports (the statement binds it first).
  static constexpr const char* kVersionColumns =
      "v.module, v.version, v.lib, v.md5, v.vsn, b.sha256, b.raw_size, b.stored_size, v.origin, v.note, "
      "v.warning, v.imported_at, CASE WHEN cm.version = v.version THEN 1 ELSE 0 END, coalesce(cm.since, 0), "
      "CASE WHEN cm.previous = v.version THEN 1 ELSE 0 END, coalesce(b.load_verdict, -1) "
      "FROM versions v JOIN blobs b ON b.id = v.blob_id "
      "LEFT JOIN channel_modules cm ON cm.channel = ?1 AND cm.module = v.module ";
  static ModuleVersion version_of(db::Statement& s);
  ModuleVersion info(std::string_view name, std::int64_t version);
  std::vector<ModuleSummary> summaries(const std::string* lib);

  // --- channels and generations (channels.cpp) ------------------------------------------------
  struct ChannelRow {
    std::int64_t generation = 0, previous = 0, created_at = 0;
    std::int64_t candidate = 0;  // a canary deploy's pending candidate (0: none)
  };
  std::optional<ChannelRow> channel_row(std::string_view channel);
  // kNotFound "unknown channel C" when the channel has never been changed.
  ChannelRow require_channel(std::string_view channel);
  // Channel names: 1 to 128 of [A-Za-z0-9._-], not starting with '.' or '-' (they may become
  // file and directory names). kInvalidArgument otherwise.
  static void require_channel_name(std::string_view channel);
  // One module version a generation pins.
  struct Pin {
    std::string module;
    std::int64_t version = 0;
    std::string md5, lib;  // "" when gc deleted the version (only an old, unlabelled generation)
  };
  // The module versions generation `number` of `channel` pins, sorted by module; number 0
  // (or the current one) reads channel_modules; a pending candidate is read from its interval
  // rows like an older generation. kNotFound for a generation the channel lacks.
  std::vector<Pin> generation_pins(std::string_view channel, std::int64_t number);
  // The application revisions (app -> app_versions.id) generation `number` pins.
  std::map<std::string, std::int64_t> generation_app_pins(std::string_view channel, std::int64_t number);
  // The Erlang release generation `number` (not 0) of `channel` runs, whose application
  // revisions are `pinned`: of the releases deployed to the channel up to that generation,
  // newest deploy first, the first whose applications are exactly `pinned` (releases.id; 0:
  // none). One rule for what `serve` boots a node with and what `materialize` writes beside it.
  std::int64_t generation_release(std::string_view channel, std::int64_t number,
                                  const std::set<std::int64_t>& pinned);
  // The same, for a caller that has not read the generation's application pins.
  std::int64_t generation_release(std::string_view channel, std::int64_t number);
  // A release's name and version by its releases.id (empty for 0 or an unknown id).
  ReleaseId release_name(std::int64_t id);
  // The generation labelled `label` (a snapshot): its channel and number; kNotFound
  // "unknown release L" when no generation has the label.
  std::pair<std::string, std::int64_t> labelled_generation(std::string_view label);
  // Generation `number`'s row and what changed in it (Generation without `modules`, `content`).
  Generation generation_info(std::string_view channel, std::int64_t number);
  // How many modules are active in `channel`.
  std::int64_t active_count(std::string_view channel);

  // What a new generation records (generations' columns).
  // Every member has a default initializer, so that `{.action = "import"}` names only what it sets.
  struct GenerationMeta {
    std::string_view action{};  // import, activate, rollback, deploy, channel-rollback, snapshot, ...
    std::string_view reason{};
    std::string_view label{};     // a snapshot's name ("": none)
    std::int64_t release_id = 0;  // releases.id of the Erlang release a deploy made the content (0: none)
    bool keep_previous = false;   // a snapshot: channels.previous stays (the content is the same)
    UpgradeOptions upgrade{};     // how the agents apply it (generations.apply_*)
  };
  // Writes generation `number`'s row of `channel`: what made it, and how agents apply it.
  void insert_generation(std::string_view channel, std::int64_t number, const GenerationMeta& meta);

  // The one way a channel's content changes. Inside a WriteTx: set_module() moves modules
  // (channel_modules at once, so that later steps of the same change see it), set_app() pins
  // application revisions, and commit() writes ONE new generation with what changed: it
  // closes the old interval rows, opens new ones, and moves channels.generation/previous.
  // Nothing changed: no generation (unless forced). A channel other than 'default' is made by
  // its first change. Every mutator (import, import_files, activate, rollback, release
  // rollback, release create, channel rollback, replace_channel) goes through it.
  //
  // Thread safety: used under Impl's mutex, within one transaction, like Impl.
  class ChannelChange {
   public:
    ChannelChange(Impl& impl, std::string channel);
    ChannelChange(const ChannelChange&) = delete;
    ChannelChange& operator=(const ChannelChange&) = delete;
    const std::string& channel() const { return channel_; }
    // Moves `module`'s version in the channel to `to` (0: none active). Its rollback target
    // becomes the version that was active (so rollback(module) toggles like `cd -`), `since`
    // now; an event `event_action` (import, activate, rollback, release-rollback, ...) records
    // it. `check`: the module and version must exist (kNotFound); import, which has just
    // written them, skips it. Setting the active version again changes nothing.
    Activation set_module(std::string_view module, std::int64_t to, std::string_view event_action,
                          std::string_view reason, bool check = true);
    // Tells the change `module`'s version in the channel now (0: none), as the caller read it
    // in this transaction (import's module_row), so that set_module need not read it again.
    void known_active(std::string_view module, std::int64_t version);
    // Pins revision `app_version` (app_versions.id; 0: none) of application `app`.
    void set_app(std::string_view app, std::int64_t app_version);
    // Whether anything set so far differs from the channel's current generation.
    bool changed();
    // Writes the new generation and returns its number; 0 when nothing changed and !force
    // (force: a snapshot, a channel rollback, which make a generation whatever it holds;
    // the channel must then exist or be made).
    std::int64_t commit(const GenerationMeta& meta, bool force = false);

   private:
    void ensure_channel();
    Impl& impl_;
    std::string channel_;
    bool exists_ = false;
    std::map<std::string, std::int64_t, std::less<>> start_;  // module -> version before
    // module -> its version in channel_modules now: what set_module wrote (it alone writes
    // channel_modules) or known_active was told; read from the database otherwise.
    std::map<std::string, std::int64_t, std::less<>> current_;
    std::int64_t current(std::string_view module);
    std::map<std::string, std::pair<std::int64_t, std::int64_t>, std::less<>>
        apps_;  // app -> (before, after)
  };

  // Makes `change`'s channel hold exactly `modules` (module -> version) and, when given,
  // exactly `apps` (app -> app_versions.id): modules it lacks become inactive, each move an
  // event `event_action`. Returns the modules that moved, sorted by module.
  std::vector<Activation> apply_content(ChannelChange& change,
                                        const std::map<std::string, std::int64_t>& modules,
                                        const std::map<std::string, std::int64_t>* apps,
                                        std::string_view event_action, std::string_view reason);

  // The content a deploy makes a channel's: module -> version, app -> app_versions.id.
  struct ChannelContent {
    std::map<std::string, std::int64_t> modules;
    std::map<std::string, std::int64_t> apps;
  };
  struct ChannelWrite {
    std::vector<Activation> changed;  // each module whose version moved, sorted by module
    std::int64_t generation = 0;      // the new generation (0: nothing changed, none made)
  };
  // For a deploy (an Erlang release made a channel's content; store/releases_erl.cpp or the
  // like): inside a WriteTx, makes `channel`'s content exactly `content` in ONE generation
  // (modules and applications it lacks become inactive in the channel; each moved module's
  // rollback target is its version before, as an activation's), recorded with `meta`
  // (action "deploy", release_id). Every module version must exist (kNotFound). Nothing
  // changed: no generation unless `force`. Events: one per moved module (`meta.action`).
  ChannelWrite replace_channel(std::string_view channel, const ChannelContent& content,
                               const GenerationMeta& meta, bool force = false);

  // --- canary rollouts (deploy.cpp, migrations/0009_deploy.sql) ---------------------------------
  // Inside a WriteTx: writes `content` as generation current+1 of `channel` without making it
  // current (its interval rows and generations row; channel_modules and channels.generation
  // stay), sets channels.candidate and a pending rollouts row wanting `canaries`. Nothing
  // changed: no candidate (generation 0).
  ChannelWrite write_candidate(std::string_view channel, const ChannelContent& content,
                               const GenerationMeta& meta, std::int64_t canaries);
  // Ends rollout `id` of `channel`: promotes its candidate (channel_modules, channels.generation
  // and previous, as a commit would have moved them, an event per moved module) or drops it:
  // its rows deleted, the rows it closed opened again; but when a canary applied it or may still
  // (no report yet), promoted and at once rolled back (roll_back_channel), so that a generation
  // with the base's content takes that node back. Its state, reason, ended_at; an event.
  // Returns the reason recorded.
  std::string end_rollout(std::int64_t id, std::string_view channel, bool promote, std::string_view why);
  // Inside a WriteTx: a new generation of `channel` with its previous generation's content
  // (`channel rollback`), recorded with `why` and `upgrade`. Returns its number.
  std::int64_t roll_back_channel(const std::string& channel, std::string_view why,
                                 const UpgradeOptions& upgrade);
  // The pending rollout of `channel` (id 0: none), with its canaries.
  Rollout pending_rollout(std::string_view channel);
  // A canary's report for the candidate: recorded on the rollout; a report other than applied
  // or already drops the candidate; the last canary applying it promotes it. True when it
  // ended the rollout (then generation() must move).
  bool rollout_report(const NodeUpgrade& u);

  // --- import (import.cpp) --------------------------------------------------------------------
  // Inserts a prepared image (the blob if new), as the next version, made active; unless it
  // is the active version's code (by_bytes: its bytes) and lib. Bytes whose stored blob is
  // damaged replace that blob's frame first: re-importing the original file repairs it.
  // The version becomes active in `change`'s channel.
  // `known`: what import_files read for its whole batch beforehand (ImportLookups).
  struct ImportLookups;
  ImportResult insert(const store_internal::Prepared& p, const std::string& note, bool by_bytes,
                      ChannelChange& change, ImportLookups* known = nullptr);
  // What a batch import reads before it writes: each module's row (in the import's channel)
  // and each blob's id, a few statements for the whole batch instead of two per image (on a
  // server, a round trip each; the writes between them are pipelined, db/pg_connection.cpp).
  // Each entry answers once: after insert() used it, the import's own writes (a new version
  // of that module, a blob with those bytes) have changed the truth, and a second image of
  // the same module or bytes asks the database again.
  // The chunks (by the SHA-256 of each chunk apart of every layout-1 image of the batch) are
  // read once too, and stay true: insert_chunks marks those it inserts.
  struct ImportLookups {
    std::map<std::string, std::optional<ModuleRow>, std::less<>> rows;
    std::map<db::Sha256, std::int64_t> blobs;   // 0: not stored
    std::map<db::Sha256, std::int64_t> chunks;  // 0: not stored; kChunkInserted: by this import
  };
  ImportLookups lookup_batch(const std::vector<store_internal::Prepared>& batch, std::string_view channel);

  // Blobs of import and of application versions: the one way bytes become a blob row.
  struct BlobRef {
    std::int64_t id = 0;            // 0: not stored
    bool repaired = false;          // it was damaged, and p's frame replaced it
    bool verdict_recorded = false;  // it had no load_verdict, and p's was recorded
  };
  // The stored blob of p.sha (repairing a damaged one, recording a missing verdict);
  // `known_id`: its id as ImportLookups read it (0: not stored), instead of asking.
  BlobRef find_blob(const store_internal::Prepared& p, std::optional<std::int64_t> known_id = std::nullopt);
  // The new blob's id; `want_id` false: 0, and the caller names the blob by p.sha (no read
  // after the INSERT, so that a server need not answer before the next write is sent).
  // `known`: a batch import's lookups (its chunks). `stored_bytes`: adds what it wrote (the
  // blob's frame and the frames of the chunks no blob had yet).
  std::int64_t insert_blob(const store_internal::Prepared& p, bool want_id = true,
                           ImportLookups* known = nullptr, std::uint64_t* stored_bytes = nullptr);
  // A new version of p.module (p.lib, p.md5...) with blob `blob_id` (0: the blob of p.sha),
  // numbered after `row`'s high-water mark (a new module row when none). Not made active: a
  // channel change does that.
  std::int64_t new_version(const store_internal::Prepared& p, std::int64_t blob_id, const std::string& note,
                           const std::optional<ModuleRow>& row);

  // --- releases (releases.cpp): snapshots, the labelled generations ------------------------------
  Release release(const std::string& name, bool with_modules);

  // --- application versions and Erlang releases (applications.cpp, release_*.cpp) -----------
  // Counters of what an import stored.
  struct Stored {
    std::size_t new_versions = 0, reused_versions = 0, new_blobs = 0;
    std::uint64_t bytes_new = 0, bytes_stored = 0;
  };
  // Validates (prepare) or hashes and compresses (prepare_blob) each regular file on the
  // workers; the first failure is returned, naming the file.
  Status prepare_files(const std::vector<store_internal::PreparedFile*>& files);
  // find_blob, else insert_blob (counted in `stored`).
  std::int64_t put_blob(const store_internal::Prepared& p, Stored& stored);
  // The module version of prepared image `p`: the stored one with its MD5 (its bytes, if
  // stored, preferred), else a new one of lib `lib`, not activated. Counted in `stored`.
  // p.lib is the application (or release) it is imported with.
  std::int64_t module_version_for(const store_internal::Prepared& p, std::int64_t blob_id,
                                  const std::string& note, std::string_view why, Stored& stored);
  // Stores a checked and prepared application version inside a WriteTx: unchanged when its
  // content is stored, else a new application version or revision (sets app.key).
  AppImportResult store_app(store_internal::PreparedApp& app, const std::string& note, Stored& stored);
  // path -> listing value (docs/model.md) of a stored application version.
  std::map<std::string, std::string> app_listing(std::int64_t app_version);
  AppVersionInfo app_version_info(std::int64_t id);
  // Rows of (path, version, md5, path, sha256, size) / (path, mode, is link, link, is
  // directory, sha256, size) for one owner id (?1).
  std::vector<ContentModule> content_modules(const char* sql, std::int64_t owner);
  std::vector<ContentEntry> content_entries(const char* sql, std::int64_t owner);
  // releases.id of (name, vsn); kNotFound naming the vsns stored under that name.
  std::int64_t require_release(const ReleaseId& id);
  ErlReleaseInfo erl_release_info(std::int64_t id);
  // A blob's bytes, its SHA-256 checked; kCorruption naming `what` when damaged.
  std::vector<std::uint8_t> blob_bytes(std::int64_t blob_id, std::string_view what);
};

}  // namespace codestore

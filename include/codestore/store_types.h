// The values codestore::Store's calls return (include/codestore/store.h): versions, import
// results, releases, history, reports.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codestore {

// One stored version of a module.
struct ModuleVersion {
  std::string module;
  std::int64_t version = 0;       // 1, 2, 3, ... per module name; never reused
  std::string lib;                // the application it belongs to ("" if none)
  std::string md5;                // beam_lib:md5/1, 32 lowercase hex digits
  std::string vsn;                // beam_lib:version/1's value as text ("[1234]")
  std::string sha256;             // of the bytes as imported, 64 hex digits: the blob's key
  std::uint64_t raw_size = 0;     // bytes as imported
  std::uint64_t stored_size = 0;  // bytes of its zstd frame (shared with every version of the same blob)
  std::string origin;             // where it came from (a path, "-")
  std::string note;
  std::string warning;           // why it was accepted despite a check (opcode_only), else ""
  std::int64_t imported_at = 0;  // Unix seconds
  bool active = false;
  std::int64_t active_since = 0;  // Unix seconds the current activation began (0 when inactive)
  bool rollback_target = false;   // the version rollback(module) returns to
  // The loader's verdict on the bytes (image::Image::check_loadable), recorded with the blob
  // at import (schema 2, migrations/0002_load_verdict.sql); kUnknown for a blob stored
  // before it.
  enum class LoadVerdict : std::uint8_t { kUnknown, kNotLoadable, kLoadable, kLoadableOnLoad };
  LoadVerdict load_verdict = LoadVerdict::kUnknown;
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

struct ImportResult {
  std::string file;  // origin as given
  std::string module;
  std::int64_t version = 0;   // the version now active (the existing one when unchanged)
  std::int64_t previous = 0;  // the version active before (0: none)
  bool unchanged = false;     // the active version's code and lib (ImportOptions::bytes): nothing was written
  bool new_blob = false;      // the bytes were not stored before
  bool repaired = false;      // the bytes' stored blob was damaged (verify) and is whole again
  bool verdict_recorded = false;  // the bytes' blob, stored before schema 2, got its load_verdict
  std::string shadowed_by;        // import_tree: the file of the same batch whose version of this
                                  // module became active instead ("" when none; OTP's order of
                                  // `<app>-<vsn>` directories picks it)
  std::string lib_left;           // the lib of the module's active version when this version moves
                                  // it to lib "" (a file outside `<app>/ebin/`); "" otherwise
  std::string lib;
  std::string warning;  // kept on the version (opcode_only)
  std::uint64_t raw_size = 0;
  // What this import stored for it: the blob's frame and, of an image kept as its chunks, the
  // chunks no stored image had (0 when the blob existed already).
  std::uint64_t stored_size = 0;
};

struct ImportSummary {
  std::vector<ImportResult> items;  // in the order imported (file order; shadowed files first)
  std::size_t files = 0;
  std::size_t new_versions = 0;
  std::size_t unchanged = 0;
  std::size_t repaired = 0;           // damaged blobs made whole by their original bytes
  std::uint64_t bytes_in = 0;         // raw bytes of every file
  std::uint64_t bytes_new = 0;        // raw bytes of the new blobs
  std::uint64_t bytes_stored = 0;     // stored bytes of the new blobs (ratio: bytes_stored / bytes_new)
  std::vector<std::string> warnings;  // links skipped while walking directories (dangling, loops)
};

// A row of the history.
struct StoreEvent {
  std::int64_t id = 0;
  std::int64_t time = 0;          // Unix seconds
  std::string action;             // import, activate, rollback, delete, release-create, release-delete,
                                  // release-rollback, channel-rollback, gc, dict-train, compact; loader:
                                  // load, purge, kill, ...
  std::string module;             // "" for store-wide events
  std::int64_t from_version = 0;  // 0: none
  std::int64_t to_version = 0;    // 0: none
  std::string reason;
  std::string channel;  // the channel a change was made in ("" for store-wide events)
};

struct Activation {
  std::string module;
  std::int64_t from_version = 0;  // 0: there was none
  std::int64_t to_version = 0;    // 0: now inactive
  bool operator==(const Activation&) const = default;
};

struct ReleaseEntry {
  std::string module;
  std::int64_t version = 0;
  std::string lib;
  bool operator==(const ReleaseEntry&) const = default;
};

// A snapshot (`release create NAME`): since schema 4 a generation of a channel labelled NAME
// (docs/model.md, "Channels and generations").
struct Release {
  std::string name;
  std::int64_t created_at = 0;
  std::string note;
  std::vector<ReleaseEntry> modules;  // sorted by module (empty in release_list())
  std::int64_t module_count = 0;
  std::string channel;          // the channel whose generation it is
  std::int64_t generation = 0;  // that generation's number
};

// One channel (Store::channels()).
struct ChannelInfo {
  std::string name;
  std::int64_t generation = 0;  // the current generation (0: none yet, empty)
  std::int64_t previous = 0;    // what channel_rollback returns to (0: nothing)
  std::int64_t modules = 0;     // modules active in it
  std::int64_t created_at = 0;  // Unix seconds
};

// An application's pin moving between two generations: `from`/`to` are "VSN" or, for a
// revision after the first, "VSN#REV" (docs/model.md); "" when not pinned on that side.
struct AppChange {
  std::string app;
  std::string from, to;
  bool operator==(const AppChange&) const = default;
};

// One immutable generation of a channel (Store::channel_history, Store::generation).
// What the agents that apply a generation pass to codestore_agent_apply:apply/2
// (docs/plan-apply.md, "apply/2"): a deploy's or channel rollback's --deadline, --brutal,
// --force, --probe, recorded with the generation (migration 0009) and sent with its plan
// (docs/agent-protocol.md). Every member has a default initializer.
struct UpgradeOptions {
  std::int64_t deadline_ms = 0;  // for everything before the switch; 0: the agent's default (30 s)
  bool brutal = false;           // kill processes that linger in old code that must go
  bool force = false;            // apply a plan that needs a restart
  // The health probe after the switch, "Module:Function" (called with no arguments; must return
  // ok or true); "": the default (every suspended process is alive and answers sys:get_state).
  std::string probe{};
  bool operator==(const UpgradeOptions&) const = default;
};

// UpgradeOptions::probe as {Module, Function}: "M:F" or "M:F/0", each an Erlang atom written
// without quotes; nullopt for "" or anything else (Store::deploy refuses that with
// kInvalidArgument).
std::optional<std::pair<std::string, std::string>> parse_probe(std::string_view probe);

struct Generation {
  std::string channel;
  std::int64_t number = 0;
  std::int64_t created_at = 0;  // Unix seconds
  // What made it: import, activate, rollback, deploy, channel-rollback, snapshot,
  // snapshot-rollback, migrate.
  std::string action;
  std::string reason;
  std::string label;            // a snapshot's name ("": none)
  std::int64_t release_id = 0;  // the Erlang release a deploy made the content (0: none)
  std::string release;          // that release as NAME@VSN ("": none)
  std::int64_t modules = 0;     // modules it pins
  // What changed from generation number-1 (of the same channel), by module: from_version 0
  // an added module, to_version 0 a removed one. Counts of each kind beside.
  std::vector<Activation> changes;
  std::int64_t added = 0, removed = 0, changed = 0;
  std::vector<AppChange> app_changes;  // by app
  UpgradeOptions upgrade;              // how its agents apply it
  // A canary deploy's candidate (Store::deploy with DeployOptions::canary): written after the
  // channel's current generation, applied by its canaries only, until it is promoted (then it
  // is the current one) or dropped.
  bool candidate = false;
  // Store::generation() only: every module version it pins, sorted by module.
  std::vector<ReleaseEntry> content;
};

// What differs between two generations, of one channel or of two (Store::generation_diff).
struct GenerationDiff {
  struct Entry {
    std::string module;
    std::int64_t version = 0;
    std::string md5;  // beam_lib:md5/1 ("" for a version gc deleted from an old generation)
    std::string lib;
  };
  std::vector<Entry> added;    // in b, not in a, by module
  std::vector<Entry> removed;  // in a, not in b
  struct Changed {
    std::string module;
    std::int64_t from_version = 0, to_version = 0;
    std::string from_md5, to_md5;  // equal: the same code in another version (another byte form)
  };
  std::vector<Changed> changed;  // in both, different versions
  std::vector<AppChange> apps;   // applications added (from ""), removed (to ""), changed
};

struct ReleaseDiff {
  std::vector<ReleaseEntry> added;    // in b, not in a
  std::vector<ReleaseEntry> removed;  // in a, not in b
  struct Changed {
    std::string module;
    std::int64_t from_version = 0;
    std::int64_t to_version = 0;
  };
  std::vector<Changed> changed;  // in both, different versions
};

struct GcReport {
  std::vector<ModuleVersion> deleted;  // versions deleted (or that would be)
  std::int64_t blobs_deleted = 0;
  std::int64_t chunks_deleted = 0;  // chunks no blob uses any more (docs/store.md, "Chunks")
  std::uint64_t bytes_freed = 0;    // stored bytes of the deleted blobs and chunks
};

struct VerifyReport {
  std::int64_t blobs_checked = 0;
  std::int64_t chunks_checked = 0;  // a damaged chunk is one Damage per version using it
  std::int64_t versions_checked = 0;
  struct Damage {
    std::string module;  // "" for damage not tied to a version (orphans, integrity_check)
    std::int64_t version = 0;
    std::string message;  // e.g. "corruption: blob 3f2a...: zstd: checksum mismatch"
  };
  std::vector<Damage> damage;
  std::vector<std::string> integrity;  // PRAGMA integrity_check's lines ("ok" when sound)
  bool ok() const { return damage.empty(); }
};

struct StoreStats {
  std::int64_t modules = 0;
  std::int64_t active_modules = 0;  // in the handle's channel
  std::int64_t versions = 0;
  std::int64_t blobs = 0;
  std::uint64_t raw_bytes = 0;     // sum of raw sizes of the blobs
  std::uint64_t stored_bytes = 0;  // sum of stored sizes of the blobs and the chunks
  std::int64_t releases = 0;       // snapshots (labelled generations)
  std::int64_t channels = 0;
  std::int64_t events = 0;
  std::int64_t dictionaries = 0;
  std::int64_t dictionary_id = 0;  // newest (0: none)
  std::uint64_t dictionary_size = 0;
  std::int64_t blobs_with_dictionary = 0;
  std::uint64_t served_total = 0;
  struct Served {
    std::string module;
    std::int64_t version = 0;
    std::uint64_t count = 0;
    std::int64_t last_served = 0;
  };
  std::vector<Served> served;  // most served first
  std::int64_t schema_version = 0;
  // Images kept as their chunks (docs/store.md, "Chunks"): distinct chunks, and bytes by
  // chunk kind ("Code", "Dbgi", ...; raw: as in the images, once per distinct chunk), most
  // stored bytes first, then "(layouts)" (the recipes: headers and small chunks, raw = their
  // size) and "(whole files)" (blobs kept whole: other files, gzip-wrapped images, blobs
  // stored before schema 6 until compact).
  std::int64_t chunks = 0;
  struct ChunkKind {
    std::string kind;
    std::int64_t chunks = 0;  // rows (blobs for the two last)
    std::uint64_t raw_bytes = 0;
    std::uint64_t stored_bytes = 0;
    std::int64_t inflated = 0;  // stored inflated, re-deflated exactly on read (compact)
  };
  std::vector<ChunkKind> chunk_kinds;
};

struct DictionaryInfo {
  std::int64_t id = 0;
  std::uint64_t size = 0;
  std::int64_t samples = 0;
};

struct CompactReport {
  std::int64_t blobs = 0;  // re-encoded
  // Blobs that do not decompress to their SHA-256 (verify reports them): left as they are,
  // one line each naming the versions that use it. Re-importing the original bytes repairs one.
  std::vector<std::string> skipped;
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
  std::int64_t dictionary_id = 0;  // the dictionary they use now (0: none)
  // Chunks (docs/store.md, "Chunks"): whole images split into chunks (blobs stored before
  // schema 6), chunk rows re-encoded, and of those the ones stored inflated (their zlib
  // layer deflates again to exactly the bytes they came with: debug chunks only) and the
  // deflated ones kept as they came (LitT, which the loader reads; a stream no zlib level
  // reproduces, or one damaged or truncated).
  std::int64_t blobs_chunked = 0;
  std::int64_t chunks = 0;
  std::int64_t chunks_inflated = 0;
  std::int64_t chunks_kept_deflated = 0;
};

}  // namespace codestore

// What codestore::Store's calls on application versions and Erlang releases take and return
// (include/codestore/store.h, "Application versions and Erlang releases"; the model is
// docs/model.md). What they import is release_content.h's AppContent and ReleaseContent.
//
// Names with versions are written NAME@VSN: `stdlib@4.2` (an application version),
// `stdlib@4.2#2` (its second revision), `myrel@0.2.0` (a release).
//
// Thread safety: plain values.
#pragma once

#include <codestore/store_types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace codestore {

// An Erlang release: what a .rel's {release, {Name, Vsn}, ...} names.
struct ReleaseId {
  std::string name;
  std::string vsn;
  bool operator==(const ReleaseId&) const = default;
};

// What import_app and import_release do. Every member has a default initializer so that
// `{.replace = true}` names only what it sets.
struct ReleaseImportOptions {
  // A release (name, vsn) already stored with other content is replaced (its applications,
  // files and consolidated modules become the new ones) instead of refused.
  bool replace = false;
  bool dry_run = false;  // validate and report; write nothing
  std::string note{};    // kept on each new module version (import_apps: also the generation's reason)
  // import_apps only: make what it imports what the handle's channel runs (docs/model.md): each
  // application's revision pinned, its modules active, in one generation. import_app and
  // import_release activate nothing (a release becomes a channel's content by a deploy).
  bool activate = false;
};

// One application version as an import left it.
struct AppImportResult {
  std::string app;
  std::string vsn;
  std::int64_t id = 0;        // app_versions.id (0 on a dry run that would make it)
  std::int64_t revision = 0;  // 1, 2, ...: the stored revision this content is
  bool unchanged = false;     // this content was stored already (as `revision`)
  // A new revision of an (app, vsn) stored before with other content: what differs from the
  // newest earlier revision ("module m", "file priv/x"), also said in `warnings`.
  std::vector<std::string> differs;
  std::size_t modules = 0;          // module versions it holds
  std::size_t files = 0;            // other files (links and empty directories included)
  std::size_t new_versions = 0;     // module versions made for it (code not stored before)
  std::size_t reused_versions = 0;  // module versions found by MD5 (a byte form kept if new)
  std::size_t new_blobs = 0;        // distinct bytes stored for the first time
  std::vector<std::string> warnings;
};

// What import_release did: the release and each of its applications.
struct ReleaseImportResult {
  ReleaseId release;
  std::int64_t id = 0;                // releases.id
  bool unchanged = false;             // the release was stored with this content already
  bool replaced = false;              // it was stored with other content and options.replace replaced it
  std::vector<AppImportResult> apps;  // in .rel order, then applications outside the .rel
  std::size_t revisions_made = 0;     // application versions (or revisions) stored anew
  std::size_t new_versions = 0;       // module versions made (consolidated ones included)
  std::size_t reused_versions = 0;
  std::size_t new_blobs = 0;
  std::uint64_t bytes_in = 0;         // every file's size
  std::uint64_t bytes_new = 0;        // raw bytes of the new blobs
  std::uint64_t bytes_stored = 0;     // stored bytes of the new blobs
  std::vector<std::string> warnings;  // the reader's, then the import's (loud ones first)
};

// What import_apps did: each application version, and what moved in the channel.
struct AppsImportResult {
  std::vector<AppImportResult> apps;  // in the order given
  std::string channel;                // the channel activated in ("" when not asked to)
  std::int64_t generation = 0;        // its new generation (0: none made, nothing moved)
  std::vector<Activation> changed;    // each module whose version moved there, by module
  std::size_t revisions_made = 0;     // application versions (or revisions) stored anew
  std::size_t new_versions = 0;
  std::size_t reused_versions = 0;
  std::size_t new_blobs = 0;
  std::uint64_t bytes_in = 0;         // every file's size
  std::uint64_t bytes_new = 0;        // raw bytes of the new blobs
  std::uint64_t bytes_stored = 0;     // stored bytes of the new blobs
  std::vector<std::string> warnings;  // every application's, in order (loud ones first in each)
};

// A module version as an application version or a release holds it.
struct ContentModule {
  std::string module;
  std::int64_t version = 0;
  std::string md5;     // beam_lib:md5/1 of the code, 32 hex digits
  std::string path;    // in the application's directory ('ebin/m.beam') or the release root
  std::string sha256;  // of this byte form (the bytes an export writes), 64 hex digits
  std::uint64_t size = 0;
};

// Any other file.
struct ContentEntry {
  std::string path;
  std::uint64_t size = 0;
  std::string sha256;  // "" for a link or a directory
  std::uint32_t mode = 0644;
  std::string link;        // a symbolic link's target ("" otherwise)
  bool directory = false;  // an (empty) directory
};

// One row of apps().
struct AppVersionSummary {
  std::string app;
  std::string vsn;
  std::int64_t revision = 0;
  std::int64_t id = 0;
  std::string content;  // the content key (docs/model.md): SHA-256 hex
  std::int64_t modules = 0;
  std::int64_t files = 0;
  std::string origin;
  std::string warning;  // why this revision exists ("" for a first revision)
  std::int64_t imported_at = 0;
};

struct AppVersionInfo {
  AppVersionSummary summary;
  std::vector<ContentModule> modules;  // sorted by module
  std::vector<ContentEntry> files;     // sorted by path
};

// One row of erl_releases().
struct ErlRelease {
  ReleaseId id;
  std::string erts_vsn;
  std::string kind;  // relx, mix, systools ("" when the reader did not say)
  std::string origin;
  std::int64_t imported_at = 0;
  std::int64_t apps = 0;
  std::int64_t modules = 0;  // of its applications, plus its consolidated ones
  std::int64_t files = 0;    // its own files
};

// An application entry of a release's .rel, with the revision the release holds.
struct ErlReleaseApp {
  std::string app;
  std::string vsn;
  std::int64_t revision = 0;
  std::string type;      // the start type as the .rel has it ("" for none: permanent)
  std::string included;  // included applications as term text ("" when not given)
};

struct ErlReleaseInfo {
  ErlRelease release;
  std::vector<ErlReleaseApp> apps;          // in .rel order
  std::vector<ContentEntry> files;          // the release's own files, by path
  std::vector<ContentModule> consolidated;  // releases/<vsn>/consolidated/*.beam, by module
};

// From release a to release b.
struct ErlReleaseDiff {
  ReleaseId a, b;
  struct AppChange {
    std::string app;
    std::string from_vsn;
    std::int64_t from_revision = 0;
    std::string to_vsn;
    std::int64_t to_revision = 0;
  };
  std::vector<ErlReleaseApp> apps_added;    // in b only
  std::vector<ErlReleaseApp> apps_removed;  // in a only
  std::vector<AppChange> apps_upgraded;     // in both, another vsn or revision
  // The modules a node running the release has: its applications', the consolidated ones
  // over them. Compared by MD5 (code), not by bytes.
  struct ModuleChange {
    std::string module;
    std::string from_app;  // "" when added; the release's own (consolidated): "<release>"
    std::int64_t from_version = 0;
    std::string from_md5;
    std::string to_app;  // "" when removed
    std::int64_t to_version = 0;
    std::string to_md5;
  };
  std::vector<ModuleChange> modules_added, modules_removed, modules_changed;  // sorted by module
  // Other files, by SHA-256 (or link target): an application's by (app, path in its
  // directory), the release's own by path with `releases/<vsn>/` read as the same directory
  // in both.
  struct FileChange {
    std::string app;          // "" for the release's own files
    std::string path;         // in b's naming (a's for a removed file)
    std::string from_sha256;  // "" when added
    std::string to_sha256;    // "" when removed
  };
  std::vector<FileChange> files_added, files_removed, files_changed;
  bool empty() const {
    return apps_added.empty() && apps_removed.empty() && apps_upgraded.empty() && modules_added.empty() &&
           modules_removed.empty() && modules_changed.empty() && files_added.empty() &&
           files_removed.empty() && files_changed.empty();
  }
};

// What erl_release_export wrote.
struct ReleaseExportReport {
  std::string path;  // the directory or the .tar.gz
  bool tarball = false;
  std::size_t files = 0;  // regular files (beams included)
  std::size_t links = 0;
  std::size_t directories = 0;  // empty ones recreated
  std::uint64_t bytes = 0;      // of the regular files
};

// What Store::deploy did: the channel's new generation (0 when the channel already had exactly
// the release's content, and nothing was written) and each module whose version moved.
//
// With DeployOptions::canary, `generation` is the candidate (Rollout in node_types.h) and the
// channel's current generation is still `base`.
struct DeployResult {
  std::string channel;
  std::int64_t generation = 0;
  std::int64_t base = 0;      // the channel's current generation before (a candidate's base)
  bool candidate = false;     // `generation` is a canary candidate, not the current generation
  std::int64_t canaries = 0;  // the canaries it waits for (DeployOptions::canary)
  std::int64_t modules = 0;   // in the channel now
  std::int64_t apps = 0;
  std::vector<Activation> changed;
};

// How Store::deploy deploys (every member has a default initializer).
struct DeployOptions {
  UpgradeOptions upgrade{};  // recorded with the generation, passed to the agents that apply it
  // 0: the release becomes the channel's current generation at once. N > 0: a canary rollout
  // (docs/operator-guide.md, "Canary deploys"): a candidate generation that N connected agent
  // nodes of the channel apply first, while the channel's current generation (what every other
  // node runs and boots) stays; promoted when every canary applied it, dropped when one did not.
  std::int64_t canary = 0;
};

// What Store::materialize does (store.h). Every member has a default initializer.
struct MaterializeOptions {
  // Take the directory as it is: one that is not empty and has no manifest, one materialized
  // from another channel, and paths it must write or remove that hold what materialize did
  // not write there (an operator's file, a RELEASES that release_handler rewrote): those are
  // overwritten or removed. Files at other paths are never touched, forced or not.
  bool force = false;
  bool dry_run = false;  // plan and report (conflicts included); write nothing
};

// What Store::materialize did (or, on a dry run, would do). Paths are relative to `dir`.
struct MaterializeReport {
  std::string dir;
  std::string channel;
  std::int64_t generation = 0;  // the channel's generation the directory holds now
  ReleaseId release;            // its Erlang release; empty name: none (priv files only)
  std::string erts_vsn;         // the release's erts version ("" without a release)
  // What the manifest named before this run ("" and 0: a first run).
  std::string previous_channel;
  std::int64_t previous_generation = 0;
  // What the generation puts on disk: regular files (with their bytes), links, directories.
  std::size_t files = 0, links = 0, directories = 0;
  std::uint64_t bytes = 0;
  std::vector<std::string> written;  // new or replaced, sorted
  std::vector<std::string> removed;  // written by an earlier run; the generation no longer has them
  std::size_t unchanged = 0;         // already as the generation has them
  std::vector<std::string> warnings;
  bool dry_run = false;
};

// What a node following a channel is served from (Store::channel_apps; the boot server's
// `lib/` and `releases/` under a client root).
struct ChannelApps {
  std::string channel;
  std::int64_t generation = 0;  // the generation read (the current one when asked for 0)
  // The release that generation runs ({} when none): of the releases deployed to the channel
  // up to it, the newest whose applications are exactly the ones it pins. A later import or
  // activation of modules keeps it; a channel rollback to an older deploy's content gives
  // that older release.
  ReleaseId release;
  std::vector<AppVersionSummary> apps;  // the revision of each application it pins, by app
};

}  // namespace codestore

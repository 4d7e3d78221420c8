// The versioned module store: module images kept in one SQLite file, keyed by
// (module name, version), with channels (named active sets: one active version per module in
// each), every change of a channel an immutable generation, named releases (snapshots: labelled
// generations), and a history of every change (docs/model.md for channels and generations,
// docs/store.md for the version state machine, docs/schema.md for the tables).
//
// A Store handle works on one channel, StoreOptions::channel ("default" unless told): "the
// active version", activate, rollback, import and the snapshots' create/rollback are all in it.
//
//   auto store = codestore::Store::open("app.db", {});
//   if (!store) return store.error();
//   auto r = (*store)->import(bytes, "/x/lists.beam", {.lib = "stdlib"});  // lists v1, active
//   if (!r) return r.error();
//   auto active = (*store)->active("lists");                              // version, lib, bytes
//   auto back = (*store)->rollback("lists", codestore::Reason("bad build"));  // the previous active
//
// Options are in store_options.h, the values returned in store_types.h, the walk of
// directories that import_tree does in import_plan.h. Every fallible call is [[nodiscard]].
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

#include <codestore/import_plan.h>
#include <codestore/node_types.h>
#include <codestore/release_content.h>
#include <codestore/release_types.h>
#include <codestore/status.h>
#include <codestore/store_options.h>
#include <codestore/store_types.h>

#include <cstdint>
#include <functional>
#include <map>  // kept: users of store.h relied on it
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore {

class Store {
 public:
  // Opens (or with options.create, creates) the store in `location`: a SQLite file's path,
  // or a PostgreSQL URI `postgresql://[user[:password]@][host][:port]/dbname[?param=value]`
  // (libpq's syntax; `?host=/dir` names a Unix socket directory; docs/store.md "Backends"),
  // whose database must exist (the schema is created in it). Applies pending migrations
  // (each in one transaction; a SQLite file gets a `VACUUM INTO` backup beside it first).
  // Refuses with kNotSupported a schema newer than this library, with kCorruption a database
  // whose applied migration differs from ours (edited), with kInvalidArgument a SQLite file
  // or PostgreSQL database that is not a codestore database or a malformed URI, with
  // kNotFound a missing file (or a database without our schema) when !create, with
  // kPermissionDenied refused credentials, with kIOError a server that cannot be reached.
  [[nodiscard]] static Result<std::unique_ptr<Store>> open(const std::string& location,
                                                           const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The location given to open(), a URI's password shown as "***".
  const std::string& path() const;
  // The channel this handle works on (StoreOptions::channel).
  const std::string& channel() const;
  // The newest schema version this library knows.
  static std::int64_t schema_version();

  // --- Import ------------------------------------------------------------------------------
  // Validates `bytes` strictly (Image::parse kStrict + check_loadable; an image that fails only
  // the opcode check is accepted with a warning) and stores it as the next version of its
  // module, made active. Bytes identical to the active version (and the same lib): nothing is
  // written and `unchanged` is set. Bytes whose stored blob is damaged repair it (`repaired`).
  // `origin` says where the bytes came from (a path, "-"); options.lib (may be ""), note,
  // dry_run and bytes apply, progress and interrupted do not. Errors: kInvalidArgument naming
  // `origin` for bytes that are not a module image at all (saying what they look like: a zip
  // or tar archive, Erlang source, ...), kCorruption for a damaged or unloadable image.
  [[nodiscard]] Result<ImportResult> import(std::span<const std::uint8_t> bytes, std::string_view origin,
                                            const ImportOptions& options = {});
  // Imports the files of a plan (import_plan.h) in one transaction: all or nothing. The first
  // bad file fails the batch with an error naming it. "Unchanged" is judged by bytes, or by
  // code (module MD5) without options.bytes. When several files carry one module, the one of
  // highest ImportFile::precedence (OTP's `<app>-<vsn>` order) is imported last and so becomes
  // active; the others name it in `shadowed_by`. The plan's warnings become the summary's.
  [[nodiscard]] Result<ImportSummary> import_files(const ImportPlan& plan, const ImportOptions& options = {});
  // plan_import(paths) then import_files: files and directories (recursively, `*.beam` files);
  // the planner's errors (a missing path, a directory without `*.beam` files) come first.
  [[nodiscard]] Result<ImportSummary> import_tree(const std::vector<std::string>& paths,
                                                  const ImportOptions& options = {});

  // --- Read --------------------------------------------------------------------------------
  // The bytes of `module` version `version`, exactly as imported. The zstd frame checksum is
  // always checked (kCorruption on mismatch); with verify_sha256 the SHA-256 too.
  [[nodiscard]] Result<std::vector<std::uint8_t>> get(std::string_view module, std::int64_t version,
                                                      bool verify_sha256 = false);
  // The same bytes, shared with the image cache instead of copied: for hot readers (a boot
  // server, a loader) that only read them. Immutable; valid as long as the pointer lives.
  using SharedBytes = std::shared_ptr<const std::vector<std::uint8_t>>;
  [[nodiscard]] Result<SharedBytes> get_shared(std::string_view module, std::int64_t version,
                                               bool verify_sha256 = false);
  // What a loader needs of module@version: an image (IFF, form BEAM) of the chunks the VM
  // loader reads, in their order, without the debug chunks (Dbgi, Abst, Docs, ExDc, ExCk),
  // which are not even read from the database (docs/store.md, "Chunks"). Its module MD5
  // (beam_lib:md5/1) and everything erlang:load_module/2 uses are the imported image's; its
  // bytes are not (get is for that). An image stored whole (before schema 6, or
  // gzip-wrapped) is returned whole; the image cache's copy is used when it has one. The
  // chunks' zstd checksums are checked; not the image's SHA-256 (the view has another).
  [[nodiscard]] Result<SharedBytes> get_for_loading(std::string_view module, std::int64_t version);
  // The reads of "the active version" (active, active_info, list, lib_modules, libs, and the
  // active/rollback_target flags of ModuleVersion) are of this handle's channel; kNotFound
  // "unknown channel C" when it was never made.
  // The active version with its bytes; kNotFound when the module is unknown or has no active version.
  [[nodiscard]] Result<ModuleImage> active(std::string_view module);
  // The metadata only (no decompression).
  [[nodiscard]] Result<ModuleVersion> active_info(std::string_view module);
  [[nodiscard]] Result<ModuleVersion> version_info(std::string_view module, std::int64_t version);
  // Every stored version of `module`, oldest first; kNotFound for an unknown module.
  [[nodiscard]] Result<std::vector<ModuleVersion>> versions(std::string_view module);
  // Every module, sorted by name (also those with no active version).
  [[nodiscard]] Result<std::vector<ModuleSummary>> list();
  // The modules whose active version belongs to `lib`, sorted by name.
  [[nodiscard]] Result<std::vector<ModuleSummary>> lib_modules(std::string_view lib);
  // Libs that have at least one active module, sorted.
  [[nodiscard]] Result<std::vector<std::string>> libs();
  // History, oldest first; `module` "" = every event. limit 0 = all (else the newest `limit`).
  [[nodiscard]] Result<std::vector<StoreEvent>> history(std::string_view module = "", std::size_t limit = 0);

  // A counter that grows with every committed change by any process (imports, activations,
  // releases, deletions, gc; not events or served counts). Cheap: one indexed read. Compare
  // it with an earlier value to learn whether anything changed (a loader's sync()).
  [[nodiscard]] Result<std::uint64_t> generation();

  // --- Change ------------------------------------------------------------------------------
  // Makes `version` the active one. Activating the active version is a no-op (from == to).
  // kInvalidArgument for a version below 1 (versions are whole numbers from 1).
  [[nodiscard]] Result<Activation> activate(std::string_view module, std::int64_t version,
                                            Reason reason = {});
  // Returns to the version that was active before the current one (a rollback is itself an
  // activation, so a second rollback toggles back). kFailedPrecondition when there is none.
  // The reason is a Reason (store_options.h), so `rollback("m", "3")` does not compile: a
  // version is a number, `rollback("m", 3)`.
  [[nodiscard]] Result<Activation> rollback(std::string_view module, Reason reason = {});
  // Activates any stored version (recorded as a rollback); kInvalidArgument below 1.
  [[nodiscard]] Result<Activation> rollback(std::string_view module, std::int64_t version,
                                            Reason reason = {});
  // Deletes one version. Refused (kFailedPrecondition) for a version active in any channel, the
  // version a module's rollback returns to in any channel, a version of a channel's previous
  // generation (what channel_rollback returns to), and versions a snapshot names. Its blob goes
  // at the next gc.
  [[nodiscard]] Status delete_version(std::string_view module, std::int64_t version, Reason reason = {});

  // --- Releases (snapshots) -------------------------------------------------------------------
  // A snapshot is a generation with a label, unique in the store. release_create makes a new
  // generation of this handle's channel, labelled `name`, with the channel's current content
  // (kAlreadyExists when the label is taken; kNotFound when the channel does not exist); the
  // note is kept with it (Release::note), a Reason so that it cannot be swapped with the name.
  [[nodiscard]] Result<Release> release_create(const std::string& name, Reason note = {});
  // Every snapshot of every channel, oldest first.
  [[nodiscard]] Result<std::vector<Release>> release_list();
  [[nodiscard]] Result<Release> release_show(const std::string& name);
  [[nodiscard]] Result<ReleaseDiff> release_diff(const std::string& a, const std::string& b);
  // Removes the label (the generation stays in its channel's history; its versions become
  // collectable unless something else keeps them).
  [[nodiscard]] Status release_delete(const std::string& name);
  // In one transaction, one generation: this handle's channel's content becomes exactly the
  // snapshot's (which may be of another channel); modules it does not name become inactive.
  // Returns each module whose active version changed.
  [[nodiscard]] Result<std::vector<Activation>> release_rollback(const std::string& name, Reason reason = {});

  // --- Channels and generations (docs/model.md) --------------------------------------------
  // Every channel, sorted by name.
  [[nodiscard]] Result<std::vector<ChannelInfo>> channels();
  // The generations of `channel`, newest first, each with what changed from the one before it
  // (Generation::changes, app_changes); limit 0 = all, else the newest `limit`. kNotFound for
  // an unknown channel.
  [[nodiscard]] Result<std::vector<Generation>> channel_history(const std::string& channel,
                                                                std::size_t limit = 0);
  // Generation `number` of `channel` (0: the current one) with its whole content
  // (Generation::content) and what changed in it. kNotFound for an unknown channel or number.
  [[nodiscard]] Result<Generation> channel_generation(const std::string& channel, std::int64_t number = 0);
  // Returns this handle's channel to its previous generation: a new generation with that
  // content, whose `previous` is the generation it left, so a second channel_rollback switches
  // back. Each moved module's rollback target is its version before (as an activation).
  // kFailedPrecondition when the channel has no previous generation; kNotFound when the
  // channel does not exist. Returns the new generation. `upgrade` is recorded with it: how the
  // agents apply it (store_types.h UpgradeOptions). kFailedPrecondition while a canary candidate
  // is pending (end_rollout first).
  [[nodiscard]] Result<Generation> channel_rollback(Reason reason = {}, const UpgradeOptions& upgrade = {});
  // What differs from generation gen_a of channel_a to gen_b of channel_b (0: the current
  // one): modules added, removed, changed (by version, with both MD5s), applications.
  // kNotFound for an unknown channel or generation.
  [[nodiscard]] Result<GenerationDiff> generation_diff(const std::string& channel_a, std::int64_t gen_a,
                                                       const std::string& channel_b, std::int64_t gen_b);

  // --- Application versions and Erlang releases (docs/model.md) ---------------------------
  // What a reader (directories, tarballs, .ez archives) made of an application or a release
  // (release_content.h) becomes application versions `(app, vsn, revision)` and a release
  // `(name, vsn)`. An import changes no active set (a deploy does): its module versions are
  // stored, not activated. Everything of one call happens in one write transaction: all or
  // nothing.
  //
  // Each application is checked as systools checks it: `ebin/<app>.app` must exist and name
  // (app, vsn); a module it lists without `ebin/<module>.beam` is an error, a beam it does not
  // list a warning. Paths must be relative without "." or ".." components, each once;
  // modes permission bits only (no setuid, setgid, sticky); links must stay inside their tree.
  // Each `ebin/<m>.beam` is validated as import() validates (strict parse, check_loadable)
  // and must hold module m. A module whose code (MD5) is stored already keeps its version
  // (the bytes it came in are kept with the application version, so that an export gives
  // them back); new code becomes a new version of lib `app`. Other files are blobs.
  //
  // The same (app, vsn) with the same content (docs/model.md: modules by MD5, other files by
  // SHA-256) is `unchanged`; with other content it becomes a new revision, with a warning
  // naming the modules and files that differ (AppImportResult::differs). Errors:
  // kInvalidArgument for what the checks refuse (naming the application and the file), the
  // codes of import() for a bad image, kPermissionDenied on a read-only store.
  [[nodiscard]] Result<AppImportResult> import_app(const AppContent& app,
                                                   const ReleaseImportOptions& options = {});
  // Several application versions in one write transaction (all or nothing), each as
  // import_app stores it. With options.activate, what a node of this handle's channel runs
  // becomes theirs, in ONE new generation (action "import"; none when nothing moves): each
  // application's revision pinned, each of its modules active; the modules of a revision of
  // the same application that the channel pinned before and the new one lacks become inactive.
  // Refused then, nothing written: an application given twice (kInvalidArgument: a channel
  // pins one version of each), a module carried by two of them (kInvalidArgument, naming
  // both, as systools refuses duplicated modules), a module carried by another application
  // the channel pins (kFailedPrecondition, naming both: one would silently replace the other's).
  [[nodiscard]] Result<AppsImportResult> import_apps(const std::vector<AppContent>& apps,
                                                     const ReleaseImportOptions& options = {});
  // A release and all its applications (those the .rel names, and any others given, which
  // are stored as application versions outside the release, with a warning). Beyond
  // import_app's checks: each .rel entry must have its application (app and vsn) among
  // `release.apps`; two applications of the release must not carry the same module
  // (naming both; `releases/<vsn>/consolidated/*.beam` are the release's own module versions,
  // which take precedence, and are not counted). A release stored with the same content is
  // `unchanged`; with other content kAlreadyExists, unless options.replace.
  [[nodiscard]] Result<ReleaseImportResult> import_release(const ReleaseContent& release,
                                                           const ReleaseImportOptions& options = {});
  // Every application version, by app, vsn and revision.
  [[nodiscard]] Result<std::vector<AppVersionSummary>> apps();
  // One application version with its modules and files; revision 0: the newest. kNotFound
  // naming the revisions there are.
  [[nodiscard]] Result<AppVersionInfo> app_show(std::string_view app, std::string_view vsn,
                                                std::int64_t revision = 0);
  // Erlang releases are named erl_release_*, apart from the release_* calls above, which are
  // schema 2's snapshots of the active set (the names stay for their callers): a ReleaseId
  // overload of those would let a braced `{"myrel", "0.1.0"}` silently pick std::string's
  // iterator-pair constructor and call the other one.
  //
  // Every Erlang release, by name, in the order imported.
  [[nodiscard]] Result<std::vector<ErlRelease>> erl_releases();
  // One release: its applications in .rel order (with their revisions), its own files and
  // its consolidated modules. kNotFound naming the vsns stored under that name.
  [[nodiscard]] Result<ErlReleaseInfo> erl_release_info(const ReleaseId& id);
  // From release a to b: applications added, removed, upgraded (vsn or revision); modules
  // added, removed, changed (by MD5, consolidated ones over the applications' own, as a node
  // has them); files added, removed, changed (by SHA-256 or link target).
  [[nodiscard]] Result<ErlReleaseDiff> erl_release_diff(const ReleaseId& a, const ReleaseId& b);
  // Writes the release as imported, byte for byte: when `out` ends in ".tar.gz" a tarball as
  // relx writes one (`lib/<app>-<vsn>/...`, `releases/...`, `releases/<name>.rel` at the top,
  // as release_handler:unpack_release/1 needs), else a directory with the files' modes and
  // links (module images 0644). Written under a temporary name beside `out` and renamed into
  // place. kAlreadyExists when `out` exists (a directory only when empty is taken);
  // kFailedPrecondition for a tarball of a release without `releases/<vsn>/<name>.rel`;
  // kCorruption for a damaged blob (naming the file), kIOError.
  [[nodiscard]] Result<ReleaseExportReport> erl_release_export(const ReleaseId& id, const std::string& out);
  // Makes the release the content of this handle's channel (StoreOptions::channel), in one new
  // generation (action "deploy", naming the release): its applications' revisions, their
  // module versions, then the release's own (consolidated) modules over them. Modules and
  // applications the release does not carry become inactive in the channel; other channels
  // are not touched. kNotFound for an unknown release; kFailedPrecondition when two of its
  // applications carry one module. `options.upgrade` is recorded with the generation (how the
  // agents apply it). With `options.canary` N > 0 the generation is a canary candidate instead
  // (release_types.h DeployOptions; Rollout): written after the current one, which stays
  // current; a pending rollout of the channel is kept (Store::rollouts). kFailedPrecondition for
  // a canary deploy to a channel with no current generation or a pending candidate already (and
  // for any other change of a channel whose candidate is pending).
  [[nodiscard]] Result<DeployResult> deploy(const ReleaseId& id, Reason reason = {},
                                            const DeployOptions& options = {});
  // The canary rollouts of `channel`, newest first (`limit` 0 all), with their canaries.
  [[nodiscard]] Result<std::vector<Rollout>> rollouts(const std::string& channel, std::size_t limit = 0);
  // Adds canaries to the pending rollout of `channel` whose candidate is `candidate`, from
  // `names` in order, until it has as many as it wants; names already chosen, unknown or
  // excluded nodes are skipped. Returns the rollout (kNotFound when no such rollout is pending:
  // it ended meanwhile). Moves generation() when it added one (so every serve announces).
  [[nodiscard]] Result<Rollout> add_canaries(const std::string& channel, std::int64_t candidate,
                                             const std::vector<std::string>& names);
  // Ends the pending rollout of `channel` by an operator's word: `promote` makes the candidate
  // the current generation, else it is dropped (the channel stays at its base; the candidate's
  // rows go and its number is used again by the next change). kNotFound when none is pending.
  [[nodiscard]] Result<Rollout> end_rollout(const std::string& channel, bool promote, Reason reason = {});
  // `nodes exclude/include NAME`: an excluded agent node is never sent a generation by the agent
  // listener and never chosen as a canary. Every node row of that Erlang node name; kNotFound
  // when there is none. Moves generation() (so that every serve reads it again).
  [[nodiscard]] Status exclude_node(const std::string& name, bool excluded);
  // The Erlang node names of the excluded agent nodes, sorted.
  [[nodiscard]] Result<std::vector<std::string>> excluded_nodes();
  // The agent listener's word on whether node `id`'s agent is connected (what `deploy --wait`
  // waits for). Does not move generation().
  [[nodiscard]] Status set_agent_connected(std::int64_t id, bool connected);
  // An agent listener starting at one of `servers` ("ADDRESS:PORT", as node rows name the server
  // their agent connected to): every node recorded as connected there is not (a serve that
  // stopped without saying so, SIGKILL or a crash, left them set). The number of nodes changed.
  [[nodiscard]] Result<std::int64_t> forget_agent_connections(const std::vector<std::string>& servers);
  // Makes `dir`, a node's local root (its ROOTDIR), hold what a node following this handle's
  // channel must find on local disk for the channel's current generation, and nothing else
  // (docs/operator-guide.md, "A node's local root"): `lib/<app>-<vsn>/priv/**` of each
  // application revision the generation pins; and when the generation is an Erlang release's
  // content (its pinned revisions are exactly a release's applications: the release a deploy
  // made it, or one whose content a rollback brought back), an empty `lib/<app>-<vsn>/ebin/`
  // per application (release_handler checks that it is a directory), `releases/RELEASES` and
  // `releases/start_erl.data` as release_handler writes them (the release permanent, library
  // directories relative to the root), and the release's `releases/<vsn>/*.boot`,
  // `sys.config`, `vm.args`, `relup` and `runtime.exs`. Never a module image (the boot
  // server serves them), never `releases/COOKIE`. Without a release, the priv files only (a
  // warning says so).
  //
  // `dir` is created when missing. A manifest in it (`.codestore-materialized`, a term file)
  // lists what materialize wrote, so that a later run (after a deploy, a rollback) replaces
  // and removes only those files; every other file is the operator's and is never touched.
  // Each file is written under a temporary name and renamed into place, and the manifest is
  // written last, after a pending one that names everything the run may write: an
  // interrupted run is redone cleanly by the next. The generation is read in one read
  // transaction: the directory gets one generation, never a mix. Errors (nothing written):
  // kNotFound for an unknown channel; kFailedPrecondition for a directory that is not empty
  // and has no manifest, one materialized from another channel, or paths to write or remove
  // that hold what materialize did not write there (naming them), all three unless
  // options.force; kBusy when another materialize is writing `dir`; kCorruption for a damaged
  // blob or manifest; kIOError.
  [[nodiscard]] Result<MaterializeReport> materialize(const std::string& dir,
                                                      const MaterializeOptions& options = {});

  // --- What a node following a channel is served (the boot server, docs/model.md) -------------
  // The application revisions generation `number` (0: the current one) of `channel` pins, and
  // the release it runs (ChannelApps::release). kNotFound for an unknown channel or generation.
  [[nodiscard]] Result<ChannelApps> channel_apps(const std::string& channel, std::int64_t number = 0);
  // The application version a node following `channel` is served for `lib/<app>-<vsn>/`, so
  // that a path that names a version gets that version:
  //   1. the revision `channel`'s current generation pins, when it pins `vsn` of `app`;
  //   2. else the newest revision of (app, vsn) any generation of `channel` pinned (a node
  //      still running X after X' was deployed gets X's files; of the revisions the channel
  //      ran, the newest is the one deployed last or a rebuild that replaced it);
  //   3. else the newest revision of (app, vsn) in the store (a release imported but not yet
  //      deployed, which release_handler installs on the node).
  // `vsn` "" asks for the revision the current generation pins, whatever its vsn. kNotFound when
  // there is none (an (app, vsn) the store lacks; an application the channel does not pin), or
  // for an unknown channel.
  [[nodiscard]] Result<AppVersionInfo> app_version_for(const std::string& channel, std::string_view app,
                                                       std::string_view vsn);
  // The bytes of the stored blob whose SHA-256 is `sha256_hex` (64 hex digits, as
  // ContentEntry::sha256 and ContentModule::sha256 give it), shared with the image cache; its
  // zstd frame checksum checked. kNotFound for no such blob, kInvalidArgument for a malformed
  // digest, kCorruption for a damaged one.
  [[nodiscard]] Result<SharedBytes> blob(std::string_view sha256_hex);

  // --- Maintenance -------------------------------------------------------------------------
  // Deletes the versions nothing needs, in every channel: it keeps each channel's active
  // versions and its modules' rollback targets, every version of a channel's previous
  // generation and of every snapshot, versions an application or Erlang release holds, and the
  // newest options.keep_last of each module. An older, unlabelled generation may then name a
  // version that is gone (its history still lists it).
  [[nodiscard]] Result<GcReport> gc(const GcOptions& options);
  // Decompresses every blob and checks its SHA-256, every version's reference, and runs
  // PRAGMA integrity_check. Damage is reported, not returned as an error.
  [[nodiscard]] Result<VerifyReport> verify();
  [[nodiscard]] Result<StoreStats> stats();
  // Trains a zstd dictionary from the stored images; new blobs use it. kFailedPrecondition
  // when the store holds too few images for zstd to train on (the message says how many).
  [[nodiscard]] Result<DictionaryInfo> train_dictionary(const DictionaryOptions& options = {});
  // Re-encodes every blob at options.level with the newest dictionary (one transaction). A
  // damaged blob is skipped and reported (CompactReport::skipped), not a reason to stop.
  [[nodiscard]] Result<CompactReport> compact(const CompactOptions& options = {});
  // Writes the WAL into the database file (PRAGMA wal_checkpoint(TRUNCATE)).
  [[nodiscard]] Status checkpoint();

  // --- For the loader and the boot server --------------------------------------------------
  // Records a loader event (load, purge, kill, delete, sync, ...) in the history.
  [[nodiscard]] Status record_event(std::string_view action, std::string_view module, Reason reason,
                                    std::int64_t from_version = 0, std::int64_t to_version = 0);
  // Counts one serving of module@version (shown by stats()).
  [[nodiscard]] Status record_served(std::string_view module, std::int64_t version,
                                     std::string_view peer = "");

  // --- Nodes a boot server served (node_types.h; docs/model.md, "Nodes") ------------------------
  // Writes what a server learned about some nodes, all in ONE write transaction (a server
  // batches every node that changed since its last call: never one transaction per module
  // served). A report with id 0 is a new node; otherwise its empty fields keep what is
  // recorded, its counts are added, last_seen moves forward, and each module fetched replaces
  // that module's row; its `served` counts are added to what record_served counts (last peer:
  // the report's address). A report whose node was forgotten meanwhile becomes a new node. Returns
  // each report's node id, in order. Does not move generation() (no reader's cache is
  // invalidated). kPermissionDenied on a read-only store.
  [[nodiscard]] Result<std::vector<std::int64_t>> record_nodes(const std::vector<NodeReport>& reports);
  // The recorded nodes (of query.channel, seen since query.seen_since), oldest first, each
  // compared with its channel's current generation (NodeInfo::runs_generation, behind), in
  // one read transaction.
  [[nodiscard]] Result<std::vector<NodeInfo>> nodes(const NodeQuery& query = {});
  // Removes the nodes last seen before `last_seen_before` (Unix seconds) with their modules;
  // returns how many. Does not move generation().
  [[nodiscard]] Result<std::size_t> forget_nodes(std::int64_t last_seen_before);
  // Records an outcome an agent reported (node_types.h NodeUpgrade; docs/agent-protocol.md,
  // "Reports"), in one transaction: the outcome with its modules, an event "node-upgrade" in the
  // history (channel, generations, outcome, node name), the node's generation (`upgrade.node`:
  // to_generation when applied or already, from_generation when reverted or aborted) and its
  // modules as the report says them (a module "loaded" with its MD5 as detail replaces the
  // node's row; "not_loaded" removes it), so that `behind` judges its code now. Returns its
  // id. Does not move generation(). kInvalidArgument for an outcome not in kUpgradeOutcomes.
  [[nodiscard]] Result<std::int64_t> record_node_upgrade(const NodeUpgrade& upgrade);
  // The recorded outcomes, newest first: of `node_name` ("" every node) in `channel` ("" every
  // channel); `limit` 0 all. With their modules.
  [[nodiscard]] Result<std::vector<NodeUpgrade>> node_upgrades(const std::string& node_name = "",
                                                               const std::string& channel = "",
                                                               std::size_t limit = 0);

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace codestore

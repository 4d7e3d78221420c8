// The code server: module instances loaded the way Erlang/OTP's code server loads them
// (OTP's behaviour, and ours where it differs, state by state: docs/code-server.md).
//
//   auto cs = codestore::loader::CodeServer::create({.path = {"ebin"}});
//   if (!cs) fail(cs.error().to_string());
//   auto p = (*cs)->spawn("worker", [](ProcessId) { /* stop the worker */ });
//   auto in = p->call("m", "f", 0);              // autoloads m (interactive mode)
//   (*cs)->load_binary("m", "m.beam", bytes);    // the three-version rule
//   (*cs)->purge("m");                           // kills whoever still runs the old m
//
//   ReadGuard guard;                             // hot path: no lock, no shared count
//   const Instance* cur = (*cs)->current(guard, "m");
//
// Code from a store: a path entry "lib:NAME" finds the modules whose active version belongs
// to lib NAME, through store_lib_source(); sync() then follows the store's active versions
// (an operator's import or rollback). examples/sync is a whole program.
//
//   auto cs = CodeServer::create({.path = {"lib:shop"}, .libs = store_lib_source(store)});
//   (*cs)->load_file("m");  ...  (*cs)->sync(SyncPolicy::kSoft);
//
// Per module name there is a current and an old instance. Loads, deletes, purges and path
// changes are serialized; looking up a current instance is lock-free (docs/code-server.md §5).
#pragma once

#include <codestore/image.h>
#include <codestore/status.h>
#include <codestore/term.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codestore {
class Store;
class StoreReader;
struct CheckedImage;
struct LibModules;
struct ModuleVersion;
}  // namespace codestore

namespace codestore::loader {

class CodeServer;
class Process;
enum class Mode { kInteractive, kEmbedded };
std::string_view mode_name(Mode mode) noexcept;  // "interactive" / "embedded"

// The Erlang reasons a loader Status carries (Status::reason()), under Erlang's names:
// compare with these. Each comes with one Code (docs/code-server.md "Errors"). A failure
// Erlang's code module has no reason for (a store lib that could not be read) has none: its
// Status is the store's, its code kept (kCorruption, kBusy, kIOError...), never nofile.
namespace reason {
// code:load_file/1 and friends: `{error, What}`.
inline constexpr std::string_view kNofile = "nofile";                         // kNotFound
inline constexpr std::string_view kBadfile = "badfile";                       // kCorruption
inline constexpr std::string_view kNotPurged = "not_purged";                  // kFailedPrecondition
inline constexpr std::string_view kStickyDirectory = "sticky_directory";      // kPermissionDenied
inline constexpr std::string_view kEmbedded = "embedded";                     // kPermissionDenied
inline constexpr std::string_view kOnLoadFailure = "on_load_failure";         // kFailedPrecondition
inline constexpr std::string_view kOnLoadNotAllowed = "on_load_not_allowed";  // kNotSupported
inline constexpr std::string_view kDuplicated = "duplicated";                 // kInvalidArgument
inline constexpr std::string_view kBadarg = "badarg";                         // kInvalidArgument
// A call (Process::call and friends): the exit reason the process would get.
inline constexpr std::string_view kUndef = "undef";    // kNotFound
inline constexpr std::string_view kKilled = "killed";  // kFailedPrecondition
inline constexpr std::string_view kExited = "exited";  // kFailedPrecondition
}  // namespace reason

// One module's failure in a multi-module operation: Erlang's `{Module, What}`, What being
// status.reason().
struct FailedModule {
  std::string module;
  Status status;
};

// What atomic_load, prepare_loading, finish_loading and boot answer: Erlang's `ok` or
// `{error, [{Module, What}]}`. Erlang's error is a list, so the result carries one:
// `failed` has every module's Status (empty when ok); `status` is OK or the first one, the
// module named in its message, for a caller that only logs (`if (!r) log(r.status...)`).
struct [[nodiscard]] MultiLoadResult {
  Status status;
  std::vector<FailedModule> failed;
  bool ok() const noexcept { return status.is_ok(); }
  explicit operator bool() const noexcept { return ok(); }
};

// One loaded copy of a module's code. Immutable. Owned by the code server while it is the
// current or old instance, and by anyone who took shared ownership (`shared_from_this()`
// while it is reachable, or `CodeServer::current_shared`); its bytes live as long as it.
// Only the code server makes instances (its implementation holds their state), so the
// class shows no fields.
//
// Thread safety: immutable as far as callers can tell; any number of threads may read it.
// The MD5 is computed on the first md5() call (loading does not need it) once, however many
// threads ask at the same time; all see the same value.
class Instance : public std::enable_shared_from_this<Instance> {
 public:
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const std::string& module() const;
  // Where it came from: the file as found on the path ("DIR/M.beam" with DIR as added),
  // "lib:NAME/M.beam" for a store lib, or what load_binary was given.
  const std::string& origin() const;
  // beam_lib:md5/1 of the image; computed once, on first use.
  const image::Md5& md5() const;
  // beam_lib:version/1's value. An image without an Attr chunk (or without a vsn in it)
  // loads in OTP all the same and has none: has_vsn() is false, vsn() is the atom
  // `undefined` (what proplists:get_value(vsn, M:module_info(attributes)) answers then).
  const etf::Term& vsn() const;
  bool has_vsn() const;
  const std::string& vsn_text() const;                  // etf::format_w(vsn())
  const std::vector<image::Function>& exports() const;  // sorted by (name, arity)
  bool exports_function(std::string_view function, std::uint32_t arity) const;
  const image::Image& image() const;
  image::Bytes bytes() const;  // the IFF bytes (gzip unwrapped)
  // The image has an -on_load function (image::Image::LoadVerdict::on_load).
  bool has_on_load() const;
  // A number unique to this load in this code server, increasing.
  std::uint64_t serial() const;

 protected:
  Instance() = default;  // the code server's implementation derives from it
  ~Instance() = default;
};

// Pins the calling thread for lock-free reads: while a guard lives, no instance this thread
// can reach through `CodeServer::current` or `ModuleRef::current` is freed. Guards nest.
// Keep them short: a pinned thread delays freeing purged instances (never loads or purges).
//
// Thread safety: a guard belongs to the thread that made it; do not pass it to another.
class ReadGuard {
 public:
  ReadGuard() noexcept;
  ~ReadGuard();
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;

 private:
  void* record_;
};

namespace detail {
// The part of a module's slot that lock-free readers see. The code server keeps one per
// module name for its whole life, so a ModuleRef never dangles.
struct ModuleSlotHead {
  std::atomic<const Instance*> current{nullptr};
};
}  // namespace detail

// A module name resolved once (`CodeServer::module_ref`): the cheapest way to find the
// current instance again. Valid for the life of its code server.
//
// Thread safety: a plain value; any thread may use it.
class ModuleRef {
 public:
  ModuleRef() = default;
  // The current instance, or nullptr. Valid while `guard` lives (and while a frame is in it).
  const Instance* current(const ReadGuard& /*guard*/) const noexcept {
    return head_ == nullptr ? nullptr : head_->current.load(std::memory_order_acquire);
  }
  explicit operator bool() const noexcept { return head_ != nullptr; }

 private:
  friend class CodeServer;
  explicit ModuleRef(const detail::ModuleSlotHead* head) : head_(head) {}
  const detail::ModuleSlotHead* head_ = nullptr;
};

using ProcessId = std::uint64_t;
// Run when a purge kills the process (on the purging thread, after the code server's lock
// is released). It must make the host's unit of execution stop; it may call the code server.
using KillCallback = std::function<void(ProcessId)>;

// A process: the host's unit of execution (a thread, fiber or actor) as the code server
// sees it: a stack of frames, each in one instance. A process lingers in a module's old
// code while any frame is in the old instance; a purge kills it. Only
// `CodeServer::spawn` makes processes (its implementation holds their state).
//
// The `const Instance*` a call returns stays valid while its frame is on the stack; after a
// kill the released instances are kept alive by the Process object until it is destroyed,
// so a host thread that has not yet noticed the kill never reads freed bytes.
//
// Thread safety: one host thread runs a process at a time (calls, returns, exit); queries
// may come from any thread. A call takes no lock and writes only the process's own frames
// (a purge's scan and the queries read them: docs/code-server.md §5).
class Process {
 public:
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  ProcessId id() const;
  const std::string& name() const;

  // A call's answer is the instance the new frame is in, or a Status whose reason is
  // reason::kUndef, kKilled or kExited (an OK Status is a null pointer: the Result is two
  // words).
  //
  // A fully qualified call M:F/A: pushes a frame in M's current instance, loading M first
  // in interactive mode (a failed load is undef). undef when F/A is not exported.
  Result<const Instance*> call(std::string_view module, std::string_view function, std::uint32_t arity);
  // The same, as a tail call: the top frame is replaced (how a server loop moves to new
  // code: `?MODULE:loop()`). With no frame it is a call.
  Result<const Instance*> tail_call(std::string_view module, std::string_view function, std::uint32_t arity);
  // Enters M's current instance without calling any particular function: how the code server
  // sees a process the host starts in M's code whatever M exports (a fun of M spawned, a
  // receive loop of M). Like call (or tail_call with `tail`) otherwise: it loads M first in
  // interactive mode, and is undef only when M has no code.
  Result<const Instance*> enter_module(std::string_view module, bool tail = false);
  // A local call: a frame in the instance the process is in (undef with no frame).
  Result<const Instance*> local_call();
  // Returns from the top frame (no-op with none).
  void ret();
  // Ends normally: frames released. Later calls fail with kExited.
  void exit();

  bool alive() const;  // neither killed nor exited
  bool killed() const;
  const Instance* top() const;  // the instance of the top frame, or nullptr
  std::size_t depth() const;
  // True when any frame is in `instance` (erlang:check_process_code/2 for its module's old).
  bool in_instance(const Instance* instance) const;

 protected:
  Process() = default;  // the code server's implementation derives from it
  ~Process() = default;
};

// A module of a store lib as the code path finds it (LibSource::active_image).
struct LibImage {
  std::string md5;  // beam_lib:md5/1 of the active version, 32 hex digits (the store's column)
  std::shared_ptr<const ModuleVersion> version;  // the active version's row (store.h)
  // With LibRead::kBytes: the bytes exactly as imported (shared, immutable).
  std::shared_ptr<const std::vector<std::uint8_t>> bytes;
};
enum class LibRead {
  kMeta,   // metadata only: no image is read or decompressed
  kBytes,  // the bytes as imported too
};

// A store lib's view for the code path (`lib:NAME` entries). The store adapter
// (`store_lib_source()`) implements it over a codestore::StoreReader; tests may fake it.
//
// Thread safety: implementations must allow concurrent calls from any thread (the code
// server looks up under its writer lock; images are validated outside it).
class LibSource {
 public:
  virtual ~LibSource() = default;
  virtual bool has_lib(const std::string& lib) = 0;
  // Catches up with the store: active_image calls after it see every change committed
  // before it. The code path calls it once per lookup of a module (sync: once for all).
  virtual Status refresh() = 0;
  // The module's active version if that version belongs to `lib` (nullopt when it does
  // not); an error, its kind kept, when the store cannot be read.
  virtual Result<std::optional<LibImage>> active_image(const std::string& lib, const std::string& module,
                                                       LibRead read) = 0;
  // The image of `image` (from active_image) parsed strictly and judged loadable, for the
  // loader to validate outside its writer lock; `origin` names it in errors.
  virtual Result<std::shared_ptr<const CheckedImage>> check(const LibImage& image,
                                                            const std::string& origin) = 0;
  // Modules whose active version belongs to `lib` with their MD5s, sorted (store_reader.h),
  // as of the last refresh(): one listing answers a sync() over every loaded module.
  virtual Result<std::shared_ptr<const LibModules>> lib_modules(const std::string& lib) = 0;
  // Records a code-server event in the store's history (load, purge, kill, delete, sync).
  virtual void record_event(const std::string& kind, const std::string& module,
                            const std::string& detail) = 0;
};

// The store's libs as a LibSource: lib NAME has the modules whose active version belongs to
// NAME; events go to the store's history. Reads go through one StoreReader
// (store_reader.h): metadata cached per store generation, which every load, sync() and
// module_status reads first, so an operator's import or rollback is seen by the next one.
std::shared_ptr<LibSource> store_lib_source(std::shared_ptr<Store> store);
// The same over a reader the caller made (its ReaderOptions) or shares.
std::shared_ptr<LibSource> store_lib_source(std::shared_ptr<StoreReader> reader);

enum class ModuleStatus { kNotLoaded, kLoaded, kModified, kRemoved };
std::string_view module_status_name(ModuleStatus status) noexcept;

struct PurgeResult {
  bool killed = false;               // code:purge/1's answer: true only if it killed
  bool had_old = false;              // there was old code to remove
  std::vector<ProcessId> processes;  // whom it killed
};
struct SoftPurgeResult {
  bool ok = true;                   // code:soft_purge/1's answer: no old code remains
  std::vector<ProcessId> blockers;  // processes still in the old code when !ok
};

struct ObjectCode {
  std::string module;
  std::vector<std::uint8_t> bytes;  // as stored (maybe gzip-wrapped)
  std::string file;                 // the origin it would get
};

struct AvailableModule {
  std::string module;
  std::string origin;  // loaded: its origin; else the first path match
  bool loaded;
  bool operator==(const AvailableModule&) const = default;
};

struct Clash {
  std::string module;
  std::string shadowing;  // the file that wins
  std::string shadowed;   // a later file of the same name
  bool operator==(const Clash&) const = default;
};

// One item of atomic_load / prepare_loading: a module found on the path, or given bytes.
struct LoadItem {
  std::string module;
  std::optional<std::string> origin;  // set with bytes
  std::optional<std::vector<std::uint8_t>> bytes;
};

// What prepare_loading made: validated images, waiting for finish_loading. Single use.
//
// Thread safety: a value; use it from one thread.
class Prepared {
 public:
  Prepared() = default;
  Prepared(Prepared&&) noexcept = default;
  Prepared& operator=(Prepared&&) noexcept = default;
  bool used() const { return used_; }

 private:
  friend class CodeServer;
  std::vector<std::shared_ptr<Instance>> instances_;
  bool used_ = true;  // a default-made handle is not usable
};

// prepare_loading's answer: Erlang's `{ok, Prepared}` or `{error, [{Module, What}]}`.
struct [[nodiscard]] PrepareResult : MultiLoadResult {
  Prepared prepared;
};

enum class SyncPolicy {
  kBrutal,  // load_binary semantics: the old instance is purged, lingering processes killed
  kSoft,    // leave a module whose old code is still in use
};
struct SyncReport {
  struct Change {
    std::string module;
    std::string from_vsn, to_vsn;
    std::vector<ProcessId> killed;
  };
  std::vector<Change> changed;
  std::vector<std::string> left_in_use;  // soft: old code still running
  std::vector<FailedModule> failed;      // could not load the active version
};

// A host callback for modules with -on_load (Instance::has_on_load()): ok (true) makes the
// new instance current; false is on_load_failure and the previous current instance stays
// (load_binary has already purged the old one when there were both, as OTP does). It runs
// under the code server's writer lock (the load is not finished yet): it must not call the
// code server. Never called for atomic_load / prepare_loading, which refuse such modules.
using OnLoadCallback = std::function<bool(const Instance&)>;

struct Options {
  Mode mode = Mode::kInteractive;
  std::vector<std::string> path;  // all must be valid (else create fails with bad_directory)
  // In interactive mode, stick the entries whose app name is kernel, stdlib or compiler.
  bool stick_default = true;
  std::shared_ptr<LibSource> libs;  // needed for lib:NAME path entries
  OnLoadCallback on_load;           // none: on_load modules load like any other
  bool record_events = false;       // write loads, purges and kills to libs->record_event
};

// Thread safety: every method may be called from any thread. `mutex_` (in the
// implementation) guards the module table's writer side, the path, the sticky set and the
// process registry; loads, deletes, purges and path changes hold it, so they are serialized.
// `current` / `module_ref` / `ModuleRef::current` read without it (see docs/code-server.md §5).
class CodeServer {
 public:
  // Fails with kInvalidArgument ("bad_directory: DIR") if a path entry is not valid.
  static Result<std::unique_ptr<CodeServer>> create(Options options);
  ~CodeServer();
  CodeServer(const CodeServer&) = delete;
  CodeServer& operator=(const CodeServer&) = delete;

  Mode get_mode() const;

  // --- Lock-free lookups -----------------------------------------------------------------
  // The current instance of `module`, or nullptr; never loads. Valid while `guard` lives.
  const Instance* current(const ReadGuard& guard, std::string_view module) const;
  // Resolves a name once (creating its slot if the name is new; takes the writer lock then).
  ModuleRef module_ref(std::string_view module);
  // Shared ownership of the current instance, for long-lived holders (touches a count).
  std::shared_ptr<const Instance> current_shared(std::string_view module) const;

  // --- Loading -----------------------------------------------------------------------------
  Result<void> load_file(std::string_view module);
  // `file` names the image ("DIR/M" or "DIR/M.beam": ".beam" is appended when missing); the
  // module is its base name. The path is not searched.
  Result<void> load_abs(std::string_view file);
  // Loads `bytes` (plain or gzip-wrapped), recording `origin`. With current code the old
  // instance is hard-purged first (the three-version rule) — but only once the image has
  // been validated and the sticky check passed: a refused load changes nothing.
  Result<void> load_binary(std::string_view module, std::string_view origin, image::Bytes bytes);
  // Loads only when there is no current code; embedded mode answers reason::kEmbedded instead.
  Result<void> ensure_loaded(std::string_view module);
  // All or nothing; every module's error is reported (from the first phase that fails).
  MultiLoadResult atomic_load(const std::vector<LoadItem>& items);
  // `prepared` is usable only when the result is ok.
  PrepareResult prepare_loading(const std::vector<LoadItem>& items);
  // A handle used before (or default-made) gives one {"", badarg} failure.
  MultiLoadResult finish_loading(Prepared& prepared);
  // Embedded boot: loads `modules` in order (load_file each); stops at the first failure.
  MultiLoadResult boot(const std::vector<std::string>& modules);

  // code:delete/1: false while old code exists or when the module has no current code.
  bool delete_module(std::string_view module);
  PurgeResult purge(std::string_view module);
  SoftPurgeResult soft_purge(std::string_view module);
  bool check_old_code(std::string_view module) const;
  // erlang:check_process_code/2: is any frame of `process` in the module's old instance.
  bool check_process_code(const Process& process, std::string_view module) const;

  // --- Queries -----------------------------------------------------------------------------
  std::optional<std::string> is_loaded(std::string_view module) const;  // the origin
  std::vector<std::pair<std::string, std::string>> all_loaded() const;  // sorted by module
  std::vector<AvailableModule> all_available() const;                   // sorted by module
  std::optional<std::string> which(std::string_view module) const;      // nullopt: non_existing
  std::optional<ObjectCode> get_object_code(std::string_view module) const;
  ModuleStatus module_status(std::string_view module) const;
  std::vector<std::string> modified_modules() const;

  // --- Sticky ------------------------------------------------------------------------------
  bool is_sticky(std::string_view module) const;  // has current code and a sticky name
  void stick_mod(std::string_view module);
  void unstick_mod(std::string_view module);
  bool stick_dir(std::string_view dir);  // false ("error") when it cannot be listed
  bool unstick_dir(std::string_view dir);

  // --- Code path ---------------------------------------------------------------------------
  std::vector<std::string> get_path() const;
  Status set_path(const std::vector<std::string>& dirs);  // kInvalidArgument: bad_directory
  Status add_pathz(std::string_view dir);
  Status add_patha(std::string_view dir);
  void add_pathsz(const std::vector<std::string>& dirs);  // invalid dirs skipped
  void add_pathsa(const std::vector<std::string>& dirs);  // each to the front: reversed
  bool del_path(std::string_view name_or_dir);
  // kNotFound "bad_name" when Dir's app name is not `name`; kInvalidArgument bad_directory.
  Status replace_path(std::string_view name, std::string_view dir);
  std::optional<std::string> where_is_file(std::string_view file_name) const;
  std::vector<Clash> clash() const;
  std::optional<std::string> lib_dir(std::string_view app) const;
  std::optional<std::string> priv_dir(std::string_view app) const;

  // --- Processes ---------------------------------------------------------------------------
  std::shared_ptr<Process> spawn(std::string name, KillCallback on_kill = {});

  // --- Store -------------------------------------------------------------------------------
  // Brings every loaded module whose first path match is a store lib to the image that
  // entry gives now (the store's active version), when its MD5 differs.
  SyncReport sync(SyncPolicy policy);

  struct Impl;  // opaque: the implementation's state

 private:
  explicit CodeServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace codestore::loader

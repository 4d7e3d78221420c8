#include <codestore/code_server.h>
#include <codestore/store_reader.h>

#include <algorithm>
#include <map>

#include "code_server_impl.h"
#include "epoch.h"

namespace codestore::loader {

using detail::InstanceImpl;
using detail::ModuleEntry;
using detail::ProcessImpl;

std::string_view mode_name(Mode mode) noexcept {
  return mode == Mode::kEmbedded ? "embedded" : "interactive";
}

namespace detail {

Status load_error(std::string_view reason, std::string message) {
  // The table in docs/code-server.md "Errors", in the order of the reason:: constants.
  static constexpr std::pair<std::string_view, Code> kCodes[] = {
      {reason::kNofile, Code::kNotFound},
      {reason::kBadfile, Code::kCorruption},
      {reason::kNotPurged, Code::kFailedPrecondition},
      {reason::kStickyDirectory, Code::kPermissionDenied},
      {reason::kEmbedded, Code::kPermissionDenied},
      {reason::kOnLoadFailure, Code::kFailedPrecondition},
      {reason::kOnLoadNotAllowed, Code::kNotSupported},
      {reason::kDuplicated, Code::kInvalidArgument},
      {reason::kBadarg, Code::kInvalidArgument},
      {reason::kUndef, Code::kNotFound},
      {reason::kKilled, Code::kFailedPrecondition},
      {reason::kExited, Code::kFailedPrecondition},
  };
  Code code = Code::kInternal;  // a reason missing from the table is our bug
  for (const auto& [r, c] : kCodes) {
    if (r == reason) code = c;
  }
  return Status(code, reason, std::move(message));
}

}  // namespace detail

std::string_view module_status_name(ModuleStatus status) noexcept {
  switch (status) {
    case ModuleStatus::kNotLoaded: return "not_loaded";
    case ModuleStatus::kLoaded: return "loaded";
    case ModuleStatus::kModified: return "modified";
    case ModuleStatus::kRemoved: return "removed";
  }
  return "not_loaded";
}

const image::Md5& Instance::md5() const {
  const InstanceImpl& self = InstanceImpl::of(*this);
  std::call_once(self.md5_once_, [&self] {
    // Cannot fail here: the strict MD5 fails only on a FunT whose size is not 4 + 24 * n,
    // which check_loadable refuses (prepare_instance made this instance only if loadable).
    if (auto md5 = self.image_.md5()) self.md5_ = *md5;
  });
  return self.md5_;
}

bool Instance::exports_function(std::string_view function, std::uint32_t arity) const {
  // Every fully qualified call asks: a binary search over the sorted exports touches a few
  // of them where a scan touched half.
  const auto& exports = InstanceImpl::of(*this).exports_;
  auto it = std::lower_bound(exports.begin(), exports.end(), function,
                             [arity](const image::Function& f, std::string_view name) {
                               const int order = std::string_view(f.name).compare(name);
                               return order < 0 || (order == 0 && f.arity < arity);
                             });
  return it != exports.end() && it->arity == arity && it->name == function;
}

const std::string& Instance::module() const {
  return InstanceImpl::of(*this).module_;
}
const std::string& Instance::origin() const {
  return InstanceImpl::of(*this).origin_;
}
const etf::Term& Instance::vsn() const {
  return InstanceImpl::of(*this).vsn_;
}
bool Instance::has_vsn() const {
  return InstanceImpl::of(*this).has_vsn_;
}
const std::string& Instance::vsn_text() const {
  return InstanceImpl::of(*this).vsn_text_;
}
const std::vector<image::Function>& Instance::exports() const {
  return InstanceImpl::of(*this).exports_;
}
const image::Image& Instance::image() const {
  return InstanceImpl::of(*this).image_;
}
image::Bytes Instance::bytes() const {
  return InstanceImpl::of(*this).image_.bytes();
}
bool Instance::has_on_load() const {
  return InstanceImpl::of(*this).has_on_load_;
}
std::uint64_t Instance::serial() const {
  return InstanceImpl::of(*this).serial_;
}

// --- Impl ------------------------------------------------------------------------------

detail::ModuleEntry* CodeServer::Impl::find_or_add(std::string_view name) {
  if (ModuleEntry* e = find(name)) return e;
  auto entry = std::make_unique<ModuleEntry>();
  entry->name = std::string(name);
  entry->hash = detail::hash_name(name);
  names.insert(entry.get());
  entries.push_back(std::move(entry));
  return entries.back().get();
}

detail::ExportEntry* CodeServer::Impl::find_or_add_export(std::string_view module, std::string_view function,
                                                          std::uint32_t arity) {
  const std::size_t hash = detail::hash_export(module, function, arity);
  if (detail::ExportEntry* x = find_export(hash, module, function, arity)) return x;
  ModuleEntry* entry = find_or_add(module);
  auto x = std::make_unique<detail::ExportEntry>();
  x->hash = hash;
  x->arity = arity;
  x->module = std::string(module);
  x->function = std::string(function);
  const Instance* cur = entry->cur.get();
  x->current.store(cur != nullptr && cur->exports_function(function, arity) ? cur : nullptr,
                   std::memory_order_seq_cst);
  entry->exports.push_back(x.get());
  exports.insert(x.get());
  export_entries.push_back(std::move(x));
  return export_entries.back().get();
}

void CodeServer::Impl::set_current(detail::ModuleEntry& entry, const Instance* instance) {
  // seq_cst: before any purge's scan of the instance replaced (loader/process.cpp).
  for (detail::ExportEntry* x : entry.exports) {
    const bool exported = instance != nullptr && instance->exports_function(x->function, x->arity);
    x->current.store(exported ? instance : nullptr, std::memory_order_seq_cst);
  }
  entry.current.store(instance, std::memory_order_seq_cst);
}

std::vector<std::shared_ptr<Process>> CodeServer::Impl::live_processes() {
  std::vector<std::shared_ptr<Process>> live;
  std::erase_if(processes, [&](const std::weak_ptr<Process>& w) {
    auto p = w.lock();
    if (!p) return true;
    live.push_back(std::move(p));
    return false;
  });
  return live;
}

namespace {

// The writer lock, plus the kill callbacks to run once it is released (a callback may call
// back into the code server).
class Writer {
 public:
  explicit Writer(std::mutex& mutex) : lock_(mutex) {}
  ~Writer() {
    lock_.unlock();
    for (auto& [callback, id] : kills_) {
      if (callback) callback(id);
    }
  }
  PendingKills& kills() { return kills_; }

 private:
  std::unique_lock<std::mutex> lock_;
  PendingKills kills_;
};

tl::unexpected<Status> fail(std::string_view reason, std::string message) {
  return tl::unexpected<Status>(detail::load_error(reason, std::move(message)));
}

// The one rule for names that become file names (image::is_safe_module_name): no path
// separators, no "." or "..", no control characters.
bool valid_module_name(std::string_view module) {
  return image::is_safe_module_name(module);
}

std::string base_module(std::string_view file) {
  std::string_view base = file.substr(file.rfind('/') == std::string_view::npos ? 0 : file.rfind('/') + 1);
  if (base.size() > 5 && base.ends_with(".beam")) base.remove_suffix(5);
  return std::string(base);
}

}  // namespace

namespace detail {

// Making instances, and the purge's side of processes.
struct Access {
  // Everything the loader needs from an image, checked the way erlang:prepare_loading/2
  // does. Touches nothing shared, so it needs no lock.
  static Result<std::shared_ptr<Instance>> prepare_instance(std::string_view module, std::string_view origin,
                                                            image::Bytes bytes) {
    return prepare_parsed(module, origin, image::Image::parse(bytes, image::Strictness::kStrict, origin));
  }
  // The same over a strict parse already made (of bytes the caller shares).
  static Result<std::shared_ptr<Instance>> prepare_parsed(std::string_view module, std::string_view origin,
                                                          Result<image::Image> img) {
    if (!img) return fail(reason::kBadfile, img.error().message());
    auto verdict = img->check_loadable();
    return instance_of(module, origin, std::move(*img), verdict);
  }
  // The same over a strict parse and its verdict already made (a store image checked once
  // per content: store_reader.h).
  static Result<std::shared_ptr<Instance>> instance_of(std::string_view module, std::string_view origin,
                                                       image::Image image,
                                                       const image::Image::LoadVerdict& verdict) {
    auto* img = &image;
    if (!verdict.loadable) return fail(reason::kBadfile, verdict.reason);
    auto name = img->module();
    if (!name) return fail(reason::kBadfile, name.error().message());
    // The image is sound but of another module than asked for: the caller's mistake.
    if (*name != module) {
      return error(
          Status(Code::kInvalidArgument, reason::kBadfile, "module name in object code is " + *name));
    }
    // OTP's loader reads only AtU8, Code, ImpT, ExpT and, when present, StrT, FunT, LitT
    // (docs/image-format.md "Which chunks the VM loader needs"): Attr is optional, and the
    // vsn with it. An Attr that decodes but has no readable vsn loads without one (so does
    // code:load_binary); one that does not decode was refused by check_loadable already.
    auto vsn = img->vsn();
    auto exports = img->exports();
    if (!exports) return fail(reason::kBadfile, exports.error().message());

    std::shared_ptr<InstanceImpl> inst(new InstanceImpl(std::move(*img)));
    inst->module_ = *name;
    inst->origin_ = std::string(origin);
    inst->has_vsn_ = vsn.has_value();
    inst->vsn_ = vsn ? std::move(*vsn) : etf::Term::atom("undefined");
    inst->vsn_text_ = etf::format_w(inst->vsn_);
    inst->exports_ = std::move(*exports);
    inst->has_on_load_ = verdict.on_load;
    return inst;
  }

  // Who has a frame in `old`, which is no longer current: an enter racing this scan either
  // is seen here or sees that (loader/process.cpp). With `kill`, each one is killed (its
  // instances kept alive with the Process object until the host's thread has noticed) and
  // its callback queued.
  static std::vector<std::shared_ptr<Process>> scan_lingering(CodeServer::Impl& impl, const Instance* old,
                                                              bool kill, PendingKills& kills) {
    std::vector<std::shared_ptr<Process>> lingering;
    for (auto& p : impl.live_processes()) {
      ProcessImpl& process = ProcessImpl::of(*p);
      if (!process.in_instance(old)) continue;
      if (kill) {
        if (!process.kill()) continue;  // it ended meanwhile
        kills.emplace_back(process.on_kill(), process.id());
      }
      lingering.push_back(p);
    }
    return lingering;
  }

  static void set_serial(Instance& inst, std::uint64_t serial) { InstanceImpl::of(inst).serial_ = serial; }
};

}  // namespace detail

// --- CodeServer: the operations, each in one place --------------------------------------
//
// The private helpers below REQUIRE impl_->mutex held (a Writer in scope).

namespace {

void record(CodeServer::Impl& impl, const char* kind, const std::string& module, const std::string& detail) {
  if (impl.options.record_events && impl.options.libs) impl.options.libs->record_event(kind, module, detail);
}

// Makes `inst` current; a current instance becomes old. REQUIRES: not both current and old
// (load_prepared has purged or refused); with no current code an old instance stays (OTP).
void install(CodeServer::Impl& impl, ModuleEntry& entry, std::shared_ptr<Instance> inst) {
  detail::Access::set_serial(*inst, impl.next_serial++);
  if (entry.cur) entry.old = std::move(entry.cur);
  entry.cur = std::move(inst);
  entry.known = true;
  CodeServer::Impl::set_current(entry, entry.cur.get());
  record(impl, "load", entry.name, entry.cur->origin() + " " + entry.cur->vsn_text());
}

void retire(std::shared_ptr<Instance> old) {
  detail::EpochDomain::global().retire(std::shared_ptr<const void>(std::move(old)));
}

PurgeResult purge_old(CodeServer::Impl& impl, ModuleEntry& entry, PendingKills& kills) {
  PurgeResult result;
  if (!entry.old) return result;
  result.had_old = true;
  for (const auto& p : detail::Access::scan_lingering(impl, entry.old.get(), /*kill=*/true, kills)) {
    result.processes.push_back(p->id());
    record(impl, "kill", entry.name, "process " + std::to_string(p->id()) + " (" + p->name() + ")");
  }
  result.killed = !result.processes.empty();
  record(impl, "purge", entry.name, entry.old->vsn_text());
  retire(std::move(entry.old));
  return result;
}

SoftPurgeResult soft_purge_old(CodeServer::Impl& impl, ModuleEntry& entry) {
  SoftPurgeResult result;
  if (!entry.old) return result;
  PendingKills none;
  for (const auto& p : detail::Access::scan_lingering(impl, entry.old.get(), /*kill=*/false, none)) {
    result.blockers.push_back(p->id());
  }
  if (!result.blockers.empty()) {
    result.ok = false;
    return result;
  }
  record(impl, "purge", entry.name, entry.old->vsn_text());
  retire(std::move(entry.old));
  return result;
}

enum class Flavor {
  kFile,    // load_file / load_abs / ensure_loaded: not_purged when current and old exist
  kBinary,  // load_binary: the three-version rule
};

Result<void> load_prepared(CodeServer::Impl& impl, ModuleEntry& entry, std::shared_ptr<Instance> inst,
                           Flavor flavor, PendingKills& kills) {
  if (entry.cur && entry.old) {
    if (flavor == Flavor::kFile) return fail(reason::kNotPurged, entry.name);
    purge_old(impl, entry, kills);
  }
  if (inst->has_on_load() && impl.options.on_load && !impl.options.on_load(*inst)) {
    // The instance never became current, so nobody can be in it: dropping it is the purge.
    return fail(reason::kOnLoadFailure, entry.name);
  }
  install(impl, entry, std::move(inst));
  return {};
}

using Prepare = Result<std::shared_ptr<Instance>>;

// The checks in OTP 25's order for load_file (nofile, then sticky before badfile), then the
// load. `inst` was prepared outside the writer lock; every refusal comes before anything
// changes.
Result<void> commit(CodeServer::Impl& impl, std::string_view module, Prepare inst, Flavor flavor,
                    PendingKills& kills) {
  if (!inst && inst.error().reason() != reason::kBadfile) return tl::unexpected(inst.error());
  ModuleEntry* entry = impl.find_or_add(module);
  if (entry->cur && impl.sticky.count(module) != 0)
    return fail(reason::kStickyDirectory, std::string(module));
  if (!inst) return tl::unexpected(inst.error());
  return load_prepared(impl, *entry, std::move(*inst), flavor, kills);
}

// Validates what the path found; needs no lock. A store lib's image is checked by the
// store's reader (once per content, store_reader.h); a file's bytes are parsed where they are.
Prepare prepare_found(CodeServer::Impl& impl, std::string_view module, const detail::CodePath::Found& found) {
  if (found.version) {
    auto checked = impl.options.libs->check(LibImage{found.md5, found.version, nullptr}, found.origin);
    // A store lib that could not be read: the store's Status, its code kept (never nofile).
    if (!checked) return tl::unexpected(std::move(checked.error()));
    return detail::Access::instance_of(module, found.origin, (*checked)->image, (*checked)->verdict);
  }
  return detail::Access::prepare_parsed(
      module, found.origin,
      image::Image::parse_shared(found.bytes, image::Strictness::kStrict, found.origin));
}

// Looks `module` up on the path under the writer lock (metadata only for a store lib), then
// validates it outside the lock (erlang/otp#6736 prepares in the caller too).
Prepare prepare_from_path(CodeServer::Impl& impl, std::string_view module) {
  Result<std::optional<detail::CodePath::Found>> found;
  {
    std::lock_guard<std::mutex> lock(impl.mutex);
    found = impl.path.find(module);
  }
  if (!found) return tl::unexpected(std::move(found.error()));  // the store's, as prepare_found
  if (!*found) return fail(reason::kNofile, std::string(module));
  return prepare_found(impl, module, **found);
}

// Whether `hex` (a store's md5 column) spells `md5`, without building a string: sync() asks
// this of every loaded module.
bool same_md5(const image::Md5& md5, std::string_view hex) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (hex.size() != 2 * md5.size()) return false;
  for (std::size_t i = 0; i < md5.size(); ++i) {
    if (hex[2 * i] != kHex[md5[i] >> 4] || hex[2 * i + 1] != kHex[md5[i] & 15]) return false;
  }
  return true;
}

// beam_lib:md5/1 of what the path gives now, as hex: a store lib's from its md5 column (no
// image is read), a file's computed (lenient, as beam_lib reads); nullopt when it does not
// parse.
std::optional<std::string> path_md5(const detail::CodePath::Found& found) {
  if (found.version) return found.md5;
  auto img = image::Image::parse_shared(found.bytes, image::Strictness::kLenient, found.origin);
  if (!img) return std::nullopt;
  auto md5 = img->md5();
  return md5 ? std::optional<std::string>(image::md5_hex(*md5)) : std::nullopt;
}

}  // namespace

CodeServer::CodeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CodeServer::~CodeServer() {
  for (auto& e : impl_->entries) {
    if (e->cur) retire(std::move(e->cur));
    if (e->old) retire(std::move(e->old));
  }
}

Result<std::unique_ptr<CodeServer>> CodeServer::create(Options options) {
  std::vector<std::string> dirs = options.path;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->path.set(dirs); !s) return error(s);
  if (impl->options.mode == Mode::kInteractive && impl->options.stick_default) {
    for (const auto& entry : impl->path.entries()) {
      if (entry.app != "kernel" && entry.app != "stdlib" && entry.app != "compiler") continue;
      if (auto names = impl->path.list(entry)) impl->sticky.insert(names->begin(), names->end());
    }
  }
  return std::unique_ptr<CodeServer>(new CodeServer(std::move(impl)));
}

Mode CodeServer::get_mode() const {
  return impl_->options.mode;
}

const Instance* CodeServer::current(const ReadGuard& /*guard*/, std::string_view module) const {
  return impl_->lookup_current(module);
}

ModuleRef CodeServer::module_ref(std::string_view module) {
  if (ModuleEntry* e = impl_->find(module)) return ModuleRef(e);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return ModuleRef(impl_->find_or_add(module));
}

std::shared_ptr<const Instance> CodeServer::current_shared(std::string_view module) const {
  ReadGuard guard;
  const Instance* inst = impl_->lookup_current(module);
  // While pinned, an instance unlinked by a purge is still owned by the epoch domain.
  return inst == nullptr ? nullptr : inst->shared_from_this();
}

Result<void> CodeServer::load_file(std::string_view module) {
  auto inst = prepare_from_path(*impl_, module);
  Writer w(impl_->mutex);
  return commit(*impl_, module, std::move(inst), Flavor::kFile, w.kills());
}

Result<void> CodeServer::load_abs(std::string_view file) {
  std::string path(file);
  if (!std::string_view(path).ends_with(".beam")) path += ".beam";
  std::string module = base_module(path);
  if (!valid_module_name(module)) return fail(reason::kBadarg, path);
  auto bytes = detail::read_file(path);
  if (!bytes) return fail(reason::kNofile, path);
  auto inst = detail::Access::prepare_instance(module, path, *bytes);
  Writer w(impl_->mutex);
  return commit(*impl_, module, std::move(inst), Flavor::kFile, w.kills());
}

Result<void> CodeServer::load_binary(std::string_view module, std::string_view origin, image::Bytes bytes) {
  if (!valid_module_name(module)) return fail(reason::kBadarg, std::string(module));
  auto inst = detail::Access::prepare_instance(module, origin, bytes);
  Writer w(impl_->mutex);
  return commit(*impl_, module, std::move(inst), Flavor::kBinary, w.kills());
}

Result<void> CodeServer::ensure_loaded(std::string_view module) {
  if (impl_->lookup_current(module) != nullptr) return {};  // OTP answers without the server
  if (impl_->options.mode == Mode::kEmbedded) {
    std::lock_guard<std::mutex> lock(impl_->mutex);  // a load that finished meanwhile answers ok
    if (impl_->lookup_current(module) != nullptr) return {};
    return fail(reason::kEmbedded, std::string(module));
  }
  auto inst = prepare_from_path(*impl_, module);
  Writer w(impl_->mutex);
  if (impl_->lookup_current(module) != nullptr) return {};  // another caller loaded it meanwhile
  return commit(*impl_, module, std::move(inst), Flavor::kFile, w.kills());
}

namespace {

// Erlang's `{error, [{Module, What}]}` for a multi-module load: each module's Status, the
// first one (its module named) as the whole call's.
MultiLoadResult failed(std::vector<FailedModule> failures) {
  MultiLoadResult result;
  if (failures.empty()) return result;
  const FailedModule& first = failures.front();
  result.status = first.status.with_context(first.module.empty() ? "prepared code" : first.module);
  result.failed = std::move(failures);
  return result;
}

FailedModule failure(std::string module, std::string_view reason, std::string message) {
  return FailedModule{std::move(module), detail::load_error(reason, std::move(message))};
}

}  // namespace

PrepareResult CodeServer::prepare_loading(const std::vector<LoadItem>& items) {
  std::vector<FailedModule> errors;
  std::map<std::string, int> seen;
  for (const auto& item : items) ++seen[item.module];
  for (const auto& [module, count] : seen) {
    if (count > 1) errors.push_back(failure(module, reason::kDuplicated, "listed more than once"));
  }
  if (!errors.empty()) return {failed(std::move(errors)), Prepared()};

  Prepared prepared;
  for (const auto& item : items) {
    auto inst = item.bytes
                    ? detail::Access::prepare_instance(item.module, item.origin.value_or(""), *item.bytes)
                    : prepare_from_path(*impl_, item.module);
    if (!inst) {
      errors.push_back(FailedModule{item.module, std::move(inst.error())});
      continue;
    }
    prepared.instances_.push_back(std::move(*inst));
  }
  if (!errors.empty()) return {failed(std::move(errors)), Prepared()};
  for (const auto& inst : prepared.instances_) {
    if (inst->has_on_load()) {
      errors.push_back(
          failure(inst->module(), reason::kOnLoadNotAllowed, "the module has an -on_load function"));
    }
  }
  if (!errors.empty()) return {failed(std::move(errors)), Prepared()};
  prepared.used_ = false;
  return {MultiLoadResult{}, std::move(prepared)};
}

MultiLoadResult CodeServer::finish_loading(Prepared& prepared) {
  if (prepared.used_) return failed({failure("", reason::kBadarg, "the prepared code was used before")});
  prepared.used_ = true;
  Writer w(impl_->mutex);
  std::vector<FailedModule> errors;
  std::vector<ModuleEntry*> entries;
  for (const auto& inst : prepared.instances_) {
    ModuleEntry* e = impl_->find_or_add(inst->module());
    entries.push_back(e);
    if (e->cur && impl_->sticky.count(e->name) != 0) {
      errors.push_back(failure(e->name, reason::kStickyDirectory, "the module is loaded and sticky"));
    }
  }
  if (!errors.empty()) return failed(std::move(errors));
  for (ModuleEntry* e : entries) {
    if (e->cur && e->old) errors.push_back(failure(e->name, reason::kNotPurged, "the module has old code"));
  }
  if (!errors.empty()) return failed(std::move(errors));
  for (std::size_t i = 0; i < entries.size(); ++i)
    install(*impl_, *entries[i], std::move(prepared.instances_[i]));
  prepared.instances_.clear();
  return {};
}

MultiLoadResult CodeServer::atomic_load(const std::vector<LoadItem>& items) {
  auto prepared = prepare_loading(items);
  if (!prepared) return prepared;  // moved, sliced to its MultiLoadResult
  return finish_loading(prepared.prepared);
}

MultiLoadResult CodeServer::boot(const std::vector<std::string>& modules) {
  for (const auto& m : modules) {
    if (auto r = load_file(m); !r) return failed({FailedModule{m, std::move(r.error())}});
  }
  return {};
}

bool CodeServer::delete_module(std::string_view module) {
  Writer w(impl_->mutex);
  ModuleEntry* e = impl_->find(module);
  if (e == nullptr || !e->known || e->old) return false;  // OTP: never loaded, or must purge first
  if (!e->cur) return true;                               // known, no code at all (OTP)
  e->old = std::move(e->cur);
  CodeServer::Impl::set_current(*e, nullptr);
  record(*impl_, "delete", e->name, e->old->vsn_text());
  return true;
}

PurgeResult CodeServer::purge(std::string_view module) {
  Writer w(impl_->mutex);
  ModuleEntry* e = impl_->find(module);
  if (e == nullptr) return {};
  return purge_old(*impl_, *e, w.kills());
}

SoftPurgeResult CodeServer::soft_purge(std::string_view module) {
  Writer w(impl_->mutex);
  ModuleEntry* e = impl_->find(module);
  if (e == nullptr) return {};
  return soft_purge_old(*impl_, *e);
}

bool CodeServer::check_old_code(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  return e != nullptr && e->old != nullptr;
}

bool CodeServer::check_process_code(const Process& process, std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  return e != nullptr && e->old != nullptr && process.in_instance(e->old.get());
}

std::optional<std::string> CodeServer::is_loaded(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  if (e == nullptr || !e->cur) return std::nullopt;
  return e->cur->origin();
}

std::vector<std::pair<std::string, std::string>> CodeServer::all_loaded() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : impl_->entries) {
    if (e->cur) out.emplace_back(e->name, e->cur->origin());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<AvailableModule> CodeServer::all_available() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::map<std::string, AvailableModule> by_name;
  for (const auto& e : impl_->entries) {
    if (e->cur) by_name.emplace(e->name, AvailableModule{e->name, e->cur->origin(), true});
  }
  if (impl_->options.mode == Mode::kInteractive) {  // embedded: loaded modules only (OTP)
    for (const auto& entry : impl_->path.entries()) {
      auto names = impl_->path.list(entry);
      if (!names) continue;
      for (const auto& m : *names) by_name.emplace(m, AvailableModule{m, entry.file_of(m), false});
    }
  }
  std::vector<AvailableModule> out;
  out.reserve(by_name.size());
  for (auto& [name, available] : by_name) out.push_back(std::move(available));
  return out;
}

std::optional<std::string> CodeServer::which(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  if (e != nullptr && e->cur) return e->cur->origin();
  if (!valid_module_name(module)) return std::nullopt;
  return impl_->path.where_is_file(std::string(module) + ".beam");
}

std::optional<ObjectCode> CodeServer::get_object_code(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto found = impl_->path.find(module, LibRead::kBytes);
  if (!found || !*found) return std::nullopt;
  return ObjectCode{std::string(module), *(*found)->bytes, std::move((*found)->origin)};
}

ModuleStatus CodeServer::module_status(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  if (e == nullptr || !e->cur) return ModuleStatus::kNotLoaded;
  if (e->cur->origin().empty()) return ModuleStatus::kLoaded;
  // A store lib answers from its md5 column: no image is read.
  auto found = impl_->path.find(module);
  // A store that cannot be read cannot show the loaded code current: modified, as an
  // unreadable image is (OTP); not removed, which it may well not be.
  if (!found) return ModuleStatus::kModified;
  if (!*found) return ModuleStatus::kRemoved;
  // An unreadable image counts as modified (OTP).
  return path_md5(**found) == image::md5_hex(e->cur->md5()) ? ModuleStatus::kLoaded : ModuleStatus::kModified;
}

std::vector<std::string> CodeServer::modified_modules() const {
  std::vector<std::string> out;
  for (const auto& [module, origin] : all_loaded()) {
    if (module_status(module) == ModuleStatus::kModified) out.push_back(module);
  }
  return out;
}

bool CodeServer::is_sticky(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  return e != nullptr && e->cur && impl_->sticky.count(module) != 0;
}

void CodeServer::stick_mod(std::string_view module) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->sticky.emplace(module);
}

void CodeServer::unstick_mod(std::string_view module) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto it = impl_->sticky.find(module); it != impl_->sticky.end()) impl_->sticky.erase(it);
}

bool CodeServer::stick_dir(std::string_view dir) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto names = impl_->path.list(dir);
  if (!names) return false;
  impl_->sticky.insert(names->begin(), names->end());
  return true;
}

bool CodeServer::unstick_dir(std::string_view dir) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto names = impl_->path.list(dir);
  if (!names) return false;
  for (const auto& n : *names) impl_->sticky.erase(n);
  return true;
}

std::vector<std::string> CodeServer::get_path() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.dirs();
}

Status CodeServer::set_path(const std::vector<std::string>& dirs) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.set(dirs);
}

Status CodeServer::add_pathz(std::string_view dir) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.add_z(dir);
}

Status CodeServer::add_patha(std::string_view dir) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.add_a(dir);
}

void CodeServer::add_pathsz(const std::vector<std::string>& dirs) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (const auto& d : dirs) (void)impl_->path.add_z(d);  // invalid ones are skipped (OTP)
}

void CodeServer::add_pathsa(const std::vector<std::string>& dirs) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (const auto& d : dirs) (void)impl_->path.add_a(d);
}

bool CodeServer::del_path(std::string_view name_or_dir) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.del(name_or_dir);
}

Status CodeServer::replace_path(std::string_view name, std::string_view dir) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.replace(name, dir);
}

std::optional<std::string> CodeServer::where_is_file(std::string_view file_name) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.where_is_file(file_name);
}

std::vector<Clash> CodeServer::clash() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.clash();
}

std::optional<std::string> CodeServer::lib_dir(std::string_view app) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->path.lib_dir(app);
}

std::optional<std::string> CodeServer::priv_dir(std::string_view app) const {
  auto dir = lib_dir(app);
  if (dir) *dir += "/priv";
  return dir;
}

std::shared_ptr<Process> CodeServer::spawn(std::string name, KillCallback on_kill) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::shared_ptr<Process> p(
      new ProcessImpl(this, impl_.get(), impl_->next_pid++, std::move(name), std::move(on_kill)));
  impl_->processes.push_back(p);
  return p;
}

SyncReport CodeServer::sync(SyncPolicy policy) {
  SyncReport report;
  // 1. Under the lock: which loaded modules' first path match is a store lib whose active
  // version has another MD5. One refresh for all; then each module is a lookup in what the
  // store reader cached under the store's generation, and no image is read.
  struct Stale {
    ModuleEntry* entry;
    std::shared_ptr<Instance> was;  // the current instance compared
    detail::CodePath::Found found;
    Prepare inst;
  };
  std::vector<Stale> stale;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    Status fresh = impl_->path.refresh_libs();
    auto tables = fresh ? impl_->path.lib_tables()
                        : Result<std::vector<std::shared_ptr<const LibModules>>>(tl::unexpected(fresh));
    for (const auto& e : impl_->entries) {
      if (!e->cur) continue;
      if (!tables) {
        report.failed.push_back(FailedModule{e->name, tables.error()});  // the store's Status
        continue;
      }
      const ModuleSummary* row = impl_->path.first_in_lib(e->name, *tables);
      if (row == nullptr || same_md5(e->cur->md5(), row->md5)) continue;  // the common case
      // Changed: the new version's row (the only lookup of one module here).
      auto found = impl_->path.find(e->name, LibRead::kMeta, /*refresh=*/false);
      if (!found) {
        report.failed.push_back(FailedModule{e->name, std::move(found.error())});
        continue;
      }
      if (!*found) continue;
      stale.push_back(Stale{e.get(), e->cur, std::move(**found), Prepare{}});  // set in 2.
    }
  }
  // 2. Outside the lock: validate the new images.
  for (Stale& s : stale) s.inst = prepare_found(*impl_, s.entry->name, s.found);
  // 3. Under the lock: load them, unless a module was loaded anew meanwhile (that load
  // stands; the next sync looks again).
  Writer w(impl_->mutex);
  for (Stale& s : stale) {
    ModuleEntry* e = s.entry;
    if (e->cur != s.was) continue;
    if (!s.inst) {
      report.failed.push_back(FailedModule{e->name, std::move(s.inst.error())});
      continue;
    }
    SyncReport::Change change{e->name, e->cur->vsn_text(), (*s.inst)->vsn_text(), {}};
    if (policy == SyncPolicy::kSoft) {
      if (!soft_purge_old(*impl_, *e).ok) {
        report.left_in_use.push_back(e->name);
        continue;
      }
    } else {
      change.killed = purge_old(*impl_, *e, w.kills()).processes;
    }
    if (auto r = load_prepared(*impl_, *e, std::move(*s.inst), Flavor::kBinary, w.kills()); !r) {
      report.failed.push_back(FailedModule{e->name, std::move(r.error())});
      continue;
    }
    record(*impl_, "sync", e->name, change.from_vsn + " -> " + change.to_vsn);
    report.changed.push_back(std::move(change));
  }
  return report;
}

}  // namespace codestore::loader

#include <codestore/code_server.h>

#include <algorithm>
#include <map>

#include "code_server_impl.h"
#include "epoch.h"

namespace codestore::loader {

using detail::ModuleEntry;
using detail::NameTable;

std::string_view mode_name(Mode mode) noexcept {
  return mode == Mode::kEmbedded ? "embedded" : "interactive";
}

std::string_view error_name(LoadError error) noexcept {
  switch (error) {
    case LoadError::kNofile: return "nofile";
    case LoadError::kBadfile: return "badfile";
    case LoadError::kNotPurged: return "not_purged";
    case LoadError::kStickyDirectory: return "sticky_directory";
    case LoadError::kEmbedded: return "embedded";
    case LoadError::kOnLoadFailure: return "on_load_failure";
    case LoadError::kOnLoadNotAllowed: return "on_load_not_allowed";
    case LoadError::kDuplicated: return "duplicated";
    case LoadError::kBadarg: return "badarg";
  }
  return "badarg";
}

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
  std::call_once(md5_once_, [this] {
    // Cannot fail here: the strict MD5 fails only on a FunT whose size is not 4 + 24 * n,
    // which check_loadable refuses (prepare_instance made this instance only if loadable).
    if (auto md5 = image_.md5()) md5_ = *md5;
  });
  return md5_;
}

bool Instance::exports_function(std::string_view function, std::uint32_t arity) const {
  return std::any_of(exports_.begin(), exports_.end(),
                     [&](const image::Function& f) { return f.arity == arity && f.name == function; });
}

// --- Impl ------------------------------------------------------------------------------

detail::ModuleEntry* CodeServer::Impl::find_or_add(std::string_view name) {
  if (ModuleEntry* e = find(name)) return e;
  auto entry = std::make_unique<ModuleEntry>();
  entry->name = std::string(name);
  entry->hash = detail::hash_name(name);
  NameTable* t = table.load(std::memory_order_relaxed);
  auto insert = [](NameTable* into, ModuleEntry* e) {
    std::size_t i = e->hash & into->mask;
    while (into->cells[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & into->mask;
    into->cells[i].store(e, std::memory_order_release);
    ++into->used;
  };
  if ((t->used + 1) * 2 > t->mask + 1) {  // keep the load factor at most 1/2
    auto bigger = std::make_unique<NameTable>((t->mask + 1) * 2);
    for (std::size_t i = 0; i <= t->mask; ++i) {
      if (ModuleEntry* e = t->cells[i].load(std::memory_order_relaxed)) insert(bigger.get(), e);
    }
    t = bigger.get();
    tables.push_back(std::move(bigger));
    table.store(t, std::memory_order_release);
  }
  insert(t, entry.get());
  entries.push_back(std::move(entry));
  return entries.back().get();
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

tl::unexpected<LoadFailure> fail(LoadError reason, std::string detail = {}) {
  return tl::unexpected<LoadFailure>(LoadFailure{reason, std::move(detail)});
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

// The implementation's access to Instance and Process internals.
struct Access {
  // Everything the loader needs from an image, checked the way erlang:prepare_loading/2
  // does. Touches nothing shared, so it needs no lock.
  static tl::expected<std::shared_ptr<Instance>, LoadFailure> prepare_instance(std::string_view module,
                                                                               std::string_view origin,
                                                                               image::Bytes bytes) {
    auto img = image::Image::parse(bytes, image::Strictness::kStrict, origin);
    if (!img) return fail(LoadError::kBadfile, img.error().to_string());
    auto verdict = img->check_loadable();
    if (!verdict.loadable) return fail(LoadError::kBadfile, verdict.reason);
    auto name = img->module();
    if (!name) return fail(LoadError::kBadfile, name.error().to_string());
    if (*name != module) return fail(LoadError::kBadfile, "module name in object code is " + *name);
    // OTP's loader reads only AtU8, Code, ImpT, ExpT and, when present, StrT, FunT, LitT
    // (docs/image-format.md "Which chunks the VM loader needs"): Attr is optional, and the
    // vsn with it. An Attr that decodes but has no readable vsn loads without one (so does
    // code:load_binary); one that does not decode was refused by check_loadable already.
    auto vsn = img->vsn();
    auto exports = img->exports();
    if (!exports) return fail(LoadError::kBadfile, exports.error().to_string());

    std::shared_ptr<Instance> inst(new Instance(std::move(*img)));
    inst->module_ = *name;
    inst->origin_ = std::string(origin);
    inst->has_vsn_ = vsn.has_value();
    inst->vsn_ = vsn ? std::move(*vsn) : etf::Term::atom("undefined");
    inst->vsn_text_ = etf::format_w(inst->vsn_);
    inst->exports_ = std::move(*exports);
    inst->has_on_load_ = verdict.on_load;
    return inst;
  }

  // Who has a frame in `old`. Marks it retiring first, so that an enter racing this scan
  // either is seen here or sees the mark (docs/code-server.md §5). With `kill`, each one is
  // marked killed, its frames released, and its callback queued.
  static std::vector<std::shared_ptr<Process>> scan_lingering(CodeServer::Impl& impl, const Instance* old,
                                                              bool kill, PendingKills& kills) {
    old->retiring_.store(true, std::memory_order_release);
    std::vector<std::shared_ptr<Process>> lingering;
    for (auto& p : impl.live_processes()) {
      std::lock_guard<std::mutex> lock(p->mutex_);
      if (std::find(p->frames_.begin(), p->frames_.end(), old) == p->frames_.end()) continue;
      if (kill) {
        p->state_ = Process::State::kKilled;
        // The frames stop pinning, but their instances stay alive with the Process object
        // until the host's thread has noticed (header: "nothing dangles").
        for (const Instance* f : p->frames_) {
          if (auto owned = f->weak_from_this().lock()) p->released_.push_back(std::move(owned));
        }
        p->frames_.clear();
        kills.emplace_back(p->on_kill_, p->id());
      }
      lingering.push_back(p);
    }
    return lingering;
  }

  static void clear_retiring(const Instance* inst) {
    inst->retiring_.store(false, std::memory_order_release);
  }
  static void set_serial(Instance& inst, std::uint64_t serial) { inst.serial_ = serial; }
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
  entry.current.store(entry.cur.get(), std::memory_order_release);
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
    detail::Access::clear_retiring(entry.old.get());
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

LoadResult load_prepared(CodeServer::Impl& impl, ModuleEntry& entry, std::shared_ptr<Instance> inst,
                         Flavor flavor, PendingKills& kills) {
  if (entry.cur && entry.old) {
    if (flavor == Flavor::kFile) return fail(LoadError::kNotPurged, entry.name);
    purge_old(impl, entry, kills);
  }
  if (inst->has_on_load() && impl.options.on_load && !impl.options.on_load(*inst)) {
    // The instance never became current, so nobody can be in it: dropping it is the purge.
    return fail(LoadError::kOnLoadFailure, entry.name);
  }
  install(impl, entry, std::move(inst));
  return {};
}

// The checks in OTP 25's order for load_file (sticky before badfile), then the load. Every
// refusal comes before anything changes.
LoadResult load_bytes(CodeServer::Impl& impl, std::string_view module, std::string_view origin,
                      image::Bytes bytes, Flavor flavor, PendingKills& kills) {
  ModuleEntry* entry = impl.find_or_add(module);
  if (entry->cur && impl.sticky.count(module) != 0)
    return fail(LoadError::kStickyDirectory, std::string(module));
  auto inst = detail::Access::prepare_instance(module, origin, bytes);
  if (!inst) return tl::unexpected(inst.error());
  return load_prepared(impl, *entry, std::move(*inst), flavor, kills);
}

// beam_lib:md5/1 of what the path gives now (lenient, as beam_lib reads); nullopt when it
// does not parse.
std::optional<image::Md5> path_md5(const detail::CodePath::Found& found) {
  auto img = image::Image::parse(found.bytes, image::Strictness::kLenient, found.origin);
  if (!img) return std::nullopt;
  auto md5 = img->md5();
  return md5 ? std::optional<image::Md5>(*md5) : std::nullopt;
}

LoadResult load_from_path(CodeServer::Impl& impl, std::string_view module, PendingKills& kills) {
  auto found = impl.path.find(module);
  if (!found) return fail(LoadError::kNofile, std::string(module));
  return load_bytes(impl, module, found->origin, found->bytes, Flavor::kFile, kills);
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
  impl->tables.push_back(std::make_unique<NameTable>(64));
  impl->table.store(impl->tables.back().get(), std::memory_order_release);
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

LoadResult CodeServer::load_file(std::string_view module) {
  Writer w(impl_->mutex);
  return load_from_path(*impl_, module, w.kills());
}

LoadResult CodeServer::load_abs(std::string_view file) {
  std::string path(file);
  if (!std::string_view(path).ends_with(".beam")) path += ".beam";
  std::string module = base_module(path);
  if (!valid_module_name(module)) return fail(LoadError::kBadarg, path);
  Writer w(impl_->mutex);
  auto bytes = detail::read_file(path);
  if (!bytes) return fail(LoadError::kNofile, path);
  return load_bytes(*impl_, module, path, *bytes, Flavor::kFile, w.kills());
}

LoadResult CodeServer::load_binary(std::string_view module, std::string_view origin, image::Bytes bytes) {
  if (!valid_module_name(module)) return fail(LoadError::kBadarg, std::string(module));
  Writer w(impl_->mutex);
  return load_bytes(*impl_, module, origin, bytes, Flavor::kBinary, w.kills());
}

LoadResult CodeServer::ensure_loaded(std::string_view module) {
  if (impl_->lookup_current(module) != nullptr) return {};  // OTP answers without the server
  Writer w(impl_->mutex);
  if (impl_->lookup_current(module) != nullptr) return {};
  if (impl_->options.mode == Mode::kEmbedded) return fail(LoadError::kEmbedded, std::string(module));
  return load_from_path(*impl_, module, w.kills());
}

tl::expected<Prepared, std::vector<ModuleError>> CodeServer::prepare_loading(
    const std::vector<LoadItem>& items) {
  std::vector<ModuleError> errors;
  std::map<std::string, int> seen;
  for (const auto& item : items) ++seen[item.module];
  for (const auto& [module, count] : seen) {
    if (count > 1) errors.push_back({module, LoadError::kDuplicated});
  }
  if (!errors.empty()) return tl::unexpected(errors);

  Prepared prepared;
  for (const auto& item : items) {
    std::vector<std::uint8_t> bytes;
    std::string origin;
    if (item.bytes) {
      bytes = *item.bytes;
      origin = item.origin.value_or("");
    } else {
      std::lock_guard<std::mutex> lock(impl_->mutex);  // the path only
      auto found = impl_->path.find(item.module);
      if (!found) {
        errors.push_back({item.module, LoadError::kNofile});
        continue;
      }
      bytes = std::move(found->bytes);
      origin = std::move(found->origin);
    }
    auto inst = detail::Access::prepare_instance(item.module, origin, bytes);
    if (!inst) {
      errors.push_back(ModuleError{item.module, inst.error().reason});
      continue;
    }
    prepared.instances_.push_back(std::move(*inst));
  }
  if (!errors.empty()) return tl::unexpected(errors);
  for (const auto& inst : prepared.instances_) {
    if (inst->has_on_load()) errors.push_back({inst->module(), LoadError::kOnLoadNotAllowed});
  }
  if (!errors.empty()) return tl::unexpected(errors);
  prepared.used_ = false;
  return prepared;
}

MultiLoadResult CodeServer::finish_loading(Prepared& prepared) {
  if (prepared.used_) return tl::unexpected(std::vector<ModuleError>{{"", LoadError::kBadarg}});
  prepared.used_ = true;
  Writer w(impl_->mutex);
  std::vector<ModuleError> errors;
  std::vector<ModuleEntry*> entries;
  for (const auto& inst : prepared.instances_) {
    ModuleEntry* e = impl_->find_or_add(inst->module());
    entries.push_back(e);
    if (e->cur && impl_->sticky.count(e->name) != 0) errors.push_back({e->name, LoadError::kStickyDirectory});
  }
  if (!errors.empty()) return tl::unexpected(errors);
  for (ModuleEntry* e : entries) {
    if (e->cur && e->old) errors.push_back({e->name, LoadError::kNotPurged});
  }
  if (!errors.empty()) return tl::unexpected(errors);
  for (std::size_t i = 0; i < entries.size(); ++i)
    install(*impl_, *entries[i], std::move(prepared.instances_[i]));
  prepared.instances_.clear();
  return {};
}

MultiLoadResult CodeServer::atomic_load(const std::vector<LoadItem>& items) {
  auto prepared = prepare_loading(items);
  if (!prepared) return tl::unexpected(prepared.error());
  return finish_loading(*prepared);
}

MultiLoadResult CodeServer::boot(const std::vector<std::string>& modules) {
  for (const auto& m : modules) {
    if (auto r = load_file(m); !r) return tl::unexpected(std::vector<ModuleError>{{m, r.error().reason}});
  }
  return {};
}

bool CodeServer::delete_module(std::string_view module) {
  Writer w(impl_->mutex);
  ModuleEntry* e = impl_->find(module);
  if (e == nullptr || !e->known || e->old) return false;  // OTP: never loaded, or must purge first
  if (!e->cur) return true;                               // known, no code at all (OTP)
  e->old = std::move(e->cur);
  e->current.store(nullptr, std::memory_order_release);
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
  auto found = impl_->path.find(module);
  if (!found) return std::nullopt;
  return ObjectCode{std::string(module), std::move(found->bytes), std::move(found->origin)};
}

ModuleStatus CodeServer::module_status(std::string_view module) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const ModuleEntry* e = impl_->find(module);
  if (e == nullptr || !e->cur) return ModuleStatus::kNotLoaded;
  if (e->cur->origin().empty()) return ModuleStatus::kLoaded;
  auto found = impl_->path.find(module);
  if (!found) return ModuleStatus::kRemoved;
  // An unreadable image counts as modified (OTP).
  return path_md5(*found) == e->cur->md5() ? ModuleStatus::kLoaded : ModuleStatus::kModified;
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
  std::shared_ptr<Process> p(new Process(this, impl_->next_pid++, std::move(name), std::move(on_kill)));
  impl_->processes.push_back(p);
  return p;
}

SyncReport CodeServer::sync(SyncPolicy policy) {
  Writer w(impl_->mutex);
  SyncReport report;
  for (const auto& e : impl_->entries) {
    if (!e->cur) continue;
    auto found = impl_->path.find(e->name);
    if (!found || !found->entry->is_lib()) continue;
    if (path_md5(*found) == e->cur->md5()) continue;  // the common case: nothing to validate
    auto inst = detail::Access::prepare_instance(e->name, found->origin, found->bytes);
    if (!inst) {
      report.failed.push_back(ModuleError{e->name, inst.error().reason});
      continue;
    }
    SyncReport::Change change{e->name, e->cur->vsn_text(), (*inst)->vsn_text(), {}};
    if (policy == SyncPolicy::kSoft) {
      if (!soft_purge_old(*impl_, *e).ok) {
        report.left_in_use.push_back(e->name);
        continue;
      }
    } else {
      change.killed = purge_old(*impl_, *e, w.kills()).processes;
    }
    if (auto r = load_prepared(*impl_, *e, std::move(*inst), Flavor::kBinary, w.kills()); !r) {
      report.failed.push_back(ModuleError{e->name, r.error().reason});
      continue;
    }
    record(*impl_, "sync", e->name, change.from_vsn + " -> " + change.to_vsn);
    report.changed.push_back(std::move(change));
  }
  return report;
}

}  // namespace codestore::loader

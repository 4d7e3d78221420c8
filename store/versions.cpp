// Modules and their versions: lookups, the reads of metadata, and the version state machine
// (activate, rollback, delete; docs/store.md).
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>

#include "base/hex.h"
#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::mv;
using store_internal::now;

std::optional<Store::Impl::ModuleRow> Store::Impl::module_row(std::string_view name) {
  auto& s =
      stmt("SELECT high_water, active_version, active_since, previous_version FROM modules WHERE name = ?");
  Done done{s};
  s.bind(1, name);
  if (!s.step()) return std::nullopt;
  return ModuleRow{s.int64(0), s.int64(1), s.int64(2), s.int64(3)};
}

Store::Impl::ModuleRow Store::Impl::require_module(std::string_view name) {
  auto row = module_row(name);
  if (!row || !version_exists_any(name)) fail(Code::kNotFound, fmt::format("unknown module {}", name));
  return *row;
}

bool Store::Impl::version_exists_any(std::string_view name) {
  auto& s = stmt("SELECT 1 FROM versions WHERE module = ? LIMIT 1");
  Done done{s};
  s.bind(1, name);
  return s.step();
}

bool Store::Impl::version_exists(std::string_view name, std::int64_t version) {
  auto& s = stmt("SELECT 1 FROM versions WHERE module = ? AND version = ?");
  Done done{s};
  s.bind(1, name);
  s.bind(2, version);
  return s.step();
}

void Store::Impl::require_version_number(std::int64_t version) {
  if (version < 1)
    fail(Code::kInvalidArgument, fmt::format("version {}: versions are whole numbers from 1", version));
}

void Store::Impl::require_version(std::string_view name, std::int64_t version) {
  if (version_exists(name, version)) return;
  require_module(name);
  fail(Code::kNotFound, fmt::format("module {} has no version {}", name, version));
}

void Store::Impl::step_version_row(db::Statement& s, std::string_view name, std::int64_t version) {
  s.bind(1, name);
  s.bind(2, version);
  if (s.step()) return;
  s.reset();
  require_version(name, version);
  fail(Code::kNotFound, mv(name, version));
}

ModuleVersion Store::Impl::version_of(db::Statement& s) {
  ModuleVersion v;
  v.module = s.text(0);
  v.version = s.int64(1);
  v.lib = s.text(2);
  v.md5 = s.text(3);
  v.vsn = s.text(4);
  v.sha256 = base::hex(s.blob(5));
  v.raw_size = static_cast<std::uint64_t>(s.int64(6));
  v.stored_size = static_cast<std::uint64_t>(s.int64(7));
  v.origin = s.text(8);
  v.note = s.text(9);
  v.warning = s.text(10);
  v.imported_at = s.int64(11);
  v.active = s.int64(12) != 0;
  v.active_since = v.active ? s.int64(13) : 0;
  v.rollback_target = s.int64(14) != 0;
  v.load_verdict = store_internal::load_verdict_of(s.int64(15));
  return v;
}

ModuleVersion Store::Impl::info(std::string_view name, std::int64_t version) {
  static const std::string sql =
      std::string("SELECT ") + kVersionColumns + "WHERE v.module = ? AND v.version = ?";
  auto& s = stmt(sql.c_str());
  Done done{s};
  step_version_row(s, name, version);
  return version_of(s);
}

Activation Store::Impl::set_active(std::string_view name, std::int64_t to, std::string_view action,
                                   std::string_view reason) {
  const ModuleRow row = require_module(name);
  if (to != 0) require_version(name, to);
  Activation a{std::string(name), row.active, to};
  if (row.active == to) return a;
  auto& s =
      stmt("UPDATE modules SET previous_version = ?, active_version = ?, active_since = ? WHERE name = ?");
  s.bind(1, row.active);
  s.bind(2, to);
  s.bind(3, to != 0 ? now() : 0);
  s.bind(4, name);
  s.exec();
  event(action, name, row.active, to, reason);
  return a;
}

std::vector<ModuleSummary> Store::Impl::summaries(const std::string* lib) {
  static const std::string base =
      "SELECT m.name, m.active_version, coalesce(av.lib, ''), coalesce(av.md5, ''), "
      "(SELECT count(*) FROM versions c WHERE c.module = m.name), "
      "(SELECT max(version) FROM versions c WHERE c.module = m.name), m.active_since "
      "FROM modules m LEFT JOIN versions av ON av.module = m.name AND av.version = m.active_version "
      "WHERE EXISTS (SELECT 1 FROM versions c WHERE c.module = m.name) ";
  static const std::string all = base + "ORDER BY m.name";
  static const std::string by_lib = base + "AND av.lib = ? ORDER BY m.name";
  auto& s = stmt(lib == nullptr ? all.c_str() : by_lib.c_str());
  Done done{s};
  if (lib != nullptr) s.bind(1, *lib);
  std::vector<ModuleSummary> out;
  while (s.step()) {
    ModuleSummary m;
    m.module = s.text(0);
    m.active_version = s.int64(1);
    m.lib = s.text(2);
    m.md5 = s.text(3);
    m.versions = s.int64(4);
    m.latest_version = s.int64(5);
    m.active_since = m.active_version != 0 ? s.int64(6) : 0;
    out.push_back(std::move(m));
  }
  return out;
}

// --- read ------------------------------------------------------------------------------------

Result<ModuleVersion> Store::active_info(std::string_view module) {
  return impl_->call([&] { return fmt::format("active {}", module); },
                     [&]() -> Result<ModuleVersion> {
                       // One read transaction: a rollback committed between the two reads would otherwise
                       // give the metadata of a version that is no longer active.
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       const auto row = impl_->require_module(module);
                       if (row.active == 0)
                         fail(Code::kNotFound, fmt::format("module {} has no active version", module));
                       return impl_->info(module, row.active);
                     });
}

Result<ModuleImage> Store::active(std::string_view module) {
  return impl_->call([&] { return fmt::format("active {}", module); },
                     [&]() -> Result<ModuleImage> {
                       // One read transaction, so that metadata and bytes are of the same version.
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       const auto row = impl_->require_module(module);
                       if (row.active == 0)
                         fail(Code::kNotFound, fmt::format("module {} has no active version", module));
                       ModuleImage img;
                       img.info = impl_->info(module, row.active);
                       img.bytes = impl_->bytes(module, row.active, false);
                       return img;
                     });
}

Result<ModuleVersion> Store::version_info(std::string_view module, std::int64_t version) {
  return impl_->call([&] { return fmt::format("version {}", mv(module, version)); },
                     [&]() -> Result<ModuleVersion> { return impl_->info(module, version); });
}

Result<std::vector<ModuleVersion>> Store::versions(std::string_view module) {
  return impl_->call([&] { return fmt::format("versions {}", module); },
                     [&]() -> Result<std::vector<ModuleVersion>> {
                       static const std::string sql = std::string("SELECT ") + Impl::kVersionColumns +
                                                      "WHERE v.module = ? ORDER BY v.version";
                       auto& s = impl_->stmt(sql.c_str());
                       Impl::Done done{s};
                       s.bind(1, module);
                       std::vector<ModuleVersion> out;
                       while (s.step()) out.push_back(Impl::version_of(s));
                       if (out.empty()) fail(Code::kNotFound, fmt::format("unknown module {}", module));
                       return out;
                     });
}

Result<std::vector<ModuleSummary>> Store::list() {
  return impl_->call("list",
                     [&]() -> Result<std::vector<ModuleSummary>> { return impl_->summaries(nullptr); });
}

Result<std::vector<ModuleSummary>> Store::lib_modules(std::string_view lib) {
  return impl_->call([&] { return fmt::format("lib {}", lib); },
                     [&]() -> Result<std::vector<ModuleSummary>> {
                       const std::string l(lib);
                       return impl_->summaries(&l);
                     });
}

Result<std::vector<std::string>> Store::libs() {
  return impl_->call("libs", [&]() -> Result<std::vector<std::string>> {
    auto& s = impl_->stmt(
        "SELECT DISTINCT v.lib FROM modules m JOIN versions v ON v.module = m.name AND v.version = "
        "m.active_version "
        "WHERE v.lib != '' ORDER BY 1");
    Impl::Done done{s};
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  });
}

Result<std::vector<StoreEvent>> Store::history(std::string_view module, std::size_t limit) {
  return impl_->call("history", [&]() -> Result<std::vector<StoreEvent>> {
    auto& s = impl_->stmt(
        "SELECT id, time, action, module, from_version, to_version, reason FROM events "
        "WHERE (?1 = '' OR module = ?1) ORDER BY id DESC LIMIT ?2");
    Impl::Done done{s};
    s.bind(1, module);
    s.bind(2, limit == 0 || limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
                  ? std::numeric_limits<std::int64_t>::max()
                  : static_cast<std::int64_t>(limit));
    std::vector<StoreEvent> out;
    while (s.step())
      out.push_back({s.int64(0), s.int64(1), s.text(2), s.text(3), s.int64(4), s.int64(5), s.text(6)});
    std::reverse(out.begin(), out.end());
    return out;
  });
}

Result<std::uint64_t> Store::generation() {
  return impl_->call("generation", [&]() -> Result<std::uint64_t> {
    auto& s = impl_->stmt("SELECT value FROM meta WHERE key = 'generation'");
    Impl::Done done{s};
    if (!s.step()) fail(Code::kCorruption, "meta row 'generation' missing");
    return static_cast<std::uint64_t>(s.int64(0));
  });
}

// --- change ----------------------------------------------------------------------------------

Result<Activation> Store::activate(std::string_view module, std::int64_t version, Reason reason) {
  return impl_->call([&] { return fmt::format("activate {}", mv(module, version)); },
                     [&]() -> Result<Activation> {
                       impl_->require_writable("activate");
                       Impl::require_version_number(version);
                       Impl::WriteTx tx(*impl_);
                       Activation a = impl_->set_active(module, version, "activate", reason.text);
                       tx.commit(a.from_version != a.to_version);
                       return a;
                     });
}

Result<Activation> Store::rollback(std::string_view module, Reason reason) {
  return impl_->call([&] { return fmt::format("rollback {}", module); },
                     [&]() -> Result<Activation> {
                       impl_->require_writable("rollback");
                       Impl::WriteTx tx(*impl_);
                       const auto row = impl_->require_module(module);
                       if (row.previous == 0) {
                         fail(Code::kFailedPrecondition,
                              fmt::format("module {} has no previous version to roll back to", module));
                       }
                       Activation a = impl_->set_active(module, row.previous, "rollback", reason.text);
                       tx.commit();
                       return a;
                     });
}

Result<Activation> Store::rollback(std::string_view module, std::int64_t version, Reason reason) {
  return impl_->call([&] { return fmt::format("rollback {}", mv(module, version)); },
                     [&]() -> Result<Activation> {
                       impl_->require_writable("rollback");
                       Impl::require_version_number(version);
                       Impl::WriteTx tx(*impl_);
                       Activation a = impl_->set_active(module, version, "rollback", reason.text);
                       tx.commit(a.from_version != a.to_version);
                       return a;
                     });
}

Status Store::delete_version(std::string_view module, std::int64_t version, Reason reason) {
  return impl_->call(
      [&] { return fmt::format("delete {}", mv(module, version)); },
      [&]() -> Status {
        impl_->require_writable("delete");
        Impl::require_version_number(version);
        Impl::WriteTx tx(*impl_);
        impl_->require_version(module, version);
        const auto row = impl_->require_module(module);
        if (row.active == version) fail(Code::kFailedPrecondition, "it is the active version");
        if (row.previous == version)
          fail(Code::kFailedPrecondition, "it is the version a rollback returns to");
        std::vector<std::string> releases;
        {
          auto& s = impl_->stmt(
              "SELECT release FROM snapshot_modules WHERE module = ? AND version = ? ORDER BY release");
          Impl::Done done{s};
          s.bind(1, module);
          s.bind(2, version);
          while (s.step()) releases.push_back(s.text(0));
        }
        if (!releases.empty()) {
          fail(Code::kFailedPrecondition, fmt::format("release {} names it", fmt::join(releases, ", ")));
        }
        // Application versions and Erlang releases hold their module versions for good.
        std::vector<std::string> holders;
        {
          auto& s = impl_->stmt(
              "SELECT a.app || '@' || a.vsn || CASE WHEN a.revision > 1 THEN '#' || a.revision ELSE '' END "
              "FROM "
              "app_modules am JOIN app_versions a ON a.id = am.app_version WHERE am.module = ?1 AND "
              "am.version = "
              "?2 UNION ALL SELECT r.name || '@' || r.vsn FROM release_modules rm JOIN releases r ON r.id = "
              "rm.release WHERE rm.module = ?1 AND rm.version = ?2");
          Impl::Done done{s};
          s.bind(1, module);
          s.bind(2, version);
          while (s.step()) holders.push_back(s.text(0));
        }
        if (!holders.empty()) {
          fail(Code::kFailedPrecondition, fmt::format("{} holds it", fmt::join(holders, ", ")));
        }
        auto& s = impl_->stmt("DELETE FROM versions WHERE module = ? AND version = ?");
        s.bind(1, module);
        s.bind(2, version);
        s.exec();
        impl_->event("delete", module, version, 0, reason.text);
        tx.commit();
        return Status::ok();
      });
}

}  // namespace codestore

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

std::optional<Store::Impl::ModuleRow> Store::Impl::module_row(std::string_view name,
                                                              std::string_view channel) {
  auto& s = stmt(
      "SELECT m.high_water, coalesce(cm.version, 0), coalesce(cm.since, 0), coalesce(cm.previous, 0) "
      "FROM modules m LEFT JOIN channel_modules cm ON cm.channel = ?2 AND cm.module = m.name WHERE m.name = "
      "?1");
  Done done{s};
  s.bind(1, name);
  s.bind(2, channel);
  if (!s.step()) return std::nullopt;
  return ModuleRow{s.int64(0), s.int64(1), s.int64(2), s.int64(3)};
}

Store::Impl::ModuleRow Store::Impl::require_module(std::string_view name, std::string_view channel) {
  auto row = module_row(name, channel);
  if (!row || !version_exists_any(name)) fail(Code::kNotFound, fmt::format("unknown module {}", name));
  return *row;
}

Store::Impl::ModuleRow Store::Impl::require_active(std::string_view name) {
  const auto row = require_module(name);
  if (row.active == 0) {
    require_channel(options.channel);  // an unknown channel is named as such
    fail(Code::kNotFound, fmt::format("module {} has no active version", name));
  }
  return row;
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

void Store::Impl::step_version_row(db::Statement& s, std::string_view name, std::int64_t version, int first) {
  s.bind(first, name);
  s.bind(first + 1, version);
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
      std::string("SELECT ") + kVersionColumns + "WHERE v.module = ?2 AND v.version = ?3";
  auto& s = stmt(sql.c_str());
  Done done{s};
  s.bind(1, options.channel);
  step_version_row(s, name, version, 2);
  return version_of(s);
}

std::vector<ModuleSummary> Store::Impl::summaries(const std::string* lib) {
  static const std::string base =
      "SELECT m.name, coalesce(cm.version, 0), coalesce(av.lib, ''), coalesce(av.md5, ''), "
      "(SELECT count(*) FROM versions c WHERE c.module = m.name), "
      "(SELECT max(version) FROM versions c WHERE c.module = m.name), coalesce(cm.since, 0) "
      "FROM modules m LEFT JOIN channel_modules cm ON cm.channel = ?1 AND cm.module = m.name "
      "LEFT JOIN versions av ON av.module = m.name AND av.version = cm.version "
      "WHERE EXISTS (SELECT 1 FROM versions c WHERE c.module = m.name) ";
  static const std::string all = base + "ORDER BY m.name";
  static const std::string by_lib = base + "AND av.lib = ?2 ORDER BY m.name";
  require_channel(options.channel);
  auto& s = stmt(lib == nullptr ? all.c_str() : by_lib.c_str());
  Done done{s};
  s.bind(1, options.channel);
  if (lib != nullptr) s.bind(2, *lib);
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
                       const auto row = impl_->require_active(module);
                       return impl_->info(module, row.active);
                     });
}

Result<ModuleImage> Store::active(std::string_view module) {
  return impl_->call([&] { return fmt::format("active {}", module); },
                     [&]() -> Result<ModuleImage> {
                       // One read transaction, so that metadata and bytes are of the same version.
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       const auto row = impl_->require_active(module);
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
                                                      "WHERE v.module = ?2 ORDER BY v.version";
                       auto& s = impl_->stmt(sql.c_str());
                       Impl::Done done{s};
                       s.bind(1, impl_->options.channel);
                       s.bind(2, module);
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
    impl_->require_channel(impl_->options.channel);
    auto& s = impl_->stmt(
        "SELECT DISTINCT v.lib FROM channel_modules cm JOIN versions v ON v.module = cm.module AND v.version "
        "= "
        "cm.version WHERE cm.channel = ? AND v.lib != '' ORDER BY 1");
    Impl::Done done{s};
    s.bind(1, impl_->options.channel);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  });
}

Result<std::vector<StoreEvent>> Store::history(std::string_view module, std::size_t limit) {
  return impl_->call("history", [&]() -> Result<std::vector<StoreEvent>> {
    auto& s = impl_->stmt(
        "SELECT id, time, action, module, from_version, to_version, reason, channel FROM events "
        "WHERE (?1 = '' OR module = ?1) ORDER BY id DESC LIMIT ?2");
    Impl::Done done{s};
    s.bind(1, module);
    s.bind(2, limit == 0 || limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
                  ? std::numeric_limits<std::int64_t>::max()
                  : static_cast<std::int64_t>(limit));
    std::vector<StoreEvent> out;
    while (s.step())
      out.push_back(
          {s.int64(0), s.int64(1), s.text(2), s.text(3), s.int64(4), s.int64(5), s.text(6), s.text(7)});
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
// Each change is one ChannelChange of the handle's channel: one generation when the active
// set moved, none when it did not.

Result<Activation> Store::activate(std::string_view module, std::int64_t version, Reason reason) {
  return impl_->call([&] { return fmt::format("activate {}", mv(module, version)); },
                     [&]() -> Result<Activation> {
                       impl_->require_writable("activate");
                       Impl::require_version_number(version);
                       Impl::WriteTx tx(*impl_);
                       Impl::ChannelChange change(*impl_, impl_->options.channel);
                       Activation a = change.set_module(module, version, "activate", reason.text);
                       const bool moved = change.commit({.action = "activate", .reason = reason.text}) != 0;
                       tx.commit(moved);
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
                         impl_->require_channel(impl_->options.channel);
                         fail(Code::kFailedPrecondition,
                              fmt::format("module {} has no previous version to roll back to", module));
                       }
                       Impl::ChannelChange change(*impl_, impl_->options.channel);
                       Activation a = change.set_module(module, row.previous, "rollback", reason.text);
                       change.commit({.action = "rollback", .reason = reason.text});
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
                       Impl::ChannelChange change(*impl_, impl_->options.channel);
                       Activation a = change.set_module(module, version, "rollback", reason.text);
                       const bool moved = change.commit({.action = "rollback", .reason = reason.text}) != 0;
                       tx.commit(moved);
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
        // What a channel needs, in every channel: its active version, its rollback target, its
        // previous generation's version (channel rollback); then every snapshot's.
        const std::string& mine = impl_->options.channel;
        {
          auto& s = impl_->stmt(
              "SELECT channel, version = ?3 FROM channel_modules WHERE module = ?1 AND (version = ?2 OR "
              "previous = ?2) ORDER BY channel != ?4, channel");
          Impl::Done done{s};
          s.bind(1, module);
          s.bind(2, version);
          s.bind(3, version);
          s.bind(4, mine);
          if (s.step()) {
            const std::string channel = s.text(0);
            const bool active = s.int64(1) != 0;
            const std::string where = channel == mine ? "" : fmt::format(" in channel {}", channel);
            fail(Code::kFailedPrecondition, active ? "it is the active version" + where
                                                   : "it is the version a rollback returns to" + where);
          }
        }
        {
          auto& s = impl_->stmt(
              "SELECT c.name, c.previous FROM channels c JOIN generation_modules gm ON gm.channel = c.name "
              "WHERE c.previous > 0 AND gm.module = ? AND gm.version = ? AND gm.first <= c.previous "
              "AND (gm.until IS NULL OR gm.until > c.previous) ORDER BY c.name LIMIT 1");
          Impl::Done done{s};
          s.bind(1, module);
          s.bind(2, version);
          if (s.step()) {
            fail(Code::kFailedPrecondition,
                 fmt::format("channel {}'s rollback returns to it (generation {})", s.text(0), s.int64(1)));
          }
        }
        std::vector<std::string> releases;
        {
          auto& s = impl_->stmt(
              "SELECT g.label FROM generations g JOIN generation_modules gm ON gm.channel = g.channel "
              "WHERE g.label IS NOT NULL AND gm.module = ? AND gm.version = ? AND gm.first <= g.number "
              "AND (gm.until IS NULL OR gm.until > g.number) ORDER BY g.label");
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

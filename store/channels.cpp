// Channels and generations (docs/model.md, "Channels and generations"): ChannelChange, the one
// way a channel's content changes; the reads of channels, generations and what differs between
// two; channel rollback; and replace_channel, a deploy's change of a channel's whole content.
//
// A generation is kept as intervals (migrations/0004_channels_generations.sql): a row of
// generation_modules pins a version in generations [first, until) of its channel, so a change
// closes the rows of what moved and opens new ones, and what changed in generation K is the
// rows with first = K or until = K. channel_modules holds the current generation's pins (with
// each module's rollback target), kept in step in the same transaction.
#include <algorithm>
#include <limits>

#include "store_impl.h"

namespace codestore {

using store_internal::fail;
using store_internal::now;

namespace {

bool channel_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

std::int64_t sql_limit(std::size_t limit) {
  return limit == 0 || limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

// An application revision as people name it: "VSN", or "VSN#REV" after the first revision.
std::string app_label(const std::string& vsn, std::int64_t revision) {
  return revision > 1 ? fmt::format("{}#{}", vsn, revision) : vsn;
}

}  // namespace

// --- names and rows ----------------------------------------------------------------------------

void Store::Impl::require_channel_name(std::string_view channel) {
  const bool ok = !channel.empty() && channel.size() <= 128 && channel[0] != '.' && channel[0] != '-' &&
                  std::all_of(channel.begin(), channel.end(), channel_char);
  if (ok) return;
  std::string shown;
  for (const char c : channel.substr(0, 160)) {
    const auto u = static_cast<unsigned char>(c);
    shown += u >= 0x20 && u < 0x7f ? std::string(1, c) : fmt::format("\\x{:02x}", u);
  }
  fail(Code::kInvalidArgument,
       fmt::format("channel name '{}': a channel is named by 1 to 128 letters, digits, '.', '_' or '-', not "
                   "starting with '.' or '-'",
                   shown));
}

std::optional<Store::Impl::ChannelRow> Store::Impl::channel_row(std::string_view channel) {
  auto& s = stmt("SELECT generation, previous, created_at, candidate FROM channels WHERE name = ?");
  Done done{s};
  s.bind(1, channel);
  if (!s.step()) return std::nullopt;
  return ChannelRow{s.int64(0), s.int64(1), s.int64(2), s.int64(3)};
}

Store::Impl::ChannelRow Store::Impl::require_channel(std::string_view channel) {
  auto row = channel_row(channel);
  if (!row) fail(Code::kNotFound, fmt::format("unknown channel {}", channel));
  return *row;
}

std::vector<Store::Impl::Pin> Store::Impl::generation_pins(std::string_view channel, std::int64_t number) {
  const ChannelRow row = require_channel(channel);
  if (number == 0) number = row.generation;
  if (number < 0 || (number > row.generation && number != row.candidate))
    fail(Code::kNotFound, fmt::format("channel {} has no generation {}", channel, number));
  std::vector<Pin> out;
  const bool current = number == row.generation;
  // The current generation is channel_modules (by primary key); an older one, the interval rows.
  auto& s = current
                ? stmt(
                      "SELECT cm.module, cm.version, coalesce(v.md5, ''), coalesce(v.lib, '') FROM "
                      "channel_modules cm LEFT JOIN versions v ON v.module = cm.module AND v.version = "
                      "cm.version WHERE cm.channel = ?1 AND cm.version != 0 ORDER BY cm.module")
                : stmt(
                      "SELECT gm.module, gm.version, coalesce(v.md5, ''), coalesce(v.lib, '') FROM "
                      "generation_modules gm LEFT JOIN versions v ON v.module = gm.module AND v.version = "
                      "gm.version WHERE gm.channel = ?1 AND gm.first <= ?2 AND (gm.until IS NULL OR gm.until "
                      "> ?2) ORDER BY gm.module");
  Done done{s};
  s.bind(1, channel);
  if (!current) s.bind(2, number);
  while (s.step()) out.push_back({s.text(0), s.int64(1), s.text(2), s.text(3)});
  return out;
}

std::map<std::string, std::int64_t> Store::Impl::generation_app_pins(std::string_view channel,
                                                                     std::int64_t number) {
  const ChannelRow row = require_channel(channel);
  if (number == 0) number = row.generation;
  if (number < 0 || (number > row.generation && number != row.candidate))
    fail(Code::kNotFound, fmt::format("channel {} has no generation {}", channel, number));
  auto& s = stmt(
      "SELECT app, app_version FROM generation_apps WHERE channel = ?1 AND first <= ?2 AND (until IS NULL "
      "OR until > ?2)");
  Done done{s};
  s.bind(1, channel);
  s.bind(2, number);
  std::map<std::string, std::int64_t> out;
  while (s.step()) out[s.text(0)] = s.int64(1);
  return out;
}

std::int64_t Store::Impl::active_count(std::string_view channel) {
  auto& s = stmt("SELECT count(*) FROM channel_modules WHERE channel = ? AND version != 0");
  Done done{s};
  s.bind(1, channel);
  s.step();
  return s.int64(0);
}

std::pair<std::string, std::int64_t> Store::Impl::labelled_generation(std::string_view label) {
  auto& s = stmt("SELECT channel, number FROM generations WHERE label = ?");
  Done done{s};
  s.bind(1, label);
  if (!s.step()) fail(Code::kNotFound, fmt::format("unknown release {}", label));
  return {s.text(0), s.int64(1)};
}

namespace {

// "VSN" or "VSN#REV" of app_versions row `id` ("" for 0).
std::string app_version_label(Store::Impl& impl, std::int64_t id) {
  if (id == 0) return "";
  auto& s = impl.stmt("SELECT vsn, revision FROM app_versions WHERE id = ?");
  Store::Impl::Done done{s};
  s.bind(1, id);
  if (!s.step()) return fmt::format("#{}?", id);
  return app_label(s.text(0), s.int64(1));
}

// Merges two sorted maps of pins into changes: (key, before, after) for each key whose value
// differs.
template <typename Map, typename Emit>
void each_difference(const Map& before, const Map& after, Emit emit) {
  auto a = before.begin();
  auto b = after.begin();
  while (a != before.end() || b != after.end()) {
    if (b == after.end() || (a != before.end() && a->first < b->first)) {
      emit(a->first, a->second, typename Map::mapped_type{});
      ++a;
    } else if (a == before.end() || b->first < a->first) {
      emit(b->first, typename Map::mapped_type{}, b->second);
      ++b;
    } else {
      if (!(a->second == b->second)) emit(a->first, a->second, b->second);
      ++a;
      ++b;
    }
  }
}

}  // namespace

Generation Store::Impl::generation_info(std::string_view channel, std::int64_t number) {
  Generation g;
  g.channel = channel;
  g.number = number;
  {
    auto& s = stmt(
        "SELECT g.created_at, g.action, coalesce(g.release, 0), coalesce(g.label, ''), g.reason, "
        "coalesce(r.name || '@' || r.vsn, ''), g.apply_deadline_ms, g.apply_brutal, g.apply_force, "
        "g.apply_probe, CASE WHEN c.candidate = g.number THEN 1 ELSE 0 END FROM generations g "
        "JOIN channels c ON c.name = g.channel LEFT JOIN releases r ON r.id = g.release "
        "WHERE g.channel = ? AND g.number = ?");
    Done done{s};
    s.bind(1, channel);
    s.bind(2, number);
    if (!s.step()) fail(Code::kNotFound, fmt::format("channel {} has no generation {}", channel, number));
    g.created_at = s.int64(0);
    g.action = s.text(1);
    g.release_id = s.int64(2);
    g.label = s.text(3);
    g.reason = s.text(4);
    g.release = s.text(5);
    g.upgrade = {
        .deadline_ms = s.int64(6), .brutal = s.int64(7) != 0, .force = s.int64(8) != 0, .probe = s.text(9)};
    g.candidate = s.int64(10) != 0;
  }
  // What changed from number-1: the rows this generation opened and those it closed.
  std::map<std::string, std::int64_t> opened, closed;
  for (const auto& [sql, into] :
       {std::pair{"SELECT module, version FROM generation_modules WHERE channel = ? AND first = ?", &opened},
        std::pair{"SELECT module, version FROM generation_modules WHERE channel = ? AND until = ?",
                  &closed}}) {
    auto& s = stmt(sql);
    Done done{s};
    s.bind(1, channel);
    s.bind(2, number);
    while (s.step()) (*into)[s.text(0)] = s.int64(1);
  }
  each_difference(closed, opened, [&](const std::string& module, std::int64_t from, std::int64_t to) {
    g.changes.push_back({module, from, to});
    if (from == 0) {
      g.added++;
    } else if (to == 0) {
      g.removed++;
    } else {
      g.changed++;
    }
  });
  std::map<std::string, std::int64_t> apps_opened, apps_closed;
  for (const auto& [sql, into] :
       {std::pair{"SELECT app, app_version FROM generation_apps WHERE channel = ? AND first = ?",
                  &apps_opened},
        std::pair{"SELECT app, app_version FROM generation_apps WHERE channel = ? AND until = ?",
                  &apps_closed}}) {
    auto& s = stmt(sql);
    Done done{s};
    s.bind(1, channel);
    s.bind(2, number);
    while (s.step()) (*into)[s.text(0)] = s.int64(1);
  }
  each_difference(apps_closed, apps_opened, [&](const std::string& app, std::int64_t from, std::int64_t to) {
    g.app_changes.push_back({app, app_version_label(*this, from), app_version_label(*this, to)});
  });
  return g;
}

// --- ChannelChange -----------------------------------------------------------------------------

Store::Impl::ChannelChange::ChannelChange(Impl& impl, std::string channel)
    : impl_(impl), channel_(std::move(channel)) {}

void Store::Impl::ChannelChange::ensure_channel() {
  if (exists_) return;
  auto& s = impl_.stmt(
      "INSERT INTO channels (name, generation, previous, created_at) VALUES (?, 0, 0, ?) ON CONFLICT (name) "
      "DO NOTHING");
  s.bind(1, channel_);
  s.bind(2, now());
  s.exec();
  exists_ = true;
}

Activation Store::Impl::ChannelChange::set_module(std::string_view module, std::int64_t to,
                                                  std::string_view event_action, std::string_view reason,
                                                  bool check) {
  if (check) {
    impl_.require_module(module, channel_);
    if (to != 0) impl_.require_version(module, to);
  }
  const std::int64_t active = current(module);
  Activation a{std::string(module), active, to};
  if (active == to) return a;
  ensure_channel();
  start_.try_emplace(std::string(module), active);
  // The rollback target becomes the version that was active, so rollback(module) toggles.
  auto& s = impl_.stmt(
      "INSERT INTO channel_modules (channel, module, version, since, previous) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT (channel, module) DO UPDATE SET version = excluded.version, since = excluded.since, "
      "previous = excluded.previous");
  s.bind(1, channel_);
  s.bind(2, module);
  s.bind(3, to);
  s.bind(4, to != 0 ? now() : 0);
  s.bind(5, active);
  s.exec();
  current_.insert_or_assign(std::string(module), to);
  impl_.event(event_action, module, active, to, reason, channel_);
  return a;
}

void Store::Impl::ChannelChange::known_active(std::string_view module, std::int64_t version) {
  current_.insert_or_assign(std::string(module), version);
}

std::int64_t Store::Impl::ChannelChange::current(std::string_view module) {
  if (auto it = current_.find(module); it != current_.end()) return it->second;
  auto& s = impl_.stmt("SELECT version FROM channel_modules WHERE channel = ? AND module = ?");
  Done done{s};
  s.bind(1, channel_);
  s.bind(2, module);
  const std::int64_t version = s.step() ? s.int64(0) : 0;
  current_.emplace(std::string(module), version);
  return version;
}

void Store::Impl::ChannelChange::set_app(std::string_view app, std::int64_t app_version) {
  auto it = apps_.find(app);
  if (it == apps_.end()) {
    std::int64_t pinned = 0;
    auto& s =
        impl_.stmt("SELECT app_version FROM generation_apps WHERE channel = ? AND app = ? AND until IS NULL");
    Done done{s};
    s.bind(1, channel_);
    s.bind(2, app);
    if (s.step()) pinned = s.int64(0);
    it = apps_.emplace(std::string(app), std::pair{pinned, pinned}).first;
  }
  it->second.second = app_version;
}

bool Store::Impl::ChannelChange::changed() {
  for (const auto& [app, pins] : apps_) {
    if (pins.first != pins.second) return true;
  }
  for (const auto& [module, before] : start_) {
    if (current(module) != before) return true;
  }
  return false;
}

std::int64_t Store::Impl::ChannelChange::commit(const GenerationMeta& meta, bool force) {
  struct Moved {
    std::string name;
    std::int64_t from, to;
  };
  std::vector<Moved> modules, apps;
  for (const auto& [module, before] : start_) {
    const std::int64_t after = current(module);
    if (after != before) modules.push_back({module, before, after});
  }
  for (const auto& [app, pins] : apps_) {
    if (pins.first != pins.second) apps.push_back({app, pins.first, pins.second});
  }
  start_.clear();
  apps_.clear();
  current_.clear();
  if (modules.empty() && apps.empty() && !force) return 0;
  ensure_channel();
  const ChannelRow row = impl_.require_channel(channel_);
  if (row.candidate != 0) {
    // The candidate's rows are the channel's open ones: no other change until it ends.
    fail(Code::kFailedPrecondition,
         fmt::format("channel {} has a canary candidate (generation {}) pending: no other change until it is "
                     "promoted or dropped (codestore channel canary {} --promote or --drop)",
                     channel_, row.candidate, channel_));
  }
  const std::int64_t number = row.generation + 1;
  std::vector<const Moved*> opened;
  for (const auto& m : modules) {
    // An open row to close only where a version was pinned: channel_modules is the current
    // generation's pins (a module new to the channel, as each of a first import's, has none).
    if (m.from != 0) {
      auto& s = impl_.stmt(
          "UPDATE generation_modules SET until = ? WHERE channel = ? AND module = ? AND until IS NULL");
      s.bind(1, number);
      s.bind(2, channel_);
      s.bind(3, m.name);
      s.exec();
    }
    if (m.to != 0) opened.push_back(&m);
  }
  // The new rows, kRows to a statement (a big import opens one per module), the rest one by one.
  constexpr std::size_t kRows = 64;
  static const std::string many = [] {
    std::string sql = "INSERT INTO generation_modules (channel, module, version, first, until) VALUES ";
    for (std::size_t i = 0; i < kRows; ++i) sql += i ? ", (?1, ?, ?, ?2, NULL)" : "(?1, ?3, ?4, ?2, NULL)";
    return sql;
  }();
  std::size_t at = 0;
  for (; at + kRows <= opened.size(); at += kRows) {
    auto& s = impl_.stmt(many.c_str());
    s.bind(1, channel_);
    s.bind(2, number);
    for (std::size_t i = 0; i < kRows; ++i) {
      s.bind(static_cast<int>(3 + 2 * i), opened[at + i]->name);
      s.bind(static_cast<int>(4 + 2 * i), opened[at + i]->to);
    }
    s.exec();
  }
  for (; at < opened.size(); ++at) {
    auto& s = impl_.stmt(
        "INSERT INTO generation_modules (channel, module, version, first, until) VALUES (?, ?, ?, ?, NULL)");
    s.bind(1, channel_);
    s.bind(2, opened[at]->name);
    s.bind(3, opened[at]->to);
    s.bind(4, number);
    s.exec();
  }
  for (const auto& a : apps) {
    {
      auto& s =
          impl_.stmt("UPDATE generation_apps SET until = ? WHERE channel = ? AND app = ? AND until IS NULL");
      s.bind(1, number);
      s.bind(2, channel_);
      s.bind(3, a.name);
      s.exec();
    }
    if (a.to == 0) continue;
    auto& s = impl_.stmt(
        "INSERT INTO generation_apps (channel, app, app_version, first, until) VALUES (?, ?, ?, ?, NULL)");
    s.bind(1, channel_);
    s.bind(2, a.name);
    s.bind(3, a.to);
    s.bind(4, number);
    s.exec();
  }
  impl_.insert_generation(channel_, number, meta);
  auto& s = impl_.stmt("UPDATE channels SET generation = ?, previous = ? WHERE name = ?");
  s.bind(1, number);
  s.bind(2, meta.keep_previous ? row.previous : row.generation);
  s.bind(3, channel_);
  s.exec();
  // Followers hear of it at commit (nothing when the transaction rolls back): the number only,
  // they read what they lack themselves (docs/fleet.md).
  impl_.db->notify(db::kGenerationTopic, std::to_string(number));
  return number;
}

void Store::Impl::insert_generation(std::string_view channel, std::int64_t number,
                                    const GenerationMeta& meta) {
  auto& s = stmt(
      "INSERT INTO generations (channel, number, created_at, action, release, label, reason, "
      "apply_deadline_ms, "
      "apply_brutal, apply_force, apply_probe) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, channel);
  s.bind(2, number);
  s.bind(3, now());
  s.bind(4, meta.action);
  if (meta.release_id != 0) {
    s.bind(5, meta.release_id);
  } else {
    s.bind_null(5);
  }
  if (!meta.label.empty()) {
    s.bind(6, meta.label);
  } else {
    s.bind_null(6);
  }
  s.bind(7, meta.reason);
  s.bind(8, meta.upgrade.deadline_ms);
  s.bind(9, std::int64_t{meta.upgrade.brutal ? 1 : 0});
  s.bind(10, std::int64_t{meta.upgrade.force ? 1 : 0});
  s.bind(11, meta.upgrade.probe);
  s.exec();
}

// --- whole-content changes -----------------------------------------------------------------------

std::vector<Activation> Store::Impl::apply_content(ChannelChange& change,
                                                   const std::map<std::string, std::int64_t>& modules,
                                                   const std::map<std::string, std::int64_t>* apps,
                                                   std::string_view event_action, std::string_view reason) {
  std::vector<std::string> active;
  {
    auto& s = stmt("SELECT module FROM channel_modules WHERE channel = ? AND version != 0");
    Done done{s};
    s.bind(1, change.channel());
    while (s.step()) active.push_back(s.text(0));
  }
  std::vector<Activation> moved;
  for (const auto& module : active) {
    if (modules.count(module) != 0) continue;
    moved.push_back(change.set_module(module, 0, event_action, reason));
  }
  for (const auto& [module, version] : modules) {
    if (version < 1) fail(Code::kInvalidArgument, fmt::format("module {}: version {}", module, version));
    Activation a = change.set_module(module, version, event_action, reason);
    if (a.from_version != a.to_version) moved.push_back(std::move(a));
  }
  std::sort(moved.begin(), moved.end(),
            [](const Activation& a, const Activation& b) { return a.module < b.module; });
  if (apps != nullptr) {
    std::vector<std::string> pinned;
    {
      auto& s = stmt("SELECT app FROM generation_apps WHERE channel = ? AND until IS NULL");
      Done done{s};
      s.bind(1, change.channel());
      while (s.step()) pinned.push_back(s.text(0));
    }
    for (const auto& app : pinned) {
      if (apps->count(app) == 0) change.set_app(app, 0);
    }
    for (const auto& [app, id] : *apps) change.set_app(app, id);
  }
  return moved;
}

Store::Impl::ChannelWrite Store::Impl::replace_channel(std::string_view channel,
                                                       const ChannelContent& content,
                                                       const GenerationMeta& meta, bool force) {
  require_channel_name(channel);
  ChannelChange change(*this, std::string(channel));
  ChannelWrite out;
  out.changed = apply_content(change, content.modules, &content.apps, meta.action, meta.reason);
  out.generation = change.commit(meta, force);
  return out;
}

// --- the public calls ----------------------------------------------------------------------------

Result<std::vector<ChannelInfo>> Store::channels() {
  return impl_->call("channels", [&]() -> Result<std::vector<ChannelInfo>> {
    auto& s = impl_->stmt(
        "SELECT c.name, c.generation, c.previous, (SELECT count(*) FROM channel_modules cm WHERE cm.channel "
        "= "
        "c.name AND cm.version != 0), c.created_at FROM channels c ORDER BY c.name");
    Impl::Done done{s};
    std::vector<ChannelInfo> out;
    while (s.step()) out.push_back({s.text(0), s.int64(1), s.int64(2), s.int64(3), s.int64(4)});
    return out;
  });
}

Result<std::vector<Generation>> Store::channel_history(const std::string& channel, std::size_t limit) {
  return impl_->call([&] { return "channel history " + channel; },
                     [&]() -> Result<std::vector<Generation>> {
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       impl_->require_channel(channel);
                       std::vector<std::int64_t> numbers;
                       {
                         auto& s = impl_->stmt(
                             "SELECT number FROM generations WHERE channel = ? ORDER BY number DESC LIMIT ?");
                         Impl::Done done{s};
                         s.bind(1, channel);
                         s.bind(2, sql_limit(limit));
                         while (s.step()) numbers.push_back(s.int64(0));
                       }
                       // Module counts walk back from the current one: count(K-1) = count(K) - added +
                       // removed, as the numbers are every generation from the newest down.
                       std::int64_t count = impl_->active_count(channel);
                       std::vector<Generation> out;
                       out.reserve(numbers.size());
                       for (const std::int64_t n : numbers) {
                         Generation g = impl_->generation_info(channel, n);
                         if (g.candidate) {  // after the current one: its count from the current's
                           g.modules = count + g.added - g.removed;
                         } else {
                           g.modules = count;
                           count = count - g.added + g.removed;
                         }
                         out.push_back(std::move(g));
                       }
                       return out;
                     });
}

Result<Generation> Store::channel_generation(const std::string& channel, std::int64_t number) {
  return impl_->call([&] { return fmt::format("channel {} generation {}", channel, number); },
                     [&]() -> Result<Generation> {
                       db::Transaction tx(*impl_->db, db::TxKind::kRead);
                       const auto row = impl_->require_channel(channel);
                       if (number == 0) number = row.generation;
                       if (number == 0) {  // a channel that has never changed: empty
                         Generation g;
                         g.channel = channel;
                         return g;
                       }
                       const auto pins = impl_->generation_pins(channel, number);
                       Generation g = impl_->generation_info(channel, number);
                       g.modules = static_cast<std::int64_t>(pins.size());
                       g.content.reserve(pins.size());
                       for (const auto& p : pins) g.content.push_back({p.module, p.version, p.lib});
                       return g;
                     });
}

std::int64_t Store::Impl::roll_back_channel(const std::string& channel, std::string_view reason,
                                            const UpgradeOptions& upgrade) {
  const auto row = require_channel(channel);
  if (row.previous == 0)
    fail(Code::kFailedPrecondition,
         fmt::format("channel {} has no previous generation to roll back to", channel));
  std::map<std::string, std::int64_t> modules;
  for (auto& p : generation_pins(channel, row.previous)) modules[p.module] = p.version;
  const auto apps = generation_app_pins(channel, row.previous);
  const std::string why = reason.empty() ? fmt::format("to generation {}", row.previous)
                                         : fmt::format("to generation {}: {}", row.previous, reason);
  ChannelChange change(*this, channel);
  apply_content(change, modules, &apps, "channel-rollback", why);
  event("channel-rollback", "", row.generation, row.previous, why, channel);
  // Always a generation, so that `previous` moves and a second rollback returns.
  return change.commit({.action = "channel-rollback", .reason = why, .upgrade = upgrade}, /*force=*/true);
}

Result<Generation> Store::channel_rollback(Reason reason, const UpgradeOptions& upgrade) {
  const std::string& channel = impl_->options.channel;
  return impl_->call([&] { return "channel rollback " + channel; },
                     [&]() -> Result<Generation> {
                       impl_->require_writable("channel rollback");
                       Impl::WriteTx tx(*impl_);
                       const std::int64_t number = impl_->roll_back_channel(channel, reason.text, upgrade);
                       Generation g = impl_->generation_info(channel, number);
                       g.modules = impl_->active_count(channel);
                       tx.commit();
                       return g;
                     });
}

Result<GenerationDiff> Store::generation_diff(const std::string& channel_a, std::int64_t gen_a,
                                              const std::string& channel_b, std::int64_t gen_b) {
  return impl_->call(
      [&] { return fmt::format("diff {}@{} {}@{}", channel_a, gen_a, channel_b, gen_b); },
      [&]() -> Result<GenerationDiff> {
        db::Transaction tx(*impl_->db, db::TxKind::kRead);
        const auto a = impl_->generation_pins(channel_a, gen_a);
        const auto b = impl_->generation_pins(channel_b, gen_b);
        GenerationDiff d;
        // Both sorted by module: one merge.
        auto i = a.begin();
        auto j = b.begin();
        while (i != a.end() || j != b.end()) {
          if (j == b.end() || (i != a.end() && i->module < j->module)) {
            d.removed.push_back({i->module, i->version, i->md5, i->lib});
            ++i;
          } else if (i == a.end() || j->module < i->module) {
            d.added.push_back({j->module, j->version, j->md5, j->lib});
            ++j;
          } else {
            if (i->version != j->version)
              d.changed.push_back({i->module, i->version, j->version, i->md5, j->md5});
            ++i;
            ++j;
          }
        }
        const auto apps_a = impl_->generation_app_pins(channel_a, gen_a);
        const auto apps_b = impl_->generation_app_pins(channel_b, gen_b);
        each_difference(apps_a, apps_b, [&](const std::string& app, std::int64_t from, std::int64_t to) {
          d.apps.push_back({app, app_version_label(*impl_, from), app_version_label(*impl_, to)});
        });
        return d;
      });
}

}  // namespace codestore

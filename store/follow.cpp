// Followers (include/codestore/follow.h, docs/fleet.md): a local SQLite replica of the channels
// a store on PostgreSQL serves, one generation per local transaction.
//
// What a generation K of channel C needs on the replica, read from the primary in one
// snapshot (REPEATABLE READ) and written in one local transaction:
//   - its row in generations, and its interval rows: generation_modules / generation_apps rows
//     with first = K are opened (until NULL: a later generation closes them, as on the
//     primary), rows with until = K are closed;
//   - what the opened rows and its release name: the module versions (versions, modules), the
//     application revisions (app_versions, app_modules, app_files), the Erlang release a deploy
//     made it (releases, release_apps, release_files, release_modules), and every blob those
//     name that the replica lacks by SHA-256 (with its dictionary), copied as the stored zstd
//     frame it is; a replica takes no rows from anywhere else, and its ids are the primary's
//     but for blobs and chunks, matched by SHA-256 (place(): the primary's gc may have deleted
//     one the replica keeps, and stored the same bytes again under a new id);
//   - channel_modules and the channel's row: for the primary's current generation copied as
//     they are; for an older one (a follower catching up several) made as the primary's
//     ChannelChange made them (each moved module's rollback target is the version before, since
//     the generation's time; channels.previous K-1 but for a snapshot);
//   - follower_channels (C, K), and meta 'generation' + 1 (what a reader's caches watch).
// Rows on the primary that no followed generation names (an imported, undeployed release; the
// primary's events, nodes and served counts) are not copied.
//
// The code is written over db::Connection, the SQL seam: the primary is opened by
// db::open_postgresql and listened to by db::listen_postgresql, the replica by db::open_sqlite.
#include <codestore/follow.h>
#include <codestore/store.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <variant>

#include "base/hex.h"
#include "db/connection.h"
#include "db/pg_connection.h"
#include "db/pg_listener.h"
#include "db/sqlite_connection.h"
#include "db/sqlite_error.h"
#include "store_impl.h"

namespace codestore {

using db::fail;

namespace {

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

// --- rows copied as they are ---------------------------------------------------------------------

// A column: 'i' integer, 't' text, 'b' bytes; upper case: it may be NULL.
struct Column {
  const char* name;
  char type;
};
struct Table {
  const char* name;
  std::vector<Column> columns;
};

const Table kDictionaries{
    "dictionaries", {{"id", 'i'}, {"zstd_id", 'i'}, {"created_at", 'i'}, {"samples", 'i'}, {"bytes", 'b'}}};
const Table kBlobs{"blobs",
                   {{"id", 'i'},
                    {"sha256", 'b'},
                    {"raw_size", 'i'},
                    {"stored_size", 'i'},
                    {"level", 'i'},
                    {"dictionary_id", 'I'},
                    {"data", 'b'},
                    {"load_verdict", 'I'},
                    {"frame_checksum", 'B'},
                    {"layout", 'i'},
                    {"layout_size", 'i'}}};
// A layout-1 blob's chunks (schema 6): the chunk rows it names, copied like blobs.
const Table kChunks{"chunks",
                    {{"id", 'i'},
                     {"sha256", 'b'},
                     {"kind", 't'},
                     {"raw_size", 'i'},
                     {"content_size", 'i'},
                     {"deflate", 'i'},
                     {"head", 'i'},
                     {"stored_size", 'i'},
                     {"level", 'i'},
                     {"dictionary_id", 'I'},
                     {"data", 'b'},
                     {"frame_checksum", 'B'}}};
const Table kBlobChunks{"blob_chunks", {{"blob_id", 'i'}, {"seq", 'i'}, {"chunk_id", 'i'}}};
const Table kVersions{"versions",
                      {{"module", 't'},
                       {"version", 'i'},
                       {"blob_id", 'i'},
                       {"lib", 't'},
                       {"md5", 't'},
                       {"vsn", 't'},
                       {"origin", 't'},
                       {"note", 't'},
                       {"warning", 't'},
                       {"imported_at", 'i'}}};
const Table kAppVersions{"app_versions",
                         {{"id", 'i'},
                          {"app", 't'},
                          {"vsn", 't'},
                          {"revision", 'i'},
                          {"content", 't'},
                          {"origin", 't'},
                          {"warning", 't'},
                          {"imported_at", 'i'}}};
const Table kAppModules{
    "app_modules",
    {{"app_version", 'i'}, {"module", 't'}, {"version", 'i'}, {"blob_id", 'i'}, {"path", 't'}}};
const Table kAppFiles{"app_files",
                      {{"app_version", 'i'}, {"path", 't'}, {"blob_id", 'I'}, {"mode", 'i'}, {"link", 'T'}}};
const Table kReleases{"releases",
                      {{"id", 'i'},
                       {"name", 't'},
                       {"vsn", 't'},
                       {"erts_vsn", 't'},
                       {"kind", 't'},
                       {"origin", 't'},
                       {"imported_at", 'i'}}};
const Table kReleaseApps{
    "release_apps",
    {{"release", 'i'}, {"position", 'i'}, {"app_version", 'i'}, {"type", 't'}, {"included", 't'}}};
const Table kReleaseFiles{"release_files",
                          {{"release", 'i'}, {"path", 't'}, {"blob_id", 'I'}, {"mode", 'i'}, {"link", 'T'}}};
const Table kReleaseModules{
    "release_modules",
    {{"release", 'i'}, {"module", 't'}, {"version", 'i'}, {"blob_id", 'i'}, {"path", 't'}}};
const Table kGenerations{"generations",
                         {{"channel", 't'},
                          {"number", 'i'},
                          {"created_at", 'i'},
                          {"action", 't'},
                          {"release", 'I'},
                          {"label", 'T'},
                          {"reason", 't'}}};
const Table kChannelModules{
    "channel_modules",
    {{"channel", 't'}, {"module", 't'}, {"version", 'i'}, {"since", 'i'}, {"previous", 'i'}}};

using Value = std::variant<std::monostate, std::int64_t, std::string, std::vector<std::uint8_t>>;
using Row = std::vector<Value>;

// Prepared statements kept per connection (a follower runs the same few dozen statements for
// every generation: PostgreSQL plans each once). Destroyed before their connection.
class Statements {
 public:
  struct Ref {
    db::Statement* s;
    db::Statement* operator->() const { return s; }
    db::Statement& operator*() const { return *s; }
  };
  Statements() = default;
  explicit Statements(db::Connection& c) : c_(&c) {}
  Ref operator()(const std::string& sql) {
    auto& s = cache_[sql];
    if (!s) {
      s = c_->prepare(sql);
    } else {
      s->reset();
      s->clear_bindings();
    }
    return {s.get()};
  }
  db::Connection& connection() { return *c_; }

 private:
  db::Connection* c_ = nullptr;
  std::map<std::string, std::unique_ptr<db::Statement>> cache_;
};

// A parameter of a query on the primary.
using Param = std::variant<std::int64_t, std::string>;

void bind_params(db::Statement& s, const std::vector<Param>& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int at = static_cast<int>(i) + 1;
    if (const auto* n = std::get_if<std::int64_t>(&params[i])) {
      s.bind(at, *n);
    } else {
      s.bind(at, std::get<std::string>(params[i]));
    }
  }
}

// The rows of `table` WHERE `where` (its alias: t), every column as its type says.
std::vector<Row> read_rows(Statements& from, const Table& table, const std::string& where,
                           const std::vector<Param>& params) {
  std::string columns;
  for (const auto& c : table.columns) {
    if (!columns.empty()) columns += ", ";
    columns += std::isupper(static_cast<unsigned char>(c.type)) != 0
                   ? fmt::format("CASE WHEN t.{0} IS NULL THEN 1 ELSE 0 END, t.{0}", c.name)
                   : fmt::format("t.{}", c.name);
  }
  auto s = from(fmt::format("SELECT {} FROM {} t WHERE {}", columns, table.name, where));
  bind_params(*s, params);
  std::vector<Row> rows;
  while (s->step()) {
    Row row;
    int at = 0;
    for (const auto& c : table.columns) {
      const char type = static_cast<char>(std::tolower(static_cast<unsigned char>(c.type)));
      if (type != c.type && s->int64(at++) != 0) {
        row.emplace_back(std::monostate{});
        ++at;
        continue;
      }
      if (type == 'i') {
        row.emplace_back(s->int64(at));
      } else if (type == 't') {
        row.emplace_back(s->text(at));
      } else {
        const auto b = s->blob(at);
        row.emplace_back(std::vector<std::uint8_t>(b.begin(), b.end()));
      }
      ++at;
    }
    rows.push_back(std::move(row));
  }
  s->reset();
  return rows;
}

// Inserts `rows` into `table`, leaving rows already there (same key) as they are; with
// `or_ignore` false a row already there is an error (the blobs and chunks apply places).
void write_rows(Statements& to, const Table& table, const std::vector<Row>& rows, bool or_ignore = true) {
  if (rows.empty()) return;
  std::string names, marks;
  for (const auto& c : table.columns) {
    names += names.empty() ? c.name : fmt::format(", {}", c.name);
    marks += marks.empty() ? "?" : ", ?";
  }
  auto s = to(fmt::format("INSERT INTO {} ({}) VALUES ({}){}", table.name, names, marks,
                          or_ignore ? " ON CONFLICT DO NOTHING" : ""));
  for (const auto& row : rows) {
    s->reset();
    s->clear_bindings();
    for (std::size_t i = 0; i < row.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      if (const auto* n = std::get_if<std::int64_t>(&row[i])) {
        s->bind(at, *n);
      } else if (const auto* t = std::get_if<std::string>(&row[i])) {
        s->bind(at, *t);
      } else if (const auto* b = std::get_if<std::vector<std::uint8_t>>(&row[i])) {
        s->bind_blob_no_copy(at, *b);
      } else {
        s->bind_null(at);
      }
    }
    s->exec();
  }
  s->reset();
}

std::int64_t int_at(const Row& row, std::size_t i) {
  const auto* n = std::get_if<std::int64_t>(&row[i]);
  return n != nullptr ? *n : 0;
}

// A primary's id -> the replica's id of the same row (blobs, chunks: matched by SHA-256).
using IdMap = std::map<std::int64_t, std::int64_t>;

// `rows` with the ids in column `column` translated by `ids` (a NULL stays NULL).
std::vector<Row> with_local_ids(std::vector<Row> rows, std::size_t column, const IdMap& ids,
                                const char* what) {
  for (auto& row : rows) {
    auto* id = std::get_if<std::int64_t>(&row[column]);
    if (id == nullptr) continue;
    const auto it = ids.find(*id);
    if (it == ids.end()) {
      fail(Code::kInternal,
           fmt::format("a row names {} {} which its generation's list of {}s lacks", what, *id, what));
    }
    *id = it->second;
  }
  return rows;
}

std::int64_t scalar(Statements& c, const std::string& sql, const std::vector<Param>& params = {}) {
  auto s = c(sql);
  bind_params(*s, params);
  const std::int64_t v = s->step() ? s->int64(0) : 0;
  s->reset();
  return v;
}

// --- what generation K of channel C names, on the primary ((?1, ?2) = (C, K)) ------------------

// The Erlang release the generation's deploy made its content.
constexpr const char* kRels =
    "SELECT release FROM generations WHERE channel = ?1 AND number = ?2 AND release IS NOT NULL";
// The application revisions it opens, and its release's.
constexpr const char* kApps =
    "SELECT app_version FROM generation_apps WHERE channel = ?1 AND first = ?2 UNION SELECT ra.app_version "
    "FROM "
    "release_apps ra JOIN generations g ON ra.release = g.release WHERE g.channel = ?1 AND g.number = ?2";

std::string versions_named() {
  return fmt::format(
      "SELECT module, version FROM generation_modules WHERE channel = ?1 AND first = ?2 UNION SELECT module, "
      "version FROM app_modules WHERE app_version IN ({0}) UNION SELECT module, version FROM release_modules "
      "WHERE release IN ({1})",
      kApps, kRels);
}

std::string blobs_named() {
  return fmt::format(
      "SELECT v.blob_id FROM versions v WHERE (v.module, v.version) IN ({0}) UNION SELECT blob_id FROM "
      "app_modules WHERE app_version IN ({1}) UNION SELECT blob_id FROM app_files WHERE app_version IN ({1}) "
      "AND blob_id IS NOT NULL UNION SELECT blob_id FROM release_files WHERE release IN ({2}) AND blob_id IS "
      "NOT NULL UNION SELECT blob_id FROM release_modules WHERE release IN ({2})",
      versions_named(), kApps, kRels);
}

// One generation as read from the primary, ready to be written.
struct GenerationRows {
  std::string channel;
  std::int64_t number = 0;
  bool head = false;  // the primary's current generation of the channel
  Row generation;
  std::vector<std::pair<std::string, std::int64_t>> opened_modules;                 // module, version
  std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> closed_modules;  // module, version, first
  std::vector<std::pair<std::string, std::int64_t>> opened_apps;                    // app, app_version
  std::vector<std::pair<std::string, std::int64_t>> closed_apps;                    // app, first
  std::vector<Row> dictionaries, chunks, blobs, blob_chunks, versions, app_versions, app_modules, app_files,
      releases, release_apps, release_files, release_modules;
  std::vector<std::pair<std::string, std::int64_t>> modules;  // name, high_water
  std::int64_t channel_created_at = 0;
  // head only: the channel's row and its whole active set, as the primary has them.
  std::int64_t channel_generation = 0, channel_previous = 0;
  std::vector<Row> channel_modules;
  // Every blob the generation names and every chunk of those that are layout-1, by the
  // primary's id: their SHA-256 (apply matches them with the replica's rows by it).
  std::vector<std::pair<std::int64_t, std::vector<std::uint8_t>>> blob_shas, chunk_shas;
  std::uint64_t blobs_present = 0, bytes_fetched = 0;
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += out.empty() ? s : " " + s;
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

StoreOptions primary_options() {
  StoreOptions o;
  o.read_only = true;  // a follower never writes the primary
  o.create = false;
  o.migrate = false;
  return o;
}

}  // namespace

// --- the follower --------------------------------------------------------------------------------

struct Follower::Impl {
  std::string uri;    // as given (with its password, if any: never shown)
  std::string shown;  // redacted
  std::string replica_path;
  FollowOptions options;
  std::unique_ptr<db::Connection> replica;
  Statements rs;                            // on replica
  std::unique_ptr<db::Connection> primary;  // null while disconnected
  Statements ps;                            // on primary
  std::int64_t primary_store = 0;           // 0: a new replica, whose primary is not chosen yet
  FollowProgress totals;

  void log(std::string_view line) const {
    if (options.log) options.log(line);
  }

  // Connects the reading session and checks it is the store this replica follows (a new
  // replica adopts it).
  void connect() {
    if (primary) return;
    auto conn = db::open_postgresql(uri, primary_options());
    Statements check(*conn);
    const std::int64_t id = scalar(check, "SELECT value FROM meta WHERE key = 'store_id'");
    if (primary_store == 0) primary_store = id;
    if (id != primary_store) {
      fail(Code::kFailedPrecondition,
           fmt::format(
               "replica {} follows store {} but {} is store {}: a replica follows one store; make a new "
               "replica for another",
               replica_path, primary_store, shown, id));
    }
    check = Statements();
    primary = std::move(conn);
    ps = Statements(*primary);
  }

  void disconnect() {
    ps = Statements();
    primary.reset();
  }

  std::int64_t applied(const std::string& channel) {
    return scalar(rs, "SELECT generation FROM follower_channels WHERE channel = ?", {channel});
  }

  GenerationRows read_generation(const std::string& channel, std::int64_t number, bool head) {
    GenerationRows g;
    g.channel = channel;
    g.number = number;
    g.head = head;
    const std::vector<Param> ck{channel, number};
    auto gen = read_rows(ps, kGenerations, "t.channel = ?1 AND t.number = ?2", ck);
    if (gen.size() != 1)
      fail(Code::kCorruption, fmt::format("{} has no generation {} of channel {}", shown, number, channel));
    g.generation = std::move(gen.front());
    {
      auto s = ps("SELECT module, version FROM generation_modules WHERE channel = ?1 AND first = ?2");
      bind_params(*s, ck);
      while (s->step()) g.opened_modules.emplace_back(s->text(0), s->int64(1));
    }
    {
      auto s = ps("SELECT module, version, first FROM generation_modules WHERE channel = ?1 AND until = ?2");
      bind_params(*s, ck);
      while (s->step()) g.closed_modules.emplace_back(s->text(0), s->int64(1), s->int64(2));
    }
    {
      auto s = ps("SELECT app, app_version FROM generation_apps WHERE channel = ?1 AND first = ?2");
      bind_params(*s, ck);
      while (s->step()) g.opened_apps.emplace_back(s->text(0), s->int64(1));
    }
    {
      auto s = ps("SELECT app, first FROM generation_apps WHERE channel = ?1 AND until = ?2");
      bind_params(*s, ck);
      while (s->step()) g.closed_apps.emplace_back(s->text(0), s->int64(1));
    }
    // Blobs, and the chunks of layout-1 blobs: their SHA-256 first; the frames only of those the
    // replica lacks.
    // The ids of `table`'s rows named by `ids` that the replica lacks (by SHA-256: its id for
    // the same bytes may differ, see apply); `present` counts the others; `shas` gets them all.
    const auto lacking = [&](const char* table, const std::string& ids, std::uint64_t& present,
                             std::vector<std::pair<std::int64_t, std::vector<std::uint8_t>>>& shas) {
      auto s = ps(fmt::format("SELECT id, sha256 FROM {} WHERE id IN ({})", table, ids));
      bind_params(*s, ck);
      std::vector<std::int64_t> missing;
      auto local = rs(fmt::format("SELECT 1 FROM {} WHERE sha256 = ?", table));
      while (s->step()) {
        const std::int64_t id = s->int64(0);
        const auto sha = s->blob(1);
        shas.emplace_back(id, std::vector<std::uint8_t>(sha.begin(), sha.end()));
        local->reset();
        local->clear_bindings();
        local->bind_blob(1, sha);
        if (local->step()) {
          present++;
        } else {
          missing.push_back(id);
        }
      }
      local->reset();
      return missing;
    };
    {
      std::set<std::int64_t> dictionaries;
      for (const std::int64_t id : lacking("blobs", blobs_named(), g.blobs_present, g.blob_shas)) {
        auto rows = read_rows(ps, kBlobs, "t.id = ?1", {id});
        for (auto& r : rows) {
          if (const auto* d = std::get_if<std::int64_t>(&r[5])) dictionaries.insert(*d);
          g.bytes_fetched += std::get<std::vector<std::uint8_t>>(r[6]).size();
          if (int_at(r, 9) == 1) {
            for (auto& c : read_rows(ps, kBlobChunks, "t.blob_id = ?1", {id}))
              g.blob_chunks.push_back(std::move(c));
          }
          g.blobs.push_back(std::move(r));
        }
      }
      if (!g.blob_chunks.empty()) {
        std::uint64_t chunks_present = 0;
        for (const std::int64_t id :
             lacking("chunks",
                     fmt::format("SELECT chunk_id FROM blob_chunks WHERE blob_id IN ({})", blobs_named()),
                     chunks_present, g.chunk_shas)) {
          for (auto& r : read_rows(ps, kChunks, "t.id = ?1", {id})) {
            if (const auto* d = std::get_if<std::int64_t>(&r[9])) dictionaries.insert(*d);
            g.bytes_fetched += std::get<std::vector<std::uint8_t>>(r[10]).size();
            g.chunks.push_back(std::move(r));
          }
        }
      }
      for (const std::int64_t d : dictionaries) {
        if (scalar(rs, "SELECT count(*) FROM dictionaries WHERE id = ?", {d}) != 0) continue;
        for (auto& r : read_rows(ps, kDictionaries, "t.id = ?1", {d})) g.dictionaries.push_back(std::move(r));
      }
    }
    {
      auto s =
          ps(fmt::format("SELECT name, high_water FROM modules WHERE name IN (SELECT module FROM ({}) x "
                         "UNION SELECT module FROM "
                         "generation_modules WHERE channel = ?1 AND until = ?2)",
                         versions_named()));
      bind_params(*s, ck);
      while (s->step()) g.modules.emplace_back(s->text(0), s->int64(1));
    }
    g.versions = read_rows(ps, kVersions, fmt::format("(t.module, t.version) IN ({})", versions_named()), ck);
    // Most generations (an import, a rollback) open no application revision and name no
    // release: nothing more to read for them.
    const bool release = !std::holds_alternative<std::monostate>(g.generation[4]);
    if (!g.opened_apps.empty() || release) {
      const std::string apps = fmt::format("t.{{}} IN ({})", kApps);
      g.app_versions = read_rows(ps, kAppVersions, fmt::format(fmt::runtime(apps), "id"), ck);
      g.app_modules = read_rows(ps, kAppModules, fmt::format(fmt::runtime(apps), "app_version"), ck);
      g.app_files = read_rows(ps, kAppFiles, fmt::format(fmt::runtime(apps), "app_version"), ck);
    }
    if (release) {
      g.releases = read_rows(ps, kReleases, fmt::format("t.id IN ({})", kRels), ck);
      g.release_apps = read_rows(ps, kReleaseApps, fmt::format("t.release IN ({})", kRels), ck);
      g.release_files = read_rows(ps, kReleaseFiles, fmt::format("t.release IN ({})", kRels), ck);
      g.release_modules = read_rows(ps, kReleaseModules, fmt::format("t.release IN ({})", kRels), ck);
    }
    {
      auto s = ps("SELECT created_at, generation, previous FROM channels WHERE name = ?1");
      s->bind(1, channel);
      if (!s->step()) fail(Code::kCorruption, fmt::format("{} has no channel {}", shown, channel));
      g.channel_created_at = s->int64(0);
      g.channel_generation = s->int64(1);
      g.channel_previous = s->int64(2);
      s->reset();
    }
    if (head) g.channel_modules = read_rows(ps, kChannelModules, "t.channel = ?1", {channel});
    return g;
  }

  // The replica's id of each row of `table` (blobs, chunks) that `named` (the primary's id, the
  // SHA-256) names, matched by SHA-256: a row the replica has keeps its id here, which differs
  // from the primary's when the primary deleted the row (gc) and stored the same bytes again
  // under a new id; a row it lacks is inserted from `fetched` (the primary's rows, id first)
  // under the primary's id when that is free here (the common case: ids as the primary's),
  // else under a new one. Inside apply's transaction.
  IdMap place(const Table& table,
              const std::vector<std::pair<std::int64_t, std::vector<std::uint8_t>>>& named,
              const std::vector<Row>& fetched) {
    std::map<std::int64_t, const Row*> rows;
    for (const Row& r : fetched) rows[int_at(r, 0)] = &r;
    IdMap ids;
    auto by_sha = rs(fmt::format("SELECT id FROM {} WHERE sha256 = ?", table.name));
    for (const auto& [id, sha] : named) {
      by_sha->reset();
      by_sha->clear_bindings();
      by_sha->bind_blob(1, sha);
      if (by_sha->step()) {
        ids[id] = by_sha->int64(0);
        continue;
      }
      by_sha->reset();
      const auto it = rows.find(id);
      if (it == rows.end()) {
        fail(Code::kInternal, fmt::format("replica {} lacks {} {} (id {} on {}), which it held when the "
                                          "generation was read",
                                          replica_path, table.name, base::hex(sha), id, shown));
      }
      Row row = *it->second;
      const bool free =
          scalar(rs, fmt::format("SELECT count(*) FROM {} WHERE id = ?", table.name), {id}) == 0;
      if (!free) row[0] = std::monostate{};  // NULL: SQLite gives the row a new id
      write_rows(rs, table, {row}, /*or_ignore=*/false);
      ids[id] = free ? id : replica->last_insert_id();
      if (!free) {
        log(fmt::format("{} {}: stored here as id {}: {}'s id {} is another row's here", table.name,
                        base::hex(sha), ids[id], shown, id));
      }
    }
    by_sha->reset();
    return ids;
  }

  // Writes generation `g` in one local transaction; false when it was applied already.
  bool apply(const GenerationRows& g) {
    db::Transaction tx(*replica, db::TxKind::kWrite);
    const std::int64_t last = applied(g.channel);
    if (last >= g.number) return false;  // applied already (by another follower of this file)
    if (last != g.number - 1) {
      fail(Code::kInternal,
           fmt::format("replica {}: channel {} is at generation {}, not {}: it would skip one", replica_path,
                       g.channel, last, g.number - 1));
    }
    write_rows(rs, kDictionaries, g.dictionaries);
    const IdMap chunk_ids = place(kChunks, g.chunk_shas, g.chunks);
    const IdMap blob_ids = place(kBlobs, g.blob_shas, g.blobs);
    write_rows(rs, kBlobChunks,
               with_local_ids(with_local_ids(g.blob_chunks, 0, blob_ids, "blob"), 2, chunk_ids, "chunk"));
    {
      auto s =
          rs("INSERT INTO modules (name, high_water) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
             "high_water = "
             "max(high_water, excluded.high_water)");
      for (const auto& [name, high] : g.modules) {
        s->reset();
        s->clear_bindings();
        s->bind(1, name);
        s->bind(2, high);
        s->exec();
      }
      // A module the primary no longer has (deleted since): its row, for channel_modules' key.
      auto none = rs("INSERT INTO modules (name, high_water) VALUES (?, 0) ON CONFLICT DO NOTHING");
      for (const auto& [module, version] : g.opened_modules) {
        none->reset();
        none->bind(1, module);
        none->exec();
      }
      for (const auto& [module, version, first] : g.closed_modules) {
        none->reset();
        none->bind(1, module);
        none->exec();
      }
    }
    write_rows(rs, kVersions, with_local_ids(g.versions, 2, blob_ids, "blob"));
    write_rows(rs, kAppVersions, g.app_versions);
    write_rows(rs, kAppModules, with_local_ids(g.app_modules, 3, blob_ids, "blob"));
    write_rows(rs, kAppFiles, with_local_ids(g.app_files, 2, blob_ids, "blob"));
    write_rows(rs, kReleases, g.releases);
    write_rows(rs, kReleaseApps, g.release_apps);
    write_rows(rs, kReleaseFiles, with_local_ids(g.release_files, 2, blob_ids, "blob"));
    write_rows(rs, kReleaseModules, with_local_ids(g.release_modules, 3, blob_ids, "blob"));
    {
      auto s = rs(
          "INSERT INTO channels (name, generation, previous, created_at) VALUES (?, 0, 0, ?) ON CONFLICT DO "
          "NOTHING");
      s->bind(1, g.channel);
      s->bind(2, g.channel_created_at);
      s->exec();
    }
    // A label is unique in the store: one the primary moved (a snapshot deleted, its name
    // reused) leaves the older generation here.
    if (const auto* label = std::get_if<std::string>(&g.generation[5])) {
      auto s = rs("UPDATE generations SET label = NULL WHERE label = ?");
      s->bind(1, *label);
      s->exec();
    }
    write_rows(rs, kGenerations, {g.generation});
    {
      auto close =
          rs("UPDATE generation_modules SET until = ? WHERE channel = ? AND module = ? AND first = ?");
      for (const auto& [module, version, first] : g.closed_modules) {
        close->reset();
        close->bind(1, g.number);
        close->bind(2, g.channel);
        close->bind(3, module);
        close->bind(4, first);
        close->exec();
      }
      auto open =
          rs("INSERT INTO generation_modules (channel, module, version, first, until) VALUES (?, ?, ?, ?, "
             "NULL)");
      for (const auto& [module, version] : g.opened_modules) {
        open->reset();
        open->bind(1, g.channel);
        open->bind(2, module);
        open->bind(3, version);
        open->bind(4, g.number);
        open->exec();
      }
      auto close_app = rs("UPDATE generation_apps SET until = ? WHERE channel = ? AND app = ? AND first = ?");
      for (const auto& [app, first] : g.closed_apps) {
        close_app->reset();
        close_app->bind(1, g.number);
        close_app->bind(2, g.channel);
        close_app->bind(3, app);
        close_app->bind(4, first);
        close_app->exec();
      }
      auto open_app = rs(
          "INSERT INTO generation_apps (channel, app, app_version, first, until) VALUES (?, ?, ?, ?, NULL)");
      for (const auto& [app, id] : g.opened_apps) {
        open_app->reset();
        open_app->bind(1, g.channel);
        open_app->bind(2, app);
        open_app->bind(3, id);
        open_app->bind(4, g.number);
        open_app->exec();
      }
    }
    const std::string action = std::get<std::string>(g.generation[3]);
    if (g.head) {
      auto del = rs("DELETE FROM channel_modules WHERE channel = ?");
      del->bind(1, g.channel);
      del->exec();
      write_rows(rs, kChannelModules, g.channel_modules);
      auto s = rs("UPDATE channels SET generation = ?, previous = ?, created_at = ? WHERE name = ?");
      s->bind(1, g.channel_generation);
      s->bind(2, g.channel_previous);
      s->bind(3, g.channel_created_at);
      s->bind(4, g.channel);
      s->exec();
    } else {
      // As ChannelChange::set_module made them: the version before becomes the rollback target.
      std::map<std::string, std::pair<std::int64_t, std::int64_t>> moved;  // module -> (from, to)
      for (const auto& [module, version, first] : g.closed_modules) moved[module].first = version;
      for (const auto& [module, version] : g.opened_modules) moved[module].second = version;
      const std::int64_t created_at = int_at(g.generation, 2);
      auto s = rs(
          "INSERT INTO channel_modules (channel, module, version, since, previous) VALUES (?, ?, ?, ?, ?) ON "
          "CONFLICT (channel, module) DO UPDATE SET version = excluded.version, since = excluded.since, "
          "previous = excluded.previous");
      for (const auto& [module, ft] : moved) {
        s->reset();
        s->clear_bindings();
        s->bind(1, g.channel);
        s->bind(2, module);
        s->bind(3, ft.second);
        s->bind(4, ft.second != 0 ? created_at : 0);
        s->bind(5, ft.first);
        s->exec();
      }
      auto c =
          rs("UPDATE channels SET generation = ?1, previous = CASE WHEN ?2 = 'snapshot' THEN previous ELSE "
             "?1 - 1 "
             "END, created_at = ?4 WHERE name = ?3");
      c->bind(1, g.number);
      c->bind(2, action);
      c->bind(3, g.channel);
      c->bind(4, g.channel_created_at);
      c->exec();
    }
    {
      auto s =
          rs("INSERT INTO follower_channels (channel, generation, applied_at) VALUES (?, ?, ?) ON CONFLICT "
             "(channel) "
             "DO UPDATE SET generation = excluded.generation, applied_at = excluded.applied_at");
      s->bind(1, g.channel);
      s->bind(2, g.number);
      s->bind(3, unix_now());
      s->exec();
    }
    rs.connection().exec("UPDATE meta SET value = value + 1 WHERE key = 'generation'");
    if (options.inside_apply) options.inside_apply(g.channel, g.number);
    tx.commit();
    return true;
  }

  // One pass: every followed channel brought to the primary's current generation.
  FollowProgress catch_up() {
    connect();
    FollowProgress done;
    db::Transaction read(*primary, db::TxKind::kRead);  // one snapshot of the primary
    std::vector<std::pair<std::string, std::int64_t>> heads;
    {
      auto s = ps("SELECT name, generation FROM channels ORDER BY name");
      while (s->step()) heads.emplace_back(s->text(0), s->int64(1));
    }
    for (const auto& [channel, head] : heads) {
      if (!options.channels.empty() &&
          std::find(options.channels.begin(), options.channels.end(), channel) == options.channels.end()) {
        continue;
      }
      for (std::int64_t k = applied(channel) + 1; k <= head; ++k) {
        GenerationRows g = read_generation(channel, k, k == head);
        if (!apply(g)) continue;
        done.generations++;
        done.blobs_fetched += g.blobs.size();
        done.blobs_present += g.blobs_present;
        done.bytes_fetched += g.bytes_fetched;
        totals.generations++;
        totals.blobs_fetched += g.blobs.size();
        totals.blobs_present += g.blobs_present;
        totals.bytes_fetched += g.bytes_fetched;
        if (options.applied) options.applied(channel, k);
        log(fmt::format("applied generation {} of channel {} ({} blobs fetched, {} present)", k, channel,
                        g.blobs.size(), g.blobs_present));
      }
    }
    read.commit();
    return done;
  }
};

Follower::Follower(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Follower::~Follower() = default;

const std::string& Follower::primary() const {
  return impl_->shown;
}

FollowProgress Follower::totals() const {
  return impl_->totals;
}

Result<std::unique_ptr<Follower>> Follower::open(const std::string& primary_uri,
                                                 const std::string& replica_path, FollowOptions options) {
  return db::guard(
      fmt::format("follow: replica {}", replica_path), [&]() -> Result<std::unique_ptr<Follower>> {
        for (const auto& c : options.channels) Store::Impl::require_channel_name(c);
        if (db::is_postgresql_uri(replica_path)) {
          fail(Code::kInvalidArgument,
               fmt::format("a replica is a local SQLite file, not a store on PostgreSQL ({}): give its path",
                           db::redact_uri(replica_path)));
        }
        auto impl = std::make_unique<Impl>();
        impl->replica_path = replica_path;
        impl->options = std::move(options);
        StoreOptions local;
        local.create = true;
        impl->replica = db::open_sqlite(replica_path, local);
        impl->rs = Statements(*impl->replica);
        std::string recorded_uri;
        std::int64_t recorded_store = 0;
        {
          auto s = impl->rs("SELECT primary_uri, primary_store FROM follower");
          if (s->step()) {
            recorded_uri = s->text(0);
            recorded_store = s->int64(1);
          }
          s->reset();
        }
        impl->uri = primary_uri.empty() ? recorded_uri : primary_uri;
        if (impl->uri.empty())
          fail(Code::kInvalidArgument,
               fmt::format("{} is no replica yet: name the primary's URI", replica_path));
        if (!db::is_postgresql_uri(impl->uri)) {
          fail(Code::kInvalidArgument,
               fmt::format("malformed PostgreSQL URI '{}': a follower follows a store on PostgreSQL "
                           "(postgresql://[user[:password]@][host][:port]/dbname[?param=value...])",
                           db::redact_uri(impl->uri)));
        }
        impl->shown = db::redact_uri(impl->uri);
        if (recorded_store == 0) {
          // A new replica: only a store with nothing of its own may become one.
          const std::int64_t content = scalar(impl->rs,
                                              "SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM "
                                              "generations) + (SELECT count(*) FROM app_versions)");
          if (content != 0) {
            fail(Code::kFailedPrecondition,
                 fmt::format("{} is a store with content of its own, not a replica: a replica starts empty "
                             "(follow into a new file)",
                             replica_path));
          }
        }
        impl->primary_store = recorded_store;
        impl->connect();  // a new replica adopts the primary's id; a replica checks it
        // Record (or bring up to date) which primary and channels this replica follows; the URI
        // without its password.
        auto s = impl->rs(
            "INSERT INTO follower (id, primary_uri, primary_store, channels, created_at) VALUES (1, ?, ?, ?, "
            "?) ON "
            "CONFLICT (id) DO UPDATE SET primary_uri = excluded.primary_uri, channels = excluded.channels");
        s->bind(1, impl->shown);
        s->bind(2, impl->primary_store);
        s->bind(3, join(impl->options.channels));
        s->bind(4, unix_now());
        s->exec();
        return std::unique_ptr<Follower>(new Follower(std::move(impl)));
      });
}

Result<FollowProgress> Follower::catch_up() {
  auto r = db::guard(fmt::format("follow {} into {}", impl_->shown, impl_->replica_path),
                     [&]() -> Result<FollowProgress> { return impl_->catch_up(); });
  if (!r) impl_->disconnect();  // reconnect next time: the session may be what failed
  return r;
}

Status Follower::run(const std::atomic<bool>& stop) {
  using namespace std::chrono;
  Impl& m = *impl_;
  auto backoff = m.options.backoff_min;
  std::unique_ptr<db::Listener> listener;
  while (!stop.load()) {
    Status failed = db::guard("listen", [&]() -> Status {
      // Listen before reading: whatever commits after the read started is heard.
      listener = db::listen_postgresql(m.uri, db::kGenerationTopic);
      m.log(fmt::format("listening to {} (backend {})", m.shown, listener->backend_pid()));
      return Status::ok();
    });
    while (failed.is_ok() && !stop.load()) {
      auto caught = catch_up();
      if (!caught) {
        failed = caught.error();
        break;
      }
      backoff = m.options.backoff_min;
      const auto deadline = steady_clock::now() + m.options.poll;
      bool heard = false;
      while (!stop.load() && !heard && steady_clock::now() < deadline) {
        const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
        failed = db::guard("listen", [&]() -> Status {
          heard = !listener->wait(std::clamp(left, milliseconds(1), milliseconds(200))).empty();
          return Status::ok();
        });
        if (!failed.is_ok()) break;
      }
    }
    listener.reset();
    if (stop.load()) break;
    if (failed.code() == Code::kFailedPrecondition) return failed;  // another store: no retry mends it
    m.disconnect();
    m.log(fmt::format("{}; reconnecting in {} ms", failed.to_string(), backoff.count()));
    const auto until = steady_clock::now() + backoff;
    while (!stop.load() && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
    backoff = std::min(backoff * 2, m.options.backoff_max);
  }
  return Status::ok();
}

Result<FollowStatus> follow_status(const std::string& replica_path, bool ask_primary,
                                   const std::string& primary_uri) {
  return db::guard(fmt::format("follow status of {}", replica_path), [&]() -> Result<FollowStatus> {
    StoreOptions local;
    local.read_only = true;
    local.create = false;
    auto r = db::open_sqlite(replica_path, local);
    FollowStatus out;
    {
      auto s = r->prepare("SELECT primary_uri, primary_store, channels FROM follower");
      if (!s->step()) {
        fail(Code::kFailedPrecondition,
             fmt::format("{} is no replica (codestore follow URI --db {} makes one)", replica_path,
                         replica_path));
      }
      out.primary = s->text(0);
      out.primary_store = s->int64(1);
      out.followed = split(s->text(2));
      s->reset();
    }
    std::map<std::string, ChannelFollowState> channels;
    {
      auto s = r->prepare("SELECT channel, generation, applied_at FROM follower_channels ORDER BY channel");
      while (s->step()) channels[s->text(0)] = {s->text(0), s->int64(1), s->int64(2), std::nullopt};
    }
    for (const auto& c : out.followed) channels.try_emplace(c, ChannelFollowState{c, 0, 0, std::nullopt});
    if (ask_primary) {
      const std::string uri = primary_uri.empty() ? out.primary : primary_uri;
      out.primary_error = db::guard("primary", [&]() -> Status {
        auto p = db::open_postgresql(uri, primary_options());
        Statements st(*p);
        const std::int64_t id = scalar(st, "SELECT value FROM meta WHERE key = 'store_id'");
        if (id != out.primary_store) {
          fail(Code::kFailedPrecondition, fmt::format("{} is store {}, not {} which this replica follows",
                                                      db::redact_uri(uri), id, out.primary_store));
        }
        auto s = st("SELECT name, generation FROM channels ORDER BY name");
        while (s->step()) {
          const std::string name = s->text(0);
          if (!out.followed.empty() &&
              std::find(out.followed.begin(), out.followed.end(), name) == out.followed.end()) {
            continue;
          }
          auto& c = channels.try_emplace(name, ChannelFollowState{name, 0, 0, std::nullopt}).first->second;
          c.primary = s->int64(1);
        }
        return Status::ok();
      });
      out.primary_reached = out.primary_error.is_ok();
    }
    for (auto& [name, c] : channels) out.channels.push_back(std::move(c));
    return out;
  });
}

}  // namespace codestore

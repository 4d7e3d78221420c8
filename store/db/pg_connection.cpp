#include "db/pg_connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "base/hex.h"
#include "db/migrations.h"
#include "db/sqlite_error.h"

namespace codestore::db {

namespace {

// PostgreSQL's type OID of bytea (pg_type.h: BYTEAOID).
constexpr Oid kByteaOid = 17;

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

// "socket /tmp/x/.s.PGSQL.5432" or "host db.example:5432", database "name": which server a
// message is about (never the password).
std::string where(PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  const std::string h = host != nullptr ? host : "";
  const std::string p = port != nullptr && *port != '\0' ? port : "5432";
  const std::string server = !h.empty() && h.front() == '/' ? fmt::format("socket {}/.s.PGSQL.{}", h, p)
                                                            : fmt::format("host {}:{}", h, p);
  return fmt::format("PostgreSQL database \"{}\" on {}", db != nullptr ? db : "", server);
}

// Throws the error `res` (or the connection) carries, as our code.
[[noreturn]] void fail_result(PGconn* conn, const PGresult* res, std::string_view what) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  // The server's primary message and its detail ("Key (name)=(x) already exists."), without
  // libpq's "ERROR:" prefix and cursor lines.
  const char* primary = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* detail = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr;
  std::string message = primary != nullptr ? primary : "";
  if (detail != nullptr) message += fmt::format(" ({})", detail);
  if (message.empty()) message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (PQstatus(conn) == CONNECTION_BAD) {
    fail(Code::kIOError, fmt::format("lost the connection to {} while {}: {}", where(conn), what, message));
  }
  if (state == nullptr) fail(Code::kIOError, fmt::format("{} on {}: {}", what, where(conn), message));
  fail(code_of_sqlstate(state), fmt::format("PostgreSQL: {} (SQLSTATE {}, {})", message, state, what));
}

// Runs `sql` (no parameters, any number of statements) and returns its last result.
ResultPtr run(PGconn* conn, const std::string& sql) {
  ResultPtr res(PQexec(conn, sql.c_str()), &PQclear);
  const auto st = PQresultStatus(res.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_result(conn, res.get(), "running " + sql.substr(0, 60));
  return res;
}

std::int64_t parse_int(const char* v) {
  if (v[0] == 't' && v[1] == '\0') return 1;
  if (v[0] == 'f' && v[1] == '\0') return 0;
  return std::strtoll(v, nullptr, 10);
}

// The store's SQL (SQLite's `?`, `?N`) with PostgreSQL's `$N`, and the number of parameters.
// A bare `?` is one more than the highest number so far, as SQLite numbers it; quoted text
// ('...', "...") is copied as it is.
std::string rewrite_parameters(const std::string& sql, int& count) {
  std::string out;
  out.reserve(sql.size() + 16);
  count = 0;
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      out.push_back(c);
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      out.push_back(c);
      continue;
    }
    if (c != '?') {
      out.push_back(c);
      continue;
    }
    int n = 0;
    std::size_t j = i + 1;
    while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') n = n * 10 + (sql[j++] - '0');
    if (j == i + 1) n = count + 1;
    count = std::max(count, n);
    out += fmt::format("${}", n);
    i = j - 1;
  }
  return out;
}

// Pipelined writes (libpq's pipeline mode): inside a write transaction a statement that
// returns no rows (Statement::exec) is sent and not waited for; its result is read at the
// next point that needs the server's answer: a read (sent in the same pipeline, so one
// round trip carries the writes before it and the read), commit, last_insert_id, exec(sql),
// or kMaxPending writes. The store's import, which writes several rows per image and reads
// little, then costs a round trip per read instead of one per statement. A write that fails
// is reported there, naming its own SQL; the transaction is then aborted on the server, as
// it would be had the error come at once, and nothing of it commits.
//
// Thread safety: part of its PgConnection (one thread at a time).
class Pipeline {
 public:
  explicit Pipeline(PGconn* conn) : conn_(conn) {}

  // Whether exec() may defer: inside a write transaction (set by begin/commit/rollback).
  bool deferring = false;
  bool pending() const { return !pending_.empty(); }

  // Sends a prepared statement's execution without waiting (the caller checked `deferring`).
  void send(const char* name, int n, const char* const* values, const int* lengths, const int* formats,
            const std::string& what) {
    if (pending_.size() >= kMaxPending) finish();
    if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn_) != 1) {
      fail_result(conn_, nullptr, "entering pipeline mode");
    }
    if (PQsendQueryPrepared(conn_, name, n, values, lengths, formats, 0) != 1) {
      abandon();
      fail_result(conn_, nullptr, "running " + what);
    }
    pending_.push_back(what);
  }

  // Sends one more query (a read, COMMIT) after the pending writes, reads every result and
  // returns that query's. The first failure among the writes is thrown, naming its SQL.
  ResultPtr finish_with(const std::function<int()>& send_last, const std::string& what) {
    if (send_last() != 1) {
      abandon();
      fail_result(conn_, nullptr, what);
    }
    pending_.push_back(what);
    return collect(/*keep_last=*/true);
  }
  // Reads the results of every pending write (throws the first failure).
  void finish() {
    if (pending_.empty()) return;
    collect(/*keep_last=*/false);
  }
  // Reads and drops every pending result (rollback: the transaction is being thrown away).
  void abandon() noexcept {
    if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF) return;
    try {
      collect(/*keep_last=*/false);
    } catch (...) {
    }
  }

 private:
  // Enough to keep the pipeline's replies (a few dozen bytes each) well inside the socket's
  // buffers while we are still sending: libpq writes in blocking mode and reads nothing
  // until collect(), so an unbounded pipeline could fill both directions and stall.
  static constexpr std::size_t kMaxPending = 256;

  ResultPtr collect(bool keep_last) {
    std::vector<std::string> sent = std::move(pending_);
    pending_.clear();
    ResultPtr kept(nullptr, &PQclear);
    ResultPtr failed(nullptr, &PQclear);
    std::string failed_what;
    bool lost = PQpipelineSync(conn_) != 1;
    for (std::size_t i = 0; i < sent.size() && !lost; ++i) {
      ResultPtr r(PQgetResult(conn_), &PQclear);
      if (!r) {
        lost = true;
        break;
      }
      const auto st = PQresultStatus(r.get());
      if (st == PGRES_FATAL_ERROR && !failed) {
        failed = std::move(r);
        failed_what = sent[i];
      } else if (keep_last && i + 1 == sent.size() && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
        kept = std::move(r);
      }
      // Each query's results end with a null.
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
      if (PQstatus(conn_) == CONNECTION_BAD) lost = true;
    }
    if (!lost) {
      // The sync's own result, then pipeline mode off (the connection is idle again).
      for (int nulls = 0; nulls < 2;) {
        ResultPtr r(PQgetResult(conn_), &PQclear);
        if (!r) {
          ++nulls;
          continue;
        }
        nulls = 0;
        if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
      }
      lost = PQexitPipelineMode(conn_) != 1 || PQstatus(conn_) == CONNECTION_BAD;
    }
    if (failed) fail_result(conn_, failed.get(), failed_what);
    if (lost || PQstatus(conn_) == CONNECTION_BAD)
      fail_result(conn_, nullptr, sent.empty() ? "" : sent.back());
    return kept;
  }

  PGconn* conn_;
  std::vector<std::string> pending_;  // what each query sent and not yet read is ("running SQL")
};

class PgStatement final : public Statement {
 public:
  PgStatement(PGconn* conn, Pipeline* pipeline, std::string sql, std::string name)
      : conn_(conn), pipeline_(pipeline), original_(std::move(sql)), name_(std::move(name)) {
    int count = 0;
    sql_ = rewrite_parameters(original_, count);
    params_.resize(static_cast<std::size_t>(count));
  }
  ~PgStatement() override {
    // A server-side statement lives until its connection closes: free it while the
    // connection can take commands (not inside a failed transaction, which refuses all but
    // ROLLBACK; it goes with the connection then).
    if (prepared_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_INERROR &&
        PQpipelineStatus(conn_) == PQ_PIPELINE_OFF) {
      PQclear(PQexec(conn_, ("DEALLOCATE " + name_).c_str()));
    }
  }

  void bind(int index, std::int64_t value) override {
    param(index) = {Kind::kText, std::to_string(value), {}};
  }
  void bind(int index, std::string_view text) override {
    param(index) = {Kind::kText, std::string(text), {}};
  }
  void bind_blob(int index, std::span<const std::uint8_t> bytes) override {
    auto& p = param(index);
    p = {Kind::kBlob, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), {}};
    p.view = {reinterpret_cast<const std::uint8_t*>(p.value.data()), p.value.size()};
  }
  void bind_blob_no_copy(int index, std::span<const std::uint8_t> bytes) override {
    param(index) = {Kind::kBlob, {}, bytes};
  }
  void bind_null(int index) override { param(index) = {}; }
  void clear_bindings() override {
    for (auto& p : params_) p = {};
  }

  bool step() override {
    if (!result_) execute();
    ++row_;
    decoded_.clear();
    return row_ < PQntuples(result_.get());
  }
  void exec() override {
    execute(/*defer=*/pipeline_->deferring);
    reset();
  }
  void reset() override {
    result_.reset();
    row_ = -1;
    decoded_.clear();
  }

  std::int64_t int64(int column) override {
    if (PQgetisnull(result_.get(), row_, column) != 0) return 0;
    return parse_int(PQgetvalue(result_.get(), row_, column));
  }
  std::string text(int column) override {
    if (PQgetisnull(result_.get(), row_, column) != 0) return {};
    return {PQgetvalue(result_.get(), row_, column),
            static_cast<std::size_t>(PQgetlength(result_.get(), row_, column))};
  }
  std::span<const std::uint8_t> blob(int column) override {
    if (PQgetisnull(result_.get(), row_, column) != 0) return {};
    const char* v = PQgetvalue(result_.get(), row_, column);
    const auto n = static_cast<std::size_t>(PQgetlength(result_.get(), row_, column));
    if (PQftype(result_.get(), column) != kByteaOid) return {reinterpret_cast<const std::uint8_t*>(v), n};
    // bytea as text: "\x" and two hex digits a byte (bytea_output = hex, set at connect).
    auto& out = decoded_[column];
    if (n < 2 || v[0] != '\\' || v[1] != 'x') fail(Code::kInternal, "bytea not in hex output form");
    out.resize((n - 2) / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const int hi = base::hex_digit(v[2 + 2 * i]);
      const int lo = base::hex_digit(v[3 + 2 * i]);
      if (hi < 0 || lo < 0) fail(Code::kInternal, "bytea hex output with a non-hex digit");
      out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return out;
  }

 private:
  enum class Kind { kNull, kText, kBlob };
  struct Param {
    Kind kind = Kind::kNull;
    std::string value;
    std::span<const std::uint8_t> view;  // a blob's bytes (value's, or the caller's)
  };

  Param& param(int index) {
    if (index < 1 || static_cast<std::size_t>(index) > params_.size()) {
      fail(Code::kInternal, fmt::format("parameter {} of {} in: {}", index, params_.size(), original_));
    }
    return params_[static_cast<std::size_t>(index) - 1];
  }

  // Runs the statement and keeps its result; `defer`: sends it in the pipeline and keeps no
  // result (a write inside a write transaction, Pipeline).
  void execute(bool defer = false) {
    const std::size_t n = params_.size();
    std::vector<const char*> values(n);
    std::vector<int> lengths(n), formats(n);
    for (std::size_t i = 0; i < n; ++i) {
      const Param& p = params_[i];
      if (p.kind == Kind::kText) {
        values[i] = p.value.c_str();
      } else if (p.kind == Kind::kBlob) {
        // An empty blob is not NULL: any non-null pointer with length 0.
        values[i] = p.view.empty() ? "" : reinterpret_cast<const char*>(p.view.data());
        lengths[i] = static_cast<int>(p.view.size());
        formats[i] = 1;
      }
    }
    if (!prepared_) {
      pipeline_->finish();  // PQprepare waits for its answer: nothing may be in flight
      // Text and integers untyped (the server infers them from the statement, as SQLite's
      // dynamic types take them); blobs bytea, sent binary.
      std::vector<Oid> types(n, 0);
      for (std::size_t i = 0; i < n; ++i) {
        if (params_[i].kind == Kind::kBlob) types[i] = kByteaOid;
      }
      ResultPtr prep(PQprepare(conn_, name_.c_str(), sql_.c_str(), static_cast<int>(n), types.data()),
                     &PQclear);
      if (PQresultStatus(prep.get()) != PGRES_COMMAND_OK)
        fail_result(conn_, prep.get(), "preparing " + original_);
      prepared_ = true;
    }
    row_ = -1;
    decoded_.clear();
    if (defer) {
      result_.reset();
      pipeline_->send(name_.c_str(), static_cast<int>(n), values.data(), lengths.data(), formats.data(),
                      "running " + original_);
      return;
    }
    if (pipeline_->pending()) {
      result_ = pipeline_->finish_with(
          [&] {
            return PQsendQueryPrepared(conn_, name_.c_str(), static_cast<int>(n), values.data(),
                                       lengths.data(), formats.data(), 0);
          },
          "running " + original_);
      return;
    }
    result_.reset(PQexecPrepared(conn_, name_.c_str(), static_cast<int>(n), values.data(), lengths.data(),
                                 formats.data(), 0));
    decoded_.clear();
    const auto st = PQresultStatus(result_.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      ResultPtr failed = std::move(result_);
      result_.reset();
      fail_result(conn_, failed.get(), "running " + original_);
    }
  }

  PGconn* conn_;
  Pipeline* pipeline_;  // the connection's
  std::string original_;
  std::string sql_;
  std::string name_;
  bool prepared_ = false;
  std::vector<Param> params_;
  ResultPtr result_{nullptr, &PQclear};
  int row_ = -1;
  std::map<int, std::vector<std::uint8_t>> decoded_;  // bytea columns of the current row
};

class PgConnection final : public Connection {
 public:
  PgConnection(PGconn* conn, const StoreOptions& options)
      : conn_(conn, &PQfinish), options_(options), pipeline_(conn) {}

  PGconn* raw() { return conn_.get(); }

  std::unique_ptr<Statement> prepare(const std::string& sql) override {
    return std::make_unique<PgStatement>(conn_.get(), &pipeline_, sql,
                                         fmt::format("codestore_{}", ++statements_));
  }
  void exec(const std::string& sql) override {
    pipeline_.finish();
    run(conn_.get(), sql);
  }
  void begin(TxKind kind) override {
    if (kind == TxKind::kRead) {
      run(conn_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ");
      return;
    }
    run(conn_.get(), "BEGIN ISOLATION LEVEL READ COMMITTED");
    try {
      take_write_lock(conn_.get(), options_);
    } catch (...) {
      rollback();
      throw;
    }
    pipeline_.deferring = true;
  }
  void commit() override {
    pipeline_.deferring = false;
    if (!pipeline_.pending()) {
      run(conn_.get(), "COMMIT");
      return;
    }
    // The last writes and COMMIT in one round trip.
    pipeline_.finish_with(
        [&] { return PQsendQueryParams(conn_.get(), "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0); },
        "committing");
  }
  void rollback() noexcept override {
    pipeline_.deferring = false;
    pipeline_.abandon();
    if (PQtransactionStatus(conn_.get()) == PQTRANS_IDLE) return;
    PQclear(PQexec(conn_.get(), "ROLLBACK"));
  }
  std::int64_t last_insert_id() override {
    if (pipeline_.pending()) {
      // The INSERT it follows is in flight: ask in the same round trip.
      auto r = pipeline_.finish_with(
          [&] {
            return PQsendQueryParams(conn_.get(), "SELECT lastval()", 0, nullptr, nullptr, nullptr, nullptr,
                                     0);
          },
          "reading lastval()");
      return parse_int(PQgetvalue(r.get(), 0, 0));
    }
    return parse_int(PQgetvalue(run(conn_.get(), "SELECT lastval()").get(), 0, 0));
  }
  std::vector<std::string> integrity_check() override {
    // PostgreSQL checks its pages as it reads them (and with data checksums, if the cluster
    // has them); amcheck verifies our indexes when an administrator installed it.
    pipeline_.finish();
    std::vector<std::string> lines;
    auto ext = run(conn_.get(), "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'");
    if (PQntuples(ext.get()) == 1) {
      auto r = run(conn_.get(),
                   "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam "
                   "WHERE n.nspname = current_schema() AND a.amname = 'btree'");
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        const std::string index = PQgetvalue(r.get(), i, 0);
        try {
          run(conn_.get(), fmt::format("SELECT bt_index_check('{}'::regclass)", index));
        } catch (const StatusError& e) {
          lines.push_back(fmt::format("index {}: {}", index, e.status().message()));
        }
      }
    }
    if (lines.empty()) lines.emplace_back("ok");
    return lines;
  }
  // The server writes its log into its files by itself (CHECKPOINT is for superusers).
  void checkpoint() override {}
  void reclaim_space() override { run(conn_.get(), "VACUUM"); }
  std::int64_t schema_version() override {
    pipeline_.finish();
    auto r = run(conn_.get(),
                 "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE "
                 "(SELECT coalesce(max(number), 0) FROM schema_migrations) END");
    return parse_int(PQgetvalue(r.get(), 0, 0));
  }
  // NOTIFY in the current transaction: PostgreSQL delivers it at commit, never for a rollback
  // (its payload must stay under 8000 bytes; the store's is a generation number).
  void notify(std::string_view topic, std::string_view payload) override {
    // A synchronous call: the pipelined writes before it are collected first (once per
    // generation, so the round trip is not worth a pipelined form).
    pipeline_.finish();
    const std::string t(topic), p(payload);
    const char* values[] = {t.c_str(), p.c_str()};
    ResultPtr res(
        PQexecParams(conn_.get(), "SELECT pg_notify($1, $2)", 2, nullptr, values, nullptr, nullptr, 0),
        &PQclear);
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) fail_result(conn_.get(), res.get(), "announcing " + p);
  }

  // The store's write lock (kWriteLockKey), inside the transaction just begun. Without
  // on_busy the server waits (lock_timeout, set at connect, ends the wait: 55P03, kBusy);
  // with it, try, ask, sleep, as SQLite's busy handler does.
  static void take_write_lock(PGconn* conn, const StoreOptions& options) {
    if (!options.on_busy) {
      run(conn, fmt::format("SELECT pg_advisory_xact_lock({})", kWriteLockKey));
      return;
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options.busy_timeout_ms);
    for (int attempt = 0;; ++attempt) {
      auto r = run(conn, fmt::format("SELECT pg_try_advisory_xact_lock({})", kWriteLockKey));
      if (parse_int(PQgetvalue(r.get(), 0, 0)) == 1) return;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline || !options.on_busy(attempt)) {
        fail(Code::kBusy, fmt::format("another writer holds the store's write lock on {} (waited {} ms)",
                                      where(conn), options.busy_timeout_ms));
      }
      const int step = attempt < 6 ? (1 << attempt) * 2 : 100;
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(step), deadline - now));
    }
  }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
  StoreOptions options_;
  Pipeline pipeline_;
  std::uint64_t statements_ = 0;
};

std::map<std::int64_t, AppliedMigration> read_applied(PGconn* conn) {
  std::map<std::int64_t, AppliedMigration> applied;
  auto has = run(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (parse_int(PQgetvalue(has.get(), 0, 0)) == 0) return applied;
  auto r = run(conn, "SELECT number, name, checksum FROM schema_migrations ORDER BY number");
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    applied[parse_int(PQgetvalue(r.get(), i, 0))] = {PQgetvalue(r.get(), i, 1), PQgetvalue(r.get(), i, 2)};
  }
  return applied;
}

// The migration runner of a PostgreSQL store, with db::migrate's rules (docs/schema.md
// "Migrations"): ours or refused, newer refused, checksums, one transaction per step. Ours:
// a database whose current schema has no tables yet, or has schema_migrations. Each step
// holds the write lock, so that two hosts opening a fresh database apply it once.
Status migrate_postgresql(PGconn* conn, const StoreOptions& options) {
  const auto& known = embedded_postgresql_migrations();
  const auto& reference = embedded_migrations();
  if (known.size() != reference.size() ||
      (!known.empty() && known.back().number != reference.back().number)) {
    return Status(
        Code::kInternal,
        fmt::format("this build has {} PostgreSQL migrations for {} SQLite ones: every migrations/NNNN_*.sql "
                    "needs its twin in migrations/postgresql/ (docs/store.md, \"Adding a migration\")",
                    known.size(), reference.size()));
  }
  auto tables = run(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()");
  const bool fresh = parse_int(PQgetvalue(tables.get(), 0, 0)) == 0;
  auto applied = read_applied(conn);
  if (!fresh && applied.empty()) {
    return Status(
        Code::kInvalidArgument,
        fmt::format("not a codestore database: {} has tables but no schema_migrations", where(conn)));
  }
  if (Status s = check_applied(known, applied); !s) return s;
  if (fresh && !options.create) {
    return Status(Code::kNotFound, fmt::format("{} has no codestore schema", where(conn)));
  }
  auto pending = pending_migrations(known, applied, options.read_only, options.migrate);
  if (!pending) return pending.error();
  for (const Migration* m : *pending) {
    run(conn, "BEGIN");
    try {
      PgConnection::take_write_lock(conn, options);
      run(conn,
          "CREATE TABLE IF NOT EXISTS schema_migrations (number BIGINT PRIMARY KEY, name TEXT NOT NULL, "
          "checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      // Another host may have applied it while we waited for the lock.
      auto done = run(conn, fmt::format("SELECT 1 FROM schema_migrations WHERE number = {}", m->number));
      if (PQntuples(done.get()) == 0) {
        run(conn, m->sql);
        const char* values[] = {m->name, nullptr};
        const std::string checksum = migration_checksum(m->sql);
        values[1] = checksum.c_str();
        ResultPtr rec(
            PQexecParams(conn,
                         fmt::format("INSERT INTO schema_migrations (number, name, checksum, applied_at) "
                                     "VALUES ({}, $1, $2, {})",
                                     m->number, static_cast<long long>(std::time(nullptr)))
                             .c_str(),
                         2, nullptr, values, nullptr, nullptr, 0),
            &PQclear);
        if (PQresultStatus(rec.get()) != PGRES_COMMAND_OK)
          fail_result(conn, rec.get(), "recording a migration");
      }
      run(conn, "COMMIT");
    } catch (...) {
      PQclear(PQexec(conn, "ROLLBACK"));
      throw;
    }
  }
  // Checks again: another host may have written a newer schema meanwhile.
  return check_applied(known, read_applied(conn));
}

// Our code for a failed connection: libpq gives no SQLSTATE for it, only its message.
Code code_of_connect_failure(std::string_view message) {
  const auto has = [&](std::string_view s) { return message.find(s) != std::string_view::npos; };
  if (has("password authentication failed") || has("no password supplied") || has("authentication failed") ||
      (has("role \"") && has("does not exist")) || has("pg_hba.conf") ||
      has("permission denied for database")) {
    return Code::kPermissionDenied;
  }
  if (has("database \"") && has("does not exist")) return Code::kNotFound;
  return Code::kIOError;
}

}  // namespace

bool is_postgresql_uri(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string redact_uri(std::string_view uri) {
  std::string out(uri);
  // user:PASSWORD@ in the authority part.
  const std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(out.find_first_of("/?", start), out.size());
    const std::size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      const std::size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... among the query parameters.
  for (std::size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    if (p == 0 || (out[p - 1] != '?' && out[p - 1] != '&')) continue;
    const std::size_t value = p + 9;
    const std::size_t end = std::min(out.find('&', value), out.size());
    out.replace(value, end - value, "***");
  }
  return out;
}

Code code_of_sqlstate(std::string_view s) noexcept {
  const auto cls = [&](std::string_view c) { return s.starts_with(c); };
  if (s == "55P03" || s == "40001" || s == "40P01" || s == "55006") return Code::kBusy;
  if (s == "25006" || s == "42501" || cls("28")) return Code::kPermissionDenied;
  if (s == "XX001" || s == "XX002") return Code::kCorruption;
  if (cls("23")) return Code::kFailedPrecondition;
  if (s == "3D000") return Code::kNotFound;
  if (cls("08") || cls("57P") || cls("58") || s == "53100") return Code::kIOError;
  if (cls("53") || cls("54")) return Code::kLimitExceeded;
  if (s == "57014") return Code::kCancelled;
  return Code::kInternal;
}

std::unique_ptr<Connection> open_postgresql(const std::string& uri, const StoreOptions& options) {
  if (options.snapshot) {
    fail(Code::kInvalidArgument,
         "a snapshot open is for a SQLite file (a copy nobody writes): a PostgreSQL store is read as it is, "
         "read-only if asked");
  }
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(uri.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error != nullptr ? parse_error : "out of memory";
    PQfreemem(parse_error);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    fail(Code::kInvalidArgument, fmt::format("malformed PostgreSQL URI: {}", why));
  }
  bool has_timeout = false;
  for (auto* o = parsed; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "connect_timeout") == 0 && o->val != nullptr) has_timeout = true;
  }
  PQconninfoFree(parsed);
  // A server that does not answer is an error within 10 s unless the URI says otherwise;
  // the URI's own values win (expand_dbname: "dbname" is the whole URI, read first).
  const std::string timeout = std::to_string(10);
  const char* keys[] = {"dbname", "application_name", has_timeout ? nullptr : "connect_timeout", nullptr};
  const char* values[] = {uri.c_str(), "codestore", has_timeout ? nullptr : timeout.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, 1);
  if (raw == nullptr) fail(Code::kLimitExceeded, "out of memory connecting to PostgreSQL");
  auto conn = std::make_unique<PgConnection>(raw, options);
  if (PQstatus(raw) != CONNECTION_OK) {
    std::string why = PQerrorMessage(raw);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    fail(code_of_connect_failure(why),
         fmt::format("cannot connect to PostgreSQL ({}): {}", redact_uri(uri), why));
  }
  // Session settings: our own messages only; bytea as hex (what blob() decodes); the
  // busy timeout as the lock wait of every statement (SQLite's busy_timeout); a read-only
  // open refused every write by the server itself.
  run(raw, "SET client_min_messages = warning");
  run(raw, "SET bytea_output = 'hex'");
  run(raw, fmt::format("SET lock_timeout = {}", std::max(options.busy_timeout_ms, 1)));
  check(migrate_postgresql(raw, options));
  if (options.read_only) run(raw, "SET default_transaction_read_only = on");
  return conn;
}

}  // namespace codestore::db

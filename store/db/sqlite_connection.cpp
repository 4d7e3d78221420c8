#include "db/sqlite_connection.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "db/migrations.h"
#include "db/sqlite_error.h"

namespace codestore::db {

namespace {

namespace fs = std::filesystem;

class SqliteStatement final : public Statement {
 public:
  SqliteStatement(SQLite::Database& db, const std::string& sql) : s_(db, sql) {}

  void bind(int index, std::int64_t value) override { s_.bind(index, value); }
  void bind(int index, std::string_view text) override { s_.bind(index, std::string(text)); }
  void bind_blob(int index, std::span<const std::uint8_t> bytes) override {
    s_.bind(index, bytes.data(), static_cast<int>(bytes.size()));
  }
  void bind_blob_no_copy(int index, std::span<const std::uint8_t> bytes) override {
    s_.bindNoCopy(index, bytes.data(), static_cast<int>(bytes.size()));
  }
  void bind_null(int index) override { s_.bind(index); }
  void clear_bindings() override { s_.clearBindings(); }
  bool step() override { return s_.executeStep(); }
  void exec() override { s_.exec(); }
  void reset() override { s_.tryReset(); }
  std::int64_t int64(int column) override { return s_.getColumn(column).getInt64(); }
  std::string text(int column) override { return s_.getColumn(column).getString(); }
  std::span<const std::uint8_t> blob(int column) override {
    const auto c = s_.getColumn(column);
    return {static_cast<const std::uint8_t*>(c.getBlob()), static_cast<std::size_t>(c.getBytes())};
  }

 private:
  SQLite::Statement s_;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(const std::string& filename, int flags, const StoreOptions& options)
      : options_(options), db_(filename, flags, options.busy_timeout_ms) {}

  SQLite::Database& db() { return db_; }

  std::unique_ptr<Statement> prepare(const std::string& sql) override {
    return std::make_unique<SqliteStatement>(db_, sql);
  }
  void exec(const std::string& sql) override { db_.exec(sql); }
  void begin(TxKind kind) override {
    db_.exec(kind == TxKind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
  void commit() override { db_.exec("COMMIT"); }
  void rollback() noexcept override {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {  // as SQLiteCpp's Transaction: a failed rollback leaves SQLite's own
    }
  }
  std::int64_t last_insert_id() override { return db_.getLastInsertRowid(); }
  std::vector<std::string> integrity_check() override {
    std::vector<std::string> lines;
    SQLite::Statement ic(db_, "PRAGMA integrity_check");
    while (ic.executeStep()) lines.push_back(ic.getColumn(0).getString());
    return lines;
  }
  void checkpoint() override { db_.exec("PRAGMA wal_checkpoint(TRUNCATE)"); }
  void reclaim_space() override { db_.exec("VACUUM"); }
  std::int64_t schema_version() override { return applied_schema_version(db_); }

  // SQLite's busy timeout, with StoreOptions::on_busy asked before each wait (a CLI tells
  // the user what it waits for, and stops waiting at a Ctrl-C).
  void install_busy_handler() {
    sqlite3_busy_handler(
        db_.getHandle(),
        [](void* arg, int attempt) -> int {
          auto& self = *static_cast<SqliteConnection*>(arg);
          const auto now = std::chrono::steady_clock::now();
          if (attempt == 0)
            self.busy_deadline_ = now + std::chrono::milliseconds(self.options_.busy_timeout_ms);
          if (now >= self.busy_deadline_ || !self.options_.on_busy(attempt)) return 0;
          // SQLite's own steps: short at first, then 100 ms.
          const int step = attempt < 6 ? (1 << attempt) * 2 : 100;
          std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
              std::chrono::milliseconds(step), self.busy_deadline_ - now));
          return 1;
        },
        this);
  }

 private:
  StoreOptions options_;
  SQLite::Database db_;
  std::chrono::steady_clock::time_point busy_deadline_;  // of the lock wait under way (on_busy)
};

// journal_mode = WAL takes the write lock from inside the pragma's read transaction, and
// SQLite's busy handler does not wait for such an upgrade (it could deadlock): a process
// opening a fresh database while another one migrates it gets SQLITE_BUSY at once. So the
// switch is retried here, within the busy timeout. WAL mode is kept in the file, so only
// the first opener of a database switches it.
void enable_wal(SQLite::Database& db, int busy_timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    try {
      if (db.execAndGet("PRAGMA journal_mode").getString() == "wal") return;
      db.execAndGet("PRAGMA journal_mode = WAL");
    } catch (const SQLite::Exception& e) {
      if ((e.getErrorCode() & 0xff) != SQLITE_BUSY) throw;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      fail(Code::kBusy, fmt::format("could not switch to WAL mode within {} ms", busy_timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A file: URI naming `path` with immutable=1 (SQLite's snapshot open): absolute, every byte
// but the unreserved ones percent-encoded, so that '?', '#' and '%' stay part of the name.
std::string immutable_uri(const std::string& path) {
  std::string uri = "file://";
  for (unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri.push_back(static_cast<char>(c));
    } else {
      uri += fmt::format("%{:02X}", c);
    }
  }
  return uri + "?immutable=1";
}

// A read-only open of a WAL database whose <db>-wal or <db>-shm is missing makes SQLite
// create them (when it may write the directory), owned by the reader, with the database's
// mode; a reader never removes them (it cannot checkpoint). Another user's files lock the
// owner out (SQLITE_READONLY on the next write). SQLite gives root's to the database's
// owner itself, and the owner's own are harmless: only other users are refused.
Status read_only_open_creates_nothing(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::ok();  // SQLite says what is wrong
  const uid_t me = ::geteuid();
  if (me == 0 || me == st.st_uid) return Status::ok();
  char header[20];
  std::ifstream in(path, std::ios::binary);
  // The read version (byte 19 of the header) is 2 in WAL mode.
  if (!in.read(header, sizeof header) || header[19] != 2) return Status::ok();
  std::string missing;
  for (const char* suffix : {"-wal", "-shm"}) {
    std::error_code ec;
    if (!fs::exists(path + suffix, ec)) missing += (missing.empty() ? "" : " and ") + path + suffix;
  }
  if (missing.empty()) return Status::ok();
  return Status(
      Code::kFailedPrecondition,
      fmt::format("a WAL database without {}: reading it as uid {} would create them, owned by that user, "
                  "and lock its owner (uid {}) out of writing; the owner's next write creates and keeps "
                  "them, or read it as a snapshot while nobody writes (StoreOptions::snapshot, "
                  "codestore --snapshot)",
                  missing, me, st.st_uid));
}

}  // namespace

std::unique_ptr<Connection> open_sqlite(const std::string& path, const StoreOptions& options) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (!exists && (!options.create || options.read_only)) fail(Code::kNotFound, "no such database file");
  // A user who may not write the file gets a read-only connection from SQLite even when
  // asking for more: the same rule holds.
  if (!options.snapshot && (options.read_only || ::access(path.c_str(), W_OK) != 0)) {
    check(read_only_open_creates_nothing(path));
  }
  const int flags = options.snapshot    ? SQLite::OPEN_READONLY | SQLITE_OPEN_URI
                    : options.read_only ? SQLite::OPEN_READONLY
                                        : SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE;
  // Readers need the busy timeout too (a read-only WAL connection with timeout 0 got
  // SQLITE_BUSY under concurrent writes): the constructor sets it.
  auto conn = std::make_unique<SqliteConnection>(options.snapshot ? immutable_uri(path) : path,
                                                 flags | SQLite::OPEN_NOMUTEX, options);
  if (options.on_busy) conn->install_busy_handler();
  auto& db = conn->db();
  MigrateOptions mo;
  mo.read_only = options.read_only;
  mo.backup = options.backup_before_migrate;
  mo.apply = options.migrate;
  check(migrate(db, path, mo));
  if (!options.read_only) {
    // After the checks, so that a refused file is never touched.
    enable_wal(db, options.busy_timeout_ms);
    db.exec("PRAGMA synchronous = NORMAL");
    // Keep <db>-wal and <db>-shm when the last connection closes (the WAL emptied to 0
    // bytes, journal_size_limit): readers who may not write the directory need them to
    // exist (SQLite's "Read-Only Databases", wal.html), and must not create them.
    int persist = 1;
    sqlite3_file_control(db.getHandle(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    db.exec("PRAGMA journal_size_limit = 67108864");
  }
  db.exec("PRAGMA foreign_keys = ON");
  db.exec("PRAGMA mmap_size = 268435456");
  return conn;
}

}  // namespace codestore::db

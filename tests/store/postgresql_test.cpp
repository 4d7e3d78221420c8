// What only a store on PostgreSQL has (issue 16): its URI, its server's refusals (a malformed
// URI, refused credentials, a missing database, a server that cannot be reached, one that goes
// away mid-import), the write lock every host's writers share, a schema newer than ours, and
// the migration twins. The behaviour both backends share is in the parameterized suites
// (store_test.cpp, state_machine_test.cpp, channel_test.cpp, release_store_test.cpp). All on
// the tests' real server (support/pg_server.h); these tests are .../postgresql too.
#include <codestore/store.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "db/migrations.h"
#include "db/pg_connection.h"
#include "db/sqlite_error.h"
#include "store_test_util.h"
#include "support/pg_server.h"

namespace codestore {
namespace {

using namespace store_testing;

class PgStore : public BackendTest {
 protected:
  std::string fresh(bool empty = false, const std::string& owner = "") {
    auto uri = testing::pg_create_database(empty, owner);
    mine_.push_back(uri);
    return uri;
  }
  void TearDown() override {
    for (const auto& uri : mine_) testing::pg_drop_database(uri);
    BackendTest::TearDown();
  }
  static std::string db_name(const std::string& uri) {
    const std::size_t start = uri.find(":///") + 4;
    return uri.substr(start, uri.find('?') - start);
  }

 private:
  std::vector<std::string> mine_;
};
INSTANTIATE_TEST_SUITE_P(Backends, PgStore, ::testing::Values(Backend::kPostgresql), backend_name);

TEST_P(PgStore, AMalformedUriIsAnInvalidArgumentSayingWhy) {
  for (const std::string uri : {"postgresql://[::1/db", "postgresql:///db?nosuch_parameter=1"}) {
    auto s = Store::open(uri, {});
    ASSERT_FALSE(s) << uri;
    EXPECT_EQ(s.error().code(), Code::kInvalidArgument) << s.error().to_string();
    EXPECT_NE(s.error().message().find("malformed PostgreSQL URI"), std::string::npos) << s.error().message();
  }
}

TEST_P(PgStore, RefusedCredentialsArePermissionDeniedAndThePasswordIsNeverShown) {
  const std::string dir = testing::pg_server_dir();
  const std::string db = db_name(fresh(true, "codestore_test_user"));
  const std::string wrong = "postgresql://codestore_test_user:sesame-wrong@/" + db + "?host=" + dir;
  auto s = Store::open(wrong, {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kPermissionDenied) << s.error().to_string();
  EXPECT_NE(s.error().message().find("password authentication failed"), std::string::npos)
      << s.error().message();
  EXPECT_EQ(s.error().to_string().find("sesame-wrong"), std::string::npos) << s.error().to_string();

  // The right password opens it (and creates the schema in the owner's database).
  const std::string right = "postgresql://codestore_test_user:right@/" + db + "?host=" + dir;
  auto ok = Store::open(right, {});
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ((*ok)->path(), "postgresql://codestore_test_user:***@/" + db + "?host=" + dir);
  EXPECT_EQ(import_bytes(**ok, variant("hello.beam", 0)), 1);
}

TEST_P(PgStore, AnUnknownRoleIsPermissionDenied) {
  const std::string uri =
      "postgresql:///" + db_name(fresh()) + "?host=" + testing::pg_server_dir() + "&user=nosuch";
  auto s = Store::open(uri, {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kPermissionDenied) << s.error().to_string();
  EXPECT_NE(s.error().message().find("nosuch"), std::string::npos) << s.error().message();
}

TEST_P(PgStore, AMissingDatabaseIsNotFoundAndAnUnreachableServerNamesItsSocket) {
  auto missing = Store::open(testing::pg_uri("no_such_database"), {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound) << missing.error().to_string();
  EXPECT_NE(missing.error().message().find("no_such_database"), std::string::npos);

  testing::TempDir nowhere;
  auto gone = Store::open("postgresql:///x?host=" + nowhere.path().string() + "&user=postgres", {});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Code::kIOError) << gone.error().to_string();
  EXPECT_NE(gone.error().message().find(nowhere.path().string() + "/.s.PGSQL.5432"), std::string::npos)
      << gone.error().message();
}

TEST_P(PgStore, AFreshDatabaseGetsTheSchemaUnlessCreateIsOffAndAForeignOneIsRefused) {
  const std::string empty = fresh(true);
  auto no_create = Store::open(empty, {.create = false});
  ASSERT_FALSE(no_create);
  EXPECT_EQ(no_create.error().code(), Code::kNotFound) << no_create.error().to_string();
  EXPECT_TRUE(testing::pg_rows(empty, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'").empty());
  auto made = Store::open(empty, {});
  ASSERT_TRUE(made) << made.error().to_string();
  EXPECT_EQ((*made)->stats()->schema_version, Store::schema_version());

  const std::string foreign = fresh(true);
  testing::pg_exec(db_name(foreign), "CREATE TABLE invoices (id integer)");
  auto refused = Store::open(foreign, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kInvalidArgument) << refused.error().to_string();
  EXPECT_NE(refused.error().message().find("not a codestore database"), std::string::npos);
  EXPECT_EQ(testing::pg_rows(foreign, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
            std::vector<std::string>{"1|"});
}

// Schema 10: the zstd frames of blobs and chunks are stored out of line uncompressed
// (EXTERNAL), not offered to TOAST's pglz, which a zstd frame never rewards; what the
// dictionaries hold keeps the default. The server's own catalog says so; and a stored frame
// reads back whole.
TEST_P(PgStore, BlobAndChunkFramesAreStoredExternalNotCompressedAgain) {
  const std::string uri = fresh(true);
  auto store = open_or_die(uri);
  const std::string storage =
      "SELECT c.relname, a.attname, a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
      "WHERE c.relname IN ('blobs', 'chunks', 'dictionaries') AND a.attname IN ('data', 'bytes') ORDER BY 1";
  EXPECT_EQ(testing::pg_rows(uri, storage),
            (std::vector<std::string>{"blobs|data|e|", "chunks|data|e|", "dictionaries|bytes|x|"}));
  // stdlib's lists.beam: its recipe and its Dbgi chunk are well over TOAST's ~2 kB.
  std::vector<std::uint8_t> lists;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/erlang/lib")) {
    if (e.path().filename().string().rfind("stdlib-", 0) == 0)
      lists = read_file(e.path() / "ebin/lists.beam");
  }
  ASSERT_FALSE(lists.empty());
  ASSERT_GT(import_bytes(*store, lists), 0);
  auto back = store->get("lists", 1, /*verify_sha256=*/true);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, lists);
}

TEST_P(PgStore, ADatabaseWithANewerSchemaIsRefused) {
  TempDir dir;
  const std::string uri = store_at(dir);
  testing::pg_exec(db_name(uri),
                   "INSERT INTO schema_migrations (number, name, checksum, applied_at) "
                   "VALUES (9999, '9999_future.sql', 'x', 0)");
  auto s = Store::open(uri, {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kNotSupported) << s.error().to_string();
  EXPECT_NE(s.error().message().find("9999"), std::string::npos) << s.error().message();
}

TEST_P(PgStore, ReadOnlyRefusesWritesAndASnapshotIsASqliteFilesOnly) {
  TempDir dir;
  const std::string uri = store_at(dir);
  import_bytes(*open_or_die(uri), variant("hello.beam", 0));
  auto ro = Store::open(uri, {.read_only = true});
  ASSERT_TRUE(ro) << ro.error().to_string();
  EXPECT_EQ((*ro)->active_info("hello")->version, 1);
  auto w = (*ro)->import(variant("hello.beam", 1), "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Code::kPermissionDenied);
  auto snap = Store::open(uri, {.snapshot = true});
  ASSERT_FALSE(snap);
  EXPECT_EQ(snap.error().code(), Code::kInvalidArgument) << snap.error().to_string();
}

// A session of our own that holds the store's write lock until it ends.
struct LockHolder {
  explicit LockHolder(const std::string& uri) : conn(PQconnectdb(uri.c_str()), &PQfinish) {
    EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    run("BEGIN");
    run("SELECT pg_advisory_xact_lock(" + std::to_string(db::kWriteLockKey) + ")");
  }
  void run(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn.get(), sql.c_str()), &PQclear);
    EXPECT_TRUE(PQresultStatus(r.get()) == PGRES_COMMAND_OK || PQresultStatus(r.get()) == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(conn.get());
  }
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn;
};

TEST_P(PgStore, AWriterWaitsForTheWriteLockAsLongAsItsBusyTimeoutThenIsBusy) {
  TempDir dir;
  const std::string uri = store_at(dir);
  auto store = open_or_die(uri, {.busy_timeout_ms = 200});
  {
    LockHolder other(uri);
    auto r = store->import(variant("hello.beam", 0), "x");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Code::kBusy) << r.error().to_string();
    // With on_busy (the CLI's --wait): asked while it waits, and false gives up at once.
    int asked = 0;
    auto asking = open_or_die(uri, {.busy_timeout_ms = 5000, .on_busy = [&](int) { return ++asked < 3; }});
    auto r2 = asking->import(variant("hello.beam", 0), "x");
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code(), Code::kBusy) << r2.error().to_string();
    EXPECT_EQ(asked, 3);
  }
  // The lock is free again: nothing was half-written, the import goes through as version 1.
  EXPECT_EQ(import_bytes(*store, variant("hello.beam", 0)), 1);
}

TEST_P(PgStore, AServerThatGoesAwayMidImportWritesNothing) {
  TempDir dir;
  const std::string uri = store_at(dir);
  for (int i = 0; i < 8; ++i)
    write_file(dir / ("tree/app-1/ebin/m" + std::to_string(i) + ".beam"), variant("hello.beam", i + 1));
  auto store = open_or_die(uri);
  std::atomic<bool> killed{false};
  ImportOptions o;
  o.progress = [&](std::size_t done, std::size_t, const std::string&) {
    if (done == 4 && !killed.exchange(true)) {
      testing::pg_exec("postgres",
                       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                           db_name(uri) + "' AND application_name = 'codestore'");
    }
  };
  auto r = store->import_tree({(dir / "tree").string()}, o);
  ASSERT_TRUE(killed.load());
  ASSERT_FALSE(r) << "an import on a terminated connection succeeded";
  EXPECT_EQ(r.error().code(), Code::kIOError) << r.error().to_string();
  EXPECT_NE(r.error().message().find("connection"), std::string::npos) << r.error().message();
  store.reset();
  auto again = open_or_die(uri);
  EXPECT_TRUE(again->list()->empty());
  EXPECT_EQ(*again->generation(), 0u);
  EXPECT_EQ(testing::pg_rows(uri, "SELECT count(*) FROM blobs"), std::vector<std::string>{"0|"});
}

// Inside a write transaction the backend pipelines the writes (db/pg_connection.cpp,
// Pipeline): a write the server refuses is reported at the latest by the next read or the
// commit, naming its own statement and SQLSTATE, and nothing of the transaction commits.
TEST_P(PgStore, APipelinedWriteThatFailsIsReportedNamingItAndNothingCommits) {
  const std::string uri = fresh();
  auto conn = db::open_postgresql(uri, {});
  auto insert =
      conn->prepare("INSERT INTO channels (name, generation, previous, created_at) VALUES (?, 0, 0, 0)");
  auto count = conn->prepare("SELECT count(*) FROM channels WHERE name LIKE 'p%'");
  const auto rows = [&] {
    count->step();
    const auto n = count->int64(0);
    count->reset();
    return n;
  };
  // Runs `tail` after writes p1, p2, p2 (refused: duplicate key), p3; the first error thrown.
  const auto refused = [&](const std::function<void()>& tail) -> std::optional<Status> {
    conn->begin(db::TxKind::kWrite);
    try {
      for (const char* name : {"p1", "p2", "p2", "p3"}) {
        insert->bind(1, std::string_view(name));
        insert->exec();
      }
      tail();
    } catch (const db::StatusError& e) {
      conn->rollback();
      return e.status();
    }
    conn->rollback();
    return std::nullopt;
  };
  for (const auto& [what, tail] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"commit", [&] { conn->commit(); }}, {"a read", [&] { rows(); }}}) {
    const auto status = refused(tail);
    ASSERT_TRUE(status) << "a refused write followed by " << what << " reported nothing";
    EXPECT_EQ(status->code(), Code::kFailedPrecondition) << status->to_string();
    EXPECT_NE(status->message().find("INSERT INTO channels"), std::string::npos) << status->message();
    EXPECT_NE(status->message().find("23505"), std::string::npos) << status->message();
    EXPECT_EQ(rows(), 0) << "after " << what;
  }
  // The connection works on: the next transaction commits.
  conn->begin(db::TxKind::kWrite);
  insert->bind(1, std::string_view("p4"));
  insert->exec();
  conn->commit();
  EXPECT_EQ(rows(), 1);
}

// As above, but the server ends the session while the import is writing: its first image's
// writes are in the pipeline, unanswered. The error is the lost connection, naming the
// socket; nothing of the import is in the database.
TEST_P(PgStore, AServerThatGoesAwayWhileTheImportWritesWritesNothing) {
  TempDir dir;
  const std::string uri = store_at(dir);
  constexpr std::size_t kFiles = 6;
  for (std::size_t i = 0; i < kFiles; ++i)
    write_file(dir / ("tree/app-1/ebin/m" + std::to_string(i) + ".beam"), variant("hello.beam", int(i) + 1));
  const auto counts = [&] {
    std::vector<std::string> out;
    for (const char* table : {"blobs", "versions", "modules", "channel_modules", "generations", "events"}) {
      out.push_back(table +
                    (" " + testing::pg_rows(uri, std::string("SELECT count(*) FROM ") + table).at(0)));
    }
    return out;
  };
  const auto before = counts();
  auto store = open_or_die(uri);
  std::size_t prepared = 0;
  int asked_after = 0;
  bool killed = false;
  ImportOptions o;
  o.progress = [&](std::size_t done, std::size_t, const std::string&) { prepared = done; };
  // interrupted() is asked once more after the last file is prepared, then before each image
  // is inserted: the third time after, image 1 is written and image 2 not yet.
  o.interrupted = [&] {
    if (prepared == kFiles && ++asked_after == 3) {
      testing::pg_exec("postgres",
                       "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = '" +
                           db_name(uri) + "' AND application_name = 'codestore'");
      killed = true;
    }
    return false;
  };
  auto r = store->import_tree({(dir / "tree").string()}, o);
  ASSERT_TRUE(killed) << "the import ended before its second image";
  ASSERT_FALSE(r) << "an import on a terminated connection succeeded";
  EXPECT_EQ(r.error().code(), Code::kIOError) << r.error().to_string();
  EXPECT_NE(r.error().message().find("lost the connection"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("socket " + testing::pg_server_dir()), std::string::npos)
      << r.error().message();
  store.reset();
  EXPECT_EQ(counts(), before);
  EXPECT_EQ(*open_or_die(uri)->generation(), 0u);
}

TEST_P(PgStore, EveryMigrationHasAPostgresqlTwinOfTheSameNumberAndName) {
  const auto& sqlite = db::embedded_migrations();
  const auto& pg = db::embedded_postgresql_migrations();
  ASSERT_EQ(pg.size(), sqlite.size()) << "every migrations/NNNN_*.sql needs migrations/postgresql/NNNN_*.sql";
  for (std::size_t i = 0; i < sqlite.size(); ++i) {
    EXPECT_EQ(pg[i].number, sqlite[i].number);
    EXPECT_STREQ(pg[i].name, sqlite[i].name);
  }
}

TEST_P(PgStore, SqlstatesMapToOurCodes) {
  EXPECT_EQ(db::code_of_sqlstate("55P03"), Code::kBusy);                // lock_not_available (lock_timeout)
  EXPECT_EQ(db::code_of_sqlstate("40001"), Code::kBusy);                // serialization_failure
  EXPECT_EQ(db::code_of_sqlstate("40P01"), Code::kBusy);                // deadlock_detected
  EXPECT_EQ(db::code_of_sqlstate("25006"), Code::kPermissionDenied);    // read_only_sql_transaction
  EXPECT_EQ(db::code_of_sqlstate("42501"), Code::kPermissionDenied);    // insufficient_privilege
  EXPECT_EQ(db::code_of_sqlstate("28P01"), Code::kPermissionDenied);    // invalid_password
  EXPECT_EQ(db::code_of_sqlstate("XX001"), Code::kCorruption);          // data_corrupted
  EXPECT_EQ(db::code_of_sqlstate("23505"), Code::kFailedPrecondition);  // unique_violation
  EXPECT_EQ(db::code_of_sqlstate("08006"), Code::kIOError);             // connection_failure
  EXPECT_EQ(db::code_of_sqlstate("57P01"), Code::kIOError);             // admin_shutdown
  EXPECT_EQ(db::code_of_sqlstate("53100"), Code::kIOError);             // disk_full
  EXPECT_EQ(db::code_of_sqlstate("54000"), Code::kLimitExceeded);       // program_limit_exceeded
  EXPECT_EQ(db::code_of_sqlstate("42P01"), Code::kInternal);            // undefined_table: our bug
  EXPECT_EQ(db::redact_uri("postgresql://u:secret@h:5/d?password=x&host=/s"),
            "postgresql://u:***@h:5/d?password=***&host=/s");
  EXPECT_EQ(db::redact_uri("postgresql://u@h/d"), "postgresql://u@h/d");
  EXPECT_TRUE(db::is_postgresql_uri("postgres://h/d"));
  EXPECT_FALSE(db::is_postgresql_uri("./postgresql.db"));
}

}  // namespace
}  // namespace codestore

// Bad input gets a clear error and loses nothing: damaged blobs, foreign and newer
// databases, read-only files, locks held past the timeout, malformed images in a batch,
// and the migration runner's refusals and backups.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "raw_db.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

// Creates a store with hello (1 version) and attrs, fully checkpointed, closed.
void make_store(const std::string& path) {
  auto store = open_or_die(path);
  import_bytes(*store, read_file(fixture("hello.beam")));
  import_bytes(*store, read_file(fixture("attrs.beam")));
  ASSERT_TRUE(store->checkpoint());
}

TEST(StoreDamage, FlippedByteInABlobIsNamedByVerifyAndGet) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  // Find hello's stored frame in the file and flip one byte in its middle, as a bad disk would.
  std::vector<std::uint8_t> frame;
  {
    RawDb raw(db);
    frame =
        raw.blob("SELECT b.data FROM blobs b JOIN versions v ON v.blob_id = b.id WHERE v.module = 'hello'");
    raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  ASSERT_GT(frame.size(), 64u);
  auto file = read_file(db);
  const auto mid = frame.begin() + static_cast<std::ptrdiff_t>(frame.size() / 2);
  auto at = std::search(file.begin(), file.end(), mid, mid + 24);
  ASSERT_NE(at, file.end()) << "frame not found in the file";
  *at ^= 0x5a;
  write_file(db, file);

  auto store = open_or_die(db);
  auto got = store->get("hello", 1);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kCorruption);
  EXPECT_NE(got.error().message().find("hello version 1"), std::string::npos) << got.error().message();
  // Everything else still reads.
  EXPECT_EQ(*store->get("attrs", 1, true), read_file(fixture("attrs.beam")));
  EXPECT_EQ(store->list()->size(), 2u);
  EXPECT_TRUE(store->versions("hello"));
  auto v = store->verify();
  ASSERT_TRUE(v) << v.error().to_string();
  ASSERT_EQ(v->damage.size(), 1u);
  EXPECT_EQ(v->damage[0].module, "hello");
  EXPECT_EQ(v->damage[0].version, 1);
  auto out = run_cli(db, {"verify"});
  EXPECT_EQ(out.code, 3);
  EXPECT_NE(out.out.find("hello@1"), std::string::npos) << out.out;
}

TEST(StoreDamage, NewerSchemaIsRefusedAndTheFileUntouched) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  {
    RawDb raw(db);
    raw.exec(
        "INSERT INTO schema_migrations (number, name, checksum, applied_at) VALUES (99, '0099_future.sql', "
        "'x', 0)");
    raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  const auto before = read_file(db);
  auto s = Store::open(db);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kNotSupported);
  EXPECT_NE(s.error().message().find("newer"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find(db), std::string::npos);
  EXPECT_EQ(read_file(db), before);
  EXPECT_EQ(Store::open(db, {.read_only = true}).error().code(), Code::kNotSupported);
  EXPECT_EQ(read_file(db), before);
}

TEST(StoreDamage, SqliteFileThatIsNotOursIsRefusedUntouched) {
  TempDir dir;
  const std::string db = dir / "other.db";
  {
    RawDb raw(db);
    raw.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
  }
  const auto before = read_file(db);
  auto s = Store::open(db);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kInvalidArgument);
  EXPECT_NE(s.error().message().find("not a codestore database"), std::string::npos) << s.error().message();
  EXPECT_EQ(read_file(db), before);

  // Not SQLite at all.
  write_file(dir / "text.db", std::vector<std::uint8_t>(4096, 'x'));
  auto t = Store::open(dir / "text.db");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Code::kCorruption);
  EXPECT_NE(t.error().message().find("SQLITE_NOTADB"), std::string::npos) << t.error().message();
}

TEST(StoreDamage, ReadOnlyOpenReadsAndRefusesWrites) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  auto store = open_or_die(db, {.read_only = true});
  EXPECT_EQ(*store->get("hello", 1), read_file(fixture("hello.beam")));
  auto w = store->import(variant("hello.beam", 1), "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Code::kPermissionDenied);
  EXPECT_EQ(store->activate("hello", 1).error().code(), Code::kPermissionDenied);
  EXPECT_EQ(store->record_served("hello", 1).code(), Code::kPermissionDenied);
  EXPECT_EQ(Store::open(dir / "missing.db", {.read_only = true}).error().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(dir / "missing.db"));
}

// Tests run as root, which ignores file modes: chmod 0444 would not stop a write. The
// immutable attribute (chattr +i) stops root too, so the store meets a file the operating
// system really refuses to write: SQLite falls back to a read-only open, reads work and
// writes fail with SQLITE_READONLY, which we report as kPermissionDenied.
TEST(StoreDamage, FileThatRefusesWritesReadsButCannotChange) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  if (std::system(("chattr +i " + db + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "chattr +i is not available here";
  }
  struct Unlock {
    std::string path;
    ~Unlock() { (void)std::system(("chattr -i " + path).c_str()); }
  } unlock{db};
  const auto before = read_file(db);
  auto s = Store::open(db);
  ASSERT_TRUE(s) << s.error().to_string();
  auto& store = **s;
  EXPECT_EQ(*store.get("hello", 1), read_file(fixture("hello.beam")));
  auto w = store.import(variant("hello.beam", 1), "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Code::kPermissionDenied) << w.error().to_string();
  EXPECT_NE(w.error().message().find("SQLITE_READONLY"), std::string::npos) << w.error().message();
  s->reset();
  EXPECT_EQ(read_file(db), before);
  auto cli_write = run_cli(db, {"import", fixture("attrs.beam"), "--lib", "x"});
  EXPECT_EQ(cli_write.code, 1);
  EXPECT_NE(cli_write.err.find("permission denied"), std::string::npos) << cli_write.err;
}

TEST(StoreDamage, LockHeldPastTheTimeoutIsBusyAndReadsGoOn) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  // Another process takes the write lock and holds it until we close the pipe.
  int ready[2], release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(release[1]);  // else our own copy of the write end keeps the pipe open
    sqlite3* raw = nullptr;
    sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    const int rc = sqlite3_exec(raw, "BEGIN IMMEDIATE; INSERT INTO events (time, action) VALUES (0, 'held')",
                                nullptr, nullptr, nullptr);
    char c = rc == SQLITE_OK ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(release[0], &c, 1);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto store = open_or_die(db, {.busy_timeout_ms = 200});
  auto w = store->import(variant("hello.beam", 1), "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), Code::kBusy);
  EXPECT_NE(w.error().message().find("SQLITE_BUSY"), std::string::npos) << w.error().message();
  EXPECT_EQ(*store->get("hello", 1), read_file(fixture("hello.beam")));  // WAL: readers go on
  close(release[1]);
  int status = 0;
  waitpid(child, &status, 0);
  // The lock is gone (the child's transaction rolled back): the same import succeeds.
  EXPECT_EQ(import_bytes(*store, variant("hello.beam", 1)), 2);
  const auto history = store->history();
  for (const auto& e : *history) EXPECT_NE(e.action, "held");
  close(ready[0]);
  close(ready[1]);
  close(release[0]);
}

TEST(StoreDamage, MalformedImageInABatchNamesTheFileAndWritesNothing) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  auto store = open_or_die(db);
  const auto gen = *store->generation();
  const auto events = store->history()->size();
  write_file(dir / "batch/a.beam", variant("hello.beam", 5));
  auto bad = read_file(fixture("attrs.beam"));
  bad.resize(bad.size() / 2);
  write_file(dir / "batch/b_bad.beam", bad);
  write_file(dir / "batch/c.beam", read_file(fixture("loader/v1/m.beam")));
  auto r = store->import_tree({dir / "batch"}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption);
  EXPECT_NE(r.error().message().find(dir / "batch/b_bad.beam"), std::string::npos) << r.error().message();
  EXPECT_EQ(*store->generation(), gen);
  EXPECT_EQ(store->history()->size(), events);
  EXPECT_EQ(store->versions("hello")->size(), 1u);
  EXPECT_EQ(store->versions("m").error().code(), Code::kNotFound);
  EXPECT_EQ(store->stats()->blobs, 2);

  auto out = run_cli(db, {"import", dir / "batch"});
  EXPECT_EQ(out.code, 1);
  EXPECT_NE(out.err.find("b_bad.beam"), std::string::npos) << out.err;
  EXPECT_EQ(store->versions("hello")->size(), 1u);

  // Junk that is not an image at all, and a missing path.
  write_file(dir / "junk.beam", "nope");
  auto junk = store->import(read_file(dir / "junk.beam"), (dir / "junk.beam").string());
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("junk.beam"), std::string::npos);
  auto missing = store->import_tree({dir / "nope"}, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST(StoreMigrations, EditedMigrationIsRefused) {
  TempDir dir;
  const std::string db = dir / "s.db";
  make_store(db);
  {
    RawDb raw(db);
    raw.exec("UPDATE schema_migrations SET checksum = 'deadbeef' WHERE number = 1");
  }
  auto s = Store::open(db);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kCorruption);
  EXPECT_NE(s.error().message().find("0001_initial.sql was edited"), std::string::npos)
      << s.error().message();
}

TEST(StoreMigrations, PendingStepIsAppliedAfterABackupBesideTheFile) {
  TempDir dir;
  const std::string db = dir / "s.db";
  {
    // A codestore file at schema 0 with something in it: the backup must carry it.
    RawDb raw(db);
    raw.exec("PRAGMA application_id = 1130648436");  // 0x43645374, "CdSt"
    raw.exec(
        "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT "
        "NULL, "
        "applied_at INTEGER NOT NULL)");
    raw.exec("CREATE TABLE keepme (x); INSERT INTO keepme VALUES (42)");
  }
  // Read-only and non-migrating opens refuse; nothing is written.
  EXPECT_EQ(Store::open(db, {.read_only = true}).error().code(), Code::kPermissionDenied);
  EXPECT_EQ(Store::open(db, {.migrate = false}).error().code(), Code::kFailedPrecondition);
  auto store = open_or_die(db);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->stats()->schema_version, Store::schema_version());
  std::vector<std::string> backups;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string prefix = "s.db.backup-0-to-" + std::to_string(Store::schema_version()) + "-";
    if (e.path().filename().string().rfind(prefix, 0) == 0) backups.push_back(e.path().string());
  }
  ASSERT_EQ(backups.size(), 1u);
  RawDb backup(backups[0], SQLITE_OPEN_READONLY);
  EXPECT_EQ(backup.blob("SELECT CAST(x AS BLOB) FROM keepme"), (std::vector<std::uint8_t>{'4', '2'}));
  // The migrated store works.
  EXPECT_EQ(import_bytes(*store, read_file(fixture("hello.beam"))), 1);
}

TEST(StoreMigrations, FreshDatabaseNeedsNoBackup) {
  TempDir dir;
  auto store = open_or_die(dir / "s.db");
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().find("backup"), std::string::npos) << e.path();
  }
  RawDb raw(dir / "s.db");
  // Every step, one row each: one per migrations/NNNN_*.sql, the newest the schema version.
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(CODESTORE_SOURCE_DIR) / "migrations"))
    files += e.is_regular_file() && e.path().extension() == ".sql";
  const std::string steps = std::to_string(files);
  EXPECT_EQ(raw.blob("SELECT CAST(count(*) AS BLOB) FROM schema_migrations"),
            std::vector<std::uint8_t>(steps.begin(), steps.end()));
  const std::string newest = std::to_string(Store::schema_version());
  EXPECT_EQ(raw.blob("SELECT CAST(max(number) AS BLOB) FROM schema_migrations"),
            std::vector<std::uint8_t>(newest.begin(), newest.end()));
}

}  // namespace
}  // namespace codestore

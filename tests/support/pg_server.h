// A real PostgreSQL server for the tests (no mock of it anywhere: issue 16), and a fresh
// database per test in it.
//
// The server: `initdb` into a directory of its own under /tmp (short: its Unix socket path
// must stay under ~107 bytes; /tmp is searchable by every user) as an unprivileged user
// (`runuser -u postgres --` when we are root: initdb refuses root), its superuser named
// `postgres` either way; `pg_ctl start` listening on that directory's Unix socket only
// (listen_addresses=''), durability off (fsync, synchronous_commit, full_page_writes: a test
// server's data dies with it). Its binaries: `pg_config --bindir`, else
// /usr/lib/postgresql/<newest>/bin (they are not on PATH on Debian).
//
// Which server a test process uses: the one CTest's fixture `postgres.start` started
// (CODESTORE_TEST_PG_DIR names its directory; `postgres.stop` stops it after the last test),
// so that a run of many test processes starts one server; else (a test binary run by hand)
// one this process starts on first use and stops when it exits, also after failed tests.
//
// A role codestore_test_user with the password "right" must log in with it (scram-sha-256); every
// other role is trusted on the socket.
//
// Each test gets a database of its own: CREATE DATABASE ... TEMPLATE codestore_template, a
// database the server's starter migrated to our newest schema once (so a test neither
// runs initdb nor the migrations), dropped again when the test ends.
//
// Thread safety: pg_server_dir() and the database calls are safe from several threads
// (a mutex guards the process's own server); PgServer's statics are not meant to race.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace codestore::testing {

class PgServer {
 public:
  // Makes `dir` (a fresh directory, given to the server's user), initdb's into dir/data,
  // starts the server on dir's socket and waits for it, and creates codestore_template
  // migrated by Store::open. Throws std::runtime_error saying which step failed (with the
  // server's log).
  // `durable`: fsync and full-page writes on, as a production server runs (the benches:
  // commits still not waited for, synchronous_commit off, as SQLite's WAL with synchronous =
  // NORMAL does not sync a commit).
  static void start(const std::filesystem::path& dir, bool durable = false);
  // Stops the server of `dir` (immediate mode: nothing to keep) and removes `dir`. Quiet when
  // there is none.
  static void stop(const std::filesystem::path& dir) noexcept;
  // Restarts the server of `dir` as a crash would (immediate mode: every session ends, nothing
  // is flushed first), keeping its data and options, and waits until it accepts connections
  // again (the followers' chaos test). Throws std::runtime_error with the server's log.
  static void restart(const std::filesystem::path& dir);
  // Stops the server of `dir` (fast mode: sessions end, data kept) and, later, starts it again
  // with the options start() gave it (`durable` as given there), waiting until it accepts
  // connections: a primary away for a while (serve --follow keeps serving). Throw
  // std::runtime_error with the server's log.
  static void halt(const std::filesystem::path& dir);
  static void resume(const std::filesystem::path& dir, bool durable = false);
};

// The directory (the socket's) of the server this process's tests use (see above).
std::string pg_server_dir();

// The URI of the server's database `name`: postgresql:///NAME?host=DIR&user=postgres
// (pg_uri_in: of the server in `dir`).
std::string pg_uri(const std::string& name);
std::string pg_uri_in(const std::string& dir, const std::string& name);

// A fresh database from codestore_template (or from template0: an empty one, for the
// migration tests) and its URI; pg_drop_database ends its sessions and drops it.
// `owner`: the role that owns it (default: postgres).
std::string pg_create_database(bool empty = false, const std::string& owner = "");
void pg_drop_database(const std::string& uri) noexcept;

// Runs one SQL command as the server's superuser on database `name` (tests that set a
// server up: a role with a password, a newer schema). Throws std::runtime_error.
void pg_exec(const std::string& name, const std::string& sql);

// The rows `sql` ($1, $2... bound to `params` as text) returns on the database `uri` names,
// each as its columns' text joined by "|" after each, NULL as "NULL" (what the tests that
// read tables raw compare, as they do on a SQLite file). Throws std::runtime_error.
std::vector<std::string> pg_rows(const std::string& uri, const std::string& sql,
                                 const std::vector<std::string>& params = {});

}  // namespace codestore::testing

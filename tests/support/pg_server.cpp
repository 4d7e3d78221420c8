#include "support/pg_server.h"

#include <codestore/store.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace codestore::testing {

namespace {

namespace fs = std::filesystem;

// What a command printed (stdout and stderr), and whether it exited 0.
bool run(const std::string& command, std::string& output) {
  std::unique_ptr<FILE, decltype(&pclose)> p(popen((command + " 2>&1").c_str(), "r"), &pclose);
  if (!p) return false;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) output.append(buf.data(), n);
  return pclose(p.release()) == 0;
}

std::string bindir() {
  std::string out;
  if (run("pg_config --bindir", out)) {
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (fs::exists(fs::path(out) / "initdb")) return out;
  }
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(e.path() / "bin/initdb") && e.path().string() > best) best = e.path().string();
  }
  if (best.empty()) throw std::runtime_error("no PostgreSQL server binaries (apt-get install postgresql)");
  return best + "/bin";
}

bool root() {
  return ::geteuid() == 0;
}

// `command` as the server's user: postgres when we are root (initdb and the server refuse
// root), else ourselves.
std::string as_server_user(const std::string& command) {
  return root() ? "runuser -u postgres -- " + command : command;
}

std::string read_log(const fs::path& dir) {
  std::ifstream in(dir / "log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One SQL command on `conninfo`'s database; throws with the server's message.
void exec_on(const std::string& conninfo, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("connecting to the test server (" + conninfo +
                             "): " + PQerrorMessage(conn.get()));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn.get(), sql.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQerrorMessage(conn.get()));
  }
}

std::string conninfo(const std::string& dir, const std::string& db) {
  return "host=" + dir + " user=postgres dbname=" + db;
}

// A process that stops the server in `dir` when this one ends, however it ends (a crashed
// test leaves no server behind): a shell waiting for the end of a pipe only we hold open.
// Only async-signal-safe calls between fork and exec (the test process has threads).
void stop_when_we_die(const std::string& dir) {
  std::string bin;
  try {
    bin = bindir();
  } catch (...) {
    return;  // start() says what is missing
  }
  const std::string stop = as_server_user(bin + "/pg_ctl -D " + dir + "/data -m immediate -w -s stop");
  const std::string script = "read _; " + stop + " >/dev/null 2>&1; rm -rf " + dir;
  // Close-on-exec: no child we exec (erl, the CLI) inherits the pipe and keeps the shell
  // waiting; dup2 onto the shell's stdin clears the flag there.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[0], 0);
    ::close(fds[0]);
    ::close(fds[1]);
    ::setsid();  // not in our process group: a Ctrl-C or a kill of the group does not end it first
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);  // the write end stays open, never written, and closes with this process
}

// pg_ctl start of the server initdb made in `dir`: its Unix socket there, no TCP.
void launch(const fs::path& dir, bool durable) {
  const std::string options = "-k " + dir.string() + " -c listen_addresses='' -c synchronous_commit=off" +
                              (durable ? "" : " -c fsync=off -c full_page_writes=off") +
                              " -c max_connections=200";
  std::string out;
  if (!run(as_server_user(bindir() + "/pg_ctl -D " + (dir / "data").string() + " -l " +
                          (dir / "log").string() + " -w -s -o \"" + options + "\" start"),
           out)) {
    throw std::runtime_error("pg_ctl start in " + dir.string() + " failed: " + out + read_log(dir));
  }
}

// The process's own server, when CTest's is not there.
struct OwnServer {
  std::mutex mutex;
  std::string dir;
  ~OwnServer() {
    if (!dir.empty()) PgServer::stop(dir);
  }
};
OwnServer own;

}  // namespace

void PgServer::start(const fs::path& dir, bool durable) {
  fs::create_directories(dir);
  if (root()) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr)
      throw std::runtime_error("no user postgres to run the test server as (apt-get install postgresql)");
    if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown " + dir.string());
  }
  const std::string bin = bindir();
  std::string out;
  if (!run(as_server_user(bin + "/initdb -D " + (dir / "data").string() +
                          " -A trust -U postgres -E UTF8 --locale=C --no-sync"),
           out)) {
    throw std::runtime_error("initdb into " + dir.string() + " failed: " + out);
  }
  // One role that must give its password (codestore_test_user, "right"): the tests of refused
  // credentials; every other role is trusted on the socket.
  {
    std::ofstream hba(dir / "data/pg_hba.conf", std::ios::trunc);
    hba << "local all codestore_test_user scram-sha-256\nlocal all all trust\n";
  }
  launch(dir, durable);
  exec_on(conninfo(dir.string(), "postgres"), "CREATE ROLE codestore_test_user LOGIN PASSWORD 'right'");
  exec_on(conninfo(dir.string(), "postgres"), "CREATE DATABASE codestore_template");
  auto store = Store::open(pg_uri_in(dir.string(), "codestore_template"), {});
  if (!store) throw std::runtime_error("migrating codestore_template: " + store.error().to_string());
}

void PgServer::stop(const fs::path& dir) noexcept {
  std::error_code ec;
  if (fs::exists(dir / "data/postmaster.pid", ec)) {
    std::string out;
    try {
      run(as_server_user(bindir() + "/pg_ctl -D " + (dir / "data").string() + " -m immediate -w -s stop"),
          out);
    } catch (...) {  // no binaries: nothing was started
    }
  }
  fs::remove_all(dir, ec);
}

void PgServer::restart(const fs::path& dir) {
  std::string out;
  if (!run(as_server_user(bindir() + "/pg_ctl -D " + (dir / "data").string() + " -l " +
                          (dir / "log").string() + " -m immediate -w -s restart"),
           out)) {
    throw std::runtime_error("pg_ctl restart in " + dir.string() + " failed: " + out + read_log(dir));
  }
}

void PgServer::halt(const fs::path& dir) {
  std::string out;
  if (!run(as_server_user(bindir() + "/pg_ctl -D " + (dir / "data").string() + " -m fast -w -s stop"), out))
    throw std::runtime_error("pg_ctl stop in " + dir.string() + " failed: " + out + read_log(dir));
}

void PgServer::resume(const fs::path& dir, bool durable) {
  launch(dir, durable);
}

std::string pg_uri_in(const std::string& dir, const std::string& name) {
  return "postgresql:///" + name + "?host=" + dir + "&user=postgres";
}

std::string pg_server_dir() {
  if (const char* d = std::getenv("CODESTORE_TEST_PG_DIR"); d != nullptr && *d != '\0') return d;
  std::lock_guard lock(own.mutex);
  if (own.dir.empty()) {
    char tmpl[] = "/tmp/cspg-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp /tmp/cspg-XXXXXX");
    own.dir = tmpl;
    stop_when_we_die(own.dir);
    try {
      PgServer::start(own.dir);
    } catch (...) {
      PgServer::stop(own.dir);
      own.dir.clear();
      throw;
    }
  }
  return own.dir;
}

std::string pg_uri(const std::string& name) {
  return pg_uri_in(pg_server_dir(), name);
}

std::string pg_create_database(bool empty, const std::string& owner) {
  static std::atomic<int> counter{0};
  const std::string name = "t_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  const std::string dir = pg_server_dir();
  exec_on(conninfo(dir, "postgres"), "CREATE DATABASE " + name + " TEMPLATE " +
                                         (empty ? "template0" : "codestore_template") +
                                         (owner.empty() ? "" : " OWNER " + owner) +
                                         // Copying the files (and a checkpoint, cheap with
                                         // fsync off) took 0.4 s here where logging every
                                         // block of the template (WAL_LOG, 15's default) took 0.7 s.
                                         " STRATEGY FILE_COPY");
  return pg_uri_in(dir, name);
}

void pg_drop_database(const std::string& uri) noexcept {
  if (uri.find(":///") == std::string::npos) return;
  const std::size_t start = uri.find(":///") + 4;
  const std::string name = uri.substr(start, uri.find('?') - start);
  try {
    exec_on(conninfo(pg_server_dir(), "postgres"), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  } catch (...) {  // the server is gone: its directory goes with it
  }
}

void pg_exec(const std::string& name, const std::string& sql) {
  exec_on(conninfo(pg_server_dir(), name), sql);
}

std::vector<std::string> pg_rows(const std::string& uri, const std::string& sql,
                                 const std::vector<std::string>& params) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(uri.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("connecting to " + uri + ": " + PQerrorMessage(conn.get()));
  }
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  std::unique_ptr<PGresult, decltype(&PQclear)> r(
      PQexecParams(conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                   nullptr, 0),
      &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
    throw std::runtime_error(sql + ": " + PQerrorMessage(conn.get()));
  std::vector<std::string> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::string row;
    for (int c = 0; c < PQnfields(r.get()); ++c) {
      row +=
          (PQgetisnull(r.get(), i, c) != 0 ? std::string("NULL") : std::string(PQgetvalue(r.get(), i, c))) +
          "|";
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace codestore::testing

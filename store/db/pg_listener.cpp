#include "db/pg_listener.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "db/pg_connection.h"
#include "db/sqlite_error.h"

namespace codestore::db {

namespace {

std::string trimmed(const char* message) {
  std::string why = message != nullptr ? message : "";
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return why;
}

class PgListener final : public Listener {
 public:
  PgListener(PGconn* conn, std::string uri) : conn_(conn, &PQfinish), uri_(std::move(uri)) {}

  void start(std::string_view topic) {
    PGconn* c = conn_.get();
    if (PQstatus(c) != CONNECTION_OK) {
      const std::string why = trimmed(PQerrorMessage(c));
      const bool refused = why.find("authentication failed") != std::string::npos ||
                           why.find("no password supplied") != std::string::npos ||
                           why.find("pg_hba.conf") != std::string::npos;
      fail(refused ? Code::kPermissionDenied : Code::kIOError,
           fmt::format("cannot connect to PostgreSQL ({}) to listen: {}", redact_uri(uri_), why));
    }
    char* quoted = PQescapeIdentifier(c, topic.data(), topic.size());
    if (quoted == nullptr) fail(Code::kInvalidArgument, fmt::format("listen: bad topic {}", topic));
    const std::string sql = fmt::format("LISTEN {}", quoted);
    PQfreemem(quoted);
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(c, sql.c_str()), &PQclear);
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) lost("LISTEN");
    pid_ = PQbackendPID(c);
  }

  std::vector<std::string> wait(std::chrono::milliseconds timeout) override {
    std::vector<std::string> out;
    take(out);
    if (!out.empty()) return out;
    pollfd p{PQsocket(conn_.get()), POLLIN, 0};
    if (p.fd < 0) lost("waiting");
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n < 0 && errno != EINTR) fail(Code::kIOError, fmt::format("listen: poll: {}", std::strerror(errno)));
    if (n > 0) {
      // Input, or the server closing the session (a terminated backend says so first).
      if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) lost("waiting");
      take(out);
    }
    return out;
  }

  int backend_pid() const override { return pid_; }

 private:
  void take(std::vector<std::string>& out) {
    while (PGnotify* n = PQnotifies(conn_.get())) {
      out.emplace_back(n->extra != nullptr ? n->extra : "");
      PQfreemem(n);
    }
  }
  [[noreturn]] void lost(std::string_view while_) {
    fail(Code::kIOError, fmt::format("lost the listening session to PostgreSQL ({}, backend {}) while {}: {}",
                                     redact_uri(uri_), pid_, while_, trimmed(PQerrorMessage(conn_.get()))));
  }

  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
  std::string uri_;
  int pid_ = 0;
};

}  // namespace

std::unique_ptr<Listener> listen_postgresql(const std::string& uri, std::string_view topic) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(uri.c_str(), &parse_error);
  if (parsed == nullptr) {
    const std::string why = trimmed(parse_error != nullptr ? parse_error : "out of memory");
    PQfreemem(parse_error);
    fail(Code::kInvalidArgument, fmt::format("malformed PostgreSQL URI: {}", why));
  }
  bool has_timeout = false;
  for (auto* o = parsed; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "connect_timeout") == 0 && o->val != nullptr) has_timeout = true;
  }
  PQconninfoFree(parsed);
  // As open_postgresql: an unanswering server is an error within 10 s unless the URI says
  // otherwise. TCP keepalives find a peer that vanished without closing (a Unix socket has none).
  const char* keys[] = {"dbname",
                        "application_name",
                        "keepalives_idle",
                        "keepalives_interval",
                        has_timeout ? nullptr : "connect_timeout",
                        nullptr};
  const char* values[] = {uri.c_str(), kListenerApplicationName,     "10",
                          "5",         has_timeout ? nullptr : "10", nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, 1);
  if (raw == nullptr) fail(Code::kLimitExceeded, "out of memory connecting to PostgreSQL");
  auto listener = std::make_unique<PgListener>(raw, uri);
  listener->start(topic);
  return listener;
}

}  // namespace codestore::db

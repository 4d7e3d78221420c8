// Listening to a PostgreSQL store's announcements (LISTEN/NOTIFY): what a follower waits on
// between its reads (store/follow.cpp, docs/fleet.md). A listener is a libpq session of its own,
// apart from the db::Connection that reads, so that a long wait never holds a transaction.
//
// What PostgreSQL guarantees, and what it does not (measured on our machines): NOTIFY is
// delivered at commit, never for a transaction that rolled back; notifications sent while a
// listener is disconnected are lost, silently. So a listener is only a hint to read now: its
// owner reads everything newer than what it has after every (re)connect, and on a timer.
//
// Thread safety: thread-compatible (one thread at a time); listen_postgresql is stateless.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::db {

class Listener {
 public:
  virtual ~Listener() = default;
  // Waits up to `timeout` for announcements on the topic and returns their payloads (empty:
  // none came). Throws db::StatusError kIOError when the session is gone (its backend was
  // terminated, the server stopped): the owner reconnects and reads what it missed.
  virtual std::vector<std::string> wait(std::chrono::milliseconds timeout) = 0;
  // The server process of this session (pg_backend_pid()): a new one after a reconnect.
  virtual int backend_pid() const = 0;
};

// The session on the server `uri` names (libpq's URI; application_name "codestore follow", so
// that an operator sees followers in pg_stat_activity), LISTENing on `topic` before it
// returns: whatever commits after this call returns is heard. Throws db::StatusError:
// kInvalidArgument for a malformed URI, kPermissionDenied for refused credentials, kIOError for
// a server that cannot be reached.
std::unique_ptr<Listener> listen_postgresql(const std::string& uri, std::string_view topic);

// The application_name of a listener's session.
inline constexpr const char* kListenerApplicationName = "codestore follow";

}  // namespace codestore::db

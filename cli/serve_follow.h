// `serve --follow URI` (docs/fleet.md, "serve --follow"): the follower a boot server runs beside
// itself, keeping its --db replica following a store on PostgreSQL while it serves from it.
//
// Thread safety: start() and stop() are called from one thread (serve's); the follower runs on a
// thread of its own, which alone touches the Follower until stop() has joined it (totals() then).
// The boot server and the agent listener read the replica through store handles of their own:
// SQLite's WAL lets them read while the follower writes, and a generation becomes visible to
// them only when its one local transaction commits (meta 'generation' tells their caches).
#pragma once

#include <codestore/follow.h>
#include <codestore/status.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace codestore::cli {

class ServeFollower {
 public:
  // Opens the follower of `primary_uri` into `replica` (following `channels`, the channels serve
  // serves), catches up once, and starts following on its thread. A primary that cannot be
  // reached is no error for a file that is already a replica: serve serves it as it is, and the
  // thread keeps trying (with the follower's backoff). Refused (the follower's refusals): a bad
  // URI, credentials, another store, a file that is no replica while the primary is away.
  // `log`: one line per event (the replica's state first); called from both threads.
  static Result<std::unique_ptr<ServeFollower>> start(const std::string& primary_uri,
                                                      const std::string& replica,
                                                      std::vector<std::string> channels,
                                                      std::function<void(std::string_view)> log);
  ~ServeFollower();  // stop()
  ServeFollower(const ServeFollower&) = delete;
  ServeFollower& operator=(const ServeFollower&) = delete;

  // Stops following and joins the thread. Idempotent.
  void stop();
  // What the follower applied since start (after stop(); zeros before it ever connected).
  FollowProgress totals() const;
  const std::string& primary() const { return shown_; }

 private:
  ServeFollower() = default;
  void follow();  // the thread

  std::string uri_, replica_, shown_;
  FollowOptions options_;
  std::function<void(std::string_view)> log_;
  std::unique_ptr<Follower> follower_;  // null until the primary is reached
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace codestore::cli

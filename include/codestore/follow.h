// Followers (docs/fleet.md): a host keeps a local SQLite replica of the channels a store on
// PostgreSQL serves, so that serving never depends on the network to the database.
//
// The protocol, in short: the primary announces every committed generation on the topic
// "codestore_generation" (NOTIFY; payload: the generation's number in decimal, never data). A
// follower LISTENs first, then reads everything newer than the last generation it applied of
// each channel it follows, in one consistent snapshot of the primary; fetches only the blobs it
// lacks (by SHA-256, their stored zstd frames as they are); and applies each generation in ONE
// local transaction together with its own record of "last applied" (so a replica never holds
// half a generation, and applying is idempotent by number: never skipped, never twice). It reads
// again at every announcement, on a timer, and after every reconnect (PostgreSQL drops
// announcements sent while a listener is away, silently). While the primary is away the replica
// stays readable as it is, and the follower reconnects with backoff.
//
// A replica is an ordinary store file (Store::open reads it: get, ls, channel, materialize,
// serve) that refuses changes that would make it differ from its primary (kFailedPrecondition
// naming the primary); the nodes a boot server served and its served counts it records.
//
// Thread safety: a Follower is thread-compatible (one thread drives it: run() or catch_up());
// run's `stop` may be set from any thread. follow_status is stateless.
#pragma once

#include <codestore/status.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codestore {

// Every member has a default initializer, so that `{.channels = {...}}` names only what it sets.
struct FollowOptions {
  // The channels followed (each 1..128 of [A-Za-z0-9._-]); empty: every channel of the primary,
  // including those it makes later.
  std::vector<std::string> channels{};
  // run(): read the primary this often even without an announcement (a lost one costs at most
  // this long), and wait between reconnects from backoff_min, doubling, up to backoff_max.
  std::chrono::milliseconds poll{30'000};
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5'000};
  // One line per event (connected, applied, lost the primary, reconnecting); may be empty.
  std::function<void(std::string_view)> log{};
  // Called inside each generation's local transaction, after its rows are written and before it
  // commits (tests: a follower killed while applying).
  std::function<void(std::string_view channel, std::int64_t generation)> inside_apply{};
  // Called after each generation's local transaction committed.
  std::function<void(std::string_view channel, std::int64_t generation)> applied{};
};

// What one or more catch-ups did.
struct FollowProgress {
  std::uint64_t generations = 0;    // generations applied
  std::uint64_t blobs_fetched = 0;  // blobs read from the primary (the replica lacked them)
  std::uint64_t blobs_present = 0;  // blobs a generation needed that the replica had
  std::uint64_t bytes_fetched = 0;  // stored (compressed) bytes of the blobs fetched
};

struct ChannelFollowState {
  std::string channel;
  std::int64_t applied = 0;             // the last generation applied (0: none yet)
  std::int64_t applied_at = 0;          // Unix seconds
  std::optional<std::int64_t> primary;  // the primary's current generation, when it was reached
};

struct FollowStatus {
  std::string primary;                // the primary's URI, its password removed
  std::int64_t primary_store = 0;     // the primary's store id (meta 'store_id')
  std::vector<std::string> followed;  // the channels followed (empty: all)
  std::vector<ChannelFollowState> channels;
  Status primary_error;  // why the primary was not read (ok when it was, or not asked)
  bool primary_reached = false;
};

class Follower {
 public:
  // Opens (or creates) the replica `replica_path` following the store at `primary_uri` (a
  // postgresql:// URI; "" takes the one the replica records). Refuses: a malformed URI
  // (kInvalidArgument), refused credentials (kPermissionDenied), a primary whose schema is newer
  // than this build's (kNotSupported) or older (the migration runner's refusal: a follower never
  // migrates the primary), a replica that follows another store, or a store with content of its
  // own that is no replica (kFailedPrecondition).
  // Connects to the primary once to check it.
  static Result<std::unique_ptr<Follower>> open(const std::string& primary_uri,
                                                const std::string& replica_path, FollowOptions options = {});
  ~Follower();
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  // Reads and applies everything newer on the primary (connecting when not connected); an
  // error leaves every generation applied before it applied, and drops the connection.
  Result<FollowProgress> catch_up();
  // Follows until `stop` is set: listens, catches up at once and on every announcement, every
  // `poll`, and after every reconnect; errors are logged and retried with backoff. Returns when
  // stopped (or for an error no retry can mend: the primary turned out to be another store).
  Status run(const std::atomic<bool>& stop);
  // Everything applied by this follower so far.
  FollowProgress totals() const;
  const std::string& primary() const;  // the primary's URI, its password removed

  struct Impl;

 private:
  explicit Follower(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What the replica `replica_path` has applied per channel and, with `ask_primary`, how far
// behind the primary it is (`primary_uri` "" : the recorded one). kFailedPrecondition when the
// file is no replica. A primary that cannot be reached is no error: primary_error says why.
Result<FollowStatus> follow_status(const std::string& replica_path, bool ask_primary,
                                   const std::string& primary_uri = "");

}  // namespace codestore

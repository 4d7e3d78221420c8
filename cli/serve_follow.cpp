// `serve --follow URI`: the follower beside the boot server (serve_follow.h, docs/fleet.md).
#include "serve_follow.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace codestore::cli {

namespace {

// "replica R follows P (store N): channel C at generation G, ...": what the replica serves.
std::string replica_state(const std::string& replica) {
  auto st = follow_status(replica, false);
  if (!st) return st.error().to_string();
  std::string channels;
  for (const auto& c : st->channels)
    channels +=
        fmt::format("{}channel {} at generation {}", channels.empty() ? "" : ", ", c.channel, c.applied);
  return fmt::format("replica {} follows {} (store {}): {}", replica, st->primary, st->primary_store,
                     channels.empty() ? std::string("nothing applied yet") : channels);
}

}  // namespace

Result<std::unique_ptr<ServeFollower>> ServeFollower::start(const std::string& primary_uri,
                                                            const std::string& replica,
                                                            std::vector<std::string> channels,
                                                            std::function<void(std::string_view)> log) {
  std::unique_ptr<ServeFollower> self(new ServeFollower());
  self->uri_ = primary_uri;
  self->replica_ = replica;
  self->log_ = std::move(log);
  std::sort(channels.begin(), channels.end());
  channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
  self->options_.channels = std::move(channels);
  auto* raw = self.get();
  self->options_.log = [raw](std::string_view line) { raw->log_(fmt::format("follow: {}", line)); };
  auto opened = Follower::open(primary_uri, replica, self->options_);
  if (opened) {
    self->follower_ = std::move(*opened);
    self->shown_ = self->follower_->primary();
    // What a new replica serves comes from here: catch up before the boot server starts.
    auto caught = self->follower_->catch_up();
    if (!caught) {
      self->log_(
          fmt::format("follow: {}: serving the replica as it is meanwhile", caught.error().to_string()));
    }
  } else if (opened.error().code() == Code::kIOError) {
    // The primary is away (kIOError: the connection failed or was lost): a replica is served as
    // it is, and the thread keeps trying; a file that is no replica yet has nothing to serve.
    auto st = follow_status(replica, false);
    if (!st) {
      return error(opened.error().code(), fmt::format("{} (and {} is no replica to serve meanwhile)",
                                                      opened.error().message(), replica));
    }
    self->shown_ = st->primary;
    self->log_(fmt::format("follow: primary not reached: {}: serving the replica as it is meanwhile",
                           opened.error().to_string()));
  } else {
    return error(opened.error());
  }
  self->log_(fmt::format("follow: {}", replica_state(replica)));
  self->thread_ = std::thread([raw] { raw->follow(); });
  return self;
}

void ServeFollower::follow() {
  using namespace std::chrono;
  auto backoff = options_.backoff_min;
  while (!follower_ && !stop_.load()) {
    const auto until = steady_clock::now() + backoff;
    while (!stop_.load() && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
    if (stop_.load()) return;
    auto opened = Follower::open(uri_, replica_, options_);
    if (opened) {
      follower_ = std::move(*opened);
      break;
    }
    if (opened.error().code() != Code::kIOError) {
      log_(fmt::format("follow: stopped: {}: serving the replica as it is", opened.error().to_string()));
      return;
    }
    backoff = std::min(backoff * 2, options_.backoff_max);
    log_(fmt::format("follow: primary not reached: {}; again in {} ms", opened.error().to_string(),
                     backoff.count()));
  }
  if (stop_.load()) return;
  // run() catches up at once, on every announcement, on its timer and after every reconnect;
  // it returns when stopped, or for an error no retry mends (the primary is another store).
  const Status ran = follower_->run(stop_);
  if (!ran) log_(fmt::format("follow: stopped: {}: serving the replica as it is", ran.to_string()));
}

void ServeFollower::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

ServeFollower::~ServeFollower() {
  stop();
}

FollowProgress ServeFollower::totals() const {
  return follower_ ? follower_->totals() : FollowProgress{};
}

}  // namespace codestore::cli

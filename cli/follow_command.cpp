// `codestore follow`: keep the --db file a local replica of the channels a store on PostgreSQL
// serves (include/codestore/follow.h, docs/fleet.md). Runs until SIGINT or SIGTERM (--once:
// catch up and exit); --status says how far behind the replica is. The log goes to stderr.
#include <codestore/follow.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli.h"
#include "json_util.h"

namespace codestore::cli {

namespace {

struct FollowArgs {
  std::string uri;
  std::vector<std::string> channels;
  bool once = false;
  bool status = false;
  int poll_seconds = 30;
};

int status(Context& ctx, const FollowArgs& args) {
  auto st = follow_status(ctx.db_path(), true, args.uri);
  if (!st) {
    report_error(ctx, st.error());
    return kExitError;
  }
  if (ctx.json) {
    nlohmann::ordered_json j;
    j["replica"] = text_to_json_string(ctx.db_path());
    j["primary"] = text_to_json_string(st->primary);
    j["primary_store"] = st->primary_store;
    j["primary_reached"] = st->primary_reached;
    if (!st->primary_reached) j["primary_error"] = text_to_json_string(st->primary_error.to_string());
    j["channels"] = nlohmann::ordered_json::array();
    for (const auto& c : st->channels) {
      nlohmann::ordered_json o = {
          {"channel", c.channel}, {"applied", c.applied}, {"applied_at", c.applied_at}};
      if (c.primary) {
        o["primary"] = *c.primary;
        o["behind"] = std::max<std::int64_t>(0, *c.primary - c.applied);
      }
      j["channels"].push_back(o);
    }
    *ctx.out << j.dump() << "\n";
  } else {
    *ctx.out << fmt::format("replica {} follows {} (store {})\n", ctx.db_path(), st->primary,
                            st->primary_store);
    if (!st->primary_reached)
      *ctx.out << fmt::format("primary not reached: {}\n", st->primary_error.to_string());
    for (const auto& c : st->channels) {
      std::string behind =
          c.primary ? (*c.primary > c.applied
                           ? fmt::format("{} behind (primary at {})", *c.primary - c.applied, *c.primary)
                           : std::string("up to date"))
                    : std::string("primary unknown");
      *ctx.out << fmt::format("{}\tgeneration {}\t{}\n", c.channel, c.applied, behind);
    }
  }
  return kExitOk;
}

int follow(Context& ctx, const FollowArgs& args) {
  if (args.status) return status(ctx, args);
  FollowOptions options;
  options.channels = args.channels;
  options.poll = std::chrono::seconds(args.poll_seconds);
  std::ostream* err = ctx.err;
  auto log_mutex = std::make_shared<std::mutex>();
  options.log = [err, log_mutex](std::string_view line) {
    std::lock_guard lock(*log_mutex);
    *err << "codestore follow: " << line << std::endl;
  };
  auto follower = Follower::open(args.uri, ctx.db_path(), options);
  if (!follower) {
    report_error(ctx, follower.error());
    return kExitError;
  }
  if (args.once) {
    auto done = (*follower)->catch_up();
    if (!done) {
      report_error(ctx, done.error());
      return kExitError;
    }
    if (ctx.json) {
      nlohmann::ordered_json j = {{"generations", done->generations},
                                  {"blobs_fetched", done->blobs_fetched},
                                  {"blobs_present", done->blobs_present},
                                  {"bytes_fetched", done->bytes_fetched}};
      *ctx.out << j.dump() << "\n";
    } else {
      *ctx.out << fmt::format("applied {} generations: {} blobs fetched ({} bytes), {} already present\n",
                              done->generations, done->blobs_fetched, done->bytes_fetched,
                              done->blobs_present);
    }
    return kExitOk;
  }
  // Block the stop signals before the follower's thread exists, so that only sigwait sees them.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  std::atomic<bool> stop{false};
  Status result;
  std::thread runner([&] { result = (*follower)->run(stop); });
  int sig = 0;
  // The runner ends by itself only for an error no retry mends; a signal ends it otherwise.
  std::thread waiter([&] {
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    stop = true;
  });
  runner.join();
  if (!stop.load()) {
    // Wake the waiter: it owns no resource, and the process is about to report and exit.
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (!result) {
    report_error(ctx, result);
    return kExitError;
  }
  const auto t = (*follower)->totals();
  *ctx.err << fmt::format("codestore follow: stopping: {} generations applied, {} blobs fetched",
                          t.generations, t.blobs_fetched)
           << std::endl;
  return kExitOk;
}

}  // namespace

void add_follow_command(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<FollowArgs>();
  CLI::App* cmd = app.add_subcommand(
      "follow",
      "Keep the --db file a local replica of the channels a store on PostgreSQL serves: listen for new "
      "generations, fetch only the blobs it lacks, apply each generation in one transaction (docs/fleet.md). "
      "Runs until SIGINT or SIGTERM; `serve` reads the replica meanwhile");
  cmd->add_option(
      "uri", args->uri,
      "The primary: postgresql://[user[:password]@][host][:port]/dbname[?param=value...] (default: the "
      "one the replica records; its password is never recorded: give it again, or use PGPASSWORD or "
      "~/.pgpass)");
  cmd->add_option(
      "--channel", args->channels,
      "A channel to follow (repeatable; default: every channel of the primary, also those made later)");
  cmd->add_flag("--once", args->once, "Catch up once and exit");
  cmd->add_flag(
      "--status", args->status,
      "Say for each channel the last generation applied and, if the primary can be reached, how far "
      "behind it the replica is");
  cmd->add_option(
         "--poll-seconds", args->poll_seconds,
         "Read the primary this often even when no announcement came (one lost costs at most this long)")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->callback([&ctx, args] { ctx.exit_code = follow(ctx, *args); });
}

}  // namespace codestore::cli

// What `deploy` and `channel rollback` share for the nodes that follow a channel live
// (docs/operator-guide.md, "Live upgrades"): the options recorded with the generation and
// passed to each agent's apply/2 (--deadline, --brutal, --force, --probe), and --wait, which
// waits for the outcomes the agents report (Store::node_upgrades) and prints them.
//
// Exit codes of a wait (besides cli.h's): kExitOk when every node waited for applied the
// generation (or ran it already), kExitNotApplied when one did not (refused, aborted, reverted,
// failed) or a canary candidate was dropped, kExitTimedOut when the time ran out first.
//
// Thread safety: as run() (cli.h): each call uses only its arguments.
#pragma once

#include <codestore/store.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli.h"

namespace CLI {
class App;
}

namespace codestore::cli {

inline constexpr int kExitNotApplied = 3;
inline constexpr int kExitTimedOut = 4;

// The default of a bare --wait, in seconds.
inline constexpr int kDefaultWaitSeconds = 600;

struct UpgradeArgs {
  std::string wait;  // "" no wait; else seconds, as given
  std::int64_t deadline_ms = 0;
  bool brutal = false, force = false;
  std::string probe;
};

// Adds --wait[=SECONDS], --deadline MS, --brutal, --force, --probe M:F to `cmd`.
void add_upgrade_options(CLI::App* cmd, UpgradeArgs& args);

// The arguments checked (a usage error reported, nullopt, otherwise): the options, and the
// wait (nullopt inside: no wait).
struct CheckedUpgrade {
  UpgradeOptions options;
  std::optional<std::chrono::seconds> wait;
};
std::optional<CheckedUpgrade> check_upgrade_args(Context& ctx, const UpgradeArgs& args);

// The newest outcome recorded for `channel` (its node_upgrades id; 0 none): taken before a
// change, so that a wait reads only what was reported after it (a dropped candidate's number
// is used again).
std::int64_t newest_outcome_id(Store& store, const std::string& channel);

// After generation `to` of `channel` was made (`candidate`: a canary candidate, whose rollout
// is waited for first): waits up to `wait` for the outcome of each agent node of the channel
// that is connected and not excluded (outcomes recorded after `since_id`), prints each (text
// after what `doc` printed already, or into doc["wait"] with --json) and sets ctx.exit_code.
void wait_for_outcomes(Context& ctx, Store& store, const std::string& channel, std::int64_t to,
                       bool candidate, std::int64_t since_id, std::chrono::seconds wait,
                       nlohmann::ordered_json* doc);

}  // namespace codestore::cli

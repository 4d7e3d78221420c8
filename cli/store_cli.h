// What the store's command groups share (cli/store_commands.cpp defines them): opening the
// store for a command, aligned tables, times, and the Erlang releases' side of the `release`
// group (cli/release_commands.cpp), which store_commands.cpp's `release list/show/diff` hand
// NAME@VSN over to.
//
// Thread safety: as run() (cli.h): each call uses only its arguments.
#pragma once

#include <codestore/store.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"

namespace codestore::cli {

// The store for a command (read-only unless `write`); reports and returns null on failure.
// --db, --wait and --snapshot apply (store_commands.cpp, open_store).
std::unique_ptr<Store> open_command_store(Context& ctx, bool write);
// Aligned columns, by terminal width; the last column is not padded.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows);
// Unix seconds as "2026-12-03 17:00:00Z" ("-" for 0).
std::string time_text(std::int64_t t);

// An Erlang release is named NAME@VSN; a snapshot's name has no '@' (one that has is still
// found: these fall back to the snapshot of that exact name when no release is stored).
// Each returns false when `name` is a snapshot's, and then has done nothing.
bool show_erl_release(Context& ctx, Store& store, const std::string& name);
bool diff_erl_releases(Context& ctx, Store& store, const std::string& a, const std::string& b);
// `release list`'s Erlang releases: into `doc["erl_releases"]` with --json, else a table
// after the snapshots'. False (reported) on failure.
bool list_erl_releases(Context& ctx, Store& store, nlohmann::ordered_json& doc);

}  // namespace codestore::cli

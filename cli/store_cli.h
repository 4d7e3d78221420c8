// What the store's command groups share (cli/store_commands.cpp defines it; the channel
// commands, cli/channel_commands.cpp, and the Erlang releases' side of the `release` group,
// cli/release_commands.cpp, use it too): opening the store as every command does, the output
// conventions of README.md (times, tables, JSON's null for "none"), and what
// store_commands.cpp's `release list/show/diff` hand NAME@VSN over to.
//
// Thread safety: as run() (cli.h): each call uses only its arguments.
#pragma once

#include <codestore/store.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"

namespace codestore::cli {

// Opens the store in the command's channel (--channel) for a command; reports and returns
// null on failure. Only `init` creates a database (create). Read-only unless `write`; honours
// --snapshot (reading commands only), --wait and Ctrl-C while waiting for a lock.
std::unique_ptr<Store> open_store(Context& ctx, bool write, bool create = false);

// Unix seconds as "2026-12-03 16:54:23Z" ("-" for 0).
std::string when(std::int64_t t);

// Aligned columns, by the width a terminal gives each cell; the last column is not padded.
void table(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

// "None" is null in JSON, whatever the text output shows for it: version 0, empty text.
nlohmann::ordered_json version_or_null(std::int64_t v);
nlohmann::ordered_json text_or_null(const std::string& s);

// An Erlang release is named NAME@VSN; a snapshot's name has no '@' (one that has is still
// found: these fall back to the snapshot of that exact name when no release is stored).
// Each returns false when `name` is a snapshot's, and then has done nothing.
bool show_erl_release(Context& ctx, Store& store, const std::string& name);
bool diff_erl_releases(Context& ctx, Store& store, const std::string& a, const std::string& b);
// `release list`'s Erlang releases: into `doc["erl_releases"]` with --json, else a table
// after the snapshots'. False (reported) on failure.
bool list_erl_releases(Context& ctx, Store& store, nlohmann::ordered_json& doc);

// `import PATH` of a release (a directory with releases/ and lib/, or a tarball): read it
// (release_reader.h) and store it all or nothing, without activating anything, unless
// --channel was given, which deploys the release there. False when `path` is none of these (a
// plain import then walks it for beams); true when handled (reported, successfully or not).
bool import_release_path(Context& ctx, const std::string& path, const std::string& note, bool dry_run);
// `import PATH...` where every path is an application (a directory with ebin/*.app, or an
// .ez): each read as one (release_reader.h), all stored as application versions in one
// transaction and activated in the command's channel (--channel, default: default) in one
// generation, as a plain import activates what it imports (Store::import_apps). False when some
// path is not an application; true when handled (reported, successfully or not).
bool import_app_paths(Context& ctx, const std::vector<std::string>& paths, const std::string& note,
                      bool dry_run);

}  // namespace codestore::cli

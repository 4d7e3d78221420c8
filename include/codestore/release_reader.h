// The release reader: what real build tools write, read into the values the store imports
// (release_content.h). Pure reading: no database, nothing written.
//
//   auto kind = codestore::classify(path);                  // what `codestore import PATH` got
//   auto rel = codestore::read_release("_build/prod/rel/myrel/myrel-0.1.0.tar.gz", {});
//   if (!rel) return rel.error();   // "myrel-0.1.0.tar.gz: release myrel@0.1.0: ... lib/x-1.0 ..."
//   store->import_release(*rel);
//
// A release is a directory (the root that holds `lib/` and `releases/`) or a tarball of one
// (`rebar3 tar`, `systools:make_tar`, a mix release's tar; .tar.gz, .tgz or .tar). Its layout
// is found from what is there (docs/model.md, "Releases"):
//
// * The .rel: `releases/<vsn>/<name>.rel` (relx, mix, systools), the version chosen by
//   ReadOptions::vsn, else by `releases/start_erl.data` ("ERTS_VSN REL_VSN"), else the only
//   `releases/<vsn>/` holding a .rel; a top-level `releases/<name>.rel` (systools, relx's
//   tarball) when no version directory has one. Several .rel files in one version directory
//   (OTP's own root has four) need ReadOptions::name, unless a top-level `releases/<name>.rel`
//   names one of them. It must hold exactly one {release, {Name, Vsn}, {erts, EVsn}, Apps}
//   (otp::parse_rel's checks), and Vsn must be its directory's name.
// * Each .rel entry {App, Vsn...} needs `lib/<App>-<Vsn>/` (a link to a directory is
//   followed: `rebar3 release`'s dev mode links every lib/ entry into _build or OTP's root),
//   with `ebin/<App>.app` naming App and Vsn. Every file under it is read.
// * The release's own files: `releases/**` (the chosen version's directory and the files
//   directly in `releases/`: start_erl.data, RELEASES, a top-level .rel; not other versions'
//   directories) and `bin/**`. Never `erts-*/**`, nor anything else at the root (`lib/` entries
//   the .rel does not name are left, with a warning). mix's `releases/COOKIE` (the node's
//   secret cookie) only with ReadOptions::keep_secrets; without it a warning says it was left.
// * kind: "mix" when the release has mix's files (`releases/COOKIE`, `releases/<vsn>/env.sh`
//   or `consolidated/`), else "relx" when it has relx's (`releases/start_erl.data`, `bin/nodetool`,
//   `bin/install_upgrade.escript`, or `bin/<name>`), else "systools" (OTP's layout, nothing more).
//
// Links. In a directory, a symbolic link whose target stays inside the tree being read (the
// application's directory for its files, the release root for the release's files) is kept
// as a link (ContentFile::link); one that leaves it (absolute, or `..` past the tree, as dev
// mode's `include -> ../../../../apps/myrel/include` and `sys.config -> /proj/config/...`) is
// followed and read as what it points to; a dangling one is left with a warning. An archive's
// links are the same, over its members (archive::read_archive has refused any that leave the
// archive). Empty directories are kept (ContentFile::directory).
//
// An application is a directory (`<app>[-<vsn>]/` with `ebin/<app>.app`) or an `.ez` archive
// (a zip made by zip:create/3 holding one `<app>-<vsn>/` directory). Its name is OTP's
// (base::app_name); `app` and `vsn` are the .app file's.
//
// Errors, all or nothing (nothing is returned with one): kNotFound (the path; a .rel; an
// application the .rel names; its .app), kInvalidArgument (several versions or .rel files
// with nothing to choose by; a .rel or .app that disagrees with its place; not a release),
// kCorruption (a .rel or .app that is not valid term text), kLimitExceeded (Limits), the
// codes of archive::read_archive for an archive (truncated, hostile members), and kIOError.
// Messages start with the path given and name the file or member.
//
// Thread safety: free functions over the file system and their arguments; thread-safe.
#pragma once

#include <codestore/archive.h>
#include <codestore/release_content.h>
#include <codestore/status.h>

#include <string>
#include <string_view>
#include <vector>

namespace codestore {

struct ReadOptions {
  // The release version to read when `releases/` holds several ("" : start_erl.data's, or
  // the only one).
  std::string vsn;
  // The release name, when the version directory holds several .rel files ("" : the only one).
  std::string name;
  // Keep mix's `releases/COOKIE` (a secret: left out by default, with a warning).
  bool keep_secrets = false;
  // Bounds on what is read, for an archive (read_archive's) and for a directory alike: bytes
  // per file (max_entry_bytes), bytes in all (max_total_bytes), files, links and directories
  // (max_entries); max_archive_bytes bounds the archive file.
  archive::Limits limits;
};

// What a path is, by a cheap look (a few stat calls; the name for files), so that
// `codestore import PATH` can choose its reader.
enum class PathKind {
  kReleaseDir,      // a directory with `releases/` and `lib/`
  kReleaseArchive,  // a file named *.tar.gz, *.tgz or *.tar
  kAppDir,          // a directory with `ebin/*.app`
  kAppArchive,      // a file named *.ez
  kBeam,            // a file named *.beam
  kDirectory,       // any other directory (a plain import walks it for *.beam files)
  kOther,           // any other file
};
// "release directory", "release archive", "application directory", "application archive",
// "beam", "directory", "other".
std::string_view path_kind_name(PathKind kind) noexcept;
// kNotFound when nothing is at `path`; kIOError when it cannot be looked at.
[[nodiscard]] Result<PathKind> classify(const std::string& path);

// A release from a directory or an archive (the kind is chosen from what `path` is: a
// directory, else an archive by its bytes).
[[nodiscard]] Result<ReleaseContent> read_release(const std::string& path, const ReadOptions& options = {});

// An application as read, with what the reader noticed and let pass (a dangling link...).
struct AppRead {
  AppContent app;
  std::vector<std::string> warnings;
};

// An application from a directory or an .ez archive (ReadOptions::limits apply; the other
// options do not). The .app is `ebin/<app>.app` with <app> the directory's OTP name, else the
// only `ebin/*.app`; it must name the application its file is named after.
[[nodiscard]] Result<AppRead> read_app(const std::string& path, const ReadOptions& options = {});

}  // namespace codestore

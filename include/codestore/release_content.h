// What an Erlang release or application is made of, read from disk or from an archive and
// not yet stored: the hand-over between the release reader (which knows the build tools'
// layouts: relx/rebar3, mix, systools; directories, tarballs, .ez archives) and the store
// (which keeps application versions, releases and channels: docs/model.md).
//
// Paths are relative, '/'-separated, without "." or ".." components: an application's files
// relative to its directory (`ebin/m.beam`, `ebin/myapp.app`, `priv/x.so`), a release's files
// relative to the release root (`releases/0.1.0/start.boot`, `bin/myrel`).
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace codestore {

// One file. A symbolic link has `link` set and no bytes; a directory has `directory` set (kept
// only when it is empty, as an export must recreate it).
struct ContentFile {
  std::string path;
  std::vector<std::uint8_t> bytes;
  std::uint32_t mode = 0644;  // permission bits, as the source had them
  std::string link;           // a symbolic link's target ("" for a regular file)
  bool directory = false;
};

// An application version: what `lib/<app>-<vsn>/` holds. `app` and `vsn` are the .app file's
// `application` and `vsn` (never the directory's name: Debian's ejabberd-23.01 holds vsn
// "23.01-1"). Every file is in `files`, beams and the .app included.
struct AppContent {
  std::string app;
  std::string vsn;
  std::string origin;  // where it was read: a directory, "archive.tar.gz:lib/x-1.0"
  std::vector<ContentFile> files;
};

// A release: what a .rel names, with its applications and its own files.
struct ReleaseContent {
  std::string name;
  std::string vsn;
  std::string erts_vsn;
  std::string kind;    // what built it, as the reader recognized it: "relx", "mix", "systools"
  std::string origin;  // the directory or archive it was read from
  // The .rel's application entries, in order.
  struct AppEntry {
    std::string app;
    std::string vsn;
    std::string type;      // the start type as written ("" when the entry has none: permanent)
    std::string included;  // the included applications as term text ("" when not given)
  };
  std::vector<AppEntry> rel_apps;
  std::vector<AppContent> apps;  // one per rel_apps entry, in the same order
  // The release's own files under its root: releases/**, bin/**, mix's consolidated protocol
  // beams (releases/<vsn>/consolidated/*.beam). Never erts-*/** and never a secret (mix's
  // releases/COOKIE) unless the reader was asked to keep it.
  std::vector<ContentFile> files;
  std::vector<std::string> warnings;  // what the reader noticed and let pass (a dangling link...)
};

}  // namespace codestore

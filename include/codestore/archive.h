// Archives as release tools ship them: tarballs (`rebar3 tar`, `systools:make_tar`, a mix
// release's tar, each gzip-compressed; plain tar too) and zip files (`.ez` archives, which
// `zip:create/3` makes: `<app>-<vsn>/ebin/...`). Reading is all or nothing: either every
// member, checked, or a Status naming the archive and the member, and nothing else.
//
//   auto entries = codestore::archive::read_archive("myrel-0.2.0.tar.gz");
//   if (!entries) return entries.error();  // "myrel-0.2.0.tar.gz: member 'lib/../x': ..."
//   for (const auto& e : *entries) ...     // e.path is "lib/myrel-0.2.0/ebin/myrel.app", ...
//
// What is refused, and why, is in docs/archives.md. In short: a truncated or damaged archive
// (the gzip CRC-32 and length are checked, a tar must end with its end-of-archive blocks, a
// zip with its central directory); a member path that is empty, absolute, or has a `..`
// component; a symbolic link whose target leaves the archive (absolute, or `..` past the
// root, also through other links of the archive); a hard link to anything but an earlier
// file of the archive; devices, FIFOs and sockets; the same path twice; a member under a
// path that is a file or a link; more members or more bytes than the Limits allow, checked
// while inflating (nothing is allocated past a limit).
//
// Error codes: kCorruption (truncated or damaged bytes), kInvalidArgument (a member the rules
// refuse, or bytes that are no archive at all), kNotSupported (another archive format or
// compressor: bzip2, xz, zstd, 7-Zip, RAR), kLimitExceeded (Limits), and read_archive's file
// errors (kNotFound, kPermissionDenied, kIOError). The Status's Where names the archive and
// the byte offset of the member's header in the (uncompressed) archive when there is one.
//
// Thread safety: free functions over values the caller owns; thread-safe (each call has its
// own libarchive reader).
#pragma once

#include <codestore/status.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::archive {

// Hard limits on hostile input. The defaults take any real release; tests lower them.
struct Limits {
  // The sum of every member's bytes (hard links count again, as their copies do).
  std::uint64_t max_total_bytes = std::uint64_t{4} << 30;
  // One member's bytes; a member that declares more is refused before it is read.
  std::uint64_t max_entry_bytes = std::uint64_t{1} << 30;
  // Members of every kind (directories and links too).
  std::uint64_t max_entries = 200'000;
  // The archive file itself, for read_archive(path).
  std::uint64_t max_archive_bytes = std::uint64_t{4} << 30;
};

// One member of an archive.
struct Entry {
  enum class Type : std::uint8_t {
    kFile,       // a regular file (a tar hard link becomes a copy of the file it names)
    kDirectory,  // a directory; `bytes` is empty
    kSymlink,    // a symbolic link; `link_target` as the archive has it, `bytes` empty
  };
  // Relative, '/'-separated, normalized: no "." or empty components, no trailing '/'
  // ("./lib//a/" is "lib/a"); never empty, never with a ".." component, valid UTF-8.
  std::string path;
  Type type = Type::kFile;
  // For kSymlink: the target as written (relative; it stays inside the archive).
  std::string link_target;
  // Permission bits (0777 at most: setuid, setgid and sticky bits are dropped).
  std::uint32_t mode = 0;
  // For kFile: the member's bytes.
  std::vector<std::uint8_t> bytes;

  bool operator==(const Entry&) const = default;
};

// Every member of the archive held in `bytes` (`name` is used in messages only), in archive
// order: a tar, a gzip-compressed tar (one or more gzip members, each checked), or a zip.
// The format is found from the bytes, never from the name. A tar's root directory entry
// ("./", as `tar -C dir .` writes it) is not returned.
[[nodiscard]] Result<std::vector<Entry>> read_archive(std::span<const std::uint8_t> bytes,
                                                      std::string_view name, const Limits& limits = {});

// The same for the archive file at `file_path` (read whole, at most limits.max_archive_bytes;
// messages name the file as given).
[[nodiscard]] Result<std::vector<Entry>> read_archive(const std::string& file_path,
                                                      const Limits& limits = {});

// "file", "directory", "symlink".
std::string_view type_name(Entry::Type type) noexcept;

}  // namespace codestore::archive

// The one whole-file read: bounded, errors as values with errno kept (the boot server
// answers with the POSIX atom, the image reader with beam_lib's file_error).
//
// Thread safety: a free function; thread-safe.
#pragma once

#include <codestore/status.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::base {

// Why a file could not be read.
struct FileError {
  int err = 0;          // errno: ENOENT, EACCES, EISDIR...; EFBIG when the file is over the limit
  std::string message;  // without the path: "cannot open: No such file or directory"

  // As a Status whose message starts with `path: `: kNotFound (ENOENT), kPermissionDenied
  // (EACCES, EPERM), kLimitExceeded (EFBIG), else kIOError.
  Status status(std::string_view path) const;
};

template <typename T>
using FileResult = tl::expected<T, FileError>;

// The bytes of the file at `path`, read to its end: the size fstat gives is only a hint (a
// file may change under us; a pipe or a device has none). Fails with EISDIR for a directory
// (file:read_file/1 answers eisdir), and with EFBIG when the file holds more than `max_bytes`:
// a regular file's size is checked before anything is read, and no more than `max_bytes`
// + 1 bytes are ever held.
FileResult<std::vector<std::uint8_t>> read_file(const std::string& path, std::size_t max_bytes);

}  // namespace codestore::base

#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace codestore::base {

Status FileError::status(std::string_view path) const {
  Code code = Code::kIOError;
  switch (err) {
    case ENOENT: code = Code::kNotFound; break;
    case EACCES:
    case EPERM: code = Code::kPermissionDenied; break;
    case EFBIG: code = Code::kLimitExceeded; break;
    default: break;
  }
  std::string m(path);
  m += ": ";
  m += message;
  return Status(code, std::move(m));
}

FileResult<std::vector<std::uint8_t>> read_file(const std::string& path, std::size_t max_bytes) {
  const auto failed = [](std::string_view what, int err) {
    return tl::unexpected(FileError{err, std::string(what) + ": " + std::strerror(err)});
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed("cannot open", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return failed("cannot read", errno);
  if (S_ISDIR(st.st_mode)) return failed("cannot read", EISDIR);
  // Room for one byte past the limit, so that a file over it is caught by reading too.
  const std::size_t cap = max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1;
  std::vector<std::uint8_t> bytes;
  if (S_ISREG(st.st_mode)) {
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
      return tl::unexpected(FileError{
          EFBIG, "file of " + std::to_string(st.st_size) + " bytes exceeds " + std::to_string(max_bytes)});
    }
    // One byte more than fstat says, so that the common case ends with one read of 0.
    bytes.resize(std::min(cap, static_cast<std::size_t>(st.st_size) + 1));
  }
  std::size_t have = 0;
  for (;;) {
    if (have == bytes.size()) {
      if (have == cap) break;
      bytes.resize(std::min(cap, std::max<std::size_t>(bytes.size() * 2, 4096)));
    }
    const ssize_t n = ::read(fd, bytes.data() + have, bytes.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failed("cannot read", errno);
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  if (have > max_bytes)
    return tl::unexpected(FileError{EFBIG, "file exceeds " + std::to_string(max_bytes) + " bytes"});
  bytes.resize(have);
  return bytes;
}

}  // namespace codestore::base

// Files of application versions and releases (store/file_tree.h): reading their rows, and the
// file writing that export and materialize share.
#include "file_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "base/hex.h"

namespace codestore::store_internal {

namespace fs = std::filesystem;

namespace {

// Rows of (path, mode, link or '', is an empty directory, blob id or 0, sha256 or NULL, size).
void files_of(Store::Impl& impl, const char* sql, std::int64_t owner, const std::string& prefix,
              std::vector<TreeItem>& out) {
  auto& s = impl.stmt(sql);
  Store::Impl::Done done{s};
  s.bind(1, owner);
  while (s.step()) {
    TreeItem item;
    item.path = prefix + s.text(0);
    item.mode = static_cast<std::uint32_t>(s.int64(1));
    item.link = s.text(2);
    item.directory = s.int64(3) != 0;
    item.blob_id = s.int64(4);
    if (item.blob_id != 0) {
      item.sha256 = base::hex(s.blob(5));
      item.size = static_cast<std::uint64_t>(s.int64(6));
    }
    out.push_back(std::move(item));
  }
}

// Rows of (path, blob id, sha256, size) of module images (mode 0644, as export writes them).
void modules_of(Store::Impl& impl, const char* sql, std::int64_t owner, const std::string& prefix,
                std::vector<TreeItem>& out) {
  auto& s = impl.stmt(sql);
  Store::Impl::Done done{s};
  s.bind(1, owner);
  while (s.step()) {
    out.push_back({prefix + s.text(0), 0644, "", false, s.int64(1), base::hex(s.blob(2)),
                   static_cast<std::uint64_t>(s.int64(3))});
  }
}

}  // namespace

void collect_app_tree(Store::Impl& impl, std::int64_t app_version, const std::string& prefix, bool modules,
                      std::vector<TreeItem>& out) {
  if (modules) {
    modules_of(impl,
               "SELECT m.path, m.blob_id, b.sha256, b.raw_size FROM app_modules m JOIN blobs b ON b.id = "
               "m.blob_id WHERE m.app_version = ?",
               app_version, prefix, out);
  }
  files_of(impl,
           "SELECT f.path, f.mode, coalesce(f.link, ''), f.blob_id IS NULL AND f.link IS NULL, "
           "coalesce(f.blob_id, 0), b.sha256, coalesce(b.raw_size, 0) FROM app_files f LEFT JOIN blobs b ON "
           "b.id = f.blob_id WHERE f.app_version = ?",
           app_version, prefix, out);
}

void collect_release_tree(Store::Impl& impl, std::int64_t release, bool modules, std::vector<TreeItem>& out) {
  files_of(impl,
           "SELECT f.path, f.mode, coalesce(f.link, ''), f.blob_id IS NULL AND f.link IS NULL, "
           "coalesce(f.blob_id, 0), b.sha256, coalesce(b.raw_size, 0) FROM release_files f LEFT JOIN blobs b "
           "ON b.id = f.blob_id WHERE f.release = ?",
           release, "", out);
  if (modules) {
    modules_of(impl,
               "SELECT m.path, m.blob_id, b.sha256, b.raw_size FROM release_modules m JOIN blobs b ON b.id = "
               "m.blob_id WHERE m.release = ?",
               release, "", out);
  }
}

std::string errno_text(int err) {
  return std::strerror(err);
}

fs::path temporary_beside(const fs::path& target) {
  std::random_device rd;
  return target.parent_path() /
         fmt::format(".{}.tmp-{}-{:08x}", target.filename().string(), ::getpid(), rd());
}

bool is_temporary_name(const std::string& filename) {
  // .<name>.tmp-<pid>-<8 hex digits>
  if (filename.size() < 16 || filename[0] != '.') return false;
  const auto tmp = filename.rfind(".tmp-");
  if (tmp == std::string::npos || tmp == 0) return false;
  const auto dash = filename.rfind('-');
  if (dash == std::string::npos || dash <= tmp + 5 || filename.size() - dash - 1 != 8) return false;
  auto all = [&](std::size_t from, std::size_t to, auto pred) {
    for (std::size_t i = from; i < to; ++i) {
      if (!pred(static_cast<unsigned char>(filename[i]))) return false;
    }
    return true;
  };
  return all(tmp + 5, dash, [](unsigned char c) { return c >= '0' && c <= '9'; }) &&
         all(dash + 1, filename.size(),
             [](unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void write_new_file(const fs::path& path, std::span<const std::uint8_t> bytes, std::uint32_t mode,
                    bool sync) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail(Code::kIOError, fmt::format("{}: cannot create: {}", path.string(), errno_text(errno)));
  std::size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fchmod(fd, mode) != 0) err = errno;
  if (err == 0 && sync && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) fail(Code::kIOError, fmt::format("{}: cannot write: {}", path.string(), errno_text(err)));
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    fail(Code::kIOError, fmt::format("{}: cannot create the directory: {}", dir.string(), ec.message()));
}

}  // namespace codestore::store_internal

// Export of an Erlang release (docs/model.md): every file as imported, byte for byte, as a
// directory (lib/<app>-<vsn>/..., releases/..., bin/... with their modes and links) or as a
// .tar.gz laid out as relx writes one (`releases/<name>.rel` at the top too, so that
// release_handler:unpack_release("<vsn>/<name>") finds it). Both are written beside the
// target under a temporary name and renamed into place: nothing half-written is left.
// Tarballs are written with libarchive (ustar; pax headers only for names ustar cannot hold,
// which erl_tar reads too).
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <tuple>

#include "file_tree.h"
#include "store_impl.h"

namespace codestore {

using store_internal::Cleanup;
using store_internal::errno_text;
using store_internal::fail;
using store_internal::make_dirs;
using store_internal::temporary_beside;
using store_internal::write_new_file;

namespace {

namespace fs = std::filesystem;

using Item = store_internal::TreeItem;

// Every file of the release, by path: its applications' (modules included) under
// lib/<app>-<vsn>/, then its own.
std::vector<Item> collect(Store::Impl& impl, std::int64_t rid) {
  std::vector<Item> items;
  std::vector<std::tuple<std::int64_t, std::string, std::string>> apps;  // id, app, vsn
  {
    auto& s = impl.stmt(
        "SELECT a.id, a.app, a.vsn FROM release_apps ra JOIN app_versions a ON a.id = ra.app_version WHERE "
        "ra.release = ? ORDER BY ra.position");
    Store::Impl::Done done{s};
    s.bind(1, rid);
    while (s.step()) apps.emplace_back(s.int64(0), s.text(1), s.text(2));
  }
  for (const auto& [id, app, vsn] : apps) {
    store_internal::collect_app_tree(impl, id, fmt::format("lib/{}-{}/", app, vsn), /*modules=*/true, items);
  }
  store_internal::collect_release_tree(impl, rid, /*modules=*/true, items);
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.path < b.path; });
  return items;
}

void count(ReleaseExportReport& report, const Item& item, std::size_t bytes) {
  if (item.directory) {
    report.directories++;
  } else if (!item.link.empty()) {
    report.links++;
  } else {
    report.files++;
    report.bytes += bytes;
  }
}

// One .tar.gz being written (libarchive's ustar/pax writer over gzip). Thread safety:
// thread-compatible; one export's own object.
class TarWriter {
 public:
  explicit TarWriter(const fs::path& path) : path_(path), a_(archive_write_new()) {
    if (a_ == nullptr) fail(Code::kInternal, "libarchive: archive_write_new failed");
    check(archive_write_add_filter_gzip(a_), "gzip");
    check(archive_write_set_format_pax_restricted(a_), "format");
    check(archive_write_open_filename(a_, path.c_str()), "open");
  }
  ~TarWriter() {
    if (a_ != nullptr) archive_write_free(a_);
  }
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  void add(const Item& item, std::span<const std::uint8_t> bytes, std::int64_t mtime) {
    archive_entry* e = archive_entry_new();
    if (e == nullptr) fail(Code::kInternal, "libarchive: archive_entry_new failed");
    struct Free {
      archive_entry* e;
      ~Free() { archive_entry_free(e); }
    } free_entry{e};
    archive_entry_set_pathname(e, item.path.c_str());
    archive_entry_set_mtime(e, static_cast<time_t>(mtime), 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (item.directory) {
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, item.mode | 0700);
      archive_entry_set_size(e, 0);
    } else if (!item.link.empty()) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_perm(e, 0777);
      archive_entry_set_symlink(e, item.link.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, item.mode);
      archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
    }
    check(archive_write_header(a_, e), item.path);
    if (!bytes.empty()) {
      const la_ssize_t n = archive_write_data(a_, bytes.data(), bytes.size());
      if (n < 0 || static_cast<std::size_t>(n) != bytes.size()) check(ARCHIVE_FATAL, item.path);
    }
  }

  void close() { check(archive_write_close(a_), "close"); }

 private:
  void check(int rc, std::string_view what) {
    if (rc == ARCHIVE_OK) return;
    const char* msg = archive_error_string(a_);
    fail(Code::kIOError, fmt::format("{}: writing the tarball ({}): {}", path_.string(), what,
                                     msg != nullptr ? msg : "libarchive error"));
  }

  fs::path path_;
  archive* a_;
};

}  // namespace

std::vector<std::uint8_t> Store::Impl::blob_bytes(std::int64_t blob_id, std::string_view what) {
  static const std::string sql =
      fmt::format("SELECT {} FROM blobs b WHERE b.id = ?", store_internal::kBlobColumns);
  auto& s = stmt(sql.c_str());
  Done done{s};
  s.bind(1, blob_id);
  if (!s.step()) fail(Code::kCorruption, fmt::format("{}: its blob {} is missing", what, blob_id));
  std::vector<std::uint8_t> out;
  if (Status st = decode(store_internal::blob_row(s, 0), /*check_sha256=*/true, out); !st) {
    fail(Code::kCorruption, fmt::format("{}: {}", what, st.message()));
  }
  return out;
}

Result<ReleaseExportReport> Store::erl_release_export(const ReleaseId& id, const std::string& out) {
  return impl_->call(
      [&] { return fmt::format("release export {}@{}", id.name, id.vsn); },
      [&]() -> Result<ReleaseExportReport> {
        db::Transaction tx(*impl_->db, db::TxKind::kRead);
        const std::int64_t rid = impl_->require_release(id);
        std::int64_t imported_at = 0;
        {
          auto& s = impl_->stmt("SELECT imported_at FROM releases WHERE id = ?");
          Impl::Done done{s};
          s.bind(1, rid);
          if (s.step()) imported_at = s.int64(0);
        }
        std::vector<Item> items = collect(*impl_, rid);
        ReleaseExportReport report;
        report.path = out;
        report.tarball = out.ends_with(".tar.gz");
        const fs::path target(out.empty() ? std::string(".") : out);
        std::error_code ec;
        const auto status = fs::symlink_status(target, ec);
        const bool exists = !ec && fs::exists(status);
        if (report.tarball) {
          if (exists) fail(Code::kAlreadyExists, fmt::format("{} exists: an export never overwrites", out));
          // relx's naming: releases/<name>.rel at the top too.
          const std::string top = fmt::format("releases/{}.rel", id.name);
          const std::string inner = fmt::format("releases/{}/{}.rel", id.vsn, id.name);
          if (std::none_of(items.begin(), items.end(), [&](const Item& i) { return i.path == top; })) {
            auto it =
                std::find_if(items.begin(), items.end(), [&](const Item& i) { return i.path == inner; });
            if (it == items.end() || it->blob_id == 0) {
              fail(Code::kFailedPrecondition,
                   fmt::format("{}@{} has no {}: release_handler could not unpack its tarball", id.name,
                               id.vsn, inner));
            }
            Item copy = *it;
            copy.path = top;
            items.push_back(std::move(copy));
          }
          // The .rel files first, as relx writes them.
          std::stable_partition(items.begin(), items.end(),
                                [&](const Item& i) { return i.path == top || i.path == inner; });
        } else if (exists) {
          if (!fs::is_directory(status)) {
            fail(Code::kAlreadyExists, fmt::format("{} exists and is not a directory", out));
          }
          if (!fs::is_empty(target, ec) || ec) {
            fail(Code::kAlreadyExists,
                 fmt::format("{} is a directory that is not empty: an export never overwrites", out));
          }
        }
        const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
        if (!fs::is_directory(parent, ec)) {
          fail(Code::kNotFound, fmt::format("{}: no directory {}", out, parent.string()));
        }
        Cleanup cleanup{temporary_beside(target)};
        const std::string rel = fmt::format("{}@{}", id.name, id.vsn);
        if (report.tarball) {
          TarWriter tar(cleanup.path);
          for (const Item& item : items) {
            std::vector<std::uint8_t> bytes;
            if (item.blob_id != 0) bytes = impl_->blob_bytes(item.blob_id, rel + ": " + item.path);
            tar.add(item, bytes, imported_at);
            count(report, item, bytes.size());
          }
          tar.close();
        } else {
          make_dirs(cleanup.path);
          for (const Item& item : items) {
            const fs::path p = cleanup.path / item.path;
            make_dirs(p.parent_path());
            if (item.directory) {
              make_dirs(p);
              ::chmod(p.c_str(), item.mode | 0700);
            } else if (!item.link.empty()) {
              fs::create_symlink(item.link, p, ec);
              if (ec)
                fail(Code::kIOError, fmt::format("{}: cannot make the link: {}", p.string(), ec.message()));
            } else {
              const auto bytes = impl_->blob_bytes(item.blob_id, rel + ": " + item.path);
              write_new_file(p, bytes, item.mode);
              count(report, item, bytes.size());
              continue;
            }
            count(report, item, 0);
          }
          if (exists) fs::remove(target, ec);  // the empty directory it replaces
        }
        if (::rename(cleanup.path.c_str(), target.c_str()) != 0) {
          fail(Code::kIOError, fmt::format("{}: cannot rename {} into place: {}", out, cleanup.path.string(),
                                           errno_text(errno)));
        }
        cleanup.keep = true;
        return report;
      });
}

}  // namespace codestore

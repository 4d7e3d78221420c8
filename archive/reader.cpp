// read_archive: libarchive parses tar and zip; what it leaves unchecked is checked here (the
// gzip trailer in gzip_whole.cpp and gzip_reader.cpp, a tar's end-of-archive blocks, the
// member rules in member_path.cpp), and the limits are counted while bytes come out of the
// inflater. A tar.gz is inflated whole by libdeflate when its trailers promise a bounded size
// (gzip_whole.h), else streamed through zlib (gzip_reader.h); libarchive reads the tar alike.
#include <archive.h>
#include <archive_entry.h>
#include <codestore/archive.h>
#include <fmt/format.h>
#include <locale.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <unordered_map>

#include "archive/gzip_reader.h"
#include "archive/gzip_whole.h"
#include "archive/member_path.h"
#include "archive/sniff.h"
#include "base/file.h"

namespace codestore::archive {

std::string_view type_name(Entry::Type type) noexcept {
  switch (type) {
    case Entry::Type::kFile: return "file";
    case Entry::Type::kDirectory: return "directory";
    case Entry::Type::kSymlink: return "symlink";
  }
  return "unknown";
}

namespace {

using internal::quote;

constexpr std::size_t kStep = 64 * 1024;
// A tar ends with two zero blocks; tar(1) pads the last record with zeros (10240 bytes by
// default, 1 MiB with the largest blocking factors). What follows the end inside a gzip
// stream is inflated (the trailer is checked) but not kept: at most this much.
constexpr std::uint64_t kMaxTarTail = 16u << 20;
// Headers inside the tar stream (ustar, pax, GNU long names) around the members' bytes: the
// inflated stream may exceed max_total_bytes by this much per member before it is a bomb.
constexpr std::uint64_t kHeaderAllowance = 4096;

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

// libarchive converts the names in pax headers and UTF-8-flagged zip entries to the current
// locale's charset, and in the "C" locale a name beyond ASCII fails to convert. Erlang names
// files in UTF-8; so does this thread while it reads (uselocale is per thread).
// Thread safety: changes the calling thread's locale only, until destroyed.
class Utf8Locale {
 public:
  Utf8Locale() : utf8_(newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{})) {
    if (utf8_) old_ = uselocale(utf8_);
  }
  ~Utf8Locale() {
    if (!utf8_) return;
    uselocale(old_);
    freelocale(utf8_);
  }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

 private:
  locale_t utf8_;
  locale_t old_{};
};

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// The tar stream as libarchive's tar reader asks for it: the bytes as they are (a tar, or a
// tar.gz inflated whole into `inflated`), or inflated by GzipReader as they are asked for.
// Bytes past `cap` fail the read (a bomb).
// Thread safety: owned by one Reader, used by its libarchive reader only.
struct TarStream {
  std::span<const std::uint8_t> raw;
  internal::Inflated inflated;  // a tar.gz inflated whole; `raw` views it
  std::optional<internal::GzipReader> gz;
  std::vector<std::uint8_t> buf;
  std::vector<std::uint8_t> head;  // the first bytes, to describe what the stream holds
  bool raw_given = false;
  std::uint64_t produced = 0;
  std::uint64_t cap = 0;
  Status failure;
};

la_ssize_t read_tar_stream(struct archive*, void* client, const void** out) {
  auto& s = *static_cast<TarStream*>(client);
  if (!s.gz) {
    if (s.raw_given) return 0;
    s.raw_given = true;
    *out = s.raw.data();
    return static_cast<la_ssize_t>(s.raw.size());
  }
  if (!s.failure.is_ok()) return ARCHIVE_FATAL;
  if (s.produced > s.cap) {
    s.failure =
        Status(Code::kLimitExceeded, fmt::format("inflates to more than {} bytes (a gzip bomb?)", s.cap));
    return ARCHIVE_FATAL;
  }
  auto n = s.gz->read(s.buf.data(), s.buf.size());
  if (!n) {
    s.failure = n.error();
    return ARCHIVE_FATAL;
  }
  if (s.head.empty())
    s.head.assign(s.buf.begin(), s.buf.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(*n, 512)));
  s.produced += *n;
  *out = s.buf.data();
  return static_cast<la_ssize_t>(*n);
}

enum class Kind { kTar, kTarGz, kZip };

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kTar: return "tar";
    case Kind::kTarGz: return "tar.gz";
    case Kind::kZip: return "zip";
  }
  return "?";
}

// One read of one archive: the members so far and what the rules need to know about them.
// Thread safety: thread-compatible; each read_archive call makes its own.
class Reader {
 public:
  Reader(std::string_view name, const Limits& limits) : name_(name), limits_(limits) {}

  Result<std::vector<Entry>> read(std::span<const std::uint8_t> bytes);

 private:
  Status fail(Code code, std::string what) const {
    return Status(code, fmt::format("{}: {}", name_, what)).with_where(Where{name_, "", 0});
  }
  Status fail_member(Code code, std::string_view member, std::string what, std::int64_t at) const {
    return Status(code, fmt::format("{}: member {}: {}", name_, quote(member), what))
        .with_where(Where{name_, "", static_cast<std::uint64_t>(std::max<std::int64_t>(at, 0))});
  }
  // libarchive's error, or the stream's own when the stream failed first.
  Status damaged(std::string_view where) const;
  // What bytes libarchive recognized as nothing are (sniff.h).
  Status unrecognized() const;

  Status read_members(struct archive* a);
  Status read_data(struct archive* a, struct archive_entry* ae, const std::string& path, Entry& entry,
                   std::int64_t at);
  Status check_tree() const;
  Status finish_tar(struct archive* a, std::int64_t end_at);

  std::string name_;
  Limits limits_;
  std::span<const std::uint8_t> bytes_;
  Kind kind_ = Kind::kTar;
  TarStream* stream_ = nullptr;  // for tar and tar.gz
  struct archive* a_ = nullptr;

  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;  // path -> entries_ index
  std::vector<std::uint64_t> ordinal_;                  // entries_ index -> member number, from 1
  std::unordered_map<std::string, std::string> links_;  // symlink path -> target
  std::uint64_t total_ = 0;
  std::uint64_t members_ = 0;
};

Status Reader::damaged(std::string_view where) const {
  if (stream_ && !stream_->failure.is_ok()) {
    const Status& f = stream_->failure;
    return Status(f.code(), fmt::format("{}: {}{}", name_, where, f.message()))
        .with_where(Where{name_, "", 0});
  }
  const char* why = archive_error_string(a_);
  return fail(Code::kCorruption, fmt::format("{}{}", where, why ? why : "damaged archive"));
}

Status Reader::unrecognized() const {
  if (kind_ == Kind::kTarGz) {
    const auto what = internal::sniff(stream_->head, stream_->produced);
    return fail(Code::kInvalidArgument,
                fmt::format("gzip-compressed, but not a tar archive inside: {}", what.description));
  }
  const auto what = internal::sniff(bytes_, bytes_.size());
  return fail(what.code, fmt::format("not a tar, tar.gz or zip archive: {}", what.description));
}

Result<std::vector<Entry>> Reader::read(std::span<const std::uint8_t> bytes) {
  bytes_ = bytes;
  if (bytes.empty())
    return error(fail(Code::kInvalidArgument, "not a tar, tar.gz or zip archive: an empty file"));
  const Utf8Locale utf8;  // before the reader: libarchive takes the charset when it first converts
  TarStream stream;       // before the reader, which uses it until it is freed
  ArchivePtr a(archive_read_new());
  if (!a) return error(fail(Code::kInternal, "libarchive: cannot make a reader"));
  a_ = a.get();
  int rc = ARCHIVE_OK;
  if (internal::is_zip(bytes)) {
    kind_ = Kind::kZip;
    const auto end = internal::find_zip_end(bytes);
    if (!end)
      return error(fail(Code::kCorruption,
                        "zip archive without a whole end of central directory record (truncated?)"));
    // libarchive does not take a zip with no members; it is an empty archive.
    if (end->total_entries == 0 && end->offset == 0) return std::vector<Entry>();
    // The seekable reader only: it reads the central directory, so a zip cut short is
    // refused; the streaming one would read the local headers up to the cut and stop there.
    archive_read_support_format_zip_seekable(a_);
    rc = archive_read_open_memory(a_, bytes.data(), bytes.size());
  } else {
    kind_ = internal::is_gzip(bytes) ? Kind::kTarGz : Kind::kTar;
    // No libarchive filter: gzip is inflated (and checked) by GzipReader; anything else
    // compressed is refused by sniff().
    archive_read_support_format_tar(a_);
    stream.raw = bytes;
    if (kind_ == Kind::kTarGz) {
      stream.cap = saturating_add(
          saturating_add(limits_.max_total_bytes, saturating_mul(limits_.max_entries, kHeaderAllowance)),
          kMaxTarTail);
      // Whole, when every member's trailer checks and the size stays under the cap (so the
      // tar is no bomb by the stream's measure); anything else streams, and GzipReader says
      // what is wrong with it.
      if (auto whole = internal::inflate_whole(bytes, stream.cap)) {
        stream.inflated = std::move(*whole);
        stream.raw = std::span<const std::uint8_t>(stream.inflated.data.get(), stream.inflated.size);
        stream.produced = stream.inflated.size;
        stream.head.assign(
            stream.raw.begin(),
            stream.raw.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(stream.raw.size(), 512)));
      } else {
        stream.gz.emplace(bytes);
        stream.buf.resize(kStep);
      }
    }
    stream_ = &stream;
    rc = archive_read_open(a_, &stream, nullptr, read_tar_stream, nullptr);
  }
  if (rc != ARCHIVE_OK) {
    // Opening is where libarchive bids for a format: nothing recognized, say what it is.
    if (archive_format(a_) == 0 && (!stream_ || stream_->failure.is_ok())) return error(unrecognized());
    return error(damaged(""));
  }
  if (Status s = read_members(a_); !s.is_ok()) return error(std::move(s));
  if (Status s = check_tree(); !s.is_ok()) return error(std::move(s));
  return std::move(entries_);
}

Status Reader::read_members(struct archive* a) {
  std::string last;  // the last member's path, to say where a damaged header is
  for (;;) {
    struct archive_entry* ae = nullptr;
    const int rc = archive_read_next_header(a, &ae);
    const std::int64_t at = archive_read_header_position(a);
    if (rc == ARCHIVE_EOF) {
      if (kind_ != Kind::kZip) return finish_tar(a, at);
      return Status::ok();
    }
    if (rc != ARCHIVE_OK) {
      if (members_ == 0 && archive_format(a) == 0 && (!stream_ || stream_->failure.is_ok()))
        return unrecognized();
      return damaged(last.empty() ? std::string("first header: ")
                                  : fmt::format("header after member {}: ", quote(last)));
    }
    if (++members_ > limits_.max_entries)
      return fail(Code::kLimitExceeded, fmt::format("more than {} members", limits_.max_entries));

    const char* raw_path = archive_entry_pathname(ae);
    if (!raw_path) raw_path = archive_entry_pathname_utf8(ae);
    if (!raw_path) return damaged(fmt::format("member {}: path cannot be read: ", members_));
    last = raw_path;
    auto path = internal::normalize_member_path(raw_path);
    if (!path) return fail_member(Code::kInvalidArgument, raw_path, path.error(), at);

    Entry entry;
    entry.mode = static_cast<std::uint32_t>(archive_entry_perm(ae)) & 0777;
    const char* hardlink = archive_entry_hardlink(ae);
    const auto type = archive_entry_filetype(ae);
    if (path->empty()) {
      // "./": the root itself, as `tar -C dir .` writes it first. Nothing to keep.
      if (type == AE_IFDIR && !hardlink) {
        if (archive_read_data_skip(a) != ARCHIVE_OK)
          return damaged(fmt::format("member {}: ", quote(raw_path)));
        continue;
      }
      return fail_member(Code::kInvalidArgument, raw_path,
                         "a member that is not a directory at the archive's root", at);
    }
    // From here on the member is named by its normalized path, as the entries are.
    const std::string& name = *path;
    if (const auto seen = index_.find(name); seen != index_.end())
      return fail_member(Code::kInvalidArgument, name,
                         fmt::format("appears twice (members {} and {})", ordinal_[seen->second], members_),
                         at);
    entry.path = name;

    if (hardlink) {
      // A tar hard link names an earlier member; it becomes a copy of that file's bytes.
      auto target = internal::normalize_member_path(hardlink);
      if (!target)
        return fail_member(Code::kInvalidArgument, name,
                           fmt::format("hard link to {}: {}", quote(hardlink), target.error()), at);
      const auto to = index_.find(*target);
      if (to == index_.end() || entries_[to->second].type != Entry::Type::kFile)
        return fail_member(
            Code::kInvalidArgument, name,
            fmt::format("hard link to {}, which is not an earlier file of the archive", quote(hardlink)), at);
      entry.type = Entry::Type::kFile;
      if (Status s = read_data(a, ae, name, entry, at); !s.is_ok()) return s;
      if (entry.bytes.empty()) {
        const auto& bytes = entries_[to->second].bytes;
        if (bytes.size() > limits_.max_total_bytes - total_)
          return fail_member(
              Code::kLimitExceeded, name,
              fmt::format("the archive's members hold more than {} bytes", limits_.max_total_bytes), at);
        total_ += bytes.size();
        entry.bytes = bytes;
      }
    } else if (type == AE_IFREG) {
      entry.type = Entry::Type::kFile;
      if (Status s = read_data(a, ae, name, entry, at); !s.is_ok()) return s;
    } else if (type == AE_IFDIR) {
      entry.type = Entry::Type::kDirectory;
      if (archive_read_data_skip(a) != ARCHIVE_OK) return damaged(fmt::format("member {}: ", quote(name)));
    } else if (type == AE_IFLNK) {
      entry.type = Entry::Type::kSymlink;
      const char* target = archive_entry_symlink(ae);
      if (!target) target = archive_entry_symlink_utf8(ae);
      if (!target || !*target)
        return fail_member(Code::kInvalidArgument, name, "symbolic link without a target", at);
      entry.link_target = target;
      // Checked once every link is known (check_tree); an absolute target fails now.
      if (entry.link_target.front() == '/')
        return fail_member(Code::kInvalidArgument, name,
                           fmt::format("symbolic link to absolute path {}", quote(target)), at);
      if (archive_read_data_skip(a) != ARCHIVE_OK) return damaged(fmt::format("member {}: ", quote(name)));
      links_.emplace(entry.path, entry.link_target);
    } else {
      std::string_view what = "a member of unknown type";
      switch (type) {
        case AE_IFCHR: what = "a character device"; break;
        case AE_IFBLK: what = "a block device"; break;
        case AE_IFIFO: what = "a FIFO"; break;
        case AE_IFSOCK: what = "a socket"; break;
        default: break;
      }
      return fail_member(Code::kInvalidArgument, name,
                         fmt::format("{}: only files, directories and links are read", what), at);
    }
    index_.emplace(entry.path, entries_.size());
    ordinal_.push_back(members_);
    entries_.push_back(std::move(entry));
  }
}

Status Reader::read_data(struct archive* a, struct archive_entry* ae, const std::string& path, Entry& entry,
                         std::int64_t at) {
  const auto over = [&](std::string_view what, std::uint64_t limit) {
    return fail_member(Code::kLimitExceeded, path, fmt::format("{} (the limit is {} bytes)", what, limit),
                       at);
  };
  // What the header says (a tar's size field, a zip's central directory) is refused before
  // a byte is inflated; what comes out is counted as well, since a zip may lie.
  if (archive_entry_size_is_set(ae)) {
    const auto declared = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(ae), 0));
    if (declared > limits_.max_entry_bytes)
      return over(fmt::format("declares {} bytes, more than one member may hold", declared),
                  limits_.max_entry_bytes);
    if (declared > limits_.max_total_bytes - total_)
      return over(
          fmt::format("declares {} bytes, more than the archive's members may hold together", declared),
          limits_.max_total_bytes);
    // One byte more than declared: the read that finds the end then fits, so a member that
    // keeps its word is read into one allocation, never copied into a larger one.
    entry.bytes.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(declared + 1, 64u << 20)));
  }
  const std::uint64_t limit = std::min(limits_.max_entry_bytes, limits_.max_total_bytes - total_);
  std::size_t have = 0;
  for (;;) {
    // Room for one byte past the limit, so that a member over it is caught by reading.
    const std::uint64_t room = saturating_add(limit, 1) - have;
    // Into the room reserved first (what the header declared); past it, geometrically.
    const std::size_t reserved = entry.bytes.capacity() - have;
    const std::size_t step = static_cast<std::size_t>(
        std::min<std::uint64_t>(reserved != 0 ? reserved : std::max(kStep, have), room));
    entry.bytes.resize(have + step);
    const la_ssize_t n = archive_read_data(a, entry.bytes.data() + have, step);
    if (n < 0) {
      entry.bytes.clear();
      return damaged(fmt::format("member {}: ", quote(path)));
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
    entry.bytes.resize(have);
    if (have > limit) {
      entry.bytes.clear();
      if (have > limits_.max_entry_bytes)
        return over("inflates to more bytes than one member may hold", limits_.max_entry_bytes);
      return over("inflates past what the archive's members may hold together", limits_.max_total_bytes);
    }
  }
  entry.bytes.resize(have);
  total_ += have;
  return Status::ok();
}

Status Reader::check_tree() const {
  for (const Entry& e : entries_) {
    // Nothing under a file or a link: one name, one thing (and no writing through a link).
    for (std::size_t slash = e.path.find('/'); slash != std::string::npos;
         slash = e.path.find('/', slash + 1)) {
      const auto parent = index_.find(e.path.substr(0, slash));
      if (parent != index_.end() && entries_[parent->second].type != Entry::Type::kDirectory)
        return fail_member(Code::kInvalidArgument, e.path,
                           fmt::format("lies under {}, which is a {} in this archive", quote(parent->first),
                                       type_name(entries_[parent->second].type)),
                           0);
    }
    if (e.type == Entry::Type::kSymlink) {
      auto to = internal::resolve_link(e.path, e.link_target, links_);
      if (!to) return fail_member(Code::kInvalidArgument, e.path, to.error(), 0);
    }
  }
  return Status::ok();
}

Status Reader::finish_tar(struct archive* a, std::int64_t end_at) {
  // libarchive takes a tar that just stops between members for a whole one ("there are tar
  // writers that do that"): a tarball cut there would read as a shorter success. The end
  // is two zero blocks, which libarchive consumes when it finds them.
  const std::int64_t consumed = archive_filter_bytes(a, 0) - end_at;
  if (consumed < 1024)
    return fail(Code::kCorruption,
                fmt::format("{} ends without its end-of-archive blocks at byte {} (truncated?)",
                            kind_name(kind_), end_at));
  const auto tail_over = [&] {
    return fail(Code::kLimitExceeded,
                fmt::format("more than {} bytes follow the end of the tar archive inside the gzip stream",
                            kMaxTarTail));
  };
  if (!stream_->gz) {
    if (kind_ != Kind::kTarGz) return Status::ok();
    // Inflated whole, its trailers checked: what follows the tar's end is bounded as when
    // it streams.
    const auto read = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_filter_bytes(a, 0), 0));
    if (stream_->produced > read && stream_->produced - read > kMaxTarTail) return tail_over();
    return Status::ok();
  }
  // The rest of the gzip stream: inflated to its end, so that its trailer is checked.
  std::uint64_t tail = 0;
  for (;;) {
    auto n = stream_->gz->read(stream_->buf.data(), stream_->buf.size());
    if (!n)
      return fail(n.error().code(), fmt::format("after the end of the tar archive: {}", n.error().message()));
    if (*n == 0) return Status::ok();
    tail += *n;
    if (tail > kMaxTarTail) return tail_over();
  }
}

}  // namespace

Result<std::vector<Entry>> read_archive(std::span<const std::uint8_t> bytes, std::string_view name,
                                        const Limits& limits) {
  return Reader(name, limits).read(bytes);
}

Result<std::vector<Entry>> read_archive(const std::string& file_path, const Limits& limits) {
  const std::uint64_t max = std::min<std::uint64_t>(limits.max_archive_bytes, SIZE_MAX - 1);
  auto bytes = base::read_file(file_path, static_cast<std::size_t>(max));
  if (!bytes) return error(bytes.error().status(file_path));
  return read_archive(*bytes, file_path, limits);
}

}  // namespace codestore::archive

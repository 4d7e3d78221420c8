// codestore::Store over SQLite. Every public method runs its body under guard() (the one
// place SQLiteCpp's exceptions become Status values) and under the store's mutex (one
// connection). Writes run in BEGIN IMMEDIATE transactions that also bump the generation.
#include <codestore/store.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>
#include <codestore/image.h>
#include <codestore/term.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zdict.h>

#include "db/codec.h"
#include "db/image_cache.h"
#include "db/migrations.h"
#include "db/sqlite_error.h"
#include "parallel.h"

namespace codestore {

using db::fail;

namespace {

namespace fs = std::filesystem;

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string mv(std::string_view module, std::int64_t version) { return fmt::format("{}@{}", module, version); }

// A validated image ready to insert: everything but the database work.
struct Prepared {
  std::string origin;
  std::string lib;
  db::Sha256 sha{};
  std::string module, md5, vsn, warning;
  std::uint64_t raw_size = 0;
  std::vector<std::uint8_t> frame;
  int level = 0;
  std::int64_t dictionary_id = 0;
};

// What bytes that are not a module image look like, for the error a user reads when a
// tarball, an .ez archive, an .app file or Erlang source reaches an import. nullopt: they
// start as a module image does ("FOR1" then "BEAM", maybe gzip-wrapped), so they are a
// damaged one (corruption), not something else.
std::optional<std::string> not_an_image(std::span<const std::uint8_t> bytes, bool unwrapped = false) {
  auto starts = [&](std::string_view magic, std::size_t at = 0) {
    return bytes.size() >= at + magic.size() && std::memcmp(bytes.data() + at, magic.data(), magic.size()) == 0;
  };
  if (bytes.empty()) return "an empty file";
  if (starts("FOR1")) {
    if (bytes.size() < 12 || starts("BEAM", 8)) return std::nullopt;
    return fmt::format("an IFF file of form type {}, not BEAM",
                       etf::format_w(etf::Term::atom(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, 4))));
  }
  if (starts("\x1f\x8b") && !unwrapped) {
    auto raw = image::maybe_gunzip(bytes, std::size_t{64} << 20);
    if (!raw) return "gzip-compressed data that does not unpack";
    auto inner = not_an_image(*raw, true);
    if (!inner) return std::nullopt;
    if (inner->starts_with("a tar archive")) return "a gzip-compressed tar archive (a tarball: unpack it and import the .beam files inside)";
    return "gzip-compressed data: " + *inner;
  }
  if (starts("PK\x03\x04")) return "a zip archive (an .ez application archive is one: unpack it and import its ebin directory)";
  if (starts("ustar", 257)) return "a tar archive (unpack it and import the .beam files inside)";
  if (starts("\x7f" "ELF")) return "an ELF executable or shared library";
  const std::string_view head(reinterpret_cast<const char*>(bytes.data()), std::min<std::size_t>(bytes.size(), 4096));
  const bool text = std::none_of(head.begin(), head.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == 0 || (u < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f');
  });
  if (!text) {
    std::string first;
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i) first += fmt::format("{}{:02x}", i ? " " : "", bytes[i]);
    return fmt::format("binary data of an unknown kind (it starts with {})", first);
  }
  if (head.find("-module(") != std::string_view::npos) return "Erlang source code (compile it with erlc and import the .beam file)";
  if (head.find("defmodule ") != std::string_view::npos) return "Elixir source code (compile it and import the .beam files)";
  if (head.find("{application,") != std::string_view::npos) {
    return "an application resource file (.app): it names modules but holds no code";
  }
  return "text";
}

// Strict validation (the VM loader's judgement), then the blob frame. Pure: no database.
Result<Prepared> prepare(std::span<const std::uint8_t> bytes, const std::string& origin, db::Compressor& compressor,
                         int level, const db::Dictionary* dict) {
  const std::string name = origin.empty() ? "<binary>" : origin;
  auto img = image::Image::parse(bytes, image::Strictness::kStrict, name);
  if (!img) {
    if (img.error().kind == image::ErrorKind::kNotABeamFile) {
      if (auto what = not_an_image(bytes)) {
        return error(Code::kInvalidArgument, fmt::format("{}: not a module image: it looks like {}", name, *what));
      }
    }
    return error(img.error().status());
  }
  Prepared p;
  p.origin = origin;
  p.raw_size = bytes.size();
  auto module = img->module();
  if (!module) return error(module.error().status());
  // Module names become file names (`codestore export`, the boot server's
  // <app>/ebin/<module>.beam): a name such as "../evil" must never get into the store.
  // Printed as an Erlang atom so that NUL and control characters show as escapes.
  if (!image::is_safe_module_name(*module)) {
    return error(Code::kInvalidArgument,
                 fmt::format("{}: module name {} is not a safe name (/, \\, NUL, control characters, . and .. are refused)",
                             name, etf::format_w(etf::Term::atom(*module))));
  }
  p.module = std::move(*module);
  const auto verdict = img->check_loadable();
  if (!verdict.loadable) {
    if (!verdict.opcode_only) return error(Code::kCorruption, fmt::format("{}: not loadable: {}", name, verdict.reason));
    p.warning = "opcode_only: " + verdict.reason;
  }
  auto md5 = img->md5();
  if (!md5) return error(md5.error().status());
  p.md5 = image::md5_hex(*md5);
  auto vsn = img->vsn();
  if (vsn) p.vsn = etf::format_w(*vsn);
  p.sha = db::sha256(bytes);
  auto frame = compressor.compress(bytes, level, dict);
  if (!frame) return error(frame.error().with_context(name));
  p.frame = std::move(*frame);
  p.level = level;
  p.dictionary_id = dict != nullptr ? dict->id() : 0;
  return p;
}

Result<std::vector<std::uint8_t>> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(Code::kIOError, path + ": cannot open");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return error(Code::kIOError, path + ": read failed");
  return bytes;
}

// journal_mode = WAL takes the write lock from inside the pragma's read transaction, and
// SQLite's busy handler does not wait for such an upgrade (it could deadlock): a process
// opening a fresh database while another one migrates it gets SQLITE_BUSY at once. So the
// switch is retried here, within the busy timeout. WAL mode is kept in the file, so only
// the first opener of a database switches it.
void enable_wal(SQLite::Database& db, int busy_timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    try {
      if (db.execAndGet("PRAGMA journal_mode").getString() == "wal") return;
      db.execAndGet("PRAGMA journal_mode = WAL");
    } catch (const SQLite::Exception& e) {
      if ((e.getErrorCode() & 0xff) != SQLITE_BUSY) throw;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      db::fail(Code::kBusy, fmt::format("could not switch to WAL mode within {} ms", busy_timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A blob's dictionary_id: NULL for none (0), as the schema keeps it.
void bind_dictionary(SQLite::Statement& s, int index, std::int64_t id) {
  if (id != 0) {
    s.bind(index, id);
  } else {
    s.bind(index);
  }
}

// zstd's trainers refuse fewer samples (fastcover's minimum).
constexpr std::int64_t kMinDictionarySamples = 5;

// A file: URI naming `path` with immutable=1 (SQLite's snapshot open): absolute, every byte
// but the unreserved ones percent-encoded, so that '?', '#' and '%' stay part of the name.
std::string immutable_uri(const std::string& path) {
  std::string uri = "file://";
  for (unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri.push_back(static_cast<char>(c));
    } else {
      uri += fmt::format("%{:02X}", c);
    }
  }
  return uri + "?immutable=1";
}

// A read-only open of a WAL database whose <db>-wal or <db>-shm is missing makes SQLite
// create them (when it may write the directory), owned by the reader, with the database's
// mode; a reader never removes them (it cannot checkpoint). Another user's files lock the
// owner out (SQLITE_READONLY on the next write). SQLite gives root's to the database's
// owner itself, and the owner's own are harmless: only other users are refused.
Status read_only_open_creates_nothing(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::ok();  // SQLite says what is wrong
  const uid_t me = ::geteuid();
  if (me == 0 || me == st.st_uid) return Status::ok();
  char header[20];
  std::ifstream in(path, std::ios::binary);
  // The read version (byte 19 of the header) is 2 in WAL mode.
  if (!in.read(header, sizeof header) || header[19] != 2) return Status::ok();
  std::string missing;
  for (const char* suffix : {"-wal", "-shm"}) {
    std::error_code ec;
    if (!fs::exists(path + suffix, ec)) missing += (missing.empty() ? "" : " and ") + path + suffix;
  }
  if (missing.empty()) return Status::ok();
  return Status(
      Code::kFailedPrecondition,
      fmt::format("a WAL database without {}: reading it as uid {} would create them, owned by that user, "
                  "and lock its owner (uid {}) out of writing; the owner's next write creates and keeps "
                  "them, or read it as a snapshot while nobody writes (StoreOptions::snapshot, "
                  "codestore --snapshot)",
                  missing, me, st.st_uid));
}

struct WorkerState {
  db::Compressor compressor;
  db::Decompressor decompressor;
};

// OTP's split/2 in code_server: the tokens between separators, empty ones dropped.
std::vector<std::string> split_tokens(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t end = std::min(s.find(sep, start), s.size());
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// An `<app>-<vsn>` directory as code_server's create_bundle/2 sees it, compared as Erlang
// compares its term {Name, NumVsn, FullName}: split_base/1 cuts at the last '-' (tokens
// joined back with '-'), vsn_to_num/1 reads "X.Y.Z" as [X, Y, Z]; a name without such a
// version is {FullName, [0], FullName}. choose_bundles/1 keeps the greatest of each Name, so
// 0.10.0 beats 0.9.0 and 1.0.0 beats 1.0.
struct Bundle {
  std::string name;
  std::vector<std::string> vsn;  // integers as digits without leading zeros: any size, as Erlang's
  std::string full;

  static Bundle of(const std::string& dir_name) {
    const auto parts = split_tokens(dir_name, '-');
    if (parts.size() >= 2) {
      auto nums = split_tokens(parts.back(), '.');
      const bool numeric = std::all_of(nums.begin(), nums.end(), [](const std::string& t) {
        return std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
      });
      if (numeric) {
        for (auto& n : nums) {
          n.erase(0, std::min(n.find_first_not_of('0'), n.size() - 1));
        }
        std::string name = parts[0];
        for (std::size_t i = 1; i + 1 < parts.size(); ++i) name += "-" + parts[i];
        return {name, nums, dir_name};
      }
    }
    return {dir_name, {"0"}, dir_name};
  }
  friend bool operator<(const Bundle& a, const Bundle& b) {
    if (a.name != b.name) return a.name < b.name;
    const auto integer_less = [](const std::string& x, const std::string& y) {
      return x.size() != y.size() ? x.size() < y.size() : x < y;
    };
    if (a.vsn != b.vsn) return std::lexicographical_compare(a.vsn.begin(), a.vsn.end(), b.vsn.begin(), b.vsn.end(), integer_less);
    return a.full < b.full;
  }
};

// Of several files of one import that carry the same module, which goes last (and so ends
// active): files in `<app>-<vsn>/ebin/` after files elsewhere, by OTP's bundle order among
// them, then by path.
bool placed_before(const std::string& a, const std::string& b) {
  const auto bundle = [](const std::string& file) -> std::optional<Bundle> {
    const fs::path dir = fs::path(file).parent_path();
    if (dir.filename() != "ebin" || dir.parent_path().filename().empty()) return std::nullopt;
    return Bundle::of(dir.parent_path().filename().string());
  };
  const auto ba = bundle(a), bb = bundle(b);
  if (ba.has_value() != bb.has_value()) return !ba.has_value();
  if (ba && (*ba < *bb || *bb < *ba)) return *ba < *bb;
  return a < b;
}

// The `*.beam` files of an import. Directories are walked sorted and follow symlinked
// directories (a `rebar3 release` makes every lib/* entry a link), each real directory and
// file once: a link to a directory being walked (a loop) and a dangling link are skipped
// with a warning; a second path to a directory or file already found is skipped silently.
struct TreeWalk {
  std::set<fs::path> dirs_seen, files_seen;  // real paths
  std::vector<fs::path> walking;             // real paths of the directories being walked
  std::vector<std::string> files, warnings;
  std::size_t beams = 0;                     // `*.beam` files met, duplicates included

  static fs::path real(const fs::path& p) {
    std::error_code ec;
    auto r = fs::canonical(p, ec);
    if (ec) fail(Code::kIOError, fmt::format("{}: {}", p.string(), ec.message()));
    return r;
  }
  void add_file(const fs::path& p) {
    ++beams;
    if (files_seen.insert(real(p)).second) files.push_back(p.string());
  }
  // Walks `root` (a directory given by the user); false when it was walked already.
  bool add_root(const fs::path& root) {
    const fs::path r = real(root);
    if (!dirs_seen.insert(r).second) return false;
    walking.push_back(r);
    walk(root);
    walking.pop_back();
    return true;
  }
  void walk(const fs::path& dir) {
    std::vector<fs::directory_entry> entries;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    if (ec) fail(Code::kIOError, fmt::format("{}: {}", dir.string(), ec.message()));
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
    for (const auto& e : entries) {
      const fs::path& p = e.path();
      std::error_code lec;
      const bool link = e.is_symlink(lec);
      const auto st = fs::status(p, lec);  // through links
      if (lec || !fs::exists(st)) {
        if (!link) fail(Code::kIOError, fmt::format("{}: {}", p.string(), lec.message()));
        warnings.push_back(fmt::format("{}: a dangling link (to {}): skipped", p.string(), fs::read_symlink(p, lec).string()));
        continue;
      }
      if (fs::is_directory(st)) {
        const fs::path r = real(p);
        if (std::find(walking.begin(), walking.end(), r) != walking.end()) {
          warnings.push_back(fmt::format("{}: a link loop (back to {}): not followed", p.string(), r.string()));
          continue;
        }
        if (!dirs_seen.insert(r).second) continue;
        walking.push_back(r);
        walk(p);
        walking.pop_back();
      } else if (fs::is_regular_file(st) && p.extension() == ".beam") {
        add_file(p);
      }
    }
  }
};

}  // namespace

std::string lib_of_path(std::string_view file_path) {
  const fs::path dir = fs::path(file_path).parent_path();
  if (dir.filename() != "ebin") return "";
  const std::string app = dir.parent_path().filename().string();
  return app.substr(0, app.find('-'));
}

struct Store::Impl {
  std::string path;
  StoreOptions options;
  std::unique_ptr<SQLite::Database> db;
  std::mutex mutex;  // guards everything below: calls are serialized on the connection
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> statements;
  std::map<std::int64_t, std::shared_ptr<db::Dictionary>> dictionaries;
  db::Compressor compressor;
  db::Decompressor decompressor;
  db::ImageCache image_cache{0};
  std::chrono::steady_clock::time_point busy_deadline;  // of the lock wait under way (on_busy)

  std::string context() const { return "store " + path; }

  // A cached prepared statement, reset and unbound. Keyed by the literal's address.
  SQLite::Statement& stmt(const char* sql) {
    auto& s = statements[sql];
    if (!s) {
      s = std::make_unique<SQLite::Statement>(*db, sql);
    } else {
      s->tryReset();
      s->clearBindings();
    }
    return *s;
  }

  // Ends the statement's implicit read transaction when the scope ends.
  struct Done {
    SQLite::Statement& s;
    ~Done() { s.tryReset(); }
  };

  // --- transactions -------------------------------------------------------------------------
  struct WriteTx {
    Impl& impl;
    SQLite::Transaction tx;
    explicit WriteTx(Impl& i) : impl(i), tx(*i.db, SQLite::TransactionBehavior::IMMEDIATE) {}
    // `changed`: bump the generation (the loader's "has anything changed" counter).
    void commit(bool changed = true) {
      if (changed) impl.db->exec("UPDATE meta SET value = value + 1 WHERE key = 'generation'");
      tx.commit();
    }
  };
  void require_writable(std::string_view what) const {
    if (options.read_only) fail(Code::kPermissionDenied, fmt::format("{}: the store is open read-only", what));
  }

  void event(std::string_view action, std::string_view module, std::int64_t from, std::int64_t to,
             std::string_view reason) {
    auto& s = stmt("INSERT INTO events (time, action, module, from_version, to_version, reason) VALUES (?, ?, ?, ?, ?, ?)");
    s.bind(1, now());
    s.bind(2, std::string(action));
    s.bind(3, std::string(module));
    s.bind(4, from);
    s.bind(5, to);
    s.bind(6, std::string(reason));
    s.exec();
  }

  // --- dictionaries -------------------------------------------------------------------------
  std::shared_ptr<db::Dictionary> dictionary(std::int64_t id) {
    if (id == 0) return nullptr;
    auto it = dictionaries.find(id);
    if (it != dictionaries.end()) return it->second;
    auto& s = stmt("SELECT bytes FROM dictionaries WHERE id = ?");
    Done done{s};
    s.bind(1, id);
    if (!s.executeStep()) fail(Code::kCorruption, fmt::format("dictionary {} is referenced but missing", id));
    const auto col = s.getColumn(0);
    const auto* p = static_cast<const std::uint8_t*>(col.getBlob());
    auto dict = std::make_shared<db::Dictionary>(id, std::vector<std::uint8_t>(p, p + col.getBytes()));
    dictionaries.emplace(id, dict);
    return dict;
  }
  std::shared_ptr<db::Dictionary> newest_dictionary() {
    auto& s = stmt("SELECT coalesce(max(id), 0) FROM dictionaries");
    Done done{s};
    s.executeStep();
    const std::int64_t id = s.getColumn(0).getInt64();
    return dictionary(id);
  }

  // --- lookups ------------------------------------------------------------------------------
  struct ModuleRow {
    std::int64_t high_water = 0, active = 0, active_since = 0, previous = 0;
  };
  std::optional<ModuleRow> module_row(std::string_view name) {
    auto& s = stmt("SELECT high_water, active_version, active_since, previous_version FROM modules WHERE name = ?");
    Done done{s};
    s.bind(1, std::string(name));
    if (!s.executeStep()) return std::nullopt;
    return ModuleRow{s.getColumn(0).getInt64(), s.getColumn(1).getInt64(), s.getColumn(2).getInt64(),
                     s.getColumn(3).getInt64()};
  }
  ModuleRow require_module(std::string_view name) {
    auto row = module_row(name);
    if (!row || !version_exists_any(name)) fail(Code::kNotFound, fmt::format("unknown module {}", name));
    return *row;
  }
  bool version_exists_any(std::string_view name) {
    auto& s = stmt("SELECT 1 FROM versions WHERE module = ? LIMIT 1");
    Done done{s};
    s.bind(1, std::string(name));
    return s.executeStep();
  }
  bool version_exists(std::string_view name, std::int64_t version) {
    auto& s = stmt("SELECT 1 FROM versions WHERE module = ? AND version = ?");
    Done done{s};
    s.bind(1, std::string(name));
    s.bind(2, version);
    return s.executeStep();
  }
  // A version a caller names: 0 means "none" inside the store (an inactive module) and
  // must never arrive from outside, where it would deactivate the module.
  static void require_version_number(std::int64_t version) {
    if (version < 1) fail(Code::kInvalidArgument, fmt::format("version {}: versions are whole numbers from 1", version));
  }
  void require_version(std::string_view name, std::int64_t version) {
    if (version_exists(name, version)) return;
    require_module(name);
    fail(Code::kNotFound, fmt::format("module {} has no version {}", name, version));
  }

  static constexpr const char* kVersionColumns =
      "v.module, v.version, v.lib, v.md5, v.vsn, lower(hex(b.sha256)), b.raw_size, b.stored_size, v.origin, v.note, "
      "v.warning, v.imported_at, m.active_version = v.version, m.active_since, m.previous_version = v.version "
      "FROM versions v JOIN blobs b ON b.id = v.blob_id JOIN modules m ON m.name = v.module ";
  static ModuleVersion version_of(SQLite::Statement& s) {
    ModuleVersion v;
    v.module = s.getColumn(0).getString();
    v.version = s.getColumn(1).getInt64();
    v.lib = s.getColumn(2).getString();
    v.md5 = s.getColumn(3).getString();
    v.vsn = s.getColumn(4).getString();
    v.sha256 = s.getColumn(5).getString();
    v.raw_size = static_cast<std::uint64_t>(s.getColumn(6).getInt64());
    v.stored_size = static_cast<std::uint64_t>(s.getColumn(7).getInt64());
    v.origin = s.getColumn(8).getString();
    v.note = s.getColumn(9).getString();
    v.warning = s.getColumn(10).getString();
    v.imported_at = s.getColumn(11).getInt64();
    v.active = s.getColumn(12).getInt() != 0;
    v.active_since = v.active ? s.getColumn(13).getInt64() : 0;
    v.rollback_target = s.getColumn(14).getInt() != 0;
    return v;
  }
  ModuleVersion info(std::string_view name, std::int64_t version) {
    static const std::string sql = std::string("SELECT ") + kVersionColumns + "WHERE v.module = ? AND v.version = ?";
    auto& s = stmt(sql.c_str());
    Done done{s};
    s.bind(1, std::string(name));
    s.bind(2, version);
    if (!s.executeStep()) {
      s.tryReset();
      require_version(name, version);
      fail(Code::kNotFound, mv(name, version));
    }
    return version_of(s);
  }

  // The bytes of name@version; the zstd checksum always, the SHA-256 on request (which
  // reads the stored blob even when the image cache has it: it checks the disk).
  // Shared: the cache may hold it too (then it must not be changed); a caller that finds
  // itself the only owner may take the vector.
  std::shared_ptr<std::vector<std::uint8_t>> shared_bytes(std::string_view name, std::int64_t version,
                                                         bool verify_sha256) {
    // The data column last: a cache hit never reads the blob's overflow pages.
    auto& s = stmt(
        "SELECT b.sha256, b.raw_size, b.dictionary_id, b.data FROM versions v JOIN blobs b ON b.id = v.blob_id "
        "WHERE v.module = ? AND v.version = ?");
    Done done{s};
    s.bind(1, std::string(name));
    s.bind(2, version);
    if (!s.executeStep()) {
      s.tryReset();
      require_version(name, version);
      fail(Code::kNotFound, mv(name, version));
    }
    const auto sha_col = s.getColumn(0);
    const std::span sha(static_cast<const std::uint8_t*>(sha_col.getBlob()), static_cast<std::size_t>(sha_col.getBytes()));
    if (!verify_sha256) {
      // The cache only hands out immutable bytes; callers of shared_bytes never write them.
      if (auto hit = image_cache.find(sha)) return std::const_pointer_cast<std::vector<std::uint8_t>>(hit);
    }
    const auto data = s.getColumn(3);
    const std::span frame(static_cast<const std::uint8_t*>(data.getBlob()), static_cast<std::size_t>(data.getBytes()));
    const auto raw_size = static_cast<std::uint64_t>(s.getColumn(1).getInt64());
    const std::int64_t dict_id = s.getColumn(2).getInt64();
    auto out = std::make_shared<std::vector<std::uint8_t>>();
    auto dict = dictionary(dict_id);
    if (Status st = decompressor.decompress(frame, raw_size, dict.get(), *out); !st) {
      fail(Code::kCorruption, fmt::format("module {} version {}: {}", name, version, st.message()));
    }
    if (verify_sha256 && (sha.size() != 32 || std::memcmp(sha.data(), db::sha256(*out).data(), 32) != 0)) {
      fail(Code::kCorruption, fmt::format("module {} version {}: SHA-256 mismatch", name, version));
    }
    // The zstd checksum passed; a hash that does not match would only ever be found again
    // by this same row, so keeping it cannot serve another version wrong bytes.
    image_cache.put(sha, out);
    return out;
  }
  std::vector<std::uint8_t> bytes(std::string_view name, std::int64_t version, bool verify_sha256) {
    auto shared = shared_bytes(name, version, verify_sha256);
    if (shared.use_count() == 1) return std::move(*shared);  // not cached: no copy
    return *shared;
  }

  // --- changes (inside a WriteTx) -----------------------------------------------------------
  // Moves the active version of `name` to `to` (0: none). previous_version becomes the one
  // that was active, so that rollback(name) toggles like `cd -`.
  Activation set_active(std::string_view name, std::int64_t to, std::string_view action, std::string_view reason) {
    const ModuleRow row = require_module(name);
    if (to != 0) require_version(name, to);
    Activation a{std::string(name), row.active, to};
    if (row.active == to) return a;
    auto& s = stmt("UPDATE modules SET previous_version = ?, active_version = ?, active_since = ? WHERE name = ?");
    s.bind(1, row.active);
    s.bind(2, to);
    s.bind(3, to != 0 ? now() : 0);
    s.bind(4, std::string(name));
    s.exec();
    event(action, name, row.active, to, reason);
    return a;
  }

  // Whether blob `id` no longer decompresses to its SHA-256 (what verify reports as damage).
  bool blob_damaged(std::int64_t id) {
    auto& s = stmt("SELECT sha256, raw_size, dictionary_id, data FROM blobs WHERE id = ?");
    Done done{s};
    s.bind(1, id);
    if (!s.executeStep()) return false;
    const auto sha = s.getColumn(0);
    const auto data = s.getColumn(3);
    std::vector<std::uint8_t> out;
    try {
      auto dict = dictionary(s.getColumn(2).getInt64());
      if (!decompressor.decompress(
              std::span(static_cast<const std::uint8_t*>(data.getBlob()), static_cast<std::size_t>(data.getBytes())),
              static_cast<std::uint64_t>(s.getColumn(1).getInt64()), dict.get(), out)) {
        return true;
      }
    } catch (const db::StatusError&) {
      return true;  // its dictionary is missing
    }
    return sha.getBytes() != 32 || std::memcmp(sha.getBlob(), db::sha256(out).data(), 32) != 0;
  }

  // Inserts a prepared image (the blob if new), as the next version, made active; unless it
  // is the active version's code (by_bytes: its bytes) and lib. Bytes whose stored blob is
  // damaged replace that blob's frame first: re-importing the original file repairs it.
  ImportResult insert(const Prepared& p, const std::string& note, bool by_bytes) {
    ImportResult r;
    r.file = p.origin;
    r.module = p.module;
    r.lib = p.lib;
    r.warning = p.warning;
    r.raw_size = p.raw_size;
    const auto row = module_row(p.module);
    std::int64_t blob_id = 0;
    {
      auto& s = stmt("SELECT id FROM blobs WHERE sha256 = ?");
      Done done{s};
      s.bind(1, p.sha.data(), static_cast<int>(p.sha.size()));
      if (s.executeStep()) blob_id = s.getColumn(0).getInt64();
    }
    if (blob_id != 0 && blob_damaged(blob_id)) {
      auto& s = stmt("UPDATE blobs SET data = ?, stored_size = ?, level = ?, dictionary_id = ? WHERE id = ?");
      s.bindNoCopy(1, p.frame.data(), static_cast<int>(p.frame.size()));
      s.bind(2, static_cast<std::int64_t>(p.frame.size()));
      s.bind(3, p.level);
      bind_dictionary(s, 4, p.dictionary_id);
      s.bind(5, blob_id);
      s.exec();
      r.repaired = true;
      event("repair", p.module, 0, 0, fmt::format("blob {} restored from {}", db::hex(p.sha), p.origin));
    }
    if (row && row->active != 0) {
      auto& s = stmt("SELECT blob_id, lib, md5 FROM versions WHERE module = ? AND version = ?");
      Done done{s};
      s.bind(1, p.module);
      s.bind(2, row->active);
      if (s.executeStep()) {
        const std::string active_lib = s.getColumn(1).getString();
        const bool same = by_bytes ? (blob_id != 0 && s.getColumn(0).getInt64() == blob_id)
                                   : s.getColumn(2).getString() == p.md5;
        if (same && active_lib == p.lib) {
          r.unchanged = true;
          r.version = r.previous = row->active;
          return r;
        }
        if (p.lib.empty()) r.lib_left = active_lib;
      }
    }
    if (blob_id == 0) {
      auto& s = stmt(
          "INSERT INTO blobs (sha256, raw_size, stored_size, level, dictionary_id, data) VALUES (?, ?, ?, ?, ?, ?)");
      s.bind(1, p.sha.data(), static_cast<int>(p.sha.size()));
      s.bind(2, static_cast<std::int64_t>(p.raw_size));
      s.bind(3, static_cast<std::int64_t>(p.frame.size()));
      s.bind(4, p.level);
      bind_dictionary(s, 5, p.dictionary_id);
      s.bindNoCopy(6, p.frame.data(), static_cast<int>(p.frame.size()));
      s.exec();
      blob_id = db->getLastInsertRowid();
      r.new_blob = true;
      r.stored_size = p.frame.size();
    }
    if (!row) {
      auto& s = stmt("INSERT INTO modules (name) VALUES (?)");
      s.bind(1, p.module);
      s.exec();
    }
    const std::int64_t version = (row ? row->high_water : 0) + 1;
    const std::int64_t previous = row ? row->active : 0;
    {
      auto& s = stmt(
          "INSERT INTO versions (module, version, blob_id, lib, md5, vsn, origin, note, warning, imported_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      s.bind(1, p.module);
      s.bind(2, version);
      s.bind(3, blob_id);
      s.bind(4, p.lib);
      s.bind(5, p.md5);
      s.bind(6, p.vsn);
      s.bind(7, p.origin);
      s.bind(8, note);
      s.bind(9, p.warning);
      s.bind(10, now());
      s.exec();
    }
    {
      auto& s = stmt(
          "UPDATE modules SET high_water = ?, previous_version = ?, active_version = ?, active_since = ? WHERE name = ?");
      s.bind(1, version);
      s.bind(2, previous);
      s.bind(3, version);
      s.bind(4, now());
      s.bind(5, p.module);
      s.exec();
    }
    event("import", p.module, previous, version, note.empty() ? p.origin : p.origin + ": " + note);
    r.version = version;
    r.previous = previous;
    return r;
  }

  // "hello@2, hello@3": the versions that use blob `id` ("no version" when none does).
  std::string users_of_blob(std::int64_t id) {
    auto& s = stmt("SELECT module, version FROM versions WHERE blob_id = ? ORDER BY module, version");
    Done done{s};
    s.bind(1, id);
    std::vector<std::string> users;
    while (s.executeStep()) users.push_back(mv(s.getColumn(0).getString(), s.getColumn(1).getInt64()));
    return users.empty() ? std::string("no version") : fmt::format("{}", fmt::join(users, ", "));
  }

  std::vector<ModuleSummary> summaries(const char* where, const std::string* arg) {
    static const std::string base =
        "SELECT m.name, m.active_version, coalesce(av.lib, ''), coalesce(av.md5, ''), "
        "(SELECT count(*) FROM versions c WHERE c.module = m.name), "
        "(SELECT max(version) FROM versions c WHERE c.module = m.name), m.active_since "
        "FROM modules m LEFT JOIN versions av ON av.module = m.name AND av.version = m.active_version "
        "WHERE EXISTS (SELECT 1 FROM versions c WHERE c.module = m.name) ";
    static const std::string all = base + "ORDER BY m.name";
    static const std::string by_lib = base + "AND av.lib = ? ORDER BY m.name";
    auto& s = stmt(where == nullptr ? all.c_str() : by_lib.c_str());
    Done done{s};
    if (arg != nullptr) s.bind(1, *arg);
    std::vector<ModuleSummary> out;
    while (s.executeStep()) {
      ModuleSummary m;
      m.module = s.getColumn(0).getString();
      m.active_version = s.getColumn(1).getInt64();
      m.lib = s.getColumn(2).getString();
      m.md5 = s.getColumn(3).getString();
      m.versions = s.getColumn(4).getInt64();
      m.latest_version = s.getColumn(5).getInt64();
      m.active_since = m.active_version != 0 ? s.getColumn(6).getInt64() : 0;
      out.push_back(std::move(m));
    }
    return out;
  }

  Release release(const std::string& name, bool with_modules) {
    Release r;
    {
      auto& s = stmt(
          "SELECT name, created_at, note, (SELECT count(*) FROM release_modules WHERE release = name) FROM releases "
          "WHERE name = ?");
      Done done{s};
      s.bind(1, name);
      if (!s.executeStep()) fail(Code::kNotFound, fmt::format("unknown release {}", name));
      r.name = s.getColumn(0).getString();
      r.created_at = s.getColumn(1).getInt64();
      r.note = s.getColumn(2).getString();
      r.module_count = s.getColumn(3).getInt64();
    }
    if (!with_modules) return r;
    auto& s = stmt(
        "SELECT rm.module, rm.version, v.lib FROM release_modules rm JOIN versions v ON v.module = rm.module AND "
        "v.version = rm.version WHERE rm.release = ? ORDER BY rm.module");
    Done done{s};
    s.bind(1, name);
    while (s.executeStep()) r.modules.push_back({s.getColumn(0).getString(), s.getColumn(1).getInt64(), s.getColumn(2).getString()});
    return r;
  }
};

// SQLite's busy timeout, with StoreOptions::on_busy asked before each wait (a CLI tells the
// user what it waits for, and stops waiting at a Ctrl-C).
namespace {
void install_busy_handler(Store::Impl& impl) {
  sqlite3_busy_handler(
      impl.db->getHandle(),
      [](void* arg, int attempt) -> int {
        auto& self = *static_cast<Store::Impl*>(arg);
        const auto now = std::chrono::steady_clock::now();
        if (attempt == 0) self.busy_deadline = now + std::chrono::milliseconds(self.options.busy_timeout_ms);
        if (now >= self.busy_deadline || !self.options.on_busy(attempt)) return 0;
        // SQLite's own steps: short at first, then 100 ms.
        const int step = attempt < 6 ? (1 << attempt) * 2 : 100;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(step), self.busy_deadline - now));
        return 1;
      },
      &impl);
}
}  // namespace

// --- open ------------------------------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::path() const { return impl_->path; }

std::int64_t Store::schema_version() {
  const auto& m = db::embedded_migrations();
  return m.empty() ? 0 : m.back().number;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const StoreOptions& given) {
  return db::guard("store " + path, [&]() -> Result<std::unique_ptr<Store>> {
    StoreOptions options = given;
    options.read_only = options.read_only || options.snapshot;
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (!exists && (!options.create || options.read_only)) fail(Code::kNotFound, "no such database file");
    // A user who may not write the file gets a read-only connection from SQLite even when
    // asking for more: the same rule holds.
    if (!options.snapshot && (options.read_only || ::access(path.c_str(), W_OK) != 0)) {
      db::check(read_only_open_creates_nothing(path));
    }
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->options = options;
    impl->image_cache = db::ImageCache(options.image_cache_bytes);
    const int flags = options.snapshot    ? SQLite::OPEN_READONLY | SQLITE_OPEN_URI
                      : options.read_only ? SQLite::OPEN_READONLY
                                          : SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE;
    impl->db = std::make_unique<SQLite::Database>(options.snapshot ? immutable_uri(path) : path,
                                                  flags | SQLite::OPEN_NOMUTEX, options.busy_timeout_ms);
    if (options.on_busy) install_busy_handler(*impl);
    // Readers need the busy timeout too (a read-only WAL connection with timeout 0 got
    // SQLITE_BUSY under concurrent writes): the constructor sets it above.
    db::MigrateOptions mo;
    mo.read_only = options.read_only;
    mo.backup = options.backup_before_migrate;
    mo.apply = options.migrate;
    db::check(db::migrate(*impl->db, path, mo));
    if (!options.read_only) {
      // After the checks, so that a refused file is never touched.
      enable_wal(*impl->db, options.busy_timeout_ms);
      impl->db->exec("PRAGMA synchronous = NORMAL");
      // Keep <db>-wal and <db>-shm when the last connection closes (the WAL emptied to 0
      // bytes, journal_size_limit): readers who may not write the directory need them to
      // exist (SQLite's "Read-Only Databases", wal.html), and must not create them.
      int persist = 1;
      sqlite3_file_control(impl->db->getHandle(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
      impl->db->exec("PRAGMA journal_size_limit = 67108864");
    }
    impl->db->exec("PRAGMA foreign_keys = ON");
    impl->db->exec("PRAGMA mmap_size = 268435456");
    return std::unique_ptr<Store>(new Store(std::move(impl)));
  });
}

// Runs a method body under the store's lock and error boundary.
// `what` is evaluated only when the call fails.
#define STORE_CALL(what, ...)                                                                  \
  std::lock_guard lock_(impl_->mutex);                                                         \
  return db::guard([&] { return impl_->context() + ": " + std::string(what); }, [&]() __VA_ARGS__)

// --- import ----------------------------------------------------------------------------------

Result<ImportResult> Store::import(std::span<const std::uint8_t> bytes, const std::string& origin,
                                   const std::string& lib, const std::string& note, bool dry_run) {
  STORE_CALL("import " + (origin.empty() ? std::string("<binary>") : origin), -> Result<ImportResult> {
    if (!dry_run) impl_->require_writable("import");
    Impl::WriteTx tx(*impl_);
    auto dict = impl_->newest_dictionary();
    auto p = prepare(bytes, origin, impl_->compressor, impl_->options.zstd_level, dict.get());
    if (!p) return error(p.error());
    p->lib = lib;
    ImportResult r = impl_->insert(*p, note, /*by_bytes=*/true);
    if (!dry_run && (!r.unchanged || r.repaired)) tx.commit(!r.unchanged);
    return r;
  });
}

Result<ImportSummary> Store::import_tree(const std::vector<std::string>& paths, const ImportOptions& options) {
  STORE_CALL("import", -> Result<ImportSummary> {
    if (!options.dry_run) impl_->require_writable("import");
    const auto interrupted = [&] { return options.interrupted && options.interrupted(); };
    const Status cancelled(Code::kCancelled, "interrupted: nothing imported");
    // The files, in a stable order: each argument in turn, directories walked sorted.
    TreeWalk walk;
    for (const auto& path : paths) {
      std::error_code ec;
      const auto st = fs::status(path, ec);
      if (ec || !fs::exists(st)) fail(Code::kNotFound, fmt::format("{}: no such file or directory", path));
      if (fs::is_directory(st)) {
        const std::size_t before = walk.files.size(), beams = walk.beams;
        if (!walk.add_root(path)) continue;
        if (walk.beams == beams) {
          fail(Code::kNotFound, fmt::format("{}: no module images (*.beam files) in this directory or below it", path));
        }
        std::sort(walk.files.begin() + static_cast<std::ptrdiff_t>(before), walk.files.end());
      } else {
        walk.add_file(path);
      }
      if (interrupted()) return error(cancelled);
    }
    const std::vector<std::string>& files = walk.files;
    Impl::WriteTx tx(*impl_);
    const auto dict = impl_->newest_dictionary();
    const int level = impl_->options.zstd_level;
    // Read, validate and compress on the workers; insert below, once the order is known.
    std::vector<Prepared> prepared;
    prepared.reserve(files.size());
    Status failure;
    store_internal::parallel_ordered<Result<Prepared>, WorkerState>(
        files.size(),
        [&](std::size_t i, WorkerState& w) -> Result<Prepared> {
          auto bytes = read_whole_file(files[i]);
          if (!bytes) return error(bytes.error());
          return prepare(*bytes, files[i], w.compressor, level, dict.get());
        },
        [&](std::size_t i, Result<Prepared>& p) {
          if (interrupted()) {
            failure = cancelled;  // also when the interrupt made this file fail
            return false;
          }
          if (!p) {
            failure = p.error().with_context("nothing imported");
            return false;
          }
          p->lib = options.lib.empty() ? lib_of_path(files[i]) : options.lib;
          prepared.push_back(std::move(*p));
          if (options.progress) options.progress(i + 1, files.size(), files[i]);
          return true;
        });
    if (failure && interrupted()) failure = cancelled;  // after the last file
    if (!failure) return error(failure);
    // Several files of one module: each becomes a version, the one OTP would choose last
    // (so it ends active); the others are shadowed by it. Other files keep their places.
    std::vector<std::size_t> order(prepared.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::vector<std::string> shadowed_by(prepared.size());
    std::map<std::string, std::vector<std::size_t>> by_module;
    for (std::size_t i = 0; i < prepared.size(); ++i) by_module[prepared[i].module].push_back(i);
    for (const auto& [module, places] : by_module) {
      if (places.size() < 2) continue;
      auto chosen = places;
      std::stable_sort(chosen.begin(), chosen.end(),
                       [&](std::size_t a, std::size_t b) { return placed_before(files[a], files[b]); });
      for (std::size_t k = 0; k < places.size(); ++k) order[places[k]] = chosen[k];
      for (std::size_t k = 0; k + 1 < chosen.size(); ++k) shadowed_by[chosen[k]] = files[chosen.back()];
    }
    ImportSummary summary;
    summary.warnings = std::move(walk.warnings);
    for (const std::size_t i : order) {
      if (interrupted()) return error(cancelled);
      ImportResult r = impl_->insert(prepared[i], options.note, options.bytes);
      r.shadowed_by = shadowed_by[i];
      summary.files++;
      summary.bytes_in += r.raw_size;
      summary.bytes_stored += r.stored_size;
      if (r.new_blob) summary.bytes_new += r.raw_size;
      if (r.repaired) summary.repaired++;
      if (r.unchanged) {
        summary.unchanged++;
      } else {
        summary.new_versions++;
      }
      summary.items.push_back(std::move(r));
    }
    if (!options.dry_run) tx.commit(summary.new_versions > 0);
    return summary;
  });
}

// --- read ------------------------------------------------------------------------------------

Result<std::vector<std::uint8_t>> Store::get(std::string_view module, std::int64_t version, bool verify_sha256) {
  STORE_CALL(fmt::format("get {}", mv(module, version)), -> Result<std::vector<std::uint8_t>> {
    return impl_->bytes(module, version, verify_sha256);
  });
}

Result<Store::SharedBytes> Store::get_shared(std::string_view module, std::int64_t version, bool verify_sha256) {
  STORE_CALL(fmt::format("get {}", mv(module, version)), -> Result<SharedBytes> {
    return SharedBytes(impl_->shared_bytes(module, version, verify_sha256));
  });
}

Result<ModuleVersion> Store::active_info(std::string_view module) {
  STORE_CALL(fmt::format("active {}", module), -> Result<ModuleVersion> {
    // One read transaction: a rollback committed between the two reads would otherwise
    // give the metadata of a version that is no longer active.
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::DEFERRED);
    const auto row = impl_->require_module(module);
    if (row.active == 0) fail(Code::kNotFound, fmt::format("module {} has no active version", module));
    return impl_->info(module, row.active);
  });
}

Result<ModuleImage> Store::active(std::string_view module) {
  STORE_CALL(fmt::format("active {}", module), -> Result<ModuleImage> {
    // One read transaction, so that metadata and bytes are of the same version.
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::DEFERRED);
    const auto row = impl_->require_module(module);
    if (row.active == 0) fail(Code::kNotFound, fmt::format("module {} has no active version", module));
    ModuleImage img;
    img.info = impl_->info(module, row.active);
    img.bytes = impl_->bytes(module, row.active, false);
    return img;
  });
}

Result<ModuleVersion> Store::version_info(std::string_view module, std::int64_t version) {
  STORE_CALL(fmt::format("version {}", mv(module, version)), -> Result<ModuleVersion> {
    return impl_->info(module, version);
  });
}

Result<std::vector<ModuleVersion>> Store::versions(std::string_view module) {
  STORE_CALL(fmt::format("versions {}", module), -> Result<std::vector<ModuleVersion>> {
    static const std::string sql = std::string("SELECT ") + Impl::kVersionColumns + "WHERE v.module = ? ORDER BY v.version";
    auto& s = impl_->stmt(sql.c_str());
    Impl::Done done{s};
    s.bind(1, std::string(module));
    std::vector<ModuleVersion> out;
    while (s.executeStep()) out.push_back(Impl::version_of(s));
    if (out.empty()) fail(Code::kNotFound, fmt::format("unknown module {}", module));
    return out;
  });
}

Result<std::vector<ModuleSummary>> Store::list() {
  STORE_CALL("list", -> Result<std::vector<ModuleSummary>> { return impl_->summaries(nullptr, nullptr); });
}

Result<std::vector<ModuleSummary>> Store::lib_modules(std::string_view lib) {
  STORE_CALL(fmt::format("lib {}", lib), -> Result<std::vector<ModuleSummary>> {
    const std::string l(lib);
    return impl_->summaries("lib", &l);
  });
}

Result<std::vector<std::string>> Store::libs() {
  STORE_CALL("libs", -> Result<std::vector<std::string>> {
    auto& s = impl_->stmt(
        "SELECT DISTINCT v.lib FROM modules m JOIN versions v ON v.module = m.name AND v.version = m.active_version "
        "WHERE v.lib != '' ORDER BY 1");
    Impl::Done done{s};
    std::vector<std::string> out;
    while (s.executeStep()) out.push_back(s.getColumn(0).getString());
    return out;
  });
}

Result<std::vector<StoreEvent>> Store::history(std::string_view module, std::size_t limit) {
  STORE_CALL("history", -> Result<std::vector<StoreEvent>> {
    auto& s = impl_->stmt(
        "SELECT id, time, action, module, from_version, to_version, reason FROM events "
        "WHERE (?1 = '' OR module = ?1) ORDER BY id DESC LIMIT ?2");
    Impl::Done done{s};
    s.bind(1, std::string(module));
    s.bind(2, limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(limit));
    std::vector<StoreEvent> out;
    while (s.executeStep()) {
      out.push_back({s.getColumn(0).getInt64(), s.getColumn(1).getInt64(), s.getColumn(2).getString(),
                     s.getColumn(3).getString(), s.getColumn(4).getInt64(), s.getColumn(5).getInt64(),
                     s.getColumn(6).getString()});
    }
    std::reverse(out.begin(), out.end());
    return out;
  });
}

Result<std::uint64_t> Store::generation() {
  STORE_CALL("generation", -> Result<std::uint64_t> {
    auto& s = impl_->stmt("SELECT value FROM meta WHERE key = 'generation'");
    Impl::Done done{s};
    if (!s.executeStep()) fail(Code::kCorruption, "meta row 'generation' missing");
    return static_cast<std::uint64_t>(s.getColumn(0).getInt64());
  });
}

// --- change ----------------------------------------------------------------------------------

Result<Activation> Store::activate(std::string_view module, std::int64_t version, std::string_view reason) {
  STORE_CALL(fmt::format("activate {}", mv(module, version)), -> Result<Activation> {
    impl_->require_writable("activate");
    Impl::require_version_number(version);
    Impl::WriteTx tx(*impl_);
    Activation a = impl_->set_active(module, version, "activate", reason);
    tx.commit(a.from_version != a.to_version);
    return a;
  });
}

Result<Activation> Store::rollback(std::string_view module, std::string_view reason) {
  STORE_CALL(fmt::format("rollback {}", module), -> Result<Activation> {
    impl_->require_writable("rollback");
    Impl::WriteTx tx(*impl_);
    const auto row = impl_->require_module(module);
    if (row.previous == 0) {
      fail(Code::kFailedPrecondition, fmt::format("module {} has no previous version to roll back to", module));
    }
    Activation a = impl_->set_active(module, row.previous, "rollback", reason);
    tx.commit();
    return a;
  });
}

Result<Activation> Store::rollback(std::string_view module, std::int64_t version, std::string_view reason) {
  STORE_CALL(fmt::format("rollback {}", mv(module, version)), -> Result<Activation> {
    impl_->require_writable("rollback");
    Impl::require_version_number(version);
    Impl::WriteTx tx(*impl_);
    Activation a = impl_->set_active(module, version, "rollback", reason);
    tx.commit(a.from_version != a.to_version);
    return a;
  });
}

Status Store::delete_version(std::string_view module, std::int64_t version, std::string_view reason) {
  STORE_CALL(fmt::format("delete {}", mv(module, version)), -> Status {
    impl_->require_writable("delete");
    Impl::require_version_number(version);
    Impl::WriteTx tx(*impl_);
    impl_->require_version(module, version);
    const auto row = impl_->require_module(module);
    if (row.active == version) fail(Code::kFailedPrecondition, "it is the active version");
    if (row.previous == version) fail(Code::kFailedPrecondition, "it is the version a rollback returns to");
    std::vector<std::string> releases;
    {
      auto& s = impl_->stmt("SELECT release FROM release_modules WHERE module = ? AND version = ? ORDER BY release");
      Impl::Done done{s};
      s.bind(1, std::string(module));
      s.bind(2, version);
      while (s.executeStep()) releases.push_back(s.getColumn(0).getString());
    }
    if (!releases.empty()) {
      fail(Code::kFailedPrecondition, fmt::format("release {} names it", fmt::join(releases, ", ")));
    }
    auto& s = impl_->stmt("DELETE FROM versions WHERE module = ? AND version = ?");
    s.bind(1, std::string(module));
    s.bind(2, version);
    s.exec();
    impl_->event("delete", module, version, 0, reason);
    tx.commit();
    return Status::ok();
  });
}

// --- releases --------------------------------------------------------------------------------

Result<Release> Store::release_create(const std::string& name, const std::string& note) {
  STORE_CALL("release create " + name, -> Result<Release> {
    impl_->require_writable("release create");
    if (name.empty()) fail(Code::kInvalidArgument, "a release needs a name");
    Impl::WriteTx tx(*impl_);
    {
      auto& s = impl_->stmt("SELECT 1 FROM releases WHERE name = ?");
      Impl::Done done{s};
      s.bind(1, name);
      if (s.executeStep()) fail(Code::kAlreadyExists, fmt::format("release {} exists", name));
    }
    {
      auto& s = impl_->stmt("INSERT INTO releases (name, created_at, note) VALUES (?, ?, ?)");
      s.bind(1, name);
      s.bind(2, now());
      s.bind(3, note);
      s.exec();
    }
    auto& s = impl_->stmt(
        "INSERT INTO release_modules (release, module, version) SELECT ?, name, active_version FROM modules "
        "WHERE active_version != 0");
    s.bind(1, name);
    s.exec();
    impl_->event("release-create", "", 0, 0, name);
    Release r = impl_->release(name, true);
    tx.commit();
    return r;
  });
}

Result<std::vector<Release>> Store::release_list() {
  STORE_CALL("release list", -> Result<std::vector<Release>> {
    std::vector<std::string> names;
    {
      auto& s = impl_->stmt("SELECT name FROM releases ORDER BY created_at, name");
      Impl::Done done{s};
      while (s.executeStep()) names.push_back(s.getColumn(0).getString());
    }
    std::vector<Release> out;
    out.reserve(names.size());
    for (const auto& n : names) out.push_back(impl_->release(n, false));
    return out;
  });
}

Result<Release> Store::release_show(const std::string& name) {
  STORE_CALL("release show " + name, -> Result<Release> { return impl_->release(name, true); });
}

Result<ReleaseDiff> Store::release_diff(const std::string& a, const std::string& b) {
  STORE_CALL(fmt::format("release diff {} {}", a, b), -> Result<ReleaseDiff> {
    const Release ra = impl_->release(a, true);
    const Release rb = impl_->release(b, true);
    std::map<std::string, const ReleaseEntry*> in_a;
    for (const auto& e : ra.modules) in_a[e.module] = &e;
    ReleaseDiff d;
    for (const auto& e : rb.modules) {
      auto it = in_a.find(e.module);
      if (it == in_a.end()) {
        d.added.push_back(e);
      } else {
        if (it->second->version != e.version) d.changed.push_back({e.module, it->second->version, e.version});
        in_a.erase(it);
      }
    }
    for (const auto& [module, e] : in_a) d.removed.push_back(*e);
    return d;
  });
}

Status Store::release_delete(const std::string& name) {
  STORE_CALL("release delete " + name, -> Status {
    impl_->require_writable("release delete");
    Impl::WriteTx tx(*impl_);
    impl_->release(name, false);  // kNotFound
    for (const char* sql : {"DELETE FROM release_modules WHERE release = ?", "DELETE FROM releases WHERE name = ?"}) {
      auto& s = impl_->stmt(sql);
      s.bind(1, name);
      s.exec();
    }
    impl_->event("release-delete", "", 0, 0, name);
    tx.commit();
    return Status::ok();
  });
}

Result<std::vector<Activation>> Store::release_rollback(const std::string& name, std::string_view reason) {
  STORE_CALL("release rollback " + name, -> Result<std::vector<Activation>> {
    impl_->require_writable("release rollback");
    Impl::WriteTx tx(*impl_);
    const Release r = impl_->release(name, true);
    std::map<std::string, std::int64_t> target;
    for (const auto& e : r.modules) target[e.module] = e.version;
    std::vector<std::pair<std::string, std::int64_t>> modules;
    {
      auto& s = impl_->stmt("SELECT name, active_version FROM modules ORDER BY name");
      Impl::Done done{s};
      while (s.executeStep()) modules.emplace_back(s.getColumn(0).getString(), s.getColumn(1).getInt64());
    }
    const std::string why = reason.empty() ? "release " + name : fmt::format("release {}: {}", name, reason);
    std::vector<Activation> changed;
    for (const auto& [module, active] : modules) {
      const auto it = target.find(module);
      const std::int64_t to = it == target.end() ? 0 : it->second;
      if (to == active) continue;
      changed.push_back(impl_->set_active(module, to, "release-rollback", why));
    }
    impl_->event("release-rollback", "", 0, 0, why);
    tx.commit(!changed.empty());
    return changed;
  });
}

// --- maintenance -----------------------------------------------------------------------------

Result<GcReport> Store::gc(const GcOptions& options) {
  STORE_CALL("gc", -> Result<GcReport> {
    if (!options.dry_run) impl_->require_writable("gc");
    if (options.keep_last < 0) fail(Code::kInvalidArgument, "keep_last must be >= 0");
    Impl::WriteTx tx(*impl_);
    GcReport report;
    {
      // Not active, not the rollback target, not named by a release, not among the newest N.
      static const std::string sql = std::string("SELECT ") + Impl::kVersionColumns +
                                     "WHERE v.version != m.active_version AND v.version != m.previous_version "
                                     "AND NOT EXISTS (SELECT 1 FROM release_modules rm WHERE rm.module = v.module AND "
                                     "rm.version = v.version) "
                                     "AND (SELECT count(*) FROM versions n WHERE n.module = v.module AND n.version > "
                                     "v.version) >= ? ORDER BY v.module, v.version";
      auto& s = impl_->stmt(sql.c_str());
      Impl::Done done{s};
      s.bind(1, options.keep_last);
      while (s.executeStep()) report.deleted.push_back(Impl::version_of(s));
    }
    const std::string why = fmt::format("gc keep_last {}", options.keep_last);
    for (const auto& v : report.deleted) {
      auto& s = impl_->stmt("DELETE FROM versions WHERE module = ? AND version = ?");
      s.bind(1, v.module);
      s.bind(2, v.version);
      s.exec();
      impl_->event("gc", v.module, v.version, 0, why);
    }
    {
      auto& s = impl_->stmt(
          "SELECT count(*), coalesce(sum(stored_size), 0) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM versions v "
          "WHERE v.blob_id = b.id)");
      Impl::Done done{s};
      s.executeStep();
      report.blobs_deleted = s.getColumn(0).getInt64();
      report.bytes_freed = static_cast<std::uint64_t>(s.getColumn(1).getInt64());
    }
    impl_->db->exec("DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.blob_id = blobs.id)");
    if (!options.dry_run) tx.commit(!report.deleted.empty() || report.blobs_deleted > 0);
    return report;
  });
}

Result<VerifyReport> Store::verify() {
  STORE_CALL("verify", -> Result<VerifyReport> {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::DEFERRED);
    VerifyReport report;
    auto& refs = impl_->stmt("SELECT module, version FROM versions WHERE blob_id = ? ORDER BY module, version");
    {
      SQLite::Statement s(*impl_->db, "SELECT id, sha256, raw_size, dictionary_id, data FROM blobs ORDER BY id");
      std::vector<std::uint8_t> out;
      while (s.executeStep()) {
        report.blobs_checked++;
        const std::int64_t id = s.getColumn(0).getInt64();
        const auto sha = s.getColumn(1);
        const std::string sha_hex = db::hex(std::span(static_cast<const std::uint8_t*>(sha.getBlob()), static_cast<std::size_t>(sha.getBytes())));
        const auto data = s.getColumn(4);
        Status st;
        std::shared_ptr<db::Dictionary> dict;
        try {
          dict = impl_->dictionary(s.getColumn(3).getInt64());
        } catch (const db::StatusError& e) {
          st = e.status();
        }
        if (st) {
          st = impl_->decompressor.decompress(
              std::span(static_cast<const std::uint8_t*>(data.getBlob()), static_cast<std::size_t>(data.getBytes())),
              static_cast<std::uint64_t>(s.getColumn(2).getInt64()), dict.get(), out);
        }
        if (st && (sha.getBytes() != 32 || std::memcmp(sha.getBlob(), db::sha256(out).data(), 32) != 0)) {
          st = Status(Code::kCorruption, "SHA-256 mismatch");
        }
        if (st) continue;
        const std::string msg = fmt::format("blob {}: {}", sha_hex, st.to_string());
        refs.tryReset();
        refs.clearBindings();
        refs.bind(1, id);
        bool any = false;
        while (refs.executeStep()) {
          any = true;
          report.damage.push_back({refs.getColumn(0).getString(), refs.getColumn(1).getInt64(), msg});
        }
        refs.tryReset();
        if (!any) report.damage.push_back({"", 0, msg + " (unreferenced)"});
      }
    }
    report.versions_checked = impl_->db->execAndGet("SELECT count(*) FROM versions").getInt64();
    // References: every version's blob, every module's active and previous version, every
    // release's versions, every blob's dictionary.
    struct Check {
      const char* sql;
      const char* what;
    };
    static const Check checks[] = {
        {"SELECT v.module, v.version FROM versions v WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = v.blob_id)",
         "its blob is missing"},
        {"SELECT m.name, m.active_version FROM modules m WHERE m.active_version != 0 AND NOT EXISTS (SELECT 1 FROM "
         "versions v WHERE v.module = m.name AND v.version = m.active_version)",
         "the active version is missing"},
        {"SELECT m.name, m.previous_version FROM modules m WHERE m.previous_version != 0 AND NOT EXISTS (SELECT 1 "
         "FROM versions v WHERE v.module = m.name AND v.version = m.previous_version)",
         "the rollback target is missing"},
        {"SELECT rm.module, rm.version FROM release_modules rm WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE "
         "v.module = rm.module AND v.version = rm.version)",
         "a release names a missing version"},
        {"SELECT m.name, v.version FROM versions v JOIN modules m ON m.name = v.module WHERE v.version > "
         "m.high_water",
         "version above the module's high-water mark"},
    };
    for (const auto& c : checks) {
      SQLite::Statement s(*impl_->db, c.sql);
      while (s.executeStep()) report.damage.push_back({s.getColumn(0).getString(), s.getColumn(1).getInt64(), c.what});
    }
    {
      SQLite::Statement s(*impl_->db,
                          "SELECT count(*) FROM blobs b WHERE b.dictionary_id IS NOT NULL AND NOT EXISTS (SELECT 1 "
                          "FROM dictionaries d WHERE d.id = b.dictionary_id)");
      s.executeStep();
      if (const auto n = s.getColumn(0).getInt64(); n > 0) {
        report.damage.push_back({"", 0, fmt::format("{} blobs name a missing dictionary", n)});
      }
    }
    SQLite::Statement ic(*impl_->db, "PRAGMA integrity_check");
    while (ic.executeStep()) report.integrity.push_back(ic.getColumn(0).getString());
    if (!(report.integrity.size() == 1 && report.integrity[0] == "ok")) {
      for (const auto& line : report.integrity) report.damage.push_back({"", 0, "integrity_check: " + line});
    }
    return report;
  });
}

Result<StoreStats> Store::stats() {
  STORE_CALL("stats", -> Result<StoreStats> {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::DEFERRED);
    auto& db = *impl_->db;
    StoreStats st;
    st.modules = db.execAndGet("SELECT count(*) FROM modules m WHERE EXISTS (SELECT 1 FROM versions v WHERE v.module = m.name)").getInt64();
    st.active_modules = db.execAndGet("SELECT count(*) FROM modules WHERE active_version != 0").getInt64();
    st.versions = db.execAndGet("SELECT count(*) FROM versions").getInt64();
    {
      SQLite::Statement s(db, "SELECT count(*), coalesce(sum(raw_size), 0), coalesce(sum(stored_size), 0), "
                              "count(dictionary_id) FROM blobs");
      s.executeStep();
      st.blobs = s.getColumn(0).getInt64();
      st.raw_bytes = static_cast<std::uint64_t>(s.getColumn(1).getInt64());
      st.stored_bytes = static_cast<std::uint64_t>(s.getColumn(2).getInt64());
      st.blobs_with_dictionary = s.getColumn(3).getInt64();
    }
    st.releases = db.execAndGet("SELECT count(*) FROM releases").getInt64();
    st.events = db.execAndGet("SELECT count(*) FROM events").getInt64();
    {
      SQLite::Statement s(db, "SELECT count(*), coalesce(max(id), 0), coalesce((SELECT length(bytes) FROM dictionaries "
                              "ORDER BY id DESC LIMIT 1), 0) FROM dictionaries");
      s.executeStep();
      st.dictionaries = s.getColumn(0).getInt64();
      st.dictionary_id = s.getColumn(1).getInt64();
      st.dictionary_size = static_cast<std::uint64_t>(s.getColumn(2).getInt64());
    }
    {
      SQLite::Statement s(db, "SELECT module, version, count, last_served FROM served ORDER BY count DESC, module, version");
      while (s.executeStep()) {
        StoreStats::Served sv{s.getColumn(0).getString(), s.getColumn(1).getInt64(),
                              static_cast<std::uint64_t>(s.getColumn(2).getInt64()), s.getColumn(3).getInt64()};
        st.served_total += sv.count;
        st.served.push_back(std::move(sv));
      }
    }
    st.schema_version = db::applied_schema_version(db);
    return st;
  });
}

Result<DictionaryInfo> Store::train_dictionary(const DictionaryOptions& options) {
  STORE_CALL("dict train", -> Result<DictionaryInfo> {
    impl_->require_writable("dict train");
    std::vector<std::vector<std::uint8_t>> samples;
    {
      SQLite::Transaction read(*impl_->db, SQLite::TransactionBehavior::DEFERRED);
      std::int64_t total = impl_->db->execAndGet("SELECT count(*) FROM blobs").getInt64();
      if (options.max_samples > 0) total = std::min<std::int64_t>(total, options.max_samples);
      if (total < kMinDictionarySamples) {
        fail(Code::kFailedPrecondition,
             fmt::format("the store holds {} distinct images: too few to train a dictionary (zstd needs at least {}; "
                         "a dictionary pays off with hundreds)",
                         total, kMinDictionarySamples));
      }
      SQLite::Statement s(*impl_->db, "SELECT raw_size, dictionary_id, data FROM blobs ORDER BY id");
      while (s.executeStep() && static_cast<std::int64_t>(samples.size()) < total) {
        if (options.interrupted && options.interrupted()) fail(Code::kCancelled, "interrupted: no dictionary trained");
        const auto data = s.getColumn(2);
        std::vector<std::uint8_t> out;
        auto dict = impl_->dictionary(s.getColumn(1).getInt64());
        db::check(impl_->decompressor.decompress(
            std::span(static_cast<const std::uint8_t*>(data.getBlob()), static_cast<std::size_t>(data.getBytes())),
            static_cast<std::uint64_t>(s.getColumn(0).getInt64()), dict.get(), out));
        samples.push_back(std::move(out));
        if (options.progress) options.progress(samples.size(), static_cast<std::size_t>(total));
      }
    }
    auto bytes = db::train(samples, options.size);
    if (!bytes) return error(bytes.error());
    if (options.interrupted && options.interrupted()) fail(Code::kCancelled, "interrupted: no dictionary trained");
    Impl::WriteTx tx(*impl_);
    auto& s = impl_->stmt("INSERT INTO dictionaries (zstd_id, created_at, samples, bytes) VALUES (?, ?, ?, ?)");
    s.bind(1, static_cast<std::int64_t>(ZDICT_getDictID(bytes->data(), bytes->size())));
    s.bind(2, now());
    s.bind(3, static_cast<std::int64_t>(samples.size()));
    s.bind(4, bytes->data(), static_cast<int>(bytes->size()));
    s.exec();
    DictionaryInfo info{impl_->db->getLastInsertRowid(), bytes->size(), static_cast<std::int64_t>(samples.size())};
    impl_->event("dict-train", "", 0, 0, fmt::format("dictionary {}: {} bytes from {} images", info.id, info.size, info.samples));
    tx.commit();
    return info;
  });
}

Result<CompactReport> Store::compact(const CompactOptions& options) {
  STORE_CALL("compact", -> Result<CompactReport> {
    impl_->require_writable("compact");
    Impl::WriteTx tx(*impl_);
    struct Row {
      std::int64_t id, raw_size, dictionary_id;
      std::vector<std::uint8_t> frame, sha;
    };
    std::vector<Row> rows;
    {
      SQLite::Statement s(*impl_->db,
                          "SELECT id, raw_size, coalesce(dictionary_id, 0), data, sha256 FROM blobs ORDER BY id");
      while (s.executeStep()) {
        const auto data = s.getColumn(3);
        const auto* p = static_cast<const std::uint8_t*>(data.getBlob());
        const auto sha = s.getColumn(4);
        const auto* h = static_cast<const std::uint8_t*>(sha.getBlob());
        rows.push_back({s.getColumn(0).getInt64(), s.getColumn(1).getInt64(), s.getColumn(2).getInt64(),
                        std::vector<std::uint8_t>(p, p + data.getBytes()), std::vector<std::uint8_t>(h, h + sha.getBytes())});
      }
    }
    // Every dictionary a row names, loaded here: workers must not touch the connection.
    std::map<std::int64_t, std::shared_ptr<db::Dictionary>> dicts;
    for (const auto& r : rows) {
      if (dicts.count(r.dictionary_id)) continue;
      try {
        dicts[r.dictionary_id] = impl_->dictionary(r.dictionary_id);
      } catch (const db::StatusError&) {
        dicts[r.dictionary_id] = nullptr;  // missing: its blobs fail to decompress and are skipped
      }
    }
    const auto newest = impl_->newest_dictionary();
    CompactReport report;
    report.dictionary_id = newest ? newest->id() : 0;
    Status failure;
    store_internal::parallel_ordered<Result<std::vector<std::uint8_t>>, WorkerState>(
        rows.size(),
        [&](std::size_t i, WorkerState& w) -> Result<std::vector<std::uint8_t>> {
          std::vector<std::uint8_t> raw;
          if (Status st = w.decompressor.decompress(rows[i].frame, static_cast<std::uint64_t>(rows[i].raw_size),
                                                    dicts.at(rows[i].dictionary_id).get(), raw);
              !st) {
            return error(Code::kCorruption, st.message());
          }
          if (rows[i].sha.size() != 32 || std::memcmp(rows[i].sha.data(), db::sha256(raw).data(), 32) != 0) {
            return error(Code::kCorruption, "SHA-256 mismatch");
          }
          return w.compressor.compress(raw, options.level, newest.get());  // kInternal on failure: not damage
        },
        [&](std::size_t i, Result<std::vector<std::uint8_t>>& frame) {
          if (options.interrupted && options.interrupted()) {
            failure = Status(Code::kCancelled, "interrupted: nothing compacted");
            return false;
          }
          if (!frame && frame.error().code() == Code::kCorruption) {
            // Damaged (verify reports it): left as it is, for a re-import of its original bytes to repair.
            report.skipped.push_back(fmt::format("blob {} ({}): {}: left as it is; re-import its original bytes to repair it",
                                                 db::hex(rows[i].sha), impl_->users_of_blob(rows[i].id),
                                                 frame.error().message()));
            if (options.progress) options.progress(i + 1, rows.size());
            return true;
          }
          if (!frame) {
            failure = frame.error();
            return false;
          }
          report.blobs++;
          report.bytes_before += rows[i].frame.size();
          report.bytes_after += frame->size();
          auto& s = impl_->stmt("UPDATE blobs SET data = ?, stored_size = ?, level = ?, dictionary_id = ? WHERE id = ?");
          s.bindNoCopy(1, frame->data(), static_cast<int>(frame->size()));
          s.bind(2, static_cast<std::int64_t>(frame->size()));
          s.bind(3, options.level);
          bind_dictionary(s, 4, newest ? newest->id() : 0);
          s.bind(5, rows[i].id);
          s.exec();
          if (options.progress) options.progress(i + 1, rows.size());
          return true;
        });
    if (!failure) return error(failure);
    impl_->event("compact", "", 0, 0,
                 fmt::format("{} blobs at level {}: {} -> {} bytes{}", report.blobs, options.level, report.bytes_before,
                             report.bytes_after,
                             report.skipped.empty() ? "" : fmt::format("; {} damaged blobs skipped", report.skipped.size())));
    tx.commit(false);
    // Return the pages the old frames held (compact is the rare, slow maintenance step).
    impl_->db->exec("VACUUM");
    return report;
  });
}

Status Store::checkpoint() {
  STORE_CALL("checkpoint", -> Status {
    impl_->db->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return Status::ok();
  });
}

Status Store::record_event(std::string_view action, std::string_view module, std::string_view reason,
                           std::int64_t from_version, std::int64_t to_version) {
  STORE_CALL(fmt::format("record event {} {}", action, module), -> Status {
    impl_->require_writable("record event");
    if (action.empty()) fail(Code::kInvalidArgument, "an event needs an action");
    impl_->event(action, module, from_version, to_version, reason);
    return Status::ok();
  });
}

Status Store::record_served(std::string_view module, std::int64_t version, std::string_view peer) {
  STORE_CALL(fmt::format("record served {}", mv(module, version)), -> Status {
    impl_->require_writable("record served");
    auto& s = impl_->stmt(
        "INSERT INTO served (module, version, count, last_served, last_peer) VALUES (?, ?, 1, ?, ?) "
        "ON CONFLICT (module, version) DO UPDATE SET count = count + 1, last_served = excluded.last_served, "
        "last_peer = excluded.last_peer");
    s.bind(1, std::string(module));
    s.bind(2, version);
    s.bind(3, now());
    s.bind(4, std::string(peer));
    s.exec();
    return Status::ok();
  });
}

}  // namespace codestore

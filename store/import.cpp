// Import: validating images and inserting them as new versions (import, import_files). The
// files an import reads come from the planner (import_plan.h); this file reads and validates
// them on worker threads and inserts them, in the plan's order, in one transaction.
#include <codestore/image.h>
#include <codestore/term.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "base/file.h"
#include "base/hex.h"
#include "chunk_layout.h"
#include "parallel.h"
#include "store_impl.h"

namespace codestore {

using store_internal::now;
using store_internal::Prepared;
using store_internal::WorkerState;

namespace store_internal {

namespace {

// What bytes that are not a module image look like, for the error a user reads when a
// tarball, an .ez archive, an .app file or Erlang source reaches an import. nullopt: they
// start as a module image does ("FOR1" then "BEAM", maybe gzip-wrapped), so they are a
// damaged one (corruption), not something else.
std::optional<std::string> not_an_image(std::span<const std::uint8_t> bytes, bool unwrapped = false) {
  auto starts = [&](std::string_view magic, std::size_t at = 0) {
    return bytes.size() >= at + magic.size() &&
           std::memcmp(bytes.data() + at, magic.data(), magic.size()) == 0;
  };
  if (bytes.empty()) return "an empty file";
  if (starts("FOR1")) {
    if (bytes.size() < 12 || starts("BEAM", 8)) return std::nullopt;
    return fmt::format(
        "an IFF file of form type {}, not BEAM",
        etf::format_w(etf::Term::atom(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, 4))));
  }
  if (starts("\x1f\x8b") && !unwrapped) {
    auto raw = image::maybe_gunzip(bytes, std::size_t{64} << 20);
    if (!raw) return "gzip-compressed data that does not unpack";
    auto inner = not_an_image(*raw, true);
    if (!inner) return std::nullopt;
    if (inner->starts_with("a tar archive"))
      return "a gzip-compressed tar archive (a tarball: unpack it and import the .beam files inside)";
    return "gzip-compressed data: " + *inner;
  }
  if (starts("PK\x03\x04"))
    return "a zip archive (an .ez application archive is one: unpack it and import its ebin directory)";
  if (starts("ustar", 257)) return "a tar archive (unpack it and import the .beam files inside)";
  if (starts("\x7f"
             "ELF"))
    return "an ELF executable or shared library";
  const std::string_view head(reinterpret_cast<const char*>(bytes.data()),
                              std::min<std::size_t>(bytes.size(), 4096));
  const bool text = std::none_of(head.begin(), head.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == 0 || (u < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f');
  });
  if (!text) {
    std::string first;
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i)
      first += fmt::format("{}{:02x}", i ? " " : "", bytes[i]);
    return fmt::format("binary data of an unknown kind (it starts with {})", first);
  }
  if (head.find("-module(") != std::string_view::npos)
    return "Erlang source code (compile it with erlc and import the .beam file)";
  if (head.find("defmodule ") != std::string_view::npos)
    return "Elixir source code (compile it and import the .beam files)";
  if (head.find("{application,") != std::string_view::npos) {
    return "an application resource file (.app): it names modules but holds no code";
  }
  return "text";
}

}  // namespace

Result<Prepared> prepare(std::span<const std::uint8_t> bytes, std::string_view origin,
                         db::Compressor& compressor, int level, const db::Dictionary* dict, bool chunks) {
  const std::string name = origin.empty() ? "<binary>" : std::string(origin);
  auto img = image::Image::parse(bytes, image::Strictness::kStrict, name);
  if (!img) {
    if (image::kind_of(img.error()) == image::ErrorKind::kNotABeamFile) {
      if (auto what = not_an_image(bytes)) {
        return error(Code::kInvalidArgument,
                     fmt::format("{}: not a module image: it looks like {}", name, *what));
      }
    }
    return error(img.error());
  }
  Prepared p;
  p.origin = origin;
  auto module = img->module();
  if (!module) return error(module.error());
  // Module names become file names (`codestore export`, the boot server's
  // <app>/ebin/<module>.beam): a name such as "../evil" must never get into the store.
  // Printed as an Erlang atom so that NUL and control characters show as escapes.
  if (!image::is_safe_module_name(*module)) {
    return error(
        Code::kInvalidArgument,
        fmt::format(
            "{}: module name {} is not a safe name (/, \\, NUL, control characters, . and .. are refused)",
            name, etf::format_w(etf::Term::atom(*module))));
  }
  p.module = std::move(*module);
  const auto verdict = img->check_loadable();
  p.load_verdict = !verdict.loadable ? 0 : verdict.on_load ? 2 : 1;
  if (!verdict.loadable) {
    if (!verdict.opcode_only)
      return error(Code::kCorruption, fmt::format("{}: not loadable: {}", name, verdict.reason));
    p.warning = "opcode_only: " + verdict.reason;
  }
  auto md5 = img->md5();
  if (!md5) return error(md5.error());
  p.md5 = image::md5_hex(*md5);
  auto vsn = img->vsn();
  if (vsn) p.vsn = etf::format_w(*vsn);
  if (Status st = chunks ? compress_chunks(p, bytes, name, compressor, level, dict)
                         : compress_into(p, bytes, name, compressor, level, dict);
      !st)
    return error(st);
  return p;
}

Status compress_chunks(Prepared& p, std::span<const std::uint8_t> bytes, std::string_view name,
                       db::Compressor& compressor, int level, const db::Dictionary* dict) {
  auto split = split_image(bytes);
  if (!split) return compress_into(p, bytes, name, compressor, level, dict);  // gzip-wrapped: whole
  p.raw_size = bytes.size();
  p.sha = db::sha256(bytes);
  // Raw literals: the layout is what a read for loading decompresses (db::Literals).
  auto frame = compressor.compress(split->recipe, level, dict, db::Literals::kRaw);
  if (!frame) return frame.error().with_context(name);
  p.frame = std::move(*frame);
  p.level = level;
  p.dictionary_id = dict != nullptr ? dict->id() : 0;
  p.layout = 1;
  p.layout_size = split->recipe.size();
  p.chunks.reserve(split->chunks.size());
  for (const auto& c : split->chunks) {
    PreparedChunk pc;
    pc.kind = chunk_kind(c.id);
    pc.sha = db::sha256(c.data);
    pc.raw_size = c.data.size();
    auto f = compressor.compress(c.data, level, dict);
    if (!f) return f.error().with_context(name);
    pc.frame = std::move(*f);
    p.chunks.push_back(std::move(pc));
  }
  return Status::ok();
}

Status compress_into(Prepared& p, std::span<const std::uint8_t> bytes, std::string_view name,
                     db::Compressor& compressor, int level, const db::Dictionary* dict) {
  p.raw_size = bytes.size();
  p.sha = db::sha256(bytes);
  auto frame = compressor.compress(bytes, level, dict);
  if (!frame) return frame.error().with_context(name);
  p.frame = std::move(*frame);
  p.level = level;
  p.dictionary_id = dict != nullptr ? dict->id() : 0;
  return Status::ok();
}

Result<Prepared> prepare_blob(std::span<const std::uint8_t> bytes, std::string_view origin,
                              db::Compressor& compressor, int level, const db::Dictionary* dict) {
  Prepared p;
  p.origin = origin;
  p.load_verdict = kNoLoadVerdict;
  if (Status st = compress_into(p, bytes, origin, compressor, level, dict); !st) return error(st);
  return p;
}

}  // namespace store_internal

Store::Impl::BlobRef Store::Impl::find_blob(const Prepared& p, std::optional<std::int64_t> known_id) {
  BlobRef b;
  if (known_id) {
    b.id = *known_id;
  } else {
    auto& s = stmt("SELECT id FROM blobs WHERE sha256 = ?");
    Done done{s};
    s.bind_blob(1, p.sha);
    if (s.step()) b.id = s.int64(0);
  }
  if (b.id == 0) return b;
  if (blob_damaged(b.id)) {
    // The blob takes p's form (whole or chunks); its damaged chunks are replaced, sound ones
    // (maybe shared, maybe compacted) are kept.
    auto& s = stmt(
        "UPDATE blobs SET data = ?, stored_size = ?, level = ?, dictionary_id = ?, layout = ?, layout_size = "
        "?, "
        "frame_checksum = ? WHERE id = ?");
    s.bind_blob_no_copy(1, p.frame);
    s.bind(2, static_cast<std::int64_t>(p.frame.size()));
    s.bind(3, p.level);
    store_internal::bind_dictionary(s, 4, p.dictionary_id);
    s.bind(5, p.layout);
    s.bind(6, static_cast<std::int64_t>(p.layout_size));
    s.bind_blob(7, store_internal::last4(p.frame));
    s.bind(8, b.id);
    s.exec();
    auto& d = stmt("DELETE FROM blob_chunks WHERE blob_id = ?");
    d.bind(1, b.id);
    d.exec();
    if (p.layout == 1) insert_chunks(b.id, p, /*repair=*/true);
    b.repaired = true;
    event("repair", p.module, 0, 0, fmt::format("blob {} restored from {}", base::hex(p.sha), p.origin));
  }
  if (p.load_verdict != store_internal::kNoLoadVerdict && !has_load_verdict(b.id)) {
    // A blob stored before schema 2 gets its verdict when its bytes are imported again.
    auto& s = stmt("UPDATE blobs SET load_verdict = ? WHERE id = ?");
    s.bind(1, p.load_verdict);
    s.bind(2, b.id);
    s.exec();
    b.verdict_recorded = true;
  }
  return b;
}

std::int64_t Store::Impl::insert_blob(const Prepared& p, bool want_id, ImportLookups* known,
                                      std::uint64_t* stored_bytes) {
  auto& s = stmt(
      "INSERT INTO blobs (sha256, raw_size, stored_size, level, dictionary_id, data, load_verdict, "
      "frame_checksum, layout, layout_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind_blob(1, p.sha);
  s.bind(2, static_cast<std::int64_t>(p.raw_size));
  s.bind(3, static_cast<std::int64_t>(p.frame.size()));
  s.bind(4, p.level);
  store_internal::bind_dictionary(s, 5, p.dictionary_id);
  s.bind_blob_no_copy(6, p.frame);
  if (p.load_verdict != store_internal::kNoLoadVerdict) {
    s.bind(7, p.load_verdict);
  } else {
    s.bind_null(7);  // not a module image: no loader reads it as code
  }
  // The frame's last 4 bytes (its content checksum), bound rather than computed in SQL:
  // SQLite's substr(x, -4) counts from the end, PostgreSQL's does not.
  s.bind_blob_no_copy(8, std::span(p.frame).last(std::min<std::size_t>(p.frame.size(), 4)));
  s.bind(9, p.layout);
  s.bind(10, static_cast<std::int64_t>(p.layout_size));
  s.exec();
  // Without want_id nothing is read back: a chunked image's blob_chunks rows name the blob by
  // its SHA-256 (insert_chunks with 0).
  const std::int64_t id = want_id ? db->last_insert_id() : 0;
  if (stored_bytes) *stored_bytes += p.frame.size();
  if (p.layout == 1) insert_chunks(id, p, /*repair=*/false, known ? &known->chunks : nullptr, stored_bytes);
  return id;
}

std::int64_t Store::Impl::new_version(const Prepared& p, std::int64_t blob_id, const std::string& note,
                                      const std::optional<ModuleRow>& row) {
  const std::int64_t version = (row ? row->high_water : 0) + 1;
  if (!row) {
    // A new module: its row with its high-water mark at once (no UPDATE below).
    auto& s = stmt("INSERT INTO modules (name, high_water) VALUES (?, ?)");
    s.bind(1, p.module);
    s.bind(2, version);
    s.exec();
  }
  {
    auto& s =
        blob_id != 0
            ? stmt(
                  "INSERT INTO versions (module, version, blob_id, lib, md5, vsn, origin, note, warning, "
                  "imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            : stmt(
                  "INSERT INTO versions (module, version, blob_id, lib, md5, vsn, origin, note, warning, "
                  "imported_at) VALUES (?, ?, (SELECT id FROM blobs WHERE sha256 = ?), ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, p.module);
    s.bind(2, version);
    if (blob_id != 0) {
      s.bind(3, blob_id);
    } else {
      s.bind_blob_no_copy(3, p.sha);
    }
    s.bind(4, p.lib);
    s.bind(5, p.md5);
    s.bind(6, p.vsn);
    s.bind(7, p.origin);
    s.bind(8, note);
    s.bind(9, p.warning);
    s.bind(10, now());
    s.exec();
  }
  if (row) {
    auto& s = stmt("UPDATE modules SET high_water = ? WHERE name = ?");
    s.bind(1, version);
    s.bind(2, p.module);
    s.exec();
  }
  return version;
}

namespace {

// The entry of `map` for `key`, taken out of it (ImportLookups: each answers once).
template <typename Map, typename Key>
std::optional<typename Map::mapped_type> take(Map* map, const Key& key) {
  if (map == nullptr) return std::nullopt;
  auto it = map->find(key);
  if (it == map->end()) return std::nullopt;
  auto value = std::move(it->second);
  map->erase(it);
  return value;
}

// "?F, ?F+1, ..., ?F+n-1": the placeholders of an IN list from the F-th parameter on.
std::string in_list(int n, int first) {
  std::string out;
  for (int i = 0; i < n; ++i) out += fmt::format("{}?{}", i ? ", " : "", first + i);
  return out;
}

}  // namespace

Store::Impl::ImportLookups Store::Impl::lookup_batch(const std::vector<Prepared>& batch,
                                                     std::string_view channel) {
  // Fixed-size IN lists (one cached statement each), the unused places NULL, which no row
  // matches.
  constexpr int kChunk = 100;
  static const std::string rows_sql = fmt::format(
      "SELECT m.name, m.high_water, coalesce(cm.version, 0), coalesce(cm.since, 0), coalesce(cm.previous, 0) "
      "FROM modules m LEFT JOIN channel_modules cm ON cm.channel = ?1 AND cm.module = m.name WHERE m.name IN "
      "({})",
      in_list(kChunk, 2));
  static const std::string blobs_sql =
      fmt::format("SELECT sha256, id FROM blobs WHERE sha256 IN ({})", in_list(kChunk, 1));
  static const std::string chunks_sql =
      fmt::format("SELECT sha256, id FROM chunks WHERE sha256 IN ({})", in_list(kChunk, 1));
  ImportLookups out;
  std::vector<std::string> names;
  std::vector<const db::Sha256*> shas, chunk_shas;
  for (const Prepared& p : batch) {
    if (out.rows.try_emplace(p.module).second) names.push_back(p.module);
    if (out.blobs.try_emplace(p.sha, 0).second) shas.push_back(&p.sha);
    for (const auto& c : p.chunks)
      if (out.chunks.try_emplace(c.sha, 0).second) chunk_shas.push_back(&c.sha);
  }
  for (std::size_t at = 0; at < names.size(); at += kChunk) {
    auto& s = stmt(rows_sql.c_str());
    Done done{s};
    s.bind(1, channel);
    for (int i = 0; i < kChunk; ++i) {
      if (at + i < names.size()) {
        s.bind(i + 2, names[at + i]);
      } else {
        s.bind_null(i + 2);
      }
    }
    while (s.step()) out.rows[s.text(0)] = ModuleRow{s.int64(1), s.int64(2), s.int64(3), s.int64(4)};
  }
  // Blobs and chunks alike: the ids of the rows whose SHA-256 is among `keys`.
  auto ids = [&](const std::string& sql, const std::vector<const db::Sha256*>& keys,
                 std::map<db::Sha256, std::int64_t>& found) {
    for (std::size_t at = 0; at < keys.size(); at += kChunk) {
      auto& s = stmt(sql.c_str());
      Done done{s};
      for (int i = 0; i < kChunk; ++i) {
        if (at + i < keys.size()) {
          s.bind_blob(i + 1, *keys[at + i]);
        } else {
          s.bind_null(i + 1);
        }
      }
      while (s.step()) {
        const auto sha = s.blob(0);
        db::Sha256 key{};
        if (sha.size() != key.size()) continue;  // not a SHA-256: no bytes have it
        std::copy(sha.begin(), sha.end(), key.begin());
        found[key] = s.int64(1);
      }
    }
  };
  ids(blobs_sql, shas, out.blobs);
  ids(chunks_sql, chunk_shas, out.chunks);
  return out;
}

ImportResult Store::Impl::insert(const Prepared& p, const std::string& note, bool by_bytes,
                                 ChannelChange& change, ImportLookups* known) {
  ImportResult r;
  r.file = p.origin;
  r.module = p.module;
  r.lib = p.lib;
  r.warning = p.warning;
  r.raw_size = p.raw_size;
  const auto known_row = take(known ? &known->rows : nullptr, p.module);
  const auto row = known_row ? *known_row : module_row(p.module, change.channel());
  change.known_active(p.module, row ? row->active : 0);
  const BlobRef found = find_blob(p, take(known ? &known->blobs : nullptr, p.sha));
  std::int64_t blob_id = found.id;
  r.repaired = found.repaired;
  r.verdict_recorded = found.verdict_recorded;
  if (row && row->active != 0) {
    auto& s = stmt("SELECT blob_id, lib, md5 FROM versions WHERE module = ? AND version = ?");
    Done done{s};
    s.bind(1, p.module);
    s.bind(2, row->active);
    if (s.step()) {
      const std::string active_lib = s.text(1);
      const bool same = by_bytes ? (blob_id != 0 && s.int64(0) == blob_id) : s.text(2) == p.md5;
      if (same && active_lib == p.lib) {
        r.unchanged = true;
        r.version = r.previous = row->active;
        return r;
      }
      if (p.lib.empty()) r.lib_left = active_lib;
    }
  }
  if (blob_id == 0) {
    insert_blob(p, /*want_id=*/false, known, &r.stored_size);  // new_version names it by p.sha
    r.new_blob = true;
  }
  const std::int64_t previous = row ? row->active : 0;
  const std::int64_t version = new_version(p, blob_id, note, row);
  change.set_module(p.module, version, "import", note.empty() ? p.origin : p.origin + ": " + note,
                    /*check=*/false);
  r.version = version;
  r.previous = previous;
  return r;
}

Result<ImportResult> Store::import(std::span<const std::uint8_t> bytes, std::string_view origin,
                                   const ImportOptions& options) {
  return impl_->call(
      [&] { return "import " + (origin.empty() ? std::string("<binary>") : std::string(origin)); },
      [&]() -> Result<ImportResult> {
        if (!options.dry_run) impl_->require_writable("import");
        Impl::WriteTx tx(*impl_);
        auto dict = impl_->newest_dictionary();
        auto p = store_internal::prepare(bytes, origin, impl_->compressor, impl_->options.zstd_level,
                                         dict.get(), impl_->options.chunks);
        if (!p) return error(p.error());
        p->lib = options.lib;
        Impl::ChannelChange change(*impl_, impl_->options.channel);
        ImportResult r = impl_->insert(*p, options.note, options.bytes, change);
        change.commit({.action = "import", .reason = options.note.empty() ? r.file : options.note});
        if (!options.dry_run && (!r.unchanged || r.repaired || r.verdict_recorded)) tx.commit(!r.unchanged);
        return r;
      });
}

Result<ImportSummary> Store::import_files(const ImportPlan& plan, const ImportOptions& options) {
  return impl_->call("import", [&]() -> Result<ImportSummary> {
    if (!options.dry_run) impl_->require_writable("import");
    const auto interrupted = [&] { return options.interrupted && options.interrupted(); };
    const Status cancelled(Code::kCancelled, "interrupted: nothing imported");
    const std::vector<ImportFile>& files = plan.files;
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
          auto bytes = base::read_file(files[i].path, image::Limits().max_image_bytes);
          if (!bytes) return error(bytes.error().status(files[i].path));
          return store_internal::prepare(*bytes, files[i].path, w.compressor, level, dict.get(),
                                         impl_->options.chunks);
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
          p->lib = options.lib.empty() ? files[i].lib : options.lib;
          prepared.push_back(std::move(*p));
          if (options.progress) options.progress(i + 1, files.size(), files[i].path);
          return true;
        });
    if (failure && interrupted()) failure = cancelled;  // after the last file
    if (!failure) return error(failure);
    // Several files of one module: each becomes a version, the one of highest precedence
    // last (so it ends active); the others are shadowed by it. Other files keep their places.
    std::vector<std::size_t> order(prepared.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::vector<std::string> shadowed_by(prepared.size());
    std::map<std::string, std::vector<std::size_t>> by_module;
    for (std::size_t i = 0; i < prepared.size(); ++i) by_module[prepared[i].module].push_back(i);
    for (const auto& [module, places] : by_module) {
      if (places.size() < 2) continue;
      auto chosen = places;
      std::stable_sort(chosen.begin(), chosen.end(), [&](std::size_t a, std::size_t b) {
        return files[a].precedence < files[b].precedence;
      });
      for (std::size_t k = 0; k < places.size(); ++k) order[places[k]] = chosen[k];
      for (std::size_t k = 0; k + 1 < chosen.size(); ++k) shadowed_by[chosen[k]] = files[chosen.back()].path;
    }
    ImportSummary summary;
    summary.warnings = plan.warnings;
    // The whole batch is one change of the channel: one generation.
    Impl::ChannelChange change(*impl_, impl_->options.channel);
    auto known = impl_->lookup_batch(prepared, change.channel());
    for (const std::size_t i : order) {
      if (interrupted()) return error(cancelled);
      ImportResult r = impl_->insert(prepared[i], options.note, options.bytes, change, &known);
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
    const std::string why = !options.note.empty() ? options.note : fmt::format("{} files", summary.files);
    change.commit({.action = "import", .reason = why});
    if (!options.dry_run) tx.commit(summary.new_versions > 0);
    return summary;
  });
}

Result<ImportSummary> Store::import_tree(const std::vector<std::string>& paths,
                                         const ImportOptions& options) {
  auto plan = plan_import(paths, options.interrupted);
  // The planner's errors name the store and the call as import_files' do.
  if (!plan) return error(plan.error().with_context(impl_->context() + ": import"));
  return import_files(*plan, options);
}

}  // namespace codestore

// Maintenance: gc, verify, stats, dictionary training, compact, checkpoint, and the events
// and served counts the loader and the boot server record.
#include <codestore/image.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "base/hex.h"
#include "chunk_layout.h"
#include "parallel.h"
#include "store_impl.h"

namespace codestore {

using store_internal::BlobRow;
using store_internal::fail;
using store_internal::kBlobColumns;
using store_internal::mv;
using store_internal::now;
using store_internal::WorkerState;

namespace {

// A blob no version, application version or release holds (alias b).
constexpr const char* kUnreferencedBlob =
    "NOT EXISTS (SELECT 1 FROM versions v WHERE v.blob_id = b.id) "
    "AND NOT EXISTS (SELECT 1 FROM app_modules am WHERE am.blob_id = b.id) "
    "AND NOT EXISTS (SELECT 1 FROM app_files af WHERE af.blob_id = b.id) "
    "AND NOT EXISTS (SELECT 1 FROM release_files rf WHERE rf.blob_id = b.id) "
    "AND NOT EXISTS (SELECT 1 FROM release_modules rm WHERE rm.blob_id = b.id)";

// zstd's trainers refuse fewer samples (fastcover's minimum).
constexpr std::int64_t kMinDictionarySamples = 5;

}  // namespace

Result<GcReport> Store::gc(const GcOptions& options) {
  return impl_->call("gc", [&]() -> Result<GcReport> {
    if (!options.dry_run) impl_->require_writable("gc");
    if (options.keep_last < 0) fail(Code::kInvalidArgument, "keep_last must be >= 0");
    Impl::WriteTx tx(*impl_);
    GcReport report;
    {
      // Kept: in every channel the active versions, the modules' rollback targets and the
      // previous generation (what channel rollback returns to); every snapshot's versions;
      // what an application version or an Erlang release holds; the newest N of each module.
      static const std::string sql =
          std::string("SELECT ") + Impl::kVersionColumns +
          "WHERE NOT EXISTS (SELECT 1 FROM channel_modules k WHERE k.module = v.module AND "
          "(k.version = v.version OR k.previous = v.version)) "
          "AND NOT EXISTS (SELECT 1 FROM generation_modules gm JOIN generations g ON g.channel = gm.channel "
          "AND g.label IS NOT NULL AND gm.first <= g.number AND (gm.until IS NULL OR gm.until > g.number) "
          "WHERE gm.module = v.module AND gm.version = v.version) "
          "AND NOT EXISTS (SELECT 1 FROM generation_modules gm JOIN channels c ON c.name = gm.channel AND "
          "c.previous > 0 AND gm.first <= c.previous AND (gm.until IS NULL OR gm.until > c.previous) "
          "WHERE gm.module = v.module AND gm.version = v.version) "
          "AND NOT EXISTS (SELECT 1 FROM app_modules am WHERE am.module = v.module AND am.version = "
          "v.version) "
          "AND NOT EXISTS (SELECT 1 FROM release_modules rm WHERE rm.module = v.module AND rm.version = "
          "v.version) "
          "AND (SELECT count(*) FROM versions n WHERE n.module = v.module AND n.version > "
          "v.version) >= ?2 ORDER BY v.module, v.version";
      auto& s = impl_->stmt(sql.c_str());
      Impl::Done done{s};
      s.bind(1, impl_->options.channel);
      s.bind(2, options.keep_last);
      while (s.step()) report.deleted.push_back(Impl::version_of(s));
    }
    const std::string why = fmt::format("gc keep_last {}", options.keep_last);
    for (const auto& v : report.deleted) {
      auto& s = impl_->stmt("DELETE FROM versions WHERE module = ? AND version = ?");
      s.bind(1, v.module);
      s.bind(2, v.version);
      s.exec();
      impl_->event("gc", v.module, v.version, 0, why);
    }
    // A blob no version uses, nor any file or byte form of an application version or an
    // Erlang release (schema 3).
    {
      static const std::string sql =
          std::string("SELECT count(*), coalesce(sum(stored_size), 0) FROM blobs b WHERE ") +
          kUnreferencedBlob;
      auto& s = impl_->stmt(sql.c_str());
      Impl::Done done{s};
      s.step();
      report.blobs_deleted = s.int64(0);
      report.bytes_freed = static_cast<std::uint64_t>(s.int64(1));
    }
    impl_->db->exec(std::string("DELETE FROM blob_chunks WHERE blob_id IN (SELECT b.id FROM blobs b WHERE ") +
                    kUnreferencedBlob + ")");
    impl_->db->exec(std::string("DELETE FROM blobs AS b WHERE ") + kUnreferencedBlob);
    // A chunk no blob uses any more (schema 6).
    {
      auto& s = impl_->stmt(
          "SELECT count(*), coalesce(sum(stored_size), 0) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM "
          "blob_chunks bc WHERE bc.chunk_id = c.id)");
      Impl::Done done{s};
      s.step();
      report.chunks_deleted = s.int64(0);
      report.bytes_freed += static_cast<std::uint64_t>(s.int64(1));
    }
    impl_->db->exec(
        "DELETE FROM chunks WHERE NOT EXISTS (SELECT 1 FROM blob_chunks bc WHERE bc.chunk_id = chunks.id)");
    if (!options.dry_run)
      tx.commit(!report.deleted.empty() || report.blobs_deleted > 0 || report.chunks_deleted > 0);
    return report;
  });
}

Result<VerifyReport> Store::verify() {
  return impl_->call("verify", [&]() -> Result<VerifyReport> {
    db::Transaction tx(*impl_->db, db::TxKind::kRead);
    VerifyReport report;
    auto& refs =
        impl_->stmt("SELECT module, version FROM versions WHERE blob_id = ? ORDER BY module, version");
    // Every chunk first: a damaged one is named once, with every version whose image uses it
    // (a chunk is shared by the versions a build did not change); their blobs are not
    // reported again below.
    std::set<std::int64_t> blobs_of_damaged_chunks;
    {
      auto s = impl_->db->prepare(
          fmt::format("SELECT {} FROM chunks c ORDER BY c.id", store_internal::kChunkColumns));
      auto& blobs_of = impl_->stmt("SELECT DISTINCT blob_id FROM blob_chunks WHERE chunk_id = ?");
      std::vector<std::uint8_t> out;
      while (s->step()) {
        report.chunks_checked++;
        const std::int64_t id = s->int64(0);
        const Status st = impl_->decode_chunk(*s, 0, /*check_sha256=*/true, out);
        if (st) continue;
        const std::string msg = fmt::format("{} (used by {})", st.to_string(), impl_->users_of_chunk(id));
        refs.reset();
        refs.clear_bindings();
        bool any = false;
        blobs_of.reset();
        blobs_of.bind(1, id);
        while (blobs_of.step()) {
          blobs_of_damaged_chunks.insert(blobs_of.int64(0));
          refs.reset();
          refs.bind(1, blobs_of.int64(0));
          while (refs.step()) {
            any = true;
            report.damage.push_back({refs.text(0), refs.int64(1), msg});
          }
          refs.reset();
        }
        blobs_of.reset();
        if (!any) report.damage.push_back({"", 0, msg});
      }
    }
    {
      auto s = impl_->db->prepare(fmt::format("SELECT b.id, {} FROM blobs b ORDER BY b.id", kBlobColumns));
      std::vector<std::uint8_t> out;
      while (s->step()) {
        report.blobs_checked++;
        const std::int64_t id = s->int64(0);
        if (blobs_of_damaged_chunks.count(id)) continue;
        const BlobRow row = store_internal::blob_row(*s, 1);
        const Status st = impl_->decode(row, /*check_sha256=*/true, out);
        if (st) continue;
        const std::string msg = fmt::format("blob {}: {}", base::hex(row.sha256), st.to_string());
        refs.reset();
        refs.clear_bindings();
        refs.bind(1, id);
        bool any = false;
        while (refs.step()) {
          any = true;
          report.damage.push_back({refs.text(0), refs.int64(1), msg});
        }
        refs.reset();
        if (!any) report.damage.push_back({"", 0, msg + " (unreferenced)"});
      }
    }
    report.versions_checked = impl_->scalar("SELECT count(*) FROM versions");
    // References: every version's blob; in every channel the active versions, the rollback
    // targets, the previous generation and the current generation's rows against the active
    // set; every snapshot's versions; every blob's dictionary. Each check's rows: module,
    // version, and what the damage message says before the check's words ("" or "channel C: ").
    struct Check {
      const char* sql;
      const char* what;
    };
    static const Check checks[] = {
        {"SELECT v.module, v.version, '' FROM versions v WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id "
         "= "
         "v.blob_id)",
         "its blob is missing"},
        {"SELECT cm.module, cm.version, 'channel ' || cm.channel || ': ' FROM channel_modules cm WHERE "
         "cm.version != 0 AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.module = cm.module AND v.version "
         "= "
         "cm.version)",
         "the active version is missing"},
        {"SELECT cm.module, cm.previous, 'channel ' || cm.channel || ': ' FROM channel_modules cm WHERE "
         "cm.previous != 0 AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.module = cm.module AND v.version "
         "= "
         "cm.previous)",
         "the rollback target is missing"},
        {"SELECT gm.module, gm.version, 'release ' || g.label || ': ' FROM generations g JOIN "
         "generation_modules gm ON gm.channel = g.channel AND gm.first <= g.number AND (gm.until IS NULL OR "
         "gm.until > g.number) WHERE g.label IS NOT NULL AND NOT EXISTS (SELECT 1 FROM versions v WHERE "
         "v.module = gm.module AND v.version = gm.version)",
         "a release names a missing version"},
        {"SELECT gm.module, gm.version, 'channel ' || c.name || ': ' FROM channels c JOIN generation_modules "
         "gm "
         "ON gm.channel = c.name AND gm.first <= c.previous AND (gm.until IS NULL OR gm.until > c.previous) "
         "WHERE c.previous > 0 AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.module = gm.module AND "
         "v.version = gm.version)",
         "the previous generation (channel rollback) names a missing version"},
        {"SELECT cm.module, cm.version, 'channel ' || cm.channel || ': ' FROM channel_modules cm WHERE "
         "cm.version != 0 AND NOT EXISTS (SELECT 1 FROM generation_modules gm WHERE gm.channel = cm.channel "
         "AND gm.module = cm.module AND gm.until IS NULL AND gm.version = cm.version)",
         "the current generation does not pin the active version"},
        {"SELECT gm.module, gm.version, 'channel ' || gm.channel || ': ' FROM generation_modules gm WHERE "
         "gm.until IS NULL AND NOT EXISTS (SELECT 1 FROM channel_modules cm WHERE cm.channel = gm.channel "
         "AND "
         "cm.module = gm.module AND cm.version = gm.version)",
         "the current generation pins a version that is not the active one"},
        {"SELECT '', c.generation, 'channel ' || c.name || ': ' FROM channels c WHERE c.generation > 0 AND "
         "NOT "
         "EXISTS (SELECT 1 FROM generations g WHERE g.channel = c.name AND g.number = c.generation)",
         "its current generation is missing"},
        {"SELECT m.name, v.version, '' FROM versions v JOIN modules m ON m.name = v.module WHERE v.version > "
         "m.high_water",
         "version above the module's high-water mark"},
    };
    for (const auto& c : checks) {
      auto s = impl_->db->prepare(c.sql);
      while (s->step()) report.damage.push_back({s->text(0), s->int64(1), s->text(2) + c.what});
    }
    if (const auto n = impl_->scalar(
            "SELECT count(*) FROM blobs b WHERE b.dictionary_id IS NOT NULL AND NOT EXISTS (SELECT 1 "
            "FROM dictionaries d WHERE d.id = b.dictionary_id)");
        n > 0) {
      report.damage.push_back({"", 0, fmt::format("{} blobs name a missing dictionary", n)});
    }
    if (const auto n = impl_->scalar(
            "SELECT count(*) FROM chunks c WHERE c.dictionary_id IS NOT NULL AND NOT EXISTS (SELECT 1 "
            "FROM dictionaries d WHERE d.id = c.dictionary_id)");
        n > 0) {
      report.damage.push_back({"", 0, fmt::format("{} chunks name a missing dictionary", n)});
    }
    {
      auto s = impl_->db->prepare(
          "SELECT v.module, v.version, bc.seq FROM blob_chunks bc JOIN versions v ON v.blob_id = bc.blob_id "
          "WHERE "
          "NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = bc.chunk_id) ORDER BY v.module, v.version, "
          "bc.seq");
      while (s->step())
        report.damage.push_back(
            {s->text(0), s->int64(1), fmt::format("its chunk {} is missing", s->int64(2))});
    }
    report.integrity = impl_->db->integrity_check();
    if (!(report.integrity.size() == 1 && report.integrity[0] == "ok")) {
      for (const auto& line : report.integrity) report.damage.push_back({"", 0, "integrity_check: " + line});
    }
    return report;
  });
}

Result<StoreStats> Store::stats() {
  return impl_->call("stats", [&]() -> Result<StoreStats> {
    db::Transaction tx(*impl_->db, db::TxKind::kRead);
    auto& impl = *impl_;
    StoreStats st;
    st.modules = impl.scalar(
        "SELECT count(*) FROM modules m WHERE EXISTS (SELECT 1 FROM versions v WHERE v.module = m.name)");
    st.active_modules = impl.active_count(impl.options.channel);
    st.versions = impl.scalar("SELECT count(*) FROM versions");
    {
      auto& s = impl.stmt(
          "SELECT count(*), coalesce(sum(raw_size), 0), coalesce(sum(stored_size), 0), "
          "count(dictionary_id) FROM blobs");
      Impl::Done done{s};
      s.step();
      st.blobs = s.int64(0);
      st.raw_bytes = static_cast<std::uint64_t>(s.int64(1));
      st.stored_bytes = static_cast<std::uint64_t>(s.int64(2));
      st.blobs_with_dictionary = s.int64(3);
    }
    {
      // Bytes by chunk kind (schema 6): the chunk rows, then the layouts (recipes: the IFF
      // headers and the small chunks) and the images kept whole.
      auto& s = impl.stmt(
          "SELECT kind, count(*), coalesce(sum(raw_size), 0), coalesce(sum(stored_size), 0), "
          "coalesce(sum(CASE WHEN deflate > 0 THEN 1 ELSE 0 END), 0) FROM chunks GROUP BY kind ORDER BY 4 "
          "DESC, "
          "kind");
      Impl::Done done{s};
      while (s.step()) {
        StoreStats::ChunkKind k{s.text(0), s.int64(1), static_cast<std::uint64_t>(s.int64(2)),
                                static_cast<std::uint64_t>(s.int64(3)), s.int64(4)};
        st.chunks += k.chunks;
        st.stored_bytes += k.stored_bytes;
        st.chunk_kinds.push_back(std::move(k));
      }
    }
    {
      auto& s = impl.stmt(
          "SELECT layout, count(*), coalesce(sum(CASE WHEN layout = 1 THEN layout_size ELSE raw_size END), "
          "0), "
          "coalesce(sum(stored_size), 0) FROM blobs GROUP BY layout ORDER BY layout");
      Impl::Done done{s};
      while (s.step()) {
        st.chunk_kinds.push_back({s.int64(0) == 1 ? "(layouts)" : "(whole files)", s.int64(1),
                                  static_cast<std::uint64_t>(s.int64(2)),
                                  static_cast<std::uint64_t>(s.int64(3)), 0});
      }
    }
    st.releases = impl.scalar("SELECT count(*) FROM generations WHERE label IS NOT NULL");
    st.channels = impl.scalar("SELECT count(*) FROM channels");
    st.events = impl.scalar("SELECT count(*) FROM events");
    {
      auto& s = impl.stmt(
          "SELECT count(*), coalesce(max(id), 0), coalesce((SELECT length(bytes) FROM dictionaries "
          "ORDER BY id DESC LIMIT 1), 0) FROM dictionaries");
      Impl::Done done{s};
      s.step();
      st.dictionaries = s.int64(0);
      st.dictionary_id = s.int64(1);
      st.dictionary_size = static_cast<std::uint64_t>(s.int64(2));
    }
    {
      auto& s = impl.stmt(
          "SELECT module, version, count, last_served FROM served ORDER BY count DESC, module, version");
      Impl::Done done{s};
      while (s.step()) {
        StoreStats::Served sv{s.text(0), s.int64(1), static_cast<std::uint64_t>(s.int64(2)), s.int64(3)};
        st.served_total += sv.count;
        st.served.push_back(std::move(sv));
      }
    }
    st.schema_version = impl.db->schema_version();
    return st;
  });
}

Result<DictionaryInfo> Store::train_dictionary(const DictionaryOptions& options) {
  return impl_->call("dict train", [&]() -> Result<DictionaryInfo> {
    impl_->require_writable("dict train");
    // Two kinds of samples: what a read decompresses whole (layouts, whole blobs) and the debug
    // chunks kept apart (an image's chunks are samples of their own, inflated as compact stores
    // them). The debug chunks are 7 times the layouts' bytes in the OTP + Elixir set: trained on
    // everything, the dictionary is mostly theirs, and a layout compresses 6 % worse than with
    // one trained on layouts alone (while a debug chunk, tens of KB, gains less from any
    // dictionary). So every layout is a sample and the debug chunks are thinned (every k-th) to
    // about the layouts' bytes. On the bench_store corpus at level 19: layouts 5 % smaller, Dbgi
    // 1.5 % larger, in all less than before even with the layouts' raw literals (db::Literals).
    std::vector<std::vector<std::uint8_t>> samples;
    std::vector<bool> debug;  // samples[i] is a debug chunk's
    std::int64_t images = 0;
    {
      db::Transaction read(*impl_->db, db::TxKind::kRead);
      std::int64_t total = impl_->scalar("SELECT count(*) FROM blobs");
      if (options.max_samples > 0) total = std::min<std::int64_t>(total, options.max_samples);
      if (total < kMinDictionarySamples) {
        fail(Code::kFailedPrecondition,
             fmt::format(
                 "the store holds {} distinct images: too few to train a dictionary (zstd needs at least {}; "
                 "a dictionary pays off with hundreds)",
                 total, kMinDictionarySamples));
      }
      auto s = impl_->db->prepare(fmt::format("SELECT {} FROM blobs b ORDER BY b.id", kBlobColumns));
      while (s->step() && images < total) {
        ++images;
        if (options.interrupted && options.interrupted())
          fail(Code::kCancelled, "interrupted: no dictionary trained");
        std::vector<std::uint8_t> out;
        const BlobRow row = store_internal::blob_row(*s, 0);
        db::check(impl_->decode(row, /*check_sha256=*/false, out));
        auto split = row.layout == 1 ? store_internal::split_image(out) : std::nullopt;
        if (!split) {
          samples.push_back(std::move(out));
          debug.push_back(false);
        } else {
          // What the chunk frames hold after compact: each chunk inflated where it is deflated,
          // and the layout.
          for (const auto& c : split->chunks) {
            const std::string kind = store_internal::chunk_kind(c.id);
            auto inflated = store_internal::inflate_only(kind, c.data, image::Limits().max_inflated_bytes);
            samples.push_back(inflated ? std::move(*inflated)
                                       : std::vector<std::uint8_t>(c.data.begin(), c.data.end()));
            debug.push_back(true);
          }
          samples.push_back(std::move(split->recipe));
          debug.push_back(false);
        }
        if (options.progress)
          options.progress(static_cast<std::size_t>(images), static_cast<std::size_t>(total));
      }
    }
    // In image order (zstd's trainer tests its candidates on the last quarter of the samples).
    std::uint64_t whole_bytes = 0, debug_bytes = 0;
    for (std::size_t i = 0; i < samples.size(); ++i)
      (debug[i] ? debug_bytes : whole_bytes) += samples[i].size();
    const std::uint64_t stride =
        whole_bytes == 0 ? 1 : std::max<std::uint64_t>(1, (debug_bytes + whole_bytes - 1) / whole_bytes);
    std::size_t kept = 0;
    for (std::size_t i = 0, nth = 0; i < samples.size(); ++i) {
      if (debug[i] && nth++ % stride != 0) continue;
      if (kept != i) samples[kept] = std::move(samples[i]);  // a self-move would empty it
      ++kept;
    }
    samples.resize(kept);
    auto bytes = db::train(samples, options.size);
    if (!bytes) return error(bytes.error());
    if (options.interrupted && options.interrupted())
      fail(Code::kCancelled, "interrupted: no dictionary trained");
    Impl::WriteTx tx(*impl_);
    auto& s =
        impl_->stmt("INSERT INTO dictionaries (zstd_id, created_at, samples, bytes) VALUES (?, ?, ?, ?)");
    s.bind(1, static_cast<std::int64_t>(db::dictionary_zstd_id(*bytes)));
    s.bind(2, now());
    s.bind(3, images);
    s.bind_blob(4, *bytes);
    s.exec();
    DictionaryInfo info{impl_->db->last_insert_id(), bytes->size(), images};
    impl_->event("dict-train", "", 0, 0,
                 fmt::format("dictionary {}: {} bytes from {} images", info.id, info.size, info.samples));
    tx.commit();
    return info;
  });
}

Result<CompactReport> Store::compact(const CompactOptions& options) {
  return impl_->call("compact", [&]() -> Result<CompactReport> {
    impl_->require_writable("compact");
    Impl::WriteTx tx(*impl_);
    const auto newest = impl_->newest_dictionary();
    CompactReport report;
    report.dictionary_id = newest ? newest->id() : 0;
    Status failure;
    // Every dictionary a row names, loaded here: workers must not touch the connection.
    std::map<std::int64_t, std::shared_ptr<db::Dictionary>> dicts;
    auto load_dictionary = [&](std::int64_t id) {
      if (dicts.count(id)) return;
      try {
        dicts[id] = impl_->dictionary(id);
      } catch (const db::StatusError&) {
        dicts[id] = nullptr;  // missing: its rows fail to decompress and are skipped
      }
    };
    auto skip = [&](std::string what, const Status& st) {
      report.skipped.push_back(fmt::format("{}: {}: left as it is; re-import its original bytes to repair it",
                                           what, st.message()));
    };
    auto interrupted = [&] {
      if (options.interrupted && options.interrupted()) {
        failure = Status(Code::kCancelled, "interrupted: nothing compacted");
        return true;
      }
      return false;
    };
    // Copies of the rows: workers must not touch the connection.
    struct Row {
      std::int64_t id, raw_size, dictionary_id, layout, layout_size;
      std::vector<std::uint8_t> frame, sha, frame_checksum;
      BlobRow blob() const {
        BlobRow b{sha, static_cast<std::uint64_t>(raw_size), dictionary_id, frame, frame_checksum};
        b.id = id;
        b.layout = layout;
        b.layout_size = static_cast<std::uint64_t>(layout_size);
        return b;
      }
    };
    std::vector<Row> rows;
    {
      auto s = impl_->db->prepare(fmt::format("SELECT {} FROM blobs b ORDER BY b.id", kBlobColumns));
      while (s->step()) {
        const BlobRow b = store_internal::blob_row(*s, 0);
        rows.push_back({b.id, static_cast<std::int64_t>(b.raw_size), b.dictionary_id, b.layout,
                        static_cast<std::int64_t>(b.layout_size),
                        std::vector<std::uint8_t>(b.frame.begin(), b.frame.end()),
                        std::vector<std::uint8_t>(b.sha256.begin(), b.sha256.end()),
                        std::vector<std::uint8_t>(b.frame_checksum.begin(), b.frame_checksum.end())});
        load_dictionary(b.dictionary_id);
      }
    }
    // 1. Blobs: a whole module image (stored before schema 6) becomes its layout and chunks;
    // every frame (whole file or layout) is re-encoded at the level with the newest dictionary.
    struct BlobWork {
      store_internal::Prepared p;  // layout 1: chunks at this level (recompressed in step 2 if new)
      std::vector<std::uint8_t> frame;
    };
    store_internal::parallel_ordered<Result<BlobWork>, WorkerState>(
        rows.size(),
        [&](std::size_t i, WorkerState& w) -> Result<BlobWork> {
          std::vector<std::uint8_t> raw;
          const BlobRow row = rows[i].blob();
          if (Status st = store_internal::decode_blob(w.decompressor, row, dicts.at(row.dictionary_id).get(),
                                                      true, raw);
              !st) {
            return error(Code::kCorruption, st.message());
          }
          BlobWork out;
          if (row.layout == 0 && impl_->options.chunks) {
            if (auto split = store_internal::split_image(raw)) {
              // The chunks at a fast level: step 2 re-encodes every chunk row anyway.
              if (Status st = store_internal::compress_chunks(out.p, raw, "", w.compressor, 1, nullptr); !st)
                return error(Code::kInternal, st.message());
              auto frame =
                  w.compressor.compress(split->recipe, options.level, newest.get(), db::Literals::kRaw);
              if (!frame) return error(frame.error());
              out.frame = std::move(*frame);
              return out;
            }
          }
          // A layout (what a read for loading decompresses) with raw literals (db::Literals).
          auto frame = w.compressor.compress(raw, options.level, newest.get(),
                                             row.layout == 1 ? db::Literals::kRaw : db::Literals::kHuffman);
          if (!frame) return error(frame.error());  // kInternal: not damage
          out.frame = std::move(*frame);
          return out;
        },
        [&](std::size_t i, Result<BlobWork>& work) {
          if (interrupted()) return false;
          if (!work && work.error().code() == Code::kCorruption) {
            // Damaged (verify reports it): left as it is, for a re-import of its original bytes to repair.
            skip(fmt::format("blob {} ({})", base::hex(rows[i].sha), impl_->users_of_blob(rows[i].id)),
                 work.error());
            if (options.progress) options.progress(i + 1, rows.size());
            return true;
          }
          if (!work) {
            failure = work.error();
            return false;
          }
          report.blobs++;
          report.bytes_before += rows[i].frame.size();
          report.bytes_after += work->frame.size();
          const bool chunked = work->p.layout == 1;
          auto& s = impl_->stmt(
              "UPDATE blobs SET data = ?, stored_size = ?, level = ?, dictionary_id = ?, layout = ?, "
              "layout_size = ?, "
              "frame_checksum = ? WHERE id = ?");
          s.bind_blob_no_copy(1, work->frame);
          s.bind(2, static_cast<std::int64_t>(work->frame.size()));
          s.bind(3, options.level);
          store_internal::bind_dictionary(s, 4, newest ? newest->id() : 0);
          s.bind(5, chunked ? 1 : rows[i].layout);
          s.bind(6, chunked ? static_cast<std::int64_t>(work->p.layout_size) : rows[i].layout_size);
          s.bind_blob(7, store_internal::last4(work->frame));
          s.bind(8, rows[i].id);
          s.exec();
          if (chunked) {
            report.blobs_chunked++;
            impl_->insert_chunks(rows[i].id, work->p, /*repair=*/false);
          }
          if (options.progress) options.progress(i + 1, rows.size());
          return true;
        });
    if (!failure) return error(failure);
    rows.clear();
    // 2. Chunks: each decoded and checked against its SHA-256; a deflated one (LitT, Dbgi,
    // Docs...) is inflated when deflating it again gives exactly its bytes (docs/store.md);
    // then re-encoded at the level with the newest dictionary.
    struct ChunkRow {
      std::int64_t id, raw_size, content_size, deflate, head, dictionary_id;
      std::string kind;
      std::vector<std::uint8_t> frame, sha, frame_checksum;
    };
    std::vector<ChunkRow> chunks;
    {
      auto s = impl_->db->prepare(
          fmt::format("SELECT {} FROM chunks c ORDER BY c.id", store_internal::kChunkColumns));
      while (s->step()) {
        const auto sha = s->blob(1), frame = s->blob(8), checksum = s->blob(9);
        chunks.push_back({s->int64(0), s->int64(3), s->int64(4), s->int64(5), s->int64(6), s->int64(7),
                          s->text(2), std::vector<std::uint8_t>(frame.begin(), frame.end()),
                          std::vector<std::uint8_t>(sha.begin(), sha.end()),
                          std::vector<std::uint8_t>(checksum.begin(), checksum.end())});
        load_dictionary(chunks.back().dictionary_id);
      }
    }
    struct ChunkWork {
      std::vector<std::uint8_t> frame;
      std::int64_t content_size = 0, deflate = 0, head = 0;
      bool kept_deflated = false;
    };
    const std::size_t max_inflated = image::Limits().max_inflated_bytes;
    store_internal::parallel_ordered<Result<ChunkWork>, WorkerState>(
        chunks.size(),
        [&](std::size_t i, WorkerState& w) -> Result<ChunkWork> {
          const ChunkRow& c = chunks[i];
          const BlobRow frame_row{c.sha, static_cast<std::uint64_t>(c.content_size), c.dictionary_id, c.frame,
                                  c.frame_checksum};
          std::vector<std::uint8_t> content;
          if (Status st = store_internal::decode_blob(
                  w.decompressor, frame_row, dicts.at(c.dictionary_id).get(), c.deflate == 0, content);
              !st)
            return error(Code::kCorruption, st.message());
          ChunkWork out;
          if (c.deflate != 0) {
            auto data = store_internal::deflate_chunk(content, static_cast<std::uint32_t>(c.head), c.deflate);
            if (!data || c.sha.size() != 32 || std::memcmp(db::sha256(*data).data(), c.sha.data(), 32) != 0)
              return error(Code::kCorruption, "deflating it again does not give its bytes");
            if (options.inflate) {
              out.deflate = c.deflate;
              out.head = c.head;
            } else {
              content = std::move(*data);  // back as it came: a whole get deflates nothing
              out.kept_deflated = true;
            }
          } else if (auto inflated = options.inflate && store_internal::debug_chunk(c.kind)
                                         ? store_internal::inflate_chunk(c.kind, content, max_inflated)
                                         : std::nullopt) {
            // Only the debug chunks: a chunk the loader reads (LitT) stays deflated, so a read
            // for loading never deflates (bench_store: re-deflating LitT doubled its time).
            content = std::move(inflated->content);
            out.deflate = inflated->params;
            out.head = inflated->head;
          } else {
            out.kept_deflated = store_internal::looks_deflated(c.kind, content);
          }
          out.content_size = static_cast<std::int64_t>(content.size());
          auto frame = w.compressor.compress(content, options.level, newest.get());
          if (!frame) return error(frame.error());
          out.frame = std::move(*frame);
          return out;
        },
        [&](std::size_t i, Result<ChunkWork>& work) {
          if (interrupted()) return false;
          if (!work && work.error().code() == Code::kCorruption) {
            skip(fmt::format("chunk {} {} ({})", chunks[i].kind, base::hex(chunks[i].sha),
                             impl_->users_of_chunk(chunks[i].id)),
                 work.error());
            return true;
          }
          if (!work) {
            failure = work.error();
            return false;
          }
          report.chunks++;
          report.chunks_inflated += work->deflate != 0;
          report.chunks_kept_deflated += work->kept_deflated;
          report.bytes_before += chunks[i].frame.size();
          report.bytes_after += work->frame.size();
          auto& s = impl_->stmt(
              "UPDATE chunks SET content_size = ?, deflate = ?, head = ?, stored_size = ?, level = ?, "
              "dictionary_id = ?, "
              "data = ?, frame_checksum = ? WHERE id = ?");
          s.bind(1, work->content_size);
          s.bind(2, work->deflate);
          s.bind(3, work->head);
          s.bind(4, static_cast<std::int64_t>(work->frame.size()));
          s.bind(5, options.level);
          store_internal::bind_dictionary(s, 6, newest ? newest->id() : 0);
          s.bind_blob_no_copy(7, work->frame);
          s.bind_blob(8, store_internal::last4(work->frame));
          s.bind(9, chunks[i].id);
          s.exec();
          return true;
        });
    if (!failure) return error(failure);
    impl_->event(
        "compact", "", 0, 0,
        fmt::format(
            "{} blobs ({} split into chunks) and {} chunks ({} inflated) at level {}: {} -> {} bytes{}",
            report.blobs, report.blobs_chunked, report.chunks, report.chunks_inflated, options.level,
            report.bytes_before, report.bytes_after,
            report.skipped.empty() ? "" : fmt::format("; {} damaged rows skipped", report.skipped.size())));
    tx.commit(false);
    // Return the pages the old frames held (compact is the rare, slow maintenance step).
    impl_->db->reclaim_space();
    return report;
  });
}

Status Store::checkpoint() {
  return impl_->call("checkpoint", [&]() -> Status {
    impl_->db->checkpoint();
    return Status::ok();
  });
}

Status Store::record_event(std::string_view action, std::string_view module, Reason reason,
                           std::int64_t from_version, std::int64_t to_version) {
  return impl_->call([&] { return fmt::format("record event {} {}", action, module); },
                     [&]() -> Status {
                       impl_->require_writable_local("record event");
                       if (action.empty()) fail(Code::kInvalidArgument, "an event needs an action");
                       impl_->event(action, module, from_version, to_version, reason.text);
                       return Status::ok();
                     });
}

Status Store::record_served(std::string_view module, std::int64_t version, std::string_view peer) {
  return impl_->call(
      [&] { return fmt::format("record served {}", mv(module, version)); },
      [&]() -> Status {
        impl_->require_writable_local("record served");
        auto& s = impl_->stmt(
            "INSERT INTO served (module, version, count, last_served, last_peer) VALUES (?, ?, 1, ?, ?) "
            "ON CONFLICT (module, version) DO UPDATE SET count = served.count + 1, last_served = "
            "excluded.last_served, "
            "last_peer = excluded.last_peer");
        s.bind(1, module);
        s.bind(2, version);
        s.bind(3, now());
        s.bind(4, peer);
        s.exec();
        return Status::ok();
      });
}

}  // namespace codestore

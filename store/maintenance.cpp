// Maintenance: gc, verify, stats, dictionary training, compact, checkpoint, and the events
// and served counts the loader and the boot server record.
#include <algorithm>
#include <map>

#include "base/hex.h"
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
    impl_->db->exec(std::string("DELETE FROM blobs AS b WHERE ") + kUnreferencedBlob);
    if (!options.dry_run) tx.commit(!report.deleted.empty() || report.blobs_deleted > 0);
    return report;
  });
}

Result<VerifyReport> Store::verify() {
  return impl_->call("verify", [&]() -> Result<VerifyReport> {
    db::Transaction tx(*impl_->db, db::TxKind::kRead);
    VerifyReport report;
    auto& refs =
        impl_->stmt("SELECT module, version FROM versions WHERE blob_id = ? ORDER BY module, version");
    {
      auto s = impl_->db->prepare(fmt::format("SELECT b.id, {} FROM blobs b ORDER BY b.id", kBlobColumns));
      std::vector<std::uint8_t> out;
      while (s->step()) {
        report.blobs_checked++;
        const std::int64_t id = s->int64(0);
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
    std::vector<std::vector<std::uint8_t>> samples;
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
      while (s->step() && static_cast<std::int64_t>(samples.size()) < total) {
        if (options.interrupted && options.interrupted())
          fail(Code::kCancelled, "interrupted: no dictionary trained");
        std::vector<std::uint8_t> out;
        db::check(impl_->decode(store_internal::blob_row(*s, 0), /*check_sha256=*/false, out));
        samples.push_back(std::move(out));
        if (options.progress) options.progress(samples.size(), static_cast<std::size_t>(total));
      }
    }
    auto bytes = db::train(samples, options.size);
    if (!bytes) return error(bytes.error());
    if (options.interrupted && options.interrupted())
      fail(Code::kCancelled, "interrupted: no dictionary trained");
    Impl::WriteTx tx(*impl_);
    auto& s =
        impl_->stmt("INSERT INTO dictionaries (zstd_id, created_at, samples, bytes) VALUES (?, ?, ?, ?)");
    s.bind(1, static_cast<std::int64_t>(db::dictionary_zstd_id(*bytes)));
    s.bind(2, now());
    s.bind(3, static_cast<std::int64_t>(samples.size()));
    s.bind_blob(4, *bytes);
    s.exec();
    DictionaryInfo info{impl_->db->last_insert_id(), bytes->size(),
                        static_cast<std::int64_t>(samples.size())};
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
    // Copies of the rows: workers must not touch the connection.
    struct Row {
      std::int64_t id, raw_size, dictionary_id;
      std::vector<std::uint8_t> frame, sha, frame_checksum;
      BlobRow blob() const {
        return {sha, static_cast<std::uint64_t>(raw_size), dictionary_id, frame, frame_checksum};
      }
    };
    std::vector<Row> rows;
    {
      auto s = impl_->db->prepare(fmt::format("SELECT b.id, {} FROM blobs b ORDER BY b.id", kBlobColumns));
      while (s->step()) {
        const BlobRow b = store_internal::blob_row(*s, 1);
        rows.push_back({s->int64(0), static_cast<std::int64_t>(b.raw_size), b.dictionary_id,
                        std::vector<std::uint8_t>(b.frame.begin(), b.frame.end()),
                        std::vector<std::uint8_t>(b.sha256.begin(), b.sha256.end()),
                        std::vector<std::uint8_t>(b.frame_checksum.begin(), b.frame_checksum.end())});
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
          if (Status st = store_internal::decode_blob(w.decompressor, rows[i].blob(),
                                                      dicts.at(rows[i].dictionary_id).get(), true, raw);
              !st) {
            return error(Code::kCorruption, st.message());
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
            report.skipped.push_back(fmt::format(
                "blob {} ({}): {}: left as it is; re-import its original bytes to repair it",
                base::hex(rows[i].sha), impl_->users_of_blob(rows[i].id), frame.error().message()));
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
          auto& s = impl_->stmt(
              "UPDATE blobs SET data = ?, stored_size = ?, level = ?, dictionary_id = ? WHERE id = ?");
          s.bind_blob_no_copy(1, *frame);
          s.bind(2, static_cast<std::int64_t>(frame->size()));
          s.bind(3, options.level);
          store_internal::bind_dictionary(s, 4, newest ? newest->id() : 0);
          s.bind(5, rows[i].id);
          s.exec();
          if (options.progress) options.progress(i + 1, rows.size());
          return true;
        });
    if (!failure) return error(failure);
    impl_->event(
        "compact", "", 0, 0,
        fmt::format(
            "{} blobs at level {}: {} -> {} bytes{}", report.blobs, options.level, report.bytes_before,
            report.bytes_after,
            report.skipped.empty() ? "" : fmt::format("; {} damaged blobs skipped", report.skipped.size())));
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

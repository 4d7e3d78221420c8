// Chunks (migrations/0006_chunks.sql, docs/store.md "Chunks"): a layout-1 blob rebuilt from its
// recipe and chunk rows, the read for loading that leaves the debug chunks in the database,
// and the chunk rows an import writes. chunk_layout.h holds the pure part.
#include <fmt/ranges.h>

#include <cstring>

#include "base/hex.h"
#include "chunk_layout.h"
#include "store_impl.h"

namespace codestore {

using store_internal::BlobRow;
using store_internal::ByteSpan;
using store_internal::fail;
using store_internal::kBlobColumns;
using store_internal::mv;

namespace store_internal {

// "'Dbgi', 'Abst', ...": debug_chunk's kinds as an SQL list.
const std::string& debug_kinds_sql() {
  static const std::string sql = [] {
    std::string s;
    for (const char* k : kDebugChunks) s += fmt::format("{}'{}'", s.empty() ? "" : ", ", k);
    return s;
  }();
  return sql;
}

std::vector<std::uint8_t> last4(std::span<const std::uint8_t> frame) {
  return frame.size() >= 4 ? std::vector<std::uint8_t>(frame.end() - 4, frame.end())
                           : std::vector<std::uint8_t>{};
}

}  // namespace store_internal

Status Store::Impl::decode_chunk(db::Statement& s, int first, bool check_sha256,
                                 std::vector<std::uint8_t>& out) {
  const auto sha = s.blob(first + 1);
  const std::string kind = s.text(first + 2);
  const auto raw_size = static_cast<std::uint64_t>(s.int64(first + 3));
  const std::int64_t deflate = s.int64(first + 5);
  const auto head = static_cast<std::uint32_t>(s.int64(first + 6));
  BlobRow frame_row{sha, static_cast<std::uint64_t>(s.int64(first + 4)), s.int64(first + 7),
                    s.blob(first + 8), s.blob(first + 9)};
  auto what = [&](const Status& st) {
    return Status(st.code(), fmt::format("chunk {} {}: {}", kind, base::hex(sha), st.message()));
  };
  std::shared_ptr<db::Dictionary> dict;
  try {
    dict = dictionary(frame_row.dictionary_id);
  } catch (const db::StatusError& e) {
    return what(e.status());
  }
  if (deflate == 0) {
    if (Status st = store_internal::decode_blob(decompressor, frame_row, dict.get(), check_sha256, out); !st)
      return what(st);
    if (out.size() != raw_size)
      return what(Status(Code::kCorruption, fmt::format("{} bytes, the row says {}", out.size(), raw_size)));
    return Status::ok();
  }
  std::vector<std::uint8_t> content;
  if (Status st = store_internal::decode_blob(decompressor, frame_row, dict.get(), false, content); !st)
    return what(st);
  auto data = store_internal::deflate_chunk(content, head, deflate);
  if (!data) return what(data.error());
  if (data->size() != raw_size) {
    return what(Status(
        Code::kCorruption,
        fmt::format("deflating it again gives {} bytes, not the {} it came with", data->size(), raw_size)));
  }
  if (check_sha256 && (sha.size() != 32 || std::memcmp(sha.data(), db::sha256(*data).data(), 32) != 0))
    return what(Status(Code::kCorruption, "SHA-256 mismatch after deflating it again"));
  out = std::move(*data);
  return Status::ok();
}

Status Store::Impl::decode_chunked(const BlobRow& row, std::span<const std::uint8_t> recipe,
                                   bool check_sha256, bool loading, std::vector<std::uint8_t>& out) {
  auto ops = store_internal::parse_recipe(recipe);
  if (!ops) return ops.error();
  std::size_t refs = 0;
  bool fetch = false;  // whether the read needs any chunk row
  for (const auto& op : *ops) {
    if (op.kind != store_internal::RecipeOp::kRef) continue;
    ++refs;
    fetch = fetch || !loading || !store_internal::debug_chunk(std::string_view(op.id.data(), 4));
  }
  std::vector<std::vector<std::uint8_t>> data(refs);
  // A layout split since the loader's chunks stay in the recipe (split_image) has only debug
  // chunks apart: a read for loading then needs no second query.
  if (fetch) {
    static const std::string all = fmt::format(
        "SELECT bc.seq, {} FROM blob_chunks bc JOIN chunks c ON c.id = bc.chunk_id WHERE bc.blob_id = ? "
        "ORDER BY "
        "bc.seq",
        store_internal::kChunkColumns);
    static const std::string load = fmt::format(
        "SELECT bc.seq, {} FROM blob_chunks bc JOIN chunks c ON c.id = bc.chunk_id WHERE bc.blob_id = ? AND "
        "c.kind NOT IN ({}) ORDER BY bc.seq",
        store_internal::kChunkColumns, store_internal::debug_kinds_sql());
    auto& s = stmt(loading ? load.c_str() : all.c_str());
    Done done{s};
    s.bind(1, row.id);
    while (s.step()) {
      const std::int64_t seq = s.int64(0);
      if (seq < 0 || static_cast<std::size_t>(seq) >= refs) {
        return Status(
            Code::kCorruption,
            fmt::format("chunk layout: blob_chunks row {} beyond the layout's {} chunks", seq, refs));
      }
      if (Status st = decode_chunk(s, 1, check_sha256, data[static_cast<std::size_t>(seq)]); !st) return st;
    }
  }
  std::vector<ByteSpan> spans(data.begin(), data.end());
  auto image =
      loading ? store_internal::loading_image(*ops, spans) : store_internal::assemble_image(*ops, spans);
  if (!image) return image.error();
  if (!loading && image->size() != row.raw_size) {
    return Status(Code::kCorruption, fmt::format("chunk layout: rebuilds {} bytes, the blob has {}",
                                                 image->size(), row.raw_size));
  }
  if (!loading && check_sha256 &&
      (row.sha256.size() != 32 || std::memcmp(row.sha256.data(), db::sha256(*image).data(), 32) != 0)) {
    return Status(Code::kCorruption, "SHA-256 mismatch (the image rebuilt from its chunks)");
  }
  out = std::move(*image);
  return Status::ok();
}

std::int64_t Store::Impl::insert_chunks(std::int64_t blob_id, const store_internal::Prepared& p, bool repair,
                                        std::map<db::Sha256, std::int64_t>* known,
                                        std::uint64_t* stored_bytes) {
  // The blob_chunks row names the blob and the chunk by id when known, else by SHA-256 (the
  // subquery finds the row this import inserted; none found is a NULL the NOT NULL refuses).
  static constexpr const char* kRowSql[2][2] = {
      {"INSERT INTO blob_chunks (blob_id, seq, chunk_id) VALUES (?, ?, ?)",
       "INSERT INTO blob_chunks (blob_id, seq, chunk_id) VALUES (?, ?, (SELECT id FROM chunks WHERE sha256 = "
       "?))"},
      {"INSERT INTO blob_chunks (blob_id, seq, chunk_id) VALUES ((SELECT id FROM blobs WHERE sha256 = ?), ?, "
       "?)",
       "INSERT INTO blob_chunks (blob_id, seq, chunk_id) VALUES ((SELECT id FROM blobs WHERE sha256 = ?), ?, "
       "(SELECT id FROM chunks WHERE sha256 = ?))"}};
  std::int64_t repaired = 0;
  for (std::size_t i = 0; i < p.chunks.size(); ++i) {
    const auto& c = p.chunks[i];
    std::int64_t id = 0;  // kChunkInserted: this import's, named by its SHA-256
    const auto it = known ? known->find(c.sha) : std::map<db::Sha256, std::int64_t>::iterator{};
    if (known && it != known->end()) {
      id = it->second;
    } else {
      auto& s = stmt("SELECT id FROM chunks WHERE sha256 = ?");
      Done done{s};
      s.bind_blob(1, c.sha);
      if (s.step()) id = s.int64(0);
    }
    const auto checksum = store_internal::last4(c.frame);
    if (id > 0 && repair && chunk_damaged(id)) {
      auto& s = stmt(
          "UPDATE chunks SET content_size = ?, deflate = 0, head = 0, stored_size = ?, level = ?, "
          "dictionary_id = ?, "
          "data = ?, frame_checksum = ? WHERE id = ?");
      s.bind(1, static_cast<std::int64_t>(c.raw_size));
      s.bind(2, static_cast<std::int64_t>(c.frame.size()));
      s.bind(3, p.level);
      store_internal::bind_dictionary(s, 4, p.dictionary_id);
      s.bind_blob_no_copy(5, c.frame);
      s.bind_blob(6, checksum);
      s.bind(7, id);
      s.exec();
      repaired++;
    } else if (id == 0) {
      auto& s = stmt(
          "INSERT INTO chunks (sha256, kind, raw_size, content_size, deflate, head, stored_size, level, "
          "dictionary_id, data, frame_checksum) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)");
      s.bind_blob(1, c.sha);
      s.bind(2, c.kind);
      s.bind(3, static_cast<std::int64_t>(c.raw_size));
      s.bind(4, static_cast<std::int64_t>(c.raw_size));
      s.bind(5, static_cast<std::int64_t>(c.frame.size()));
      s.bind(6, p.level);
      store_internal::bind_dictionary(s, 7, p.dictionary_id);
      s.bind_blob_no_copy(8, c.frame);
      s.bind_blob(9, checksum);
      s.exec();
      id = kChunkInserted;
      if (known) (*known)[c.sha] = kChunkInserted;
      if (stored_bytes) *stored_bytes += c.frame.size();
    }
    auto& s = stmt(kRowSql[blob_id == 0][id == kChunkInserted]);
    if (blob_id == 0) {
      s.bind_blob(1, p.sha);
    } else {
      s.bind(1, blob_id);
    }
    s.bind(2, static_cast<std::int64_t>(i));
    if (id == kChunkInserted) {
      s.bind_blob(3, c.sha);
    } else {
      s.bind(3, id);
    }
    s.exec();
  }
  return repaired;
}

bool Store::Impl::chunk_damaged(std::int64_t id) {
  static const std::string sql =
      fmt::format("SELECT {} FROM chunks c WHERE c.id = ?", store_internal::kChunkColumns);
  auto& s = stmt(sql.c_str());
  Done done{s};
  s.bind(1, id);
  if (!s.step()) return false;
  std::vector<std::uint8_t> out;
  return !decode_chunk(s, 0, /*check_sha256=*/true, out);
}

std::shared_ptr<const std::vector<std::uint8_t>> Store::Impl::loading_bytes(std::string_view name,
                                                                            std::int64_t version) {
  static const std::string sql = fmt::format(
      "SELECT {} FROM versions v JOIN blobs b ON b.id = v.blob_id WHERE v.module = ? AND v.version = ?",
      kBlobColumns);
  auto& s = stmt(sql.c_str());
  Done done{s};
  step_version_row(s, name, version);
  if (auto hit = image_cache.find(s.blob(0))) return hit;  // the whole image serves a loader too
  const BlobRow row = store_internal::blob_row(s, 0);
  auto out = std::make_shared<std::vector<std::uint8_t>>();
  Status st;
  if (row.layout == 0) {
    st = decode(row, false, *out);
  } else {
    std::shared_ptr<db::Dictionary> dict;
    try {
      dict = dictionary(row.dictionary_id);
    } catch (const db::StatusError& e) {
      st = e.status();
    }
    if (st) st = store_internal::decode_blob(decompressor, row, dict.get(), false, recipe_scratch);
    if (st) st = decode_chunked(row, recipe_scratch, false, /*loading=*/true, *out);
  }
  if (!st) fail(Code::kCorruption, fmt::format("module {} version {}: {}", name, version, st.message()));
  return out;
}

std::string Store::Impl::users_of_chunk(std::int64_t id) {
  auto& s = stmt(
      "SELECT DISTINCT v.module, v.version FROM blob_chunks bc JOIN versions v ON v.blob_id = bc.blob_id "
      "WHERE "
      "bc.chunk_id = ? ORDER BY v.module, v.version");
  Done done{s};
  s.bind(1, id);
  std::vector<std::string> users;
  while (s.step()) users.push_back(mv(s.text(0), s.int64(1)));
  return users.empty() ? std::string("no version") : fmt::format("{}", fmt::join(users, ", "));
}

}  // namespace codestore

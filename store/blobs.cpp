// Blobs, dictionaries and the image cache: from a blob row to image bytes. Every read of a
// blob (get, verify, repair's damage check, dictionary training) decodes it through
// decode_blob; compact's workers too, with dictionaries loaded beforehand.
#include <fmt/ranges.h>

#include <cstring>

#include "store_impl.h"

namespace codestore {

using store_internal::BlobRow;
using store_internal::fail;
using store_internal::kBlobColumns;
using store_internal::mv;

namespace store_internal {

BlobRow blob_row(db::Statement& s, int first) {
  BlobRow row{s.blob(first), static_cast<std::uint64_t>(s.int64(first + 1)), s.int64(first + 2),
              s.blob(first + 3), s.blob(first + 4)};
  row.id = s.int64(first + 5);
  row.layout = s.int64(first + 6);
  row.layout_size = static_cast<std::uint64_t>(s.int64(first + 7));
  return row;
}

Status decode_blob(db::Decompressor& decompressor, const BlobRow& row, const db::Dictionary* dict,
                   bool check_sha256, std::vector<std::uint8_t>& out) {
  const auto& tail = row.frame_checksum;
  if (!tail.empty() &&
      (row.frame.size() < tail.size() ||
       std::memcmp(row.frame.data() + row.frame.size() - tail.size(), tail.data(), tail.size()) != 0)) {
    return Status(Code::kCorruption,
                  "the frame is not the blob's: its content checksum differs from the one recorded");
  }
  if (Status st = decompressor.decompress(row.frame, row.frame_content_size(), dict, out); !st) return st;
  if (check_sha256 && row.layout == 0 &&
      (row.sha256.size() != 32 || std::memcmp(row.sha256.data(), db::sha256(out).data(), 32) != 0)) {
    return Status(Code::kCorruption, "SHA-256 mismatch");
  }
  return Status::ok();
}

}  // namespace store_internal

std::shared_ptr<db::Dictionary> Store::Impl::dictionary(std::int64_t id) {
  if (id == 0) return nullptr;
  auto it = dictionaries.find(id);
  if (it != dictionaries.end()) return it->second;
  auto& s = stmt("SELECT bytes FROM dictionaries WHERE id = ?");
  Done done{s};
  s.bind(1, id);
  if (!s.step()) fail(Code::kCorruption, fmt::format("dictionary {} is referenced but missing", id));
  const auto bytes = s.blob(0);
  auto dict = std::make_shared<db::Dictionary>(id, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  dictionaries.emplace(id, dict);
  return dict;
}

std::shared_ptr<db::Dictionary> Store::Impl::newest_dictionary() {
  auto& s = stmt("SELECT coalesce(max(id), 0) FROM dictionaries");
  Done done{s};
  s.step();
  const std::int64_t id = s.int64(0);
  return dictionary(id);
}

Status Store::Impl::decode(const BlobRow& row, bool check_sha256, std::vector<std::uint8_t>& out) {
  std::shared_ptr<db::Dictionary> dict;
  try {
    dict = dictionary(row.dictionary_id);
  } catch (const db::StatusError& e) {
    return e.status();  // its dictionary is missing
  }
  if (row.layout == 0) return store_internal::decode_blob(decompressor, row, dict.get(), check_sha256, out);
  if (Status st = store_internal::decode_blob(decompressor, row, dict.get(), false, recipe_scratch); !st) {
    return Status(st.code(), "chunk layout: " + st.message());
  }
  return decode_chunked(row, recipe_scratch, check_sha256, /*loading=*/false, out);
}

std::shared_ptr<std::vector<std::uint8_t>> Store::Impl::shared_bytes(std::string_view name,
                                                                     std::int64_t version,
                                                                     bool verify_sha256) {
  // The data column last: a cache hit never reads the blob's overflow pages.
  static const std::string sql = fmt::format(
      "SELECT {} FROM versions v JOIN blobs b ON b.id = v.blob_id WHERE v.module = ? AND v.version = ?",
      kBlobColumns);
  auto& s = stmt(sql.c_str());
  Done done{s};
  step_version_row(s, name, version);
  const auto sha = s.blob(0);
  if (!verify_sha256) {
    // The cache only hands out immutable bytes; callers of shared_bytes never write them.
    if (auto hit = image_cache.find(sha)) return std::const_pointer_cast<std::vector<std::uint8_t>>(hit);
  }
  const BlobRow row = store_internal::blob_row(s, 0);
  auto out = std::make_shared<std::vector<std::uint8_t>>();
  if (Status st = decode(row, verify_sha256, *out); !st) {
    fail(Code::kCorruption, fmt::format("module {} version {}: {}", name, version, st.message()));
  }
  // The zstd checksum passed; a hash that does not match would only ever be found again
  // by this same row, so keeping it cannot serve another version wrong bytes.
  image_cache.put(sha, out);
  return out;
}

std::vector<std::uint8_t> Store::Impl::bytes(std::string_view name, std::int64_t version,
                                             bool verify_sha256) {
  auto shared = shared_bytes(name, version, verify_sha256);
  if (shared.use_count() == 1) return std::move(*shared);  // not cached: no copy
  return *shared;
}

bool Store::Impl::blob_damaged(std::int64_t id) {
  static const std::string sql = fmt::format("SELECT {} FROM blobs b WHERE b.id = ?", kBlobColumns);
  auto& s = stmt(sql.c_str());
  Done done{s};
  s.bind(1, id);
  if (!s.step()) return false;
  std::vector<std::uint8_t> out;
  return !decode(store_internal::blob_row(s, 0), /*check_sha256=*/true, out);
}

bool Store::Impl::has_load_verdict(std::int64_t id) {
  auto& s = stmt("SELECT load_verdict IS NOT NULL FROM blobs WHERE id = ?");
  Done done{s};
  s.bind(1, id);
  return s.step() && s.int64(0) != 0;
}

std::string Store::Impl::users_of_blob(std::int64_t id) {
  auto& s = stmt("SELECT module, version FROM versions WHERE blob_id = ? ORDER BY module, version");
  Done done{s};
  s.bind(1, id);
  std::vector<std::string> users;
  while (s.step()) users.push_back(mv(s.text(0), s.int64(1)));
  return users.empty() ? std::string("no version") : fmt::format("{}", fmt::join(users, ", "));
}

Result<std::vector<std::uint8_t>> Store::get(std::string_view module, std::int64_t version,
                                             bool verify_sha256) {
  return impl_->call(
      [&] { return fmt::format("get {}", store_internal::mv(module, version)); },
      [&]() -> Result<std::vector<std::uint8_t>> { return impl_->bytes(module, version, verify_sha256); });
}

Result<Store::SharedBytes> Store::get_for_loading(std::string_view module, std::int64_t version) {
  return impl_->call([&] { return fmt::format("get for loading {}", store_internal::mv(module, version)); },
                     [&]() -> Result<SharedBytes> { return impl_->loading_bytes(module, version); });
}

Result<Store::SharedBytes> Store::get_shared(std::string_view module, std::int64_t version,
                                             bool verify_sha256) {
  return impl_->call([&] { return fmt::format("get {}", store_internal::mv(module, version)); },
                     [&]() -> Result<SharedBytes> {
                       return SharedBytes(impl_->shared_bytes(module, version, verify_sha256));
                     });
}

}  // namespace codestore

// The store's cache of decompressed images: keyed by content, so it can neither serve a
// version that is gone nor hide damage from a verifying read; bounded, least recently used
// first.
#include "db/image_cache.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

db::ImageCache::Bytes bytes_of(std::size_t n, std::uint8_t fill) {
  return std::make_shared<const std::vector<std::uint8_t>>(n, fill);
}
db::Sha256 key(std::uint8_t k) {
  db::Sha256 s{};
  s.fill(k);
  return s;
}

TEST(ImageCache, KeepsTheMostRecentlyUsedWithinItsBudget) {
  db::ImageCache cache(300);
  cache.put(key(1), bytes_of(100, 1));
  cache.put(key(2), bytes_of(100, 2));
  cache.put(key(3), bytes_of(100, 3));
  EXPECT_EQ(cache.bytes_held(), 300u);
  ASSERT_TRUE(cache.find(key(1)));  // 1 is now the most recent; 2 the least
  cache.put(key(4), bytes_of(100, 4));
  EXPECT_FALSE(cache.find(key(2)));
  EXPECT_EQ((*cache.find(key(1)))[0], 1);
  EXPECT_TRUE(cache.find(key(3)));
  EXPECT_TRUE(cache.find(key(4)));
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.bytes_held(), 300u);
}

TEST(ImageCache, ALargerImageThanTheBudgetOrABadKeyIsNotKept) {
  db::ImageCache cache(100);
  cache.put(key(1), bytes_of(101, 1));
  EXPECT_FALSE(cache.find(key(1)));
  const std::uint8_t short_key[5] = {1, 2, 3, 4, 5};
  cache.put(short_key, bytes_of(10, 1));
  EXPECT_EQ(cache.entries(), 0u);
  db::ImageCache off(0);
  off.put(key(1), bytes_of(1, 1));
  EXPECT_FALSE(off.find(key(1)));
}

// Another program's connection, to change the file under an open store.
void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* msg = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg), SQLITE_OK)
      << sql << ": " << (msg ? msg : "");
  sqlite3_free(msg);
  sqlite3_close(db);
}

TEST(StoreImageCache, AVersionDeletedByAnotherConnectionIsNotServed) {
  TempDir dir;
  const std::string db = dir / "s.db";
  auto reader = open_or_die(db);
  const auto v1 = read_file(fixture("hello.beam"));
  import_bytes(*reader, v1);                        // hello@1
  import_bytes(*reader, variant("hello.beam", 1));  // hello@2
  import_bytes(*reader, v1);                        // hello@3 shares @1's blob, so the bytes stay cached
  ASSERT_EQ(*reader->get("hello", 1), v1);          // now in the cache
  {
    auto writer = open_or_die(db);
    ASSERT_TRUE(writer->delete_version("hello", 1));
  }
  auto gone = reader->get("hello", 1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Code::kNotFound);
  EXPECT_EQ(*reader->get("hello", 3), v1);
}

TEST(StoreImageCache, AVerifyingGetReadsTheDiskAndACacheOfZeroAlwaysDoes) {
  TempDir dir;
  const std::string db = dir / "s.db";
  auto cached = open_or_die(db);
  const auto v1 = read_file(fixture("hello.beam"));
  import_bytes(*cached, v1);
  ASSERT_EQ(*cached->get("hello", 1), v1);
  // Damage the stored frame (a byte in its middle) behind the open store's back.
  exec(db,
       "UPDATE blobs SET data = substr(data, 1, length(data) / 2) || x'5a' || substr(data, length(data) / 2 "
       "+ 2) "
       "WHERE id = (SELECT blob_id FROM versions WHERE module = 'hello' AND version = 1)");
  // A plain get answers from memory: the bytes it checked when it first decompressed them.
  EXPECT_EQ(*cached->get("hello", 1), v1);
  // A verifying get checks what is on disk.
  auto verified = cached->get("hello", 1, true);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code(), Code::kCorruption);
  StoreOptions no_cache;
  no_cache.image_cache_bytes = 0;
  auto uncached = open_or_die(db, no_cache);
  auto got = uncached->get("hello", 1);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kCorruption);
}

TEST(StoreImageCache, GetSharedHandsOutTheCachedBytesAndGetACopy) {
  TempDir dir;
  const std::string db = dir / "s.db";
  auto store = open_or_die(db);
  const auto v1 = read_file(fixture("hello.beam"));
  import_bytes(*store, v1);
  auto a = store->get_shared("hello", 1);
  auto b = store->get_shared("hello", 1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(**a, v1);
  EXPECT_EQ(a->get(), b->get());  // one copy in memory, shared
  EXPECT_EQ(*store->get("hello", 1), v1);
  EXPECT_EQ(store->get_shared("hello", 2).error().code(), Code::kNotFound);
  StoreOptions no_cache;
  no_cache.image_cache_bytes = 0;
  auto uncached = open_or_die(db, no_cache);
  auto c = uncached->get_shared("hello", 1);
  auto d = uncached->get_shared("hello", 1);
  ASSERT_TRUE(c && d);
  EXPECT_EQ(**c, v1);
  EXPECT_NE(c->get(), d->get());  // nothing kept: each call decompresses
}

}  // namespace
}  // namespace codestore

// Hostile input at the store's door (the image reader's own limits are in limits_test.cpp):
// a module name that is not a safe name (it could escape a directory when the store maps
// modules to `<module>.beam` paths, or is not a name at all), an image past the size limit,
// a gzip bomb, and a stored blob whose zstd frame lies about its size. Each is refused with
// a clear error, nothing is stored, and nothing crashes.
#include <codestore/store.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "gzip_bomb.h"
#include "store_util.h"

using namespace codestore;
using namespace codestore::testing;
using ::testing::AnyOf;
using ::testing::HasSubstr;

namespace {

std::vector<std::uint8_t> hello() {
  return read_file(source_dir() + "/tests/fixtures/images/hello.beam");
}

// hello.beam with atom #1 (the module name) replaced: the rest of the image is unchanged,
// so it stays loadable as far as the VM is concerned.
std::vector<std::uint8_t> renamed(const std::string& name) {
  auto chunks = split_chunks(hello());
  for (auto& c : chunks) {
    if (c.id != "AtU8") continue;
    std::vector<std::uint8_t> d(c.data.begin(), c.data.begin() + 4);  // the count
    const std::size_t first_len = c.data[4];
    d.push_back(static_cast<std::uint8_t>(name.size()));
    d.insert(d.end(), name.begin(), name.end());
    d.insert(d.end(), c.data.begin() + 5 + static_cast<long>(first_len), c.data.end());
    c.data = std::move(d);
  }
  return join_chunks(chunks);
}

class StoreLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = (tmp_ / "limits.db").string();
    auto s = Store::open(db_);
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
  }
  TempDir tmp_;
  std::string db_;
  std::unique_ptr<Store> store_;
};

}  // namespace

TEST_F(StoreLimits, RenamedFixtureImportsAsControl) {
  auto r = store_->import(renamed("hullo"), "hullo.beam", {.lib = "lib"});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->module, "hullo");
}

TEST_F(StoreLimits, ModuleNamesThatAreNotSafeAreRefused) {
  std::vector<std::string> accepted;
  for (const std::string& name :
       {std::string(""), std::string("."), std::string(".."), std::string("../evil"), std::string("a/b"),
        std::string("/abs"), std::string("a\\b"), std::string("nul\0byte", 8), std::string("line\nbreak")}) {
    SCOPED_TRACE("module name \"" + name + "\"");
    auto r = store_->import(renamed(name), "bad.beam", {.lib = "lib"});
    if (r) {
      accepted.push_back("\"" + name + "\"");
      continue;
    }
    EXPECT_THAT(r.error().code(), AnyOf(Code::kInvalidArgument, Code::kCorruption)) << r.error().to_string();
    EXPECT_THAT(r.error().to_string(), HasSubstr("bad.beam"));
  }
  EXPECT_TRUE(accepted.empty()) << "stored modules named " << ::testing::PrintToString(accepted);
  auto list = store_->list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), accepted.size());
}

TEST_F(StoreLimits, OverlongModuleNamesInLookupsAreNotFound) {
  const std::string long_name(300, 'a');
  auto a = store_->active(long_name);
  ASSERT_FALSE(a);
  EXPECT_THAT(a.error().code(), AnyOf(Code::kNotFound, Code::kInvalidArgument));
  auto v = store_->versions(std::string("\xff\xfe", 2));
  ASSERT_FALSE(v);
  EXPECT_THAT(v.error().code(), AnyOf(Code::kNotFound, Code::kInvalidArgument));
}

TEST_F(StoreLimits, ImagePastTheSizeLimitIsRefused) {
  std::vector<std::uint8_t> big = hello();
  big.resize((64u << 20) + 1, 0);
  auto r = store_->import(big, "huge.beam", {.lib = "lib"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded) << r.error().to_string();
  EXPECT_THAT(r.error().to_string(), HasSubstr("max_image_bytes"));
}

TEST_F(StoreLimits, GzipBombIsRefused) {
  auto r = store_->import(gzip_of_zeros(300u << 20), "bomb.beam", {.lib = "lib"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded) << r.error().to_string();
  EXPECT_THAT(r.error().to_string(), HasSubstr("bomb.beam"));
  auto list = store_->list();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

namespace {

// A zstd frame header that declares `content_size` bytes, followed by one empty raw block
// and a (wrong) checksum: what a damaged or hostile blob row could hold.
std::vector<std::uint8_t> lying_frame(std::uint64_t content_size) {
  std::vector<std::uint8_t> f = {0x28, 0xB5, 0x2F, 0xFD, 0xC4, 0x00};
  for (int i = 0; i < 8; ++i) f.push_back(static_cast<std::uint8_t>(content_size >> (8 * i)));
  f.insert(f.end(), {0x01, 0x00, 0x00, 0, 0, 0, 0});
  return f;
}

void rewrite_blob(const std::string& db, std::uint64_t raw_size, const std::vector<std::uint8_t>& frame) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(h,
                         "UPDATE blobs SET raw_size = ?, data = ? WHERE id = (SELECT blob_id FROM versions "
                         "WHERE module = 'hello' AND version = 1)",
                         -1, &st, nullptr),
      SQLITE_OK);
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(raw_size));
  sqlite3_bind_blob(st, 2, frame.data(), static_cast<int>(frame.size()), SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
  EXPECT_EQ(sqlite3_changes(h), 1);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

}  // namespace

// The frame says 1 TB, the row says the image's real size: corruption, found without
// allocating what the frame claims.
TEST_F(StoreLimits, BlobWhoseFrameLiesAboutItsSizeIsCorruption) {
  auto r = store_->import(hello(), "hello.beam", {.lib = "lib"});
  ASSERT_TRUE(r);
  store_.reset();
  rewrite_blob(db_, hello().size(), lying_frame(1ull << 40));
  auto s = Store::open(db_);
  ASSERT_TRUE(s);
  auto g = (*s)->get("hello", 1);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), Code::kCorruption) << g.error().to_string();
  auto v = (*s)->verify();
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_FALSE(v->ok());
}

// Row and frame agree on 1 TB: still corruption (no image is that big), never an attempt to
// allocate it (which ASan reports as a crash and an ordinary build may get from the kernel).
TEST_F(StoreLimits, BlobWhoseRowAndFrameBothLieIsCorruption) {
  auto r = store_->import(hello(), "hello.beam", {.lib = "lib"});
  ASSERT_TRUE(r);
  store_.reset();
  rewrite_blob(db_, 1ull << 40, lying_frame(1ull << 40));
  auto s = Store::open(db_);
  ASSERT_TRUE(s);
  auto g = (*s)->get("hello", 1);
  ASSERT_FALSE(g);
  EXPECT_THAT(g.error().code(), AnyOf(Code::kCorruption, Code::kLimitExceeded)) << g.error().to_string();
  auto v = (*s)->verify();
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_FALSE(v->ok());
}

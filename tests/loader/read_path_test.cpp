// The one read path from a store to the loader (store_reader.h, store_lib_source): store
// errors keep their kind, MD5 questions are answered from the md5 column (no image is
// read), metadata is cached per store generation, images are checked once per content and
// parsed over the store's shared bytes without a copy.
#include <codestore/image.h>
#include <codestore/store.h>
#include <codestore/store_reader.h>
#include <sqlite3.h>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

class ReadPath : public LoaderFixture {
 protected:
  void SetUp() override {
    LoaderFixture::SetUp();
    db_ = (dir_ / "read.db").string();
    writer_ = open_store();
  }
  void import(const std::string& sub, const std::string& lib = "app") {
    auto r = writer_->import(bytes(sub), sub, {.lib = lib});
    ASSERT_TRUE(r) << r.error().to_string();
  }
  // Damages the stored frame of module@version (a byte in its middle) behind every open
  // store's back, as a failing disk would.
  void damage_blob(const std::string& module, int version) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    const std::string sql =
        "UPDATE blobs SET data = substr(data, 1, length(data) / 2) || "
        "(CASE WHEN substr(data, length(data) / 2 + 1, 1) = x'5a' THEN x'a5' ELSE x'5a' END) || "
        "substr(data, length(data) / 2 + 2) WHERE id = (SELECT blob_id FROM versions WHERE module = '" +
        module + "' AND version = " + std::to_string(version) + ")";
    char* msg = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg), SQLITE_OK) << (msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
  }
  // A code server whose store lib reads without any cache: every image read reads the blob.
  std::unique_ptr<CodeServer> make_uncached(std::vector<std::string> path) {
    auto reader =
        std::make_shared<StoreReader>(open_store(/*cache=*/false), ReaderOptions{.checked_image_bytes = 0});
    return make_over(store_lib_source(reader), std::move(path));
  }
  std::unique_ptr<CodeServer> make_over(std::shared_ptr<LibSource> libs, std::vector<std::string> path) {
    Options options;
    options.path = std::move(path);
    options.libs = std::move(libs);
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs.has_value()) << (cs ? "" : cs.error().to_string());
    return cs ? std::move(*cs) : nullptr;
  }
  std::shared_ptr<Store> writer_;
};

TEST_F(ReadPath, ADamagedBlobIsAStoreCorruptionNotNofile) {
  import("v1/m.beam");
  damage_blob("m", 1);
  // Without the checked-image and image caches, so that the load reads the damaged blob.
  auto cs = make_uncached({"lib:app", dir("v2")});
  auto loaded = cs->load_file("m");
  ASSERT_FALSE(loaded);
  // The store's Status as it is: its code, no Erlang reason (Erlang has no store).
  EXPECT_EQ(loaded.error().code(), Code::kCorruption) << loaded.error().to_string();
  EXPECT_EQ(loaded.error().reason(), "") << loaded.error().to_string();
  EXPECT_EQ(cs->is_loaded("m"), std::nullopt) << "not v2/m.beam from the next entry either";
  auto ensured = cs->ensure_loaded("m");
  ASSERT_FALSE(ensured);
  EXPECT_EQ(ensured.error().code(), Code::kCorruption);
  auto prepared = cs->prepare_loading({LoadItem{"m", std::nullopt, std::nullopt}});
  ASSERT_FALSE(prepared);
  EXPECT_EQ(reasons(prepared.failed), (Reasons{{"m", ""}}));
  EXPECT_EQ(prepared.failed[0].status.code(), Code::kCorruption);
  EXPECT_EQ(prepared.status.code(), Code::kCorruption) << "the whole call's Status is the first module's";
}

TEST_F(ReadPath, SyncAndModuleStatusAnswerFromTheMd5ColumnWithoutReadingTheImage) {
  import("v1/m.beam");
  auto cs = make_uncached({"lib:app"});
  ASSERT_TRUE(cs->load_file("m"));
  // The blob of the loaded version goes bad after the load: a question whose answer is the
  // MD5 must not need it.
  damage_blob("m", 1);
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kLoaded);
  auto report = cs->sync(SyncPolicy::kBrutal);
  EXPECT_TRUE(report.changed.empty());
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(cs->modified_modules(), std::vector<std::string>{});
  // A new active version (another blob) is seen, read and loaded.
  import("v2/m.beam");
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kModified);
  report = cs->sync(SyncPolicy::kBrutal);
  ASSERT_EQ(report.changed.size(), 1u);
  EXPECT_EQ(report.changed[0].to_vsn, "[50]");
  EXPECT_EQ(cs->module_status("m"), ModuleStatus::kLoaded);
}

TEST_F(ReadPath, ADamagedNewVersionFailsTheSyncWithItsKind) {
  import("v1/m.beam");
  auto cs = make_uncached({"lib:app"});
  ASSERT_TRUE(cs->load_file("m"));
  import("v2/m.beam");
  damage_blob("m", 2);
  auto report = cs->sync(SyncPolicy::kBrutal);
  EXPECT_TRUE(report.changed.empty());
  EXPECT_EQ(reasons(report.failed), (Reasons{{"m", ""}})) << "the store's Status: no Erlang reason";
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].status.code(), Code::kCorruption) << report.failed[0].status.to_string();
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false})) << "v1 stays";
}

TEST_F(ReadPath, MetadataIsCachedUntilTheGenerationMoves) {
  import("v1/m.beam");
  StoreReader reader(open_store());
  ASSERT_TRUE(reader.refresh());
  auto before = reader.active("m");
  ASSERT_TRUE(before) << before.error().to_string();
  EXPECT_EQ((*before)->version, 1);
  auto none = reader.active("nope");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kNotFound);
  import("v2/m.beam");  // another connection commits
  EXPECT_EQ((*reader.active("m"))->version, 1) << "no refresh yet: the cached row";
  ASSERT_TRUE(reader.refresh());
  EXPECT_EQ((*reader.active("m"))->version, 2);
  auto lib = reader.lib("app");
  ASSERT_TRUE(lib);
  ASSERT_NE((*lib)->find("m"), nullptr);
  EXPECT_EQ((*lib)->find("m")->md5, (*reader.active("m"))->md5);
  EXPECT_EQ((*lib)->find("n"), nullptr);
}

TEST_F(ReadPath, AnImageIsCheckedOncePerContentFromTheReadForLoading) {
  import("v1/m.beam");
  StoreReader reader(open_store());
  ASSERT_TRUE(reader.refresh());
  auto v = reader.active("m");
  ASSERT_TRUE(v);
  auto first = reader.checked_image(**v, "lib:app/m.beam");
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_TRUE((*first)->verdict.loadable) << (*first)->verdict.reason;
  EXPECT_EQ(*(*first)->image.module(), "m");
  auto second = reader.checked_image(**v, "lib:app/m.beam");
  ASSERT_TRUE(second);
  EXPECT_EQ(first->get(), second->get()) << "the same content is not parsed again";
  // The checked image is the store's read for loading (Store::get_for_loading, docs/store.md
  // "Chunks"): the loader's chunks only, the module's MD5, no debug chunk; bytes() is the whole file.
  auto shared = reader.bytes("m", 1);
  ASSERT_TRUE(shared);
  auto whole = image::Image::parse(**shared, image::Strictness::kStrict);
  ASSERT_TRUE(whole);
  EXPECT_EQ(*(*first)->image.md5(), *whole->md5());
  EXPECT_LE((*first)->image.bytes().size(), (*shared)->size());
  EXPECT_EQ((*first)->image.find("Dbgi"), nullptr);

  StoreReader uncached(open_store(), ReaderOptions{.checked_image_bytes = 0});
  auto a = uncached.checked_image(**v);
  auto b = uncached.checked_image(**v);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->get(), b->get());
}

TEST(ImageParseShared, AnIffImageIsViewedWhereItIs) {
  auto bytes = std::make_shared<const std::vector<std::uint8_t>>([] {
    std::ifstream in(std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/hello.beam",
                     std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }());
  auto img = image::Image::parse_shared(bytes, image::Strictness::kStrict, "hello.beam");
  ASSERT_TRUE(img) << img.error().to_string();
  EXPECT_EQ(img->bytes().data(), bytes->data());
  EXPECT_EQ(*img->module(), "hello");
}

}  // namespace
}  // namespace codestore::loader::testing

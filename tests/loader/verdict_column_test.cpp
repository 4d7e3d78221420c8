// The loader's verdict recorded with each blob at import (migrations/0002_load_verdict.sql):
// a store reader that proves the bytes unchanged by their SHA-256 uses it instead of judging
// them again (store_reader.h). A database of schema 1 is migrated: its blobs have no verdict
// until their bytes are imported again, and load as before meanwhile.
#include <codestore/store.h>
#include <codestore/store_reader.h>
#include <sqlite3.h>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

using Verdict = ModuleVersion::LoadVerdict;

class VerdictColumn : public LoaderFixture {
 protected:
  void SetUp() override {
    LoaderFixture::SetUp();
    db_ = (dir_ / "verdict.db").string();
  }
  void import(Store& store, const std::string& sub) {
    auto r = store.import(bytes(sub), sub, {.lib = "app"});
    ASSERT_TRUE(r) << r.error().to_string();
  }
  void sql(const std::string& text) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* msg = nullptr;
    EXPECT_EQ(sqlite3_exec(db, text.c_str(), nullptr, nullptr, &msg), SQLITE_OK)
        << text << ": " << (msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
  }
  // A code server over a store lib that reads without any cache: every load reads the blob.
  std::unique_ptr<CodeServer> make_uncached() {
    auto reader =
        std::make_shared<StoreReader>(open_store(/*cache=*/false), ReaderOptions{.checked_image_bytes = 0});
    Options options;
    options.path = {"lib:app"};
    options.libs = store_lib_source(reader);
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs.has_value());
    return cs ? std::move(*cs) : nullptr;
  }
};

TEST_F(VerdictColumn, ImportRecordsTheVerdictWithTheBlob) {
  auto store = open_store();
  import(*store, "v1/m.beam");
  auto v = store->version_info("m", 1);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->load_verdict, Verdict::kLoadable);
  auto cs = make_uncached();
  auto loaded = cs->load_file("m");
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false}));
}

TEST_F(VerdictColumn, ASchemaOneStoreIsMigratedAndItsBlobsGetTheVerdictWhenImportedAgain) {
  {
    auto store = open_store();
    import(*store, "v1/m.beam");
  }
  // Back to schema 1 as an older codestore left it: no column, no record of step 2.
  sql("ALTER TABLE blobs DROP COLUMN load_verdict; DELETE FROM schema_migrations WHERE number = 2; "
      "PRAGMA user_version = 1");
  auto store = open_store();  // applies 0002_load_verdict.sql
  auto v = store->version_info("m", 1);
  ASSERT_TRUE(v) << v.error().to_string();
  EXPECT_EQ(v->load_verdict, Verdict::kUnknown) << "not recorded before schema 2";
  // Judged on the load, as before the column existed.
  auto cs = make_uncached();
  auto loaded = cs->load_file("m");
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(snap(*cs), (Snapshot{"[49]", false}));
  // The same bytes imported again (an unchanged import) record it.
  import(*store, "v1/m.beam");
  v = store->version_info("m", 1);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->load_verdict, Verdict::kLoadable);
}

TEST_F(VerdictColumn, AnotherImagesFrameInTheRowIsRefused) {
  {
    auto store = open_store();
    import(*store, "v1/m.beam");
    import(*store, "v1/n.beam");
  }
  // m's row now holds n's frame: a whole, valid zstd frame (its own checksum agrees), of
  // other bytes than the ones m's verdict was recorded for. The frame checksum recorded with
  // m's blob (schema 3) tells, without a SHA-256 of the bytes.
  sql("UPDATE blobs SET data = (SELECT b.data FROM blobs b JOIN versions v ON v.blob_id = b.id "
      "WHERE v.module = 'n'), raw_size = (SELECT b.raw_size FROM blobs b JOIN versions v ON v.blob_id = b.id "
      "WHERE v.module = 'n') WHERE id = (SELECT blob_id FROM versions WHERE module = 'm')");
  auto cs = make_uncached();
  auto loaded = cs->load_file("m");
  ASSERT_FALSE(loaded);
  // A store failure keeps the store's Status: its code, no Erlang reason (docs/code-server.md).
  EXPECT_EQ(loaded.error().code(), Code::kCorruption) << loaded.error().to_string();
  EXPECT_EQ(loaded.error().reason(), "") << loaded.error().to_string();
  EXPECT_EQ(cs->is_loaded("m"), std::nullopt);
  EXPECT_NE(loaded.error().to_string().find("the frame is not the blob's"), std::string::npos)
      << loaded.error().to_string();
}

}  // namespace
}  // namespace codestore::loader::testing

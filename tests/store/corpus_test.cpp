// Every .beam of the system's Erlang/OTP and Elixir goes in and comes out byte for byte:
// at the default level, then with a trained dictionary after compact, and through the CLI.
#include "support/corpus.h"

#include <gtest/gtest.h>

#include "common/gzip_util.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;

void expect_every_image_exact(Store& store, const ImportSummary& summary) {
  std::size_t checked = 0;
  for (const auto& item : summary.items) {
    auto got = store.get(item.module, item.version, /*verify_sha256=*/true);
    ASSERT_TRUE(got) << got.error().to_string();
    ASSERT_EQ(*got, read_file(item.file)) << item.file;
    ++checked;
  }
  EXPECT_EQ(checked, summary.files);
}

TEST(StoreCorpus, EveryOtpAndElixirImageComesBackByteIdentical) {
  const auto roots = codestore::testing::real_image_roots();
  if (roots.empty()) GTEST_SKIP() << "no /usr/lib/erlang/lib";
  TempDir dir;
  const std::string db = dir / "corpus.db";
  auto store = open_or_die(db);
  auto summary = store->import_tree(roots, {});
  ASSERT_TRUE(summary) << summary.error().to_string();
  EXPECT_GT(summary->files, 1000u);
  EXPECT_EQ(summary->new_versions, summary->files);
  expect_every_image_exact(*store, *summary);

  // Again: nothing changes.
  auto again = store->import_tree(roots, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->unchanged, summary->files);

  // Trained dictionary + compact: still exact, and smaller.
  ASSERT_TRUE(store->train_dictionary({}));
  const auto before = store->stats()->stored_bytes;
  CompactOptions co;
  co.level = 9;
  auto c = store->compact(co);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_LT(c->bytes_after, before);
  expect_every_image_exact(*store, *summary);
  auto v = store->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok());
  store.reset();

  // The CLI's export writes the same bytes (every 25th image, to keep the test short).
  for (std::size_t i = 0; i < summary->items.size(); i += 25) {
    const auto& item = summary->items[i];
    const std::string out = dir / "export.beam";
    auto r = run_cli(db, {"export", item.module + "@" + std::to_string(item.version), "-o", out});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_EQ(read_file(out), read_file(item.file)) << item.file;
  }
}

// Installed images may be gzip-wrapped (Debian's erlang-idna installs some so): gzip-wrapped
// copies of every 10th installed image, made here, go in and come out byte for byte too.
TEST(StoreCorpus, GzipWrappedImagesComeBackByteIdentical) {
  const auto roots = codestore::testing::real_image_roots();
  if (roots.empty()) GTEST_SKIP() << "no /usr/lib/erlang/lib";
  const auto files = codestore::testing::real_images(roots);
  TempDir dir;
  const auto copies = codestore::testing::gzipped_copies(files, 10, dir / "gzip");
  auto store = open_or_die(dir / "gzip.db");
  auto summary = store->import_tree({dir / "gzip"}, {});
  ASSERT_TRUE(summary) << summary.error().to_string();
  EXPECT_EQ(summary->files, copies.size());
  EXPECT_EQ(summary->new_versions, copies.size());
  expect_every_image_exact(*store, *summary);
}

}  // namespace
}  // namespace codestore

// Issue 17: module images stored as their chunks (docs/store.md, "Chunks"). The layout
// rebuilds the exact file, odd images included; versions share the chunks a build did not
// change; a read for loading leaves the debug chunks in the database; compact inflates what
// was deflated only when deflating it again gives the same bytes; verify names every
// version a damaged shared chunk affects; gc frees chunks no version uses; blobs stored
// whole before schema 6 are read and split by compact. Real OTP images (lists.beam) and
// variants of them built with the image library.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "backend.h"
#include "base/hex.h"
#include "chunk_layout.h"
#include "common/gzip_util.h"
#include "db/codec.h"
#include "raw_db.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;
using store_internal::assemble_image;
using store_internal::ByteSpan;
using store_internal::parse_recipe;
using store_internal::split_image;

// An OTP module's image (stdlib's lists.beam: Dbgi, LitT, Docs-free, 20-odd chunks), or empty.
std::vector<std::uint8_t> otp_image(const std::string& app, const std::string& module) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/erlang/lib", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(app + "-", 0) == 0) {
      const auto p = e.path() / "ebin" / (module + ".beam");
      if (fs::exists(p)) return read_file(p.string());
    }
  }
  return {};
}

#define REQUIRE_OTP(bytes) \
  if ((bytes).empty()) GTEST_SKIP() << "no Erlang/OTP stdlib here"

// The image with chunk `id`'s data replaced (the other chunks as they are).
std::vector<std::uint8_t> with_chunk(const std::vector<std::uint8_t>& bytes, const std::string& id,
                                     const std::vector<std::uint8_t>& data) {
  auto img = image::Image::parse(bytes, image::Strictness::kStrict);
  EXPECT_TRUE(img);
  std::vector<image::ChunkData> chunks;
  bool found = false;
  for (const auto& c : img->chunks()) {
    if (c.id_view() == id) {
      chunks.push_back({id, data});
      found = true;
    } else {
      chunks.push_back({std::string(c.id_view()), img->data(c)});
    }
  }
  if (!found) chunks.push_back({id, data});
  auto built = image::build_module(chunks);
  EXPECT_TRUE(built);
  return *built;
}

std::vector<std::uint8_t> chunk_data(const std::vector<std::uint8_t>& bytes, const std::string& id) {
  auto img = image::Image::parse(bytes, image::Strictness::kLenient);
  EXPECT_TRUE(img);
  const auto* c = img->find(id);
  if (c == nullptr) return {};
  const auto d = img->data(*c);
  return {d.begin(), d.end()};
}

// A chunk of `n` bytes no other image has (seeded by `seed`): a chunk of its own per variant.
std::vector<std::uint8_t> unique_bytes(int seed, std::size_t n = 300) {
  std::vector<std::uint8_t> out(n);
  std::uint32_t x = 2463534242u + static_cast<std::uint32_t>(seed) * 7919u;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

// zlib with the given parameters: a stream no level of the default strategy reproduces.
std::vector<std::uint8_t> zlib(ByteSpan in, int level, int mem_level, int strategy) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, MAX_WBITS, mem_level, strategy), Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&zs, static_cast<uLong>(in.size())) + 16);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void expect_rebuilds(const std::vector<std::uint8_t>& bytes, const std::string& what) {
  auto split = split_image(bytes);
  ASSERT_TRUE(split) << what;
  auto ops = parse_recipe(split->recipe);
  ASSERT_TRUE(ops) << what << ": " << ops.error().to_string();
  std::vector<ByteSpan> refs;
  for (const auto& c : split->chunks) refs.push_back(c.data);
  auto back = assemble_image(*ops, refs);
  ASSERT_TRUE(back) << what;
  EXPECT_EQ(*back, bytes) << what;
  EXPECT_EQ(store_internal::recipe_image_size(*ops), bytes.size()) << what;
}

TEST(ChunkLayout, RebuildsRealAndOddImagesExactly) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  expect_rebuilds(lists, "lists.beam");
  expect_rebuilds(read_file(fixture("hello.beam")), "hello.beam");
  expect_rebuilds(read_file(fixture("attrs.beam")), "attrs.beam");
  // What beam_lib tolerates and the IFF walk does not assume: bytes after the last chunk, a
  // form length that disagrees, nonzero padding, a last chunk without its padding, a last
  // chunk that runs past the end.
  auto trailing = lists;
  trailing.insert(trailing.end(), {'j', 'u', 'n', 'k', '!'});
  expect_rebuilds(trailing, "trailing bytes");
  auto form = lists;
  form[7] ^= 0x10;
  expect_rebuilds(form, "form length");
  auto img = image::Image::parse(lists, image::Strictness::kStrict);
  ASSERT_TRUE(img);
  bool padded = false;
  for (const auto& c : img->chunks()) {
    if (c.size % 4 != 0) {
      auto odd = lists;
      odd[c.offset + c.size] = 0xAA;
      expect_rebuilds(odd, "nonzero padding of " + std::string(c.id_view()));
      padded = true;
      break;
    }
  }
  EXPECT_TRUE(padded) << "lists.beam has no chunk of a size that is not a multiple of 4";
  const auto& last = img->chunks().back();
  std::vector<std::uint8_t> unpadded(lists.begin(),
                                     lists.begin() + static_cast<std::ptrdiff_t>(last.offset + last.size));
  expect_rebuilds(unpadded, "last chunk unpadded");
  std::vector<std::uint8_t> cut(lists.begin(), lists.end() - 9);
  expect_rebuilds(cut, "last chunk cut short");
  // Not IFF: stored whole.
  EXPECT_FALSE(split_image(testing::gzip_bytes(lists)));
}

TEST(ChunkLayout, ADamagedLayoutIsCorruption) {
  auto split = split_image(read_file(fixture("hello.beam")));
  ASSERT_TRUE(split);
  auto cut = split->recipe;
  cut.resize(cut.size() - 3);
  auto ops = parse_recipe(cut);
  EXPECT_FALSE(ops.has_value() &&
               store_internal::recipe_image_size(*ops) == read_file(fixture("hello.beam")).size());
  auto bad = split->recipe;
  bad[0] = 'X';
  EXPECT_EQ(parse_recipe(bad).error().code(), Code::kCorruption);
  ops = parse_recipe(split->recipe);
  ASSERT_TRUE(ops);
  std::vector<ByteSpan> refs;  // none fetched
  EXPECT_EQ(assemble_image(*ops, refs).error().code(), Code::kCorruption);
}

TEST(ChunkLayout, TheLoadingImageHasTheModulesMd5AndNoDebugChunks) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  auto split = split_image(lists);
  ASSERT_TRUE(split);
  auto ops = parse_recipe(split->recipe);
  ASSERT_TRUE(ops);
  std::vector<ByteSpan> refs;
  for (const auto& c : split->chunks)
    refs.push_back(store_internal::debug_chunk(std::string_view(c.id.data(), 4)) ? ByteSpan{} : c.data);
  auto view = store_internal::loading_image(*ops, refs);
  ASSERT_TRUE(view) << view.error().to_string();
  EXPECT_LT(view->size(), lists.size());
  auto a = image::Image::parse(lists, image::Strictness::kStrict);
  auto b = image::Image::parse(*view, image::Strictness::kStrict);
  ASSERT_TRUE(a && b) << (b ? "" : b.error().to_string());
  EXPECT_EQ(*a->md5(), *b->md5());
  EXPECT_EQ(b->find("Dbgi"), nullptr);
  ASSERT_NE(a->find("Dbgi"), nullptr);
  EXPECT_TRUE(b->check_loadable().loadable);
  EXPECT_EQ(a->exports()->size(), b->exports()->size());
}

TEST(ChunkLayout, InflatesOnlyWhatDeflatesAgainExactly) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  const auto dbgi = chunk_data(lists, "Dbgi");
  ASSERT_GT(dbgi.size(), 6u);
  const auto limit = image::Limits().max_inflated_bytes;
  auto inflated = store_internal::inflate_chunk("Dbgi", dbgi, limit);
  ASSERT_TRUE(inflated);
  EXPECT_EQ(inflated->head, 6u);
  EXPECT_GT(inflated->content.size(), dbgi.size());
  EXPECT_EQ(inflated->params, store_internal::deflate_params(6, 8, Z_DEFAULT_STRATEGY));  // term_to_binary's
  auto again = store_internal::deflate_chunk(inflated->content, inflated->head, inflated->params);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, dbgi);
  const auto litt = chunk_data(lists, "LitT");
  if (!litt.empty()) {
    auto l = store_internal::inflate_chunk("LitT", litt, limit);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->head, 4u);
    EXPECT_EQ(*store_internal::deflate_chunk(l->content, l->head, l->params), litt);
  }
  // A deflater we cannot reproduce (another strategy and memLevel): not inflated.
  const ByteSpan term = ByteSpan(inflated->content).subspan(6);
  std::vector<std::uint8_t> odd(dbgi.begin(), dbgi.begin() + 6);
  const auto stream = zlib(term, 6, 9, Z_FILTERED);
  odd.insert(odd.end(), stream.begin(), stream.end());
  ASSERT_NE(odd, dbgi);
  EXPECT_TRUE(store_internal::looks_deflated("Dbgi", odd));
  EXPECT_FALSE(store_internal::inflate_chunk("Dbgi", odd, limit));
  // A truncated stream, a stream with bytes after it.
  std::vector<std::uint8_t> truncated(dbgi.begin(), dbgi.end() - 10);
  EXPECT_FALSE(store_internal::inflate_chunk("Dbgi", truncated, limit));
  auto longer = dbgi;
  longer.push_back(0);
  EXPECT_FALSE(store_internal::inflate_chunk("Dbgi", longer, limit));
  // Past the inflate limit.
  EXPECT_FALSE(store_internal::inflate_chunk("Dbgi", dbgi, 100));
}

void expect_exact(Store& store, const std::string& module, std::int64_t version,
                  const std::vector<std::uint8_t>& bytes) {
  auto got = store.get(module, version, /*verify_sha256=*/true);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, bytes) << module << "@" << version;
}

TEST(StoreChunks, VersionsShareChunksAndEveryReadIsExact) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  TempDir dir;
  StoreOptions o;
  o.image_cache_bytes = 0;
  auto store = open_or_die(dir / "s.db", o);
  std::vector<std::vector<std::uint8_t>> builds;
  for (int n = 0; n < 3; ++n) {
    builds.push_back(variant_of(lists, "lists.beam", n));
    ASSERT_EQ(import_bytes(*store, builds.back()), n + 1);
  }
  auto st = store->stats();
  ASSERT_TRUE(st);
  const auto split = split_image(lists);
  // Apart: only the debug chunks (Dbgi here), which the builds share; the loader's chunks are
  // in each build's layout.
  ASSERT_EQ(split->chunks.size(), 1u);
  EXPECT_EQ(store_internal::chunk_kind(split->chunks[0].id), "Dbgi");
  EXPECT_EQ(st->chunks, 1);
  // Three builds in less than one and a half raw images (zstd-3 alone keeps about half of
  // each): Dbgi, the largest chunk, is stored once.
  EXPECT_LT(st->stored_bytes, 3 * lists.size() / 2);
  for (int n = 0; n < 3; ++n) expect_exact(*store, "lists", n + 1, builds[static_cast<std::size_t>(n)]);
  // A read for loading: the module's MD5, no Dbgi.
  auto view = store->get_for_loading("lists", 2);
  ASSERT_TRUE(view) << view.error().to_string();
  auto img = image::Image::parse(**view, image::Strictness::kStrict);
  ASSERT_TRUE(img);
  EXPECT_EQ(image::md5_hex(*img->md5()), store->version_info("lists", 2)->md5);
  EXPECT_EQ(img->find("Dbgi"), nullptr);
  EXPECT_NE(img->find("XTra"), nullptr);
  // compact inflates Dbgi (exactly reproducible here; LitT, which the loader reads, stays as it
  // came), and every read stays exact.
  CompactOptions co;
  co.level = 3;
  auto c = store->compact(co);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->chunks_inflated, 1);
  EXPECT_EQ(c->chunks_kept_deflated, 0);  // LitT is in the layouts, not a chunk row
  EXPECT_TRUE(c->skipped.empty());
  for (int n = 0; n < 3; ++n) expect_exact(*store, "lists", n + 1, builds[static_cast<std::size_t>(n)]);
  view = store->get_for_loading("lists", 3);
  ASSERT_TRUE(view);
  EXPECT_EQ(image::md5_hex(*image::Image::parse(**view, image::Strictness::kStrict)->md5()),
            store->version_info("lists", 3)->md5);
  auto v = store->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok()) << (v->damage.empty() ? "" : v->damage[0].message);
  EXPECT_EQ(v->chunks_checked, st->chunks);
  st = store->stats();
  auto dbgi =
      std::find_if(st->chunk_kinds.begin(), st->chunk_kinds.end(), [](auto& k) { return k.kind == "Dbgi"; });
  ASSERT_NE(dbgi, st->chunk_kinds.end());
  EXPECT_EQ(dbgi->inflated, 1);
  EXPECT_EQ(dbgi->raw_bytes, chunk_data(lists, "Dbgi").size());
  // A store that serves whole files: compact keeping every chunk as it came deflates Dbgi
  // back (once, verified), so that a whole get deflates nothing.
  co.inflate = false;
  c = store->compact(co);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->chunks_inflated, 0);
  EXPECT_EQ(c->chunks_kept_deflated, 1);
  for (int n = 0; n < 3; ++n) expect_exact(*store, "lists", n + 1, builds[static_cast<std::size_t>(n)]);
  st = store->stats();
  dbgi =
      std::find_if(st->chunk_kinds.begin(), st->chunk_kinds.end(), [](auto& k) { return k.kind == "Dbgi"; });
  ASSERT_NE(dbgi, st->chunk_kinds.end());
  EXPECT_EQ(dbgi->inflated, 0);
  EXPECT_TRUE(store->verify()->ok());
}

// What an import says it stored is what the store holds more afterwards: the layout and the
// chunks no version had (the import summary's ratio is computed from it).
TEST(StoreChunks, AnImportCountsTheChunksItStored) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  TempDir dir;
  auto store = open_or_die(dir / "s.db");
  std::uint64_t before = 0;
  for (int n = 0; n < 2; ++n) {
    auto r = store->import(variant_of(lists, "lists.beam", n), "build");
    ASSERT_TRUE(r) << r.error().to_string();
    const auto after = store->stats()->stored_bytes;
    EXPECT_EQ(r->stored_size, after - before) << "build " << n;
    if (n == 1) {
      // The second build shares Dbgi, the largest chunk: its layout only.
      EXPECT_LT(r->stored_size, before / 2);
    }
    before = after;
  }
}

// The damage suites run on both backends (backend.h): the damage is made through SQL, as
// another program with access to the database might (sqlite3 on the file, libpq on the server).
class StoreChunkDamage : public BackendTest {
 protected:
  // Flips byte 21 of the frame of every Dbgi chunk row; returns how many rows it changed.
  std::int64_t damage_dbgi(const std::string& location) {
    if (postgresql()) {
      return static_cast<std::int64_t>(
          testing::pg_rows(location,
                           "UPDATE chunks SET data = substring(data from 1 for 20) || '\\xff'::bytea || "
                           "substring(data from 22) WHERE kind = 'Dbgi' RETURNING id")
              .size());
    }
    RawDb raw(location);
    const std::int64_t n = raw.scalar("SELECT count(*) FROM chunks WHERE kind = 'Dbgi'");
    raw.exec("UPDATE chunks SET data = substr(data, 1, 20) || X'FF' || substr(data, 22) WHERE kind = 'Dbgi'");
    return n;
  }
};
CODESTORE_BOTH_BACKENDS(StoreChunkDamage);

TEST_P(StoreChunkDamage, DeflatedChunksThatDoNotDeflateAgainExactlyAreKeptAsTheyCame) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  const auto dbgi = chunk_data(lists, "Dbgi");
  auto inflated = store_internal::inflate_only("Dbgi", dbgi, image::Limits().max_inflated_bytes);
  ASSERT_TRUE(inflated);
  std::vector<std::uint8_t> odd(dbgi.begin(), dbgi.begin() + 6);
  const auto stream = zlib(ByteSpan(*inflated).subspan(6), 6, 9, Z_FILTERED);
  odd.insert(odd.end(), stream.begin(), stream.end());
  std::vector<std::uint8_t> truncated(dbgi.begin(), dbgi.end() - 40);
  const auto a = with_chunk(lists, "Dbgi", odd);
  const auto b = with_chunk(variant_of(lists, "lists.beam", 1), "Dbgi", truncated);
  TempDir dir;
  auto store = open_or_die(store_at(dir));
  ASSERT_EQ(import_bytes(*store, a), 1);
  ASSERT_EQ(import_bytes(*store, b), 2);
  CompactOptions co;
  co.level = 3;
  auto c = store->compact(co);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->chunks_kept_deflated, 2);  // the two Dbgi
  EXPECT_EQ(c->chunks_inflated, 0);
  expect_exact(*store, "lists", 1, a);
  expect_exact(*store, "lists", 2, b);
  auto v = store->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok());
}

TEST_P(StoreChunkDamage, ADamagedSharedChunkIsNamedForEveryVersionAndRepairedByReimport) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  TempDir dir;
  const std::string db = store_at(dir);
  std::vector<std::vector<std::uint8_t>> builds;
  {
    auto store = open_or_die(db);
    for (int n = 0; n < 3; ++n) {
      builds.push_back(variant_of(lists, "lists.beam", n));
      import_bytes(*store, builds.back());
    }
    ASSERT_TRUE(store->checkpoint());
  }
  ASSERT_EQ(damage_dbgi(db), 1);  // one Dbgi row, which the three builds share
  StoreOptions o;
  o.image_cache_bytes = 0;
  auto store = open_or_die(db, o);
  auto v = store->verify();
  ASSERT_TRUE(v);
  std::vector<std::string> named;
  for (const auto& d : v->damage) {
    named.push_back(d.module + "@" + std::to_string(d.version));
    EXPECT_NE(d.message.find("chunk Dbgi"), std::string::npos) << d.message;
    EXPECT_NE(d.message.find("lists@1, lists@2, lists@3"), std::string::npos) << d.message;
  }
  EXPECT_EQ(named, (std::vector<std::string>{"lists@1", "lists@2", "lists@3"}));
  auto got = store->get("lists", 2);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kCorruption);
  EXPECT_NE(got.error().message().find("chunk Dbgi"), std::string::npos) << got.error().message();
  // Dbgi is no chunk the loader reads: a read for loading does not touch it.
  auto view = store->get_for_loading("lists", 2);
  ASSERT_TRUE(view) << view.error().to_string();
  EXPECT_EQ(image::md5_hex(*image::Image::parse(**view, image::Strictness::kStrict)->md5()),
            store->version_info("lists", 2)->md5);
  // compact skips it, naming the versions.
  auto c = store->compact({});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->skipped.size(), 1u);
  EXPECT_NE(c->skipped[0].find("lists@1, lists@2, lists@3"), std::string::npos) << c->skipped[0];
  // Re-importing any build that holds it repairs every version.
  auto r = store->import(builds[0], "lists.beam");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->repaired);
  for (int n = 0; n < 3; ++n) expect_exact(*store, "lists", n + 1, builds[static_cast<std::size_t>(n)]);
  EXPECT_TRUE(store->verify()->ok());
}

// A layout is the frame a read for loading decompresses, kept with raw literals (db::Literals:
// faster to decode, a little larger). A changed literal byte then decodes without complaint, so
// it is the frame's checksum that must catch it: a byte changed anywhere in the frame (but the
// last four, which the row records apart) is kCorruption for a read for loading, never other
// bytes, as imported (level 3) and after compact (level 19).
TEST(StoreChunks, LayoutsHaveRawLiteralsAndAnyDamagedByteFailsAReadForLoading) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  const auto recipe = split_image(lists)->recipe;
  db::Compressor zc;
  auto huffman = zc.compress(recipe, 19, nullptr);
  auto raw_literals = zc.compress(recipe, 19, nullptr, db::Literals::kRaw);
  ASSERT_TRUE(huffman && raw_literals);
  EXPECT_GT(raw_literals->size(), huffman->size());  // the parameter took effect
  db::Decompressor zd;
  std::vector<std::uint8_t> back;
  ASSERT_TRUE(zd.decompress(*raw_literals, recipe.size(), nullptr, back));
  EXPECT_EQ(back, recipe);

  TempDir dir;
  const std::string db = dir / "s.db";
  StoreOptions o;
  o.image_cache_bytes = 0;
  auto store = open_or_die(db, o);
  ASSERT_EQ(import_bytes(*store, lists), 1);
  auto good = store->get_for_loading("lists", 1);
  ASSERT_TRUE(good) << good.error().to_string();
  for (int level : {3, 19}) {
    if (level == 19) {
      CompactOptions co;
      co.level = 19;
      ASSERT_TRUE(store->compact(co));
    }
    RawDb raw(db);
    const std::string where = "WHERE layout = 1";
    const auto frame = raw.blob("SELECT data FROM blobs " + where);
    ASSERT_GT(frame.size(), 100u);
    EXPECT_EQ(raw.scalar("SELECT level FROM blobs " + where), level);
    int failed = 0, tried = 0;
    for (std::size_t at = 0; at + 4 < frame.size(); at += frame.size() / 40 + 1) {
      auto bad = frame;
      bad[at] ^= 0x20;
      raw.set_blob("UPDATE blobs SET data = ?1 " + where, bad);
      ++tried;
      auto view = store->get_for_loading("lists", 1);
      if (!view) {
        EXPECT_EQ(view.error().code(), Code::kCorruption)
            << "byte " << at << ": " << view.error().to_string();
        ++failed;
      } else {
        ADD_FAILURE() << "level " << level << ", byte " << at << " changed: read for loading gave "
                      << ((**view == **good) ? "the same bytes" : "other bytes");
      }
    }
    EXPECT_EQ(failed, tried);
    raw.set_blob("UPDATE blobs SET data = ?1 " + where, frame);
    auto again = store->get_for_loading("lists", 1);
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(**again, **good);
  }
}

TEST(StoreChunks, GcFreesTheChunksNoVersionUses) {
  const auto hello = read_file(fixture("hello.beam"));
  TempDir dir;
  auto store = open_or_die(dir / "s.db");
  std::vector<std::vector<std::uint8_t>> builds;
  for (int n = 0; n < 3; ++n) {
    builds.push_back(with_chunk(hello, "Docs", unique_bytes(n)));  // a debug chunk: kept apart
    import_bytes(*store, builds.back());
  }
  const auto before = store->stats()->chunks;
  ASSERT_TRUE(store->delete_version("hello", 1));
  auto dry = store->gc({.keep_last = 0, .dry_run = true});
  ASSERT_TRUE(dry);
  EXPECT_EQ(dry->chunks_deleted, 1);
  EXPECT_EQ(store->stats()->chunks, before);
  auto gc = store->gc({.keep_last = 0});
  ASSERT_TRUE(gc) << gc.error().to_string();
  EXPECT_EQ(gc->blobs_deleted, 1);
  EXPECT_EQ(gc->chunks_deleted, 1);  // version 1's Docs; the other versions' stay
  EXPECT_GT(gc->bytes_freed, 0u);
  EXPECT_EQ(store->stats()->chunks, before - 1);
  expect_exact(*store, "hello", 2, builds[1]);
  expect_exact(*store, "hello", 3, builds[2]);
  EXPECT_TRUE(store->verify()->ok());
}

TEST(StoreChunks, WholeBlobsFromBeforeSchema6AreReadAndCompactSplitsThem) {
  const auto lists = otp_image("stdlib", "lists");
  REQUIRE_OTP(lists);
  const auto hello = read_file(fixture("hello.beam"));
  TempDir dir;
  const std::string db = dir / "s.db";
  {
    auto store = open_or_die(db);
    import_bytes(*store, lists);
    import_bytes(*store, hello);
    ASSERT_TRUE(store->checkpoint());
  }
  {
    // What a schema-5 database holds after 0006: every blob whole (layout 0), no chunk rows.
    RawDb raw(db);
    db::Compressor zc;
    for (const auto* bytes : {&lists, &hello}) {
      auto frame = zc.compress(*bytes, 3, nullptr);
      ASSERT_TRUE(frame);
      const auto sha = db::sha256(*bytes);
      raw.set_blob(
          fmt::format("UPDATE blobs SET layout = 0, layout_size = 0, data = ?1, stored_size = length(?1), "
                      "frame_checksum = substr(?1, -4) WHERE lower(hex(sha256)) = '{}'",
                      base::hex(sha)),
          *frame);
    }
    raw.exec("DELETE FROM blob_chunks");
    raw.exec("DELETE FROM chunks");
  }
  auto store = open_or_die(db);
  expect_exact(*store, "lists", 1, lists);
  auto whole = store->get_for_loading("hello", 1);
  ASSERT_TRUE(whole);
  EXPECT_EQ(**whole, hello);  // stored whole: given whole
  EXPECT_TRUE(store->verify()->ok());
  auto c = store->compact({});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->blobs_chunked, 2);
  EXPECT_GT(store->stats()->chunks, 0);
  expect_exact(*store, "lists", 1, lists);
  expect_exact(*store, "hello", 1, hello);
  auto v = store->verify();
  EXPECT_TRUE(v->ok()) << (v->damage.empty() ? "" : v->damage[0].message);
}

}  // namespace
}  // namespace codestore

// Hard limits against hostile input (docs/image-format.md, "Limits"): each limit
// stops the work early with an error that names it, through the public APIs only: the
// image reader (Image::parse, maybe_gunzip, check_loadable) and the term decoder
// (etf::decode). The store's side (import refusing names that are not safe module names,
// a blob whose zstd frame lies about its size) is in store_limits_test.cpp.
#include <codestore/image.h>
#include <codestore/term.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "gzip_bomb.h"
#include "image/damage.h"
#include "image/image_test_util.h"

using codestore::Code;
using codestore::image::ErrorKind;
using codestore::image::Image;
using codestore::image::kind_of;
using codestore::image::Limits;
using codestore::image::Strictness;
using codestore::testing::gzip_of_zeros;
using codestore::testing::RawChunk;
using ::testing::HasSubstr;

namespace {

std::vector<std::uint8_t> hello() {
  return codestore::testing::read_file(codestore::testing::source_dir() +
                                       "/tests/fixtures/images/hello.beam");
}

std::vector<std::uint8_t> deflate_bytes(const std::vector<std::uint8_t>& in) {
  uLongf n = compressBound(static_cast<uLong>(in.size()));
  std::vector<std::uint8_t> out(n);
  EXPECT_EQ(compress2(out.data(), &n, in.data(), static_cast<uLong>(in.size()), 9), Z_OK);
  out.resize(n);
  return out;
}

std::vector<std::uint8_t> with_chunk(std::vector<RawChunk> chunks, const std::string& id,
                                     std::vector<std::uint8_t> data) {
  for (auto& c : chunks) {
    if (c.id == id) {
      c.data = std::move(data);
      return codestore::testing::join_chunks(chunks);
    }
  }
  chunks.push_back({id, std::move(data)});
  return codestore::testing::join_chunks(chunks);
}

void put_u32(std::vector<std::uint8_t>& v, std::uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<std::uint8_t>(x >> s));
}

// An AtU8 chunk (OTP 25's layout: count, then one length byte and the name per atom).
std::vector<std::uint8_t> atu8(const std::vector<std::string>& atoms) {
  std::vector<std::uint8_t> d;
  put_u32(d, static_cast<std::uint32_t>(atoms.size()));
  for (const auto& a : atoms) {
    d.push_back(static_cast<std::uint8_t>(a.size()));
    d.insert(d.end(), a.begin(), a.end());
  }
  return d;
}

}  // namespace

TEST(Limits, DefaultsAreFinite) {
  const Limits l;
  EXPECT_EQ(l.max_image_bytes, 64u << 20);
  EXPECT_EQ(l.max_chunks, 4096u);
  EXPECT_EQ(l.max_atoms, 1u << 20);
  EXPECT_EQ(l.max_term_depth, 10000u);
  EXPECT_EQ(l.max_inflated_bytes, 256u << 20);
  const codestore::etf::DecodeLimits d;
  EXPECT_EQ(d.max_depth, 10000u);
  EXPECT_EQ(d.max_terms, 1u << 24);
}

TEST(Limits, ImageSizeIsNamed) {
  auto img = hello();
  Limits l;
  l.max_image_bytes = img.size() - 1;
  for (auto s : {Strictness::kLenient, Strictness::kStrict}) {
    auto r = Image::parse(img, s, "big.beam", l);
    ASSERT_FALSE(r);
    EXPECT_EQ(kind_of(r.error()), ErrorKind::kLimitExceeded);
    EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
    EXPECT_THAT(r.error().to_string(), HasSubstr("max_image_bytes"));
    EXPECT_THAT(r.error().to_string(), HasSubstr("big.beam"));
  }
  l.max_image_bytes = img.size();
  EXPECT_TRUE(Image::parse(img, Strictness::kStrict, "big.beam", l));
}

TEST(Limits, ReadFileChecksTheSizeBeforeReading) {
  codestore::testing::TempDir dir;
  const std::string path = (dir / "big.beam").string();
  auto img = hello();
  img.resize(img.size() + 100000, 0);  // not a valid image either: the size check comes first
  codestore::testing::write_file(path, img);
  Limits l;
  l.max_image_bytes = 4096;
  auto r = Image::read_file(path, Strictness::kLenient, l);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r.error()), ErrorKind::kLimitExceeded);
  EXPECT_THAT(r.error().to_string(), HasSubstr("max_image_bytes"));
}

TEST(Limits, ChunkCountIsNamed) {
  auto chunks = codestore::testing::split_chunks(hello());
  ASSERT_FALSE(chunks.empty());
  for (int i = 0; i < 40; ++i) chunks.push_back({"Xtra", {static_cast<std::uint8_t>(i)}});
  const auto img = codestore::testing::join_chunks(chunks);
  Limits l;
  l.max_chunks = 32;
  for (auto s : {Strictness::kLenient, Strictness::kStrict}) {
    auto r = Image::parse(img, s, "many.beam", l);
    ASSERT_FALSE(r);
    EXPECT_EQ(kind_of(r.error()), ErrorKind::kLimitExceeded);
    EXPECT_THAT(r.error().to_string(), HasSubstr("max_chunks"));
  }
  l.max_chunks = 4096;
  EXPECT_TRUE(Image::parse(img, Strictness::kStrict, "many.beam", l));
}

TEST(Limits, AtomCountIsNamed) {
  std::vector<std::string> atoms = {"hello"};
  for (int i = 0; i < 100; ++i) atoms.push_back("a" + std::to_string(i));
  const auto img = with_chunk(codestore::testing::split_chunks(hello()), "AtU8", atu8(atoms));
  Limits l;
  l.max_atoms = 50;
  for (auto s : {Strictness::kLenient, Strictness::kStrict}) {
    auto parsed = Image::parse(img, s, "atoms.beam", l);
    // The container may parse; the atom table is read by the views.
    if (!parsed) {
      EXPECT_EQ(kind_of(parsed.error()), ErrorKind::kLimitExceeded) << parsed.error().to_string();
      EXPECT_THAT(parsed.error().to_string(), HasSubstr("max_atoms"));
      continue;
    }
    auto a = parsed->atoms();
    ASSERT_FALSE(a);
    EXPECT_EQ(kind_of(a.error()), ErrorKind::kLimitExceeded);
    EXPECT_THAT(a.error().to_string(), HasSubstr("max_atoms"));
  }
}

// A strict atom count that claims more atoms than the chunk has bytes must not reserve
// memory for them.
TEST(Limits, AtomCountThatLiesIsCorruption) {
  std::vector<std::uint8_t> d;
  put_u32(d, 100000000);  // 1e8 atoms in a 10-byte chunk
  d.push_back(5);
  for (char c : std::string("hello")) d.push_back(static_cast<std::uint8_t>(c));
  const auto img = with_chunk(codestore::testing::split_chunks(hello()), "AtU8", d);
  auto parsed = Image::parse(img, Strictness::kStrict, "lies.beam");
  if (parsed) {
    auto a = parsed->atoms();
    ASSERT_FALSE(a);
    EXPECT_THAT(a.error().code(), ::testing::AnyOf(Code::kCorruption, Code::kLimitExceeded));
  }
}

TEST(Limits, GzipBombStopsAtTheLimit) {
  // 300 MB of zeros in ~300 KB of gzip: above the default max_inflated_bytes (256 MB).
  const auto bomb = gzip_of_zeros(300u << 20);
  ASSERT_LT(bomb.size(), 1u << 20);
  auto g = codestore::image::maybe_gunzip(bomb, Limits().max_inflated_bytes);
  ASSERT_FALSE(g);
  EXPECT_EQ(kind_of(g.error()), ErrorKind::kLimitExceeded);
  EXPECT_THAT(g.error().to_string(), HasSubstr("max_inflated_bytes"));
  // Through the reader, the smaller of the image and inflation limits applies (64 MB).
  auto r = Image::parse(bomb, Strictness::kLenient, "bomb.beam.gz");
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r.error()), ErrorKind::kLimitExceeded);
  EXPECT_THAT(r.error().to_string(), HasSubstr("bomb.beam.gz"));
}

TEST(Limits, GzipJustUnderTheLimitInflates) {
  const auto small = gzip_of_zeros(4096);
  auto g = codestore::image::maybe_gunzip(small, 4096);
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->size(), 4096u);
  auto over = codestore::image::maybe_gunzip(small, 4095);
  ASSERT_FALSE(over);
  EXPECT_EQ(kind_of(over.error()), ErrorKind::kLimitExceeded);
}

// LitT declares its inflated size: a lie either way is refused, and a huge declared size
// is refused before any allocation.
TEST(Limits, LiteralTableDeclaredSizeLies) {
  const auto chunks = codestore::testing::split_chunks(hello());
  const std::vector<std::uint8_t> literals = {0, 0, 0, 1, 0, 0, 0, 2, 131, 100};  // count 1, a 2-byte term
  const auto packed = deflate_bytes(literals);
  struct Case {
    const char* name;
    std::uint32_t declared;
    const char* says;
  } cases[] = {
      {"too small", 3, "LitT"},
      {"too big", 4096, "LitT"},
      {"huge", 0x7fffffff, "max_inflated_bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::uint8_t> lit;
    put_u32(lit, c.declared);
    lit.insert(lit.end(), packed.begin(), packed.end());
    const auto img = with_chunk(chunks, "LitT", lit);
    auto parsed = Image::parse(img, Strictness::kStrict, "lit.beam");
    ASSERT_TRUE(parsed) << parsed.error().to_string();
    const auto verdict = parsed->check_loadable();
    EXPECT_FALSE(verdict.loadable);
    EXPECT_THAT(verdict.reason, HasSubstr(c.says));
  }
}

TEST(Limits, TermDepthIsNamedAndDoesNotOverflowTheStack) {
  // [[[[...]]]] one million deep: 131, then 1e6 times LIST_EXT of length 1, then NIL, tails NIL.
  constexpr std::size_t kDepth = 1000000;
  std::vector<std::uint8_t> b = {131};
  for (std::size_t i = 0; i < kDepth; ++i) b.insert(b.end(), {108, 0, 0, 0, 1});
  b.push_back(106);
  b.insert(b.end(), kDepth, 106);
  auto t = codestore::etf::decode(b);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Code::kLimitExceeded);
  EXPECT_THAT(t.error().message(), HasSubstr("max_depth"));

  codestore::etf::DecodeLimits deep;
  deep.max_depth = kDepth + 10;
  auto ok = codestore::etf::decode(b, deep);
  ASSERT_TRUE(ok) << ok.error().to_string();
  // Formatting, encoding and comparing a million-deep term must not recurse natively either.
  EXPECT_EQ(codestore::etf::encode(*ok).size(), b.size());
  EXPECT_EQ(codestore::etf::format_w(*ok).size(), 2 * kDepth + 2);
  EXPECT_TRUE(*ok == *ok);
}

TEST(Limits, TermCountIsNamed) {
  // A list that declares 2^31 elements in a few bytes: refused before allocating them.
  std::vector<std::uint8_t> b = {131, 108, 0x7f, 0xff, 0xff, 0xff, 106, 106};
  auto t = codestore::etf::decode(b);
  ASSERT_FALSE(t);
  EXPECT_THAT(t.error().code(), ::testing::AnyOf(Code::kLimitExceeded, Code::kCorruption));

  // 1000 small integers against max_terms = 100.
  std::vector<std::uint8_t> list = {131, 108, 0, 0, 0x03, 0xe8};
  for (int i = 0; i < 1000; ++i) list.insert(list.end(), {97, 1});
  list.push_back(106);
  codestore::etf::DecodeLimits l;
  l.max_terms = 100;
  auto small = codestore::etf::decode(list, l);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().code(), Code::kLimitExceeded);
  EXPECT_THAT(small.error().message(), HasSubstr("max_terms"));
  EXPECT_TRUE(codestore::etf::decode(list));
}

TEST(Limits, CompressedTermDeclaredSizeLies) {
  // term_to_binary(T, [compressed]): 131, 80, u32 uncompressed size, zlib data.
  std::vector<std::uint8_t> inner = {107, 0, 3, 1, 2, 3};  // STRING_EXT [1,2,3]
  const auto packed = deflate_bytes(inner);
  auto make = [&](std::uint32_t declared) {
    std::vector<std::uint8_t> b = {131, 80};
    put_u32(b, declared);
    b.insert(b.end(), packed.begin(), packed.end());
    return b;
  };
  ASSERT_TRUE(codestore::etf::decode(make(static_cast<std::uint32_t>(inner.size()))));
  for (std::uint32_t declared : {1u, 5u, 7u, 1000u}) {
    SCOPED_TRACE(declared);
    auto t = codestore::etf::decode(make(declared));
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code(), Code::kCorruption);
  }
  auto huge = codestore::etf::decode(make(0xffffffffu));
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code(), Code::kLimitExceeded);
  EXPECT_THAT(huge.error().message(), HasSubstr("max_inflated_bytes"));
}

TEST(Limits, CompressedTermBombStopsAtTheLimit) {
  // A compressed term that really inflates to 8 MB (a binary of zeros), against 1 MB.
  std::vector<std::uint8_t> inner = {109};
  put_u32(inner, 8u << 20);
  inner.resize(inner.size() + (8u << 20), 0);
  const auto packed = deflate_bytes(inner);
  std::vector<std::uint8_t> b = {131, 80};
  put_u32(b, static_cast<std::uint32_t>(inner.size()));
  b.insert(b.end(), packed.begin(), packed.end());
  codestore::etf::DecodeLimits l;
  l.max_inflated_bytes = 1u << 20;
  auto t = codestore::etf::decode(b, l);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Code::kLimitExceeded);
  EXPECT_THAT(t.error().message(), HasSubstr("max_inflated_bytes"));
  EXPECT_TRUE(codestore::etf::decode(b));
}

// Module names the reader can produce that are not valid atoms: invalid UTF-8 in AtU8 is
// refused at both levels; the longest name AtU8 can carry is 255 bytes.
TEST(Limits, ModuleNameMustBeValidUtf8) {
  const auto chunks = codestore::testing::split_chunks(hello());
  const auto img = with_chunk(chunks, "AtU8",
                              atu8({"hel\xff\xfelo", "world", "hello_world", "io", "format", "module_info",
                                    "erlang", "get_module_info"}));
  for (auto s : {Strictness::kLenient, Strictness::kStrict}) {
    auto parsed = Image::parse(img, s, "bad.beam");
    if (!parsed) {
      EXPECT_EQ(parsed.error().code(), Code::kCorruption);
      continue;
    }
    auto m = parsed->module();
    ASSERT_FALSE(m);
    EXPECT_THAT(m.error().to_string(), HasSubstr("UTF-8"));
  }
}

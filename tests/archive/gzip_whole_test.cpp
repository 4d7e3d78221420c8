// The libdeflate fast path alone (archive/gzip_whole.h), on gzip streams gzip(1) writes from a
// tar of OTP's own files, and on the same streams with a trailer that lies, cut short,
// concatenated, or a bomb: it inflates exactly what `gzip -dc` gives, or declines (nullopt)
// and leaves the stream to GzipReader; it never holds more than its bound.
#include "archive/gzip_whole.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gzip_bomb.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::archive::internal {
namespace {

namespace fs = std::filesystem;
using codestore::testing::BombEnd;
using codestore::testing::gzip_bomb;
using codestore::testing::read_file;
using codestore::testing::TempDir;
using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(const Inflated& in) {
  return Bytes(in.data.get(), in.data.get() + in.size);
}

fs::path stdlib_ebin() {
  for (const auto& e : fs::directory_iterator("/usr/lib/erlang/lib")) {
    if (e.path().filename().string().starts_with("stdlib-")) return e.path() / "ebin";
  }
  ADD_FAILURE() << "no stdlib in /usr/lib/erlang/lib";
  return {};
}

// A tar of real files (a few of stdlib's beams and its .app) in dir/a.tar, and gzip(1)'s
// compression of it in dir/a.tar.gz.
void make_tar_gz(const TempDir& dir) {
  const std::string tar = (dir / "a.tar").string();
  ASSERT_EQ(std::system(("tar cf " + tar + " -C " + stdlib_ebin().string() +
                         " lists.beam gen_server.beam stdlib.app && gzip -k " + tar)
                            .c_str()),
            0);
}

void set_isize(Bytes& gz, std::uint32_t isize) {
  for (int i = 0; i < 4; ++i) gz[gz.size() - 4 + i] = static_cast<std::uint8_t>(isize >> (8 * i));
}

TEST(GzipWhole, InflatesWhatGzipWroteExactly) {
  TempDir dir;
  make_tar_gz(dir);
  const Bytes tar = read_file(dir / "a.tar");
  const Bytes gz = read_file(dir / "a.tar.gz");
  auto whole = inflate_whole(gz, UINT64_MAX);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(bytes_of(*whole) == tar);
  // The bound holds exactly: the tar's size is enough, one byte less is not.
  EXPECT_TRUE(inflate_whole(gz, tar.size()));
  EXPECT_FALSE(inflate_whole(gz, tar.size() - 1));
}

TEST(GzipWhole, ConcatenatedMembersAreOneStream) {
  // As gzip -d reads them: the buffer starts at the last member's ISIZE and grows, so a last
  // member much smaller than the rest, and empty members, must work too.
  TempDir dir;
  make_tar_gz(dir);
  const std::string tar = (dir / "a.tar").string();
  ASSERT_EQ(std::system(("head -c 150000 " + tar + " | gzip > " + tar + ".1 && " + "tail -c +150001 " + tar +
                         " | head -c 100 | gzip > " + tar + ".2 && " + "tail -c +150101 " + tar +
                         " | gzip > " + tar + ".3 && gzip < /dev/null > " + tar + ".0")
                            .c_str()),
            0);
  const Bytes whole_tar = read_file(tar);
  Bytes joined;
  for (const char* part : {".0", ".1", ".0", ".2", ".3", ".0"}) {
    const Bytes p = read_file(tar + part);
    joined.insert(joined.end(), p.begin(), p.end());
  }
  auto whole = inflate_whole(joined, UINT64_MAX);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(bytes_of(*whole) == whole_tar);
  EXPECT_FALSE(inflate_whole(joined, whole_tar.size() - 1));
  // Anything after the last member but another member: declined (GzipReader names it).
  for (const Bytes& tail : {Bytes{'x'}, Bytes(30, 0), Bytes{0x1f, 0x8b}}) {
    Bytes trailing = joined;
    trailing.insert(trailing.end(), tail.begin(), tail.end());
    EXPECT_FALSE(inflate_whole(trailing, UINT64_MAX)) << tail.size();
  }
}

TEST(GzipWhole, TrailerThatLiesIsDeclined) {
  TempDir dir;
  make_tar_gz(dir);
  const Bytes gz = read_file(dir / "a.tar.gz");
  const auto size = static_cast<std::uint32_t>(read_file(dir / "a.tar").size());
  // ISIZE smaller (the buffer is too small: libdeflate stops at its end), larger (within the
  // bound: libdeflate checks ISIZE), far larger (over the bound: nothing is allocated), and a
  // CRC-32 that does not match.
  for (const std::uint32_t isize : {0u, 100u, size - 1, size + 1, size + 1000, 0xffffffffu}) {
    Bytes lie = gz;
    set_isize(lie, isize);
    EXPECT_FALSE(inflate_whole(lie, UINT64_MAX)) << isize;
  }
  Bytes bad_crc = gz;
  bad_crc[gz.size() - 8] ^= 0x01;
  EXPECT_FALSE(inflate_whole(bad_crc, UINT64_MAX));
}

TEST(GzipWhole, EveryCutIsDeclined) {
  TempDir dir;
  make_tar_gz(dir);
  const Bytes gz = read_file(dir / "a.tar.gz");
  for (std::size_t n = 0; n < gz.size(); n += (n + 64 < gz.size() ? 997 : 1)) {
    EXPECT_FALSE(inflate_whole(Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(n)), UINT64_MAX))
        << "cut at " << n << " of " << gz.size();
  }
}

TEST(GzipWhole, BombIsDeclinedWithinItsBound) {
  // The stream is good: zlib inflates it, CRC-32 and length checked.
  const Bytes small = gzip_bomb({}, 2, BombEnd::kHonest);
  Bytes out(3 << 20);
  z_stream zs{};
  ASSERT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = const_cast<Bytef*>(small.data());
  zs.avail_in = static_cast<uInt>(small.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  EXPECT_EQ(zs.total_out, 2u << 20);
  inflateEnd(&zs);
  // Zeros shrink a thousandfold, past kMaxWholeRatio: declined from the trailer alone, with
  // any bound the limits give.
  ASSERT_GT(std::uint64_t{2} << 20, small.size() * kMaxWholeRatio);
  EXPECT_FALSE(inflate_whole(small, UINT64_MAX));
  // 4 GiB and 1 MiB, whose ISIZE says 1 MiB: the buffer grows from 1 MiB up to its bound
  // (kMaxWholeRatio times the file, a few tens of MB) and stops there.
  const Bytes wrapped = gzip_bomb({}, 4 * 1024 + 1, BombEnd::kHonest);
  ASSERT_LT(wrapped.size(), 8u << 20);
  EXPECT_FALSE(inflate_whole(wrapped, UINT64_MAX));
}

}  // namespace
}  // namespace codestore::archive::internal

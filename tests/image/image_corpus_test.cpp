// Every installed image (OTP's and Elixir's ebin directories): our md5 equals beam_lib's,
// our loader verdict equals erlang:prepare_loading/2's, every image rebuilds byte for byte
// from its chunks; on a sample, strip/cmp and the chunk terms equal beam_lib's.
//
// Installed images may be gzip-wrapped (Debian's erlang-idna installs some so; beam_lib and
// the loader unwrap them): the corpus is the installed images plus gzip-wrapped copies of
// every 10th, made here, so that every machine tests what such a machine sees.
#include <codestore/image.h>
#include <codestore/term.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "image/damage.h"
#include "image/image_test_util.h"

namespace codestore::testing {
namespace {

using image::Image;
using image::Strictness;

class ImageCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    files_ = real_images();
    if (files_.size() < 100) GTEST_SKIP() << "Erlang/OTP's images are not installed";
    gzipped_ = gzipped_copies(files_, 10, (dir_ / "gzip").string());
    files_.insert(files_.end(), gzipped_.begin(), gzipped_.end());
  }
  // Writes `paths` one per line to a file in dir_ and returns its path.
  std::string list_file(const std::vector<std::string>& paths, const std::string& name) {
    std::ofstream out((dir_ / name).string());
    for (const auto& p : paths) out << p << "\n";
    return (dir_ / name).string();
  }
  // Every `step`-th image.
  std::vector<std::string> sample(std::size_t step) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < files_.size(); i += step) out.push_back(files_[i]);
    return out;
  }

  TempDir dir_;
  std::vector<std::string> files_;    // installed, then gzipped_
  std::vector<std::string> gzipped_;  // gzip-wrapped copies made in dir_
};

// A gzip-wrapped image rebuilds to its inner IFF bytes (the wrapping is not a chunk), which
// zlib itself inflates from the file.
TEST_F(ImageCorpus, EveryImageRebuildsByteForByte) {
  std::size_t same = 0, wrapped = 0;
  for (const auto& path : files_) {
    const auto bytes = read_file(path);
    auto img = Image::parse(bytes, Strictness::kLenient, path);
    ASSERT_TRUE(img) << img.error().to_string();
    EXPECT_EQ(img->gzipped(), is_gzip(bytes)) << path;
    const auto iff = is_gzip(bytes) ? gunzip_bytes(bytes) : std::optional(bytes);
    ASSERT_TRUE(iff) << path << ": not whole gzip";
    EXPECT_TRUE(std::equal(img->bytes().begin(), img->bytes().end(), iff->begin(), iff->end())) << path;
    auto chunks = img->all_chunks();
    ASSERT_TRUE(chunks) << chunks.error().to_string();
    auto built = image::build_module(*chunks);
    ASSERT_TRUE(built);
    EXPECT_EQ(*built, *iff) << path;
    same += *built == *iff;
    wrapped += img->gzipped();
  }
  EXPECT_GE(wrapped, gzipped_.size());
  RecordProperty("rebuilt_identical", static_cast<int>(same));
  std::cout << same << "/" << files_.size() << " images rebuild byte for byte (" << wrapped
            << " of them gzip-wrapped: their inner image)\n";
}

TEST_F(ImageCorpus, Md5AndLoadVerdictEqualErlangs) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  bool ok = false;
  auto rows = ask_erlang("md5load " + list_file(files_, "all"), (dir_ / "erl.log").string(), &ok);
  ASSERT_TRUE(ok) << std::ifstream((dir_ / "erl.log").string()).rdbuf();
  ASSERT_EQ(rows.size(), files_.size());
  std::size_t md5_equal = 0, load_equal = 0, strict_ok = 0;
  for (std::size_t i = 0; i < files_.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 3u);
    ASSERT_EQ(rows[i][0], files_[i]);
    const auto bytes = read_file(files_[i]);
    auto img = Image::parse(bytes, Strictness::kLenient, files_[i]);
    ASSERT_TRUE(img) << img.error().to_string();
    auto md5 = img->md5();
    ASSERT_TRUE(md5) << md5.error().to_string();
    EXPECT_EQ(image::md5_hex(*md5), rows[i][1]) << files_[i];
    md5_equal += image::md5_hex(*md5) == rows[i][1];
    auto strict = Image::parse(bytes, Strictness::kStrict, files_[i]);
    strict_ok += strict.has_value();
    const auto verdict = img->check_loadable();
    EXPECT_EQ(verdict.loadable ? "ok" : "badfile", rows[i][2]) << files_[i] << ": " << verdict.reason;
    load_equal += (verdict.loadable ? "ok" : "badfile") == rows[i][2];
    if (strict) {
      auto smd5 = strict->md5();  // the loader's definition agrees on well-formed images
      EXPECT_TRUE(smd5 && *smd5 == *md5) << files_[i];
    }
  }
  std::cout << md5_equal << "/" << files_.size() << " md5 equal, " << load_equal << "/" << files_.size()
            << " load verdicts equal, " << strict_ok << " parse strictly\n";
  RecordProperty("md5_equal", static_cast<int>(md5_equal));
  RecordProperty("load_equal", static_cast<int>(load_equal));
}

TEST_F(ImageCorpus, StripEqualsBeamLibs) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  const auto files = sample(10);
  bool ok = false;
  auto rows = ask_erlang("strip " + list_file(files, "strip") + " " + dir_.path().string(),
                         (dir_ / "erl.log").string(), &ok);
  ASSERT_TRUE(ok) << std::ifstream((dir_ / "erl.log").string()).rdbuf();
  ASSERT_EQ(rows.size(), files.size());
  std::size_t gzip_identical = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    ASSERT_EQ(rows[i][2], "ok") << files[i];
    auto img = Image::read_file(files[i], Strictness::kLenient);
    ASSERT_TRUE(img);
    auto ours = image::strip(*img);
    auto ours_raw = image::strip(*img, {}, /*raw=*/true);
    ASSERT_TRUE(ours && ours_raw);
    const auto theirs = read_file((dir_ / rows[i][0]).string() + ".beam");
    auto theirs_raw = image::maybe_gunzip(theirs, 64u << 20);
    ASSERT_TRUE(theirs_raw);
    EXPECT_EQ(*ours_raw, *theirs_raw) << files[i];
    gzip_identical += *ours == theirs;
    // The stripped image keeps the md5.
    auto stripped = Image::parse(*ours, Strictness::kLenient);
    ASSERT_TRUE(stripped);
    EXPECT_EQ(*stripped->md5(), *img->md5());
  }
  std::cout << files.size() << " stripped images equal beam_lib's; " << gzip_identical
            << " also as identical gzip bytes\n";
  EXPECT_EQ(gzip_identical, files.size());
}

TEST_F(ImageCorpus, CmpEqualsBeamLibs) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  const auto files = sample(20);
  std::string pairs;
  std::vector<std::pair<std::string, std::string>> cases;
  auto add_pair = [&](const std::string& a, const std::string& b) {
    cases.emplace_back(a, b);
    pairs += a + "\t" + b + "\n";
  };
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto bytes = read_file(files[i]);
    const auto iff = is_gzip(bytes) ? gunzip_bytes(bytes) : std::optional(bytes);  // variants are plain IFF
    ASSERT_TRUE(iff) << files[i];
    auto chunks = split_chunks(*iff);
    ASSERT_GT(chunks.size(), 2u) << files[i];
    const std::string base = (dir_ / std::to_string(i)).string();
    auto variant = [&](const std::string& suffix, auto&& edit) {
      auto cs = chunks;
      edit(cs);
      write_file(base + suffix, join_chunks(cs));
      return base + suffix;
    };
    add_pair(files[i], files[i]);                       // ok
    add_pair(files[i], files[(i + 1) % files.size()]);  // modules_different
    add_pair(files[i], variant("cinf", [](auto& cs) {   // ok: CInf is ignored
               for (auto& c : cs) {
                 if (c.id == "CInf") c.data = {131, 106};
               }
             }));
    add_pair(files[i], variant("code", [](auto& cs) {  // chunks_different
               for (auto& c : cs) {
                 if (c.id == "Code") c.data.back() ^= 1;
               }
             }));
    add_pair(files[i], variant("fewer", [](auto& cs) { cs.pop_back(); }));            // different_chunks
    add_pair(files[i], variant("order", [](auto& cs) { std::swap(cs[1], cs[2]); }));  // different_chunks
  }
  std::ofstream((dir_ / "pairs").string()) << pairs;
  bool ok = false;
  auto rows = ask_erlang("cmp " + (dir_ / "pairs").string(), (dir_ / "erl.log").string(), &ok);
  ASSERT_TRUE(ok) << std::ifstream((dir_ / "erl.log").string()).rdbuf();
  ASSERT_EQ(rows.size(), cases.size());
  std::map<std::string, int> kinds;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto a = Image::read_file(cases[i].first, Strictness::kLenient);
    auto b = Image::read_file(cases[i].second, Strictness::kLenient);
    ASSERT_TRUE(a && b);
    const std::string ours = verdict(image::cmp(*a, *b));
    EXPECT_EQ(ours, rows[i][2]) << cases[i].first << " vs " << cases[i].second;
    ++kinds[ours];
  }
  EXPECT_GT(kinds["ok"], 0);
  EXPECT_GT(kinds["modules_different"], 0);
  EXPECT_GT(kinds["chunks_different"], 0);
  EXPECT_GT(kinds["different_chunks"], 0);
}

// The chunk terms (beam_lib:chunks/2 per name), printed with ~w, equal Erlang's text.
TEST_F(ImageCorpus, ChunkTermsEqualBeamLibs) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  const auto files = sample(25);
  bool ok = false;
  auto rows = ask_erlang("terms " + list_file(files, "terms"), (dir_ / "erl.log").string(), &ok);
  ASSERT_TRUE(ok) << std::ifstream((dir_ / "erl.log").string()).rdbuf();
  std::size_t equal = 0;
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 3u);
    auto img = Image::read_file(row[0], Strictness::kLenient);
    ASSERT_TRUE(img);
    auto term = img->chunk_term(row[1]);
    // The Status's reason is the atom beam_lib answers.
    const std::string ours =
        term ? etf::format_w(*term) : "{error," + std::string(term.error().reason()) + "}";
    EXPECT_EQ(ours, row[2]) << row[0] << " " << row[1];
    equal += ours == row[2];
  }
  std::cout << equal << "/" << rows.size() << " chunk terms equal beam_lib's\n";
}

}  // namespace
}  // namespace codestore::testing

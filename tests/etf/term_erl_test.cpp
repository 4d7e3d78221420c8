// The codec against Erlang itself: `erl` (through term_truth.escript) says what
// term_to_binary writes and what io_lib:format("~tw", ...) prints, for tricky terms and for
// the terms inside every real image installed on this machine. Skipped without `erl`.
#include <codestore/term.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/gzip_util.h"
#include "etf/term_internal.h"
#include "support/corpus.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::etf {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

const std::string kScript = std::string(CODESTORE_SOURCE_DIR) + "/tests/etf/term_truth.escript";

bool have_erl() {
  return std::system("command -v escript >/dev/null 2>&1") == 0;
}

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[65536];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << command;
  return out;
}

Bytes unhex(const std::string& h) {
  Bytes b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    b.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return b;
}

// The chunks of an IFF image, as (id, data); enough for the real images this test reads.
std::vector<std::pair<std::string, Bytes>> chunks_of(const Bytes& img) {
  std::vector<std::pair<std::string, Bytes>> out;
  auto u32 = [&](std::size_t at) {
    return (std::uint32_t{img[at]} << 24) | (std::uint32_t{img[at + 1]} << 16) |
           (std::uint32_t{img[at + 2]} << 8) | img[at + 3];
  };
  for (std::size_t pos = 12; pos + 8 <= img.size();) {
    std::string id(img.begin() + static_cast<std::ptrdiff_t>(pos),
                   img.begin() + static_cast<std::ptrdiff_t>(pos + 4));
    std::size_t size = u32(pos + 4);
    if (pos + 8 + size > img.size()) break;
    out.emplace_back(id, Bytes(img.begin() + static_cast<std::ptrdiff_t>(pos + 8),
                               img.begin() + static_cast<std::ptrdiff_t>(pos + 8 + size)));
    pos += 8 + ((size + 3) & ~std::size_t{3});
  }
  return out;
}

// The literals of a LitT chunk: u32 size + zlib(u32 count, {u32 len, ETF}...).
std::vector<Bytes> literals_of(const Bytes& litt) {
  std::vector<Bytes> out;
  if (litt.size() < 4) return out;
  uLongf size = (uLongf{litt[0]} << 24) | (uLongf{litt[1]} << 16) | (uLongf{litt[2]} << 8) | litt[3];
  Bytes raw(size);
  if (uncompress(raw.data(), &size, litt.data() + 4, static_cast<uLong>(litt.size() - 4)) != Z_OK) return out;
  std::size_t pos = 4;
  while (pos + 4 <= raw.size()) {
    std::size_t len = (std::size_t{raw[pos]} << 24) | (std::size_t{raw[pos + 1]} << 16) |
                      (std::size_t{raw[pos + 2]} << 8) | raw[pos + 3];
    pos += 4;
    out.emplace_back(raw.begin() + static_cast<std::ptrdiff_t>(pos),
                     raw.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
  }
  return out;
}

TEST(TermErl, TrickyTermsMatchErlang) {
  if (!have_erl()) GTEST_SKIP() << "erl is not installed";
  const std::vector<std::string> exprs = {
      "0",
      "255",
      "256",
      "-1",
      "2147483647",
      "2147483648",
      "-2147483648",
      "-2147483649",
      "1 bsl 63",
      "-(1 bsl 63)",
      "(1 bsl 63) - 1",
      "1 bsl 64",
      "-(1 bsl 2040)",
      "1 bsl 2048",
      "123456789012345678901234567890",
      "1.0",
      "0.1",
      "-0.0",
      "0.0",
      "1.0e10",
      "1.0e-5",
      "0.0001",
      "0.001",
      "100.0",
      "1000.0",
      "10000.0",
      "1.0e15",
      "1.0e16",
      "123456789.0",
      "1.2345678901234567e20",
      "1.0e21",
      "1.0e22",
      "5.0e-324",
      "1.7976931348623157e308",
      "2.2250738585072014e-308",
      "0.30000000000000004",
      "3.14159",
      "-2.5e-7",
      "1.0e100",
      "9007199254740993.0",
      "abc",
      "'Abc'",
      "'foo bar'",
      "'after'",
      "'and'",
      "'cond'",
      "'let'",
      "'maybe'",
      "'else'",
      "'catch'",
      "'a-b'",
      "'a\\nb'",
      "'\\''",
      "'\\\\'",
      "'\\t\\r\\v\\b\\f\\e\\d'",
      "'\\x{80}\\x{9f}'",
      "'\\x{a0}'",
      "'é'",
      "'ß'",
      "'Ä'",
      "'aÄ'",
      "'a×'",
      "'a÷'",
      "'÷'",
      "'日本'",
      "'a\\x{10000}'",
      "''",
      "'a@b'",
      "'_'",
      "'A_1'",
      "a_1@B",
      "[]",
      "{}",
      "#{}",
      "<<>>",
      "[1,2,3]",
      "\"abc\"",
      "[a|b]",
      "[1,2|3]",
      "[[]]",
      "[\"\"|\"\"]",
      "{a,{b,[c]}}",
      "<<1,2,3>>",
      "<<\"abc\">>",
      "<<1,5:3>>",
      "<<5:3>>",
      "<<255,1:1>>",
      "<<0:7>>",
      "#{a => 1}",
      "#{1 => a, 1.0 => b, -1 => c, a => d, {x} => e, [] => f, [1] => g, <<>> => h, #{} => i}",
      "#{{a,b} => 1, {b} => 2, {a} => 3}",
      "#{[1,2] => a, [1|2] => b, [1] => c, [2] => d}",
      "#{<<1>> => a, <<1,2>> => b, <<2>> => c, <<1:3>> => d, <<1:1>> => e}",
      "#{1 bsl 70 => a, -(1 bsl 70) => b, 3 => c, 1.0e30 => d, 2.0 => e}",
      "#{#{a => 1} => 1, #{b => 1} => 2, #{a => 2} => 3, #{} => 4, #{a => 1, b => 2} => 5}",
      "#{b => 1, a => 2, aa => 3, 'B' => 4, 'é' => 5, '日' => 6}",
      "maps:from_list([{I, I} || I <- lists:seq(1, 33)])",
      "maps:from_list([{integer_to_list(I), {I}} || I <- lists:seq(1, 100)])",
      "maps:from_list([{I, #{I => [I]}} || I <- lists:seq(1, 40)])",
      "list_to_tuple(lists:seq(1, 300))",
      "lists:seq(1, 300)",
      "lists:duplicate(70000, 1)",
      "fun lists:map/2",
      "fun 'a b':'C'/0",
      "self()",
      "make_ref()",
      "hd(erlang:ports())",
      "{self(), [make_ref()]}",
      "fun() -> ok end",
      "fun(X) -> X + 1 end",
      "begin Y = {1, \"é\"}, fun(X) -> {X, Y} end end",
      "[{attributes, [{vsn, [1 bsl 100]}]}, {options, [debug_info, {d, 'X', \"y\"}]}]",
      // Thousands of floats: random bit patterns, and random magnitudes.
      "begin rand:seed(exsss, 7), [F || <<F:64/float>> <= rand:bytes(8 * 4000)] end",
      "begin rand:seed(exsss, 8), [(rand:uniform_real() - 0.5) * math:pow(10, rand:uniform(600) - 300)"
      " || _ <- lists:seq(1, 4000)] end",
      "[float(X) || X <- lists:seq(-1100, 1100)] ++ [X / 7 || X <- lists:seq(1, 500)]",
  };
  const codestore::testing::TempDir tmp;
  const fs::path input = tmp / "term_exprs.txt";
  {
    std::ofstream o(input);
    for (const auto& e : exprs) o << e << "\n";
  }
  std::string out = run("escript " + kScript + " exprs " + input.string());
  std::istringstream lines(out);
  std::string bin_hex, text_hex, v0_hex, v2_hex;
  std::size_t i = 0;
  while (lines >> bin_hex >> text_hex >> v0_hex >> v2_hex) {
    ASSERT_LT(i, exprs.size());
    Bytes bytes = unhex(bin_hex);
    Bytes text = unhex(text_hex);
    auto t = decode(bytes);
    ASSERT_TRUE(t.has_value()) << exprs[i] << ": " << t.error().to_string();
    EXPECT_EQ(format_w(*t), std::string(text.begin(), text.end())) << exprs[i];
    EXPECT_EQ(encode(*t, EncodeOptions{1}), bytes) << exprs[i];  // OTP 25's term_to_binary/1
    EXPECT_EQ(encode(*t, EncodeOptions{0}), unhex(v0_hex)) << exprs[i];
    EXPECT_EQ(encode(*t), unhex(v2_hex)) << exprs[i];
    ++i;
  }
  EXPECT_EQ(i, exprs.size());
}

// Term order: a mixed list sorted by internal::compare_order prints as lists:sort/1 sorts
// it (no two elements are == without being =:=, where a stable sort could differ).
TEST(TermErl, TermOrderMatchesListsSort) {
  if (!have_erl()) GTEST_SKIP() << "erl is not installed";
  const std::string list =
      "[b, 1, 2.5, -1, 1 bsl 70, -(1 bsl 70), a, 'B', 'é', '日', {}, {a}, {a, b}, {b}, {1, 2, 3}, [], [a], "
      "[a | b],"
      " [a, b], [b], \"abc\", \"ab\", <<>>, <<1>>, <<1, 2>>, <<2>>, <<1:3>>, <<0:1>>, #{}, #{a => 1}, #{a => "
      "2},"
      " #{b => 0}, #{a => 1, b => 2}, #{1 => x}, #{1.5 => x}, self(), make_ref(), fun lists:map/2, fun "
      "erlang:abs/1,"
      " hd(erlang:ports()), 0.5, -0.5, 1.0e300, [{x, [1 | 2]}], [{x, [1, 2]}], {[1], 2}, {[1 | 2], 1}]";
  const codestore::testing::TempDir tmp;
  const fs::path input = tmp / "term_order.txt";
  {
    std::ofstream o(input);
    o << "begin L = " << list << ", {L, lists:sort(L)} end\n";
  }
  std::string out = run("escript " + kScript + " exprs " + input.string());
  std::istringstream lines(out);
  std::string bin_hex, text_hex, v0, v2;
  ASSERT_TRUE(lines >> bin_hex >> text_hex >> v0 >> v2);
  auto t = decode(unhex(bin_hex));
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  ASSERT_TRUE(t->as_tuple() != nullptr && t->as_tuple()->elements.size() == 2);
  auto elements = t->as_tuple()->elements[0].list_elements();
  ASSERT_TRUE(elements.has_value());
  std::stable_sort(elements->begin(), elements->end(),
                   [](const Term& x, const Term& y) { return internal::compare_order(x, y) < 0; });
  EXPECT_EQ(format_w(Term::list(*elements)), format_w(t->as_tuple()->elements[1]));
}

// Attr, CInf, Meta and the LitT literals of every installed image, and of gzip-wrapped copies
// of every 10th (installed images may be gzip-wrapped, as Debian's erlang-idna installs
// them; the terms are those of the inflated image): decode, re-encode byte
// for byte (term_to_binary wrote them uncompressed), and print exactly as Erlang does.
// Dbgi (compressed abstract code) of every 10th image: decodes and prints as Erlang does.
// A map of more than 32 pairs prints in erts's hash order; format_w reproduces it only for
// the order term_to_binary/1 writes (its exact reverse), not for `deterministic` output,
// which the compiler uses for LitT.
bool has_hashmap(const Term& t) {
  if (const auto* m = std::get_if<Map>(&t.value())) {
    if (m->pairs.size() > 32) return true;
    for (const auto& [k, v] : m->pairs) {
      if (has_hashmap(k) || has_hashmap(v)) return true;
    }
  } else if (const auto* l = t.as_list()) {
    for (const auto& e : l->elements) {
      if (has_hashmap(e)) return true;
    }
    return l->tail != nullptr && has_hashmap(*l->tail);
  } else if (const auto* u = t.as_tuple()) {
    for (const auto& e : u->elements) {
      if (has_hashmap(e)) return true;
    }
  }
  return false;
}

// Every 10th image's Dbgi by default; CODESTORE_TERM_DBGI_STEP=1 checks them all (slow).
std::size_t dbgi_step() {
  const char* s = std::getenv("CODESTORE_TERM_DBGI_STEP");
  std::size_t step = s != nullptr ? std::strtoul(s, nullptr, 10) : 10;
  return step == 0 ? 10 : step;
}

TEST(TermErl, RealImageTermsMatchErlang) {
  if (!have_erl()) GTEST_SKIP() << "erl is not installed";
  auto files = codestore::testing::real_images();
  if (files.empty()) GTEST_SKIP() << "no installed images";
  const codestore::testing::TempDir tmp;
  const auto copies = codestore::testing::gzipped_copies(files, 10, tmp.path());
  files.insert(files.end(), copies.begin(), copies.end());
  std::string list, dbgi_list;
  for (std::size_t i = 0; i < files.size(); ++i) {
    list += " " + files[i];
    if (i % dbgi_step() == 0) dbgi_list += " " + files[i];
  }
  std::string out = run("escript " + kScript + " chunks Attr CInf Meta LitT --" + list) +
                    run("escript " + kScript + " chunks Dbgi --" + dbgi_list);
  std::map<std::pair<std::string, std::string>, std::pair<std::size_t, std::uint32_t>> truth;
  std::istringstream lines(out);
  std::string file, id;
  std::size_t size;
  std::uint32_t crc;
  while (lines >> file >> id >> size >> crc) truth[{file, id}] = {size, crc};

  std::size_t checked = 0, reencoded = 0, wrapped = 0;
  std::set<std::string> hashmaps;  // file names: a gzip-wrapped copy has its original's
  for (const auto& f : files) {
    const auto image = codestore::testing::unwrapped_image(f);
    ASSERT_TRUE(image) << f << ": not whole gzip";
    wrapped += codestore::testing::is_gzip(codestore::testing::read_file(f));
    for (const auto& [cid, data] : chunks_of(*image)) {
      auto it = truth.find({f, cid});
      if (it == truth.end()) continue;
      std::string text;
      bool skip_text = false;
      if (cid == "LitT") {
        for (const Bytes& lit : literals_of(data)) {
          auto t = decode(lit);
          ASSERT_TRUE(t.has_value()) << f << " LitT: " << t.error().to_string();
          EXPECT_EQ(encode(*t), lit) << f << " LitT literal " << format_w(*t);  // {minor_version, 2}
          text += format_w(*t) + "\n";
          skip_text = skip_text || has_hashmap(*t);
        }
      } else {
        auto t = decode(data);
        ASSERT_TRUE(t.has_value()) << f << " " << cid << ": " << t.error().to_string();
        if (cid != "Dbgi") {
          EXPECT_EQ(encode(*t, EncodeOptions{1}), data) << f << " " << cid;
          ++reencoded;
        }
        text = format_w(*t);
      }
      ++checked;
      if (skip_text) {
        hashmaps.insert(fs::path(f).filename().string());
        continue;
      }
      std::uint32_t mine = static_cast<std::uint32_t>(
          crc32(0, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
      EXPECT_EQ(text.size(), it->second.first) << f << " " << cid << (text.size() < 2000 ? ": " + text : "");
      EXPECT_EQ(mine, it->second.second) << f << " " << cid << (text.size() < 2000 ? ": " + text : "");
    }
  }
  EXPECT_EQ(checked, truth.size());
  EXPECT_GT(wrapped, files.size() / 11);  // the copies made above, at least
  EXPECT_GT(reencoded, files.size());
  EXPECT_LE(hashmaps.size(), 2u);  // ssl.beam and Elixir.String.Tokenizer.beam on OTP 25
}

}  // namespace
}  // namespace codestore::etf

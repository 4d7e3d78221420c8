// The loader verdict against Erlang's: `on_load` (the module has an -on_load function) for
// modules compiled with erlc at test time and for every installed image
// (erlang:has_prepared_code_on_load/1), and the terms the loader decodes (Attr, CInf and
// LitT literals: the fast pre-check that spares the decoder must agree with it exactly).
// Without Erlang/OTP the comparisons skip; the expected verdicts are also written down.
#include <codestore/image.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "image/damage.h"
#include "image/image_test_util.h"
#include "image/loadable_internal.h"  // table_head_checks

namespace codestore::testing {
namespace {

using image::Image;
using image::Strictness;
using Bytes = std::vector<std::uint8_t>;

bool have_erlc() {
  return std::system("command -v erlc >/dev/null 2>&1") == 0;
}
bool have_erl() {
  return std::system("command -v erl >/dev/null 2>&1") == 0;
}

// Compiles `source` as `module`.erl in `dir` with erlc; the image, or empty on failure.
Bytes compile(const TempDir& dir, const std::string& module, const std::string& source) {
  const std::string erl = (dir / module).string() + ".erl";
  std::ofstream(erl) << source;
  bool ok = false;
  run("erlc +deterministic -o '" + dir.path().string() + "' '" + erl + "' 2>&1", &ok);
  EXPECT_TRUE(ok) << "erlc failed on " << erl;
  return ok ? read_file((dir / module).string() + ".beam") : Bytes{};
}

const char* const kOnLoadSource =
    "-module(ol).\n-export([start/0]).\n-on_load(init/0).\n"
    "init() -> ok.\nstart() -> ok.\n";

TEST(ImageOnLoad, CompiledOnLoadModuleReportsIt) {
  if (!have_erlc()) GTEST_SKIP() << "erlc (Erlang/OTP) is not installed: no module with -on_load to test";
  TempDir dir;
  const Bytes b = compile(dir, "ol", kOnLoadSource);
  ASSERT_FALSE(b.empty());
  for (Strictness s : {Strictness::kStrict, Strictness::kLenient}) {
    auto img = Image::parse(b, s, "ol.beam");
    ASSERT_TRUE(img) << img.error().to_string();
    auto v = img->check_loadable();
    EXPECT_TRUE(v.loadable) << v.reason;
    EXPECT_TRUE(v.on_load);
  }
  // The same module without the attribute.
  const Bytes plain =
      compile(dir, "ol", "-module(ol).\n-export([init/0, start/0]).\ninit() -> ok.\nstart() -> ok.\n");
  ASSERT_FALSE(plain.empty());
  auto v = Image::parse(plain, Strictness::kStrict, "ol.beam")->check_loadable();
  EXPECT_TRUE(v.loadable) << v.reason;
  EXPECT_FALSE(v.on_load);
}

// OTP 25's loader marks the on_load function at each on_load instruction (emu_load.c,
// the JIT's emit_on_load): a second one is not an error. Checked against erl too.
TEST(ImageOnLoad, SecondOnLoadInstructionIsNotAnError) {
  if (!have_erlc()) GTEST_SKIP() << "erlc (Erlang/OTP) is not installed: no module with -on_load to test";
  TempDir dir;
  const Bytes b = compile(dir, "ol", kOnLoadSource);
  ASSERT_FALSE(b.empty());
  auto chunks = split_chunks(b);
  bool inserted = false;
  for (auto& c : chunks) {
    if (c.id != "Code") continue;
    // init/0's entry label (label 2: opcode 1, operand u 2) and its on_load (149).
    const std::vector<std::uint8_t> entry = {1, 0x20, 149};
    auto at = std::search(c.data.begin(), c.data.end(), entry.begin(), entry.end());
    ASSERT_NE(at, c.data.end()) << "no on_load after label 2";
    c.data.insert(at + 3, 149);
    inserted = true;
  }
  ASSERT_TRUE(inserted);
  const Bytes twice = join_chunks(chunks);
  auto v = Image::parse(twice, Strictness::kStrict, "ol.beam")->check_loadable();
  EXPECT_TRUE(v.loadable) << v.reason;
  EXPECT_TRUE(v.on_load);
  if (!have_erl()) return;
  write_file((dir / "twice.beam").string(), twice);
  bool ok = false;
  const std::string out = run("cd '" + dir.path().string() +
                                  "' && erl -noshell -eval '"
                                  "{ok, B} = file:read_file(\"twice.beam\"),"
                                  "case erlang:prepare_loading(ol, B) of"
                                  "  {error, E} -> io:format(\"~p\", [E]);"
                                  "  P -> io:format(\"~p\", [erlang:has_prepared_code_on_load(P)])"
                                  " end, halt().' 2>/dev/null",
                              &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(out, "true") << "erlang:prepare_loading/2 and has_prepared_code_on_load/1";
}

TEST(ImageOnLoad, ListsHasNoOnLoad) {
  std::string lists;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/erlang/lib", ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("stdlib-", 0) == 0 && std::filesystem::exists(e.path() / "ebin/lists.beam"))
      lists = (e.path() / "ebin/lists.beam").string();
  }
  if (lists.empty()) GTEST_SKIP() << "Erlang/OTP's stdlib (lists.beam) is not installed";
  auto img = Image::read_file(lists, Strictness::kStrict);
  ASSERT_TRUE(img) << img.error().to_string();
  auto v = img->check_loadable();
  EXPECT_TRUE(v.loadable) << v.reason;
  EXPECT_FALSE(v.on_load);
}

TEST(ImageOnLoad, NotSetForAnUnloadableImage) {
  if (!have_erlc()) GTEST_SKIP() << "erlc (Erlang/OTP) is not installed: no module with -on_load to test";
  TempDir dir;
  Bytes b = compile(dir, "ol", kOnLoadSource);
  ASSERT_FALSE(b.empty());
  // Drop the code's last byte (int_code_end): the loader refuses it, whatever came before.
  auto img = Image::parse(b, Strictness::kStrict, "ol.beam");
  ASSERT_TRUE(img);
  const image::Chunk* code = img->find("Code");
  ASSERT_NE(code, nullptr);
  b[code->offset + code->size - 1] = 0;  // int_code_end (3) becomes opcode 0
  auto v = Image::parse(b, Strictness::kStrict, "ol.beam")->check_loadable();
  EXPECT_FALSE(v.loadable);
  EXPECT_FALSE(v.on_load);
}

// Every installed image that Erlang prepares: our on_load is erlang:has_prepared_code_on_load/1.
TEST(ImageOnLoad, EveryInstalledImageAgreesWithErlang) {
  if (!have_erl()) GTEST_SKIP() << "erl (Erlang/OTP) is not installed: nothing to compare against";
  const auto files = real_images();
  if (files.size() < 100) GTEST_SKIP() << "Erlang/OTP's images are not installed";
  TempDir dir;
  const std::string list = (dir / "images.txt").string();
  {
    std::ofstream out(list);
    for (const auto& f : files) out << f << "\n";
  }
  // One line per image Erlang prepares: "PATH\ttrue|false".
  const std::string eval = "{ok, L} = file:read_file(\"" + list +
                           "\"),"
                           "[begin {ok, B} = file:read_file(F),"
                           "  M = list_to_atom(filename:basename(F, \".beam\")),"
                           "  case erlang:prepare_loading(M, B) of"
                           "    {error, _} -> ok;"
                           "    P -> io:format(\"~s\\t~p~n\", [F, erlang:has_prepared_code_on_load(P)])"
                           "  end end || F <- string:lexemes(binary_to_list(L), \"\\n\")],"
                           "halt().";
  bool ok = false;
  const std::string out = run("erl -noshell -eval '" + eval + "' 2>/dev/null", &ok);
  ASSERT_TRUE(ok) << "erl failed";
  std::size_t compared = 0, with_on_load = 0;
  for (const auto& line : split(out, '\n')) {
    const auto fields = split(line, '\t');
    if (fields.size() != 2) continue;
    auto img = Image::read_file(fields[0], Strictness::kStrict);
    ASSERT_TRUE(img) << img.error().to_string();
    auto v = img->check_loadable();
    EXPECT_TRUE(v.loadable) << fields[0] << ": " << v.reason;
    EXPECT_EQ(v.on_load, fields[1] == "true") << fields[0];
    ++compared;
    with_on_load += fields[1] == "true";
  }
  EXPECT_GT(compared, files.size() / 2);
  std::cout << compared << " images compared, " << with_on_load << " with -on_load\n";
}

// --- Terms the loader decodes -----------------------------------------------------------

using Ext = std::vector<std::uint8_t>;

Ext cat(std::initializer_list<Ext> parts) {
  Ext out;
  for (const Ext& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Ext u32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}
Ext atom(const std::string& name) {  // SMALL_ATOM_UTF8_EXT
  Ext out = {119, static_cast<std::uint8_t>(name.size())};
  out.insert(out.end(), name.begin(), name.end());
  return out;
}
Ext latin1_atom(const std::string& name) {  // ATOM_EXT
  Ext out = {100, 0, static_cast<std::uint8_t>(name.size())};
  out.insert(out.end(), name.begin(), name.end());
  return out;
}
Ext small(std::uint8_t v) {
  return {97, v};
}
const Ext kNilExt = {106};
Ext map(std::uint32_t pairs, std::initializer_list<Ext> keys_and_values) {
  return cat({{116}, u32(pairs), cat(keys_and_values)});
}
Ext list(std::uint32_t count, std::initializer_list<Ext> elements_and_tail) {
  return cat({{108}, u32(count), cat(elements_and_tail)});
}
Ext export_ext(const Ext& m, const Ext& f, const Ext& arity) {
  return cat({{113}, m, f, arity});
}

Ext zlib_compress(const Ext& in) {
  uLongf len = compressBound(static_cast<uLong>(in.size()));
  Ext out(len);
  EXPECT_EQ(compress(out.data(), &len, in.data(), static_cast<uLong>(in.size())), Z_OK);
  out.resize(len);
  return out;
}

// attrs.beam (one literal) with its literal replaced by `term` (version byte added).
Bytes with_literal(const Ext& term) {
  const Ext ext = cat({{131}, term});
  const Ext table = cat({u32(1), u32(static_cast<std::uint32_t>(ext.size())), ext});
  auto chunks = split_chunks(read_file(source_dir() + "/tests/fixtures/images/attrs.beam"));
  for (auto& c : chunks) {
    if (c.id == "LitT") c.data = cat({u32(static_cast<std::uint32_t>(table.size())), zlib_compress(table)});
  }
  return join_chunks(chunks);
}
// attrs.beam with the data of chunk `id` replaced by `term` (version byte added).
Bytes with_chunk_term(const std::string& id, const Ext& term) {
  auto chunks = split_chunks(read_file(source_dir() + "/tests/fixtures/images/attrs.beam"));
  for (auto& c : chunks) {
    if (c.id == id) c.data = cat({{131}, term});
  }
  return join_chunks(chunks);
}

struct TermCase {
  std::string name;
  Bytes image;
  bool loadable;  // our verdict: what erlang:prepare_loading/2 answers unless `otp_takes_it`
  // A known difference, older than the pre-check: OTP 25's loader only sizes Attr and CInf
  // (erts_decode_ext_size), so it takes a map with a repeated key there; we decode them in
  // full, as beam_lib would, and refuse it.
  bool otp_takes_it = false;
};

std::vector<TermCase> term_cases() {
  const Ext a = atom("a"), b = atom("b"), c = atom("c");
  return {
      {"map_distinct_atom_keys", with_literal(map(3, {a, small(1), b, small(2), c, kNilExt})), true},
      {"map_repeated_atom_key", with_literal(map(2, {a, small(1), a, small(2)})), false},
      {"map_repeated_key_latin1_and_utf8", with_literal(map(2, {latin1_atom("a"), small(1), a, small(2)})),
       false},
      {"map_repeated_key_last_of_many",
       with_literal(map(4, {a, kNilExt, b, kNilExt, c, kNilExt, b, kNilExt})), false},
      {"map_nested_repeated_key", with_literal(map(2, {a, map(2, {b, small(1), b, small(2)}), c, small(1)})),
       false},
      {"map_inner_keys_are_its_own",
       with_literal(map(2, {a, map(2, {a, small(1), b, small(2)}), b, small(1)})), true},
      {"map_as_key", with_literal(map(2, {map(2, {a, small(1), b, small(2)}), small(1), a, small(2)})), true},
      {"map_repeated_integer_key", with_literal(map(2, {small(1), a, small(1), b})), false},
      {"map_non_ascii_keys",
       with_literal(map(2, {atom("\xc3\xa9"), small(1), latin1_atom("\xe9"), small(2)})), false},
      {"map_non_ascii_distinct_keys", with_literal(map(2, {atom("\xc3\xa9"), small(1), atom("e"), small(2)})),
       true},
      {"map_more_pairs_than_bytes", with_literal(map(9, {a, small(1), b, small(2)})), false},
      {"export_fun", with_literal(export_ext(atom("lists"), atom("map"), small(2))), true},
      {"export_latin1_atoms", with_literal(export_ext(latin1_atom("lists"), latin1_atom("map"), small(2))),
       true},
      {"export_negative_arity", with_literal(export_ext(a, b, cat({{98}, u32(0xffffffffu)}))), false},
      {"export_arity_not_integer", with_literal(export_ext(a, b, c)), false},
      {"export_module_not_atom", with_literal(export_ext(small(1), b, small(1))), false},
      {"export_truncated", with_literal(export_ext(a, b, {97})), false},
      {"list_proper", with_literal(list(3, {small(1), small(2), small(3), kNilExt})), true},
      {"list_improper", with_literal(list(1, {small(1), small(2)})), true},
      {"list_of_maps", with_literal(list(2, {map(2, {a, a, b, b}), map(2, {b, b, a, a}), kNilExt})), true},
      {"list_longer_than_bytes", with_literal(list(5, {small(1), small(2), kNilExt})), false},
      {"list_empty_list_ext", with_literal(list(0, {kNilExt})), true},
      {"tag_9", with_literal(cat({{9}, u32(0), kNilExt})), false},
      {"attr_tag_9", with_chunk_term("Attr", cat({{9}, u32(0), kNilExt})), false},
      {"attr_list",
       with_chunk_term("Attr",
                       list(1, {cat({{104, 2}, atom("vsn"), list(1, {small(1), kNilExt})}), kNilExt})),
       true},
      {"cinf_repeated_map_key", with_chunk_term("CInf", map(2, {a, small(1), a, small(2)})), false, true},
      {"attr_repeated_map_key", with_chunk_term("Attr", map(2, {a, small(1), a, small(2)})), false, true},
  };
}

TEST(ImageVerdictTerms, PreCheckAgreesWithTheDecoder) {
  for (const auto& tc : term_cases()) {
    ASSERT_FALSE(tc.image.empty()) << tc.name;
    auto img = Image::parse(tc.image, Strictness::kStrict, tc.name);
    ASSERT_TRUE(img) << tc.name << ": " << img.error().to_string();
    auto v = img->check_loadable();
    EXPECT_EQ(v.loadable, tc.loadable) << tc.name << ": " << v.reason;
  }
}

TEST(ImageVerdictTerms, ErlangAgrees) {
  if (!have_erl()) GTEST_SKIP() << "erl (Erlang/OTP) is not installed: nothing to compare against";
  TempDir dir;
  const auto cases = term_cases();
  std::string list;
  for (const auto& tc : cases) {
    write_file((dir / tc.name).string(), tc.image);
    list += tc.name + "\n";
  }
  std::ofstream((dir / "cases.txt").string()) << list;
  const std::string eval =
      "{ok, L} = file:read_file(\"cases.txt\"),"
      "[begin {ok, B} = file:read_file(F),"
      "  R = case erlang:prepare_loading(attrs, B) of {error, E} -> E; _ -> ok end,"
      "  io:format(\"~s\\t~p~n\", [F, R])"
      " end || F <- string:lexemes(binary_to_list(L), \"\\n\")],"
      "halt().";
  bool ok = false;
  const std::string out =
      run("cd '" + dir.path().string() + "' && erl -noshell -eval '" + eval + "' 2>/dev/null", &ok);
  ASSERT_TRUE(ok) << "erl failed";
  std::map<std::string, std::string> erlang;
  for (const auto& line : split(out, '\n')) {
    const auto fields = split(line, '\t');
    if (fields.size() == 2) erlang[fields[0]] = fields[1];
  }
  ASSERT_EQ(erlang.size(), cases.size()) << out;
  for (const auto& tc : cases) {
    EXPECT_EQ(erlang[tc.name], tc.loadable || tc.otp_takes_it ? "ok" : "badfile") << tc.name;
  }
}

// The code server computes an instance's MD5 lazily (Instance::md5()), relying on this: a
// strictly parsed image that check_loadable takes always has an MD5.
TEST(ImageVerdictTerms, LoadableStrictImagesHaveAnMd5) {
  std::size_t loadable = 0;
  for (const char* fixture : {"attrs.beam", "hello.beam"}) {
    const Bytes original = read_file(source_dir() + "/tests/fixtures/images/" + fixture);
    auto variants = damage_variants(original, 7, 64);
    variants.push_back({"original", "", original});
    for (const auto& v : variants) {
      auto img = Image::parse(v.bytes, Strictness::kStrict, v.name);
      if (!img || !img->check_loadable().loadable) continue;
      ++loadable;
      auto md5 = img->md5();
      EXPECT_TRUE(md5) << fixture << " " << v.name << ": " << md5.error().to_string();
    }
  }
  EXPECT_GT(loadable, 2u);
}

// A strict parse applies beamfile_read's table checks up to the funs; check_loadable goes on
// from there, so they run once per strict image (they used to run again in check_loadable).
// A lenient image is checked once too, by the strict reading of its bytes check_loadable makes.
TEST(ImageVerdict, TablesAreCheckedOncePerStrictImage) {
  using image::internal::verdict::table_head_checks;
  for (const char* fixture : {"attrs.beam", "hello.beam"}) {
    const Bytes bytes = read_file(source_dir() + "/tests/fixtures/images/" + fixture);
    const std::uint64_t before = table_head_checks();
    auto strict = Image::parse(bytes, Strictness::kStrict, fixture);
    ASSERT_TRUE(strict) << strict.error().to_string();
    EXPECT_EQ(table_head_checks() - before, 1u) << fixture;
    EXPECT_TRUE(strict->check_loadable().loadable) << fixture;
    EXPECT_EQ(table_head_checks() - before, 1u) << fixture << ": check_loadable checked the tables again";

    auto lenient = Image::parse(bytes, Strictness::kLenient, fixture);
    ASSERT_TRUE(lenient) << lenient.error().to_string();
    EXPECT_EQ(table_head_checks() - before, 1u) << fixture;
    EXPECT_TRUE(lenient->check_loadable().loadable) << fixture;
    EXPECT_EQ(table_head_checks() - before, 2u) << fixture;
  }
}

}  // namespace
}  // namespace codestore::testing

// Issue 11: the chunks OTP's loader can do without (docs/image-format.md: StrT, LocT,
// FunT, LitT, Meta, Attr, CInf, Line, Type; Dbgi is ignored) are optional for the code
// server too. tests/fixtures/images/loader_chunks/chunky.beam has them all; each variant
// drops or replaces some and is loaded with load_binary. The expectations were verified
// with OTP 25 (`code:load_binary/3`, `erlang:get_module_info/2`), and when `erl` is
// installed the test asks it again for every variant and compares: load result, the
// module MD5 and the vsn.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <map>
#include <sstream>

#include "loader_fixture.h"

namespace codestore::loader::testing {
namespace {

struct Variant {
  std::string name;                // also the file name under chunks/
  std::vector<std::string> drop;   // chunks left out
  std::vector<std::uint8_t> attr;  // when not empty: the Attr chunk's new data
  const char* result;              // code:load_binary's answer
  bool same_md5;                   // the module MD5 is the full image's
  bool has_vsn;                    // the vsn attribute survives
};

// term_to_binary([{foo,[bar]}]): attributes without a vsn.
const std::vector<std::uint8_t> kAttrNoVsn = {131, 108, 0, 0, 0, 1,   104, 2, 100, 0,   3,   'f', 'o', 'o',
                                              108, 0,   0, 0, 1, 100, 0,   3, 'b', 'a', 'r', 106, 106};
// term_to_binary(foo): not even a list (the loader only decodes it).
const std::vector<std::uint8_t> kAttrNotAList = {131, 100, 0, 3, 'f', 'o', 'o'};
// Not external term format at all: the loader refuses it.
const std::vector<std::uint8_t> kAttrGarbage = {1, 2, 3, 4};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"full", {}, {}, "ok", true, true},
      {"no_StrT", {"StrT"}, {}, "ok", false, true},  // the MD5 hashes a missing StrT as empty
      {"no_LocT", {"LocT"}, {}, "ok", true, true},
      {"no_FunT", {"FunT"}, {}, "badfile", false, false},  // the code makes a fun
      {"no_LitT", {"LitT"}, {}, "badfile", false, false},  // the code uses literals
      {"no_Meta", {"Meta"}, {}, "ok", false, true},        // Meta is hashed
      {"no_Attr", {"Attr"}, {}, "ok", true, false},
      {"no_CInf", {"CInf"}, {}, "ok", true, true},
      {"no_Line", {"Line"}, {}, "ok", true, true},
      {"no_Type", {"Type"}, {}, "ok", true, true},
      {"no_Dbgi", {"Dbgi"}, {}, "ok", true, true},
      {"only_required",
       {"StrT", "LocT", "Meta", "Attr", "CInf", "Dbgi", "Line", "Type"},
       {},
       "ok",
       false,
       false},
      {"attr_without_vsn", {}, kAttrNoVsn, "ok", true, false},
      {"attr_not_a_list", {}, kAttrNotAList, "ok", true, false},
      {"attr_garbage", {}, kAttrGarbage, "badfile", false, false},
  };
  return v;
}

class OptionalChunks : public LoaderFixture {
 protected:
  void SetUp() override {
    LoaderFixture::SetUp();
    fs::copy(fs::path(CODESTORE_SOURCE_DIR) / "tests/fixtures/images/loader_chunks", dir_ / "chunks",
             fs::copy_options::recursive);
    auto img = image::Image::parse(bytes("chunks/chunky.beam"), image::Strictness::kLenient);
    ASSERT_TRUE(img) << img.error().to_string();
    for (const Variant& v : variants()) {
      std::vector<image::ChunkData> chunks;
      for (const auto& c : img->chunks()) {
        std::string id(c.id_view());
        if (std::find(v.drop.begin(), v.drop.end(), id) != v.drop.end()) continue;
        chunks.push_back({id, id == "Attr" && !v.attr.empty() ? image::Bytes(v.attr) : img->data(c)});
      }
      auto built = image::build_module(chunks);
      ASSERT_TRUE(built) << v.name << ": " << built.error().to_string();
      std::ofstream(file("chunks/" + v.name + ".beam"), std::ios::binary)
          .write(reinterpret_cast<const char*>(built->data()), static_cast<std::streamsize>(built->size()));
    }
  }

  // "RESULT MD5 VSN" as our code server sees the variant loaded into a fresh one.
  std::string ours(const Variant& v) {
    auto cs = make();
    auto r = cs->load_binary("chunky", "chunky.beam", bytes("chunks/" + v.name + ".beam"));
    if (!r) return std::string(r.error().reason()) + " - -";
    auto inst = cs->current_shared("chunky");
    return "ok " + image::md5_hex(inst->md5()) + " " + (inst->has_vsn() ? inst->vsn_text() : "-");
  }
};

TEST_F(OptionalChunks, MissingOptionalChunksLoadAsInOtp) {
  const std::string full = ours(variants()[0]);
  const std::string full_md5 = full.substr(3, 32);
  for (const Variant& v : variants()) {
    std::istringstream got(ours(v));
    std::string result, md5, vsn;
    got >> result >> md5 >> vsn;
    EXPECT_EQ(result, v.result) << v.name;
    if (result != "ok") continue;
    EXPECT_EQ(md5 == full_md5, v.same_md5) << v.name << ": " << md5;
    EXPECT_EQ(vsn != "-", v.has_vsn) << v.name << ": " << vsn;
  }
}

TEST_F(OptionalChunks, SameAnswersAsErlang) {
  if (std::system("command -v erl > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "erl (Erlang/OTP) is not installed";
  // One VM loads every variant in turn (purging the one before) and prints what we print.
  const char* eval = R"(
    logger:set_primary_config(level, none),
    Hex = fun(B) -> lists:flatten([io_lib:format("~2.16.0b", [X]) || <<X>> <= B]) end,
    [begin
       code:purge(chunky), code:delete(chunky), code:purge(chunky),
       {ok, Bin} = file:read_file(F),
       Line = case code:load_binary(chunky, "chunky.beam", Bin) of
         {module, chunky} ->
           As = erlang:get_module_info(chunky, attributes),
           Vsn = case is_list(As) andalso lists:keyfind(vsn, 1, As) of
                   {vsn, V} -> lists:flatten(io_lib:format("~w", [V]));
                   false -> "-"
                 end,
           ["ok ", Hex(erlang:get_module_info(chunky, md5)), " ", Vsn];
         {error, R} -> [atom_to_list(R), " - -"]
       end,
       io:format("~s ~s~n", [filename:basename(F, ".beam"), Line])
     end || F <- init:get_plain_arguments()],
    halt().)";
  std::string cmd = "cd '" + dir("chunks") + "' && erl -noshell -eval '" + eval + "' -extra";
  for (const Variant& v : variants()) cmd += " " + v.name + ".beam";
  cmd += " > erl.out 2> /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(file("chunks/erl.out"));
  std::map<std::string, std::string> erlang;
  for (std::string name, rest; in >> name && std::getline(in, rest);) erlang[name] = rest.substr(1);
  ASSERT_EQ(erlang.size(), variants().size());
  for (const Variant& v : variants()) EXPECT_EQ(ours(v), erlang[v.name]) << v.name;
}

}  // namespace
}  // namespace codestore::loader::testing

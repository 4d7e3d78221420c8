// The loader verdict's `on_load` (the module has an -on_load function), against modules
// compiled with erlc at test time and against erlang:has_prepared_code_on_load/1 for every
// installed image. Without Erlang/OTP the tests skip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <codestore/image.h>

#include "image/image_test_util.h"

namespace codestore::testing {
namespace {

using image::Image;
using image::Strictness;
using Bytes = std::vector<std::uint8_t>;

bool have_erlc() { return std::system("command -v erlc >/dev/null 2>&1") == 0; }
bool have_erl() { return std::system("command -v erl >/dev/null 2>&1") == 0; }

// Compiles `source` as `module`.erl in `dir` with erlc; the image, or empty on failure.
Bytes compile(const TempDir& dir, const std::string& module, const std::string& source) {
  const std::string erl = dir.path() + "/" + module + ".erl";
  std::ofstream(erl) << source;
  bool ok = false;
  run("erlc +deterministic -o '" + dir.path() + "' '" + erl + "' 2>&1", &ok);
  EXPECT_TRUE(ok) << "erlc failed on " << erl;
  return ok ? read_bytes(dir.path() + "/" + module + ".beam") : Bytes{};
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
  const Bytes plain = compile(dir, "ol", "-module(ol).\n-export([init/0, start/0]).\ninit() -> ok.\nstart() -> ok.\n");
  ASSERT_FALSE(plain.empty());
  auto v = Image::parse(plain, Strictness::kStrict, "ol.beam")->check_loadable();
  EXPECT_TRUE(v.loadable) << v.reason;
  EXPECT_FALSE(v.on_load);
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
  const auto files = installed_images();
  if (files.size() < 100) GTEST_SKIP() << "Erlang/OTP's images are not installed";
  TempDir dir;
  const std::string list = dir.path() + "/images.txt";
  {
    std::ofstream out(list);
    for (const auto& f : files) out << f << "\n";
  }
  // One line per image Erlang prepares: "PATH\ttrue|false".
  const std::string eval =
      "{ok, L} = file:read_file(\"" + list + "\"),"
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

}  // namespace
}  // namespace codestore::testing

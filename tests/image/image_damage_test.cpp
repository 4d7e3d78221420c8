// Differential test: every damaged variant of a few real images, judged by us and by
// Erlang/OTP (beam_lib for the lenient verdicts, erlang:prepare_loading/2 for the strict
// one), must get the same verdict: ok, or the same beam_lib error kind.
#include <codestore/image.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "image/damage.h"
#include "image/image_test_util.h"

namespace codestore::testing {
namespace {

using image::Image;
using image::Strictness;

// Images whose variants we judge: a tiny fixture, two OTP modules with funs and literals,
// an Elixir module (no Meta/Type, extra Docs/ExCk chunks).
std::vector<std::string> subjects() {
  return {source_dir() + "/tests/fixtures/images/hello.beam", "/usr/lib/erlang/lib/stdlib-4.2/ebin/maps.beam",
          "/usr/lib/erlang/lib/stdlib-4.2/ebin/gen_server.beam",
          "/usr/lib/elixir/lib/elixir/ebin/Elixir.Enum.beam"};
}

// Our verdicts, keyed as image_truth.escript keys beam_lib's. beam_lib crashing is our
// invalid_chunk. The views are only compared when the lenient parse (beam_lib:info/1)
// succeeds: our views need a parsed image.
std::map<std::string, std::string> our_verdicts(const std::vector<std::uint8_t>& bytes, std::string* md5hex) {
  std::map<std::string, std::string> v;
  auto img = Image::parse(bytes, Strictness::kLenient);
  v["info"] = verdict(img);
  if (img) {
    auto md5 = img->md5();
    v["md5"] = verdict(md5);
    if (md5) *md5hex = image::md5_hex(*md5);
    for (const char* name : {"atoms", "exports", "imports", "locals", "attributes", "compile_info"}) {
      v[name] = verdict(img->chunk_term(name));
    }
    v["vsn"] = verdict(img->vsn());
    v["all_chunks"] = verdict(img->all_chunks());
  }
  auto strict = Image::parse(bytes, Strictness::kStrict);
  v["load"] = strict && strict->check_loadable().loadable ? "ok" : "badfile";
  return v;
}

std::string normalize(std::string erl) {
  return erl == "crash" ? "invalid_chunk" : erl;
}

TEST(ImageDamage, VerdictsAgreeWithErlang) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  TempDir dir;
  struct Case {
    std::string label;
    std::string path;
  };
  std::vector<Case> cases;
  std::vector<std::string> manifest_lines;
  for (const std::string& subject : subjects()) {
    const auto bytes = read_file(subject);
    auto img = Image::parse(bytes, Strictness::kLenient);
    ASSERT_TRUE(img) << img.error().to_string();
    const std::string module = *img->module();
    // CODESTORE_DAMAGE_FLIPS=N explores more random single-byte damage.
    const char* flips = std::getenv("CODESTORE_DAMAGE_FLIPS");
    auto variants = damage_variants(bytes, 7, flips ? std::atoi(flips) : 24);
    ASSERT_GT(variants.size(), 60u) << subject;
    for (const auto& v : variants) {
      const std::string path = (dir / std::to_string(cases.size())).string() + ".beam";
      write_file(path, v.bytes);
      cases.push_back({module + ":" + v.name, path});
      manifest_lines.push_back(path + "\t" + module + "\n");
    }
  }
  // OTP 25's JIT aborts the whole VM on some damaged code (an asmjit assertion) instead of
  // answering badfile: such an image is recorded as load=vmcrash and the rest re-asked.
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> vm_crashes;
  while (rows.size() < cases.size()) {
    std::string rest;
    for (std::size_t i = rows.size(); i < cases.size(); ++i) rest += manifest_lines[i];
    std::ofstream((dir / "manifest").string()) << rest;
    const std::string out = (dir / "answers").string();
    std::filesystem::remove(out);
    bool ok = false;
    (void)ask_erlang("verdicts " + (dir / "manifest").string() + " " + out, (dir / "erl.log").string(), &ok);
    for (const std::string& line : split(
             std::string(std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>(out)), {}), '\n')) {
      if (!line.empty()) rows.push_back(split(line, '\t'));
    }
    if (ok) break;
    ASSERT_LT(rows.size(), cases.size()) << std::ifstream((dir / "erl.log").string()).rdbuf();
    // The image the VM died on: its beam_lib verdicts are unknown; load is vmcrash.
    rows.push_back({cases[rows.size()].path, "load=vmcrash"});
    vm_crashes.push_back(cases[rows.size() - 1].label);
  }
  ASSERT_EQ(rows.size(), cases.size());
  for (const auto& c : vm_crashes) std::cout << "the VM crashed loading " << c << "\n";

  std::size_t compared = 0;
  std::vector<std::string> vm_only;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& row = rows[i];
    ASSERT_EQ(row[0], cases[i].path);
    std::map<std::string, std::string> erl;
    for (std::size_t k = 1; k < row.size(); ++k) {
      auto eq = row[k].find('=');
      erl[row[k].substr(0, eq)] = row[k].substr(eq + 1);
    }
    std::string md5hex;
    const auto ours = our_verdicts(read_file(cases[i].path), &md5hex);
    for (const auto& [key, mine] : ours) {
      if (!erl.count(key)) continue;
      std::string theirs = key == "load" ? erl[key] : normalize(erl[key]);
      if (theirs == "vmcrash") theirs = "badfile";  // it certainly does not load
      // A random byte in the code can make an operand the wrong type for every specific
      // instruction the loader could pick: only its transformation engine can tell.
      if (key == "load" && mine == "ok" && theirs == "badfile" &&
          cases[i].label.find(":flip_") != std::string::npos) {
        vm_only.push_back(cases[i].label + " (" + cases[i].path + ")");
        continue;
      }
      if (mine != theirs)
        ADD_FAILURE() << "MISMATCH " << cases[i].label << " (" << cases[i].path << ") " << key << ": ours "
                      << mine << ", Erlang " << theirs;
      ++compared;
    }
    if (!md5hex.empty() && erl.count("md5")) {
      if (md5hex != erl["md5hex"])
        ADD_FAILURE() << "MISMATCH " << cases[i].label << " md5 value: ours " << md5hex << ", Erlang "
                      << erl["md5hex"];
    }
  }
  for (const auto& c : vm_only) std::cout << "only the VM refuses " << c << "\n";
  std::cout << cases.size() << " damaged variants, " << compared << " verdicts compared with Erlang's, "
            << vm_only.size() << " refused only by the VM, " << vm_crashes.size() << " crash the VM\n";
  RecordProperty("variants", static_cast<int>(cases.size()));
  RecordProperty("vm_only", static_cast<int>(vm_only.size()));
  RecordProperty("verdicts_compared", static_cast<int>(compared));
}

// Parsing a damaged image never crashes and never reads out of bounds, whatever the view
// (run under ASan/UBSan in CI): every view answers a value or an error.
TEST(ImageDamage, EveryViewAnswersOnEveryVariant) {
  for (const std::string& subject : subjects()) {
    for (const auto& v : damage_variants(read_file(subject), 11)) {
      for (Strictness s : {Strictness::kLenient, Strictness::kStrict}) {
        auto img = Image::parse(v.bytes, s);
        if (!img) {
          EXPECT_FALSE(img.error().to_string().empty());
          continue;
        }
        for (const char* name :
             {"atoms", "exports", "labeled_exports", "imports", "indexed_imports", "locals", "labeled_locals",
              "attributes", "compile_info", "debug_info", "abstract_code"}) {
          (void)img->chunk_term(name);
        }
        (void)img->md5();
        (void)img->vsn();
        (void)img->all_chunks();
        (void)img->check_loadable();
        (void)image::strip(*img);
      }
    }
  }
}

}  // namespace
}  // namespace codestore::testing

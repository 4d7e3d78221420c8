// Helpers for the reliability tests over the store: real images from Erlang/OTP, distinct
// loadable variants of them (an extra unknown chunk changes the bytes, not the code), and
// whole-store checks (integrity, verify, every blob read back).
#pragma once

#include <codestore/image.h>
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "image/damage.h"
#include "image/image_test_util.h"
#include "support/corpus.h"

namespace codestore::testing {

// `n` small real images with distinct module names (smallest first), from the OTP
// installation (support/corpus.h); empty when Erlang is not installed.
inline std::vector<std::vector<std::uint8_t>> small_otp_images(std::size_t n, std::size_t max_size = 8192) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::uintmax_t, fs::path>> files;
  for (const auto& file : real_images({"/usr/lib/erlang/lib"})) {
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (!ec && size <= max_size) files.emplace_back(size, file);
  }
  std::sort(files.begin(), files.end());
  std::vector<std::vector<std::uint8_t>> out;
  std::set<std::string> names;
  for (const auto& [size, path] : files) {
    if (out.size() >= n) break;
    auto bytes = read_file(path.string());
    auto img = image::Image::parse(bytes, image::Strictness::kStrict, path.string());
    // Plain IFF only: variant() splits the chunks (installed images may be gzip-wrapped).
    if (!img || img->gzipped() || !img->check_loadable().loadable) continue;
    auto m = img->module();
    if (!m || !names.insert(*m).second) continue;
    out.push_back(std::move(bytes));
  }
  return out;
}

// The same image with one more chunk "Xtra" holding `tag`: loadable, same module and md5,
// different bytes (so a different blob and a new version when imported).
inline std::vector<std::uint8_t> variant(const std::vector<std::uint8_t>& image, const std::string& tag) {
  auto chunks = split_chunks(image);
  chunks.push_back({"Xtra", std::vector<std::uint8_t>(tag.begin(), tag.end())});
  return join_chunks(chunks);
}

// A variant whose module md5 differs too (a loader's sync() sees it as new code): `tag` is
// appended to the string table StrT, which the md5 covers and no instruction refers to.
inline std::vector<std::uint8_t> code_variant(const std::vector<std::uint8_t>& image,
                                              const std::string& tag) {
  auto chunks = split_chunks(image);
  bool found = false;
  for (auto& c : chunks) {
    if (c.id == "StrT") {
      c.data.insert(c.data.end(), tag.begin(), tag.end());
      found = true;
    }
  }
  if (!found) chunks.push_back({"StrT", std::vector<std::uint8_t>(tag.begin(), tag.end())});
  return join_chunks(chunks);
}

inline std::string module_of(const std::vector<std::uint8_t>& image) {
  auto img = image::Image::parse(image, image::Strictness::kLenient);
  return img ? img->module().value_or("") : "";
}

// The chunk "Xtra"'s content ("" when absent): which variant a stored image is.
inline std::string tag_of(const std::vector<std::uint8_t>& image) {
  auto img = image::Image::parse(image, image::Strictness::kLenient);
  if (!img) return "<unparsable>";
  const image::Chunk* c = img->find("Xtra");
  if (!c) return "";
  auto d = img->data(*c);
  return std::string(d.begin(), d.end());
}

// (module, version) -> sha256 of every stored version.
using Catalog = std::map<std::pair<std::string, std::int64_t>, std::string>;

// Integrity and verify pass, every version reads back with its checksums checked, and the
// blob count equals the number of distinct SHA-256s the versions name (no orphan, none
// missing). Returns the catalog.
// `exact_blobs` false allows blobs that only deleted versions named (gc removes those).
inline Catalog check_store(Store& store, const std::string& context, bool exact_blobs = true) {
  Catalog cat;
  auto v = store.verify();
  EXPECT_TRUE(v) << context << ": " << v.error().to_string();
  if (v) {
    EXPECT_TRUE(v->ok()) << context << ": verify found " << v->damage.size()
                         << " damages, first: " << (v->damage.empty() ? "" : v->damage[0].message);
    EXPECT_EQ(v->integrity, std::vector<std::string>{"ok"}) << context;
  }
  auto list = store.list();
  EXPECT_TRUE(list) << context << ": " << list.error().to_string();
  if (!list) return cat;
  std::set<std::string> shas;
  for (const auto& m : *list) {
    auto vs = store.versions(m.module);
    EXPECT_TRUE(vs) << context << ": " << vs.error().to_string();
    if (!vs) continue;
    for (const auto& mv : *vs) {
      auto bytes = store.get(mv.module, mv.version, /*verify_sha256=*/true);
      EXPECT_TRUE(bytes) << context << ": " << mv.module << "@" << mv.version << ": "
                         << bytes.error().to_string();
      EXPECT_EQ(bytes ? bytes->size() : 0, mv.raw_size) << context << ": " << mv.module << "@" << mv.version;
      cat[{mv.module, mv.version}] = mv.sha256;
      shas.insert(mv.sha256);
    }
  }
  auto st = store.stats();
  EXPECT_TRUE(st) << context;
  if (st && exact_blobs) {
    EXPECT_EQ(static_cast<std::size_t>(st->blobs), shas.size()) << context << ": orphaned or missing blobs";
  }
  if (st) {
    EXPECT_GE(static_cast<std::size_t>(st->blobs), shas.size()) << context << ": missing blobs";
  }
  return cat;
}

}  // namespace codestore::testing

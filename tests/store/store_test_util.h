// Helpers for the store tests: real images (the fixtures and variants
// of them built with the image library) and the CLI driven in-process.
//
// Thread safety: thread-compatible (each test owns its objects).
#pragma once

#include <codestore/image.h>
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::store_testing {

namespace fs = std::filesystem;

using testing::read_file;
using testing::TempDir;
using testing::write_file;

inline std::string fixture(const std::string& name) {
  return std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/" + name;
}

// The image `bytes` (`fixture_name` in messages) with `n` appended to its string table StrT
// (which the module MD5 covers and no instruction refers to) and in one extra chunk "XTra":
// a different image (new SHA-256) and new code (new MD5) of the same module, still
// loadable. n == 0: the image itself. variant(): of a fixture (hello.beam).
inline std::vector<std::uint8_t> variant_of(const std::vector<std::uint8_t>& bytes,
                                            const std::string& fixture_name, int n) {
  auto img = image::Image::parse(bytes, image::Strictness::kStrict, fixture_name);
  EXPECT_TRUE(img.has_value());
  if (n == 0) return bytes;
  const std::string payload = "variant " + std::to_string(n);
  std::vector<std::uint8_t> strings;
  std::vector<image::ChunkData> chunks;
  for (const auto& c : img->chunks()) {
    if (c.id_view() == "StrT") {
      const auto data = img->data(c);
      strings.assign(data.begin(), data.end());
      strings.insert(strings.end(), payload.begin(), payload.end());
      chunks.push_back({"StrT", strings});
    } else {
      chunks.push_back({std::string(c.id_view()), img->data(c)});
    }
  }
  EXPECT_FALSE(strings.empty()) << fixture_name << " has no StrT chunk";
  chunks.push_back(
      {"XTra", image::Bytes(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size())});
  auto built = image::build_module(chunks);
  EXPECT_TRUE(built.has_value());
  return *built;
}
inline std::vector<std::uint8_t> variant(const std::string& fixture_name, int n) {
  return variant_of(read_file(fixture(fixture_name)), fixture_name, n);
}

inline std::unique_ptr<Store> open_or_die(const std::string& path, StoreOptions o = {}) {
  auto s = Store::open(path, o);
  EXPECT_TRUE(s.has_value()) << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

// Imports `bytes` and returns the version it got (0 on failure, with a test failure).
inline std::int64_t import_bytes(Store& store, const std::vector<std::uint8_t>& bytes,
                                 const std::string& origin = "t", const std::string& lib = "") {
  auto r = store.import(bytes, origin, {.lib = lib});
  EXPECT_TRUE(r.has_value()) << r.error().to_string();
  return r ? r->version : 0;
}

struct CliResult {
  int code;
  std::string out, err;
};
inline CliResult run_cli(const std::string& db, std::vector<std::string> args) {
  args.insert(args.begin(), {"--db", db});
  std::istringstream in;
  std::ostringstream out, err;
  const int code = cli::run(args, in, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace codestore::store_testing

// Shared set-up for the code-server tests: a scratch copy of tests/fixtures/images/loader/
// (m and n in versions 1–3, damaged and gzip images) and a module put into each of the
// four states of docs/code-server.md §1.
#pragma once

#include <codestore/code_server.h>
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::loader::testing {

namespace fs = std::filesystem;

enum class State { kNone, kCurrent, kCurrentOld, kOldOnly };

// Erlang's [{Module, What}] of a multi-module load's failures, to compare whole lists.
using Reasons = std::vector<std::pair<std::string, std::string>>;
inline Reasons reasons(const std::vector<FailedModule>& failed) {
  Reasons out;
  for (const auto& f : failed) out.emplace_back(f.module, std::string(f.status.reason()));
  return out;
}

inline std::string state_name(State s) {
  switch (s) {
    case State::kNone: return "none";
    case State::kCurrent: return "current";
    case State::kCurrentOld: return "current_old";
    case State::kOldOnly: return "old_only";
  }
  return "?";
}

inline const std::vector<State> kAllStates = {State::kNone, State::kCurrent, State::kCurrentOld,
                                              State::kOldOnly};

// What a module looks like from outside: the current instance's vsn ("" for none) and
// whether old code exists.
struct Snapshot {
  std::string current;
  bool has_old = false;
  bool operator==(const Snapshot&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Snapshot& s) {
    return os << "{current: '" << s.current << "', has_old: " << s.has_old << "}";
  }
};

class LoaderFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    fs::copy(fs::path(CODESTORE_SOURCE_DIR) / "tests/fixtures/images/loader", dir_,
             fs::copy_options::recursive);
    // counter: a gen_server-style module without start/1 (tests/fixtures/src/loader_foreign).
    fs::copy(fs::path(CODESTORE_SOURCE_DIR) / "tests/fixtures/images/loader_foreign", dir_ / "foreign",
             fs::copy_options::recursive);
  }
  void TearDown() override {}  // tmp_ removes the copy

  std::string dir(const std::string& sub) const { return (dir_ / sub).string(); }
  std::string file(const std::string& sub) const { return (dir_ / sub).string(); }
  std::vector<std::uint8_t> bytes(const std::string& sub) const {
    return codestore::testing::read_file(file(sub));
  }

  // A store on db_ (which the test sets); `cache` false: no image cache, so every read of a
  // blob decompresses it.
  std::shared_ptr<Store> open_store(bool cache = true) {
    StoreOptions options;
    if (!cache) options.image_cache_bytes = 0;
    auto s = Store::open(db_, options);
    EXPECT_TRUE(s) << s.error().to_string();
    return s ? std::shared_ptr<Store>(std::move(*s)) : nullptr;
  }

  // The image at `sub` rebuilt without the chunks `drop` (as beam_lib:build_module does
  // from all_chunks minus those), written to `out` under the fixture dir.
  void write_without(const std::string& sub, const std::vector<std::string>& drop, const std::string& out) {
    auto img = image::Image::parse(bytes(sub), image::Strictness::kLenient, sub);
    ASSERT_TRUE(img) << img.error().to_string();
    std::vector<image::ChunkData> keep;
    for (const auto& c : img->chunks()) {
      if (std::find(drop.begin(), drop.end(), c.id_view()) == drop.end()) {
        keep.push_back(image::ChunkData{std::string(c.id_view()), img->data(c)});
      }
    }
    auto rebuilt = image::build_module(keep);
    ASSERT_TRUE(rebuilt) << rebuilt.error().to_string();
    fs::create_directories(fs::path(file(out)).parent_path());
    std::ofstream(file(out), std::ios::binary)
        .write(reinterpret_cast<const char*>(rebuilt->data()), static_cast<std::streamsize>(rebuilt->size()));
  }

  std::unique_ptr<CodeServer> make(Mode mode = Mode::kInteractive, std::vector<std::string> path = {}) {
    Options options;
    options.mode = mode;
    options.path = std::move(path);
    auto cs = CodeServer::create(std::move(options));
    EXPECT_TRUE(cs.has_value()) << (cs ? "" : cs.error().to_string());
    return cs ? std::move(*cs) : nullptr;
  }

  static Snapshot snap(const CodeServer& cs, const std::string& module = "m") {
    auto inst = cs.current_shared(module);
    return Snapshot{inst ? inst->vsn_text() : "", cs.check_old_code(module)};
  }

  // Puts m into `state` with version 1 (and then 2) loaded by load_binary. With `lingerer`,
  // a process enters version 1 while it is current, so in current+old and old-only it
  // lingers in the old instance (in current it is in the current one).
  // Afterwards: none {"", false}; current {[49]}; current+old {[50], old [49]};
  // old only {"", old [49]}.
  std::shared_ptr<Process> enter_state(CodeServer& cs, State state, bool lingerer = false) {
    std::shared_ptr<Process> p;
    if (lingerer) p = cs.spawn("lingerer", [this](ProcessId id) { killed_.push_back(id); });
    if (state == State::kNone) return p;
    EXPECT_TRUE(cs.load_binary("m", "v1/m.beam", bytes("v1/m.beam")).has_value());
    if (p) {
      EXPECT_TRUE(p->call("m", "loop", 0).has_value());
    }
    if (state == State::kCurrentOld) {
      EXPECT_TRUE(cs.load_binary("m", "v2/m.beam", bytes("v2/m.beam")).has_value());
    }
    if (state == State::kOldOnly) {
      EXPECT_TRUE(cs.delete_module("m"));
    }
    return p;
  }

  codestore::testing::TempDir tmp_;
  fs::path dir_;                   // tmp_.path()
  std::string db_;                 // the store open_store() opens (a test that uses one sets it)
  std::vector<ProcessId> killed_;  // by kill callbacks
};

}  // namespace codestore::loader::testing

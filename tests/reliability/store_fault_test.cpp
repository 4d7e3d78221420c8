// I/O faults under the store (SQLite's "ioerr" method): the fault VFS makes the Nth write,
// sync or read fail, or the disk full, during one store operation on a small fixture (12
// modules, up to 4 versions each, a release): an import batch, a module rollback, a release
// rollback, a gc, a compact. For every N from 1 until the operation runs clean (sampled when
// there are many), the operation returns an error (never throws, never aborts), and after
// reopening with the normal VFS the store passes verify and holds all of the operation or
// none of it.
//
// The store opens databases with SQLite's default VFS, so the fault VFS is installed as the
// default for this test process (disarmed, it only forwards). CODESTORE_FAULT_POINTS caps
// the points tried per operation and fault kind (default 60).
#include <codestore/store.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "fault_vfs.h"
#include "store_util.h"

namespace fs = std::filesystem;
using namespace codestore;
using namespace codestore::testing;

namespace {

// Everything a reader can observe of the store, as text: modules and their state, every
// version and its blob, releases and their members, the history.
std::string digest(Store& s) {
  std::string out;
  auto list = s.list();
  if (!list) return "list failed: " + list.error().to_string();
  for (const auto& m : *list) {
    out += m.module + " a" + std::to_string(m.active_version) + " n" + std::to_string(m.versions) + " l" +
           std::to_string(m.latest_version) + ":";
    auto vs = s.versions(m.module);
    if (vs)
      for (const auto& v : *vs) out += " " + std::to_string(v.version) + "=" + v.sha256.substr(0, 12);
    out += "\n";
  }
  auto rel = s.release_list();
  if (rel) {
    for (const auto& r : *rel) {
      auto full = s.release_show(r.name);
      out += "release " + r.name + ":";
      if (full)
        for (const auto& e : full->modules) out += " " + e.module + "@" + std::to_string(e.version);
      out += "\n";
    }
  }
  auto st = s.stats();
  if (st) out += "blobs " + std::to_string(st->blobs) + " stored " + std::to_string(st->stored_bytes) + "\n";
  auto h = s.history();
  if (h) {
    out += "events " + std::to_string(h->size());
    for (const auto& e : *h) out += " " + e.action + ":" + e.module + ":" + std::to_string(e.to_version);
  }
  return out;
}

struct Op {
  const char* name;
  std::function<Status(Store&)> run;
};

class StoreFault : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultVfs::install(/*make_default=*/true);
    images_ = small_otp_images(12);
    if (images_.size() < 12) GTEST_SKIP() << "needs images from an Erlang/OTP installation";
    for (const auto& b : images_) names_.push_back(module_of(b));
    base_ = (tmp_ / "base.db").string();
    auto s = Store::open(base_);
    ASSERT_TRUE(s) << s.error().to_string();
    Store& st = **s;
    // v1 of every module, named by release r1; then v2..v4 of the first six: v2 is what gc
    // may delete, v3 what a rollback returns to, v4 active.
    for (const auto& b : images_) ASSERT_TRUE(st.import(b, "v1", {.lib = "lib"}));
    ASSERT_TRUE(st.release_create("r1"));
    for (int v = 2; v <= 4; ++v) {
      for (std::size_t i = 0; i < 6; ++i) {
        auto r =
            st.import(variant(images_[i], "v" + std::to_string(v)), "v" + std::to_string(v), {.lib = "lib"});
        ASSERT_TRUE(r) << r.error().to_string();
      }
    }
    // The batch the import operation brings: new versions of modules 4..11, as files.
    batch_ = (tmp_ / "batch").string();
    fs::create_directories(batch_);
    for (std::size_t i = 4; i < 12; ++i)
      write_file(batch_ + "/" + names_[i] + ".beam", variant(images_[i], "batch"));
    ASSERT_TRUE(st.checkpoint());
  }

  // Runs `op` on a fresh copy of the fixture with `kind` armed at `nth` (0: unarmed).
  // Returns the operation's status; `fired` says whether the fault happened; `state` is the
  // digest after reopening normally, `check` runs the whole-store check.
  Status trial(const Op& op, FaultKind kind, std::int64_t nth, bool* fired, std::string* state,
               std::int64_t* calls) {
    const std::string db = (tmp_ / "trial.db").string();
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
    fs::copy_file(base_, db);
    Status result;
    {
      auto s = Store::open(db);
      EXPECT_TRUE(s) << s.error().to_string();
      if (!s) return s.error();
      FaultVfs::arm(kind, nth == 0 ? INT64_MAX : nth, /*persistent=*/true);
      result = op.run(**s);
      // The store closes here, still under the fault.
    }
    *fired = FaultVfs::fired();
    *calls = FaultVfs::count();
    FaultVfs::disarm();
    auto s = Store::open(db);
    EXPECT_TRUE(s) << op.name << " " << fault_kind_name(kind) << " #" << nth
                   << ": reopen: " << s.error().to_string();
    if (!s) return result;
    check_store(**s, std::string(op.name) + " " + fault_kind_name(kind) + " #" + std::to_string(nth),
                /*exact_blobs=*/false);
    *state = digest(**s);
    return result;
  }

  void run_op(const Op& op) {
    const std::int64_t cap =
        std::getenv("CODESTORE_FAULT_POINTS") ? std::atoll(std::getenv("CODESTORE_FAULT_POINTS")) : 60;
    bool fired = false;
    std::int64_t calls = 0;
    std::string before, after;
    {
      auto s = Store::open(base_);
      ASSERT_TRUE(s);
      before = digest(**s);
    }
    for (FaultKind kind : {FaultKind::kWrite, FaultKind::kSync, FaultKind::kRead, FaultKind::kDiskFull}) {
      // A clean run counts the calls of this kind: the fault points are 1..calls (+1, clean).
      Status clean = trial(op, kind, 0, &fired, &after, &calls);
      ASSERT_TRUE(clean) << op.name << ": " << clean.to_string();
      ASSERT_NE(after, before) << op.name << " changed nothing";
      const std::int64_t step = std::max<std::int64_t>(1, (calls + cap - 1) / cap);
      int points = 0, errors = 0;
      for (std::int64_t n = 1; n <= calls + 1; n += step) {
        std::string state;
        std::int64_t c = 0;
        const Status st = trial(op, kind, n, &fired, &state, &c);
        ++points;
        const std::string ctx = std::string(op.name) + " " + fault_kind_name(kind) + " #" + std::to_string(n);
        if (!st) {
          ++errors;
          EXPECT_FALSE(st.message().empty()) << ctx;
          EXPECT_NE(st.code(), Code::kInternal) << ctx << ": " << st.to_string();
          EXPECT_TRUE(state == before || state == after)
              << ctx << ": failed with " << st.to_string() << " and left a partial state:\n"
              << state;
          if (!fired) ADD_FAILURE() << ctx << ": failed without the fault: " << st.to_string();
        } else {
          // Success: the fault came after the commit (close, checkpoint) or never.
          EXPECT_EQ(state, after) << ctx << ": reported success but the state differs";
        }
        if (::testing::Test::HasFailure()) return;
      }
      total_points_ += points;
      std::printf("  %-16s %-9s %4lld calls, %3d points, %3d errors\n", op.name, fault_kind_name(kind),
                  static_cast<long long>(calls), points, errors);
    }
  }

  TempDir tmp_;
  std::string base_, batch_;
  std::vector<std::vector<std::uint8_t>> images_;
  std::vector<std::string> names_;
  int total_points_ = 0;
};

}  // namespace

TEST_F(StoreFault, ImportBatch) {
  run_op({"import_tree", [this](Store& s) -> Status {
            auto r = s.import_tree({batch_});
            return r ? Status() : r.error();
          }});
}

TEST_F(StoreFault, Import) {
  run_op({"import", [this](Store& s) -> Status {
            auto r = s.import(variant(images_[11], "single"), "single", {.lib = "lib"});
            return r ? Status() : r.error();
          }});
}

TEST_F(StoreFault, Rollback) {
  run_op({"rollback", [this](Store& s) -> Status {
            auto r = s.rollback(names_[0], Reason("fault test"));
            return r ? Status() : r.error();
          }});
}

TEST_F(StoreFault, ReleaseRollback) {
  run_op({"release_rollback", [](Store& s) -> Status {
            auto r = s.release_rollback("r1", Reason("fault test"));
            return r ? Status() : r.error();
          }});
}

TEST_F(StoreFault, Gc) {
  run_op({"gc", [](Store& s) -> Status {
            auto r = s.gc(GcOptions{});
            if (r && r->deleted.empty())
              return Status(Code::kInternal, "gc deleted nothing: the fixture is wrong");
            return r ? Status() : r.error();
          }});
}

TEST_F(StoreFault, Compact) {
  run_op({"compact", [](Store& s) -> Status {
            CompactOptions o;
            o.level = 19;
            auto r = s.compact(o);
            return r ? Status() : r.error();
          }});
}

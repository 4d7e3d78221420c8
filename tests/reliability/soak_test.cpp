// Concurrency soak: for a bounded time (CODESTORE_SOAK_SECONDS, default 30), on one
// database,
//   * two importing processes (single imports and import_tree batches of new variants),
//   * one process running rollback, release rollback, release create, delete_version and gc,
//   * this process as a host: a code server over the store's lib (`lib:soak`) whose sync
//     thread follows the store, while caller threads make fully qualified calls and check
//     every instance they enter (its bytes parse and have the md5 it claims: no torn state).
// Imported variants differ in their module md5 (StrT grows), so each one is new code to sync().
// Afterwards: integrity and verify pass; version numbers per module are unique and strictly
// increasing and every missing number has a delete or gc event; every event is accounted
// for by an operation some process reported. Labelled `threads`: CI also runs it under
// ThreadSanitizer.
#include <codestore/code_server.h>
#include <codestore/store.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store_util.h"

namespace fs = std::filesystem;
using namespace codestore;
using namespace codestore::testing;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kModules = 20;

double soak_seconds() {
  const char* s = std::getenv("CODESTORE_SOAK_SECONDS");
  return s ? std::atof(s) : 30.0;
}

// What a child did, by operation: "import" successes, "busy" refusals, ... written to a file
// as `key count` lines when it ends.
using Counts = std::map<std::string, long>;

void write_counts(const std::string& path, const Counts& c) {
  std::ofstream out(path);
  for (const auto& [k, v] : c) out << k << ' ' << v << '\n';
}
Counts read_counts(const std::string& path) {
  Counts c;
  std::ifstream in(path);
  std::string k;
  long v;
  while (in >> k >> v) c[k] += v;
  return c;
}

// An error a concurrent operation may meet: a refusal of the state, or a lock not granted.
// Anything else (corruption, an I/O error, an internal error) ends the child with status 3.
void expected_or_die(const Status& s, Counts& c, const char* what) {
  switch (s.code()) {
    case Code::kBusy: ++c["busy"]; return;
    case Code::kFailedPrecondition:
    case Code::kNotFound:
    case Code::kAlreadyExists: ++c[std::string(what) + "-refused"]; return;
    default: std::fprintf(stderr, "soak child: %s: %s\n", what, s.to_string().c_str()); _exit(3);
  }
}

[[noreturn]] void importer(const std::string& db, const std::string& out, int id, const std::string& dir,
                           const std::vector<std::vector<std::uint8_t>>& images, Clock::time_point end) {
  Counts c;
  auto store = Store::open(db);
  if (!store) _exit(2);
  std::mt19937 rng(static_cast<unsigned>(id * 7919 + getpid()));
  for (long n = 0; Clock::now() < end; ++n) {
    const std::string tag = "p" + std::to_string(id) + "-" + std::to_string(n);
    if (n % 10 == 9) {
      // A batch of 5 in one transaction.
      const fs::path batch = fs::path(dir) / tag;
      fs::create_directories(batch);
      for (int k = 0; k < 5; ++k) {
        const auto& img = images[(rng() % kModules)];
        write_file((batch / (module_of(img) + ".beam")).string(), code_variant(img, tag));
      }
      ImportOptions o;
      o.lib = "soak";
      auto r = (*store)->import_tree({batch.string()}, o);
      if (r)
        c["import"] += static_cast<long>(r->new_versions);
      else
        expected_or_die(r.error(), c, "import_tree");
      fs::remove_all(batch);
    } else {
      auto r = (*store)->import(code_variant(images[rng() % kModules], tag), tag, {.lib = "soak"});
      if (r)
        c["import"] += r->unchanged ? 0 : 1;
      else
        expected_or_die(r.error(), c, "import");
    }
  }
  write_counts(out, c);
  _exit(0);
}

[[noreturn]] void operator_(const std::string& db, const std::string& out,
                            const std::vector<std::string>& names, Clock::time_point end) {
  Counts c;
  auto store = Store::open(db);
  if (!store) _exit(2);
  Store& s = **store;
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  for (long n = 0; Clock::now() < end; ++n) {
    const std::string& m = names[rng() % names.size()];
    switch (n % 10) {
      case 0: {
        auto r = s.release_rollback("base", Reason("soak"));
        if (r)
          ++c["release-rollback"];
        else
          expected_or_die(r.error(), c, "release-rollback");
        break;
      }
      case 1: {
        auto r = s.release_create("r" + std::to_string(n));
        if (r)
          ++c["release-create"];
        else
          expected_or_die(r.error(), c, "release-create");
        break;
      }
      case 2: {
        auto vs = s.versions(m);
        if (vs && !vs->empty()) {
          const auto& v = (*vs)[rng() % vs->size()];
          Status st = s.delete_version(m, v.version, Reason("soak"));
          if (st)
            ++c["delete"];
          else
            expected_or_die(st, c, "delete");
        }
        break;
      }
      case 3: {
        if (n % 50 == 3) {
          GcOptions o;
          o.keep_last = 3;
          auto r = s.gc(o);
          if (r)
            c["gc"] += static_cast<long>(r->deleted.size());
          else
            expected_or_die(r.error(), c, "gc");
        }
        break;
      }
      default: {
        auto r = s.rollback(m, Reason("soak"));
        if (r)
          ++c["rollback"];
        else
          expected_or_die(r.error(), c, "rollback");
      }
    }
  }
  write_counts(out, c);
  _exit(0);
}

}  // namespace

TEST(Soak, ImportersOperatorAndSyncingHostNeverCorrupt) {
  TempDir tmp;
  const auto images = small_otp_images(kModules);
  if (images.size() < kModules) GTEST_SKIP() << "needs images from an Erlang/OTP installation";
  std::vector<std::string> names;
  for (const auto& b : images) names.push_back(module_of(b));
  const std::string db = (tmp / "soak.db").string();
  {
    auto s = Store::open(db);
    ASSERT_TRUE(s) << s.error().to_string();
    for (const auto& b : images) ASSERT_TRUE((*s)->import(b, "base", {.lib = "soak"}));
    ASSERT_TRUE((*s)->release_create("base"));
  }
  const double seconds = soak_seconds();
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));

  // The children first, before this process starts any thread.
  std::vector<pid_t> children;
  std::vector<std::string> outs;
  for (int id = 0; id < 3; ++id) {
    outs.push_back((tmp / "counts-").string() + std::to_string(id));
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (id < 2) importer(db, outs.back(), id, tmp.path(), images, end);
      operator_(db, outs.back(), names, end);
    }
    children.push_back(pid);
  }

  // The host: a code server over the store, a sync thread, caller threads.
  std::shared_ptr<Store> store;
  {
    auto s = Store::open(db);
    ASSERT_TRUE(s) << s.error().to_string();
    store = std::move(*s);
  }
  loader::Options options;
  options.libs = loader::store_lib_source(store);
  options.path = {"lib:soak"};
  options.stick_default = false;
  auto server = loader::CodeServer::create(std::move(options));
  ASSERT_TRUE(server) << server.error().to_string();
  loader::CodeServer& cs = **server;

  std::atomic<long> syncs{0}, changes{0}, calls{0}, undef{0}, killed{0}, torn{0}, checked{0};
  std::atomic<bool> stop{false};
  std::thread syncer([&] {
    while (!stop) {
      auto r = cs.sync(loader::SyncPolicy::kBrutal);
      ++syncs;
      changes += static_cast<long>(r.changed.size());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::map<const void*, bool> seen;  // instances already checked by this thread
      while (!stop) {
        auto p = cs.spawn("caller");
        const std::string& m = names[rng() % names.size()];
        auto r = p->call(m, "module_info", 0);
        ++calls;
        if (!r) {
          if (r.error().reason() == loader::reason::kKilled)
            ++killed;
          else
            ++undef;
        } else {
          const loader::Instance* inst = *r;
          if (seen.emplace(inst, true).second) {
            // No torn state: the bytes the instance holds are an image with the md5 it claims.
            auto img = image::Image::parse(inst->bytes(), image::Strictness::kStrict);
            auto md5 = img ? img->md5() : Result<image::Md5>(error(img.error()));
            if (!md5 || *md5 != inst->md5() || inst->module() != m) ++torn;
            ++checked;
          }
          // Stay in the module a little: a sync may kill this process (three-version rule).
          auto again = p->local_call();
          if (!again && again.error().reason() == loader::reason::kKilled) ++killed;
        }
        p->exit();
      }
    });
  }
  std::this_thread::sleep_until(end);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a soak child failed: status " << status;
  }
  stop = true;
  syncer.join();
  for (auto& t : callers) t.join();
  server->reset();
  store.reset();

  Counts total;
  for (const auto& o : outs)
    for (const auto& [k, v] : read_counts(o)) total[k] += v;

  auto s = Store::open(db);
  ASSERT_TRUE(s);
  check_store(**s, "after the soak", /*exact_blobs=*/false);

  // Versions: unique, strictly increasing, every gap explained by a delete or gc event.
  auto history = (*s)->history();
  ASSERT_TRUE(history);
  std::set<std::pair<std::string, std::int64_t>> removed;
  Counts events;
  for (const auto& e : *history) {
    ++events[e.action + (e.module.empty() ? "(store)" : "")];
    if (e.action == "delete" || e.action == "gc") removed.insert({e.module, e.from_version});
  }
  long versions_now = 0;
  for (const auto& m : names) {
    auto vs = (*s)->versions(m);
    ASSERT_TRUE(vs);
    std::int64_t last = 0;
    std::set<std::int64_t> present;
    for (const auto& v : *vs) {
      EXPECT_GT(v.version, last) << m << ": versions not strictly increasing";
      last = v.version;
      present.insert(v.version);
      EXPECT_EQ(removed.count({m, v.version}), 0u)
          << m << "@" << v.version << " has a delete/gc event but is still there";
    }
    versions_now += static_cast<long>(vs->size());
    auto info = (*s)->list();
    ASSERT_TRUE(info);
    for (const auto& sum : *info) {
      if (sum.module != m) continue;
      for (std::int64_t n = 1; n <= sum.latest_version; ++n) {
        if (!present.count(n)) {
          EXPECT_EQ(removed.count({m, n}), 1u) << m << "@" << n << " is missing without a delete or gc event";
        }
      }
    }
  }
  // Events: every one matches an operation a process reported (the base import adds kModules).
  EXPECT_EQ(events["import"], total["import"] + static_cast<long>(kModules));
  EXPECT_EQ(events["delete"], total["delete"]);
  EXPECT_EQ(events["gc"], total["gc"]);
  EXPECT_EQ(events["rollback"], total["rollback"]);
  EXPECT_EQ(events["release-rollback(store)"], total["release-rollback"]);
  EXPECT_EQ(events["release-create(store)"] + events["release-create"], total["release-create"] + 1);
  EXPECT_EQ(versions_now, total["import"] + static_cast<long>(kModules) - total["delete"] - total["gc"]);
  EXPECT_EQ(torn.load(), 0) << "instances whose bytes do not match their md5";
  EXPECT_GT(checked.load(), 0);

  std::printf(
      "  %.0f s: imports %ld, rollbacks %ld, release rollbacks %ld, release creates %ld, deletes %ld, "
      "gc'd %ld, busy %ld, refused %ld; host: %ld syncs (%ld changes), %ld calls (%ld undef, %ld killed), "
      "%ld instances checked, %ld torn\n",
      seconds, total["import"], total["rollback"], total["release-rollback"], total["release-create"],
      total["delete"], total["gc"], total["busy"],
      total["rollback-refused"] + total["delete-refused"] + total["release-rollback-refused"] +
          total["release-create-refused"] + total["import-refused"],
      syncs.load(), changes.load(), calls.load(), undef.load(), killed.load(), checked.load(), torn.load());
  for (const auto& [k, v] : events) std::printf("    event %s: %ld\n", k.c_str(), v);
}

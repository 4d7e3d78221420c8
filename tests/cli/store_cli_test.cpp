// The store's commands as a user meets them (issue 11): module references (MODULE@V),
// imports of real trees (links, shadowed application versions, files that are not images),
// repairs, and long work (progress lines, Ctrl-C, --wait). In-process through cli::run where
// that is enough; the built `codestore` binary where a terminal or a signal is needed. On
// both backends (`--db FILE`, `--db postgresql://...`) but for what only a file has.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/backend.h"
#include "store/raw_db.h"
#include "store/store_test_util.h"
#include "support/corpus.h"

extern char** environ;

namespace codestore {
namespace {

using namespace store_testing;
using Json = nlohmann::json;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// hello.beam renamed to `name`: atom 1 of its AtU8 chunk (the module name) rewritten, every
// other chunk kept. The code refers to atoms by index, so the image stays loadable.
std::vector<std::uint8_t> renamed(const std::string& name) {
  const auto bytes = read_file(fixture("hello.beam"));
  auto img = image::Image::parse(bytes, image::Strictness::kStrict, "hello.beam");
  EXPECT_TRUE(img.has_value());
  std::vector<std::vector<std::uint8_t>> keep;
  std::vector<image::ChunkData> chunks;
  for (const auto& c : img->chunks()) {
    const auto data = img->data(c);
    if (c.id_view() != "AtU8") {
      chunks.push_back({std::string(c.id_view()), data});
      continue;
    }
    // u32 count, then u8 length + bytes per atom; atom 1 is the module.
    std::vector<std::uint8_t> atoms(data.begin(), data.begin() + 4);
    atoms.push_back(static_cast<std::uint8_t>(name.size()));
    atoms.insert(atoms.end(), name.begin(), name.end());
    atoms.insert(atoms.end(), data.begin() + 5 + data[4], data.end());
    keep.push_back(std::move(atoms));
    chunks.push_back({"AtU8", keep.back()});
  }
  auto built = image::build_module(chunks);
  EXPECT_TRUE(built.has_value());
  return built ? *built : std::vector<std::uint8_t>{};
}

// --- helpers: raw SQLite, child processes on a pseudo-terminal --------------------------------

// Flips one byte in the middle of the stored frame of `module`'s active version, through a
// second, plain SQLite connection to the store's file, as a bad disk would.
void damage_blob_of(const std::string& db, const std::string& module) {
  RawDb raw(db);
  const std::string of = fmt::format(
      "FROM blobs b JOIN versions v ON v.blob_id = b.id JOIN channel_modules cm ON cm.channel = 'default' "
      "AND "
      "cm.module = v.module AND cm.version = v.version WHERE v.module = '{}'",
      module);
  const std::int64_t id = raw.scalar("SELECT b.id " + of);
  ASSERT_GT(id, 0) << module;
  auto frame = raw.blob("SELECT b.data " + of);
  frame[frame.size() / 2] ^= 0x5a;
  raw.set_blob(fmt::format("UPDATE blobs SET data = ?1 WHERE id = {}", id), frame);
}

// A child process (the built codestore, or erl) whose stdout and stderr are one
// pseudo-terminal of `columns` columns, as a user's shell gives it.
class PtyChild {
 public:
  PtyChild(const std::vector<std::string>& argv, unsigned short columns) {
    struct winsize ws {};
    ws.ws_row = 24;
    ws.ws_col = columns;
    int slave = -1;
    EXPECT_EQ(::openpty(&master_, &slave, nullptr, nullptr, &ws), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, slave, 1);
    posix_spawn_file_actions_adddup2(&fa, slave, 2);
    posix_spawn_file_actions_addclose(&fa, master_);
    posix_spawn_file_actions_addclose(&fa, slave);
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    EXPECT_EQ(posix_spawnp(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(slave);
  }
  ~PtyChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (master_ >= 0) ::close(master_);
  }
  PtyChild(const PtyChild&) = delete;
  PtyChild& operator=(const PtyChild&) = delete;

  // Reads until `needle` is in the output (true) or the child closed the terminal (false).
  // Bounded: a child silent for 120 s fails the test rather than hang it.
  bool read_until(const std::string& needle) {
    while (output_.find(needle) == std::string::npos) {
      if (!read_some()) return false;
    }
    return true;
  }
  // Reads to the end, then reaps the child: its exit code (128 + signal when killed).
  int finish() {
    while (read_some()) {
    }
    return wait();
  }
  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }

 private:
  bool read_some() {
    struct pollfd p {
      master_, POLLIN, 0
    };
    if (::poll(&p, 1, 120000) <= 0) {
      ADD_FAILURE() << "the child wrote nothing for 120 s; output so far:\n" << output_;
      return false;
    }
    char buf[4096];
    const ssize_t n = ::read(master_, buf, sizeof buf);
    if (n <= 0) return false;  // EIO: every writer of the terminal is gone
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  int master_ = -1;
  pid_t pid_ = -1;
  std::string output_;
};

// Runs argv to its end with output in a file; returns (exit code, output).
std::pair<int, std::string> run_to_end(const std::vector<std::string>& argv, const std::string& scratch,
                                       const std::vector<std::string>& env_extra = {}) {
  const std::string out = scratch + "/run.out";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<std::string> args = argv, env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> cargv, cenv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return {-1, "cannot run " + argv[0]};
  int status = 0;
  ::waitpid(pid, &status, 0);
  const auto bytes = read_file(out);
  fs::remove(out);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
          std::string(bytes.begin(), bytes.end())};
}

bool have_erl(const std::string& scratch) {
  return run_to_end({"sh", "-c", "command -v erl"}, scratch).first == 0;
}

// gzip of `bytes` (as `gzip` writes it).
std::vector<std::uint8_t> gzip(const std::vector<std::uint8_t>& bytes) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&z, bytes.size()) + 64);
  z.next_in = const_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::vector<std::uint8_t> text_bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

// On both backends (backend.h: a file, or a database on the tests' PostgreSQL server);
// StoreFileCommands are a SQLite file's (they damage its pages, hold its lock, or are about
// the terminal alone).
class StoreCommands : public BackendTest {
 protected:
  void SetUp() override {
    db_ = store_at(dir_);
    ASSERT_EQ(run_cli(db_, {"init"}).code, 0);
  }
  CliResult cli(std::vector<std::string> args) { return run_cli(db_, std::move(args)); }
  // Imports hello variant n from a file of its own; returns the version.
  std::int64_t imp(int n) {
    const std::string file = dir_ / ("in/hello_" + std::to_string(n) + ".beam");
    write_file(file, variant("hello.beam", n));
    auto store = open_or_die(db_);
    return import_bytes(*store, read_file(file), file);
  }

  TempDir dir_;
  std::string db_;
};
CODESTORE_BOTH_BACKENDS(StoreCommands);

class StoreFileCommands : public StoreCommands {};
INSTANTIATE_TEST_SUITE_P(Backends, StoreFileCommands, ::testing::Values(Backend::kSqlite), backend_name);

// --- item 5: MODULE@V --------------------------------------------------------------------

TEST_P(StoreCommands, VersionZeroAndNonNumbersAreUsageErrorsNamingWhatIsAllowed) {
  imp(0);
  imp(1);
  const std::string out = dir_ / "out.beam";
  const std::vector<std::vector<std::string>> commands = {{"show", "hello@0"},
                                                          {"show", "hello@x"},
                                                          {"show", "hello@-1"},
                                                          {"export", "hello@0", "-o", out},
                                                          {"export", "hello@x", "-o", out},
                                                          {"activate", "hello@0"},
                                                          {"activate", "hello@x"},
                                                          {"delete", "hello@0"},
                                                          {"rollback", "hello", "--to", "0"},
                                                          {"rollback", "hello", "--to", "x"},
                                                          {"rollback", "hello", "--to", "-3"}};
  for (const auto& args : commands) {
    const auto r = cli(args);
    const std::string what = args[0] + " " + args[1] + (args.size() > 2 ? " " + args[2] + " " + args[3] : "");
    EXPECT_EQ(r.code, 2) << what << ": " << r.err;
    // --to is checked as every numeric option is ("--to must be ... at least 1, not 0").
    const bool to = args.size() > 2 && args[2] == "--to";
    const std::string allowed = to ? "at least 1" : "versions are whole numbers from 1";
    EXPECT_TRUE(contains(r.err, allowed)) << what << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << what << ": " << r.out;
  }
  EXPECT_FALSE(fs::exists(out));
  // Nothing changed: version 2 is still active, 1 still stored.
  auto store = open_or_die(db_);
  EXPECT_EQ(store->active_info("hello")->version, 2);
  EXPECT_EQ(store->versions("hello")->size(), 2u);
  // The forms that are allowed still work.
  EXPECT_EQ(cli({"show", "hello@1"}).code, 0);
  EXPECT_EQ(cli({"show", "hello"}).code, 0);
  EXPECT_EQ(cli({"rollback", "hello", "--to", "1"}).code, 0);
}

TEST_P(StoreCommands, AModuleWhoseNameContainsAnAtIsNamedWithATrailingAt) {
  // The text after the last '@' is the version; `NAME@` names the active version of NAME,
  // so a module called a@b is `a@b@` (active) or `a@b@1`.
  auto store = open_or_die(db_);
  ASSERT_EQ(import_bytes(*store, renamed("a@b"), "a@b.beam"), 1);
  store.reset();
  auto show = cli({"--json", "show", "a@b@"});
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_EQ(Json::parse(show.out)["module"], "a@b");
  show = cli({"--json", "show", "a@b@1"});
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_EQ(Json::parse(show.out)["version"], 1);
  const std::string out = dir_ / "ab.beam";
  ASSERT_EQ(cli({"export", "a@b@", "-o", out}).code, 0);
  EXPECT_EQ(read_file(out), renamed("a@b"));
  EXPECT_EQ(cli({"activate", "a@b@1"}).code, 0);
  // Without the trailing '@', "b" is read as a version: a usage error that says how to
  // name such a module.
  const auto bad = cli({"show", "a@b"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "a@b@")) << bad.err;
}

// --- item 7: imports -----------------------------------------------------------------------

TEST_P(StoreCommands, ADirectoryWithoutImagesIsAnErrorNotFilesZero) {
  fs::create_directories(dir_ / "empty");
  write_file(dir_ / "notes/README", text_bytes("no code here\n"));
  for (const fs::path& d : {dir_ / "empty", dir_ / "notes"}) {
    const auto r = cli({"import", d});
    EXPECT_EQ(r.code, 1) << d << ": " << r.out;
    EXPECT_TRUE(contains(r.err, d)) << r.err;
    EXPECT_TRUE(contains(r.err, "no module images")) << r.err;
    EXPECT_FALSE(contains(r.out, "files 0")) << r.out;
  }
  EXPECT_TRUE(open_or_die(db_)->list()->empty());
}

TEST_P(StoreCommands, SymlinkedDirectoriesAreFollowedOnceWithLoopsAndDanglingLinksSkipped) {
  // As `rebar3 release` lays it out: rel/lib/<app>-<vsn> links to _build/default/lib/<app>.
  write_file(dir_ / "_build/default/lib/hello/ebin/hello.beam", variant("hello.beam", 1));
  write_file(dir_ / "_build/default/lib/attrs/ebin/attrs.beam", read_file(fixture("attrs.beam")));
  fs::create_directories(dir_ / "rel/lib");
  fs::create_directory_symlink("../../_build/default/lib/hello", dir_ / "rel/lib/hello-1.0.0");
  fs::create_directory_symlink("../../_build/default/lib/attrs", dir_ / "rel/lib/attrs-2.1");
  fs::create_directory_symlink("../../_build/default/lib/attrs",
                               dir_ / "rel/lib/zz_again");                // the same real directory
  fs::create_directory_symlink("..", dir_ / "rel/lib/loop");              // back to rel/
  fs::create_directory_symlink("../nowhere", dir_ / "rel/lib/gone-1.0");  // dangling
  const auto r = cli({"--json", "import", dir_ / "rel"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = Json::parse(r.out);
  EXPECT_EQ(j["files"], 2);  // each real file once
  EXPECT_EQ(j["new_versions"], 2);
  const std::string warnings = j["warnings"].dump();
  EXPECT_TRUE(contains(warnings, "gone-1.0") && contains(warnings, "dangling")) << warnings;
  EXPECT_TRUE(contains(warnings, "loop") && contains(warnings, "not followed")) << warnings;
  auto store = open_or_die(db_);
  // The lib comes from the path as the release names it.
  const auto hello = store->active_info("hello"), attrs = store->active_info("attrs");
  ASSERT_TRUE(hello && attrs);
  EXPECT_EQ(hello->lib, "hello");
  EXPECT_EQ(attrs->lib, "attrs");
  EXPECT_TRUE(contains(attrs->origin, "rel/lib/attrs-2.1/ebin/attrs.beam")) << attrs->origin;
}

TEST_P(StoreCommands, AFileThatIsNotAModuleImageSaysWhatItLooksLike) {
  std::vector<std::uint8_t> tar(1024, 0);
  std::copy_n("hello/ebin/hello.beam", 21, tar.begin());
  std::copy_n("ustar", 5, tar.begin() + 257);
  std::vector<std::uint8_t> zip = text_bytes(std::string("PK\x03\x04", 4) + "hello/ebin/hello.beam");
  zip.resize(64, 0);
  const std::vector<std::pair<std::string, std::vector<std::uint8_t>>> files = {
      {"hello-1.0.tar.gz", gzip(tar)},
      {"hello.tar", tar},
      {"hello-1.0.ez", zip},
      {"hello.app", text_bytes("{application, hello,\n [{vsn, \"1.0\"}, {modules, [hello]}]}.\n")},
      {"hello.erl", text_bytes("%% a greeting\n-module(hello).\n-export([hi/0]).\nhi() -> hello.\n")},
      {"hello.beam", text_bytes("-module(hello).\n")},  // source saved under the wrong name
  };
  const std::map<std::string, std::string> looks = {
      {"hello-1.0.tar.gz", "tar archive"}, {"hello.tar", "tar archive"},
      {"hello-1.0.ez", "zip archive"},     {"hello.app", "application resource file"},
      {"hello.erl", "Erlang source"},      {"hello.beam", "Erlang source"},
  };
  for (const auto& [name, bytes] : files) {
    write_file(dir_ / name, bytes);
    const auto r = cli({"import", dir_ / name});
    EXPECT_EQ(r.code, 1) << name;
    EXPECT_TRUE(contains(r.err, name)) << name << ": " << r.err;
    if (name.ends_with(".tar.gz") || name.ends_with(".tar") || name.ends_with(".ez")) {
      // A release tarball or an .ez is read as one (issue 13): these are damaged ones, and
      // the archive reader says what is wrong with them (docs/archives.md).
      EXPECT_TRUE(contains(r.err, name.ends_with(".ez") ? "zip archive" : "tar archive"))
          << name << ": " << r.err;
      continue;
    }
    EXPECT_TRUE(contains(r.err, "not a module image")) << name << ": " << r.err;
    EXPECT_TRUE(contains(r.err, looks.at(name))) << name << ": " << r.err;
    EXPECT_FALSE(contains(r.err, "corruption")) << name << ": " << r.err;
  }
  EXPECT_TRUE(open_or_die(db_)->list()->empty()) << "nothing written";
  // A damaged image is still corruption.
  auto cut = read_file(fixture("hello.beam"));
  cut.resize(cut.size() / 2);
  write_file(dir_ / "cut.beam", cut);
  const auto r = cli({"import", dir_ / "cut.beam"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "corruption")) << r.err;
  EXPECT_TRUE(open_or_die(db_)->list()->empty());
}

TEST_P(StoreCommands, TheHighestApplicationVersionBecomesActiveAsOtpChoosesIt) {
  // Byte order would put foo-0.9.0 last; OTP's order ([0,10,0] > [0,10] > [0,9,0]) picks 0.10.0.
  write_file(dir_ / "lib/foo-0.9.0/ebin/hello.beam", variant("hello.beam", 9));
  write_file(dir_ / "lib/foo-0.10.0/ebin/hello.beam", variant("hello.beam", 100));
  write_file(dir_ / "lib/foo-0.10/ebin/hello.beam", variant("hello.beam", 10));
  const auto r = cli({"import", dir_ / "lib"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto store = open_or_die(db_);
  const auto active = store->active_info("hello");
  ASSERT_TRUE(active);
  EXPECT_EQ(active->origin, dir_ / "lib/foo-0.10.0/ebin/hello.beam");
  EXPECT_EQ(store->versions("hello")->size(), 3u);
  // The summary names the shadowed files and the one that is active instead.
  EXPECT_TRUE(contains(r.out, "foo-0.9.0/ebin/hello.beam")) << r.out;
  EXPECT_TRUE(contains(r.out, "shadowed: " + (dir_ / "lib/foo-0.10.0/ebin/hello.beam").string())) << r.out;

  // Erlang's own code server, given the same directory as ERL_LIBS, loads the same file.
  if (!have_erl(dir_.path())) GTEST_SKIP() << "erl is not installed";
  const auto [code, out] =
      run_to_end({"erl", "-noshell", "-eval", "io:format(\"which=~s~n\", [code:which(hello)]), halt()."},
                 dir_.path(), {"ERL_LIBS=" + (dir_ / "lib").string()});
  ASSERT_EQ(code, 0) << out;
  EXPECT_TRUE(contains(out, "which=" + active->origin)) << out;
}

TEST_P(StoreCommands, TheActiveFileIsTheOneErlangsCodeServerChoosesAmongOddDirectoryNames) {
  // code_server:choose_bundles/1 compares {Name, [Integers], FullName}: "foo" is {"foo", [0]},
  // "foo-01.0" is [1,0], "foo-1" is [1] (less than [1,0]); "foo-0.9.0-rc1", whose last part
  // is no version, is a name of its own, greater than "foo". Erlang is the judge.
  if (!have_erl(dir_.path())) GTEST_SKIP() << "erl is not installed";
  const std::vector<std::vector<std::string>> layouts = {
      {"foo", "foo-01.0", "foo-1", "foo-0.10.0", "fo-9.9"},
      {"foo-2.0", "foo-0.9.0-rc1", "foo-10"},
  };
  int n = 0;
  for (std::size_t l = 0; l < layouts.size(); ++l) {
    const std::string lib = dir_ / ("lib" + std::to_string(l));
    for (const auto& app : layouts[l])
      write_file(lib + "/" + app + "/ebin/hello.beam", variant("hello.beam", ++n));
    const auto [code, out] =
        run_to_end({"erl", "-noshell", "-eval", "io:format(\"which=~s~n\", [code:which(hello)]), halt()."},
                   dir_.path(), {"ERL_LIBS=" + lib});
    ASSERT_EQ(code, 0) << out;
    const std::string db = dir_ / ("layout" + std::to_string(l) + ".db");
    ASSERT_EQ(run_cli(db, {"init"}).code, 0);
    ASSERT_EQ(run_cli(db, {"import", lib}).code, 0);
    const auto active = open_or_die(db)->active_info("hello");
    ASSERT_TRUE(active);
    EXPECT_TRUE(contains(out, "which=" + active->origin + "\n"))
        << "erl: " << out << "codestore: " << active->origin;
  }
}

TEST_P(StoreCommands, AFileOutsideEbinWarnsThatItsModuleLeavesItsLibAndLibKeepsIt) {
  write_file(dir_ / "app-1.0/ebin/hello.beam", variant("hello.beam", 1));
  ASSERT_EQ(cli({"import", dir_ / "app-1.0"}).code, 0);
  write_file(dir_ / "patch/hello.beam", variant("hello.beam", 2));
  auto r = cli({"import", dir_ / "patch/hello.beam"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "leaves lib app")) << r.err;
  EXPECT_TRUE(contains(r.err, "--lib app")) << r.err;
  EXPECT_EQ(open_or_die(db_)->active_info("hello")->lib, "");
  // --lib keeps it, and then there is nothing to warn about.
  write_file(dir_ / "patch2/hello.beam", variant("hello.beam", 3));
  ASSERT_EQ(cli({"activate", "hello@1"}).code, 0);
  r = cli({"import", dir_ / "patch2/hello.beam", "--lib", "app"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "leaves")) << r.err;
  EXPECT_EQ(open_or_die(db_)->active_info("hello")->lib, "app");
}

TEST_P(StoreCommands, TheSameCodeInOtherBytesIsUnchangedUnlessBytesAsksForByteIdentity) {
  const auto original = read_file(fixture("hello.beam"));
  write_file(dir_ / "a/hello.beam", original);
  ASSERT_EQ(cli({"import", dir_ / "a/hello.beam"}).code, 0);
  // beam_lib:strip keeps the chunks the module MD5 covers, and gzip-wraps: other bytes, same code.
  auto img = image::Image::parse(original, image::Strictness::kStrict, "hello.beam");
  ASSERT_TRUE(img);
  auto stripped = image::strip(*img);
  ASSERT_TRUE(stripped);
  ASSERT_NE(*stripped, original);
  write_file(dir_ / "b/hello.beam", *stripped);
  auto r = cli({"--json", "import", dir_ / "b/hello.beam"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = Json::parse(r.out);
  EXPECT_EQ(j["unchanged"], 1);
  EXPECT_EQ(j["new_versions"], 0);
  EXPECT_TRUE(j["changed"].empty());
  EXPECT_EQ(open_or_die(db_)->versions("hello")->size(), 1u);
  r = cli({"--json", "import", "--bytes", dir_ / "b/hello.beam"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = Json::parse(r.out);
  EXPECT_EQ(j["new_versions"], 1);
  EXPECT_EQ(open_or_die(db_)->versions("hello")->size(), 2u);
}

TEST_P(StoreCommands, TheSummaryListsTheModulesThatChangedAndTheRatioCountsNewBytesOnly) {
  write_file(dir_ / "t/app-1/ebin/hello.beam", variant("hello.beam", 1));
  write_file(dir_ / "t/app-1/ebin/attrs.beam", read_file(fixture("attrs.beam")));
  ASSERT_EQ(cli({"import", dir_ / "t"}).code, 0);
  const auto changed = variant("hello.beam", 2);
  write_file(dir_ / "t/app-1/ebin/hello.beam", changed);
  auto r = cli({"import", dir_ / "t"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "hello: 1 -> 2")) << r.out;
  EXPECT_FALSE(contains(r.out, "attrs:")) << r.out;
  write_file(dir_ / "t/app-1/ebin/hello.beam", variant("hello.beam", 3));
  r = cli({"--json", "import", dir_ / "t"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = Json::parse(r.out);
  ASSERT_EQ(j["changed"].size(), 1u);
  EXPECT_EQ(j["changed"][0]["module"], "hello");
  EXPECT_EQ(j["changed"][0]["from"], 2);
  EXPECT_EQ(j["changed"][0]["to"], 3);
  EXPECT_EQ(j["bytes_new"], variant("hello.beam", 3).size());
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), j["bytes_stored"].get<double>() / j["bytes_new"].get<double>());
}

// A big batch (more modules than the store writes to one statement of a generation's rows)
// is one generation pinning each module, read back as the generation that added them all.
TEST_P(StoreCommands, ABigImportIsOneGenerationPinningEveryModule) {
  constexpr int kModules = 150;
  std::vector<Activation> added;
  for (int i = 0; i < kModules; ++i) {
    const std::string name = "m" + std::to_string(1000 + i).substr(1);  // m000, m001, ...
    write_file(dir_ / ("t/app-1/ebin/" + name + ".beam"), renamed(name));
    added.push_back({name, 0, 1});
  }
  const auto r = cli({"import", dir_ / "t"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto store = open_or_die(db_);
  auto g = store->channel_generation("default");
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->number, 1);
  EXPECT_EQ(g->added, kModules);
  EXPECT_EQ(g->changes, added);
  // One module moves on: the next generation changes it alone, the first still pins them all.
  write_file(dir_ / "t/app-1/ebin/m007.beam", variant_of(renamed("m007"), "m007.beam", 1));
  ASSERT_EQ(cli({"import", dir_ / "t/app-1/ebin/m007.beam"}).code, 0);
  g = store->channel_generation("default", 1);
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->changes, added);
  auto last = store->channel_generation("default");
  ASSERT_TRUE(last) << last.error().to_string();
  EXPECT_EQ(last->changes, (std::vector<Activation>{{"m007", 1, 2}}));
  EXPECT_EQ(store->list()->size(), static_cast<std::size_t>(kModules));
}

// --- item 9: repair ------------------------------------------------------------------------

TEST_P(StoreFileCommands, ReimportingTheOriginalBytesRepairsADamagedBlob) {
  const auto original = read_file(fixture("hello.beam"));
  write_file(dir_ / "in/hello.beam", original);
  ASSERT_EQ(cli({"import", dir_ / "in/hello.beam"}).code, 0);
  const std::string sha = open_or_die(db_)->active_info("hello")->sha256;
  damage_blob_of(db_, "hello");
  ASSERT_EQ(cli({"verify"}).code, 3);
  auto r = cli({"import", dir_ / "in/hello.beam"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "repaired")) << r.out;
  EXPECT_EQ(cli({"verify"}).code, 0);
  auto store = open_or_die(db_);
  EXPECT_EQ(store->versions("hello")->size(), 1u);
  EXPECT_EQ(store->active_info("hello")->sha256, sha);
  const auto got = store->get("hello", 1, true);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, original);
}

TEST_P(StoreFileCommands, CompactReportsAndSkipsADamagedBlob) {
  imp(1);
  auto store = open_or_die(db_);
  ASSERT_EQ(import_bytes(*store, read_file(fixture("attrs.beam")), "attrs.beam"), 1);
  store.reset();
  damage_blob_of(db_, "hello");
  const auto r = cli({"--json", "compact", "--level", "5"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = Json::parse(r.out);
  EXPECT_EQ(j["blobs"], 1);
  ASSERT_EQ(j["skipped"].size(), 1u);
  EXPECT_TRUE(contains(j["skipped"][0].get<std::string>(), "hello@1")) << j.dump();
  EXPECT_TRUE(contains(r.err, "damaged")) << r.err;
  // The sound blob is compacted and reads back; the damaged one is as verify found it.
  store = open_or_die(db_);
  EXPECT_EQ(*store->get("attrs", 1, true), read_file(fixture("attrs.beam")));
  const auto v = store->verify();
  ASSERT_TRUE(v);
  ASSERT_EQ(v->damage.size(), 1u);
  EXPECT_EQ(v->damage[0].module, "hello");
}

TEST_P(StoreCommands, DictTrainWithTooFewImagesSaysSo) {
  imp(1);
  const auto r = cli({"dict", "train"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "too few")) << r.err;
  EXPECT_TRUE(contains(r.err, "1 distinct image")) << r.err;
  EXPECT_EQ(open_or_die(db_)->stats()->dictionaries, 0);
}

// Issue 17: `compact` inflates a deflated debug chunk (stats counts Dbgi inflated);
// `compact --keep-deflated` deflates it back as it came (verified), so that a whole read
// never deflates; export gives the imported bytes after each. A real OTP image: stdlib's lists.
TEST_P(StoreCommands, CompactKeepDeflatedKeepsDebugChunksAsTheyCame) {
  std::string lists;
  for (const auto& path : testing::real_images())
    if (path.ends_with("/ebin/lists.beam") && contains(path, "/stdlib-")) lists = path;
  if (lists.empty()) GTEST_SKIP() << "no Erlang/OTP stdlib here";
  const auto original = read_file(lists);
  ASSERT_EQ(cli({"import", lists}).code, 0);
  // stats --json: the Dbgi row's count of inflated chunks (-1: no Dbgi row).
  auto dbgi_inflated = [&]() -> std::int64_t {
    const auto r = cli({"--json", "stats"});
    EXPECT_EQ(r.code, 0) << r.err;
    const auto stats = Json::parse(r.out);
    for (const auto& k : stats["chunk_kinds"])
      if (k["kind"] == "Dbgi") return k["inflated"].get<std::int64_t>();
    return -1;
  };
  auto exported = [&] {
    const std::string out = dir_ / "out.beam";
    const auto r = cli({"export", "lists", "-o", out});
    EXPECT_EQ(r.code, 0) << r.err;
    return read_file(out);
  };
  EXPECT_EQ(dbgi_inflated(), 0);  // import stores chunks as they came
  auto r = cli({"compact", "--level", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(dbgi_inflated(), 1);
  EXPECT_EQ(exported(), original);
  r = cli({"compact", "--level", "3", "--keep-deflated"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "compacted 1 blobs at level 3")) << r.out;
  EXPECT_EQ(dbgi_inflated(), 0);
  EXPECT_EQ(exported(), original);
  EXPECT_EQ(cli({"verify"}).code, 0);
}

// --- item 11: long work --------------------------------------------------------------------

TEST_P(StoreFileCommands, TheProgressLineFitsTheTerminal) {
  const std::string name = std::string(60, 'x') + "_\xc3\xa9t\xc3\xa9_module_file_name_that_is_long";
  for (int i = 0; i < 20; ++i)
    write_file(dir_ / ("t/" + name + std::to_string(100 + i) + ".beam"), variant("hello.beam", i + 1));
  PtyChild child({CODESTORE_BINARY, "--db", db_, "import", dir_ / "t"}, 40);
  ASSERT_EQ(child.finish(), 0) << child.output();
  // Every state of the line (between carriage returns, after the erase) fits in 39 columns.
  std::size_t lines = 0;
  std::size_t start = 0;
  const std::string& out = child.output();
  while ((start = out.find("\x1b[K", start)) != std::string::npos) {
    start += 3;
    const std::size_t end = std::min(out.find('\r', start), out.size());
    const std::string line = out.substr(start, end - start);
    const auto chars = std::count_if(line.begin(), line.end(),
                                     [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
    if (line.rfind("importing", 0) != 0) continue;  // the summary after the progress line
    EXPECT_LE(chars, 39) << line;
    ++lines;
  }
  EXPECT_GE(lines, 1u) << out;
}

TEST_P(StoreCommands, CtrlCEndsAnImportWithAMessageAndLeavesTheDatabaseUnchanged) {
  imp(0);
  auto store = open_or_die(db_);
  const auto generation = *store->generation();
  const auto events = store->history()->size();
  store.reset();
  for (int i = 0; i < 16; ++i)
    write_file(dir_ / ("t/app-1/ebin/m" + std::to_string(100 + i) + "/hello.beam"),
               variant("hello.beam", i + 1));
  // The last file is a FIFO: its reader blocks until this test writes it, so the import is
  // surely under way (16 files done, the progress line shown) when Ctrl-C comes.
  const std::string fifo = dir_ / "last.beam";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  PtyChild child({CODESTORE_BINARY, "--db", db_, "import", dir_ / "t", fifo}, 80);
  ASSERT_TRUE(child.read_until("importing 16/17")) << child.output();
  ASSERT_EQ(::kill(child.pid(), SIGINT), 0);
  ASSERT_TRUE(child.read_until("interrupted")) << child.output();
  // Now the last file: opening the FIFO waits for the child's reader, so it is fed from a
  // thread, which a reader of our own frees should the child never open it.
  const auto bytes = variant("hello.beam", 99);
  std::thread feeder([&] {
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    if (fd < 0) return;
    [[maybe_unused]] const auto n = ::write(fd, bytes.data(), bytes.size());
    ::close(fd);
  });
  const int code = child.finish();
  const int unblock = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  feeder.join();
  if (unblock >= 0) ::close(unblock);
  EXPECT_EQ(code, 128 + SIGINT) << child.output();
  EXPECT_TRUE(contains(child.output(), "nothing imported")) << child.output();
  store = open_or_die(db_);
  EXPECT_EQ(*store->generation(), generation);
  EXPECT_EQ(store->history()->size(), events);
  EXPECT_EQ(store->versions("hello")->size(), 1u);
  EXPECT_TRUE(store->verify()->ok());
}

TEST_P(StoreCommands, AnInterruptedCompactOrDictTrainWritesNothing) {
  // What the CLI's Ctrl-C asks of the library: stop between items, roll back.
  auto store = open_or_die(db_);
  for (int i = 1; i <= 6; ++i) import_bytes(*store, variant("hello.beam", i), "v" + std::to_string(i));
  const auto before = *store->stats();
  int asked = 0;
  CompactOptions c;
  c.level = 19;
  c.interrupted = [&] { return ++asked == 3; };
  auto compacted = store->compact(c);
  ASSERT_FALSE(compacted);
  EXPECT_EQ(compacted.error().code(), Code::kCancelled);
  DictionaryOptions d;
  d.interrupted = [] { return true; };
  auto trained = store->train_dictionary(d);
  ASSERT_FALSE(trained);
  EXPECT_EQ(trained.error().code(), Code::kCancelled);
  const auto after = *store->stats();
  EXPECT_EQ(after.stored_bytes, before.stored_bytes);
  EXPECT_EQ(after.dictionaries, 0);
  EXPECT_EQ(after.events, before.events);
  EXPECT_TRUE(store->verify()->ok());
}

TEST_P(StoreFileCommands, WaitLetsAWriterWaitForAnotherWritersLock) {
  imp(0);
  write_file(dir_ / "in/hello.beam", variant("hello.beam", 5));
  RawDb holder(db_);
  holder.exec("BEGIN IMMEDIATE");
  // Without waiting long enough: busy, naming --wait.
  auto r = cli({"import", "--wait", "0", dir_ / "in/hello.beam"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "busy")) << r.err;
  EXPECT_TRUE(contains(r.err, "--wait")) << r.err;
  EXPECT_EQ(cli({"import", "--wait", "soon", dir_ / "in/hello.beam"}).code, 2);
  // With --wait: the writer says that it waits; the lock is released only then.
  PtyChild child({CODESTORE_BINARY, "--db", db_, "import", "--wait", "600", dir_ / "in/hello.beam"}, 80);
  ASSERT_TRUE(child.read_until("waiting up to 600 s")) << child.output();
  holder.exec("COMMIT");
  EXPECT_EQ(child.finish(), 0) << child.output();
  EXPECT_EQ(open_or_die(db_)->versions("hello")->size(), 2u);
}

}  // namespace
}  // namespace codestore

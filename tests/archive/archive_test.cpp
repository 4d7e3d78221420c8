// read_archive against archives real tools make (GNU tar, Erlang's erl_tar and zip, python3's
// tarfile and zipfile), built in the test from a tree of real files (OTP's own beams and .app
// files), and against hostile ones crafted with python3.
#include <codestore/archive.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gzip_bomb.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::archive {
namespace {

namespace fs = std::filesystem;
using codestore::testing::read_file;
using codestore::testing::TempDir;
using codestore::testing::write_file;
using Bytes = std::vector<std::uint8_t>;
using codestore::testing::BombEnd;
using codestore::testing::gzip_bomb;

// Runs a shell command; a failure names it.
bool sh(const std::string& command) {
  const int rc = std::system(command.c_str());
  if (rc != 0) ADD_FAILURE() << "exit " << rc << ": " << command;
  return rc == 0;
}

// Runs `code` (Erlang expressions ending in `halt()`) in a fresh node.
bool erl(const std::string& code) {
  return sh("erl -noshell -eval '" + code + "'");
}

// Runs a python3 program given as text.
bool python(const TempDir& dir, const std::string& program) {
  write_file(dir / "craft.py", program);
  return sh("python3 " + (dir / "craft.py").string());
}

fs::path otp_lib(std::string_view app) {
  for (const auto& e : fs::directory_iterator("/usr/lib/erlang/lib")) {
    if (e.path().filename().string().starts_with(std::string(app) + "-")) return e.path();
  }
  ADD_FAILURE() << "no " << app << " in /usr/lib/erlang/lib";
  return {};
}

// A release-shaped tree of real files: OTP's own beams and .app, a config, an empty file,
// and 200 KB of varied bytes (more than one read step).
void make_tree(const fs::path& root) {
  const fs::path ebin = otp_lib("stdlib") / "ebin";
  fs::create_directories(root / "lib/stdlib-x/ebin");
  for (const char* f : {"lists.beam", "stdlib.app", "gen_server.beam"}) {
    fs::copy_file(ebin / f, root / "lib/stdlib-x/ebin" / f);
  }
  write_file(root / "releases/1.0/sys.config", "[{kernel, []}].\n");
  write_file(root / "releases/1.0/empty", "");
  Bytes blob(200 * 1024);
  std::uint32_t x = 12345;
  for (auto& b : blob) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  write_file(root / "lib/stdlib-x/priv/blob.bin", blob);
}

const Entry* find(const std::vector<Entry>& entries, std::string_view path) {
  for (const auto& e : entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

// Every file under `root` is an entry with its bytes; every entry is something under `root`
// of the same kind (a link with the same target).
void expect_same_as_tree(const std::vector<Entry>& entries, const fs::path& root) {
  std::size_t files = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = fs::relative(it->path(), root).generic_string();
    if (!it->is_regular_file() || it->is_symlink()) continue;
    ++files;
    const Entry* e = find(entries, rel);
    ASSERT_NE(e, nullptr) << rel << " is missing";
    EXPECT_EQ(e->type, Entry::Type::kFile) << rel;
    EXPECT_TRUE(e->bytes == read_file(it->path())) << rel << " differs";
  }
  std::size_t file_entries = 0;
  for (const auto& e : entries) {
    const fs::path on_disk = root / e.path;
    const auto status = fs::symlink_status(on_disk);
    switch (e.type) {
      case Entry::Type::kFile:
        ++file_entries;
        EXPECT_TRUE(fs::is_regular_file(status)) << e.path;
        break;
      case Entry::Type::kDirectory: EXPECT_TRUE(fs::is_directory(status)) << e.path; break;
      case Entry::Type::kSymlink:
        ASSERT_TRUE(fs::is_symlink(status)) << e.path;
        EXPECT_EQ(e.link_target, fs::read_symlink(on_disk).string()) << e.path;
        break;
    }
  }
  EXPECT_EQ(file_entries, files);
  EXPECT_GE(files, 6u);
}

Result<std::vector<Entry>> read_bytes(const Bytes& bytes, const Limits& limits = {}) {
  return read_archive(bytes, "test-archive", limits);
}

// The error of a read that must fail, or a test failure.
Status failure_of(const Result<std::vector<Entry>>& r) {
  if (r) {
    ADD_FAILURE() << "read " << r->size() << " members where an error was expected";
    return Status(Code::kInternal, "succeeded");
  }
  return r.error();
}

bool contains(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string::npos;
}

// ---- Real archives round-trip ----

TEST(ReadArchive, GnuTarGzRoundTrips) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar czf " + (dir / "a.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
  auto entries = read_archive((dir / "a.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  expect_same_as_tree(*entries, dir / "tree");
  EXPECT_EQ(find(*entries, ""), nullptr);  // "./", the root, is not a member
  ASSERT_NE(find(*entries, "lib/stdlib-x/ebin"), nullptr);
  EXPECT_EQ(find(*entries, "lib/stdlib-x/ebin")->type, Entry::Type::kDirectory);
}

TEST(ReadArchive, PlainTarRoundTrips) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar cf " + (dir / "a.tar").string() + " -C " + (dir / "tree").string() + " lib releases"));
  auto entries = read_archive((dir / "a.tar").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  expect_same_as_tree(*entries, dir / "tree");
}

TEST(ReadArchive, ErlTarCompressedRoundTrips) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(erl("ok = file:set_cwd(\"" + (dir / "tree").string() + "\"), ok = erl_tar:create(\"" +
                  (dir / "rel.tar.gz").string() + "\", [\"lib\", \"releases\"], [compressed]), halt()."));
  auto entries = read_archive((dir / "rel.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  expect_same_as_tree(*entries, dir / "tree");
}

TEST(ReadArchive, ErlangZipEzRoundTrips) {
  // An .ez as Erlang makes one: zip:create/3 of <app>-<vsn>/ebin/..., with beams erlc wrote.
  TempDir dir;
  const fs::path app = dir / "tree/myapp-1.0";
  write_file(app / "src/myapp.erl", "-module(myapp).\n-export([version/0]).\nversion() -> \"1.0\".\n");
  write_file(app / "src/myapp_sup.erl",
             "-module(myapp_sup).\n-export([init/1]).\ninit([]) -> {ok, {#{}, []}}.\n");
  fs::create_directories(app / "ebin");
  ASSERT_TRUE(sh("erlc -o " + (app / "ebin").string() + " " + (app / "src/myapp.erl").string() + " " +
                 (app / "src/myapp_sup.erl").string()));
  write_file(app / "ebin/myapp.app",
             "{application, myapp, [{vsn, \"1.0\"}, {modules, [myapp, myapp_sup]}, {applications, [kernel, "
             "stdlib]}]}.\n");
  write_file(app / "priv/data.txt", "priv data\n");
  ASSERT_TRUE(erl("{ok, _} = zip:create(\"" + (dir / "myapp-1.0.ez").string() +
                  "\", [\"myapp-1.0\"], [{cwd, \"" + (dir / "tree").string() + "\"}]), halt()."));
  auto entries = read_archive((dir / "myapp-1.0.ez").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  expect_same_as_tree(*entries, dir / "tree");
  for (const char* p :
       {"myapp-1.0/ebin/myapp.app", "myapp-1.0/ebin/myapp.beam", "myapp-1.0/ebin/myapp_sup.beam"}) {
    EXPECT_NE(find(*entries, p), nullptr) << p;
  }
}

TEST(ReadArchive, SystoolsMakeTarRoundTrips) {
  // A release tarball as systools:make_tar/2 writes it, of the installed OTP's kernel and
  // stdlib: every file under lib/ is the installed one, byte for byte.
  TempDir dir;
  ASSERT_TRUE(
      erl("ok = file:set_cwd(\"" + dir.path().string() +
          "\"), "
          "V = fun(A) -> {_, _, Vsn} = lists:keyfind(A, 1, application:loaded_applications()), Vsn end, "
          "Rel = {release, {\"myrel\", \"1.0\"}, {erts, erlang:system_info(version)}, "
          "[{kernel, V(kernel)}, {stdlib, V(stdlib)}]}, "
          "ok = file:write_file(\"myrel.rel\", io_lib:format(\"~p.~n\", [Rel])), "
          "ok = systools:make_script(\"myrel\", []), ok = systools:make_tar(\"myrel\", []), halt()."));
  auto entries = read_archive((dir / "myrel.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  std::size_t lib_files = 0;
  for (const Entry& e : *entries) {
    if (e.type != Entry::Type::kFile || !e.path.starts_with("lib/")) continue;
    ++lib_files;
    EXPECT_TRUE(e.bytes == read_file(fs::path("/usr/lib/erlang") / e.path)) << e.path;
  }
  EXPECT_GT(lib_files, 100u);
  const Entry* boot = find(*entries, "releases/1.0/start.boot");
  ASSERT_NE(boot, nullptr);
  EXPECT_EQ(boot->bytes, read_file(dir / "myrel.boot"));
}

TEST(ReadArchive, PythonZipfileRoundTrips) {
  TempDir dir;
  make_tree(dir / "tree");
  for (const char* method : {"ZIP_DEFLATED", "ZIP_STORED"}) {
    const fs::path zip = dir / (std::string(method) + ".zip");
    ASSERT_TRUE(python(dir,
                       "import os, zipfile\n"
                       "root = '" +
                           (dir / "tree").string() +
                           "'\n"
                           "with zipfile.ZipFile('" +
                           zip.string() + "', 'w', zipfile." + method +
                           ") as z:\n"
                           "    for d, dirs, files in os.walk(root):\n"
                           "        for f in files:\n"
                           "            p = os.path.join(d, f)\n"
                           "            z.write(p, os.path.relpath(p, root))\n"));
    auto entries = read_archive(zip.string());
    ASSERT_TRUE(entries) << entries.error().to_string();
    expect_same_as_tree(*entries, dir / "tree");
  }
}

TEST(ReadArchive, NamesBeyondAsciiAreUtf8) {
  // pax headers (python3's tarfile's default format) and zip's UTF-8 flag carry such names.
  TempDir dir;
  ASSERT_TRUE(python(dir,
                     "import io, tarfile, zipfile\n"
                     "name = 'lib/caf\\u00e9-1.0/priv/\\u65e5\\u672c.txt'\n"
                     "with tarfile.open('" +
                         (dir / "u.tar.gz").string() +
                         "', 'w:gz', format=tarfile.PAX_FORMAT) as t:\n"
                         "    i = tarfile.TarInfo(name); i.size = 2\n"
                         "    t.addfile(i, io.BytesIO(b'ok'))\n"
                         "with zipfile.ZipFile('" +
                         (dir / "u.zip").string() +
                         "', 'w') as z:\n"
                         "    z.writestr(name, b'ok')\n"));
  for (const char* name : {"u.tar.gz", "u.zip"}) {
    auto entries = read_archive((dir / name).string());
    ASSERT_TRUE(entries) << entries.error().to_string();
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].path, "lib/caf\xc3\xa9-1.0/priv/\xe6\x97\xa5\xe6\x9c\xac.txt") << name;
  }
}

TEST(ReadArchive, ModeKeepsPermissionBitsOnly) {
  TempDir dir;
  write_file(dir / "tree/bin/start", "#!/bin/sh\n");
  write_file(dir / "tree/bin/setuid", "#!/bin/sh\n");
  fs::permissions(dir / "tree/bin/start", static_cast<fs::perms>(0750));
  ASSERT_EQ(::chmod((dir / "tree/bin/setuid").c_str(), 04755), 0);
  ASSERT_TRUE(sh("tar czf " + (dir / "a.tar.gz").string() + " -C " + (dir / "tree").string() + " bin"));
  auto entries = read_archive((dir / "a.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  EXPECT_EQ(find(*entries, "bin/start")->mode, 0750u);
  EXPECT_EQ(find(*entries, "bin/setuid")->mode, 0755u);
}

TEST(ReadArchive, HardLinkBecomesACopy) {
  TempDir dir;
  write_file(dir / "tree/a/one", "the same bytes\n");
  fs::create_hard_link(dir / "tree/a/one", dir / "tree/a/two");
  ASSERT_TRUE(sh("tar czf " + (dir / "h.tar.gz").string() + " -C " + (dir / "tree").string() + " a"));
  auto entries = read_archive((dir / "h.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  const Entry* one = find(*entries, "a/one");
  const Entry* two = find(*entries, "a/two");
  ASSERT_TRUE(one && two);
  EXPECT_EQ(two->type, Entry::Type::kFile);
  EXPECT_EQ(one->bytes, read_file(dir / "tree/a/one"));
  EXPECT_EQ(two->bytes, one->bytes);
}

// ---- Links ----

TEST(ReadArchive, SymlinksThatStayInsideAreKept) {
  TempDir dir;
  make_tree(dir / "tree");
  fs::create_directories(dir / "tree/bin");
  fs::create_directory_symlink("stdlib-x", dir / "tree/lib/current");
  fs::create_symlink("../releases/1.0/sys.config", dir / "tree/bin/sys.config");
  fs::create_symlink("..", dir / "tree/lib/up");  // the root itself
  fs::create_symlink("missing/../stdlib-x", dir / "tree/lib/dangling-but-inside");
  ASSERT_TRUE(sh("tar czf " + (dir / "l.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
  auto entries = read_archive((dir / "l.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  expect_same_as_tree(*entries, dir / "tree");
  const Entry* current = find(*entries, "lib/current");
  ASSERT_NE(current, nullptr);
  EXPECT_EQ(current->type, Entry::Type::kSymlink);
  EXPECT_EQ(current->link_target, "stdlib-x");
  EXPECT_EQ(find(*entries, "bin/sys.config")->link_target, "../releases/1.0/sys.config");
}

TEST(ReadArchive, SymlinksThatLeaveAreRefused) {
  struct Case {
    const char* link;
    const char* target;
  };
  for (const Case c : {Case{"lib/evil", "../../etc/passwd"}, Case{"evil", "/etc/passwd"}, Case{"top", ".."},
                       Case{"lib/x/deep", "../../../x"}}) {
    TempDir dir;
    make_tree(dir / "tree");
    fs::create_directories((dir / "tree" / c.link).parent_path());
    fs::create_symlink(c.target, dir / "tree" / c.link);
    ASSERT_TRUE(sh("tar czf " + (dir / "l.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
    const Status s = failure_of(read_archive((dir / "l.tar.gz").string()));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
    EXPECT_TRUE(contains(s, "l.tar.gz")) << s.to_string();
    EXPECT_TRUE(contains(s, std::string("member '") + c.link + "'")) << s.to_string();  // normalized: no "./"
  }
}

TEST(ReadArchive, SymlinkThroughAnotherLinkThatLeavesIsRefused) {
  // lib/b -> .. is the root; lib/c -> b/.. is "lib" read as text, but the parent of the root
  // through lib/b.
  TempDir dir;
  make_tree(dir / "tree");
  fs::create_symlink("..", dir / "tree/lib/b");
  fs::create_symlink("b/..", dir / "tree/lib/c");
  ASSERT_TRUE(sh("tar czf " + (dir / "l.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
  const Status s = failure_of(read_archive((dir / "l.tar.gz").string()));
  EXPECT_TRUE(contains(s, "member 'lib/c'")) << s.to_string();
  EXPECT_TRUE(contains(s, "leaves the archive")) << s.to_string();
}

TEST(ReadArchive, ZipSymlinks) {
  // zip keeps a link as a member with S_IFLNK in its Unix mode and the target as its bytes;
  // python3's zipfile writes one so.
  TempDir dir;
  std::string program = "import zipfile\n";
  for (const auto& [zip, target] :
       {std::pair{"in.ez", "../ebin/myapp.app"}, std::pair{"out.ez", "../../../etc/passwd"}}) {
    program += std::string("with zipfile.ZipFile('") + (dir / zip).string() +
               "', 'w') as z:\n"
               "    z.writestr('myapp-1.0/ebin/myapp.app', '{application, myapp, []}.\\n')\n"
               "    i = zipfile.ZipInfo('myapp-1.0/priv/link')\n"
               "    i.create_system = 3\n"
               "    i.external_attr = (0o120777 << 16)\n"
               "    z.writestr(i, '" +
               target + "')\n";
  }
  ASSERT_TRUE(python(dir, program));
  auto entries = read_archive((dir / "in.ez").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  const Entry* link = find(*entries, "myapp-1.0/priv/link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, Entry::Type::kSymlink);
  EXPECT_EQ(link->link_target, "../ebin/myapp.app");

  const Status s = failure_of(read_archive((dir / "out.ez").string()));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_TRUE(contains(s, "member 'myapp-1.0/priv/link'")) << s.to_string();
  EXPECT_TRUE(contains(s, "leaves the archive")) << s.to_string();
}

// ---- Crafted members ----

// tar.gz files from python3's tarfile, one per (file name, Python statements adding members
// to `t`, an open TarFile, with `add`), each starting with a good member, in one python3 run.
bool craft_tars(const TempDir& dir, const std::vector<std::pair<std::string, std::string>>& tars) {
  std::string program =
      "import io, tarfile\n"
      "from tarfile import TarInfo\n"
      "def add(t, name, data=b'x', **kw):\n"
      "    i = TarInfo(name)\n"
      "    i.size = len(data)\n"
      "    for k, v in kw.items(): setattr(i, k, v)\n"
      "    t.addfile(i, io.BytesIO(data) if i.isreg() else None)\n";
  for (const auto& [name, adds] : tars) {
    program += "with tarfile.open('" + (dir / name).string() +
               "', 'w:gz', format=tarfile.GNU_FORMAT) as t:\n"
               "    add(t, 'lib/ok.beam')\n" +
               adds;
  }
  return python(dir, program);
}

TEST(ReadArchive, CraftedPathsAreRefused) {
  struct Case {
    const char* add;
    const char* member;
    const char* why;
  };
  const Case cases[] = {
      {"    add(t, '../evil')\n", "../evil", "'..'"},
      {"    add(t, 'lib/../../evil')\n", "lib/../../evil", "'..'"},
      {"    add(t, './a/../b')\n", "./a/../b", "'..'"},
      {"    add(t, '/etc/cron.d/evil')\n", "/etc/cron.d/evil", "absolute"},
      {"    add(t, '')\n", "", "empty"},
      {"    add(t, 'lib\\\\..\\\\evil')\n", "lib\\\\..\\\\evil", "backslash"},
      {"    add(t, 'lib/ok.beam')\n", "lib/ok.beam", "appears twice (members 1 and 2)"},
      {"    add(t, './lib/./ok.beam')\n", "lib/ok.beam", "appears twice"},
      {"    add(t, 'lib/ok.beam/inner')\n", "lib/ok.beam/inner", "lies under 'lib/ok.beam', which is a file"},
      {"    add(t, 'l', type=tarfile.SYMTYPE, linkname='lib')\n    add(t, 'l/x')\n", "l/x",
       "which is a symlink"},
      {"    add(t, 'h', type=tarfile.LNKTYPE, linkname='../etc/passwd', size=0)\n", "h", "hard link"},
      {"    add(t, 'h', type=tarfile.LNKTYPE, linkname='/etc/passwd', size=0)\n", "h", "absolute"},
      {"    add(t, 'h', type=tarfile.LNKTYPE, linkname='lib/later', size=0)\n    add(t, 'lib/later')\n", "h",
       "not an earlier file"},
      {"    add(t, 'dev', type=tarfile.CHRTYPE, devmajor=1, devminor=3, size=0)\n", "dev",
       "character device"},
      {"    add(t, 'blk', type=tarfile.BLKTYPE, size=0)\n", "blk", "block device"},
      {"    add(t, 'fifo', type=tarfile.FIFOTYPE, size=0)\n", "fifo", "FIFO"},
  };
  TempDir dir;
  std::vector<std::pair<std::string, std::string>> tars;
  for (std::size_t i = 0; i < std::size(cases); ++i)
    tars.emplace_back("bad" + std::to_string(i) + ".tar.gz", cases[i].add);
  tars.emplace_back("good.tar.gz", "    add(t, 'lib/fine', b'abc')\n");
  ASSERT_TRUE(craft_tars(dir, tars));
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const Status s = failure_of(read_archive((dir / tars[i].first).string()));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.add << s.to_string();
    EXPECT_TRUE(contains(s, tars[i].first + ": member '" + c.member + "'")) << c.add << s.to_string();
    EXPECT_TRUE(contains(s, c.why)) << c.add << s.to_string();
  }
  // The refusals are about the member, not the tool: the same archive less that member reads.
  auto entries = read_archive((dir / "good.tar.gz").string());
  ASSERT_TRUE(entries) << entries.error().to_string();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].bytes, (Bytes{'a', 'b', 'c'}));
}

TEST(ReadArchive, CraftedZipPathsAreRefused) {
  const std::vector<std::string> names = {"../evil.beam", "/abs/evil.beam", "myapp-1.0/../../evil.beam"};
  TempDir dir;
  std::string program = "import zipfile\n";
  for (std::size_t i = 0; i < names.size(); ++i) {
    program += "with zipfile.ZipFile('" + (dir / ("bad" + std::to_string(i) + ".ez")).string() +
               "', 'w') as z:\n"
               "    z.writestr('myapp-1.0/ebin/myapp.app', 'x')\n"
               "    z.writestr(zipfile.ZipInfo('" +
               names[i] + "'), 'x')\n";
  }
  ASSERT_TRUE(python(dir, program));
  for (std::size_t i = 0; i < names.size(); ++i) {
    const Status s = failure_of(read_archive((dir / ("bad" + std::to_string(i) + ".ez")).string()));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.to_string();
    EXPECT_TRUE(contains(s, "member '" + names[i] + "'")) << s.to_string();
  }
}

// ---- Limits ----

TEST(ReadArchive, TooManyMembers) {
  TempDir dir;
  std::string adds;
  for (int i = 1; i < 20; ++i) adds += "    add(t, 'f" + std::to_string(i) + "')\n";
  ASSERT_TRUE(craft_tars(dir, {{"many.tar.gz", adds}}));  // 20 members
  const auto bytes = read_file(dir / "many.tar.gz");
  EXPECT_TRUE(read_bytes(bytes, Limits{.max_entries = 20}));
  const Status s = failure_of(read_bytes(bytes, Limits{.max_entries = 19}));
  EXPECT_EQ(s.code(), Code::kLimitExceeded);
  EXPECT_TRUE(contains(s, "more than 19 members")) << s.to_string();
}

TEST(ReadArchive, MemberAndTotalSizeLimitsHoldExactly) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar czf " + (dir / "a.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
  ASSERT_TRUE(python(
      dir,
      "import zipfile, os\nroot='" + (dir / "tree").string() + "'\n" + "with zipfile.ZipFile('" +
          (dir / "a.zip").string() +
          "', 'w', zipfile.ZIP_DEFLATED) as z:\n"
          "    for d, _, fs in os.walk(root):\n"
          "        for f in fs: z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), root))\n"));
  std::uint64_t total = 0;
  std::uint64_t largest = 0;
  for (auto it = fs::recursive_directory_iterator(dir / "tree"); it != fs::recursive_directory_iterator();
       ++it) {
    if (!it->is_regular_file()) continue;
    total += it->file_size();
    largest = std::max<std::uint64_t>(largest, it->file_size());
  }
  for (const char* name : {"a.tar.gz", "a.zip"}) {
    const auto bytes = read_file(dir / name);
    EXPECT_TRUE(read_bytes(bytes, Limits{.max_total_bytes = total, .max_entry_bytes = largest})) << name;
    Status s = failure_of(read_bytes(bytes, Limits{.max_entry_bytes = largest - 1}));
    EXPECT_EQ(s.code(), Code::kLimitExceeded) << name;
    EXPECT_TRUE(contains(s, "member 'lib/stdlib-x/priv/blob.bin'")) << s.to_string();
    s = failure_of(read_bytes(bytes, Limits{.max_total_bytes = total - 1}));
    EXPECT_EQ(s.code(), Code::kLimitExceeded) << name;
  }
}

// A tar header (python3's tarfile writes it) for a member of `size` bytes of `type`.
Bytes tar_header(const TempDir& dir, std::uint64_t size, const std::string& type = "tarfile.REGTYPE") {
  EXPECT_TRUE(python(dir,
                     "import tarfile\n"
                     "i = tarfile.TarInfo('lib/bomb.beam')\n"
                     "i.type = " +
                         type +
                         "\n"
                         "i.size = " +
                         std::to_string(size) +
                         "\n"
                         "open('" +
                         (dir / "header").string() + "', 'wb').write(i.tobuf(tarfile.GNU_FORMAT))\n"));
  return read_file(dir / "header");
}

TEST(ReadArchive, GzipBombThatDeclaresItsSizeFailsBeforeInflating) {
  // 6 GiB of zeros declared by the tar header, in a file of a few MB: refused from the
  // header, with the default limits, before any of it is inflated or allocated.
  TempDir dir;
  const Bytes bomb = gzip_bomb(tar_header(dir, std::uint64_t{6} << 30), 6 << 10, BombEnd::kNever);
  ASSERT_LT(bomb.size(), 8u << 20);
  const Status s = failure_of(read_bytes(bomb));
  EXPECT_EQ(s.code(), Code::kLimitExceeded) << s.to_string();
  EXPECT_TRUE(contains(s, "member 'lib/bomb.beam': declares 6442450944 bytes")) << s.to_string();
}

TEST(ReadArchive, GzipBombIsStoppedWhileInflating) {
  // A GNU dumpdir ('D', an incremental backup's directory, whose data lists its contents)
  // that declares 1 GiB: no file's bytes, so the member limits do not see them, and the tar
  // reader skips them. The inflated stream is counted and stopped at
  // the members' limit plus room for headers, long before the gzip stream's end (reaching it
  // would be a truncation error instead).
  TempDir dir;
  const Bytes bomb = gzip_bomb(tar_header(dir, std::uint64_t{1} << 30, "b'D'"), 1 << 10, BombEnd::kNever);
  Status s = failure_of(read_bytes(bomb, Limits{.max_total_bytes = 1 << 20, .max_entries = 10}));
  EXPECT_EQ(s.code(), Code::kLimitExceeded) << s.to_string();
  EXPECT_TRUE(contains(s, "inflates to more than")) << s.to_string();
  // Zeros with no tar header at all: the tar ends at the first zero block, and what may follow
  // inside the gzip stream is bounded.
  s = failure_of(read_bytes(gzip_bomb({}, 1 << 10, BombEnd::kNever)));
  EXPECT_EQ(s.code(), Code::kLimitExceeded) << s.to_string();
  EXPECT_TRUE(contains(s, "follow the end of the tar archive")) << s.to_string();
}

TEST(ReadArchive, GzipBombWithAnHonestTrailerIsStoppedTheSameWay) {
  // The same bombs, ended with a good CRC-32 and ISIZE, so that the trailer promises their
  // size: too large, or shrinking a thousandfold, for the whole-buffer fast path, which leaves
  // them to the stream that stops them. Also one of 4 GiB and 1 MiB, whose ISIZE says 1 MiB.
  TempDir dir;
  const Bytes bomb = gzip_bomb(tar_header(dir, std::uint64_t{1} << 30, "b'D'"), 1 << 10, BombEnd::kHonest);
  Status s = failure_of(read_bytes(bomb, Limits{.max_total_bytes = 1 << 20, .max_entries = 10}));
  EXPECT_EQ(s.code(), Code::kLimitExceeded) << s.to_string();
  EXPECT_TRUE(contains(s, "inflates to more than")) << s.to_string();
  for (const std::uint64_t mib : {std::uint64_t{1} << 10, std::uint64_t{4 << 10} + 1}) {
    s = failure_of(read_bytes(gzip_bomb({}, mib, BombEnd::kHonest)));
    EXPECT_EQ(s.code(), Code::kLimitExceeded) << mib << ": " << s.to_string();
    EXPECT_TRUE(contains(s, "follow the end of the tar archive")) << s.to_string();
  }
}

TEST(ReadArchive, ZipThatLiesAboutItsSizeIsCountedWhileInflating) {
  // 64 MiB of zeros, the local header and central directory patched to say 100 bytes: the
  // declared size passes, the bytes that come out are counted.
  TempDir dir;
  ASSERT_TRUE(python(dir,
                     "import zipfile, struct\n"
                     "p = '" +
                         (dir / "lie.zip").string() +
                         "'\n"
                         "with zipfile.ZipFile(p, 'w', zipfile.ZIP_DEFLATED) as z:\n"
                         "    z.writestr('myapp-1.0/ebin/big.beam', bytes(64 << 20))\n"
                         "b = bytearray(open(p, 'rb').read())\n"
                         "size = struct.pack('<I', 64 << 20)\n"
                         "n = 0\n"
                         "i = b.find(size)\n"
                         "while i >= 0:\n"
                         "    b[i:i + 4] = struct.pack('<I', 100); n += 1\n"
                         "    i = b.find(size, i + 4)\n"
                         "assert n == 2, n\n"
                         "open(p, 'wb').write(b)\n"));
  const Status s = failure_of(read_archive((dir / "lie.zip").string(), Limits{.max_entry_bytes = 1 << 20}));
  EXPECT_EQ(s.code(), Code::kLimitExceeded) << s.to_string();
  EXPECT_TRUE(contains(s, "member 'myapp-1.0/ebin/big.beam': inflates")) << s.to_string();
}

TEST(ReadArchive, ArchiveFileOverItsLimit) {
  TempDir dir;
  ASSERT_TRUE(craft_tars(dir, {{"a.tar.gz", ""}}));
  const Status s = failure_of(read_archive((dir / "a.tar.gz").string(), Limits{.max_archive_bytes = 10}));
  EXPECT_EQ(s.code(), Code::kLimitExceeded) << s.to_string();
  EXPECT_EQ(failure_of(read_archive((dir / "missing.tar.gz").string())).code(), Code::kNotFound);
}

// ---- Truncated and damaged ----

// Every cut of `bytes` shorter than `whole` must fail; none may read as a shorter success.
void expect_every_cut_fails(const Bytes& bytes, std::size_t from, std::size_t step) {
  ASSERT_TRUE(read_bytes(bytes)) << "the uncut archive must read";
  std::size_t cuts = 0;
  for (std::size_t n = from; n < bytes.size(); n += step) {
    const Bytes cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const auto r = read_bytes(cut);
    ASSERT_FALSE(r) << "cut at " << n << " of " << bytes.size() << " read " << r->size() << " members";
    ASSERT_NE(r.error().code(), Code::kInternal) << r.error().to_string();
    ++cuts;
  }
  EXPECT_GT(cuts, 0u);
}

TEST(ReadArchive, EveryCutOfATarGzFails) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar czf " + (dir / "gnu.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
  ASSERT_TRUE(erl("ok = file:set_cwd(\"" + (dir / "tree").string() + "\"), ok = erl_tar:create(\"" +
                  (dir / "erl.tar.gz").string() + "\", [\"lib\", \"releases\"], [compressed]), halt()."));
  for (const char* name : {"gnu.tar.gz", "erl.tar.gz"}) {
    const Bytes bytes = read_file(dir / name);
    expect_every_cut_fails(bytes, 0, 251);  // a prime step: cuts land everywhere in the blocks
    // and every one of the last 64 bytes: the gzip trailer, then the deflate end
    expect_every_cut_fails(bytes, bytes.size() - 64, 1);
  }
}

TEST(ReadArchive, EveryCutOfAZipFails) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(erl("{ok, _} = zip:create(\"" + (dir / "erl.zip").string() +
                  "\", [\"lib\", \"releases\"], [{cwd, \"" + (dir / "tree").string() + "\"}]), halt()."));
  ASSERT_TRUE(python(
      dir,
      "import zipfile, os\nroot='" + (dir / "tree").string() + "'\n" + "with zipfile.ZipFile('" +
          (dir / "py.zip").string() +
          "', 'w', zipfile.ZIP_DEFLATED) as z:\n"
          "    z.comment = b'a comment at the very end'\n"
          "    for d, _, fs in os.walk(root):\n"
          "        for f in fs: z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), root))\n"));
  for (const char* name : {"erl.zip", "py.zip"}) {
    const Bytes bytes = read_file(dir / name);
    expect_every_cut_fails(bytes, 0, 97);
    expect_every_cut_fails(bytes, bytes.size() - 600, 1);  // the central directory and its end
  }
}

TEST(ReadArchive, PlainTarCutBeforeItsEndFails) {
  // A plain tar has no checksum over the whole: what proves it whole is its end-of-archive
  // blocks. Every cut before they end fails; a cut in the zero padding after them (tar pads
  // to 10240 bytes) loses nothing and reads the same members.
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar cf " + (dir / "a.tar").string() + " -C " + (dir / "tree").string() + " lib releases"));
  const Bytes bytes = read_file(dir / "a.tar");
  const auto whole = read_bytes(bytes);
  ASSERT_TRUE(whole);
  // The end: the last block that is not zeros, then two zero blocks.
  std::size_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == 0) --end;
  end = (end + 511) / 512 * 512 + 1024;
  ASSERT_LT(end, bytes.size());
  for (std::size_t n = 0; n < bytes.size(); n += (n < end ? 512 : 1024)) {
    const auto r = read_bytes(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    if (n < end) {
      ASSERT_FALSE(r) << "cut at " << n << " (the end is at " << end << ")";
    } else {
      ASSERT_TRUE(r) << "cut at " << n << ": " << r.error().to_string();
      EXPECT_EQ(*r, *whole);
    }
  }
  const Status s =
      failure_of(read_bytes(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(end - 1024))));
  EXPECT_TRUE(contains(s, "end-of-archive")) << s.to_string();
}

TEST(ReadArchive, DamagedGzipTrailerOrDataFails) {
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar czf " + (dir / "a.tar.gz").string() + " -C " + (dir / "tree").string() + " ."));
  const Bytes bytes = read_file(dir / "a.tar.gz");
  const std::size_t n = bytes.size();
  struct Case {
    std::size_t at;
    const char* why;
  };
  // The CRC-32 (the trailer's first 4 bytes), ISIZE (its last 4), and a byte in the middle.
  for (const Case c :
       {Case{n - 8, "incorrect data check"}, Case{n - 1, "incorrect length check"}, Case{n / 2, "gzip"}}) {
    Bytes bad = bytes;
    bad[c.at] ^= 0x01;
    const Status s = failure_of(read_bytes(bad));
    EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
    EXPECT_TRUE(contains(s, c.why)) << c.at << ": " << s.to_string();
  }
  // Bytes after the gzip stream.
  Bytes trailing = bytes;
  trailing.push_back('x');
  EXPECT_TRUE(contains(failure_of(read_bytes(trailing)), "not a gzip member"));
}

TEST(ReadArchive, GzipTrailerWhoseLengthLiesFails) {
  // ISIZE (the trailer's last 4 bytes, little-endian) smaller than the stream, a little and
  // much larger, the largest: the same error whether the whole-buffer path or the stream
  // meets it first.
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar cf " + (dir / "a.tar").string() + " -C " + (dir / "tree").string() + " lib releases" +
                 " && gzip -k " + (dir / "a.tar").string()));
  const Bytes bytes = read_file(dir / "a.tar.gz");
  ASSERT_TRUE(read_bytes(bytes));
  const auto size = static_cast<std::uint32_t>(read_file(dir / "a.tar").size());
  for (const std::uint32_t isize : {0u, 100u, size - 1, size + 1, size + 1000, size * 4, 0xffffffffu}) {
    Bytes lie = bytes;
    for (int i = 0; i < 4; ++i) lie[lie.size() - 4 + i] = static_cast<std::uint8_t>(isize >> (8 * i));
    const Status s = failure_of(read_bytes(lie));
    EXPECT_EQ(s.code(), Code::kCorruption) << isize << ": " << s.to_string();
    EXPECT_TRUE(contains(s, "incorrect length check")) << isize << ": " << s.to_string();
  }
}

TEST(ReadArchive, ConcatenatedGzipMembersAreOneStream) {
  // gzip -d reads a file of several members as their concatenation; so does this reader.
  TempDir dir;
  make_tree(dir / "tree");
  ASSERT_TRUE(sh("tar cf " + (dir / "a.tar").string() + " -C " + (dir / "tree").string() + " lib releases"));
  const std::string tar = (dir / "a.tar").string();
  ASSERT_TRUE(sh("head -c 70000 " + tar + " | gzip > " + tar + ".1 && tail -c +70001 " + tar + " | gzip > " +
                 tar + ".2 && cat " + tar + ".1 " + tar + ".2 > " + tar + ".gz"));
  auto whole = read_archive(tar);
  auto joined = read_archive(tar + ".gz");
  ASSERT_TRUE(whole && joined) << (joined ? "" : joined.error().to_string());
  EXPECT_EQ(*whole, *joined);
  // A last member far smaller than the others (its ISIZE is no guide to the total), and empty
  // members (gzip of nothing) between them.
  ASSERT_TRUE(sh("head -c 70000 " + tar + " | tail -c 100 | gzip > " + tar + ".3 && gzip < /dev/null > " +
                 tar + ".0 && head -c 69900 " + tar + " | gzip > " + tar + ".1 && tail -c +70001 " + tar +
                 " | gzip > " + tar + ".2 && cat " + tar + ".0 " + tar + ".1 " + tar + ".3 " + tar + ".0 " +
                 tar + ".2 " + tar + ".0 > " + tar + ".gz"));
  joined = read_archive(tar + ".gz");
  ASSERT_TRUE(joined) << joined.error().to_string();
  EXPECT_EQ(*whole, *joined);
  // Damage in a member that is not the last is found; so are bytes after the last one.
  Bytes bytes = read_file(tar + ".gz");
  const std::size_t first_crc = read_file(tar + ".0").size() + read_file(tar + ".1").size() - 8;
  bytes[first_crc] ^= 0x01;
  Status s = failure_of(read_bytes(bytes));
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_TRUE(contains(s, "incorrect data check")) << s.to_string();
  bytes[first_crc] ^= 0x01;
  bytes.insert(bytes.end(), {0x1f, 0x8b, 0x08});
  s = failure_of(read_bytes(bytes));
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_TRUE(contains(s, "truncated")) << s.to_string();
}

TEST(ReadArchive, DamagedZipMemberFailsItsCrc) {
  TempDir dir;
  ASSERT_TRUE(
      python(dir,
             "import zipfile\n"
             "with zipfile.ZipFile('" +
                 (dir / "a.zip").string() +
                 "', 'w', zipfile.ZIP_STORED) as z:\n"
                 "    z.writestr('myapp-1.0/ebin/myapp.app', b'{application, myapp, []}.\\n' * 10)\n"));
  Bytes bytes = read_file(dir / "a.zip");
  ASSERT_TRUE(read_bytes(bytes));
  const std::string text(bytes.begin(), bytes.end());
  const std::size_t at = text.find("{application");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x20;
  const Status s = failure_of(read_bytes(bytes));
  EXPECT_EQ(s.code(), Code::kCorruption) << s.to_string();
  EXPECT_TRUE(contains(s, "member 'myapp-1.0/ebin/myapp.app'")) << s.to_string();
}

// ---- Not an archive ----

TEST(ReadArchive, WhatIsNotAnArchiveIsNamed) {
  TempDir dir;
  make_tree(dir / "tree");
  const std::string tree = (dir / "tree").string();
  ASSERT_TRUE(sh("tar cJf " + (dir / "a.tar.xz").string() + " -C " + tree + " lib"));
  ASSERT_TRUE(sh("tar cjf " + (dir / "a.tar.bz2").string() + " -C " + tree + " lib"));
  ASSERT_TRUE(sh("gzip -c " + tree + "/lib/stdlib-x/ebin/lists.beam > " + (dir / "lists.beam.gz").string()));
  write_file(dir / "notes.txt", "just some text\nin a file\n");
  write_file(dir / "empty", "");
  struct Case {
    fs::path file;
    Code code;
    const char* what;
  };
  const Case cases[] = {
      {dir / "a.tar.xz", Code::kNotSupported, "xz-compressed data"},
      {dir / "a.tar.bz2", Code::kNotSupported, "bzip2-compressed data"},
      {dir / "tree/lib/stdlib-x/ebin/lists.beam", Code::kInvalidArgument, "a BEAM file"},
      {dir / "lists.beam.gz", Code::kInvalidArgument,
       "gzip-compressed, but not a tar archive inside: a BEAM file"},
      {dir / "notes.txt", Code::kInvalidArgument, "text (\"just some text in a file \")"},
      {dir / "empty", Code::kInvalidArgument, "an empty file"},
  };
  for (const Case& c : cases) {
    const Status s = failure_of(read_archive(c.file.string()));
    EXPECT_EQ(s.code(), c.code) << s.to_string();
    EXPECT_TRUE(contains(s, c.file.string() + ": ")) << s.to_string();
    EXPECT_TRUE(contains(s, c.what)) << s.to_string();
  }
}

TEST(ReadArchive, EmptyArchivesAreEmpty) {
  TempDir dir;
  ASSERT_TRUE(sh("tar czf " + (dir / "e.tar.gz").string() + " -T /dev/null"));
  ASSERT_TRUE(
      python(dir, "import zipfile\nzipfile.ZipFile('" + (dir / "e.zip").string() + "', 'w').close()\n"));
  for (const char* name : {"e.tar.gz", "e.zip"}) {
    auto entries = read_archive((dir / name).string());
    ASSERT_TRUE(entries) << entries.error().to_string();
    EXPECT_TRUE(entries->empty());
  }
}

}  // namespace
}  // namespace codestore::archive

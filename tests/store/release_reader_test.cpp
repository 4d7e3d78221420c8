// The release reader over releases laid out by hand (kernel and stdlib are links to OTP's own
// directories, as rebar3's dev mode makes them; the application's beam is a real one), their
// tarballs (GNU tar), hostile archives (python3's tarfile), and OTP's own root, a release
// directory nobody here wrote. The builds by the real tools are release_reader_build_test.cpp's.
#include <codestore/release_reader.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "support/files.h"
#include "support/real_releases.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

const ContentFile* find(const std::vector<ContentFile>& files, const std::string& path) {
  auto it = std::find_if(files.begin(), files.end(), [&](const ContentFile& f) { return f.path == path; });
  return it == files.end() ? nullptr : &*it;
}
std::set<std::string> paths_of(const std::vector<ContentFile>& files) {
  std::set<std::string> out;
  for (const auto& f : files) out.insert(f.path);
  return out;
}
bool any_warning(const std::vector<std::string>& warnings, const std::string& part) {
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& w) { return w.find(part) != std::string::npos; });
}
std::string sh(const std::string& command, const fs::path& cwd) {
  return testing::run_checked(command, cwd, cwd / ".home");
}

const testing::OtpVersions& otp() {
  static const testing::OtpVersions v = testing::otp_versions();
  return v;
}

std::string rel_text(const std::string& name, const std::string& vsn, const std::string& extra = "") {
  return "{release, {\"" + name + "\", \"" + vsn + "\"}, {erts, \"" + otp().erts + "\"},\n [{kernel, \"" +
         otp().kernel + "\"}, {stdlib, \"" + otp().stdlib + "\"}, {hello, \"1.0\", permanent}" + extra +
         "]}.\n";
}

// root/ as a release `hand@1.0` of kernel, stdlib and hello-1.0 (the fixture hello.beam and
// its .app); erts-<vsn>/bin/beam.smp beside it, never to be read. kernel and stdlib are links
// to OTP's own directories, as rebar3's dev mode makes them, or, for tarballs that must stay
// small, directories holding only OTP's kernel.app and stdlib.app (the reader does not look
// at the beams an .app lists).
fs::path hand_release(const fs::path& root, const std::string& vsn = "1.0", bool otp_links = false) {
  const fs::path hello = root / "lib/hello-1.0";
  fs::create_directories(hello / "ebin");
  for (const auto& [app, app_vsn] : {std::pair{"kernel", otp().kernel}, std::pair{"stdlib", otp().stdlib}}) {
    const std::string dir = std::string(app) + "-" + app_vsn;
    if (fs::exists(root / "lib" / dir)) continue;
    if (otp_links) {
      fs::create_directory_symlink(otp().root / "lib" / dir, root / "lib" / dir);
    } else {
      fs::create_directories(root / "lib" / dir / "ebin");
      fs::copy_file(otp().root / "lib" / dir / "ebin" / (std::string(app) + ".app"),
                    root / "lib" / dir / "ebin" / (std::string(app) + ".app"));
    }
  }
  fs::copy_file(fs::path(CODESTORE_SOURCE_DIR) / "tests/fixtures/images/hello.beam",
                hello / "ebin/hello.beam", fs::copy_options::overwrite_existing);
  write_file(hello / "ebin/hello.app",
             "{application, hello, [{description, \"hello\"}, {vsn, \"1.0\"}, {modules, [hello]},\n"
             "  {registered, []}, {applications, [kernel, stdlib]}]}.\n");
  write_file(root / "releases" / vsn / "hand.rel", rel_text("hand", vsn));
  write_file(root / "releases" / vsn / "start.boot", "not read as a boot script, kept as bytes");
  write_file(root / ("erts-" + otp().erts) / "bin/beam.smp", "an emulator");
  return root;
}

TEST(ReleaseReader, ReadsAHandMadeReleaseDirectory) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel", "1.0", true);
  auto r = read_release(root.string());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->name, "hand");
  EXPECT_EQ(r->vsn, "1.0");
  EXPECT_EQ(r->erts_vsn, otp().erts);
  EXPECT_EQ(r->kind, "systools");
  EXPECT_EQ(r->origin, root.string());
  ASSERT_EQ(r->rel_apps.size(), 3u);
  EXPECT_EQ(r->rel_apps[0].type, "");  // {kernel, Vsn}: no start type written
  EXPECT_EQ(r->rel_apps[2].type, "permanent");
  EXPECT_EQ(paths_of(r->files), (std::set<std::string>{"releases/1.0/hand.rel", "releases/1.0/start.boot"}));
  ASSERT_EQ(r->apps.size(), 3u);
  EXPECT_EQ(r->apps[2].app, "hello");
  EXPECT_EQ(paths_of(r->apps[2].files), (std::set<std::string>{"ebin/hello.app", "ebin/hello.beam"}));
  EXPECT_EQ(find(r->apps[2].files, "ebin/hello.beam")->bytes,
            read_file(root / "lib/hello-1.0/ebin/hello.beam"));
  // kernel through its link: every file of OTP's kernel directory, with its bytes.
  const fs::path kernel = otp().root / "lib" / ("kernel-" + otp().kernel);
  std::size_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(kernel)) on_disk += e.is_regular_file() ? 1 : 0;
  std::size_t read = 0;
  for (const auto& f : r->apps[0].files) {
    if (f.directory) continue;
    ++read;
    ASSERT_EQ(f.bytes, read_file(kernel / f.path)) << f.path;
  }
  EXPECT_EQ(read, on_disk);
  for (const auto& f : r->files) EXPECT_NE(f.path.rfind("erts-", 0), 0u) << f.path;
}

TEST(ReleaseReader, ATarballReadsAsItsDirectory) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  write_file(root / "releases/start_erl.data", otp().erts + " 1.0\n");
  sh("tar czf ../hand.tar.gz .", root);
  auto dir = read_release(root.string());
  auto tar = read_release((tmp / "hand.tar.gz").string());
  ASSERT_TRUE(dir) << dir.error().to_string();
  ASSERT_TRUE(tar) << tar.error().to_string();
  EXPECT_EQ(tar->kind, "relx");
  EXPECT_EQ(tar->apps[2].origin, (tmp / "hand.tar.gz").string() + ":lib/hello-1.0");
  ASSERT_EQ(tar->files.size(), dir->files.size());
  for (std::size_t i = 0; i < tar->files.size(); ++i) {
    EXPECT_EQ(tar->files[i].path, dir->files[i].path);
    EXPECT_EQ(tar->files[i].bytes, dir->files[i].bytes);
    EXPECT_EQ(tar->files[i].mode, dir->files[i].mode) << tar->files[i].path;
  }
  ASSERT_EQ(tar->apps.size(), dir->apps.size());
  for (std::size_t a = 0; a < tar->apps.size(); ++a) {
    ASSERT_EQ(tar->apps[a].files.size(), dir->apps[a].files.size()) << tar->apps[a].app;
    for (std::size_t i = 0; i < tar->apps[a].files.size(); ++i) {
      EXPECT_EQ(tar->apps[a].files[i].path, dir->apps[a].files[i].path);
      EXPECT_EQ(tar->apps[a].files[i].bytes, dir->apps[a].files[i].bytes);
    }
  }
  // A tarball of the directory itself (`myrel/releases/...`) reads the same.
  sh("tar czf ../wrapped.tar.gz ../rel", root);
  auto wrapped = read_release((tmp / "wrapped.tar.gz").string());
  ASSERT_TRUE(wrapped) << wrapped.error().to_string();
  EXPECT_EQ(paths_of(wrapped->files), paths_of(dir->files));
}

TEST(ReleaseReader, ATarballCutShortIsAnError) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  sh("tar czf ../hand.tar.gz .", root);
  auto bytes = read_file(tmp / "hand.tar.gz");
  bytes.resize(bytes.size() / 2);
  write_file(tmp / "cut.tar.gz", bytes);
  auto r = read_release((tmp / "cut.tar.gz").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption) << r.error().to_string();
  EXPECT_NE(r.error().message().find("cut.tar.gz"), std::string::npos) << r.error().to_string();
}

TEST(ReleaseReader, ARelNamingAnAbsentApplicationIsAnError) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  write_file(root / "releases/1.0/hand.rel", rel_text("hand", "1.0", ", {ghost, \"0.9\"}"));
  auto r = read_release(root.string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_NE(r.error().message().find("ghost@0.9"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message().find("lib/ghost-0.9"), std::string::npos) << r.error().to_string();
  // The same in a tarball.
  sh("tar czf ../hand.tar.gz .", root);
  auto t = read_release((tmp / "hand.tar.gz").string());
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("lib/ghost-0.9"), std::string::npos) << t.error().to_string();
}

TEST(ReleaseReader, AnAppFileThatDisagreesWithTheRelIsAnError) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  write_file(
      root / "lib/hello-1.0/ebin/hello.app",
      "{application, hello, [{vsn, \"1.1\"}, {modules, [hello]}, {applications, [kernel, stdlib]}]}.\n");
  auto r = read_release(root.string());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("lib/hello-1.0/ebin/hello.app says vsn 1.1"), std::string::npos)
      << r.error().to_string();
  fs::remove(root / "lib/hello-1.0/ebin/hello.app");
  auto gone = read_release(root.string());
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Code::kNotFound);
  EXPECT_NE(gone.error().message().find("ebin/hello.app"), std::string::npos) << gone.error().to_string();
}

// python3's tarfile writes what GNU tar will not: a member with `..`, a link out of the tree.
void python_tar(const fs::path& out, const std::string& body, const fs::path& cwd) {
  write_file(cwd / "make_tar.py", "import io, tarfile\nt = tarfile.open('" + out.string() +
                                      "', 'w:gz')\n"
                                      "def add(name, data=b'', link=None):\n"
                                      "    i = tarfile.TarInfo(name)\n"
                                      "    if link is not None:\n"
                                      "        i.type = tarfile.SYMTYPE; i.linkname = link\n"
                                      "    else:\n"
                                      "        i.size = len(data)\n"
                                      "    t.addfile(i, io.BytesIO(data) if link is None else None)\n" +
                                      body + "t.close()\n");
  sh("python3 make_tar.py", cwd);
}

TEST(ReleaseReader, HostileTarballsAreRefusedNamingTheMember) {
  TempDir tmp;
  const std::string rel = rel_text("hand", "1.0");
  const std::string base = "add('releases/1.0/hand.rel', b'''" + rel + "''')\n";
  python_tar(tmp / "dotdot.tar.gz", base + "add('lib/hello-1.0/../../../evil', b'x')\n", tmp.path());
  auto r = read_release((tmp / "dotdot.tar.gz").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << r.error().to_string();
  EXPECT_NE(r.error().message().find("lib/hello-1.0/../../../evil"), std::string::npos)
      << r.error().to_string();

  python_tar(tmp / "escape.tar.gz",
             base + "add('lib/hello-1.0/priv/passwd', link='../../../../etc/passwd')\n", tmp.path());
  auto e = read_release((tmp / "escape.tar.gz").string());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), Code::kInvalidArgument) << e.error().to_string();
  EXPECT_NE(e.error().message().find("lib/hello-1.0/priv/passwd"), std::string::npos)
      << e.error().to_string();
}

TEST(ReleaseReader, MixsCookieIsASecretLeftOutUnlessAsked) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  write_file(root / "releases/COOKIE", "SECRETCOOKIE");
  write_file(root / "releases/1.0/env.sh", "#!/bin/sh\n");
  auto r = read_release(root.string());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->kind, "mix");
  EXPECT_FALSE(find(r->files, "releases/COOKIE"));
  EXPECT_TRUE(any_warning(r->warnings, "releases/COOKIE"));
  ReadOptions keep;
  keep.keep_secrets = true;
  auto k = read_release(root.string(), keep);
  ASSERT_TRUE(k) << k.error().to_string();
  ASSERT_TRUE(find(k->files, "releases/COOKIE"));
  EXPECT_EQ(find(k->files, "releases/COOKIE")->bytes, read_file(root / "releases/COOKIE"));
  // In a tarball too.
  sh("tar czf ../mix.tar.gz .", root);
  auto t = read_release((tmp / "mix.tar.gz").string());
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_FALSE(find(t->files, "releases/COOKIE"));
}

TEST(ReleaseReader, SeveralVersionsAreChosenByStartErlDataOrByOption) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel", "1.0");
  write_file(root / "releases/2.0/hand.rel", rel_text("hand", "2.0"));
  write_file(root / "releases/2.0/sys.config", "[].\n");
  auto none = read_release(root.string());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kInvalidArgument);
  EXPECT_NE(none.error().message().find("1.0, 2.0"), std::string::npos) << none.error().to_string();

  write_file(root / "releases/start_erl.data", otp().erts + " 2.0\n");
  auto by_data = read_release(root.string());
  ASSERT_TRUE(by_data) << by_data.error().to_string();
  EXPECT_EQ(by_data->vsn, "2.0");
  EXPECT_TRUE(find(by_data->files, "releases/2.0/sys.config"));
  EXPECT_FALSE(find(by_data->files, "releases/1.0/hand.rel"));
  EXPECT_TRUE(any_warning(by_data->warnings, "releases/1.0/"));

  ReadOptions one;
  one.vsn = "1.0";
  auto by_option = read_release(root.string(), one);
  ASSERT_TRUE(by_option) << by_option.error().to_string();
  EXPECT_EQ(by_option->vsn, "1.0");
  EXPECT_EQ(
      paths_of(by_option->files),
      (std::set<std::string>{"releases/1.0/hand.rel", "releases/1.0/start.boot", "releases/start_erl.data"}));
  one.vsn = "3.0";
  EXPECT_EQ(read_release(root.string(), one).error().code(), Code::kNotFound);

  // A .rel whose version is not its directory's.
  write_file(root / "releases/2.0/hand.rel", rel_text("hand", "2.1"));
  auto wrong = read_release(root.string());
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("releases/2.0"), std::string::npos) << wrong.error().to_string();
}

TEST(ReleaseReader, LinksInsideAreKeptLinksOutsideFollowedDanglingOnesWarned) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  const fs::path hello = root / "lib/hello-1.0";
  fs::create_directories(hello / "priv");
  write_file(hello / "priv/data.txt", "data");
  fs::create_symlink("data.txt", hello / "priv/alias.txt");      // inside: kept as a link
  fs::create_symlink("../../../../outside", hello / "include");  // leaves, and dangles
  write_file(tmp / "config/sys.config", "[{hello, []}].\n");
  fs::create_symlink(tmp / "config/sys.config", root / "releases/1.0/sys.config");  // leaves: followed
  fs::create_directories(hello / "empty");
  auto r = read_release(root.string());
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& files = r->apps[2].files;
  ASSERT_TRUE(find(files, "priv/alias.txt"));
  EXPECT_EQ(find(files, "priv/alias.txt")->link, "data.txt");
  EXPECT_FALSE(find(files, "include"));
  EXPECT_TRUE(any_warning(r->warnings, "lib/hello-1.0/include: a dangling link"));
  ASSERT_TRUE(find(files, "empty"));
  EXPECT_TRUE(find(files, "empty")->directory);
  const ContentFile* config = find(r->files, "releases/1.0/sys.config");
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->link.empty());
  EXPECT_EQ(config->bytes, read_file(tmp / "config/sys.config"));
}

// Debian's ejabberd: priv/img is a link to ../../../../share/ejabberd/img, out of the
// application's directory. Its images are ejabberd's (code:priv_dir(ejabberd) ++ "/img" serves
// the web admin's), and a node's root that has only what materialize writes must hold them:
// the import reads the files behind the link, each as a file, and says nothing.
TEST(ReleaseReader, DebiansEjabberdPrivImgLinkIsReadAsTheFilesBehindIt) {
  fs::path dir;
  for (const auto& arch : fs::directory_iterator("/usr/lib")) {
    if (!arch.is_directory()) continue;
    std::error_code ec;
    for (fs::directory_iterator it(arch.path(), ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().rfind("ejabberd-", 0) == 0 &&
          fs::is_symlink(it->path() / "priv/img"))
        dir = it->path();
    }
  }
  if (dir.empty()) GTEST_SKIP() << "Debian's ejabberd is not installed (apt-get install ejabberd)";
  auto r = read_app(dir.string());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(any_warning(r->warnings, "img")) << r->warnings.front();
  std::size_t images = 0;
  for (const auto& e : fs::directory_iterator(fs::canonical(dir / "priv/img"))) {
    const ContentFile* f = find(r->app.files, "priv/img/" + e.path().filename().string());
    ASSERT_TRUE(f) << e.path();
    EXPECT_TRUE(f->link.empty());
    EXPECT_EQ(f->bytes, read_file(e.path()));
    ++images;
  }
  EXPECT_GT(images, 0u);
  EXPECT_FALSE(find(r->app.files, "priv/img")) << "the link itself is not kept";
}

TEST(ReleaseReader, OtpsOwnRootIsARelease) {
  // /usr/lib/erlang (code:root_dir()) has releases/<otp>/ with four .rel files.
  auto several = read_release(otp().root.string());
  ASSERT_FALSE(several);
  EXPECT_EQ(several.error().code(), Code::kInvalidArgument);
  EXPECT_NE(several.error().message().find("start_sasl.rel"), std::string::npos)
      << several.error().to_string();
  ReadOptions o;
  o.name = "start_sasl";
  auto r = read_release(otp().root.string(), o);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->erts_vsn, otp().erts);
  std::vector<std::string> apps;
  for (const auto& a : r->apps) apps.push_back(a.app + "@" + a.vsn);
  EXPECT_EQ(apps, (std::vector<std::string>{"kernel@" + otp().kernel, "stdlib@" + otp().stdlib,
                                            "sasl@" + otp().sasl}));
  for (const auto& f : r->files) EXPECT_NE(f.path.rfind("erts-", 0), 0u) << f.path;
  EXPECT_TRUE(find(r->files, "releases/RELEASES"));
  for (const auto& app : r->apps) {
    for (const auto& f : app.files) {
      if (f.directory || !f.link.empty()) continue;
      ASSERT_EQ(f.bytes, read_file(otp().root / "lib" / (app.app + "-" + app.vsn) / f.path)) << f.path;
    }
  }
}

TEST(ReleaseReader, LimitsBoundADirectoryAsTheyBoundAnArchive) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  ReadOptions small;
  small.limits.max_entry_bytes = 100;  // the .rel and hello.beam are larger
  auto r = read_release(root.string(), small);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
  EXPECT_NE(
      r.error().message().find((root / "releases/1.0/hand.rel").string() + ": over the limit of 100 bytes"),
      std::string::npos)
      << r.error().to_string();
  ReadOptions few;
  few.limits.max_entries = 3;
  auto f = read_release(root.string(), few);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code(), Code::kLimitExceeded) << f.error().to_string();
  // The same bounds hold for the tarball (archive::read_archive's).
  sh("tar czf ../hand.tar.gz .", root);
  auto t = read_release((tmp / "hand.tar.gz").string(), small);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), Code::kLimitExceeded) << t.error().to_string();
}

TEST(ReleaseReader, ClassifiesWhatItIsGiven) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  write_file(tmp / "x.tar.gz", "");
  write_file(tmp / "x.ez", "");
  write_file(tmp / "m.beam", "");
  write_file(tmp / "notes.txt", "");
  EXPECT_EQ(classify(root.string()).value(), PathKind::kReleaseDir);
  EXPECT_EQ(classify((root / "lib/hello-1.0").string()).value(), PathKind::kAppDir);
  EXPECT_EQ(classify((root / "lib").string()).value(), PathKind::kDirectory);
  EXPECT_EQ(classify((tmp / "x.tar.gz").string()).value(), PathKind::kReleaseArchive);
  EXPECT_EQ(classify((tmp / "x.ez").string()).value(), PathKind::kAppArchive);
  EXPECT_EQ(classify((tmp / "m.beam").string()).value(), PathKind::kBeam);
  EXPECT_EQ(classify((tmp / "notes.txt").string()).value(), PathKind::kOther);
  EXPECT_EQ(classify((tmp / "absent").string()).error().code(), Code::kNotFound);
  EXPECT_EQ(path_kind_name(PathKind::kReleaseDir), "release directory");
  // Not a release.
  auto r = read_release((root / "lib").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
}

TEST(ReleaseReader, ReadsApplicationDirectoriesAndArchives) {
  TempDir tmp;
  const fs::path root = hand_release(tmp / "rel");
  auto d = read_app((root / "lib/hello-1.0").string());
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->app.app, "hello");
  EXPECT_EQ(d->app.vsn, "1.0");
  sh("zip -qr ../hello-1.0.ez hello-1.0", root / "lib");
  auto z = read_app((root / "hello-1.0.ez").string());
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_EQ(z->app.app, "hello");
  EXPECT_EQ(paths_of(z->app.files), paths_of(d->app.files));
  EXPECT_EQ(find(z->app.files, "ebin/hello.beam")->bytes, find(d->app.files, "ebin/hello.beam")->bytes);
  // OTP's own stdlib, named by its .app.
  const fs::path stdlib = otp().root / "lib" / ("stdlib-" + otp().stdlib);
  auto s = read_app(stdlib.string());
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->app.app, "stdlib");
  EXPECT_EQ(s->app.vsn, otp().stdlib);
  // An .ez of two directories is no application archive.
  sh("zip -qr ../two.ez hello-1.0 " + ("stdlib-" + otp().stdlib) + "/ebin/stdlib.app", root / "lib");
  auto two = read_app((root / "two.ez").string());
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code(), Code::kInvalidArgument);
  // A directory without a .app.
  fs::create_directories(tmp / "bare/ebin");
  auto bare = read_app((tmp / "bare").string());
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().code(), Code::kNotFound);
}

}  // namespace
}  // namespace codestore

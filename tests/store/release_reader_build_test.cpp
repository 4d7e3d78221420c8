// The release reader over releases the real tools build here, offline (support/real_releases.h):
// rebar3 (dev mode's links and the prod tarball), mix, systools:make_tar, zip:create's .ez.
// Erlang answers what the .rel says (file:consult/1) and the module MD5s are the image
// floor's (beam_lib:md5/1's definition).
#include <codestore/image.h>
#include <codestore/release_reader.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "support/files.h"
#include "support/real_releases.h"
#include "support/temp_dir.h"

namespace codestore {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const ContentFile* find(const std::vector<ContentFile>& files, const std::string& path) {
  auto it = std::find_if(files.begin(), files.end(), [&](const ContentFile& f) { return f.path == path; });
  return it == files.end() ? nullptr : &*it;
}

std::string md5_of(const std::vector<std::uint8_t>& bytes, const std::string& what) {
  auto img = image::Image::parse(bytes, image::Strictness::kLenient, what);
  EXPECT_TRUE(img) << what << ": " << img.error().to_string();
  if (!img) return "";
  auto md5 = img->md5();
  EXPECT_TRUE(md5) << what;
  return md5 ? image::md5_hex(*md5) : "";
}

// {app, vsn} of each .rel entry, as Erlang's file:consult/1 reads the .rel.
std::vector<std::pair<std::string, std::string>> erl_rel_apps(const fs::path& rel, const fs::path& home) {
  const std::string out = testing::run_checked(
      "REL=" + testing::sh_quote(rel.string()) +
          " erl -noshell -eval '{ok, [{release, _, _, Apps}]} = file:consult(os:getenv(\"REL\")), "
          "[io:format(\"~s ~s~n\", [element(1, A), element(2, A)]) || A <- Apps], halt().'",
      home.parent_path(), home);
  std::vector<std::pair<std::string, std::string>> apps;
  std::size_t at = 0;
  while (at < out.size()) {
    const auto nl = out.find('\n', at);
    const std::string line = out.substr(at, nl - at);
    const auto sp = line.find(' ');
    if (sp != std::string::npos) apps.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    at = nl == std::string::npos ? out.size() : nl + 1;
  }
  return apps;
}

std::vector<std::pair<std::string, std::string>> rel_apps_of(const ReleaseContent& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : r.rel_apps) out.emplace_back(e.app, e.vsn);
  return out;
}

void expect_no_erts(const ReleaseContent& r) {
  for (const auto& f : r.files) {
    EXPECT_FALSE(f.path.rfind("erts-", 0) == 0) << f.path;
    EXPECT_NE(f.path, "releases/COOKIE");
  }
}

// Every regular file of each application has the bytes the file at dir/lib/<app>-<vsn>/<path>
// has (through dev mode's links), and every application is the .rel's.
void expect_apps_match_dir(const ReleaseContent& r, const fs::path& dir) {
  ASSERT_EQ(r.apps.size(), r.rel_apps.size());
  for (std::size_t i = 0; i < r.apps.size(); ++i) {
    const auto& app = r.apps[i];
    EXPECT_EQ(app.app, r.rel_apps[i].app);
    EXPECT_EQ(app.vsn, r.rel_apps[i].vsn);
    EXPECT_TRUE(find(app.files, "ebin/" + app.app + ".app")) << app.app;
    for (const auto& f : app.files) {
      if (f.directory || !f.link.empty()) continue;
      const fs::path disk = dir / "lib" / (app.app + "-" + app.vsn) / f.path;
      ASSERT_TRUE(fs::exists(disk)) << disk;
      EXPECT_EQ(f.bytes, testing::read_file(disk)) << disk;
    }
  }
}

// Module name -> MD5 for every ebin/*.beam of every application.
std::map<std::string, std::string> module_md5s(const ReleaseContent& r) {
  std::map<std::string, std::string> out;
  for (const auto& app : r.apps) {
    for (const auto& f : app.files) {
      if (f.path.rfind("ebin/", 0) == 0 && f.path.size() > 5 && f.path.ends_with(".beam")) {
        out[app.app + ":" + f.path] = md5_of(f.bytes, app.app + "/" + f.path);
      }
    }
  }
  return out;
}

class Rebar3Release : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<TempDir>();
    rel_ = std::make_unique<testing::Rebar3Release>(testing::build_rebar3_release(tmp_->path()));
  }
  static void TearDownTestSuite() {
    rel_.reset();
    tmp_.reset();
  }
  static std::unique_ptr<TempDir> tmp_;
  static std::unique_ptr<testing::Rebar3Release> rel_;
};
std::unique_ptr<TempDir> Rebar3Release::tmp_;
std::unique_ptr<testing::Rebar3Release> Rebar3Release::rel_;

TEST_F(Rebar3Release, DevModeDirectoryFollowsItsLinks) {
  ASSERT_TRUE(fs::is_symlink(rel_->dev_dir / "lib" / "myrel-0.1.0"));  // what dev mode is
  auto r = read_release(rel_->dev_dir.string());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->name, "myrel");
  EXPECT_EQ(r->vsn, "0.1.0");
  EXPECT_EQ(r->kind, "relx");
  EXPECT_EQ(r->erts_vsn, testing::otp_versions().erts);
  EXPECT_EQ(rel_apps_of(*r), erl_rel_apps(rel_->dev_dir / "releases/0.1.0/myrel.rel", tmp_->path() / "home"));
  expect_apps_match_dir(*r, rel_->dev_dir);
  expect_no_erts(*r);
  // The release's files, sys.config and vm.args read through their links into the project.
  for (const char* p :
       {"releases/0.1.0/myrel.rel", "releases/0.1.0/start.boot", "releases/0.1.0/start_clean.boot",
        "releases/0.1.0/sys.config", "releases/0.1.0/vm.args", "releases/start_erl.data", "releases/RELEASES",
        "bin/myrel"}) {
    const ContentFile* f = find(r->files, p);
    ASSERT_TRUE(f) << p;
    EXPECT_TRUE(f->link.empty()) << p;
    EXPECT_EQ(f->bytes, testing::read_file(rel_->dev_dir / p)) << p;
  }
  EXPECT_EQ(find(r->files, "bin/myrel")->mode & 0111, 0111u);
  // myrel's dangling include and priv links are left with a warning; its src link is read.
  const auto& myrel = r->apps[2];
  ASSERT_EQ(myrel.app, "myrel");
  EXPECT_TRUE(find(myrel.files, "src/myrel_server.erl"));
  EXPECT_TRUE(find(myrel.files, "ebin/myrel_server.beam"));
  for (const char* dangling : {"lib/myrel-0.1.0/include", "lib/myrel-0.1.0/priv"}) {
    EXPECT_TRUE(std::any_of(r->warnings.begin(), r->warnings.end(), [&](const std::string& w) {
      return w.find(dangling) != std::string::npos;
    })) << dangling;
  }
}

TEST_F(Rebar3Release, ProdTarballReadsAsItsDirectoryAndAsTheDevBuildsCode) {
  auto tar = read_release(rel_->prod_tar.string());
  ASSERT_TRUE(tar) << tar.error().to_string();
  auto dir = read_release(rel_->prod_dir.string());
  ASSERT_TRUE(dir) << dir.error().to_string();
  auto dev = read_release(rel_->dev_dir.string());
  ASSERT_TRUE(dev) << dev.error().to_string();
  EXPECT_EQ(tar->kind, "relx");
  EXPECT_EQ(tar->origin, rel_->prod_tar.string());
  expect_no_erts(*tar);
  // Every file of the tarball's applications is its directory's (expect_apps_match_dir), and
  // the modules are the same; relx leaves some of the directory out of the tarball (OTP
  // applications' include/ and .appup), so the directory has more files.
  expect_apps_match_dir(*tar, rel_->prod_dir);
  EXPECT_EQ(module_md5s(*tar), module_md5s(*dir));
  // relx's tarball adds the top-level .rel release_handler:unpack_release/1 reads.
  EXPECT_TRUE(find(tar->files, "releases/myrel.rel"));
  EXPECT_EQ(find(tar->files, "releases/0.1.0/start.boot")->bytes,
            testing::read_file(rel_->prod_dir / "releases/0.1.0/start.boot"));
  // The same applications as the dev build, and the same code: prod strips and gzip-wraps
  // myrel's beams (other bytes), their MD5s are the dev build's.
  EXPECT_EQ(rel_apps_of(*tar), rel_apps_of(*dev));
  const auto tar_md5 = module_md5s(*tar), dev_md5 = module_md5s(*dev);
  EXPECT_EQ(tar_md5, dev_md5);
  EXPECT_TRUE(tar_md5.count("myrel:ebin/myrel_server.beam"));
  EXPECT_NE(find(tar->apps[2].files, "ebin/myrel_server.beam")->bytes,
            find(dev->apps[2].files, "ebin/myrel_server.beam")->bytes);
}

TEST(MixRelease, ConsolidatedProtocolsAreTheReleasesOwnAndTheCookieIsLeftOut) {
  TempDir tmp;
  const auto mix = testing::build_mix_release(tmp.path());
  auto r = read_release(mix.dir.string());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->kind, "mix");
  EXPECT_EQ(r->name, "foo");
  EXPECT_EQ(r->vsn, "0.1.0");
  EXPECT_EQ(rel_apps_of(*r), erl_rel_apps(mix.dir / "releases/0.1.0/foo.rel", tmp.path() / "home"));
  expect_apps_match_dir(*r, mix.dir);
  expect_no_erts(*r);
  const auto iex =
      std::find_if(r->rel_apps.begin(), r->rel_apps.end(), [](const auto& e) { return e.app == "iex"; });
  ASSERT_NE(iex, r->rel_apps.end());
  EXPECT_EQ(iex->type, "none");  // mix's three-tuple entry
  // The consolidated Enumerable is the release's, and not Elixir's own.
  const ContentFile* consolidated = find(r->files, "releases/0.1.0/consolidated/Elixir.Enumerable.beam");
  ASSERT_TRUE(consolidated);
  const auto elixir =
      std::find_if(r->apps.begin(), r->apps.end(), [](const auto& a) { return a.app == "elixir"; });
  ASSERT_NE(elixir, r->apps.end());
  const ContentFile* own = find(elixir->files, "ebin/Elixir.Enumerable.beam");
  ASSERT_TRUE(own);
  EXPECT_NE(md5_of(consolidated->bytes, "consolidated"), md5_of(own->bytes, "elixir's"));
  EXPECT_TRUE(find(r->files, "releases/0.1.0/env.sh"));
  EXPECT_TRUE(find(r->files, "releases/0.1.0/runtime.exs") ||
              !fs::exists(mix.dir / "releases/0.1.0/runtime.exs"));
  // The secret is there on disk, not in what was read, and a warning says so.
  ASSERT_TRUE(fs::exists(mix.dir / "releases/COOKIE"));
  EXPECT_FALSE(find(r->files, "releases/COOKIE"));
  EXPECT_TRUE(std::any_of(r->warnings.begin(), r->warnings.end(), [](const std::string& w) {
    return w.find("releases/COOKIE") != std::string::npos;
  }));
  ReadOptions keep;
  keep.keep_secrets = true;
  auto with = read_release(mix.dir.string(), keep);
  ASSERT_TRUE(with) << with.error().to_string();
  ASSERT_TRUE(find(with->files, "releases/COOKIE"));
  EXPECT_EQ(find(with->files, "releases/COOKIE")->bytes, testing::read_file(mix.dir / "releases/COOKIE"));
}

TEST(SystoolsRelease, MakeTarReadsWithoutItsErts) {
  TempDir tmp;
  const auto sys = testing::build_systools_tar(tmp.path());
  // make_tar put erts in the tarball: the reader leaves it.
  const std::string listing =
      testing::run_checked("tar tzf " + testing::sh_quote(sys.tar.string()), tmp.path(), tmp.path() / "home");
  ASSERT_NE(listing.find("erts-" + sys.otp.erts + "/bin/"), std::string::npos);
  auto r = read_release(sys.tar.string());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->kind, "systools");
  EXPECT_EQ(r->name, "tinyrel");
  EXPECT_EQ(r->vsn, "1.0");
  EXPECT_EQ(r->erts_vsn, sys.otp.erts);
  EXPECT_EQ(rel_apps_of(*r), erl_rel_apps(sys.rel, tmp.path() / "home"));
  expect_no_erts(*r);
  std::set<std::string> paths;
  for (const auto& f : r->files) paths.insert(f.path);
  EXPECT_EQ(paths, (std::set<std::string>{"releases/1.0/start.boot", "releases/1.0/tinyrel.rel",
                                          "releases/tinyrel.rel"}));
  ASSERT_EQ(r->apps.size(), 3u);
  const auto& tiny = r->apps[2];
  EXPECT_EQ(tiny.app, "tiny");
  EXPECT_EQ(tiny.origin, sys.tar.string() + ":lib/tiny-1.0");
  EXPECT_EQ(find(tiny.files, "ebin/tiny.beam")->bytes, testing::read_file(sys.app_dir / "ebin/tiny.beam"));
  EXPECT_EQ(find(tiny.files, "ebin/tiny.app")->bytes, testing::read_file(sys.app_dir / "ebin/tiny.app"));
  // kernel and stdlib are OTP's own, as make_tar copied them.
  const auto& kernel = r->apps[0];
  EXPECT_EQ(kernel.app, "kernel");
  EXPECT_EQ(find(kernel.files, "ebin/lists.beam"), nullptr);
  const auto& stdlib = r->apps[1];
  ASSERT_TRUE(find(stdlib.files, "ebin/lists.beam"));
  EXPECT_EQ(find(stdlib.files, "ebin/lists.beam")->bytes,
            testing::read_file(sys.otp.root / "lib" / ("stdlib-" + sys.otp.stdlib) / "ebin/lists.beam"));
}

TEST(EzArchive, ZipCreateArchiveReadsAsItsDirectory) {
  TempDir tmp;
  const fs::path ez = testing::build_ez(tmp.path());
  EXPECT_EQ(classify(ez.string()).value(), PathKind::kAppArchive);
  auto a = read_app(ez.string());
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->app.app, "tiny");
  EXPECT_EQ(a->app.vsn, "1.0");
  EXPECT_EQ(a->app.origin, ez.string() + ":tiny-1.0");
  auto d = read_app((tmp.path() / "tiny-1.0").string());
  ASSERT_TRUE(d) << d.error().to_string();
  std::vector<std::string> paths;
  for (const auto& f : a->app.files) paths.push_back(f.path);
  EXPECT_EQ(paths,
            (std::vector<std::string>{"ebin/tiny.app", "ebin/tiny.beam", "priv/data.txt", "src/tiny.erl"}));
  ASSERT_EQ(a->app.files.size(), d->app.files.size());
  for (std::size_t i = 0; i < a->app.files.size(); ++i) {
    EXPECT_EQ(a->app.files[i].path, d->app.files[i].path);
    EXPECT_EQ(a->app.files[i].bytes, d->app.files[i].bytes) << a->app.files[i].path;
  }
}

}  // namespace
}  // namespace codestore

// The ground floor: each helper that used to exist several times, now once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/app_dir.h"
#include "base/file.h"
#include "base/hex.h"
#include "base/utf8.h"
#include "image/image_test_util.h"  // TempDir, write_file, run, have_escript

namespace codestore::base {
namespace {

using codestore::testing::TempDir;

// ---------------------------------------------------------------------------------------
// OTP's application name of a directory (code_server:get_name/1)

struct AppDirCase {
  const char* dir;
  const char* app;
};

// Where the three copies this replaces disagreed: store.cpp's lib_of_path and the loader's
// code path cut at the first '-' (as OTP does); the boot server's file service cut at the
// last '-' before a version of digits and dots, so it said "foo-bar", "foo-",
// "foo-1.0-rc1", "foo-abc", "foo-" for the rows marked *; the loader said "" for "/".
constexpr AppDirCase kAppDirs[] = {
    {"foo-1.0", "foo"},
    {"foo-bar-1.0", "foo"},  // *
    {"foo", "foo"},
    {"foo-", "foo"},         // *
    {"foo-1.0-rc1", "foo"},  // *
    {"foo-abc", "foo"},      // *
    {"foo--1.0", "foo"},     // *
    {"foo-1.0/", "foo"},
    {"x/foo-1.0/ebin", "foo"},
    {"x/foo-1.0/ebin/", "foo"},
    {"x/ebin", "x"},
    {"ebin", "ebin"},
    {"-foo", ""},
    {"/", "/"},  // *
    {"/usr/lib/erlang/lib/stdlib-4.2/ebin", "stdlib"},
    {"/usr/lib/erlang/lib/erl_interface-5.3.1", "erl_interface"},
};

TEST(AppName, IsOtpsNameOfTheDirectory) {
  for (const auto& c : kAppDirs) EXPECT_EQ(app_name(c.dir), c.app) << c.dir;
}

// Erlang itself: code:replace_path(Name, Dir) is true exactly when code_server:get_name(Dir)
// is Name (else {error, bad_name}), so it checks each row against OTP's own rule.
TEST(AppName, ErlangAgrees) {
  if (!codestore::testing::have_escript()) GTEST_SKIP() << "escript not installed";
  TempDir tmp;
  const std::string script = tmp.path().string() + "/app_name.escript";
  {
    std::ofstream out(script);
    out << "#!/usr/bin/env escript\n"
           "main(Args) ->\n"
           "    lists:foreach(fun(A) ->\n"
           "        [Name, Dir] = string:split(A, \"|\"),\n"
           "        io:format(\"~s ~p~n\", [Dir, code:replace_path(Name, Dir)])\n"
           "    end, Args).\n";
  }
  std::string command = "cd '" + tmp.path().string() + "' && escript app_name.escript";
  std::string expected;
  for (const auto& c : kAppDirs) {
    const std::string dir = c.dir;
    if (dir == "/") continue;  // replace_path crashes OTP 25's code server there (split_base of "")
    if (!dir.starts_with('/')) std::filesystem::create_directories(tmp.path().string() + "/" + dir);
    if (!std::filesystem::is_directory(dir.starts_with('/') ? dir : tmp.path().string() + "/" + dir))
      continue;
    command += " '" + app_name(dir) + "|" + dir + "'";
    expected += dir + " true\n";
  }
  bool ok = false;
  const std::string out = codestore::testing::run(command + " 2>&1", &ok);
  ASSERT_TRUE(ok) << out;
  EXPECT_EQ(out, expected);
}

// ---------------------------------------------------------------------------------------
// UTF-8

TEST(Utf8, WellFormedIsWhatErtsAccepts) {
  EXPECT_TRUE(is_utf8(std::string_view("plain")));
  EXPECT_TRUE(is_utf8(std::string_view("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
  EXPECT_FALSE(is_utf8(std::string_view("\xc0\xaf")));          // overlong '/'
  EXPECT_FALSE(is_utf8(std::string_view("\xe0\x80\xaf")));      // overlong, 3 bytes
  EXPECT_FALSE(is_utf8(std::string_view("\xed\xa0\x80")));      // surrogate U+D800
  EXPECT_FALSE(is_utf8(std::string_view("\xf4\x90\x80\x80")));  // U+110000
  EXPECT_FALSE(is_utf8(std::string_view("\xe2\x82")));          // truncated
  EXPECT_FALSE(is_utf8(std::string_view("\xe9")));              // Latin-1 byte
}

TEST(Utf8, AppendEncodesEveryLength) {
  std::string s;
  for (std::uint32_t cp : {0x41u, 0xE9u, 0x20ACu, 0x1F600u}) append_utf8(s, cp);
  EXPECT_EQ(s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(code_points(s), (std::vector<std::uint32_t>{0x41, 0xE9, 0x20AC, 0x1F600}));
}

TEST(Utf8, StrayBytesStandForThemselves) {
  // Erlang's unicode file name mode: "a\xe9b" is [97, 233, 98]; an overlong sequence is bytes.
  EXPECT_EQ(code_points("a\xe9"
                        "b"),
            (std::vector<std::uint32_t>{0x61, 0xE9, 0x62}));
  EXPECT_EQ(code_points("\xc0\xaf"), (std::vector<std::uint32_t>{0xC0, 0xAF}));
  EXPECT_EQ(next_code_point("\xe2\x82\xac!", 0), (std::pair<std::uint32_t, std::size_t>{0x20AC, 3}));
  EXPECT_EQ(next_code_point("\xe2\x82!", 0), (std::pair<std::uint32_t, std::size_t>{0xE2, 1}));
  std::vector<std::uint32_t> reused{1, 2, 3, 4, 5};
  code_points("ab", reused);
  EXPECT_EQ(reused, (std::vector<std::uint32_t>{0x61, 0x62}));
}

TEST(Utf8, Latin1BytesBecomeTheirCodePoints) {
  EXPECT_EQ(latin1_to_utf8(std::string_view("AtU8")), "AtU8");
  EXPECT_EQ(latin1_to_utf8(std::string_view("caf\xe9")), "caf\xc3\xa9");
  EXPECT_EQ(latin1_to_utf8(std::string_view("\xff")), "\xc3\xbf");
}

// ---------------------------------------------------------------------------------------
// hex

TEST(Hex, LowercaseTwoDigitsPerByte) {
  const std::vector<std::uint8_t> bytes{0x00, 0x0a, 0xff, 0x10};
  EXPECT_EQ(hex(bytes), "000aff10");
  EXPECT_EQ(hex({}), "");
}

// ---------------------------------------------------------------------------------------
// The bounded whole-file read

TEST(ReadFile, ReadsTheWholeFile) {
  TempDir tmp;
  std::vector<std::uint8_t> bytes(100000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  codestore::testing::write_file(tmp.path().string() + "/f", bytes);
  auto r = read_file(tmp.path().string() + "/f", bytes.size());  // exactly at the limit
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, bytes);
  codestore::testing::write_file(tmp.path() / "empty", std::vector<std::uint8_t>{});
  auto e = read_file(tmp.path().string() + "/empty", 0);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_TRUE(e->empty());
}

TEST(ReadFile, OverTheLimitIsEfbig) {
  TempDir tmp;
  codestore::testing::write_file(tmp.path().string() + "/f", std::vector<std::uint8_t>(5000, 1));
  auto r = read_file(tmp.path().string() + "/f", 4999);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, EFBIG);
  EXPECT_EQ(r.error().message, "file of 5000 bytes exceeds 4999");
  const Status s = r.error().status(tmp.path().string() + "/f");
  EXPECT_EQ(s.code(), Code::kLimitExceeded);
  EXPECT_EQ(s.message(), tmp.path().string() + "/f: file of 5000 bytes exceeds 4999");
}

TEST(ReadFile, AStreamOverTheLimitIsEfbigToo) {
  // A FIFO has no size: the limit holds as bytes arrive. The writer is a thread of ours; it
  // stops at EPIPE when the reader gives up (SIGPIPE ignored for that).
  TempDir tmp;
  const std::string fifo = tmp.path().string() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread writer([&] {
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    if (fd < 0) return;
    const std::vector<char> zeros(10000, 0);
    std::size_t sent = 0;
    while (sent < zeros.size()) {
      const ssize_t n = ::write(fd, zeros.data() + sent, zeros.size() - sent);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    ::close(fd);
  });
  auto r = read_file(fifo, 4096);
  writer.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, EFBIG);
  EXPECT_EQ(r.error().message, "file exceeds 4096 bytes");
}

TEST(ReadFile, MissingDirectoryAndUnreadableAreNamed) {
  TempDir tmp;
  auto missing = read_file(tmp.path().string() + "/nope", 100);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err, ENOENT);
  EXPECT_EQ(missing.error().message, "cannot open: No such file or directory");
  EXPECT_EQ(missing.error().status("nope").code(), Code::kNotFound);
  EXPECT_EQ(missing.error().status("nope").message(), "nope: cannot open: No such file or directory");

  auto dir = read_file(tmp.path(), 100);
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().err, EISDIR);  // file:read_file/1 answers eisdir
  EXPECT_EQ(dir.error().message, "cannot read: Is a directory");
  EXPECT_EQ(dir.error().status("d").code(), Code::kIOError);

  if (::geteuid() != 0) {  // root reads anything
    codestore::testing::write_file(tmp.path() / "secret", std::vector<std::uint8_t>{1, 2, 3});
    ASSERT_EQ(::chmod((tmp.path().string() + "/secret").c_str(), 0), 0);
    auto denied = read_file(tmp.path().string() + "/secret", 100);
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().err, EACCES);
    EXPECT_EQ(denied.error().status("secret").code(), Code::kPermissionDenied);
  }
}

}  // namespace
}  // namespace codestore::base

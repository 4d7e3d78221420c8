// consult on its own: the values it builds, the errors it names, and its bounds. What
// Erlang answers for the same texts is checked in consult_erl_test.cpp.
#include "etf/consult.h"

#include <gtest/gtest.h>

#include <string>

#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::etf {
namespace {

Term atom(const char* a) {
  return Term::atom(a);
}

TEST(Consult, ReadsEachTermUpToItsDot) {
  auto t = consult("%% header\n{application, x,\n [{vsn, \"1.0\"}]}.\n{b}. % c\n", "x.app");
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_TRUE((*t)[0] == Term::tuple({atom("application"), atom("x"),
                                      Term::list({Term::tuple({atom("vsn"), Term::string("1.0")})})}));
  EXPECT_TRUE((*t)[1] == Term::tuple({atom("b")}));
}

TEST(Consult, StringsAreListsOfCharactersNotBytes) {
  auto t = consult("\"\xe2\x82\xac\\x{41}\".", "s");
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  EXPECT_TRUE((*t)[0] == Term::list({Term(std::int64_t{0x20AC}), Term(std::int64_t{0x41})}));
}

TEST(Consult, IntegersBeyondInt64AreBig) {
  auto t = consult("[9223372036854775808, -9223372036854775808].", "i");
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  auto elements = (*t)[0].list_elements();
  ASSERT_TRUE(elements.has_value());
  EXPECT_TRUE(std::holds_alternative<BigInt>((*elements)[0].value()));
  ASSERT_NE((*elements)[1].as_int(), nullptr);
  EXPECT_EQ(*(*elements)[1].as_int(), std::numeric_limits<std::int64_t>::min());
}

TEST(Consult, ErrorsNameTheSourceAndTheLine) {
  auto t = consult("[{a, 1},\n {b, 2},\n {c, X}].\n", "sys.config");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), Code::kCorruption);
  EXPECT_EQ(t.error().message().rfind("sys.config:3: ", 0), 0u) << t.error().message();
  EXPECT_NE(t.error().message().find("'X'"), std::string::npos) << t.error().message();
  ASSERT_NE(t.error().where(), nullptr);
  EXPECT_EQ(t.error().where()->file, "sys.config");
  EXPECT_EQ(t.error().where()->offset, 23u);  // the X
}

TEST(Consult, UnterminatedStringNamesTheLineItStarts) {
  auto t = consult("{a}.\n{b, \"abc\n\n", "f.rel");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().message().rfind("f.rel:2: unterminated string", 0), 0u) << t.error().message();
}

TEST(Consult, MissingDotIsAnError) {
  auto t = consult("{a}.\n{b}\n", "f");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().message().rfind("f:2: ", 0), 0u) << t.error().message();
}

TEST(Consult, DepthBombIsALimitNotACrash) {
  std::string bomb(1'000'000, '[');
  bomb += ".\n";
  auto t = consult(bomb, "bomb.config");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code(), Code::kLimitExceeded);
  EXPECT_NE(t.error().message().find("max_depth"), std::string::npos) << t.error().message();
  // Tuples, maps, binaries and parentheses count as levels too.
  for (const char* open : {"{", "#{a => ", "(", "<<("}) {
    std::string s;
    for (int i = 0; i < 10000; ++i) s += open;
    s += ".\n";
    auto r = consult(s, "b");
    ASSERT_FALSE(r.has_value()) << open;
    EXPECT_EQ(r.error().code(), Code::kLimitExceeded) << open << ": " << r.error().message();
  }
  // A requested depth above the ceiling is held to it.
  ConsultLimits limits;
  limits.max_depth = 1'000'000'000;
  auto r = consult(bomb, "b", limits);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
}

TEST(Consult, SizeAndCountLimits) {
  ConsultLimits limits;
  limits.max_bytes = 10;
  auto r = consult("{aaaaaaaaaaaa}.", "big", limits);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);

  limits = ConsultLimits();
  limits.max_terms = 100;
  r = consult("\"" + std::string(1000, 'x') + "\".", "many", limits);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);

  limits = ConsultLimits();
  limits.max_binary_bytes = 1024;
  r = consult("<<0:1000000000>>.", "bin", limits);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded) << r.error().message();

  r = consult("1" + std::string(5000, '0') + ".", "int");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
}

TEST(Consult, FileErrorsKeepTheirKind) {
  testing::TempDir dir;
  auto r = consult_file((dir / "missing.rel").string());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_NE(r.error().message().find("missing.rel"), std::string::npos);

  testing::write_file(dir / "x.app", "{application, x, [{vsn, \"1\"}]}.\n");
  auto ok = consult_file((dir / "x.app").string());
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  EXPECT_EQ(ok->size(), 1u);
}

TEST(Consult, Latin1CodingComment) {
  auto t = consult("%% -*- coding: latin-1 -*-\n\"\xe9\".\n", "l");
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  EXPECT_TRUE((*t)[0] == Term::list({Term(std::int64_t{0xE9})}));
  auto bad = consult("\"\xe9\".\n", "u");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("UTF-8"), std::string::npos);
}

}  // namespace
}  // namespace codestore::etf

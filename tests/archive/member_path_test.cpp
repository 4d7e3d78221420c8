// The path and link rules alone (archive/member_path.h), on paths no tool would write.
#include "archive/member_path.h"

#include <gtest/gtest.h>

namespace codestore::archive::internal {
namespace {

TEST(MemberPath, NormalizesToRelativeSlashSeparated) {
  EXPECT_EQ(normalize_member_path("lib/a.beam").value(), "lib/a.beam");
  EXPECT_EQ(normalize_member_path("./lib//a/").value(), "lib/a");
  EXPECT_EQ(normalize_member_path("././x/./y").value(), "x/y");
  EXPECT_EQ(normalize_member_path("./").value(), "");
  EXPECT_EQ(normalize_member_path(".").value(), "");
  EXPECT_EQ(normalize_member_path("..a/b..").value(), "..a/b..");  // names, not parents
}

TEST(MemberPath, RefusesWhatLeavesOrIsNotAPath) {
  for (const char* bad : {"", "/etc/passwd", "//x", "..", "../x", "a/../b", "a/..", "./..", "a\\b"}) {
    EXPECT_FALSE(normalize_member_path(bad).has_value()) << bad;
  }
  EXPECT_FALSE(normalize_member_path(std::string_view("a\0b", 3)).has_value());
  EXPECT_FALSE(normalize_member_path("caf\xe9").has_value());  // Latin-1, not UTF-8
  EXPECT_EQ(normalize_member_path("caf\xc3\xa9").value(), "caf\xc3\xa9");
  EXPECT_NE(normalize_member_path("a/../b").error().find(".."), std::string::npos);
  EXPECT_NE(normalize_member_path("/x").error().find("absolute"), std::string::npos);
}

TEST(ResolveLink, StaysInsideRelativeToItsDirectory) {
  const std::unordered_map<std::string, std::string> none;
  EXPECT_EQ(resolve_link("bin/start", "../releases/1/start.sh", none).value(), "releases/1/start.sh");
  EXPECT_EQ(resolve_link("lib/current", "myapp-1.0", none).value(), "lib/myapp-1.0");
  EXPECT_EQ(resolve_link("a/b/c", "../..", none).value(), "");
  EXPECT_EQ(resolve_link("top", ".", none).value(), "");
  EXPECT_EQ(resolve_link("a/b", "./x//y/", none).value(), "a/x/y");
}

TEST(ResolveLink, RefusesWhatLeavesTheRoot) {
  const std::unordered_map<std::string, std::string> none;
  EXPECT_FALSE(resolve_link("top", "..", none).has_value());
  EXPECT_FALSE(resolve_link("a/b/c", "../../..", none).has_value());
  EXPECT_FALSE(resolve_link("a/b", "x/../../../y", none).has_value());
  EXPECT_FALSE(resolve_link("a", "/etc/passwd", none).has_value());
  EXPECT_FALSE(resolve_link("a", "", none).has_value());
  EXPECT_NE(resolve_link("top", "../x", none).error().find("leaves the archive"), std::string::npos);
}

TEST(ResolveLink, FollowsTheArchivesOwnLinks) {
  // lib/b -> .. (the root: fine), but lib/c -> b/.. goes through lib/b to the root's parent:
  // lexically "lib/b/.." is "lib", the kernel would leave the archive.
  const std::unordered_map<std::string, std::string> links{{"lib/b", ".."}, {"lib/c", "b/.."}};
  EXPECT_EQ(resolve_link("lib/b", "..", links).value(), "");
  EXPECT_FALSE(resolve_link("lib/c", "b/..", links).has_value());
  // A chain that stays: x -> y/z, y -> d.
  const std::unordered_map<std::string, std::string> chain{{"x", "y/z"}, {"y", "d"}};
  EXPECT_EQ(resolve_link("x", "y/z", chain).value(), "d/z");
  // Loops end.
  const std::unordered_map<std::string, std::string> loop{{"p", "q"}, {"q", "p"}};
  const auto looped = resolve_link("p", "q", loop);
  ASSERT_FALSE(looped.has_value());
  EXPECT_NE(looped.error().find("loop"), std::string::npos);
}

TEST(Quote, EscapesControlsAndNonUtf8) {
  EXPECT_EQ(quote("lib/a"), "'lib/a'");
  EXPECT_EQ(quote("a\nb\xff"), "'a\\x0ab\\xff'");
  EXPECT_EQ(quote("abcdef", 3), "'abc...'");
}

}  // namespace
}  // namespace codestore::archive::internal

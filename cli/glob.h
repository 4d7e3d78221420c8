// Shell-style patterns on module names (`codestore ls 'gen_[a-s]*'`), by character (UTF-8
// code point), as a user of `ls` or fnmatch(3) expects:
//   *        any run of characters          ?        one character
//   [abc]    one of a, b, c                  [a-z]    one in the range a..z
//   [!a-z]   (or [^a-z]) one not in it       \x       x itself
// A ']' first in a set is itself; a '-' first or last is itself.
//
// Thread safety: a Glob is immutable after compile(); matches() may run concurrently.
#pragma once

#include <codestore/status.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codestore::cli {

class Glob {
 public:
  // kInvalidArgument naming the pattern for an unterminated '[', a backwards range
  // ([z-a]) or a trailing '\': such a pattern is refused, never matched literally.
  static Result<Glob> compile(std::string_view pattern);

  bool matches(std::string_view name) const;

 private:
  struct Token {
    enum Kind { kChar, kAny, kStar, kSet } kind = kChar;
    std::uint32_t cp = 0;                                         // kChar
    bool negated = false;                                         // kSet
    std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;  // kSet, inclusive
  };
  std::vector<Token> tokens_;
};

}  // namespace codestore::cli

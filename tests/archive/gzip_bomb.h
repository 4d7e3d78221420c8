// gzip bombs for the archive tests: many GiB of zeros in a few MB, built in no time.
#pragma once

#include <cstdint>
#include <vector>

namespace codestore::testing {

enum class BombEnd {
  kNever,   // the stream never ends: a reader must stop before its end, which is a truncation
  kHonest,  // a final block and a trailer that tells the truth (its ISIZE mod 2^32, past 4 GiB)
};

// A gzip stream: `prefix` (a tar header, say), then `mib` MiB of zeros, ended as `end` says.
// The zeros are one compressed MiB repeated: a full flush ends each MiB on a byte boundary
// with no reference to what came before, so the same bytes inflate to a MiB anywhere.
std::vector<std::uint8_t> gzip_bomb(const std::vector<std::uint8_t>& prefix, std::uint64_t mib, BombEnd end);

}  // namespace codestore::testing

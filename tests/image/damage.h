// Damaged-image generator: named variants of a real module image, each broken in one way
// (container, chunk table, atom/export/import tables, terms, literals, code, gzip), for
// the image reader's tests and fuzzers.
//
//   for (const auto& v : codestore::testing::damage_variants(bytes)) check(v.name, v.bytes);
//
// Thread safety: free functions over values; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/gzip_util.h"  // gzip_bytes: gzip-wrapped variants

namespace codestore::testing {

struct DamagedImage {
  std::string name;  // e.g. "chunk_size_past_end", "atom_count_too_big"
  std::string what;  // one line: what was changed
  std::vector<std::uint8_t> bytes;
};

// One IFF chunk of a well-formed image (id and unpadded data).
struct RawChunk {
  std::string id;
  std::vector<std::uint8_t> data;
};

// Splits a well-formed, uncompressed image (FOR1 ... BEAM) into its chunks; {} if it is not one.
std::vector<RawChunk> split_chunks(std::span<const std::uint8_t> image);
// FOR1, form length, BEAM, then each chunk with its size and zero padding.
std::vector<std::uint8_t> join_chunks(const std::vector<RawChunk>& chunks);

// Every variant that applies to `image` (a well-formed, uncompressed BEAM image: variants
// that need a chunk the image lacks, e.g. LitT, are left out). `seed` drives the random
// ones: random bytes, and `flips` copies with one random byte changed ("flip_N").
std::vector<DamagedImage> damage_variants(std::span<const std::uint8_t> image, std::uint64_t seed = 1,
                                          int flips = 24);

}  // namespace codestore::testing

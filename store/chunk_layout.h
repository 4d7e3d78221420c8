// Module images as their chunks (docs/store.md, "Chunks"): an image split into a layout (the
// recipe that rebuilds the exact file) and the chunks kept apart, content-addressed; the
// image rebuilt from them; the view a loader reads (only the chunks it needs); and the
// zlib layer of LitT, Dbgi and Docs taken off and put back exactly (or not at all).
//
// The recipe is a byte string (stored as its own zstd frame):
//   "CL" 0x01, then operations until the end:
//   0x01 RAW    n:varint, n bytes       bytes as they are (the IFF header, odd padding, a tail)
//   0x02 INLINE id[4] n:varint, n bytes a chunk kept in the recipe: id, u32 BE n, the bytes
//   0x03 REF    id[4] n:varint          a chunk kept apart: id, u32 BE n, then the next
//                                       chunk row's n bytes (blob_chunks, seq order)
//   0x04 PAD    n:varint                n zero bytes (a chunk's padding to 4)
// Rebuilding writes exactly the bytes split read; nothing of the IFF structure is assumed
// (a form length that disagrees, bytes after the last chunk, nonzero padding all survive).
//
// Thread safety: pure functions over their arguments; thread-safe.
#pragma once

#include <codestore/status.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::store_internal {

using ByteSpan = std::span<const std::uint8_t>;

// Which chunks are kept apart (REF) and which stay inside the recipe (INLINE): a debug chunk
// (kDebugChunks: Dbgi, Docs, ExCk...) of at least this size is kept apart, content-addressed, so
// that versions share the documentation and debug information a build did not change and a
// read for loading never fetches them; every chunk the loader reads stays in the recipe, so the
// recipe's one zstd frame is all a read for loading decompresses (one query, one frame: a row
// and a frame per chunk, about ten per module, made it 3.7x a plain file read).
// A smaller debug chunk stays inside too: a row of its own would cost more than it could share.
inline constexpr std::size_t kInlineChunkMax = 64;

struct SplitChunk {
  std::array<char, 4> id;
  ByteSpan data;  // into the image given to split_image
};
struct SplitImage {
  std::vector<std::uint8_t> recipe;
  std::vector<SplitChunk> chunks;  // the REFs, in recipe order
};
// Splits an IFF image ("FOR1" first): debug chunks of at least `inline_max` bytes as REFs,
// the rest inside the recipe; nullopt for anything else (a gzip-wrapped image, a
// file that is no IFF), which is then stored whole.
std::optional<SplitImage> split_image(ByteSpan image, std::size_t inline_max = kInlineChunkMax);

// One operation of a recipe, as parse_recipe reads it.
struct RecipeOp {
  enum Kind : std::uint8_t { kRaw = 1, kInline = 2, kRef = 3, kPad = 4 } kind;
  std::array<char, 4> id{};  // kInline, kRef
  std::uint64_t size = 0;    // bytes (kRaw, kPad), chunk size (kInline, kRef)
  ByteSpan bytes;            // kRaw, kInline: into the recipe
  std::size_t ref = 0;       // kRef: its index among the refs
};
// kCorruption when the recipe is malformed (a length past its end, an unknown operation).
Result<std::vector<RecipeOp>> parse_recipe(ByteSpan recipe);
// The size of the image a recipe rebuilds.
std::uint64_t recipe_image_size(const std::vector<RecipeOp>& ops);
// The exact image: `refs[i]` is the data of the i-th REF (kCorruption when a size differs).
Result<std::vector<std::uint8_t>> assemble_image(const std::vector<RecipeOp>& ops,
                                                 const std::vector<ByteSpan>& refs);

// The chunks the VM loader never reads: debug information, documentation, Elixir's checker
// data (docs/store.md). A read for loading leaves them out.
inline constexpr const char* kDebugChunks[] = {"Dbgi", "Abst", "Docs", "ExDc", "ExCk"};
bool debug_chunk(std::string_view id);
// An IFF image of the chunks a loader needs, in file order, zero padded: what
// erlang:load_module/2 reads of the original and what image::Image::parse accepts strictly.
// `refs[i]` is the data of the i-th REF, or empty for a REF the caller did not fetch (only a
// debug chunk's); the module MD5 (beam_lib:md5/1) is that of the original image.
Result<std::vector<std::uint8_t>> loading_image(const std::vector<RecipeOp>& ops,
                                                const std::vector<ByteSpan>& refs);

// "Code"; a byte outside printable ASCII as \xNN: chunks.kind.
std::string chunk_kind(const std::array<char, 4>& id);

// --- the zlib layer (issue 17 item 2) ----------------------------------------------------------
// A chunk whose data ends in a zlib stream: LitT (after its u32 size), a
// term_to_binary(_, [compressed]) (131, 80, u32 size: Dbgi, Docs, ExCk...).
struct Inflated {
  std::uint32_t head = 0;             // bytes kept as they are before the stream
  std::vector<std::uint8_t> content;  // the head, then the inflated stream
  std::int64_t params = 0;            // deflate_params(level, mem_level, strategy)
};
inline std::int64_t deflate_params(int level, int mem_level, int strategy) {
  return (level + 1) | (mem_level << 8) | (strategy << 16);
}
// The chunk inflated, when deflating it again with some zlib parameters gives exactly `data`
// (the levels tried in the order the stream's header suggests, the default strategy and
// memLevel 8: what erlang's zlib and term_to_binary use); nullopt otherwise (not deflated, a
// truncated or damaged stream, a deflater we cannot reproduce): the chunk is then kept as it came.
std::optional<Inflated> inflate_chunk(std::string_view id, ByteSpan data, std::size_t max_inflated);
// Whether `data` of chunk `id` ends in what inflate_chunk looks for (a zlib stream after
// LitT's size, or a compressed external term), whether or not it inflates.
bool looks_deflated(std::string_view id, ByteSpan data);
// The inflated content alone (no re-deflate check): samples for dictionary training.
std::optional<std::vector<std::uint8_t>> inflate_only(std::string_view id, ByteSpan data,
                                                      std::size_t max_inflated);
// The chunk's data from its content: the head, then the rest deflated with `params`.
// kCorruption when it cannot be deflated (bad params, a head longer than the content).
Result<std::vector<std::uint8_t>> deflate_chunk(ByteSpan content, std::uint32_t head, std::int64_t params);

}  // namespace codestore::store_internal

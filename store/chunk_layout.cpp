// The chunk layer's pure part: split, recipes, rebuild, the loader's view, the zlib layer.
#include "chunk_layout.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "base/big_endian.h"

namespace codestore::store_internal {

namespace {

constexpr std::uint8_t kMagic[] = {'C', 'L', 1};

void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void put_id(std::vector<std::uint8_t>& out, const std::uint8_t* id) {
  out.insert(out.end(), id, id + 4);
}

// A bounds-checked reader over a recipe: every read is checked against what is left.
struct Reader {
  ByteSpan in;
  std::size_t pos = 0;
  bool byte(std::uint8_t& b) {
    if (pos >= in.size()) return false;
    b = in[pos++];
    return true;
  }
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!byte(b)) return false;
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool bytes(std::uint64_t n, ByteSpan& out) {
    if (n > in.size() - pos) return false;
    out = in.subspan(pos, n);
    pos += n;
    return true;
  }
};

void put_chunk_header(std::vector<std::uint8_t>& out, const std::array<char, 4>& id, std::uint64_t size) {
  out.insert(out.end(), id.begin(), id.end());
  base::put_u32(out, size);
}

}  // namespace

std::optional<SplitImage> split_image(ByteSpan image, std::size_t inline_max) {
  if (image.size() < 12 || std::memcmp(image.data(), "FOR1", 4) != 0) return std::nullopt;
  SplitImage out;
  auto& r = out.recipe;
  r.assign(std::begin(kMagic), std::end(kMagic));
  const std::size_t n = image.size();
  std::size_t start = 0;  // bytes from here on are not in the recipe yet
  std::size_t pos = 12;
  auto flush_raw = [&](std::size_t to) {
    if (to <= start) return;
    r.push_back(RecipeOp::kRaw);
    put_varint(r, to - start);
    r.insert(r.end(), image.begin() + static_cast<std::ptrdiff_t>(start),
             image.begin() + static_cast<std::ptrdiff_t>(to));
  };
  while (pos + 8 <= n) {
    const std::uint64_t size = be32(image.data() + pos + 4);
    if (size > n - pos - 8) break;  // runs past the end: the rest stays raw
    flush_raw(pos);
    const std::uint8_t* id = image.data() + pos;
    const ByteSpan data = image.subspan(pos + 8, size);
    // Only a debug chunk is kept apart: the loader's chunks stay in the recipe, so that a read
    // for loading decompresses one frame (the recipe's) and runs no second query.
    if (size >= inline_max && debug_chunk(std::string_view(reinterpret_cast<const char*>(id), 4))) {
      r.push_back(RecipeOp::kRef);
      put_id(r, id);
      put_varint(r, size);
      SplitChunk c;
      std::memcpy(c.id.data(), id, 4);
      c.data = data;
      out.chunks.push_back(c);
    } else {
      r.push_back(RecipeOp::kInline);
      put_id(r, id);
      put_varint(r, size);
      r.insert(r.end(), data.begin(), data.end());
    }
    const std::size_t end = pos + 8 + size;
    const std::size_t pad = (4 - end % 4) % 4;
    start = end;
    if (pad > 0 && end + pad <= n &&
        std::all_of(image.begin() + static_cast<std::ptrdiff_t>(end),
                    image.begin() + static_cast<std::ptrdiff_t>(end + pad),
                    [](std::uint8_t b) { return b == 0; })) {
      r.push_back(RecipeOp::kPad);
      put_varint(r, pad);
      start = end + pad;
    }
    pos = end + pad;  // nonzero or missing padding: the next RAW holds what there is
  }
  flush_raw(n);
  return out;
}

Result<std::vector<RecipeOp>> parse_recipe(ByteSpan recipe) {
  auto bad = [](std::string_view why) {
    return error(Code::kCorruption, fmt::format("chunk layout: {}", why));
  };
  if (recipe.size() < sizeof kMagic || std::memcmp(recipe.data(), kMagic, sizeof kMagic) != 0)
    return bad("not a layout (bad magic)");
  Reader rd{recipe, sizeof kMagic};
  std::vector<RecipeOp> ops;
  ops.reserve(32);  // a module has about 15 chunks, each one or two operations
  std::size_t refs = 0;
  while (rd.pos < recipe.size()) {
    RecipeOp op{};
    std::uint8_t kind = 0;
    rd.byte(kind);
    ByteSpan id;
    switch (kind) {
      case RecipeOp::kRaw:
      case RecipeOp::kPad:
        if (!rd.varint(op.size)) return bad("truncated length");
        if (kind == RecipeOp::kRaw && !rd.bytes(op.size, op.bytes)) return bad("raw bytes past its end");
        if (kind == RecipeOp::kPad && op.size > 3) return bad("padding longer than 3 bytes");
        break;
      case RecipeOp::kInline:
      case RecipeOp::kRef:
        if (!rd.bytes(4, id) || !rd.varint(op.size)) return bad("truncated chunk header");
        if (op.size > 0xffffffffu) return bad("chunk size above 4 GiB");
        std::memcpy(op.id.data(), id.data(), 4);
        if (kind == RecipeOp::kInline && !rd.bytes(op.size, op.bytes))
          return bad("inline chunk past its end");
        if (kind == RecipeOp::kRef) op.ref = refs++;
        break;
      default: return bad(fmt::format("unknown operation {}", kind));
    }
    op.kind = static_cast<RecipeOp::Kind>(kind);
    ops.push_back(op);
  }
  return ops;
}

std::uint64_t recipe_image_size(const std::vector<RecipeOp>& ops) {
  std::uint64_t n = 0;
  for (const auto& op : ops)
    n += op.size + ((op.kind == RecipeOp::kInline || op.kind == RecipeOp::kRef) ? 8 : 0);
  return n;
}

Result<std::vector<std::uint8_t>> assemble_image(const std::vector<RecipeOp>& ops,
                                                 const std::vector<ByteSpan>& refs) {
  std::vector<std::uint8_t> out;
  out.reserve(recipe_image_size(ops));
  for (const auto& op : ops) {
    switch (op.kind) {
      case RecipeOp::kRaw: out.insert(out.end(), op.bytes.begin(), op.bytes.end()); break;
      case RecipeOp::kPad: out.insert(out.end(), op.size, 0); break;
      case RecipeOp::kInline:
        put_chunk_header(out, op.id, op.size);
        out.insert(out.end(), op.bytes.begin(), op.bytes.end());
        break;
      case RecipeOp::kRef:
        if (op.ref >= refs.size() || refs[op.ref].size() != op.size) {
          return error(
              Code::kCorruption,
              fmt::format("chunk layout: chunk {} ({}) has {} bytes, the layout says {}", op.ref,
                          chunk_kind(op.id), op.ref < refs.size() ? refs[op.ref].size() : 0, op.size));
        }
        put_chunk_header(out, op.id, op.size);
        out.insert(out.end(), refs[op.ref].begin(), refs[op.ref].end());
        break;
    }
  }
  return out;
}

bool debug_chunk(std::string_view id) {
  // Dbgi/Abst: debug_info and abstract code (beam_lib only); Docs, ExDc: EEP 48 and old Elixir
  // docs; ExCk: Elixir's type checker data. The VM's beam_load reads none of them.
  return std::any_of(std::begin(kDebugChunks), std::end(kDebugChunks),
                     [&](const char* k) { return id == k; });
}

Result<std::vector<std::uint8_t>> loading_image(const std::vector<RecipeOp>& ops,
                                                const std::vector<ByteSpan>& refs) {
  // The loader's chunks, checked and sized first: the image is then allocated once and each
  // chunk copied once (growing it chunk by chunk copied it several times over: a tenth of a
  // read for loading, bench_store).
  auto loader_chunk = [](const RecipeOp& op) {
    return (op.kind == RecipeOp::kInline || op.kind == RecipeOp::kRef) &&
           !debug_chunk(std::string_view(op.id.data(), 4));
  };
  std::size_t size = 12;
  for (const auto& op : ops) {
    if (!loader_chunk(op)) continue;
    if (op.kind == RecipeOp::kRef && (op.ref >= refs.size() || refs[op.ref].size() != op.size)) {
      return error(Code::kCorruption, fmt::format("chunk layout: chunk {} ({}) missing or of the wrong size",
                                                  op.ref, chunk_kind(op.id)));
    }
    size += 8 + op.size + (4 - op.size % 4) % 4;
  }
  std::vector<std::uint8_t> out;
  out.reserve(size);
  out.insert(out.end(), {'F', 'O', 'R', '1'});
  base::put_u32(out, size - 8);
  out.insert(out.end(), {'B', 'E', 'A', 'M'});
  for (const auto& op : ops) {
    if (!loader_chunk(op)) continue;
    const ByteSpan data = op.kind == RecipeOp::kRef ? refs[op.ref] : op.bytes;
    put_chunk_header(out, op.id, op.size);
    out.insert(out.end(), data.begin(), data.end());
    out.insert(out.end(), (4 - op.size % 4) % 4, 0);
  }
  return out;
}

std::string chunk_kind(const std::array<char, 4>& id) {
  std::string s;
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      s += c;
    } else {
      s += fmt::format("\\x{:02x}", u);
    }
  }
  return s;
}

namespace {

// Deflates `in` as one zlib stream with these parameters; empty on failure.
std::vector<std::uint8_t> zlib_deflate(ByteSpan in, int level, int mem_level, int strategy) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, MAX_WBITS, mem_level, strategy) != Z_OK) return {};
  std::vector<std::uint8_t> out(deflateBound(&zs, static_cast<uLong>(in.size())) + 16);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(rc == Z_STREAM_END ? zs.total_out : 0);
  deflateEnd(&zs);
  return out;
}

// Inflates one zlib stream that must end exactly at the end of `in`.
bool zlib_inflate_all(ByteSpan in, std::size_t max, std::vector<std::uint8_t>& out) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return false;
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  std::uint8_t buf[16384];
  while (rc == Z_OK) {
    zs.next_out = buf;
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.insert(out.end(), buf, buf + (sizeof buf - zs.avail_out));
    if (out.size() > max) rc = Z_MEM_ERROR;
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) rc = Z_BUF_ERROR;  // truncated stream
  }
  const bool ok = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  return ok;
}

// The bytes before the zlib stream of a deflated chunk, or 0 when it has none.
std::uint32_t deflate_head(std::string_view id, ByteSpan data) {
  std::uint32_t head = 0;
  if (id == "LitT" && data.size() > 6) {
    head = 4;
  } else if (data.size() > 8 && data[0] == 131 && data[1] == 80) {
    head = 6;  // term_to_binary(_, [compressed]): the tag, the inflated size
  } else {
    return 0;
  }
  // RFC 1950: deflate with a 32 KiB window (what zlib always writes) and a header check.
  const ByteSpan stream = data.subspan(head);
  if (stream[0] != 0x78 || ((stream[0] << 8) | stream[1]) % 31 != 0 || (stream[1] & 0x20) != 0) return 0;
  return head;
}

}  // namespace

bool looks_deflated(std::string_view id, ByteSpan data) {
  return deflate_head(id, data) != 0;
}

std::optional<std::vector<std::uint8_t>> inflate_only(std::string_view id, ByteSpan data,
                                                      std::size_t max_inflated) {
  const std::uint32_t head = deflate_head(id, data);
  if (head == 0) return std::nullopt;
  std::vector<std::uint8_t> out(data.begin(), data.begin() + head);
  if (!zlib_inflate_all(data.subspan(head), max_inflated, out)) return std::nullopt;
  return out;
}

std::optional<Inflated> inflate_chunk(std::string_view id, ByteSpan data, std::size_t max_inflated) {
  const std::uint32_t head = deflate_head(id, data);
  if (head == 0) return std::nullopt;
  const ByteSpan stream = data.subspan(head);
  Inflated out;
  out.head = head;
  out.content.assign(data.begin(), data.begin() + head);
  if (!zlib_inflate_all(stream, max_inflated, out.content)) return std::nullopt;
  // The header's FLEVEL names the level's class (0: 0-1, 1: 2-5, 2: 6, 3: 7-9); try it first.
  static const std::vector<int> by_class[4] = {{1, 0}, {5, 4, 3, 2}, {6}, {9, 8, 7}};
  std::vector<int> levels = by_class[stream[1] >> 6];
  for (int l = 0; l <= 9; ++l)
    if (std::find(levels.begin(), levels.end(), l) == levels.end()) levels.push_back(l);
  const ByteSpan inflated = ByteSpan(out.content).subspan(head);
  for (int level : levels) {
    const auto again = zlib_deflate(inflated, level, 8, Z_DEFAULT_STRATEGY);
    if (again.size() == stream.size() && std::equal(again.begin(), again.end(), stream.begin())) {
      out.params = deflate_params(level, 8, Z_DEFAULT_STRATEGY);
      return out;
    }
  }
  return std::nullopt;
}

Result<std::vector<std::uint8_t>> deflate_chunk(ByteSpan content, std::uint32_t head, std::int64_t params) {
  const int level = static_cast<int>(params & 0xff) - 1;
  const int mem_level = static_cast<int>((params >> 8) & 0xff);
  const int strategy = static_cast<int>((params >> 16) & 0xff);
  if (head > content.size() || level < 0 || level > 9 || mem_level < 1 || mem_level > 9 || strategy > Z_FIXED)
    return error(Code::kCorruption, fmt::format("chunk: bad deflate parameters {} or head {}", params, head));
  std::vector<std::uint8_t> out(content.begin(), content.begin() + head);
  const auto stream = zlib_deflate(content.subspan(head), level, mem_level, strategy);
  if (stream.empty()) return error(Code::kCorruption, "chunk: zlib deflate failed");
  out.insert(out.end(), stream.begin(), stream.end());
  return out;
}

}  // namespace codestore::store_internal

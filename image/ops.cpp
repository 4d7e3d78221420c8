// Whole-image operations: the module MD5 (beam_lib:md5/1), strip, cmp and build_module.
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "image/byte_reader.h"
#include "image/image_internal.h"

namespace codestore::image {

using internal::make_error;

namespace {

// beam_lib's md5_chunks/0, in hashing order; mandatory_chunks/0; significant_chunks/0.
constexpr std::string_view kMd5Chunks[] = {"Atom", "AtU8", "Code", "StrT", "ImpT",
                                           "ExpT", "FunT", "LitT", "Meta"};
constexpr std::string_view kMandatory[] = {"Code", "ExpT", "ImpT", "StrT"};
constexpr std::string_view kSignificant[] = {"Line", "Type", "Atom", "AtU8", "Code", "StrT",
                                             "ImpT", "ExpT", "FunT", "LitT", "Meta"};

bool mandatory(std::string_view id) {
  return std::find(std::begin(kMandatory), std::end(kMandatory), id) != std::end(kMandatory);
}

// EVP_MD_fetch is costly; fetch MD5 once (EVP_MD objects are thread-safe to share).
const EVP_MD* md5_algorithm() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return md ? md : EVP_md5();
}

class Md5Ctx {
 public:
  Md5Ctx() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md5_algorithm(), nullptr); }
  ~Md5Ctx() { EVP_MD_CTX_free(ctx_); }
  Md5Ctx(const Md5Ctx&) = delete;
  Md5Ctx& operator=(const Md5Ctx&) = delete;
  void update(Bytes b) {
    if (!b.empty()) EVP_DigestUpdate(ctx_, b.data(), b.size());
  }
  Md5 final() {
    Md5 out{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, out.data(), &n);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// filter_funtab/1: the count, then each 24-byte entry with old_uniq (bytes 20..23) zeroed;
// a tail shorter than an entry is hashed as it is (the loader refuses it instead).
void hash_funt(Md5Ctx& md5, Bytes d) {
  static constexpr std::uint8_t kZero[4] = {0, 0, 0, 0};
  if (d.size() < 4) {
    md5.update(d);
    return;
  }
  md5.update(d.first(4));
  d = d.subspan(4);
  while (d.size() >= 24) {
    md5.update(d.first(20));
    md5.update(Bytes(kZero, 4));
    d = d.subspan(24);
  }
  md5.update(d);
}

// read_significant_chunks/2: the chunks for `names`, in that order (the same chunk twice
// when named twice), missing optional ones left out, a missing mandatory one an error.
Result<std::vector<const Chunk*>> significant(const Image::Rep& rep,
                                              const std::vector<std::string_view>& names) {
  auto s = internal::select(rep, names);
  if (!s) return tl::unexpected(s.error());
  std::vector<const Chunk*> out;
  for (std::string_view id : names) {
    if (const Chunk* c = s->get(id)) {
      out.push_back(c);
    } else if (mandatory(id)) {
      return tl::unexpected(
          make_error(ErrorKind::kMissingChunk, rep.file, id, rep.buf.size(), "no such chunk"));
    }
  }
  return out;
}

// The module name an atom chunk gives (its atom #1); "" when it has none.
std::string first_atom(const Image::Rep& rep, const Chunk* c) {
  if (!c) return {};
  internal::ByteReader r(rep.data(*c));
  std::uint8_t len = 0;
  Bytes name;
  if (!r.skip(4) || !r.u8(len) || !r.bytes(len, name)) return {};
  if (c->id_view() == "AtU8") return std::string(reinterpret_cast<const char*>(name.data()), name.size());
  internal::AtomTable t;
  t.data = name;
  t.latin1 = true;
  t.spans.emplace_back(0, len);
  return t.name(1);
}

}  // namespace

Result<Md5> Image::md5() const {
  const Rep& rep = *rep_;
  Md5Ctx md5;
  if (rep.strictness == Strictness::kStrict) {
    // beam_file.c # beamfile_read: AtU8 Code StrT ImpT ExpT [FunT] [LitT] [Meta], the last
    // of duplicates, empty optional chunks skipped (a missing StrT hashes as empty).
    auto s = internal::select(rep, {"AtU8", "Code", "StrT", "ImpT", "ExpT", "FunT", "LitT", "Meta"});
    if (!s) return tl::unexpected(s.error());
    for (std::string_view id : {"AtU8", "Code", "StrT", "ImpT", "ExpT"}) {
      if (const Chunk* c = s->get(id)) md5.update(rep.data(*c));
    }
    if (const Chunk* c = s->get("FunT"); c && c->size > 0) {
      Bytes d = rep.data(*c);
      if (d.size() < 4 || (d.size() - 4) % 24 != 0) {
        return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, "FunT", c->offset,
                                         "length is not 4 + 24 * entries"));
      }
      hash_funt(md5, d);
    }
    for (std::string_view id : {"LitT", "Meta"}) {
      if (const Chunk* c = s->get(id)) md5.update(rep.data(*c));
    }
    return md5.final();
  }
  auto chunks = significant(rep, {std::begin(kMd5Chunks), std::end(kMd5Chunks)});
  if (!chunks) return tl::unexpected(chunks.error());
  for (const Chunk* c : *chunks) {
    if (c->id_view() == "FunT") {
      hash_funt(md5, rep.data(*c));
    } else {
      md5.update(rep.data(*c));
    }
  }
  return md5.final();
}

Result<std::vector<std::uint8_t>> build_module(const std::vector<ChunkData>& chunks) {
  std::size_t total = 12;
  for (const ChunkData& c : chunks) {
    if (c.id.size() != 4) {
      return error(internal::make_error(ErrorKind::kInvalidChunk, "<binary>", c.id, 0,
                                        "a chunk id is exactly 4 bytes"));
    }
    if (c.data.size() > UINT32_MAX) {
      return error(
          internal::image_error(ErrorKind::kLimitExceeded, "<binary>", c.id, 0, "chunk larger than 4 GiB"));
    }
    total += 8 + ((c.data.size() + 3) & ~std::size_t{3});
  }
  if (total - 8 > UINT32_MAX) {
    return error(
        internal::image_error(ErrorKind::kLimitExceeded, "<binary>", "", 0, "form larger than 4 GiB"));
  }
  std::vector<std::uint8_t> out;
  out.reserve(total);
  auto put32 = [&](std::size_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  out.insert(out.end(), {'F', 'O', 'R', '1'});
  put32(total - 8);
  out.insert(out.end(), {'B', 'E', 'A', 'M'});
  for (const ChunkData& c : chunks) {
    out.insert(out.end(), c.id.begin(), c.id.end());
    put32(c.data.size());
    out.insert(out.end(), c.data.begin(), c.data.end());
    out.resize(out.size() + ((4 - c.data.size() % 4) % 4), 0);
  }
  return out;
}

Result<std::vector<std::uint8_t>> strip(const Image& image, const std::vector<std::string>& extra_ids,
                                        bool raw) {
  const Image::Rep& rep = internal::ImageAccess::rep(image);
  std::vector<std::string_view> names(extra_ids.begin(), extra_ids.end());
  names.insert(names.end(), std::begin(kSignificant), std::end(kSignificant));
  auto chunks = significant(rep, names);
  if (!chunks) return tl::unexpected(chunks.error());
  std::vector<ChunkData> parts;
  parts.reserve(chunks->size());
  for (const Chunk* c : *chunks) parts.push_back(ChunkData{std::string(c->id_view()), rep.data(*c)});
  auto built = build_module(parts);
  if (!built || raw) return built;
  return internal::gzip(*built);
}

namespace {

struct CmpView {
  std::string module;
  std::vector<const Chunk*> chunks;
};

// read_all_but_useless_chunks/1: every chunk id the info scan lists except CInf, read with
// one request (so of a duplicated non-atom chunk only the first is read).
Result<CmpView> cmp_view(const Image::Rep& rep) {
  std::vector<std::string_view> ids;
  for (const Chunk& c : rep.chunks) {
    if (c.id_view() != "CInf") ids.push_back(c.id_view());
  }
  auto s = internal::select(rep, ids);
  if (!s) return tl::unexpected(s.error());
  CmpView v;
  const Chunk* last_atom = nullptr;
  for (const Chunk* c : s->read) {
    if (c->id_view() == "AtU8" || c->id_view() == "Atom") last_atom = c;
    if (c->id_view() != "CInf") v.chunks.push_back(c);
  }
  v.module = rep.strictness == Strictness::kStrict ? rep.module : first_atom(rep, last_atom);
  return v;
}

}  // namespace

Result<void> cmp(const Image& a, const Image& b) {
  auto va = cmp_view(internal::ImageAccess::rep(a));
  if (!va) return tl::unexpected(va.error());
  auto vb = cmp_view(internal::ImageAccess::rep(b));
  if (!vb) return tl::unexpected(vb.error());
  const std::string files = a.file() + " and " + b.file();
  if (va->module != vb->module) {
    return error(internal::image_error(ErrorKind::kModulesDifferent, files, "", 0,
                                       "module names " + va->module + " and " + vb->module + " differ"));
  }
  for (std::size_t i = 0;; ++i) {
    const bool end_a = i == va->chunks.size(), end_b = i == vb->chunks.size();
    if (end_a && end_b) return {};
    if (end_a || end_b || va->chunks[i]->id_view() != vb->chunks[i]->id_view()) {
      return error(internal::image_error(ErrorKind::kDifferentChunks, files, "", 0,
                                         "the two files have different chunks"));
    }
    Bytes da = a.data(*va->chunks[i]), db = b.data(*vb->chunks[i]);
    if (!std::equal(da.begin(), da.end(), db.begin(), db.end())) {
      return error(internal::make_error(ErrorKind::kChunksDifferent, files, va->chunks[i]->id_view(), 0,
                                        "chunk differs in the two files"));
    }
  }
}

}  // namespace codestore::image

// The IFF container: gzip unwrapping, beam_lib's lenient chunk scan, the loader's strict
// one, and the request emulation (select) every beam_lib view goes through.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "base/file.h"
#include "base/hex.h"
#include "base/utf8.h"
#include "etf/term_internal.h"
#include "image/byte_reader.h"
#include "image/image_internal.h"

namespace codestore::image {

using internal::ByteReader;
using internal::make_error;
using internal::too_big;

std::string_view kind_name(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kNotABeamFile: return "not_a_beam_file";
    case ErrorKind::kFileError: return "file_error";
    case ErrorKind::kMissingChunk: return "missing_chunk";
    case ErrorKind::kInvalidBeamFile: return "invalid_beam_file";
    case ErrorKind::kChunkTooBig: return "chunk_too_big";
    case ErrorKind::kInvalidChunk: return "invalid_chunk";
    case ErrorKind::kUnknownChunk: return "unknown_chunk";
    case ErrorKind::kModulesDifferent: return "modules_different";
    case ErrorKind::kChunksDifferent: return "chunks_different";
    case ErrorKind::kDifferentChunks: return "different_chunks";
    case ErrorKind::kNotLoadable: return "not_loadable";
    case ErrorKind::kLimitExceeded: return "limit_exceeded";
  }
  return "unknown";
}

namespace {

// The Erlang reason of each kind (image.h): beam_lib's atom, the loader's badfile for
// not_loadable, none for a limit of ours.
std::string_view reason_of(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kNotLoadable: return "badfile";
    case ErrorKind::kLimitExceeded: return "";
    default: return kind_name(kind);
  }
}

Code code_of(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kFileError: return Code::kIOError;
    case ErrorKind::kMissingChunk: return Code::kNotFound;
    case ErrorKind::kUnknownChunk: return Code::kInvalidArgument;
    case ErrorKind::kLimitExceeded: return Code::kLimitExceeded;
    case ErrorKind::kModulesDifferent:
    case ErrorKind::kChunksDifferent:
    case ErrorKind::kDifferentChunks: return Code::kFailedPrecondition;
    default: return Code::kCorruption;
  }
}

// "lists.beam: chunk ExpT at offset 29100: ", the part of the message before the detail.
std::string message_prefix(ErrorKind kind, const Where& where) {
  std::string s = where.file;
  if (!where.chunk.empty()) s += ": chunk " + where.chunk;
  switch (kind) {
    case ErrorKind::kFileError:
    case ErrorKind::kUnknownChunk:
    case ErrorKind::kModulesDifferent:
    case ErrorKind::kChunksDifferent:
    case ErrorKind::kDifferentChunks: break;
    default: s += (where.chunk.empty() ? ": at offset " : " at offset ") + std::to_string(where.offset);
  }
  s += ": ";
  return s;
}

constexpr ErrorKind kAllKinds[] = {
    ErrorKind::kNotABeamFile,    ErrorKind::kFileError,        ErrorKind::kMissingChunk,
    ErrorKind::kInvalidBeamFile, ErrorKind::kChunkTooBig,      ErrorKind::kInvalidChunk,
    ErrorKind::kUnknownChunk,    ErrorKind::kModulesDifferent, ErrorKind::kChunksDifferent,
    ErrorKind::kDifferentChunks, ErrorKind::kNotLoadable,      ErrorKind::kLimitExceeded,
};

}  // namespace

std::optional<ErrorKind> kind_of(const Status& status) noexcept {
  if (status.is_ok() || !status.where()) return std::nullopt;
  for (ErrorKind kind : kAllKinds) {
    if (status.reason() == reason_of(kind) && status.code() == code_of(kind)) return kind;
  }
  return std::nullopt;
}

std::string_view error_detail(const Status& status) {
  const std::optional<ErrorKind> kind = kind_of(status);
  std::string_view message = status.message();
  if (!kind) return message;
  // image_error composed the message as this prefix and the detail; a context added later
  // (with_context) would stand before it, and then the whole message is the answer.
  const std::string prefix = message_prefix(*kind, *status.where());
  if (message.substr(0, prefix.size()) == prefix) message.remove_prefix(prefix.size());
  return message;
}

std::string md5_hex(const Md5& md5) {
  return base::hex(md5);
}

Bytes Image::Rep::data(const Chunk& c) const {
  if (c.offset >= buf.size()) return {};
  std::uint64_t n = std::min<std::uint64_t>(c.size, buf.size() - c.offset);
  return {buf.data() + c.offset, static_cast<std::size_t>(n)};
}

bool Image::Rep::truncated(const Chunk& c) const {
  return c.offset + c.size > buf.size();
}

namespace internal {

std::string display_file(std::string_view file) {
  return file.empty() ? "<binary>" : std::string(file);
}

Status image_error(ErrorKind kind, std::string file, std::string chunk, std::uint64_t offset,
                   std::string_view detail) {
  Where where{std::move(file), std::move(chunk), offset};
  std::string message = message_prefix(kind, where);
  message += detail;
  return Status(code_of(kind), reason_of(kind), std::move(message)).with_where(std::move(where));
}

Status make_error(ErrorKind kind, const std::string& file, std::string_view chunk, std::uint64_t offset,
                  std::string_view detail) {
  return image_error(kind, file, chunk_id_text(chunk), offset, detail);
}

Status too_big(const Image::Rep& rep, std::string_view id, std::uint64_t offset, std::uint64_t size,
               std::uint64_t avail) {
  return make_error(
      ErrorKind::kChunkTooBig, rep.file, id, offset,
      "size " + std::to_string(size) + " runs past end of file (" + std::to_string(avail) + " bytes left)");
}

std::string chunk_id_text(std::string_view id) {
  std::string s;
  for (char ch : id) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      s += ch;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      s += hex;
    }
  }
  return s;
}

std::string AtomTable::name(std::size_t index1) const {
  auto [off, len] = spans[index1 - 1];
  if (!latin1) return std::string(reinterpret_cast<const char*>(data.data()) + off, len);
  return base::latin1_to_utf8(data.subspan(off, len));
}

Result<AtomTable> decode_atoms(const Image::Rep& rep, const Chunk& chunk, bool strict) {
  AtomTable t;
  t.chunk = &chunk;
  t.data = rep.data(chunk);
  t.latin1 = chunk.id_view() == "Atom";
  const std::string id(chunk.id_view());
  ByteReader r(t.data, chunk.offset);
  std::int32_t count = 0;
  if (!r.i32(count)) {
    return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, id, chunk.offset,
                                     "atom table shorter than its 4-byte count"));
  }
  auto bad = [&](std::uint64_t at, const std::string& what) {
    return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, id, at, what));
  };
  if (strict) {
    // parse_atom_chunk: 1 <= count < 2^30 / 8, then exactly count atoms.
    if (count < 1 || count >= (1 << 27))
      return bad(chunk.offset, "atom count " + std::to_string(count) + " out of range");
    if (static_cast<std::size_t>(count) > rep.limits.max_atoms) {
      return tl::unexpected(make_error(ErrorKind::kLimitExceeded, rep.file, id, chunk.offset,
                                       "max_atoms: " + std::to_string(count) + " atoms"));
    }
  }
  const std::size_t want = strict ? static_cast<std::size_t>(count) : SIZE_MAX;
  // Each atom takes at least one byte: reserve no more than the bytes allow.
  t.spans.reserve(std::min<std::size_t>(strict ? want : 64, r.remaining()));
  while (t.spans.size() < want && (strict || !r.eof())) {
    const std::uint64_t at = r.offset();
    std::uint8_t len = 0;
    Bytes name;
    if (!r.u8(len) || !r.bytes(len, name)) {
      return bad(at, "atom #" + std::to_string(t.spans.size() + 1) + " runs past the end of the chunk");
    }
    if (!t.latin1 && !base::is_utf8(name))
      return bad(at, "atom #" + std::to_string(t.spans.size() + 1) + " is not valid UTF-8");
    if (t.spans.size() >= rep.limits.max_atoms) {
      return tl::unexpected(
          make_error(ErrorKind::kLimitExceeded, rep.file, id, at,
                     "max_atoms: more than " + std::to_string(rep.limits.max_atoms) + " atoms"));
    }
    t.spans.emplace_back(static_cast<std::uint32_t>(name.data() - t.data.data()), len);
  }
  return t;
}

void atoms_of(const Image::Rep& rep, const Chunk& chunk, bool strict, AtomsRef& out) {
  const bool own_strictness = strict == (rep.strictness == Strictness::kStrict);
  if (own_strictness) {
    std::call_once(rep.atoms_once, [&] {
      rep.atoms_cache = decode_atoms(rep, chunk, strict);
      rep.atoms_chunk = &chunk;
    });
    if (rep.atoms_chunk == &chunk) {
      out.cached = &rep.atoms_cache;
      return;
    }
  }
  out.cached = nullptr;
  out.own = decode_atoms(rep, chunk, strict);
}

Result<etf::Term> binary_to_term(const Image::Rep& rep, const Chunk& chunk) {
  Bytes d = rep.data(chunk);
  etf::DecodeLimits lim;
  lim.max_depth = rep.limits.max_term_depth;
  lim.max_inflated_bytes = rep.limits.max_inflated_bytes;
  Result<etf::Term> t = [&]() -> Result<etf::Term> {
    if (d.size() >= 2 && d[0] == etf::internal::kVersion && d[1] == etf::internal::kCompressed) {
      return etf::decode(d, lim);
    }
    if (d.empty() || d[0] != etf::internal::kVersion) {
      return error(Code::kCorruption, "no external term format version byte (131)");
    }
    std::size_t used = 0;
    return etf::internal::decode_prefix(d.subspan(1), &used, lim, 1);
  }();
  if (!t) {
    const bool limit = t.error().code() == Code::kLimitExceeded;
    return tl::unexpected(make_error(limit ? ErrorKind::kLimitExceeded : ErrorKind::kInvalidChunk, rep.file,
                                     chunk.id_view(), chunk.offset, t.error().message()));
  }
  return std::move(*t);
}

const Chunk* Selection::get(std::string_view id) const {
  for (auto it = read.rbegin(); it != read.rend(); ++it) {
    if ((*it)->id_view() == id) return *it;
  }
  return nullptr;
}

Result<Selection> select(const Image::Rep& rep, std::vector<std::string_view> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  Selection s;
  const Chunk* last_atu8 = nullptr;
  const Chunk* last_atom = nullptr;
  auto is_atom_chunk = [](std::string_view id) { return id == "AtU8" || id == "Atom"; };
  if (rep.strictness == Strictness::kStrict) {
    // The loader: the last chunk with an id wins; no early stop.
    for (std::string_view id : ids) {
      if (is_atom_chunk(id)) continue;
      const Chunk* c = nullptr;
      for (const Chunk& k : rep.chunks) {
        if (k.id_view() == id) c = &k;
      }
      if (c)
        s.read.push_back(c);
      else
        s.missing.push_back(id);
    }
    for (const Chunk& k : rep.chunks) {
      if (k.id_view() == "AtU8") last_atu8 = &k;
      if (k.id_view() == "Atom") last_atom = &k;
    }
    for (std::string_view id : ids) {
      if (id == "AtU8" && !last_atu8) s.missing.push_back(id);
      if (id == "Atom" && !last_atom) s.missing.push_back(id);
    }
    if (last_atu8) s.read.push_back(last_atu8);
    if (last_atom) s.read.push_back(last_atom);
    std::sort(s.read.begin(), s.read.end(),
              [](const Chunk* a, const Chunk* b) { return a->offset < b->offset; });
    std::sort(s.missing.begin(), s.missing.end());
    s.atom_chunk = last_atu8 ? last_atu8 : last_atom;
    return s;
  }
  // beam_lib's scan_beam/5: atom chunks are always read (and remove their id from the
  // request); another chunk is read when its id is still wanted, which removes the id, so
  // of duplicates only the first is read. The scan stops once nothing is wanted and an
  // atom chunk has been seen.
  bool atom_seen = false;
  for (const Chunk& c : rep.chunks) {
    if (ids.empty() && atom_seen) break;
    const std::string_view id = c.id_view();
    auto it = std::find(ids.begin(), ids.end(), id);
    const bool atom = is_atom_chunk(id);
    if (!atom && it == ids.end()) continue;
    if (rep.truncated(c)) return tl::unexpected(too_big(rep, id, c.offset, c.size, rep.data(c).size()));
    if (it != ids.end()) ids.erase(it);
    s.read.push_back(&c);
    if (atom) {
      atom_seen = true;
      (id == "AtU8" ? last_atu8 : last_atom) = &c;
    }
  }
  if (!atom_seen) {
    return tl::unexpected(
        make_error(ErrorKind::kMissingChunk, rep.file, "Atom", rep.buf.size(), "no atom chunk"));
  }
  s.atom_chunk = last_atu8 ? last_atu8 : last_atom;
  s.missing.assign(ids.begin(), ids.end());
  return s;
}

Result<Selection> select_required(const Image::Rep& rep, std::vector<std::string_view> ids,
                                  std::vector<std::string_view> optional) {
  auto s = select(rep, std::move(ids));
  if (!s) return s;
  for (std::string_view id : s->missing) {
    if (std::find(optional.begin(), optional.end(), id) == optional.end()) {
      return tl::unexpected(
          make_error(ErrorKind::kMissingChunk, rep.file, id, rep.buf.size(), "no such chunk"));
    }
  }
  return s;
}

}  // namespace internal

namespace {

std::uint64_t pad4(std::uint64_t n) {
  return (n + 3) & ~std::uint64_t{3};
}

// beam_lib's info scan (scan_beam(File, info)): the form length is ignored and chunks are
// read to the end of the bytes. Atom chunks are read (their first atom is the module).
Result<void> scan_lenient(Image::Rep& rep, bool any_form) {
  const std::size_t size = rep.buf.size();
  const auto* b = rep.buf.data();
  const bool beam = std::equal(rep.form.begin(), rep.form.end(), "BEAM");
  if (size < 12 || std::memcmp(b, "FOR1", 4) != 0 || (!beam && !any_form)) {
    return tl::unexpected(
        make_error(ErrorKind::kNotABeamFile, rep.file, "", 0,
                   size < 12 ? "shorter than the 12-byte IFF header" : "not an IFF form of type BEAM"));
  }
  bool atom_seen = false;
  std::uint64_t pos = 12;
  while (pos < size) {
    if (size - pos < 8) {
      return tl::unexpected(
          make_error(ErrorKind::kInvalidBeamFile, rep.file, "", pos,
                     std::to_string(size - pos) + " bytes where a chunk header should start"));
    }
    if (rep.chunks.size() >= rep.limits.max_chunks) {
      return tl::unexpected(
          make_error(ErrorKind::kLimitExceeded, rep.file, "", pos,
                     "max_chunks: more than " + std::to_string(rep.limits.max_chunks) + " chunks"));
    }
    Chunk c{};
    std::memcpy(c.id.data(), b + pos, 4);
    c.size = ByteReader::peek_u32(b + pos + 4);
    c.offset = pos + 8;
    rep.chunks.push_back(c);
    const Chunk& k = rep.chunks.back();
    const std::string_view id = k.id_view();
    const bool atom = beam && (id == "AtU8" || id == "Atom");
    if (rep.truncated(k)) {
      if (atom) return tl::unexpected(too_big(rep, id, k.offset, k.size, size - k.offset));
      rep.last_truncated = true;
      break;  // its end lies past the end of the bytes: the next read is eof
    }
    if (atom) {
      // get_atom_data/8: <<_Num:32, Len, Name:Len/binary, _/binary>>; beam_lib crashes
      // (we answer invalid_chunk) when that does not match or Name is not UTF-8.
      ByteReader r(rep.data(k), k.offset);
      std::uint8_t len = 0;
      Bytes name;
      if (!r.skip(4) || !r.u8(len) || !r.bytes(len, name)) {
        return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, id, k.offset,
                                         "no module name (atom #1) in the atom table"));
      }
      if (id == "AtU8" && !base::is_utf8(name)) {
        return tl::unexpected(make_error(ErrorKind::kInvalidChunk, rep.file, id, k.offset + 4,
                                         "module name (atom #1) is not valid UTF-8"));
      }
      if (id == "AtU8") {
        rep.module.assign(reinterpret_cast<const char*>(name.data()), name.size());
      } else {
        rep.module = base::latin1_to_utf8(name);
      }
      atom_seen = true;
    }
    pos = k.offset + pad4(k.size);
  }
  if (beam && !atom_seen) {
    return tl::unexpected(
        make_error(ErrorKind::kMissingChunk, rep.file, "Atom", size, "no atom chunk (AtU8 or Atom)"));
  }
  return {};
}

// The loader's iff_init + read_beam_chunks: the form must fit in the bytes, bytes after it
// are ignored, every chunk (the last included) must fit with its padding.
Result<void> scan_strict(Image::Rep& rep, bool any_form) {
  const std::size_t size = rep.buf.size();
  ByteReader r(rep.bytes());
  std::uint32_t magic = 0, form_len = 0;
  if (size < 12 || !r.u32(magic) || magic != 0x464F5231u /* FOR1 */) {
    return tl::unexpected(
        make_error(ErrorKind::kNotABeamFile, rep.file, "", 0,
                   size < 12 ? "shorter than the 12-byte IFF header" : "does not start with FOR1"));
  }
  if (!r.u32(form_len)) {
    return tl::unexpected(make_error(ErrorKind::kNotABeamFile, rep.file, "", 4, "no form length"));
  }
  if (form_len > r.remaining()) {
    return tl::unexpected(make_error(ErrorKind::kInvalidBeamFile, rep.file, "", 4,
                                     "form length " + std::to_string(form_len) + " exceeds the " +
                                         std::to_string(r.remaining()) + " bytes after it"));
  }
  Bytes form_bytes;
  (void)r.bytes(form_len, form_bytes);
  ByteReader f(form_bytes, 8);
  Bytes type;
  if (!f.bytes(4, type)) {
    return tl::unexpected(
        make_error(ErrorKind::kNotABeamFile, rep.file, "", 8, "form too short for its type"));
  }
  const bool beam = std::equal(type.begin(), type.end(), "BEAM");
  if (!beam && !any_form) {
    return tl::unexpected(make_error(ErrorKind::kNotABeamFile, rep.file, "", 8, "IFF form type is not BEAM"));
  }
  while (!f.eof()) {
    const std::uint64_t at = f.offset();
    std::uint32_t id_raw = 0, csize = 0;
    if (!f.u32(id_raw) || !f.u32(csize)) {
      return tl::unexpected(make_error(ErrorKind::kInvalidBeamFile, rep.file, "", at,
                                       "truncated chunk header at the end of the form"));
    }
    if (rep.chunks.size() >= rep.limits.max_chunks) {
      return tl::unexpected(
          make_error(ErrorKind::kLimitExceeded, rep.file, "", at,
                     "max_chunks: more than " + std::to_string(rep.limits.max_chunks) + " chunks"));
    }
    Chunk c{};
    std::memcpy(c.id.data(), rep.buf.data() + at, 4);
    c.offset = at + 8;
    c.size = csize;
    if (csize > f.remaining()) {
      return tl::unexpected(too_big(rep, c.id_view(), c.offset, csize, f.remaining()));
    }
    if (pad4(csize) > f.remaining()) {
      return tl::unexpected(make_error(ErrorKind::kInvalidBeamFile, rep.file, c.id_view(), c.offset + csize,
                                       "chunk lacks its padding to 4 bytes"));
    }
    (void)f.skip(static_cast<std::size_t>(pad4(csize)));
    rep.chunks.push_back(c);
  }
  return {};
}

}  // namespace

Image::Image(std::shared_ptr<const Rep> rep) : rep_(std::move(rep)) {}

namespace {

// Image::parse's body. `adopt`, when given, holds `bytes` and is taken over instead of
// copied.
Result<std::shared_ptr<Image::Rep>> parse_rep(Bytes bytes, std::vector<std::uint8_t>* adopt,
                                              std::shared_ptr<const std::vector<std::uint8_t>> share,
                                              Strictness strictness, std::string_view file,
                                              const Limits& limits, bool any_form) {
  auto rep = std::make_shared<Image::Rep>();
  rep->file = internal::display_file(file);
  rep->strictness = strictness;
  rep->limits = limits;
  const bool is_iff = bytes.size() >= 4 && std::memcmp(bytes.data(), "FOR1", 4) == 0;
  if (!is_iff) {
    // beam_lib and the loader both gunzip when the data does not start with FOR1; bytes
    // that do not gunzip are read as they are (and then fail as not_a_beam_file).
    const std::size_t max = std::min(limits.max_image_bytes, limits.max_inflated_bytes);
    std::vector<std::uint8_t> out;
    switch (internal::gunzip(bytes, max, out)) {
      case internal::GunzipResult::kOk:
        rep->gzipped = true;
        rep->owner = std::make_shared<const std::vector<std::uint8_t>>(std::move(out));
        break;
      case internal::GunzipResult::kTooBig:
        return tl::unexpected(
            make_error(ErrorKind::kLimitExceeded, rep->file, "", 0,
                       "max_image_bytes: gunzipped image exceeds " + std::to_string(max) + " bytes"));
      case internal::GunzipResult::kBad: break;
    }
  }
  if (!rep->gzipped) {
    if (bytes.size() > limits.max_image_bytes) {
      return tl::unexpected(make_error(ErrorKind::kLimitExceeded, rep->file, "", 0,
                                       "max_image_bytes: image of " + std::to_string(bytes.size()) +
                                           " bytes exceeds " + std::to_string(limits.max_image_bytes)));
    }
    rep->owner = share   ? std::move(share)
                 : adopt ? std::make_shared<const std::vector<std::uint8_t>>(std::move(*adopt))
                         : std::make_shared<const std::vector<std::uint8_t>>(bytes.begin(), bytes.end());
  }
  rep->buf = Bytes(rep->owner->data(), rep->owner->size());
  if (rep->buf.size() >= 12) std::memcpy(rep->form.data(), rep->buf.data() + 8, 4);
  if (strictness == Strictness::kLenient) {
    if (auto ok = scan_lenient(*rep, any_form); !ok) return tl::unexpected(ok.error());
  } else {
    if (auto ok = scan_strict(*rep, any_form); !ok) return tl::unexpected(ok.error());
    if (std::equal(rep->form.begin(), rep->form.end(), "BEAM")) {
      if (auto ok = internal::check_strict_tables(*rep); !ok) return tl::unexpected(ok.error());
    }
  }
  return rep;
}

}  // namespace

Result<Image> Image::parse(Bytes bytes, Strictness strictness, std::string_view file, const Limits& limits,
                           bool any_form) {
  auto rep = parse_rep(bytes, nullptr, nullptr, strictness, file, limits, any_form);
  if (!rep) return tl::unexpected(rep.error());
  return Image(std::move(*rep));
}

Result<Image> Image::parse_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes,
                                  Strictness strictness, std::string_view file, const Limits& limits,
                                  bool any_form) {
  const Bytes view = bytes ? Bytes(bytes->data(), bytes->size()) : Bytes();
  auto rep = parse_rep(view, nullptr, std::move(bytes), strictness, file, limits, any_form);
  if (!rep) return tl::unexpected(rep.error());
  return Image(std::move(*rep));
}

Result<Image> Image::read_file(const std::string& path, Strictness strictness, const Limits& limits) {
  // Gzip-wrapped files may be smaller than the limit and inflate past it; parse checks.
  auto read = base::read_file(path, limits.max_image_bytes);
  if (!read) {
    const base::FileError& e = read.error();
    if (e.err == EFBIG)
      return error(
          internal::image_error(ErrorKind::kLimitExceeded, path, "", 0, "max_image_bytes: " + e.message));
    return error(internal::image_error(ErrorKind::kFileError, path, "", 0, e.message));
  }
  std::vector<std::uint8_t>& bytes = *read;
  const Bytes view(bytes.data(), bytes.size());
  auto rep = parse_rep(view, &bytes, nullptr, strictness, path, limits, false);
  if (!rep) return tl::unexpected(rep.error());
  return Image(std::move(*rep));
}

namespace internal {

Result<std::shared_ptr<const Image::Rep>> parse_strict_shared(const Image::Rep& rep) {
  auto strict = parse_rep(rep.buf, nullptr, rep.owner, Strictness::kStrict, rep.file, rep.limits, false);
  if (!strict) return tl::unexpected(strict.error());
  return std::shared_ptr<const Image::Rep>(std::move(*strict));
}

}  // namespace internal

const std::string& Image::file() const {
  return rep_->file;
}
Strictness Image::strictness() const {
  return rep_->strictness;
}
bool Image::gzipped() const {
  return rep_->gzipped;
}
std::string_view Image::form_type() const {
  return {rep_->form.data(), 4};
}
Bytes Image::bytes() const {
  return rep_->bytes();
}
const std::vector<Chunk>& Image::chunks() const {
  return rep_->chunks;
}
Bytes Image::data(const Chunk& chunk) const {
  return rep_->data(chunk);
}

Result<std::vector<ChunkData>> Image::all_chunks() const {
  // read_all_chunks/1 asks scan_beam for every id info/1 listed, so it reads every chunk;
  // only the last listed one can run past the end (the lenient scan stops there).
  std::vector<ChunkData> out;
  out.reserve(rep_->chunks.size());
  for (const Chunk& c : rep_->chunks) {
    if (rep_->truncated(c))
      return tl::unexpected(too_big(*rep_, c.id_view(), c.offset, c.size, rep_->data(c).size()));
    out.push_back({std::string(c.id_view()), rep_->data(c)});
  }
  return out;
}

const Chunk* Image::find(std::string_view id) const {
  const Chunk* found = nullptr;
  for (const Chunk& c : rep_->chunks) {
    if (c.id_view() == id) {
      found = &c;
      if (rep_->strictness == Strictness::kLenient) break;
    }
  }
  return found;
}

Result<std::vector<std::uint8_t>> maybe_gunzip(Bytes bytes, std::size_t max_bytes) {
  std::vector<std::uint8_t> out;
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "FOR1", 4) == 0)
    return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
    switch (internal::gunzip(bytes, max_bytes, out)) {
      case internal::GunzipResult::kOk: return out;
      case internal::GunzipResult::kTooBig:
        return error(internal::image_error(
            ErrorKind::kLimitExceeded, "<binary>", "", 0,
            "max_inflated_bytes: gunzipped data exceeds " + std::to_string(max_bytes) + " bytes"));
      case internal::GunzipResult::kBad: break;
    }
  }
  return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
}

}  // namespace codestore::image

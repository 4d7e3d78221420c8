// Internals of the image reader shared by image/*.cpp (not installed).
//
// Thread safety: Rep is immutable after parse; the free functions are thread-safe.
#pragma once

#include <codestore/image.h>
#include <codestore/term.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::image {

namespace internal {
// An atom table as (offset, length) pairs into the chunk data; latin1 for legacy `Atom`.
struct AtomTable {
  const Chunk* chunk = nullptr;
  Bytes data;
  bool latin1 = false;
  std::vector<std::pair<std::uint32_t, std::uint8_t>> spans;  // atom #i+1 at spans[i]

  std::size_t size() const { return spans.size(); }
  std::string name(std::size_t index1) const;  // 1-based, UTF-8
};

// The VM loader's view of an image: beamfile_read's results the code is checked against
// (image/loadable_internal.h fills them).
struct LoaderTables {
  std::size_t atom_count = 0;  // atoms + the reserved slot 0 ([])
  std::uint32_t max_opcode = 0, label_count = 0, function_count = 0;
  Bytes code;
  std::uint64_t code_offset = 0;
  std::size_t literal_count = 0;
  std::size_t import_count = 0, lambda_count = 0;
  bool types_fallback = true;
  std::size_t type_count = 0;
};
}  // namespace internal

struct Image::Rep {
  std::string file;  // as given; "<binary>" when none
  Strictness strictness = Strictness::kLenient;
  bool gzipped = false;
  Limits limits;
  // The IFF bytes (gunzipped): `buf` views `owner`'s (shared by a strict re-reading of
  // the same bytes in check_loadable).
  std::shared_ptr<const std::vector<std::uint8_t>> owner;
  Bytes buf;
  std::array<char, 4> form{};
  std::vector<Chunk> chunks;  // file order
  // Lenient only: the last chunk's data may run past the end (beam_lib reports that only
  // when it reads the chunk). Strict parses never keep such a chunk.
  bool last_truncated = false;
  std::string module;  // atom #1 of the last atom chunk (lenient) / AtU8 (strict)
  // Strict BEAM forms: the tables the parse checked (check_strict_tables), which
  // check_loadable goes on from instead of checking them again.
  std::optional<internal::LoaderTables> tables;

  // The first atom table asked for, decoded once (internal::atoms_of); immutable once set.
  mutable std::once_flag atoms_once;
  mutable const Chunk* atoms_chunk = nullptr;
  mutable Result<internal::AtomTable> atoms_cache;

  Bytes bytes() const { return buf; }
  // The chunk's data as far as it is present (clamped at the end of the image).
  Bytes data(const Chunk& c) const;
  bool truncated(const Chunk& c) const;
};

namespace internal {

// The one way into an Image's representation (Image names this struct its friend).
struct ImageAccess {
  static const Image::Rep& rep(const Image& image) noexcept { return *image.rep_; }
};

std::string display_file(std::string_view file);
// An image failure as a Status (image.h says what each part holds): `chunk` is printed as
// it is (already printable), `detail` is what went wrong without the file and location.
Status image_error(ErrorKind kind, std::string file, std::string chunk, std::uint64_t offset,
                   std::string_view detail);
// The same with the chunk id made printable (chunk_id_text).
Status make_error(ErrorKind kind, const std::string& file, std::string_view chunk, std::uint64_t offset,
                  std::string_view detail);
std::string chunk_id_text(std::string_view id);  // printable id, \xNN for other bytes
// {chunk_too_big, File, Id, Size, Avail}: the chunk's data at `offset` declares `size`
// bytes where only `avail` remain.
Status too_big(const Image::Rep& rep, std::string_view id, std::uint64_t offset, std::uint64_t size,
               std::uint64_t avail);

// What beam_lib's scan_beam/4 reads for a request of chunk ids (lenient), or the loader's
// last-wins choice (strict): the chunks read in file order, and the atom chunk
// ensure_atoms/2 would pick. beam_lib's quirks live here and nowhere else.
struct Selection {
  std::vector<const Chunk*> read;         // file order (atom chunks always included)
  const Chunk* atom_chunk = nullptr;      // AtU8 preferred, else Atom (the last one read)
  std::vector<std::string_view> missing;  // requested ids not found, sorted

  // The chunk beam_lib's keyfind finds: the last one read with that id.
  const Chunk* get(std::string_view id) const;
};
Result<Selection> select(const Image::Rep& rep, std::vector<std::string_view> ids);
// select(), then missing_chunk for the first missing id not in `optional`.
Result<Selection> select_required(const Image::Rep& rep, std::vector<std::string_view> ids,
                                  std::vector<std::string_view> optional = {});

// beam_lib's extract_atoms/4 (lenient: count ignored, reads to the end) or the loader's
// parse_atom_chunk (strict: exactly `count` atoms, count >= 1). invalid_chunk on damage.
Result<AtomTable> decode_atoms(const Image::Rep& rep, const Chunk& chunk, bool strict);

// decode_atoms with the result cached in the Rep for the first chunk asked for (with the
// Rep's own strictness); other chunks are decoded into `own`. Thread-safe.
// Image::parse(rep.bytes(), kStrict, rep.file, rep.limits) sharing the bytes instead of
// copying them (check_loadable on a lenient image).
Result<std::shared_ptr<const Image::Rep>> parse_strict_shared(const Image::Rep& rep);

struct AtomsRef {
  const Result<AtomTable>* cached = nullptr;
  Result<AtomTable> own;
  const Result<AtomTable>& get() const { return cached ? *cached : own; }
};
void atoms_of(const Image::Rep& rep, const Chunk& chunk, bool strict, AtomsRef& out);

// The loader's table checks a strict parse of a BEAM form applies (loadable_tables.cpp):
// Code header, atoms, imports, exports, funs; sets rep.module and rep.tables.
Result<void> check_strict_tables(Image::Rep& rep);

// binary_to_term/1: version byte, then one term; trailing bytes ignored (as Erlang does).
Result<etf::Term> binary_to_term(const Image::Rep& rep, const Chunk& chunk);

// Inflates one or more gzip members (zlib:gunzip/1). kOk fills `out`.
enum class GunzipResult { kOk, kBad, kTooBig };
GunzipResult gunzip(Bytes in, std::size_t max_bytes, std::vector<std::uint8_t>& out);
// zlib:gzip/1's output (default level, gzip header with mtime 0, OS unix).
std::vector<std::uint8_t> gzip(Bytes in);
// zlib:uncompress/1 into exactly `size` bytes; false on damage or size mismatch.
bool uncompress_exact(Bytes in, std::size_t size, std::vector<std::uint8_t>& out);

}  // namespace internal
}  // namespace codestore::image

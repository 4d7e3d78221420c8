// Module images: IFF files as Erlang's compiler writes them (`.beam`), read the way
// Erlang/OTP's beam_lib reads them and judged the way its VM loader judges them.
//
//   auto img = codestore::image::Image::read_file("lists.beam", Strictness::kLenient);
//   if (!img) fail(img.error().to_string());   // a Status: code, reason, where, message
//   auto md5 = img->md5();            // equals beam_lib:md5/1
//   auto exports = img->exports();    // sorted [{F, A}], as beam_lib:chunks(F, [exports])
//   bool loadable = img->check_loadable().loadable;   // erlang:prepare_loading/2 agrees
//
// Layout (docs/image-format.md): "FOR1", u32 BE form length, form type, then chunks
// {id[4], u32 BE size, data, zero padding to 4}. One gzip layer is unwrapped first.
//
// Thread safety: an Image is immutable after parse; its const methods may be called from
// many threads at once. Free functions are thread-safe.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::image {

using Bytes = std::span<const std::uint8_t>;

namespace internal {
struct ImageAccess;  // image/image_internal.h
}  // namespace internal

// How strictly the container and the tables are judged (docs/image-format.md, "Two strictness levels").
enum class Strictness {
  kLenient,  // beam_lib's rules, quirks included: the form length is ignored, bytes after it
             // are read as more chunks, duplicate chunks are all listed, the last chunk may
             // lack its padding.
  kStrict,   // the VM loader's rules: form length within the file (bytes after it ignored),
             // the last chunk padded, the last duplicate wins.
};

// The kinds of image failure: beam_lib's error reasons (beam_lib:format_error/1), cmp's,
// and two of ours. Every fallible call below returns a Status (codestore/status.h):
//   reason   the atom beam_lib answers in {error, beam_lib, {Reason, ...}} ("not_a_beam_file",
//            "missing_chunk"...); "badfile" (what the VM loader answers) for kNotLoadable;
//            none for kLimitExceeded (a limit of ours, Erlang has none);
//   code     kCorruption for damaged bytes and kNotLoadable, kIOError for file_error,
//            kNotFound for missing_chunk, kInvalidArgument for unknown_chunk,
//            kFailedPrecondition for cmp's three, kLimitExceeded for limits;
//   where    always set: the file (as given, or "<binary>"; "A and B" for cmp), the chunk id
//            or beam_lib chunk name when one is involved (non-printable bytes as \xNN), the
//            byte offset in the (unwrapped) image the failure refers to;
//   message  "lists.beam: chunk ExpT at offset 29100: size 1060 runs past end of file (1000
//            bytes left)" (no offset for file_error, unknown_chunk and cmp's three).
// kind_of() gives the kind back.
enum class ErrorKind {
  kNotABeamFile,      // {not_a_beam_file, F}
  kFileError,         // {file_error, F, Posix}
  kMissingChunk,      // {missing_chunk, F, Id}
  kInvalidBeamFile,   // {invalid_beam_file, F, Pos}
  kChunkTooBig,       // {chunk_too_big, F, Id, Size, Avail}
  kInvalidChunk,      // {invalid_chunk, F, Id}: a table or term fails to decode
  kUnknownChunk,      // {unknown_chunk, F, Name}
  kModulesDifferent,  // cmp: {modules_different, M1, M2}
  kChunksDifferent,   // cmp: {chunks_different, Id}
  kDifferentChunks,   // cmp: different_chunks
  kNotLoadable,       // strict only: the loader would answer badfile (message says why)
  kLimitExceeded,     // a hard limit on size, count or depth
};

// "not_a_beam_file", "chunk_too_big", ... (beam_lib's atom), "not_loadable", "limit_exceeded".
std::string_view kind_name(ErrorKind kind) noexcept;

// The kind of an image failure a call here returned; nullopt for an OK Status or one that
// did not come from here (no location, or a reason that is no image failure's).
std::optional<ErrorKind> kind_of(const Status& status) noexcept;
// What went wrong without the file and the location ("size 1060 runs past end of file (1000
// bytes left)"), for output that shows them apart; the whole message for other Statuses.
std::string_view error_detail(const Status& status);

// Hard limits against hostile input. Every parse checks them.
struct Limits {
  std::size_t max_image_bytes = 64u << 20;  // after gzip unwrapping
  std::size_t max_chunks = 4096;
  std::size_t max_atoms = 1u << 20;
  std::size_t max_term_depth = 10000;           // nesting in external term format
  std::size_t max_inflated_bytes = 256u << 20;  // LitT / compressed terms / gzip output
};

struct Chunk {
  std::array<char, 4> id;  // raw bytes, not necessarily printable
  std::uint64_t offset;    // of the data (beam_lib's Pos: the first chunk's data is at 20)
  std::uint64_t size;      // unpadded, as declared

  std::string_view id_view() const { return {id.data(), id.size()}; }
};

struct Function {  // an ExpT / LocT entry
  std::string name;
  std::uint32_t arity;
  std::uint32_t label;
};

struct Import {  // an ImpT entry
  std::string module;
  std::string function;
  std::uint32_t arity;
  std::uint32_t index;  // 1-based position in ImpT (beam_lib's indexed_imports)
};

using Md5 = std::array<std::uint8_t, 16>;

// One chunk's id and data, as beam_lib:all_chunks/1 returns them and build_module takes them.
struct ChunkData {
  std::string id;  // exactly 4 bytes
  Bytes data;
};

// Lowercase hex, 32 characters.
std::string md5_hex(const Md5& md5);

// One parsed image. Holds its own copy of the (gunzipped) bytes; chunk data views point
// into it and live as long as the Image (copies share the bytes).
class Image {
 public:
  // Reads the container. `file` names the image in errors ("" = "<binary>").
  // Lenient: beam_lib's scan, with beam_lib:info/1's verdict (every atom chunk is read;
  // other chunks only when a view reads them, so a truncated last chunk shows up there);
  // fails with not_a_beam_file for a form type other than BEAM unless `any_form` is set
  // (the raw IFF layer reads any form type).
  // Strict: the loader's container rules (docs/image-format.md, "Container") and, for a BEAM form,
  // its table checks (Code header, AtU8, ImpT, ExpT, FunT): missing_chunk, invalid_chunk,
  // or not_loadable for a legacy Atom table. docs/image-format.md has the details.
  static Result<Image> parse(Bytes bytes, Strictness strictness, std::string_view file = "",
                             const Limits& limits = Limits(), bool any_form = false);
  // The same, over bytes the caller shares (a store's cached image): a plain IFF image is
  // viewed where it is, not copied (the Image keeps `bytes` alive); a gzip-wrapped one is
  // unwrapped into bytes of its own.
  static Result<Image> parse_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes,
                                    Strictness strictness, std::string_view file = "",
                                    const Limits& limits = Limits(), bool any_form = false);
  // Reads `path` (".beam" is not appended) and parses it; file_error when unreadable.
  static Result<Image> read_file(const std::string& path, Strictness strictness,
                                 const Limits& limits = Limits());

  const std::string& file() const;
  Strictness strictness() const;
  bool gzipped() const;                // the input was gzip-wrapped
  std::string_view form_type() const;  // "BEAM" for modules
  Bytes bytes() const;                 // the IFF bytes (after gzip unwrapping)

  // Every chunk in file order (lenient: duplicates listed each time).
  const std::vector<Chunk>& chunks() const;
  // The chunk with that id: lenient returns the first, strict the last; nullptr if absent.
  const Chunk* find(std::string_view id) const;
  // The chunk's data as far as the bytes hold it (a truncated last chunk is cut short).
  Bytes data(const Chunk& chunk) const;
  // beam_lib:all_chunks/1: every chunk's id and data in file order, or chunk_too_big naming
  // the chunk whose declared size runs past the end of the bytes, at its data offset. A
  // lenient parse lists such a chunk (it is always the last, as beam_lib:info/1 lists it)
  // and only the operations that read it fail: md5() may succeed while this refuses.
  Result<std::vector<ChunkData>> all_chunks() const;

  // beam_lib's views. The module name is atom #1 of the *last* atom chunk (AtU8 or Atom);
  // exports and imports resolve names through the *first* (beam_lib's quirk) when lenient.
  Result<std::string> module() const;
  Result<std::vector<std::string>> atoms() const;  // atoms()[0] is atom #1
  Result<std::vector<Function>> exports() const;   // sorted by (name, arity)
  Result<std::vector<Import>> imports() const;     // sorted by (module, function, arity)
  Result<std::vector<Function>> locals() const;    // sorted; missing_chunk without LocT
  Result<etf::Term> attributes() const;            // [{Key, [Vals]}], sorted, duplicate keys merged
  Result<etf::Term> compile_info() const;          // the CInf term
  Result<etf::Term> vsn() const;                   // beam_lib:version/1's value
  // beam_lib:md5/1 (docs/image-format.md, "Module MD5"). Strict: the loader's definition (AtU8
  // only, last duplicate, missing StrT hashed as empty); both agree on well-formed images.
  Result<Md5> md5() const;

  // beam_lib:chunks(B, [Name]) for one chunk name: atoms, exports, labeled_exports,
  // imports, indexed_imports, locals, labeled_locals, attributes, compile_info,
  // debug_info, abstract_code. The value as the Erlang term beam_lib returns.
  // unknown_chunk for other names.
  Result<etf::Term> chunk_term(std::string_view name) const;

  // The VM loader's verdict (erlang:prepare_loading/2): OK when loadable, else kNotLoadable
  // (or a container error) saying why. Checks the tables (atom indexes in range, LitT
  // inflates and decodes), the Code header and the instruction stream against OTP 25's
  // generic opcode table. `opcode_only` is set when the only failure is an opcode the
  // table does not know (an image from a newer compiler).
  // Works on lenient and strict images alike (the strict container rules are applied to
  // bytes()); what only the VM's transformation engine can refuse is not checked.
  struct LoadVerdict {
    bool loadable = false;
    bool opcode_only = false;
    // The module has an -on_load function: the code holds an `on_load` instruction (what
    // erlang:has_prepared_code_on_load/1 answers). Set only when loadable.
    bool on_load = false;
    std::string reason;  // empty when loadable; else the failure's Status message()
  };
  LoadVerdict check_loadable() const;

  // The parsed representation: opaque, defined in image/image_internal.h, where alone the
  // code of image/ reaches it (internal::ImageAccess).
  struct Rep;

 private:
  friend struct internal::ImageAccess;
  std::shared_ptr<const Rep> rep_;
  explicit Image(std::shared_ptr<const Rep> rep);
};

// beam_lib:strip/1: keeps only Line, Type and the md5 chunks (plus `extra_ids` first), in
// beam_lib's order. The result is gzip-wrapped as beam_lib writes it, unless `raw`.
Result<std::vector<std::uint8_t>> strip(const Image& image, const std::vector<std::string>& extra_ids = {},
                                        bool raw = false);

// beam_lib:cmp/2: OK when equal, else kModulesDifferent / kChunksDifferent /
// kDifferentChunks (CInf is ignored, as beam_lib does).
Result<void> cmp(const Image& a, const Image& b);

// beam_lib:build_module/1: chunks in order to an image (form type BEAM). A parsed real
// image rebuilds byte for byte from its chunks (ChunkData is declared above Image).
Result<std::vector<std::uint8_t>> build_module(const std::vector<ChunkData>& chunks);

// A module name that is safe as a file name component (`<dir>/<module>.beam`): not empty,
// not "." or "..", and without '/', '\\', NUL or other control characters. The store refuses
// to import an image under any other name; the loader's path lookups never search for one.
bool is_safe_module_name(std::string_view name) noexcept;

// gzip: unwraps one layer when the bytes do not start with "FOR1" and do start with the
// gzip magic; otherwise returns the bytes unchanged. kLimitExceeded past `max_bytes`.
Result<std::vector<std::uint8_t>> maybe_gunzip(Bytes bytes, std::size_t max_bytes);

}  // namespace codestore::image

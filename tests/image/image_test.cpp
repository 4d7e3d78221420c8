// The image reader, one concept per test: the container (lenient = beam_lib, strict = the
// loader), the views, md5, strip/cmp/build, the loader verdict, limits and errors.
#include <codestore/image.h>
#include <codestore/term.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "image/damage.h"
#include "image/image_test_util.h"

namespace codestore::testing {
namespace {

using image::error_detail;
using image::ErrorKind;
using image::Image;
using image::kind_of;
using image::Strictness;
using Bytes = std::vector<std::uint8_t>;

Bytes fixture(const std::string& name) {
  return read_file(source_dir() + "/tests/fixtures/images/" + name);
}
Bytes hello() {
  return fixture("hello.beam");
}
Bytes attrs() {
  return fixture("attrs.beam");
}

// A named damaged variant of `image` (tests/image/damage.cpp).
Bytes variant(const Bytes& image, const std::string& name) {
  for (auto& v : damage_variants(image)) {
    if (v.name == name) return v.bytes;
  }
  ADD_FAILURE() << "no variant " << name;
  return {};
}

Image parse(const Bytes& b, Strictness s = Strictness::kLenient) {
  auto img = Image::parse(b, s, "test.beam");
  EXPECT_TRUE(img) << img.error().to_string();
  return *img;
}

ErrorKind parse_error(const Bytes& b, Strictness s = Strictness::kLenient) {
  auto img = Image::parse(b, s, "test.beam");
  EXPECT_FALSE(img);
  return img ? ErrorKind::kLimitExceeded : kind_of(img.error()).value();  // any kind: the EXPECT above failed
}

std::string w(const Result<etf::Term>& t) {
  return t ? etf::format_w(*t) : "error:" + std::string(image::kind_name(kind_of(t.error()).value()));
}

// Edits the chunk list of an image (tests/image/damage.h) and joins it again.
template <typename F>
Bytes edit(const Bytes& image, F&& f) {
  auto cs = split_chunks(image);
  f(cs);
  return join_chunks(cs);
}

// --- Container ---------------------------------------------------------------------------

TEST(ImageReader, ChunkTableIsInFileOrderWithDataOffsets) {
  auto img = parse(hello());
  EXPECT_EQ(img.form_type(), "BEAM");
  EXPECT_EQ(*img.module(), "hello");
  std::string ids;
  for (const auto& c : img.chunks()) ids += std::string(c.id_view()) + " ";
  EXPECT_EQ(ids, "AtU8 Code StrT ImpT ExpT Meta LocT Attr CInf Dbgi Line Type ");
  EXPECT_EQ(img.chunks()[0].offset, 20u);  // beam_lib:info's Pos: the first chunk's data
  EXPECT_EQ(img.data(img.chunks()[0]).size(), img.chunks()[0].size);
  EXPECT_EQ(img.bytes().size(), hello().size());
  EXPECT_FALSE(img.gzipped());
  EXPECT_EQ(img.file(), "test.beam");
}

TEST(ImageReader, MissingFileIsFileError) {
  auto img = Image::read_file("/nonexistent/dir/x.beam", Strictness::kLenient);
  ASSERT_FALSE(img);
  EXPECT_EQ(kind_of(img.error()), ErrorKind::kFileError);
  EXPECT_EQ(img.error().code(), Code::kIOError);
}

TEST(ImageReader, TruncatedHeaderIsNotABeamFile) {
  for (const char* name :
       {"header_truncated_0", "header_truncated_4", "header_truncated_8", "header_truncated_11"}) {
    EXPECT_EQ(parse_error(variant(hello(), name)), ErrorKind::kNotABeamFile) << name;
    EXPECT_EQ(parse_error(variant(hello(), name), Strictness::kStrict), ErrorKind::kNotABeamFile) << name;
  }
}

TEST(ImageReader, OtherFormTypeIsNotABeamFileUnlessAnyForm) {
  const Bytes b = variant(hello(), "form_type_not_beam");
  EXPECT_EQ(parse_error(b), ErrorKind::kNotABeamFile);
  EXPECT_EQ(parse_error(b, Strictness::kStrict), ErrorKind::kNotABeamFile);
  for (Strictness s : {Strictness::kLenient, Strictness::kStrict}) {
    auto img = Image::parse(b, s, "", image::Limits(), /*any_form=*/true);
    ASSERT_TRUE(img) << img.error().to_string();
    EXPECT_EQ(img->form_type(), "BEAX");
    EXPECT_EQ(img->chunks().size(), 12u);
  }
}

TEST(ImageReader, TruncatedChunkIsChunkTooBig) {
  // The last chunk (Type) runs past the end: beam_lib:info/1 does not read it and succeeds;
  // reading it (strip keeps Type) is chunk_too_big; the loader refuses the container.
  const Bytes b = variant(hello(), "last_chunk_past_end");
  auto img = parse(b);
  EXPECT_TRUE(img.exports());
  EXPECT_TRUE(img.md5());
  auto stripped = image::strip(img);
  ASSERT_FALSE(stripped);
  EXPECT_EQ(kind_of(stripped.error()), ErrorKind::kChunkTooBig);
  EXPECT_EQ(stripped.error().where()->chunk, "Type");
  EXPECT_NE(error_detail(stripped.error()).find("runs past end of file"), std::string::npos);
  EXPECT_EQ(parse_error(b, Strictness::kStrict), ErrorKind::kChunkTooBig);
}

TEST(ImageReader, AllChunksRefusesAChunkPastTheEndThatNoOtherViewReads) {
  // beam_lib:all_chunks/1 reads every chunk info/1 listed: chunk_too_big at the chunk that
  // runs past the end, here a Dbgi in the middle (the scan stops there) that md5, exports,
  // imports and attributes never read.
  const Bytes b = variant(hello(), "unread_chunk_past_end");
  auto img = parse(b);
  ASSERT_EQ(img.chunks().back().id_view(), "Dbgi");
  EXPECT_TRUE(img.md5());
  EXPECT_TRUE(img.exports());
  EXPECT_TRUE(img.attributes());
  auto all = img.all_chunks();
  ASSERT_FALSE(all);
  EXPECT_EQ(kind_of(all.error()), ErrorKind::kChunkTooBig);
  EXPECT_EQ(all.error().where()->chunk, "Dbgi");
  EXPECT_EQ(all.error().where()->offset, img.chunks().back().offset);
  const std::size_t left = b.size() - img.chunks().back().offset;
  EXPECT_EQ(error_detail(all.error()), "size " + std::to_string(left + 1) + " runs past end of file (" +
                                           std::to_string(left) + " bytes left)");
  // A whole image: every chunk, in file order, with its data.
  auto good = parse(hello());
  auto chunks = good.all_chunks();
  ASSERT_TRUE(chunks) << chunks.error().to_string();
  ASSERT_EQ(chunks->size(), good.chunks().size());
  for (std::size_t i = 0; i < chunks->size(); ++i) {
    EXPECT_EQ((*chunks)[i].id, good.chunks()[i].id_view());
    EXPECT_EQ((*chunks)[i].data.data(), good.data(good.chunks()[i]).data());
    EXPECT_EQ((*chunks)[i].data.size(), good.chunks()[i].size);
  }
}

TEST(ImageReader, TruncatedAtomChunkFailsTheScan) {
  // beam_lib reads every atom chunk while scanning, so info/1 itself fails.
  EXPECT_EQ(parse_error(variant(hello(), "atom_chunk_past_end")), ErrorKind::kChunkTooBig);
}

TEST(ImageReader, TruncatedCodeChunkIsChunkTooBigWhenRead) {
  auto img = parse(variant(hello(), "code_chunk_past_end"));
  auto md5 = img.md5();
  ASSERT_FALSE(md5);
  EXPECT_EQ(kind_of(md5.error()), ErrorKind::kChunkTooBig);
  EXPECT_EQ(md5.error().where()->chunk, "Code");
}

TEST(ImageReader, TrailingBytesAreInvalidBeamFileWhenLenient) {
  for (int n : {1, 3, 7}) {
    auto img = Image::parse(variant(hello(), "trailing_garbage_" + std::to_string(n)), Strictness::kLenient);
    ASSERT_FALSE(img);
    EXPECT_EQ(kind_of(img.error()), ErrorKind::kInvalidBeamFile);
    EXPECT_EQ(img.error().where()->offset, hello().size());  // beam_lib's Pos
    // The loader ignores bytes after the form.
    EXPECT_TRUE(parse(variant(hello(), "trailing_garbage_" + std::to_string(n)), Strictness::kStrict)
                    .check_loadable()
                    .loadable);
  }
}

TEST(ImageReader, BytesAfterTheFormAreMoreChunksWhenLenient) {
  const Bytes b = variant(hello(), "trailing_chunk");
  EXPECT_EQ(parse(b).chunks().back().id_view(), "JUNK");
  EXPECT_EQ(parse(b, Strictness::kStrict).chunks().back().id_view(), "Type");
  // A form length that ends before the last chunk: the loader never sees that chunk.
  const Bytes c = variant(hello(), "form_len_excludes_last_chunk");
  EXPECT_EQ(parse(c).chunks().size(), 12u);
  EXPECT_EQ(parse(c, Strictness::kStrict).chunks().size(), 11u);
}

TEST(ImageReader, FormLengthPastTheEndIsRefusedWhenStrict) {
  const Bytes b = variant(hello(), "form_len_too_big");
  EXPECT_TRUE(parse(b).exports());
  EXPECT_EQ(parse_error(b, Strictness::kStrict), ErrorKind::kInvalidBeamFile);
  EXPECT_FALSE(parse(b).check_loadable().loadable);
}

TEST(ImageReader, UnpaddedLastChunkIsRefusedWhenStrict) {
  const Bytes b = variant(hello(), "last_chunk_unpadded");
  EXPECT_EQ(parse(b).chunks().back().id_view(), "Xtra");
  EXPECT_EQ(parse_error(b, Strictness::kStrict), ErrorKind::kInvalidBeamFile);
}

TEST(ImageReader, DuplicateChunksFollowBeamLibAndTheLoader) {
  // A second AtU8 at the end naming the module and function differently (same lengths).
  const Bytes b = edit(hello(), [](auto& cs) {
    RawChunk copy = cs[0];
    std::string text(copy.data.begin(), copy.data.end());
    text.replace(text.find("hello"), 5, "hellx");
    text.replace(text.find("world"), 5, "wxrld");
    copy.data.assign(text.begin(), text.end());
    cs.push_back(copy);
  });
  auto lenient = parse(b);
  EXPECT_EQ(lenient.chunks().size(), 13u);                     // listed twice
  EXPECT_EQ(lenient.find("AtU8"), &lenient.chunks().front());  // the first
  EXPECT_EQ(*lenient.module(), "hellx");                       // from the last atom chunk
  auto exports = lenient.exports();                            // through the first
  ASSERT_TRUE(exports);
  EXPECT_EQ(exports->back().name, "world");
  EXPECT_NE(*lenient.md5(), *parse(hello()).md5());  // md5 hashes the last
  auto strict = parse(b, Strictness::kStrict);
  EXPECT_EQ(strict.find("AtU8"), &strict.chunks().back());  // the last wins
  EXPECT_EQ(*strict.module(), "hellx");
  EXPECT_EQ(strict.exports()->back().name, "wxrld");
}

TEST(ImageReader, GzipWrappedImagesAreUnwrapped) {
  const Bytes gz = variant(hello(), "gzip_ok");
  auto img = parse(gz);
  EXPECT_TRUE(img.gzipped());
  EXPECT_EQ(*img.md5(), *parse(hello()).md5());
  EXPECT_TRUE(parse(gz, Strictness::kStrict).check_loadable().loadable);
  auto raw = image::maybe_gunzip(gz, 1 << 20);
  ASSERT_TRUE(raw);
  EXPECT_EQ(*raw, hello());
  EXPECT_EQ(*image::maybe_gunzip(hello(), 1 << 20), hello());  // FOR1: unchanged
}

TEST(ImageReader, BadGzipIsNotABeamFile) {
  for (const char* name : {"gzip_truncated", "gzip_corrupt", "gzip_trailing_junk"}) {
    EXPECT_EQ(parse_error(variant(hello(), name)), ErrorKind::kNotABeamFile) << name;
    EXPECT_EQ(parse_error(variant(hello(), name), Strictness::kStrict), ErrorKind::kNotABeamFile) << name;
  }
}

TEST(ImageReader, GzipBombIsLimitExceeded) {
  const Bytes zeros(8u << 20, 0);
  const Bytes bomb = gzip_bytes(zeros);
  ASSERT_LT(bomb.size(), 64u << 10);
  image::Limits limits;
  limits.max_image_bytes = 1u << 20;
  auto img = Image::parse(bomb, Strictness::kLenient, "bomb", limits);
  ASSERT_FALSE(img);
  EXPECT_EQ(kind_of(img.error()), ErrorKind::kLimitExceeded);
  EXPECT_EQ(img.error().code(), Code::kLimitExceeded);
  auto raw = image::maybe_gunzip(bomb, 1u << 20);
  ASSERT_FALSE(raw);
  EXPECT_EQ(kind_of(raw.error()), ErrorKind::kLimitExceeded);
}

// --- Atom tables -------------------------------------------------------------------------

TEST(ImageReader, AtomsComeFromAtU8) {
  auto atoms = parse(hello()).atoms();
  ASSERT_TRUE(atoms);
  EXPECT_EQ(atoms->front(), "hello");
  EXPECT_EQ(w(parse(hello()).chunk_term("atoms")).substr(0, 20), "[{1,hello},{2,world}");
}

TEST(ImageReader, LegacyAtomChunkIsReadButNotLoadable) {
  const Bytes b = variant(hello(), "legacy_atom");
  auto img = parse(b);
  EXPECT_EQ(*img.module(), "hello");
  EXPECT_EQ(img.exports()->size(), 4u);
  auto verdict = img.check_loadable();
  EXPECT_FALSE(verdict.loadable);
  EXPECT_NE(verdict.reason.find("re-compile"), std::string::npos);
  auto strict = Image::parse(b, Strictness::kStrict);
  ASSERT_FALSE(strict);
  EXPECT_EQ(kind_of(strict.error()), ErrorKind::kNotLoadable);
}

TEST(ImageReader, LatinOneAtomsBecomeUtf8) {
  // A legacy Atom chunk holding the latin-1 byte 0xE9 (é) in the module name.
  const Bytes b = edit(hello(), [](auto& cs) {
    cs[0].id = "Atom";
    cs[0].data[5 + 4] = 0xE9;  // count(4) len(1) "hell" then 'o' -> 'é'
  });
  EXPECT_EQ(*parse(b).module(), "hell\xC3\xA9");
}

TEST(ImageReader, MissingAtomChunkIsMissingChunkAtom) {
  auto img = Image::parse(variant(hello(), "missing_AtU8"), Strictness::kLenient);
  ASSERT_FALSE(img);
  EXPECT_EQ(kind_of(img.error()), ErrorKind::kMissingChunk);
  EXPECT_EQ(img.error().where()->chunk, "Atom");  // beam_lib's quirk: it names the old id
  EXPECT_EQ(img.error().code(), Code::kNotFound);
}

TEST(ImageReader, DamagedAtomTablesAreInvalidChunk) {
  // Where beam_lib crashes (no atom #1, bad UTF-8) we answer invalid_chunk.
  EXPECT_EQ(parse_error(variant(hello(), "atom_table_zero_length")), ErrorKind::kInvalidChunk);
  EXPECT_EQ(parse_error(variant(hello(), "invalid_utf8_module")), ErrorKind::kInvalidChunk);
  // beam_lib reads only atom #1 while scanning; the rest when a view needs names.
  for (const char* name : {"atom_past_chunk", "invalid_utf8_atom"}) {
    auto img = parse(variant(hello(), name));
    auto exports = img.exports();
    ASSERT_FALSE(exports) << name;
    EXPECT_EQ(kind_of(exports.error()), ErrorKind::kInvalidChunk);
    EXPECT_EQ(exports.error().where()->chunk, "ExpT");
    EXPECT_FALSE(img.check_loadable().loadable);
  }
  // beam_lib ignores the count; the loader does not.
  for (const char* name : {"atom_count_too_big", "atom_count_zero"}) {
    auto img = parse(variant(hello(), name));
    EXPECT_TRUE(img.exports()) << name;
    EXPECT_FALSE(img.check_loadable().loadable) << name;
    EXPECT_EQ(parse_error(variant(hello(), name), Strictness::kStrict), ErrorKind::kInvalidChunk) << name;
  }
}

TEST(ImageReader, AtomIndexOutOfRangeIsInvalidChunk) {
  auto img = parse(variant(hello(), "expt_atom_index_out_of_range"));
  EXPECT_EQ(kind_of(img.exports().error()), ErrorKind::kInvalidChunk);
  EXPECT_FALSE(img.check_loadable().loadable);
  auto imp = parse(variant(hello(), "impt_atom_index_out_of_range"));
  EXPECT_EQ(kind_of(imp.imports().error()), ErrorKind::kInvalidChunk);
  EXPECT_EQ(imp.imports().error().where()->chunk, "ImpT");
}

// --- Views -------------------------------------------------------------------------------

TEST(ImageReader, ExportsAreSortedAndLabeled) {
  auto img = parse(attrs());
  EXPECT_EQ(w(img.chunk_term("exports")), "[{adder,1},{module_info,0},{module_info,1},{table,0}]");
  EXPECT_EQ(w(img.chunk_term("labeled_exports")),
            "[{adder,1,2},{module_info,0,6},{module_info,1,8},{table,0,4}]");
}

TEST(ImageReader, ImportsAreSortedOrIndexed) {
  auto img = parse(hello());
  auto imports = img.imports();
  ASSERT_TRUE(imports);
  ASSERT_EQ(imports->size(), 2u);
  EXPECT_EQ(w(img.chunk_term("imports")), "[{erlang,get_module_info,1},{erlang,get_module_info,2}]");
  EXPECT_EQ(w(img.chunk_term("indexed_imports")),
            "[{1,erlang,get_module_info,1},{2,erlang,get_module_info,2}]");
}

TEST(ImageReader, LocalsNeedLocT) {
  auto img = parse(attrs());
  EXPECT_EQ(w(img.chunk_term("locals")), "[{'-adder/1-fun-0-',2}]");
  auto stripped = parse(*image::strip(img, {}, true));
  auto locals = stripped.locals();
  ASSERT_FALSE(locals);
  EXPECT_EQ(kind_of(locals.error()), ErrorKind::kMissingChunk);
  EXPECT_EQ(locals.error().where()->chunk, "LocT");
}

TEST(ImageReader, AttributesAreSortedWithDuplicateKeysMerged) {
  EXPECT_EQ(w(parse(attrs()).attributes()),
            "[{bar,[x]},{foo,[1,2,3]},{vsn,[108986098007339718384473088247938573767]}]");
}

TEST(ImageReader, VsnIsTheVsnAttribute) {
  EXPECT_EQ(w(parse(hello()).vsn()), "[49]");  // "1", printed as ~w prints strings
  // Without -vsn the compiler stores the md5 as one integer.
  EXPECT_EQ(w(parse(attrs()).vsn()), "[108986098007339718384473088247938573767]");
  EXPECT_EQ(image::md5_hex(*parse(attrs()).md5()),
            "51fdf57ee3a393be1a37e0f9cb8a65c7");  // the vsn integer in hex
}

TEST(ImageReader, CorruptAttrIsInvalidChunk) {
  for (const char* name : {"attr_garbage", "attr_no_version", "attr_truncated", "attr_not_a_list"}) {
    auto img = parse(variant(hello(), name));
    auto a = img.attributes();
    ASSERT_FALSE(a) << name;
    EXPECT_EQ(kind_of(a.error()), ErrorKind::kInvalidChunk) << name;
    EXPECT_EQ(a.error().where()->chunk, "Attr");
    EXPECT_TRUE(img.exports());
  }
  EXPECT_EQ(kind_of(parse(variant(hello(), "cinf_garbage")).compile_info().error()),
            ErrorKind::kInvalidChunk);
  // The loader decodes Attr and CInf too (module_info/1 returns them).
  EXPECT_FALSE(parse(variant(hello(), "attr_garbage")).check_loadable().loadable);
}

TEST(ImageReader, CompileInfoIsTheCInfTerm) {
  const std::string text = w(parse(hello()).compile_info());
  EXPECT_EQ(text.rfind("[{version,[56,46,50,46,51]},{options,[]},{source,[", 0), 0u) << text;  // "8.2.3"
}

TEST(ImageReader, DebugInfoAndAbstractCode) {
  // Compiled with +debug_info: erl_abstract_code forms.
  const std::string abst = w(parse(attrs()).chunk_term("abstract_code"));
  EXPECT_EQ(abst.rfind("{raw_abstract_v1,[{attribute,", 0), 0u) << abst.substr(0, 80);
  EXPECT_EQ(w(parse(attrs()).chunk_term("debug_info")).rfind("{debug_info_v1,erl_abstract_code,{[", 0), 0u);
  // Without it the backend has nothing to give.
  EXPECT_EQ(w(parse(hello()).chunk_term("abstract_code")), "no_abstract_code");
}

TEST(ImageReader, UnknownChunkName) {
  auto t = parse(hello()).chunk_term("bogus");
  ASSERT_FALSE(t);
  EXPECT_EQ(kind_of(t.error()), ErrorKind::kUnknownChunk);
  EXPECT_EQ(t.error().code(), Code::kInvalidArgument);
}

// --- md5, strip, cmp, build ------------------------------------------------------------

TEST(ImageReader, Md5NeedsTheMandatoryChunks) {
  for (const char* id : {"Code", "StrT", "ImpT", "ExpT"}) {
    auto md5 = parse(variant(hello(), std::string("missing_") + id)).md5();
    ASSERT_FALSE(md5) << id;
    EXPECT_EQ(kind_of(md5.error()), ErrorKind::kMissingChunk);
    EXPECT_EQ(md5.error().where()->chunk, id);
  }
  // The loader hashes a missing StrT as empty, and loads the module.
  const Bytes b = variant(hello(), "missing_StrT");
  EXPECT_TRUE(parse(b, Strictness::kStrict).md5());
  EXPECT_TRUE(parse(b).check_loadable().loadable);
}

TEST(ImageReader, Md5IgnoresFunOldUniqAndUnhashedChunks) {
  const Bytes b = edit(attrs(), [](auto& cs) {
    for (auto& c : cs) {
      if (c.id == "FunT") c.data[4 + 20] ^= 0xFF;  // old_uniq of fun 0
      if (c.id == "Dbgi") c.data.clear();
      if (c.id == "Attr") c.data = {131, 106};
    }
  });
  EXPECT_EQ(*parse(b).md5(), *parse(attrs()).md5());
}

TEST(ImageReader, StripKeepsSignificantChunksInBeamLibsOrder) {
  auto stripped = image::strip(parse(attrs()));
  ASSERT_TRUE(stripped);
  auto img = parse(*stripped);
  EXPECT_TRUE(img.gzipped());
  std::string ids;
  for (const auto& c : img.chunks()) ids += std::string(c.id_view()) + " ";
  EXPECT_EQ(ids, "Line Type AtU8 Code StrT ImpT ExpT FunT LitT Meta ");
  EXPECT_EQ(*img.md5(), *parse(attrs()).md5());
  auto extra = parse(*image::strip(parse(attrs()), {"Attr"}, /*raw=*/true));
  EXPECT_FALSE(extra.gzipped());
  EXPECT_EQ(extra.chunks().front().id_view(), "Attr");
}

TEST(ImageReader, CmpComparesAllButCInf) {
  auto a = parse(hello());
  EXPECT_TRUE(image::cmp(a, a));
  EXPECT_EQ(kind_of(image::cmp(a, parse(attrs())).error()), ErrorKind::kModulesDifferent);
  auto cinf = parse(edit(hello(), [](auto& cs) { cs[8].data = {131, 106}; }));
  EXPECT_TRUE(image::cmp(a, cinf));
  auto code = parse(edit(hello(), [](auto& cs) { cs[1].data.back() ^= 1; }));
  auto diff = image::cmp(a, code);
  ASSERT_FALSE(diff);
  EXPECT_EQ(kind_of(diff.error()), ErrorKind::kChunksDifferent);
  EXPECT_EQ(diff.error().where()->chunk, "Code");
  EXPECT_EQ(kind_of(image::cmp(a, parse(edit(hello(), [](auto& cs) { cs.pop_back(); }))).error()),
            ErrorKind::kDifferentChunks);
}

TEST(ImageReader, BuildModuleRebuildsByteForByte) {
  auto img = parse(attrs());
  std::vector<image::ChunkData> chunks;
  for (const auto& c : img.chunks()) chunks.push_back({std::string(c.id_view()), img.data(c)});
  EXPECT_EQ(*image::build_module(chunks), attrs());
  auto bad = image::build_module({{"Toolong", {}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(kind_of(bad.error()), ErrorKind::kInvalidChunk);
}

// --- Loader verdict ---------------------------------------------------------------------

TEST(ImageLoader, RealImagesAreLoadable) {
  for (const Bytes& b : {hello(), attrs()}) {
    auto v = parse(b).check_loadable();
    EXPECT_TRUE(v.loadable) << v.reason;
    EXPECT_TRUE(v.reason.empty());
  }
}

TEST(ImageLoader, UnknownOpcodeIsOpcodeOnly) {
  for (const char* name : {"code_unknown_opcode", "code_max_opcode_too_big"}) {
    auto v = parse(variant(attrs(), name)).check_loadable();
    EXPECT_FALSE(v.loadable) << name;
    EXPECT_TRUE(v.opcode_only) << name << ": " << v.reason;
  }
  // The last of two Code chunks counts.
  EXPECT_TRUE(parse(variant(attrs(), "dup_code_corrupt_last")).check_loadable().opcode_only);
  auto obsolete = parse(variant(attrs(), "code_obsolete_opcode")).check_loadable();
  EXPECT_FALSE(obsolete.loadable);
  EXPECT_FALSE(obsolete.opcode_only);
}

TEST(ImageLoader, DamagedCodeIsNotLoadable) {
  for (const char* name :
       {"code_header_short", "code_header_past_end", "code_bad_format", "code_label_count_small",
        "code_function_count_small", "code_function_count_big", "code_label_zero", "code_truncated_operand",
        "code_truncated_half", "code_no_int_code_end", "empty_Code", "missing_Code", "empty_ImpT",
        "missing_ExpT"}) {
    auto v = parse(variant(attrs(), name)).check_loadable();
    EXPECT_FALSE(v.loadable) << name;
    EXPECT_FALSE(v.opcode_only) << name;
    EXPECT_EQ(v.reason.rfind("test.beam: chunk ", 0), 0u) << name << ": " << v.reason;
  }
  // The loader stops at int_code_end.
  EXPECT_TRUE(parse(variant(attrs(), "code_trailing_bytes")).check_loadable().loadable);
}

TEST(ImageLoader, LiteralsMustInflateAndDecode) {
  for (const char* name : {"litt_truncated", "litt_corrupt", "litt_size_smaller", "litt_bad_literal",
                           "litt_count_too_big", "litt_literal_truncated"}) {
    auto img = parse(variant(attrs(), name));
    EXPECT_TRUE(img.md5()) << name;  // beam_lib hashes LitT as stored
    EXPECT_FALSE(img.check_loadable().loadable) << name;
  }
  // A declared size larger than the data is what zlib's uncompress accepts.
  EXPECT_TRUE(parse(variant(attrs(), "litt_size_bigger")).check_loadable().loadable);
}

// --- Limits and errors ------------------------------------------------------------------

TEST(ImageLimits, EachLimitIsNamed) {
  auto refuse = [](const Bytes& b, image::Limits l, const char* what) {
    auto img = Image::parse(b, Strictness::kLenient, "x.beam", l);
    if (img) {
      auto a = img->attributes();
      if (a) {
        auto v = img->check_loadable();
        EXPECT_FALSE(v.loadable) << what;
        EXPECT_NE(v.reason.find(what), std::string::npos) << v.reason;
        return;
      }
      EXPECT_EQ(kind_of(a.error()), ErrorKind::kLimitExceeded) << what << ": " << a.error().to_string();
      return;
    }
    EXPECT_EQ(kind_of(img.error()), ErrorKind::kLimitExceeded) << what << ": " << img.error().to_string();
    EXPECT_NE(error_detail(img.error()).find(what), std::string::npos) << error_detail(img.error());
  };
  image::Limits l;
  l.max_image_bytes = 100;
  refuse(attrs(), l, "max_image_bytes");
  l = {};
  l.max_chunks = 3;
  refuse(attrs(), l, "max_chunks");
  l = {};
  l.max_term_depth = 1;
  refuse(attrs(), l, "depth");
  l = {};
  l.max_inflated_bytes = 16;
  refuse(attrs(), l, "max_inflated_bytes");
  l = {};
  l.max_atoms = 2;
  auto img = Image::parse(attrs(), Strictness::kLenient, "x.beam", l);
  ASSERT_TRUE(img);
  auto atoms = img->atoms();
  ASSERT_FALSE(atoms);
  EXPECT_EQ(kind_of(atoms.error()), ErrorKind::kLimitExceeded);
  EXPECT_NE(error_detail(atoms.error()).find("max_atoms"), std::string::npos);
  EXPECT_EQ(kind_of(Image::parse(attrs(), Strictness::kStrict, "x.beam", l).error()),
            ErrorKind::kLimitExceeded);
}

TEST(ImageErrors, MessagesNameFileChunkAndOffset) {
  auto img = Image::parse(variant(hello(), "atom_chunk_past_end"), Strictness::kLenient, "hello.beam");
  ASSERT_FALSE(img);
  const std::string s = img.error().message();
  EXPECT_EQ(s.rfind("hello.beam: chunk AtU8 at offset 20: size ", 0), 0u) << s;
  EXPECT_EQ(img.error().code(), Code::kCorruption);
  EXPECT_NE(img.error().to_string().find("corruption: hello.beam"), std::string::npos);
  auto bin = Image::parse(Bytes{1, 2, 3}, Strictness::kLenient);
  EXPECT_EQ(bin.error().where()->file, "<binary>");
  EXPECT_EQ(image::kind_name(ErrorKind::kChunkTooBig), "chunk_too_big");
}

// One error type: an image failure is a Status whose reason is beam_lib's atom (erl:
// beam_lib:chunks(<<1,2,3>>, [exports]) -> {error, beam_lib, {not_a_beam_file, _}};
// erlang:prepare_loading(m, <<1,2,3>>) -> {error, badfile}), whose code is the kind's, and
// whose location is set; kind_of gives the kind back.
TEST(ImageErrors, StatusCarriesBeamLibReasonCodeAndWhere) {
  struct Case {
    Status status;
    ErrorKind kind;
    std::string_view reason;
    Code code;
  };
  const Image a = parse(hello()), b = parse(attrs()), stripped = parse(*image::strip(a, {}, true));
  const Case cases[] = {
      {Image::parse(Bytes{1, 2, 3}, Strictness::kLenient).error(), ErrorKind::kNotABeamFile,
       "not_a_beam_file", Code::kCorruption},
      {Image::read_file(source_dir() + "/tests/fixtures/images/no-such.beam", Strictness::kLenient).error(),
       ErrorKind::kFileError, "file_error", Code::kIOError},
      {stripped.locals().error(), ErrorKind::kMissingChunk, "missing_chunk", Code::kNotFound},
      {Image::parse(variant(hello(), "atom_chunk_past_end"), Strictness::kLenient, "hello.beam").error(),
       ErrorKind::kChunkTooBig, "chunk_too_big", Code::kCorruption},
      {a.chunk_term("nonsense").error(), ErrorKind::kUnknownChunk, "unknown_chunk", Code::kInvalidArgument},
      {image::cmp(a, b).error(), ErrorKind::kModulesDifferent, "modules_different",
       Code::kFailedPrecondition},
      {Image::parse(hello(), Strictness::kLenient, "x.beam", image::Limits{.max_image_bytes = 100}).error(),
       ErrorKind::kLimitExceeded, "", Code::kLimitExceeded},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.reason(), c.reason) << c.status.to_string();
    EXPECT_EQ(c.status.code(), c.code) << c.status.to_string();
    EXPECT_EQ(kind_of(c.status), c.kind) << c.status.to_string();
    ASSERT_NE(c.status.where(), nullptr) << c.status.to_string();
    EXPECT_EQ(c.status.to_string(), std::string(code_name(c.code)) + ": " + c.status.message());
  }
  const Status& too_big = cases[3].status;
  EXPECT_EQ(too_big.where()->file, "hello.beam");
  EXPECT_EQ(too_big.where()->chunk, "AtU8");
  EXPECT_EQ(too_big.where()->offset, 20u);
  EXPECT_EQ(too_big.message(), "hello.beam: chunk AtU8 at offset 20: " + std::string(error_detail(too_big)));
  // The loader's verdict on a legacy atom table: Erlang's loader answers badfile.
  auto legacy = Image::parse(variant(hello(), "legacy_atom"), Strictness::kStrict, "legacy.beam");
  ASSERT_FALSE(legacy);
  EXPECT_EQ(kind_of(legacy.error()), ErrorKind::kNotLoadable);
  EXPECT_EQ(legacy.error().reason(), "badfile");
  EXPECT_EQ(legacy.error().code(), Code::kCorruption);
  // A Status that is no image failure has no kind.
  EXPECT_EQ(kind_of(Status(Code::kNotFound, "module m")), std::nullopt);
  EXPECT_EQ(kind_of(Status()), std::nullopt);
}

// No public back door: the representation is reached only from image/ (image_internal.h).
template <typename T>
concept HasRep = requires(const T& img) {
  img.rep();
};
static_assert(!HasRep<Image>, "Image::rep() is not public API");

// Thread safety: one Image read from many threads at once.
TEST(ImageReader, ConstMethodsRunConcurrently) {
  const Image img = parse(attrs());
  const auto md5 = *img.md5();
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (*img.md5() != md5 || !img.exports() || !img.attributes() || !img.check_loadable().loadable) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace codestore::testing

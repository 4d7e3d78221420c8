// `codestore image ...`: the image inspector, Erlang's beam_lib on the command line.
//
//   image info FILE...                 module, chunks, exports, imports, attributes, vsn, md5,
//                                      and whether the VM loader would take it
//   image chunks FILE [ID|NAME...]     the chunk table; a beam_lib chunk name prints its value
//                                      as Erlang term text; --raw ID writes one chunk's bytes
//   image md5 FILE...                  beam_lib:md5/1
//   image strip FILE -o OUT [--raw]    beam_lib:strip/1 (gzip-wrapped unless --raw)
//   image cmp A B                      beam_lib:cmp/2: exit 0 equal, 3 different
//
// Every value comes from the image library; this file only chooses what to print and how.
// The beam_lib fields come from a lenient parse (beam_lib's rules); `loadable` comes from a
// strict parse and Image::check_loadable() (the VM loader's rules).
#include <codestore/image.h>
#include <codestore/term.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cli.h"
#include "json_util.h"

namespace codestore::cli {
namespace {

using image::Image;
using image::Strictness;
// Keys in the order we write them, so the JSON reads like the human output.
using Json = nlohmann::ordered_json;

// beam_lib:chunks/2 names that Image::chunk_term() knows; a selector of exactly four bytes is
// a chunk id instead (no name is four bytes long).
constexpr std::string_view kChunkNames[] = {"atoms",           "exports",    "labeled_exports", "imports",
                                            "indexed_imports", "locals",     "labeled_locals",  "attributes",
                                            "compile_info",    "debug_info", "abstract_code"};

bool is_chunk_name(std::string_view s) {
  return std::find(std::begin(kChunkNames), std::end(kChunkNames), s) != std::end(kChunkNames);
}

// What a chunk holds, for the human tables (docs/image-format.md, "Chunks we read").
std::string_view chunk_role(std::string_view id) {
  static constexpr std::pair<std::string_view, std::string_view> kRoles[] = {
      {"AtU8", "atoms (UTF-8)"},
      {"Atom", "atoms (latin-1, pre OTP 20)"},
      {"Code", "bytecode"},
      {"StrT", "string pool"},
      {"ImpT", "imports"},
      {"ExpT", "exports"},
      {"LocT", "local functions"},
      {"FunT", "funs"},
      {"LitT", "literals (zlib)"},
      {"Meta", "metadata"},
      {"Attr", "attributes"},
      {"CInf", "compile info"},
      {"Line", "line table"},
      {"Type", "type table"},
      {"Dbgi", "debug info"},
      {"Abst", "abstract code (pre OTP 20)"},
      {"Docs", "documentation (EEP 48)"},
      {"ExCk", "Elixir checker data"},
  };
  for (const auto& [key, role] : kRoles) {
    if (key == id) return role;
  }
  return "";
}

// The parts of an image failure (image.h) the output shows apart: beam_lib's kind, the
// chunk ("" when none), the offset.
std::string_view kind_text(const Status& e) {
  const auto kind = image::kind_of(e);
  return kind ? image::kind_name(*kind) : code_name(e.code());
}
std::string_view chunk_of(const Status& e) {
  return e.where() ? std::string_view(e.where()->chunk) : "";
}
std::uint64_t offset_of(const Status& e) {
  return e.where() ? e.where()->offset : 0;
}

Json error_json(const Status& e) {
  Json j = Json::object();
  j["kind"] = std::string(kind_text(e));
  j["chunk"] = chunk_of(e).empty() ? Json(nullptr) : Json(bytes_to_json_string(chunk_of(e)));
  j["message"] = text_to_json_string(e.message());
  return j;
}

// One object per line. Every string we put in is valid UTF-8 already; `replace` only keeps
// a bug of ours from turning into an exception.
void print_json(std::ostream& out, const Json& j) {
  out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
}

void report(Context& ctx, std::string_view message) {
  *ctx.err << "codestore: " << message << '\n';
}

void fail(Context& ctx, int code) {
  ctx.exit_code = std::max(ctx.exit_code, code);
}

Result<std::string> term_text(const Result<etf::Term>& term) {
  if (!term) return tl::unexpected(term.error());
  return etf::format_w(*term);
}

// Whether the chunk's declared size runs past the end of the (unwrapped) image of
// `image_size` bytes: beam_lib lists it, and refuses it to every operation that reads it.
bool truncated(const image::Chunk& c, std::uint64_t image_size) {
  return c.offset + c.size > image_size;
}

Json chunk_json(const image::Chunk& c, std::uint64_t image_size) {
  Json j = Json::object();
  j["id"] = bytes_to_json_string(c.id_view());
  j["offset"] = c.offset;
  j["size"] = c.size;
  j["truncated"] = truncated(c, image_size);
  return j;
}

// The "holds" column: the chunk's role, and how much of it is there when it is cut short.
std::string chunk_holds(const image::Chunk& c, std::uint64_t image_size) {
  std::string holds(chunk_role(c.id_view()));
  if (truncated(c, image_size)) {
    const std::uint64_t present = image_size > c.offset ? image_size - c.offset : 0;
    holds += fmt::format("{}TRUNCATED: {} of {} bytes present", holds.empty() ? "" : "; ", present, c.size);
  }
  return holds;
}

// The chunk table, each line after `indent`.
void print_chunk_table(std::ostream& out, const std::vector<image::Chunk>& chunks, std::uint64_t image_size,
                       std::string_view indent) {
  std::size_t offset_w = 6, size_w = 4;
  for (const auto& c : chunks) {
    offset_w = std::max(offset_w, std::to_string(c.offset).size());
    size_w = std::max(size_w, std::to_string(c.size).size());
  }
  out << fmt::format("{}{:<4}  {:>{}}  {:>{}}  {}\n", indent, "id", "offset", offset_w, "size", size_w,
                     "holds");
  for (const auto& c : chunks) {
    out << fmt::format("{}{:<4}  {:>{}}  {:>{}}  {}\n", indent, printable_bytes(c.id_view()), c.offset,
                       offset_w, c.size, size_w, chunk_holds(c, image_size));
  }
}

// ---- image info -----------------------------------------------------------------------------

// Everything `image info` says about one file. Each beam_lib field is a value or the reason
// there is none; all of them are empty when the image cannot be read at all.
struct Info {
  std::string file;
  std::optional<Status> error;  // beam_lib:info/1 would fail
  std::vector<image::Chunk> chunks;
  std::uint64_t image_size = 0;            // of the unwrapped image, for `truncated`
  std::optional<Status> all_chunks_error;  // beam_lib:all_chunks/1 would fail
  std::optional<Result<std::string>> module;
  std::optional<Result<std::vector<image::Function>>> exports;
  std::optional<Result<std::vector<image::Import>>> imports;
  std::optional<Result<std::string>> attributes;  // ~tw text
  std::optional<Result<std::string>> vsn;         // ~tw text
  std::optional<Result<image::Md5>> md5;
  bool gzipped = false;
  bool loadable = false;
  std::string load_error;
};

Info inspect(const std::string& path) {
  Info info;
  info.file = path;
  auto lenient = Image::read_file(path, Strictness::kLenient);

  // The loader's verdict does not depend on beam_lib being able to read the image (bytes after
  // the form length make beam_lib fail while the loader ignores them), so it is always asked,
  // from the bytes already read when there are any.
  Result<Image> strict = lenient ? Image::parse(lenient->bytes(), Strictness::kStrict, path)
                         : image::kind_of(lenient.error()) == image::ErrorKind::kFileError
                             ? Result<Image>(error(lenient.error()))
                             : Image::read_file(path, Strictness::kStrict);
  if (strict) {
    auto verdict = strict->check_loadable();
    info.loadable = verdict.loadable;
    info.load_error = verdict.reason;
  } else {
    info.load_error = strict.error().message();
  }

  if (!lenient) {
    info.error = lenient.error();
    return info;
  }
  const Image& img = *lenient;
  info.gzipped = img.gzipped();
  info.chunks = img.chunks();
  info.image_size = img.bytes().size();
  // info/1 lists a chunk that runs past the end, and md5/1 and the other fields may never
  // read it: all_chunks/1 (and cmp, strip when they read it) refuse the file, so say so.
  if (auto all = img.all_chunks(); !all) info.all_chunks_error = all.error();
  info.module = img.module();
  info.exports = img.exports();
  info.imports = img.imports();
  info.attributes = term_text(img.attributes());
  info.vsn = term_text(img.vsn());
  info.md5 = img.md5();
  return info;
}

Json info_json(const Info& info) {
  Json j = Json::object();
  Json errors = Json::object();
  j["file"] = text_to_json_string(info.file);
  if (info.error) j["error"] = error_json(*info.error);

  // A field that failed is null, with its reason under "errors".
  auto put = [&](const char* name, const auto& field, auto to_json) {
    if (!field) {
      j[name] = nullptr;
    } else if (*field) {
      j[name] = to_json(**field);
    } else {
      j[name] = nullptr;
      errors[name] = error_json(field->error());
    }
  };
  put("module", info.module, [](const std::string& m) { return Json(text_to_json_string(m)); });
  j["gzip"] = info.error ? Json(nullptr) : Json(info.gzipped);  // the file is gzip-wrapped
  if (info.error) {
    j["chunks"] = nullptr;
  } else {
    Json chunks = Json::array();
    for (const auto& c : info.chunks) chunks.push_back(chunk_json(c, info.image_size));
    j["chunks"] = std::move(chunks);
  }
  if (info.all_chunks_error) errors["all_chunks"] = error_json(*info.all_chunks_error);
  put("exports", info.exports, [](const std::vector<image::Function>& fs) {
    Json a = Json::array();
    for (const auto& f : fs) a.push_back(Json::array({text_to_json_string(f.name), f.arity}));
    return a;
  });
  put("imports", info.imports, [](const std::vector<image::Import>& is) {
    Json a = Json::array();
    for (const auto& i : is) {
      a.push_back(Json::array({text_to_json_string(i.module), text_to_json_string(i.function), i.arity}));
    }
    return a;
  });
  put("attributes", info.attributes, [](const std::string& t) { return Json(text_to_json_string(t)); });
  put("vsn", info.vsn, [](const std::string& t) { return Json(text_to_json_string(t)); });
  put("md5", info.md5, [](const image::Md5& m) { return Json(image::md5_hex(m)); });
  j["loadable"] = info.loadable;
  j["load_error"] = info.loadable ? Json(nullptr) : Json(text_to_json_string(info.load_error));
  j["errors"] = std::move(errors);
  return j;
}

void print_info_human(std::ostream& out, const Info& info) {
  out << info.file << '\n';
  auto line = [&](std::string_view label, const std::string& value) {
    out << fmt::format("  {:<11} {}\n", label, value);
  };
  auto value_or_reason = [](const auto& field, auto show) -> std::string {
    if (*field) return show(**field);
    const Status& e = field->error();
    return fmt::format("-  ({}{}: {})", kind_text(e),
                       chunk_of(e).empty() ? "" : " " + printable_bytes(chunk_of(e)), image::error_detail(e));
  };
  line("module", value_or_reason(info.module, [](const std::string& m) { return m; }));
  line("md5", value_or_reason(info.md5, [](const image::Md5& m) { return image::md5_hex(m); }));
  line("vsn", value_or_reason(info.vsn, [](const std::string& t) { return t; }));
  line("loadable", info.loadable ? std::string("yes") : fmt::format("no: {}", info.load_error));
  line("exports", value_or_reason(info.exports, [](const auto& v) { return std::to_string(v.size()); }));
  line("imports", value_or_reason(info.imports, [](const auto& v) { return std::to_string(v.size()); }));
  line("attributes", value_or_reason(info.attributes, [](const std::string& t) { return t; }));
  if (info.gzipped) line("wrapping", "gzip");
  std::string count = std::to_string(info.chunks.size());
  if (const auto& e = info.all_chunks_error) {
    count += fmt::format("  ({} {} at offset {}: {}; beam_lib:all_chunks/1 refuses the image)", kind_text(*e),
                         printable_bytes(chunk_of(*e)), offset_of(*e), image::error_detail(*e));
  }
  line("chunks", count);

  print_chunk_table(out, info.chunks, info.image_size, "    ");
}

void image_info(Context& ctx, const std::vector<std::string>& files) {
  bool first = true;
  for (const auto& file : files) {
    Info info = inspect(file);
    if (info.error) {
      report(ctx, fmt::format("image info: {}", info.error->message()));
      fail(ctx, kExitError);
    }
    if (ctx.json) {
      print_json(*ctx.out, info_json(info));
    } else if (!info.error) {
      if (!first) *ctx.out << '\n';
      print_info_human(*ctx.out, info);
      first = false;
    }
  }
}

// ---- image chunks ---------------------------------------------------------------------------

void image_chunks(Context& ctx, const std::string& file, const std::vector<std::string>& selectors,
                  const std::string& raw_id) {
  for (const auto& s : selectors) {
    if (s.size() != 4 && !is_chunk_name(s)) {
      std::string known;
      for (auto n : kChunkNames) known += fmt::format("{}{}", known.empty() ? "" : ", ", n);
      report_usage(ctx, fmt::format("image chunks: '{}' is neither a 4-byte chunk id nor a chunk name ({})",
                                    s, known));
      return;
    }
  }
  if (!raw_id.empty() && raw_id.size() != 4) {
    report_usage(ctx, fmt::format("image chunks: --raw takes a 4-byte chunk id, not '{}'", raw_id));
    return;
  }

  auto img = Image::read_file(file, Strictness::kLenient);
  if (!img) {
    report(ctx, fmt::format("image chunks: {}", img.error().message()));
    if (ctx.json)
      print_json(*ctx.out, Json{{"file", text_to_json_string(file)}, {"error", error_json(img.error())}});
    fail(ctx, kExitError);
    return;
  }

  if (!raw_id.empty()) {
    // beam_lib:chunks(F, [Id]) returns the first chunk with that id; so do we.
    const image::Chunk* c = img->find(raw_id);
    if (c == nullptr) {
      report(ctx, fmt::format("image chunks: {}: missing_chunk: no chunk {}", file, printable_bytes(raw_id)));
      fail(ctx, kExitError);
      return;
    }
    auto data = img->data(*c);
    // beam_lib:chunks(F, [Id]) answers chunk_too_big: half a chunk is not its data. Only the
    // last chunk can run past the end, so all_chunks() names this one.
    if (auto all = img->all_chunks(); !all && truncated(*c, img->bytes().size())) {
      report(ctx, fmt::format("image chunks: {}", all.error().message()));
      fail(ctx, kExitError);
      return;
    }
    ctx.out->write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    return;
  }

  std::vector<image::Chunk> table;
  std::vector<std::pair<std::string, Result<std::string>>> terms;
  std::vector<std::string> missing;
  if (selectors.empty()) table = img->chunks();
  for (const auto& s : selectors) {
    if (s.size() == 4) {
      bool found = false;
      for (const auto& c : img->chunks()) {
        if (c.id_view() == s) {
          table.push_back(c);
          found = true;
        }
      }
      if (!found) missing.push_back(s);
    } else {
      terms.emplace_back(s, term_text(img->chunk_term(s)));
    }
  }

  bool failed = !missing.empty();
  for (const auto& [name, text] : terms) failed = failed || !text;
  if (ctx.json) {
    Json j = Json::object();
    j["file"] = text_to_json_string(file);
    Json chunks = Json::array();
    for (const auto& c : table) chunks.push_back(chunk_json(c, img->bytes().size()));
    j["chunks"] = std::move(chunks);
    Json values = Json::object();
    Json errors = Json::object();
    for (const auto& [name, text] : terms) {
      if (text) {
        values[name] = text_to_json_string(*text);
      } else {
        values[name] = nullptr;
        errors[name] = error_json(text.error());
      }
    }
    for (const auto& id : missing) {
      Json e = Json::object();
      e["kind"] = "missing_chunk";
      e["chunk"] = bytes_to_json_string(id);
      e["message"] = text_to_json_string(fmt::format("{}: no chunk {}", file, id));
      errors[bytes_to_json_string(id)] = std::move(e);
    }
    j["terms"] = std::move(values);
    j["errors"] = std::move(errors);
    print_json(*ctx.out, j);
  } else {
    if (!table.empty()) print_chunk_table(*ctx.out, table, img->bytes().size(), "");
    for (const auto& [name, text] : terms) {
      if (text) *ctx.out << name << ": " << *text << '\n';
    }
  }
  for (const auto& id : missing) {
    report(ctx, fmt::format("image chunks: {}: missing_chunk: no chunk {}", file, printable_bytes(id)));
  }
  for (const auto& [name, text] : terms) {
    if (!text) report(ctx, fmt::format("image chunks: {}: {}", name, text.error().message()));
  }
  if (failed) fail(ctx, kExitError);
}

// ---- image md5 ------------------------------------------------------------------------------

void image_md5(Context& ctx, const std::vector<std::string>& files) {
  struct Row {
    std::string file, module, md5;
  };
  std::vector<Row> rows;
  for (const auto& file : files) {
    auto img = Image::read_file(file, Strictness::kLenient);
    Result<std::string> module = img ? img->module() : Result<std::string>(error(img.error()));
    Result<image::Md5> md5 = img ? img->md5() : Result<image::Md5>(error(img.error()));
    const Status* e = !module ? &module.error() : !md5 ? &md5.error() : nullptr;
    if (e != nullptr) {
      report(ctx, fmt::format("image md5: {}", e->message()));
      fail(ctx, kExitError);
      if (ctx.json)
        print_json(*ctx.out, Json{{"file", text_to_json_string(file)}, {"error", error_json(*e)}});
      continue;
    }
    if (ctx.json) {
      print_json(*ctx.out, Json{{"file", text_to_json_string(file)},
                                {"module", text_to_json_string(*module)},
                                {"md5", image::md5_hex(*md5)}});
    } else {
      rows.push_back({file, *module, image::md5_hex(*md5)});
    }
  }
  std::size_t w = 0;
  for (const auto& r : rows) w = std::max(w, r.module.size());
  for (const auto& r : rows) *ctx.out << fmt::format("{}  {:<{}}  {}\n", r.md5, r.module, w, r.file);
}

// ---- image strip ----------------------------------------------------------------------------

// Writes next to the target and renames, so a failed write never leaves half an image.
bool write_file_atomically(const std::string& path, const std::vector<std::uint8_t>& bytes,
                           std::string& why) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (f) f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f || !f.flush()) {
      why = fmt::format("cannot write {}", tmp);
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    why = fmt::format("cannot rename {} to {}: {}", tmp, path, ec.message());
    std::filesystem::remove(tmp, ec);
    return false;
  }
  return true;
}

std::uintmax_t in_size(const std::string& file) {
  std::error_code ec;
  auto n = std::filesystem::file_size(file, ec);
  return ec ? 0 : n;
}

void image_strip(Context& ctx, const std::string& file, const std::string& output, bool raw,
                 const std::vector<std::string>& keep) {
  for (const auto& id : keep) {
    if (id.size() != 4) {
      report_usage(ctx, fmt::format("image strip: --keep takes 4-byte chunk ids, not '{}'", id));
      return;
    }
  }
  auto img = Image::read_file(file, Strictness::kLenient);
  Result<std::vector<std::uint8_t>> stripped =
      img ? image::strip(*img, keep, raw) : Result<std::vector<std::uint8_t>>(error(img.error()));
  if (!stripped) {
    report(ctx, fmt::format("image strip: {}", stripped.error().message()));
    if (ctx.json) {
      print_json(*ctx.out,
                 Json{{"file", text_to_json_string(file)}, {"error", error_json(stripped.error())}});
    }
    fail(ctx, kExitError);
    return;
  }
  std::string why;
  if (!write_file_atomically(output, *stripped, why)) {
    report(ctx, fmt::format("image strip: {}", why));
    if (ctx.json) {
      print_json(*ctx.out,
                 Json{{"file", text_to_json_string(file)},
                      {"error",
                       {{"kind", "file_error"}, {"chunk", nullptr}, {"message", text_to_json_string(why)}}}});
    }
    fail(ctx, kExitError);
    return;
  }
  // Read back what we wrote: the summary lists the chunks that are really there.
  std::vector<std::string> kept;
  if (auto out = Image::parse(*stripped, Strictness::kLenient, output)) {
    for (const auto& c : out->chunks()) kept.emplace_back(c.id_view());
  }
  if (ctx.json) {
    Json ids = Json::array();
    for (const auto& id : kept) ids.push_back(bytes_to_json_string(id));
    print_json(*ctx.out, Json{{"file", text_to_json_string(file)},
                              {"output", text_to_json_string(output)},
                              {"bytes_in", in_size(file)},
                              {"bytes_out", stripped->size()},
                              {"gzip", !raw},
                              {"chunks", std::move(ids)}});
  } else {
    std::string ids;
    for (const auto& id : kept) ids += fmt::format("{}{}", ids.empty() ? "" : " ", printable_bytes(id));
    *ctx.out << fmt::format("{} -> {}: {} -> {} bytes{}, kept {}\n", file, output, in_size(file),
                            stripped->size(), raw ? "" : " (gzip)", ids);
  }
}

// ---- image cmp ------------------------------------------------------------------------------

void image_cmp(Context& ctx, const std::string& a, const std::string& b) {
  auto ia = Image::read_file(a, Strictness::kLenient);
  auto ib = ia ? Image::read_file(b, Strictness::kLenient) : Result<Image>(error(ia.error()));
  Result<void> verdict = ib ? image::cmp(*ia, *ib) : Result<void>(error(ib.error()));
  bool differ = false;
  if (!verdict) {
    auto k = image::kind_of(verdict.error());
    differ = k == image::ErrorKind::kModulesDifferent || k == image::ErrorKind::kChunksDifferent ||
             k == image::ErrorKind::kDifferentChunks;
  }
  if (ctx.json) {
    Json j = Json::object();
    j["a"] = text_to_json_string(a);
    j["b"] = text_to_json_string(b);
    j["equal"] = verdict.has_value() ? Json(true) : differ ? Json(false) : Json(nullptr);
    if (differ) j["difference"] = error_json(verdict.error());
    if (!verdict && !differ) j["error"] = error_json(verdict.error());
    print_json(*ctx.out, j);
  } else if (verdict) {
    *ctx.out << fmt::format("equal: {} {}\n", a, b);
  } else if (differ) {
    const Status& e = verdict.error();
    *ctx.out << fmt::format("different: {}{}: {}\n", kind_text(e),
                            chunk_of(e).empty() ? "" : " " + printable_bytes(chunk_of(e)),
                            image::error_detail(e));
  }
  if (!verdict && !differ) {
    report(ctx, fmt::format("image cmp: {}", verdict.error().message()));
    fail(ctx, kExitError);
  } else if (differ) {
    fail(ctx, kExitFound);
  }
}

}  // namespace

void add_image_commands(CLI::App& app, Context& ctx) {
  CLI::App* image = app.add_subcommand("image", "Inspect module images (.beam) as Erlang's beam_lib does");
  image->require_subcommand(1);

  // The options outlive this function: CLI11 fills them in during parse, after it returns.
  struct Options {
    std::vector<std::string> files;
    std::string file, output, raw_id, a, b;
    std::vector<std::string> selectors, keep;
    bool raw = false;
  };
  auto opt = std::make_shared<Options>();

  auto* info =
      image->add_subcommand("info", "Module, chunks, exports, imports, attributes, vsn, md5, loadable");
  info->add_option("FILE", opt->files, "Image files")->required();
  info->callback([&ctx, opt] { image_info(ctx, opt->files); });

  auto* chunks =
      image->add_subcommand("chunks", "The chunk table; a chunk name prints its value as Erlang terms");
  chunks->add_option("FILE", opt->file, "Image file")->required();
  auto* sel = chunks->add_option("SELECTOR", opt->selectors,
                                 "4-byte chunk ids (table rows) or beam_lib names: atoms, exports, "
                                 "labeled_exports, imports, indexed_imports, locals, labeled_locals, "
                                 "attributes, compile_info, debug_info, abstract_code");
  chunks->add_option("--raw", opt->raw_id, "Write the data of chunk ID (the first, as beam_lib) to stdout")
      ->type_name("ID")
      ->excludes(sel);
  chunks->callback([&ctx, opt] { image_chunks(ctx, opt->file, opt->selectors, opt->raw_id); });

  auto* md5 = image->add_subcommand("md5", "The module MD5, as beam_lib:md5/1");
  md5->add_option("FILE", opt->files, "Image files")->required();
  md5->callback([&ctx, opt] { image_md5(ctx, opt->files); });

  auto* strip = image->add_subcommand("strip", "Keep only the chunks the loader needs, as beam_lib:strip/1");
  strip->add_option("FILE", opt->file, "Image file")->required();
  strip->add_option("-o,--output", opt->output, "Where to write the stripped image")->required();
  strip->add_flag("--raw", opt->raw, "Write a plain IFF image, not gzip-wrapped as beam_lib does");
  strip->add_option("--keep", opt->keep, "Also keep this chunk id (repeatable), as beam_lib:strip/2")
      ->type_name("ID")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  strip->callback([&ctx, opt] { image_strip(ctx, opt->file, opt->output, opt->raw, opt->keep); });

  auto* cmp = image->add_subcommand("cmp", "Compare two images as beam_lib:cmp/2 (exit 3 when different)");
  cmp->add_option("A", opt->a, "Image file")->required();
  cmp->add_option("B", opt->b, "Image file")->required();
  cmp->callback([&ctx, opt] { image_cmp(ctx, opt->a, opt->b); });
}

}  // namespace codestore::cli

// `codestore image ...` through the built executable: the acceptance test against Erlang's
// own beam_lib and VM loader over every real image on the machine, damaged images, exit
// codes, and the commands' output.
//
// Erlang's answers come from beam_truth.escript, run at test time; without `escript` the
// tests that need it are skipped.
#include "cli.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/gzip_util.h"
#include "support/corpus.h"
#include "support/files.h"
#include "support/temp_dir.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using codestore::testing::read_text;
using codestore::testing::real_images;
using codestore::testing::TempDir;
using codestore::testing::write_file;

const std::string kCodestore = CODESTORE_BINARY;
const std::string kTruthScript = std::string(CODESTORE_SOURCE_DIR) + "/tests/cli/beam_truth.escript";
const std::string kHello = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images/hello.beam";

// ---- helpers: files, processes, IFF ---------------------------------------------------------

struct Proc {
  int exit_code = -1;  // 128 + signal when killed by one
  bool signaled = false;
  std::string out, err;
};

// Runs argv (argv[0] looked up in PATH) with stdout and stderr captured in files, so that
// large outputs cannot deadlock a pipe.
Proc run(const std::vector<std::string>& argv, const fs::path& scratch) {
  static int counter = 0;
  fs::path out = scratch / fmt::format("run{}.out", counter);
  fs::path err = scratch / fmt::format("run{}.err", counter++);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  Proc r;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = fmt::format("cannot start {}: error {}", argv[0], rc);
    return r;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signaled = true;
    r.exit_code = 128 + WTERMSIG(status);
  }
  r.out = read_text(out);
  r.err = read_text(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

Proc codestore(std::vector<std::string> args, const fs::path& scratch) {
  args.insert(args.begin(), kCodestore);
  return run(args, scratch);
}

bool have_escript() {
  return std::system("command -v escript >/dev/null 2>&1") == 0;
}

std::vector<Json> json_lines(const std::string& text) {
  std::vector<Json> lines;
  std::istringstream s(text);
  std::string line;
  while (std::getline(s, line)) {
    if (line.empty()) continue;
    Json j = Json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line.substr(0, 300);
    lines.push_back(std::move(j));
  }
  return lines;
}

std::string first_image(const std::string& app_glob_prefix, const std::string& name) {
  for (const auto& f : real_images()) {
    if (f.find(app_glob_prefix) != std::string::npos && fs::path(f).filename() == name) return f;
  }
  return "";
}

// Erlang's answers for `files`, keyed by file.
std::map<std::string, Json> erlang_truth(const std::vector<std::string>& files, const fs::path& scratch) {
  fs::path list = scratch / "files.txt";
  std::string text;
  for (const auto& f : files) text += f + "\n";
  write_file(list, text);
  Proc r = run({"escript", kTruthScript, "info", list.string()}, scratch);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, Json> truth;
  for (auto& j : json_lines(r.out)) {
    std::string file = j["file"];  // before the move: Json's operator= takes its argument by value
    truth[file] = std::move(j);
  }
  EXPECT_EQ(truth.size(), files.size()) << r.err;
  return truth;
}

// `codestore --json image info` over `files`, in batches that fit any argv limit.
std::map<std::string, Json> our_info(const std::vector<std::string>& files, const fs::path& scratch,
                                     std::vector<int>* exit_codes = nullptr) {
  std::map<std::string, Json> ours;
  constexpr std::size_t kBatch = 300;
  for (std::size_t i = 0; i < files.size(); i += kBatch) {
    std::vector<std::string> args = {"--json", "image", "info"};
    for (std::size_t k = i; k < std::min(files.size(), i + kBatch); ++k) args.push_back(files[k]);
    Proc r = codestore(args, scratch);
    EXPECT_FALSE(r.signaled) << "codestore crashed (" << r.exit_code << ") on a batch starting at "
                             << files[i] << "\n"
                             << r.err;
    if (exit_codes != nullptr) exit_codes->push_back(r.exit_code);
    for (auto& j : json_lines(r.out)) {
      std::string file = j["file"];
      ours[file] = std::move(j);
    }
  }
  EXPECT_EQ(ours.size(), files.size());
  return ours;
}

// Our chunk objects in the escript's shape: [[id, offset, size], ...].
Json chunks_as_triples(const Json& chunks) {
  if (!chunks.is_array()) return chunks;
  Json out = Json::array();
  for (const auto& c : chunks) out.push_back(Json::array({c["id"], c["offset"], c["size"]}));
  return out;
}

const std::vector<std::string> kFields = {"module", "chunks", "exports",  "imports",   "attributes",
                                          "vsn",    "md5",    "loadable", "all_chunks"};

// beam_lib:all_chunks/1's verdict in the escript's shape: "ok", or {kind, chunk, size, avail}
// of the refusal (null when beam_lib:info/1 fails: `error` says why). Ours is read from
// errors.all_chunks, the chunk flagged `truncated` and the message's "(N bytes left)".
Json our_all_chunks(const Json& j) {
  if (j.contains("error")) return Json();
  if (!j["errors"].contains("all_chunks")) return "ok";
  const Json& e = j["errors"]["all_chunks"];
  Json out = {{"kind", e["kind"]}, {"chunk", e["chunk"]}, {"size", nullptr}, {"avail", nullptr}};
  for (const auto& c : j["chunks"]) {
    if (c["truncated"] == true) out["size"] = c["size"];
  }
  const std::string message = e["message"];
  if (auto end = message.rfind(" bytes left)"); end != std::string::npos) {
    auto start = message.rfind('(', end);
    if (start != std::string::npos) out["avail"] = std::stoull(message.substr(start + 1, end - start - 1));
  }
  return out;
}

Json field_of(const Json& j, const std::string& field, bool ours) {
  if (ours && field == "all_chunks") return our_all_chunks(j);
  if (!j.contains(field)) return Json();
  if (ours && field == "chunks") return chunks_as_triples(j[field]);
  return j[field];
}

std::string shorten(const Json& j) {
  std::string s = j.dump();
  return s.size() > 600 ? s.substr(0, 600) + "..." : s;
}

// Compares field by field and prints every disagreement (the first few in full) and the
// counts. Returns the counts of agreements per field.
std::map<std::string, std::size_t> compare(const std::map<std::string, Json>& truth,
                                           const std::map<std::string, Json>& ours, const std::string& what) {
  std::map<std::string, std::size_t> agree, shown, chunks_still_answer;
  for (const auto& [file, t] : truth) {
    auto it = ours.find(file);
    if (it == ours.end()) {
      ADD_FAILURE() << file << ": no line from codestore";
      continue;
    }
    // When beam_lib:info/1 fails, the CLI's contract is `error` and every beam_lib field
    // null, even where beam_lib:chunks/2 would still answer (it stops reading once it has
    // what it asked for, before trailing garbage).
    const bool info_fails = t["chunks"].is_null();
    for (const auto& field : kFields) {
      Json a = field_of(it->second, field, true), b = field_of(t, field, false);
      if (info_fails && field != "loadable" && !b.is_null()) {
        ++chunks_still_answer[field];
        b = Json();
      }
      if (a == b) {
        ++agree[field];
      } else if (shown[field]++ < 8) {
        ADD_FAILURE() << file << ": " << field << " differs\n  codestore: " << shorten(a)
                      << "\n  erlang:    " << shorten(b)
                      << "\n  codestore errors: " << shorten(it->second["errors"])
                      << (it->second.contains("error") ? " error: " + shorten(it->second["error"]) : "")
                      << "\n  erlang errors:    " << shorten(t["errors"])
                      << "\n  load_error: " << shorten(it->second["load_error"]) << " vs "
                      << shorten(t["load_error"]);
      }
    }
  }
  std::size_t loadable = 0;
  for (const auto& [file, t] : truth) loadable += t["loadable"] == true;
  std::string summary = fmt::format("{} {} images ({} loadable by the VM):", truth.size(), what, loadable);
  for (const auto& field : kFields) {
    summary += fmt::format(" {} agree on {}{}", agree[field], field, field == kFields.back() ? "" : ",");
  }
  if (!chunks_still_answer.empty()) {
    summary += "; where beam_lib:info fails but chunks/2 still answers (we say `error`):";
    for (const auto& [field, n] : chunks_still_answer) summary += fmt::format(" {} {}", field, n);
  }
  std::cout << summary << std::endl;
  ::testing::Test::RecordProperty("summary_" + what, summary);
  return agree;
}

struct RawChunk {
  std::string id, data;
};

// Splits a well-formed image (test input we trust) into its chunks.
std::vector<RawChunk> split_iff(const std::string& b) {
  auto u32 = [&](std::size_t at) {
    return (std::uint32_t(std::uint8_t(b[at])) << 24) | (std::uint32_t(std::uint8_t(b[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(b[at + 2])) << 8) | std::uint32_t(std::uint8_t(b[at + 3]));
  };
  std::vector<RawChunk> chunks;
  std::size_t pos = 12;
  while (pos + 8 <= b.size()) {
    std::uint32_t size = u32(pos + 4);
    chunks.push_back({b.substr(pos, 4), b.substr(pos + 8, size)});
    pos += 8 + ((size + 3) & ~3u);
  }
  return chunks;
}

std::string be32(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

// beam_lib:build_module/1, with knobs to damage the container.
std::string build_iff(const std::vector<RawChunk>& chunks, const std::string& form = "BEAM",
                      bool pad_last = true) {
  std::string body = form;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    body += chunks[i].id + be32(static_cast<std::uint32_t>(chunks[i].data.size())) + chunks[i].data;
    if (pad_last || i + 1 < chunks.size()) body.append((4 - chunks[i].data.size() % 4) % 4, '\0');
  }
  return "FOR1" + be32(static_cast<std::uint32_t>(body.size())) + body;
}

std::string gzip(const std::string& in) {
  const auto out =
      codestore::testing::gzip_bytes({reinterpret_cast<const std::uint8_t*>(in.data()), in.size()});
  return {out.begin(), out.end()};
}

std::string gunzip(const std::string& in) {
  const auto out =
      codestore::testing::gunzip_bytes({reinterpret_cast<const std::uint8_t*>(in.data()), in.size()});
  return out ? std::string(out->begin(), out->end()) : std::string();
}

int find_chunk(const std::vector<RawChunk>& chunks, const std::string& id) {
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

// Damaged and unusual variants of one good image, each in a directory named after the
// damage (the file keeps its name, so the loader is asked for the right module).
std::vector<std::string> damaged_variants(const std::string& source, const fs::path& dir) {
  const std::string good = read_text(source);
  const std::string name = fs::path(source).filename().string();
  const auto chunks = split_iff(good);
  std::vector<std::string> files;
  auto add = [&](const std::string& variant, const std::string& bytes) {
    fs::path p = dir / fs::path(source).stem() / variant / name;
    write_file(p, bytes);
    files.push_back(p.string());
  };
  auto with = [&](const std::string& id, auto change) {
    auto cs = chunks;
    int i = find_chunk(cs, id);
    if (i < 0) return std::optional<std::vector<RawChunk>>();
    change(cs, static_cast<std::size_t>(i));
    return std::optional<std::vector<RawChunk>>(cs);
  };

  add("empty", "");
  add("text", "-module(hello).\n");
  add("header_cut", good.substr(0, 11));
  add("header_only", good.substr(0, 12));
  add("chunk_header_cut", good.substr(0, 17));
  add("code_cut",
      good.substr(0, chunks.size() > 1 ? 12 + 8 + ((chunks[0].data.size() + 3) & ~3u) + 8 + 10 : 40));
  add("half", good.substr(0, good.size() / 2));
  add("form_type", build_iff(chunks, "BEAX"));
  add("form_len_too_big", good.substr(0, 4) + be32(static_cast<std::uint32_t>(good.size())) + good.substr(8));
  add("form_len_too_small",
      good.substr(0, 4) + be32(static_cast<std::uint32_t>(good.size() - 8 - 8)) + good.substr(8));
  add("trailing_3", good + std::string("\x01\x02\x03", 3));
  add("trailing_junk_chunk", good + "JUNK" + be32(4) + "abcd");
  add("gzip", gzip(good));
  add("gzip_junk", gzip("not an image at all"));
  add("reversed", build_iff(std::vector<RawChunk>(chunks.rbegin(), chunks.rend())));
  add("huge_chunk_size", [&] {
    std::string b = good;
    std::size_t pos = 12;  // the first chunk's size field says 1 GB
    b.replace(pos + 4, 4, be32(1u << 30));
    return b;
  }());
  {
    // A chunk whose declared size runs past the end of the file by one byte: beam_lib:info/1
    // lists it, md5/1 never reads it (unless it is an md5 chunk), all_chunks/1 refuses the
    // file (chunk_too_big). The last chunk, and one in the middle that md5, exports and
    // imports do not read (everything after it is then swallowed by its declared size).
    std::vector<std::size_t> header_at;  // of each chunk
    for (std::size_t pos = 12, i = 0; i < chunks.size(); ++i) {
      header_at.push_back(pos);
      pos += 8 + ((chunks[i].data.size() + 3) & ~std::size_t{3});
    }
    auto past_end = [&](const std::string& variant, std::size_t i) {
      std::string b = good;
      const std::size_t data_at = header_at[i] + 8;
      b.replace(header_at[i] + 4, 4, be32(static_cast<std::uint32_t>(good.size() - data_at + 1)));
      add(variant, b);
    };
    past_end("last_chunk_too_big", chunks.size() - 1);
    for (const char* id : {"Dbgi", "CInf", "Attr"}) {
      if (int i = find_chunk(chunks, id); i > 0 && std::size_t(i) + 1 < chunks.size()) {
        past_end(fmt::format("middle_{}_too_big", id), static_cast<std::size_t>(i));
      }
    }
    // The last chunk's size grown into its own padding: still within the file.
    if (chunks.back().data.size() % 4 != 0) {
      std::string b = good;
      b.replace(header_at.back() + 4, 4, be32(static_cast<std::uint32_t>(chunks.back().data.size() + 1)));
      add("last_chunk_into_padding", b);
    }
  }
  {
    // The last chunk's size made odd so its padding is missing (the file ends 1..3 bytes short).
    auto cs = chunks;
    cs.back().data += "x";
    if (cs.back().data.size() % 4 == 0) cs.back().data += "x";
    add("last_unpadded", build_iff(cs, "BEAM", false));
  }
  if (auto cs = with("AtU8", [](auto& c, std::size_t i) { c[i].id = "XtU8"; }))
    add("no_atoms", build_iff(*cs));
  if (auto cs = with("StrT", [](auto& c, std::size_t i) { c.erase(c.begin() + static_cast<long>(i)); })) {
    add("no_strt", build_iff(*cs));
  }
  if (auto cs = with("Code", [](auto& c, std::size_t i) { c.erase(c.begin() + static_cast<long>(i)); })) {
    add("no_code", build_iff(*cs));
  }
  if (auto cs = with("Attr", [](auto& c, std::size_t i) { c.erase(c.begin() + static_cast<long>(i)); })) {
    add("no_attr", build_iff(*cs));
  }
  if (auto cs =
          with("Attr", [](auto& c, std::size_t i) { c[i].data = std::string("\x83\xff\x00garbage", 10); })) {
    add("attr_garbage", build_iff(*cs));
  }
  if (auto cs = with("Attr", [](auto& c, std::size_t i) {
        c[i].data = std::string("\x83\x6a", 2);  // [] : no vsn attribute at all
      })) {
    add("attr_empty", build_iff(*cs));
  }
  // What the loader checks in the optional chunks, and what it leaves alone.
  struct Replace {
    const char* variant;
    const char* id;
    std::string data;
  };
  const std::vector<Replace> replacements = {
      {"attr_not_a_list", "Attr",
       std::string("\x83\x64\x00\x03"
                   "foo",
                   7)},
      {"attr_trailing", "Attr", std::string("\x83\x6a\x01\x02\x03", 5)},
      {"attr_size_0", "Attr", ""},
      {"cinf_garbage", "CInf", std::string("\x83\xff\x00\x01\x02", 5)},
      {"cinf_short", "CInf", std::string("\x01\x02\x03", 3)},
      {"cinf_size_0", "CInf", ""},
      {"meta_garbage", "Meta", std::string("\x83\xff", 2)},
      {"dbgi_garbage", "Dbgi", std::string("\x83\xff", 2)},
      {"line_garbage", "Line", std::string("\x00\x00\x00\x00\x01\x02", 6)},
      {"line_size_0", "Line", ""},
      {"type_garbage", "Type", std::string("\x01\x02\x03", 3)},
      {"type_size_0", "Type", ""},
      {"loct_garbage", "LocT", std::string("\x01\x02\x03", 3)},
      {"funt_garbage", "FunT", std::string("\x01\x02\x03", 3)},
      {"strt_size_0", "StrT", ""},
  };
  for (const auto& r : replacements) {
    if (auto cs = with(r.id, [&](auto& c, std::size_t i) { c[i].data = r.data; }))
      add(r.variant, build_iff(*cs));
  }
  // Counts and headers that the loader checks and beam_lib ignores (or the other way round).
  struct Patch {
    const char* variant;
    const char* id;
    std::size_t at;  // byte offset in the chunk's data; SIZE_MAX = cut the last byte instead
    std::uint32_t value;
  };
  const std::vector<Patch> patches = {
      {"atom_count_plus_1", "AtU8", 0, 0},       // value 0: add one to the u32 there
      {"atom_count_0", "AtU8", 0, 0xFFFFFFFFu},  // value ~0: set to zero
      {"impt_count_plus_1", "ImpT", 0, 0},         {"expt_count_plus_1", "ExpT", 0, 0},
      {"funt_count_plus_1", "FunT", 0, 0},         {"litt_size_plus_1", "LitT", 0, 0},
      {"code_header_len_plus_4", "Code", 0, 0},    {"code_labels_plus_1000", "Code", 12, 1000},
      {"code_functions_plus_1", "Code", 16, 0},    {"code_cut_last_byte", "Code", SIZE_MAX, 0},
      {"line_cut_last_byte", "Line", SIZE_MAX, 0}, {"type_cut_last_byte", "Type", SIZE_MAX, 0},
  };
  auto get32 = [](const std::string& d, std::size_t at) {
    return (std::uint32_t(std::uint8_t(d[at])) << 24) | (std::uint32_t(std::uint8_t(d[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(d[at + 2])) << 8) | std::uint32_t(std::uint8_t(d[at + 3]));
  };
  for (const auto& p : patches) {
    auto cs = with(p.id, [&](auto& c, std::size_t i) {
      std::string& d = c[i].data;
      if (p.at == SIZE_MAX) {
        if (!d.empty()) d.pop_back();
      } else if (d.size() >= p.at + 4) {
        std::uint32_t v = p.value == 0             ? get32(d, p.at) + 1
                          : p.value == 0xFFFFFFFFu ? 0
                                                   : get32(d, p.at) + p.value;
        d.replace(p.at, 4, be32(v));
      }
    });
    if (cs) add(p.variant, build_iff(*cs));
  }
  if (auto cs = with("ExpT", [](auto& c, std::size_t i) { c[i].data.replace(4, 4, be32(0xFFFF)); })) {
    add("export_atom_out_of_range", build_iff(*cs));
  }
  if (auto cs = with("ExpT", [](auto& c, std::size_t i) { c[i].data.resize(c[i].data.size() - 5); })) {
    add("exports_cut", build_iff(*cs));
  }
  if (auto cs = with("ImpT", [](auto& c, std::size_t i) { c[i].data.replace(4, 4, be32(0xFFFF)); })) {
    add("import_atom_out_of_range", build_iff(*cs));
  }
  if (auto cs = with("ExpT", [](auto& c, std::size_t i) { c.push_back(c[i]); }))
    add("duplicate_expt", build_iff(*cs));
  if (auto cs = with("AtU8", [](auto& c, std::size_t i) {
        RawChunk other = c[i];
        // The first atom (the module name) renamed "xyz".
        std::size_t len = std::uint8_t(c[i].data[4]);
        other.data = c[i].data.substr(0, 4) + "\x03xyz" + c[i].data.substr(5 + len);
        c.push_back(other);
      })) {
    add("duplicate_atoms", build_iff(*cs));
  }
  if (auto cs =
          with("LitT", [](auto& c, std::size_t i) { c[i].data.replace(4, 2, std::string("\0\0", 2)); })) {
    add("litt_bad_zlib", build_iff(*cs));
  }
  if (auto cs = with("Code", [](auto& c, std::size_t i) {
        std::uint32_t header = (std::uint32_t(std::uint8_t(c[i].data[0])) << 24) |
                               (std::uint32_t(std::uint8_t(c[i].data[1])) << 16) |
                               (std::uint32_t(std::uint8_t(c[i].data[2])) << 8) | std::uint8_t(c[i].data[3]);
        c[i].data[4 + header] = '\xFE';  // no such opcode
      })) {
    add("bad_opcode", build_iff(*cs));
  }
  if (auto cs = with("Code", [](auto& c, std::size_t i) { c[i].data.replace(4, 4, be32(7)); })) {
    add("code_format", build_iff(*cs));
  }
  return files;
}

// ---- the acceptance test --------------------------------------------------------------------

// Installed images may be gzip-wrapped (as Debian's erlang-idna installs them): gzip-wrapped
// copies of every 20th are compared too, so that every machine tests what such a machine sees.
TEST(ImageInfoVsErlang, EveryRealImageAgreesWithBeamLibAndTheLoader) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed: nothing to compare against";
  auto files = real_images();
  if (files.empty()) GTEST_SKIP() << "no .beam files under /usr/lib/erlang/lib or /usr/lib/elixir/lib";
  TempDir tmp;
  const auto gzipped = codestore::testing::gzipped_copies(files, 20, tmp.path() / "gzip");
  files.insert(files.end(), gzipped.begin(), gzipped.end());
  std::vector<int> exit_codes;
  auto ours = our_info(files, tmp.path(), &exit_codes);
  for (int code : exit_codes) EXPECT_EQ(code, 0);
  auto truth = erlang_truth(files, tmp.path());
  auto agree = compare(truth, ours, "real");
  for (const auto& field : kFields) EXPECT_EQ(agree[field], files.size()) << field;
  // Every real image reads cleanly: no field may have failed.
  std::size_t wrapped = 0;
  for (const auto& [file, j] : ours) {
    EXPECT_TRUE(j["errors"].empty()) << file << ": " << j["errors"].dump();
    EXPECT_FALSE(j.contains("error")) << file;
    EXPECT_EQ(j["gzip"], read_text(file).rfind("\x1f\x8b", 0) == 0) << file;
    wrapped += j["gzip"] == true;
  }
  EXPECT_GE(wrapped, gzipped.size());
}

TEST(ImageInfoVsErlang, DamagedImagesAgreeWithBeamLibAndTheLoader) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed: nothing to compare against";
  TempDir tmp;
  std::vector<std::string> files = damaged_variants(kHello, tmp.path() / "v");
  if (std::string lists = first_image("/stdlib-", "lists.beam"); !lists.empty()) {
    auto more = damaged_variants(lists, tmp.path() / "v");
    files.insert(files.end(), more.begin(), more.end());
  }
  auto ours = our_info(files, tmp.path());
  auto truth = erlang_truth(files, tmp.path());
  auto agree = compare(truth, ours, "damaged");
  for (const auto& field : kFields) EXPECT_EQ(agree[field], files.size()) << field;
  std::size_t too_big = 0;
  for (const auto& [file, j] : ours) {
    // beam_lib:info/1 fails exactly when we report `error`, and then every field is null.
    bool info_fails = truth[file]["chunks"].is_null();
    EXPECT_EQ(j.contains("error"), info_fails) << file << ": " << j.dump().substr(0, 400);
    if (j.contains("error")) {
      EXPECT_TRUE(j["error"]["kind"].is_string()) << file;
      EXPECT_TRUE(j["error"]["message"].is_string()) << file;
      for (const char* f : {"module", "chunks", "exports", "imports", "attributes", "vsn", "md5"}) {
        EXPECT_TRUE(j[f].is_null()) << file << ": " << f;
      }
    }
    // A null field says why.
    for (const char* f : {"module", "exports", "imports", "attributes", "vsn", "md5"}) {
      if (j[f].is_null() && !j.contains("error")) {
        EXPECT_TRUE(j["errors"].contains(f)) << file << ": " << f;
      }
    }
    EXPECT_EQ(j["load_error"].is_null(), j["loadable"] == true) << file;
    // beam_lib:all_chunks/1 refuses a chunk that runs past the end even where info/1 and
    // md5/1 answer: both outputs name that chunk and its offset (beam_lib's Pos).
    const Json& refusal = truth[file]["all_chunks"];
    if (!info_fails && refusal.is_object() && refusal["kind"] == "chunk_too_big") {
      ++too_big;
      const Json& last = truth[file]["chunks"].back();  // [id, pos, size]: the scan stops there
      ASSERT_EQ(last[0], refusal["chunk"]) << file;
      const std::string id = last[0], at = fmt::format("{} at offset {}", id, last[1].get<std::uint64_t>());
      EXPECT_NE(j["errors"]["all_chunks"]["message"].get<std::string>().find("chunk " + at),
                std::string::npos)
          << file << ": " << j["errors"].dump();
      EXPECT_EQ(j["chunks"].back()["truncated"], true) << file;
      Proc human = codestore({"image", "info", file}, tmp.path());
      EXPECT_EQ(human.exit_code, 0) << human.err;
      EXPECT_NE(human.out.find("chunk_too_big " + at), std::string::npos) << human.out;
      EXPECT_NE(
          human.out.find("TRUNCATED: " + std::to_string(refusal["avail"].get<std::uint64_t>()) + " of " +
                         std::to_string(refusal["size"].get<std::uint64_t>()) + " bytes present"),
          std::string::npos)
          << human.out;
      // beam_lib:chunks(F, [Id]) refuses it too: --raw writes no half chunk.
      Proc raw = codestore({"image", "chunks", file, "--raw", id}, tmp.path());
      EXPECT_EQ(raw.exit_code, 1) << file;
      EXPECT_TRUE(raw.out.empty()) << file;
      EXPECT_NE(raw.err.find("chunk " + at), std::string::npos) << raw.err;
    } else if (!info_fails) {
      for (const auto& c : j["chunks"]) EXPECT_EQ(c["truncated"], false) << file << ": " << c.dump();
    }
  }
  // hello.beam's and lists.beam's last chunk, and their Dbgi, CInf and Attr in the middle.
  EXPECT_GE(too_big, 8u);
}

// ---- exit codes -----------------------------------------------------------------------------

TEST(ImageCli, UsageErrorsExit2) {
  TempDir tmp;
  EXPECT_EQ(codestore({"image"}, tmp.path()).exit_code, 2);
  EXPECT_EQ(codestore({"image", "info"}, tmp.path()).exit_code, 2);
  EXPECT_EQ(codestore({"image", "bogus", kHello}, tmp.path()).exit_code, 2);
  EXPECT_EQ(codestore({"image", "strip", kHello}, tmp.path()).exit_code, 2);  // no -o
  EXPECT_EQ(codestore({"image", "cmp", kHello}, tmp.path()).exit_code, 2);
  Proc r = codestore({"image", "chunks", kHello, "no_such_name"}, tmp.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no_such_name"), std::string::npos) << r.err;
  EXPECT_EQ(codestore({"image", "chunks", kHello, "--raw", "Code", "ExpT"}, tmp.path()).exit_code, 2);
  EXPECT_EQ(codestore({"image", "chunks", kHello, "--raw", "Co"}, tmp.path()).exit_code, 2);
  EXPECT_EQ(codestore({"image", "info", "--help"}, tmp.path()).exit_code, 0);
}

TEST(ImageCli, AnUnreadableInputAmongSeveralExits1AndTheOthersStillPrint) {
  TempDir tmp;
  std::string missing = (tmp.path() / "missing.beam").string();
  write_file(tmp.path() / "junk.beam", "this is not an image");
  std::string junk = (tmp.path() / "junk.beam").string();

  Proc human = codestore({"image", "info", kHello, missing, junk, kHello}, tmp.path());
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_EQ(std::count(human.out.begin(), human.out.end(), '\n') > 10, true) << human.out;
  EXPECT_NE(human.out.find("hello"), std::string::npos);
  EXPECT_NE(human.err.find("missing.beam"), std::string::npos) << human.err;
  EXPECT_NE(human.err.find("junk.beam"), std::string::npos) << human.err;

  Proc json = codestore({"--json", "image", "info", kHello, missing, junk, tmp.path().string()}, tmp.path());
  EXPECT_EQ(json.exit_code, 1);
  auto lines = json_lines(json.out);
  ASSERT_EQ(lines.size(), 4u) << json.out;
  // A directory is unreadable, as file:read_file/1 says (eisdir), not a too-big image.
  EXPECT_EQ(lines[3]["error"]["kind"], std::string("file_error")) << lines[3].dump();
  EXPECT_EQ(lines[0]["module"], "hello");
  EXPECT_FALSE(lines[0].contains("error"));
  EXPECT_EQ(lines[1]["file"], missing);
  EXPECT_EQ(lines[1]["error"]["kind"], "file_error");
  EXPECT_EQ(lines[2]["error"]["kind"], "not_a_beam_file");
  for (std::size_t i = 1; i < 4; ++i) {
    for (const char* f : {"module", "chunks", "exports", "imports", "attributes", "vsn", "md5"}) {
      EXPECT_TRUE(lines[i][f].is_null()) << f;
    }
    EXPECT_EQ(lines[i]["loadable"], false);
  }

  Proc md5 = codestore({"image", "md5", kHello, missing}, tmp.path());
  EXPECT_EQ(md5.exit_code, 1);
  EXPECT_NE(md5.out.find("hello"), std::string::npos);
}

// beam_lib:cmp/2's answer for two files, as its reason printed with ~tw ("ok" when equal).
std::string erlang_cmp(const std::string& a, const std::string& b, const fs::path& scratch) {
  Proc r = run({"escript", kTruthScript, "cmp", a, b}, scratch);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

TEST(ImageCli, CmpExits0WhenEqualAnd3WithBeamLibsReasonWhenDifferent) {
  std::string lists = first_image("/stdlib-", "lists.beam");
  std::string maps = first_image("/stdlib-", "maps.beam");
  if (lists.empty() || maps.empty()) GTEST_SKIP() << "no stdlib images installed";
  TempDir tmp;
  const std::string good = read_text(lists);
  auto chunks = split_iff(good);

  std::string copy = (tmp.path() / "copy" / "lists.beam").string();
  write_file(copy, good);
  auto cinf = chunks;  // only CInf differs: beam_lib ignores it
  if (int i = find_chunk(cinf, "CInf"); i >= 0) cinf[static_cast<std::size_t>(i)].data += "x";
  std::string other_cinf = (tmp.path() / "cinf" / "lists.beam").string();
  write_file(other_cinf, build_iff(cinf));
  auto code = chunks;
  code[static_cast<std::size_t>(find_chunk(code, "Code"))].data.back() ^= 1;
  std::string other_code = (tmp.path() / "code" / "lists.beam").string();
  write_file(other_code, build_iff(code));
  auto fewer = chunks;
  fewer.erase(fewer.begin() + find_chunk(fewer, "Dbgi"));
  std::string fewer_chunks = (tmp.path() / "fewer" / "lists.beam").string();
  write_file(fewer_chunks, build_iff(fewer));

  struct Case {
    std::string a, b;
    int exit_code;
    std::string kind, chunk;
  };
  const std::vector<Case> cases = {
      {lists, copy, 0, "", ""},
      {lists, other_cinf, 0, "", ""},
      {lists, other_code, 3, "chunks_different", "Code"},
      {lists, fewer_chunks, 3, "different_chunks", ""},
      {lists, maps, 3, "modules_different", ""},
  };
  bool erl = have_escript();
  for (const auto& c : cases) {
    Proc human = codestore({"image", "cmp", c.a, c.b}, tmp.path());
    EXPECT_EQ(human.exit_code, c.exit_code) << c.a << " " << c.b << "\n" << human.out << human.err;
    Proc json = codestore({"--json", "image", "cmp", c.a, c.b}, tmp.path());
    EXPECT_EQ(json.exit_code, c.exit_code);
    auto lines = json_lines(json.out);
    ASSERT_EQ(lines.size(), 1u) << json.out;
    EXPECT_EQ(lines[0]["equal"], c.exit_code == 0) << json.out;
    if (c.exit_code == 3) {
      EXPECT_EQ(lines[0]["difference"]["kind"], c.kind) << json.out;
      if (!c.chunk.empty()) {
        EXPECT_EQ(lines[0]["difference"]["chunk"], c.chunk) << json.out;
      }
      EXPECT_NE(human.out.find(c.kind), std::string::npos) << human.out;
    }
    if (erl) {
      std::string e = erlang_cmp(c.a, c.b, tmp.path());
      if (c.exit_code == 0) {
        EXPECT_EQ(e, "ok");
      } else {
        EXPECT_EQ(e.rfind(fmt::format("{{{}", c.kind), 0) == 0 || e == c.kind, true) << "erlang says " << e;
        if (!c.chunk.empty()) {  // ~tw prints the id as a list of bytes
          std::vector<int> codes(c.chunk.begin(), c.chunk.end());
          EXPECT_NE(e.find(fmt::format("[{}]", fmt::join(codes, ","))), std::string::npos) << e;
        }
      }
    }
  }
  Proc unreadable = codestore({"image", "cmp", lists, (tmp.path() / "nope.beam").string()}, tmp.path());
  EXPECT_EQ(unreadable.exit_code, 1);
}

// ---- output ---------------------------------------------------------------------------------

TEST(ImageCli, HumanInfoShowsTheModuleItsMd5AndAnAlignedChunkTable) {
  TempDir tmp;
  Proc r = codestore({"image", "info", kHello}, tmp.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Proc j = codestore({"--json", "image", "info", kHello}, tmp.path());
  auto info = json_lines(j.out).at(0);
  EXPECT_NE(r.out.find("module      hello"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(info["md5"].get<std::string>()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loadable    yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(info["vsn"].get<std::string>()), std::string::npos) << r.out;
  // One row per chunk, the offsets right-aligned in one column.
  std::istringstream s(r.out);
  std::string line;
  std::vector<std::size_t> offset_ends;
  for (const auto& c : info["chunks"]) {
    std::string id = c["id"], off = std::to_string(c["offset"].get<std::uint64_t>());
    bool found = false;
    std::istringstream again(r.out);
    while (std::getline(again, line)) {
      if (line.rfind("    " + id, 0) == 0) {
        auto at = line.find(" " + off + " ");
        ASSERT_NE(at, std::string::npos) << line;
        offset_ends.push_back(at + 1 + off.size());
        found = true;
        break;
      }
    }
    EXPECT_TRUE(found) << id << " not in\n" << r.out;
  }
  ASSERT_FALSE(offset_ends.empty());
  for (auto e : offset_ends) EXPECT_EQ(e, offset_ends[0]) << r.out;

  Proc chunks = codestore({"image", "chunks", kHello, "exports", "ExpT"}, tmp.path());
  ASSERT_EQ(chunks.exit_code, 0) << chunks.err;
  EXPECT_NE(chunks.out.find("exports: ["), std::string::npos) << chunks.out;
  EXPECT_NE(chunks.out.find("{module_info,0}"), std::string::npos) << chunks.out;
  EXPECT_NE(chunks.out.find("ExpT"), std::string::npos) << chunks.out;

  Proc md5 = codestore({"image", "md5", kHello}, tmp.path());
  ASSERT_EQ(md5.exit_code, 0);
  EXPECT_EQ(md5.out, fmt::format("{}  hello  {}\n", info["md5"].get<std::string>(), kHello));

  Proc missing = codestore({"image", "chunks", kHello, "Docs"}, tmp.path());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("Docs"), std::string::npos) << missing.err;
}

TEST(ImageCli, ChunksMatchesBeamLibTermsForEveryName) {
  if (!have_escript()) GTEST_SKIP() << "escript (Erlang/OTP) is not installed";
  TempDir tmp;
  const std::vector<std::string> names = {"atoms",          "exports",         "labeled_exports",
                                          "imports",        "indexed_imports", "locals",
                                          "labeled_locals", "attributes",      "compile_info"};
  for (const std::string& file : {kHello, first_image("/stdlib-", "lists.beam")}) {
    if (file.empty()) continue;
    std::vector<std::string> args = {"escript", kTruthScript, "terms", file};
    args.insert(args.end(), names.begin(), names.end());
    Proc erl = run(args, tmp.path());
    ASSERT_EQ(erl.exit_code, 0) << erl.err;
    Json theirs = Json::parse(erl.out);
    args = {"--json", "image", "chunks", file};
    args.insert(args.end(), names.begin(), names.end());
    Proc ours = codestore(args, tmp.path());
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    Json terms = json_lines(ours.out).at(0)["terms"];
    for (const auto& name : names) EXPECT_EQ(terms[name], theirs[name]) << file << " " << name;
  }
}

TEST(ImageCli, RawChunkBytesAreTheFilesBytesAtThatOffset) {
  TempDir tmp;
  std::string lists = first_image("/stdlib-", "lists.beam");
  for (const std::string& file : {kHello, lists}) {
    if (file.empty()) continue;
    const std::string bytes = read_text(file);
    Proc j = codestore({"--json", "image", "chunks", file}, tmp.path());
    ASSERT_EQ(j.exit_code, 0) << j.err;
    auto table = json_lines(j.out).at(0)["chunks"];
    ASSERT_FALSE(table.empty());
    for (const auto& c : table) {
      std::string id = c["id"];
      Proc raw = codestore({"image", "chunks", file, "--raw", id}, tmp.path());
      ASSERT_EQ(raw.exit_code, 0) << raw.err;
      EXPECT_EQ(raw.out, bytes.substr(c["offset"].get<std::size_t>(), c["size"].get<std::size_t>()))
          << file << " " << id;
    }
  }
}

TEST(ImageCli, StripWritesGzipThatBeamLibFindsEqualToItsOwnStrip) {
  std::string lists = first_image("/stdlib-", "lists.beam");
  if (lists.empty()) GTEST_SKIP() << "no stdlib images installed";
  TempDir tmp;
  for (const std::string& file : {kHello, lists}) {
    std::string ours = (tmp.path() / "ours" / fs::path(file).filename()).string();
    std::string ours_raw = (tmp.path() / "raw" / fs::path(file).filename()).string();
    fs::create_directories(fs::path(ours).parent_path());
    fs::create_directories(fs::path(ours_raw).parent_path());
    Proc r = codestore({"image", "strip", file, "-o", ours}, tmp.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("(gzip)"), std::string::npos) << r.out;
    Proc raw = codestore({"--json", "image", "strip", file, "-o", ours_raw, "--raw"}, tmp.path());
    ASSERT_EQ(raw.exit_code, 0) << raw.err;
    auto summary = json_lines(raw.out).at(0);
    EXPECT_EQ(summary["gzip"], false);

    const std::string gz = read_text(ours);
    ASSERT_GE(gz.size(), 2u);
    EXPECT_EQ(std::uint8_t(gz[0]), 0x1f);
    EXPECT_EQ(std::uint8_t(gz[1]), 0x8b);
    const std::string plain = read_text(ours_raw);
    EXPECT_EQ(plain.substr(0, 4), "FOR1");
    EXPECT_EQ(gunzip(gz), plain);  // the same image, wrapped or not

    // What remains is what beam_lib:strip/1 keeps, in its order, and our md5 is unchanged.
    Proc before = codestore({"--json", "image", "info", file}, tmp.path());
    Proc after = codestore({"--json", "image", "info", ours}, tmp.path());
    auto b = json_lines(before.out).at(0), a = json_lines(after.out).at(0);
    EXPECT_EQ(a["md5"], b["md5"]);
    EXPECT_EQ(a["loadable"], true) << a["load_error"];
    EXPECT_TRUE(a["attributes"].is_null());
    EXPECT_EQ(a["errors"]["attributes"]["kind"], "missing_chunk") << a.dump();
    EXPECT_EQ(a["errors"]["vsn"]["kind"], "missing_chunk") << a.dump();

    if (have_escript()) {
      std::string theirs = (tmp.path() / "theirs" / fs::path(file).filename()).string();
      fs::create_directories(fs::path(theirs).parent_path());
      Proc s = run({"escript", kTruthScript, "strip", file, theirs}, tmp.path());
      ASSERT_EQ(s.exit_code, 0) << s.err;
      EXPECT_EQ(erlang_cmp(ours, theirs, tmp.path()), "ok");
      EXPECT_EQ(erlang_cmp(ours_raw, theirs, tmp.path()), "ok");
      EXPECT_EQ(gunzip(read_text(theirs)), plain) << "stripped image differs byte for byte from beam_lib's";
      Proc cmp = codestore({"image", "cmp", ours, theirs}, tmp.path());
      EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
    }
  }
}

TEST(ImageCli, DamagedInputsNeverCrashAndReportAnErrorObject) {
  TempDir tmp;
  auto files = damaged_variants(kHello, tmp.path() / "v");
  for (const auto& f : files) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--json", "image", "info", f},
          {"image", "info", f},
          {"image", "md5", f},
          {"image", "chunks", f},
          {"image", "chunks", f, "attributes", "exports", "imports", "atoms", "locals"},
          {"image", "strip", f, "-o", (tmp.path() / "stripped.beam").string()},
          {"image", "cmp", f, kHello}}) {
      // In-process: a crash or a sanitizer finding here ends the whole test binary, which
      // fails as surely as a crashed child and costs no process start per command (the
      // starts were most of this test's two minutes under ASan). The executable itself
      // runs once per variant below.
      std::istringstream in;
      std::ostringstream out, err;
      int code = codestore::cli::run(args, in, out, err);
      EXPECT_TRUE(code == 0 || code == 1 || code == 3)
          << code << ": " << fmt::format("{}", fmt::join(args, " ")) << "\n"
          << err.str();
    }
    Proc r = codestore({"--json", "image", "info", f}, tmp.path());
    EXPECT_FALSE(r.signaled) << "crashed: image info " << f << "\n" << r.err;
    // Under the sanitizers a finding exits 1, which is also our "unreadable": look at stderr.
    EXPECT_EQ(r.err.find("Sanitizer"), std::string::npos) << f << "\n" << r.err;
    EXPECT_EQ(r.err.find("runtime error:"), std::string::npos) << f << "\n" << r.err;
    auto lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << f;
    if (lines[0].contains("error")) {
      EXPECT_EQ(r.exit_code, 1) << f;
      EXPECT_FALSE(lines[0]["error"]["message"].get<std::string>().empty()) << f;
    }
  }
}

}  // namespace

// The fuzz entry points, one function per target. libFuzzer's LLVMFuzzerTestOneInput
// (fuzz/*_fuzzer.cpp) and the regression replay test (tests/reliability/
// fuzz_regression_test.cpp) call the same functions, so a crash found by fuzzing and
// kept under fuzz/regressions/<target>/ is replayed by the normal suite, with g++.
//
// An entry point returns normally for every input: any error must come back as a value.
// A broken invariant (a round trip that does not hold) calls fuzz_fail(), which aborts so
// that both libFuzzer and the test see it.
#pragma once

#include <codestore/archive.h>
#include <codestore/image.h>
#include <codestore/term.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "etf/consult.h"
#include "otp/otp_files.h"

namespace codestore::fuzz {

[[noreturn]] inline void fuzz_fail(std::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// Small limits so that a few bytes cannot make the fuzzer spend its time (or memory)
// inflating: the limits themselves are what tests/reliability/limits_test.cpp checks.
inline image::Limits fuzz_image_limits() {
  image::Limits l;
  l.max_image_bytes = 1u << 20;
  l.max_inflated_bytes = 4u << 20;
  l.max_atoms = 1u << 16;
  l.max_chunks = 1024;
  return l;
}

// Every view of one parsed image; results are ignored, only crashes and UB count.
inline void exercise_image(const image::Image& img) {
  (void)img.file();
  (void)img.form_type();
  (void)img.gzipped();
  for (const image::Chunk& c : img.chunks()) {
    auto d = img.data(c);
    (void)d;
    (void)img.find(c.id_view());
  }
  (void)img.module();
  (void)img.atoms();
  (void)img.exports();
  (void)img.imports();
  (void)img.locals();
  if (auto a = img.attributes()) (void)etf::format_w(*a);
  if (auto c = img.compile_info()) (void)etf::format_w(*c);
  if (auto v = img.vsn()) (void)etf::format_w(*v);
  auto md5 = img.md5();
  if (md5) (void)image::md5_hex(*md5);
  for (std::string_view name :
       {"atoms", "exports", "labeled_exports", "imports", "indexed_imports", "locals", "labeled_locals",
        "attributes", "compile_info", "debug_info", "abstract_code", "no_such_chunk"}) {
    if (auto t = img.chunk_term(name)) (void)etf::format_w(*t);
  }
  (void)img.check_loadable();
  if (auto same = image::cmp(img, img); !same && img.module() && md5) {
    // cmp of an image with itself can fail only when a view it needs fails.
  }
  if (auto stripped = image::strip(img, {}, /*raw=*/true)) {
    // A stripped image is itself an image; it must parse without crashing.
    auto again = image::Image::parse(*stripped, img.strictness(), "<stripped>", fuzz_image_limits());
    if (again) (void)again->md5();
  }
  (void)image::strip(img, {"Attr"}, /*raw=*/false);
  // Rebuild from the chunks: build_module must not crash on whatever ids we found.
  std::vector<image::ChunkData> chunks;
  for (const image::Chunk& c : img.chunks()) chunks.push_back({std::string(c.id_view()), img.data(c)});
  (void)image::build_module(chunks);
}

// Target "image": the reader at both strictness levels, with and without any_form.
inline void fuzz_image(const std::uint8_t* data, std::size_t size) {
  image::Bytes bytes(data, size);
  const image::Limits limits = fuzz_image_limits();
  for (auto strictness : {image::Strictness::kLenient, image::Strictness::kStrict}) {
    auto img = image::Image::parse(bytes, strictness, "fuzz.beam", limits);
    if (img) {
      exercise_image(*img);
    } else {
      (void)img.error().to_string();
      (void)image::kind_of(img.error());
      (void)image::error_detail(img.error());
    }
  }
  if (auto any = image::Image::parse(bytes, image::Strictness::kLenient, "", limits, /*any_form=*/true)) {
    (void)any->chunks();
    (void)any->module();
  }
}

// Target "term": decode; when it decodes, format it, encode it with every minor version,
// and check that the default encoding decodes back to an equal term.
inline void fuzz_term(const std::uint8_t* data, std::size_t size) {
  etf::DecodeLimits limits;
  limits.max_depth = 2000;
  limits.max_terms = 1u << 18;
  limits.max_inflated_bytes = 4u << 20;
  auto t = etf::decode(std::span<const std::uint8_t>(data, size), limits);
  if (!t) {
    (void)t.error().to_string();
    return;
  }
  (void)etf::format_w(*t);
  for (int minor : {0, 1}) {
    etf::EncodeOptions o;
    o.minor_version = minor;
    (void)etf::encode(*t, o);
  }
  const std::vector<std::uint8_t> enc = etf::encode(*t);
  auto back = etf::decode(enc, limits);
  if (!back) fuzz_fail("encode(decode(B)) does not decode: " + back.error().to_string());
  if (!(*back == *t)) fuzz_fail("decode(encode(T)) != T for T = " + etf::format_w(*t));
  // A second encoding is stable: encode is a function of the term.
  if (etf::encode(*back) != enc) fuzz_fail("encode(decode(encode(T))) != encode(T)");
}

// Target "consult": Erlang term text (file:consult/1's subset), with small limits; what
// reads is encoded and decoded back to an equal term, and goes through the OTP file
// readers (.app per term, .rel and .appup over the whole file), which must answer.
inline void fuzz_consult(const std::uint8_t* data, std::size_t size) {
  etf::ConsultLimits limits;
  limits.max_bytes = 1u << 20;
  limits.max_depth = 200;
  limits.max_terms = 1u << 16;
  limits.max_binary_bytes = 1u << 20;
  auto terms = etf::consult(std::span<const std::uint8_t>(data, size), "fuzz.config", limits);
  if (!terms) {
    (void)terms.error().to_string();
    return;
  }
  for (const etf::Term& t : *terms) {
    auto back = etf::decode(etf::encode(t));
    if (!back) fuzz_fail("a consulted term does not decode after encode: " + back.error().to_string());
    if (!(*back == t)) fuzz_fail("decode(encode(T)) != T for consulted T = " + etf::format_w(t));
    (void)otp::parse_app(t, "fuzz.app");
  }
  (void)otp::parse_rel(*terms, "fuzz.rel");
  (void)otp::parse_appup(*terms, "fuzz.appup");
}

// Target "gzip": one gzip layer, with a small output limit (a gzip bomb must stop there).
inline void fuzz_gzip(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kMax = 1u << 20;
  auto out = image::maybe_gunzip(image::Bytes(data, size), kMax);
  // Input that is not gzip comes back unchanged (whatever its size); inflated output
  // never exceeds the limit.
  if (out && out->size() > kMax && out->size() != size)
    fuzz_fail("maybe_gunzip returned more than max_bytes");
  if (!out && image::kind_of(out.error()) != image::ErrorKind::kLimitExceeded) {
    // maybe_gunzip fails only on the limit; bad gzip data comes back unchanged.
    fuzz_fail("maybe_gunzip failed with " + out.error().to_string());
  }
}

// Target "archive": read_archive under small limits. What it returns keeps the promises of
// archive.h: normalized relative paths, each once, links that are relative, no more members
// or bytes than the limits allow.
inline void fuzz_archive(const std::uint8_t* data, std::size_t size) {
  archive::Limits limits;
  limits.max_total_bytes = 4u << 20;
  limits.max_entry_bytes = 1u << 20;
  limits.max_entries = 1000;
  auto entries = archive::read_archive(std::span<const std::uint8_t>(data, size), "fuzz", limits);
  if (!entries) {
    (void)entries.error().to_string();
    return;
  }
  if (entries->size() > limits.max_entries) fuzz_fail("archive: more members than max_entries");
  std::uint64_t total = 0;
  std::vector<std::string> paths;
  for (const auto& e : *entries) {
    const std::string& p = e.path;
    if (p.empty() || p.front() == '/' || p.back() == '/') fuzz_fail("archive: path not normalized");
    if (p == ".." || p.starts_with("../") || p.ends_with("/..") || p.find("/../") != std::string::npos ||
        p == "." || p.starts_with("./") || p.ends_with("/.") || p.find("/./") != std::string::npos ||
        p.find("//") != std::string::npos)
      fuzz_fail("archive: path not normalized");
    if (e.type == archive::Entry::Type::kSymlink && (e.link_target.empty() || e.link_target.front() == '/'))
      fuzz_fail("archive: absolute or empty link target");
    if (e.type != archive::Entry::Type::kFile && !e.bytes.empty()) fuzz_fail("archive: bytes on a non-file");
    if (e.bytes.size() > limits.max_entry_bytes) fuzz_fail("archive: member over max_entry_bytes");
    if (e.mode > 0777) fuzz_fail("archive: mode beyond 0777");
    total += e.bytes.size();
    paths.push_back(p);
  }
  if (total > limits.max_total_bytes) fuzz_fail("archive: members over max_total_bytes");
  std::sort(paths.begin(), paths.end());
  if (std::adjacent_find(paths.begin(), paths.end()) != paths.end()) fuzz_fail("archive: a path twice");
}

}  // namespace codestore::fuzz

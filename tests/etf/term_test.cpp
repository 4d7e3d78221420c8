// The external term format codec: decode, encode and format_w on hand-written bytes,
// and every way damaged bytes must fail.
#include <codestore/term.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "etf/term_internal.h"

namespace codestore::etf {
namespace {

using Bytes = std::vector<std::uint8_t>;

// OTP 25's term_to_binary/1: Latin-1 atoms as ATOM_EXT.
const EncodeOptions kOtp25{1};

Term must_decode(const Bytes& b) {
  auto t = decode(b);
  EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().to_string());
  return t ? *t : Term();
}

std::string w(const Bytes& b) {
  return format_w(must_decode(b));
}

Status decode_error(const Bytes& b, const DecodeLimits& limits = DecodeLimits()) {
  auto t = decode(b, limits);
  if (t) return Status(Code::kOk, "");
  return t.error();
}

Bytes compressed(const Bytes& uncompressed_term) {  // term without the version byte
  uLongf n = compressBound(static_cast<uLong>(uncompressed_term.size()));
  Bytes z(n);
  EXPECT_EQ(compress(z.data(), &n, uncompressed_term.data(), static_cast<uLong>(uncompressed_term.size())),
            Z_OK);
  z.resize(n);
  Bytes out = {131, 80};
  auto size = uncompressed_term.size();
  out.push_back(static_cast<std::uint8_t>(size >> 24));
  out.push_back(static_cast<std::uint8_t>(size >> 16));
  out.push_back(static_cast<std::uint8_t>(size >> 8));
  out.push_back(static_cast<std::uint8_t>(size));
  out.insert(out.end(), z.begin(), z.end());
  return out;
}

// Bytes that term_to_binary/1 of OTP 25 wrote (from `erl`), with their ~tw text.
struct Sample {
  Bytes bytes;
  std::string text;
};
const std::vector<Sample>& samples() {
  static const std::vector<Sample> s = {
      {{131, 97, 5}, "5"},
      {{131, 98, 255, 255, 255, 255}, "-1"},
      {{131, 98, 0, 0, 1, 0}, "256"},
      {{131, 110, 4, 0, 0, 0, 0, 128}, "2147483648"},
      {{131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128}, "-9223372036854775808"},
      {{131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "18446744073709551616"},
      {{131, 70, 63, 248, 0, 0, 0, 0, 0, 0}, "1.5"},
      {{131, 100, 0, 3, 97, 98, 99}, "abc"},
      {{131, 100, 0, 1, 233}, "\xC3\xA9"},                                          // 'é'
      {{131, 119, 6, 230, 151, 165, 230, 156, 172}, "'\xE6\x97\xA5\xE6\x9C\xAC'"},  // '日本'
      {{131, 100, 0, 7, 102, 111, 111, 32, 98, 97, 114}, "'foo bar'"},
      {{131, 106}, "[]"},
      {{131, 107, 0, 3, 97, 98, 99}, "[97,98,99]"},
      {{131, 108, 0, 0, 0, 1, 100, 0, 1, 97, 100, 0, 1, 98}, "[a|b]"},
      {{131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 0, 106}, "[1,256]"},
      {{131, 104, 0}, "{}"},
      {{131, 104, 2, 100, 0, 1, 97, 97, 1}, "{a,1}"},
      {{131, 116, 0, 0, 0, 0}, "#{}"},
      {{131, 116, 0, 0, 0, 1, 97, 1, 100, 0, 1, 97}, "#{1 => a}"},
      {{131, 109, 0, 0, 0, 0}, "<<>>"},
      {{131, 109, 0, 0, 0, 3, 97, 98, 99}, "<<97,98,99>>"},
      {{131, 77, 0, 0, 0, 2, 3, 1, 160}, "<<1,5:3>>"},
      {{131, 113, 100, 0, 5, 108, 105, 115, 116, 115, 100, 0, 3, 109, 97, 112, 97, 2}, "fun lists:map/2"},
      {{131, 88,  100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104,
        111, 115, 116, 0, 0,  0,   9,   0,   0,   0,   0,   0,  0,   0,   0},
       "<0.9.0>"},
      {{131, 90,  0, 3, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111,
        115, 116, 0, 0, 0,   0, 0,  2,   217, 71,  241, 204, 0,   2,  9,   96,  88,  68},
       "#Ref<0.157308996.4056678402.186695>"},
      {{131, 89,  100, 0,   13,  110, 111, 110, 111, 100, 101, 64, 110,
        111, 104, 111, 115, 116, 0,   0,   0,   0,   0,   0,   0,  0},
       "#Port<0.0>"},
  };
  return s;
}

TEST(Term, SamplesDecodeFormatAndReencodeByteForByte) {
  for (const auto& s : samples()) {
    Term t = must_decode(s.bytes);
    EXPECT_EQ(format_w(t), s.text);
    EXPECT_EQ(encode(t, kOtp25), s.bytes) << s.text;
  }
}

TEST(Term, ConstructorsAndAccessors) {
  Term l = Term::list({Term::atom("a"), Term::integer(1)});
  ASSERT_NE(l.as_list(), nullptr);
  EXPECT_EQ(format_w(l), "[a,1]");
  EXPECT_TRUE(Term::list({}).is_nil());
  EXPECT_EQ(format_w(Term::string("hi")), "[104,105]");
  std::uint8_t raw[] = {1, 2};
  EXPECT_EQ(format_w(Term::binary(raw)), "<<1,2>>");
  EXPECT_TRUE(Term::atom("x").is_atom("x"));
  EXPECT_FALSE(Term::integer(1).is_atom("x"));
  auto elems = l.list_elements();
  ASSERT_TRUE(elems.has_value());
  EXPECT_EQ(elems->size(), 2u);
  EXPECT_TRUE(Term().list_elements().has_value());
  EXPECT_FALSE(Term::integer(1).list_elements().has_value());
  Term improper(List{{Term::integer(1)}, std::make_shared<const Term>(Term::atom("t"))});
  EXPECT_FALSE(improper.list_elements().has_value());
}

TEST(Term, EncodeChoosesErlangsTags) {
  EXPECT_EQ(encode(Term::integer(255)), (Bytes{131, 97, 255}));
  EXPECT_EQ(encode(Term::integer(-2147483648LL)), (Bytes{131, 98, 128, 0, 0, 0}));
  EXPECT_EQ(encode(Term::integer(-2147483649LL)), (Bytes{131, 110, 4, 1, 1, 0, 0, 128}));
  EXPECT_EQ(encode(Term::string("ab")), (Bytes{131, 107, 0, 2, 97, 98}));
  EXPECT_EQ(encode(Term::list({Term::integer(1), Term::integer(300)})),
            (Bytes{131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 44, 106}));
  EXPECT_EQ(encode(Term::atom("\xE6\x97\xA5")), (Bytes{131, 119, 3, 230, 151, 165}));
  EXPECT_EQ(encode(Term::atom("ok")), (Bytes{131, 119, 2, 'o', 'k'}));
  EXPECT_EQ(encode(Term::atom("\xC3\xA9"), kOtp25), (Bytes{131, 100, 0, 1, 0xE9}));
  EXPECT_EQ(encode(Term::atom("\xE6\x97\xA5"), kOtp25), (Bytes{131, 119, 3, 230, 151, 165}));
  auto text_float = encode(Term(1.5), EncodeOptions{0});
  ASSERT_EQ(text_float.size(), 33u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(text_float.data()) + 2), "1.50000000000000000000e+00");
  EXPECT_EQ(format_w(must_decode(text_float)), "1.5");
  std::string long_utf8;
  for (int i = 0; i < 100; ++i) long_utf8 += "\xE6\x97\xA5";
  auto e = encode(Term::atom(long_utf8));
  EXPECT_EQ(e[1], 118);
  EXPECT_EQ(e.size(), 4u + 300u);
  TermList many(256, Term::integer(0));
  EXPECT_EQ(encode(Term::tuple(many))[1], 105);
  TermList bytes(65536, Term::integer(1));
  EXPECT_EQ(encode(Term::list(bytes))[1], 108);  // too long for STRING_EXT
  BigInt big{false, std::vector<std::uint8_t>(300, 1)};
  EXPECT_EQ(encode(Term(big))[1], 111);
}

TEST(Term, RoundTripsBuiltTerms) {
  std::vector<Term> terms = {
      Term::integer(0),
      Term::integer(-1),
      Term::integer(INT64_MAX),
      Term::integer(INT64_MIN),
      Term(BigInt{true, {0, 0, 0, 0, 0, 0, 0, 0, 1}}),
      Term(0.1),
      Term(-0.0),
      Term(1e300),
      Term::atom(""),
      Term::atom("caf\xC3\xA9"),
      Term::tuple({}),
      Term(Map{}),
      Term(Map{{{Term::atom("k"), Term::tuple({Term::integer(1)})}, {Term::integer(2), Term()}}}),
      Term(List{{Term::integer(1), Term::atom("x")}, std::make_shared<const Term>(Term(2.5))}),
      Term(Binary{{1, 0xE0}, 3}),
      Term(Binary{{}, 8})};
  for (const Term& t : terms) {
    auto back = decode(encode(t));
    ASSERT_TRUE(back.has_value()) << format_w(t) << ": " << back.error().to_string();
    EXPECT_TRUE(*back == t) << format_w(t) << " vs " << format_w(*back);
    EXPECT_EQ(encode(*back), encode(t));
    auto v1 = decode(encode(t, kOtp25));
    ASSERT_TRUE(v1.has_value());
    EXPECT_TRUE(*v1 == t) << format_w(t);
  }
}

TEST(Term, DecodesEveryTag) {
  Bytes text_float = {131, 99};
  for (char c : std::string("1.50000000000000000000e+00")) text_float.push_back(static_cast<std::uint8_t>(c));
  text_float.resize(2 + 31, 0);
  EXPECT_EQ(w(text_float), "1.5");                         // FLOAT_EXT
  EXPECT_EQ(w({131, 115, 2, 'o', 'k'}), "ok");             // SMALL_ATOM_EXT
  EXPECT_EQ(w({131, 118, 0, 2, 0xC3, 0xA9}), "\xC3\xA9");  // ATOM_UTF8_EXT
  EXPECT_EQ(w({131, 119, 1, 'A'}), "'A'");                 // SMALL_ATOM_UTF8_EXT
  EXPECT_EQ(w({131, 105, 0, 0, 0, 1, 97, 1}), "{1}");      // LARGE_TUPLE_EXT
  EXPECT_EQ(w({131, 111, 0, 0, 0, 1, 1, 7}), "-7");        // LARGE_BIG, normalized
  EXPECT_EQ(w({131, 110, 3, 0, 5, 0, 0}), "5");            // leading zero digits
  EXPECT_EQ(w({131, 110, 0, 0}), "0");
  EXPECT_EQ(w({131, 110, 1, 2, 5}), "-5");  // any non-zero sign
  EXPECT_EQ(w({131, 113, 100, 0, 1, 'm', 100, 0, 1, 'f', 98, 0, 0, 1, 0}), "fun m:f/256");
  EXPECT_EQ(w({131, 108, 0, 0, 0, 0, 106}), "[]");                                 // empty LIST_EXT
  EXPECT_EQ(w({131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2}), "[1,2]");              // tail is a string
  EXPECT_EQ(w({131, 77, 0, 0, 0, 0, 0}), "<<>>");                                  // empty bitstring
  EXPECT_EQ(w({131, 103, 100, 0, 1, 'n', 0, 0, 0, 5, 0, 0, 0, 1, 0}), "<0.5.1>");  // PID_EXT
  EXPECT_EQ(w({131, 102, 100, 0, 1, 'n', 0, 0, 0, 7, 0}), "#Port<0.7>");           // PORT_EXT
  EXPECT_EQ(w({131, 120, 100, 0, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0}), "#Port<0.9>");  // V4_PORT
  EXPECT_EQ(w({131, 101, 100, 0, 1, 'n', 0, 0, 0, 3, 0}), "#Ref<0.3>");                      // REFERENCE_EXT
  EXPECT_EQ(w({131, 114, 0, 2, 100, 0, 1, 'n', 0, 0, 0, 0, 1, 0, 0, 0, 2}), "#Ref<0.2.1>");  // NEW_REFERENCE
  // NEW_FUN_EXT: Size, Arity, Uniq[16], Index, NumFree, Module, OldIndex, OldUniq, Pid.
  Bytes fun = {131, 112, 0, 0, 0, 0, 0};
  fun.resize(fun.size() + 16 + 4 + 4, 0);
  fun.insert(fun.end(), {100, 0,   2, 't', '1', 97, 0, 98, 3, 48, 0, 187, 88, 100, 0,
                         1,   'n', 0, 0,   0,   9,  0, 0,  0, 0,  0, 0,   0,  0});
  fun[5] = static_cast<std::uint8_t>(fun.size() - 2);  // Size counts itself, not the tag
  EXPECT_EQ(w(fun), "#Fun<t1.0.53477563>");
  Bytes lying = fun;
  lying[5] += 1;
  EXPECT_EQ(decode_error(lying).code(), Code::kCorruption);
  EXPECT_EQ(encode(must_decode(fun), kOtp25), fun);
}

TEST(Term, OpaqueTermsFollowTheMinorVersion) {
  // fun lists:map/2 as OTP 25 writes it (ATOM_EXT) and with {minor_version, 2}.
  Bytes v1 = {131, 113, 100, 0, 5, 'l', 'i', 's', 't', 's', 100, 0, 3, 'm', 'a', 'p', 97, 2};
  Bytes v2 = {131, 113, 119, 5, 'l', 'i', 's', 't', 's', 119, 3, 'm', 'a', 'p', 97, 2};
  Term a = must_decode(v1), b = must_decode(v2);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(encode(a), v2);
  EXPECT_EQ(encode(b, kOtp25), v1);
  // A pid inside a fun is re-encoded too, and the fun's Size follows.
  Bytes fun = {131, 112, 0, 0, 0, 0, 0};
  fun.resize(fun.size() + 16 + 4 + 4, 0);
  fun.insert(fun.end(),
             {100, 0, 2, 't', '1', 97, 0, 97, 7, 88, 100, 0, 1, 'n', 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0});
  fun[5] = static_cast<std::uint8_t>(fun.size() - 2);
  Term f = must_decode(fun);
  auto f2 = encode(f);
  EXPECT_EQ(f2.size(), fun.size() - 2);  // two atoms lose their 2-byte length for a 1-byte one
  EXPECT_EQ(f2[5], fun[5] - 2);
  auto back = decode(f2);
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_TRUE(*back == f);
  EXPECT_EQ(encode(*back, kOtp25), fun);
  // A hand-built Opaque that does not parse is written as it is.
  Term junk(Opaque{103, {103, 1, 2}});
  EXPECT_EQ(encode(junk), (Bytes{131, 103, 1, 2}));
}

TEST(Term, CompressedTermsInflate) {
  Bytes inner = {108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106};
  Bytes z = compressed(inner);
  EXPECT_EQ(w(z), "[1,2,3]");
  // encode never compresses.
  EXPECT_EQ(encode(must_decode(z)), (Bytes{131, 107, 0, 3, 1, 2, 3}));
}

TEST(Term, FormatAtomsAsErlangQuotesThem) {
  auto a = [](const char* s) { return format_w(Term::atom(s)); };
  EXPECT_EQ(a("foo"), "foo");
  EXPECT_EQ(a("Foo"), "'Foo'");
  EXPECT_EQ(a("_x"), "'_x'");
  EXPECT_EQ(a("a@b_C9"), "a@b_C9");
  EXPECT_EQ(a("a.b"), "'a.b'");
  EXPECT_EQ(a(""), "''");
  EXPECT_EQ(a("after"), "'after'");
  EXPECT_EQ(a("andalso"), "'andalso'");
  EXPECT_EQ(a("maybe"), "maybe");
  EXPECT_EQ(a("it's"), "'it\\'s'");
  EXPECT_EQ(a("a\\b"), "'a\\\\b'");
  EXPECT_EQ(a("a\nb\x01"), "'a\\nb\\001'");
  EXPECT_EQ(a("\x7f"), "'\\d'");
  EXPECT_EQ(a("\xC2\x80"), "'\\200'");
  EXPECT_EQ(a("\xC3\x9F"), "\xC3\x9F");              // ß starts an unquoted atom
  EXPECT_EQ(a("a\xC3\x85"), "a\xC3\x85");            // aÅ
  EXPECT_EQ(a("\xC3\x85"), "'\xC3\x85'");            // Å
  EXPECT_EQ(a("a\xC3\x97"), "'a\xC3\x97'");          // a×
  EXPECT_EQ(a("a\xE6\x97\xA5"), "'a\xE6\x97\xA5'");  // a日
}

TEST(Term, FormatFloatsShortest) {
  auto f = [](double d) { return format_w(Term(d)); };
  EXPECT_EQ(f(1.0), "1.0");
  EXPECT_EQ(f(0.1), "0.1");
  EXPECT_EQ(f(1.0e10), "1.0e10");
  EXPECT_EQ(f(1.0e-5), "1.0e-5");
  EXPECT_EQ(f(0.0001), "0.0001");
  EXPECT_EQ(f(100.0), "100.0");
  EXPECT_EQ(f(123456789.0), "123456789.0");
  EXPECT_EQ(f(12345.678), "12345.678");
  EXPECT_EQ(f(-0.0), "-0.0");
  EXPECT_EQ(f(5.0e-324), "5.0e-324");
  EXPECT_EQ(f(1.5e300), "1.5e300");
}

TEST(Term, FormatMapsInErlangOrder) {
  // Up to 32 keys: sorted, every integer before every float.
  Map m{{{Term(1.0), Term::atom("a")},
         {Term::integer(2), Term::atom("c")},
         {Term::integer(-1), Term::atom("e")},
         {Term::atom("x"), Term::integer(0)},
         {Term(0.5), Term::atom("d")}}};
  EXPECT_EQ(format_w(Term(m)), "#{-1 => e,2 => c,0.5 => d,1.0 => a,x => 0}");
}

TEST(Term, EqualityIsExact) {
  EXPECT_TRUE(Term::integer(1) == Term::integer(1));
  EXPECT_FALSE(Term::integer(1) == Term(1.0));
  EXPECT_TRUE(Term::string("ab") == Term::list({Term::integer('a'), Term::integer('b')}));
  EXPECT_FALSE(Term::atom("a") == Term::atom("b"));
  // Unused bits of a bitstring's last byte do not matter.
  EXPECT_TRUE(Term(Binary{{0xA0}, 3}) == Term(Binary{{0xBF}, 3}));
  EXPECT_FALSE(Term(Binary{{0xA0}, 3}) == Term(Binary{{0xA0}, 4}));
  Map m1{{{Term::atom("a"), Term::integer(1)}, {Term::atom("b"), Term::integer(2)}}};
  Map m2{{{Term::atom("b"), Term::integer(2)}, {Term::atom("a"), Term::integer(1)}}};
  EXPECT_TRUE(Term(m1) == Term(m2));
  EXPECT_LT(internal::compare(Term::integer(5), Term::atom("a")), 0);
  EXPECT_LT(internal::compare(Term::tuple({}), Term()), 0);
  EXPECT_LT(internal::compare(Term(), Term::string("a")), 0);
  EXPECT_LT(internal::compare(Term::string("a"), Term::binary({})), 0);
}

TEST(Term, StandardOrderComparesNumbersByValue) {
  using internal::compare_order;
  EXPECT_EQ(compare_order(Term::integer(1), Term(1.0)), 0);
  EXPECT_GT(internal::compare(Term(1.0), Term::integer(1)), 0);  // exact: integers first
  EXPECT_LT(compare_order(Term::integer(1), Term(1.5)), 0);
  EXPECT_GT(compare_order(Term::integer(2), Term(1.5)), 0);
  EXPECT_LT(compare_order(Term(-1.5), Term::integer(-1)), 0);
  EXPECT_LT(compare_order(Term::integer(INT64_MAX), Term(9223372036854775808.0)), 0);
  BigInt two64{false, {0, 0, 0, 0, 0, 0, 0, 0, 1}};
  EXPECT_EQ(compare_order(Term(two64), Term(18446744073709551616.0)), 0);
  EXPECT_GT(compare_order(Term(two64), Term(1.0e10)), 0);
  EXPECT_LT(compare_order(Term(BigInt{true, two64.magnitude}), Term(-1.0e10)), 0);
  EXPECT_EQ(compare_order(Term::tuple({Term::integer(1)}), Term::tuple({Term(1.0)})), 0);
  // Map keys compare exactly even in the standard order.
  Term m1(Map{{{Term::integer(1), Term::atom("a")}}});
  Term m2(Map{{{Term(1.0), Term::atom("a")}}});
  EXPECT_LT(compare_order(m1, m2), 0);
}

// ---- damaged input

TEST(TermCorruption, EveryTruncationIsCorruption) {
  for (const auto& s : samples()) {
    for (std::size_t n = 0; n < s.bytes.size(); ++n) {
      Bytes cut(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(n));
      Status st = decode_error(cut);
      EXPECT_EQ(st.code(), Code::kCorruption) << s.text << " cut at " << n;
      EXPECT_NE(st.message().find("term: at offset "), std::string::npos) << st.message();
    }
  }
  Bytes z = compressed({108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106});
  for (std::size_t n = 0; n < z.size(); ++n) {
    Bytes cut(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(decode_error(cut).code(), Code::kCorruption) << "cut at " << n;
  }
}

TEST(TermCorruption, BadVersionTagAndTrailingBytes) {
  EXPECT_EQ(decode_error({}).message(), "term: at offset 0: no bytes");
  EXPECT_EQ(decode_error({130, 106}).message(), "term: at offset 0: version byte 130 (expected 131)");
  EXPECT_EQ(decode_error({131, 200}).message(), "term: at offset 1: unknown tag 200");
  EXPECT_EQ(decode_error({131, 104, 2, 97, 1, 75}).message(), "term: at offset 5: unknown tag 75");
  EXPECT_EQ(decode_error({131, 106, 0}).message(), "term: at offset 2: 1 trailing bytes after the term");
  EXPECT_EQ(decode_error({131, 104, 1, 80, 0, 0, 0, 0}).code(), Code::kCorruption);  // nested COMPRESSED
}

TEST(TermCorruption, HugeDeclaredLengthsFailWithoutAllocating) {
  EXPECT_EQ(decode_error({131, 109, 255, 255, 255, 255, 1}).message(),
            "term: at offset 1: tag 109 needs 4294967295 bytes, 1 left");
  EXPECT_EQ(decode_error({131, 108, 255, 255, 255, 255, 106}).message(),
            "term: at offset 1: list of 4294967295 elements in 1 bytes");
  EXPECT_EQ(decode_error({131, 105, 255, 255, 255, 255}).code(), Code::kCorruption);
  EXPECT_EQ(decode_error({131, 116, 255, 255, 255, 255, 97, 1}).code(), Code::kCorruption);
  EXPECT_EQ(decode_error({131, 111, 255, 255, 255, 255, 0}).code(), Code::kCorruption);
  EXPECT_EQ(decode_error({131, 107, 255, 255, 1}).code(), Code::kCorruption);
  EXPECT_EQ(decode_error({131, 100, 255, 255, 97}).code(), Code::kCorruption);
  EXPECT_EQ(decode_error({131, 112, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0,   0,   0,   0,
                          0,   0,   0,   0,   0,   0,   0, 0, 0, 0, 0, 255, 255, 255, 255})
                .code(),
            Code::kCorruption);
}

TEST(TermCorruption, InvalidValuesAreRefused) {
  EXPECT_EQ(decode_error({131, 70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0}).code(), Code::kCorruption);  // +inf
  EXPECT_EQ(decode_error({131, 118, 0, 2, 0xC0, 0x80}).code(), Code::kCorruption);     // overlong UTF-8
  EXPECT_EQ(decode_error({131, 119, 3, 0xED, 0xA0, 0x80}).code(), Code::kCorruption);  // surrogate
  EXPECT_EQ(decode_error({131, 77, 0, 0, 0, 1, 9, 0}).code(), Code::kCorruption);      // 9 bits
  EXPECT_EQ(decode_error({131, 77, 0, 0, 0, 1, 0, 0}).code(), Code::kCorruption);      // 0 bits
  EXPECT_EQ(decode_error({131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2}).message(),
            "term: at offset 1: map with a repeated key");
  EXPECT_EQ(decode_error({131, 103, 97, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}).code(),
            Code::kCorruption);  // node not atom
  Bytes big_atom = {131, 100, 1, 0};
  big_atom.resize(4 + 256, 'a');
  EXPECT_EQ(decode_error(big_atom).message(), "term: at offset 1: atom of 256 characters (at most 255)");
}

TEST(TermCorruption, DepthBombHitsTheLimit) {
  Bytes bomb = {131};
  for (int i = 0; i < 100000; ++i) bomb.insert(bomb.end(), {108, 0, 0, 0, 1});
  bomb.push_back(106);
  for (int i = 0; i < 100000; ++i) bomb.push_back(106);
  Status st = decode_error(bomb);
  EXPECT_EQ(st.code(), Code::kLimitExceeded);
  EXPECT_NE(st.message().find("max_depth 10000"), std::string::npos) << st.message();
  DecodeLimits tight;
  tight.max_depth = 3;
  EXPECT_EQ(decode_error({131, 104, 1, 104, 1, 104, 1, 104, 1, 106}, tight).code(), Code::kLimitExceeded);
  EXPECT_TRUE(decode(Bytes{131, 104, 1, 104, 1, 104, 1, 106}, tight).has_value());
}

TEST(TermCorruption, TermCountLimit) {
  DecodeLimits tight;
  tight.max_terms = 4;
  EXPECT_TRUE(decode(Bytes{131, 104, 3, 97, 1, 97, 2, 97, 3}, tight).has_value());
  Status st = decode_error({131, 104, 4, 97, 1, 97, 2, 97, 3, 97, 4}, tight);
  EXPECT_EQ(st.code(), Code::kLimitExceeded);
  EXPECT_NE(st.message().find("max_terms 4"), std::string::npos);
  EXPECT_EQ(decode_error({131, 107, 0, 5, 1, 2, 3, 4, 5}, tight).code(), Code::kLimitExceeded);
}

TEST(TermCorruption, CompressionBombsAndLies) {
  // Declared above the limit: refused before inflating.
  DecodeLimits tight;
  tight.max_inflated_bytes = 1000;
  Bytes zeros(5000, 0);
  Status st = decode_error(compressed(zeros), tight);
  EXPECT_EQ(st.code(), Code::kLimitExceeded);
  EXPECT_NE(st.message().find("max_inflated_bytes 1000"), std::string::npos);
  // Declared smaller than the stream inflates to.
  Bytes z = compressed({108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106});
  z[5] -= 1;
  EXPECT_NE(decode_error(z).message().find("inflates past its declared size"), std::string::npos);
  // Declared larger.
  z = compressed({108, 0, 0, 0, 3, 97, 1, 97, 2, 97, 3, 106});
  z[5] += 1;
  EXPECT_EQ(decode_error(z).code(), Code::kCorruption);
  // Garbage instead of zlib.
  EXPECT_EQ(decode_error({131, 80, 0, 0, 0, 1, 1, 2, 3, 4}).code(), Code::kCorruption);
  // Inflated bytes hold a term followed by junk.
  EXPECT_NE(decode_error(compressed({106, 106})).message().find("of the inflated term: 1 trailing bytes"),
            std::string::npos);
  // A large but legal declared size of a tiny stream does not need that much memory up front.
  EXPECT_EQ(decode_error({131, 80, 0x0F, 0xFF, 0xFF, 0xFF, 0x78, 0x9C, 0x03, 0x00}).code(),
            Code::kCorruption);
}

TEST(TermCorruption, DepthAtTheLimitWorksEverywhere) {
  // 10000 nested lists and tuples: decode, encode, format, compare and destroy all cope.
  Bytes deep = {131};
  for (int i = 0; i < 5000; ++i) deep.insert(deep.end(), {108, 0, 0, 0, 1, 104, 1});
  deep.push_back(106);
  for (int i = 0; i < 5000; ++i) deep.push_back(106);
  auto t = decode(deep);
  ASSERT_TRUE(t.has_value()) << t.error().to_string();
  EXPECT_EQ(encode(*t), deep);
  std::string text = format_w(*t);
  EXPECT_EQ(text.size(), 5000u * 4 + 2);  // "[{" ... "[]" ... "}]"
  auto again = decode(deep);
  EXPECT_TRUE(*t == *again);
}

TEST(TermCorruption, MillionDeepTermsNeverRecurseNatively) {
  // Lists, tuples, maps and improper-tail chains nested a million deep: decode (with the
  // limit raised), encode, format, compare, copy and free all use explicit stacks.
  constexpr std::size_t kDepth = 1000000;
  struct Shape {
    const char* name;
    Bytes open;   // per level, before the inner term
    Bytes close;  // per level, after it
  };
  const std::vector<Shape> shapes = {
      {"list", {108, 0, 0, 0, 1}, {106}},
      {"tuple", {104, 1}, {}},
      {"map value", {116, 0, 0, 0, 1, 97, 1}, {}},
      {"improper tail", {108, 0, 0, 0, 1, 97, 1, 104, 1}, {}},
  };
  DecodeLimits deep;
  deep.max_depth = 2 * kDepth + 10;
  for (const auto& shape : shapes) {
    SCOPED_TRACE(shape.name);
    Bytes b = {131};
    b.reserve(1 + kDepth * (shape.open.size() + shape.close.size()) + 1);
    for (std::size_t i = 0; i < kDepth; ++i) b.insert(b.end(), shape.open.begin(), shape.open.end());
    b.push_back(106);
    for (std::size_t i = 0; i < kDepth; ++i) b.insert(b.end(), shape.close.begin(), shape.close.end());
    auto t = decode(b, deep);
    ASSERT_TRUE(t.has_value()) << t.error().to_string();
    EXPECT_EQ(encode(*t, EncodeOptions{1}), b);
    EXPECT_FALSE(format_w(*t).empty());
    Term copy = *t;
    EXPECT_TRUE(copy == *t);
    t = Term();  // frees the original; the copy goes at the end of the scope
  }
}

// Damaged copies of good terms either decode to something that round-trips or fail with
// kCorruption / kLimitExceeded; nothing else (the libFuzzer target does this at scale).
TEST(TermCorruption, RandomDamageGivesCleanErrors) {
  std::vector<Bytes> seeds;
  for (const auto& s : samples()) seeds.push_back(s.bytes);
  seeds.push_back(compressed({108, 0, 0, 0, 2, 104, 2, 100, 0,  1,   'a', 109, 0, 0, 0, 1, 7,
                              116, 0, 0, 0, 1, 97,  1, 70,  63, 248, 0,   0,   0, 0, 0, 0, 106}));
  std::mt19937 rng(12345);
  DecodeLimits limits;
  limits.max_inflated_bytes = 1 << 16;
  std::size_t ok = 0, bad = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes b = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = b.empty() ? 0 : rng() % b.size();
      switch (rng() % 4) {
        case 0:
          if (!b.empty()) b[at] = static_cast<std::uint8_t>(rng());
          break;
        case 1:
          if (!b.empty()) b[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 2:
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng()));
          break;
        default: b.resize(at); break;
      }
    }
    auto t = decode(b, limits);
    if (!t) {
      EXPECT_TRUE(t.error().code() == Code::kCorruption || t.error().code() == Code::kLimitExceeded)
          << t.error().to_string();
      EXPECT_EQ(t.error().message().rfind("term: at offset ", 0), 0u) << t.error().message();
      ++bad;
      continue;
    }
    ++ok;
    (void)format_w(*t);
    auto back = decode(encode(*t), limits);
    ASSERT_TRUE(back.has_value()) << back.error().to_string();
    EXPECT_TRUE(*back == *t) << format_w(*t);
  }
  EXPECT_GT(ok, 100u);
  EXPECT_GT(bad, 100u);
}

}  // namespace
}  // namespace codestore::etf

// consult against Erlang's own file:consult/1: every .app and .appup OTP and Elixir ship,
// every OTP .rel, and hand-written edge and error cases. `erl` (consult_truth.escript, one
// run per test) gives the answer: the terms as term_to_binary, or the error and its line.
// Skipped without `escript`.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "etf/consult.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace codestore::etf {
namespace {

namespace fs = std::filesystem;

const std::string kScript = std::string(CODESTORE_SOURCE_DIR) + "/tests/etf/consult_truth.escript";

bool have_erl() {
  return std::system("command -v escript >/dev/null 2>&1") == 0;
}

std::vector<std::uint8_t> unhex(const std::string& h) {
  std::vector<std::uint8_t> b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    b.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return b;
}

struct Answer {
  bool ok = false;
  Term terms;  // the list of terms when ok
  int line = 0;
  std::string module, kind;
};

// Erlang's file:consult/1 of each file, in one escript run.
std::vector<Answer> erl_consult(const std::vector<std::string>& files) {
  testing::TempDir dir;
  std::string list;
  for (const auto& f : files) list += f + "\n";
  testing::write_file(dir / "files", list);
  std::string command = "escript " + kScript + " " + (dir / "files").string();
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {};
  char buf[65536];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << command;
  std::vector<Answer> answers;
  std::istringstream in(out);
  std::string word;
  while (in >> word) {
    Answer a;
    if (word == "ok") {
      std::string hex;
      in >> hex;
      auto t = decode(unhex(hex));
      EXPECT_TRUE(t.has_value());
      a.ok = true;
      if (t) a.terms = *t;
    } else {
      in >> a.line >> a.module >> a.kind;
    }
    answers.push_back(std::move(a));
  }
  EXPECT_EQ(answers.size(), files.size()) << out;
  return answers;
}

// Our consult of `file` compared with Erlang's answer: equal terms, or both an error (on the
// same line where Erlang names the line of the fault: erl_scan's errors and erl_parse's
// syntax errors; "bad term" names the term's first line, we name the fault's).
void expect_same(const std::string& file, const Answer& erl, const std::string& label) {
  auto ours = consult_file(file);
  if (erl.ok) {
    ASSERT_TRUE(ours.has_value()) << label << ": erl reads it, we say " << ours.error().to_string();
    EXPECT_TRUE(Term::list(*ours) == erl.terms)
        << label << ":\n ours " << format_w(Term::list(*ours)) << "\n erl  " << format_w(erl.terms);
    return;
  }
  ASSERT_FALSE(ours.has_value()) << label << ": erl says error (" << erl.module << " line " << erl.line
                                 << "), we read " << format_w(Term::list(*ours));
  const Status& s = ours.error();
  EXPECT_NE(s.message().find(fs::path(file).string() + ":"), std::string::npos) << s.message();
  ASSERT_NE(s.where(), nullptr);
  EXPECT_EQ(s.where()->file, file);
  if ((erl.module == "erl_scan" || erl.module == "erl_parse") && erl.kind != "bad_term") {
    EXPECT_NE(s.message().find(file + ":" + std::to_string(erl.line) + ": "), std::string::npos)
        << label << ": erl says line " << erl.line << ", we say " << s.message();
  }
}

std::vector<std::string> glob(const std::string& dir_pattern_parent, const std::string& sub,
                              const std::string& ext) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir_pattern_parent, ec)) return out;
  for (const auto& d : fs::directory_iterator(dir_pattern_parent)) {
    fs::path ebin = d.path() / sub;
    if (!fs::is_directory(ebin, ec)) continue;
    for (const auto& f : fs::directory_iterator(ebin)) {
      if (f.path().extension() == ext) out.push_back(f.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ConsultErl, EveryInstalledAppAppupAndRelReadsAsErlangReadsIt) {
  if (!have_erl()) GTEST_SKIP() << "no escript";
  std::vector<std::string> files;
  for (const char* ext : {".app", ".appup"}) {
    for (auto& f : glob("/usr/lib/erlang/lib", "ebin", ext)) files.push_back(f);
    for (auto& f : glob("/usr/lib/elixir/lib", "ebin", ext)) files.push_back(f);
  }
  for (auto& f : glob("/usr/lib/erlang/releases", "", ".rel")) files.push_back(f);
  if (files.empty()) GTEST_SKIP() << "no OTP installed under /usr/lib/erlang";
  std::size_t apps = 0, appups = 0, rels = 0;
  for (const auto& f : files) {
    auto ext = fs::path(f).extension();
    apps += ext == ".app";
    appups += ext == ".appup";
    rels += ext == ".rel";
  }
  EXPECT_GE(apps, 30u);
  EXPECT_GE(appups, 30u);
  EXPECT_GE(rels, 3u);
  auto answers = erl_consult(files);
  ASSERT_EQ(answers.size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    EXPECT_TRUE(answers[i].ok) << files[i] << " does not consult in Erlang";
    expect_same(files[i], answers[i], files[i]);
  }
}

struct Case {
  const char* name;
  std::string text;
};

// Each case is a file; Erlang reads every one of them, in one run, and so do we.
std::vector<Case> cases() {
  std::string deep;  // 200 levels: Erlang reads it, and so must we
  for (int i = 0; i < 200; ++i) deep += "[{";
  deep += "x";
  for (int i = 0; i < 200; ++i) deep += "}]";
  deep += ".\n";
  return {
      // Values.
      {"atoms",
       "[a, 'B c', 'end', node@host, a_B@1, 'a\\nb', '', 'hello world', '\\x{263A}', maybe, else,"
       " '\xc3\xa4', \xc3\xa4t\xc3\xa9, 'it''s'].\n"},
      {"strings",
       "{\"x\" \"y\", \"\", \"\\b\\d\\e\\f\\n\\r\\s\\t\\v\\\\\\\"\\'\\z\", \"\\101\\7\\08\\x41\\x{263A}\","
       " \"\\^a\\^Z\\^@\\^?\", \"h\xc3\xa9llo \xe2\x82\xac\", \"multi\nline\", \"a\\\nb\"}.\n"},
      {"chars", "[$a, $\\n, $ , $\\x{1F600}, $%, $\", $\\\\, $\\^a, $\\101, $\xc3\xa9, -$a, $\n].\n"},
      {"integers",
       "[0, 1_000_000, 16#ff, 16#FF_FF, 2#1010, 36#Zz, -5, + 5, -(5), (7),"
       " 9223372036854775807, -9223372036854775808, 9223372036854775808, 18446744073709551616,"
       " -18446744073709551616, 16#FFFFFFFFFFFFFFFFFFFFFFFF, 123456789012345678901234567890].\n"},
      {"floats",
       "[1.5, 1.5e-3, 2.0E+10, 1_0.5_0e1_0, -0.5, 0.1, 1.0e308, 1.0e-400, 4.9e-324, 123.456e-7].\n"},
      {"binaries",
       "[<<>>, <<\"text\">>, <<1,2,3>>, <<\"x\"/utf8>>, <<\"\xc3\xa9\"/utf8>>, <<\"\xc3\xa9\">>,"
       " <<1:4>>, <<1:16/little>>, <<-1:16>>, <<3.0/float>>, <<1.5:32/float-little>>, <<1:128>>,"
       " <<\"ab\":16>>, <<$a, \"bc\">>, <<<<1,2>>/binary, 3>>, <<<<1:3>>/bitstring>>,"
       " <<16#263A/utf16>>, <<16#1F600/utf16-little>>, <<65/utf32>>, <<1:8/unit:2>>,"
       " <<255/signed>>, <<(1):(16)>>, <<-1:70>>, <<1:12/big-unsigned-integer>>, <<5/float>>,"
       " <<\"\xe2\x82\xac\"/utf32-little>>, <<1:32/native>>, <<<<1,2,3>>:2/binary>>].\n"},
      {"maps", "[#{}, #{a => 1, \"b\" => [c], {d} => #{e => f}}, #{a => 1, a => 2}, #{1 => a, 1.0 => b}].\n"},
      {"lists", "[[], [a|b], [a, b | [c, d]], [a | []], [[]], [a|[b|c]], [1|2.0]].\n"},
      {"tuples", "[{}, {a}, {{}}, {a, {b, {c}}}].\n"},
      {"funs", "[fun lists:map/2, fun 'm'/0 ].\n"},  // the second is an error case below
      {"parens", "{(a), ((1)), (-1), -(1), ([x]), (\"s\")}.\n"},
      {"several", "%% a comment\n{a}. % trailing\n{b}.\n\n%% end\n"},
      {"dot_comment", "{a}.%c\n"},
      {"no_newline", "{a}."},
      {"empty", ""},
      {"comments_only", "%% nothing\n% here\n"},
      {"white_space", "{a,\xc2\xa0\tb}.\r\n{c}.\r\n"},
      {"latin1", "%% -*- coding: latin-1 -*-\n{\"\xe9\", '\xe9', \xe9t\xe9}.\n"},
      {"latin1_second_line", "\n%% coding: latin-1\n{\"\xe9\"}.\n"},
      {"utf8_declared", "%% -*- coding: utf-8 -*-\n{\"\xc3\xa9\"}.\n"},
      {"deep", deep},
      {"app",
       "{application, x, [{vsn, \"1.0\"}, {modules, [x, x_sup]}, {registered, []},\n"
       " {applications, [kernel, stdlib]}, {mod, {x_app, []}}, {env, [{k, <<\"v\">>}]}]}.\n"},
      // Errors.
      {"unterminated_string", "{a, \"abc}.\n"},
      {"unterminated_atom", "{a, 'abc}.\n"},
      {"unterminated_late", "{a}.\n{b,\n \"x}.\n"},
      {"missing_dot", "{a}"},
      {"missing_dot_later", "{a}.\n\n{b}\n\n"},
      {"variable", "{a,\n X}.\n"},
      {"underscore", "[_].\n"},
      {"operator", "{1 + 2}.\n"},
      {"double_minus", "- - 1.\n"},
      {"minus_minus", "--1.\n"},
      {"minus_atom", "-a.\n"},
      {"minus_paren_minus", "-(-1).\n"},
      {"dot_without_space", "{a}.{b}.\n"},
      {"call", "foo(1).\n"},
      {"remote_call", "m:f().\n"},
      {"keyword", "{a, end}.\n"},
      {"record", "#r{a=1}.\n"},
      {"map_exact", "#{a := 1}.\n"},
      {"map_bar", "#{a => 1 | b}.\n"},
      {"invalid_utf8", "{\"\xe9\"}.\n"},
      {"latin1_not_first_lines", "\n\n%% coding: latin-1\n{\"\xe9\"}.\n"},
      {"latin1_misspelt", "%% coding: latin1\n{\"\xe9\"}.\n"},
      {"bom", "\xef\xbb\xbf{a}.\n"},
      {"illegal_float", "1.0e.\n"},
      {"e_notation", "1e5.\n"},
      {"illegal_base", "37#1.\n"},
      {"zero_base", "0#1.\n"},
      {"leading_zero_base", "[016#ff, 0_2#11].\n"},
      {"huge_size", "<<1:9223372036854775807/unit:256>>.\n"},
      {"bad_digit", "2#102.\n"},
      {"dollar_eof", "$"},
      {"surrogate", "\"\\x{D800}\".\n"},
      {"hex_escape_bad", "'\\xZZ'.\n"},
      {"long_atom", std::string(256, 'a') + ".\n"},
      {"long_quoted_atom", "'" + std::string(256, 'b') + "'.\n"},
      {"atom_255", std::string(255, 'a') + ".\n"},
      {"binary_type", "<<1:4/binary>>.\n"},
      {"binary_utf_size", "<<\"x\":8/utf8>>.\n"},
      {"binary_list", "<<[1,2]>>.\n"},
      {"binary_trailing_comma", "<<1,>>.\n"},
      {"binary_bad_type", "<<1/foo>>.\n"},
      {"fun_expr", "fun(X) -> X end.\n"},
      {"fun_bad", "fun m:f/a.\n"},
      {"fun_local", "fun 'm'/0.\n"},
      {"improper_twice", "[a|b|c].\n"},
      {"tuple_trailing_comma", "{a,}.\n"},
      {"list_trailing_comma", "[a,].\n"},
      {"illegal_char", "{a, \xc2\xa7}.\n"},
      {"junk_after", "{a} b.\n"},
      {"two_exprs", "{a}, {b}.\n"},
      {"error_after_good", "{a}.\n{b}.\n{c, 1 +}.\n"},
      {"list_op", "[a] ++ [b].\n"},
      {"string_op", "\"a\" ++ \"b\".\n"},
      {"comparison", "1 < 2.\n"},
      {"float_plus_char", "$a + 1.\n"},
      {"bang", "a ! b.\n"},
      {"match", "A = 1.\n"},
      {"catch", "catch a.\n"},
      {"bnot", "bnot 1.\n"},
  };
}

TEST(ConsultErl, EdgeAndErrorCasesAnswerAsErlangDoes) {
  if (!have_erl()) GTEST_SKIP() << "no escript";
  testing::TempDir dir;
  auto all = cases();
  std::vector<std::string> files;
  std::set<std::string> names;
  for (const auto& c : all) {
    ASSERT_TRUE(names.insert(c.name).second) << c.name;
    std::string f = (dir / c.name).string();
    testing::write_file(f, c.text);
    files.push_back(f);
  }
  auto answers = erl_consult(files);
  ASSERT_EQ(answers.size(), files.size());
  int oks = 0, errors = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    (answers[i].ok ? oks : errors)++;
    expect_same(files[i], answers[i], all[i].name);
  }
  // The cases cover both sides (a case that stopped erroring would show here).
  EXPECT_GE(oks, 20);
  EXPECT_GE(errors, 40);
}

}  // namespace
}  // namespace codestore::etf

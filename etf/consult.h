// Erlang term text as file:consult/1 reads it: the `.app`, `.appup`, `.rel`, `sys.config`
// and `rebar.config` files of real systems.
//
//   auto terms = codestore::etf::consult_file("releases/0.1.0/myrel.rel");
//   // terms->size() == 1 for a .rel; (*terms)[0] is {release, {Name, Vsn}, {erts, V}, Apps}
//
// What is read is what OTP 25's file:consult/1 reads (erl_scan, erl_parse:parse_term/1): a
// sequence of terms, each ended by a '.' followed by white space, a '%' comment or the end of
// the text; atoms (plain, quoted with every escape; the reserved words `end`, `of`, ... only
// quoted), strings with every escape (\n \t \s \e \d \NNN \xHH \x{H...} \^X ...) and adjacent
// strings concatenated, characters ($a, $\n, $ ), integers (1_000, 16#FF, -5, big ones),
// floats, binaries (<<"text">>, <<1,2,3>>, <<"x"/utf8>>, <<N:16/little>>, <<F/float>>),
// tuples, proper and improper lists, maps (#{K => V}; a repeated key keeps the last value, as
// maps:from_list/1 does), unary +/- on a number or character, fun M:F/A, and parentheses
// around any of these. Anything else (variables, operators, calls, records, `:=` in a map)
// is an error, as it is in Erlang.
//
// Encoding: UTF-8 unless the first or second line has a comment saying `coding: latin-1`
// (epp:set_encoding/1's rule; `coding: utf-8` is the default spelled out). Text that is not
// UTF-8 in a UTF-8 file is an error, as OTP's file_io_server answers invalid_unicode.
//
// Errors are kCorruption (kLimitExceeded for a limit, kNotSupported for a binary segment
// beyond the common ones) whose message starts with `NAME:LINE: ` ("sys.config:12: syntax
// error before: ')'") and whose Where names the source and the byte offset of the problem.
//
// Thread safety: free functions over their arguments; thread-safe.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::etf {

// Bounds on hostile text. Nesting is parsed by native recursion, one frame per level, so
// max_depth is capped at kConsultMaxDepthCeiling whatever is asked.
struct ConsultLimits {
  std::size_t max_bytes = 16u << 20;         // the text (consult_file: the file)
  std::size_t max_depth = 512;               // tuples, lists, maps and binaries inside each other
  std::size_t max_terms = 1u << 20;          // tokens and values, every string character counted
  std::size_t max_binary_bytes = 16u << 20;  // one <<...>> after construction
};
inline constexpr std::size_t kConsultMaxDepthCeiling = 4096;

// file:consult/1 of `text`; `source` names it in errors ("sys.config"). An empty text, or
// one of comments only, gives no terms.
Result<std::vector<Term>> consult(std::span<const std::uint8_t> text, std::string_view source,
                                  const ConsultLimits& limits = ConsultLimits());
Result<std::vector<Term>> consult(std::string_view text, std::string_view source,
                                  const ConsultLimits& limits = ConsultLimits());

// Reads `path` (at most limits.max_bytes, else kLimitExceeded) and consults it; errors name
// the path. A file that cannot be read gives base::read_file's Status (kNotFound...).
Result<std::vector<Term>> consult_file(const std::string& path,
                                       const ConsultLimits& limits = ConsultLimits());

}  // namespace codestore::etf

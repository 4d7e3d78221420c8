// Erlang's external term format (ETF): the terms inside Attr, CInf, Meta, Dbgi and LitT,
// and the boot-server protocol's requests and answers.
//
//   auto t = codestore::etf::decode(bytes);          // bytes start with 131
//   std::string text = codestore::etf::format_w(*t); // io_lib:format("~tw", [T])
//   auto back = codestore::etf::encode(*t);          // term_to_binary(T)
//
// Thread safety: Terms are immutable values (children are shared); any number of threads
// may read one Term. Functions are thread-safe.
#pragma once

#include <codestore/status.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace codestore::etf {

class Term;
using TermList = std::vector<Term>;

struct Atom {
  std::string name;  // UTF-8
  bool operator==(const Atom&) const = default;
};
struct BigInt {  // an integer outside int64: sign and little-endian magnitude, as in ETF
  bool negative = false;
  std::vector<std::uint8_t> magnitude;
  bool operator==(const BigInt&) const = default;
};
struct Binary {
  std::vector<std::uint8_t> bytes;
  std::uint8_t bits = 8;  // bits used in the last byte (8 for a binary, 1..7 for a bitstring)
  bool operator==(const Binary&) const = default;
};
struct List {  // a list of one or more elements; `tail` is nil for a proper list
  TermList elements;
  std::shared_ptr<const Term> tail;  // nullptr means []
};
struct Tuple {
  TermList elements;
};
struct Map {
  std::vector<std::pair<Term, Term>> pairs;  // in decode order
};
struct Nil {
  bool operator==(const Nil&) const = default;
};
// Pids, ports, references and funs: kept as their raw ETF bytes (tag included) so they
// round-trip; formatting prints them as Erlang would where it can.
struct Opaque {
  std::uint8_t tag;
  std::vector<std::uint8_t> bytes;
  bool operator==(const Opaque&) const = default;
};

class Term {
 public:
  using Value = std::variant<Atom, std::int64_t, BigInt, double, Nil, List, Tuple, Map, Binary, Opaque>;

  Term() : value_(Nil{}) {}
  Term(Value value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  // Copying and destroying walk the tree with an explicit stack, so a term of any depth
  // decode accepts is copied and freed without deep native recursion (as are decode,
  // encode, format_w and ==).
  Term(const Term& other);
  Term(Term&&) noexcept = default;
  Term& operator=(const Term& other);
  Term& operator=(Term&&) noexcept = default;
  ~Term();

  const Value& value() const { return value_; }

  // Convenience constructors.
  static Term atom(std::string_view name) { return Term(Atom{std::string(name)}); }
  static Term integer(std::int64_t v) { return Term(v); }
  static Term tuple(TermList elements) { return Term(Tuple{std::move(elements)}); }
  static Term list(TermList elements);  // proper list; [] when empty
  static Term binary(std::span<const std::uint8_t> bytes);
  static Term string(std::string_view bytes);  // a list of byte values, as "abc" in Erlang

  bool is_atom(std::string_view name) const;
  const Atom* as_atom() const { return std::get_if<Atom>(&value_); }
  const std::int64_t* as_int() const { return std::get_if<std::int64_t>(&value_); }
  const Tuple* as_tuple() const { return std::get_if<Tuple>(&value_); }
  const List* as_list() const { return std::get_if<List>(&value_); }
  const Binary* as_binary() const { return std::get_if<Binary>(&value_); }
  bool is_nil() const { return std::holds_alternative<Nil>(value_); }

  // Elements of a proper list ([] gives none); nullopt-like failure as an error Status.
  Result<TermList> list_elements() const;

  // Erlang's term equality (=:=).
  friend bool operator==(const Term& a, const Term& b);

 private:
  // Moves the children that have children of their own onto `work`, frees the rest.
  void detach_children(std::vector<Term>& work);

  Value value_;
};

struct DecodeLimits {
  std::size_t max_depth = 10000;
  std::size_t max_terms = 1u << 24;
  std::size_t max_inflated_bytes = 256u << 20;  // COMPRESSED (tag 80) terms
};

// binary_to_term/1: `bytes` starts with the version byte 131; a compressed term (tag 80)
// is inflated. Fails with kCorruption naming the tag and byte offset
// ("term: at offset 12: unknown tag 200"), kLimitExceeded naming the limit. Trailing bytes
// after the term are an error. Refuses what binary_to_term refuses (atoms over 255
// characters or not UTF-8, non-finite floats, repeated map keys). Normalizes: Latin-1
// atoms become UTF-8, integers that fit int64 are int64, [a|[b]] is one List. Pids, ports,
// references and funs become Opaque. Never recurses natively, whatever the depth.
Result<Term> decode(std::span<const std::uint8_t> bytes, const DecodeLimits& limits = DecodeLimits());

// term_to_binary/2's choices (never compressed).
struct EncodeOptions {
  // As Erlang's {minor_version, N}:
  //   2: atoms as SMALL_ATOM_UTF8_EXT / ATOM_UTF8_EXT (OTP 26's default; what the compiler
  //      writes into LitT on every release);
  //   1: atoms that are all Latin-1 as ATOM_EXT (OTP 25's default: Attr and CInf chunks);
  //   0: as 1, and floats as the 31-byte text FLOAT_EXT.
  int minor_version = 2;
};

// term_to_binary/2: with the version byte. Integers as SMALL_INTEGER/INTEGER/SMALL_BIG/
// LARGE_BIG, proper lists of bytes shorter than 65536 as STRING_EXT, maps in `pairs` order,
// Opaque terms as their raw bytes: encode(decode(B)) == B for what Erlang wrote with the
// same minor version. REQUIRES: atom names of at most 255 characters (longer ones are cut).
std::vector<std::uint8_t> encode(const Term& term, const EncodeOptions& options = EncodeOptions());

// io_lib:format("~tw", [Term]) exactly as OTP 25 prints it (UTF-8): atoms quoted where
// Erlang quotes them, floats as float_to_list(F, [short]), lists of integers as lists,
// binaries as <<1,2,3>>, maps of up to 32 keys in key order. Known differences: a map of
// more than 32 keys prints in erts's hash order, which depends on the running VM (an
// atom's hash is its atom-table index), so no decoder can know it; format_w prints such a
// map in the reverse of its encoded order, which is the order of the VM that wrote it with
// term_to_binary/1 (`deterministic` output, as in LitT, is sorted instead). A pid or port
// of another node prints as local (<0.N.S>): the node's index is not in the bytes.
std::string format_w(const Term& term);

}  // namespace codestore::etf

// Errors as values: every fallible call in the public API returns a Status or a
// Result<T>; it is the one error type of the API. A Status is a code (which kind of
// failure, for programs), where Erlang has one the Erlang reason (`not_purged`, `badfile`,
// `undef`...), where it applies the location in a file, and a message (what and where, for
// people). Messages gain context at each layer, outermost first:
//   "corruption: store app.db: module lists v7: md5 mismatch"
//
// Thread safety: Status and Result are plain values; distinct objects may be used from
// different threads, one object needs external synchronization for writes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace codestore {

// Which code to pick:
enum class Code {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed (a bad name, a bad option value)
  kNotFound,            // a named thing (module, version, release, file) does not exist
  kAlreadyExists,       // creating something whose name is taken
  kCorruption,          // bytes we read are damaged: an image, a stored blob, a database page
  kNotSupported,        // well-formed but beyond what we implement (newer schema, unknown opcode)
  kIOError,             // the operating system or SQLite failed to read or write
  kBusy,                // a lock was not granted within the timeout
  kPermissionDenied,    // read-only database or file, or an operation the mode forbids
  kFailedPrecondition,  // the state does not allow it (delete the active version, not_purged)
  kLimitExceeded,       // a hard limit on hostile input: size, count, depth
  kInternal,            // a broken invariant of ours; always a bug
  kCancelled,           // the caller asked to stop (an interrupt): nothing was written
};

// Short lowercase name of a code, e.g. "corruption"; used as the message prefix.
std::string_view code_name(Code code) noexcept;

// Where in a file or image a failure was found, for programs (the message says it for
// people): the file as given (or "<binary>"), the chunk id when one is involved, the byte
// offset in the (unwrapped) image.
struct Where {
  std::string file;
  std::string chunk;  // "" when no chunk is involved
  std::uint64_t offset = 0;
  bool operator==(const Where&) const = default;
};

// An OK Status is a null pointer: a Result<T> costs a pointer more than T, so the hot paths
// (a call through the code server returns Result<const Instance*>) move 16 bytes, not 48.
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // OK
  Status(Code code, std::string message);
  // With the Erlang reason: the atom Erlang's own function answers in `{error, Reason}` for
  // this failure ("not_purged", "sticky_directory", "badfile", "undef", "missing_chunk"...).
  Status(Code code, std::string_view reason, std::string message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status ok() noexcept { return Status(); }

  bool is_ok() const noexcept { return code() == Code::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const noexcept;
  // The Erlang reason ("" when Erlang has none for this failure).
  std::string_view reason() const noexcept {
    return rep_ ? std::string_view(rep_->reason) : std::string_view();
  }
  // Where in a file or image, when the failure is in one; nullptr otherwise.
  const Where* where() const noexcept { return rep_ && rep_->where ? &*rep_->where : nullptr; }

  // "corruption: lists.beam: chunk ExpT at offset 29100: ..." ("ok" for OK).
  std::string to_string() const;

  // Returns a copy whose message is prefixed with `context: `; code, reason and where are kept.
  Status with_context(std::string_view context) const;
  // Returns a copy with the Erlang reason / the location set (no effect on an OK Status).
  Status with_reason(std::string_view reason) const;
  Status with_where(Where where) const;

 private:
  struct Rep {
    Code code;
    std::string reason;
    std::string message;
    std::optional<Where> where;
  };
  std::unique_ptr<Rep> rep_;  // null when OK
};

// A value or the Status saying why there is none. A class rather than an alias of
// tl::expected so that it can be [[nodiscard]]: a dropped Result is a failure nobody saw, and
// the compiler warns of it. It is a tl::expected in every other way (value(), error(),
// and_then...); a tl::expected<T, Status> that those return converts back implicitly.
template <typename T>
class [[nodiscard]] Result : public tl::expected<T, Status> {
 public:
  using tl::expected<T, Status>::expected;
  Result(tl::expected<T, Status> other)
      : tl::expected<T, Status>(std::move(other)) {}  // NOLINT(google-explicit-constructor)
};

// Builds the error side of a Result: `return error(Code::kNotFound, "module m");`
inline tl::unexpected<Status> error(Code code, std::string message) {
  return tl::unexpected<Status>(Status(code, std::move(message)));
}
inline tl::unexpected<Status> error(Status status) {
  return tl::unexpected<Status>(std::move(status));
}

}  // namespace codestore

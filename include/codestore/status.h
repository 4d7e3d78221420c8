// Errors as values: every fallible call in the public API returns a Status or a
// Result<T>. A Status is a code (which kind of failure, for programs) and a message
// (what and where, for people). Messages gain context at each layer, outermost first:
//   "corruption: store app.db: module lists v7: md5 mismatch"
//
// Thread safety: Status and Result are plain values; distinct objects may be used from
// different threads, one object needs external synchronization for writes.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace codestore {

// Which code to pick:
enum class Code {
  kOk = 0,
  kInvalidArgument,    // the caller's input is malformed (a bad name, a bad option value)
  kNotFound,           // a named thing (module, version, release, file) does not exist
  kAlreadyExists,      // creating something whose name is taken
  kCorruption,         // bytes we read are damaged: an image, a stored blob, a database page
  kNotSupported,       // well-formed but beyond what we implement (newer schema, unknown opcode)
  kIOError,            // the operating system or SQLite failed to read or write
  kBusy,               // a lock was not granted within the timeout
  kPermissionDenied,   // read-only database or file, or an operation the mode forbids
  kFailedPrecondition, // the state does not allow it (delete the active version, not_purged)
  kLimitExceeded,      // a hard limit on hostile input: size, count, depth
  kInternal,           // a broken invariant of ours; always a bug
  kCancelled,          // the caller asked to stop (an interrupt): nothing was written
};

// Short lowercase name of a code, e.g. "corruption"; used as the message prefix.
std::string_view code_name(Code code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return Status(); }

  bool is_ok() const noexcept { return code_ == Code::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "corruption: lists.beam: chunk ExpT at offset 29100: ..." ("ok" for OK).
  std::string to_string() const;

  // Returns a copy whose message is prefixed with `context: `; the code is kept.
  Status with_context(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status saying why there is none.
template <typename T>
using Result = tl::expected<T, Status>;

// Builds the error side of a Result: `return error(Code::kNotFound, "module m");`
inline tl::unexpected<Status> error(Code code, std::string message) {
  return tl::unexpected<Status>(Status(code, std::move(message)));
}
inline tl::unexpected<Status> error(Status status) { return tl::unexpected<Status>(std::move(status)); }

}  // namespace codestore

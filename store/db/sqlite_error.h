// The one boundary where SQLiteCpp's exceptions become Status values (errors are values at the API).
// Code inside the store throws either SQLite::Exception (from SQLiteCpp) or StatusError
// (our own refusals deep in a call); guard() catches both and returns a Status whose message
// keeps SQLite's extended result code.
//
// Thread safety: stateless.
#pragma once

#include <codestore/status.h>

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>

namespace codestore::db {

// Carries a Status through code that unwinds (a transaction's destructor rolls back).
class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)) {}
  const char* what() const noexcept override { return status_.message().c_str(); }
  const Status& status() const noexcept { return status_; }

 private:
  Status status_;
};

[[noreturn]] inline void fail(Code code, std::string message) {
  throw StatusError(Status(code, std::move(message)));
}
inline void check(const Status& status) {
  if (!status) throw StatusError(status);
}

// Maps SQLite's result code to ours: BUSY/LOCKED -> kBusy, READONLY/PERM/AUTH ->
// kPermissionDenied, CORRUPT/NOTADB -> kCorruption, IOERR/CANTOPEN/FULL -> kIOError, ...
Code code_of_sqlite(int extended_code) noexcept;
// "database is locked (SQLITE_BUSY, extended code 5)"
std::string describe_sqlite(int extended_code, std::string_view what);

// The status for whatever exception is in flight; call inside a catch block.
Status current_exception_status(std::string_view context);

// Runs `body` (returning Status or Result<T>) and turns exceptions into errors with
// `context`: a string, or a callable that makes one. A callable is only run on failure, so
// a hot call (Store::get) does not format its context every time.
template <typename C, typename F>
auto guard(C&& context, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    Status s = [&] {
      if constexpr (std::is_invocable_v<C>) {
        return current_exception_status(context());
      } else {
        return current_exception_status(context);
      }
    }();
    if constexpr (std::is_same_v<decltype(body()), Status>) {
      return s;
    } else {
      return tl::unexpected<Status>(std::move(s));
    }
  }
}

}  // namespace codestore::db

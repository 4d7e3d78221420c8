#include "db/sqlite_error.h"

#include <SQLiteCpp/Exception.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <new>

namespace codestore::db {

namespace {

std::string_view primary_name(int primary) noexcept {
  switch (primary) {
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_INTERNAL: return "SQLITE_INTERNAL";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_ABORT: return "SQLITE_ABORT";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_INTERRUPT: return "SQLITE_INTERRUPT";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_NOTFOUND: return "SQLITE_NOTFOUND";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
    case SQLITE_SCHEMA: return "SQLITE_SCHEMA";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_MISMATCH: return "SQLITE_MISMATCH";
    case SQLITE_MISUSE: return "SQLITE_MISUSE";
    case SQLITE_AUTH: return "SQLITE_AUTH";
    case SQLITE_RANGE: return "SQLITE_RANGE";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    default: return "SQLITE_?";
  }
}

}  // namespace

Code code_of_sqlite(int extended_code) noexcept {
  switch (extended_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Code::kBusy;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return Code::kPermissionDenied;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Code::kCorruption;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL: return Code::kIOError;
    case SQLITE_TOOBIG: return Code::kLimitExceeded;
    case SQLITE_CONSTRAINT: return Code::kFailedPrecondition;
    default: return Code::kInternal;
  }
}

std::string describe_sqlite(int extended_code, std::string_view what) {
  return fmt::format("{} ({}, extended code {})", what, primary_name(extended_code & 0xff), extended_code);
}

Status current_exception_status(std::string_view context) {
  try {
    throw;
  } catch (const StatusError& e) {
    return e.status().with_context(context);
  } catch (const SQLite::Exception& e) {
    const int ext = e.getExtendedErrorCode() >= 0 ? e.getExtendedErrorCode() : e.getErrorCode();
    return Status(code_of_sqlite(ext), describe_sqlite(ext, e.what())).with_context(context);
  } catch (const std::bad_alloc&) {
    return Status(Code::kLimitExceeded, "out of memory").with_context(context);
  } catch (const std::exception& e) {
    return Status(Code::kInternal, e.what()).with_context(context);
  }
}

}  // namespace codestore::db

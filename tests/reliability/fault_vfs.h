// A fault-injecting SQLite VFS for tests, after SQLite's own I/O-error tests (test_vfs.c,
// "ioerr" in the TCL suite): it wraps the default VFS (unix) and makes the Nth write, sync
// or read, counted from when it is armed, fail with an I/O error, or makes the Nth write
// report a full disk. Open a database with it by name ("codestore_fault").
//
//   codestore::testing::FaultVfs::install();
//   FaultVfs::arm(FaultKind::kWrite, 3);   // the 3rd write from now fails (and every later one)
//   ... run an operation on a database opened with vfs "codestore_fault" ...
//   bool hit = FaultVfs::fired();
//   FaultVfs::disarm();
//
// Thread safety: the fault plan and counters are process-wide atomics; arm/disarm between
// operations, not during one running on another thread.
#pragma once

#include <cstdint>

namespace codestore::testing {

enum class FaultKind {
  kNone,
  kWrite,     // xWrite returns SQLITE_IOERR_WRITE
  kSync,      // xSync returns SQLITE_IOERR_FSYNC
  kRead,      // xRead returns SQLITE_IOERR_READ
  kDiskFull,  // xWrite (and xTruncate growing a file) returns SQLITE_FULL
};

const char* fault_kind_name(FaultKind kind);

class FaultVfs {
 public:
  static constexpr const char* kName = "codestore_fault";

  // Registers the VFS once per process; later calls do nothing. With `make_default` it
  // becomes SQLite's default VFS, so code that opens databases without naming a VFS (the
  // store, until StoreOptions has a vfs name) goes through it; disarmed, it only forwards.
  static void install(bool make_default = false);

  // From now on, counts calls of `kind` over every file opened through the VFS; call
  // number `nth` (1-based) fails, and so does every later one when `persistent` (a dead
  // disk) or none when not (a transient error).
  static void arm(FaultKind kind, std::int64_t nth, bool persistent = true);
  static void disarm();

  static bool fired();          // the armed fault has happened since arm()
  static std::int64_t count();  // calls of the armed kind since arm()
};

}  // namespace codestore::testing

// libFuzzer target "archive": see fuzz/entries.h for what it exercises.
#include <cstddef>
#include <cstdint>

#include "entries.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  codestore::fuzz::fuzz_archive(data, size);
  return 0;
}

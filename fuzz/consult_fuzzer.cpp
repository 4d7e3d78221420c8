// libFuzzer target "consult": see fuzz/entries.h for what it exercises.
#include <cstddef>
#include <cstdint>

#include "entries.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  codestore::fuzz::fuzz_consult(data, size);
  return 0;
}

// libFuzzer target "shell": see fuzz/shell_entry.h.
#include <cstddef>
#include <cstdint>

#include "shell_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  codestore::fuzz::fuzz_shell(data, size);
  return 0;
}

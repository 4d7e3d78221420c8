// Writes the damaged-image generator's variants of each image given into a directory, as
// seeds for the image fuzzer's working corpus (scripts/fuzz.sh runs it; the repo keeps
// only the small hand-picked seeds in fuzz/corpus/image/).
//
//   damage_seeds OUT_DIR IMAGE...
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "image/damage.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: damage_seeds OUT_DIR IMAGE...\n";
    return 2;
  }
  const std::string out = argv[1];
  int written = 0;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string base = std::string(argv[i]).substr(std::string(argv[i]).find_last_of('/') + 1);
    for (const auto& v : codestore::testing::damage_variants(bytes)) {
      std::ofstream f(out + "/damage-" + base + "-" + v.name, std::ios::binary);
      f.write(reinterpret_cast<const char*>(v.bytes.data()), static_cast<std::streamsize>(v.bytes.size()));
      ++written;
    }
  }
  std::cout << written << " damaged variants\n";
  return 0;
}

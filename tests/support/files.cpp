#include "support/files.h"

#include <gtest/gtest.h>

#include <exception>
#include <fstream>
#include <iterator>
#include <system_error>

namespace codestore::testing {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path.string() << " to read it";
    return {};
  }
  try {  // reading a directory throws from the stream buffer
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) ADD_FAILURE() << "cannot read " << path.string();
    return text;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot read " << path.string() << ": " << e.what();
    return {};
  }
}

std::vector<std::uint8_t> read_file(const fs::path& path) {
  const std::string text = read_text(path);
  return {text.begin(), text.end()};
}

void write_file(const fs::path& path, std::string_view text) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) ADD_FAILURE() << "cannot write " << path.string();
}

void write_file(const fs::path& path, std::span<const std::uint8_t> bytes) {
  write_file(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace codestore::testing

// Whole files for tests: one reader and one writer, so that a file a test cannot read fails
// the test instead of comparing as empty.
//
// Thread safety: free functions; thread-safe (gtest's failure reporting is).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::testing {

// The file's bytes; adds a test failure naming the file (and returns what was read, usually
// nothing) when it cannot be opened or read.
std::vector<std::uint8_t> read_file(const std::filesystem::path& path);

// The same bytes as text (outputs, logs, JSON).
std::string read_text(const std::filesystem::path& path);

// Writes `bytes` to `path`, replacing it, after making its parent directories; adds a test
// failure naming the file when that fails.
void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);
void write_file(const std::filesystem::path& path, std::string_view text);

}  // namespace codestore::testing

#include "support/corpus.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace codestore::testing {

namespace fs = std::filesystem;

std::vector<std::string> real_image_roots() {
  std::vector<std::string> roots;
  for (const char* root : {"/usr/lib/erlang/lib", "/usr/lib/elixir/lib"}) {
    std::error_code ec;
    if (fs::is_directory(root, ec)) roots.emplace_back(root);
  }
  return roots;
}

std::vector<std::string> real_images(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const auto& root : roots) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path& p = it->path();
      if (p.extension() == ".beam" && p.parent_path().filename() == "ebin" && it->is_regular_file(ec)) {
        out.push_back(p.string());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace codestore::testing

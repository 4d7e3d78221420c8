#include "base/app_dir.h"

#include <vector>

namespace codestore::base {

std::string app_name(std::string_view dir) {
  // filename:split/1: "/" first for an absolute name, then the non-empty components.
  std::vector<std::string_view> parts;
  if (dir.starts_with('/')) parts.emplace_back("/");
  for (std::size_t start = 0; start <= dir.size();) {
    std::size_t slash = dir.find('/', start);
    if (slash == std::string_view::npos) slash = dir.size();
    if (slash > start) parts.push_back(dir.substr(start, slash - start));
    start = slash + 1;
  }
  if (parts.empty()) return "";
  std::string_view name = parts.back();
  if (name == "ebin" && parts.size() >= 2) name = parts[parts.size() - 2];
  return std::string(name.substr(0, name.find('-')));
}

}  // namespace codestore::base

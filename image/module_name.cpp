// The one test of a module name that may become part of a file path: the store refuses to
// import an image under any other name, and the loader's path lookups never search for one.
#include <codestore/image.h>

namespace codestore::image {

bool is_safe_module_name(std::string_view name) noexcept {
  // "." and ".." name a directory, not a module, wherever the name is a path component.
  if (name.empty() || name == "." || name == "..") return false;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    // '/' and '\\' would leave the directory; NUL would cut the path short at the C API;
    // control characters (DEL included) are never part of a file name we want to write.
    // Bytes from 0x80 up stay: AtU8 atoms are UTF-8, which the image reader has checked.
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7F) return false;
  }
  return true;
}

}  // namespace codestore::image

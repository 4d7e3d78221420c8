#include "shell_libs.h"

namespace codestore::cli {

Result<std::shared_ptr<loader::LibSource>> open_shell_libs(const Context& ctx) {
  if (ctx.db_option.empty()) return std::shared_ptr<loader::LibSource>();
  // The store adapter arrives with include/codestore/store.h.
  return error(Code::kNotSupported, "--db: store libs are not available in this build");
}

}  // namespace codestore::cli

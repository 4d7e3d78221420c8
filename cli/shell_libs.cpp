#include "shell_libs.h"

#include <codestore/store.h>

namespace codestore::cli {

Result<std::shared_ptr<loader::LibSource>> open_shell_libs(const Context& ctx) {
  if (ctx.db_option.empty()) return std::shared_ptr<loader::LibSource>();
  StoreOptions options;
  options.create = false;  // rehearsing against a store that does not exist is a mistake
  auto store = Store::open(ctx.db_path(), options);
  if (!store) return error(store.error());
  return loader::store_lib_source(std::shared_ptr<Store>(std::move(*store)));
}

}  // namespace codestore::cli

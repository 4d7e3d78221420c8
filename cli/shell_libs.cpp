#include "shell_libs.h"

#include <codestore/store.h>

#include <filesystem>

namespace codestore::cli {

Result<ShellLibs> open_shell_libs(const Context& ctx) {
  const std::string path = ctx.db_path();
  std::error_code ec;
  if (ctx.db_option.empty() && !std::filesystem::exists(path, ec)) {
    return ShellLibs{nullptr,
                     "no database: " + path +
                         " does not exist (the shell uses --db, else $CODESTORE_DB, else ./codestore.db)"};
  }
  StoreOptions options;
  options.create = false;
  options.channel = ctx.channel;
  auto store = Store::open(path, options);
  if (!store) return error(store.error());
  return ShellLibs{loader::store_lib_source(std::shared_ptr<Store>(std::move(*store))), ""};
}

}  // namespace codestore::cli

// ModuleSource over the store. Placeholder until include/codestore/store.h lands.
#include <codestore/boot_server.h>

namespace codestore::server {

Result<std::unique_ptr<ModuleSource>> open_store_source(const std::string& db_path, const std::string& /*release*/) {
  return error(Code::kNotSupported, "store " + db_path + ": the store library is not built yet");
}

}  // namespace codestore::server

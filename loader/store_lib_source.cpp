#include <codestore/code_server.h>
#include <codestore/store.h>

#include <algorithm>

namespace codestore::loader {

namespace {

// Thread safety: as safe as Store (every Store call is serialized inside it).
class StoreLibSource : public LibSource {
 public:
  explicit StoreLibSource(std::shared_ptr<Store> store) : store_(std::move(store)) {}

  bool has_lib(const std::string& lib) override {
    auto libs = store_->libs();
    return libs && std::binary_search(libs->begin(), libs->end(), lib);
  }

  std::optional<std::vector<std::uint8_t>> active_image(const std::string& lib,
                                                        const std::string& module) override {
    // The metadata first: a module of another lib (the common case on a long path) costs
    // no decompression.
    auto info = store_->active_info(module);
    if (!info || info->lib != lib) return std::nullopt;
    auto image = store_->get(module, info->version);
    if (!image) return std::nullopt;
    return std::move(*image);
  }

  std::vector<std::string> modules(const std::string& lib) override {
    std::vector<std::string> names;
    if (auto rows = store_->lib_modules(lib)) {
      for (const auto& row : *rows) names.push_back(row.module);
    }
    return names;
  }

  void record_event(const std::string& kind, const std::string& module, const std::string& detail) override {
    // The history is a record, not a precondition: a failed write must not undo a load.
    (void)store_->record_event(kind, module, Reason(detail));
  }

 private:
  std::shared_ptr<Store> store_;
};

}  // namespace

std::shared_ptr<LibSource> store_lib_source(std::shared_ptr<Store> store) {
  return std::make_shared<StoreLibSource>(std::move(store));
}

}  // namespace codestore::loader

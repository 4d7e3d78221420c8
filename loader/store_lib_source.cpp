#include <codestore/code_server.h>
#include <codestore/store.h>
#include <codestore/store_reader.h>

#include <algorithm>

namespace codestore::loader {

namespace {

// Thread safety: as safe as StoreReader (safe for concurrent use).
class StoreLibSource : public LibSource {
 public:
  explicit StoreLibSource(std::shared_ptr<StoreReader> reader) : reader_(std::move(reader)) {}

  bool has_lib(const std::string& lib) override {
    if (!reader_->refresh()) return false;
    auto libs = reader_->libs();
    return libs && std::binary_search(libs->begin(), libs->end(), lib);
  }

  Status refresh() override {
    auto g = reader_->refresh();
    return g ? Status::ok() : g.error();
  }

  Result<std::optional<LibImage>> active_image(const std::string& lib, const std::string& module,
                                               LibRead read) override {
    // The metadata first: a module of another lib (the common case on a long path) costs
    // no image read.
    auto info = reader_->active(module);
    if (!info) {
      if (info.error().code() == Code::kNotFound) return std::nullopt;
      return tl::unexpected(info.error());
    }
    const ModuleVersion& v = **info;
    if (v.lib != lib) return std::nullopt;
    LibImage out;
    out.md5 = v.md5;
    out.version = *info;
    if (read == LibRead::kBytes) {
      auto bytes = reader_->bytes(v.module, v.version);
      if (!bytes) return tl::unexpected(bytes.error());
      out.bytes = std::move(*bytes);
    }
    return out;
  }

  Result<std::shared_ptr<const CheckedImage>> check(const LibImage& image,
                                                    const std::string& origin) override {
    return reader_->checked_image(*image.version, origin);
  }

  Result<std::shared_ptr<const LibModules>> lib_modules(const std::string& lib) override {
    return reader_->lib(lib);
  }

  void record_event(const std::string& kind, const std::string& module, const std::string& detail) override {
    // The history is a record, not a precondition: a failed write must not undo a load.
    (void)reader_->store().record_event(kind, module, Reason(detail));
  }

 private:
  std::shared_ptr<StoreReader> reader_;
};

}  // namespace

std::shared_ptr<LibSource> store_lib_source(std::shared_ptr<Store> store) {
  return store_lib_source(std::make_shared<StoreReader>(std::move(store)));
}

std::shared_ptr<LibSource> store_lib_source(std::shared_ptr<StoreReader> reader) {
  return std::make_shared<StoreLibSource>(std::move(reader));
}

}  // namespace codestore::loader

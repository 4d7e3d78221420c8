#include "code_path.h"

#include <codestore/image.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>

#include "base/app_dir.h"
#include "base/file.h"

namespace codestore::loader::detail {

namespace {
constexpr std::string_view kLibPrefix = "lib:";
constexpr std::string_view kBeam = ".beam";

}  // namespace

std::string PathEntry::file_of(std::string_view module) const {
  std::string file = dir;
  file += '/';
  file += module;
  file += kBeam;
  return file;
}

std::string normalize_dir(std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return std::string(dir);
}

std::string app_name(std::string_view dir) {
  if (dir.starts_with(kLibPrefix)) return std::string(dir.substr(kLibPrefix.size()));
  return base::app_name(dir);
}

PathEntry make_entry(std::string_view dir) {
  PathEntry entry;
  entry.dir = normalize_dir(dir);
  if (std::string_view(entry.dir).starts_with(kLibPrefix)) {
    entry.lib = entry.dir.substr(kLibPrefix.size());
  }
  entry.app = app_name(entry.dir);
  return entry;
}

std::optional<std::vector<std::uint8_t>> read_file(const std::string& path) {
  // No limit here: a file found on the path is the module's, and one past max_image_bytes
  // must be refused by the parse (badfile), not skipped as missing (nofile).
  auto bytes = base::read_file(path, SIZE_MAX);
  if (!bytes) return std::nullopt;
  return std::move(*bytes);
}

std::vector<std::string> CodePath::dirs() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.dir);
  return out;
}

bool CodePath::valid(const PathEntry& entry) const {
  if (entry.is_lib()) return libs_ != nullptr && libs_->has_lib(entry.lib);
  std::error_code ec;
  return !entry.dir.empty() && std::filesystem::is_directory(entry.dir, ec);
}

Status CodePath::set(const std::vector<std::string>& dirs) {
  std::vector<PathEntry> next;
  for (const auto& d : dirs) {
    PathEntry entry = make_entry(d);
    if (!valid(entry)) return Status(Code::kInvalidArgument, "bad_directory: " + d);
    next.push_back(std::move(entry));
  }
  entries_ = std::move(next);
  return Status::ok();
}

Status CodePath::add_z(std::string_view dir) {
  PathEntry entry = make_entry(dir);
  if (!valid(entry)) return Status(Code::kInvalidArgument, "bad_directory: " + std::string(dir));
  // An entry already present keeps its position (OTP).
  if (std::none_of(entries_.begin(), entries_.end(),
                   [&](const PathEntry& e) { return e.dir == entry.dir; })) {
    entries_.push_back(std::move(entry));
  }
  return Status::ok();
}

Status CodePath::add_a(std::string_view dir) {
  PathEntry entry = make_entry(dir);
  if (!valid(entry)) return Status(Code::kInvalidArgument, "bad_directory: " + std::string(dir));
  std::erase_if(entries_, [&](const PathEntry& e) { return e.dir == entry.dir; });
  entries_.insert(entries_.begin(), std::move(entry));
  return Status::ok();
}

bool CodePath::del(std::string_view name_or_dir) {
  // OTP's del_path1: the first entry whose app name or whole dir matches.
  std::string wanted = normalize_dir(name_or_dir);
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const PathEntry& e) { return e.app == wanted || e.dir == wanted; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

Status CodePath::replace(std::string_view name, std::string_view dir) {
  PathEntry entry = make_entry(dir);
  if (!valid(entry)) return Status(Code::kInvalidArgument, "bad_directory: " + std::string(dir));
  if (entry.app != name) return Status(Code::kNotFound, "bad_name: " + std::string(name));
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const PathEntry& e) { return e.app == name; });
  if (it == entries_.end()) {
    entries_.push_back(std::move(entry));
  } else {
    *it = std::move(entry);
  }
  return Status::ok();
}

Status CodePath::refresh_libs() const {
  if (libs_ == nullptr) return Status::ok();
  if (std::none_of(entries_.begin(), entries_.end(), [](const PathEntry& e) { return e.is_lib(); }))
    return Status::ok();
  return libs_->refresh();
}

Result<std::vector<std::shared_ptr<const LibModules>>> CodePath::lib_tables() const {
  std::vector<std::shared_ptr<const LibModules>> tables(entries_.size());
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].is_lib() || libs_ == nullptr) continue;
    auto lib = libs_->lib_modules(entries_[i].lib);
    if (!lib) return tl::unexpected(lib.error());
    tables[i] = std::move(*lib);
  }
  return tables;
}

const ModuleSummary* CodePath::first_in_lib(
    std::string_view module, const std::vector<std::shared_ptr<const LibModules>>& tables) const {
  if (!image::is_safe_module_name(module)) return nullptr;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].is_lib()) {
      if (tables[i] == nullptr) continue;
      if (const ModuleSummary* row = tables[i]->find(module)) return row;
      continue;
    }
    // A readable file here comes first (what find() would read).
    if (std::FILE* f = std::fopen(entries_[i].file_of(module).c_str(), "rb")) {
      std::fclose(f);
      return nullptr;
    }
  }
  return nullptr;
}

Result<std::optional<CodePath::Found>> CodePath::find(std::string_view module, LibRead read,
                                                      bool refresh) const {
  // A name that is not safe as a file name never matches (OTP: 'bad/name' -> nofile): the
  // same test the store applies on import, so no lookup leaves a directory or is cut short.
  if (!image::is_safe_module_name(module)) return std::nullopt;
  if (refresh) {
    if (Status s = refresh_libs(); !s) return tl::unexpected(s);
  }
  for (const auto& entry : entries_) {
    if (entry.is_lib()) {
      if (libs_ == nullptr) continue;
      auto image = libs_->active_image(entry.lib, std::string(module), read);
      if (!image) return tl::unexpected(image.error());
      if (!*image) continue;
      return Found{entry.file_of(module), &entry, std::move((*image)->bytes), std::move((*image)->md5),
                   std::move((*image)->version)};
    }
    if (auto bytes = read_file(entry.file_of(module))) {
      return Found{entry.file_of(module), &entry,
                   std::make_shared<const std::vector<std::uint8_t>>(std::move(*bytes)), "", nullptr};
    }
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> CodePath::list(const PathEntry& entry) const {
  if (entry.is_lib()) {
    if (libs_ == nullptr || !libs_->has_lib(entry.lib)) return std::nullopt;  // has_lib refreshes
    auto lib = libs_->lib_modules(entry.lib);
    if (!lib) return std::nullopt;
    std::vector<std::string> names;
    for (const auto& row : (*lib)->modules) names.push_back(row.module);
    return names;
  }
  std::error_code ec;
  std::filesystem::directory_iterator it(entry.dir, ec);
  if (ec) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& item : it) {
    std::string file = item.path().filename().string();
    if (std::string_view(file).ends_with(kBeam) && file.size() > kBeam.size())
      names.push_back(file.substr(0, file.size() - kBeam.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string> CodePath::where_is_file(std::string_view file_name) const {
  for (const auto& entry : entries_) {
    if (entry.is_lib()) {
      if (!file_name.ends_with(kBeam)) continue;
      auto names = list(entry);
      std::string module(file_name.substr(0, file_name.size() - kBeam.size()));
      if (names && std::binary_search(names->begin(), names->end(), module)) return entry.file_of(module);
      continue;
    }
    std::string candidate = entry.dir + "/" + std::string(file_name);
    std::error_code ec;
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

std::vector<Clash> CodePath::clash() const {
  std::map<std::string, std::string> first;  // module -> the file that wins
  std::vector<Clash> out;
  for (const auto& entry : entries_) {
    auto names = list(entry);
    if (!names) continue;
    for (const auto& m : *names) {
      auto [it, inserted] = first.emplace(m, entry.file_of(m));
      if (!inserted) out.push_back(Clash{m, it->second, entry.file_of(m)});
    }
  }
  return out;
}

std::optional<std::string> CodePath::lib_dir(std::string_view app) const {
  for (const auto& entry : entries_) {
    if (entry.app != app) continue;
    std::string_view dir = entry.dir;
    if (dir.ends_with("/ebin")) dir.remove_suffix(5);
    return std::string(dir);
  }
  return std::nullopt;
}

}  // namespace codestore::loader::detail

// The import planner (include/codestore/import_plan.h): OTP's path rules and the walk of
// directories, apart from the store that imports what it finds.
#include <codestore/import_plan.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <optional>
#include <set>

#include "base/app_dir.h"

namespace codestore {

namespace {

namespace fs = std::filesystem;

// A refusal deep in the walk, carried out to plan_import.
struct WalkError {
  Status status;
};
[[noreturn]] void fail(Code code, std::string message) {
  throw WalkError{Status(code, std::move(message))};
}

// OTP's split/2 in code_server: the tokens between separators, empty ones dropped.
std::vector<std::string> split_tokens(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t end = std::min(s.find(sep, start), s.size());
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// An `<app>-<vsn>` directory as code_server's create_bundle/2 sees it, compared as Erlang
// compares its term {Name, NumVsn, FullName}: split_base/1 cuts at the last '-' (tokens
// joined back with '-'), vsn_to_num/1 reads "X.Y.Z" as [X, Y, Z]; a name without such a
// version is {FullName, [0], FullName}. choose_bundles/1 keeps the greatest of each Name, so
// 0.10.0 beats 0.9.0 and 1.0.0 beats 1.0.
struct Bundle {
  std::string name;
  std::vector<std::string> vsn;  // integers as digits without leading zeros: any size, as Erlang's
  std::string full;

  static Bundle of(const std::string& dir_name) {
    const auto parts = split_tokens(dir_name, '-');
    if (parts.size() >= 2) {
      auto nums = split_tokens(parts.back(), '.');
      const bool numeric = std::all_of(nums.begin(), nums.end(), [](const std::string& t) {
        return std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
      });
      if (numeric) {
        for (auto& n : nums) {
          n.erase(0, std::min(n.find_first_not_of('0'), n.size() - 1));
        }
        std::string name = parts[0];
        for (std::size_t i = 1; i + 1 < parts.size(); ++i) name += "-" + parts[i];
        return {name, nums, dir_name};
      }
    }
    return {dir_name, {"0"}, dir_name};
  }
  friend bool operator<(const Bundle& a, const Bundle& b) {
    if (a.name != b.name) return a.name < b.name;
    const auto integer_less = [](const std::string& x, const std::string& y) {
      return x.size() != y.size() ? x.size() < y.size() : x < y;
    };
    if (a.vsn != b.vsn)
      return std::lexicographical_compare(a.vsn.begin(), a.vsn.end(), b.vsn.begin(), b.vsn.end(),
                                          integer_less);
    return a.full < b.full;
  }
};

// Of several files of one import that carry the same module, which goes last (and so ends
// active): files in `<app>-<vsn>/ebin/` after files elsewhere, by OTP's bundle order among
// them, then by path.
bool placed_before(const std::string& a, const std::string& b) {
  const auto bundle = [](const std::string& file) -> std::optional<Bundle> {
    const fs::path dir = fs::path(file).parent_path();
    if (dir.filename() != "ebin" || dir.parent_path().filename().empty()) return std::nullopt;
    return Bundle::of(dir.parent_path().filename().string());
  };
  const auto ba = bundle(a), bb = bundle(b);
  if (ba.has_value() != bb.has_value()) return !ba.has_value();
  if (ba && (*ba < *bb || *bb < *ba)) return *ba < *bb;
  return a < b;
}

// The `*.beam` files of an import. Directories are walked sorted and follow symlinked
// directories (a `rebar3 release` makes every lib/* entry a link), each real directory and
// file once: a link to a directory being walked (a loop) and a dangling link are skipped
// with a warning; a second path to a directory or file already found is skipped silently.
struct TreeWalk {
  std::set<fs::path> dirs_seen, files_seen;  // real paths
  std::vector<fs::path> walking;             // real paths of the directories being walked
  std::vector<std::string> files, warnings;
  std::size_t beams = 0;  // `*.beam` files met, duplicates included

  static fs::path real(const fs::path& p) {
    std::error_code ec;
    auto r = fs::canonical(p, ec);
    if (ec) fail(Code::kIOError, fmt::format("{}: {}", p.string(), ec.message()));
    return r;
  }
  void add_file(const fs::path& p) {
    ++beams;
    if (files_seen.insert(real(p)).second) files.push_back(p.string());
  }
  // Walks `root` (a directory given by the user); false when it was walked already.
  bool add_root(const fs::path& root) {
    const fs::path r = real(root);
    if (!dirs_seen.insert(r).second) return false;
    walking.push_back(r);
    walk(root);
    walking.pop_back();
    return true;
  }
  void walk(const fs::path& dir) {
    std::vector<fs::directory_entry> entries;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    if (ec) fail(Code::kIOError, fmt::format("{}: {}", dir.string(), ec.message()));
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.path() < b.path(); });
    for (const auto& e : entries) {
      const fs::path& p = e.path();
      std::error_code lec;
      const bool link = e.is_symlink(lec);
      const auto st = fs::status(p, lec);  // through links
      if (lec || !fs::exists(st)) {
        if (!link) fail(Code::kIOError, fmt::format("{}: {}", p.string(), lec.message()));
        warnings.push_back(fmt::format("{}: a dangling link (to {}): skipped", p.string(),
                                       fs::read_symlink(p, lec).string()));
        continue;
      }
      if (fs::is_directory(st)) {
        const fs::path r = real(p);
        if (std::find(walking.begin(), walking.end(), r) != walking.end()) {
          warnings.push_back(
              fmt::format("{}: a link loop (back to {}): not followed", p.string(), r.string()));
          continue;
        }
        if (!dirs_seen.insert(r).second) continue;
        walking.push_back(r);
        walk(p);
        walking.pop_back();
      } else if (fs::is_regular_file(st) && p.extension() == ".beam") {
        add_file(p);
      }
    }
  }
};

}  // namespace

std::string lib_of_path(std::string_view file_path) {
  const fs::path dir = fs::path(file_path).parent_path();
  if (dir.filename() != "ebin" || dir.parent_path().filename().empty()) return "";
  return base::app_name(dir.string());
}

Result<ImportPlan> plan_import(const std::vector<std::string>& paths,
                               const std::function<bool()>& interrupted) {
  // The files, in a stable order: each argument in turn, directories walked sorted.
  TreeWalk walk;
  try {
    for (const auto& path : paths) {
      std::error_code ec;
      const auto st = fs::status(path, ec);
      if (ec || !fs::exists(st)) fail(Code::kNotFound, fmt::format("{}: no such file or directory", path));
      if (fs::is_directory(st)) {
        const std::size_t before = walk.files.size(), beams = walk.beams;
        if (!walk.add_root(path)) continue;
        if (walk.beams == beams) {
          fail(Code::kNotFound,
               fmt::format("{}: no module images (*.beam files) in this directory or below it", path));
        }
        std::sort(walk.files.begin() + static_cast<std::ptrdiff_t>(before), walk.files.end());
      } else {
        walk.add_file(path);
      }
      if (interrupted && interrupted()) return error(Code::kCancelled, "interrupted: nothing imported");
    }
  } catch (const WalkError& e) {
    return error(e.status);
  }
  ImportPlan plan;
  plan.warnings = std::move(walk.warnings);
  const std::size_t n = walk.files.size();
  // Precedence: each file's place in OTP's order over the whole plan.
  std::vector<std::size_t> ranked(n);
  std::iota(ranked.begin(), ranked.end(), std::size_t{0});
  std::sort(ranked.begin(), ranked.end(),
            [&](std::size_t a, std::size_t b) { return placed_before(walk.files[a], walk.files[b]); });
  plan.files.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    plan.files[i].path = walk.files[i];
    plan.files[i].lib = lib_of_path(walk.files[i]);
  }
  for (std::size_t rank = 0; rank < n; ++rank) plan.files[ranked[rank]].precedence = rank;
  return plan;
}

}  // namespace codestore

#include "archive/member_path.h"

#include <fmt/format.h>

#include <deque>
#include <vector>

#include "base/utf8.h"

namespace codestore::archive::internal {

namespace {

// Linux's limit on links followed in one lookup (MAXSYMLINKS): past it, ELOOP.
constexpr int kMaxLinkHops = 40;

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t slash = s.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? s.size() : slash;
    parts.push_back(s.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) {
    if (!s.empty()) s += '/';
    s += p;
  }
  return s;
}

}  // namespace

tl::expected<std::string, Refusal> normalize_member_path(std::string_view raw) {
  if (raw.empty()) return tl::unexpected(Refusal("empty path"));
  if (raw.front() == '/') return tl::unexpected(Refusal("absolute path"));
  if (raw.find('\0') != std::string_view::npos) return tl::unexpected(Refusal("path has a NUL byte"));
  if (raw.find('\\') != std::string_view::npos)
    return tl::unexpected(Refusal("path has a backslash (a Windows separator)"));
  if (!base::is_utf8(raw)) return tl::unexpected(Refusal("path is not UTF-8"));
  std::string out;
  for (const std::string_view part : split(raw)) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return tl::unexpected(Refusal("path has a '..' component"));
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

tl::expected<std::string, Refusal> resolve_link(std::string_view link_path, std::string_view target,
                                                const std::unordered_map<std::string, std::string>& links) {
  if (target.empty()) return tl::unexpected(Refusal("symbolic link with an empty target"));
  if (target.front() == '/')
    return tl::unexpected(Refusal(fmt::format("symbolic link to absolute path {}", quote(target))));
  // Where we are: the link's own directory, as components.
  std::vector<std::string> at;
  for (const auto part : split(link_path)) at.emplace_back(part);
  if (!at.empty()) at.pop_back();
  std::deque<std::string> todo;
  for (const auto part : split(target)) todo.emplace_back(part);
  int hops = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (at.empty())
        return tl::unexpected(Refusal(fmt::format("symbolic link to {} leaves the archive", quote(target))));
      at.pop_back();
      continue;
    }
    at.push_back(std::move(part));
    const auto link = links.find(join(at));
    if (link == links.end()) continue;
    // A link on the way: the kernel would go on from its target, relative to its directory.
    if (++hops > kMaxLinkHops)
      return tl::unexpected(Refusal(fmt::format(
          "symbolic link to {}: more than {} links on the way (a loop?)", quote(target), kMaxLinkHops)));
    if (link->second.empty() || link->second.front() == '/')
      return tl::unexpected(Refusal(fmt::format("symbolic link to {} passes through {}, a link to {}",
                                                quote(target), quote(link->first), quote(link->second))));
    at.pop_back();
    const auto next = split(link->second);
    todo.insert(todo.begin(), next.begin(), next.end());
  }
  return join(at);
}

std::string quote(std::string_view s, std::size_t max) {
  std::string out = "'";
  std::size_t i = 0;
  while (i < s.size() && i < max) {
    std::uint32_t cp = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = base::utf8_one(p, s.size(), i, &cp);
    if (n == 0 || cp < 0x20 || cp == 0x7f) {
      out += fmt::format("\\x{:02x}", p[i]);
      ++i;
      continue;
    }
    if (cp == '\'' || cp == '\\') out += '\\';
    out.append(s.substr(i, n));
    i += n;
  }
  if (i < s.size()) out += "...";
  out += '\'';
  return out;
}

}  // namespace codestore::archive::internal

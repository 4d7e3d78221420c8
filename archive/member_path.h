// The rules for member paths and link targets (docs/archives.md): pure string functions, kept
// apart from libarchive so that tests can give them any path.
//
// Thread safety: pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <unordered_map>

namespace codestore::archive::internal {

// Why a path or a target is refused, for the message ("has a '..' component").
using Refusal = std::string;

// A member path as the archive has it, made relative and '/'-separated: "." and empty
// components dropped, a trailing '/' dropped ("./lib//a/" -> "lib/a"; "./" -> "", the root).
// Refused: an empty path, an absolute one, a ".." component, a NUL or a backslash (a Windows
// separator), bytes that are not UTF-8.
tl::expected<std::string, Refusal> normalize_member_path(std::string_view raw);

// Where the symbolic link at `link_path` (normalized) with target `target` leads, as a
// normalized path ("" for the root), following the links of the archive it passes through
// (`links`: normalized link path -> target) as the kernel would, at most 40 of them.
// Refused: an empty or absolute target, one that leaves the archive's root, a loop.
tl::expected<std::string, Refusal> resolve_link(std::string_view link_path, std::string_view target,
                                                const std::unordered_map<std::string, std::string>& links);

// `s` for a message: quoted, with control characters and bytes that are not UTF-8 as \xNN,
// cut after `max` bytes.
std::string quote(std::string_view s, std::size_t max = 200);

}  // namespace codestore::archive::internal

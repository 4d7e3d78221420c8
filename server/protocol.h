// The boot-server wire format: requests decoded from terms, answers built as terms, the
// file_info record, and the UDP discovery datagrams. Pure functions, no I/O.
//
// Thread safety: free functions over values; thread-safe.
#pragma once

#include <codestore/status.h>
#include <codestore/term.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codestore::server::protocol {

inline constexpr std::string_view kDiscoveryRequest = "EBOOTQ";
inline constexpr std::string_view kDiscoveryReply = "EBOOTR";
inline constexpr int kDiscoveryPort = 4368;

enum class Command { kGet, kListDir, kReadFileInfo, kReadLinkInfo, kGetCwd };

// The atom that tags the answer: get, list_dir, read_file_info, read_link_info, get_cwd.
std::string_view command_name(Command command) noexcept;

struct Request {
  Command command = Command::kGet;
  // The file name as UTF-8 bytes (get_cwd: empty). Valid only when `path_ok`.
  std::string path;
  // False when the name is not a flat string, binary or atom: the answer is
  // {Cmd, {error, badarg}}, as prim_file gives for such a name.
  bool path_ok = true;
  // {get_cwd, Drive}: set when a drive was given.
  bool has_drive = false;
};

enum class RequestError {
  kUndecodable,  // not external term format: {error, badarg}
  kUnknown,      // a term, but no request: {error, unknown_command}
};

struct ParsedRequest {
  std::optional<Request> request;
  RequestError error = RequestError::kUndecodable;
  std::string detail;  // for the log: why it failed
};

// Decodes one frame's payload. Strict limits: a request is a path, so small and shallow.
ParsedRequest parse_request(std::span<const std::uint8_t> frame);

// Answers, already term_to_binary'd.
std::vector<std::uint8_t> error_reply(std::string_view reason);                     // {error, Reason}
std::vector<std::uint8_t> command_error(Command command, std::string_view reason);  // {Cmd, {error, Reason}}
std::vector<std::uint8_t> command_error_term(Command command, const etf::Term& reason);
std::vector<std::uint8_t> get_reply(std::span<const std::uint8_t> bytes);  // {get, {ok, Bin}}
// get_reply(bytes) without the bytes: what precedes `size` bytes of Bin.
std::vector<std::uint8_t> get_reply_head(std::size_t size);
std::vector<std::uint8_t> list_dir_reply(const std::vector<std::string>& names);  // {list_dir, {ok, Names}}
std::vector<std::uint8_t> cwd_reply(std::string_view cwd);                        // {get_cwd, {ok, Cwd}}

// kernel/include/file.hrl's #file_info{}; times are Unix seconds, sent as local time
// {{Y,M,D},{H,Mi,S}} as prim_file:read_file_info/1 gives them.
struct FileInfo {
  std::uint64_t size = 0;
  enum class Type { kDevice, kDirectory, kOther, kRegular, kSymlink } type = Type::kRegular;
  enum class Access { kRead, kWrite, kReadWrite, kNone } access = Access::kRead;
  std::int64_t atime = 0, mtime = 0, ctime = 0;
  std::uint32_t mode = 0;
  std::uint64_t links = 1;
  std::uint64_t major_device = 0, minor_device = 0, inode = 0;
  std::uint32_t uid = 0, gid = 0;
};
etf::Term file_info_term(const FileInfo& info);
// {read_file_info | read_link_info, {ok, #file_info{}}}
std::vector<std::uint8_t> file_info_reply(Command command, const FileInfo& info);

// A file name as Erlang's unicode file name mode gives it: a list of code points (bytes
// that are not UTF-8 become one element each).
etf::Term name_term(std::string_view utf8);

// UDP discovery.
// The version the client sent, or nullopt when the datagram is no discovery request.
std::optional<std::string> parse_discovery(std::span<const std::uint8_t> datagram);
std::vector<std::uint8_t> discovery_reply(std::uint8_t priority, std::uint16_t tcp_port,
                                          std::string_view version);

// Frame header: u32 big-endian payload length.
inline std::uint32_t frame_length(const std::uint8_t header[4]) {
  return (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
         (std::uint32_t{header[2]} << 8) | std::uint32_t{header[3]};
}

}  // namespace codestore::server::protocol

#include "protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "base/big_endian.h"
#include "base/utf8.h"

namespace codestore::server::protocol {

using etf::Term;
using etf::TermList;

std::string_view command_name(Command command) noexcept {
  switch (command) {
    case Command::kGet: return "get";
    case Command::kListDir: return "list_dir";
    case Command::kReadFileInfo: return "read_file_info";
    case Command::kReadLinkInfo: return "read_link_info";
    case Command::kGetCwd: return "get_cwd";
  }
  return "get";
}

namespace {

// A file name as prim_file accepts it: a flat list of code points, a binary (raw bytes),
// or an atom. Deep lists are refused (prim_file wants flat names too).
std::optional<std::string> path_of(const Term& t) {
  if (t.is_nil()) return std::string();
  if (const etf::Binary* b = t.as_binary()) {
    if (b->bits != 8 && !b->bytes.empty()) return std::nullopt;
    return std::string(b->bytes.begin(), b->bytes.end());
  }
  if (const etf::Atom* a = t.as_atom()) return a->name;
  const etf::List* l = t.as_list();
  if (l == nullptr) return std::nullopt;
  auto elements = t.list_elements();
  if (!elements) return std::nullopt;
  std::string out;
  out.reserve(elements->size());
  for (const Term& e : *elements) {
    const std::int64_t* c = e.as_int();
    if (c == nullptr || *c < 0 || *c > 0x10FFFF || (*c >= 0xD800 && *c <= 0xDFFF)) return std::nullopt;
    base::append_utf8(out, static_cast<std::uint32_t>(*c));
  }
  return out;
}

Term ok(Term value) {
  return Term::tuple({Term::atom("ok"), std::move(value)});
}
Term err(Term reason) {
  return Term::tuple({Term::atom("error"), std::move(reason)});
}

Term local_time(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::localtime_r(&t, &tm) == nullptr) tm = std::tm{};
  auto i = [](int v) { return Term::integer(v); };
  return Term::tuple({Term::tuple({i(tm.tm_year + 1900), i(tm.tm_mon + 1), i(tm.tm_mday)}),
                      Term::tuple({i(tm.tm_hour), i(tm.tm_min), i(tm.tm_sec)})});
}

Term uint_term(std::uint64_t v) {
  if (v <= static_cast<std::uint64_t>(INT64_MAX)) return Term::integer(static_cast<std::int64_t>(v));
  etf::BigInt big;
  for (; v != 0; v >>= 8) big.magnitude.push_back(static_cast<std::uint8_t>(v & 0xFF));
  return Term(big);
}

}  // namespace

ParsedRequest parse_request(std::span<const std::uint8_t> frame) {
  ParsedRequest parsed;
  etf::DecodeLimits limits;
  limits.max_depth = 16;
  limits.max_terms = frame.size() + 16;  // no term is smaller than a byte
  limits.max_inflated_bytes = 1u << 20;
  auto term = etf::decode(frame, limits);
  if (!term) {
    parsed.error = RequestError::kUndecodable;
    parsed.detail = term.error().to_string();
    return parsed;
  }
  parsed.error = RequestError::kUnknown;
  if (term->is_atom("get_cwd")) {
    parsed.request = Request{Command::kGetCwd, {}, true, false};
    return parsed;
  }
  const etf::Tuple* t = term->as_tuple();
  if (t == nullptr || t->elements.size() != 2 || t->elements[0].as_atom() == nullptr) {
    parsed.detail = "not a request: " + etf::format_w(*term).substr(0, 200);
    return parsed;
  }
  const std::string& tag = t->elements[0].as_atom()->name;
  Request r;
  if (tag == "get") {
    r.command = Command::kGet;
  } else if (tag == "list_dir") {
    r.command = Command::kListDir;
  } else if (tag == "read_file_info") {
    r.command = Command::kReadFileInfo;
  } else if (tag == "read_link_info") {
    r.command = Command::kReadLinkInfo;
  } else if (tag == "get_cwd") {
    r.command = Command::kGetCwd;
    r.has_drive = true;
    parsed.request = r;
    return parsed;
  } else {
    parsed.detail = "unknown command " + etf::format_w(t->elements[0]).substr(0, 200);
    return parsed;
  }
  auto path = path_of(t->elements[1]);
  // A NUL would cut the name short at the system call: prim_file refuses such names too.
  if (path && path->find('\0') == std::string::npos) {
    r.path = std::move(*path);
  } else {
    r.path_ok = false;
  }
  parsed.request = std::move(r);
  return parsed;
}

std::vector<std::uint8_t> error_reply(std::string_view reason) {
  return etf::encode(err(Term::atom(reason)));
}

std::vector<std::uint8_t> command_error_term(Command command, const Term& reason) {
  return etf::encode(Term::tuple({Term::atom(command_name(command)), err(reason)}));
}

std::vector<std::uint8_t> command_error(Command command, std::string_view reason) {
  return command_error_term(command, Term::atom(reason));
}

std::vector<std::uint8_t> get_reply_head(std::size_t size) {
  // Built by hand: encoding through a Term would copy a module image twice more.
  // {get, {ok, <<Bytes>>}} = 131, SMALL_TUPLE 2, ATOM get, SMALL_TUPLE 2, ATOM ok, BINARY.
  static constexpr std::uint8_t kHead[] = {131, 104, 2, 119, 3, 'g', 'e', 't', 104, 2, 119, 2, 'o', 'k', 109};
  constexpr std::size_t kHeadSize = sizeof kHead;
  std::vector<std::uint8_t> out(kHeadSize + 4);
  std::memcpy(out.data(), kHead, kHeadSize);
  auto n = static_cast<std::uint32_t>(size);
  out[kHeadSize] = static_cast<std::uint8_t>(n >> 24);
  out[kHeadSize + 1] = static_cast<std::uint8_t>(n >> 16);
  out[kHeadSize + 2] = static_cast<std::uint8_t>(n >> 8);
  out[kHeadSize + 3] = static_cast<std::uint8_t>(n);
  return out;
}

std::vector<std::uint8_t> get_reply(std::span<const std::uint8_t> bytes) {
  std::vector<std::uint8_t> out = get_reply_head(bytes.size());
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

using base::put_u16;
using base::put_u32;

Term name_term(std::string_view utf8) {
  // Erlang's unicode file name mode: a byte that does not start well-formed UTF-8 is itself.
  const std::vector<std::uint32_t> cps = base::code_points(utf8);
  TermList list;
  list.reserve(cps.size());
  for (std::uint32_t cp : cps) list.emplace_back(static_cast<std::int64_t>(cp));
  return Term::list(std::move(list));
}

std::vector<std::uint8_t> list_dir_reply(const std::vector<std::string>& names) {
  // Built by hand, byte for byte what etf::encode makes of {list_dir, {ok, [name_term(N)]}}
  // (a test holds them equal): through Terms, an ebin directory's listing took ~75 us.
  // 131, SMALL_TUPLE 2, ATOM list_dir, SMALL_TUPLE 2, ATOM ok, then the list.
  static constexpr std::uint8_t kHead[] = {131, 104, 2,   119, 8, 'l', 'i', 's', 't', '_',
                                           'd', 'i', 'r', 104, 2, 119, 2,   'o', 'k'};
  std::vector<std::uint8_t> out(std::begin(kHead), std::end(kHead));
  std::size_t bytes = 0;
  for (const std::string& n : names) bytes += n.size() + 3;
  out.reserve(out.size() + 6 + bytes);
  if (names.empty()) {
    out.push_back(106);  // NIL
    return out;
  }
  out.push_back(108);  // LIST of names
  put_u32(out, static_cast<std::uint32_t>(names.size()));
  std::vector<std::uint32_t> cps;
  for (const std::string& n : names) {
    base::code_points(n, cps);
    if (cps.empty()) {
      out.push_back(106);
    } else if (cps.size() < 65536 &&
               std::all_of(cps.begin(), cps.end(), [](std::uint32_t c) { return c < 256; })) {
      out.push_back(107);  // STRING: a list of bytes
      put_u16(out, static_cast<std::uint32_t>(cps.size()));
      for (std::uint32_t c : cps) out.push_back(static_cast<std::uint8_t>(c));
    } else {
      out.push_back(108);
      put_u32(out, static_cast<std::uint32_t>(cps.size()));
      for (std::uint32_t c : cps) {
        if (c < 256) {
          out.push_back(97);  // SMALL_INTEGER
          out.push_back(static_cast<std::uint8_t>(c));
        } else {
          out.push_back(98);  // INTEGER
          put_u32(out, c);
        }
      }
      out.push_back(106);
    }
  }
  out.push_back(106);
  return out;
}

std::vector<std::uint8_t> cwd_reply(std::string_view cwd) {
  return etf::encode(Term::tuple({Term::atom("get_cwd"), ok(name_term(cwd))}));
}

etf::Term file_info_term(const FileInfo& info) {
  std::string_view type = "regular";
  switch (info.type) {
    case FileInfo::Type::kDevice: type = "device"; break;
    case FileInfo::Type::kDirectory: type = "directory"; break;
    case FileInfo::Type::kOther: type = "other"; break;
    case FileInfo::Type::kRegular: type = "regular"; break;
    case FileInfo::Type::kSymlink: type = "symlink"; break;
  }
  std::string_view access = "read";
  switch (info.access) {
    case FileInfo::Access::kRead: access = "read"; break;
    case FileInfo::Access::kWrite: access = "write"; break;
    case FileInfo::Access::kReadWrite: access = "read_write"; break;
    case FileInfo::Access::kNone: access = "none"; break;
  }
  return Term::tuple({Term::atom("file_info"), uint_term(info.size), Term::atom(type), Term::atom(access),
                      local_time(info.atime), local_time(info.mtime), local_time(info.ctime),
                      Term::integer(info.mode), uint_term(info.links), uint_term(info.major_device),
                      uint_term(info.minor_device), uint_term(info.inode), Term::integer(info.uid),
                      Term::integer(info.gid)});
}

std::vector<std::uint8_t> file_info_reply(Command command, const FileInfo& info) {
  return etf::encode(Term::tuple({Term::atom(command_name(command)), ok(file_info_term(info))}));
}

std::optional<std::string> parse_discovery(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < kDiscoveryRequest.size()) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(datagram.data()), datagram.size());
  if (text.substr(0, kDiscoveryRequest.size()) != kDiscoveryRequest) return std::nullopt;
  return std::string(text.substr(kDiscoveryRequest.size()));
}

std::vector<std::uint8_t> discovery_reply(std::uint8_t priority, std::uint16_t tcp_port,
                                          std::string_view version) {
  std::vector<std::uint8_t> out(kDiscoveryReply.begin(), kDiscoveryReply.end());
  out.push_back(priority);
  out.push_back(static_cast<std::uint8_t>(tcp_port >> 8));
  out.push_back(static_cast<std::uint8_t>(tcp_port & 0xFF));
  out.insert(out.end(), version.begin(), version.end());
  return out;
}

}  // namespace codestore::server::protocol

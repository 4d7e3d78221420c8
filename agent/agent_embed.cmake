# Writes OUT: a .cpp holding every file of the agent's ebin (EBIN) as bytes, and its vsn (VSN),
# for server/agent_files.h. Run at build time (script mode): -DEBIN=... -DVSN=... -DOUT=...
file(GLOB files "${EBIN}/*.beam" "${EBIN}/*.app")
list(SORT files)
set(arrays "")
set(entries "")
set(i 0)
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  file(READ "${f}" hex HEX)
  string(LENGTH "${hex}" len)
  math(EXPR size "${len} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "const std::uint8_t file${i}[] = {${bytes}};\n")
  string(APPEND entries "      {\"${name}\", std::span<const std::uint8_t>(file${i}, ${size})},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from the agent's ebin by agent/agent_embed.cmake; do not edit.
#include \"agent_files.h\"

namespace codestore::server {

namespace {
${arrays}}  // namespace

std::string_view agent_vsn() { return \"${VSN}\"; }

const std::vector<AgentFile>& agent_ebin() {
  static const std::vector<AgentFile> files = {
${entries}  };
  return files;
}

}  // namespace codestore::server
")
file(RENAME "${OUT}.tmp" "${OUT}")

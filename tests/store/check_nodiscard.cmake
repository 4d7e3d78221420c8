# Run by CTest (store.nodiscard): a caller that drops the result of a fallible call (the Store,
# an image read, the code server: Result<T> is [[nodiscard]] as a type) does
# not compile under -Werror=unused-result (issue 12 §4: every fallible call is [[nodiscard]]),
# while the same call with its result used does. Inputs: CXX, SOURCE_DIR, SCRATCH.
file(MAKE_DIRECTORY ${SCRATCH})
set(calls "s.gc({})" "s.rollback(\"m\")" "s.import(b, \"x\")" "s.checkpoint()" "s.record_served(\"m\", 1)"
          "codestore::plan_import({\"x\"})" "codestore::Store::open(\"x\")"
          "codestore::image::Image::read_file(\"x\", codestore::image::Strictness::kStrict)"
          "c.load_file(\"m\")" "c.ensure_loaded(\"m\")")
set(head "#include <codestore/code_server.h>\n#include <codestore/image.h>\n#include <codestore/store.h>\nvoid f(codestore::Store& s, codestore::loader::CodeServer& c, std::span<const std::uint8_t> b) {\n  (void)b;\n  (void)c;\n")
function(compile name body)
  file(WRITE ${SCRATCH}/${name}.cpp "${head}${body}}\n")
  execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -Werror=unused-result -I${SOURCE_DIR}/include
                          ${SCRATCH}/${name}.cpp
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(rc ${rc} PARENT_SCOPE)
  set(out "${out}" PARENT_SCOPE)
endfunction()
set(used "")
set(i 0)
foreach(call IN LISTS calls)
  math(EXPR i "${i} + 1")
  string(APPEND used "  auto r${i} = ${call};\n  (void)r${i};\n")
endforeach()
compile(used "${used}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the calls with their results used should compile:\n${out}")
endif()
# Every dropped call in one file, one to a line: the compiler reports each line it refuses
# (one compile, not one per call: each parses the public headers again, ~2 s).
set(dropped "")
foreach(call IN LISTS calls)
  string(APPEND dropped "  ${call};\n")
endforeach()
compile(dropped "${dropped}")
if(rc EQUAL 0)
  message(FATAL_ERROR "dropping every result compiled: none of the calls is [[nodiscard]]")
endif()
string(REGEX MATCHALL "\n" head_lines "${head}")
list(LENGTH head_lines line)
foreach(call IN LISTS calls)
  math(EXPR line "${line} + 1")
  if(NOT out MATCHES "dropped\\.cpp:${line}:[0-9]+: error:[^\n]*unused-result")
    message(FATAL_ERROR "`${call};` (line ${line}) drops a result and compiled: the call is not [[nodiscard]]\n${out}")
  endif()
endforeach()
file(REMOVE_RECURSE ${SCRATCH})
message(STATUS "every dropped result is refused")

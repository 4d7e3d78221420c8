# Run by CTest (install.consumer): the installed package works for a consumer, both ways a
# user builds against it.
#   1. Install the build tree into SCRATCH/cmake-prefix; build examples/consumer and
#      examples/sync against it with find_package(codestore); run them.
#   2. Install it again into another prefix, SCRATCH/pc-prefix: its codestore.pc must name
#      that prefix, and examples/consumer/main.cpp must compile and link with
#      `pkg-config --cflags --libs codestore` alone; run it.
# Inputs: BUILD_DIR, SOURCE_DIR, SCRATCH, CXX (the compiler), PKG_CONFIG, LIBDIR
# (CMAKE_INSTALL_LIBDIR). SCRATCH is removed at the end, also when a step fails.
file(REMOVE_RECURSE ${SCRATCH})
set(fixtures ${SOURCE_DIR}/tests/fixtures/images)

function(fail why)
  file(REMOVE_RECURSE ${SCRATCH})
  message(FATAL_ERROR "${why}")
endfunction()
# step(COMMAND...): runs it; fails the test on a non-zero exit. Its stdout is in `out`.
macro(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    fail("step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endmacro()
macro(expect_output what)
  string(FIND "${out}" "${what}" at)
  if(at EQUAL -1)
    fail("expected \"${what}\" in the output of ${ARGN}:\n${out}")
  endif()
endmacro()

# 1. find_package(codestore)
set(prefix ${SCRATCH}/cmake-prefix)
step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(example consumer sync)
  step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/${example} -B ${SCRATCH}/${example}
       -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
  step(${CMAKE_COMMAND} --build ${SCRATCH}/${example})
endforeach()
step(${SCRATCH}/consumer/consumer ${fixtures}/hello.beam)
expect_output("hello " consumer)
step(${SCRATCH}/sync/sync ${SCRATCH}/sync.db ${fixtures}/loader/v1/m.beam ${fixtures}/loader/v2/m.beam)
foreach(line "store: imported m version 2" "store: m active version 2 -> 1" "loader: sync m vsn"
             "loader: worker in old code: yes" "loader: soft_purge m: true")
  expect_output("${line}" sync)
endforeach()

# 2. pkg-config alone, from another prefix
if(NOT PKG_CONFIG)
  fail("pkg-config not found: it is needed to check codestore.pc")
endif()
set(prefix ${SCRATCH}/pc-prefix)
step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
step(${PKG_CONFIG} --variable=prefix codestore)
string(STRIP "${out}" pc_prefix)
if(NOT pc_prefix STREQUAL prefix)
  fail("codestore.pc installed into ${prefix} says prefix=${pc_prefix}")
endif()
step(${PKG_CONFIG} --cflags --libs codestore)
separate_arguments(flags UNIX_COMMAND "${out}")
step(${CXX} -std=c++20 ${SOURCE_DIR}/examples/consumer/main.cpp ${flags} -o ${SCRATCH}/pc-consumer)
step(${SCRATCH}/pc-consumer ${fixtures}/hello.beam)
expect_output("hello " pc-consumer)

file(REMOVE_RECURSE ${SCRATCH})

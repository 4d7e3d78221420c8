# Run by CTest: installs the build tree into SCRATCH/prefix and builds examples/consumer
# against it, then runs the consumer. Fails on any step.
file(REMOVE_RECURSE ${SCRATCH})
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${SCRATCH}/prefix)
step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/consumer -B ${SCRATCH}/build
     -DCMAKE_PREFIX_PATH=${SCRATCH}/prefix -DCMAKE_BUILD_TYPE=Release)
step(${CMAKE_COMMAND} --build ${SCRATCH}/build)
step(${SCRATCH}/build/consumer ${SOURCE_DIR}/tests/fixtures/images/hello.beam)
# The pkg-config file names the libraries too.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} ${SCRATCH}/prefix/lib/pkgconfig)
  step(${PKG_CONFIG} --exists --print-errors codestore)
endif()

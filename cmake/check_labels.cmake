# Run by CTest (tests.labels): every test of the build tree carries exactly one cost label
# (`fast` or `slow`) and at least one layer label, as CTest sees them after discovery (the
# labels of gtest_discover_tests' tests are set at test time and were once silently lost,
# taking a TIMEOUT with them). Input: BUILD_DIR, CTEST_COMMAND.
#
# Asked of CTest's own label selection (-L repeated: every regex must match; -LE: none may),
# four listings of a tenth of a second each. (Reading `ctest --show-only=json-v1` with
# string(JSON), which parses the whole listing at each call, took over 40 s for 766 tests.)
set(layers "base|etf|archive|image|otp|store|loader|server|cli|reliability|install|docs|scripts|tests|build")

# The names of the tests `ctest -N ARGS...` lists (-FA: no fixture's setup or cleanup test is
# added to a selection it was not chosen by).
function(listed out)
  execute_process(COMMAND ${CTEST_COMMAND} --test-dir ${BUILD_DIR} -N -FA ".*" ${ARGN}
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ctest -N ${ARGN} failed (${rc}): ${err}")
  endif()
  string(REGEX MATCHALL "Test +#[0-9]+: [^\n]+" lines "${text}")
  set(names "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "Test +#[0-9]+: " "" name "${line}")
    list(APPEND names "${name}")
  endforeach()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

listed(all)
list(LENGTH all count)
if(count LESS 2)
  message(FATAL_ERROR "ctest listed ${count} tests in ${BUILD_DIR}: expected the whole suite")
endif()
listed(no_cost -LE "^(fast|slow)$")
listed(both_costs -L "^fast$" -L "^slow$")
listed(no_layer -LE "^(${layers})$")
set(bad "")
foreach(name IN LISTS no_cost)
  string(APPEND bad "  ${name}: no cost label (fast or slow)\n")
endforeach()
foreach(name IN LISTS both_costs)
  string(APPEND bad "  ${name}: both fast and slow\n")
endforeach()
foreach(name IN LISTS no_layer)
  string(APPEND bad "  ${name}: no layer label (${layers})\n")
endforeach()
if(bad)
  message(FATAL_ERROR "tests without one cost label (fast|slow) and a layer label:\n${bad}")
endif()
message(STATUS "${count} tests, each with a layer and a cost label")

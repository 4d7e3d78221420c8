# Included by tests/CMakeLists.txt, after every library is defined: writes each production
# target's direct link dependencies (LINK_LIBRARIES and INTERFACE_LINK_LIBRARIES, aliases
# resolved, generator expressions unwrapped) to floors.deps, and registers the tests that
# hold them to the floors (cmake/check_floors.cmake).
set(CODESTORE_FLOORS_DEPS ${PROJECT_BINARY_DIR}/floors.deps)
set(lines "")
foreach(dir ${PROJECT_SOURCE_DIR} base etf archive image otp store loader server cli)
  if(NOT IS_ABSOLUTE ${dir})
    set(dir ${PROJECT_SOURCE_DIR}/${dir})
  endif()
  if(NOT EXISTS ${dir}/CMakeLists.txt)
    continue()
  endif()
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    if(NOT target MATCHES "^codestore" OR target STREQUAL "codestore_warnings")
      continue()
    endif()
    set(deps "")
    foreach(property LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(items ${target} ${property})
      if(NOT items)
        continue()
      endif()
      foreach(item ${items})
        # $<BUILD_INTERFACE:x>, $<LINK_ONLY:x>: the target inside.
        string(REGEX REPLACE "^\\$<[A-Z_]+:(.*)>$" "\\1" item "${item}")
        if(TARGET ${item})
          get_target_property(aliased ${item} ALIASED_TARGET)
          if(aliased)
            set(item ${aliased})
          endif()
        endif()
        if(item MATCHES "^codestore" AND NOT item STREQUAL "codestore_warnings")
          list(APPEND deps ${item})
        endif()
      endforeach()
    endforeach()
    list(REMOVE_DUPLICATES deps)
    list(JOIN deps "," deps)
    string(APPEND lines "${target}=${deps}\n")
  endforeach()
endforeach()
file(WRITE ${CODESTORE_FLOORS_DEPS} "${lines}")

# Arrows only point down (README.md, "Layout").
add_test(NAME floors.arrows
         COMMAND ${CMAKE_COMMAND} -DDEPS=${CODESTORE_FLOORS_DEPS} -P ${PROJECT_SOURCE_DIR}/cmake/check_floors.cmake)
set_tests_properties(floors.arrows PROPERTIES LABELS "build;fast")

# The check itself catches an arrow that points up and one within a floor.
set(bad ${CMAKE_CURRENT_BINARY_DIR}/floors-upward.deps)
file(WRITE ${bad} "codestore_base=\ncodestore_etf=codestore_base,codestore_image\ncodestore_image=codestore_etf\n"
                  "codestore_otp=codestore_etf\n"
                  "codestore_store=codestore_image\ncodestore_loader=codestore_store\n"
                  "codestore_server=codestore_store,codestore_loader\ncodestore_cli=codestore_loader,codestore_server\n"
                  "codestore=codestore_cli\ncodestore_codestore=codestore_server\n")
add_test(NAME floors.arrows_catch_upward
         COMMAND ${CMAKE_COMMAND} -DDEPS=${bad} -P ${PROJECT_SOURCE_DIR}/cmake/check_floors.cmake)
set_tests_properties(floors.arrows_catch_upward PROPERTIES LABELS "build;fast"
  PASS_REGULAR_EXPRESSION "codestore_etf \\(floor 1\\) links codestore_image \\(floor 2\\).*codestore_server \\(floor 4\\) links codestore_loader \\(floor 4\\)")

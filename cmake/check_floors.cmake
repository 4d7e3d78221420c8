# Run by CTest (floors.arrows): arrows only point down. Every production target sits on a
# floor; a target may link only targets on floors below its own (README.md, "Layout":
# base <- etf, archive <- image, otp <- store <- loader, server <- cli). Input: DEPS, a file of
# lines `target=dep,dep` (cmake/floors.cmake writes it at configure time).
cmake_minimum_required(VERSION 3.25)  # IN_LIST
set(floors
    codestore_base 0        # Status/Result, UTF-8, file reads, the app-dir rule, hex
    codestore_etf 1         # terms
    codestore_archive 1     # tar, tar.gz and zip archives (beside etf: base only)
    codestore_image 2       # images (Attr, CInf and LitT are terms: image needs etf)
    codestore_otp 2         # .app, .rel, start.boot, .appup (terms: otp needs etf); beside image
    codestore_store 3
    codestore_loader 4
    codestore_server 4      # beside the loader, not above it
    codestore_cli 5
    codestore 6             # the executable
    codestore_codestore 6)  # the installed package's umbrella target
list(LENGTH floors n)
math(EXPR last "${n} - 1")
set(known "")
foreach(i RANGE 0 ${last} 2)
  math(EXPR j "${i} + 1")
  list(GET floors ${i} name)
  list(GET floors ${j} floor)
  set(floor_${name} ${floor})
  list(APPEND known ${name})
endforeach()

file(STRINGS ${DEPS} lines)
set(bad "")
set(seen "")
foreach(line ${lines})
  string(REGEX MATCH "^([^=]+)=(.*)$" m "${line}")
  set(target ${CMAKE_MATCH_1})
  string(REPLACE "," ";" deps "${CMAKE_MATCH_2}")
  list(APPEND seen ${target})
  if(NOT DEFINED floor_${target})
    string(APPEND bad "  ${target}: on no floor (give it one in cmake/check_floors.cmake)\n")
    continue()
  endif()
  foreach(dep ${deps})
    if(NOT DEFINED floor_${dep})
      string(APPEND bad "  ${target} links ${dep}, which is on no floor\n")
    elseif(NOT floor_${dep} LESS floor_${target})
      string(APPEND bad "  ${target} (floor ${floor_${target}}) links ${dep} (floor ${floor_${dep}})\n")
    endif()
  endforeach()
endforeach()
foreach(name ${known})
  if(NOT name IN_LIST seen)
    string(APPEND bad "  ${name}: no such target\n")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "arrows must point down only:\n${bad}")
endif()
list(LENGTH seen count)
message(STATUS "${count} targets, every arrow pointing down")

# Run by CTest (docs.citations): every document the repository's text cites by name
# (`docs/store.md`, `image-format.md`, "see README.md") exists in the repository, so that
# installed headers, docs and comments never send a reader to a file they do not have.
# A citation resolves beside the citing file, at the top of the source tree, or in docs/, and
# never outside the tree.
# Web addresses are not citations. Input: SOURCE_DIR.
set(globs README.md)
foreach(dir include docs base etf archive image otp cli loader store server agent tests bench fuzz examples scripts cmake migrations .ci)
  foreach(ext h cpp md txt cmake in sh sql erl escript py)
    list(APPEND globs ${dir}/*.${ext})
  endforeach()
endforeach()
file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR} LIST_DIRECTORIES false ${SOURCE_DIR}/README.md)
foreach(glob ${globs})
  file(GLOB_RECURSE found RELATIVE ${SOURCE_DIR} LIST_DIRECTORIES false ${SOURCE_DIR}/${glob})
  list(APPEND files ${found})
endforeach()
list(REMOVE_DUPLICATES files)

set(missing "")
set(checked 0)
foreach(file ${files})
  file(READ ${SOURCE_DIR}/${file} text)
  string(REGEX REPLACE "[A-Za-z][A-Za-z0-9+.-]*://[^ \t\r\n)>\"'`]*" "" text "${text}")
  # A name ending in ".md" and then not a name character (`x.md5()` is code, not a citation).
  string(REGEX MATCHALL "[A-Za-z0-9_./-]*[A-Za-z0-9_-]\\.md[^A-Za-z0-9_]" cited "${text}\n")
  list(TRANSFORM cited REPLACE ".$" "")
  list(REMOVE_DUPLICATES cited)
  get_filename_component(dir ${file} DIRECTORY)
  foreach(doc ${cited})
    math(EXPR checked "${checked} + 1")
    # Found only inside the repository: a document beside one checkout (a path up and out of
    # it) is not what a reader of the installed headers or of another clone has. A leading
    # slash is the tree's top (`${SOURCE_DIR}/README.md` in a script).
    string(REGEX REPLACE "^/+" "" relative "${doc}")
    set(found FALSE)
    foreach(base ${SOURCE_DIR}/${dir} ${SOURCE_DIR} ${SOURCE_DIR}/docs)
      cmake_path(ABSOLUTE_PATH relative BASE_DIRECTORY ${base} NORMALIZE OUTPUT_VARIABLE candidate)
      cmake_path(IS_PREFIX SOURCE_DIR "${candidate}" NORMALIZE inside)
      if(inside AND EXISTS ${candidate})
        set(found TRUE)
      endif()
    endforeach()
    if(NOT found)
      string(APPEND missing "\n  ${file} cites ${doc}")
    endif()
  endforeach()
endforeach()
if(missing)
  message(FATAL_ERROR "documents cited but not in the repository:${missing}")
endif()
list(LENGTH files n)
message(STATUS "${checked} citations in ${n} files: every one exists")

# Installs the libraries, the public headers, a CMake package (find_package(codestore))
# and a pkg-config file, as fmt does.
include(CMakePackageConfigHelpers)

install(TARGETS codestore_base codestore_etf codestore_archive codestore_image codestore_otp codestore_store codestore_loader codestore_server codestore_codestore
        EXPORT codestoreTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/codestore DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT codestoreTargets NAMESPACE codestore:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/codestore)
configure_package_config_file(cmake/codestoreConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/codestoreConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/codestore)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/codestoreConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/codestoreConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/codestoreConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/codestore)

# pkg-config: the prefix is the one the files are installed to, also when it is chosen at
# install time (`cmake --install build --prefix P`), so codestore.pc is written in two
# steps: everything but the prefix now, the prefix by the install script.
# The libraries are static archives, which carry no list of what they need: their
# dependencies are `Requires`, not `Requires.private`, so that a plain
# `pkg-config --libs codestore` (without --static) links.
set(CODESTORE_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")  # left for the install script to fill in
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(CODESTORE_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(CODESTORE_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(cmake/codestore.pc.in ${CMAKE_CURRENT_BINARY_DIR}/codestore.pc.install @ONLY)
install(CODE "configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/codestore.pc.install\"
                             \"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/codestore.pc\" @ONLY)")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/codestore.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(TARGETS codestore RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

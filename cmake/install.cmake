# Installs the libraries, the public headers, a CMake package (find_package(codestore))
# and a pkg-config file, as fmt does.
include(CMakePackageConfigHelpers)

install(TARGETS codestore_image codestore_store codestore_loader codestore_server codestore_codestore
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
configure_file(cmake/codestore.pc.in ${CMAKE_CURRENT_BINARY_DIR}/codestore.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/codestore.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(TARGETS codestore RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

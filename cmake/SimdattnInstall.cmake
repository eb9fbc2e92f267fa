# Install rules: headers, the library (static or shared, as built), a relocatable CMake package
# (simdattnConfig.cmake, its version file, the exported target simdattn::simdattn) and a
# pkg-config file. tests/package/ and .ci/package-test.sh check that consumers can use each.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SIMDATTN_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/simdattn")

install(TARGETS simdattn EXPORT simdattnTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" NAMELINK_COMPONENT Development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
# mpi.hpp goes with simdattn::mpi, below: a header without its library would only mislead.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/simdattn"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h" PATTERN "mpi.hpp" EXCLUDE)
install(EXPORT simdattnTargets NAMESPACE simdattn:: DESTINATION "${SIMDATTN_CMAKE_DIR}")

# The optional component simdattn::mpi, when this build has it, in an export set of its own:
# the package's config imports it (and looks for MPI) only for find_package(... COMPONENTS mpi),
# so that users of the core library never depend on MPI.
if(TARGET simdattn_mpi)
  install(TARGETS simdattn_mpi EXPORT simdattnMpiTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" NAMELINK_COMPONENT Development
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
  install(FILES "${PROJECT_SOURCE_DIR}/include/simdattn/mpi.hpp"
    DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/simdattn")
  install(EXPORT simdattnMpiTargets NAMESPACE simdattn:: DESTINATION "${SIMDATTN_CMAKE_DIR}")
endif()

# --- CMake package ---
# The config must know whether the installed library is static: only then does a consumer link
# OpenMP and the C++ runtime itself, so only then is find_dependency(OpenMP) needed.
get_target_property(SIMDATTN_LIBRARY_TYPE simdattn TYPE)
if(SIMDATTN_LIBRARY_TYPE STREQUAL "STATIC_LIBRARY")
  set(SIMDATTN_STATIC_INSTALL ON)
else()
  set(SIMDATTN_STATIC_INSTALL OFF)
endif()
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/simdattnConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/simdattnConfig.cmake"
  INSTALL_DESTINATION "${SIMDATTN_CMAKE_DIR}")
# Until 1.0 a minor release may change the API, so the version file demands the same minor
# version; from 1.0 on, the same major version (the shared library's SOVERSION) is enough.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SIMDATTN_COMPATIBILITY SameMinorVersion)
else()
  set(SIMDATTN_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file("${PROJECT_BINARY_DIR}/simdattnConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY ${SIMDATTN_COMPATIBILITY})
install(FILES "${PROJECT_BINARY_DIR}/simdattnConfig.cmake"
              "${PROJECT_BINARY_DIR}/simdattnConfigVersion.cmake"
  DESTINATION "${SIMDATTN_CMAKE_DIR}")

# --- pkg-config ---
# Relocatable: prefix is found from the .pc file's own directory, so `cmake --install --prefix`
# anywhere (or moving the tree) keeps it valid. An absolute libdir/includedir stays absolute.
set(SIMDATTN_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${SIMDATTN_PC_DIR}")
  set(SIMDATTN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH SIMDATTN_PC_UP "/prefix/${SIMDATTN_PC_DIR}" "/prefix")
  string(REGEX REPLACE "/$" "" SIMDATTN_PC_UP "${SIMDATTN_PC_UP}")
  set(SIMDATTN_PC_PREFIX "\${pcfiledir}/${SIMDATTN_PC_UP}")
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(SIMDATTN_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(SIMDATTN_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()

# Libs.private: what a static link needs beyond libsimdattn.a, i.e. OpenMP's flag and libraries
# and the C++ runtime libraries a C link lacks (the C++ compiler's implicit libraries minus the C
# compiler's: libstdc++ and libm with g++). pkg-config prints it only with --static.
set(SIMDATTN_PC_LIBS_PRIVATE "${OpenMP_CXX_FLAGS}")
foreach(lib IN LISTS OpenMP_CXX_LIB_NAMES)
  string(APPEND SIMDATTN_PC_LIBS_PRIVATE " -l${lib}")
endforeach()
foreach(lib IN LISTS CMAKE_CXX_IMPLICIT_LINK_LIBRARIES)
  if(NOT lib IN_LIST CMAKE_C_IMPLICIT_LINK_LIBRARIES AND NOT lib MATCHES "^-")
    string(APPEND SIMDATTN_PC_LIBS_PRIVATE " -l${lib}")
  endif()
endforeach()
string(STRIP "${SIMDATTN_PC_LIBS_PRIVATE}" SIMDATTN_PC_LIBS_PRIVATE)
# SIMDATTN_SHARED selects dllimport on Windows; elsewhere it is harmless and kept for symmetry
# with the CMake target's interface.
if(SIMDATTN_STATIC_INSTALL)
  set(SIMDATTN_PC_CFLAGS "")
else()
  set(SIMDATTN_PC_CFLAGS " -DSIMDATTN_SHARED")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/simdattn.pc.in" "${PROJECT_BINARY_DIR}/simdattn.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/simdattn.pc" DESTINATION "${SIMDATTN_PC_DIR}")

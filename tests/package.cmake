# Packaging and C ABI checks that fit in the regular test run (the full static + shared matrix,
# with its two extra library builds, is .ci/package-test.sh):
#   package.c_abi:     the C ABI's contract, from C;
#   package.exports:   nm -D of a shared build shows the public API and nothing else;
#   package.consumers: this build, installed into a scratch prefix, serves find_package and
#                      pkg-config consumers (tests/package/run-consumers.sh).

# package.c_abi: the C ABI's own contract (NULL, dtype, enum values, struct_size of older and
# newer callers, the per-thread last error), written in C so the header is compiled as C too.
find_package(Threads REQUIRED)
add_executable(simdattn_c_abi_contract ${CMAKE_CURRENT_LIST_DIR}/package/c_abi_contract.c)
target_link_libraries(simdattn_c_abi_contract PRIVATE simdattn::simdattn simdattn_warnings
                      Threads::Threads $<$<BOOL:${UNIX}>:m>)
add_test(NAME package.c_abi COMMAND simdattn_c_abi_contract)
set_tests_properties(package.c_abi PROPERTIES LABELS package TIMEOUT 60)

find_package(Python3 COMPONENTS Interpreter QUIET)
find_program(SIMDATTN_NM NAMES ${CMAKE_NM} nm)

# The shared library to inspect: the library itself in a shared build, else the copy that
# examples/CMakeLists.txt links from the same objects for ctypes (same objects, same flags).
set(simdattn_shared_target "")
if(BUILD_SHARED_LIBS)
  set(simdattn_shared_target simdattn)
elseif(SIMDATTN_BUILD_EXAMPLES AND NOT WIN32)
  set(simdattn_shared_target simdattn_ctypes_shared)
endif()
if(simdattn_shared_target AND Python3_EXECUTABLE AND SIMDATTN_NM)
  add_test(NAME package.exports
           COMMAND "${Python3_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/tests/package/check_exports.py"
                   "$<TARGET_FILE:${simdattn_shared_target}>" "${PROJECT_SOURCE_DIR}/include")
  set_tests_properties(package.exports PROPERTIES LABELS package TIMEOUT 60)
else()
  message(STATUS "simdattn: package.exports not registered (needs a shared build or the "
                 "examples, python3 and nm)")
endif()

find_program(SIMDATTN_BASH bash)
find_program(SIMDATTN_PKG_CONFIG NAMES pkg-config pkgconf)
# The consumers are configured and run with the host's compiler: not in a cross build.
if(SIMDATTN_INSTALL AND SIMDATTN_BASH AND SIMDATTN_PKG_CONFIG AND UNIX AND NOT CMAKE_CROSSCOMPILING)
  if(BUILD_SHARED_LIBS)
    set(simdattn_kind shared)
  else()
    set(simdattn_kind static)
  endif()
  set(simdattn_package_dir "${CMAKE_CURRENT_BINARY_DIR}/package-${simdattn_kind}")
  # Installing writes only under the scratch prefix; removing it first keeps a stale install of
  # an earlier build from satisfying the consumers.
  add_test(NAME package.consumers
           COMMAND "${SIMDATTN_BASH}" -c "rm -rf \"$1\" && \"$2\" --install \"$3\" --prefix \"$1/prefix\" >/dev/null && \"$4\" \"$1/prefix\" $5 \"$1/work\""
                   package-consumers "${simdattn_package_dir}" "${CMAKE_COMMAND}" "${PROJECT_BINARY_DIR}"
                   "${PROJECT_SOURCE_DIR}/tests/package/run-consumers.sh" ${simdattn_kind})
  set_tests_properties(package.consumers PROPERTIES LABELS package TIMEOUT 300 RUN_SERIAL ON)
else()
  message(STATUS "simdattn: package.consumers not registered (needs SIMDATTN_INSTALL, bash "
                 "and pkg-config, and a native build)")
endif()

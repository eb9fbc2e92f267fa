# simdattn_eigen_peer: the Eigen peer of simdattn_bench (attention/<shape>/eigen), also checked by
# tests/test_bench_peer.cpp. Built only when Eigen3 is found; never a dependency of the library.
# Included from bench/CMakeLists.txt and tests/bench_peer.cmake: whichever comes first defines it.
include_guard(GLOBAL)

# The peer's instruction sets and its CPU checks (peer_support.cpp) are x86's.
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  message(STATUS "simdattn bench: the Eigen peer is built for x86-64 only; not on ${CMAKE_SYSTEM_PROCESSOR}")
  return()
endif()

find_package(Eigen3 CONFIG QUIET)
if(NOT TARGET Eigen3::Eigen)
  message(STATUS "simdattn bench: Eigen3 not found; attention/<shape>/eigen will not be built")
  return()
endif()

# Eigen chooses its SIMD code at compile time, so the peer is compiled for one instruction set.
# A peer held back to SSE2 on an AVX-512 machine would flatter simdattn, so "auto" takes the best
# the configuring machine has. The binary checks at run time that its CPU has it too, and skips
# the peer (saying so in the run's context) where it does not, e.g. a build moved to an older CPU.
set(SIMDATTN_BENCH_PEER_ISA "auto" CACHE STRING
    "Instruction set the Eigen peer is compiled for: auto (the configuring machine's best), sse2, avx2 or avx512")
set_property(CACHE SIMDATTN_BENCH_PEER_ISA PROPERTY STRINGS auto sse2 avx2 avx512)
set(simdattn_peer_isa "${SIMDATTN_BENCH_PEER_ISA}")
if(simdattn_peer_isa STREQUAL "auto")
  if(CMAKE_CROSSCOMPILING)
    set(simdattn_peer_isa sse2)
  else()
    try_run(simdattn_detect_run simdattn_detect_compile ${CMAKE_BINARY_DIR}/simdattn_detect_host_isa
            ${CMAKE_CURRENT_LIST_DIR}/eigen_peer/detect_host_isa.cpp RUN_OUTPUT_VARIABLE simdattn_detected_isa)
    string(STRIP "${simdattn_detected_isa}" simdattn_peer_isa)
    if(NOT simdattn_detect_compile OR NOT simdattn_peer_isa MATCHES "^(sse2|avx2|avx512)$")
      set(simdattn_peer_isa sse2)
    endif()
  endif()
endif()
if(NOT simdattn_peer_isa MATCHES "^(sse2|avx2|avx512)$")
  message(FATAL_ERROR "SIMDATTN_BENCH_PEER_ISA: expected auto, sse2, avx2 or avx512, got '${SIMDATTN_BENCH_PEER_ISA}'")
endif()
message(STATUS "simdattn bench: Eigen ${Eigen3_VERSION} peer built for ${simdattn_peer_isa}")

add_library(simdattn_eigen_peer STATIC
  ${CMAKE_CURRENT_LIST_DIR}/eigen_peer/attention_eigen.cpp
  ${CMAKE_CURRENT_LIST_DIR}/eigen_peer/peer_support.cpp)
# Only the Eigen unit gets the wider instructions; peer_support.cpp decides whether they may run.
# The registry's flags for that ISA (cmake/SimdattnIsas.cmake).
set(simdattn_peer_flags ${SIMDATTN_ISA_FLAGS_${simdattn_peer_isa}})
if(simdattn_peer_isa STREQUAL "avx512" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # g++ 12 reports "'__Y' may be used uninitialized" inside its own avx512fintrin.h for Eigen's
  # vectorised exp and max: the g++ 12 false positive described in cmake/SimdattnIsas.cmake.
  list(APPEND simdattn_peer_flags -Wno-maybe-uninitialized)
endif()
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/eigen_peer/attention_eigen.cpp
  TARGET_DIRECTORY simdattn_eigen_peer PROPERTIES COMPILE_OPTIONS "${simdattn_peer_flags}")
target_compile_definitions(simdattn_eigen_peer PRIVATE
  SIMDATTN_BENCH_PEER_ISA="${simdattn_peer_isa}" SIMDATTN_BENCH_PEER_EIGEN_VERSION="${Eigen3_VERSION}")
# bench/ for "eigen_peer/attention_eigen.hpp" through -iquote only: as a -I it would let bench/'s
# scripts (bench/compare) shadow standard headers (<compare>) in the tests that use the peer.
target_compile_options(simdattn_eigen_peer PUBLIC -iquote${CMAKE_CURRENT_LIST_DIR})
target_include_directories(simdattn_eigen_peer PUBLIC ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(simdattn_eigen_peer PRIVATE Eigen3::Eigen simdattn_warnings PUBLIC OpenMP::OpenMP_CXX)

# tests/test_bench_peer.cpp checks simdattn_bench's Eigen peer against simdattn::reference. The
# tests/CMakeLists.txt glob puts it into simdattn_tests; it is compiled there only when Eigen3 is
# found (bench/eigen_peer.cmake defines the peer), since without Eigen there is no peer to check.
include(${PROJECT_SOURCE_DIR}/bench/eigen_peer.cmake)
if(TARGET simdattn_eigen_peer)
  target_link_libraries(simdattn_tests PRIVATE simdattn_eigen_peer)
else()
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/test_bench_peer.cpp PROPERTIES HEADER_FILE_ONLY ON)
endif()

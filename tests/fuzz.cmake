# The libFuzzer target over the C ABI (tests/fuzz/fuzz_c_abi.cpp), built only when asked for,
# with clang: the `fuzz` preset of CMakePresets.json turns it on and compiles everything with
# -fsanitize=fuzzer-no-link,address,undefined; this links the target with -fsanitize=fuzzer.
#   fuzz.corpus: replays the seed corpus (tests/fuzz/corpus) once, no fuzzing; .ci/fuzz.sh fuzzes.
option(SIMDATTN_BUILD_FUZZ "Build the libFuzzer target simdattn_fuzz_c_abi (clang only)" OFF)
if(NOT SIMDATTN_BUILD_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SIMDATTN_BUILD_FUZZ needs clang (libFuzzer), got ${CMAKE_CXX_COMPILER_ID}: "
                      "configure with `cmake --preset fuzz`")
endif()

add_executable(simdattn_fuzz_c_abi ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_c_abi.cpp
                                   ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_serving.cpp)
# simdattn_testable: the fuzz target picks the ISA through the internal dispatch header.
target_link_libraries(simdattn_fuzz_c_abi PRIVATE simdattn_testable simdattn_warnings)
target_compile_options(simdattn_fuzz_c_abi PRIVATE -fsanitize=fuzzer)
target_link_options(simdattn_fuzz_c_abi PRIVATE -fsanitize=fuzzer)

add_test(NAME fuzz.corpus
         COMMAND simdattn_fuzz_c_abi -runs=0 ${CMAKE_CURRENT_LIST_DIR}/fuzz/corpus)
set_tests_properties(fuzz.corpus PROPERTIES LABELS fuzz TIMEOUT 300)

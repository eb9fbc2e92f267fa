# isa.environment_*: simdattn_tests' IsaEnvironment test in processes started with SIMDATTN_ISA
# set (the variable is read once per process, so each value needs its own): accepted names in
# any case with blanks around them cap the ISA; anything else makes every call fail with a
# message naming the variable, the value and the accepted names, in C++ and in C.
# The valid names are the processor's (cmake/SimdattnIsas.cmake).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(simdattn_environment_cases "valid_mixed_case= NEON " "valid_lowest=neon" "invalid_word=garbage"
                                 "invalid_close_name=neon64")
else()
  # avx512bf16 selects it where the CPU runs it (even where it is not the default), and leaves the
  # default elsewhere; amx does the same.
  set(simdattn_environment_cases "valid_mixed_case= AVX2 " "valid_lowest=sse2" "valid_pairs=avx512bf16"
                                 "valid_highest=amx" "invalid_word=garbage" "invalid_close_name=sse4")
endif()
foreach(case IN LISTS simdattn_environment_cases)
  string(REGEX MATCH "^([a-z_]+)=(.*)$" unused "${case}")
  set(name "${CMAKE_MATCH_1}")
  set(value "${CMAKE_MATCH_2}")
  add_test(NAME isa.environment_${name}
           COMMAND "${CMAKE_COMMAND}" -E env "SIMDATTN_ISA=${value}" ${CMAKE_CROSSCOMPILING_EMULATOR}
                   "$<TARGET_FILE:simdattn_tests>" --gtest_filter=IsaEnvironment.*)
  # A skip would mean the variable did not reach the process: that fails too.
  set_tests_properties(isa.environment_${name} PROPERTIES LABELS "isa"
                       PASS_REGULAR_EXPRESSION "\\[  PASSED  \\] 1 test"
                       FAIL_REGULAR_EXPRESSION "SKIPPED|FAILED")
endforeach()

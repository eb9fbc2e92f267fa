# simdattn_bench's own flags. Guarded like report.cmake: SIMDATTN_BUILD_BENCH is what creates
# the simdattn_bench target, and the generator expressions resolve once bench/ is configured.
if(NOT SIMDATTN_BUILD_BENCH)
  return()
endif()

# bench.roof_isa: --roof_isa=library measures the FMA roof with the instruction set simdattn runs
# with (here capped to SSE2, which every x86-64 CPU has), and a value the flag does not accept
# is refused with a message.
add_test(NAME bench.roof_isa_library
         COMMAND "${CMAKE_COMMAND}" -E env SIMDATTN_ISA=sse2
                 "$<TARGET_FILE:simdattn_bench>" --roof_isa=library
                 --benchmark_filter=machine/fma_peak --benchmark_min_time=0.01)
set_tests_properties(bench.roof_isa_library PROPERTIES LABELS "bench;benchmark" RUN_SERIAL TRUE
                     PASS_REGULAR_EXPRESSION "roof_isa: library: sse2.*machine/fma_peak.* sse2")
add_test(NAME bench.roof_isa_refuses_unknown
         COMMAND "$<TARGET_FILE:simdattn_bench>" --roof_isa=fastest --benchmark_filter=none)
set_tests_properties(bench.roof_isa_refuses_unknown PROPERTIES LABELS "bench" WILL_FAIL TRUE)

# bench/simdattn_paired_ab. Guarded like bench_flags.cmake: SIMDATTN_BUILD_BENCH creates the target.
if(NOT SIMDATTN_BUILD_BENCH)
  return()
endif()

# Bad arguments are refused with a message naming what was expected (exit status 2).
add_test(NAME bench.paired_ab_needs_two_libraries COMMAND "$<TARGET_FILE:simdattn_paired_ab>")
set_tests_properties(bench.paired_ab_needs_two_libraries PROPERTIES LABELS "bench"
                     PASS_REGULAR_EXPRESSION "expected two libraries \\(LIB_A LIB_B\\), got 0")
add_test(NAME bench.paired_ab_names_the_unknown_shape
         COMMAND "$<TARGET_FILE:simdattn_paired_ab>" a.so b.so --shape encoderr)
set_tests_properties(bench.paired_ab_names_the_unknown_shape PROPERTIES LABELS "bench"
                     PASS_REGULAR_EXPRESSION "expected one of the standard shape names .*, got 'encoderr'")
add_test(NAME bench.paired_ab_names_the_unknown_cache
         COMMAND "$<TARGET_FILE:simdattn_paired_ab>" a.so b.so --cache f8)
set_tests_properties(bench.paired_ab_names_the_unknown_cache PROPERTIES LABELS "bench"
                     PASS_REGULAR_EXPRESSION "--cache: expected f32, bf16, i8 or i8row, got 'f8'")
add_test(NAME bench.paired_ab_names_the_missing_library
         COMMAND "$<TARGET_FILE:simdattn_paired_ab>" /nonexistent/libsimdattn.so b.so)
set_tests_properties(bench.paired_ab_names_the_missing_library PROPERTIES LABELS "bench"
                     PASS_REGULAR_EXPRESSION "cannot load '/nonexistent/libsimdattn.so'")

# A real comparison needs a shared build: this one against itself.
if(BUILD_SHARED_LIBS)
  add_test(NAME bench.paired_ab_runs
           COMMAND "$<TARGET_FILE:simdattn_paired_ab>" "$<TARGET_FILE:simdattn>" "$<TARGET_FILE:simdattn>"
                   --shape encoder --pairs 2 --threads 1)
  set_tests_properties(bench.paired_ab_runs PROPERTIES LABELS "bench;benchmark" RUN_SERIAL TRUE
                       PASS_REGULAR_EXPRESSION "speedup of B over A \\(time A / time B, per pair\\): median [0-9.]+")
  # An int8 cache with its scales, through the sized options (k_scale lies past the first layout).
  add_test(NAME bench.paired_ab_runs_an_int8_cache
           COMMAND "$<TARGET_FILE:simdattn_paired_ab>" "$<TARGET_FILE:simdattn>" "$<TARGET_FILE:simdattn>"
                   --shape encoder --pairs 2 --threads 1 --cache i8row)
  set_tests_properties(bench.paired_ab_runs_an_int8_cache PROPERTIES LABELS "bench;benchmark" RUN_SERIAL TRUE
                       PASS_REGULAR_EXPRESSION "shape encoder, i8row cache, 2 pairs")
endif()

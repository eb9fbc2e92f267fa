# layering.*: the folders depend one way, plan → kernels. A kernel header that included a plan
# header would give the kernels the whole AttentionPlan again (they get a TileProblem,
# src/kernels/tile_problem.hpp), and tie the plan's rebuilds to every ISA unit.
add_test(NAME layering.kernels_include_no_plan_header
         COMMAND "${CMAKE_COMMAND}" "-DDIRECTORY=${PROJECT_SOURCE_DIR}/src/kernels"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/layering/check_includes.cmake)
# The check itself fails on a folder that breaks the rule.
add_test(NAME layering.check_finds_a_plan_include
         COMMAND "${CMAKE_COMMAND}"
                 "-DDIRECTORY=${CMAKE_CURRENT_SOURCE_DIR}/layering/fixture_plan_include"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/layering/check_includes.cmake)
set_tests_properties(layering.check_finds_a_plan_include PROPERTIES
                     PASS_REGULAR_EXPRESSION "bad_kernel.hpp:3: #include \"plan/attention_plan.hpp\"")

# simdattn::mpi's tests: one gtest binary run under mpirun on 1, 2, 3 and 4 ranks (one thread
# each, so that 4 ranks fit a 2-core machine), registered only when the component was built.
if(NOT TARGET simdattn_mpi)
  return()
endif()

add_executable(simdattn_mpi_tests ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi_attention.cpp)
# test_support.hpp names src/dispatch.hpp's declarations; nothing of it is called here.
target_include_directories(simdattn_mpi_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(simdattn_mpi_tests PRIVATE simdattn_mpi GTest::gtest simdattn_warnings)

# Open MPI wants --oversubscribe to start more ranks than cores, and refuses to run as root
# (CI containers) unless told that it is meant.
set(simdattn_mpi_flags "")
if(MPI_C_LIBRARY_VERSION_STRING MATCHES "Open MPI")
  set(simdattn_mpi_flags --oversubscribe)
endif()
# Under ASan (the asan-ubsan preset), Open MPI's own leaks at exit are suppressed: see the file.
set(simdattn_mpi_lsan "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/mpi/lsan.supp:fast_unwind_on_malloc=0")
foreach(ranks 1 2 3 4)
  add_test(NAME mpi.attention_np${ranks}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${simdattn_mpi_flags}
                   ${MPIEXEC_PREFLAGS} $<TARGET_FILE:simdattn_mpi_tests> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(mpi.attention_np${ranks} PROPERTIES LABELS mpi TIMEOUT 300
    ENVIRONMENT "OMP_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;${simdattn_mpi_lsan}")
endforeach()

# The example: the cache split over 2 ranks matches one attention() call.
# tests/ is configured before examples/, so the target is named, not tested for.
if(SIMDATTN_BUILD_EXAMPLES)
  add_test(NAME mpi.example_context_parallel_decode
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${simdattn_mpi_flags} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:simdattn_context_parallel_decode> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(mpi.example_context_parallel_decode PROPERTIES LABELS "mpi;examples" TIMEOUT 300
    PASS_REGULAR_EXPRESSION "largest difference from one attention\\(\\) call"
    ENVIRONMENT "OMP_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;${simdattn_mpi_lsan}")
endif()

# Runs every example and checks its exit status and the lines that show it worked.
#
# This file has two roles. Included by tests/CMakeLists.txt, it registers the tests. Run as
#   cmake -DPROGRAM=<exe> [-DARG0=.. -DARG1=..] [-DEXPECT0=<regex> -DEXPECT1=..] -P examples.cmake
# it is the test itself: it runs PROGRAM and fails unless the exit status is 0 and the output
# matches every EXPECTn (ctest's PASS_REGULAR_EXPRESSION would ignore the exit status).

if(CMAKE_SCRIPT_MODE_FILE)
  set(arguments "")
  foreach(i RANGE 0 9)
    if(DEFINED ARG${i})
      list(APPEND arguments "${ARG${i}}")
    endif()
  endforeach()
  # EMULATOR: the cross build's CMAKE_CROSSCOMPILING_EMULATOR, its arguments joined by "|".
  set(emulator "")
  if(EMULATOR)
    string(REPLACE "|" ";" emulator "${EMULATOR}")
  endif()
  execute_process(COMMAND ${emulator} "${PROGRAM}" ${arguments} RESULT_VARIABLE status
                  OUTPUT_VARIABLE output ERROR_VARIABLE output)
  message("${output}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} exited with status ${status}")
  endif()
  foreach(i RANGE 0 9)
    if(DEFINED EXPECT${i} AND NOT output MATCHES "${EXPECT${i}}")
      message(FATAL_ERROR "the output of ${PROGRAM} lacks a match for: ${EXPECT${i}}")
    endif()
  endforeach()
  return()
endif()

if(NOT SIMDATTN_BUILD_EXAMPLES)
  return()
endif()

# simdattn_example_test(<name> <program> ARGS <arg>... EXPECT <regex>...)
function(simdattn_example_test name program)
  cmake_parse_arguments(PARSE_ARGV 2 example "" "" "ARGS;EXPECT")
  set(defines "")
  set(i 0)
  foreach(argument IN LISTS example_ARGS)
    list(APPEND defines "-DARG${i}=${argument}")
    math(EXPR i "${i} + 1")
  endforeach()
  set(i 0)
  foreach(regex IN LISTS example_EXPECT)
    list(APPEND defines "-DEXPECT${i}=${regex}")
    math(EXPR i "${i} + 1")
  endforeach()
  if(CMAKE_CROSSCOMPILING_EMULATOR)
    list(JOIN CMAKE_CROSSCOMPILING_EMULATOR "|" emulator)
    list(APPEND defines "-DEMULATOR=${emulator}")
  endif()
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} "-DPROGRAM=${program}" ${defines} -P "${CMAKE_CURRENT_LIST_FILE}")
  set_tests_properties(${name} PROPERTIES LABELS examples TIMEOUT 120)
endfunction()

# The checks name the teaching examples' printed numbers, so a demo that prints something else fails.
simdattn_example_test(example.demo $<TARGET_FILE:simdattn_demo>
  EXPECT "output +\\[0\\.6525, 0\\.8525\\].*ok"
         "scores of \"love\" +\\[0\\.3200, 0\\.7700, 0\\.7400, 0\\.5300\\]"
         "context +\\[0\\.5000, 0\\.5000\\]"
         "GFLOP/s" "speedup [0-9.]+x" "All worked examples match")
simdattn_example_test(example.walkthrough $<TARGET_FILE:simdattn_walkthrough>
  EXPECT "weights = softmax\\(scores\\) = \\[0\\.4750, 0\\.5250\\]"
         "Attention Weights Matrix --- \\(6 x 6\\)" "Head 1 weights" "windows"
         "Every result agrees")
simdattn_example_test(example.cascade_attention $<TARGET_FILE:simdattn_cascade_attention>
  EXPECT "cascade \\(prefix once" "max \\|cascade - direct\\| = "
         "cascade attention agrees with attention over prefix \\+ suffix")
simdattn_example_test(example.c_attention $<TARGET_FILE:simdattn_c_attention>
  EXPECT "max \\|simdattn - plain C\\|"
         "simdattn_last_error\\(\\): .*k\\.shape"
         "output untouched")

# A cross build's library cannot be loaded by the host's Python: no ctypes example there.
if(CMAKE_CROSSCOMPILING)
  message(STATUS "simdattn: cross build, the ctypes example is not tested (the host's Python "
                 "cannot load the target's library)")
  return()
endif()

# The Python example needs NumPy; of the interpreters found, prefer one that has it (a pyenv or
# virtualenv python3 earlier on PATH may lack Debian's python3-numpy). Without NumPy the test is
# reported as skipped, not passed.
find_package(Python3 COMPONENTS Interpreter QUIET)
set(simdattn_python "")
foreach(candidate IN ITEMS "${Python3_EXECUTABLE}" /usr/bin/python3)
  if(candidate AND EXISTS "${candidate}" AND NOT simdattn_python)
    execute_process(COMMAND "${candidate}" -c "import numpy" RESULT_VARIABLE no_numpy
                    OUTPUT_QUIET ERROR_QUIET)
    if(no_numpy EQUAL 0)
      set(simdattn_python "${candidate}")
    endif()
  endif()
endforeach()
if(NOT simdattn_python)
  set(simdattn_python "${Python3_EXECUTABLE}")
endif()
if(simdattn_python)
  # The same choice as examples/CMakeLists.txt: the library itself when shared, else the shared
  # copy linked there for ctypes (tests/ is configured before examples/, hence no variable).
  if(BUILD_SHARED_LIBS)
    set(simdattn_python_library simdattn)
  else()
    set(simdattn_python_library simdattn_ctypes_shared)
  endif()
  simdattn_example_test(example.python_ctypes "${simdattn_python}"
    ARGS "${PROJECT_SOURCE_DIR}/examples/python/simdattn_ctypes.py"
         "$<TARGET_FILE:${simdattn_python_library}>"
    EXPECT "causal=False +max .*\\(ok\\)" "causal=True +max .*\\(ok\\)" "speedup"
           "deliberate error reported: status 1")
  set_tests_properties(example.python_ctypes PROPERTIES SKIP_REGULAR_EXPRESSION "NumPy is not installed")
else()
  message(STATUS "simdattn: no Python 3 interpreter, the ctypes example is not tested")
endif()

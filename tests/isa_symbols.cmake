# isa.symbols_*: the ISA units are sealed (cmake/SimdattnIsas.cmake) and hold their code in their
# own namespaces, so nothing compiled with one ISA's flags can be linked in place of another's
# copy. tests/isa/check_symbols.cmake inspects the built objects with nm.
find_program(SIMDATTN_NM NAMES ${CMAKE_NM} nm)
if(NOT SIMDATTN_NM)
  message(FATAL_ERROR "simdattn tests: nm (binutils) is needed for the isa.symbols tests")
endif()

set(simdattn_units "")
foreach(isa IN LISTS SIMDATTN_ISAS)
  list(APPEND simdattn_units "${isa}=$<TARGET_OBJECTS:simdattn_kernels_${isa}>")
endforeach()
list(JOIN simdattn_units "|" simdattn_units)
add_test(NAME isa.symbols_library
         COMMAND "${CMAKE_COMMAND}" -DNM=${SIMDATTN_NM} "-DUNITS=${simdattn_units}"
                 "-DCOMMON=$<JOIN:$<TARGET_OBJECTS:simdattn_objects>,|>"
                 "-DENTRY_POINTS=^_ZNK8simdattn6detail[0-9]+[A-Za-z]+clI"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/isa/check_symbols.cmake)
set_tests_properties(isa.symbols_library PROPERTIES LABELS "isa")

# The building blocks of the kernel tests (src/arch/building_blocks.cpp), sealed the same way.
set(simdattn_units "")
foreach(isa IN LISTS SIMDATTN_ISAS)
  list(APPEND simdattn_units "${isa}=$<TARGET_OBJECTS:simdattn_building_blocks_${isa}>")
endforeach()
list(JOIN simdattn_units "|" simdattn_units)
add_test(NAME isa.symbols_building_blocks
         COMMAND "${CMAKE_COMMAND}" -DNM=${SIMDATTN_NM} "-DUNITS=${simdattn_units}"
                 "-DCOMMON=$<JOIN:$<TARGET_OBJECTS:simdattn_objects>,|>"
                 "-DENTRY_POINTS=^_ZNK8simdattn6detail[0-9]+[A-Za-z]+clI"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/isa/check_symbols.cmake)
set_tests_properties(isa.symbols_building_blocks PROPERTIES LABELS "isa")

# The bench's machine kernels, built the same way. Guarded like bench_flags.cmake.
if(SIMDATTN_BUILD_BENCH)
  set(simdattn_units "")
  foreach(isa IN LISTS SIMDATTN_ISAS)
    list(APPEND simdattn_units "${isa}=$<TARGET_OBJECTS:simdattn_bench_machine_${isa}>")
  endforeach()
  list(JOIN simdattn_units "|" simdattn_units)
  add_test(NAME isa.symbols_bench_machine
           COMMAND "${CMAKE_COMMAND}" -DNM=${SIMDATTN_NM} "-DUNITS=${simdattn_units}"
                   "-DCOMMON=$<JOIN:$<TARGET_OBJECTS:simdattn_bench_machine>,|>"
                   "-DENTRY_POINTS=^_ZNK8simdattn5bench[0-9]+[A-Za-z]+clI"
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/isa/check_symbols.cmake)
  set_tests_properties(isa.symbols_bench_machine PROPERTIES LABELS "isa")
endif()

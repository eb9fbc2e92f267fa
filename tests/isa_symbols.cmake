# isa.symbols_*: the ISA units are sealed (cmake/SimdattnIsas.cmake) and hold their code in their
# own namespaces, so nothing compiled with one ISA's flags can be linked in place of another's
# copy. tests/isa/check_symbols.cmake inspects the built objects with nm.
find_program(SIMDATTN_NM NAMES ${CMAKE_NM} nm)
if(NOT SIMDATTN_NM)
  message(FATAL_ERROR "simdattn tests: nm (binutils) is needed for the isa.symbols tests")
endif()

# isa.symbols_<name>: the objects of the units <unit>_<isa>, one per registered ISA, hold no symbol
# but their entry points (ENTRY_POINTS, a regex on mangled names) that any other unit or the
# COMMON objects also define.
function(simdattn_isa_symbols_test name unit common entry_points)
  set(units "")
  foreach(isa IN LISTS SIMDATTN_ISAS)
    list(APPEND units "${isa}=$<TARGET_OBJECTS:${unit}_${isa}>")
  endforeach()
  list(JOIN units "|" units)
  add_test(NAME isa.symbols_${name}
           COMMAND "${CMAKE_COMMAND}" -DNM=${SIMDATTN_NM} "-DUNITS=${units}"
                   "-DCOMMON=$<JOIN:$<TARGET_OBJECTS:${common}>,|>" "-DENTRY_POINTS=${entry_points}"
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/isa/check_symbols.cmake)
  set_tests_properties(isa.symbols_${name} PROPERTIES LABELS "isa")
endfunction()

simdattn_isa_symbols_test(library simdattn_kernels simdattn_objects "^_ZNK8simdattn6detail[0-9]+[A-Za-z]+clI")
# The building blocks of the kernel tests (src/arch/building_blocks.cpp), sealed the same way.
simdattn_isa_symbols_test(building_blocks simdattn_building_blocks simdattn_objects
                          "^_ZNK8simdattn6detail[0-9]+[A-Za-z]+clI")
# The bench's machine kernels, built the same way. Guarded like bench_flags.cmake.
if(SIMDATTN_BUILD_BENCH)
  simdattn_isa_symbols_test(bench_machine simdattn_bench_machine simdattn_bench_machine
                            "^_ZNK8simdattn5bench[0-9]+[A-Za-z]+clI")
endif()

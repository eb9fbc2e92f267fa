# Checks that no code compiled for one ISA can be linked in place of another's (cmake -P script,
# run by tests/isa_symbols.cmake). For every ISA unit of a set (the library's kernels, the bench's
# machine kernels), from `nm`:
#   1. no global symbol is defined by two ISA units: the linker would keep one copy for both;
#   2. no global symbol of an ISA unit is defined by an object compiled without ISA flags (the
#      common code): the same, between a kernel unit and generic code;
#   3. every global symbol of an ISA unit is an entry point (ENTRY_POINTS, a regex on mangled
#      names) or lies in the unit's own namespace simdattn::detail::isa_<name>: anything else
#      (an inline helper outside that namespace, std::fill, an xsimd constructor) is one that
#      another unit may define too under another compiler, optimisation level or inlining choice.
# -D arguments: NM, UNITS ("isa=object" entries separated by '|'), COMMON (objects separated by
# '|'), ENTRY_POINTS.
cmake_minimum_required(VERSION 3.18)

# DW.ref.__gxx_personality_v0 is the same pointer to the C++ runtime's personality routine in
# every object that has exception tables: identical data, whichever copy the linker keeps.
set(ignored "^DW\\.ref\\.__gxx_personality_v0$")

# Sets out to the global symbols `object` defines (mangled: no blanks, no list separators).
function(defined_globals object out)
  execute_process(COMMAND "${NM}" -g --defined-only "${object}" OUTPUT_VARIABLE listing
                  RESULT_VARIABLE status ERROR_VARIABLE errors)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${NM} ${object} failed: ${errors}")
  endif()
  string(REGEX MATCHALL "[^\n]+" lines "${listing}")
  set(symbols "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^ ]+)$")
      set(symbol "${CMAKE_MATCH_1}")  # the next MATCHES resets CMAKE_MATCH_1
      if(NOT symbol MATCHES "${ignored}")
        list(APPEND symbols "${symbol}")
      endif()
    endif()
  endforeach()
  set(${out} "${symbols}" PARENT_SCOPE)
endfunction()

function(demangled symbol out)
  execute_process(COMMAND c++filt "${symbol}" OUTPUT_VARIABLE name OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0 OR name STREQUAL "")
    set(name "${symbol}")
  endif()
  set(${out} "${name}" PARENT_SCOPE)
endfunction()

string(REPLACE "|" ";" units "${UNITS}")
string(REPLACE "|" ";" common "${COMMON}")
set(problems "")
set(isas "")

set(common_symbols "")
foreach(object IN LISTS common)
  defined_globals("${object}" symbols)
  list(APPEND common_symbols ${symbols})
endforeach()

foreach(unit IN LISTS units)
  if(NOT unit MATCHES "^([a-z0-9_]+)=(.+)$")
    message(FATAL_ERROR "UNITS: expected isa=object, got '${unit}'")
  endif()
  set(isa "${CMAKE_MATCH_1}")
  set(object "${CMAKE_MATCH_2}")
  list(APPEND isas ${isa})
  defined_globals("${object}" symbols_${isa})
  string(LENGTH "isa_${isa}" length)
  set(own_namespace "8simdattn6detail${length}isa_${isa}")
  message(STATUS "${isa}: ${object}")
  foreach(symbol IN LISTS symbols_${isa})
    demangled("${symbol}" name)
    message(STATUS "  ${name}")
    if(NOT symbol MATCHES "${ENTRY_POINTS}" AND NOT symbol MATCHES "${own_namespace}")
      list(APPEND problems "${isa} exports a symbol that is neither an entry point nor in namespace simdattn::detail::isa_${isa}: ${name}")
    endif()
    if(symbol IN_LIST common_symbols)
      list(APPEND problems "${isa} and a common object both define ${name}")
    endif()
    foreach(other IN LISTS isas)
      if(NOT other STREQUAL isa AND symbol IN_LIST symbols_${other})
        list(APPEND problems "${other} and ${isa} both define ${name}")
      endif()
    endforeach()
  endforeach()
endforeach()

list(LENGTH problems count)
if(count GREATER 0)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "${count} symbol(s) compiled for one ISA may be linked in place of another's:\n  ${text}")
endif()
list(LENGTH isas unit_count)
if(unit_count LESS 1)
  message(FATAL_ERROR "no ISA unit to check")
endif()
message(STATUS "OK: ${unit_count} ISA units; every global symbol of theirs is theirs alone")

# The build side of the ISA registry (src/isa/registry.hpp is the C++ side): the instruction sets
# this build compiles kernels for, lowest first, and each one's compiler flags. Adding an ISA:
# one line in SIMDATTN_ISAS, its flags here, its entry in src/isa/registry.hpp (the two are
# checked against each other when its unit compiles), and a blocking table.
#
# Each processor has its own list (src/isa/registry.hpp has the same two); a processor without
# one gets no ISA list, and the configure step says so.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(SIMDATTN_ISAS sse2 avx2 avx512 avx512bf16 amx)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(SIMDATTN_ISAS neon)
else()
  message(FATAL_ERROR "simdattn: no ISA is registered for processor '${CMAKE_SYSTEM_PROCESSOR}' "
                      "(cmake/SimdattnIsas.cmake, src/isa/registry.hpp)")
endif()

set(SIMDATTN_ISA_FLAGS_sse2 "")
# Advanced SIMD is part of ARMv8-A, so the baseline flags already enable it (and xsimd's neon64).
# -fno-schedule-insns: g++ 12's scheduler before register allocation hoists every broadcast load
# of a micro-kernel step (LDR s + FMLA by element) ahead of the FMAs, each into a register of its
# own, and the 6 × 16, 12 × 8 and 24 × 4 kernels then spill accumulators to the stack inside
# their k loop; without it none spills (scripts/count-tile-instructions checks this). The
# out-of-order Neoverse cores schedule the loop themselves. g++ only: clang would warn about it.
set(SIMDATTN_ISA_FLAGS_neon $<$<CXX_COMPILER_ID:GNU>:-fno-schedule-insns>)
# F16C converts f16 rows (kernels/element_convert_impl.hpp); every AVX2 CPU has it, and the
# registry requires it.
set(SIMDATTN_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c)
# -Wno-(maybe-)uninitialized: g++ 12 reports false positives inside its own avx512fintrin.h,
# whose _mm512_undefined_ps() initialises a variable with itself on purpose (fixed in later
# releases); the other units keep the full warning set.
set(SIMDATTN_ISA_FLAGS_avx512 -mavx512f -mavx512cd -mavx512dq -mavx512bw -mfma
    $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized$<SEMICOLON>-Wno-uninitialized>)

# AVX512-BF16: the avx512 unit's flags (xsimd computes exactly as there) plus VDPBF16PS and the
# bf16 conversions, which only the fused bf16 prefill tile uses (src/kernels/dot_products.hpp).
set(SIMDATTN_ISA_FLAGS_avx512bf16 ${SIMDATTN_ISA_FLAGS_avx512} -mavx512bf16)
# AMX: those plus the tile instructions (src/kernels/amx_products.hpp).
set(SIMDATTN_ISA_FLAGS_amx ${SIMDATTN_ISA_FLAGS_avx512bf16} -mamx-tile -mamx-bf16)

find_program(SIMDATTN_OBJCOPY NAMES ${CMAKE_OBJCOPY} objcopy REQUIRED)
set(SIMDATTN_SEAL_ISA_OBJECT "${CMAKE_CURRENT_LIST_DIR}/seal_isa_object.sh")

# simdattn_add_isa(<name> ISA <isa> SOURCE <file> ENTRY_POINTS <wildcards...>
#                  [LINK <targets...>] [OPTIONS <flags...>])
#
# Compiles SOURCE for <isa> into the object library <name>_<isa> (use it through
# $<TARGET_OBJECTS:<name>_<isa>>), with only that ISA's flags and SIMDATTN_ISA_UNIT=<isa>, from
# which the kernel headers open their per-ISA namespace (src/kernels/isa_namespace.hpp).
#
# The object is then sealed (cmake/seal_isa_object.sh, run as the compiler launcher): every global
# symbol but the ENTRY_POINTS (objcopy wildcards on mangled names: the explicit instantiations
# that generic code calls) becomes local, and the COMDAT groups are dropped. An inline function or
# template this unit compiled with its flags (its own kernel helpers, but also a std::fill or an
# xsimd constructor that a Debug build leaves out of line) then can never be picked by the linker
# for a caller compiled for another ISA: the linker merges weak COMDAT copies by name, whatever
# flags compiled them. One source per unit, since its internal symbols become local to it.
# tests/isa_symbols.cmake checks the result.
function(simdattn_add_isa name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "ISA;SOURCE" "ENTRY_POINTS;LINK;OPTIONS")
  if(NOT arg_ISA IN_LIST SIMDATTN_ISAS)
    message(FATAL_ERROR "simdattn_add_isa: '${arg_ISA}' is not in SIMDATTN_ISAS (${SIMDATTN_ISAS})")
  endif()
  if(NOT arg_SOURCE OR NOT arg_ENTRY_POINTS)
    message(FATAL_ERROR "simdattn_add_isa(${name}): SOURCE and ENTRY_POINTS are required")
  endif()
  set(unit ${name}_${arg_ISA})
  add_library(${unit} OBJECT ${arg_SOURCE})
  set_target_properties(${unit} PROPERTIES POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    CXX_COMPILER_LAUNCHER "${SIMDATTN_SEAL_ISA_OBJECT};${SIMDATTN_OBJCOPY};${arg_ENTRY_POINTS};--")
  target_compile_definitions(${unit} PRIVATE SIMDATTN_ISA_UNIT=${arg_ISA})
  # -fno-gnu-unique: GCC gives the static locals of inline functions and inline variables the
  # STB_GNU_UNIQUE binding, which objcopy does not localize; once the COMDAT groups are dropped,
  # two units' copies (kernels and building blocks of one ISA, at -O1 under the sanitizers, where
  # they are not folded away) are then multiple definitions. Weak instead, they are sealed too.
  target_compile_options(${unit} PRIVATE ${arg_OPTIONS} ${SIMDATTN_ISA_FLAGS_${arg_ISA}}
                         $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  target_link_libraries(${unit} PRIVATE ${arg_LINK})
  # The launcher, or the entry points, changing must rebuild the unit.
  set_property(SOURCE ${arg_SOURCE} TARGET_DIRECTORY ${unit} APPEND PROPERTY OBJECT_DEPENDS
               "${SIMDATTN_SEAL_ISA_OBJECT}")
endfunction()

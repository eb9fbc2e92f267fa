// The namespace that holds this translation unit's kernel code: simdattn::detail::isa_<name>,
// from SIMDATTN_ISA_UNIT, which simdattn_add_isa() (cmake/SimdattnIsas.cmake) defines for the
// units it compiles with an ISA's flags. Code compiled for different ISAs then never shares a
// name, so no inline function or template compiled with AVX-512 flags can stand in for the SSE2
// unit's copy. Including a kernel header anywhere else is a compile error.
#pragma once

#ifndef SIMDATTN_ISA_UNIT
#error "kernel headers compile only in an ISA unit (simdattn_add_isa in cmake/SimdattnIsas.cmake)"
#endif

#define SIMDATTN_ISA_CONCATENATE_(a, b) a##b
#define SIMDATTN_ISA_CONCATENATE(a, b) SIMDATTN_ISA_CONCATENATE_(a, b)
#define SIMDATTN_ISA_NAMESPACE SIMDATTN_ISA_CONCATENATE(isa_, SIMDATTN_ISA_UNIT)

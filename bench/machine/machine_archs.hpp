// The instruction sets the machine benchmarks are built for, best first, as xsimd::dispatch wants.
#pragma once

#include <xsimd/xsimd.hpp>

namespace simdattn::bench {

// The roofs are the machine's, not the library's: they use the best ISA the CPU has whatever
// SIMDATTN_ISA caps the library to. sse2 last: every x86-64 CPU has it.
using MachineArchs = xsimd::arch_list<xsimd::avx512f, xsimd::fma3<xsimd::avx2>, xsimd::sse2>;

}  // namespace simdattn::bench

// The instruction sets the machine benchmarks are built for, best first, as xsimd::dispatch wants:
// every ISA of the library's registry (src/isa/registry.hpp).
#pragma once

#include <xsimd/xsimd.hpp>

#include "isa/registry.hpp"

namespace simdattn::bench {

// The roofs are the machine's, not the library's: they use the best ISA the CPU has whatever
// SIMDATTN_ISA caps the library to. The registry's lowest ISA comes last: every CPU of the
// processor family has it.
using MachineArchs = detail::ArchsBestFirst;

}  // namespace simdattn::bench

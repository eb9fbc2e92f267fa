// The machine's AMX-BF16 peak: a register-resident loop of TDPBF16PS (a 16×16 fp32 tile
// += a 16×32 bf16 tile times a 32×16 one: 16·16·32·2 = 16384 FLOPs an instruction) on several
// OpenMP threads, where the CPU has AMX tiles and the OS lets this process use them. It is the
// roof of 16-bit attention on such a CPU, as the FMA peak is of fp32 attention.
#pragma once

#include <cstdint>

#include "machine/threaded_loop.hpp"

namespace simdattn::bench {

// Whether this process may execute AMX-BF16: CPUID's AMX-TILE and AMX-BF16 bits, the tile states
// enabled in XCR0, and on Linux the kernel's permission, asked for on the first call
// (arch_prctl ARCH_REQ_XCOMP_PERM). The library asks the same questions before it registers its
// amx ISA (src/dispatch.cpp); the roof is the machine's, so it does not ask the library.
bool cpu_has_amx_bf16();

// Rounds of the loop (64 cycles each where TDPBF16PS issues every 16) that take a few
// milliseconds: as kFmaRoundsPerCall is for the FMA loop.
inline constexpr int64_t kAmxRoundsPerCall = int64_t{1} << 18;

// rounds_per_thread rounds (4 TDPBF16PS each) on each of `threads` threads; only where
// cpu_has_amx_bf16().
ThreadedRun run_amx_loop(int threads, int64_t rounds_per_thread);

}  // namespace simdattn::bench

// Chooses the ISA once per process: the best this CPU runs, capped by SIMDATTN_ISA.
#include "dispatch.hpp"

#include <cstdlib>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "simdattn/simdattn.hpp"

namespace simdattn::detail {
namespace {

Isa best_isa_of_this_cpu() {
  const auto cpu = xsimd::available_architectures();
  // The AVX-512 unit is compiled with F, CD, DQ and BW; AVX2 with FMA.
  if (cpu.avx512f && cpu.avx512cd && cpu.avx512dq && cpu.avx512bw) return Isa::avx512;
  if (cpu.fma3_avx2) return Isa::avx2;
  return Isa::sse2;
}

// SIMDATTN_ISA=sse2|avx2|avx512 lowers the choice; a value above what the CPU runs, or an unknown
// value, leaves the CPU's best (a cap can never make the library execute an illegal instruction).
Isa capped_by_environment(Isa best) {
  const char* requested = std::getenv("SIMDATTN_ISA");
  if (requested == nullptr) return best;
  for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(requested, isa_name(isa)) == 0) return isa < best ? isa : best;
  }
  return best;
}

// -1: no override on this thread; otherwise the Isa's value.
thread_local int isa_override = -1;

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::sse2: return "sse2";
  }
  return "sse2";
}

Isa active_isa_enum() {
  // A function-local static: initialised once, thread-safely, and never written again.
  static const Isa active = capped_by_environment(best_isa_of_this_cpu());
  return active;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512}) {
    if (isa <= best_isa_of_this_cpu()) isas.push_back(isa);
  }
  return isas;
}

ScopedIsaOverride::ScopedIsaOverride(Isa isa) : previous_(isa_override) {
  isa_override = static_cast<int>(isa < best_isa_of_this_cpu() ? isa : best_isa_of_this_cpu());
}

ScopedIsaOverride::~ScopedIsaOverride() { isa_override = previous_; }

Isa isa_for_this_call() {
  return isa_override >= 0 ? static_cast<Isa>(isa_override) : active_isa_enum();
}

}  // namespace simdattn::detail

namespace simdattn {

const char* active_isa() { return detail::isa_name(detail::active_isa_enum()); }

const char* version() { return SIMDATTN_VERSION_STRING; }

}  // namespace simdattn

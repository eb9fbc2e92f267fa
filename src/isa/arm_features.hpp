// The AArch64 vector extensions beyond NEON that this CPU has, read from the kernel's HWCAP bits:
// SVE and SVE2, and SVE's vector length for this process. They are detected and reported (the
// tests and .ci/arm64.sh print them) but run no kernel: xsimd 8.1 has no SVE architecture, and
// its later fixed-size SVE support needs the vector length at compile time, while Neoverse V1
// has 256-bit and N2/V2/Grace 128-bit SVE. On 128-bit SVE, NEON does the same work per
// instruction. An SVE kernel unit would be an ISA entry of its own (src/isa/registry.hpp).
// Everywhere but AArch64 Linux every field is false or 0.
#pragma once

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <sys/prctl.h>
#endif

namespace simdattn::detail {

struct ArmVectorExtensions {
  bool sve = false;
  bool sve2 = false;
  // SVE's vector length in bits for this process (0 without SVE).
  int sve_vector_bits = 0;
};

inline ArmVectorExtensions arm_vector_extensions() {
  ArmVectorExtensions found;
#if defined(__aarch64__) && defined(__linux__)
  // The bits of <asm/hwcap.h>, spelt out for C libraries whose headers predate them.
  constexpr unsigned long kHwcapSve = 1ul << 22;   // HWCAP_SVE
  constexpr unsigned long kHwcap2Sve2 = 1ul << 1;  // HWCAP2_SVE2
  found.sve = (getauxval(AT_HWCAP) & kHwcapSve) != 0;
  found.sve2 = found.sve && (getauxval(AT_HWCAP2) & kHwcap2Sve2) != 0;
  if (found.sve) {
    constexpr int kGetVectorLength = 51;          // PR_SVE_GET_VL
    constexpr int kVectorLengthMask = 0xffff;     // PR_SVE_VL_LEN_MASK: the length in bytes
    const int result = prctl(kGetVectorLength, 0, 0, 0, 0);
    if (result > 0) found.sve_vector_bits = (result & kVectorLengthMask) * 8;
  }
#endif
  return found;
}

}  // namespace simdattn::detail

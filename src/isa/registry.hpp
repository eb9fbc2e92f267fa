// The ISA registry: every instruction set the kernels are built for, declared once. Dispatch
// (detection, SIMDATTN_ISA, active_isa()), run_for_isa, the blocking lookups and the tests' ISA
// list all derive from the entries here; cmake/SimdattnIsas.cmake holds the compile flags, and
// each ISA unit checks at compile time that its flags enable the architecture registered here.
//
// Adding an ISA: a value of Isa (in rank order), an IsaTraits specialisation, its name in
// SIMDATTN_ISAS with its flags (cmake/SimdattnIsas.cmake), and a blocking table
// (kernels/blocking.hpp). A lookup for an architecture that has no entry does not compile.
//
// Each processor has its own list: x86-64 (sse2, avx2, avx512, avx512bf16, amx) and AArch64
// (neon). A build sees only its processor's entries, so no x86 header or instruction reaches an
// ARM build, and the lowest entry of the list (value 0) is the baseline every CPU of that
// processor runs. An entry may also say whether a CPU that runs it should pick it by itself
// (chosen_by_default; dispatch.cpp): without one, every entry the CPU runs may be its default.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "kernels/blocking.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#elif !defined(__aarch64__)
#error "simdattn: no ISA is registered for this processor (src/isa/registry.hpp)"
#endif

// Whether this translation unit is compiled with AVX512-BF16 (the avx512bf16 and amx units' flags),
// and with AMX-BF16 too (the amx unit's): GCC spells the AMX macros __AMX_TILE__ and __AMX_BF16__,
// clang __AMXTILE__ and __AMXBF16__.
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define SIMDATTN_AVX512_BF16_UNIT 1
#endif
#if (defined(__AMX_TILE__) || defined(__AMXTILE__)) && (defined(__AMX_BF16__) || defined(__AMXBF16__)) && \
    defined(SIMDATTN_AVX512_BF16_UNIT)
#define SIMDATTN_AMX_BF16_UNIT 1
#endif

namespace simdattn::detail {

// Lowest first: a higher value runs on fewer CPUs, and SIMDATTN_ISA caps by this order.
#if defined(__x86_64__) || defined(_M_X64)
enum class Isa { sse2 = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3, amx = 4 };
#else
enum class Isa { neon = 0 };
#endif

// What xsimd reports of the CPU it runs on (CPUID on x86, HWCAP on ARM), as the registry's
// runs_on() reads it.
using CpuFeatures = decltype(xsimd::available_architectures());

// Every registered ISA, lowest first.
template <Isa... Isas>
struct IsaList {
  static constexpr int size = sizeof...(Isas);
};

// One entry per ISA: its name (SIMDATTN_ISA, active_isa(), test names), its xsimd architecture,
// its block sizes, and whether a CPU runs it (what its unit's flags require).
template <Isa I>
struct IsaTraits;  // no definition: an Isa without an entry fails to compile

#if defined(__x86_64__) || defined(_M_X64)

template <>
struct IsaTraits<Isa::sse2> {
  static constexpr const char* name = "sse2";
  using Arch = xsimd::sse2;
  static constexpr BlockingSizes blocking = kSse2Blocking;
  static bool runs_on(const CpuFeatures& cpu) { return cpu.sse2; }
};

template <>
struct IsaTraits<Isa::avx2> {
  static constexpr const char* name = "avx2";
  using Arch = xsimd::fma3<xsimd::avx2>;
  static constexpr BlockingSizes blocking = kAvx2Blocking;
  // F16C too (the f16 conversions): xsimd 8.1 does not report it, so CPUID leaf 1 (ECX bit 29)
  // is read here (clang's __builtin_cpu_supports does not know "f16c").
  static bool runs_on(const CpuFeatures& cpu) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
    return cpu.fma3_avx2 && f16c;
  }
};

template <>
struct IsaTraits<Isa::avx512> {
  static constexpr const char* name = "avx512";
  using Arch = xsimd::avx512f;
  static constexpr BlockingSizes blocking = kAvx512Blocking;
  // The unit is compiled with F, CD, DQ and BW.
  static bool runs_on(const CpuFeatures& cpu) {
    return cpu.avx512f && cpu.avx512cd && cpu.avx512dq && cpu.avx512bw;
  }
};

// Whether this CPU has AVX512-BF16 (CPUID leaf 7 subleaf 1, EAX bit 5), which xsimd 8.1 does not
// report; and whether it is an AMD one (Zen 4 and later), whose VDPBF16PS runs at about twice
// the rate of its fp32 FMAs (826 against 457 GFLOP/s on a Zen 5, bench-shapes.md), where Intel's
// runs at half of theirs (233 against 471 on an Emerald Rapids, docs/precision-performance.md).
// Defined in dispatch.cpp, read once.
bool cpu_has_avx512_bf16();
bool cpu_is_amd();

// AVX-512 with more instructions than avx512f's, which only bf16 prefill's fused tile uses: VDPBF16PS
// (AVX512-BF16: Zen 4 and later, Cooper Lake, Sapphire Rapids and later) or AMX tiles (Sapphire
// Rapids and later). xsimd 8.1 has no such architectures, so these are tags of the project's own:
// xsimd computes with them exactly as with avx512f (their base class, and the register aliases at
// the end of this file), so every kernel compiles to the avx512 unit's code, except that tile
// (kernels/dot_products.hpp, kernels/amx_products.hpp). A type for each keeps the units' entry
// points (instantiated per Arch) apart. kExtension's value orders them for xsimd, above avx512f.
enum class Avx512Extension : unsigned { bf16 = 8, amx = 9 };

// Whether this translation unit is compiled with the extension's instructions.
constexpr bool unit_compiles(Avx512Extension extension) {
#if defined(SIMDATTN_AVX512_BF16_UNIT)
  constexpr bool with_bf16 = XSIMD_WITH_AVX512F;
#else
  constexpr bool with_bf16 = false;
#endif
#if defined(SIMDATTN_AMX_BF16_UNIT)
  constexpr bool with_amx = XSIMD_WITH_AVX512F;
#else
  constexpr bool with_amx = false;
#endif
  return extension == Avx512Extension::amx ? with_amx : with_bf16;
}

template <Avx512Extension kExtension>
struct avx512_with : xsimd::avx512f {
  static constexpr bool supported() noexcept { return unit_compiles(kExtension); }
  static constexpr bool available() noexcept { return true; }
  static constexpr unsigned version() noexcept {
    return xsimd::generic::version(3, static_cast<unsigned>(kExtension), 0);
  }
  static constexpr char const* name() noexcept {
    return kExtension == Avx512Extension::bf16 ? "avx512_bf16" : "avx512_amx";
  }
};
using avx512_bf16 = avx512_with<Avx512Extension::bf16>;
using avx512_amx = avx512_with<Avx512Extension::amx>;

template <>
struct IsaTraits<Isa::avx512bf16> {
  static constexpr const char* name = "avx512bf16";
  using Arch = avx512_bf16;
  static constexpr BlockingSizes blocking = kAvx512Blocking;
  static bool runs_on(const CpuFeatures& cpu) {
    return IsaTraits<Isa::avx512>::runs_on(cpu) && cpu_has_avx512_bf16();
  }
  // The CPU's default only where VDPBF16PS outruns the FMAs it replaces: on Intel cores it
  // multiplies at half their rate, and the avx512 tile's widening to fp32 is faster. SIMDATTN_ISA
  // naming it still selects it on any CPU that runs it.
  static bool chosen_by_default(const CpuFeatures&) { return cpu_is_amd(); }
};

// Whether this CPU and its OS let the process use AMX-BF16 tiles: CPUID's AMX-TILE, AMX-BF16 and
// AVX512-BF16 bits, the tile state enabled in XCR0, and (Linux) the kernel's permission for this
// process, which the first call asks for (arch_prctl ARCH_REQ_XCOMP_PERM). Defined in
// dispatch.cpp, read once.
bool amx_tiles_usable();

template <>
struct IsaTraits<Isa::amx> {
  static constexpr const char* name = "amx";
  using Arch = avx512_amx;
  static constexpr BlockingSizes blocking = kAvx512Blocking;
  static bool runs_on(const CpuFeatures& cpu) {
    return IsaTraits<Isa::avx512bf16>::runs_on(cpu) && amx_tiles_usable();
  }
};

using RegisteredIsas = IsaList<Isa::sse2, Isa::avx2, Isa::avx512, Isa::avx512bf16, Isa::amx>;

#else  // AArch64

// Advanced SIMD: every AArch64 CPU has it (xsimd reports it from HWCAP_ASIMD). SVE and SVE2 are
// detected and reported (isa/arm_features.hpp) but get no entry: xsimd 8.1 has no SVE
// architecture, and SVE's vector length is only known at run time.
template <>
struct IsaTraits<Isa::neon> {
  static constexpr const char* name = "neon";
  using Arch = xsimd::neon64;
  static constexpr BlockingSizes blocking = kNeonBlocking;
  static bool runs_on(const CpuFeatures& cpu) { return cpu.neon64; }
};

using RegisteredIsas = IsaList<Isa::neon>;

#endif

}  // namespace simdattn::detail

#if (defined(__x86_64__) || defined(_M_X64)) && XSIMD_WITH_AVX512F
// avx512_with's registers are avx512f's (xsimd's own derived architectures declare theirs so; its
// alias macro names one architecture, hence a line for each).
namespace xsimd::types {
template <class T, ::simdattn::detail::Avx512Extension kExtension>
struct get_bool_simd_register<T, ::simdattn::detail::avx512_with<kExtension>> {
  using type = simd_avx512_bool_register<T>;
};
XSIMD_DECLARE_SIMD_REGISTER_ALIAS(::simdattn::detail::avx512_bf16, avx512f);
XSIMD_DECLARE_SIMD_REGISTER_ALIAS(::simdattn::detail::avx512_amx, avx512f);
}  // namespace xsimd::types
#endif

namespace simdattn::detail {

template <Isa... Isas>
constexpr bool in_rank_order(IsaList<Isas...>) {
  int rank = 0;
  return ((static_cast<int>(Isas) == rank++) && ...);
}
static_assert(in_rank_order(RegisteredIsas{}), "RegisteredIsas lists every Isa once, lowest first");

// The registered architectures best first, as xsimd::dispatch walks them.
template <class BestFirst, Isa... Rest>
struct ReversedArchs {
  using type = BestFirst;
};
template <class... Done, Isa Next, Isa... Rest>
struct ReversedArchs<xsimd::arch_list<Done...>, Next, Rest...>
    : ReversedArchs<xsimd::arch_list<typename IsaTraits<Next>::Arch, Done...>, Rest...> {};
template <Isa... Isas>
constexpr auto archs_best_first(IsaList<Isas...>) ->
    typename ReversedArchs<xsimd::arch_list<>, Isas...>::type;
using ArchsBestFirst = decltype(archs_best_first(RegisteredIsas{}));

// Calls visit(std::integral_constant<Isa, I>{}) for every registered ISA, lowest first, until
// one returns true; returns whether one did.
template <class Visit, Isa... Isas>
inline bool for_each_isa(IsaList<Isas...>, Visit&& visit) {
  return (visit(std::integral_constant<Isa, Isas>{}) || ...);
}
template <class Visit>
inline bool for_each_isa(Visit&& visit) {
  return for_each_isa(RegisteredIsas{}, std::forward<Visit>(visit));
}

// The position in RegisteredIsas of the entry whose Arch is `Arch`, or -1.
template <class Arch, Isa... Isas>
constexpr int registry_index(IsaList<Isas...>) {
  int index = 0, found = -1;
  ((found = std::is_same_v<Arch, typename IsaTraits<Isas>::Arch> ? index : found, ++index), ...);
  return found;
}

// The registry entry of an xsimd architecture; a compile error for one that has none.
template <class Arch>
constexpr Isa isa_of_arch() {
  constexpr int index = registry_index<Arch>(RegisteredIsas{});
  static_assert(index >= 0, "this xsimd architecture has no entry in src/isa/registry.hpp");
  return static_cast<Isa>(index);
}

// The blocking table of an architecture (kernels) or of an ISA (the plan).
template <class Arch>
constexpr BlockingSizes blocking_of() {
  return IsaTraits<isa_of_arch<Arch>()>::blocking;
}
inline BlockingSizes blocking_for(Isa isa) {
  BlockingSizes sizes{};
  for_each_isa([&](auto entry) {
    if (entry.value != isa) return false;
    sizes = IsaTraits<decltype(entry)::value>::blocking;
    return true;
  });
  return sizes;
}

inline const char* isa_name(Isa isa) {
  const char* name = "";
  for_each_isa([&](auto entry) {
    if (entry.value != isa) return false;
    name = IsaTraits<decltype(entry)::value>::name;
    return true;
  });
  return name;
}

// Runs `kernel` compiled for `isa`: kernel(Arch{}, args...), whose instantiation lives in that
// ISA's unit (src/arch/kernels.cpp, compiled once per registered ISA).
template <class Kernel, class... Args>
inline void run_for_isa(Isa isa, const Kernel& kernel, Args&&... args) {
  for_each_isa([&](auto entry) {
    if (entry.value != isa) return false;
    kernel(typename IsaTraits<decltype(entry)::value>::Arch{}, std::forward<Args>(args)...);
    return true;
  });
}

}  // namespace simdattn::detail

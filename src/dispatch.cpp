// Chooses the ISA once per process: the best registered one this CPU runs and that is its default
// (an entry's chosen_by_default), or the one SIMDATTN_ISA names (capped by what the CPU runs).
#include "dispatch.hpp"

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <xsimd/xsimd.hpp>

#include "simdattn/simdattn.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace simdattn::detail {

#if defined(__x86_64__) || defined(_M_X64)
bool cpu_has_avx512_bf16() {
  static const bool has = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0 || eax < 1) return false;
    __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx);
    return (eax & (1u << 5)) != 0;
  }();
  return has;
}

bool cpu_is_amd() {
  static const bool amd = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
    // "AuthenticAMD" in EBX, EDX, ECX.
    return ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;
  }();
  return amd;
}

bool amx_tiles_usable() {
  static const bool usable = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool amx_bf16 = (edx & (1u << 22)) != 0, amx_tile = (edx & (1u << 24)) != 0;
    if (!amx_bf16 || !amx_tile || eax < 1) return false;
    unsigned int eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
    __get_cpuid_count(7, 1, &eax1, &ebx1, &ecx1, &edx1);
    const bool avx512_bf16 = (eax1 & (1u << 5)) != 0;
    // OSXSAVE (CPUID.1:ECX bit 27) before XGETBV; XCR0 bits 17 and 18: the tile configuration
    // and data states.
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & (1u << 27)) == 0) return false;
    unsigned int xcr0_low = 0, xcr0_high = 0;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if (!avx512_bf16 || (xcr0_low & (3u << 17)) != (3u << 17)) return false;
#if defined(__linux__)
    // Linux enables the tile data state per process, on request (since 5.16): without it the
    // first tile instruction faults.
    constexpr long kArchRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kTileData = 18;                   // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kArchRequestPermission, kTileData) == 0;
#else
    return false;  // the permission protocol of other systems is not implemented
#endif
  }();
  return usable;
}
#endif

namespace {

// An entry's chosen_by_default(cpu) where it declares one; every other entry the CPU runs is.
template <Isa I>
auto chosen_by_default(const CpuFeatures& cpu, int) -> decltype(IsaTraits<I>::chosen_by_default(cpu)) {
  return IsaTraits<I>::chosen_by_default(cpu);
}
template <Isa I>
bool chosen_by_default(const CpuFeatures&, long) {
  return true;
}

// The best ISA this CPU runs that is its default and not above `cap`.
Isa default_isa_up_to(Isa cap) {
  const auto cpu = xsimd::available_architectures();
  Isa found = Isa{};
  for_each_isa([&](auto entry) {
    constexpr Isa isa = decltype(entry)::value;
    if (isa <= cap && IsaTraits<isa>::runs_on(cpu) && chosen_by_default<isa>(cpu, 0)) found = isa;
    return false;
  });
  return found;
}

Isa best_isa_of_this_cpu() {
  static const Isa best = [] {
    const auto cpu = xsimd::available_architectures();
    Isa found = Isa{};  // value 0: the processor's baseline, which every CPU of it runs
    for_each_isa([&](auto entry) {
      if (IsaTraits<decltype(entry)::value>::runs_on(cpu)) found = entry.value;
      return false;  // visit every entry: the last one the CPU runs is the best
    });
    return found;
  }();
  return best;
}

std::string accepted_isa_names() {
  std::string names;
  for_each_isa([&](auto entry) {
    if (!names.empty()) names += ", ";
    names += IsaTraits<decltype(entry)::value>::name;
    return false;
  });
  return names;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Unset, the CPU's default. A value the CPU runs selects that ISA, even one that is not a default
// (avx512bf16 on Intel); a value above what the CPU runs leaves the CPU's default, so a cap can
// never make the library execute an illegal instruction.
Isa chosen_with_environment(Isa best) {
  const std::optional<Isa> cap = parse_isa_cap(std::getenv("SIMDATTN_ISA"));
  if (cap && *cap <= best) return *cap;
  return default_isa_up_to(best);
}

// -1: no override on this thread; otherwise the Isa's value.
thread_local int isa_override = -1;

}  // namespace

std::optional<Isa> parse_isa_cap(const char* value) {
  if (value == nullptr) return std::nullopt;
  std::string_view text(value);
  const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  std::optional<Isa> found;
  for_each_isa([&](auto entry) {
    if (!equal_ignoring_case(text, IsaTraits<decltype(entry)::value>::name)) return false;
    found = entry.value;
    return true;
  });
  if (found) return found;
  // "simdattn: ", not "simdattn::<function>: ": the C ABI keeps this prefix as it is.
  throw std::invalid_argument("simdattn: SIMDATTN_ISA='" + std::string(value) +
                              "' names no instruction set; expected one of " +
                              accepted_isa_names() +
                              " (any case), or unset or blank for the CPU's default");
}

Isa active_isa_enum() {
  // A function-local static: initialised once, thread-safely, and never written again. When
  // SIMDATTN_ISA is invalid the initialisation throws, stays undone, and the next call throws
  // again.
  static const Isa active = chosen_with_environment(best_isa_of_this_cpu());
  return active;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for_each_isa([&](auto entry) {
    if (entry.value <= best_isa_of_this_cpu()) isas.push_back(entry.value);
    return false;
  });
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

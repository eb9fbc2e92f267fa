#include "machine/amx_peak.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace simdattn::bench {

#if defined(__x86_64__)

namespace {

// Tiles 0-3 accumulate (16 rows of 16 fp32), 4-5 hold A (16 rows of 32 bf16), 6-7 hold B (16 rows
// of 16 bf16 pairs): four independent products a round, A and B each used twice, so the loop
// measures the multiplier's throughput, not TDPBF16PS's latency or the loads.
constexpr int kProductsPerRound = 4;
constexpr double kFlopsPerProduct = 16.0 * 16.0 * 32.0 * 2.0;

// The LDTILECFG operand: palette 1, eight tiles of 16 rows × 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// The accumulators converge: each product adds 32 · 2^-20 to an element, far from overflow over
// any run, and stays a normal number. Compiled for AMX through the target attribute: this file
// needs no flag, and the function runs only after cpu_has_amx_bf16().
[[gnu::target("amx-tile,amx-bf16"), gnu::noinline]] float amx_loop(int64_t rounds) {
  TileConfig config;
  for (int tile = 0; tile < 8; ++tile) {
    config.bytes_per_row[tile] = 64;
    config.rows[tile] = 16;
  }
  _tile_loadconfig(&config);
  alignas(64) uint16_t operand[16 * 32];
  for (uint16_t& element : operand) element = 0x3A80;  // bf16 2^-10
  alignas(64) float accumulator[16 * 16] = {};
  _tile_loadd(0, accumulator, 64);
  _tile_loadd(1, accumulator, 64);
  _tile_loadd(2, accumulator, 64);
  _tile_loadd(3, accumulator, 64);
  _tile_loadd(4, operand, 64);
  _tile_loadd(5, operand, 64);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  for (int64_t round = 0; round < rounds; ++round) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  // The tile number is an immediate: one store per accumulator.
  float sum = 0.0f;
  _tile_stored(0, accumulator, 64);
  sum += accumulator[0];
  _tile_stored(1, accumulator, 64);
  sum += accumulator[0];
  _tile_stored(2, accumulator, 64);
  sum += accumulator[0];
  _tile_stored(3, accumulator, 64);
  sum += accumulator[0];
  _tile_release();
  return sum;
}

}  // namespace

bool cpu_has_amx_bf16() {
  static const bool usable = [] {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool amx_bf16 = (edx & (1u << 22)) != 0, amx_tile = (edx & (1u << 24)) != 0;
    // OSXSAVE (CPUID.1:ECX bit 27) before XGETBV; XCR0 bits 17 and 18: tile configuration and data.
    if (!amx_bf16 || !amx_tile || __get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & (1u << 27)) == 0) {
      return false;
    }
    unsigned int xcr0_low = 0, xcr0_high = 0;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & (3u << 17)) != (3u << 17)) return false;
#if defined(__linux__)
    constexpr long kArchRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kTileData = 18;                   // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kArchRequestPermission, kTileData) == 0;
#else
    return false;
#endif
  }();
  return usable;
}

ThreadedRun run_amx_loop(int threads, int64_t rounds_per_thread) {
  return run_threaded_loop(threads, rounds_per_thread, kFlopsPerProduct * kProductsPerRound, amx_loop);
}

#else

bool cpu_has_amx_bf16() { return false; }
ThreadedRun run_amx_loop(int, int64_t) { return {0.0, 0.0, 0}; }

#endif

}  // namespace simdattn::bench

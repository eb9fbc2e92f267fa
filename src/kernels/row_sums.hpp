// RowSums: the sums of a register of registers in one haddp, lanes in order, for the decoding
// kernels' dot products (decode_tile_impl.hpp, decode_page_runs.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Which lane of xsimd::haddp(rows) holds the sum of rows[i]. It should be lane i, but xsimd 8.1's
// AVX-512 haddp returns lanes 0 1 4 5 2 3 6 7 8 9 12 13 10 11 14 15; probing once keeps the
// kernel right with this xsimd and with one that fixes it.
template <class Arch>
inline const std::array<int32_t, xsimd::batch<float, Arch>::size>& haddp_lane_of_row() {
  using Floats = xsimd::batch<float, Arch>;
  static constexpr int W = static_cast<int>(Floats::size);
  static const std::array<int32_t, W> lane_of_row = [] {
    Floats rows[W];
    for (int i = 0; i < W; ++i) rows[i] = Floats(static_cast<float>(i));
    alignas(64) float sums[W];
    xsimd::haddp(rows).store_aligned(sums);
    std::array<int32_t, W> lanes{};
    for (int lane = 0; lane < W; ++lane) lanes[static_cast<int>(sums[lane]) / W] = lane;
    return lanes;
  }();
  return lane_of_row;
}

// The sums of W registers, lane i holding the sum of rows[i]: xsimd::haddp, its lanes put in
// order by one permute (AVX, AVX-512) or, where SSE2's haddp ever needs it, through memory.
template <class Arch>
class RowSums {
 public:
  using Floats = xsimd::batch<float, Arch>;
  static constexpr int W = static_cast<int>(Floats::size);

  RowSums() : lane_of_row_(haddp_lane_of_row<Arch>()) {}

  Floats operator()(const Floats* rows) const {
    const Floats sums = xsimd::haddp(rows);
#if defined(__x86_64__) || defined(_M_X64)
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      return _mm512_permutexvar_ps(_mm512_loadu_si512(lane_of_row_.data()), sums);
    } else if constexpr (std::is_same_v<Arch, xsimd::fma3<xsimd::avx2>>) {
      return _mm256_permutevar8x32_ps(
          sums, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lane_of_row_.data())));
    } else
#endif
    {
      alignas(64) float lanes[W], ordered[W];
      sums.store_aligned(lanes);
      for (int i = 0; i < W; ++i) ordered[i] = lanes[lane_of_row_[i]];
      return Floats::load_aligned(ordered);
    }
  }

 private:
  const std::array<int32_t, W>& lane_of_row_;
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

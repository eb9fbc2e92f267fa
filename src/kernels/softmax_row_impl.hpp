// softmax_rows() on one contiguous row, in three passes as XNNPACK does: the max, then exp(x - max)
// stored with its running sum, then the scaling by 1/sum.
#pragma once

#include <algorithm>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/score_layout.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/vector_math.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Loads the last `count` (< W) floats of a row into a register, the missing lanes set to `fill`.
template <class Arch>
inline xsimd::batch<float, Arch> load_tail(const float* at, int64_t count, float fill) {
  alignas(64) float lanes[xsimd::batch<float, Arch>::size];
  std::fill(std::begin(lanes), std::end(lanes), fill);
  std::copy(at, at + count, lanes);
  return xsimd::batch<float, Arch>::load_aligned(lanes);
}

template <class Arch>
inline void store_tail(xsimd::batch<float, Arch> value, float* at, int64_t count) {
  alignas(64) float lanes[xsimd::batch<float, Arch>::size];
  value.store_aligned(lanes);
  std::copy(lanes, lanes + count, at);
}

// The largest lane of a register.
template <class Arch>
inline float horizontal_max(xsimd::batch<float, Arch> value) {
  alignas(64) float lanes[xsimd::batch<float, Arch>::size];
  value.store_aligned(lanes);
  float max = lanes[0];
  for (float lane : lanes) max = std::max(max, lane);
  return max;
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

namespace simdattn::detail {

template <class Arch>
void SoftmaxRow::operator()(Arch, float* row, int64_t count) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t full = count - count % W;
  const int64_t tail = count - full;

  Floats max(kMinusInfinity);
  for (int64_t j = 0; j < full; j += W) max = xsimd::max(max, Floats::load_unaligned(row + j));
  if (tail > 0) max = xsimd::max(max, load_tail<Arch>(row + full, tail, kMinusInfinity));
  // A sink joins the max and, below, the sum: a row-level decision, no per-element work.
  const bool has_sink = sink != kMinusInfinity;
  const float row_max = has_sink ? std::max(horizontal_max<Arch>(max), sink) : horizontal_max<Arch>(max);
  const Floats shift = exp_shift<Arch>(Floats(row_max));

  Floats sum(0.0f);
  for (int64_t j = 0; j < full; j += W) {
    const Floats e = exp_approx<Arch>(Floats::load_unaligned(row + j) - shift);
    e.store_unaligned(row + j);
    sum += e;
  }
  if (tail > 0) {
    const Floats e = exp_approx<Arch>(load_tail<Arch>(row + full, tail, kMinusInfinity) - shift);
    store_tail<Arch>(e, row + full, tail);
    sum += e;
  }
  const float total = has_sink ? xsimd::hadd(sum) + std::exp(sink - row_max) : xsimd::hadd(sum);
  // A row with nothing visible (all -inf) becomes zeros; a NaN total keeps the row NaN.
  const Floats scale(total > 0.0f ? 1.0f / total : (total == 0.0f ? 0.0f : total));
  for (int64_t j = 0; j < full; j += W) (Floats::load_unaligned(row + j) * scale).store_unaligned(row + j);
  if (tail > 0) store_tail<Arch>(load_tail<Arch>(row + full, tail, 0.0f) * scale, row + full, tail);
}

template <class Arch>
void ExpArray::operator()(Arch, const float* in, float* out, int64_t count) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const auto exponential = [this](Floats x) {
    if (!base_two) return exp_approx<Arch>(x);
    return coarse ? exp2_approx<Arch, true>(x) : exp2_approx<Arch>(x);
  };
  const int64_t full = count - count % W;
  for (int64_t i = 0; i < full; i += W) {
    exponential(Floats::load_unaligned(in + i)).store_unaligned(out + i);
  }
  if (full < count) {
    store_tail<Arch>(exponential(load_tail<Arch>(in + full, count - full, 0.0f)), out + full, count - full);
  }
}

}  // namespace simdattn::detail

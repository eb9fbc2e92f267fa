// The definition of WeightedSumRowKernel (merge_rows.hpp): registers of each source row widened
// with element_convert_impl.hpp's loads, the sum kept in registers across the sources, so a merge
// reads every state once and writes its output once.
#pragma once

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/merge_rows.hpp"
#include "kernels/scalar_convert.hpp"

namespace simdattn::detail {
namespace SIMDATTN_ISA_NAMESPACE {
namespace merge_rows {

using namespace convert;

// Elements [e, e + kLanes) of a row of dtype (f32, bf16 or f16) as floats.
inline Floats load_row(const void* row, DType dtype, int64_t e) {
  switch (dtype) {
    case DType::bf16: return load_bf16(static_cast<const uint16_t*>(row) + e);
    case DType::f16:
      if constexpr (kHasF16) {
        return load_f16(static_cast<const uint16_t*>(row) + e);
      } else {
        float widened[kLanes];
        widen_row_scalar(static_cast<const uint16_t*>(row) + e, DType::f16, kLanes, widened, nullptr, 1);
        return load(widened);
      }
    default: return load(static_cast<const float*>(row) + e);
  }
}

template <bool kStreaming>
inline void store_row(void* row, DType dtype, int64_t e, Floats values) {
  if constexpr (kStreaming) {
    stream(static_cast<float*>(row) + e, values);
    return;
  }
  switch (dtype) {
    case DType::bf16: store_bf16(static_cast<uint16_t*>(row) + e, values); return;
    case DType::f16:
      if constexpr (kHasF16) {
        store_f16(static_cast<uint16_t*>(row) + e, values);
      } else {
        float narrowed[kLanes];
        store(narrowed, values);
        narrow_row_scalar(narrowed, kLanes, static_cast<uint16_t*>(row) + e, DType::f16);
      }
      return;
    default: store(static_cast<float*>(row) + e, values); return;
  }
}

// Registers of elements [e, e + kRegisters·kLanes), summed over the sources.
template <int kRegisters, bool kStreaming>
inline void sum_registers(const void* const* sources, const DType* dtypes, const float* weights,
                          int64_t count, int64_t e, void* destination, DType destination_dtype) {
  Floats sum[kRegisters];
  for (int r = 0; r < kRegisters; ++r) sum[r] = broadcast(0.0f);
  for (int64_t i = 0; i < count; ++i) {
    const Floats weight = broadcast(weights[i]);
    for (int r = 0; r < kRegisters; ++r) {
      sum[r] = add(sum[r], multiply(weight, load_row(sources[i], dtypes[i], e + r * kLanes)));
    }
  }
  for (int r = 0; r < kRegisters; ++r) {
    store_row<kStreaming>(destination, destination_dtype, e + r * kLanes, sum[r]);
  }
}

// The whole registers of a row; returns where the scalar tail starts.
template <bool kStreaming>
inline int64_t sum_whole_registers(const void* const* sources, const DType* dtypes, const float* weights,
                                   int64_t count, int64_t length, void* destination, DType destination_dtype) {
  constexpr int kRegisters = 4;
  int64_t e = 0;
  for (; e + kRegisters * kLanes <= length; e += kRegisters * kLanes) {
    sum_registers<kRegisters, kStreaming>(sources, dtypes, weights, count, e, destination, destination_dtype);
  }
  for (; e + kLanes <= length; e += kLanes) {
    sum_registers<1, kStreaming>(sources, dtypes, weights, count, e, destination, destination_dtype);
  }
  return e;
}

}  // namespace merge_rows
}  // namespace SIMDATTN_ISA_NAMESPACE

template <class Arch>
void WeightedSumRowKernel::operator()(Arch, const void* const* sources, const DType* dtypes,
                                      const float* weights, int64_t count, int64_t length,
                                      void* destination, DType destination_dtype, bool streaming) const {
  using namespace SIMDATTN_ISA_NAMESPACE::merge_rows;
  const bool aligned = reinterpret_cast<uintptr_t>(destination) % (kLanes * sizeof(float)) == 0;
  int64_t e = streaming && destination_dtype == DType::f32 && aligned
                  ? sum_whole_registers<true>(sources, dtypes, weights, count, length, destination, destination_dtype)
                  : sum_whole_registers<false>(sources, dtypes, weights, count, length, destination, destination_dtype);
  // The last elements one at a time, in the same order.
  for (; e < length; ++e) {
    float sum = 0.0f;
    for (int64_t i = 0; i < count; ++i) {
      float value;
      widen_row_scalar(static_cast<const unsigned char*>(sources[i]) + e * dtype_size(dtypes[i]),
                       dtypes[i], 1, &value, nullptr, 1);
      sum += weights[i] * value;
    }
    narrow_row_scalar(&sum, 1, static_cast<unsigned char*>(destination) + e * dtype_size(destination_dtype),
                      destination_dtype);
  }
}

}  // namespace simdattn::detail

// The weighted sum at the heart of merge_attention_states (src/api/merge_states.cpp), one ISA's
// vectorised version, run through run_for_isa.
#pragma once

#include <cstdint>

#include "simdattn/tensor.hpp"

namespace simdattn::detail {

// destination[e] = Σ_i weights[i]·sources[i][e] for e < length, rounded to nearest even into a row
// of `destination_dtype` (f32, bf16 or f16). Source i is a row of dtypes[i] (f32, bf16 or f16).
// Each element starts from 0 and adds the products in order i = 0, 1, ..., a multiply and an add
// each (the library builds with -ffp-contract=off), so every ISA gives the bits the scalar loop
// does. With `streaming`, an f32 destination aligned to a whole register is written around the
// caches (x86's non-temporal stores), for outputs too large to stay in them; the caller then
// orders those stores with a store fence before anything reads them.
struct WeightedSumRowKernel {
  template <class Arch>
  void operator()(Arch, const void* const* sources, const DType* dtypes, const float* weights,
                  int64_t count, int64_t length, void* destination, DType destination_dtype,
                  bool streaming) const;
};

}  // namespace simdattn::detail

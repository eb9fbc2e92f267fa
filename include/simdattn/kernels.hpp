// The three stages of attention as separate calls on strided views. num_threads is as in
// AttentionOptions (attention.hpp): 0 is OpenMP's default, and the team is capped at the logical
// CPUs the process may use. Each function throws std::invalid_argument (naming the argument, the
// expected and the actual value) before writing anything when an argument is wrong.
#pragma once

#include <optional>
#include <stdexcept>  // std::invalid_argument, which every function here throws

#include "simdattn/export.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn {

// scores[b,h,i,j] = scale · Σ_d q[b,h,i,d] · k[b,h',j,d], h' = h / (Hq / Hkv).
// q [B, Hq, Sq, D] in f32, bf16 or f16; k [B, Hkv, Sk, D] in f32, bf16, f16 or i8 with k_scale
// (as AttentionOptions::k_scale); scores [B, Hq, Sq, Sk] in f32.
SIMDATTN_API void qk_scores(AnyConstTensorView q, AnyConstTensorView k, TensorView scores,
                            float scale, int num_threads = 0,
                            std::optional<ConstTensorView> k_scale = std::nullopt);

// In place, per row: x ← exp(x - max) / Σ exp(x - max). A -inf entry gets weight 0; a row that is
// all -inf becomes all zeros. scores [B, H, Sq, Sk].
SIMDATTN_API void softmax_rows(TensorView scores, int num_threads = 0);

// softmax_rows with attention sinks (AttentionOptions::sinks): one logit per head h of scores,
// an extra term of each row's denominator with no entry of its own,
//   x ← exp(x - m) / (Σ exp(x - m) + exp(sinks[h] - m)),  m = max(max x, sinks[h]),
// so a row sums to less than 1, and a row that is all -inf stays zeros. -inf: no sink for that
// head (the bits of softmax_rows without sinks); NaN and +inf are rejected. nullptr: no sinks.
SIMDATTN_API void softmax_rows(TensorView scores, const float* sinks, int num_threads = 0);

// out[b,h,i,:] = Σ_j weights[b,h,i,j] · v[b,h',j,:], h' = h / (Hq / Hkv).
// weights [B, Hq, Sq, Sk] in f32; v [B, Hkv, Sk, Dv] in f32, bf16, f16 or i8 with v_scale (as
// AttentionOptions::v_scale); out [B, Hq, Sq, Dv] in f32, bf16 or f16.
SIMDATTN_API void weights_v(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out,
                            int num_threads = 0,
                            std::optional<ConstTensorView> v_scale = std::nullopt);

}  // namespace simdattn

// Merging attention results over disjoint key sets: the building block of cascade (shared-prefix)
// attention, of splitting a long cache across calls or machines, and of combining a cached
// prefix with new keys.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>  // std::invalid_argument, which the function throws

#include "simdattn/export.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn {

// States i = 0..count-1 of the same queries over disjoint sets of keys, each as attention()
// returns it: outs[i] [B, H, S, Dv] (f32, bf16 or f16) and lses[i] [B, H, S, 1] (f32, the natural
// log-sum-exp of the row's logits, AttentionOptions::lse). With M = max_i lses[i] and
// w_i = exp(lses[i] - M), row by row:
//   out = Σ_i w_i · outs[i] / Σ_i w_i,   lse = M + log Σ_i w_i,
// which is attention over the union of the keys. Sums run in increasing i, so the result does
// not depend on num_threads. A state whose lse is -inf (no key of its set visible to the row)
// weighs nothing, and a row whose states are all empty gets zeros and lse -inf, as attention()
// gives a row with no visible key; a NaN or +inf lse (a +inf or NaN logit) gives a NaN row.
// out is f32, bf16 or f16 (rounded once, to nearest even) and must not overlap any input; lse
// (optional, f32 [B, H, S, 1]) may not either. count >= 1; every view the same [B, H, S] and Dv.
// Throws std::invalid_argument (naming the argument, the expected and the actual value) before
// writing anything when an argument is wrong.
SIMDATTN_API void merge_attention_states(const AnyConstTensorView* outs, const ConstTensorView* lses,
                                         int64_t count, AnyTensorView out,
                                         std::optional<TensorView> lse = std::nullopt,
                                         int num_threads = 0);

}  // namespace simdattn

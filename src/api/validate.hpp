// Argument checks of the public entry points: every check happens here, once, before any output
// is written; kernels only assert. Each function throws std::invalid_argument whose message names
// the function, the argument, the expected and the actual value, e.g.
//   "simdattn::attention: k.shape[3] (head_dim) must equal q.shape[3] = 64, got 32".
#pragma once

#include <optional>

#include "simdattn/attention.hpp"
#include "simdattn/serving.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::detail {

void validate_qk_scores(const char* function, AnyConstTensorView q, AnyConstTensorView k,
                        TensorView scores, float scale, int num_threads,
                        const std::optional<ConstTensorView>& k_scale);
// sinks: null, or one logit per head of scores (finite or -inf), not overlapping scores.
void validate_softmax_rows(const char* function, TensorView scores, int num_threads,
                           const float* sinks = nullptr);
void validate_weights_v(const char* function, ConstTensorView weights, AnyConstTensorView v,
                        AnyTensorView out, int num_threads,
                        const std::optional<ConstTensorView>& v_scale);
void validate_convert(const char* function, AnyConstTensorView source, AnyTensorView destination);
void validate_quantize_rows(const char* function, AnyConstTensorView source,
                            BasicTensorView<int8_t> destination, TensorView scales);
void validate_merge_attention_states(const char* function, const AnyConstTensorView* outs,
                                     const ConstTensorView* lses, int64_t count, AnyTensorView out,
                                     const std::optional<TensorView>& lse, int num_threads);
void validate_attention(const char* function, AnyConstTensorView q, AnyConstTensorView k,
                        AnyConstTensorView v, AnyTensorView out, const AttentionOptions& options);

// attention_varlen and attention_paged: the checks of validate_attention on the packed views,
// then the batch's own arguments. Return the longest sequence's keys (max_k).
int64_t validate_attention_varlen(const char* function, AnyConstTensorView q, AnyConstTensorView k,
                                  AnyConstTensorView v, AnyTensorView out,
                                  const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k,
                                  int64_t batch, const AttentionOptions& options);
int64_t validate_attention_paged(const char* function, AnyConstTensorView q, const PagedCache& cache,
                                 AnyTensorView out, const int32_t* cu_seqlens_q, int64_t batch,
                                 const AttentionOptions& options);

}  // namespace simdattn::detail

// simdattn::reference — the scalar oracles: plain loops, double accumulation, never tuned.
// They define what "correct" means for every fast path, and serve as a baseline for comparisons.
#pragma once

#include <optional>
#include <stdexcept>  // std::invalid_argument, which the functions here throw
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/export.hpp"
#include "simdattn/serving.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::reference {

// --- Single vectors, as in the teaching documents the project grew from ---

// Σ_i a[i]·b[i]. Throws std::invalid_argument when the lengths differ.
SIMDATTN_API double dot_product(const std::vector<double>& a, const std::vector<double>& b);

// exp(x - max) / Σ exp(x - max): finite for any finite input, -inf entries get 0, all -inf gives 0s.
SIMDATTN_API std::vector<double> softmax(const std::vector<double>& scores);

// exp(x) / Σ exp(x), the textbook formula, kept for contrast: it overflows to NaN for scores
// near 710 (double) where softmax() does not.
SIMDATTN_API std::vector<double> softmax_naive(const std::vector<double>& scores);

// Σ_j weights[j] · values[j]: values is a list of equally long vectors, one per weight.
SIMDATTN_API std::vector<double> weighted_sum(const std::vector<double>& weights,
                                              const std::vector<std::vector<double>>& values);

// weighted_sum(softmax(scale · keys·query), values): one query against a list of keys and values.
SIMDATTN_API std::vector<double> single_query_attention(const std::vector<double>& query,
                                                        const std::vector<std::vector<double>>& keys,
                                                        const std::vector<std::vector<double>>& values,
                                                        double scale = 1.0);

// --- Tensors: the same contracts, argument checks and options as the fast functions ---
// (std::invalid_argument naming the argument, before anything is written).

// Every dtype is read as the exact value it stores (bf16, f16, i8 · scale widened to double), so
// these define the exact attention of the inputs as stored; a 16-bit output is the double result
// rounded once to nearest even.
SIMDATTN_API void qk_scores(AnyConstTensorView q, AnyConstTensorView k, TensorView scores,
                            float scale, std::optional<ConstTensorView> k_scale = std::nullopt);
SIMDATTN_API void softmax_rows(TensorView scores);
SIMDATTN_API void softmax_rows(TensorView scores, const float* sinks);
SIMDATTN_API void weights_v(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out,
                            std::optional<ConstTensorView> v_scale = std::nullopt);
SIMDATTN_API void attention(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                            AnyTensorView out, const AttentionOptions& options = {});
// merge_attention_states (merge.hpp) in double: every state read exactly, one rounding at the end.
SIMDATTN_API void merge_attention_states(const AnyConstTensorView* outs, const ConstTensorView* lses,
                                         int64_t count, AnyTensorView out,
                                         std::optional<TensorView> lse = std::nullopt);
// attention_varlen and attention_paged (serving.hpp): each sequence unpacked (a paged cache's
// blocks gathered into a dense copy, as stored) and run through attention() above alone.
SIMDATTN_API void attention_varlen(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                   AnyTensorView out, const int32_t* cu_seqlens_q,
                                   const int32_t* cu_seqlens_k, int64_t batch,
                                   const AttentionOptions& options = {});
SIMDATTN_API void attention_paged(AnyConstTensorView q, const PagedCache& cache, AnyTensorView out,
                                  const int32_t* cu_seqlens_q, int64_t batch,
                                  const AttentionOptions& options = {});

}  // namespace simdattn::reference

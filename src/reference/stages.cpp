// The oracles of the three stages (qk_scores, softmax_rows, weights_v): plain loops over strided
// views, double accumulation, one rounding to float per output element.
#include <cstdint>
#include <limits>
#include <vector>

#include "api/validate.hpp"
#include "reference/stored_values.hpp"
#include "simdattn/reference.hpp"

namespace simdattn::reference {

// scores[b,h,i,j] = scale · Σ_d q[b,h,i,d] · k[b,h/(Hq/Hkv),j,d].
void qk_scores(AnyConstTensorView q, AnyConstTensorView k, TensorView scores, float scale,
               std::optional<ConstTensorView> k_scale) {
  ::simdattn::detail::validate_qk_scores("simdattn::reference::qk_scores", q, k, scores, scale, 0,
                                         k_scale);
  const detail::StoredValues queries_read(q, std::nullopt), keys_read(k, k_scale);
  const int64_t batch = q.shape[0], query_heads = q.shape[1], queries = q.shape[2];
  const int64_t keys = k.shape[2], head_dim = q.shape[3];
  if (batch == 0 || query_heads == 0 || queries == 0) return;  // no row: allocate nothing
  const int64_t group = query_heads / k.shape[1];
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < query_heads; ++h) {
      for (int64_t i = 0; i < queries; ++i) {
        float* score_row = scores.row(b, h, i);
        for (int64_t j = 0; j < keys; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < head_dim; ++d) {
            dot += queries_read.at(b, h, i, d) * keys_read.at(b, h / group, j, d);
          }
          score_row[j] = static_cast<float>(static_cast<double>(scale) * dot);
        }
      }
    }
  }
}

// Each row of scores [B, H, Sq, Sk] becomes reference::softmax of itself, computed in double.
void softmax_rows(TensorView scores) { softmax_rows(scores, nullptr); }

// With sinks: the softmax of the row with sinks[h] appended, the sink's own weight dropped.
void softmax_rows(TensorView scores, const float* sinks) {
  ::simdattn::detail::validate_softmax_rows("simdattn::reference::softmax_rows", scores, 0, sinks);
  const int64_t keys = scores.shape[3];
  if (scores.shape[0] == 0 || scores.shape[1] == 0 || scores.shape[2] == 0 || keys == 0) return;
  std::vector<double> row(static_cast<size_t>(keys));
  for (int64_t b = 0; b < scores.shape[0]; ++b) {
    for (int64_t h = 0; h < scores.shape[1]; ++h) {
      for (int64_t i = 0; i < scores.shape[2]; ++i) {
        float* score_row = scores.row(b, h, i);
        row.resize(static_cast<size_t>(keys));
        for (int64_t j = 0; j < keys; ++j) row[j] = score_row[j];
        const bool has_sink = sinks != nullptr && sinks[h] != -std::numeric_limits<float>::infinity();
        if (has_sink) row.push_back(sinks[h]);
        const std::vector<double> weights = softmax(row);
        for (int64_t j = 0; j < keys; ++j) score_row[j] = static_cast<float>(weights[j]);
      }
    }
  }
}

// out[b,h,i,:] = Σ_j weights[b,h,i,j] · v[b,h/(Hq/Hkv),j,:], every term included (0 · NaN is NaN
// here, as in any matrix product).
void weights_v(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out,
               std::optional<ConstTensorView> v_scale) {
  ::simdattn::detail::validate_weights_v("simdattn::reference::weights_v", weights, v, out, 0,
                                         v_scale);
  const detail::StoredValues values_read(v, v_scale);
  const int64_t batch = weights.shape[0], query_heads = weights.shape[1];
  const int64_t queries = weights.shape[2], keys = weights.shape[3], value_dim = v.shape[3];
  if (batch == 0 || query_heads == 0 || queries == 0) return;  // no row: allocate nothing
  const int64_t group = query_heads / v.shape[1];
  std::vector<double> sum(static_cast<size_t>(value_dim));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < query_heads; ++h) {
      for (int64_t i = 0; i < queries; ++i) {
        const float* weight_row = weights.row(b, h, i);
        sum.assign(sum.size(), 0.0);
        for (int64_t j = 0; j < keys; ++j) {
          for (int64_t d = 0; d < value_dim; ++d) {
            sum[d] += static_cast<double>(weight_row[j]) * values_read.at(b, h / group, j, d);
          }
        }
        void* out_row = out.row(b, h, i);
        for (int64_t d = 0; d < value_dim; ++d) detail::store_rounded(out_row, out.dtype, d, sum[d]);
      }
    }
  }
}

}  // namespace simdattn::reference

// The attention oracle with every option of AttentionOptions: one query row at a time, the whole
// row of logits in double, then reference::softmax, the weighted sum of values, the weights and
// the log-sum-exp. This file is the definition of what attention() computes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "api/validate.hpp"
#include "reference/stored_values.hpp"
#include "simdattn/reference.hpp"

namespace simdattn::reference {
namespace {

using detail::StoredValues;
using detail::stored_value;

constexpr double kMinusInfinity = -std::numeric_limits<double>::infinity();

// What is fixed for one (batch, query head) pair: where its keys, values and mask live, and how
// query positions line up with key positions.
struct HeadContext {
  int64_t batch_index;
  int64_t head;
  int64_t kv_head;
  int64_t visible_keys;  // kv_lengths[b], or key_offset + Sk: the sequence's keys
  int64_t offset;        // query i lines up with the sequence's key i + offset
  int64_t key_offset;    // row j of k is the sequence's key key_offset + j (0 unless a shard)
  double scale;
};

// Whether query i sees row j of k, at sequence position key_offset + j: it exists for this batch,
// and causal and window allow it.
bool key_visible(const AttentionOptions& options, const HeadContext& head, int64_t i, int64_t j) {
  const int64_t position = head.key_offset + j;
  if (position >= head.visible_keys) return false;
  const int64_t diagonal = i + head.offset;
  if (options.causal != Causal::none && position > diagonal) return false;
  // Sink tokens (the first sink_tokens keys) are exempt from the window's left bound only.
  if (options.window_left >= 0 && position < diagonal - options.window_left &&
      position >= options.sink_tokens) {
    return false;
  }
  if (options.window_right >= 0 && position > diagonal + options.window_right) return false;
  return true;
}

// The biased logit of a visible key: scale · q·k, then the softcap, then ALiBi, then the mask.
double biased_logit(const StoredValues& q, int64_t head_dim, const StoredValues& k,
                    const AttentionOptions& options, const HeadContext& head, int64_t i, int64_t j) {
  double dot = 0.0;
  for (int64_t d = 0; d < head_dim; ++d) {
    dot += q.at(head.batch_index, head.head, i, d) * k.at(head.batch_index, head.kv_head, j, d);
  }
  double logit = head.scale * dot;
  if (options.softcap > 0.0f) {
    const double cap = options.softcap;
    logit = cap * std::tanh(logit / cap);
  }
  if (options.alibi_slopes != nullptr) {
    const double distance = static_cast<double>(std::llabs(i + head.offset - head.key_offset - j));
    logit -= static_cast<double>(options.alibi_slopes[head.head]) * distance;
  }
  if (options.mask.has_value()) {
    const AnyConstTensorView& mask = *options.mask;
    // A size-1 dimension of the mask broadcasts: index 0 serves every position.
    const void* mask_row =
        mask.row(mask.shape[0] == 1 ? 0 : head.batch_index, mask.shape[1] == 1 ? 0 : head.head,
                 mask.shape[2] == 1 ? 0 : i);
    const double mask_value = stored_value(mask_row, mask.dtype, j * mask.strides[3]);
    // -inf excludes the key whatever its logit (NaN included): the mask's meaning, not arithmetic.
    if (mask_value == kMinusInfinity) return kMinusInfinity;
    logit += mask_value;
  }
  return logit;
}

// log Σ exp(logit) over the included keys (-inf for none), with the max taken out first.
double log_sum_exp(const std::vector<double>& logits) {
  double largest = kMinusInfinity;
  for (double x : logits) {
    if (std::isnan(x) || x > largest) largest = x;
  }
  if (largest == kMinusInfinity) return kMinusInfinity;
  double sum = 0.0;
  for (double x : logits) {
    if (x != kMinusInfinity) sum += std::exp(x - largest);
  }
  return largest + std::log(sum);
}

// 1/sqrt(head_dim) unless the options say otherwise; head_dim 0 makes every logit 0, any scale
// then gives the same answer, and 1 avoids 0 · inf.
double effective_scale(const AttentionOptions& options, int64_t head_dim) {
  if (options.scale.has_value()) return static_cast<double>(*options.scale);
  return head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : 1.0;
}

}  // namespace

// out[b,h,i,:] = Σ_j softmax_j(biased logits)[j] · v[b,h',j,:] over the keys query i sees, with
// h' = h / (Hq/Hkv); optional weights and lse. Keys that are invisible or whose biased logit is
// -inf are excluded: weight 0, and their values are not read (a NaN there reaches no row). A row
// with no included key gets out = 0, weights = 0 and lse = -inf (or, with a sink, lse = the sink).
// A finite sink logit enters the softmax as one more term with no value (see AttentionOptions).
void attention(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v, AnyTensorView out,
               const AttentionOptions& options) {
  ::simdattn::detail::validate_attention("simdattn::reference::attention", q, k, v, out, options);
  const int64_t batch = q.shape[0], query_heads = q.shape[1], queries = q.shape[2];
  const int64_t keys = k.shape[2], value_dim = v.shape[3];
  if (batch == 0 || query_heads == 0 || queries == 0) return;  // no row: allocate nothing
  const int64_t group = query_heads / k.shape[1];
  const StoredValues queries_read(q, std::nullopt), keys_read(k, options.k_scale),
      values_read(v, options.v_scale);

  std::vector<double> logits(static_cast<size_t>(keys));
  std::vector<double> sum(static_cast<size_t>(value_dim));
  for (int64_t b = 0; b < batch; ++b) {
    // A shard (AttentionOptions::shard) names the sequence position of its first key, and moves
    // every diagonal; an ordinary call is the shard at 0 that ends the sequence.
    const int64_t key_offset = options.shard.has_value() ? options.shard->key_offset : 0;
    const int64_t shift = options.shard.has_value() ? options.shard->diagonal_shift : 0;
    const int64_t visible_keys =
        options.kv_lengths != nullptr ? options.kv_lengths[b] : key_offset + keys;
    // Signed: with more queries than keys the first rows line up before key 0 and see none.
    const int64_t offset = (options.causal == Causal::top_left ? 0 : visible_keys - queries) + shift;
    for (int64_t h = 0; h < query_heads; ++h) {
      const HeadContext head{b, h, h / group, visible_keys, offset, key_offset,
                             effective_scale(options, q.shape[3])};
      for (int64_t i = 0; i < queries; ++i) {
        for (int64_t j = 0; j < keys; ++j) {
          logits[j] = key_visible(options, head, i, j) ? biased_logit(queries_read, q.shape[3], keys_read, options, head, i, j)
                                                       : kMinusInfinity;
        }
        // A sink logit is one more term of the softmax, with no value: the weights are the
        // softmax of the row with the sink appended, the sink's own weight dropped.
        const double sink = options.sinks != nullptr ? options.sinks[h] : kMinusInfinity;
        if (sink != kMinusInfinity) logits.push_back(sink);
        std::vector<double> weights = softmax(logits);
        const double row_lse = log_sum_exp(logits);
        if (sink != kMinusInfinity) {
          logits.pop_back();
          weights.pop_back();
        }

        sum.assign(sum.size(), 0.0);
        for (int64_t j = 0; j < keys; ++j) {
          if (logits[j] == kMinusInfinity) continue;
          for (int64_t d = 0; d < value_dim; ++d) {
            sum[d] += weights[j] * values_read.at(b, head.kv_head, j, d);
          }
        }
        void* out_row = out.row(b, h, i);
        for (int64_t d = 0; d < value_dim; ++d) detail::store_rounded(out_row, out.dtype, d, sum[d]);

        if (options.weights.has_value()) {
          float* weight_row = options.weights->row(b, h, i);
          for (int64_t j = 0; j < keys; ++j) weight_row[j] = static_cast<float>(weights[j]);
        }
        if (options.lse.has_value()) {
          *options.lse->row(b, h, i) = static_cast<float>(row_lse);
        }
      }
    }
  }
}

}  // namespace simdattn::reference

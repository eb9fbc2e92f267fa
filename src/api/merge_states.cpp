// merge_attention_states (simdattn/merge.hpp): validate, then one pass over the rows, each
// combining its states with weights exp(lse_i - M) / Σ w in state order. Rows are independent,
// so the threads split them and the bits do not depend on how many there are.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "api/validate.hpp"
#include "dispatch.hpp"
#include "kernels/convert_kernels.hpp"
#include "plan/attention_plan.hpp"
#include "simdattn/merge.hpp"

namespace simdattn {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();

// Rows a thread takes at a time: enough that a row's bookkeeping is small beside its reads.
constexpr int64_t kRowsPerWorkItem = 16;

struct MergeRow {
  const AnyConstTensorView* outs;
  const ConstTensorView* lses;
  int64_t count;
  AnyTensorView out;
  std::optional<TensorView> lse;
  detail::Isa isa;

  // Row (b, h, s), with `widened` (Dv floats) for a 16-bit state, `sum` (Dv floats) for the result
  // and `weights` (count floats).
  void operator()(int64_t b, int64_t h, int64_t s, float* widened, float* sum, float* weights) const {
    const int64_t length = out.shape[3];
    float largest = -kInfinity;
    bool not_a_number = false;
    for (int64_t i = 0; i < count; ++i) {
      const float value = *lses[i].row(b, h, s);
      not_a_number = not_a_number || std::isnan(value);
      largest = std::max(largest, value);
    }
    float row_lse;
    if (not_a_number || largest == kInfinity) {
      std::fill(sum, sum + length, std::numeric_limits<float>::quiet_NaN());
      row_lse = std::numeric_limits<float>::quiet_NaN();
    } else if (largest == -kInfinity) {
      std::fill(sum, sum + length, 0.0f);
      row_lse = -kInfinity;
    } else {
      float total = 0.0f;
      for (int64_t i = 0; i < count; ++i) {
        weights[i] = std::exp(*lses[i].row(b, h, s) - largest);
        total += weights[i];
      }
      // total >= 1: the largest state has weight exp(0) = 1.
      for (int64_t i = 0; i < count; ++i) weights[i] /= total;
      row_lse = largest + std::log(total);
      std::fill(sum, sum + length, 0.0f);
      for (int64_t i = 0; i < count; ++i) {
        if (weights[i] == 0.0f) continue;  // an empty state, or one far below: its rows may be anything
        const float* values = static_cast<const float*>(outs[i].row(b, h, s));
        if (outs[i].dtype != DType::f32) {
          detail::run_for_isa(isa, detail::WidenRowKernel{}, outs[i].row(b, h, s), outs[i].dtype,
                              length, widened, static_cast<const float*>(nullptr), int64_t(1));
          values = widened;
        }
        const float weight = weights[i];
        for (int64_t d = 0; d < length; ++d) sum[d] += weight * values[d];
      }
    }
    void* destination = out.row(b, h, s);
    if (out.dtype == DType::f32) {
      std::copy(sum, sum + length, static_cast<float*>(destination));
    } else {
      detail::run_for_isa(isa, detail::NarrowRowKernel{}, static_cast<const float*>(sum), length,
                          destination, out.dtype);
    }
    if (lse.has_value()) *lse->row(b, h, s) = row_lse;
  }
};

}  // namespace

void merge_attention_states(const AnyConstTensorView* outs, const ConstTensorView* lses, int64_t count,
                            AnyTensorView out, std::optional<TensorView> lse, int num_threads) {
  detail::validate_merge_attention_states("simdattn::merge_attention_states", outs, lses, count, out,
                                          lse, num_threads);
  const int64_t heads = out.shape[1], seq = out.shape[2], length = out.shape[3];
  const int64_t rows = out.shape[0] * heads * seq;
  if (rows == 0) return;
  const int64_t items = (rows + kRowsPerWorkItem - 1) / kRowsPerWorkItem;
  const int threads = detail::threads_for_call(num_threads, items);
  const MergeRow merge{outs, lses, count, out, lse, detail::isa_for_this_call()};
  // Per thread: a widened state row, the result row and the weights, allocated before the team
  // starts so that nothing inside it can throw.
  const int64_t per_thread = 2 * length + count;
  std::vector<float> scratch(static_cast<size_t>(per_thread * threads));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t item = 0; item < items; ++item) {
    float* mine = scratch.data() + per_thread * omp_get_thread_num();
    const int64_t last = std::min(rows, (item + 1) * kRowsPerWorkItem);
    for (int64_t row = item * kRowsPerWorkItem; row < last; ++row) {
      merge(row / (heads * seq), row / seq % heads, row % seq, mine, mine + length, mine + 2 * length);
    }
  }
}

}  // namespace simdattn

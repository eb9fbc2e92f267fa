// merge_attention_states (simdattn/merge.hpp): validate, then one pass over the rows in work
// items of 16, each row combining its states with weights exp(lse_i - M) / Σ w in state order (the weighted sum is the
// ISA's WeightedSumRowKernel; every ISA gives the same bits). Rows are independent,
// so the threads split them and the bits do not depend on how many there are.
#include <omp.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "api/validate.hpp"
#include "dispatch.hpp"
#include "kernels/convert_kernels.hpp"
#include "kernels/merge_rows.hpp"
#include "plan/attention_plan.hpp"
#include "simdattn/merge.hpp"

namespace simdattn {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();

// Rows a thread takes at a time: enough that a row's bookkeeping is small beside its reads.
constexpr int64_t kRowsPerWorkItem = 16;

// An f32 output at least this large is written with non-temporal stores: it would not stay in
// the caches for its reader anyway, and skipping the read of each line before it is written cuts
// a two-state merge's memory traffic by a quarter.
constexpr int64_t kStreamingBytes = int64_t(16) << 20;

// What one row of a work item sums: `terms` states, their rows, dtypes and weights, into
// `destination` (the row of out).
struct RowTerms {
  const void** sources;
  DType* dtypes;
  float* weights;
  int64_t terms;
  void* destination;
};

// A thread's working space for a work item: kRowsPerWorkItem rows of `count` terms each, and Dv
// floats for the rows with no finite result. Allocated for every thread before the team starts,
// so that nothing inside it can throw; each thread's part is followed by kGap unused elements, at
// least a cache line, because threads that wrote the same line on every row would pass it back
// and forth (that halved the speed of a two-state merge).
class MergeScratch {
 public:
  MergeScratch(int threads, int64_t count, int64_t length)
      : count_(count), term_stride_(kRowsPerWorkItem * count + kGap),
        float_stride_(kRowsPerWorkItem * count + length + kGap),
        sources_(static_cast<size_t>(threads * term_stride_)),
        dtypes_(static_cast<size_t>(threads * term_stride_)),
        floats_(static_cast<size_t>(threads * float_stride_)) {}

  // The terms of row `row` (< kRowsPerWorkItem) of thread `thread`'s work item.
  RowTerms terms(int thread, int64_t row) {
    const int64_t first = row * count_;
    return {sources_.data() + thread * term_stride_ + first, dtypes_.data() + thread * term_stride_ + first,
            floats_.data() + thread * float_stride_ + first, 0, nullptr};
  }
  float* filler(int thread) { return floats_.data() + thread * float_stride_ + kRowsPerWorkItem * count_; }

 private:
  static constexpr int64_t kGap = 64;

  int64_t count_, term_stride_, float_stride_;
  std::vector<const void*> sources_;
  std::vector<DType> dtypes_;
  std::vector<float> floats_;
};

struct MergeRows {
  const AnyConstTensorView* outs;
  const ConstTensorView* lses;
  int64_t count;
  AnyTensorView out;
  std::optional<TensorView> lse;
  detail::Isa isa;
  bool streaming;  // write `out` around the caches (WeightedSumRowKernel)

  // Row (b, h, s)'s lse and terms: the states with a weight above 0, weights exp(lse_i - M) / Σ.
  // A row with no finite result (NaN or +inf in an lse: NaN; every state empty: zeros and lse
  // -inf) is written here from `filler` (Dv floats) and gets no terms.
  void weigh(int64_t b, int64_t h, int64_t s, RowTerms& row, float* filler) const {
    float largest = -kInfinity;
    bool not_a_number = false;
    for (int64_t i = 0; i < count; ++i) {
      const float value = *lses[i].row(b, h, s);
      not_a_number = not_a_number || std::isnan(value);
      largest = std::max(largest, value);
    }
    row.terms = 0;
    row.destination = out.row(b, h, s);
    float row_lse;
    if (not_a_number || largest == kInfinity || largest == -kInfinity) {
      const bool empty = !not_a_number && largest == -kInfinity;
      const int64_t length = out.shape[3];
      std::fill(filler, filler + length, empty ? 0.0f : std::numeric_limits<float>::quiet_NaN());
      detail::run_for_isa(isa, detail::NarrowRowKernel{}, static_cast<const float*>(filler), length,
                          row.destination, out.dtype);
      row_lse = empty ? -kInfinity : std::numeric_limits<float>::quiet_NaN();
    } else {
      float total = 0.0f;
      for (int64_t i = 0; i < count; ++i) {
        row.weights[i] = std::exp(*lses[i].row(b, h, s) - largest);
        total += row.weights[i];
      }
      // total >= 1: the largest state has weight exp(0) = 1.
      for (int64_t i = 0; i < count; ++i) {
        const float weight = row.weights[i] / total;
        if (weight == 0.0f) continue;  // an empty state, or one far below: its rows may be anything
        row.weights[row.terms] = weight;
        row.sources[row.terms] = outs[i].row(b, h, s);
        row.dtypes[row.terms] = outs[i].dtype;
        ++row.terms;
      }
      row_lse = largest + std::log(total);
    }
    if (lse.has_value()) *lse->row(b, h, s) = row_lse;
  }

  void sum(const RowTerms& row) const {
    if (row.terms == 0) return;  // written by weigh
    detail::run_for_isa(isa, detail::WeightedSumRowKernel{}, static_cast<const void* const*>(row.sources),
                        static_cast<const DType*>(row.dtypes), static_cast<const float*>(row.weights),
                        row.terms, out.shape[3], row.destination, out.dtype, streaming);
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
  const bool streaming = out.dtype == DType::f32 && rows * length * int64_t(sizeof(float)) >= kStreamingBytes;
  const MergeRows merge{outs, lses, count, out, lse, detail::isa_for_this_call(), streaming};
  MergeScratch scratch(threads, count, length);
  // A work item weighs all its rows first, then sums them, so that the sums stream the states'
  // rows back to back with no exp or log between their loads.
#pragma omp parallel num_threads(threads)
  {
    const int thread = omp_get_thread_num();
#pragma omp for schedule(static) nowait
    for (int64_t item = 0; item < items; ++item) {
      const int64_t first = item * kRowsPerWorkItem, last = std::min(rows, first + kRowsPerWorkItem);
      RowTerms terms[kRowsPerWorkItem];
      // (b, h, s) of the item's first row, then stepped along: no divisions per row.
      int64_t b = first / (heads * seq), h = first / seq % heads, s = first % seq;
      for (int64_t row = first; row < last; ++row) {
        terms[row - first] = scratch.terms(thread, row - first);
        merge.weigh(b, h, s, terms[row - first], scratch.filler(thread));
        if (++s == seq) {
          s = 0;
          if (++h == heads) h = 0, ++b;
        }
      }
      for (int64_t row = first; row < last; ++row) merge.sum(terms[row - first]);
    }
#if defined(__x86_64__) || defined(_M_X64)
    // Non-temporal stores are weakly ordered: fence them before the caller can read `out`.
    if (streaming) _mm_sfence();
#endif
  }
}

}  // namespace simdattn

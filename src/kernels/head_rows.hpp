// The rows of a work item's heads as the kernels read them: the key and value sources of its
// (batch, kv head) (key_value_source.hpp), and single query rows as floats.
#pragma once

#include <cstdint>

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/key_value_source.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/tile_problem.hpp"
#include "kernels/visible_keys.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// The key and value rows of a job's (batch, kv head), as the kernels read them: in place (f32)
// or widened a block at a time into the thread's buffers; from the sequence's first key in a
// packed batch, through its row of the block table in a paged cache.
template <class Arch>
inline RowSource<Arch> rows_of_head(const TileProblem& problem, const AnyConstTensorView& input,
                                    const ConstTensorView& scales, const TileJob& job, float* buffer) {
  const bool scaled = scales.data != nullptr;
  const bool paged = problem.block_table != nullptr;
  // Paged: the pool's block 0 (pages say which block); packed: the sequence's first key.
  const int64_t batch = paged || problem.key_starts != nullptr ? 0 : job.batch;
  const int64_t first_row = problem.key_starts != nullptr ? problem.key_starts[job.batch] : 0;
  return {input.row(batch, job.kv_head, first_row),
          input.dtype,
          input.strides[2],
          input.shape[3],
          paged || problem.key_starts != nullptr ? kv_length(problem, job.batch) : input.shape[2],
          scaled ? scales.row(batch, job.kv_head, first_row) : nullptr,
          scaled ? scales.strides[2] : 0,
          scaled ? input.shape[3] / scales.shape[3] : 1,
          buffer,
          (input.shape[3] + 15) / 16 * 16,
          paged ? problem.block_table + job.batch * problem.table_stride : nullptr,
          paged ? problem.page_rows : 0,
          paged ? input.strides[0] : 0,
          paged && scaled ? scales.strides[0] : 0};
}
template <class Arch>
inline RowSource<Arch> key_source(const TileProblem& problem, const TileJob& job,
                                  const TileScratch& scratch) {
  return rows_of_head<Arch>(problem, problem.k, problem.k_scale, job, scratch.widened_keys);
}
template <class Arch>
inline RowSource<Arch> value_source(const TileProblem& problem, const TileJob& job,
                                    const TileScratch& scratch) {
  return rows_of_head<Arch>(problem, problem.v, problem.v_scale, job, scratch.widened_values);
}

// Row (b, head, position) of q as floats: in place for f32,
// else widened into `widened` (head_dim floats).
template <class Arch>
inline const float* float_row(const AnyConstTensorView& view, int64_t b, int64_t head,
                              int64_t position, float* widened) {
  const void* row = view.row(b, head, position);
  if (view.dtype == DType::f32) return static_cast<const float*>(row);
  widen_row<Arch>(row, view.dtype, view.shape[3], widened, nullptr, 1);
  return widened;
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

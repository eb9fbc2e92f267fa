// The rows of a work item's heads as the kernels read them: the key and value sources of its
// (batch, kv head) (key_value_source.hpp), and single query rows as floats.
#pragma once

#include <cstdint>

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/key_value_source.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/tile_problem.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// The key and value rows of a job's (batch, kv head), as the kernels read them: in place (f32)
// or widened a block at a time into the thread's buffers.
template <class Arch>
inline RowSource<Arch> rows_of_head(const AnyConstTensorView& input, const ConstTensorView& scales,
                                    const TileJob& job, float* buffer) {
  const bool scaled = scales.data != nullptr;
  return {input.row(job.batch, job.kv_head, 0),
          input.dtype,
          input.strides[2],
          input.shape[3],
          input.shape[2],
          scaled ? scales.row(job.batch, job.kv_head, 0) : nullptr,
          scaled ? scales.strides[2] : 0,
          scaled ? input.shape[3] / scales.shape[3] : 1,
          buffer,
          (input.shape[3] + 15) / 16 * 16};
}
template <class Arch>
inline RowSource<Arch> key_source(const TileProblem& problem, const TileJob& job,
                                  const TileScratch& scratch) {
  return rows_of_head<Arch>(problem.k, problem.k_scale, job, scratch.widened_keys);
}
template <class Arch>
inline RowSource<Arch> value_source(const TileProblem& problem, const TileJob& job,
                                    const TileScratch& scratch) {
  return rows_of_head<Arch>(problem.v, problem.v_scale, job, scratch.widened_values);
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

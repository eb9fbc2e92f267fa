// The definitions of GemmBlockKernel and OnlineSoftmaxKernel (tile_kernels.hpp): thin entries into
// gemm_block and online_softmax_block for the kernel tests and benchmark.
#pragma once

#include "kernels/isa_namespace.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/key_major_tile.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/tile_kernels.hpp"

namespace simdattn::detail {

template <class Arch>
void GemmBlockKernel::operator()(Arch, int64_t rows, int64_t columns, int64_t depth,
                                 const float* a, int64_t a_row_stride, int64_t a_depth_stride,
                                 const float* b, int64_t ldb, float* c, int64_t ldc,
                                 float* column_max) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  with_panel_vectors<Arch>(panel_vectors, [&](auto vectors) {
    constexpr int Vectors = decltype(vectors)::value;
    constexpr int Rows = KeyMajorTile<Arch, Vectors>::kRows;
    if (accumulate) {
      gemm_block<Arch, Rows, Vectors, true>(rows, columns, depth, a, a_row_stride, a_depth_stride,
                                            b, ldb, c, ldc, {}, column_max);
    } else {
      gemm_block<Arch, Rows, Vectors, false>(rows, columns, depth, a, a_row_stride,
                                             a_depth_stride, b, ldb, c, ldc, {}, column_max);
    }
  });
}

template <class Arch>
void OnlineSoftmaxKernel::operator()(Arch, float* scores, int64_t rows, int64_t padded_columns,
                                     float* running_max, float* running_sum, float* correction,
                                     const float* block_max) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  online_softmax_block<Arch>(scores, rows, padded_columns, running_max, running_sum, correction,
                             block_max);
}

}  // namespace simdattn::detail

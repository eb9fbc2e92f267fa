// The register-blocked GEMM micro-kernel behind both products of attention, and the loop around it.
#pragma once

#include <cassert>
#include <cstdint>

#include <xsimd/xsimd.hpp>

namespace simdattn::detail {

// Asks for `rows` rows of `width` floats starting at `first` to be brought into the caches: into
// every level with the default Locality (3, prefetcht0), into L2 and below with 1 (prefetcht2).
template <int Locality = 3>
inline void prefetch_rows(const float* first, int64_t rows, int64_t stride, int64_t width) {
  constexpr int64_t kLineFloats = 64 / sizeof(float);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t n = 0; n < width; n += kLineFloats) __builtin_prefetch(first + r * stride + n, 0, Locality);
  }
}

// Rows of another matrix that gemm_block brings into L2 while it computes, as many with each
// micro-tile of rows as the micro-tile has: the value rows of a key block while Q·Kᵀ runs over
// its key rows, so that P·V, which reads them with a stride the hardware prefetchers follow
// poorly, does not wait on memory the first time a head's values are read.
struct RowsToPrefetch {
  const float* first = nullptr;
  int64_t stride = 0;
  int64_t width = 0;
};

// C[Rows × Vectors·W] (=, or += when Accumulate) A[Rows × depth] · B[depth × Vectors·W], and when
// column_max is given, column_max[j] = max(column_max[j], max_r C[r][j]) from the registers.
// A is read by broadcasting single elements, A(r, k) = a[r·a_row_stride + k·a_depth_stride], so it
// can be the caller's key rows (Q·Kᵀ: stride along depth 1) or value columns (P·V: stride along
// rows 1) without packing. B row k starts at b + k·ldb and C row r at c + r·ldc; both are scratch,
// aligned to the register width, with ldb and ldc multiples of it.
template <class Arch, int Rows, int Vectors, bool Accumulate>
inline void gemm_microkernel(int64_t depth, const float* a, int64_t a_row_stride,
                             int64_t a_depth_stride, const float* b, int64_t ldb, float* c,
                             int64_t ldc, float* column_max = nullptr) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(Floats::size);
  // Fully unrolled, so that the accumulators live in registers from the first load to the last store.
  Floats acc[Rows][Vectors];
#pragma GCC unroll 32
  for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < Vectors; ++v) {
      acc[r][v] = Accumulate ? Floats::load_aligned(c + r * ldc + v * W) : Floats(0.0f);
    }
  }
  for (int64_t k = 0; k < depth; ++k) {
    Floats b_row[Vectors];
#pragma GCC unroll 4
    for (int v = 0; v < Vectors; ++v) b_row[v] = Floats::load_aligned(b + k * ldb + v * W);
    const float* a_k = a + k * a_depth_stride;
#pragma GCC unroll 32
    for (int r = 0; r < Rows; ++r) {
      const Floats a_rk(a_k[r * a_row_stride]);
#pragma GCC unroll 4
      for (int v = 0; v < Vectors; ++v) acc[r][v] = xsimd::fma(a_rk, b_row[v], acc[r][v]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < Vectors; ++v) acc[r][v].store_aligned(c + r * ldc + v * W);
  }
  if (column_max != nullptr) {
#pragma GCC unroll 4
    for (int v = 0; v < Vectors; ++v) {
      Floats m = Floats::load_aligned(column_max + v * W);
#pragma GCC unroll 32
      for (int r = 0; r < Rows; ++r) m = xsimd::max(m, acc[r][v]);
      m.store_aligned(column_max + v * W);
    }
  }
}

// Calls the micro-kernel instantiated for `rows` (1..MaxRows): the edge rows of a block take the
// same code path as full ones.
template <class Arch, int MaxRows, int Vectors, bool Accumulate>
inline void gemm_microkernel_rows(int rows, int64_t depth, const float* a, int64_t a_row_stride,
                                  int64_t a_depth_stride, const float* b, int64_t ldb, float* c,
                                  int64_t ldc, float* column_max = nullptr) {
  if constexpr (MaxRows > 0) {
    if (rows == MaxRows) {
      gemm_microkernel<Arch, MaxRows, Vectors, Accumulate>(depth, a, a_row_stride, a_depth_stride,
                                                           b, ldb, c, ldc, column_max);
    } else {
      gemm_microkernel_rows<Arch, MaxRows - 1, Vectors, Accumulate>(
          rows, depth, a, a_row_stride, a_depth_stride, b, ldb, c, ldc, column_max);
    }
  }
}

// C[rows × columns] (=, or +=) A[rows × depth] · B[depth × columns], columns a multiple of the
// panel width Vectors·W. Rows are cut into micro-tiles of MaxRows (the A elements of a micro-tile
// stay in L1 while every panel of B passes under them); each panel of columns is one micro-kernel.
// With column_max, every column's max over the block's rows is folded into it (see above).
template <class Arch, int MaxRows, int Vectors, bool Accumulate>
inline void gemm_block(int64_t rows, int64_t columns, int64_t depth, const float* a,
                       int64_t a_row_stride, int64_t a_depth_stride, const float* b, int64_t ldb,
                       float* c, int64_t ldc, RowsToPrefetch prefetch = {},
                       float* column_max = nullptr) {
  constexpr int64_t panel = Vectors * static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  assert(columns % panel == 0);
  for (int64_t r0 = 0; r0 < rows; r0 += MaxRows) {
    const int tile_rows = static_cast<int>(rows - r0 < MaxRows ? rows - r0 : MaxRows);
    if (prefetch.first != nullptr) {
      prefetch_rows<1>(prefetch.first + r0 * prefetch.stride, tile_rows, prefetch.stride, prefetch.width);
    }
    for (int64_t c0 = 0; c0 < columns; c0 += panel) {
      gemm_microkernel_rows<Arch, MaxRows, Vectors, Accumulate>(
          tile_rows, depth, a + r0 * a_row_stride, a_row_stride, a_depth_stride, b + c0, ldb,
          c + r0 * ldc + c0, ldc, column_max == nullptr ? nullptr : column_max + c0);
    }
  }
}

}  // namespace simdattn::detail

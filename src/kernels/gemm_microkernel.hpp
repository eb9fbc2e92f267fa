// The register-blocked GEMM micro-kernel behind both products of attention, and the loop around it.
#pragma once

#include <cassert>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"
#include "kernels/vector_math.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Asks for the `width` floats from `row` on, with __builtin_prefetch's hints: ReadWrite 1 for
// writing, Locality 3 into every cache level, 1 into L2 and below. The prefetching functions are
// always inlined: GCC 12 takes an out-of-line function that only prefetches for one without
// effects and drops the calls to it.
template <int ReadWrite, int Locality>
[[gnu::always_inline]] inline void prefetch_row(const float* row, int64_t width) {
  constexpr int64_t kLineFloats = 64 / sizeof(float);
  for (int64_t n = 0; n < width; n += kLineFloats) __builtin_prefetch(row + n, ReadWrite, Locality);
}

// Asks for `rows` rows of `width` floats starting at `first` to be brought into every cache level.
[[gnu::always_inline]] inline void prefetch_rows(const float* first, int64_t rows, int64_t stride,
                                                 int64_t width) {
  for (int64_t r = 0; r < rows; ++r) prefetch_row<0, 3>(first + r * stride, width);
}

// Rows of another matrix that gemm_block asks the caches for while it computes, spread evenly
// over its micro-tiles of rows. Rows come in groups of group_rows, `stride` apart within a group
// and `group_stride` from the start of a group to the next (the output rows of a tile: its query
// heads' runs of positions). Two uses: the value rows of a key block, into L2 while Q·Kᵀ runs
// over its key rows, so that P·V, which reads them with a stride the hardware prefetchers follow
// poorly, does not wait on memory the first time a head's values are read; and the output rows of
// a tile, for writing, while its last P·V runs, so that writing them does not wait either.
struct RowsToPrefetch {
  const float* first = nullptr;
  int64_t count = 0;
  int64_t width = 0;
  int64_t stride = 0;
  int64_t group_rows = 0;  // 0: one group
  int64_t group_stride = 0;
  bool for_writing = false;

  // Prefetches rows [begin, end).
  [[gnu::always_inline]] void prefetch(int64_t begin, int64_t end) const {
    if (for_writing) {
      prefetch_rows_with<1, 3>(begin, end);
    } else {
      prefetch_rows_with<0, 1>(begin, end);
    }
  }

 private:
  template <int ReadWrite, int Locality>
  [[gnu::always_inline]] void prefetch_rows_with(int64_t begin, int64_t end) const {
    if (group_rows == 0) {
      for (int64_t i = begin; i < end; ++i) prefetch_row<ReadWrite, Locality>(first + i * stride, width);
      return;
    }
    int64_t group = begin / group_rows, in_group = begin % group_rows;
    for (int64_t i = begin; i < end; ++i) {
      prefetch_row<ReadWrite, Locality>(first + group * group_stride + in_group * stride, width);
      if (++in_group == group_rows) {
        in_group = 0;
        ++group;
      }
    }
  }
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
      for (int v = 0; v < Vectors; ++v) acc[r][v] = multiply_add<Arch>(a_rk, b_row[v], acc[r][v]);
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

// Registers [begin, end) of a panel of columns.
struct RegisterSpan {
  int begin, end;
  int count() const { return end - begin; }
};

// Calls run(std::integral_constant<int, N>{}) for count = N in [1, Max] (nothing for 0), so that
// a kernel can be instantiated for every register count of a span. gemm_microkernel_rows does the
// same for rows with its own recursion: written through this helper, GCC 12 inlined the 6 × 64
// micro-kernels into the lambda instead, and ran slower (docs/tuning.md).
template <int Max, class Run>
inline void with_register_count(int count, Run&& run) {
  if constexpr (Max >= 1) {
    if (count == Max) {
      run(std::integral_constant<int, Max>{});
    } else {
      with_register_count<Max - 1>(count, run);
    }
  }
}

// gemm_block's default: every register of every panel of C is computed.
struct EveryRegister {};

// C[rows × columns] (=, or +=) A[rows × depth] · B[depth × columns], columns a multiple of the
// panel width Vectors·W. Rows are cut into micro-tiles of MaxRows (the A elements of a micro-tile
// stay in L1 while every panel of B passes under them); each panel of columns is one micro-kernel.
// With column_max, every column's max over the block's rows is folded into it (see above).
// registers_of(first_register, r0, r1), unless EveryRegister, gives the RegisterSpan of the panel
// from column first_register·W that rows [r0, r1) of C need: the other registers of the panel
// are left as they are (the callers know those products are not needed: their columns see none
// of the keys). column_max then needs every register.
template <class Arch, int MaxRows, int Vectors, bool Accumulate, class RegistersOf = EveryRegister>
inline void gemm_block(int64_t rows, int64_t columns, int64_t depth, const float* a,
                       int64_t a_row_stride, int64_t a_depth_stride, const float* b, int64_t ldb,
                       float* c, int64_t ldc, RowsToPrefetch prefetch = {},
                       float* column_max = nullptr, const RegistersOf& registers_of = {}) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  constexpr int64_t panel = Vectors * W;
  assert(columns % panel == 0);
  // The prefetched rows keep pace with the rows of C: count / rows of them a row, in 1/65536ths
  // (no division per micro-tile), the rest with the last micro-tile.
  const bool prefetching = prefetch.first != nullptr && prefetch.count > 0 && rows > 0;
  const int64_t prefetch_pace = prefetching ? (prefetch.count << 16) / rows : 0;
  int64_t prefetched = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += MaxRows) {
    const int tile_rows = static_cast<int>(rows - r0 < MaxRows ? rows - r0 : MaxRows);
    if (prefetching) {
      const int64_t until =
          r0 + tile_rows == rows ? prefetch.count : ((r0 + tile_rows) * prefetch_pace) >> 16;
      prefetch.prefetch(prefetched, until);
      prefetched = until;
    }
    for (int64_t c0 = 0; c0 < columns; c0 += panel) {
      if constexpr (std::is_same_v<RegistersOf, EveryRegister>) {
        gemm_microkernel_rows<Arch, MaxRows, Vectors, Accumulate>(
            tile_rows, depth, a + r0 * a_row_stride, a_row_stride, a_depth_stride, b + c0, ldb,
            c + r0 * ldc + c0, ldc, column_max == nullptr ? nullptr : column_max + c0);
      } else {
        const RegisterSpan span = registers_of(c0 / W, r0, r0 + tile_rows);
        assert(column_max == nullptr || span.count() == Vectors);
        const int64_t first = c0 + span.begin * W;
        with_register_count<Vectors>(span.count(), [&](auto registers) {
          gemm_microkernel_rows<Arch, MaxRows, decltype(registers)::value, Accumulate>(
              tile_rows, depth, a + r0 * a_row_stride, a_row_stride, a_depth_stride, b + first,
              ldb, c + r0 * ldc + first, ldc, column_max == nullptr ? nullptr : column_max + first);
        });
      }
    }
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

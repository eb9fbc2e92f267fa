// The per-ISA kernels, as functors whose operator() is defined in the *_impl.hpp headers and
// instantiated once per ISA in src/arch/ (xsimd's dispatch pattern). This header carries no SIMD
// code, so generic code can name the kernels and call them for the ISA the plan chose.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "isa/registry.hpp"
#include "kernels/tile_problem.hpp"

namespace simdattn::detail {

// The attention tiles keep their logits in base 2, l = log2(e)·(scale·q·k + biases): the
// softmax's e^(s - max) is then 2^(l - max_l), which exp2_approx computes in fewer operations than
// exp_approx takes for e^x (no reduction by ln 2). The weights are the same; the running and
// partial maxima are base 2 too and go back to natural units (· kLn2) only in the log-sum-exp.
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2 = 0.693147180559945309f;

// The natural log-sum-exp of a column from its base-2 max and its sum of 2^(l - max): -inf when
// the column saw no key (sum 0), NaN when the sum is NaN.
inline float natural_log_sum_exp(float base2_max, float sum) {
  if (sum > 0.0f) return base2_max * kLn2 + std::log(sum);
  return sum == 0.0f ? -std::numeric_limits<float>::infinity() : sum;
}

// What a query column of a tile refers to: a (query head, position) pair of the work item.
struct ColumnInfo {
  int64_t head;
  int64_t position;
  int64_t visible_begin, visible_end;  // keys it sees, within the job's key range
  // Keys inside [visible_begin, visible_end) it does not see: between the sink tokens and the
  // window's left edge. Empty (0, 0) unless strictly inside the range; see sink_token_gap().
  int64_t gap_begin, gap_end;
};

// One thread's working memory, sized by the plan before the parallel loop starts.
struct TileScratch {
  float* packed_queries;   // the tile's queries times the logit scale (and log2(e) for
                           // attention): Qᵀ, head_dim × columns, in key-major tiles; Q row by
                           // row, columns × head_dim_padded, in decoding tiles
  float* scores;           // keys × columns, key-major: base-2 logits, then probabilities
                           // (attention); scale · Q·Kᵀ (qk_scores); the caller's weights
                           // gathered key-major, Pᵀ (weights_v)
  float* accumulator;      // value_dim × columns: unnormalised output, Oᵀ
  float* running_max;      // columns, base 2
  float* running_sum;      // columns
  float* correction;       // columns: 2^(previous max - new max) of the current key block
  float* block_max;        // columns: the current key block's max logit, when Q·Kᵀ tracks it
  float* block_begin;      // columns: visible keys relative to the current key block
  float* block_end;        // columns
  float* alibi_slope;      // columns: -slope · log2(e) of the column's head, 0 for padding
  float* alibi_diagonal;   // columns: position + offset relative to the current key block
  ColumnInfo* columns;     // columns
  // For inputs and outputs that are not fp32 (null otherwise): rows widened to float, or
  // computed in float before they are rounded to the output's dtype. Row strides in floats.
  float* widened_keys;     // key block × head_dim_padded: a k block (RowSource)
  float* widened_values;   // key block × value_dim_padded: a v block
  float* widened_queries;  // columns × head_dim_padded: the tile's q rows, before packing
  float* widened_mask;     // key block: one column's mask entries of a key block
  float* output_rows;      // columns × value_dim_padded: a tile's outputs before rounding
  // Fused tiles that multiply bf16 pairs only (uses_pair_tiles, kernels/pair_tiles.hpp; null
  // otherwise), bf16 bits:
  uint16_t* tile_keys;     // 32 × head_dim, AMX only: groups of 16 key rows not one stride apart, or short
  uint16_t* tile_weights;  // columns × pair_key_rows(key block): Pᵀ, the weights rounded to bf16
  uint16_t* tile_values;   // pair_key_rows(key block) / 2 × value_dim × 2: V rows in pairs of keys
};

// Unnormalised partial results of key chunks (decoding), merged in a fixed order afterwards.
struct PartialSlots {
  float* accumulator;    // per slot: value_dim × columns_padded
  float* max;            // per slot: columns_padded, base 2
  float* sum;            // per slot: columns_padded
  float* chunk_weights;  // per thread: key_chunks, the merge's working memory
  float* output_rows;    // per thread: value_dim rounded up to 16 floats, a row of an output
                         // that is rounded to 16 bits (null for f32 outputs)
};

// attention() for one work item with the online softmax: memory independent of Sk.
struct FusedTile {
  template <class Arch>
  void operator()(Arch, const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                  const PartialSlots& partials) const;
};

// attention() for one work item with the whole score block materialised (weights output).
struct ComposedTile {
  template <class Arch>
  void operator()(Arch, const TileProblem& problem, const TileJob& job, TileScratch& scratch) const;
};

// qk_scores() for one work item: problem.q and problem.k in, problem.scores out.
struct QkScoresTile {
  template <class Arch>
  void operator()(Arch, const TileProblem& problem, const TileJob& job, TileScratch& scratch) const;
};

// weights_v() for one work item: problem.probabilities and problem.v in, problem.out out.
struct WeightsVTile {
  template <class Arch>
  void operator()(Arch, const TileProblem& problem, const TileJob& job, TileScratch& scratch) const;
};

// softmax_rows() for `count` contiguous floats, in place.
struct SoftmaxRow {
  float sink = -std::numeric_limits<float>::infinity();  // one more denominator term; -inf: none
  template <class Arch>
  void operator()(Arch, float* row, int64_t count) const;
};

// out[i] = e^in[i] (exp_approx), or 2^in[i] (exp2_approx, its Coarse form when coarse) when
// base_two: the vectorised exponentials, exposed for their accuracy tests.
struct ExpArray {
  bool base_two = false;
  bool coarse = false;
  template <class Arch>
  void operator()(Arch, const float* in, float* out, int64_t count) const;
};

// Transposes a row-major square of W × W floats (W = the ISA's register width) in place, through
// transpose_in_registers: exposed for its test.
struct TransposeSquare {
  template <class Arch>
  void operator()(Arch, float* square) const;
};

// The building blocks of the tiles, each callable on its own for the kernel tests
// (tests/test_kernels.cpp) and the kernel benchmark (bench/bench_kernels.cpp), as XNNPACK tests
// its micro-kernels: no plan, no attention(). Instantiated in simdattn_testable only
// (src/arch/building_blocks.cpp).

// C[rows × columns] = (or += when accumulate) A · B through gemm_block, the register-blocked
// micro-kernels of Q·Kᵀ and P·V: A[r][d] at a[r · a_row_stride + d · a_depth_stride],
// B[d][n] at b[d · ldb + n], C[r][n] at c[r · ldc + n]. columns is a multiple of the panel
// (panel_vectors registers: 1, 2, or the ISA's widest), b and c are aligned to a register and
// ldb, ldc multiples of it. With column_max (columns floats, aligned), each column's max over
// the rows of C is folded into it.
struct GemmBlockKernel {
  bool accumulate = false;
  int panel_vectors = 1;
  template <class Arch>
  void operator()(Arch, int64_t rows, int64_t columns, int64_t depth, const float* a,
                  int64_t a_row_stride, int64_t a_depth_stride, const float* b, int64_t ldb,
                  float* c, int64_t ldc, float* column_max) const;
};

// One key block of the online softmax down the columns of scores[rows][padded_columns] (base-2
// logits, aligned; padded_columns a multiple of the register width, or a divisor of it with
// scores holding whole registers): see online_softmax_block. block_max may be null.
struct OnlineSoftmaxKernel {
  template <class Arch>
  void operator()(Arch, float* scores, int64_t rows, int64_t padded_columns, float* running_max,
                  float* running_sum, float* correction, const float* block_max) const;
};

}  // namespace simdattn::detail

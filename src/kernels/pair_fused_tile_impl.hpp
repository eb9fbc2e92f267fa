// The fused tile (fused_tile_impl.hpp) with both products on bf16 pairs, for bf16 q, k and v
// (uses_pair_tiles, pair_tiles.hpp): on AMX tiles (AmxProducts, amx_products.hpp) in the amx
// unit, with AVX512-BF16's VDPBF16PS (DotProducts, dot_products.hpp) in the avx512bf16 unit. The
// tile is the AVX-512 one in every other respect: the same work items, key blocks, logit
// transforms, online softmax and outputs; only Q·Kᵀ and P·V multiply bf16 pairs exactly and
// accumulate in fp32 instead of widening K and V to fp32.
//
// - Q·Kᵀ, key-major as the AVX-512 tile: scores[key][column] += K[key][d..d+31] ·
//   Qᵀ[d..d+31][column]. K's rows are read in place; Qᵀ is packed once per tile in pairs of depth
//   ([D/2][columns][2]), unscaled, so the scores come out as the exact products' fp32 sums. The
//   logit scale (times log2 e), which the AVX-512 tile's packed queries carry, rides in the
//   softmax's FMA where nothing reads the logits before it (run_pair_fused_tile), and is applied
//   as the products are stored elsewhere; that step also takes the block's max.
// - P·V, column-major: O[column][n] += Pᵀ[column][key..key+31] · V[key..key+31][n]. The softmax
//   writes the weights rounded to bf16 (RNE) and transposed from the key-major scores, and V's
//   rows are interleaved in pairs of keys; O is the accumulator, laid out [column][value_dim]
//   (the decoding tiles' layout, AccumulatorLayout{1, value_dim}).
//
// Products supplies Session (state held for the tile's duration), block_products<Arch, Scale>
// and accumulate_products, on the layouts above.
//
// Accuracy: beyond the AVX-512 tile's roundings, the weights are rounded to bf16, relative 2⁻⁸
// each, from a 2^x within 5·10⁻⁶ relative (exp2_approx's Coarse form), so at most
// (2⁻⁸ + 10⁻⁵) · V more on an output (the sums divided by stay fp32); the README's Guarantees add
// it for this path. Both instructions read denormal bf16 inputs as zero and flush denormal
// results (below 2⁻¹²⁶: no effect within the bound on any logit or weight the tests or a model
// produce).
#pragma once

#include "isa/registry.hpp"

#if defined(SIMDATTN_AVX512_BF16_UNIT)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/logit_transforms.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/pair_tile_steps.hpp"
#include "kernels/pair_tiles.hpp"
#include "kernels/tile_columns.hpp"
#include "kernels/tile_outputs.hpp"
#include "kernels/value_accumulation.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// ScaleInSoftmax: the scores stay unscaled products and the softmax scales them in its FMA
// (softmax_to_weights), sparing a pass over them; only where nothing between the products and the
// softmax reads the logits' values (no soft-cap, ALiBi or mask: hiding a key by -inf is the same
// either way) and the scale is positive, so that the max commutes with it.
template <class Arch, class Products, bool ScaleInSoftmax>
inline void run_pair_fused_tile_scaled(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                                       const PartialSlots& partials) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const TileColumns tile = start_tile(problem, job, scratch, 2 * kPairRows);
  const int64_t real_columns = tile.real, padded_columns = tile.padded;
  const KeyRange keys = tile.keys;
  const KeyRange hole = keys_hidden_from_tile(problem, scratch, real_columns, keys);
  const int64_t value_dim = problem.value_dim;
  const AccumulatorLayout layout{1, value_dim};
  uint32_t* packed_queries = reinterpret_cast<uint32_t*>(scratch.packed_queries);
  pairs::pack_query_pairs<Arch>(problem, job, scratch.columns, real_columns, padded_columns, packed_queries);
  prepare_alibi(problem, job, scratch, real_columns, padded_columns);
  std::fill(scratch.running_max, scratch.running_max + padded_columns, kMinusInfinity);
  std::fill(scratch.running_sum, scratch.running_sum + padded_columns, 0.0f);
  std::fill(scratch.accumulator, scratch.accumulator + padded_columns * value_dim, 0.0f);
  seed_sink_logits(problem, job, scratch, real_columns);
  const RowSource<Arch> key_rows = key_source<Arch>(problem, job, scratch);
  const RowSource<Arch> value_rows = value_source<Arch>(problem, job, scratch);
  const Floats logit_scale(base2_logit_scale(problem));
  // As on the AVX-512 tile: a block every column sees wholly keeps its logits as computed, so the
  // products hand the softmax the block's max.
  const bool block_max_from_products = logits_as_computed(problem);
  [[maybe_unused]] const typename Products::Session session;  // held for the tile's key blocks
  for (int64_t first_key = keys.begin, rows = 0; first_key < keys.end;
       first_key = next_key_block(hole, first_key + rows)) {
    rows = key_block_rows(keys, hole, first_key, problem.key_block);
    float* block_max = block_max_from_products && every_column_sees(scratch, real_columns, first_key, rows)
                           ? scratch.block_max
                           : nullptr;
    Products::template block_products<Arch, !ScaleInSoftmax>(key_rows, first_key, rows, problem.head_dim,
                                                             packed_queries, padded_columns, logit_scale,
                                                             scratch.tile_keys, scratch.scores, block_max);
    const bool some_key_hidden =
        transform_logits<Arch>(problem, job, scratch, real_columns, padded_columns, first_key, rows);
    const int64_t key_rows_padded = pair_key_rows(rows);
    const bool finite = pairs::pack_value_pairs(value_rows, first_key, rows, key_rows_padded, value_dim,
                                                scratch.tile_values);
    // A key some column does not see holding inf or NaN must not reach that column as 0 · inf:
    // then the weights stay fp32 in the scores, and only the visible keys are added.
    const bool paired = finite || !some_key_hidden;
    if (paired) {
      pairs::softmax_to_weights<Arch, ScaleInSoftmax>(scratch.scores, rows, key_rows_padded, padded_columns,
                                                      logit_scale, scratch.running_max, scratch.running_sum,
                                                      scratch.correction, block_max, scratch.tile_weights);
    } else {
      if (ScaleInSoftmax) {
        for (int64_t i = 0; i < rows * padded_columns; i += W) {
          (Floats::load_aligned(scratch.scores + i) * logit_scale).store_aligned(scratch.scores + i);
        }
      }
      online_softmax_block<Arch>(scratch.scores, rows, padded_columns, scratch.running_max,
                                 scratch.running_sum, scratch.correction, ScaleInSoftmax ? nullptr : block_max);
    }
    // What was accumulated under the previous max is rescaled to the new one; a column whose max
    // held (correction exactly 1, most columns after the first blocks) keeps its row as it is.
    for (int64_t c = 0; c < padded_columns; ++c) {
      if (scratch.correction[c] == 1.0f) continue;
      float* row = scratch.accumulator + c * value_dim;
      const Floats correction(scratch.correction[c]);
      for (int64_t n = 0; n < value_dim; n += W) {
        (Floats::load_unaligned(row + n) * correction).store_unaligned(row + n);
      }
    }
    if (paired) {
      Products::accumulate_products(scratch.tile_weights, scratch.tile_values, key_rows_padded, padded_columns,
                                    value_dim, scratch.accumulator);
    } else {
      const RowBlock block = value_rows.rows(first_key, rows);
      accumulate_visible_values(scratch.scores, rows, padded_columns, real_columns, block.first,
                                block.stride, value_dim, scratch.accumulator, layout);
    }
  }
  finish_online_tile<Arch>(problem, job, scratch, partials, real_columns, layout);
}

template <class Arch, class Products>
inline void run_pair_fused_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                                const PartialSlots& partials) {
  const float scale = base2_logit_scale(problem);
  if (logits_as_computed(problem) && scale > 0.0f && scale < std::numeric_limits<float>::infinity()) {
    run_pair_fused_tile_scaled<Arch, Products, true>(problem, job, scratch, partials);
  } else {
    run_pair_fused_tile_scaled<Arch, Products, false>(problem, job, scratch, partials);
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

#endif

// attention() for one work item with the online softmax (FlashAttention's recurrence): key blocks
// stream through, each column keeps a running max and sum, and the output accumulator is rescaled
// whenever the max grows. Scratch is O(columns · (head_dim + key_block + value_dim)), independent
// of Sk. Layout is key-major: scores[key][column], so the softmax runs down columns in registers.
#pragma once

#include "kernels/amx_products.hpp"
#include "kernels/decode_tile_impl.hpp"
#include "kernels/dot_products.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/key_major_tile.hpp"
#include "kernels/logit_transforms.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/pair_fused_tile_impl.hpp"
#include "kernels/query_packing.hpp"
#include "kernels/register_visibility.hpp"
#include "kernels/tile_columns.hpp"
#include "kernels/tile_outputs.hpp"
#include "kernels/value_accumulation.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

template <class Arch, int Vectors>
inline void run_fused_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                           const PartialSlots& partials) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  constexpr int Rows = KeyMajorTile<Arch, Vectors>::kRows;
  // Plain variables, not a structured binding: C++17 lets no lambda capture a binding (clang
  // holds to it).
  const TileColumns tile = start_tile(problem, job, scratch, KeyMajorTile<Arch, Vectors>::kPanel);
  const int64_t real_columns = tile.real, padded_columns = tile.padded;
  const KeyRange keys = tile.keys;
  // Keys no column sees between sink tokens and the windows: the key loop steps over them.
  const KeyRange hole = keys_hidden_from_tile(problem, scratch, real_columns, keys);
  pack_scaled_queries<Arch>(problem, job, scratch.columns, real_columns, padded_columns, problem.q,
                            base2_logit_scale(problem), scratch.packed_queries, scratch.widened_queries);
  prepare_alibi(problem, job, scratch, real_columns, padded_columns);
  std::fill(scratch.running_max, scratch.running_max + padded_columns, kMinusInfinity);
  std::fill(scratch.running_sum, scratch.running_sum + padded_columns, 0.0f);
  std::fill(scratch.accumulator, scratch.accumulator + problem.value_dim * padded_columns, 0.0f);
  seed_sink_logits(problem, job, scratch, real_columns);

  // Without soft-cap, ALiBi or a mask, a block that every column sees wholly keeps its logits as
  // Q·Kᵀ computed them, so Q·Kᵀ can hand the softmax the block's max and save it a pass.
  const bool plain_logits = logits_as_computed(problem);
  const RegisterKeys register_keys(scratch, real_columns, padded_columns, W);
  const RowSource<Arch> key_rows = key_source<Arch>(problem, job, scratch);
  const RowSource<Arch> value_rows = value_source<Arch>(problem, job, scratch);
  // The rows this tile writes at the end (columns: query heads × positions), unless it is a key
  // chunk whose partial result goes to scratch, or the output is rounded from scratch.
  RowsToPrefetch output_rows;
  if (job.partial < 0 && real_columns > 0 && problem.out.dtype == DType::f32) {
    const int64_t positions = job.query_end - job.query_begin;
    output_rows = {static_cast<float*>(problem.out.row(job.batch, scratch.columns[0].head, job.query_begin)),
                   real_columns, problem.value_dim, problem.out.strides[2], positions,
                   problem.out.strides[1], true};
  }
  for (int64_t first_key = keys.begin, rows = 0; first_key < keys.end;
       first_key = next_key_block(hole, first_key + rows)) {
    rows = key_block_rows(keys, hole, first_key, problem.key_block);
    // scores = K_block · (scale·Qᵀ): key rows broadcast straight from the caller's K, the
    // block's value rows prefetched meanwhile, registers of columns that see none of a
    // micro-tile's keys skipped (the visibility pass masks what they hold).
    const RowBlock key_block = key_rows.rows(first_key, rows);
    const RowBlock value_block = value_rows.rows(first_key, rows);
    const float* values = value_block.first;
    const int64_t v_stride = value_block.stride;
    float* block_max = plain_logits && every_column_sees(scratch, real_columns, first_key, rows)
                           ? scratch.block_max
                           : nullptr;
    if (block_max != nullptr) std::fill(block_max, block_max + padded_columns, kMinusInfinity);
    const RegisterVisibility visibility(register_keys, first_key, rows);
    const auto block_scores = [&](const auto& registers_of) {
      gemm_block<Arch, Rows, Vectors, false>(
          rows, padded_columns, problem.head_dim, key_block.first, key_block.stride, 1,
          scratch.packed_queries, padded_columns, scratch.scores, padded_columns,
          {values, rows, problem.value_dim, v_stride}, block_max, registers_of);
    };
    // Soft-cap, ALiBi and a mask read every logit before the visibility pass hides what a
    // skipped register would hold: there every register is computed, so that none of them reads
    // stale scratch (tanh's max and compare raise FE_INVALID on a stale NaN).
    if (visibility.everything() || !plain_logits) {
      block_scores(EveryRegister{});
    } else {
      block_scores([&visibility](int64_t first_register, int64_t key_begin, int64_t key_end) {
        return visibility.seeing(first_register, Vectors, key_begin, key_end);
      });
    }
    const bool some_key_hidden =
        transform_logits<Arch>(problem, job, scratch, real_columns, padded_columns, first_key, rows);
    online_softmax_block<Arch>(scratch.scores, rows, padded_columns, scratch.running_max,
                               scratch.running_sum, scratch.correction, block_max);
    // What was accumulated under the previous max is rescaled to the new one.
    for (int64_t n = 0; n < problem.value_dim; ++n) {
      float* row = scratch.accumulator + n * padded_columns;
      for (int64_t c = 0; c < padded_columns; c += W) {
        (Floats::load_aligned(row + c) * Floats::load_aligned(scratch.correction + c)).store_aligned(row + c);
      }
    }
    // Oᵀ += V_blockᵀ · P: value columns broadcast straight from the caller's V, one run of keys
    // at a time, skipping the registers of columns that see none of the run (their weights are
    // zeros); the last block prefetches the output rows meanwhile.
    const bool last_block = next_key_block(hole, first_key + rows) >= keys.end;
    const RowsToPrefetch prefetch = last_block ? output_rows : RowsToPrefetch{};
    if (!some_key_hidden || rows_are_finite<Arch>(values, v_stride, rows, problem.value_dim)) {
      const auto accumulate_values = [&](int64_t key_begin, int64_t key_end,
                                         RowsToPrefetch rows_to_prefetch, const auto& registers_of) {
        gemm_block<Arch, Rows, Vectors, true>(
            problem.value_dim, padded_columns, key_end - key_begin, values + key_begin * v_stride, 1,
            v_stride, scratch.scores + key_begin * padded_columns, padded_columns,
            scratch.accumulator, padded_columns, rows_to_prefetch, nullptr, registers_of);
      };
      if (visibility.everything()) {
        accumulate_values(0, rows, prefetch, EveryRegister{});
      } else {
        int64_t cuts[2 * RegisterKeys::kMaxRegisters + 2];
        const int runs = visibility.runs(cuts, rows);
        for (int run = 0; run < runs; ++run) {
          const int64_t key_begin = cuts[run], key_end = cuts[run + 1];
          accumulate_values(key_begin, key_end, run == 0 ? prefetch : RowsToPrefetch{},
                            [&](int64_t first_register, int64_t, int64_t) {
                              return visibility.seeing(first_register, Vectors, key_begin, key_end);
                            });
        }
      }
    } else {
      accumulate_visible_values(scratch.scores, rows, padded_columns, real_columns, values, v_stride,
                                problem.value_dim, scratch.accumulator, {padded_columns, 1});
    }
  }
  finish_online_tile<Arch>(problem, job, scratch, partials, real_columns, {padded_columns, 1});
}

// The pair tile of a unit's Arch (run_pair_fused_tile, pair_fused_tile_impl.hpp), and the ISA whose
// tiles it is: on AMX's tiles for the amx unit, with VDPBF16PS for the avx512bf16 unit; none
// (kExists false) for every other Arch.
template <class Arch>
struct PairTileOf {
  static constexpr bool kExists = false;
};
#if defined(SIMDATTN_AVX512_BF16_UNIT)  // (the amx unit's flags include AVX512-BF16)
template <class Arch, class Products, Isa kIsa>
struct PairTileOn {
  static constexpr bool kExists = true;
  static constexpr Isa isa = kIsa;
  static void run(const TileProblem& problem, const TileJob& job, TileScratch& scratch, const PartialSlots& partials) {
    run_pair_fused_tile<Arch, Products>(problem, job, scratch, partials);
  }
};
template <>
struct PairTileOf<avx512_bf16> : PairTileOn<avx512_bf16, DotProducts, Isa::avx512bf16> {};
#endif
#if defined(SIMDATTN_AMX_BF16_UNIT)
template <>
struct PairTileOf<avx512_amx> : PairTileOn<avx512_amx, AmxProducts, Isa::amx> {};
#endif

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

namespace simdattn::detail {

// A tile of at most one register of columns (decoding) takes the kernel vectorised along
// head_dim; wider tiles the key-major micro-kernel, or bf16 pairs (on AMX's tiles in the amx unit,
// with VDPBF16PS in the avx512bf16 unit) where uses_pair_tiles says so.
template <class Arch>
void FusedTile::operator()(Arch, const TileProblem& problem, const TileJob& job,
                           TileScratch& scratch, const PartialSlots& partials) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  using PairTile = PairTileOf<Arch>;
  if constexpr (PairTile::kExists) {
    if (uses_pair_tiles(PairTile::isa, problem)) {
      PairTile::run(problem, job, scratch, partials);
      return;
    }
  }
  with_panel_vectors<Arch>(problem.panel_vectors, [&](auto vectors) {
    if constexpr (decltype(vectors)::value == 1) {
      run_decode_tile<Arch>(problem, job, scratch, partials);
    } else {
      run_fused_tile<Arch, decltype(vectors)::value>(problem, job, scratch, partials);
    }
  });
}

}  // namespace simdattn::detail

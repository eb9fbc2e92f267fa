#include "plan/scratch_pool.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <new>

#include "kernels/pair_tiles.hpp"

namespace simdattn::detail {
namespace {

constexpr int64_t kAlignmentBytes = 64;
constexpr int64_t kAlignmentFloats = kAlignmentBytes / sizeof(float);

int64_t round_up_to_alignment(int64_t floats) {
  return (floats + kAlignmentFloats - 1) / kAlignmentFloats * kAlignmentFloats;
}

// The per-column arrays of TileScratch, besides its three matrices.
constexpr float* TileScratch::*kColumnArrays[] = {
    &TileScratch::running_max, &TileScratch::running_sum,    &TileScratch::correction,
    &TileScratch::block_max,   &TileScratch::block_begin,    &TileScratch::block_end,
    &TileScratch::alibi_slope, &TileScratch::alibi_diagonal};

}  // namespace

int64_t checked_size(int64_t a, int64_t b) {
  int64_t product = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product)) throw std::bad_alloc();
  return product;
}

void AlignedFloats::Free::operator()(float* p) const { std::free(p); }

AlignedFloats::AlignedFloats(int64_t count) {
  const int64_t bytes = checked_size(round_up_to_alignment(count > 0 ? count : 1), sizeof(float));
  void* memory = std::aligned_alloc(kAlignmentBytes, static_cast<size_t>(bytes));
  if (memory == nullptr) throw std::bad_alloc();
  data_.reset(static_cast<float*>(memory));
#if defined(SIMDATTN_POISON_SCRATCH)
  // Kernels must write scratch before they read it. Filled with NaN, scratch read unwritten turns
  // a result into NaN or raises FE_INVALID in a comparison, which the tests check (the oracle
  // comparisons, FloatingPointEnvironment); found the soft-cap/ALiBi tile reading stale scores.
  std::fill(data_.get(), data_.get() + bytes / static_cast<int64_t>(sizeof(float)),
            std::numeric_limits<float>::quiet_NaN());
#endif
}

ScratchPool::ScratchPool(const AttentionPlan& plan, int threads, int64_t score_rows) {
  const int64_t columns = plan.columns_padded;
  // Pair tiles store scores 16 key rows at a time and multiply weights 32 keys at a time.
  const bool pairs = !plan.composed && uses_pair_tiles(plan.isa, plan);
  if (pairs) score_rows = pair_key_rows(score_rows);
  // head_dim and value_dim rounded up to the widest register: the decoding tile keeps its queries
  // and outputs in rows of whole registers.
  const int64_t queries = round_up_to_alignment(checked_size(round_up_to_alignment(plan.head_dim), columns));
  const int64_t scores = round_up_to_alignment(checked_size(score_rows, columns));
  const int64_t accumulator = round_up_to_alignment(checked_size(round_up_to_alignment(plan.value_dim), columns));
  const int64_t column_array = round_up_to_alignment(columns);
  // Widened inputs and unrounded outputs, only for tensors that are not fp32.
  const auto unless_f32 = [](DType dtype, int64_t floats) { return dtype == DType::f32 ? 0 : floats; };
  const int64_t head_row = round_up_to_alignment(plan.head_dim);
  const int64_t value_row = round_up_to_alignment(plan.value_dim);
  // K/V blocks are widened when stored narrower, and gathered (fp32 too) when a paged cache's
  // block crosses pages.
  const auto unless_read_in_place = [&](DType dtype, int64_t floats) {
    return plan.block_table != nullptr ? floats : unless_f32(dtype, floats);
  };
  const int64_t widened_keys = unless_read_in_place(plan.k.dtype, round_up_to_alignment(checked_size(score_rows, head_row)));
  const int64_t widened_values = unless_read_in_place(plan.v.dtype, round_up_to_alignment(checked_size(score_rows, value_row)));
  const int64_t widened_queries = unless_f32(plan.q.dtype, round_up_to_alignment(checked_size(columns, head_row)));
  const int64_t widened_mask = plan.has_mask ? unless_f32(plan.mask.dtype, round_up_to_alignment(score_rows)) : 0;
  const int64_t output_rows = unless_f32(plan.out.dtype, round_up_to_alignment(checked_size(columns, value_row)));
  // The pair tiles' bf16 buffers, in floats (two bf16 a float).
  const auto pairs_only = [pairs](int64_t bf16s) { return pairs ? round_up_to_alignment((bf16s + 1) / 2) : 0; };
  const int64_t tile_keys =
      pair_tiles_stage_keys(plan.isa) ? pairs_only(checked_size(2 * kPairRows, plan.head_dim)) : 0;
  const int64_t tile_weights = pairs_only(checked_size(columns, score_rows));
  const int64_t tile_values = pairs_only(checked_size(score_rows, plan.value_dim));
  const int64_t per_thread = queries + scores + accumulator +
                             static_cast<int64_t>(std::size(kColumnArrays)) * column_array +
                             widened_keys + widened_values + widened_queries + widened_mask + output_rows +
                             tile_keys + tile_weights + tile_values;
  floats_ = AlignedFloats(checked_size(per_thread, threads));
  columns_.resize(static_cast<size_t>(checked_size(columns, threads)));
  tiles_.resize(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    float* next = floats_.data() + per_thread * t;
    auto take = [&next](int64_t count) {
      float* region = next;
      next += count;
      return region;
    };
    TileScratch& tile = tiles_[t];
    tile.packed_queries = take(queries);
    tile.scores = take(scores);
    tile.accumulator = take(accumulator);
    for (float* TileScratch::*array : kColumnArrays) tile.*array = take(column_array);
    tile.columns = columns_.data() + columns * t;
    const auto take_if = [&take](int64_t count) { return count > 0 ? take(count) : nullptr; };
    tile.widened_keys = take_if(widened_keys);
    tile.widened_values = take_if(widened_values);
    tile.widened_queries = take_if(widened_queries);
    tile.widened_mask = take_if(widened_mask);
    tile.output_rows = take_if(output_rows);
    tile.tile_keys = reinterpret_cast<uint16_t*>(take_if(tile_keys));
    tile.tile_weights = reinterpret_cast<uint16_t*>(take_if(tile_weights));
    tile.tile_values = reinterpret_cast<uint16_t*>(take_if(tile_values));
  }
}

PartialPool::PartialPool(const AttentionPlan& plan) {
  if (plan.key_chunks <= 1) return;
  // One slot per job: a key chunk's slot is its job's index (the decoding invariant,
  // make_attention_plan), which merge_key_chunks reads run by run (AttentionPlan::chunk_runs).
  const int64_t slots = static_cast<int64_t>(plan.jobs.size());
  const int64_t columns = plan.columns_padded;
  const int64_t accumulator = checked_size(checked_size(slots, plan.value_dim), columns);
  const int64_t statistics = checked_size(slots, columns);
  const int64_t chunk_weights = checked_size(plan.key_chunks, plan.threads);
  const int64_t output_rows =
      plan.out.dtype == DType::f32 ? 0 : checked_size(round_up_to_alignment(plan.value_dim), plan.threads);
  floats_ = AlignedFloats(accumulator + 2 * statistics + chunk_weights + output_rows);
  slots_.accumulator = floats_.data();
  slots_.max = slots_.accumulator + accumulator;
  slots_.sum = slots_.max + statistics;
  slots_.chunk_weights = slots_.sum + statistics;
  slots_.output_rows = output_rows > 0 ? slots_.chunk_weights + chunk_weights : nullptr;
}

}  // namespace simdattn::detail

#include "plan/attention_plan.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <array>
#include <optional>
#include <utility>

#include "isa/registry.hpp"
#include "kernels/pair_tiles.hpp"
#include "kernels/visible_keys.hpp"

namespace simdattn::detail {
namespace {

// ScopedKeyBlockOverride's value for this thread; 0: none.
thread_local int64_t key_block_override = 0;

// Decoding: so few query rows that the work must be split along the keys to use every core.
constexpr int64_t kDecodeMaxQueries = 16;

// Views with no element (head_dim or value_dim 0) may carry null data, and no address may be
// formed from null; such views point here instead, with zero strides. Never read or written.
float empty_view_anchor = 0.0f;

template <class View>
View anchored_if_empty(View view) {
  if (view.shape[3] != 0) return view;
  view.data = &empty_view_anchor;
  view.strides = {0, 0, 0, 1};
  return view;
}

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Keys a job's tile sees at most: its last position's range grows with causal masks, so the
// largest jobs can be scheduled first.
int64_t estimated_keys(const AttentionPlan& plan, const TileJob& job) {
  const KeyRange first = visible_keys(plan, job.batch, job.query_begin);
  const KeyRange last = visible_keys(plan, job.batch, job.query_end - 1);
  const int64_t begin = std::max(std::min(first.begin, last.begin), job.key_begin);
  const int64_t end = std::min(std::max(first.end, last.end), job.key_end);
  return std::max<int64_t>(end - begin, 0);
}

// The options in normal form, for a plan whose sizes are set.
void set_options(AttentionPlan& plan, const AttentionOptions& options) {
  // With head_dim 0 (no logit terms: weights_v's plan, an empty head) the scale multiplies
  // nothing; 1 there keeps 1 / sqrt(0) from raising FE_DIVBYZERO.
  if (options.scale.has_value()) {
    plan.scale = *options.scale;
  } else {
    plan.scale = plan.head_dim > 0 ? 1.0f / std::sqrt(static_cast<float>(plan.head_dim)) : 1.0f;
  }
  plan.causal = options.causal;
  plan.key_offset = options.shard.has_value() ? options.shard->key_offset : 0;
  plan.diagonal_shift = options.shard.has_value() ? options.shard->diagonal_shift : 0;
  // A window wider than both sequences sees everything; clamping keeps i + off ± window in range.
  // A shard's diagonal may lie far from its rows (validation bounds it by 2^40 either way), so
  // there only a window past 2^42 is wide enough to clamp.
  const int64_t widest = options.shard.has_value() ? int64_t{1} << 42 : plan.sq + plan.sk;
  plan.window_left = options.window_left < 0 ? -1 : std::min(options.window_left, widest);
  plan.window_right = options.window_right < 0 ? -1 : std::min(options.window_right, widest);
  plan.has_mask = options.mask.has_value();
  if (plan.has_mask) plan.mask = *options.mask;
  if (options.k_scale.has_value()) plan.k_scale = *options.k_scale;
  if (options.v_scale.has_value()) plan.v_scale = *options.v_scale;
  plan.kv_lengths = options.kv_lengths;
  plan.softcap = options.softcap;
  plan.alibi_slopes = options.alibi_slopes;
  plan.sinks = options.sinks;
  // Sink tokens only widen a window's left bound: without one they change nothing, and 0 keeps
  // such calls on the code they ran before.
  // In rows of k: a shard holds the sequence's sink tokens that lie at or after its key_offset.
  plan.sink_tokens = plan.window_left >= 0
                         ? std::clamp<int64_t>(options.sink_tokens - plan.key_offset, 0, plan.sk)
                         : 0;
  plan.has_weights = options.weights.has_value();
  if (plan.has_weights) plan.weights = *options.weights;
  plan.has_lse = options.lse.has_value();
  if (plan.has_lse) plan.lse = *options.lse;
}

// Key chunks of batch b when decoding splits its keys into chunks of key_span: at least one.
int64_t decode_chunks(const AttentionPlan& plan, int64_t b, int64_t key_span) {
  const int64_t keys = std::clamp<int64_t>(kv_length(plan, b), 0, plan.sk);
  return std::max<int64_t>((keys + key_span - 1) / key_span, 1);
}

// The longest chunk (kDecodeKeyChunk doubled, up to kDecodeLongestKeyChunk) with which a decoding
// call still has kDecodeMinJobs work items; kDecodeKeyChunk when even that has fewer.
int64_t decode_key_chunk(const AttentionPlan& plan) {
  int64_t chunk = kDecodeKeyChunk;
  while (chunk < kDecodeLongestKeyChunk) {
    int64_t jobs = 0;
    for (int64_t b = 0; b < plan.batch; ++b) {
      if (query_count(plan, b) > 0) jobs += decode_chunks(plan, b, 2 * chunk) * plan.kv_heads;
    }
    if (jobs < kDecodeMinJobs) break;
    chunk *= 2;
  }
  return chunk;
}

// The algorithm, tile shape, key split and work items of a plan whose problem is set.
void cut_into_work_items(AttentionPlan& plan, const AttentionOptions& options) {
  plan.isa = isa_for_this_call();
  plan.composed = options.algorithm == Algorithm::composed ||
                  (options.algorithm == Algorithm::automatic && plan.has_weights);
  const BlockingSizes blocking = blocking_for(plan.isa);
  // The most queries one batch has (a packed batch's longest sequence).
  int64_t longest = 0;
  for (int64_t b = 0; b < plan.batch; ++b) longest = std::max(longest, query_count(plan, b));
  const bool decoding = !plan.composed && longest <= kDecodeMaxQueries && plan.sk > kDecodeKeyChunk;
  const bool pair_tiles = !decoding && !plan.composed && pair_tiles_fit(plan.isa, plan);
  const int64_t tile_columns =
      pair_tiles ? kPairTileColumns
                : blocking.tile_columns * (plan.head_dim <= blocking.double_tile_max_head_dim ? 2 : 1);
  plan.queries_per_tile = decoding ? std::max<int64_t>(longest, 1)
                                   : std::clamp<int64_t>(tile_columns / plan.group, 1,
                                                         std::max<int64_t>(longest, 1));
  const int64_t columns = plan.group * plan.queries_per_tile;
  // The narrowest panel that holds the columns: a wider one would compute padding.
  plan.panel_vectors = 1;
  while (plan.panel_vectors < blocking.wide_vectors &&
         columns > plan.panel_vectors * int64_t{blocking.vector_floats}) {
    plan.panel_vectors *= 2;
  }
  plan.columns_padded = round_up(columns, plan.panel_vectors * int64_t{blocking.vector_floats});
  // Prefill tiles widen a 16-bit or int8 K (and V, whose dtype is K's) a key block at a time;
  // decoding reads them in place and the pair tiles take bf16 as it is. weights_v's plan has no K
  // and keeps key_block for a 16-bit V: not measured, so not changed.
  const bool widens_blocks = plan.k.dtype != DType::f32 && !decoding && !pair_tiles;
  plan.key_block = plan.sk <= blocking.single_block_keys ? std::max<int64_t>(plan.sk, 1)
                   : widens_blocks                     ? blocking.widened_key_block
                                                       : blocking.key_block;
  if (key_block_override > 0) plan.key_block = key_block_override;
  // Decoding splits each batch's own keys (a packed or paged sequence's, or kv_lengths') into
  // chunks, so that a short sequence beside a long one is one job, not as many as the longest
  // needs with most of them empty.
  std::vector<int64_t> chunks_of_batch(static_cast<size_t>(plan.batch), 1);
  const int64_t key_span = decoding ? decode_key_chunk(plan) : std::max<int64_t>(plan.sk, 1);
  plan.key_chunks = 1;
  for (int64_t b = 0; decoding && b < plan.batch; ++b) {
    chunks_of_batch[b] = decode_chunks(plan, b, key_span);
    plan.key_chunks = std::max(plan.key_chunks, chunks_of_batch[b]);
  }
  const bool split_keys = plan.key_chunks > 1;

  for (int64_t b = 0; b < plan.batch; ++b) {
    const int64_t queries_begin = first_query(plan, b), queries_end = queries_begin + query_count(plan, b);
    for (int64_t h = 0; h < plan.kv_heads; ++h) {
      for (int64_t i0 = queries_begin; i0 < queries_end; i0 += plan.queries_per_tile) {
        // The decoding invariant merge_key_chunks relies on: a key chunk's partial slot is its
        // job's index, and decoding has one query tile (all of a batch's queries) per
        // (batch, kv head) that has queries, so the jobs come in runs, one per such pair, of its
        // batch's chunks in key order; chunk_runs[g] is run g's first job. Decoding jobs are
        // never reordered below.
        if (split_keys) plan.chunk_runs.push_back(static_cast<int64_t>(plan.jobs.size()));
        for (int64_t chunk = 0; chunk < chunks_of_batch[b]; ++chunk) {
          const int64_t partial = split_keys ? static_cast<int64_t>(plan.jobs.size()) : -1;
          const int64_t key_end = chunk + 1 == chunks_of_batch[b] ? plan.sk : (chunk + 1) * key_span;
          plan.jobs.push_back({b, h, i0, std::min(i0 + plan.queries_per_tile, queries_end),
                               chunk * key_span, std::min(key_end, plan.sk), partial});
        }
      }
    }
  }
  if (split_keys) plan.chunk_runs.push_back(static_cast<int64_t>(plan.jobs.size()));
  // Largest first within each (batch, kv head): a thread's next job then reads mostly the K and V
  // rows its last one read, and the small tiles of the last head finish the loop.
  // The order changes only which thread runs a job, never its result.
  if (!decoding && plan.causal != Causal::none) {
    std::stable_sort(plan.jobs.begin(), plan.jobs.end(), [&plan](const TileJob& a, const TileJob& b) {
      if (a.batch != b.batch || a.kv_head != b.kv_head) {
        return std::pair(a.batch, a.kv_head) < std::pair(b.batch, b.kv_head);
      }
      return estimated_keys(plan, a) > estimated_keys(plan, b);
    });
  }
#ifndef NDEBUG
  // The decoding invariant, job by job: slot j is job j, and run g's jobs are chunks 0, 1, ... of
  // one (batch, kv head) and query range, their keys in order.
  for (size_t g = 0; g + 1 < plan.chunk_runs.size(); ++g) {
    const TileJob& run = plan.jobs[static_cast<size_t>(plan.chunk_runs[g])];
    for (int64_t j = plan.chunk_runs[g]; j < plan.chunk_runs[g + 1]; ++j) {
      const TileJob& job = plan.jobs[static_cast<size_t>(j)];
      assert(job.partial == j);
      assert(job.batch == run.batch && job.kv_head == run.kv_head && job.query_begin == run.query_begin);
      assert(job.key_begin == (j - plan.chunk_runs[g]) * key_span);
    }
  }
#endif
  plan.threads = threads_for_call(options.num_threads, static_cast<int64_t>(plan.jobs.size()));
}

// The sizes of a call whose queries are q (or, for weights_v, whose rows are those of
// `rows`: Hq, Sq and the group) and whose keys (or values) have `keys`' heads and length.
void set_sizes(AttentionPlan& plan, const std::array<int64_t, 4>& rows, int64_t head_dim,
               const std::array<int64_t, 4>& keys, int64_t value_dim) {
  plan.batch = rows[0];
  plan.q_heads = rows[1];
  plan.kv_heads = keys[1];
  plan.group = plan.kv_heads > 0 ? plan.q_heads / plan.kv_heads : 1;
  plan.sq = rows[2];
  plan.sk = keys[2];
  plan.head_dim = head_dim;
  plan.value_dim = value_dim;
}

// The empty view of a tensor role a stage does not have (q, k, v, out).
template <class View>
View no_tensor() {
  return anchored_if_empty(View{});
}

// Options of a stage: none but the cache's scales, one pass over all keys (never split).
AttentionOptions stage_options(int num_threads, std::optional<ConstTensorView> k_scale,
                               std::optional<ConstTensorView> v_scale) {
  AttentionOptions options;
  options.num_threads = num_threads;
  options.k_scale = k_scale;
  options.v_scale = v_scale;
  options.algorithm = Algorithm::composed;
  return options;
}

}  // namespace

AttentionPlan make_attention_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                  AnyTensorView out, const AttentionOptions& options) {
  AttentionPlan plan{};
  plan.q = anchored_if_empty(q);
  plan.k = anchored_if_empty(k);
  plan.v = anchored_if_empty(v);
  plan.out = anchored_if_empty(out);
  set_sizes(plan, q.shape, q.shape[3], k.shape, v.shape[3]);
  set_options(plan, options);
  cut_into_work_items(plan, options);
  return plan;
}

AttentionPlan make_batch_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                              AnyTensorView out, const AttentionOptions& options,
                              SequenceTable sequences, int64_t max_keys) {
  AttentionPlan plan{};
  plan.q = anchored_if_empty(q);
  plan.k = anchored_if_empty(k);
  plan.v = anchored_if_empty(v);
  plan.out = anchored_if_empty(out);
  std::array<int64_t, 4> keys = k.shape;
  keys[2] = max_keys;
  set_sizes(plan, q.shape, q.shape[3], keys, v.shape[3]);
  plan.sequences = std::move(sequences);
  set_options(plan, options);
  plan.query_starts = plan.sequences.query_starts.data();
  plan.key_starts = plan.sequences.key_starts.empty() ? nullptr : plan.sequences.key_starts.data();
  plan.kv_lengths = plan.sequences.key_lengths.data();
  plan.block_table = plan.sequences.block_table;
  plan.table_stride = plan.sequences.table_stride;
  plan.page_rows = plan.sequences.page_rows;
  cut_into_work_items(plan, options);
  return plan;
}

AttentionPlan make_qk_scores_plan(AnyConstTensorView q, AnyConstTensorView k, TensorView scores,
                                  float scale, int num_threads,
                                  std::optional<ConstTensorView> k_scale) {
  AttentionPlan plan{};
  plan.q = anchored_if_empty(q);
  plan.k = anchored_if_empty(k);
  plan.v = no_tensor<AnyConstTensorView>();
  plan.out = no_tensor<AnyTensorView>();
  plan.scores = scores;
  set_sizes(plan, q.shape, q.shape[3], k.shape, 0);
  AttentionOptions options = stage_options(num_threads, k_scale, std::nullopt);
  options.scale = scale;
  set_options(plan, options);
  cut_into_work_items(plan, options);
  return plan;
}

AttentionPlan make_weights_v_plan(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out,
                                  int num_threads, std::optional<ConstTensorView> v_scale) {
  AttentionPlan plan{};
  plan.q = no_tensor<AnyConstTensorView>();
  plan.k = no_tensor<AnyConstTensorView>();
  plan.v = anchored_if_empty(v);
  plan.out = anchored_if_empty(out);
  plan.probabilities = weights;
  // No logits: head_dim 0 (which also picks the tile shape of the narrowest heads).
  set_sizes(plan, weights.shape, 0, v.shape, v.shape[3]);
  const AttentionOptions options = stage_options(num_threads, std::nullopt, v_scale);
  set_options(plan, options);
  cut_into_work_items(plan, options);
  return plan;
}

ScopedKeyBlockOverride::ScopedKeyBlockOverride(int64_t key_block) : previous_(key_block_override) {
  key_block_override = key_block;
}

ScopedKeyBlockOverride::~ScopedKeyBlockOverride() { key_block_override = previous_; }

}  // namespace simdattn::detail

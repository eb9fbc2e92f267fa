// simdattn_attention_varlen and simdattn_attention_paged under the fuzzer. Both take packed
// queries [1, Hq, total_q, D] split by cu_seqlens_q; varlen's keys are packed the same way,
// paged ones live in block pools reached through a block table. The input picks the sequences'
// lengths, may break the offsets or the table in the ways the entries must refuse, and picks the
// per-sequence options (causal, windows, soft-cap, ALiBi, sinks, sink tokens, a mask, lse); the
// call must then agree with reference::attention_varlen / attention_paged (which unpack or
// gather each sequence and run reference::attention on it) within the bounds of
// test_support.hpp. Values are f32: the 16-bit and int8 caches are tests/test_serving.cpp's.
#include "fuzz_serving.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "simdattn/reference.hpp"
#include "simdattn/serving.hpp"
#include "simdattn/simdattn.h"

namespace simdattn::fuzz {
namespace {

// The keys of one sequence: a byte < 240 gives 0-40; above, 1000-1600, which decoding splits
// into chunks (the split-K path and its merge).
int64_t decode_keys(ByteReader& in) {
  const int keys = in.byte();
  return keys < 240 ? keys % 41 : 1000 + (keys - 240) * 40;
}

// Offsets [0, l0, l0 + l1, ...] of the given lengths.
std::vector<int32_t> offsets_of(const std::vector<int64_t>& lengths) {
  std::vector<int32_t> offsets = {0};
  for (int64_t length : lengths) offsets.push_back(static_cast<int32_t>(offsets.back() + length));
  return offsets;
}

// How a call's offsets may be broken (`% 8`): 4, cu_seqlens_q[0] = 1; 5, the second offset of
// cu_seqlens_k (varlen) or of cu_seqlens_q (paged) is -1, so the offsets decrease; 6, the packed
// queries hold one row more than cu_seqlens_q's last entry says. Anything else: valid.
enum Breakage { kFirstNotZero = 4, kDecreasing = 5, kShortTotal = 6 };

// The options both entries take, in the order of tests/fuzz/README.md.
struct BatchOptions {
  simdattn_options c{};
  std::vector<float> slopes, sinks;
  std::vector<int64_t> kv_lengths;
  int mask_kind = 0, mask_broadcast = 0;
  bool use_weights = false, use_lse = false, alias_out_over_q = false;
};

BatchOptions decode_batch_options(ByteReader& in, const Sizes& s, int64_t batch, int64_t longest_keys) {
  BatchOptions o;
  simdattn_options_init(&o.c);
  o.c.scale = decode_scale(in);
  o.c.causal = in.choice(5) - 1;
  o.c.window_left = decode_window(in, longest_keys);
  o.c.window_right = decode_window(in, longest_keys);
  static constexpr float kSoftcaps[] = {0.0f, 0.0f, 0.0f, 0.0f, 5.0f, 0.5f, -1.0f, std::numeric_limits<float>::quiet_NaN()};
  o.c.softcap = kSoftcaps[in.choice(8)];
  if (in.choice(3) == 2) {
    static constexpr float kSlopes[] = {0.5f, 0.25f, 1.0f, 0.0f, -0.5f, 0.125f, kInfinity, std::numeric_limits<float>::quiet_NaN()};
    for (int64_t h = 0; h < s.q_heads; ++h) o.slopes.push_back(kSlopes[in.choice(8)]);
  }
  o.sinks = decode_sinks(in, s.q_heads);
  o.c.sink_tokens = decode_sink_tokens(in);
  // kv_lengths and weights belong to attention() alone: passing them must be refused.
  if (in.choice(8) == 7) o.kv_lengths.assign(static_cast<size_t>(std::max<int64_t>(batch, 1)), 0);
  o.mask_kind = in.choice(4);  // 0, 1: none; 2: [1, Hq, total_q, max_k]; 3: broadcast
  if (o.mask_kind == 3) o.mask_broadcast = in.byte();
  o.use_weights = in.choice(8) == 7;
  o.use_lse = in.choice(2) == 1;
  o.c.algorithm = in.choice(5) - 1;
  o.c.num_threads = in.choice(6) - 1;
  o.alias_out_over_q = in.choice(16) == 15;
  o.c.alibi_slopes = o.slopes.empty() ? nullptr : o.slopes.data();
  o.c.sinks = o.sinks.empty() ? nullptr : o.sinks.data();
  o.c.kv_lengths = o.kv_lengths.empty() ? nullptr : o.kv_lengths.data();
  return o;
}

// Whether the options alone must be refused, whatever the tensors.
bool options_refused(const BatchOptions& o) {
  const simdattn_options& c = o.c;
  bool refused = c.causal < 0 || c.causal > 2 || c.algorithm < 0 || c.algorithm > 2 || c.num_threads < 0;
  refused |= !std::isfinite(c.scale) || !std::isfinite(c.softcap) || c.softcap < 0.0f;
  refused |= c.window_left < -1 || c.window_right < -1 || c.sink_tokens < 0;
  for (float slope : o.slopes) refused |= !std::isfinite(slope);
  refused |= sinks_refused(o.sinks) || c.kv_lengths != nullptr || o.use_weights;
  return refused;
}

// The optional tensors of a batch call: mask [1, Hq|1, total_q|1, max_k], weights (refused) and
// lse [1, Hq, total_q, 1]. Returns false when a view or an option array is too large to run.
struct BatchOutputs {
  FuzzTensor mask, weights, lse;
};
bool decode_batch_tensors(ByteReader& in, const Sizes& s, const FuzzTensor& q, int64_t total_q,
                          int64_t max_keys, BatchOptions& o, BatchOutputs& t) {
  // Per-head arrays as long as the heads q claims (see cover); kv_lengths is refused unread.
  if (!cover(o.slopes, q.c.shape[1], 0.5f) || !cover(o.sinks, q.c.shape[1], -kInfinity)) return false;
  o.c.alibi_slopes = o.slopes.empty() ? nullptr : o.slopes.data();
  o.c.sinks = o.sinks.empty() ? nullptr : o.sinks.data();
  if (o.mask_kind >= 2) {
    const Shape shape = {1, o.mask_broadcast & 2 ? 1 : s.q_heads, o.mask_broadcast & 4 ? 1 : total_q, max_keys};
    if (!decode_tensor(in, shape, Role::mask, Values::mask, t.mask)) return false;
    o.c.mask = &t.mask.c;
  }
  if (o.use_weights) {
    if (!decode_tensor(in, {1, s.q_heads, total_q, max_keys}, Role::output, Values::finite, t.weights)) return false;
    o.c.weights = &t.weights.c;
  }
  if (o.use_lse) {
    if (!decode_tensor(in, {1, s.q_heads, total_q, 1}, Role::output, Values::finite, t.lse)) return false;
    o.c.lse = &t.lse.c;
  }
  return true;
}

// The oracle's options for the same call; lse written into `expected_lse`.
AttentionOptions oracle_options(const BatchOptions& o, const BatchOutputs& t, std::vector<float>& expected_lse) {
  AttentionOptions options;
  if (o.c.scale != 0.0f) options.scale = o.c.scale;
  options.causal = static_cast<Causal>(o.c.causal);
  options.window_left = o.c.window_left;
  options.window_right = o.c.window_right;
  options.softcap = o.c.softcap;
  options.alibi_slopes = o.c.alibi_slopes;
  options.sinks = o.c.sinks;
  options.sink_tokens = o.c.sink_tokens;
  options.algorithm = static_cast<Algorithm>(o.c.algorithm);
  if (o.c.mask != nullptr) options.mask = t.mask.view();
  if (o.c.lse != nullptr) options.lse = t.lse.view_over(expected_lse);
  return options;
}

// out and lse against the oracle's, within test_support.hpp's bounds for the longest sequence:
// logits up to scale · dot_magnitude over every block (capped by the soft-cap), plus the ALiBi
// distance (at most total_q + max_keys) and the largest finite mask value; a sink is one more
// logit and term.
void expect_batch_close(const char* function, const BatchOptions& o, const BatchOutputs& t,
                        const FuzzTensor& q, const FuzzTensor& k, const FuzzTensor& v, const FuzzTensor& out,
                        const std::vector<float>& expected_out, const std::vector<float>& expected_lse,
                        int64_t max_keys) {
  const int64_t head_dim = q.c.shape[3];
  const double scale = o.c.scale != 0.0f ? std::fabs(o.c.scale) : 1.0 / std::sqrt(double(float(head_dim)));
  double logits = scale * dot_magnitude(q, k, /*every_key_batch=*/true);
  if (o.c.softcap > 0.0f) logits = std::min(logits, double(o.c.softcap));
  double steepest = 0.0;
  for (float slope : o.slopes) steepest = std::max(steepest, std::fabs(double(slope)));
  logits += steepest * double(q.c.shape[2] + max_keys);
  if (o.c.mask != nullptr) logits += max_finite_magnitude(t.mask);
  int64_t terms = max_keys;
  if (o.c.sinks != nullptr) {
    logits = std::max(logits, sink_magnitude(o.sinks));
    terms += 1;
  }
  const std::string name(function);
  expect_close(name + " out", out, expected_out, attention_tolerance(logits, head_dim, terms, max_finite_magnitude(v)));
  if (o.c.lse != nullptr) expect_close(name + " lse", t.lse, expected_lse, lse_tolerance(logits, head_dim, terms));
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// simdattn_attention_varlen
// ------------------------------------------------------------------------------------------------

int fuzz_attention_varlen(ByteReader& in, const Sizes& s) {
  const int64_t batch = in.choice(5);
  std::vector<int64_t> query_lengths, key_lengths;
  for (int64_t b = 0; b < batch; ++b) {
    query_lengths.push_back(in.choice(6));
    key_lengths.push_back(decode_keys(in));
  }
  std::vector<int32_t> cu_q = offsets_of(query_lengths), cu_k = offsets_of(key_lengths);
  const int64_t max_keys = key_lengths.empty() ? 0 : *std::max_element(key_lengths.begin(), key_lengths.end());
  int64_t total_q = cu_q.back();
  const int64_t total_k = cu_k.back();
  const int breakage = in.choice(8);
  if (breakage == kFirstNotZero) cu_q[0] = 1;
  if (breakage == kDecreasing && batch >= 1) cu_k[1] = -1;
  if (breakage == kShortTotal) total_q += 1;
  const bool broken_offsets = breakage == kFirstNotZero || (breakage == kDecreasing && batch >= 1) ||
                              breakage == kShortTotal;

  BatchOptions o = decode_batch_options(in, s, batch, max_keys);
  FuzzTensor q, k, v, out;
  BatchOutputs t;
  if (!decode_tensor(in, {1, s.q_heads, total_q, s.head_dim}, Role::input, Values::specials, q) ||
      !decode_tensor(in, {1, s.kv_heads, total_k, s.head_dim}, Role::input, Values::specials, k) ||
      !decode_tensor(in, {1, s.kv_heads, total_k, s.value_dim}, Role::input, Values::finite, v) ||
      !decode_tensor(in, {1, s.q_heads, total_q, s.value_dim}, Role::output, Values::finite, out) ||
      !decode_batch_tensors(in, s, q, total_q, max_keys, o, t)) {
    return 0;
  }
  const bool aliased = o.alias_out_over_q && alias(out, q);
  bool must_reject = q.must_reject || k.must_reject || v.must_reject || out.must_reject || aliased ||
                     broken_offsets || options_refused(o);
  must_reject |= (o.c.mask != nullptr && t.mask.must_reject) || (o.c.lse != nullptr && t.lse.must_reject);

  const Snapshot inputs({&q, &k, &v, &t.mask}), outputs({&out, &t.weights, &t.lse});
  const simdattn_status status =
      simdattn_attention_varlen(&q.c, &k.c, &v.c, &out.c, cu_q.data(), cu_k.data(), batch, &o.c);
  check_status("simdattn_attention_varlen", status, must_reject, false);
  inputs.expect_unchanged("simdattn_attention_varlen changed an input");
  if (status != SIMDATTN_OK) outputs.expect_unchanged("simdattn_attention_varlen failed and wrote an output");
  if (must_reject) return 0;

  std::vector<float> expected_out = out.storage, expected_lse = t.lse.storage;
  const AttentionOptions options = oracle_options(o, t, expected_lse);
  const auto oracle_error = oracle_error_of([&] {
    reference::attention_varlen(q.view(), k.view(), v.view(), out.view_over(expected_out), cu_q.data(),
                                cu_k.data(), batch, options);
  });
  check_verdicts("simdattn_attention_varlen", status, oracle_error);
  if (status != SIMDATTN_OK) return 0;
  expect_batch_close("simdattn_attention_varlen", o, t, q, k, v, out, expected_out, expected_lse, max_keys);
  return 0;
}

// ------------------------------------------------------------------------------------------------
// simdattn_attention_paged
// ------------------------------------------------------------------------------------------------

int fuzz_attention_paged(ByteReader& in, const Sizes& s) {
  const int64_t batch = in.choice(5);
  // Block sizes 1-20 (16 among them, and sizes that are not powers of two), or 64-1024 so that a
  // sequence of a few blocks reaches the keys where decoding splits.
  const int size_byte = in.byte();
  const int64_t block_size = size_byte < 240 ? 1 + size_byte % 20 : int64_t{64} * (size_byte - 239);
  const int64_t num_blocks = in.choice(12);
  const int64_t blocks_per_sequence = in.choice(6);
  const int64_t capacity = blocks_per_sequence * block_size;
  // Per sequence: its queries, then its cached keys (two bytes), up to one more than its row of
  // the table holds (refused).
  std::vector<int64_t> query_lengths;
  std::vector<int32_t> seq_lens;
  bool must_reject = false;
  for (int64_t b = 0; b < batch; ++b) {
    query_lengths.push_back(in.choice(6));
    const int low = in.byte();
    const int64_t keys = (low | in.byte() << 8) % (capacity + 2);
    must_reject |= keys > capacity;
    seq_lens.push_back(static_cast<int32_t>(keys));
  }
  // The table: an entry of num_blocks is past the pools, num_blocks + 1 means -1; either is
  // refused where a sequence reads it (entries past a sequence's last block are not read).
  std::vector<int32_t> table(static_cast<size_t>(std::max<int64_t>(batch * blocks_per_sequence, 1)), 0);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t used = (seq_lens[b] + block_size - 1) / block_size;
    for (int64_t i = 0; i < blocks_per_sequence; ++i) {
      const int64_t entry = in.choice(static_cast<int>(num_blocks) + 2);
      const int32_t block = entry == num_blocks + 1 ? -1 : static_cast<int32_t>(entry);
      table[b * blocks_per_sequence + i] = block;
      must_reject |= i < used && (block < 0 || block >= num_blocks);
    }
  }
  std::vector<int32_t> cu_q = offsets_of(query_lengths);
  int64_t total_q = cu_q.back();
  const int breakage = in.choice(8);
  if (breakage == kFirstNotZero) cu_q[0] = 1;
  if (breakage == kDecreasing && batch >= 1) cu_q[1] = -1;
  if (breakage == kShortTotal) total_q += 1;
  must_reject |= breakage == kFirstNotZero || (breakage == kDecreasing && batch >= 1) || breakage == kShortTotal;
  int64_t max_keys = 0;
  for (int32_t keys : seq_lens) max_keys = std::max<int64_t>(max_keys, keys);

  BatchOptions o = decode_batch_options(in, s, batch, max_keys);
  // The pools [num_blocks, Hkv, block_size, D]; the tensor layout 5 gives the other pool layout,
  // [num_blocks, block_size, Hkv, D] in memory.
  FuzzTensor q, k_pages, v_pages, out;
  BatchOutputs t;
  if (!decode_tensor(in, {1, s.q_heads, total_q, s.head_dim}, Role::input, Values::specials, q) ||
      !decode_tensor(in, {num_blocks, s.kv_heads, block_size, s.head_dim}, Role::input, Values::specials, k_pages) ||
      !decode_tensor(in, {num_blocks, s.kv_heads, block_size, s.value_dim}, Role::input, Values::finite, v_pages) ||
      !decode_tensor(in, {1, s.q_heads, total_q, s.value_dim}, Role::output, Values::finite, out) ||
      !decode_batch_tensors(in, s, q, total_q, max_keys, o, t)) {
    return 0;
  }
  const bool aliased = o.alias_out_over_q && alias(out, q);
  must_reject |= q.must_reject || k_pages.must_reject || v_pages.must_reject || out.must_reject || aliased ||
                 options_refused(o);
  must_reject |= (o.c.mask != nullptr && t.mask.must_reject) || (o.c.lse != nullptr && t.lse.must_reject);

  simdattn_paged_cache cache{};
  cache.k_pages = &k_pages.c;
  cache.v_pages = &v_pages.c;
  cache.block_table = table.data();
  cache.blocks_per_sequence = blocks_per_sequence;
  cache.seq_lens = seq_lens.empty() ? nullptr : seq_lens.data();
  const Snapshot inputs({&q, &k_pages, &v_pages, &t.mask}), outputs({&out, &t.weights, &t.lse});
  const simdattn_status status = simdattn_attention_paged(&q.c, &cache, &out.c, cu_q.data(), batch, &o.c);
  check_status("simdattn_attention_paged", status, must_reject, false);
  inputs.expect_unchanged("simdattn_attention_paged changed an input");
  if (status != SIMDATTN_OK) outputs.expect_unchanged("simdattn_attention_paged failed and wrote an output");
  if (must_reject) return 0;

  PagedCache oracle_cache;
  oracle_cache.k_pages = k_pages.view();
  oracle_cache.v_pages = v_pages.view();
  oracle_cache.block_table = table.data();
  oracle_cache.blocks_per_sequence = blocks_per_sequence;
  oracle_cache.seq_lens = cache.seq_lens;
  std::vector<float> expected_out = out.storage, expected_lse = t.lse.storage;
  const AttentionOptions options = oracle_options(o, t, expected_lse);
  const auto oracle_error = oracle_error_of([&] {
    reference::attention_paged(q.view(), oracle_cache, out.view_over(expected_out), cu_q.data(), batch, options);
  });
  check_verdicts("simdattn_attention_paged", status, oracle_error);
  if (status != SIMDATTN_OK) return 0;
  expect_batch_close("simdattn_attention_paged", o, t, q, k_pages, v_pages, out, expected_out, expected_lse, max_keys);
  return 0;
}

}  // namespace simdattn::fuzz

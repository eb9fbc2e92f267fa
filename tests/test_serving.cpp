// Packed batches (attention_varlen) and paged caches (attention_paged) on every ISA the host
// runs: mixed sequence lengths (empty ones, a single key, prefill, chunked prefill, decoding with
// split keys), block sizes 1, 16, 24, 32 and 128, shuffled and shared blocks, every cache dtype,
// and the options that apply per sequence, against the gathering oracles; the oracles against
// each other (a paged cache and the same keys packed give the same bits); chunks of a prefill
// against the whole; thread-count invariance; and every bad argument named, nothing written.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "simdattn/reference.hpp"
#include "simdattn/simdattn.h"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Sequence {
  int64_t queries, keys;
};

struct ServingCase {
  std::string name;
  std::vector<Sequence> sequences;
  int64_t q_heads = 4, kv_heads = 2, head_dim = 32;
  DType dtype = DType::f32;
  bool bf16_queries = false;  // q stored in bf16 too (with a bf16 cache: the AMX tile's inputs)
  int64_t groups = 1;         // i8: scales per row
  int64_t block_size = 16;    // 0: packed keys (attention_varlen)
  bool blocks_by_token = false;  // pools [num_blocks, block_size, Hkv, D] in memory
  bool shared_prefix = false;    // sequence 1 reuses sequence 0's first blocks
  Causal causal = Causal::bottom_right;
  int64_t window_left = -1, window_right = -1, sink_tokens = 0;
  std::vector<float> sinks;  // cycled over the heads; empty: off
  float softcap = 0.0f;
  bool alibi = false, mask = false;
};

int64_t total_queries(const ServingCase& c) {
  int64_t total = 0;
  for (const Sequence& s : c.sequences) total += s.queries;
  return total;
}
int64_t total_keys(const ServingCase& c) {
  int64_t total = 0;
  for (const Sequence& s : c.sequences) total += s.keys;
  return total;
}
int64_t longest_keys(const ServingCase& c) {
  int64_t longest = 0;
  for (const Sequence& s : c.sequences) longest = std::max(longest, s.keys);
  return longest;
}

// A cache stored as `dtype`: bytes in the fp32 tensor's layout, and the scales of an int8 one.
struct StoredCache {
  std::vector<unsigned char> bytes;
  AnyConstTensorView view;
  std::optional<Tensor> scales;

  StoredCache(const Tensor& values, DType dtype, int64_t groups) {
    const auto& s = values.view.shape;
    bytes.assign(values.storage.size() * static_cast<size_t>(dtype_size(dtype)), 0);
    AnyTensorView stored(bytes.data(), dtype, s, values.view.strides);
    if (dtype == DType::i8) {
      scales.emplace(s[0], s[1], s[2], groups);
      quantize_rows(values.in(), BasicTensorView<int8_t>(static_cast<int8_t*>(stored.data), s, stored.strides),
                    scales->view);
    } else {
      convert(values.in(), stored);
    }
    view = stored;
  }
  std::optional<ConstTensorView> scale_view() const {
    if (!scales.has_value()) return std::nullopt;
    return scales->in();
  }
};

// Every input of a case: packed queries, the keys and values both packed (for attention_varlen
// and the cross-check) and paged (pools whose unused blocks hold values no sequence may read).
struct ServingInputs {
  int64_t batch, total_q, total_k, max_k, num_blocks = 0, blocks_per_sequence = 0;
  std::vector<int32_t> cu_q, cu_k, seq_lens, block_table;
  Tensor q, k, v;                 // packed [1, H, total, D]
  std::optional<Tensor> k_pool, v_pool;
  std::optional<StoredCache> q_stored, k_stored, v_stored, k_pool_stored, v_pool_stored;
  std::optional<Tensor> mask;
  std::vector<float> sinks, slopes;
  AttentionOptions options;

  explicit ServingInputs(const ServingCase& c)
      : batch(static_cast<int64_t>(c.sequences.size())),
        total_q(total_queries(c)),
        total_k(total_keys(c)),
        max_k(longest_keys(c)),
        q(1, c.q_heads, total_queries(c), c.head_dim, Layout::bshd),
        k(1, c.kv_heads, total_keys(c), c.head_dim, Layout::bshd),
        v(1, c.kv_heads, total_keys(c), c.head_dim, Layout::bshd) {
    cu_q.push_back(0);
    cu_k.push_back(0);
    for (const Sequence& s : c.sequences) {
      cu_q.push_back(static_cast<int32_t>(cu_q.back() + s.queries));
      cu_k.push_back(static_cast<int32_t>(cu_k.back() + s.keys));
      seq_lens.push_back(static_cast<int32_t>(s.keys));
    }
    q.fill_uniform(31, -2.0f, 2.0f);
    k.fill_uniform(32, -2.0f, 2.0f);
    v.fill_uniform(33);
    if (c.block_size > 0) page(c);
    if (c.bf16_queries) q_stored.emplace(q, DType::bf16, 1);
    if (c.dtype != DType::f32) {
      k_stored.emplace(k, c.dtype, c.groups);
      v_stored.emplace(v, c.dtype, c.groups);
      if (c.block_size > 0) {
        k_pool_stored.emplace(*k_pool, c.dtype, c.groups);
        v_pool_stored.emplace(*v_pool, c.dtype, c.groups);
      }
    }
    options.causal = c.causal;
    options.window_left = c.window_left;
    options.window_right = c.window_right;
    options.sink_tokens = c.sink_tokens;
    options.softcap = c.softcap;
    if (!c.sinks.empty()) {
      for (int64_t h = 0; h < c.q_heads; ++h) sinks.push_back(c.sinks[h % c.sinks.size()]);
      options.sinks = sinks.data();
    }
    if (c.alibi) {
      for (int64_t h = 0; h < c.q_heads; ++h) slopes.push_back(std::pow(2.0f, -1.0f - float(h)));
      options.alibi_slopes = slopes.data();
    }
    if (c.mask) {
      mask.emplace(1, c.q_heads, total_q, std::max<int64_t>(max_k, 1));
      mask->fill_uniform(34, -3.0f, 3.0f);
      for (int64_t h = 0; h < c.q_heads; ++h)
        for (int64_t i = 0; i < total_q; ++i)
          for (int64_t j = (i + h) % 7; j < max_k; j += 7) mask->at(0, h, i, j) = -kInf;
      AnyConstTensorView view = mask->in();
      view.shape[3] = max_k;
      options.mask = view;
    }
  }

  // Pools with every sequence's blocks in shuffled order, three unused blocks, and (shared
  // prefix) sequence 1's first blocks those of sequence 0, its keys there made equal to them.
  void page(const ServingCase& c) {
    const int64_t bs = c.block_size;
    std::vector<int64_t> blocks_of(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      blocks_of[b] = (seq_lens[b] + bs - 1) / bs;
      blocks_per_sequence = std::max(blocks_per_sequence, blocks_of[b] + 1);  // a spare entry
    }
    int64_t shared = 0;
    if (c.shared_prefix && batch >= 2) shared = std::min(seq_lens[0], seq_lens[1]) / bs;
    const int64_t needed = std::accumulate(blocks_of.begin(), blocks_of.end(), int64_t{0}) - shared;
    num_blocks = needed + 3;
    std::vector<int32_t> order(static_cast<size_t>(num_blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(35));
    // Entries past a sequence's blocks must not be read: out of range.
    block_table.assign(static_cast<size_t>(batch * blocks_per_sequence), -1);
    int64_t next = 0;
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < blocks_of[b]; ++i) {
        const bool reused = b == 1 && i < shared;
        block_table[b * blocks_per_sequence + i] = reused ? block_table[i] : order[next++];
      }
    }
    if (shared > 0) {
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t j = 0; j < shared * bs; ++j)
          for (int64_t d = 0; d < c.head_dim; ++d) {
            k.at(0, h, cu_k[1] + j, d) = k.at(0, h, j, d);
            v.at(0, h, cu_k[1] + j, d) = v.at(0, h, j, d);
          }
    }
    const Layout layout = c.blocks_by_token ? Layout::bshd : Layout::bhsd;
    k_pool.emplace(num_blocks, c.kv_heads, bs, c.head_dim, layout);
    v_pool.emplace(num_blocks, c.kv_heads, bs, c.head_dim, layout);
    // Unused rows: finite (int8 quantizes them) and far too large to go unnoticed if read.
    k_pool->fill(1e6f);
    v_pool->fill(-1e6f);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t j = 0; j < seq_lens[b]; ++j) {
          const int64_t block = block_table[b * blocks_per_sequence + j / bs];
          for (int64_t d = 0; d < c.head_dim; ++d) {
            k_pool->at(block, h, j % bs, d) = k.at(0, h, cu_k[b] + j, d);
            v_pool->at(block, h, j % bs, d) = v.at(0, h, cu_k[b] + j, d);
          }
        }
  }

  AnyConstTensorView q_in() const { return q_stored ? q_stored->view : AnyConstTensorView(q.in()); }
  AnyConstTensorView k_in() const { return k_stored ? k_stored->view : AnyConstTensorView(k.in()); }
  AnyConstTensorView v_in() const { return v_stored ? v_stored->view : AnyConstTensorView(v.in()); }

  PagedCache cache() const {
    PagedCache cache;
    cache.k_pages = k_pool_stored ? k_pool_stored->view : AnyConstTensorView(k_pool->in());
    cache.v_pages = v_pool_stored ? v_pool_stored->view : AnyConstTensorView(v_pool->in());
    if (k_pool_stored) {
      cache.k_scale_pages = k_pool_stored->scale_view();
      cache.v_scale_pages = v_pool_stored->scale_view();
    }
    cache.block_table = block_table.data();
    cache.blocks_per_sequence = blocks_per_sequence;
    cache.seq_lens = seq_lens.data();
    return cache;
  }

  AttentionOptions varlen_options() const {
    AttentionOptions packed = options;
    if (k_stored) {
      packed.k_scale = k_stored->scale_view();
      packed.v_scale = v_stored->scale_view();
    }
    return packed;
  }

  // Bounds |logit| for the error bounds: scale · Σ|q·k| (stored keys within 1% of k's), biases,
  // and the largest finite sink.
  double logit_bound(const ServingCase& c) const {
    double logits = 1.01 * logit_magnitude(q, k, 1.0 / std::sqrt(double(c.head_dim)));
    if (c.softcap > 0) logits = std::min(logits, double(c.softcap));
    if (c.alibi) logits += 0.5 * double(total_q + max_k);
    if (c.mask) logits += 3.0;
    double sink = 0.0;
    for (float s : sinks) {
      if (std::isfinite(s)) sink = std::max(sink, double(std::fabs(s)));
    }
    return std::max(logits, sink);
  }
};

// Runs the fast function (or its oracle) of a case into fresh out and lse.
std::pair<Tensor, Tensor> run(const ServingCase& c, const ServingInputs& in, bool oracle,
                              AttentionOptions options, bool paged) {
  Tensor out(1, c.q_heads, in.total_q, c.head_dim, Layout::bshd), lse(1, c.q_heads, in.total_q, 1);
  options.lse = lse.view;
  const int64_t batch = in.batch;
  if (paged) {
    (oracle ? reference::attention_paged : attention_paged)(in.q_in(), in.cache(), out.view, in.cu_q.data(),
                                                           batch, options);
  } else {
    (oracle ? reference::attention_varlen : attention_varlen)(in.q_in(), in.k_in(), in.v_in(), out.view,
                                                             in.cu_q.data(), in.cu_k.data(), batch, options);
  }
  return {out, lse};
}

std::string describe(detail::Isa isa, const ServingCase& c) {
  std::ostringstream out;
  out << detail::isa_name(isa) << " " << c.name << " " << dtype_name(c.dtype) << " block_size=" << c.block_size
      << " sequences=";
  for (const Sequence& s : c.sequences) out << "(" << s.queries << "," << s.keys << ")";
  return out.str();
}

const std::vector<Sequence> kPrefill = {{17, 40}, {0, 7}, {64, 64}, {5, 300}, {33, 33}, {1, 1}, {3, 0}};
const std::vector<Sequence> kDecode = {{1, 1100}, {1, 64}, {1, 0}, {1, 1}, {2, 2300}, {1, 513}};
const std::vector<Sequence> kChunks = {{40, 300}, {40, 40}, {7, 1030}};
const std::vector<float> kSinks = {0.5f, 0.0f, -kInf, 1e4f, -1e4f};

std::vector<ServingCase> serving_cases() {
  std::vector<ServingCase> all;
  auto add = [&all](std::string name, std::vector<Sequence> sequences, int64_t block_size) -> ServingCase& {
    ServingCase c;
    c.name = std::move(name);
    c.sequences = std::move(sequences);
    c.block_size = block_size;
    all.push_back(c);
    return all.back();
  };
  for (int64_t bs : {0, 1, 16, 24, 32, 128}) {
    add("prefill", kPrefill, bs);
    add("decode", kDecode, bs);
    add("chunks", kChunks, bs);
  }
  add("shared_prefix", {{9, 100}, {4, 90}, {1, 2}}, 16).shared_prefix = true;
  add("shared_prefix_decode", {{1, 1500}, {1, 1400}}, 32).shared_prefix = true;
  add("by_token", kPrefill, 16).blocks_by_token = true;
  add("by_token_decode", kDecode, 16).blocks_by_token = true;
  for (DType dtype : {DType::bf16, DType::f16, DType::i8}) {
    for (int64_t bs : {0, 16, 24}) {
      add("prefill", kPrefill, bs).dtype = dtype;
      add("decode", kDecode, bs).dtype = dtype;
    }
  }
  // bf16 queries over a bf16 cache, the fused tile's AMX inputs (uses_pair_tiles): packed keys,
  // pages of 16 (a tile's group of keys crosses no page), 24 (groups cross pages) and 48, with
  // the biases, sinks and windows that act on its scores.
  for (int64_t bs : {0, 16, 24, 48}) {
    ServingCase& prefill = add("prefill_bf16q", kPrefill, bs);
    prefill.dtype = DType::bf16, prefill.bf16_queries = true;
    ServingCase& chunks = add("chunks_bf16q", kChunks, bs);
    chunks.dtype = DType::bf16, chunks.bf16_queries = true, chunks.q_heads = 8, chunks.head_dim = 64;
    ServingCase& biases = add("softcap_alibi_mask_bf16q", kPrefill, bs);
    biases.dtype = DType::bf16, biases.bf16_queries = true;
    biases.softcap = 8.0f, biases.alibi = true, biases.mask = true;
    ServingCase& window = add("window_sinks_bf16q", kChunks, bs);
    window.dtype = DType::bf16, window.bf16_queries = true, window.sinks = kSinks;
    window.window_left = 50, window.window_right = 0, window.sink_tokens = 4;
  }
  {
    ServingCase& c = add("decode_q8_0", kDecode, 32);
    c.dtype = DType::i8, c.groups = 1, c.head_dim = 64;
    c.groups = 2;  // 32-element groups, as ggml's q8_0
  }
  // Enough decoding work items for key chunks of 2048 (blocking.hpp; the last sequence, keys but
  // no query, is not one), each sequence's last chunk 4 keys.
  std::vector<Sequence> long_chunks(15, Sequence{1, 4100});
  long_chunks.push_back({0, 4100});
  for (int64_t bs : {0, 16}) add("decode_long_chunks", long_chunks, bs);
  for (int64_t bs : {0, 16}) {
    ServingCase& sinks = add("sinks", kChunks, bs);
    sinks.sinks = kSinks;
    ServingCase& decode_sinks = add("decode_sinks", kDecode, bs);
    decode_sinks.sinks = kSinks;
    ServingCase& window = add("window_sink_tokens", kChunks, bs);
    window.window_left = 50, window.window_right = 0, window.sink_tokens = 4;
    ServingCase& decode_window = add("decode_window", kDecode, bs);
    decode_window.window_left = 700, decode_window.window_right = 0, decode_window.sink_tokens = 5;
    ServingCase& biases = add("softcap_alibi_mask", kPrefill, bs);
    biases.softcap = 8.0f, biases.alibi = true, biases.mask = true;
    ServingCase& decode_biases = add("decode_alibi_mask", kDecode, bs);
    decode_biases.alibi = true, decode_biases.mask = true;
    add("top_left", kChunks, bs).causal = Causal::top_left;
    ServingCase& none = add("no_causal_mqa", kChunks, bs);
    none.causal = Causal::none, none.kv_heads = 1, none.head_dim = 40;
  }
  return all;
}

class Serving : public ::testing::TestWithParam<std::tuple<detail::Isa, ServingCase>> {};

TEST_P(Serving, MatchesOracle) {
  const auto& [isa, c] = GetParam();
  const ServingInputs in(c);
  const bool paged = c.block_size > 0;
  const AttentionOptions options = paged ? in.options : in.varlen_options();
  const auto [expected, expected_lse] = run(c, in, /*oracle=*/true, options, paged);
  std::pair<Tensor, Tensor> actual = [&] {
    detail::ScopedIsaOverride use(isa);
    return run(c, in, /*oracle=*/false, options, paged);
  }();
  const double logits = in.logit_bound(c);
  double tolerance = attention_tolerance(logits, c.head_dim, in.max_k + 1, max_magnitude(in.v));
  // The pair tile rounds the weights to bf16 from a coarser 2^x (README, Guarantees; kAmxWeightError).
  if (c.bf16_queries && c.dtype == DType::bf16 && multiplies_bf16_pairs(isa)) {
    tolerance += kAmxWeightError * max_magnitude(in.v);
  }
  EXPECT_TRUE(all_close(expected, actual.first, tolerance, describe(isa, c)));
  EXPECT_TRUE(all_close(expected_lse, actual.second, lse_tolerance(logits, c.head_dim, in.max_k + 1),
                        describe(isa, c) + " lse"));
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<detail::Isa, ServingCase>>& info) {
  const auto& [isa, c] = info.param;
  std::ostringstream name;
  name << detail::isa_name(isa) << "_" << c.name << "_" << dtype_name(c.dtype);
  if (c.groups > 1) name << "_groups" << c.groups;
  name << (c.block_size > 0 ? "_paged" + std::to_string(c.block_size) : std::string("_packed"));
  if (c.blocks_by_token) name << "_bshd";
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(AllCases, Serving,
                         ::testing::Combine(::testing::ValuesIn(host_isas()), ::testing::ValuesIn(serving_cases())),
                         case_name);

// The gathering oracle and the packed one see the same keys as stored: the same bits.
TEST(ServingOracles, PagedAndPackedAgreeBitwise) {
  for (const ServingCase& c : serving_cases()) {
    if (c.block_size == 0) continue;
    const ServingInputs in(c);
    const auto [paged, paged_lse] = run(c, in, /*oracle=*/true, in.options, /*paged=*/true);
    ServingInputs packed_in(c);
    const auto [packed, packed_lse] = run(c, packed_in, /*oracle=*/true, packed_in.varlen_options(), /*paged=*/false);
    EXPECT_TRUE(bitwise_equal(paged, packed)) << c.name << " block_size " << c.block_size;
    EXPECT_TRUE(bitwise_equal(paged_lse, packed_lse)) << c.name << " block_size " << c.block_size;
  }
}

// A packed oracle call is attention() per sequence; check it once against a hand-made batch.
// The packed oracle against reference::attention on each sequence copied out alone. The totals
// of 1 (one query, or one key, in the whole batch) beside an empty sequence caught an oracle that
// took a packed view of one row for a broadcast one (found by the fuzzer).
TEST(ServingOracles, PackedOracleIsAttentionPerSequence) {
  const std::vector<std::vector<Sequence>> batches = {
      {{3, 5}, {2, 9}}, {{1, 26}, {0, 26}}, {{0, 7}, {1, 7}}, {{2, 1}, {1, 0}}, {{1, 1}, {0, 0}}};
  for (const std::vector<Sequence>& sequences : batches) {
    SCOPED_TRACE(::testing::Message() << "first sequence " << sequences[0].queries << " x " << sequences[0].keys
                                      << ", second " << sequences[1].queries << " x " << sequences[1].keys);
    ServingCase c;
    c.sequences = sequences;
    c.block_size = 0;
    const ServingInputs in(c);
    const auto [out, lse] = run(c, in, /*oracle=*/true, in.options, /*paged=*/false);
    for (int64_t b = 0; b < 2; ++b) {
      const int64_t queries = c.sequences[b].queries, keys = c.sequences[b].keys;
      Tensor q(1, c.q_heads, queries, c.head_dim), k(1, c.kv_heads, keys, c.head_dim), v = k;
      for (int64_t h = 0; h < c.q_heads; ++h)
        for (int64_t i = 0; i < queries; ++i)
          for (int64_t d = 0; d < c.head_dim; ++d) q.at(0, h, i, d) = in.q.at(0, h, in.cu_q[b] + i, d);
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t j = 0; j < keys; ++j)
          for (int64_t d = 0; d < c.head_dim; ++d) {
            k.at(0, h, j, d) = in.k.at(0, h, in.cu_k[b] + j, d);
            v.at(0, h, j, d) = in.v.at(0, h, in.cu_k[b] + j, d);
          }
      Tensor expected(1, c.q_heads, queries, c.head_dim);
      AttentionOptions options = in.options;
      reference::attention(q.in(), k.in(), v.in(), expected.view, options);
      for (int64_t h = 0; h < c.q_heads; ++h)
        for (int64_t i = 0; i < queries; ++i)
          for (int64_t d = 0; d < c.head_dim; ++d)
            EXPECT_EQ(expected.at(0, h, i, d), out.at(0, h, in.cu_q[b] + i, d)) << b << " " << h << " " << i;
    }
  }
}

class ServingProperties : public ::testing::TestWithParam<detail::Isa> {};

// Decoding a batch splits keys across threads; the bits never depend on how many.
TEST_P(ServingProperties, DecodingIsThreadInvariant) {
  detail::ScopedIsaOverride use(GetParam());
  for (int64_t bs : {0, 16}) {
    ServingCase c;
    c.sequences = kDecode;
    c.block_size = bs;
    c.sinks = kSinks;
    const ServingInputs in(c);
    std::optional<std::pair<Tensor, Tensor>> first;
    for (int threads : {1, 2, 3, 7}) {
      AttentionOptions options = bs > 0 ? in.options : in.varlen_options();
      options.num_threads = threads;
      auto result = run(c, in, /*oracle=*/false, options, bs > 0);
      if (!first) {
        first.emplace(std::move(result));
        continue;
      }
      EXPECT_TRUE(bitwise_equal(first->first, result.first)) << "threads " << threads << " block " << bs;
      EXPECT_TRUE(bitwise_equal(first->second, result.second)) << "threads " << threads << " block " << bs;
    }
  }
}

// Chunked prefill: a prompt's queries in chunks, each over the keys cached so far, give the rows
// of one call over the whole prompt.
TEST_P(ServingProperties, ChunkedPrefillMatchesOneCall) {
  detail::ScopedIsaOverride use(GetParam());
  ServingCase whole;
  whole.sequences = {{300, 300}};
  whole.block_size = 16;
  const ServingInputs in(whole);
  const auto [expected, expected_lse] = run(whole, in, /*oracle=*/false, in.options, /*paged=*/true);
  const double logits = in.logit_bound(whole);
  const double out_tolerance = 2 * attention_tolerance(logits, whole.head_dim, 301, max_magnitude(in.v));
  for (int64_t chunk : {1, 37, 128}) {
    for (int64_t first = 0; first < 300; first += chunk) {
      const int64_t count = std::min<int64_t>(chunk, 300 - first);
      // The chunk's queries, over the first + count keys cached so far (the same blocks).
      std::vector<int32_t> cu_q = {0, static_cast<int32_t>(count)}, seq_lens = {static_cast<int32_t>(first + count)};
      Tensor q(1, whole.q_heads, count, whole.head_dim, Layout::bshd), out = q;
      Tensor lse(1, whole.q_heads, count, 1);
      for (int64_t h = 0; h < whole.q_heads; ++h)
        for (int64_t i = 0; i < count; ++i)
          for (int64_t d = 0; d < whole.head_dim; ++d) q.at(0, h, i, d) = in.q.at(0, h, first + i, d);
      PagedCache cache = in.cache();
      cache.seq_lens = seq_lens.data();
      AttentionOptions options = in.options;
      options.lse = lse.view;
      attention_paged(q.in(), cache, out.view, cu_q.data(), 1, options);
      for (int64_t h = 0; h < whole.q_heads; ++h)
        for (int64_t i = 0; i < count; ++i) {
          for (int64_t d = 0; d < whole.head_dim; ++d) {
            ASSERT_NEAR(expected.at(0, h, first + i, d), out.at(0, h, i, d), out_tolerance)
                << "chunk " << chunk << " row " << first + i;
          }
          ASSERT_NEAR(expected_lse.at(0, h, first + i, 0), lse.at(0, h, i, 0), 2 * lse_tolerance(logits, whole.head_dim, 301));
        }
    }
  }
}

// A packed prefill gives each sequence what attention() gives it alone.
TEST_P(ServingProperties, PackedMatchesOneCallPerSequence) {
  detail::ScopedIsaOverride use(GetParam());
  ServingCase c;
  c.sequences = kPrefill;
  c.block_size = 0;
  const ServingInputs in(c);
  const auto [packed, packed_lse] = run(c, in, /*oracle=*/false, in.options, /*paged=*/false);
  const double logits = in.logit_bound(c), values = max_magnitude(in.v);
  for (int64_t b = 0; b < in.batch; ++b) {
    const int64_t queries = c.sequences[b].queries, keys = c.sequences[b].keys;
    ConstTensorView q = in.q.in(), k = in.k.in(), v = in.v.in();
    q.data = q.row(0, 0, in.cu_q[b]), q.shape[2] = queries;
    k.data = k.row(0, 0, in.cu_k[b]), k.shape[2] = keys;
    v.data = v.row(0, 0, in.cu_k[b]), v.shape[2] = keys;
    Tensor out(1, c.q_heads, queries, c.head_dim);
    attention(q, k, v, out.view, in.options);
    for (int64_t h = 0; h < c.q_heads; ++h)
      for (int64_t i = 0; i < queries; ++i)
        for (int64_t d = 0; d < c.head_dim; ++d)
          ASSERT_NEAR(out.at(0, h, i, d), packed.at(0, h, in.cu_q[b] + i, d),
                      2 * attention_tolerance(logits, c.head_dim, keys + 1, values));
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ServingProperties, ::testing::ValuesIn(host_isas()), isa_test_name);

// --- Bad input: a clear error, nothing written ---

// Expects `call` to throw std::invalid_argument whose message contains every fragment, with out
// left as it was.
template <class Call>
void expect_rejected(Call&& call, Tensor& out, std::vector<std::string> fragments) {
  out.fill(7.0f);
  try {
    call();
    ADD_FAILURE() << "no exception; expected one mentioning " << fragments.front();
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos) << "message: " << message << "\nmissing: " << fragment;
    }
  }
  bool untouched = true;
  out.for_each([&](float& x) { untouched = untouched && x == 7.0f; });
  EXPECT_TRUE(untouched) << fragments.front();
}

struct BadInputFixture {
  ServingCase c;
  ServingInputs in;
  Tensor out;
  BadInputFixture() : c(make_case()), in(c), out(1, c.q_heads, in.total_q, c.head_dim, Layout::bshd) {}
  static ServingCase make_case() {
    ServingCase c;
    c.sequences = {{3, 20}, {1, 40}};
    c.block_size = 16;
    return c;
  }
  void paged(const PagedCache& cache, const std::vector<int32_t>& cu_q, const AttentionOptions& options = {}) {
    attention_paged(in.q.in(), cache, out.view, cu_q.data(), in.batch, options);
  }
};

TEST(ServingBadInput, PagedArgumentsAreNamed) {
  BadInputFixture f;
  const std::vector<int32_t>& cu = f.in.cu_q;
  {
    PagedCache cache = f.in.cache();
    std::vector<int32_t> table = f.in.block_table;
    table[f.in.blocks_per_sequence + 1] = static_cast<int32_t>(f.in.num_blocks);
    cache.block_table = table.data();
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"cache.block_table[1, 1]", "num_blocks", std::to_string(f.in.num_blocks)});
    table[f.in.blocks_per_sequence + 1] = -1;
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"cache.block_table[1, 1]", "got -1"});
  }
  {
    PagedCache cache = f.in.cache();
    std::vector<int32_t> lens = {20, static_cast<int32_t>(f.in.blocks_per_sequence * 16 + 1)};
    cache.seq_lens = lens.data();
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"cache.seq_lens[1]", "blocks_per_sequence"});
    lens = {-1, 40};
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"cache.seq_lens[0]", ">= 0"});
  }
  {
    PagedCache cache = f.in.cache();
    cache.blocks_per_sequence = 1;  // a table too short for 40 keys in blocks of 16
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"cache.seq_lens[0]", "at most"});
  }
  {
    PagedCache cache = f.in.cache();
    cache.k_pages.shape[2] = 0;
    cache.v_pages.shape[2] = 0;
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"block_size", ">= 1", "got 0"});
  }
  {
    PagedCache cache = f.in.cache();
    cache.k_pages.shape[3] = 16;
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"head_dim", "32", "got 16"});
  }
  {
    PagedCache cache = f.in.cache();
    std::vector<uint16_t> halves(f.in.v_pool->storage.size());
    cache.v_pages = AnyConstTensorView(halves.data(), DType::bf16, cache.v_pages.shape, cache.v_pages.strides);
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"v.dtype", "f32", "bf16"});
  }
  {
    PagedCache cache = f.in.cache();
    cache.v_pages.shape[0] -= 1;
    expect_rejected([&] { f.paged(cache, cu); }, f.out, {"cache.v_pages.shape[0]", "num_blocks"});
  }
  {
    AttentionOptions options;
    int64_t lengths[2] = {20, 40};
    options.kv_lengths = lengths;
    expect_rejected([&] { f.paged(f.in.cache(), cu, options); }, f.out, {"options.kv_lengths", "cache.seq_lens"});
  }
}

TEST(ServingBadInput, CuSeqlensAreChecked) {
  BadInputFixture f;
  const PagedCache cache = f.in.cache();
  expect_rejected([&] { f.paged(cache, {0, 3, 2}); }, f.out, {"cu_seqlens_q", "decrease", "got 2"});
  expect_rejected([&] { f.paged(cache, {0, 1, 3}); }, f.out, {"cu_seqlens_q[batch = 2]", "total_q", "4", "got 3"});
  expect_rejected([&] { f.paged(cache, {1, 3, 4}); }, f.out, {"cu_seqlens_q[0]", "got 1"});
  std::vector<int32_t> cu_k = {0, 20, 59};
  expect_rejected([&] { attention_varlen(f.in.q.in(), f.in.k.in(), f.in.v.in(), f.out.view, f.in.cu_q.data(),
                                         cu_k.data(), 2, {}); },
                  f.out, {"cu_seqlens_k[batch = 2]", "total_k", "60", "got 59"});
  expect_rejected([&] { attention_varlen(f.in.q.in(), f.in.k.in(), f.in.v.in(), f.out.view, f.in.cu_q.data(),
                                         nullptr, 2, {}); },
                  f.out, {"cu_seqlens_k", "nullptr"});
  ConstTensorView batched = f.in.q.in();
  batched.shape[0] = 2;
  expect_rejected([&] { attention_varlen(batched, f.in.k.in(), f.in.v.in(), f.out.view, f.in.cu_q.data(),
                                         f.in.cu_k.data(), 2, {}); },
                  f.out, {"q.shape[0] must be 1", "packed_view"});
}

TEST(ServingBadInput, ScalesOfUsedBlocksOnly) {
  ServingCase c = BadInputFixture::make_case();
  c.dtype = DType::i8;
  const ServingInputs in(c);
  Tensor out(1, c.q_heads, in.total_q, c.head_dim, Layout::bshd);
  PagedCache cache = in.cache();
  Tensor scales = *in.k_pool_stored->scales;
  cache.k_scale_pages = scales.in();
  // A NaN scale in a block no sequence reads is accepted.
  std::vector<bool> used(static_cast<size_t>(in.num_blocks), false);
  for (int32_t block : in.block_table) {
    if (block >= 0) used[block] = true;
  }
  const int64_t unused = std::find(used.begin(), used.end(), false) - used.begin();
  scales.at(unused, 0, 0, 0) = std::nanf("");
  EXPECT_NO_THROW(attention_paged(in.q.in(), cache, out.view, in.cu_q.data(), in.batch, {}));
  // In a block a sequence reads, it is named.
  scales.at(in.block_table[0], 1, 3, 0) = -1.0f;
  expect_rejected([&] { attention_paged(in.q.in(), cache, out.view, in.cu_q.data(), in.batch, {}); }, out,
                  {"cache.k_scale_pages[" + std::to_string(in.block_table[0]) + ", 1, 3, 0]", "finite and >= 0"});
  AttentionOptions options;
  options.k_scale = scales.in();
  expect_rejected([&] { attention_paged(in.q.in(), cache, out.view, in.cu_q.data(), in.batch, options); }, out,
                  {"options.k_scale must be absent", "cache.k_scale_pages"});
}

TEST(ServingBadInput, WeightsAreNotOffered) {
  BadInputFixture f;
  Tensor weights(1, f.c.q_heads, f.in.total_q, 40);
  AttentionOptions options;
  options.weights = weights.view;
  expect_rejected([&] { f.paged(f.in.cache(), f.in.cu_q, options); }, f.out, {"options.weights must be absent"});
}

simdattn_tensor c_tensor(const AnyConstTensorView& view) {
  simdattn_tensor tensor{};
  tensor.data = const_cast<void*>(view.data);
  tensor.dtype = static_cast<int32_t>(view.dtype);
  for (int d = 0; d < 4; ++d) tensor.shape[d] = view.shape[d], tensor.strides[d] = view.strides[d];
  return tensor;
}

// The C ABI passes packed and paged batches through: the bits of the C++ calls, and errors named
// after the C function.
TEST(ServingCApi, MatchesCppAndNamesErrors) {
  for (DType dtype : {DType::f32, DType::i8}) {
    ServingCase c;
    c.sequences = kDecode;
    c.dtype = dtype;
    const ServingInputs in(c);
    simdattn_options options;
    simdattn_options_init(&options);
    options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
    const PagedCache cache = in.cache();
    const simdattn_tensor q = c_tensor(in.q.in()), k_pages = c_tensor(cache.k_pages), v_pages = c_tensor(cache.v_pages);
    std::optional<simdattn_tensor> k_scales, v_scales;
    simdattn_paged_cache c_cache{&k_pages, &v_pages, nullptr, nullptr, in.block_table.data(), in.blocks_per_sequence,
                                 in.seq_lens.data()};
    if (dtype == DType::i8) {
      k_scales = c_tensor(*cache.k_scale_pages);
      v_scales = c_tensor(*cache.v_scale_pages);
      c_cache.k_scale_pages = &*k_scales;
      c_cache.v_scale_pages = &*v_scales;
    }
    Tensor out(1, c.q_heads, in.total_q, c.head_dim, Layout::bshd);
    const simdattn_tensor c_out = c_tensor(out.in());
    ASSERT_EQ(simdattn_attention_paged(&q, &c_cache, &c_out, in.cu_q.data(), in.batch, &options), SIMDATTN_OK)
        << simdattn_last_error();
    const auto [expected, lse] = run(c, in, /*oracle=*/false, in.options, /*paged=*/true);
    EXPECT_TRUE(bitwise_equal(expected, out));

    const simdattn_tensor k = c_tensor(in.k_in()), v = c_tensor(in.v_in());
    const AttentionOptions packed = in.varlen_options();
    std::optional<simdattn_tensor> k_scale, v_scale;
    if (dtype == DType::i8) {
      k_scale = c_tensor(*packed.k_scale);
      v_scale = c_tensor(*packed.v_scale);
      options.k_scale = &*k_scale;
      options.v_scale = &*v_scale;
    }
    ASSERT_EQ(simdattn_attention_varlen(&q, &k, &v, &c_out, in.cu_q.data(), in.cu_k.data(), in.batch, &options),
              SIMDATTN_OK)
        << simdattn_last_error();
    const auto [expected_packed, packed_lse] = run(c, in, /*oracle=*/false, packed, /*paged=*/false);
    EXPECT_TRUE(bitwise_equal(expected_packed, out));
  }
  simdattn_tensor q{}, out{};
  simdattn_paged_cache cache{};
  EXPECT_EQ(simdattn_attention_paged(&q, nullptr, &out, nullptr, 0, nullptr), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(simdattn_last_error()).find("simdattn_attention_paged: cache must not be NULL"), std::string::npos);
  EXPECT_EQ(simdattn_attention_paged(&q, &cache, &out, nullptr, 0, nullptr), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(simdattn_last_error()).find("cache->k_pages must not be NULL"), std::string::npos);
}

// Empty batches and batches without keys write what attention() would.
TEST(ServingEdges, EmptyBatchesAndKeylessSequences) {
  ServingCase c;
  c.sequences = {{2, 0}, {0, 0}, {1, 0}};
  c.sinks = {0.25f, -kInf};
  for (int64_t bs : {0, 16}) {
    c.block_size = bs;
    const ServingInputs in(c);
    const auto [out, lse] = run(c, in, /*oracle=*/false, bs > 0 ? in.options : in.varlen_options(), bs > 0);
    for (int64_t h = 0; h < c.q_heads; ++h)
      for (int64_t i = 0; i < in.total_q; ++i) {
        EXPECT_EQ(lse.at(0, h, i, 0), h % 2 == 0 ? 0.25f : -kInf);
        for (int64_t d = 0; d < c.head_dim; ++d) EXPECT_EQ(out.at(0, h, i, d), 0.0f);
      }
  }
  Tensor q(1, 4, 0, 32, Layout::bshd), out = q;
  std::vector<int32_t> cu = {0};
  EXPECT_NO_THROW(attention_varlen(q.in(), q.in(), q.in(), out.view, cu.data(), cu.data(), 0, {}));
}

}  // namespace
}  // namespace simdattn::testing

// serving/<shape>/<layout>: the serving shapes of docs/bench-shapes.md (packed batches of
// sequences of different lengths, paged caches), each in the layouts a caller could use for the
// same keys, so that their ratios come from one run:
//   serve_decode: 32 sequences, one query each, lengths log-uniform in [64, 16384] (seeded),
//                 Hq 32, Hkv 8, D 128; paged (block 16) against the same keys packed, and
//                 in a contiguous [1, Hkv, keys, D] cache per sequence, one call each.
//   chunked_prefill: 4 sequences, a 512-query chunk each over a 4096-key cached prefix (4608 keys
//                 with the chunk's own), causal; paged (block 16), packed, one call per sequence.
//   mixed_prefill: 8 prompts of lengths uniform in [64, 2048] (seeded), causal; packed, one call
//                 per sequence, and one padded call (every prompt padded to the longest).
// fp32 throughout. Decoding reports bandwidth over the bytes of K and V read once.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "aligned_buffer.hpp"
#include "counters.hpp"
#include "machine/roofs.hpp"
#include "registration.hpp"
#include "simdattn/simdattn.hpp"

namespace simdattn::bench {
namespace {

constexpr int64_t kQueryHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlockSize = 16;

struct Sequence {
  int64_t queries, keys;
};

struct ServingShape {
  std::string name;
  std::vector<Sequence> sequences;
  bool causal;
};

std::vector<Sequence> serve_decode_sequences() {
  std::mt19937_64 generator(20261205);
  std::uniform_real_distribution<double> exponent(std::log(64.0), std::log(16384.0));
  std::vector<Sequence> sequences;
  for (int i = 0; i < 32; ++i) sequences.push_back({1, static_cast<int64_t>(std::exp(exponent(generator)))});
  return sequences;
}

std::vector<Sequence> mixed_prefill_sequences() {
  std::mt19937_64 generator(20261206);
  std::uniform_int_distribution<int64_t> length(64, 2048);
  std::vector<Sequence> sequences;
  for (int i = 0; i < 8; ++i) {
    const int64_t n = length(generator);
    sequences.push_back({n, n});
  }
  return sequences;
}

const std::vector<ServingShape>& serving_shapes() {
  static const std::vector<ServingShape> shapes = {
      {"serve_decode", serve_decode_sequences(), true},
      {"chunked_prefill", std::vector<Sequence>(4, Sequence{512, 4096 + 512}), true},
      {"mixed_prefill", mixed_prefill_sequences(), true},
  };
  return shapes;
}

// Every layout of one shape's inputs: packed q and out, the keys packed and paged (blocks
// shuffled), and the table and offsets that describe them.
struct ServingInputs {
  int64_t batch = 0, total_q = 0, total_k = 0, max_q = 0, max_k = 0, blocks_per_sequence = 0;
  std::vector<int32_t> cu_q, cu_k, seq_lens, block_table;
  AlignedFloats q, out, k, v, k_pool, v_pool;

  explicit ServingInputs(const ServingShape& shape) : batch(static_cast<int64_t>(shape.sequences.size())) {
    cu_q.push_back(0);
    cu_k.push_back(0);
    for (const Sequence& s : shape.sequences) {
      cu_q.push_back(static_cast<int32_t>(cu_q.back() + s.queries));
      cu_k.push_back(static_cast<int32_t>(cu_k.back() + s.keys));
      seq_lens.push_back(static_cast<int32_t>(s.keys));
      max_q = std::max(max_q, s.queries);
      max_k = std::max(max_k, s.keys);
      blocks_per_sequence = std::max(blocks_per_sequence, (s.keys + kBlockSize - 1) / kBlockSize);
    }
    total_q = cu_q.back();
    total_k = cu_k.back();
    q = AlignedFloats(total_q * kQueryHeads * kHeadDim);
    out = AlignedFloats(total_q * kQueryHeads * kHeadDim);
    k = AlignedFloats(total_k * kKvHeads * kHeadDim);
    v = AlignedFloats(total_k * kKvHeads * kHeadDim);
    fill_uniform(q.data(), q.size(), 1);
    fill_uniform(k.data(), k.size(), 2);
    fill_uniform(v.data(), v.size(), 3);
    // Blocks in a shuffled order, as a cache that has served for a while holds them.
    const int64_t blocks = batch * blocks_per_sequence;
    std::vector<int32_t> order(static_cast<size_t>(blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(4));
    block_table = order;
    k_pool = AlignedFloats(blocks * kKvHeads * kBlockSize * kHeadDim);
    v_pool = AlignedFloats(blocks * kKvHeads * kBlockSize * kHeadDim);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < kKvHeads; ++h)
        for (int64_t j = 0; j < seq_lens[b]; ++j) {
          const int64_t block = block_table[b * blocks_per_sequence + j / kBlockSize];
          const int64_t to = ((block * kKvHeads + h) * kBlockSize + j % kBlockSize) * kHeadDim;
          const int64_t from = ((cu_k[b] + j) * kKvHeads + h) * kHeadDim;
          std::copy(k.data() + from, k.data() + from + kHeadDim, k_pool.data() + to);
          std::copy(v.data() + from, v.data() + from + kHeadDim, v_pool.data() + to);
        }
  }

  ConstTensorView packed_q() const { return packed_view<const float>(q.data(), total_q, kQueryHeads, kHeadDim); }
  TensorView packed_out() const { return packed_view(out.data(), total_q, kQueryHeads, kHeadDim); }
  ConstTensorView packed_k() const { return packed_view<const float>(k.data(), total_k, kKvHeads, kHeadDim); }
  ConstTensorView packed_v() const { return packed_view<const float>(v.data(), total_k, kKvHeads, kHeadDim); }
  PagedCache cache() const {
    const int64_t blocks = batch * blocks_per_sequence;
    const std::array<int64_t, 4> shape = {blocks, kKvHeads, kBlockSize, kHeadDim};
    const std::array<int64_t, 4> strides = {kKvHeads * kBlockSize * kHeadDim, kBlockSize * kHeadDim, kHeadDim, 1};
    PagedCache cache;
    cache.k_pages = ConstTensorView(k_pool.data(), shape, strides);
    cache.v_pages = ConstTensorView(v_pool.data(), shape, strides);
    cache.block_table = block_table.data();
    cache.blocks_per_sequence = blocks_per_sequence;
    cache.seq_lens = seq_lens.data();
    return cache;
  }
  // Positions [cu[b], cu[b + 1]) of a packed view: sequence b alone.
  template <class View>
  static View sequence(View view, const std::vector<int32_t>& cu, int64_t b) {
    view.data = view.row(0, 0, cu[b]);
    view.shape[2] = cu[b + 1] - cu[b];
    return view;
  }
};

// One shape's inputs at a time: the serving shapes hold up to a few GiB.
ServingInputs& inputs_for(const ServingShape& shape) {
  static std::unique_ptr<ServingInputs> held;
  static std::string held_name;
  if (held_name != shape.name) {
    held.reset();
    held = std::make_unique<ServingInputs>(shape);
    held_name = shape.name;
  }
  return *held;
}

// Useful FLOPs: 4 · Hq · D for every (query, visible key) pair, bottom-right causal per sequence.
double useful_flops(const ServingShape& shape) {
  double pairs = 0.0;
  for (const Sequence& s : shape.sequences) {
    for (int64_t i = 0; i < s.queries; ++i) {
      pairs += shape.causal ? static_cast<double>(std::min(s.keys, s.keys - s.queries + i + 1)) : double(s.keys);
    }
  }
  return 4.0 * kQueryHeads * kHeadDim * pairs;
}

double kv_bytes(const ServingShape& shape) {
  double keys = 0.0;
  for (const Sequence& s : shape.sequences) keys += static_cast<double>(s.keys);
  return keys * kKvHeads * 2.0 * kHeadDim * sizeof(float);
}

bool is_decode(const ServingShape& shape) {
  for (const Sequence& s : shape.sequences) {
    if (s.queries > 16) return false;
  }
  return true;
}

using Layout = std::function<void(const ServingInputs&, const AttentionOptions&)>;

void run_serving(benchmark::State& state, const ServingShape& shape, const Layout& layout) {
  const int threads = default_threads();
  measure_roofs_first(threads, is_decode(shape));
  const ServingInputs& in = inputs_for(shape);
  AttentionOptions options;
  options.causal = shape.causal ? Causal::bottom_right : Causal::none;
  // One call outside the timing: the copies a layout makes once (contiguous, padded) and the
  // first touch of every page would otherwise be a call, and a slow one ends a short run.
  layout(in, options);
  const double seconds = fastest_call_loop(state, [&] { layout(in, options); });
  report_compute(state, useful_flops(shape), seconds, threads);
  if (is_decode(shape)) report_traffic(state, kv_bytes(shape), seconds);
  state.SetLabel(simdattn::active_isa());
}

void paged(const ServingInputs& in, const AttentionOptions& options) {
  attention_paged(in.packed_q(), in.cache(), in.packed_out(), in.cu_q.data(), in.batch, options);
}

void packed(const ServingInputs& in, const AttentionOptions& options) {
  attention_varlen(in.packed_q(), in.packed_k(), in.packed_v(), in.packed_out(), in.cu_q.data(), in.cu_k.data(),
                   in.batch, options);
}

void per_sequence(const ServingInputs& in, const AttentionOptions& options) {
  for (int64_t b = 0; b < in.batch; ++b) {
    attention(ServingInputs::sequence(in.packed_q(), in.cu_q, b), ServingInputs::sequence(in.packed_k(), in.cu_k, b),
              ServingInputs::sequence(in.packed_v(), in.cu_k, b), ServingInputs::sequence(in.packed_out(), in.cu_q, b),
              options);
  }
}

// One attention() call per sequence over a cache of its own, [1, Hkv, keys, D] with each head's
// rows contiguous (the layout of a per-request contiguous cache): the yardstick of paged decoding.
// The copies are made once, outside the timing.
void contiguous(const ServingInputs& in, const AttentionOptions& options) {
  static std::vector<AlignedFloats> k, v;
  static const ServingInputs* made_for = nullptr;
  if (made_for != &in) {
    k.clear();
    v.clear();
    for (int64_t b = 0; b < in.batch; ++b) {
      const int64_t keys = in.seq_lens[b];
      k.emplace_back(kKvHeads * keys * kHeadDim);
      v.emplace_back(kKvHeads * keys * kHeadDim);
      for (int64_t h = 0; h < kKvHeads; ++h)
        for (int64_t j = 0; j < keys; ++j) {
          const int64_t from = ((in.cu_k[b] + j) * kKvHeads + h) * kHeadDim, to = (h * keys + j) * kHeadDim;
          std::copy(in.k.data() + from, in.k.data() + from + kHeadDim, k.back().data() + to);
          std::copy(in.v.data() + from, in.v.data() + from + kHeadDim, v.back().data() + to);
        }
    }
    made_for = &in;
  }
  for (int64_t b = 0; b < in.batch; ++b) {
    const int64_t keys = in.seq_lens[b];
    const ConstTensorView k_b(k[b].data(), {1, kKvHeads, keys, kHeadDim}, {kKvHeads * keys * kHeadDim, keys * kHeadDim, kHeadDim, 1});
    const ConstTensorView v_b(v[b].data(), {1, kKvHeads, keys, kHeadDim}, {kKvHeads * keys * kHeadDim, keys * kHeadDim, kHeadDim, 1});
    attention(ServingInputs::sequence(in.packed_q(), in.cu_q, b), k_b, v_b,
              ServingInputs::sequence(in.packed_out(), in.cu_q, b), options);
  }
}

// One attention() call over [B, H, max, D] views whose sequences are padded to the longest:
// q and out rows and K/V rows past a sequence's length are computed or read for nothing, except
// that kv_lengths stops the keys. The padded buffers are made once, outside the timing.
void padded(const ServingInputs& in, const AttentionOptions& options) {
  static AlignedFloats q, out, k, v;
  static std::vector<int64_t> lengths;
  static const ServingInputs* made_for = nullptr;
  const int64_t rows_q = in.max_q * kQueryHeads * kHeadDim, rows_k = in.max_k * kKvHeads * kHeadDim;
  if (made_for != &in) {
    q = AlignedFloats(in.batch * rows_q);
    out = AlignedFloats(in.batch * rows_q);
    k = AlignedFloats(in.batch * rows_k);
    v = AlignedFloats(in.batch * rows_k);
    std::fill(q.data(), q.data() + q.size(), 0.0f);
    std::fill(k.data(), k.data() + k.size(), 0.0f);
    std::fill(v.data(), v.data() + v.size(), 0.0f);
    lengths.clear();
    for (int64_t b = 0; b < in.batch; ++b) {
      // Right-aligned queries (bottom-right causal puts a sequence's last query on its last key).
      const int64_t queries = in.cu_q[b + 1] - in.cu_q[b], keys = in.seq_lens[b];
      std::copy(in.q.data() + in.cu_q[b] * kQueryHeads * kHeadDim, in.q.data() + in.cu_q[b + 1] * kQueryHeads * kHeadDim,
                q.data() + b * rows_q + (in.max_q - queries) * kQueryHeads * kHeadDim);
      std::copy(in.k.data() + in.cu_k[b] * kKvHeads * kHeadDim, in.k.data() + (in.cu_k[b] + keys) * kKvHeads * kHeadDim,
                k.data() + b * rows_k);
      std::copy(in.v.data() + in.cu_k[b] * kKvHeads * kHeadDim, in.v.data() + (in.cu_k[b] + keys) * kKvHeads * kHeadDim,
                v.data() + b * rows_k);
      lengths.push_back(keys);
    }
    made_for = &in;
  }
  auto bshd = [&](float* data, int64_t heads, int64_t seq) {
    return TensorView(data, {in.batch, heads, seq, kHeadDim}, {seq * heads * kHeadDim, kHeadDim, heads * kHeadDim, 1});
  };
  AttentionOptions padded_options = options;
  padded_options.kv_lengths = lengths.data();
  attention(bshd(q.data(), kQueryHeads, in.max_q), bshd(k.data(), kKvHeads, in.max_k),
            bshd(v.data(), kKvHeads, in.max_k), bshd(out.data(), kQueryHeads, in.max_q), padded_options);
}

// The shapes as JSON, for the run's context: bench/compare times its peers on these sequences and
// counts their work (bench/report/shapes.py reads it). One object per shape:
// {"q_heads", "kv_heads", "head_dim", "block_size", "causal", "sequences": [[queries, keys], ...]}.
std::string serving_shapes_json() {
  std::string json = "{";
  for (const ServingShape& shape : serving_shapes()) {
    if (json.size() > 1) json += ", ";
    json += "\"" + shape.name + "\": {\"q_heads\": " + std::to_string(kQueryHeads) +
            ", \"kv_heads\": " + std::to_string(kKvHeads) + ", \"head_dim\": " + std::to_string(kHeadDim) +
            ", \"block_size\": " + std::to_string(kBlockSize) + ", \"causal\": " + (shape.causal ? "true" : "false") +
            ", \"sequences\": [";
    for (size_t i = 0; i < shape.sequences.size(); ++i) {
      json += (i > 0 ? ", [" : "[") + std::to_string(shape.sequences[i].queries) + ", " +
              std::to_string(shape.sequences[i].keys) + "]";
    }
    json += "]}";
  }
  return json + "}";
}

}  // namespace

void register_serving_benchmarks() {
  benchmark::AddCustomContext("serving_shapes", serving_shapes_json());
  const std::map<std::string, std::vector<std::pair<std::string, Layout>>> layouts = {
      {"serve_decode", {{"paged", paged}, {"packed", packed}, {"contiguous", contiguous}}},
      {"chunked_prefill", {{"paged", paged}, {"packed", packed}, {"per_sequence", per_sequence}}},
      {"mixed_prefill", {{"packed", packed}, {"per_sequence", per_sequence}, {"padded", padded}}},
  };
  for (const ServingShape& shape : serving_shapes()) {
    for (const auto& [name, layout] : layouts.at(shape.name)) {
      benchmark::RegisterBenchmark(("serving/" + shape.name + "/" + name).c_str(),
                                   [shape, layout = layout](benchmark::State& state) { run_serving(state, shape, layout); })
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace simdattn::bench

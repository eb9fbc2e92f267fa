// attention(), fused and composed, against the oracle on every ISA the host runs: shapes around
// every tile edge, Sq != Sk both ways, grouped heads, every layout, and every option alone and
// combined. The oracle defines the semantics; these tests hold the fast paths to it within the
// error bound of test_support.hpp.
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <tuple>

#include "plan/attention_plan.hpp"
#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

struct Case {
  std::string name;
  int64_t batch = 1, q_heads = 1, kv_heads = 1, sq = 1, sk = 1, head_dim = 1, value_dim = 1;
  Layout layout = Layout::bhsd;
  Causal causal = Causal::none;
  int64_t window_left = -1, window_right = -1;
  std::vector<int64_t> kv_lengths;  // empty: none
  float softcap = 0.0f;
  bool alibi = false;
  int mask = 0;  // 0 none, 1 full [B,Hq,Sq,Sk] with some -inf, 2 broadcast [1,1,Sq,Sk]
  bool lse = false;
};

// A case with the given shape and no options; the caller sets the options it tests.
Case shape(std::string name, int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t sq, int64_t sk,
           int64_t head_dim, Layout layout = Layout::bhsd, Causal causal = Causal::none) {
  Case c;
  c.name = std::move(name);
  c.batch = batch, c.q_heads = q_heads, c.kv_heads = kv_heads, c.sq = sq, c.sk = sk;
  c.head_dim = head_dim, c.value_dim = head_dim, c.layout = layout, c.causal = causal;
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> all;
  // Sizes around micro-tile rows (6, 12, 24), panels (8-64 columns), the key block (256), the
  // most keys taken as a single block (512 on AVX-512) and the decoding chunk (1024).
  for (int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 257, 300, 513, 600}) {
    all.push_back(shape("square", 1, 2, 2, n, n, 64));
    all.push_back(shape("causal", 1, 2, 1, n, n, 32, Layout::padded, Causal::bottom_right));
  }
  for (int64_t d : {1, 3, 8, 16, 17, 64, 80, 96, 112, 128, 256}) {
    all.push_back(shape("head_dim", 1, 2, 2, 21, 45, d, Layout::bshd));
  }
  Case value_dim = shape("value_dim_differs", 1, 2, 1, 13, 40, 24);
  value_dim.value_dim = 40;
  all.push_back(value_dim);
  for (int64_t group : {1, 2, 4, 8}) {
    all.push_back(shape("gqa", 2, 8, 8 / group, 33, 70, 32, Layout::padded, Causal::bottom_right));
  }
  // Sq != Sk both ways; Sq > Sk leaves rows with no visible key under bottom-right causal.
  for (Causal causal : {Causal::bottom_right, Causal::top_left}) {
    all.push_back(shape("sq_lt_sk", 1, 2, 2, 20, 75, 16, Layout::bhsd, causal));
    all.push_back(shape("sq_gt_sk", 1, 2, 2, 75, 20, 16, Layout::bhsd, causal));
  }
  for (auto [left, right] : {std::pair<int64_t, int64_t>{0, 0}, {3, 0}, {5, 2}, {-1, 4}, {1000, 1000}}) {
    Case c = shape("window", 1, 2, 2, 40, 60, 16, Layout::bshd);
    c.window_left = left, c.window_right = right;
    all.push_back(c);
  }
  Case causal_window = shape("causal_window", 1, 2, 2, 600, 600, 32, Layout::bhsd, Causal::bottom_right);
  causal_window.window_left = 40, causal_window.window_right = 0;
  all.push_back(causal_window);
  Case ragged = shape("kv_lengths", 3, 2, 1, 10, 50, 16);
  ragged.kv_lengths = {0, 1, 50};
  all.push_back(ragged);
  Case ragged_causal = shape("kv_lengths_causal", 3, 2, 1, 10, 50, 16, Layout::padded, Causal::bottom_right);
  ragged_causal.kv_lengths = {7, 50, 23};
  all.push_back(ragged_causal);
  Case softcap = shape("softcap", 1, 2, 2, 30, 40, 16);
  softcap.softcap = 5.0f;
  all.push_back(softcap);
  Case alibi = shape("alibi", 1, 4, 2, 30, 40, 16, Layout::bhsd, Causal::bottom_right);
  alibi.alibi = true;
  all.push_back(alibi);
  Case mask = shape("mask", 2, 2, 2, 30, 40, 16);
  mask.mask = 1;
  all.push_back(mask);
  Case mask_broadcast = shape("mask_broadcast", 2, 2, 1, 30, 40, 16, Layout::bshd);
  mask_broadcast.mask = 2;
  all.push_back(mask_broadcast);
  Case everything = shape("everything", 2, 4, 2, 33, 70, 24, Layout::padded, Causal::bottom_right);
  everything.window_left = 30, everything.window_right = 0, everything.kv_lengths = {70, 41};
  everything.softcap = 8.0f, everything.alibi = true, everything.mask = 1, everything.lse = true;
  all.push_back(everything);
  Case lse = shape("lse", 1, 2, 2, 17, 600, 16);
  lse.lse = true;
  all.push_back(lse);
  // Decoding: few queries, keys split into chunks and merged.
  for (int64_t sq : {1, 2, 5, 16}) {
    Case decode = shape("decode", 2, 8, 2, sq, 1300, 64, Layout::bhsd, Causal::bottom_right);
    decode.lse = true;
    all.push_back(decode);
  }
  Case decode_ragged = shape("decode_ragged", 3, 4, 4, 1, 1100, 32, Layout::padded);
  decode_ragged.kv_lengths = {0, 1025, 1100}, decode_ragged.alibi = true, decode_ragged.mask = 1;
  decode_ragged.lse = true;
  all.push_back(decode_ragged);
  // Decoding with head_dim and value_dim tails past whole registers (4, 8, 16 floats) and past
  // the P·V's chunks of several registers, a group of four columns half filled, and a lone
  // column (groups of one); scores in the dense layout (1, 4 and 8 columns), one with a soft-cap.
  for (auto [heads, head_dim, value_dim] : {std::tuple{4, 24, 72}, {6, 100, 100}, {1, 40, 56}}) {
    Case decode_dims = shape("decode_dims", 1, heads, 1, 1, 1300, head_dim);
    decode_dims.value_dim = value_dim;
    decode_dims.softcap = heads == 4 ? 3.0f : 0.0f;
    all.push_back(decode_dims);
  }
  // Decoding calls with enough work items for longer key chunks (blocking.hpp): 8 and 16 kv heads
  // of sequences of 4100, 4096, 4097 and 2500 keys take chunks of 2048 and of 4096 keys
  // (DecodeChunks below), the last chunk of a sequence as short as 1 or 4 keys.
  for (int64_t kv_heads : {8, 16}) {
    Case decode_long_chunks = shape("decode_long_chunks", 4, 2 * kv_heads, kv_heads, 1, 4100, 16, Layout::bshd);
    decode_long_chunks.kv_lengths = {4100, 4096, 4097, 2500}, decode_long_chunks.lse = true;
    all.push_back(decode_long_chunks);
  }
  Case decode_window = shape("decode_window", 1, 4, 1, 3, 2000, 32, Layout::bhsd, Causal::bottom_right);
  decode_window.window_left = 700, decode_window.window_right = 0;
  all.push_back(decode_window);
  return all;
}

std::string describe(detail::Isa isa, Algorithm algorithm, const Case& c) {
  std::ostringstream out;
  out << detail::isa_name(isa) << " " << (algorithm == Algorithm::fused ? "fused" : algorithm == Algorithm::composed ? "composed" : "automatic")
      << " " << c.name << " B=" << c.batch << " Hq=" << c.q_heads << " Hkv=" << c.kv_heads << " Sq=" << c.sq
      << " Sk=" << c.sk << " D=" << c.head_dim << " Dv=" << c.value_dim << " " << layout_name(c.layout);
  return out.str();
}

struct Inputs {
  Tensor q, k, v;
  std::optional<Tensor> mask;
  std::vector<float> slopes;
  AttentionOptions options;
  double bias_magnitude = 0.0;

  // Bounds |biased logit| for the error bounds: scale·Σ|q·k| (at most the soft-cap when there is
  // one) plus the largest ALiBi and mask bias.
  double logit_bound(const Case& c) const {
    const double scale = 1.0 / std::sqrt(double(c.head_dim));
    double logits = logit_magnitude(q, k, scale);
    if (c.softcap > 0) logits = std::min(logits, double(c.softcap));
    return logits + bias_magnitude;
  }

  explicit Inputs(const Case& c)
      : q(c.batch, c.q_heads, c.sq, c.head_dim, c.layout),
        k(c.batch, c.kv_heads, c.sk, c.head_dim, c.layout),
        v(c.batch, c.kv_heads, c.sk, c.value_dim, c.layout) {
    // Spread logits over a range where the softmax is neither flat nor one-hot.
    q.fill_uniform(11, -2.0f, 2.0f);
    k.fill_uniform(12, -2.0f, 2.0f);
    v.fill_uniform(13);
    options.causal = c.causal;
    options.window_left = c.window_left;
    options.window_right = c.window_right;
    options.softcap = c.softcap;
    if (!c.kv_lengths.empty()) options.kv_lengths = c.kv_lengths.data();
    if (c.alibi) {
      for (int64_t h = 0; h < c.q_heads; ++h) slopes.push_back(std::pow(2.0f, -1.0f - float(h)));
      options.alibi_slopes = slopes.data();
      bias_magnitude += 0.5 * double(c.sq + c.sk);
    }
    if (c.mask != 0) {
      mask.emplace(c.mask == 1 ? c.batch : 1, c.mask == 1 ? c.q_heads : 1, c.sq, c.sk, c.layout);
      mask->fill_uniform(14, -3.0f, 3.0f);
      // Every 7th key of each row excluded outright.
      for (int64_t b = 0; b < mask->view.shape[0]; ++b)
        for (int64_t h = 0; h < mask->view.shape[1]; ++h)
          for (int64_t i = 0; i < c.sq; ++i)
            for (int64_t j = i % 7; j < c.sk; j += 7) mask->at(b, h, i, j) = -std::numeric_limits<float>::infinity();
      options.mask = mask->in();
      bias_magnitude += 3.0;
    }
  }
};

class Attention : public ::testing::TestWithParam<std::tuple<detail::Isa, Algorithm, Case>> {};

TEST_P(Attention, MatchesOracle) {
  const auto& [isa, algorithm, c] = GetParam();
  Inputs in(c);
  Tensor expected(c.batch, c.q_heads, c.sq, c.value_dim, c.layout), actual = expected;
  Tensor expected_lse(c.batch, c.q_heads, c.sq, 1), actual_lse = expected_lse;
  AttentionOptions reference_options = in.options;
  if (c.lse) reference_options.lse = expected_lse.view;
  reference::attention(in.q.in(), in.k.in(), in.v.in(), expected.view, reference_options);

  AttentionOptions fast_options = in.options;
  fast_options.algorithm = algorithm;
  if (c.lse) fast_options.lse = actual_lse.view;
  {
    detail::ScopedIsaOverride use(isa);
    attention(in.q.in(), in.k.in(), in.v.in(), actual.view, fast_options);
  }
  const double logits = in.logit_bound(c);
  const double tolerance = attention_tolerance(logits, c.head_dim, c.sk, max_magnitude(in.v));
  EXPECT_TRUE(all_close(expected, actual, tolerance, describe(isa, algorithm, c)));
  if (c.lse) {
    EXPECT_TRUE(all_close(expected_lse, actual_lse, lse_tolerance(logits, c.head_dim, c.sk),
                          describe(isa, algorithm, c) + " lse"));
  }
}

// The weights output: composed (directly or chosen automatically) returns the softmax matrix.
// (The fused path cannot return weights; validation rejects that combination.)
class AttentionWeights : public Attention {};

TEST_P(AttentionWeights, MatchOracle) {
  const auto& [isa, algorithm, c] = GetParam();
  Inputs in(c);
  Tensor out(c.batch, c.q_heads, c.sq, c.value_dim), expected(c.batch, c.q_heads, c.sq, c.sk), actual = expected;
  AttentionOptions reference_options = in.options;
  reference_options.weights = expected.view;
  reference::attention(in.q.in(), in.k.in(), in.v.in(), out.view, reference_options);
  AttentionOptions fast_options = in.options;
  fast_options.algorithm = algorithm;
  fast_options.weights = actual.view;
  {
    detail::ScopedIsaOverride use(isa);
    attention(in.q.in(), in.k.in(), in.v.in(), out.view, fast_options);
  }
  const double logits = in.logit_bound(c);
  // A weight is off relatively by rel_p (see attention_tolerance) and weights are at most 1.
  EXPECT_TRUE(all_close(expected, actual, attention_tolerance(logits, c.head_dim, c.sk, 1.0),
                        describe(isa, algorithm, c) + " weights"));
  // Each row sums to 1 (within the rounding of Sk weights and their normalisation), or is all
  // zeros when its query sees no key, as the oracle's row says.
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.q_heads; ++h)
      for (int64_t i = 0; i < c.sq; ++i) {
        double sum = 0.0, oracle_sum = 0.0;
        for (int64_t j = 0; j < c.sk; ++j) sum += actual.at(b, h, i, j), oracle_sum += expected.at(b, h, i, j);
        const double target = oracle_sum == 0.0 ? 0.0 : 1.0;
        EXPECT_NEAR(sum, target, gamma(c.sk + 2) + 3.0 * kUnitRoundoff)
            << describe(isa, algorithm, c) << " row [" << b << "," << h << "," << i << "]";
      }
}

// ISA_algorithm_case: every field that tells two cases apart, and nothing that changes between
// builds (no index, no bytes), so that `ctest -R` patterns stay valid as cases are added.
std::string case_name(const ::testing::TestParamInfo<std::tuple<detail::Isa, Algorithm, Case>>& info) {
  const auto& [isa, algorithm, c] = info.param;
  std::ostringstream name;
  name << detail::isa_name(isa) << "_"
       << (algorithm == Algorithm::fused ? "fused" : algorithm == Algorithm::composed ? "composed" : "auto") << "_"
       << c.name << "_B" << c.batch << "_Hq" << c.q_heads << "_Hkv" << c.kv_heads << "_Sq" << c.sq << "_Sk" << c.sk
       << "_D" << c.head_dim;
  if (c.value_dim != c.head_dim) name << "_Dv" << c.value_dim;
  name << "_" << layout_name(c.layout);
  if (c.causal == Causal::bottom_right) name << "_bottomright";
  if (c.causal == Causal::top_left) name << "_topleft";
  // A negative side is unbounded; gtest names allow only letters, digits and underscores.
  const auto side = [](int64_t extent) { return extent < 0 ? std::string("all") : std::to_string(extent); };
  if (c.window_left >= 0 || c.window_right >= 0) name << "_window" << side(c.window_left) << "_" << side(c.window_right);
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(
    AllCases, Attention,
    ::testing::Combine(::testing::ValuesIn(host_isas()),
                       ::testing::Values(Algorithm::fused, Algorithm::composed, Algorithm::automatic),
                       ::testing::ValuesIn(cases())),
    case_name);

INSTANTIATE_TEST_SUITE_P(
    AllCases, AttentionWeights,
    ::testing::Combine(::testing::ValuesIn(host_isas()),
                       ::testing::Values(Algorithm::composed, Algorithm::automatic),
                       ::testing::ValuesIn(cases())),
    case_name);

// Decoding's key chunks double from 1024 up to 4096 keys while the call keeps 64 work items, whatever
// the thread count: the plan's shape alone decides (blocking.hpp), so the merge order and the bits
// stay the same for any number of threads (ThreadCountInvariance). key_chunks is the most chunks
// one sequence takes.
TEST(DecodeChunks, GrowWhileTheCallKeepsSixtyFourWorkItems) {
  struct Expected {
    int64_t batch, q_heads, kv_heads, sk;
    std::vector<int64_t> kv_lengths;
    int64_t key_chunks;
  };
  const Expected expected[] = {
      {1, 32, 8, 8192, {}, 8},                   // decode_gqa: 64 work items of 1024 keys
      {8, 32, 8, 4096, {}, 1},                   // decode_b8: 64 of 4096 (each a whole sequence)
      {4, 16, 8, 4100, {4100, 4096, 4097, 2500}, 3},   // 80 of 2048 (48 of 4096 would be too few)
      {4, 32, 16, 4100, {4100, 4096, 4097, 2500}, 2},  // 96 of 4096
      {1, 8, 2, 3000, {}, 3},                    // 6 of 1024: too few for anything longer
      {2, 8, 8, 1500, {0, 1500}, 2},             // a keyless sequence is one chunk: 24 of 1024
  };
  for (const Expected& e : expected) {
    for (int threads : {1, 2, 7}) {
      const Tensor q(e.batch, e.q_heads, 1, 1), k(e.batch, e.kv_heads, e.sk, 1), v(e.batch, e.kv_heads, e.sk, 1);
      Tensor out(e.batch, e.q_heads, 1, 1);
      AttentionOptions options;
      options.num_threads = threads;
      if (!e.kv_lengths.empty()) options.kv_lengths = e.kv_lengths.data();
      const detail::AttentionPlan plan =
          detail::make_attention_plan(q.view, k.view, v.view, out.view, options);
      EXPECT_EQ(plan.key_chunks, e.key_chunks)
          << "B=" << e.batch << " Hkv=" << e.kv_heads << " Sk=" << e.sk << ", " << threads << " threads";
    }
  }
}

// Only sequences with queries are work items: 15 sequences of one query and 4100 keys over 2 kv
// heads make 90 items of 2048 keys and 60 of 4096, so 2048; counting the 16th sequence, which has
// keys but no query, would make 64 of 4096.
TEST(DecodeChunks, SequencesWithoutQueriesAreNotCounted) {
  constexpr int64_t kBatch = 16, kKeys = 4100, kQueries = kBatch - 1;
  Tensor q(1, 4, kQueries, 1, Layout::bshd), out(1, 4, kQueries, 1, Layout::bshd);
  Tensor k(1, 2, kBatch * kKeys, 1, Layout::bshd), v(1, 2, kBatch * kKeys, 1, Layout::bshd);
  for (Tensor* t : {&q, &out, &k, &v}) t->view.shape[0] = kBatch, t->view.strides[0] = 0;
  detail::SequenceTable sequences;
  for (int64_t b = 0; b <= kBatch; ++b) sequences.query_starts.push_back(std::min(b, kQueries));
  for (int64_t b = 0; b < kBatch; ++b) {
    sequences.key_starts.push_back(b * kKeys);
    sequences.key_lengths.push_back(kKeys);
  }
  const detail::AttentionPlan plan =
      detail::make_batch_plan(q.view, k.view, v.view, out.view, AttentionOptions{}, sequences, kKeys);
  EXPECT_EQ(plan.key_chunks, 3);
  EXPECT_EQ(plan.jobs.size(), size_t{90});
}

}  // namespace
}  // namespace simdattn::testing

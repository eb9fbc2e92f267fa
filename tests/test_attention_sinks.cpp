// Attention sinks, both kinds, on every ISA the host runs: learned sink logits
// (AttentionOptions::sinks, one more softmax-denominator term per query head, with no value) and
// StreamingLLM sink tokens (AttentionOptions::sink_tokens, the first keys exempt from the window's
// left bound). Fused, composed and decoding (split keys merged) paths against the oracle, combined
// with every other option; -inf sinks and sink tokens without a window give the bits of no option;
// decoding gives the same bits for any thread count; the C ABI passes both through, and an older
// caller's shorter struct leaves them off.
#include <cfenv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <sstream>
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

struct SinkCase {
  std::string name;
  int64_t batch = 1, q_heads = 2, kv_heads = 1, sq = 1, sk = 1, head_dim = 16;
  Causal causal = Causal::none;
  int64_t window_left = -1, window_right = -1;
  int64_t sink_tokens = 0;
  std::vector<float> sinks;  // cycled over the query heads; empty: no sinks option
  std::vector<int64_t> kv_lengths;
  float softcap = 0.0f;
  bool alibi = false;
  bool mask = false;
  Layout layout = Layout::bhsd;
};

// Sink logits of every kind a model may hold: moderate, zero, none (-inf) and negative.
const std::vector<float> kMixedSinks = {0.5f, 0.0f, -kInf, -1.5f, 2.0f};
// Far larger and far smaller than any logit: the sink takes all weight, or none.
const std::vector<float> kHugeSinks = {1e4f, -1e4f};

SinkCase make(std::string name, int64_t batch, int64_t q_heads, int64_t kv_heads, int64_t sq,
              int64_t sk, int64_t head_dim, Causal causal = Causal::none) {
  SinkCase c;
  c.name = std::move(name);
  c.batch = batch, c.q_heads = q_heads, c.kv_heads = kv_heads, c.sq = sq, c.sk = sk;
  c.head_dim = head_dim, c.causal = causal;
  return c;
}

std::vector<SinkCase> sink_cases() {
  std::vector<SinkCase> all;
  // Sink logits: shapes around micro-tile rows, panels, the key block (256) and the single block
  // (512), with grouped heads.
  for (int64_t n : {1, 7, 17, 64, 65, 257, 600}) {
    SinkCase c = make("logits", 1, 4, 2, n, n, 32, Causal::bottom_right);
    c.sinks = kMixedSinks;
    all.push_back(c);
  }
  {
    SinkCase c = make("logits_huge", 2, 4, 2, 33, 70, 24);
    c.sinks = kHugeSinks;
    all.push_back(c);
  }
  {
    // Rows before key 0 under bottom-right causal see no key: out 0, lse = the sink.
    SinkCase c = make("logits_no_key", 1, 4, 4, 75, 20, 16, Causal::bottom_right);
    c.sinks = {0.25f, -kInf, 1e4f, -1e4f};
    all.push_back(c);
  }
  {
    SinkCase c = make("logits_everything", 2, 4, 2, 33, 70, 24, Causal::bottom_right);
    c.sinks = kMixedSinks;
    c.window_left = 30, c.window_right = 0, c.kv_lengths = {70, 0};
    c.softcap = 8.0f, c.alibi = true, c.mask = true, c.layout = Layout::padded;
    all.push_back(c);
  }
  // Decoding: keys split into 1024-key chunks and merged; the sink must count once.
  for (int64_t sq : {1, 5}) {
    SinkCase c = make("logits_decode", 2, 8, 2, sq, 2100, 64, Causal::bottom_right);
    c.sinks = kMixedSinks;
    all.push_back(c);
  }
  {
    SinkCase c = make("logits_decode_huge", 1, 2, 1, 1, 1300, 32);
    c.sinks = kHugeSinks;
    all.push_back(c);
  }
  {
    SinkCase c = make("logits_decode_ragged", 3, 4, 4, 1, 1100, 32);
    c.sinks = kMixedSinks;
    c.kv_lengths = {0, 1025, 1100}, c.alibi = true, c.mask = true, c.layout = Layout::padded;
    all.push_back(c);
  }
  // Sink tokens under a sliding window: prefill tiles with a hole between the sink tokens and
  // the window (key blocks skipped), sink tokens reaching past a key block, and windows that
  // already cover them.
  for (int64_t tokens : {1, 4, 300, 5000}) {
    SinkCase c = make("tokens", 1, 2, 1, 600, 600, 32, Causal::bottom_right);
    c.window_left = 40, c.window_right = 0, c.sink_tokens = tokens;
    all.push_back(c);
  }
  {
    SinkCase c = make("tokens_window0", 1, 2, 2, 65, 65, 16, Causal::bottom_right);
    c.window_left = 0, c.window_right = 0, c.sink_tokens = 1;
    all.push_back(c);
  }
  {
    // No causal mask: the window's right bound still applies to the sink tokens.
    SinkCase c = make("tokens_two_sided", 1, 2, 1, 40, 60, 16);
    c.window_left = 5, c.window_right = 5, c.sink_tokens = 3;
    all.push_back(c);
  }
  {
    SinkCase c = make("tokens_top_left", 2, 4, 2, 20, 300, 16, Causal::top_left);
    c.window_left = 7, c.sink_tokens = 4, c.kv_lengths = {300, 9};
    all.push_back(c);
  }
  {
    SinkCase c = make("tokens_and_logits", 2, 4, 2, 129, 300, 24, Causal::bottom_right);
    c.window_left = 50, c.window_right = 0, c.sink_tokens = 4, c.sinks = kMixedSinks;
    c.kv_lengths = {300, 120}, c.softcap = 8.0f, c.alibi = true, c.mask = true;
    c.layout = Layout::bshd;
    all.push_back(c);
  }
  // Decoding with sink tokens: a middle key chunk that no row sees (skipped), sink tokens across
  // a chunk boundary, ragged lengths and a mask.
  {
    SinkCase c = make("tokens_decode", 2, 4, 1, 3, 3000, 32, Causal::bottom_right);
    c.window_left = 700, c.window_right = 0, c.sink_tokens = 5, c.kv_lengths = {3000, 1500};
    c.mask = true;
    all.push_back(c);
  }
  {
    SinkCase c = make("tokens_decode_chunk_edge", 1, 8, 2, 2, 2500, 64, Causal::bottom_right);
    c.window_left = 100, c.window_right = 0, c.sink_tokens = 1100, c.sinks = kMixedSinks;
    all.push_back(c);
  }
  for (int64_t q_heads : {1, 4}) {
    // The window starts inside the first key chunk: a gap strictly inside a chunk's keys, which
    // the decoding loop steps over (dense score layouts of 1 and 4 columns).
    SinkCase c = make("tokens_decode_gap", 2, q_heads, 1, 1, 1100, 32, Causal::bottom_right);
    c.window_left = 200, c.window_right = 0, c.sink_tokens = 4, c.kv_lengths = {1100, 700};
    all.push_back(c);
  }
  {
    SinkCase c = make("tokens_decode_single", 1, 1, 1, 1, 2100, 40, Causal::bottom_right);
    c.window_left = 64, c.window_right = 0, c.sink_tokens = 4, c.sinks = {1.0f};
    all.push_back(c);
  }
  return all;
}

std::string describe(detail::Isa isa, Algorithm algorithm, const SinkCase& c) {
  std::ostringstream out;
  out << detail::isa_name(isa) << " " << (algorithm == Algorithm::fused ? "fused" : "composed") << " "
      << c.name << " B=" << c.batch << " Hq=" << c.q_heads << " Hkv=" << c.kv_heads << " Sq=" << c.sq
      << " Sk=" << c.sk << " D=" << c.head_dim << " window=" << c.window_left << "," << c.window_right
      << " sink_tokens=" << c.sink_tokens << " sinks=" << c.sinks.size();
  return out.str();
}

struct SinkInputs {
  Tensor q, k, v;
  std::optional<Tensor> mask;
  std::vector<float> slopes, sinks;
  AttentionOptions options;
  double bias_magnitude = 0.0;

  explicit SinkInputs(const SinkCase& c)
      : q(c.batch, c.q_heads, c.sq, c.head_dim, c.layout),
        k(c.batch, c.kv_heads, c.sk, c.head_dim, c.layout),
        v(c.batch, c.kv_heads, c.sk, c.head_dim, c.layout) {
    q.fill_uniform(21, -2.0f, 2.0f);
    k.fill_uniform(22, -2.0f, 2.0f);
    v.fill_uniform(23);
    options.causal = c.causal;
    options.window_left = c.window_left;
    options.window_right = c.window_right;
    options.sink_tokens = c.sink_tokens;
    options.softcap = c.softcap;
    if (!c.kv_lengths.empty()) options.kv_lengths = c.kv_lengths.data();
    if (!c.sinks.empty()) {
      for (int64_t h = 0; h < c.q_heads; ++h) sinks.push_back(c.sinks[h % c.sinks.size()]);
      options.sinks = sinks.data();
    }
    if (c.alibi) {
      for (int64_t h = 0; h < c.q_heads; ++h) slopes.push_back(std::pow(2.0f, -1.0f - float(h)));
      options.alibi_slopes = slopes.data();
      bias_magnitude += 0.5 * double(c.sq + c.sk);
    }
    if (c.mask) {
      mask.emplace(c.batch, c.q_heads, c.sq, c.sk, c.layout);
      mask->fill_uniform(24, -3.0f, 3.0f);
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t h = 0; h < c.q_heads; ++h)
          for (int64_t i = 0; i < c.sq; ++i)
            for (int64_t j = (i + h) % 7; j < c.sk; j += 7) mask->at(b, h, i, j) = -kInf;
      options.mask = mask->in();
      bias_magnitude += 3.0;
    }
  }

  // Bounds |logit| for the error bounds (test_support.hpp): scale·Σ|q·k| (at most the soft-cap),
  // the largest bias, and the largest finite sink, which is one more logit of every row.
  double logit_bound(const SinkCase& c) const {
    double logits = logit_magnitude(q, k, 1.0 / std::sqrt(double(c.head_dim)));
    if (c.softcap > 0) logits = std::min(logits, double(c.softcap));
    double sink = 0.0;
    for (float s : sinks) {
      if (std::isfinite(s)) sink = std::max(sink, double(std::fabs(s)));
    }
    return std::max(logits + bias_magnitude, sink);
  }
};

class AttentionSinks : public ::testing::TestWithParam<std::tuple<detail::Isa, Algorithm, SinkCase>> {};

TEST_P(AttentionSinks, MatchOracle) {
  const auto& [isa, algorithm, c] = GetParam();
  SinkInputs in(c);
  Tensor expected(c.batch, c.q_heads, c.sq, c.head_dim, c.layout), actual = expected;
  Tensor expected_lse(c.batch, c.q_heads, c.sq, 1), actual_lse = expected_lse;
  AttentionOptions reference_options = in.options;
  reference_options.lse = expected_lse.view;
  reference::attention(in.q.in(), in.k.in(), in.v.in(), expected.view, reference_options);
  AttentionOptions fast_options = in.options;
  fast_options.algorithm = algorithm;
  fast_options.lse = actual_lse.view;
  {
    detail::ScopedIsaOverride use(isa);
    attention(in.q.in(), in.k.in(), in.v.in(), actual.view, fast_options);
  }
  const double logits = in.logit_bound(c);
  EXPECT_TRUE(all_close(expected, actual,
                        attention_tolerance(logits, c.head_dim, c.sk + 1, max_magnitude(in.v)),
                        describe(isa, algorithm, c)));
  EXPECT_TRUE(all_close(expected_lse, actual_lse, lse_tolerance(logits, c.head_dim, c.sk + 1),
                        describe(isa, algorithm, c) + " lse"));
}

// The weights (composed): the oracle's, so a row with a sink sums to less than 1.
class AttentionSinkWeights : public AttentionSinks {};

TEST_P(AttentionSinkWeights, MatchOracle) {
  const auto& [isa, algorithm, c] = GetParam();
  SinkInputs in(c);
  Tensor out(c.batch, c.q_heads, c.sq, c.head_dim), expected(c.batch, c.q_heads, c.sq, c.sk),
      actual = expected;
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
  EXPECT_TRUE(all_close(expected, actual, attention_tolerance(in.logit_bound(c), c.head_dim, c.sk + 1, 1.0),
                        describe(isa, algorithm, c) + " weights"));
}

std::string sink_case_name(
    const ::testing::TestParamInfo<std::tuple<detail::Isa, Algorithm, SinkCase>>& info) {
  const auto& [isa, algorithm, c] = info.param;
  std::ostringstream name;
  name << detail::isa_name(isa) << "_" << (algorithm == Algorithm::fused ? "fused" : "composed") << "_"
       << c.name << "_B" << c.batch << "_Hq" << c.q_heads << "_Hkv" << c.kv_heads << "_Sq" << c.sq
       << "_Sk" << c.sk << "_D" << c.head_dim;
  if (c.sink_tokens > 0) name << "_tokens" << c.sink_tokens;
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(AllCases, AttentionSinks,
                         ::testing::Combine(::testing::ValuesIn(host_isas()),
                                            ::testing::Values(Algorithm::fused, Algorithm::composed),
                                            ::testing::ValuesIn(sink_cases())),
                         sink_case_name);

// The weights of the cases short enough for the composed path to hold them.
std::vector<SinkCase> weight_cases() {
  std::vector<SinkCase> cases;
  for (const SinkCase& c : sink_cases()) {
    if (c.sk <= 1000) cases.push_back(c);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllCases, AttentionSinkWeights,
                         ::testing::Combine(::testing::ValuesIn(host_isas()),
                                            ::testing::Values(Algorithm::composed),
                                            ::testing::ValuesIn(weight_cases())),
                         sink_case_name);

// Runs attention with `options` on `isa` into fresh out and lse tensors.
std::pair<Tensor, Tensor> run(detail::Isa isa, const SinkInputs& in, const SinkCase& c,
                              AttentionOptions options) {
  Tensor out(c.batch, c.q_heads, c.sq, c.head_dim), lse(c.batch, c.q_heads, c.sq, 1);
  options.lse = lse.view;
  detail::ScopedIsaOverride use(isa);
  attention(in.q.in(), in.k.in(), in.v.in(), out.view, options);
  return {out, lse};
}

class AttentionSinksBits : public ::testing::TestWithParam<detail::Isa> {};

// Sinks of -inf are no sinks, and sink tokens without a window change nothing: the same bits as
// a call without the option, on the prefill, decoding and composed paths.
TEST_P(AttentionSinksBits, OffValuesGiveTheBitsOfNoOption) {
  const detail::Isa isa = GetParam();
  for (SinkCase c : {make("prefill", 1, 4, 2, 70, 300, 32, Causal::bottom_right),
                     make("decode", 2, 8, 2, 1, 2100, 64, Causal::bottom_right)}) {
    c.mask = true;
    SinkInputs in(c);
    for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
      AttentionOptions plain = in.options;
      plain.algorithm = algorithm;
      const auto [out, lse] = run(isa, in, c, plain);

      std::vector<float> no_sinks(size_t(c.q_heads), -kInf);
      AttentionOptions with_off_sinks = plain;
      with_off_sinks.sinks = no_sinks.data();
      with_off_sinks.sink_tokens = 10;  // no window: nothing to be exempt from
      const auto [out2, lse2] = run(isa, in, c, with_off_sinks);
      EXPECT_TRUE(bitwise_equal(out, out2) && bitwise_equal(lse, lse2))
          << describe(isa, algorithm, c) << ": -inf sinks or sink tokens without a window changed bits";
    }
  }
}

// Decoding with both kinds of sinks: identical bits for any thread count (the sink counted at
// the fixed-order merge), and a prefill tile likewise.
TEST_P(AttentionSinksBits, SameBitsForAnyThreadCount) {
  const detail::Isa isa = GetParam();
  for (SinkCase c : {make("decode", 2, 8, 2, 3, 3300, 64, Causal::bottom_right),
                     make("prefill", 1, 4, 2, 200, 700, 32, Causal::bottom_right)}) {
    c.sinks = kMixedSinks;
    c.window_left = 600, c.window_right = 0, c.sink_tokens = 4;
    SinkInputs in(c);
    AttentionOptions options = in.options;
    options.num_threads = 1;
    const auto [out, lse] = run(isa, in, c, options);
    for (int threads : {2, 3, 7}) {
      options.num_threads = threads;
      const auto [out2, lse2] = run(isa, in, c, options);
      EXPECT_TRUE(bitwise_equal(out, out2) && bitwise_equal(lse, lse2))
          << describe(isa, Algorithm::fused, c) << ": " << threads << " threads differ from 1";
    }
  }
}

// A row that sees no key but has a finite sink: zeros and lse = the sink, on every path; and
// sinks of ±1e4 raise no invalid operation, division by zero or overflow.
TEST_P(AttentionSinksBits, RowWithNoKeyAndFloatingPointFlags) {
  const detail::Isa isa = GetParam();
  for (SinkCase c : {make("prefill", 2, 4, 2, 20, 300, 16), make("decode", 2, 4, 2, 1, 2100, 16)}) {
    c.kv_lengths = {0, c.sk};
    c.sinks = {1e4f, -1e4f, 0.0f, 3.0f};
    SinkInputs in(c);
    for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
      AttentionOptions options = in.options;
      options.algorithm = algorithm;
      options.num_threads = 1;
      std::feclearexcept(FE_ALL_EXCEPT);
      const auto [out, lse] = run(isa, in, c, options);
      EXPECT_FALSE(std::fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW))
          << describe(isa, algorithm, c) << ": a floating-point exception was raised";
      for (int64_t h = 0; h < c.q_heads; ++h)
        for (int64_t i = 0; i < c.sq; ++i) {
          EXPECT_NEAR(lse.at(0, h, i, 0), in.sinks[h], lse_tolerance(1e4, c.head_dim, 1))
              << describe(isa, algorithm, c) << " head " << h;
          for (int64_t d = 0; d < c.head_dim; ++d) ASSERT_EQ(out.at(0, h, i, d), 0.0f);
        }
      // A sink of 1e4 takes all the weight of its rows; one of -1e4 none.
      AttentionOptions plain = options;
      plain.sinks = nullptr;
      const auto [reference_out, reference_lse] = run(isa, in, c, plain);
      for (int64_t i = 0; i < c.sq; ++i)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          EXPECT_EQ(out.at(1, 0, i, d), 0.0f) << describe(isa, algorithm, c);
          EXPECT_EQ(out.at(1, 1, i, d), reference_out.at(1, 1, i, d)) << describe(isa, algorithm, c);
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, AttentionSinksBits, ::testing::ValuesIn(host_isas()), isa_test_name);

// A NaN in q reaches only its row, which is NaN with or without a sink (as torch.softmax).
TEST(AttentionSinksNonFinite, NanLogitRowStaysNan) {
  SinkCase c = make("nan", 1, 2, 1, 4, 50, 16);
  c.sinks = {1.0f, -2.0f};
  SinkInputs in(c);
  in.q.at(0, 1, 2, 3) = std::numeric_limits<float>::quiet_NaN();
  for (detail::Isa isa : host_isas()) {
    for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
      AttentionOptions options = in.options;
      options.algorithm = algorithm;
      const auto [out, lse] = run(isa, in, c, options);
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t i = 0; i < c.sq; ++i) {
          const bool poisoned = h == 1 && i == 2;
          EXPECT_EQ(std::isnan(lse.at(0, h, i, 0)), poisoned) << describe(isa, algorithm, c);
          EXPECT_EQ(std::isnan(out.at(0, h, i, 0)), poisoned) << describe(isa, algorithm, c);
        }
    }
  }
}

// Through the C ABI: the same bits as the C++ call; a caller built before the fields (shorter
// struct_size) gets neither, whatever its memory holds past its struct; bad values are
// SIMDATTN_ERR_INVALID_ARGUMENT naming the field, with nothing written.
TEST(AttentionSinksCAbi, FieldsPassThroughAndOlderCallersKeepWorking) {
  SinkCase c = make("c_abi", 1, 2, 1, 9, 40, 8, Causal::bottom_right);
  c.window_left = 3, c.sink_tokens = 2, c.sinks = {0.5f, -1.0f};
  SinkInputs in(c);
  const auto tensor_of = [](const Tensor& t) {
    simdattn_tensor result{};
    result.data = const_cast<float*>(t.view.data);
    result.dtype = SIMDATTN_F32;
    for (int d = 0; d < 4; ++d) result.shape[d] = t.view.shape[d], result.strides[d] = t.view.strides[d];
    return result;
  };
  Tensor out(c.batch, c.q_heads, c.sq, c.head_dim), lse(c.batch, c.q_heads, c.sq, 1);
  const simdattn_tensor tq = tensor_of(in.q), tk = tensor_of(in.k), tv = tensor_of(in.v);
  const simdattn_tensor tout = tensor_of(out), tlse = tensor_of(lse);
  simdattn_options options;
  simdattn_options_init(&options);
  options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  options.window_left = c.window_left;
  options.sinks = in.sinks.data();
  options.sink_tokens = c.sink_tokens;
  options.lse = &tlse;
  ASSERT_EQ(simdattn_attention(&tq, &tk, &tv, &tout, &options), SIMDATTN_OK) << simdattn_last_error();
  AttentionOptions cpp = in.options;
  cpp.causal = Causal::bottom_right;
  const auto [expected_out, expected_lse] = run(detail::isa_for_this_call(), in, c, cpp);
  EXPECT_TRUE(bitwise_equal(expected_out, out) && bitwise_equal(expected_lse, lse));

  // An older caller: its struct ends before `sinks`; the bytes after it are garbage.
  simdattn_options old;
  std::memset(&old, 0x7f, sizeof old);
  simdattn_options_init_sized(&old, offsetof(simdattn_options, sinks));
  EXPECT_EQ(old.struct_size, offsetof(simdattn_options, sinks));
  old.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  old.window_left = c.window_left;
  old.lse = &tlse;
  ASSERT_EQ(simdattn_attention(&tq, &tk, &tv, &tout, &old), SIMDATTN_OK) << simdattn_last_error();
  AttentionOptions without = cpp;
  without.sinks = nullptr;
  without.sink_tokens = 0;
  const auto [plain_out, plain_lse] = run(detail::isa_for_this_call(), in, c, without);
  EXPECT_TRUE(bitwise_equal(plain_out, out) && bitwise_equal(plain_lse, lse));

  const std::vector<float> before(out.storage);
  std::vector<float> bad = in.sinks;
  bad[1] = std::numeric_limits<float>::quiet_NaN();
  options.sinks = bad.data();
  EXPECT_EQ(simdattn_attention(&tq, &tk, &tv, &tout, &options), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(simdattn_last_error()).find("options.sinks[1]"), std::string::npos)
      << simdattn_last_error();
  options.sinks = in.sinks.data();
  options.sink_tokens = -1;
  EXPECT_EQ(simdattn_attention(&tq, &tk, &tv, &tout, &options), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(simdattn_last_error()).find("options.sink_tokens"), std::string::npos)
      << simdattn_last_error();
  EXPECT_TRUE(out.storage == before) << "a rejected call wrote its output";
}

// The softmax_rows stage with sinks, against its oracle on rows of every length around the
// register widths, with inputs that break a naive softmax and sinks below, among and above them.
class SoftmaxRowsWithSinks : public ::testing::TestWithParam<detail::Isa> {};

TEST_P(SoftmaxRowsWithSinks, MatchOracle) {
  const detail::Isa isa = GetParam();
  for (int64_t n : {1, 3, 4, 5, 8, 9, 16, 17, 33, 65, 1000}) {
    for (int kind = 0; kind < 4; ++kind) {
      Tensor expected(1, 3, 2, n, Layout::padded);
      std::vector<float> sinks = {0.0f, 3.0f, -kInf};
      switch (kind) {
        case 0: expected.fill_uniform(10 + n, -5.0f, 5.0f); break;
        case 1: expected.fill_uniform(20 + n, 90.0f, 100.0f), sinks = {95.0f, 1e4f, -1e4f}; break;
        case 2: expected.fill_uniform(30 + n, -1e4f, -1e3f), sinks = {-2e3f, 0.0f, -kInf}; break;
        case 3:
          expected.fill_uniform(40 + n);
          for (int64_t j = 0; j < n; ++j) expected.at(0, 1, 1, j) = -kInf;  // only the sink
          break;
      }
      Tensor actual = expected;
      reference::softmax_rows(expected.view, sinks.data());
      {
        detail::ScopedIsaOverride use(isa);
        softmax_rows(actual.view, sinks.data());
      }
      // As softmax_rows alone (test_stages.cpp), with one more term in the sum.
      const double tolerance = 3.0 * kUnitRoundoff + gamma(n + 2) + kUnitRoundoff;
      std::ostringstream context;
      context << detail::isa_name(isa) << " softmax_rows with sinks n=" << n << " kind=" << kind;
      EXPECT_TRUE(all_close(expected, actual, tolerance, context.str()));
    }
  }
}

TEST_P(SoftmaxRowsWithSinks, MinusInfinityIsNoSinkAndBadSinksAreRejected) {
  detail::ScopedIsaOverride use(GetParam());
  Tensor plain(2, 3, 4, 37);
  plain.fill_uniform(5, -30.0f, 30.0f);
  Tensor with_sinks = plain;
  softmax_rows(plain.view);
  const std::vector<float> none(3, -kInf);
  softmax_rows(with_sinks.view, none.data(), 2);
  EXPECT_TRUE(bitwise_equal(plain, with_sinks));

  const std::vector<float> before(with_sinks.storage);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
    const std::vector<float> sinks = {0.0f, bad, 1.0f};
    EXPECT_THROW(softmax_rows(with_sinks.view, sinks.data()), std::invalid_argument);
    EXPECT_THROW(reference::softmax_rows(with_sinks.view, sinks.data()), std::invalid_argument);
    simdattn_tensor scores{with_sinks.view.data, SIMDATTN_F32, {2, 3, 4, 37}, {3 * 4 * 37, 4 * 37, 37, 1}};
    EXPECT_EQ(simdattn_softmax_rows_with_sinks(&scores, sinks.data(), 0), SIMDATTN_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(simdattn_last_error()).find("sinks[1] must be finite or -inf"), std::string::npos)
        << simdattn_last_error();
  }
  EXPECT_THROW(softmax_rows(with_sinks.view, with_sinks.view.data + 5), std::invalid_argument)
      << "sinks inside scores must be rejected (they would change while the rows are written)";
  EXPECT_TRUE(std::memcmp(before.data(), with_sinks.storage.data(), before.size() * sizeof(float)) == 0)
      << "a rejected call wrote scores";
}

INSTANTIATE_TEST_SUITE_P(Isas, SoftmaxRowsWithSinks, ::testing::ValuesIn(host_isas()), isa_test_name);

}  // namespace
}  // namespace simdattn::testing

// Properties of the scalar oracles that a wrong oracle would break: normalisation, translation
// invariance, -inf and NaN handling, and every attention option on small cases whose answer is
// written out by hand.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "simdattn/reference.hpp"

namespace {

namespace ref = simdattn::reference;
using simdattn::AttentionOptions;
using simdattn::Causal;
using simdattn::ConstTensorView;
using simdattn::TensorView;

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// A float result is the double oracle rounded once: half an ulp, 2^-24 relative. The test's own
// double arithmetic may differ from the oracle's in the last bits and move the rounding across a
// boundary, so one whole ulp (2^-23 relative) is the bound.
double float_tolerance(double expected) { return 0x1p-23 * std::abs(expected) + 1e-30; }

// An owned contiguous BHSD tensor.
struct Tensor {
  std::array<int64_t, 4> shape;
  std::vector<float> values;

  explicit Tensor(std::array<int64_t, 4> shape_, float fill = 0.0f)
      : shape(shape_),
        values(static_cast<size_t>(shape_[0] * shape_[1] * shape_[2] * shape_[3]), fill) {}

  TensorView view() {
    return simdattn::bhsd_view(values.data(), shape[0], shape[1], shape[2], shape[3]);
  }
  ConstTensorView cview() const {
    return simdattn::bhsd_view(values.data(), shape[0], shape[1], shape[2], shape[3]);
  }
  float& at(int64_t b, int64_t h, int64_t s, int64_t d) {
    return values[static_cast<size_t>(((b * shape[1] + h) * shape[2] + s) * shape[3] + d)];
  }
  float at(int64_t b, int64_t h, int64_t s, int64_t d) const {
    return values[static_cast<size_t>(((b * shape[1] + h) * shape[2] + s) * shape[3] + d)];
  }
};

// Deterministic values in [-amplitude, amplitude), the same on every platform (a plain LCG).
void fill_seeded(Tensor& tensor, uint32_t seed, float amplitude = 1.0f) {
  uint32_t state = seed * 2654435761u + 12345u;
  for (float& x : tensor.values) {
    state = state * 1664525u + 1013904223u;
    x = amplitude * (static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f);
  }
}

// ---------------------------------------------------------------------------------------------
// Vector softmax
// ---------------------------------------------------------------------------------------------

TEST(ReferenceSoftmax, SumsToOne) {
  const std::vector<double> weights = ref::softmax({-3.0, 0.25, 7.5, 7.5, -100.0, 2.0});
  double sum = 0.0;
  for (double w : weights) {
    EXPECT_GT(w, 0.0);
    sum += w;
  }
  // Six quotients, each within an ulp: the sum is within a few epsilon of 1.
  EXPECT_NEAR(sum, 1.0, 8 * std::numeric_limits<double>::epsilon());
  EXPECT_EQ(weights[2], weights[3]);  // ties get equal weights
}

// softmax(x + c) = softmax(x). With x and c multiples of 1/8 the shift is exact, so the
// max-subtracted formula must give identical bits.
TEST(ReferenceSoftmax, TranslationInvariant) {
  const std::vector<double> x = {0.125, -2.5, 3.0, 0.0, 1.875};
  std::vector<double> shifted = x;
  for (double& s : shifted) s += 537.25;
  EXPECT_EQ(ref::softmax(x), ref::softmax(shifted));
}

TEST(ReferenceSoftmax, MinusInfinityGetsZero) {
  const std::vector<double> weights =
      ref::softmax({-kInfinity, std::log(1.0), -kInfinity, std::log(3.0)});
  EXPECT_EQ(weights[0], 0.0);
  EXPECT_EQ(weights[2], 0.0);
  EXPECT_NEAR(weights[1], 0.25, 2 * std::numeric_limits<double>::epsilon());
  EXPECT_NEAR(weights[3], 0.75, 2 * std::numeric_limits<double>::epsilon());
}

TEST(ReferenceSoftmax, AllMinusInfinityGivesZeros) {
  EXPECT_EQ(ref::softmax({-kInfinity, -kInfinity, -kInfinity}),
            (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_TRUE(ref::softmax({}).empty());
}

// A NaN anywhere makes the whole row NaN (it must not hide behind a max that skips it), -inf
// entries included; a +inf makes inf - inf = NaN. Both as torch.softmax does.
TEST(ReferenceSoftmax, NanAndPlusInfinityPropagate) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::vector<double>& row :
       {std::vector<double>{1.0, nan, -kInfinity, 2.0},
        std::vector<double>{nan, 1.0, -kInfinity, 2.0},
        std::vector<double>{-kInfinity, -kInfinity, -kInfinity, nan},
        std::vector<double>{1.0, kInfinity, -kInfinity, 2.0}}) {
    const std::vector<double> weights = ref::softmax(row);
    for (size_t j = 0; j < row.size(); ++j) EXPECT_TRUE(std::isnan(weights[j])) << j << ": " << weights[j];
  }
}

TEST(ReferenceVectors, WeightedSumAndDotProduct) {
  EXPECT_EQ(ref::dot_product({1.0, 2.0, 3.0}, {4.0, -5.0, 0.5}), 4.0 - 10.0 + 1.5);
  EXPECT_EQ(ref::weighted_sum({0.25, 0.75}, {{4.0, 8.0}, {-4.0, 0.0}}),
            (std::vector<double>{-2.0, 2.0}));
  EXPECT_TRUE(ref::weighted_sum({}, {}).empty());
}

// ---------------------------------------------------------------------------------------------
// Tensor stages
// ---------------------------------------------------------------------------------------------

// Rows of a strided view (padded rows, a sliced head) are each normalised; the padding between
// them is never written.
TEST(ReferenceStages, SoftmaxRowsOnPaddedRowsLeavesPaddingAlone) {
  constexpr int64_t kRows = 3, kKeys = 5, kPitch = 8;
  std::vector<float> storage(kRows * kPitch, 99.0f);
  for (int64_t i = 0; i < kRows; ++i) {
    for (int64_t j = 0; j < kKeys; ++j) storage[i * kPitch + j] = static_cast<float>(i * j) - 2.0f;
  }
  storage[2 * kPitch + 1] = -std::numeric_limits<float>::infinity();
  ref::softmax_rows(TensorView(storage.data(), {1, 1, kRows, kKeys}, {0, 0, kPitch, 1}));
  for (int64_t i = 0; i < kRows; ++i) {
    double sum = 0.0;
    for (int64_t j = 0; j < kKeys; ++j) sum += storage[i * kPitch + j];
    // Five weights rounded to float, each by at most 2^-24 of itself: |Σ - 1| <= 2^-24.
    EXPECT_NEAR(sum, 1.0, 0x1p-24 + 1e-15) << "row " << i;
    for (int64_t j = kKeys; j < kPitch; ++j) EXPECT_EQ(storage[i * kPitch + j], 99.0f);
  }
  EXPECT_EQ(storage[2 * kPitch + 1], 0.0f);
  for (int64_t j = 0; j < kKeys; ++j) EXPECT_FLOAT_EQ(storage[j], 0.2f);  // row 0 is all -2
}

TEST(ReferenceStages, SoftmaxRowsAllMinusInfinityRowIsZeros) {
  const float minus_infinity = -std::numeric_limits<float>::infinity();
  std::vector<float> scores = {minus_infinity, minus_infinity, minus_infinity, 1.0f, 1.0f, 1.0f};
  ref::softmax_rows(simdattn::bhsd_view(scores.data(), 1, 1, 2, 3));
  EXPECT_EQ(scores, (std::vector<float>{0.0f, 0.0f, 0.0f, 1.0f / 3, 1.0f / 3, 1.0f / 3}));
}

// The oracle's own definition of attention and the three stage oracles in a row agree, up to
// the float rounding of the two intermediates: |logit| <= 4 here, so a stored score is off by
// <= 4 · 2^-24, a weight's relative error is then <= 2 · (4 + 1) · 2^-24 (the score error
// moves numerator and sum), and out = Σ w v with |v| <= 1 by that plus its own rounding:
// <= 12 · 2^-24 ~ 7e-7. Also covers Dv != D and grouped heads.
TEST(ReferenceStages, ComposeToAttention) {
  constexpr int64_t kBatch = 2, kQueryHeads = 4, kKvHeads = 2, kQueries = 5, kKeys = 7, kDim = 6,
                    kValueDim = 3;
  Tensor q({kBatch, kQueryHeads, kQueries, kDim}), k({kBatch, kKvHeads, kKeys, kDim}),
      v({kBatch, kKvHeads, kKeys, kValueDim});
  fill_seeded(q, 1, 1.0f);
  fill_seeded(k, 2, 1.0f);
  fill_seeded(v, 3, 1.0f);
  const float scale = 0.5f;  // |logit| <= 0.5 · 6 = 3

  Tensor scores({kBatch, kQueryHeads, kQueries, kKeys});
  Tensor staged({kBatch, kQueryHeads, kQueries, kValueDim});
  ref::qk_scores(q.cview(), k.cview(), scores.view(), scale);
  ref::softmax_rows(scores.view());
  ref::weights_v(scores.cview(), v.cview(), staged.view());

  Tensor direct({kBatch, kQueryHeads, kQueries, kValueDim}, -5.0f);
  AttentionOptions options;
  options.scale = scale;
  ref::attention(q.cview(), k.cview(), v.cview(), direct.view(), options);
  for (size_t n = 0; n < direct.values.size(); ++n) {
    EXPECT_NEAR(staged.values[n], direct.values[n], 12 * 0x1p-24) << "element " << n;
  }
}

// ---------------------------------------------------------------------------------------------
// Attention: visibility (causal, window, kv_lengths) on uniform logits
// ---------------------------------------------------------------------------------------------

// With q = 0 every logit is 0, so a row's weights are 1/n on the n keys it sees and 0 elsewhere,
// out is the plain mean of those keys' values and lse = log n. `visible[b][i]` lists the keys
// query i of batch b must see (one head, head_dim 2, value_dim 3).
void expect_visible_keys(int64_t queries, int64_t keys, AttentionOptions options,
                         const std::vector<std::vector<std::vector<int64_t>>>& visible) {
  const auto batch = static_cast<int64_t>(visible.size());
  Tensor q({batch, 1, queries, 2}, 0.0f), k({batch, 1, keys, 2}), v({batch, 1, keys, 3});
  fill_seeded(k, 7);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < keys; ++j) {
      v.at(b, 0, j, 0) = static_cast<float>(1 + j + 10 * b);
      v.at(b, 0, j, 1) = static_cast<float>((j + 1) * (j + 1));
      v.at(b, 0, j, 2) = -2.5f * static_cast<float>(j);
    }
  }
  Tensor out({batch, 1, queries, 3}, -7.0f), weights({batch, 1, queries, keys}, -7.0f),
      lse({batch, 1, queries, 1}, -7.0f);
  options.weights = weights.view();
  options.lse = lse.view();
  ref::attention(q.cview(), k.cview(), v.cview(), out.view(), options);

  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < queries; ++i) {
      const std::vector<int64_t>& seen = visible[b][i];
      const auto n = static_cast<double>(seen.size());
      std::vector<float> expected_weights(static_cast<size_t>(keys), 0.0f);
      for (int64_t j : seen) expected_weights[j] = static_cast<float>(1.0 / n);
      for (int64_t j = 0; j < keys; ++j) {
        EXPECT_EQ(weights.at(b, 0, i, j), expected_weights[j])
            << "b=" << b << " i=" << i << " j=" << j;
      }
      for (int64_t d = 0; d < 3; ++d) {
        double mean = 0.0;
        for (int64_t j : seen) mean += v.at(b, 0, j, d) / n;
        if (seen.empty()) mean = 0.0;
        EXPECT_NEAR(out.at(b, 0, i, d), mean, float_tolerance(mean))
            << "b=" << b << " i=" << i << " d=" << d;
      }
      const float expected_lse =
          seen.empty() ? -std::numeric_limits<float>::infinity() : static_cast<float>(std::log(n));
      EXPECT_EQ(lse.at(b, 0, i, 0), expected_lse) << "b=" << b << " i=" << i;
    }
  }
}

TEST(ReferenceAttention, NoMaskSeesEveryKey) {
  expect_visible_keys(2, 3, {}, {{{0, 1, 2}, {0, 1, 2}}});
}

// bottom_right, Sk > Sq: off = Sk - Sq = 2, query i sees j <= i + 2.
TEST(ReferenceAttention, CausalBottomRightMoreKeysThanQueries) {
  AttentionOptions options;
  options.causal = Causal::bottom_right;
  expect_visible_keys(2, 4, options, {{{0, 1, 2}, {0, 1, 2, 3}}});
}

// bottom_right, Sq > Sk: off = -2, so the first two queries see no key at all.
TEST(ReferenceAttention, CausalBottomRightMoreQueriesThanKeys) {
  AttentionOptions options;
  options.causal = Causal::bottom_right;
  expect_visible_keys(4, 2, options, {{{}, {}, {0}, {0, 1}}});
}

TEST(ReferenceAttention, CausalTopLeftMoreKeysThanQueries) {
  AttentionOptions options;
  options.causal = Causal::top_left;
  expect_visible_keys(2, 4, options, {{{0}, {0, 1}}});
}

TEST(ReferenceAttention, CausalTopLeftMoreQueriesThanKeys) {
  AttentionOptions options;
  options.causal = Causal::top_left;
  expect_visible_keys(4, 2, options, {{{0}, {0, 1}, {0, 1}, {0, 1}}});
}

TEST(ReferenceAttention, CausalSquareAlignmentsAgree) {
  for (Causal causal : {Causal::bottom_right, Causal::top_left}) {
    AttentionOptions options;
    options.causal = causal;
    expect_visible_keys(3, 3, options, {{{0}, {0, 1}, {0, 1, 2}}});
  }
}

// Without causal: i + off - left <= j <= i + off + right, off = Sk - Sq = 0 here.
TEST(ReferenceAttention, WindowBothSides) {
  AttentionOptions options;
  options.window_left = 1;
  options.window_right = 1;
  expect_visible_keys(5, 5, options, {{{0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4}}});
}

TEST(ReferenceAttention, WindowOfZeroSeesTheDiagonalOnly) {
  AttentionOptions options;
  options.window_left = 0;
  options.window_right = 0;
  expect_visible_keys(3, 3, options, {{{0}, {1}, {2}}});
}

TEST(ReferenceAttention, WindowWiderThanKeysSeesAll) {
  AttentionOptions options;
  options.window_left = 10;
  options.window_right = 10;
  expect_visible_keys(2, 3, options, {{{0, 1, 2}, {0, 1, 2}}});
}

// Without causal the window is still aligned bottom-right: off = 4 - 2 = 2.
TEST(ReferenceAttention, WindowAlignsBottomRightWhenSqDiffersFromSk) {
  AttentionOptions options;
  options.window_left = 0;
  options.window_right = 1;
  expect_visible_keys(2, 4, options, {{{2, 3}, {3}}});
}

// Causal bottom_right with a left window of 2, off = 2: the sliding-window decoder mask.
TEST(ReferenceAttention, WindowWithCausalBottomRight) {
  AttentionOptions options;
  options.causal = Causal::bottom_right;
  options.window_left = 2;
  expect_visible_keys(3, 5, options, {{{0, 1, 2}, {1, 2, 3}, {2, 3, 4}}});
}

// With top_left the window aligns at off = 0 as well.
TEST(ReferenceAttention, WindowWithCausalTopLeft) {
  AttentionOptions options;
  options.causal = Causal::top_left;
  options.window_left = 1;
  expect_visible_keys(3, 5, options, {{{0}, {0, 1}, {1, 2}}});
}

// kv_lengths 0, 1 and full in one batch: keys past the length do not exist for that batch.
TEST(ReferenceAttention, KvLengthsZeroOneFull) {
  const int64_t kv_lengths[3] = {0, 1, 3};
  AttentionOptions options;
  options.kv_lengths = kv_lengths;
  expect_visible_keys(2, 3, options, {{{}, {}}, {{0}, {0}}, {{0, 1, 2}, {0, 1, 2}}});
}

// The causal offset uses kv_lengths[b] in place of Sk: batch 0 has off = 2 - 2 = 0, batch 1
// has off = 4 - 2 = 2.
TEST(ReferenceAttention, KvLengthsMoveTheCausalDiagonal) {
  const int64_t kv_lengths[2] = {2, 4};
  AttentionOptions options;
  options.kv_lengths = kv_lengths;
  options.causal = Causal::bottom_right;
  expect_visible_keys(2, 4, options, {{{0}, {0, 1}}, {{0, 1, 2}, {0, 1, 2, 3}}});
}

TEST(ReferenceAttention, NoKeysGivesZerosAndMinusInfinityLse) {
  expect_visible_keys(3, 0, {}, {{{}, {}, {}}});
}

// ---------------------------------------------------------------------------------------------
// Attention: logit transforms (softcap, ALiBi, mask), lse
// ---------------------------------------------------------------------------------------------

// Output of one query row (one batch, one head) with the given double logits over keys whose
// values are `values`, as the test computes it by hand.
std::vector<double> blend(const std::vector<double>& logits,
                          const std::vector<std::vector<double>>& values) {
  return ref::weighted_sum(ref::softmax(logits), values);
}

// head_dim 1, q = 2, k = [3, 0, -1], scale 1: raw logits [6, 0, -2]. The softcap 5 makes them
// 5 tanh(6/5), 0, 5 tanh(-2/5); the mask [0.5, -inf, 0] is added after the cap, so the first
// logit becomes 5 tanh(1.2) + 0.5 (not 5 tanh(1.3)) and key 1 stays excluded.
TEST(ReferenceAttention, SoftcapThenMask) {
  const std::vector<float> q = {2.0f}, k = {3.0f, 0.0f, -1.0f};
  const std::vector<float> v = {1.0f, -1.0f, 10.0f, 10.0f, 0.5f, 4.0f};
  const std::vector<float> mask = {0.5f, -std::numeric_limits<float>::infinity(), 0.0f};
  std::vector<float> out(2, -7.0f), lse(1, -7.0f);
  AttentionOptions options;
  options.scale = 1.0f;
  options.softcap = 5.0f;
  options.mask = simdattn::bhsd_view(mask.data(), 1, 1, 1, 3);
  options.lse = simdattn::bhsd_view(lse.data(), 1, 1, 1, 1);
  ref::attention(simdattn::bhsd_view(q.data(), 1, 1, 1, 1),
                 simdattn::bhsd_view(k.data(), 1, 1, 3, 1),
                 simdattn::bhsd_view(v.data(), 1, 1, 3, 2),
                 simdattn::bhsd_view(out.data(), 1, 1, 1, 2), options);
  const std::vector<double> logits = {5.0 * std::tanh(1.2) + 0.5, -kInfinity,
                                      5.0 * std::tanh(-0.4)};
  const std::vector<double> expected = blend(logits, {{1.0, -1.0}, {10.0, 10.0}, {0.5, 4.0}});
  EXPECT_NEAR(out[0], expected[0], float_tolerance(expected[0]));
  EXPECT_NEAR(out[1], expected[1], float_tolerance(expected[1]));
  const double expected_lse = std::log(std::exp(logits[0]) + std::exp(logits[2]));
  EXPECT_NEAR(lse[0], expected_lse, float_tolerance(expected_lse));
}

// A softcap bounds a huge logit: 1e4 with cap 2 becomes 2, so keys at logits 1e4 and 0 get
// weights e^2/(e^2+1) and 1/(e^2+1) instead of 1 and 0.
TEST(ReferenceAttention, SoftcapBoundsLargeLogits) {
  const std::vector<float> q = {100.0f}, k = {100.0f, 0.0f}, v = {1.0f, 0.0f};
  std::vector<float> out(1, -7.0f), weights(2, -7.0f);
  AttentionOptions options;
  options.scale = 1.0f;
  options.softcap = 2.0f;
  options.weights = simdattn::bhsd_view(weights.data(), 1, 1, 1, 2);
  ref::attention(simdattn::bhsd_view(q.data(), 1, 1, 1, 1),
                 simdattn::bhsd_view(k.data(), 1, 1, 2, 1),
                 simdattn::bhsd_view(v.data(), 1, 1, 2, 1),
                 simdattn::bhsd_view(out.data(), 1, 1, 1, 1), options);
  const double high = 2.0 * std::tanh(1e4 / 2.0);
  const double expected = std::exp(high) / (std::exp(high) + 1.0);
  EXPECT_NEAR(weights[0], expected, float_tolerance(expected));
  EXPECT_NEAR(out[0], expected, float_tolerance(expected));
}

// ALiBi on zero logits: the bias -slope · |i + off - j| alone decides the weights. Two heads
// with slopes 0.5 and 2; Sq = 2, Sk = 3, no causal, so off = 1: query 0 is at distances
// [1, 0, 1] from the keys, query 1 at [2, 1, 0]. With top_left, off = 0: [0, 1, 2] and [1, 0, 1].
TEST(ReferenceAttention, AlibiSlopesPerHead) {
  const float slopes[2] = {0.5f, 2.0f};
  const double distances_bottom_right[2][3] = {{1, 0, 1}, {2, 1, 0}};
  const double distances_top_left[2][3] = {{0, 1, 2}, {1, 0, 1}};
  for (Causal alignment : {Causal::none, Causal::top_left}) {
    Tensor q({1, 2, 2, 2}, 0.0f), k({1, 1, 3, 2}), v({1, 1, 3, 1});
    fill_seeded(k, 11);
    v.values = {1.0f, 2.0f, 4.0f};
    Tensor out({1, 2, 2, 1}, -7.0f), lse({1, 2, 2, 1}, -7.0f);
    AttentionOptions options;
    options.alibi_slopes = slopes;
    options.lse = lse.view();
    options.causal = alignment;  // top_left also hides the keys j > i
    ref::attention(q.cview(), k.cview(), v.cview(), out.view(), options);
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < 2; ++i) {
        std::vector<double> logits(3);
        for (int64_t j = 0; j < 3; ++j) {
          const double distance =
              alignment == Causal::none ? distances_bottom_right[i][j] : distances_top_left[i][j];
          const bool visible = alignment == Causal::none || j <= i;
          logits[j] = visible ? -slopes[h] * distance : -kInfinity;
        }
        const double expected = blend(logits, {{1.0}, {2.0}, {4.0}})[0];
        EXPECT_NEAR(out.at(0, h, i, 0), expected, float_tolerance(expected))
            << "h=" << h << " i=" << i;
        double sum = 0.0;
        for (double logit : logits) sum += std::exp(logit);
        EXPECT_NEAR(lse.at(0, h, i, 0), std::log(sum), float_tolerance(std::log(sum)) + 1e-15)
            << "h=" << h << " i=" << i;
      }
    }
  }
}

// lse = log Σ exp(logit) over the visible keys: k = [0, ln 2, ln 3] (as floats) and q = 1 give
// log(1 + 2 + 3) = log 6 up to the rounding of the float inputs, which the expectation reuses.
TEST(ReferenceAttention, LogSumExp) {
  const std::vector<float> q = {1.0f};
  const std::vector<float> k = {0.0f, static_cast<float>(std::log(2.0)),
                                static_cast<float>(std::log(3.0))};
  const std::vector<float> v = {0.0f, 0.0f, 0.0f};
  std::vector<float> out(1), lse(1, -7.0f);
  AttentionOptions options;
  options.scale = 1.0f;
  options.lse = simdattn::bhsd_view(lse.data(), 1, 1, 1, 1);
  ref::attention(simdattn::bhsd_view(q.data(), 1, 1, 1, 1),
                 simdattn::bhsd_view(k.data(), 1, 1, 3, 1),
                 simdattn::bhsd_view(v.data(), 1, 1, 3, 1),
                 simdattn::bhsd_view(out.data(), 1, 1, 1, 1), options);
  const double expected =
      std::log(1.0 + std::exp(static_cast<double>(k[1])) + std::exp(static_cast<double>(k[2])));
  EXPECT_NEAR(lse[0], expected, float_tolerance(expected));
  EXPECT_NEAR(lse[0], std::log(6.0), 1e-6);
}

// A row whose every key is masked with -inf is a row with no visible key: zeros and lse -inf.
TEST(ReferenceAttention, FullyMaskedRowGivesZeros) {
  const float minus_infinity = -std::numeric_limits<float>::infinity();
  Tensor q({1, 1, 2, 2}), k({1, 1, 3, 2}), v({1, 1, 3, 2});
  fill_seeded(q, 21);
  fill_seeded(k, 22);
  fill_seeded(v, 23);
  Tensor mask({1, 1, 2, 3}, 0.0f);
  for (int64_t j = 0; j < 3; ++j) mask.at(0, 0, 1, j) = minus_infinity;
  Tensor out({1, 1, 2, 2}, -7.0f), weights({1, 1, 2, 3}, -7.0f), lse({1, 1, 2, 1}, -7.0f);
  AttentionOptions options;
  options.mask = mask.cview();
  options.weights = weights.view();
  options.lse = lse.view();
  ref::attention(q.cview(), k.cview(), v.cview(), out.view(), options);
  EXPECT_EQ(out.at(0, 0, 1, 0), 0.0f);
  EXPECT_EQ(out.at(0, 0, 1, 1), 0.0f);
  for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(weights.at(0, 0, 1, j), 0.0f);
  EXPECT_EQ(lse.at(0, 0, 1, 0), minus_infinity);
  EXPECT_TRUE(std::isfinite(lse.at(0, 0, 0, 0)));
}

// A mask of [1, Hq, 1, Sk], a [B, 1, Sq, Sk] one and a zero-stride expanded view all give the
// same bits as the mask written out in full [B, Hq, Sq, Sk].
TEST(ReferenceAttention, MaskBroadcastsLikeItsFullForm) {
  constexpr int64_t kBatch = 2, kHeads = 2, kQueries = 3, kKeys = 4;
  Tensor q({kBatch, kHeads, kQueries, 4}), k({kBatch, kHeads, kKeys, 4}),
      v({kBatch, kHeads, kKeys, 3});
  fill_seeded(q, 31);
  fill_seeded(k, 32);
  fill_seeded(v, 33);
  auto run = [&](ConstTensorView mask) {
    Tensor out({kBatch, kHeads, kQueries, 3}, -7.0f);
    AttentionOptions options;
    options.mask = mask;
    ref::attention(q.cview(), k.cview(), v.cview(), out.view(), options);
    return out.values;
  };
  // Per head and key, shared by batches and queries.
  Tensor per_head({1, kHeads, 1, kKeys});
  fill_seeded(per_head, 34, 3.0f);
  per_head.at(0, 1, 0, 2) = -std::numeric_limits<float>::infinity();
  Tensor full({kBatch, kHeads, kQueries, kKeys});
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t h = 0; h < kHeads; ++h)
      for (int64_t i = 0; i < kQueries; ++i)
        for (int64_t j = 0; j < kKeys; ++j) full.at(b, h, i, j) = per_head.at(0, h, 0, j);
  const std::vector<float> expected = run(full.cview());
  EXPECT_EQ(run(per_head.cview()), expected);
  EXPECT_EQ(run(ConstTensorView(per_head.values.data(), {kBatch, kHeads, kQueries, kKeys},
                                {0, kKeys, 0, 1})),
            expected);
  EXPECT_NE(run(Tensor({1, 1, 1, kKeys}).cview()), expected);  // the mask does matter

  // Per batch and query, shared by heads.
  Tensor per_query({kBatch, 1, kQueries, kKeys});
  fill_seeded(per_query, 35, 3.0f);
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t h = 0; h < kHeads; ++h)
      for (int64_t i = 0; i < kQueries; ++i)
        for (int64_t j = 0; j < kKeys; ++j) full.at(b, h, i, j) = per_query.at(b, 0, i, j);
  EXPECT_EQ(run(per_query.cview()), run(full.cview()));
}

// Adding the same constant to every logit (through a constant mask) changes no weight: out
// agrees to float rounding (the shift itself rounds in double, far below that).
TEST(ReferenceAttention, TranslationInvariantUnderConstantMask) {
  Tensor q({1, 2, 3, 4}), k({1, 2, 5, 4}), v({1, 2, 5, 3});
  fill_seeded(q, 41);
  fill_seeded(k, 42);
  fill_seeded(v, 43);
  Tensor plain({1, 2, 3, 3}), shifted({1, 2, 3, 3});
  ref::attention(q.cview(), k.cview(), v.cview(), plain.view());
  const std::vector<float> shift(5, 250.0f);
  AttentionOptions options;
  options.mask = simdattn::bhsd_view(shift.data(), 1, 1, 1, 5);
  ref::attention(q.cview(), k.cview(), v.cview(), shifted.view(), options);
  for (size_t n = 0; n < plain.values.size(); ++n) {
    EXPECT_NEAR(shifted.values[n], plain.values[n], float_tolerance(plain.values[n]) + 1e-12) << n;
  }
}

// Query head h of a group reads kv head h / (Hq/Hkv): GQA (and MQA) equal MHA over kv heads
// repeated to Hq, bit for bit (the same double operations happen in the same order).
TEST(ReferenceAttention, GroupedHeadsEqualRepeatedHeads) {
  constexpr int64_t kQueryHeads = 4;
  for (int64_t kv_heads : {1, 2, 4}) {
    Tensor q({2, kQueryHeads, 3, 5}), k({2, kv_heads, 6, 5}), v({2, kv_heads, 6, 2});
    fill_seeded(q, 51);
    fill_seeded(k, 52);
    fill_seeded(v, 53);
    Tensor k_repeated({2, kQueryHeads, 6, 5}), v_repeated({2, kQueryHeads, 6, 2});
    const int64_t group = kQueryHeads / kv_heads;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < kQueryHeads; ++h)
        for (int64_t j = 0; j < 6; ++j) {
          for (int64_t d = 0; d < 5; ++d) k_repeated.at(b, h, j, d) = k.at(b, h / group, j, d);
          for (int64_t d = 0; d < 2; ++d) v_repeated.at(b, h, j, d) = v.at(b, h / group, j, d);
        }
    Tensor grouped({2, kQueryHeads, 3, 2}), repeated({2, kQueryHeads, 3, 2});
    AttentionOptions options;
    options.causal = Causal::bottom_right;
    ref::attention(q.cview(), k.cview(), v.cview(), grouped.view(), options);
    ref::attention(q.cview(), k_repeated.cview(), v_repeated.cview(), repeated.view(), options);
    EXPECT_EQ(grouped.values, repeated.values) << "kv_heads=" << kv_heads;

    Tensor scores_grouped({2, kQueryHeads, 3, 6}), scores_repeated({2, kQueryHeads, 3, 6});
    ref::qk_scores(q.cview(), k.cview(), scores_grouped.view(), 0.25f);
    ref::qk_scores(q.cview(), k_repeated.cview(), scores_repeated.view(), 0.25f);
    EXPECT_EQ(scores_grouped.values, scores_repeated.values) << "kv_heads=" << kv_heads;
    Tensor wv_grouped({2, kQueryHeads, 3, 2}), wv_repeated({2, kQueryHeads, 3, 2});
    ref::weights_v(scores_grouped.cview(), v.cview(), wv_grouped.view());
    ref::weights_v(scores_grouped.cview(), v_repeated.cview(), wv_repeated.view());
    EXPECT_EQ(wv_grouped.values, wv_repeated.values) << "kv_heads=" << kv_heads;
  }
}

// The same numbers stored BSHD ([batch, seq, heads, dim], what projections produce) and BHSD
// give the same bits, including a BSHD output.
TEST(ReferenceAttention, BshdViewsEqualBhsd) {
  constexpr int64_t kBatch = 2, kHeads = 3, kQueries = 4, kKeys = 5, kDim = 4;
  Tensor q({kBatch, kHeads, kQueries, kDim}), k({kBatch, kHeads, kKeys, kDim}),
      v({kBatch, kHeads, kKeys, kDim});
  fill_seeded(q, 61);
  fill_seeded(k, 62);
  fill_seeded(v, 63);
  // BHSD [b][h][s][d] -> BSHD [b][s][h][d]
  auto to_bshd = [](const Tensor& t) {
    std::vector<float> bshd(t.values.size());
    const int64_t heads = t.shape[1], seq = t.shape[2], dim = t.shape[3];
    for (int64_t b = 0; b < t.shape[0]; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t s = 0; s < seq; ++s)
          for (int64_t d = 0; d < dim; ++d)
            bshd[((b * seq + s) * heads + h) * dim + d] = t.at(b, h, s, d);
    return bshd;
  };
  const std::vector<float> q_bshd = to_bshd(q), k_bshd = to_bshd(k), v_bshd = to_bshd(v);

  Tensor expected({kBatch, kHeads, kQueries, kDim});
  AttentionOptions options;
  options.causal = Causal::bottom_right;
  ref::attention(q.cview(), k.cview(), v.cview(), expected.view(), options);

  std::vector<float> out_bshd(expected.values.size(), -7.0f);
  ref::attention(simdattn::bshd_view(q_bshd.data(), kBatch, kQueries, kHeads, kDim),
                 simdattn::bshd_view(k_bshd.data(), kBatch, kKeys, kHeads, kDim),
                 simdattn::bshd_view(v_bshd.data(), kBatch, kKeys, kHeads, kDim),
                 simdattn::bshd_view(out_bshd.data(), kBatch, kQueries, kHeads, kDim), options);
  EXPECT_EQ(out_bshd, to_bshd(expected));
}

// The default scale is 1/sqrt(head_dim): for head_dim 4 that is 0.5 exactly, so leaving it
// unset and setting 0.5 give the same bits; 1.0 gives different ones.
TEST(ReferenceAttention, DefaultScaleIsInverseSqrtHeadDim) {
  Tensor q({1, 1, 3, 4}), k({1, 1, 5, 4}), v({1, 1, 5, 2});
  fill_seeded(q, 71, 2.0f);
  fill_seeded(k, 72, 2.0f);
  fill_seeded(v, 73);
  Tensor unset({1, 1, 3, 2}), half({1, 1, 3, 2}), one({1, 1, 3, 2});
  ref::attention(q.cview(), k.cview(), v.cview(), unset.view());
  AttentionOptions options;
  options.scale = 0.5f;
  ref::attention(q.cview(), k.cview(), v.cview(), half.view(), options);
  options.scale = 1.0f;
  ref::attention(q.cview(), k.cview(), v.cview(), one.view(), options);
  EXPECT_EQ(unset.values, half.values);
  EXPECT_NE(unset.values, one.values);
}

// NaN reaches only the rows that see it: a NaN value of key 3 under a causal mask (Sq = Sk = 4)
// shows in row 3 only; a NaN in query row 1 shows in out row 1 only.
TEST(ReferenceAttention, NanReachesOnlyTheRowsThatSeeIt) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor q({1, 1, 4, 2}), k({1, 1, 4, 2}), v({1, 1, 4, 2});
  fill_seeded(q, 81);
  fill_seeded(k, 82);
  fill_seeded(v, 83);
  v.at(0, 0, 3, 1) = nan;
  q.at(0, 0, 1, 0) = nan;
  Tensor out({1, 1, 4, 2}, -7.0f);
  AttentionOptions options;
  options.causal = Causal::bottom_right;
  ref::attention(q.cview(), k.cview(), v.cview(), out.view(), options);
  EXPECT_TRUE(std::isfinite(out.at(0, 0, 0, 0)) && std::isfinite(out.at(0, 0, 0, 1)));
  EXPECT_TRUE(std::isnan(out.at(0, 0, 1, 0)) && std::isnan(out.at(0, 0, 1, 1)));
  EXPECT_TRUE(std::isfinite(out.at(0, 0, 2, 0)) && std::isfinite(out.at(0, 0, 2, 1)));
  EXPECT_TRUE(std::isfinite(out.at(0, 0, 3, 0)));  // NaN only in the value dimension that has it
  EXPECT_TRUE(std::isnan(out.at(0, 0, 3, 1)));
}

// Weight rows sum to 1 with every option on at once (every row here sees at least one key).
// Each weight is the double value rounded to float once, so |Σ - 1| <= 2^-24 (+ the test's sum).
TEST(ReferenceAttention, WeightRowsSumToOne) {
  constexpr int64_t kBatch = 2, kQueryHeads = 4, kKvHeads = 2, kQueries = 6, kKeys = 9;
  Tensor q({kBatch, kQueryHeads, kQueries, 8}), k({kBatch, kKvHeads, kKeys, 8}),
      v({kBatch, kKvHeads, kKeys, 3});
  fill_seeded(q, 91, 4.0f);
  fill_seeded(k, 92, 4.0f);
  fill_seeded(v, 93);
  Tensor mask({1, kQueryHeads, kQueries, kKeys});
  fill_seeded(mask, 94, 2.0f);
  const float slopes[kQueryHeads] = {0.5f, 0.25f, 0.125f, 0.0625f};
  const int64_t kv_lengths[kBatch] = {7, 9};
  Tensor out({kBatch, kQueryHeads, kQueries, 3}),
      weights({kBatch, kQueryHeads, kQueries, kKeys}, -7.0f);
  AttentionOptions options;
  options.causal = Causal::bottom_right;
  options.window_left = 4;
  options.softcap = 20.0f;
  options.alibi_slopes = slopes;
  options.kv_lengths = kv_lengths;
  options.mask = mask.cview();
  options.weights = weights.view();
  ref::attention(q.cview(), k.cview(), v.cview(), out.view(), options);
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t h = 0; h < kQueryHeads; ++h) {
      for (int64_t i = 0; i < kQueries; ++i) {
        double sum = 0.0;
        for (int64_t j = 0; j < kKeys; ++j) {
          EXPECT_GE(weights.at(b, h, i, j), 0.0f);
          // Keys past kv_lengths[b] or outside causal/window never get weight.
          const int64_t diagonal = i + kv_lengths[b] - kQueries;
          if (j >= kv_lengths[b] || j > diagonal || j < diagonal - 4) {
            EXPECT_EQ(weights.at(b, h, i, j), 0.0f) << "b=" << b << " i=" << i << " j=" << j;
          }
          sum += weights.at(b, h, i, j);
        }
        EXPECT_NEAR(sum, 1.0, 0x1p-24 + 1e-12) << "b=" << b << " h=" << h << " i=" << i;
      }
    }
  }
}

// Empty tensors are valid and do nothing, whatever their data pointer.
TEST(ReferenceAttention, EmptyShapesDoNothing) {
  const ConstTensorView no_q(nullptr, {0, 2, 3, 4}, {24, 12, 4, 1});
  const ConstTensorView no_k(nullptr, {0, 2, 5, 4}, {40, 20, 4, 1});
  const TensorView no_out(nullptr, {0, 2, 3, 4}, {24, 12, 4, 1});
  EXPECT_NO_THROW(ref::attention(no_q, no_k, no_k, no_out));
  const ConstTensorView no_heads(nullptr, {1, 0, 3, 4}, {0, 12, 4, 1});
  const ConstTensorView no_kv_heads(nullptr, {1, 0, 5, 4}, {0, 20, 4, 1});
  const TensorView no_head_out(nullptr, {1, 0, 3, 4}, {0, 12, 4, 1});
  EXPECT_NO_THROW(ref::attention(no_heads, no_kv_heads, no_kv_heads, no_head_out));
  EXPECT_NO_THROW(ref::softmax_rows(TensorView(nullptr, {2, 2, 0, 4}, {0, 0, 4, 1})));
}

}  // namespace

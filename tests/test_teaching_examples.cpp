// The worked examples of the teaching documents the project grew from (docs/teaching-examples.md
// says what each computes), reproduced through the reference API: the numbers they print are the
// expected values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "reference/stored_values.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.hpp"

namespace {

namespace ref = simdattn::reference;
using simdattn::bhsd_view;
using simdattn::ConstTensorView;
using simdattn::TensorView;

// A float result is the double oracle rounded once: half an ulp, 2^-24 relative. The test's own
// double arithmetic (~1e-16) may push the rounding across a boundary, so allow one whole ulp.
constexpr double kFloatRounding = 0x1p-23;

// The documents print 4 decimals: a printed value is within half a unit of the 4th decimal.
constexpr double kFourDecimals = 0.5e-4 + 1e-12;

// "Cats love cozy windows": the made-up 3-d embeddings of the example, one row per word.
const std::vector<float> kCatsLoveCozyWindows = {
    0.10f, 0.20f, 0.30f,  // Cats
    0.40f, 0.50f, 0.60f,  // love
    0.70f, 0.80f, 0.10f,  // cozy
    0.90f, 0.10f, 0.20f,  // windows
};

// Single query: one query against two keys, scale 1, printed by numpy as
// [0.6524979187478941, 0.852497918747894]. 1e-15 relative is ~5 ulp of double: the oracle and
// numpy add the same two products, possibly in another order.
TEST(TeachingExamples, SingleQueryAttention) {
  const std::vector<double> query = {0.5, 0.5};
  const std::vector<std::vector<double>> keys = {{0.1, 0.2}, {0.2, 0.3}};
  const std::vector<std::vector<double>> values = {{0.6, 0.8}, {0.7, 0.9}};
  const std::vector<double> result = ref::single_query_attention(query, keys, values, 1.0);
  ASSERT_EQ(result.size(), 2u);
  EXPECT_NEAR(result[0], 0.6524979187478941, 1e-15 * 0.6524979187478941);
  EXPECT_NEAR(result[1], 0.852497918747894, 1e-15 * 0.852497918747894);
}

// The single query step by step: scores [0.15, 0.25], exp sum 2.4458, then the output [0.6525, 0.8525].
// The document prints the weights as [0.4752, 0.5248], a slip in its hand rounding: its own numbers
// give 1.1618 / 2.4458 = 0.4750, and only 0.4750 reproduces its printed output.
TEST(TeachingExamples, SingleQuerySteps) {
  const std::vector<double> query = {0.5, 0.5};
  EXPECT_NEAR(ref::dot_product(query, {0.1, 0.2}), 0.15, 1e-16);
  EXPECT_NEAR(ref::dot_product(query, {0.2, 0.3}), 0.25, 1e-16);
  const std::vector<double> weights = ref::softmax({0.15, 0.25});
  EXPECT_NEAR(weights[0], 1.1618 / 2.4458, kFourDecimals);
  EXPECT_NEAR(weights[1], 1.2840 / 2.4458, kFourDecimals);
  EXPECT_NEAR(weights[0] + weights[1], 1.0, 2 * std::numeric_limits<double>::epsilon());
  const std::vector<double> output = ref::weighted_sum(weights, {{0.6, 0.8}, {0.7, 0.9}});
  EXPECT_NEAR(output[0], 0.6525, kFourDecimals);
  EXPECT_NEAR(output[1], 0.8525, kFourDecimals);
}

// The single query again through the tensor oracle: one batch, one head, one query, scale 1. The inputs are
// floats now, so the answer is the double one to float accuracy (inputs and output rounded).
TEST(TeachingExamples, SingleQueryAsTensors) {
  const std::vector<float> q = {0.5f, 0.5f};
  const std::vector<float> k = {0.1f, 0.2f, 0.2f, 0.3f};
  const std::vector<float> v = {0.6f, 0.8f, 0.7f, 0.9f};
  std::vector<float> out(2, -1.0f);
  simdattn::AttentionOptions options;
  options.scale = 1.0f;
  ref::attention(bhsd_view(q.data(), 1, 1, 1, 2), bhsd_view(k.data(), 1, 1, 2, 2),
                 bhsd_view(v.data(), 1, 1, 2, 2), bhsd_view(out.data(), 1, 1, 1, 2), options);
  // Each input carries 2^-24 relative error; the output, a convex blend of values, moves by a
  // few times that: 1e-6 is generous and still far below the 4th decimal the document shows.
  EXPECT_NEAR(out[0], 0.6524979187478941, 1e-6);
  EXPECT_NEAR(out[1], 0.852497918747894, 1e-6);
}

// Cats love cozy windows: scores = inputs · inputsᵀ (scale 1); the row of "love" is [0.32, 0.77, 0.74, 0.53].
TEST(TeachingExamples, CatsLoveCozyWindowsScores) {
  std::vector<float> scores(16, -1.0f);
  const ConstTensorView words = bhsd_view(kCatsLoveCozyWindows.data(), 1, 1, 4, 3);
  ref::qk_scores(words, words, bhsd_view(scores.data(), 1, 1, 4, 4), 1.0f);
  const double love[4] = {0.32, 0.77, 0.74, 0.53};
  for (int j = 0; j < 4; ++j) {
    // Float inputs (2^-24 relative each) and the float result: 1e-6 absolute on values below 1.
    EXPECT_NEAR(scores[4 + j], love[j], 1e-6) << "j=" << j;
  }
}

// Cats love cozy windows: softmax of every score row gives the printed weight matrix, and weights · inputs the
// printed context vectors; through the three stage oracles, then through attention itself.
TEST(TeachingExamples, CatsLoveCozyWindowsWeightsAndContext) {
  const double expected_weights[4][4] = {{0.2296, 0.2749, 0.2589, 0.2366},
                                         {0.1878, 0.2946, 0.2859, 0.2317},
                                         {0.1509, 0.2439, 0.3638, 0.2414},
                                         {0.1619, 0.2320, 0.2834, 0.3227}};
  const double expected_context[4][3] = {{0.5271, 0.4141, 0.3070},
                                         {0.5453, 0.4367, 0.3080},
                                         {0.5846, 0.4673, 0.2763},
                                         {0.5978, 0.4074, 0.2807}};
  const ConstTensorView words = bhsd_view(kCatsLoveCozyWindows.data(), 1, 1, 4, 3);

  std::vector<float> weights(16, -1.0f);
  std::vector<float> context(12, -1.0f);
  const TensorView weights_view = bhsd_view(weights.data(), 1, 1, 4, 4);
  ref::qk_scores(words, words, weights_view, 1.0f);
  ref::softmax_rows(weights_view);
  ref::weights_v(weights_view, words, bhsd_view(context.data(), 1, 1, 4, 3));

  std::vector<float> fused_weights(16, -1.0f);
  std::vector<float> fused_context(12, -1.0f);
  simdattn::AttentionOptions options;
  options.scale = 1.0f;
  options.weights = bhsd_view(fused_weights.data(), 1, 1, 4, 4);
  ref::attention(words, words, words, bhsd_view(fused_context.data(), 1, 1, 4, 3), options);

  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      EXPECT_NEAR(weights[i * 4 + j], expected_weights[i][j], kFourDecimals) << i << "," << j;
      EXPECT_NEAR(fused_weights[i * 4 + j], expected_weights[i][j], kFourDecimals) << i << "," << j;
    }
    for (int d = 0; d < 3; ++d) {
      EXPECT_NEAR(context[i * 3 + d], expected_context[i][d], kFourDecimals) << i << "," << d;
      EXPECT_NEAR(fused_context[i * 3 + d], expected_context[i][d], kFourDecimals) << i << "," << d;
    }
  }
}

// Cats love cozy windows with the embeddings stored in bf16 and in fp16, as a KV cache would hold
// them, through the fast path and the oracle, the context written in the same dtype. Rounding
// each input moves a score by at most 2u·S (S = Σ_d |q_d·k_d| of the row, u the format's unit
// roundoff), so a weight by at most 2·2u·S relative, a context value by V·(4u·S + u) (V = max |v|),
// and rounding the context adds u·|c|: the printed values stay within that plus the 4th decimal.
TEST(TeachingExamples, CatsLoveCozyWindowsInBf16AndF16) {
  const double expected_context[4][3] = {{0.5271, 0.4141, 0.3070},
                                         {0.5453, 0.4367, 0.3080},
                                         {0.5846, 0.4673, 0.2763},
                                         {0.5978, 0.4074, 0.2807}};
  for (const simdattn::DType dtype : {simdattn::DType::bf16, simdattn::DType::f16}) {
    const double u = dtype == simdattn::DType::bf16 ? 0x1p-8 : 0x1p-11;
    std::vector<uint16_t> words(kCatsLoveCozyWindows.size()), context(12);
    for (size_t e = 0; e < words.size(); ++e) {
      ref::detail::store_rounded(words.data(), dtype, static_cast<int64_t>(e), kCatsLoveCozyWindows[e]);
    }
    const simdattn::AnyConstTensorView in(words.data(), dtype, {1, 1, 4, 3}, {12, 12, 3, 1});
    const simdattn::AnyTensorView out(context.data(), dtype, {1, 1, 4, 3}, {12, 12, 3, 1});
    simdattn::AttentionOptions options;
    options.scale = 1.0f;
    double largest_row_sum = 0.0;  // S: the largest Σ_d |q_d·k_d| over every pair of words
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        double sum = 0.0;
        for (int d = 0; d < 3; ++d) sum += std::fabs(kCatsLoveCozyWindows[i * 3 + d] * kCatsLoveCozyWindows[j * 3 + d]);
        largest_row_sum = std::max(largest_row_sum, sum);
      }
    const double largest_value = 0.9;
    for (const bool fast : {false, true}) {
      std::fill(context.begin(), context.end(), uint16_t{0xffff});
      if (fast) {
        simdattn::attention(in, in, in, out, options);
      } else {
        ref::attention(in, in, in, out, options);
      }
      for (int i = 0; i < 4; ++i) {
        for (int d = 0; d < 3; ++d) {
          const double value = ref::detail::stored_value(context.data(), dtype, i * 3 + d);
          const double bound = kFourDecimals + largest_value * (4 * u * largest_row_sum + u) +
                               u * std::fabs(expected_context[i][d]);
          EXPECT_NEAR(value, expected_context[i][d], bound)
              << simdattn::dtype_name(dtype) << (fast ? " fast " : " oracle ") << i << "," << d;
        }
      }
    }
  }
}

// Scores used as weights (a practice problem): Q = [1, 0], K1 = [1, 1], K2 = [0, 1] give scores [1, 0]; the unnormalized context
// 1·V1 + 0·V2 = [0.5, 0.5]. Every number is exact in float, so the comparison is exact too.
TEST(TeachingExamples, ScoresUsedAsWeights) {
  const std::vector<float> q = {1.0f, 0.0f};
  const std::vector<float> k = {1.0f, 1.0f, 0.0f, 1.0f};
  const std::vector<float> v = {0.5f, 0.5f, 0.2f, 0.8f};
  std::vector<float> scores(2, -1.0f);
  std::vector<float> context(2, -1.0f);
  ref::qk_scores(bhsd_view(q.data(), 1, 1, 1, 2), bhsd_view(k.data(), 1, 1, 2, 2),
                 bhsd_view(scores.data(), 1, 1, 1, 2), 1.0f);
  EXPECT_EQ(scores, (std::vector<float>{1.0f, 0.0f}));
  ref::weights_v(bhsd_view(static_cast<const float*>(scores.data()), 1, 1, 1, 2),
                 bhsd_view(v.data(), 1, 1, 2, 2), bhsd_view(context.data(), 1, 1, 1, 2));
  EXPECT_EQ(context, (std::vector<float>{0.5f, 0.5f}));
}

// Softmax near 1000: the naive exp(x)/Σexp(x) overflows for scores near 1000 (exp(1000) is inf in double, and
// inf/inf is NaN); the max-subtracted softmax gives the same weights as for scores near 0.
TEST(TeachingExamples, NaiveAgainstStableSoftmax) {
  const std::vector<double> large = {1000.0, 1001.0, 1002.0};
  const std::vector<double> naive = ref::softmax_naive(large);
  for (double w : naive) EXPECT_FALSE(std::isfinite(w)) << w;

  const std::vector<double> stable = ref::softmax(large);
  const std::vector<double> small = ref::softmax({0.0, 1.0, 2.0});
  double sum = 0.0;
  for (size_t j = 0; j < stable.size(); ++j) {
    ASSERT_TRUE(std::isfinite(stable[j])) << j;
    // 1000 + x is exact in double here, so subtracting the max gives exactly the small scores.
    EXPECT_EQ(stable[j], small[j]) << j;
    sum += stable[j];
  }
  EXPECT_NEAR(sum, 1.0, 4 * std::numeric_limits<double>::epsilon());

  // Where exp does not overflow, the two formulas agree to rounding.
  const std::vector<double> moderate = {0.3, -1.2, 2.5, 0.0};
  const std::vector<double> naive_moderate = ref::softmax_naive(moderate);
  const std::vector<double> stable_moderate = ref::softmax(moderate);
  for (size_t j = 0; j < moderate.size(); ++j) {
    EXPECT_NEAR(naive_moderate[j], stable_moderate[j], 1e-15) << j;
  }
}

// Softmax near 1000 on tensors: the float softmax_rows oracle keeps a row near 1000 finite and normalized.
TEST(TeachingExamples, SoftmaxRowsNear1000StaysFinite) {
  std::vector<float> scores = {1000.0f, 999.0f, 998.5f, 1000.0f};
  ref::softmax_rows(bhsd_view(scores.data(), 1, 1, 1, 4));
  double sum = 0.0;
  for (float w : scores) {
    ASSERT_TRUE(std::isfinite(w));
    sum += w;
  }
  // Four weights each rounded to float: |Σ - 1| <= 4 · 2^-24.
  EXPECT_NEAR(sum, 1.0, 4 * 0x1p-24);
  EXPECT_EQ(scores[0], scores[3]);
  EXPECT_NEAR(scores[0] / scores[1], std::exp(1.0), kFloatRounding * 4 * std::exp(1.0));
}

}  // namespace

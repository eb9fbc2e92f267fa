// qk_scores, softmax_rows and weights_v against their oracles, on every ISA the host runs, over
// sizes at, below and above every tile edge (micro-tile rows 6/12/24, panels of 8/16/32 columns,
// key blocks of 256), several head_dims, grouped heads and every layout.
#include <cmath>
#include <limits>
#include <sstream>
#include <tuple>

#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

struct StageShape {
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim;
  Layout layout;
};

std::string describe(detail::Isa isa, const StageShape& s) {
  std::ostringstream out;
  out << detail::isa_name(isa) << " B=" << s.batch << " Hq=" << s.q_heads << " Hkv=" << s.kv_heads
      << " Sq=" << s.sq << " Sk=" << s.sk << " D=" << s.head_dim << " " << layout_name(s.layout);
  return out.str();
}

std::vector<StageShape> stage_shapes() {
  std::vector<StageShape> shapes;
  for (int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 257, 300, 511, 513, 600}) {
    shapes.push_back({1, 1, 1, n, n, 64, Layout::bhsd});
    shapes.push_back({1, 2, 1, n, 37, 16, Layout::padded});
    shapes.push_back({2, 1, 1, 5, n, 8, Layout::bshd});
  }
  for (int64_t d : {1, 2, 3, 5, 8, 16, 17, 31, 64, 80, 96, 112, 128, 256}) {
    shapes.push_back({1, 2, 2, 19, 23, d, Layout::bhsd});
    shapes.push_back({1, 4, 1, 3, 70, d, Layout::padded});
  }
  shapes.push_back({2, 8, 2, 70, 300, 48, Layout::bshd});
  shapes.push_back({1, 8, 1, 1, 1000, 128, Layout::bhsd});
  return shapes;
}

class Stages : public ::testing::TestWithParam<std::tuple<detail::Isa, StageShape>> {};

TEST_P(Stages, QkScoresMatchesOracle) {
  const auto [isa, s] = GetParam();
  Tensor q(s.batch, s.q_heads, s.sq, s.head_dim, s.layout), k(s.batch, s.kv_heads, s.sk, s.head_dim, s.layout);
  q.fill_uniform(1);
  k.fill_uniform(2);
  Tensor expected(s.batch, s.q_heads, s.sq, s.sk, s.layout), actual(s.batch, s.q_heads, s.sq, s.sk, s.layout);
  const float scale = 0.37f;
  reference::qk_scores(q.in(), k.in(), expected.view, scale);
  {
    detail::ScopedIsaOverride use(isa);
    qk_scores(q.in(), k.in(), actual.view, scale);
  }
  EXPECT_TRUE(all_close(expected, actual, score_tolerance(logit_magnitude(q, k, scale), s.head_dim),
                        describe(isa, s)));
}

TEST_P(Stages, WeightsVMatchesOracle) {
  const auto [isa, s] = GetParam();
  // Weights drawn in [0, 1) as a softmax would give, values in [-1, 1).
  Tensor weights(s.batch, s.q_heads, s.sq, s.sk, s.layout), v(s.batch, s.kv_heads, s.sk, s.head_dim, s.layout);
  weights.fill_uniform(3, 0.0f, 1.0f);
  v.fill_uniform(4);
  Tensor expected(s.batch, s.q_heads, s.sq, s.head_dim, s.layout), actual(s.batch, s.q_heads, s.sq, s.head_dim, s.layout);
  reference::weights_v(weights.in(), v.in(), expected.view);
  {
    detail::ScopedIsaOverride use(isa);
    weights_v(weights.in(), v.in(), actual.view);
  }
  // Σ_j w_j v_j with w in [0,1), |v| < 1: gamma(Sk) · Σ|w_j v_j| <= gamma(Sk) · Sk, plus rounding.
  const double magnitude = static_cast<double>(s.sk);
  EXPECT_TRUE(all_close(expected, actual, (gamma(s.sk) + kUnitRoundoff) * magnitude, describe(isa, s)));
}

INSTANTIATE_TEST_SUITE_P(AllShapes, Stages,
                         ::testing::Combine(::testing::ValuesIn(host_isas()), ::testing::ValuesIn(stage_shapes())),
                         [](const auto& info) {
                           const StageShape& s = std::get<1>(info.param);
                           std::ostringstream name;
                           name << detail::isa_name(std::get<0>(info.param)) << "_B" << s.batch << "_Hq"
                                << s.q_heads << "_Hkv" << s.kv_heads << "_Sq" << s.sq << "_Sk" << s.sk
                                << "_D" << s.head_dim << "_" << layout_name(s.layout);
                           return name.str();
                         });

// --- softmax_rows ---

class SoftmaxRows : public ::testing::TestWithParam<detail::Isa> {};

// Rows of every length around the register widths 4, 8 and 16, with inputs of each kind that breaks
// a naive softmax: large (exp overflows: XNNPACK's [90, 100]), all negative, ties, -inf entries.
TEST_P(SoftmaxRows, MatchesOracleOnHardRows) {
  const detail::Isa isa = GetParam();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000}) {
    for (int kind = 0; kind < 5; ++kind) {
      Tensor expected(1, 2, 3, n, Layout::padded);
      switch (kind) {
        case 0: expected.fill_uniform(10 + n, -5.0f, 5.0f); break;
        case 1: expected.fill_uniform(20 + n, 90.0f, 100.0f); break;
        case 2: expected.fill_uniform(30 + n, -1e4f, -1e3f); break;
        case 3: expected.fill(1e4f); break;  // ties
        case 4:
          expected.fill_uniform(40 + n);
          for (int64_t j = 0; j < n; j += 2) expected.at(0, 1, 2, j) = -inf;
          break;
      }
      Tensor actual = expected;
      reference::softmax_rows(expected.view);
      {
        detail::ScopedIsaOverride use(isa);
        softmax_rows(actual.view);
      }
      // Each weight: exp (2 ULP) of an exactly computed difference, a sum of n terms, one product.
      const double tolerance = 3.0 * kUnitRoundoff + gamma(n + 1) + kUnitRoundoff;
      std::ostringstream context;
      context << detail::isa_name(isa) << " n=" << n << " kind=" << kind;
      EXPECT_TRUE(all_close(expected, actual, tolerance, context.str()));
    }
  }
}

TEST_P(SoftmaxRows, AllMinusInfinityRowBecomesZerosAndRowsSumToOne) {
  detail::ScopedIsaOverride use(GetParam());
  const float inf = std::numeric_limits<float>::infinity();
  Tensor scores(1, 1, 2, 37);
  scores.fill_uniform(5, -1e4f, 1e4f);
  for (int64_t j = 0; j < 37; ++j) scores.at(0, 0, 1, j) = -inf;
  softmax_rows(scores.view);
  double sum = 0.0;
  for (int64_t j = 0; j < 37; ++j) {
    EXPECT_EQ(scores.at(0, 0, 1, j), 0.0f);
    EXPECT_TRUE(std::isfinite(scores.at(0, 0, 0, j)));
    sum += scores.at(0, 0, 0, j);
  }
  EXPECT_NEAR(sum, 1.0, gamma(38));
}

INSTANTIATE_TEST_SUITE_P(Isa, SoftmaxRows, ::testing::ValuesIn(host_isas()), isa_test_name);

}  // namespace
}  // namespace simdattn::testing

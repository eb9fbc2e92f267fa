// The vectorised exponentials against the correctly rounded e^x and 2^x, on every ISA the host runs.
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/tile_kernels.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

class VectorMath : public ::testing::TestWithParam<detail::Isa> {};

// Distance in representable floats between two positive finite floats.
int64_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  return std::llabs(int64_t{ia} - int64_t{ib});
}

std::vector<float> exp_of(detail::Isa isa, const std::vector<float>& x, bool base_two = false) {
  std::vector<float> y(x.size());
  detail::run_for_isa(isa, detail::ExpArray{base_two}, x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

std::vector<float> exp2_of(detail::Isa isa, const std::vector<float>& x) { return exp_of(isa, x, true); }

// Every 61st float from 0 to `largest` (bit patterns of positive floats increase with their
// values), each with its negative when that is at least `smallest`; positives too when asked.
std::vector<float> every_61st_float(float smallest, float largest, bool positives) {
  std::vector<float> x;
  int32_t last;
  std::memcpy(&last, &largest, sizeof last);
  for (int32_t bits = 0; bits <= last; bits += 61) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    if (positives) x.push_back(value);
    if (-value >= smallest) x.push_back(-value);
  }
  return x;
}

// The largest distance in ULP of y[i] from the correctly rounded exact(x[i]) over the x whose
// result is a normal float, and where it is; "worst N ULP at x = ... over M inputs".
template <class Exact>
std::pair<int64_t, std::string> worst_ulp(const std::vector<float>& x, const std::vector<float>& y,
                                          Exact exact_of) {
  int64_t worst = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float exact = static_cast<float>(exact_of(static_cast<double>(x[i])));
    if (exact < std::numeric_limits<float>::min()) continue;
    const int64_t distance = ulp_distance(exact, y[i]);
    if (distance > worst) worst = distance, worst_x = x[i];
  }
  std::ostringstream where;
  where << "worst " << worst << " ULP at x = " << worst_x << " over " << x.size() << " inputs";
  return {worst, where.str()};
}

// The documented bound: 2 ULP wherever e^x is a normal float, x in [-87.33, 88.37]. Every 61st
// float of that range (about 36 million per ISA; the exhaustive sweep gave the same maximum).
TEST_P(VectorMath, ExpWithinTwoUlpOverTheNormalRange) {
  const std::vector<float> x = every_61st_float(-87.33f, 88.37f, true);
  const auto [worst, where] = worst_ulp(x, exp_of(GetParam(), x), [](double v) { return std::exp(v); });
  EXPECT_LE(worst, 2) << detail::isa_name(GetParam()) << ": " << where;
  EXPECT_GT(x.size(), 1000000u);
}

TEST_P(VectorMath, ExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {-inf, inf, std::nanf(""), -1000.0f, -88.0f, 0.0f, -0.0f, 89.0f, 1000.0f};
  const std::vector<float> y = exp_of(GetParam(), x);
  // The documented ceiling: e^x at the clamp, a float, within the 2 ULP of the other results
  // (an ULP is 2^104 ≈ 2.03e31 at this magnitude).
  const float saturated = static_cast<float>(std::exp(static_cast<double>(88.37626266f)));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_NEAR(y[1], saturated, 4.1e31);
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_GE(y[4], 0.0f);   // below FLT_MIN: flushed to 0
  EXPECT_LT(y[4], 1.2e-38f);
  EXPECT_EQ(y[5], 1.0f);
  EXPECT_EQ(y[6], 1.0f);
  EXPECT_NEAR(y[7], saturated, 4.1e31);
  EXPECT_NEAR(y[8], saturated, 4.1e31);
  EXPECT_TRUE(std::isfinite(y[8]));
}

// The documented bound of exp2_approx: 1 ULP wherever 2^x is a normal float and x <= 0, x in
// [-126, 0]. Every 61st float of that range (about 18 million per ISA).
TEST_P(VectorMath, Exp2WithinOneUlpOverTheNonPositiveNormalRange) {
  const std::vector<float> x = every_61st_float(-126.0f, 126.0f, false);
  const auto [worst, where] = worst_ulp(x, exp2_of(GetParam(), x), [](double v) { return std::exp2(v); });
  EXPECT_LE(worst, 1) << detail::isa_name(GetParam()) << ": " << where;
  EXPECT_GT(x.size(), 1000000u);
}

// The documented bound of exp2_approx's Coarse form: relative 5e-6 wherever 2^x is a normal float
// and x in [-126, 0], over the same inputs.
TEST_P(VectorMath, CoarseExp2WithinItsRelativeBound) {
  const std::vector<float> x = every_61st_float(-126.0f, 126.0f, false);
  std::vector<float> y(x.size());
  detail::run_for_isa(GetParam(), detail::ExpArray{true, true}, x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp2(static_cast<double>(x[i]));
    if (exact < std::numeric_limits<float>::min()) continue;
    const double relative = std::fabs(double(y[i]) - exact) / exact;
    if (relative > worst) worst = relative, worst_x = x[i];
  }
  EXPECT_LE(worst, 5e-6) << detail::isa_name(GetParam()) << ": at x = " << worst_x;
  EXPECT_GT(worst, 1e-6) << "the coarse polynomial is not the one measured";
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = {-inf, std::nanf(""), -1000.0f, -126.5f, 0.0f, -1.0f};
  std::vector<float> z(special.size());
  detail::run_for_isa(GetParam(), detail::ExpArray{true, true}, special.data(), z.data(),
                      static_cast<int64_t>(special.size()));
  EXPECT_EQ(z[0], 0.0f);
  EXPECT_TRUE(std::isnan(z[1]));
  EXPECT_EQ(z[2], 0.0f);
  EXPECT_EQ(z[3], 0.0f);
  EXPECT_EQ(z[4], 1.0f);
  EXPECT_EQ(z[5], 0.5f);
}

TEST_P(VectorMath, Exp2SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {-inf, std::nanf(""), -1000.0f, -126.5f, -126.0f, 0.0f, -0.0f, -0.5f, -1.0f};
  const std::vector<float> y = exp2_of(GetParam(), x);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 0.0f);  // below FLT_MIN: flushed to 0
  EXPECT_EQ(y[4], std::numeric_limits<float>::min());
  EXPECT_EQ(y[5], 1.0f);
  EXPECT_EQ(y[6], 1.0f);
  EXPECT_LE(ulp_distance(y[7], static_cast<float>(std::sqrt(0.5))), 2);
  EXPECT_EQ(y[8], 0.5f);
}

INSTANTIATE_TEST_SUITE_P(Isa, VectorMath, ::testing::ValuesIn(host_isas()), isa_test_name);

}  // namespace
}  // namespace simdattn::testing

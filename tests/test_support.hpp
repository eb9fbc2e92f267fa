// Shared by the kernel tests: seeded tensors in several layouts, the ISAs to run, and the error
// bounds the fast paths are held to against the double-accumulating oracles.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dispatch.hpp"
#include "simdattn/simdattn.hpp"

namespace simdattn::testing {

// How a test tensor sits in memory. `padded` leaves NaN-filled gaps after every row, head and batch,
// so that any read outside the view poisons the result.
enum class Layout { bhsd, bshd, padded };

inline const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::bhsd: return "bhsd";
    case Layout::bshd: return "bshd";
    case Layout::padded: return "padded";
  }
  return "?";
}

struct Tensor {
  std::vector<float> storage;
  TensorView view;

  Tensor(int64_t batch, int64_t heads, int64_t seq, int64_t dim, Layout layout = Layout::bhsd) {
    std::array<int64_t, 4> strides{};
    int64_t size = 0;
    switch (layout) {
      case Layout::bhsd:
        strides = {heads * seq * dim, seq * dim, dim, 1};
        size = batch * heads * seq * dim;
        break;
      case Layout::bshd:
        strides = {seq * heads * dim, dim, heads * dim, 1};
        size = batch * heads * seq * dim;
        break;
      case Layout::padded: {
        const int64_t row = dim + 3, head = seq * row + 5, batch_stride = heads * head + 7;
        strides = {batch_stride, head, row, 1};
        size = batch * batch_stride;
        break;
      }
    }
    storage.assign(static_cast<size_t>(size), std::numeric_limits<float>::quiet_NaN());
    view = TensorView(storage.data(), {batch, heads, seq, dim}, strides);
  }

  Tensor(const Tensor& other) : storage(other.storage), view(other.view) { view.data = storage.data(); }
  Tensor& operator=(const Tensor&) = delete;

  float& at(int64_t b, int64_t h, int64_t s, int64_t d) { return view.row(b, h, s)[d]; }
  float at(int64_t b, int64_t h, int64_t s, int64_t d) const { return view.row(b, h, s)[d]; }
  ConstTensorView in() const { return view; }

  // Every element of the view, uniform in [low, high), from a fixed seed.
  Tensor& fill_uniform(uint64_t seed, float low = -1.0f, float high = 1.0f) {
    std::mt19937_64 generator(seed);
    std::uniform_real_distribution<float> distribution(low, high);
    for_each([&](float& x) { x = distribution(generator); });
    return *this;
  }
  Tensor& fill(float value) {
    for_each([&](float& x) { x = value; });
    return *this;
  }
  template <class F>
  void for_each(F&& f) {
    for (int64_t b = 0; b < view.shape[0]; ++b)
      for (int64_t h = 0; h < view.shape[1]; ++h)
        for (int64_t s = 0; s < view.shape[2]; ++s)
          for (int64_t d = 0; d < view.shape[3]; ++d) f(at(b, h, s, d));
  }
};

// Every ISA this host runs, for INSTANTIATE_TEST_SUITE_P.
inline std::vector<detail::Isa> host_isas() { return detail::supported_isas(); }

// Whether this ISA's fused tile multiplies bf16 pairs for bf16 q, k and v (AMX tiles or
// AVX512-BF16's VDPBF16PS: src/kernels/pair_tiles.hpp), rounding the weights to bf16 before P·V.
inline bool multiplies_bf16_pairs(detail::Isa isa) {
  const std::string name = detail::isa_name(isa);
  return name == "amx" || name == "avx512bf16";
}

inline std::string isa_test_name(const ::testing::TestParamInfo<detail::Isa>& info) {
  return detail::isa_name(info.param);
}

// --- Error bounds (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1) ---
// A float sum or dot product of n terms with any association is off by at most
// gamma(n) · Σ|terms|, gamma(n) = n·u / (1 - n·u), u = 2^-24 the unit roundoff of float.
inline constexpr double kUnitRoundoff = 0x1p-24;
// The AMX tile's weights (README, Guarantees): rounded to bf16 (2⁻⁸ relative each) from a 2^x
// within 5e-6 relative (exp2_approx's Coarse form), which moves a weight's numerator and the sum
// it is divided by: their sum, times max|v|, on an output.
inline constexpr double kAmxWeightError = 0x1p-8 + 2 * 5e-6;
inline double gamma(int64_t n) {
  const double nu = static_cast<double>(n) * kUnitRoundoff;
  return nu / (1.0 - nu);
}

// Bound on |fast - oracle| for one output element of attention over `keys` keys:
//  - each logit s_j = scale·q·k_j (+ biases) is off by at most
//    delta = gamma(head_dim + 6) · logit_magnitude (dot product, scale, soft-cap and bias
//    roundings, and two for the base 2 the fused tiles work in: scale·log2(e), bias·log2(e));
//  - the weight p_j = e^(s_j - m) / Σ e^(s_i - m) is then off relatively by at most 2·delta
//    (numerator and denominator), plus 2 ULP of the vectorised exp (exp2_approx, which the fused
//    tiles use, is within 1), plus gamma(keys) from the sum
//    and one rounding of the division: rel_p = 2·delta + 3u + gamma(keys);
//  - o = Σ p_j v_j adds gamma(keys) · Σ p_j|v_j| <= gamma(keys) · value_magnitude;
//  - the oracle's own result is rounded to float: half an ULP, u · |o| <= u · value_magnitude.
// logit_magnitude bounds scale·Σ_d|q_d·k_jd| + |biases| over the keys, value_magnitude max |v|.
inline double attention_tolerance(double logit_magnitude, int64_t head_dim, int64_t keys,
                                  double value_magnitude) {
  const double delta = gamma(head_dim + 6) * logit_magnitude;
  const double relative_weight_error = 2.0 * delta + 3.0 * kUnitRoundoff + gamma(keys + 1);
  return value_magnitude * (relative_weight_error + gamma(keys) + kUnitRoundoff);
}

// Bound for one log-sum-exp, lse = m + log Σ (the fused tiles: m_2·ln 2 + log Σ, m_2 the base-2
// max): the logit error delta, the roundings of the product by ln 2, the log and the addition,
// and the sum's relative error.
inline double lse_tolerance(double logit_magnitude, int64_t head_dim, int64_t keys) {
  return gamma(head_dim + 6) * logit_magnitude + 4 * kUnitRoundoff * logit_magnitude + gamma(keys + 2);
}

// Bound for one logit of qk_scores: a dot product of head_dim terms and one scaling, then the
// oracle's rounding.
inline double score_tolerance(double logit_magnitude, int64_t head_dim) {
  return (gamma(head_dim + 1) + kUnitRoundoff) * logit_magnitude;
}

// scale · max over rows i and keys j of Σ_d |q_id · k_jd| (every head pair; an upper bound).
inline double logit_magnitude(const Tensor& q, const Tensor& k, double scale) {
  double largest = 0.0;
  const auto& qs = q.view.shape;
  const auto& ks = k.view.shape;
  const int64_t group = qs[1] / ks[1];
  for (int64_t b = 0; b < qs[0]; ++b)
    for (int64_t h = 0; h < qs[1]; ++h)
      for (int64_t i = 0; i < qs[2]; ++i)
        for (int64_t j = 0; j < ks[2]; ++j) {
          double sum = 0.0;
          for (int64_t d = 0; d < qs[3]; ++d) sum += std::fabs(double(q.at(b, h, i, d)) * k.at(b, h / group, j, d));
          largest = std::max(largest, sum);
        }
  return std::fabs(scale) * largest;
}

inline double max_magnitude(const Tensor& t) {
  double largest = 0.0;
  const_cast<Tensor&>(t).for_each([&](float& x) { largest = std::max(largest, double(std::fabs(x))); });
  return largest;
}

// Checks every element of a tensor shaped like `tensor`: is_right(b, h, i, d) says whether it is
// as expected, describe(report, b, h, i, d) writes what is wrong with one that is not. On failure:
// "<context>: <count> elements <verdict>" and the index and description of the first few.
template <class IsRight, class Describe>
::testing::AssertionResult check_every_element(const Tensor& tensor, const std::string& context,
                                               const std::string& verdict, IsRight&& is_right,
                                               Describe&& describe) {
  int64_t failures = 0;
  std::ostringstream report;
  const auto& s = tensor.view.shape;
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t i = 0; i < s[2]; ++i)
        for (int64_t d = 0; d < s[3]; ++d) {
          if (is_right(b, h, i, d)) continue;
          if (failures++ < 5) {
            report << "\n  at [" << b << "," << h << "," << i << "," << d << "]: ";
            describe(report, b, h, i, d);
          }
        }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << context << ": " << failures << " elements " << verdict
                                       << report.str();
}

// Compares every element of `actual` with `expected` within `tolerance`; on failure prints the
// context (ISA, shape, options), the index, the expected and the actual value of the first few.
inline ::testing::AssertionResult all_close(const Tensor& expected, const Tensor& actual,
                                            double tolerance, const std::string& context) {
  std::ostringstream verdict;
  verdict << "differ by more than " << tolerance;
  return check_every_element(
      expected, context, verdict.str(),
      [&](int64_t b, int64_t h, int64_t i, int64_t d) {
        const float e = expected.at(b, h, i, d), a = actual.at(b, h, i, d);
        const bool both_nan = std::isnan(e) && std::isnan(a);
        const bool same_infinity = std::isinf(e) && e == a;
        return both_nan || same_infinity || std::fabs(double(e) - double(a)) <= tolerance;
      },
      [&](std::ostream& report, int64_t b, int64_t h, int64_t i, int64_t d) {
        const float e = expected.at(b, h, i, d), a = actual.at(b, h, i, d);
        report << "expected " << e << ", actual " << a << " (difference "
               << std::fabs(double(e) - double(a)) << ")";
      });
}

// True when both tensors hold the same bits everywhere.
inline bool bitwise_equal(const Tensor& x, const Tensor& y) {
  bool equal = true;
  const auto& s = x.view.shape;
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t i = 0; i < s[2]; ++i)
        equal = equal && std::memcmp(x.view.row(b, h, i), y.view.row(b, h, i), sizeof(float) * s[3]) == 0;
  return equal;
}

}  // namespace simdattn::testing

// The single-vector oracles of the teaching documents: dot product, softmax (stable and naive),
// weighted sum and single-query attention, in double, as plain loops.
#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "simdattn/reference.hpp"

namespace simdattn::reference {
namespace {

// Throws std::invalid_argument "<function>: <what> must equal <expected>, got <actual>".
void expect_size(const char* function, const std::string& what, std::size_t actual,
                 const std::string& expected_name, std::size_t expected) {
  if (actual == expected) return;
  std::ostringstream message;
  message << function << ": " << what << " must equal " << expected_name << " = " << expected
          << ", got " << actual;
  throw std::invalid_argument(message.str());
}

}  // namespace

// Σ_i a[i]·b[i] in double; a and b of equal length.
double dot_product(const std::vector<double>& a, const std::vector<double>& b) {
  expect_size("simdattn::reference::dot_product", "b.size()", b.size(), "a.size()", a.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// exp(x - max) / Σ exp(x - max). A -inf entry is excluded: its weight is exactly 0. No finite
// entry -> all zeros. A NaN or a +inf (inf - inf) makes every weight of the row NaN, as
// torch.softmax does, so a bad input shows instead of hiding.
std::vector<double> softmax(const std::vector<double>& scores) {
  const double minus_infinity = -std::numeric_limits<double>::infinity();
  // The max that lets a NaN through: once `largest` is NaN no comparison replaces it.
  double largest = minus_infinity;
  for (double x : scores) {
    if (std::isnan(x) || x > largest) largest = x;
  }
  std::vector<double> weights(scores.size(), 0.0);
  if (largest == minus_infinity) return weights;  // empty, or every entry excluded
  if (std::isnan(largest) || std::isinf(largest)) {
    return std::vector<double>(scores.size(), std::numeric_limits<double>::quiet_NaN());
  }

  double sum = 0.0;
  for (std::size_t j = 0; j < scores.size(); ++j) {
    if (scores[j] == minus_infinity) continue;
    weights[j] = std::exp(scores[j] - largest);
    sum += weights[j];
  }
  for (std::size_t j = 0; j < scores.size(); ++j) {
    if (scores[j] != minus_infinity) weights[j] /= sum;
  }
  return weights;
}

// exp(x) / Σ exp(x), literally: exp overflows to inf above ~709.78, and inf / inf is NaN.
std::vector<double> softmax_naive(const std::vector<double>& scores) {
  double sum = 0.0;
  for (double x : scores) sum += std::exp(x);
  std::vector<double> weights(scores.size());
  for (std::size_t j = 0; j < scores.size(); ++j) weights[j] = std::exp(scores[j]) / sum;
  return weights;
}

// Σ_j weights[j] · values[j]; one value vector per weight, all of one length (the result's).
std::vector<double> weighted_sum(const std::vector<double>& weights,
                                 const std::vector<std::vector<double>>& values) {
  const char* function = "simdattn::reference::weighted_sum";
  expect_size(function, "values.size()", values.size(), "weights.size()", weights.size());
  const std::size_t width = values.empty() ? 0 : values[0].size();
  for (std::size_t j = 1; j < values.size(); ++j) {
    expect_size(function, "values[" + std::to_string(j) + "].size()", values[j].size(),
                "values[0].size()", width);
  }
  std::vector<double> sum(width, 0.0);
  for (std::size_t j = 0; j < values.size(); ++j) {
    for (std::size_t d = 0; d < width; ++d) sum[d] += weights[j] * values[j][d];
  }
  return sum;
}

// weighted_sum(softmax(scale · keys·query), values); as many keys as values, each key as long as
// the query. No keys: an empty result (there is no value to say how long it would be).
std::vector<double> single_query_attention(const std::vector<double>& query,
                                           const std::vector<std::vector<double>>& keys,
                                           const std::vector<std::vector<double>>& values,
                                           double scale) {
  const char* function = "simdattn::reference::single_query_attention";
  expect_size(function, "values.size()", values.size(), "keys.size()", keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j) {
    expect_size(function, "keys[" + std::to_string(j) + "].size()", keys[j].size(), "query.size()",
                query.size());
  }
  if (!std::isfinite(scale)) {
    std::ostringstream message;
    message << function << ": scale must be finite, got " << scale;
    throw std::invalid_argument(message.str());
  }
  std::vector<double> scores(keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j) scores[j] = scale * dot_product(keys[j], query);
  return weighted_sum(softmax(scores), values);
}

}  // namespace simdattn::reference

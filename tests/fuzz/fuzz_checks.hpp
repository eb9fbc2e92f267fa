// What the fuzz target demands of a call, and the error bounds it holds results to: those of
// tests/test_support.hpp (Higham's gamma(n) bounds, derived there and in the README's "Numerical
// accuracy" section), restated here because the fuzz target does not link GoogleTest.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_tensor.hpp"

namespace simdattn::fuzz {

// Reports a broken promise and aborts, which libFuzzer records as a crash with its input.
[[noreturn]] inline void broken(const std::string& what) {
  std::fprintf(stderr, "\nsimdattn fuzz: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

constexpr double kUnitRoundoff = 0x1p-24;
inline double gamma(int64_t n) {
  const double nu = static_cast<double>(n) * kUnitRoundoff;
  return nu / (1.0 - nu);
}
inline double attention_tolerance(double logits, int64_t head_dim, int64_t keys, double values) {
  const double delta = gamma(head_dim + 6) * logits;
  return values * (2.0 * delta + 3.0 * kUnitRoundoff + gamma(keys + 1) + gamma(keys) + kUnitRoundoff);
}
inline double lse_tolerance(double logits, int64_t head_dim, int64_t keys) {
  return gamma(head_dim + 6) * logits + 4 * kUnitRoundoff * logits + gamma(keys + 2);
}

// The largest finite |x| over the elements of a view (0 for none).
inline double max_finite_magnitude(const FuzzTensor& t) {
  double largest = 0.0;
  t.for_each_offset([&](int64_t offset) {
    const double x = std::fabs(static_cast<double>(t.storage[static_cast<size_t>(offset)]));
    if (std::isfinite(x)) largest = std::max(largest, x);
  });
  return largest;
}

// max over (b, h, i, j) of Σ_d |q_id · k_jd| over the finite products, for q [B,Hq,Sq,D] and
// k [B,Hkv,Sk,D] (rows with a non-finite product are NaN or excluded in both results alike).
// every_key_batch: each query batch meets every batch of k instead of its own, as a query of a
// packed batch may read any block of a paged pool (a bound, not the exact pairs).
inline double dot_magnitude(const FuzzTensor& q, const FuzzTensor& k, bool every_key_batch = false) {
  const ConstTensorView qv = q.view(), kv = k.view();
  if (qv.shape[1] == 0 || kv.shape[1] == 0) return 0.0;
  const int64_t group = qv.shape[1] / kv.shape[1];
  double largest = 0.0;
  for (int64_t b = 0; b < qv.shape[0]; ++b)
    for (int64_t h = 0; h < qv.shape[1]; ++h)
      for (int64_t i = 0; i < qv.shape[2]; ++i)
        for (int64_t kb = every_key_batch ? 0 : b; kb < (every_key_batch ? kv.shape[0] : b + 1); ++kb)
          for (int64_t j = 0; j < kv.shape[2]; ++j) {
            double sum = 0.0;
            for (int64_t d = 0; d < qv.shape[3]; ++d) {
              const double term = std::fabs(double(qv.row(b, h, i)[d]) * double(kv.row(kb, h / group, j)[d]));
              if (std::isfinite(term)) sum += term;
            }
            largest = std::max(largest, sum);
          }
  return largest;
}

// Every element of the fast result `fast` against the oracle's `expected` (a copy of fast's
// storage written by the oracle): NaN where it has NaN, the same infinity, else within tolerance.
inline void expect_close(const std::string& what, const FuzzTensor& fast, const std::vector<float>& expected,
                         double tolerance) {
  const simdattn_tensor& c = fast.c;
  for (int64_t b = 0; b < c.shape[0]; ++b)
    for (int64_t h = 0; h < c.shape[1]; ++h)
      for (int64_t i = 0; i < c.shape[2]; ++i) {
        const int64_t row = b * c.strides[0] + h * c.strides[1] + i * c.strides[2];
        for (int64_t j = 0; j < c.shape[3]; ++j) {
          const int64_t offset = row + j * c.strides[3];
          const float e = expected[static_cast<size_t>(offset)], a = fast.storage[static_cast<size_t>(offset)];
          if (std::isnan(e) && std::isnan(a)) continue;
          if (std::isinf(e) && e == a) continue;
          if (std::fabs(double(e) - double(a)) <= tolerance) continue;
          broken(what + ": at [" + std::to_string(b) + "," + std::to_string(h) + "," + std::to_string(i) + "," +
                 std::to_string(j) + "] the oracle has " + std::to_string(e) + " and the fast path " +
                 std::to_string(a) + " (tolerance " + std::to_string(tolerance) + ")");
        }
      }
}

// The bytes of a tensor's memory, to show that a call left them alone.
inline std::vector<unsigned char> bytes_of(const FuzzTensor& t) {
  std::vector<unsigned char> bytes(t.storage.size() * sizeof(float));
  if (!bytes.empty()) std::memcpy(bytes.data(), t.storage.data(), bytes.size());
  return bytes;
}

}  // namespace simdattn::fuzz

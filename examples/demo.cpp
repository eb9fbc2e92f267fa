// simdattn_demo: the worked examples of the teaching documents the project grew from
// (docs/teaching-examples.md says what each computes), computed with the library and printed next
// to the values those documents print, then a short benchmark of simdattn::attention against the
// scalar reference.
// Exit status 0 when every example matches its reference value and the benchmark's outputs agree.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "simdattn/reference.hpp"
#include "simdattn/simdattn.hpp"

namespace {

using simdattn::bhsd_view;

// Counts the values that differ from their reference by more than the tolerance.
struct Checker {
  int failures = 0;

  // Prints `label`, the computed row and the reference row; counts a mismatch beyond `tolerance`.
  void row(const char* label, const std::vector<double>& computed,
           const std::vector<double>& expected, double tolerance) {
    bool ok = computed.size() == expected.size();
    std::printf("  %-22s [", label);
    for (std::size_t i = 0; i < computed.size(); ++i) {
      std::printf("%s%.4f", i ? ", " : "", computed[i]);
      if (ok && !(std::fabs(computed[i] - expected[i]) <= tolerance)) ok = false;
    }
    std::printf("]   reference [");
    for (std::size_t i = 0; i < expected.size(); ++i) std::printf("%s%.4f", i ? ", " : "", expected[i]);
    std::printf("]  %s\n", ok ? "ok" : "MISMATCH");
    if (!ok) ++failures;
  }
};

// Values printed to 4 decimals in a document agree with an exact result to 0.5e-4; float
// arithmetic on inputs below 1 adds about 1e-6 at most.
constexpr double kFourDecimals = 0.5e-4 + 1e-6;

// The elements [begin, begin + count) of a float buffer, widened for printing and comparison.
std::vector<double> slice(const std::vector<float>& data, std::size_t begin, std::size_t count) {
  return {data.begin() + static_cast<std::ptrdiff_t>(begin),
          data.begin() + static_cast<std::ptrdiff_t>(begin + count)};
}

// Single query: one query [0.5, 0.5] against two keys and values, unscaled (scale 1).
void single_query(Checker& check) {
  std::printf("\nSingle query: q = [0.5, 0.5] against keys [0.1, 0.2], [0.2, 0.3] and values [0.6, 0.8],\n"
              "[0.7, 0.9], scale 1: the weighted average of the values\n");
  const std::vector<float> q{0.5f, 0.5f};
  const std::vector<float> k{0.1f, 0.2f, 0.2f, 0.3f};
  const std::vector<float> v{0.6f, 0.8f, 0.7f, 0.9f};
  std::vector<float> out(2);
  simdattn::AttentionOptions options;
  options.scale = 1.0f;
  simdattn::attention(bhsd_view(q.data(), 1, 1, 1, 2), bhsd_view(k.data(), 1, 1, 2, 2),
                      bhsd_view(v.data(), 1, 1, 2, 2), bhsd_view(out.data(), 1, 1, 1, 2), options);
  // The document prints the full double result; float carries about 7 significant digits.
  check.row("output", slice(out, 0, 2), {0.6524979187478941, 0.852497918747894}, 1e-6);
}

// "Cats love cozy windows", each word a 3-d embedding that serves as query, key and
// value at once (no projections, scale 1).
void cats_love_cozy_windows(Checker& check) {
  std::printf("\n\"Cats love cozy windows\": each word a 3-d embedding, used as query, key and value\n"
              "at once, scale 1\n");
  const char* words[] = {"Cats", "love", "cozy", "windows"};
  const std::vector<float> x{0.10f, 0.20f, 0.30f, 0.40f, 0.50f, 0.60f,
                             0.70f, 0.80f, 0.10f, 0.90f, 0.10f, 0.20f};
  const auto embeddings = bhsd_view(x.data(), 1, 1, 4, 3);

  std::vector<float> scores(16);
  simdattn::qk_scores(embeddings, embeddings, bhsd_view(scores.data(), 1, 1, 4, 4), 1.0f);
  check.row("scores of \"love\"", slice(scores, 4, 4), {0.32, 0.77, 0.74, 0.53}, kFourDecimals);

  std::vector<float> weights(16), context(12);
  simdattn::AttentionOptions options;
  options.scale = 1.0f;
  options.weights = bhsd_view(weights.data(), 1, 1, 4, 4);
  simdattn::attention(embeddings, embeddings, embeddings, bhsd_view(context.data(), 1, 1, 4, 3),
                      options);
  const std::vector<std::vector<double>> expected_weights{{0.2296, 0.2749, 0.2589, 0.2366},
                                                          {0.1878, 0.2946, 0.2859, 0.2317},
                                                          {0.1509, 0.2439, 0.3638, 0.2414},
                                                          {0.1619, 0.2320, 0.2834, 0.3227}};
  const std::vector<std::vector<double>> expected_context{{0.5271, 0.4141, 0.3070},
                                                          {0.5453, 0.4367, 0.3080},
                                                          {0.5846, 0.4673, 0.2763},
                                                          {0.5978, 0.4074, 0.2807}};
  std::printf(" weights: row i is how much word i attends to Cats, love, cozy and windows\n");
  for (std::size_t i = 0; i < 4; ++i) {
    check.row(words[i], slice(weights, 4 * i, 4), expected_weights[i], kFourDecimals);
  }
  std::printf(" context vectors: each word's weighted average of all four embeddings\n");
  for (std::size_t i = 0; i < 4; ++i) {
    check.row(words[i], slice(context, 3 * i, 3), expected_context[i], kFourDecimals);
  }
}

// Scores used as weights, a practice problem: unscaled scores, no softmax, used as the weights:
// context = (q·k1)·v1 + (q·k2)·v2, through qk_scores and weights_v.
void unnormalised_context(Checker& check) {
  std::printf("\nScores used as weights (no softmax): q = [1, 0], keys [1, 1], [0, 1], values [0.5, 0.5],\n"
              "[0.2, 0.8]; qk_scores then weights_v\n");
  const std::vector<float> q{1.0f, 0.0f};
  const std::vector<float> k{1.0f, 1.0f, 0.0f, 1.0f};
  const std::vector<float> v{0.5f, 0.5f, 0.2f, 0.8f};
  std::vector<float> scores(2), context(2);
  simdattn::qk_scores(bhsd_view(q.data(), 1, 1, 1, 2), bhsd_view(k.data(), 1, 1, 2, 2),
                      bhsd_view(scores.data(), 1, 1, 1, 2), 1.0f);
  simdattn::weights_v(bhsd_view<const float>(scores.data(), 1, 1, 1, 2),
                      bhsd_view(v.data(), 1, 1, 2, 2), bhsd_view(context.data(), 1, 1, 1, 2));
  check.row("scores", slice(scores, 0, 2), {1.0, 0.0}, 1e-7);
  check.row("context", slice(context, 0, 2), {0.5, 0.5}, 1e-7);
}

// Softmax near 1000: the textbook softmax exp(x)/Σexp(x) overflows for scores near 1000; subtracting the
// row maximum first gives the same mathematical result without overflow.
void naive_versus_stable_softmax(Checker& check) {
  std::printf("\nSoftmax of [1000, 1001, 1002]: the textbook exp(x)/sum overflows; subtracting the\n"
              "maximum first gives the same weights, finite\n");
  const std::vector<double> scores{1000.0, 1001.0, 1002.0};
  // softmax is shift-invariant, so this is softmax([0, 1, 2]) = e^i / (1 + e + e^2).
  const std::vector<double> expected{0.0900, 0.2447, 0.6652};
  const std::vector<double> naive = simdattn::reference::softmax_naive(scores);
  std::printf("  %-22s [%.4f, %.4f, %.4f]   exp(1000) overflows: %s\n", "naive (reference)",
              naive[0], naive[1], naive[2],
              std::isnan(naive[0]) ? "NaN, as the document warns" : "UNEXPECTEDLY FINITE");
  if (!std::isnan(naive[0])) ++check.failures;
  check.row("stable (reference)", simdattn::reference::softmax(scores), expected, kFourDecimals);
  std::vector<float> row{1000.0f, 1001.0f, 1002.0f};
  simdattn::softmax_rows(bhsd_view(row.data(), 1, 1, 1, 3));
  check.row("simdattn::softmax_rows", slice(row, 0, 3), expected, kFourDecimals);
}

// Seconds taken by `call`, the best of repeated runs lasting about `budget` seconds in total.
template <class Call>
double best_seconds(Call&& call, double budget, int min_runs) {
  double best = 1e300, spent = 0.0;
  for (int run = 0; run < min_runs || spent < budget; ++run) {
    const auto start = std::chrono::steady_clock::now();
    call();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, seconds);
    spent += seconds;
  }
  return best;
}

// A short benchmark of simdattn::attention against simdattn::reference::attention on one
// moderate shape; returns false when their outputs disagree beyond the tolerance.
bool benchmark() {
  const int64_t batch = 1, heads = 8, seq = 512, dim = 64;
  std::printf("\nBenchmark: attention, batch %lld, heads %lld, Sq = Sk = %lld, head_dim %lld, ISA %s\n",
              static_cast<long long>(batch), static_cast<long long>(heads),
              static_cast<long long>(seq), static_cast<long long>(dim), simdattn::active_isa());
  std::printf("  the scalar reference (plain loops in double) against the library, same inputs; each\n"
              "  time is the fastest call, and the outputs must agree\n");
  const std::size_t count = static_cast<std::size_t>(batch * heads * seq * dim);
  std::vector<float> q(count), k(count), v(count), fast(count), slow(count);
  std::mt19937 generator(2024);  // fixed seed: the same inputs on every run and machine
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (auto* buffer : {&q, &k, &v}) {
    for (float& x : *buffer) x = uniform(generator);
  }
  const auto qv = bhsd_view<const float>(q.data(), batch, heads, seq, dim);
  const auto kv = bhsd_view<const float>(k.data(), batch, heads, seq, dim);
  const auto vv = bhsd_view<const float>(v.data(), batch, heads, seq, dim);

  const double reference_seconds = best_seconds(
      [&] { simdattn::reference::attention(qv, kv, vv, bhsd_view(slow.data(), batch, heads, seq, dim)); },
      0.0, 1);
  const double simd_seconds = best_seconds(
      [&] { simdattn::attention(qv, kv, vv, bhsd_view(fast.data(), batch, heads, seq, dim)); }, 0.2, 3);

  double max_difference = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    max_difference = std::max(max_difference, static_cast<double>(std::fabs(fast[i] - slow[i])));
  }
  const double flops = 4.0 * batch * heads * seq * seq * dim;  // Q·Kᵀ and P·V, 2 flops per FMA
  std::printf("  %-31s %9.3f ms  %8.2f GFLOP/s\n", "simdattn::reference::attention",
              reference_seconds * 1e3, flops / reference_seconds / 1e9);
  std::printf("  %-31s %9.3f ms  %8.2f GFLOP/s\n", "simdattn::attention", simd_seconds * 1e3,
              flops / simd_seconds / 1e9);
  std::printf("  speedup %.1fx, max |difference| %.2e\n", reference_seconds / simd_seconds,
              max_difference);
  // Outputs are convex combinations of values in [-1, 1]; float rounding over Sk = 512 weights
  // and head_dim = 64 products stays orders of magnitude below this bound (the tests hold the
  // tight, derived one).
  const double tolerance = 1e-4;
  if (!(max_difference <= tolerance)) {
    std::printf("  MISMATCH: max |difference| above %.0e\n", tolerance);
    return false;
  }
  return true;
}

}  // namespace

int main() {
  std::printf("simdattn %s, kernels for %s\n", simdattn::version(), simdattn::active_isa());
  std::printf("The worked examples of the teaching documents this project grew from, computed by\n"
              "simdattn. Each line: the values simdattn computed, then the values the document prints\n"
              "(\"reference\"), then ok when they agree to the digits printed (docs/teaching-examples.md).\n");
  Checker check;
  single_query(check);
  cats_love_cozy_windows(check);
  unnormalised_context(check);
  naive_versus_stable_softmax(check);
  const bool benchmark_agrees = benchmark();
  if (check.failures != 0 || !benchmark_agrees) {
    std::printf("\nFAILED: %d example value(s) differ from the reference%s\n", check.failures,
                benchmark_agrees ? "" : ", benchmark outputs disagree");
    return 1;
  }
  std::printf("\nAll worked examples match their reference values.\n");
  return 0;
}

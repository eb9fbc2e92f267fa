// simdattn_walkthrough: the teaching documents' walkthroughs (docs/teaching-examples.md) with the
// library:
//   1. single-query attention,
//   2. self-attention with W_q, W_k, W_v projections (fixed seeded matrices where the document
//      draws random ones, so every run prints the same numbers),
//   3. multi-head attention over the "Cats love cozy windows" embeddings,
// printing the attention weight matrix through the `weights` output option. Every result is also
// computed by the scalar reference; the exit status is 1 if they disagree.

#include <algorithm>
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
using simdattn::bshd_view;

// A row-major matrix of floats.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;

  Matrix(int64_t rows_, int64_t cols_)
      : rows(rows_), cols(cols_), values(static_cast<std::size_t>(rows_ * cols_)) {}
  float& at(int64_t r, int64_t c) { return values[static_cast<std::size_t>(r * cols + c)]; }
  float at(int64_t r, int64_t c) const { return values[static_cast<std::size_t>(r * cols + c)]; }
};

// Prints `m` under `title`, one row per line, each labelled by `labels[r]` when given.
void print(const char* title, const Matrix& m, const std::vector<std::string>& labels = {}) {
  std::printf("%s (%lld x %lld)\n", title, static_cast<long long>(m.rows),
              static_cast<long long>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    std::printf("  %-8s [", labels.empty() ? "" : labels[static_cast<std::size_t>(r)].c_str());
    for (int64_t c = 0; c < m.cols; ++c) std::printf("%s%7.4f", c ? ", " : "", m.at(r, c));
    std::printf("]\n");
  }
}

// x · w: [n, k] · [k, m] → [n, m]. The projections are the caller's job, not the library's.
Matrix matmul(const Matrix& x, const Matrix& w) {
  Matrix y(x.rows, w.cols);
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t j = 0; j < w.cols; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < x.cols; ++p) sum += double{x.at(i, p)} * w.at(p, j);
      y.at(i, j) = static_cast<float>(sum);
    }
  }
  return y;
}

// A [rows, cols] matrix of standard-normal-like values from a fixed seed. Uniform on
// [-sqrt(3), sqrt(3)] has variance 1, like the document's np.random.randn, and std::mt19937's
// output is specified exactly, so the numbers are the same with every compiler.
Matrix seeded_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 generator(seed);
  Matrix m(rows, cols);
  const double half_width = std::sqrt(3.0);
  for (float& value : m.values) {
    value = static_cast<float>((generator() / 4294967295.0 * 2.0 - 1.0) * half_width);
  }
  return m;
}

// Largest |a - b| over two equally long buffers.
double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double{std::fabs(a[i] - b[i])});
  return worst;
}

// Outputs and weights here are sums of a handful of float products of values below ~10: float
// rounding stays near 1e-6, so 1e-5 separates rounding from a real disagreement.
constexpr double kTolerance = 1e-5;

// Prints the difference to the reference and records a failure beyond kTolerance.
void compare(const char* what, const std::vector<float>& simd, const std::vector<float>& reference,
             int& failures) {
  const double difference = max_difference(simd, reference);
  const bool ok = difference <= kTolerance;
  std::printf("%s: max |simdattn - reference| = %.1e %s\n", what, difference, ok ? "(ok)" : "MISMATCH");
  if (!ok) ++failures;
}

// 1. Seed 001: one query against two keys, scale 1 (the document does not scale).
void single_query(int& failures) {
  std::printf("=== 1. Single-query attention ===\n");
  const std::vector<float> q{0.5f, 0.5f}, k{0.1f, 0.2f, 0.2f, 0.3f}, v{0.6f, 0.8f, 0.7f, 0.9f};
  std::vector<float> weights(2), out(2);
  simdattn::AttentionOptions options;
  options.scale = 1.0f;
  options.weights = bhsd_view(weights.data(), 1, 1, 1, 2);
  simdattn::attention(bhsd_view(q.data(), 1, 1, 1, 2), bhsd_view(k.data(), 1, 1, 2, 2),
                      bhsd_view(v.data(), 1, 1, 2, 2), bhsd_view(out.data(), 1, 1, 1, 2), options);
  std::printf("scores  = q·k = [0.15, 0.25]\n");
  // The document's step-by-step prints [0.4752, 0.5248], a slip in its rounding:
  // e^0.15 / (e^0.15 + e^0.25) = 0.47502. Its final output, [0.6525, 0.8525], is right.
  std::printf("weights = softmax(scores) = [%.4f, %.4f]\n", weights[0], weights[1]);
  std::printf("output  = Σ weights·v = [%.4f, %.4f]\n", out[0], out[1]);
  const std::vector<double> expected = simdattn::reference::single_query_attention(
      {0.5, 0.5}, {{0.1, 0.2}, {0.2, 0.3}}, {{0.6, 0.8}, {0.7, 0.9}}, 1.0);
  compare("output", out, {static_cast<float>(expected[0]), static_cast<float>(expected[1])}, failures);
}

// 2. Seed 002: a sequence of `length` words, each a 3-d vector, projected to queries and keys of
// size d_k = 2 and values of size d_v = 2, then scaled dot-product attention (scale 1/sqrt(d_k)).
void self_attention(int64_t length, int& failures) {
  std::printf("\n=== 2. Self-attention with W_q, W_k, W_v (beginner's guide), sequence_length = %lld ===\n",
              static_cast<long long>(length));
  const int64_t input_dim = 3, d_k = 2, d_v = 2;
  const Matrix x = seeded_matrix(length, input_dim, 1);
  const Matrix w_q = seeded_matrix(input_dim, d_k, 2);
  const Matrix w_k = seeded_matrix(input_dim, d_k, 3);
  const Matrix w_v = seeded_matrix(input_dim, d_v, 4);
  const Matrix q = matmul(x, w_q), k = matmul(x, w_k), v = matmul(x, w_v);

  // One batch, one head: a [S, d] matrix is the BHSD view [1, 1, S, d].
  Matrix output(length, d_v), weights(length, length);
  simdattn::AttentionOptions options;  // scale unset: 1/sqrt(d_k), as in the document
  options.weights = bhsd_view(weights.values.data(), 1, 1, length, length);
  const auto qv = bhsd_view(q.values.data(), 1, 1, length, d_k);
  const auto kv = bhsd_view(k.values.data(), 1, 1, length, d_k);
  const auto vv = bhsd_view(v.values.data(), 1, 1, length, d_v);
  simdattn::attention(qv, kv, vv, bhsd_view(output.values.data(), 1, 1, length, d_v), options);

  std::printf("Input shape: (%lld, %lld)\nOutput shape: (%lld, %lld)\n", static_cast<long long>(x.rows),
              static_cast<long long>(x.cols), static_cast<long long>(output.rows),
              static_cast<long long>(output.cols));
  std::vector<std::string> words;
  for (int64_t i = 1; i <= length; ++i) words.push_back("word " + std::to_string(i));
  print("--- Attention Weights Matrix ---", weights, words);
  print("Output", output, words);

  Matrix reference_output(length, d_v), reference_weights(length, length);
  options.weights = bhsd_view(reference_weights.values.data(), 1, 1, length, length);
  simdattn::reference::attention(qv, kv, vv,
                                 bhsd_view(reference_output.values.data(), 1, 1, length, d_v), options);
  compare("weights", weights.values, reference_weights.values, failures);
  compare("output", output.values, reference_output.values, failures);
}

// 3. Multi-head attention over seed 003's sentence: 2 heads of size 2. As in real models, one
// W_q (and W_k, W_v) holds every head side by side, so x·W_q is [S, heads·d]: the BSHD layout,
// which the library reads through a view without copying heads apart. The output, written through
// a BSHD view too, is the concatenation of the heads' outputs.
void multi_head_attention(int& failures) {
  std::printf("\n=== 3. Multi-head attention over \"Cats love cozy windows\" ===\n");
  const std::vector<std::string> words{"Cats", "love", "cozy", "windows"};
  Matrix x(4, 3);
  x.values = {0.10f, 0.20f, 0.30f, 0.40f, 0.50f, 0.60f, 0.70f, 0.80f, 0.10f, 0.90f, 0.10f, 0.20f};
  const int64_t seq = 4, heads = 2, d = 2;
  const Matrix w_q = seeded_matrix(3, heads * d, 11);
  const Matrix w_k = seeded_matrix(3, heads * d, 12);
  const Matrix w_v = seeded_matrix(3, heads * d, 13);
  const Matrix q = matmul(x, w_q), k = matmul(x, w_k), v = matmul(x, w_v);

  Matrix concatenated(seq, heads * d);
  std::vector<float> weights(static_cast<std::size_t>(heads * seq * seq));
  simdattn::AttentionOptions options;
  options.weights = bhsd_view(weights.data(), 1, heads, seq, seq);
  const auto qv = bshd_view(q.values.data(), 1, seq, heads, d);
  const auto kv = bshd_view(k.values.data(), 1, seq, heads, d);
  const auto vv = bshd_view(v.values.data(), 1, seq, heads, d);
  simdattn::attention(qv, kv, vv, bshd_view(concatenated.values.data(), 1, seq, heads, d), options);

  for (int64_t h = 0; h < heads; ++h) {
    Matrix head_weights(seq, seq);
    std::copy_n(weights.begin() + h * seq * seq, seq * seq, head_weights.values.begin());
    const std::string title = "Head " + std::to_string(h) + " weights (row: the word attending)";
    print(title.c_str(), head_weights, words);
  }
  print("Concatenated head outputs [head 0 | head 1]", concatenated, words);

  Matrix reference_output(seq, heads * d);
  std::vector<float> reference_weights(weights.size());
  options.weights = bhsd_view(reference_weights.data(), 1, heads, seq, seq);
  simdattn::reference::attention(qv, kv, vv, bshd_view(reference_output.values.data(), 1, seq, heads, d),
                                 options);
  compare("weights", weights, reference_weights, failures);
  compare("output", concatenated.values, reference_output.values, failures);
}

}  // namespace

int main() {
  std::printf("simdattn %s (%s)\n\n", simdattn::version(), simdattn::active_isa());
  int failures = 0;
  single_query(failures);
  self_attention(4, failures);
  self_attention(6, failures);  // the guide's exercise: 6 words, so the weights become 6 x 6
  multi_head_attention(failures);
  if (failures != 0) {
    std::printf("\nFAILED: %d comparison(s) with the reference disagree\n", failures);
    return 1;
  }
  std::printf("\nEvery result agrees with simdattn::reference.\n");
  return 0;
}

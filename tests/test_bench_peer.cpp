// simdattn_bench's Eigen peer against the float64 oracle: the peer must compute attention before
// its speed means anything. Compiled only when Eigen3 is found (tests/bench_peer.cmake).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eigen_peer/attention_eigen.hpp"
#include "simdattn/reference.hpp"

namespace {

using simdattn::bench::eigen_attention;
using simdattn::bench::eigen_peer_isa;
using simdattn::bench::eigen_peer_runs_here;
using simdattn::bench::kEigenPeerQueryBlock;

struct PeerCase {
  int64_t batch, q_heads, kv_heads, seq_q, seq_k, head_dim;
  bool causal;

  std::string describe() const {
    std::ostringstream text;
    text << "B=" << batch << " Hq=" << q_heads << " Hkv=" << kv_heads << " Sq=" << seq_q << " Sk=" << seq_k
         << " D=" << head_dim << (causal ? " causal(bottom-right)" : "") << " peer isa " << eigen_peer_isa();
    return text.str();
  }
  // What gtest prints for a parameter, instead of the struct's bytes.
  friend void PrintTo(const PeerCase& shape, std::ostream* out) { *out << shape.describe(); }
};

std::vector<float> uniform(int64_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> draw(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = draw(generator);
  return values;
}

// γ_n = n·u / (1 − n·u), u = 2^-24: the classic bound on the relative error of a float sum or
// dot product of n terms, in any order (so whatever blocking Eigen's GEMM uses).
double gamma(int64_t n) {
  const double unit_roundoff = std::numeric_limits<float>::epsilon() / 2.0;
  return static_cast<double>(n) * unit_roundoff / (1.0 - static_cast<double>(n) * unit_roundoff);
}

// A bound on |peer − exact| for inputs in [−1, 1] (so |v| ≤ 1 and |out| ≤ 1):
// - a logit scale·q·k has error ≤ γ_{D+1}·scale·D (D products, their sum, the scale), and
//   subtracting the row max at most doubles that: δ = 2·γ_{D+3}·scale·D;
// - each exp(logit − max) is then off by a relative δ + 4u (Eigen's float exp is within 2 ulp);
// - the numerator Σ w·v and the denominator Σ w each add γ_{Sk} relative to Σ w·|v| and Σ w,
//   and since |out| ≤ Σ w·|v| / Σ w ≤ 1, each contributes at most δ + 4u + γ_{Sk} absolute;
// - the reciprocal, the multiply and the oracle's own rounding to float add 3u.
double tolerance(const PeerCase& shape) {
  const double unit_roundoff = std::numeric_limits<float>::epsilon() / 2.0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
  const double logit_error = 2.0 * gamma(shape.head_dim + 3) * scale * static_cast<double>(shape.head_dim);
  return 2.0 * (logit_error + 4.0 * unit_roundoff + gamma(shape.seq_k)) + 3.0 * unit_roundoff;
}

class EigenPeer : public ::testing::TestWithParam<PeerCase> {};

TEST_P(EigenPeer, MatchesReference) {
  if (!eigen_peer_runs_here()) GTEST_SKIP() << "the peer is built for " << eigen_peer_isa() << ", which this CPU lacks";
  const PeerCase shape = GetParam();
  const int64_t q_count = shape.batch * shape.q_heads * shape.seq_q * shape.head_dim;
  const int64_t kv_count = shape.batch * shape.kv_heads * shape.seq_k * shape.head_dim;
  const std::vector<float> q = uniform(q_count, 11), k = uniform(kv_count, 12), v = uniform(kv_count, 13);
  // NaN where nothing was written, so a row the peer skips cannot pass by accident.
  std::vector<float> peer(static_cast<size_t>(q_count), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> oracle(static_cast<size_t>(q_count), std::numeric_limits<float>::quiet_NaN());

  using simdattn::bhsd_view;
  const auto q_view = bhsd_view<const float>(q.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim);
  const auto k_view = bhsd_view<const float>(k.data(), shape.batch, shape.kv_heads, shape.seq_k, shape.head_dim);
  const auto v_view = bhsd_view<const float>(v.data(), shape.batch, shape.kv_heads, shape.seq_k, shape.head_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  eigen_attention(q_view, k_view, v_view, bhsd_view(peer.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim),
                  scale, shape.causal);
  simdattn::AttentionOptions options;
  options.scale = scale;
  options.causal = shape.causal ? simdattn::Causal::bottom_right : simdattn::Causal::none;
  simdattn::reference::attention(q_view, k_view, v_view,
                                 bhsd_view(oracle.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim),
                                 options);

  const double bound = tolerance(shape);
  for (int64_t index = 0; index < q_count; ++index) {
    const double expected = oracle[static_cast<size_t>(index)], actual = peer[static_cast<size_t>(index)];
    // Rows with no visible key are exactly zero in both; every other entry is within the bound.
    if (expected == 0.0) {
      ASSERT_EQ(actual, 0.0) << shape.describe() << " index " << index;
    } else {
      ASSERT_NEAR(actual, expected, bound) << shape.describe() << " index " << index;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, EigenPeer,
    ::testing::Values(
        PeerCase{2, 3, 3, 5, 7, 8, false},   // multi-head, uneven sizes
        PeerCase{1, 4, 2, 5, 9, 16, true},   // grouped-query, causal with Sq < Sk: the offset Sk − Sq
        PeerCase{1, 2, 2, 6, 3, 4, true},    // Sq > Sk: the first three rows see no key at all
        PeerCase{1, 3, 1, 1, 33, 32, false}, // multi-query decode step
        // More rows than one query block, so a block edge falls inside a head, causal across it.
        PeerCase{1, 2, 1, kEigenPeerQueryBlock + 3, kEigenPeerQueryBlock + 3, 4, true}),
    [](const ::testing::TestParamInfo<PeerCase>& info) {
      const PeerCase& c = info.param;
      return "B" + std::to_string(c.batch) + "_Hq" + std::to_string(c.q_heads) + "_Hkv" + std::to_string(c.kv_heads) +
             "_Sq" + std::to_string(c.seq_q) + "_Sk" + std::to_string(c.seq_k) + "_D" + std::to_string(c.head_dim) +
             (c.causal ? "_causal" : "");
    });

}  // namespace

// Compiled with the flags of SIMDATTN_BENCH_PEER_ISA (bench/eigen_peer.cmake): the only file of
// the binary that instantiates Eigen, so no other file can pick up its wider instructions.

// The peer's parallelism is over heads, as the baseline is specified; Eigen's own threading of
// each GEMM would compete with it.
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

#include <algorithm>
#include <limits>

#include "eigen_peer/attention_eigen.hpp"

namespace simdattn::bench {

namespace {
using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A view's rows of one head: seq rows of head_dim floats, strides[2] floats apart.
using ConstRows = Eigen::Map<const RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using Rows = Eigen::Map<RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

ConstRows rows_of(ConstTensorView view, int64_t b, int64_t h, int64_t first, int64_t count) {
  return ConstRows(view.row(b, h, first), count, view.head_dim(), Eigen::OuterStride<>(view.strides[2]));
}
}  // namespace

void eigen_attention(ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out, float scale,
                     bool causal) {
  const int64_t batch = q.batch(), q_heads = q.heads(), seq_q = q.seq(), seq_k = k.seq();
  const int64_t group = q_heads / k.heads();
  const int64_t causal_offset = seq_k - seq_q;
  const float minus_infinity = -std::numeric_limits<float>::infinity();

#pragma omp parallel
  {
    RowMajorMatrix scores;  // per thread, reused by every block it computes
    Eigen::VectorXf row_max, row_sum;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < batch * q_heads; ++item) {
      const int64_t b = item / q_heads, h = item % q_heads, kv_head = h / group;
      const ConstRows keys = rows_of(k, b, kv_head, 0, seq_k);
      const ConstRows values = rows_of(v, b, kv_head, 0, seq_k);
      for (int64_t first = 0; first < seq_q; first += kEigenPeerQueryBlock) {
        const int64_t rows = std::min(kEigenPeerQueryBlock, seq_q - first);
        scores.resize(rows, seq_k);
        scores.noalias() = scale * rows_of(q, b, h, first, rows) * keys.transpose();

        // Keys visible to each row: all of them, or up to the bottom-right diagonal.
        auto visible = [&](int64_t row) {
          return causal ? std::clamp<int64_t>(first + row + causal_offset + 1, 0, seq_k) : seq_k;
        };
        if (causal) {
          for (int64_t row = 0; row < rows; ++row) {
            scores.row(row).tail(seq_k - visible(row)).setConstant(minus_infinity);
          }
        }
        row_max = scores.rowwise().maxCoeff();
        // A fully masked row has max −inf; shifting by 0 instead keeps exp(−inf) at 0, not NaN.
        for (int64_t row = 0; row < rows; ++row) {
          if (visible(row) == 0) row_max[row] = 0.0f;
        }
        scores.array().colwise() -= row_max.array();
        scores.array() = scores.array().exp();
        row_sum = scores.rowwise().sum();

        Rows output(out.row(b, h, first), rows, out.head_dim(), Eigen::OuterStride<>(out.strides[2]));
        output.noalias() = scores * values;
        for (int64_t row = 0; row < rows; ++row) {
          output.row(row) *= visible(row) == 0 ? 0.0f : 1.0f / row_sum[row];
        }
      }
    }
  }
}

}  // namespace simdattn::bench

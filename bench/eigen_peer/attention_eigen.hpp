// The Eigen peer: attention as most people would write it with a linear-algebra library, the
// baseline simdattn's speed is compared with. No SIMD or Eigen types in this header.
#pragma once

#include <cstdint>

#include "simdattn/tensor.hpp"

namespace simdattn::bench {

// Query rows per GEMM: the score block is kEigenPeerQueryBlock × Sk floats per thread (32 MiB for
// the long shape, whose whole per-head score matrix would be 1 GiB per thread). A block this tall
// keeps Eigen's GEMM at its full speed, so blocking costs the peer nothing.
inline constexpr int64_t kEigenPeerQueryBlock = 512;

// out[b,h,i,:] = Σ_j softmax_j(scale · q[b,h,i,:]·k[b,h',j,:])[j] · v[b,h',j,:], h' = h / (Hq / Hkv).
// q [B, Hq, Sq, D], k [B, Hkv, Sk, D], v [B, Hkv, Sk, Dv], out [B, Hq, Sq, Dv]: strided views
// (head_dim contiguous); shapes must agree and Hq % Hkv == 0, which the caller guarantees.
// Per (batch, query head), in parallel over them with OpenMP, and per block of query rows:
// scores = scale·Q·Kᵀ (GEMM), the causal mask (bottom-right: key j visible to query i iff
// j <= i + Sk - Sq) written over the dense scores when `causal`, exp(scores − row max) with
// Eigen's vectorised exp, output = weights·V (GEMM), rows divided by their sums. A row with no
// visible key gets zeros.
void eigen_attention(ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out, float scale,
                     bool causal);

// Whether this CPU runs the instruction set the peer was compiled for (SIMDATTN_BENCH_PEER_ISA).
bool eigen_peer_runs_here();

// That instruction set: "sse2", "avx2" or "avx512".
const char* eigen_peer_isa();

// "eigen <version> <isa>", for the benchmark's label and the run's context.
const char* eigen_peer_description();

}  // namespace simdattn::bench

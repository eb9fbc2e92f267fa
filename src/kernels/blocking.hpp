// Block sizes, one table per ISA. Every loop bound of the kernels comes from here.
#pragma once

#include <cstdint>

#include "dispatch.hpp"

namespace simdattn::detail {

struct BlockingSizes {
  // Floats in one SIMD register.
  int vector_floats;
  // The GEMM micro-kernel computes rows × (vectors · vector_floats) of C in registers. "wide"
  // tiles (2 vectors of queries) serve prefill; "narrow" ones (1 vector) serve decoding, where a
  // work item has only a few query rows. rows · vectors accumulators + vectors B registers + one
  // broadcast must fit the register file: 16 registers for SSE2/AVX2 (6·2 + 2 + 1 = 15,
  // 12·1 + 1 + 1 = 14), 32 for AVX-512 (12·2 + 2 + 1 = 27, 24·1 + 1 + 1 = 26).
  int wide_rows;
  int wide_vectors;
  int narrow_rows;
  // Query columns per work item (all query heads of a kv group, several positions each), a
  // multiple of the wide panel. Q·Kᵀ reads the packed queries (head_dim × columns floats: 32 KiB at
  // head_dim 128) once per micro-tile of keys, and P·V a panel of key_block × panel scores, so
  // both should stay in L1. Measured on AVX-512 (48 KiB L1): 128 columns ran at 0.47 of the FMA
  // peak where 64 reached 0.69-0.74; 32 was no better than 64.
  int tile_columns;
  // Keys per block of the fused loop: the block's scores (key_block × tile_columns floats, 64 KiB)
  // and the key and value rows it reads (2 · key_block · head_dim floats, 256 KiB at head_dim 128)
  // stay in a 512 KiB-2 MiB L2 while both products run over them. 128 measured worse (more
  // rescaling and per-block overhead), 512 no better.
  int key_block;
  // Decoding's P·V keeps kDecodeColumnGroup (4) columns × decode_value_vectors registers of the
  // output in flight, with as many value registers and one broadcast: 4·2 + 2 + 1 = 11 of 16
  // registers, 4·4 + 4 + 1 = 21 of 32. Four on AVX-512 rather than two: 16 independent FMA
  // chains instead of 8 hide the FMA latency (warm decode 51 -> 56 GFLOP/s on one thread).
  int decode_value_vectors;
};

// SSE2: 4 floats a register, the same register budget as AVX2.
inline constexpr BlockingSizes kSse2Blocking{4, 6, 2, 12, 64, 256, 2};
// AVX2 + FMA (Haswell to Zen 4): BLIS's haswell sgemm tile is 6 × 16 as well.
inline constexpr BlockingSizes kAvx2Blocking{8, 6, 2, 12, 64, 256, 2};
// AVX-512: twice the registers, twice the width: 14 × 32 tiles (12 and 8 measured no better).
inline constexpr BlockingSizes kAvx512Blocking{16, 14, 2, 24, 64, 256, 4};

inline constexpr BlockingSizes blocking_for(Isa isa) {
  switch (isa) {
    case Isa::avx512: return kAvx512Blocking;
    case Isa::avx2: return kAvx2Blocking;
    case Isa::sse2: return kSse2Blocking;
  }
  return kSse2Blocking;
}

// Keys per chunk when decoding (few query rows, many keys) is split across threads. A constant of
// the plan, not of the thread count, so that the merge order — and the result's bits — never
// depend on how many threads ran. 1024 rather than 512: half the partial results and merge work,
// still 64 work items for decode_gqa; decode_b8 read 16-18 GB/s at 512 and 19-21 at 1024 from
// memory on the 2-core AVX-512 machine (decode_gqa unchanged within the noise).
inline constexpr int64_t kDecodeKeyChunk = 1024;

}  // namespace simdattn::detail

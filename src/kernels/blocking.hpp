// Block sizes, one table per ISA (each named by its entry in isa/registry.hpp). Every loop bound
// of the kernels comes from here.
#pragma once

#include <cstdint>

namespace simdattn::detail {

struct BlockingSizes {
  // Floats in one SIMD register.
  int vector_floats;
  // The GEMM micro-kernel computes rows × (vectors · vector_floats) of C in registers, for panels
  // of 1, 2 or 4 vectors of query columns; micro_rows[i] is the rows for 2^i vectors (0: no such
  // panel). The plan takes the narrowest panel that holds a tile's columns, up to wide_vectors:
  // one vector serves decoding, where a work item has only a few query rows. rows · vectors
  // accumulators + vectors B registers + one broadcast must fit the register file: 16 registers
  // for SSE2/AVX2 (12·1 + 1 + 1 = 14, 6·2 + 2 + 1 = 15), 32 for AVX-512 (24·1 + 1 + 1 = 26,
  // 14·2 + 2 + 1 = 31, 6·4 + 4 + 1 = 29).
  int micro_rows[3];
  int wide_vectors;
  // Query columns per work item (all query heads of a kv group, several positions each), a
  // multiple of the wide panel. Q·Kᵀ reads the packed queries (head_dim × columns floats: 32 KiB at
  // head_dim 128) once per micro-tile of keys, and P·V a panel of key_block × panel scores, so
  // both should stay in L1; wider tiles spill it (docs/tuning.md).
  int tile_columns;
  // Heads of at most this head_dim take tiles of twice tile_columns (0: never). Their packed
  // queries (64 × 128 floats, 32 KiB) still fit L1, and the K and V rows of each key block, which
  // come from L3 once a head's keys outgrow L2, then serve twice the queries. At head_dim 128
  // the doubled tile no longer fits L1 and loses, hence the limit (docs/tuning.md).
  int double_tile_max_head_dim;
  // Keys per block of the fused loop: the block's scores (key_block × tile_columns floats) and the
  // key and value rows it reads (2 · key_block · head_dim floats) stay in L2 while both products
  // run over them: 64 + 256 KiB at 256 keys and head_dim 128, for the 512 KiB L2 of Zen 2-4.
  // Smaller blocks cost more rescaling and per-block overhead (docs/tuning.md).
  int key_block;
  // Keys per block when a prefill tile widens K and V (16-bit or int8 inputs) into the thread's
  // buffers: 2 · key_block · head_dim floats written a block, which store past L1 once the block
  // outgrows it. With AVX2's 256 the widening took 10-12% of a bf16 prefill; blocks of 64 keys
  // (32 KiB of K at head_dim 128) ran bf16 prefill_gqa 1.10x and prefill 1.06x as fast (paired,
  // the fp32 rows of the same builds 1.01x). On AVX-512 (64-byte stores) and SSE2 (slower
  // arithmetic) the block size changed nothing beyond the noise (docs/tuning.md).
  int widened_key_block;
  // Up to this many keys, all of them make one block: no rescaling and a single softmax pass per
  // tile. AVX-512 machines have 1-2 MiB of L2, enough for 512 keys (128 + 512 KiB). Only whole
  // short sequences gain: as the block size of every shape, 512 slows causal prefill, whose
  // last, partly masked block then costs more (docs/tuning.md).
  int single_block_keys;
  // Decoding's P·V keeps kDecodeColumnGroup (4) columns × decode_value_vectors registers of the
  // output in flight, with as many value registers and one broadcast: 4·2 + 2 + 1 = 11 of 16
  // registers, 4·4 + 4 + 1 = 21 of 32. Four on AVX-512 rather than two: 16 independent FMA
  // chains instead of 8 hide the FMA latency (docs/tuning.md).
  int decode_value_vectors;
};

// SSE2: 4 floats a register, the same register budget as AVX2.
inline constexpr BlockingSizes kSse2Blocking{4, {12, 6, 0}, 2, 64, 0, 256, 256, 256, 2};
// AVX2 + FMA (Haswell to Zen 4): BLIS's haswell sgemm tile is 6 × 16 as well.
inline constexpr BlockingSizes kAvx2Blocking{8, {12, 6, 0}, 2, 64, 0, 256, 64, 256, 2};
// AVX-512: twice the registers, twice the width. Full tiles take 6 × 64: per key (Q·Kᵀ) or
// value row (P·V) it loads 4 registers and broadcasts 6 elements for 24 FMAs, where 14 × 32
// needs 16 loads for 28 FMAs and more address registers than x86 has (docs/tuning.md). 14 × 32
// stays for tiles of 17-32 columns, which a 64-wide panel would pad to twice their work.
inline constexpr BlockingSizes kAvx512Blocking{16, {24, 14, 6}, 4, 64, 64, 256, 256, 512, 4};
// NEON (AArch64 Advanced SIMD): 4 floats a register like SSE2, but 32 registers, FMA, and FMLA
// by element, so every broadcast element of the micro-kernel is one scalar load (LDR s, or LD1R).
// The shapes: 24 × 4 (24 + 1 + 1 = 26 of 32), 12 × 8 (24 + 2 + 1 = 27) and 6 × 16
// (24 + 4 + 1 = 29); compiled with -fno-schedule-insns (cmake/SimdattnIsas.cmake) none spills,
// and each k step is FMAs and loads only (scripts/count-tile-instructions; the counts are in
// docs/performance.md).
// Full tiles take 6 × 16: per key (Q·Kᵀ) or value row (P·V) 4 vector loads and 6 broadcasts
// feed 24 FMAs, 0.42 loads per FMA, inside the 2 loads and 2 FMAs a cycle of Neoverse N1 and the
// 3 loads and 4 (128-bit) FMAs of V1 and V2; 12 × 8 would need 14 loads for 24 FMAs (0.58), and
// 14 × 8 (31 registers) leaves nothing spare. Unlike x86, AArch64 has 31 general registers, so
// the row addresses of the broadcasts cost no spills either.
// Caches: Neoverse N1, V1 and V2 have 64 KiB of L1D and 1-2 MiB of private L2 (Graviton 2/3/4,
// Ampere Altra, Grace). So the x86 tile of 64 columns (32 KiB of packed queries at head_dim 128)
// fits L1 with the K rows beside it; the doubled tile at head_dim <= 64 too (32 KiB). The L2 holds
// a single block of 512 keys (128 KiB of scores + 512 KiB of K and V rows at head_dim 128), as on
// the AVX-512 machines. Decoding keeps 4 columns × 4 value registers in flight: 4·4 + 4 + 1 = 21
// of 32 registers, 16 independent FMA chains for the 4-cycle FMA latency of N1/V1/V2.
// None of these is measured yet (docs/performance.md, "ARM servers").
inline constexpr BlockingSizes kNeonBlocking{4, {24, 12, 6}, 4, 64, 64, 256, 256, 512, 4};

// Keys per chunk when decoding (few query rows, many keys) is split across threads: the shortest
// chunk, and the keys above which a call splits at all. The chunk length is a function of the
// call's shape, never of the thread count, so that the merge order — and the result's bits —
// never depend on how many threads ran. 1024 rather than 512: half the partial results and merge
// work, still 64 work items for decode_gqa (docs/tuning.md).
inline constexpr int64_t kDecodeKeyChunk = 1024;
// Chunks grow by doubling up to this many keys while the call keeps at least kDecodeMinJobs work
// items. Every chunk a thread starts costs a cold start of its K and V streams, so longer
// chunks read faster (2-core Xeon, paired: decode_b8 at 4096 against 1024 1.07x fp32, 1.09x bf16
// cache, 1.15x int8), while 64 work items still spread over 64 threads, as many as decode_gqa
// (8192 keys, 8 kv heads) gives at 1024 (docs/tuning.md).
inline constexpr int64_t kDecodeLongestKeyChunk = 4096;
inline constexpr int64_t kDecodeMinJobs = 64;

}  // namespace simdattn::detail

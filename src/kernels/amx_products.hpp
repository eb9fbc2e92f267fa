// Q·Kᵀ and P·V of the pair tile (pair_fused_tile_impl.hpp) on AMX tiles: TDPBF16PS on 2 × 2
// tiles of 16 × 16 fp32 results. K's rows load as tiles straight from the caller's cache (16 keys
// of 32 elements, any row stride), staged only where 16 rows do not lie one stride apart.
#pragma once

#include "isa/registry.hpp"

#if defined(SIMDATTN_AMX_BF16_UNIT)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/pair_tiles.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

namespace amx {

// Tile registers: four results (2 × 2 blocks of 16 × 16), two left and two right operands.
// Macros, not constants: GCC's tile intrinsics paste their register number into the assembly
// text, so it must be a literal after macro expansion. #undef'd at the end of this header.
#define SIMDATTN_TILE_C00 0
#define SIMDATTN_TILE_C01 1
#define SIMDATTN_TILE_C10 2
#define SIMDATTN_TILE_C11 3
#define SIMDATTN_TILE_A0 4
#define SIMDATTN_TILE_A1 5
#define SIMDATTN_TILE_B0 6
#define SIMDATTN_TILE_B1 7

// The LDTILECFG operand, palette 1: every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t row_bytes[16];
  uint8_t rows[16];
};

// Tile state is per thread: each tile configures on entry and releases on exit, so that a thread
// leaves AMX's state as it found it (an OpenMP thread may run other code between jobs).
class TileSession {
 public:
  TileSession() {
    TileConfig config;
    std::memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; ++t) {
      config.row_bytes[t] = 64;
      config.rows[t] = static_cast<uint8_t>(kPairRows);
    }
    _tile_loadconfig(&config);
  }
  ~TileSession() { _tile_release(); }
  TileSession(const TileSession&) = delete;
  TileSession& operator=(const TileSession&) = delete;
};

// The 16 key rows from `first` of the block as a tile's memory: in place when they lie one stride
// apart, else copied (rows past `count` zero) into `staging`, 16 rows of head_dim.
template <class Arch>
inline const uint16_t* key_group(const RowSource<Arch>& keys, int64_t first, int64_t count,
                                 int64_t head_dim, uint16_t* staging, int64_t* row_bytes) {
  if (count >= kPairRows && keys.contiguous_rows(first) >= kPairRows) {
    *row_bytes = keys.stride * 2;
    return reinterpret_cast<const uint16_t*>(keys.row_address(first));
  }
  for (int64_t r = 0; r < kPairRows; ++r) {
    uint16_t* row = staging + r * head_dim;
    if (r < count) {
      std::memcpy(row, keys.row_address(first + r), static_cast<size_t>(head_dim) * 2);
    } else {
      std::memset(row, 0, static_cast<size_t>(head_dim) * 2);
    }
  }
  *row_bytes = head_dim * 2;
  return staging;
}

// With Scale, the logit scale on the 2 × 2 tiles of results just stored (keys k0.. of the block,
// columns c0..c0 + 31), while they are in L1; either way their max down the block's rows into
// block_max (when not null). Rows past `rows` are left as they are: they hold zeros' products,
// never read.
template <class Arch, bool Scale>
inline void finish_stored_products(float* scores, int64_t k0, int64_t rows, int64_t c0, int64_t padded_columns,
                                   xsimd::batch<float, Arch> logit_scale, float* block_max) {
  if (!Scale && block_max == nullptr) return;
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  static_assert(W == kPairRows, "a register holds a tile row");
  const int64_t end = std::min(k0 + 2 * kPairRows, rows);
  Floats max0(kMinusInfinity), max1(kMinusInfinity);
  for (int64_t r = k0; r < end; ++r) {
    float* row = scores + r * padded_columns + c0;
    Floats low = Floats::load_aligned(row), high = Floats::load_aligned(row + W);
    if (Scale) {
      low *= logit_scale;
      high *= logit_scale;
      low.store_aligned(row);
      high.store_aligned(row + W);
    }
    max0 = xsimd::max(max0, low);
    max1 = xsimd::max(max1, high);
  }
  if (block_max != nullptr) {
    xsimd::max(Floats::load_aligned(block_max + c0), max0).store_aligned(block_max + c0);
    xsimd::max(Floats::load_aligned(block_max + c0 + W), max1).store_aligned(block_max + c0 + W);
  }
}

// scores[r][c] = logit_scale · (K[first_key + r] · q[c]) (without Scale, the unscaled K · q) for
// the block's rows rounded up to 32 (rows past `rows` hold zeros' unscaled products and are never
// read), the products summed in fp32 on the tiles; block_max[c] (when not null) = max_r
// scores[r][c] over the block's rows.
template <class Arch, bool Scale>
inline void block_products(const RowSource<Arch>& keys, int64_t first_key, int64_t rows,
                           int64_t head_dim, const uint32_t* packed_queries, int64_t padded_columns,
                           xsimd::batch<float, Arch> logit_scale, uint16_t* staging, float* scores,
                           float* block_max) {
  if (block_max != nullptr) std::fill(block_max, block_max + padded_columns, kMinusInfinity);
  const int64_t query_row_bytes = padded_columns * 4;
  const int64_t score_row_bytes = padded_columns * 4;
  bool has_previous = false;
  int64_t previous_k0 = 0, previous_c0 = 0;
  for (int64_t k0 = 0; k0 < rows; k0 += 2 * kPairRows) {
    int64_t stride0 = 0, stride1 = 0;
    const uint16_t* group0 = key_group(keys, first_key + k0, rows - k0, head_dim, staging, &stride0);
    const bool two = rows - k0 > kPairRows;
    // The second group never needs the staging rows the first one took: only the block's last
    // group can be short, and one pair of groups is staged at most when both cross a page.
    const uint16_t* group1 = group0;
    if (two) {
      group1 = key_group(keys, first_key + k0 + kPairRows, rows - k0 - kPairRows, head_dim,
                         group0 == staging ? staging + kPairRows * head_dim : staging, &stride1);
    }
    for (int64_t c0 = 0; c0 < padded_columns; c0 += 2 * kPairRows) {
      _tile_zero(SIMDATTN_TILE_C00);
      _tile_zero(SIMDATTN_TILE_C01);
      _tile_zero(SIMDATTN_TILE_C10);
      _tile_zero(SIMDATTN_TILE_C11);
      for (int64_t d0 = 0; d0 < head_dim; d0 += kPairDepth) {
        const uint32_t* queries = packed_queries + (d0 / 2) * padded_columns + c0;
        _tile_loadd(SIMDATTN_TILE_B0, queries, query_row_bytes);
        _tile_loadd(SIMDATTN_TILE_B1, queries + kPairRows, query_row_bytes);
        _tile_loadd(SIMDATTN_TILE_A0, group0 + d0, stride0);
        _tile_dpbf16ps(SIMDATTN_TILE_C00, SIMDATTN_TILE_A0, SIMDATTN_TILE_B0);
        _tile_dpbf16ps(SIMDATTN_TILE_C01, SIMDATTN_TILE_A0, SIMDATTN_TILE_B1);
        if (two) {
          _tile_loadd(SIMDATTN_TILE_A1, group1 + d0, stride1);
          _tile_dpbf16ps(SIMDATTN_TILE_C10, SIMDATTN_TILE_A1, SIMDATTN_TILE_B0);
          _tile_dpbf16ps(SIMDATTN_TILE_C11, SIMDATTN_TILE_A1, SIMDATTN_TILE_B1);
        }
      }
      float* out = scores + k0 * padded_columns + c0;
      _tile_stored(SIMDATTN_TILE_C00, out, score_row_bytes);
      _tile_stored(SIMDATTN_TILE_C01, out + kPairRows, score_row_bytes);
      if (two) {
        _tile_stored(SIMDATTN_TILE_C10, out + kPairRows * padded_columns, score_row_bytes);
        _tile_stored(SIMDATTN_TILE_C11, out + kPairRows * padded_columns + kPairRows, score_row_bytes);
      }
      // The group stored before this one: its stores have had this group's products to land in
      // L1, where loading a tile's results right after storing them waits for the stores.
      if (has_previous) {
        finish_stored_products<Arch, Scale>(scores, previous_k0, rows, previous_c0, padded_columns, logit_scale,
                                            block_max);
      }
      has_previous = true;
      previous_k0 = k0;
      previous_c0 = c0;
    }
  }
  if (has_previous) {
    finish_stored_products<Arch, Scale>(scores, previous_k0, rows, previous_c0, padded_columns, logit_scale,
                                        block_max);
  }
}

// O[c][n] += Σ_r weights[c][r] · V[r][n] over key_rows keys, O laid out [column][value_dim].
inline void accumulate_products(const uint16_t* weights, const uint16_t* values, int64_t key_rows,
                                int64_t padded_columns, int64_t value_dim, float* accumulator) {
  const int64_t weight_row_bytes = key_rows * 2, value_row_bytes = value_dim * 4;
  const int64_t output_row_bytes = value_dim * 4;
  for (int64_t c0 = 0; c0 < padded_columns; c0 += 2 * kPairRows) {
    for (int64_t n0 = 0; n0 < value_dim; n0 += 2 * kPairRows) {
      const bool two = value_dim - n0 > kPairRows;
      float* out = accumulator + c0 * value_dim + n0;
      _tile_loadd(SIMDATTN_TILE_C00, out, output_row_bytes);
      _tile_loadd(SIMDATTN_TILE_C10, out + kPairRows * value_dim, output_row_bytes);
      if (two) {
        _tile_loadd(SIMDATTN_TILE_C01, out + kPairRows, output_row_bytes);
        _tile_loadd(SIMDATTN_TILE_C11, out + kPairRows * value_dim + kPairRows, output_row_bytes);
      }
      for (int64_t r0 = 0; r0 < key_rows; r0 += kPairDepth) {
        _tile_loadd(SIMDATTN_TILE_A0, weights + c0 * key_rows + r0, weight_row_bytes);
        _tile_loadd(SIMDATTN_TILE_A1, weights + (c0 + kPairRows) * key_rows + r0, weight_row_bytes);
        const uint16_t* pairs = values + (r0 / 2) * value_dim * 2 + n0 * 2;
        _tile_loadd(SIMDATTN_TILE_B0, pairs, value_row_bytes);
        _tile_dpbf16ps(SIMDATTN_TILE_C00, SIMDATTN_TILE_A0, SIMDATTN_TILE_B0);
        _tile_dpbf16ps(SIMDATTN_TILE_C10, SIMDATTN_TILE_A1, SIMDATTN_TILE_B0);
        if (two) {
          _tile_loadd(SIMDATTN_TILE_B1, pairs + 2 * kPairRows, value_row_bytes);
          _tile_dpbf16ps(SIMDATTN_TILE_C01, SIMDATTN_TILE_A0, SIMDATTN_TILE_B1);
          _tile_dpbf16ps(SIMDATTN_TILE_C11, SIMDATTN_TILE_A1, SIMDATTN_TILE_B1);
        }
      }
      _tile_stored(SIMDATTN_TILE_C00, out, output_row_bytes);
      _tile_stored(SIMDATTN_TILE_C10, out + kPairRows * value_dim, output_row_bytes);
      if (two) {
        _tile_stored(SIMDATTN_TILE_C01, out + kPairRows, output_row_bytes);
        _tile_stored(SIMDATTN_TILE_C11, out + kPairRows * value_dim + kPairRows, output_row_bytes);
      }
    }
  }
}

}  // namespace amx

// The pair tile's products on AMX: a thread configures the tiles for the tile's duration.
struct AmxProducts {
  using Session = amx::TileSession;
  template <class Arch, bool Scale>
  static void block_products(const RowSource<Arch>& keys, int64_t first_key, int64_t rows, int64_t head_dim,
                             const uint32_t* packed_queries, int64_t padded_columns,
                             xsimd::batch<float, Arch> logit_scale, uint16_t* staging, float* scores,
                             float* block_max) {
    amx::block_products<Arch, Scale>(keys, first_key, rows, head_dim, packed_queries, padded_columns, logit_scale,
                                     staging, scores, block_max);
  }
  static void accumulate_products(const uint16_t* weights, const uint16_t* values, int64_t key_rows,
                                  int64_t padded_columns, int64_t value_dim, float* accumulator) {
    amx::accumulate_products(weights, values, key_rows, padded_columns, value_dim, accumulator);
  }
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

#undef SIMDATTN_TILE_C00
#undef SIMDATTN_TILE_C01
#undef SIMDATTN_TILE_C10
#undef SIMDATTN_TILE_C11
#undef SIMDATTN_TILE_A0
#undef SIMDATTN_TILE_A1
#undef SIMDATTN_TILE_B0
#undef SIMDATTN_TILE_B1

#endif

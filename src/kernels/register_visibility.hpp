// Which registers of a tile's query columns see which keys, so that the fused tile's two products
// skip the registers whose columns see none of a run of keys: the triangle past the causal
// diagonal (or a window's edge) that a tile of consecutive positions would otherwise compute and
// then mask. A 64-position causal tile of 16-float registers skips 3/8 of the work of its last
// 64 keys.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/gemm_microkernel.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/visible_keys.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Per register of a tile's columns (W floats each), the keys some column of it sees: the hull of
// its columns' ranges, once per tile. Padded columns count as seeing every key, so that their
// scores stay the zeros their zero queries give, never a skipped register's stale values. Tiles
// of more than kMaxRegisters registers (very wide groups) are not tracked: every register of
// theirs sees everything.
class RegisterKeys {
 public:
  static constexpr int kMaxRegisters = 16;

  RegisterKeys(const TileScratch& scratch, int64_t real_columns, int64_t padded_columns,
               int64_t register_floats)
      : registers_(static_cast<int>(padded_columns / register_floats)) {
    if (!tracked()) return;
    constexpr int64_t kEveryKey = std::numeric_limits<int64_t>::max();
    for (int v = 0; v < registers_; ++v) {
      KeyRange& keys = keys_[v];
      keys = {kEveryKey, 0};
      for (int64_t c = v * register_floats; c < (v + 1) * register_floats; ++c) {
        const KeyRange seen = c < real_columns ? KeyRange{scratch.columns[c].visible_begin,
                                                          scratch.columns[c].visible_end}
                                               : KeyRange{0, kEveryKey};
        if (seen.empty()) continue;
        keys.begin = std::min(keys.begin, seen.begin);
        keys.end = std::max(keys.end, seen.end);
      }
      if (keys.empty()) keys = {0, 0};
    }
  }

  bool tracked() const { return registers_ <= kMaxRegisters; }
  int registers() const { return registers_; }
  const KeyRange& operator[](int v) const { return keys_[v]; }

 private:
  int registers_;
  KeyRange keys_[kMaxRegisters];
};

// RegisterKeys within one key block [first_key, first_key + rows), relative to the block.
class RegisterVisibility {
 public:
  RegisterVisibility(const RegisterKeys& tile, int64_t first_key, int64_t rows)
      : registers_(tile.registers()), everything_(true) {
    if (!tile.tracked()) return;
    for (int v = 0; v < registers_; ++v) {
      keys_[v] = {std::max(tile[v].begin, first_key) - first_key,
                  std::min(tile[v].end, first_key + rows) - first_key};
      everything_ = everything_ && keys_[v].begin == 0 && keys_[v].end == rows;
    }
  }

  // Whether every register sees every key of the block: nothing to skip.
  bool everything() const { return everything_; }

  // Of the `count` registers from `first`, the first to the last that see some key of
  // [begin, end) of the block (registers between them included), numbered from `first`; an
  // empty span when none does.
  RegisterSpan seeing(int64_t first, int count, int64_t begin, int64_t end) const {
    if (everything_) return {0, count};
    RegisterSpan span{count, 0};
    for (int v = 0; v < count; ++v) {
      if (sees(static_cast<int>(first) + v, begin, end)) {
        span.begin = std::min(span.begin, v);
        span.end = v + 1;
      }
    }
    return span.begin < span.end ? span : RegisterSpan{0, 0};
  }

  // Cuts the block's keys [0, rows) into runs where the registers that see keys stay the same:
  // within a run, each register sees all of it or none of it. cuts[0] = 0, run i is
  // [cuts[i], cuts[i + 1]), and the return is the number of runs.
  int runs(int64_t (&cuts)[2 * RegisterKeys::kMaxRegisters + 2], int64_t rows) const {
    int count = 0;
    cuts[count++] = 0;
    cuts[count++] = rows;
    for (int v = 0; v < registers_ && !everything_; ++v) {
      for (const int64_t cut : {keys_[v].begin, keys_[v].end}) {
        if (cut > 0 && cut < rows) cuts[count++] = cut;
      }
    }
    // Insertion sort of at most 34 cuts (std::sort's unrolled insertion trips GCC 12's
    // -Warray-bounds on so short an array).
    for (int i = 1; i < count; ++i) {
      for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; --j) std::swap(cuts[j - 1], cuts[j]);
    }
    count = static_cast<int>(std::unique(cuts, cuts + count) - cuts);
    // Neighbouring runs seen by the same registers are one run.
    int kept = 1;
    for (int i = 1; i < count - 1; ++i) {
      if (!same_registers_see(cuts[kept - 1], cuts[i], cuts[i], cuts[i + 1])) cuts[kept++] = cuts[i];
    }
    cuts[kept] = rows;
    return kept;
  }

 private:
  bool sees(int v, int64_t begin, int64_t end) const {
    return everything_ || (keys_[v].begin < end && keys_[v].end > begin);
  }

  bool same_registers_see(int64_t begin_a, int64_t end_a, int64_t begin_b, int64_t end_b) const {
    for (int v = 0; v < registers_; ++v) {
      if (sees(v, begin_a, end_a) != sees(v, begin_b, end_b)) return false;
    }
    return true;
  }

  int registers_;
  bool everything_;
  KeyRange keys_[RegisterKeys::kMaxRegisters];
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

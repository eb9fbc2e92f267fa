// A block of key or value rows as they are stored (f32, bf16, f16, or int8 with fp32 scales),
// for kernels that read them in place and widen each register as they load it. Decoding streams
// every K and V row from memory once, so widening a block into a buffer first and reading the
// buffer back (RowSource::rows) would serialise the memory stream and the arithmetic; reading in
// place keeps the stream going and halves (16-bit) or quarters (int8) the bytes it moves.
//
// A widened element is exactly what widen_row gives: bf16 and f16 widen exactly, and an int8
// element is float(int8) · scale, one rounding, as widen_i8 computes it. A kernel reading 16-bit
// rows, or int8 rows scaled element by element, therefore gives bit for bit the result of the
// fp32 kernel run on the widened rows. Where int8 K and V rows have one scale each, the decoding
// kernel applies it once instead (to a key's dot products, to a value row's weights): the same
// products, one rounding moved, well inside the error bound, and the multiply per element gone.
//
// int8 scales: one per group of scale_group consecutive elements of a row (scale_group equal to
// the row's width for one scale a row). Kernels take the scales a group at a time
// (group_span()), so a register never straddles two groups: the in-place path requires that a
// whole number of registers fits a group, or that the row has one scale (can_read_in_place).
#pragma once

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/scalar_convert.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Decoding streams K and V from memory once. The hardware prefetchers stop at every 4 KiB page
// (8 rows at head_dim 128), so the kernels ask for the rows this far ahead themselves.
inline constexpr int64_t kDecodePrefetchRows = 16;

template <DType kStored>
struct StorageOf {
  using type = uint16_t;  // bf16, f16: their bits
};
template <>
struct StorageOf<DType::f32> {
  using type = float;
};
template <>
struct StorageOf<DType::i8> {
  using type = int8_t;
};

template <class Arch, DType kStored>
struct StoredRows {
  using Storage = typename StorageOf<kStored>::type;
  using Floats = xsimd::batch<float, Arch>;
  static constexpr bool kScaled = kStored == DType::i8;
  // Whether this unit has the instructions to widen kStored (SSE2 has none for f16).
  static constexpr bool kUnitConverts = kStored != DType::f16 || convert::kHasF16;

  const Storage* first;
  int64_t stride;             // elements from one row to the next
  int64_t available;          // rows that may be read from first on (prefetches look ahead)
  const float* scales;        // int8: the scales of row 0, scale_row_stride floats a row
  int64_t scale_row_stride;
  int64_t scale_group;
  // A paged source's next page in the sequence's key order: the rows after `available` continue
  // at next_first (next_available of them, one stride apart). Read only by prefetch_ahead, so
  // that a block that ends at a page end still asks for the keys after it; null when nothing
  // follows (a contiguous source, or the tile's last page).
  const Storage* next_first = nullptr;
  int64_t next_available = 0;

  const Storage* row(int64_t r) const { return first + r * stride; }
  const float* row_scales(int64_t r) const { return scales + r * scale_row_stride; }

  // Elements [d, d + W) of a row as floats, before the int8 scale.
  static Floats load(const Storage* row, int64_t d) {
    static_assert(kStored == DType::f32 || convert::kLanes == Floats::size,
                  "the conversions are compiled for this unit's register width");
    if constexpr (kStored == DType::f32) {
      return Floats::load_unaligned(row + d);
    } else if constexpr (kStored == DType::bf16) {
      return Floats(convert::load_bf16(row + d));
    } else if constexpr (kStored == DType::f16) {
      return Floats(convert::load_f16(row + d));
    } else {
      return Floats(convert::load_i8(row + d));
    }
  }

  // Element d of row r, before the int8 scale.
  float unscaled_element(int64_t r, int64_t d) const {
    const Storage stored = row(r)[d];
    if constexpr (kStored == DType::f32) {
      return stored;
    } else if constexpr (kStored == DType::bf16) {
      return bf16_to_float(stored);
    } else if constexpr (kStored == DType::f16) {
      return f16_to_float(stored);
    } else {
      return static_cast<float>(stored);
    }
  }

  // Element d of row r, scale included.
  float element(int64_t r, int64_t d) const {
    if constexpr (kScaled) {
      return unscaled_element(r, d) * row_scales(r)[d / scale_group];
    } else {
      return unscaled_element(r, d);
    }
  }

  // Elements a kernel may take with one set of scales: a whole number of registers, or all of a
  // row of `width` elements when nothing is scaled.
  int64_t group_span(int64_t width) const { return kScaled ? std::min(scale_group, width) : width; }

  // Whether kernels can read rows of `width` elements in place at this unit's register width:
  // every register of a row lies inside one scale group.
  static bool can_read_in_place(int64_t scale_group, int64_t width) {
    if constexpr (!kUnitConverts) return false;
    if constexpr (!kScaled) return true;
    return scale_group >= width || scale_group % static_cast<int64_t>(Floats::size) == 0;
  }

  // Asks for rows [r, r + count) of `width` elements to be brought into every cache level.
  [[gnu::always_inline]] void prefetch(int64_t r, int64_t count, int64_t width) const {
    prefetch_rows(row(r), count, width);
  }
  // The same for row r counted from first across the page end: rows past `available` come from
  // the next page; rows past both are not asked for.
  [[gnu::always_inline]] void prefetch_ahead(int64_t r, int64_t count, int64_t width) const {
    if (r < available) {
      prefetch_rows(row(r), count, width);
    } else if (r - available < next_available) {
      prefetch_rows(next_first + (r - available) * stride, count, width);
    }
  }

 private:
  [[gnu::always_inline]] void prefetch_rows(const Storage* from, int64_t count, int64_t width) const {
    const auto* bytes = reinterpret_cast<const char*>(from);
    const int64_t row_bytes = stride * static_cast<int64_t>(sizeof(Storage));
    const int64_t used_bytes = width * static_cast<int64_t>(sizeof(Storage));
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t line = 0; line < used_bytes; line += 64) __builtin_prefetch(bytes + i * row_bytes + line, 0, 3);
    }
  }
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

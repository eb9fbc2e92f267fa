// One tensor argument of a fuzzed call: decoded from the input (layout, hostile shape or stride,
// dtype, NULL data, values), backed by exactly the memory its view reaches (so AddressSanitizer
// sees any access outside it), and classified: `must_reject` when the view is invalid on its own
// (negative size or stride, overflow, a non-contiguous last dimension, a self-overlapping output,
// a bad dtype, NULL data), which no call may accept.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "byte_reader.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/tensor.hpp"

namespace simdattn::fuzz {

using Shape = std::array<int64_t, 4>;

// Views reaching more elements than this are not run (the input is dropped): the harness must
// own every byte a view may touch.
constexpr int64_t kMaxElements = int64_t{1} << 18;
constexpr float kSentinel = -8765.25f;
constexpr float kInfinity = std::numeric_limits<float>::infinity();

// Where a tensor goes in the call, which decides how it may be laid out and what it holds:
// outputs start as the sentinel; in_place (softmax_rows' scores) obeys the rules of an output and
// holds input values.
enum class Role { input, output, in_place, mask };
// What input values are drawn from: `finite` in [-4, 4]; `specials` adds NaN, ±inf, 1e4, -0 and
// a subnormal now and then; `scores` spans [-125, 125] with the specials; `mask` adds frequent
// -inf.
enum class Values { finite, specials, scores, mask };

struct FuzzTensor {
  bool present = false;
  simdattn_tensor c{};
  std::vector<float> storage;  // exactly the view's extent; gaps between rows hold NaN
  bool must_reject = false;

  int64_t element_count() const {
    int64_t count = 1;
    for (int64_t size : c.shape) {
      if (size <= 0) return 0;
      if (__builtin_mul_overflow(count, size, &count)) return std::numeric_limits<int64_t>::max();
    }
    return count;
  }

  // The same view over other memory of the same extent (the oracle's copy of an output); an
  // empty copy gives a pointer that is not NULL (see `unusable` below).
  TensorView view_over(std::vector<float>& copy) const {
    return view_over(copy.empty() ? unusable() : copy.data());
  }
  TensorView view_over(float* data) const {
    return {data, {c.shape[0], c.shape[1], c.shape[2], c.shape[3]},
            {c.strides[0], c.strides[1], c.strides[2], c.strides[3]}};
  }

  // Where the oracle's copy of an empty output points: not NULL, since the oracles compute row
  // addresses of a view even when its rows are empty (NULL + offset is undefined behaviour,
  // which UBSan reports). Never read or written.
  static float* unusable() {
    static float nothing;
    return &nothing;
  }
  ConstTensorView view() const {
    return ConstTensorView(view_over(const_cast<float*>(static_cast<const float*>(c.data))));
  }

  // Calls f(offset) for the storage offset of every element of the view (valid views only; an
  // empty one may still have a huge size elsewhere, hence the early return).
  template <class F>
  void for_each_offset(F&& f) const {
    if (element_count() == 0) return;
    for (int64_t b = 0; b < c.shape[0]; ++b)
      for (int64_t h = 0; h < c.shape[1]; ++h)
        for (int64_t s = 0; s < c.shape[2]; ++s)
          for (int64_t d = 0; d < c.shape[3]; ++d)
            f(b * c.strides[0] + h * c.strides[1] + s * c.strides[2] + d * c.strides[3]);
  }
};

// One input value, from one byte.
inline float decode_value(ByteReader& in, Values kind) {
  const uint8_t b = in.byte();
  static constexpr float kSpecials[] = {std::numeric_limits<float>::quiet_NaN(), kInfinity, -kInfinity,
                                        1e4f, -0.0f, 1e-40f};
  if (kind != Values::finite && b >= 250) return kSpecials[b - 250];
  switch (kind) {
    case Values::scores: return static_cast<float>(b) - 125.0f;
    case Values::mask: return b >= 235 ? -kInfinity : (static_cast<float>(b) - 117.0f) / 29.0f;
    default: return (static_cast<float>(b) - 125.0f) / 31.25f;
  }
}

// Decodes the tensor meant to be [shape] (see tests/fuzz/README.md for the bytes). Returns false when
// its view is valid but reaches more than kMaxElements elements: the call cannot run safely.
inline bool decode_tensor(ByteReader& in, Shape shape, Role role, Values values, FuzzTensor& t) {
  t.present = true;
  Shape strides = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
  static constexpr int64_t kHostileSizes[] = {-1, 0, 1, 3, int64_t{1} << 21, int64_t{1} << 40,
                                              std::numeric_limits<int64_t>::max(),
                                              std::numeric_limits<int64_t>::min()};
  static constexpr int64_t kHostileStrides[] = {-1, 0, 1, 5, int64_t{1} << 62,
                                                std::numeric_limits<int64_t>::max(),
                                                std::numeric_limits<int64_t>::min(), 2};
  switch (in.choice(12)) {
    case 5:  // [batch, seq, heads, dim] memory
      strides = {shape[2] * shape[1] * shape[3], shape[3], shape[1] * shape[3], 1};
      break;
    case 6: {  // gaps after each row, head and batch
      const int64_t row = shape[3] + in.choice(4), head = shape[2] * row + in.choice(4);
      strides = {shape[1] * head + in.choice(4), head, row, 1};
      break;
    }
    case 7: strides[in.choice(3)] = 0; break;  // an expanded view: valid for inputs only
    case 8: {  // which size, then which hostile value (read in that order: one statement each)
      const int dimension = in.choice(4);
      shape[dimension] = kHostileSizes[in.choice(8)];
      break;
    }
    case 9: {
      const int dimension = in.choice(4);
      strides[dimension] = kHostileStrides[in.choice(8)];
      break;
    }
    case 10: strides[3] = 2; break;
    case 11: {
      const int dimension = in.choice(4);
      shape[dimension] = in.raw_int64();
      break;
    }
    default: break;  // dense [batch, heads, seq, dim]
  }
  const int flags = in.choice(256);
  t.c.dtype = flags == 255 ? 7 : SIMDATTN_F32;
  const bool null_data = flags == 254;
  for (int d = 0; d < 4; ++d) {
    t.c.shape[d] = shape[d];
    t.c.strides[d] = strides[d];
  }

  // Validity of the view on its own, as every entry checks it.
  bool invalid = t.c.dtype != SIMDATTN_F32;
  for (int d = 0; d < 4; ++d) invalid |= shape[d] < 0 || strides[d] < 0;
  invalid |= strides[3] != 1 && !(role == Role::mask && shape[3] == 1);
  int64_t count = 1;
  for (int d = 0; d < 4 && !invalid; ++d) invalid |= __builtin_mul_overflow(count, shape[d], &count);
  int64_t last = 0;
  if (!invalid && count > 0) {
    for (int d = 0; d < 4; ++d) {
      int64_t term = 0;
      invalid |= __builtin_mul_overflow(shape[d] - 1, strides[d], &term) || __builtin_add_overflow(last, term, &last);
    }
    int64_t bytes = 0;
    invalid |= __builtin_mul_overflow(last, int64_t{4}, &bytes) || __builtin_add_overflow(bytes, int64_t{3}, &bytes);
    if (role == Role::output || role == Role::in_place) {
      for (int d = 0; d < 4; ++d) invalid |= shape[d] > 1 && strides[d] == 0;
    }
    invalid |= null_data;
  }
  t.must_reject = invalid;
  if (!invalid && count > 0 && last + 1 > kMaxElements) return false;

  // Memory: the exact extent of a valid view; a few elements for one that must be refused.
  const int64_t extent = invalid ? 16 : (count > 0 ? last + 1 : 0);
  t.storage.assign(static_cast<size_t>(extent), role == Role::output ? kSentinel : std::nanf(""));
  t.c.data = null_data || extent == 0 ? nullptr : t.storage.data();
  // A view with zero strides can name far more elements than it spans; its values are left NaN
  // then (no call with it can be valid: its sizes cannot all agree, see fuzz_c_abi.cpp).
  if (!invalid && role != Role::output && count <= kMaxElements) {
    t.for_each_offset([&](int64_t offset) { t.storage[static_cast<size_t>(offset)] = decode_value(in, values); });
  }
  return true;
}

}  // namespace simdattn::fuzz

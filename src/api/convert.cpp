// convert() and quantize_rows() (simdattn/convert.hpp): validate, then convert row by row with
// the conversions of this call's ISA.
#include "simdattn/convert.hpp"

#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "api/validate.hpp"
#include "dispatch.hpp"
#include "kernels/convert_kernels.hpp"

namespace simdattn {
namespace {

// Calls visit(b, h, s) for every row of a [B, H, S, D] shape.
template <class Visit>
void for_each_row(const std::array<int64_t, 4>& shape, Visit&& visit) {
  for (int64_t b = 0; b < shape[0]; ++b)
    for (int64_t h = 0; h < shape[1]; ++h)
      for (int64_t s = 0; s < shape[2]; ++s) visit(b, h, s);
}

// x / scale rounded to nearest, ties to even, whatever the rounding mode (|x / scale| <= 127
// after the clamp, so every step is exact).
int8_t quantized(float x, float scale) {
  float value = x / scale;
  value = std::fmin(127.0f, std::fmax(-127.0f, value));
  float whole = std::trunc(value);
  const float fraction = value - whole;
  if (std::fabs(fraction) > 0.5f || (std::fabs(fraction) == 0.5f && std::fmod(whole, 2.0f) != 0.0f)) {
    whole += std::copysign(1.0f, value);
  }
  return static_cast<int8_t>(whole);
}

}  // namespace

void convert(AnyConstTensorView source, AnyTensorView destination) {
  detail::validate_convert("simdattn::convert", source, destination);
  const detail::Isa isa = detail::isa_for_this_call();
  const int64_t length = source.shape[3];
  std::vector<float> row(source.dtype != DType::f32 && destination.dtype != DType::f32 ? length : 0);
  for_each_row(source.shape, [&](int64_t b, int64_t h, int64_t s) {
    const void* from = source.row(b, h, s);
    void* to = destination.row(b, h, s);
    if (destination.dtype == DType::f32) {
      detail::run_for_isa(isa, detail::WidenRowKernel{}, from, source.dtype, length,
                          static_cast<float*>(to), static_cast<const float*>(nullptr), int64_t(1));
    } else if (source.dtype == DType::f32) {
      detail::run_for_isa(isa, detail::NarrowRowKernel{}, static_cast<const float*>(from), length, to,
                          destination.dtype);
    } else {  // 16-bit to 16-bit: through fp32, which holds every value of both exactly
      detail::run_for_isa(isa, detail::WidenRowKernel{}, from, source.dtype, length, row.data(),
                          static_cast<const float*>(nullptr), int64_t(1));
      detail::run_for_isa(isa, detail::NarrowRowKernel{}, static_cast<const float*>(row.data()),
                          length, to, destination.dtype);
    }
  });
}

void quantize_rows(AnyConstTensorView source, BasicTensorView<int8_t> destination, TensorView scales) {
  const char* function = "simdattn::quantize_rows";
  detail::validate_quantize_rows(function, source, destination, scales);
  const detail::Isa isa = detail::isa_for_this_call();
  const int64_t length = source.shape[3], groups = scales.shape[3];
  const int64_t group = groups > 0 ? length / groups : 0;
  std::vector<float> row(length);
  const auto widen = [&](int64_t b, int64_t h, int64_t s) {
    detail::run_for_isa(isa, detail::WidenRowKernel{}, source.row(b, h, s), source.dtype, length,
                        row.data(), static_cast<const float*>(nullptr), int64_t(1));
  };
  // Every element finite before anything is written.
  for_each_row(source.shape, [&](int64_t b, int64_t h, int64_t s) {
    widen(b, h, s);
    for (int64_t d = 0; d < length; ++d) {
      if (!std::isfinite(row[d])) {
        std::ostringstream message;
        message << function << ": source[" << b << ", " << h << ", " << s << ", " << d
                << "] must be finite (an int8 scale cannot hold it), got " << row[d];
        throw std::invalid_argument(message.str());
      }
    }
  });
  for_each_row(source.shape, [&](int64_t b, int64_t h, int64_t s) {
    widen(b, h, s);
    int8_t* out = destination.row(b, h, s);
    float* scale_row = scales.row(b, h, s);
    for (int64_t g = 0; g < groups; ++g) {
      float largest = 0.0f;
      for (int64_t d = g * group; d < (g + 1) * group; ++d) largest = std::fmax(largest, std::fabs(row[d]));
      const float scale = largest / 127.0f;
      scale_row[g * scales.strides[3]] = scale;
      for (int64_t d = g * group; d < (g + 1) * group; ++d) {
        out[d] = scale > 0.0f ? quantized(row[d], scale) : int8_t(0);
      }
    }
  });
}

}  // namespace simdattn

// convert() and quantize_rows() (simdattn/convert.hpp): validate, then convert row by row with
// the conversions of this call's ISA, rows shared among OpenMP's threads when the call is large.
#include "simdattn/convert.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "api/validate.hpp"
#include "dispatch.hpp"
#include "kernels/convert_kernels.hpp"
#include "plan/attention_plan.hpp"

namespace simdattn {
namespace {

// Elements a thread takes at a time: a token's rows (a few heads of 128) stay on the calling
// thread, where starting a team would cost more than the conversion.
constexpr int64_t kElementsPerWorkItem = int64_t{1} << 15;

// Calls visit(b, h, s, scratch) for every row of a [B, H, S, D] shape, shared among threads when
// there are several work items; scratch holds scratch_floats floats of the visiting thread's own.
// visit must not throw (it runs inside an OpenMP team).
template <class Visit>
void for_each_row(const std::array<int64_t, 4>& shape, int64_t scratch_floats, Visit&& visit) {
  const int64_t rows = shape[0] * shape[1] * shape[2];
  if (rows == 0) return;
  const int64_t rows_per_item = std::max<int64_t>(1, kElementsPerWorkItem / std::max<int64_t>(1, shape[3]));
  const int64_t items = (rows + rows_per_item - 1) / rows_per_item;
  const int threads = detail::threads_for_call(0, items);
  std::vector<float> scratch(static_cast<size_t>(scratch_floats * threads));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t item = 0; item < items; ++item) {
    float* mine = scratch.data() + scratch_floats * omp_get_thread_num();
    const int64_t last = std::min(rows, (item + 1) * rows_per_item);
    for (int64_t row = item * rows_per_item; row < last; ++row) {
      visit(row / (shape[1] * shape[2]), row / shape[2] % shape[1], row % shape[2], mine);
    }
  }
}

}  // namespace

void convert(AnyConstTensorView source, AnyTensorView destination) {
  detail::validate_convert("simdattn::convert", source, destination);
  const detail::Isa isa = detail::isa_for_this_call();
  const int64_t length = source.shape[3];
  const int64_t scratch = source.dtype != DType::f32 && destination.dtype != DType::f32 ? length : 0;
  for_each_row(source.shape, scratch, [&](int64_t b, int64_t h, int64_t s, float* row) {
    const void* from = source.row(b, h, s);
    void* to = destination.row(b, h, s);
    if (destination.dtype == DType::f32) {
      detail::run_for_isa(isa, detail::WidenRowKernel{}, from, source.dtype, length,
                          static_cast<float*>(to), static_cast<const float*>(nullptr), int64_t(1));
    } else if (source.dtype == DType::f32) {
      detail::run_for_isa(isa, detail::NarrowRowKernel{}, static_cast<const float*>(from), length, to,
                          destination.dtype);
    } else {  // 16-bit to 16-bit: through fp32, which holds every value of both exactly
      detail::run_for_isa(isa, detail::WidenRowKernel{}, from, source.dtype, length, row,
                          static_cast<const float*>(nullptr), int64_t(1));
      detail::run_for_isa(isa, detail::NarrowRowKernel{}, static_cast<const float*>(row), length, to,
                          destination.dtype);
    }
  });
}

void quantize_rows(AnyConstTensorView source, BasicTensorView<int8_t> destination, TensorView scales) {
  const char* function = "simdattn::quantize_rows";
  detail::validate_quantize_rows(function, source, destination, scales);
  const detail::Isa isa = detail::isa_for_this_call();
  const int64_t length = source.shape[3], groups = scales.shape[3];
  const int64_t group = groups > 0 ? length / groups : 0;
  const auto widen = [&](int64_t b, int64_t h, int64_t s, float* row) {
    detail::run_for_isa(isa, detail::WidenRowKernel{}, source.row(b, h, s), source.dtype, length, row,
                        static_cast<const float*>(nullptr), int64_t(1));
  };
  // Every element finite before anything is written: the first row (in row order) holding a
  // non-finite element is found by all threads, then named from this one.
  const int64_t rows = source.shape[0] * source.shape[1] * source.shape[2];
  std::atomic<int64_t> first_bad_row{rows};
  // An f32 row is read where it is; other dtypes are widened first.
  const auto floats_of = [&](int64_t b, int64_t h, int64_t s, float* row) -> const float* {
    if (source.dtype == DType::f32) return static_cast<const float*>(source.row(b, h, s));
    widen(b, h, s, row);
    return row;
  };
  for_each_row(source.shape, length, [&](int64_t b, int64_t h, int64_t s, float* row) {
    bool finite = false;
    detail::run_for_isa(isa, detail::FiniteRowKernel{}, floats_of(b, h, s, row), length, &finite);
    if (finite) return;
    const int64_t index = (b * source.shape[1] + h) * source.shape[2] + s;
    int64_t seen = first_bad_row.load();
    while (index < seen && !first_bad_row.compare_exchange_weak(seen, index)) {
    }
  });
  if (const int64_t bad = first_bad_row.load(); bad < rows) {
    const int64_t b = bad / (source.shape[1] * source.shape[2]), h = bad / source.shape[2] % source.shape[1],
                  s = bad % source.shape[2];
    std::vector<float> row(static_cast<size_t>(length));
    widen(b, h, s, row.data());
    const int64_t d = std::find_if(row.begin(), row.end(), [](float x) { return !std::isfinite(x); }) - row.begin();
    std::ostringstream message;
    message << function << ": source[" << b << ", " << h << ", " << s << ", " << d
            << "] must be finite (an int8 scale cannot hold it), got " << row[static_cast<size_t>(d)];
    throw std::invalid_argument(message.str());
  }
  for_each_row(source.shape, length, [&](int64_t b, int64_t h, int64_t s, float* row) {
    detail::run_for_isa(isa, detail::QuantizeRowKernel{}, floats_of(b, h, s, row), length, group,
                        destination.row(b, h, s), scales.row(b, h, s), scales.strides[3]);
  });
}

}  // namespace simdattn

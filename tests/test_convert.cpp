// convert() and quantize_rows() (simdattn/convert.hpp): every element against the oracle's
// exact rounding (reference/stored_values.hpp) on every ISA the host runs, in every layout (the
// padded one leaves gaps that must stay untouched), at row lengths around every register width;
// quantization within its bound; and every rejected argument leaving the outputs as they were.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "reference/stored_values.hpp"
#include "simdattn/convert.hpp"
#include "simdattn/simdattn.h"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;
using reference::detail::stored_value;
using reference::detail::store_rounded;

// A tensor of `dtype` laid out like `like` (strides in elements), every byte 0xa5 at first.
struct Storage {
  std::vector<unsigned char> bytes;
  AnyTensorView view;
  Storage(const Tensor& like, DType dtype)
      : bytes(like.storage.size() * static_cast<size_t>(dtype_size(dtype)), 0xa5),
        view(bytes.data(), dtype, like.view.shape, like.view.strides) {}
};

// `values` stored as `dtype` by the oracle's rounding (exact for f32).
Storage rounded_copy(const Tensor& values, DType dtype) {
  Storage stored(values, dtype);
  const auto& s = values.view.shape;
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t i = 0; i < s[2]; ++i)
        for (int64_t d = 0; d < s[3]; ++d) store_rounded(stored.view.row(b, h, i), dtype, d, values.at(b, h, i, d));
  return stored;
}

// Values that exercise rounding: uniform ones, ties and near-ties of bf16 and f16, the f16
// overflow threshold, subnormals of both, infinities and NaN.
void fill_probes(Tensor& t) {
  t.fill_uniform(11, -3.0f, 3.0f);
  const float specials[] = {65504.0f, 65519.0f, 65520.0f, -1e6f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f,
                            1.0f + 0x1p-8f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-9f, -0.0f,
                            std::numeric_limits<float>::infinity(), std::nanf(""), 0x1p-140f};
  const auto& s = t.view.shape;
  int64_t next = 0;
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t i = 0; i < s[2]; ++i)
        for (int64_t d = 0; d < s[3]; d += 3) t.at(b, h, i, d) = specials[next++ % std::size(specials)];
}

// Whether every element of a and b holds the same value (NaN matching NaN).
bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

class Convert : public ::testing::TestWithParam<Isa> {};

TEST_P(Convert, RoundsAndWidensEveryElementAsTheOracle) {
  detail::ScopedIsaOverride isa(GetParam());
  for (Layout layout : {Layout::bhsd, Layout::bshd, Layout::padded}) {
    for (int64_t length : {1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 70}) {
      Tensor source32(2, 3, 5, length, layout);
      fill_probes(source32);
      for (DType from : {DType::f32, DType::bf16, DType::f16}) {
        const Storage source = rounded_copy(source32, from);
        const auto& s = source32.view.shape;
        for (DType to : {DType::f32, DType::bf16, DType::f16}) {
          Storage destination(source32, to), expected(source32, to);
          convert(source.view, destination.view);
          for (int64_t b = 0; b < s[0]; ++b)
            for (int64_t h = 0; h < s[1]; ++h)
              for (int64_t i = 0; i < s[2]; ++i)
                for (int64_t d = 0; d < s[3]; ++d)
                  store_rounded(expected.view.row(b, h, i), to, d,
                                stored_value(source.view.row(b, h, i), from, d));
          for (int64_t b = 0; b < s[0]; ++b)
            for (int64_t h = 0; h < s[1]; ++h)
              for (int64_t i = 0; i < s[2]; ++i)
                for (int64_t d = 0; d < s[3]; ++d) {
                  const double got = stored_value(destination.view.row(b, h, i), to, d);
                  const double want = stored_value(expected.view.row(b, h, i), to, d);
                  ASSERT_TRUE(same_value(got, want))
                      << dtype_name(from) << " -> " << dtype_name(to) << " " << layout_name(layout)
                      << " length " << length << " at [" << b << "," << h << "," << i << "," << d
                      << "]: got " << got << ", want " << want;
                }
          // The gaps of the padded layout were not written.
          if (layout == Layout::padded) {
            Storage untouched(source32, to);
            size_t written = 0;
            for (size_t byte = 0; byte < destination.bytes.size(); ++byte) {
              written += destination.bytes[byte] != untouched.bytes[byte];
            }
            EXPECT_LE(written, size_t(s[0] * s[1] * s[2] * s[3] * dtype_size(to)));
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Convert, ::testing::ValuesIn(host_isas()), isa_test_name);

class QuantizeRows : public ::testing::TestWithParam<Isa> {};

TEST_P(QuantizeRows, ScalesAreMaxOver127AndValuesWithinHalfAStep) {
  detail::ScopedIsaOverride isa(GetParam());
  for (DType from : {DType::f32, DType::bf16, DType::f16}) {
    for (int64_t groups : {1, 2, 4, 8}) {
      Tensor source32(2, 2, 9, 64, Layout::bshd);
      source32.fill_uniform(7 + groups, -2.0f, 2.0f);
      for (int64_t d = 0; d < 64 / groups; ++d) source32.at(1, 1, 8, d) = 0.0f;  // an all-zero group
      source32.at(0, 0, 0, 5) = 0.5f * (2.0f / 127.0f) * 3.0f;  // not a tie after rounding: fine
      const Storage source = rounded_copy(source32, from);
      const auto& s = source32.view.shape;
      Storage quantized(source32, DType::i8);
      Tensor scales(2, 2, 9, groups);
      quantize_rows(source.view, BasicTensorView<int8_t>(static_cast<int8_t*>(quantized.view.data),
                                                         quantized.view.shape, quantized.view.strides),
                    scales.view);
      const int64_t group = 64 / groups;
      for (int64_t b = 0; b < s[0]; ++b)
        for (int64_t h = 0; h < s[1]; ++h)
          for (int64_t i = 0; i < s[2]; ++i)
            for (int64_t g = 0; g < groups; ++g) {
              double largest = 0.0;
              for (int64_t d = g * group; d < (g + 1) * group; ++d) {
                largest = std::max(largest, std::fabs(stored_value(source.view.row(b, h, i), from, d)));
              }
              const float scale = scales.at(b, h, i, g);
              ASSERT_EQ(scale, static_cast<float>(largest) / 127.0f);
              for (int64_t d = g * group; d < (g + 1) * group; ++d) {
                const double x = stored_value(source.view.row(b, h, i), from, d);
                const int8_t q = static_cast<const int8_t*>(quantized.view.row(b, h, i))[d];
                ASSERT_GE(q, -127);
                // The nearest step: |x - q·scale| <= scale / 2, plus the rounding of x / scale
                // (|x / scale| <= 127, so at most 127 · 2^-24 < 2^-17 steps) near a tie.
                ASSERT_LE(std::fabs(x - q * double(scale)), double(scale) * (0.5 + 0x1p-17))
                    << dtype_name(from) << " groups " << groups << " x " << x << " q " << int(q);
                if (x == largest && largest > 0.0) {
                  EXPECT_EQ(q, 127);
                }
              }
            }
      EXPECT_EQ(scales.at(1, 1, 8, 0), 0.0f);
    }
  }
}

TEST_P(QuantizeRows, TiesRoundToEven) {
  detail::ScopedIsaOverride isa(GetParam());
  // Scale 1 (max 127): x / scale is x itself, and 2.5, 3.5, -2.5 are ties.
  Tensor source(1, 1, 1, 8);
  const float values[] = {127.0f, 2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, 126.5f};
  for (int d = 0; d < 8; ++d) source.at(0, 0, 0, d) = values[d];
  std::vector<int8_t> q(8, 99);
  Tensor scales(1, 1, 1, 1);
  quantize_rows(source.in(), bhsd_view(q.data(), 1, 1, 1, 8), scales.view);
  EXPECT_EQ(scales.at(0, 0, 0, 0), 1.0f);
  EXPECT_EQ(q, (std::vector<int8_t>{127, 2, 4, -2, 0, 0, 2, 126}));
}

INSTANTIATE_TEST_SUITE_P(Isa, QuantizeRows, ::testing::ValuesIn(host_isas()), isa_test_name);

// A call that must throw std::invalid_argument whose message contains `expected`.
template <class Call>
void expect_rejected(Call call, const std::string& expected) {
  try {
    call();
    FAIL() << "accepted; expected an error containing \"" << expected << "\"";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find(expected), std::string::npos)
        << "message: " << error.what() << "\nexpected to contain: " << expected;
  }
}

TEST(ConvertRules, BadArgumentsAreRejectedAndNothingIsWritten) {
  Tensor source(1, 2, 3, 8);
  source.fill_uniform(3);
  Storage destination(source, DType::bf16);
  const std::vector<unsigned char> before = destination.bytes;
  Tensor wrong_shape(1, 2, 3, 9);
  Storage wrong(wrong_shape, DType::f16);
  expect_rejected([&] { convert(source.in(), wrong.view); },
                  "simdattn::convert: destination.shape[3] (row length) must equal source.shape[3] = 8, got 9");
  std::vector<int8_t> bytes(48);
  expect_rejected([&] { convert(AnyConstTensorView(bytes.data(), DType::i8, {1, 2, 3, 8}, {48, 24, 8, 1}),
                                destination.view); },
                  "simdattn::convert: source.dtype must be f32, bf16 or f16, got i8");
  expect_rejected([&] { convert(source.in(), AnyTensorView(source.view)); },
                  "simdattn::convert: destination must not overlap source");
  EXPECT_EQ(destination.bytes, before);

  Tensor scales(1, 2, 3, 3);
  scales.fill(-5.0f);
  std::vector<int8_t> quantized(48, 7);
  const auto quantized_view = bhsd_view(quantized.data(), 1, 2, 3, 8);
  expect_rejected([&] { quantize_rows(source.in(), quantized_view, scales.view); },
                  "simdattn::quantize_rows: scales.shape[3] (groups per row) must divide "
                  "source.shape[3] = 8 (1: one scale per row), got 3");
  Tensor good_scales(1, 2, 3, 2);
  good_scales.fill(-5.0f);
  source.at(0, 1, 2, 6) = std::numeric_limits<float>::infinity();
  expect_rejected([&] { quantize_rows(source.in(), quantized_view, good_scales.view); },
                  "simdattn::quantize_rows: source[0, 1, 2, 6] must be finite (an int8 scale cannot "
                  "hold it), got inf");
  EXPECT_EQ(quantized, std::vector<int8_t>(48, 7));
  EXPECT_EQ(good_scales.at(0, 0, 0, 0), -5.0f);
}

}  // namespace
}  // namespace simdattn::testing

namespace simdattn::testing {
namespace {

simdattn_tensor c_tensor(void* data, simdattn_dtype dtype, std::array<int64_t, 4> shape) {
  simdattn_tensor t{};
  t.data = data;
  t.dtype = dtype;
  for (int d = 0; d < 4; ++d) t.shape[d] = shape[d];
  t.strides[3] = 1;
  for (int d = 2; d >= 0; --d) t.strides[d] = t.strides[d + 1] * shape[d + 1];
  return t;
}

// A large call shares its rows among threads (from 32K elements); each row must come out as a
// call on that row alone (128 elements: the calling thread) gives it, in a layout whose rows are
// not in memory order (bshd), and a non-finite element in a late row still stops the call before
// anything is written, naming the first such element in row order.
TEST(ConvertThreads, LargeCallsMatchRowByRowCalls) {
  Tensor source(2, 8, 300, 128, Layout::bshd);
  source.fill_uniform(21, -4.0f, 4.0f);
  const auto& s = source.view.shape;
  const auto row_view = [](const auto& view, int64_t b, int64_t h, int64_t i) {
    auto row = view;
    row.data = view.row(b, h, i);
    row.shape = {1, 1, 1, view.shape[3]};
    return row;
  };
  for (DType to : {DType::bf16, DType::f16}) {
    Storage whole(source, to), by_row(source, to);
    convert(source.in(), whole.view);
    for (int64_t b = 0; b < s[0]; ++b)
      for (int64_t h = 0; h < s[1]; ++h)
        for (int64_t i = 0; i < s[2]; ++i) convert(row_view(source.in(), b, h, i), row_view(by_row.view, b, h, i));
    EXPECT_EQ(whole.bytes, by_row.bytes) << dtype_name(to);
  }
  for (int64_t groups : {1, 4}) {
    Storage whole(source, DType::i8), by_row(source, DType::i8);
    Tensor whole_scales(2, 8, 300, groups), row_scales(2, 8, 300, groups);
    const auto int8_view = [](Storage& stored) {
      return BasicTensorView<int8_t>(static_cast<int8_t*>(stored.view.data), stored.view.shape, stored.view.strides);
    };
    quantize_rows(source.in(), int8_view(whole), whole_scales.view);
    for (int64_t b = 0; b < s[0]; ++b)
      for (int64_t h = 0; h < s[1]; ++h)
        for (int64_t i = 0; i < s[2]; ++i) {
          BasicTensorView<int8_t> out = int8_view(by_row);
          out.data = out.row(b, h, i);
          out.shape = {1, 1, 1, s[3]};
          quantize_rows(row_view(source.in(), b, h, i), out, row_view(row_scales.view, b, h, i));
        }
    EXPECT_EQ(whole.bytes, by_row.bytes) << "groups " << groups;
    EXPECT_EQ(whole_scales.storage, row_scales.storage) << "groups " << groups;
  }
  source.at(1, 7, 250, 9) = std::nanf("");
  source.at(1, 7, 299, 3) = std::numeric_limits<float>::infinity();
  Storage untouched(source, DType::i8);
  Tensor scales(2, 8, 300, 1);
  scales.fill(-1.0f);
  const std::vector<unsigned char> before = untouched.bytes;
  const std::vector<float> scales_before = scales.storage;
  try {
    quantize_rows(source.in(),
                  BasicTensorView<int8_t>(static_cast<int8_t*>(untouched.view.data), untouched.view.shape,
                                          untouched.view.strides),
                  scales.view);
    ADD_FAILURE() << "a NaN was quantized";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("source[1, 7, 250, 9] must be finite"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(untouched.bytes, before);
  EXPECT_EQ(scales.storage, scales_before);
}

TEST(ConvertCAbi, ConvertsQuantizesAndReportsErrors) {
  std::vector<float> source = {1.0f, -2.5f, 0.1f, 65520.0f, 3.0f, -127.0f, 0.0f, 1e-3f};
  std::vector<uint16_t> halves(8, 0);
  const simdattn_tensor from = c_tensor(source.data(), SIMDATTN_F32, {1, 1, 2, 4});
  const simdattn_tensor to = c_tensor(halves.data(), SIMDATTN_F16, {1, 1, 2, 4});
  ASSERT_EQ(simdattn_convert(&from, &to), SIMDATTN_OK) << simdattn_last_error();
  EXPECT_EQ(halves[0], 0x3c00);
  EXPECT_EQ(halves[3], 0x7c00);  // 65520 rounds to +inf in f16

  std::vector<int8_t> bytes(8, 9);
  std::vector<float> scales(2, -1.0f);
  const simdattn_tensor quantized = c_tensor(bytes.data(), SIMDATTN_I8, {1, 1, 2, 4});
  const simdattn_tensor scale_tensor = c_tensor(scales.data(), SIMDATTN_F32, {1, 1, 2, 1});
  ASSERT_EQ(simdattn_quantize_rows(&from, &quantized, &scale_tensor), SIMDATTN_OK) << simdattn_last_error();
  EXPECT_EQ(scales[0], 65520.0f / 127.0f);
  EXPECT_EQ(bytes[3], 127);
  EXPECT_EQ(scales[1], 1.0f);
  EXPECT_EQ(bytes[5], -127);

  // A destination that is not int8: the message names it, and nothing is written.
  const simdattn_tensor wrong = c_tensor(halves.data(), SIMDATTN_F16, {1, 1, 2, 4});
  const std::vector<uint16_t> before = halves;
  ASSERT_EQ(simdattn_quantize_rows(&from, &wrong, &scale_tensor), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(simdattn_last_error(),
               "simdattn_quantize_rows: destination->dtype must be SIMDATTN_I8 (3), got 2");
  EXPECT_EQ(halves, before);
  ASSERT_EQ(simdattn_convert(&from, nullptr), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(simdattn_last_error(), "simdattn_convert: destination must not be NULL");
}

}  // namespace
}  // namespace simdattn::testing

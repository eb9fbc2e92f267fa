// The vectorised row conversions (WidenRowKernel, NarrowRowKernel: element_convert_impl.hpp) on
// every ISA the host runs, bit for bit against the scalar conversions, which ScalarConvert
// (test_dtypes.cpp) checks against exact arithmetic: every bf16 and f16 pattern and every int8
// widened, floats on both sides of every rounding boundary, NaNs, infinities and subnormals
// narrowed, at every row length around the register width (the scalar tails), with one scale
// per group of elements for int8, and again under a hostile MXCSR (flush-to-zero,
// denormals-are-zero, rounding toward zero), which the results must not depend on. The int8
// quantization of quantize_rows (FiniteRowKernel, QuantizeRowKernel) likewise, with values on and
// beside every rounding tie, groups narrower and wider than a register, and scalar tails.
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include "isa/registry.hpp"
#include "kernels/convert_kernels.hpp"
#include "kernels/scalar_convert.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;

std::vector<uint32_t> bits_of(const std::vector<float>& values) {
  std::vector<uint32_t> bits(values.size());
  std::memcpy(bits.data(), values.data(), values.size() * sizeof(float));
  return bits;
}

// Every 16-bit pattern, as bf16 or f16 storage.
std::vector<uint16_t> every_half() {
  std::vector<uint16_t> halves(65536);
  for (uint32_t i = 0; i < 65536; ++i) halves[i] = static_cast<uint16_t>(i);
  return halves;
}

// Floats that probe narrowing: both signs of zero, subnormals, every float whose low 16 bits sit
// at or next to a bf16 tie (and low 13 bits at an f16 tie), the f16 overflow and subnormal
// thresholds, infinities, quiet and signalling NaNs with payloads, and random bit patterns.
std::vector<float> narrowing_probes() {
  std::vector<uint32_t> bits = {0x00000000u, 0x00000001u, 0x007fffffu, 0x00800000u, 0x7f7fffffu,
                                0x7f800000u, 0x7fc00000u, 0x7f800001u, 0x7fbfffffu, 0x7fffffffu,
                                0x477fefffu, 0x477ff000u, 0x477ff001u, 0x47800000u, 0x33000000u,
                                0x33000001u, 0x337fffffu, 0x387fefffu, 0x387ff000u, 0x38800000u};
  for (uint32_t high = 0; high < 0x8000u; high += 7) {  // exponents and top mantissa bits
    for (uint32_t low : {0x7fffu, 0x8000u, 0x8001u, 0x0fffu, 0x1000u, 0x1001u, 0x2fffu, 0x3000u}) {
      bits.push_back((high << 16) | low);
    }
  }
  std::mt19937 random(20261205);
  for (int i = 0; i < 200000; ++i) bits.push_back(static_cast<uint32_t>(random()));
  const size_t positive = bits.size();
  for (size_t i = 0; i < positive; ++i) bits.push_back(bits[i] ^ 0x80000000u);
  std::vector<float> values(bits.size());
  std::memcpy(values.data(), bits.data(), bits.size() * sizeof(float));
  return values;
}

// Runs check() under the caller's MXCSR, then under FTZ + DAZ + round toward zero. On AArch64
// the same through FPCR: FZ (which flushes inputs and results alike), FZ16 and round toward zero.
template <class Check>
void under_every_mxcsr(Check check) {
  check();
#if defined(__x86_64__) || defined(_M_X64)
  const unsigned int saved = _mm_getcsr();
  _mm_setcsr((saved & ~0x6000u) | 0x6000u /* toward zero */ | 0x8000u /* FTZ */ | 0x0040u /* DAZ */);
  check();
  _mm_setcsr(saved);
#elif defined(__aarch64__)
  uint64_t saved;
  asm volatile("mrs %0, fpcr" : "=r"(saved));
  const uint64_t hostile = saved | (3u << 22) /* toward zero */ | (1u << 24) /* FZ */ |
                           (1u << 19) /* FZ16 */;
  asm volatile("msr fpcr, %0" : : "r"(hostile));
  check();
  asm volatile("msr fpcr, %0" : : "r"(saved));
#endif
}

class ConvertKernels : public ::testing::TestWithParam<Isa> {};

TEST_P(ConvertKernels, WidenEverySixteenBitPatternAsTheScalarCode) {
  const std::vector<uint16_t> halves = every_half();
  for (DType dtype : {DType::bf16, DType::f16}) {
    under_every_mxcsr([&] {
      std::vector<float> vector_result(halves.size()), scalar_result(halves.size());
      detail::run_for_isa(GetParam(), detail::WidenRowKernel{}, halves.data(), dtype,
                          int64_t(halves.size()), vector_result.data(), nullptr, int64_t(1));
      detail::widen_row_scalar(halves.data(), dtype, int64_t(halves.size()), scalar_result.data(),
                               nullptr, 1);
      const std::vector<uint32_t> vector_bits = bits_of(vector_result), scalar_bits = bits_of(scalar_result);
      for (size_t i = 0; i < halves.size(); ++i) {
        ASSERT_EQ(vector_bits[i], scalar_bits[i]) << dtype_name(dtype) << " of bits 0x" << std::hex << i;
      }
    });
  }
}

TEST_P(ConvertKernels, WidenEveryRowLengthAndOffset) {
  // Lengths 0..70 from offsets 0..3 cover every tail of 4, 8 and 16 lanes, aligned or not.
  std::vector<uint16_t> halves(80);
  std::vector<int8_t> bytes(80);
  for (size_t i = 0; i < halves.size(); ++i) {
    halves[i] = static_cast<uint16_t>(0x3c00u + 37u * i);
    bytes[i] = static_cast<int8_t>(static_cast<int>(i * 29 % 256) - 128);
  }
  for (DType dtype : {DType::f32, DType::bf16, DType::f16, DType::i8}) {
    std::vector<float> floats(80);
    for (size_t i = 0; i < floats.size(); ++i) floats[i] = 0.25f * float(i) - 3.0f;
    const void* source = dtype == DType::i8     ? static_cast<const void*>(bytes.data())
                         : dtype == DType::f32 ? static_cast<const void*>(floats.data())
                                               : static_cast<const void*>(halves.data());
    for (int64_t offset = 0; offset < 4; ++offset) {
      for (int64_t count = 0; count <= 70; ++count) {
        const void* start = static_cast<const unsigned char*>(source) + offset * dtype_size(dtype);
        std::vector<float> vector_result(count + 1, -7.0f), scalar_result(count + 1, -7.0f);
        detail::run_for_isa(GetParam(), detail::WidenRowKernel{}, start, dtype, count,
                            vector_result.data(), nullptr, int64_t(1));
        detail::widen_row_scalar(start, dtype, count, scalar_result.data(), nullptr, 1);
        ASSERT_EQ(bits_of(vector_result), bits_of(scalar_result))
            << dtype_name(dtype) << " offset " << offset << " count " << count
            << " (the element past the row must stay untouched)";
      }
    }
  }
}

TEST_P(ConvertKernels, WidenInt8WithOneScalePerGroup) {
  std::vector<int8_t> bytes(256 + 70);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<int8_t>(static_cast<int>(i % 256) - 128);
  std::vector<float> scales(bytes.size());
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = 1.0f / float(3 + i) + (i % 5 == 0 ? 0.0f : 1e-3f);
  scales[2] = 0.0f;
  for (int64_t group : {1, 2, 3, 4, 7, 8, 16, 24, 32, 64, 128, 256}) {
    for (int64_t count : {int64_t(0), group, 2 * group, 5 * group, 256 - 256 % group}) {
      if (count > int64_t(bytes.size())) continue;
      under_every_mxcsr([&] {
        std::vector<float> vector_result(count + 1, -7.0f), scalar_result(count + 1, -7.0f);
        detail::run_for_isa(GetParam(), detail::WidenRowKernel{}, bytes.data(), DType::i8, count,
                            vector_result.data(), scales.data(), group);
        detail::widen_row_scalar(bytes.data(), DType::i8, count, scalar_result.data(), scales.data(),
                                 group);
        ASSERT_EQ(bits_of(vector_result), bits_of(scalar_result))
            << "group " << group << " count " << count;
      });
    }
  }
}

TEST_P(ConvertKernels, NarrowRoundsAsTheScalarCode) {
  const std::vector<float> probes = narrowing_probes();
  for (DType dtype : {DType::bf16, DType::f16}) {
    under_every_mxcsr([&] {
      std::vector<uint16_t> vector_result(probes.size()), scalar_result(probes.size());
      detail::run_for_isa(GetParam(), detail::NarrowRowKernel{}, probes.data(),
                          int64_t(probes.size()), static_cast<void*>(vector_result.data()), dtype);
      detail::narrow_row_scalar(probes.data(), int64_t(probes.size()), scalar_result.data(), dtype);
      for (size_t i = 0; i < probes.size(); ++i) {
        uint32_t input;
        std::memcpy(&input, &probes[i], sizeof input);
        ASSERT_EQ(vector_result[i], scalar_result[i])
            << dtype_name(dtype) << " of float bits 0x" << std::hex << input;
      }
    });
  }
}

TEST_P(ConvertKernels, NarrowEveryRowLengthAndOffset) {
  std::vector<float> floats(80);
  for (size_t i = 0; i < floats.size(); ++i) floats[i] = 1.0f + 0.0078125f * float(i) + 1e-5f;
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (int64_t offset = 0; offset < 4; ++offset) {
      for (int64_t count = 0; count <= 70; ++count) {
        // One element more than the row: it must stay as it was.
        const size_t bytes = static_cast<size_t>((count + 1) * dtype_size(dtype));
        std::vector<unsigned char> vector_result(bytes, 0xa5), scalar_result(bytes, 0xa5);
        detail::run_for_isa(GetParam(), detail::NarrowRowKernel{}, floats.data() + offset, count,
                            static_cast<void*>(vector_result.data()), dtype);
        detail::narrow_row_scalar(floats.data() + offset, count, scalar_result.data(), dtype);
        ASSERT_EQ(vector_result, scalar_result)
            << dtype_name(dtype) << " offset " << offset << " count " << count;
      }
    }
  }
}

// Rows of quantization probes, `length` floats each: a group whose largest magnitude is 127 (scale
// exactly 1) holding every tie n + 0.5 and the floats just beside it, groups of random values
// at magnitudes from 1e-30 to 1e30, a group of zeros (signed), and groups with a single nonzero.
std::vector<float> quantization_probes(int64_t length, int64_t rows) {
  std::mt19937 random(20261207);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(length * rows));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = values.data() + r * length;
    for (int64_t e = 0; e < length; ++e) {
      switch (r % 5) {
        case 0: {  // ties and their neighbours, scale 1
          const float tie = float(int(e % 255) - 127) + 0.5f;
          const int side = int(e / 255 % 3);
          row[e] = side == 0 ? tie : std::nextafter(tie, side == 1 ? 1e9f : -1e9f);
          break;
        }
        case 1: row[e] = uniform(random) * std::pow(10.0f, float(int(r % 61) - 30)); break;
        case 2: row[e] = e % 2 == 0 ? 0.0f : -0.0f; break;
        case 3: row[e] = e % 7 == 3 ? -5.0f : 0.0f; break;
        default: row[e] = uniform(random) * 3.0f; break;
      }
    }
    if (r % 5 == 0) row[0] = 127.0f;  // every group of this row: check its own largest below
  }
  return values;
}

TEST_P(ConvertKernels, QuantizeAsTheScalarCode) {
  for (int64_t group : {1, 3, 4, 8, 16, 17, 32, 48, 64, 83, 128, 255}) {
    for (int64_t per_row : {1, 2, 3}) {
      const int64_t length = group * per_row, rows = 10;
      std::vector<float> values = quantization_probes(length, rows);
      // A tie row's groups each start at 127, so each has scale 1 and its ties stay ties.
      for (int64_t r = 0; r < rows; r += 5) {
        for (int64_t g = 0; g < per_row; ++g) values[static_cast<size_t>(r * length + g * group)] = 127.0f;
      }
      under_every_mxcsr([&] {
        for (int64_t r = 0; r < rows; ++r) {
          const float* row = values.data() + r * length;
          // One byte and one scale slot past the row, and scales two apart: all must stay as they were.
          std::vector<int8_t> vector_bytes(length + 1, 99), scalar_bytes(length + 1, 99);
          std::vector<float> vector_scales(2 * per_row + 1, -7.0f), scalar_scales(2 * per_row + 1, -7.0f);
          detail::run_for_isa(GetParam(), detail::QuantizeRowKernel{}, row, length, group,
                              vector_bytes.data(), vector_scales.data(), int64_t(2));
          detail::quantize_row_scalar(row, length, group, scalar_bytes.data(), scalar_scales.data(), 2);
          ASSERT_EQ(bits_of(vector_scales), bits_of(scalar_scales)) << "group " << group << " row " << r;
          for (int64_t e = 0; e <= length; ++e) {
            ASSERT_EQ(vector_bytes[e], scalar_bytes[e])
                << "group " << group << " row " << r << " element " << e << " of value "
                << (e < length ? row[e] : 0.0f);
          }
        }
      });
    }
  }
}

TEST(ScalarQuantization, RoundsTiesToEvenAndClamps) {
  // The oracle of the test above, against values worked by hand (scale 1, then scale 0.5).
  EXPECT_EQ(detail::quantized_scalar(2.5f, 1.0f), 2);
  EXPECT_EQ(detail::quantized_scalar(3.5f, 1.0f), 4);
  EXPECT_EQ(detail::quantized_scalar(-2.5f, 1.0f), -2);
  EXPECT_EQ(detail::quantized_scalar(-3.5f, 1.0f), -4);
  EXPECT_EQ(detail::quantized_scalar(0.5f, 1.0f), 0);
  EXPECT_EQ(detail::quantized_scalar(std::nextafter(0.5f, 1.0f), 1.0f), 1);
  EXPECT_EQ(detail::quantized_scalar(-126.5f, 1.0f), -126);
  EXPECT_EQ(detail::quantized_scalar(200.0f, 1.0f), 127);
  EXPECT_EQ(detail::quantized_scalar(-200.0f, 1.0f), -127);
  EXPECT_EQ(detail::quantized_scalar(1.25f, 0.5f), 2);
  EXPECT_EQ(detail::quantized_scalar(1.75f, 0.5f), 4);
}

TEST_P(ConvertKernels, FiniteRowFindsEveryNonFiniteElement) {
  const float bad_values[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                              std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()};
  const auto finite_row = [](const float* row, int64_t count) {
    bool finite = false;
    detail::run_for_isa(GetParam(), detail::FiniteRowKernel{}, row, count, &finite);
    return finite;
  };
  for (int64_t count = 0; count <= 70; ++count) {
    std::vector<float> row(count + 1, std::numeric_limits<float>::max());
    for (int64_t e = 0; e < count; e += 2) row[e] = -std::numeric_limits<float>::max();
    row[count] = std::numeric_limits<float>::quiet_NaN();  // past the row: never read
    EXPECT_TRUE(finite_row(row.data(), count)) << count;
    for (int64_t e = 0; e < count; ++e) {
      for (float bad : bad_values) {
        const float kept = row[e];
        row[e] = bad;
        EXPECT_FALSE(finite_row(row.data(), count))
            << bad << " at " << e << " of " << count;
        row[e] = kept;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, ConvertKernels, ::testing::ValuesIn(host_isas()), isa_test_name);

}  // namespace
}  // namespace simdattn::testing

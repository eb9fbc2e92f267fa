// The tiles' building blocks on their own, on every ISA the host runs, against plain scalar loops
// in double (as XNNPACK tests its micro-kernels): the GEMM micro-kernels behind Q·Kᵀ and P·V
// (GemmBlockKernel) and the online softmax (OnlineSoftmaxKernel). The exponentials have their own
// tests (test_vector_math.cpp). No plan and no attention(): a failure here names the kernel.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include "isa/registry.hpp"
#include "kernels/tile_kernels.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;

// Floats aligned to 64 bytes (every ISA's register), zero-filled.
struct AlignedFloats {
  explicit AlignedFloats(int64_t count)
      : data(static_cast<float*>(std::aligned_alloc(64, round_up(count) * sizeof(float)))) {
    std::fill(data.get(), data.get() + round_up(count), 0.0f);
  }
  static size_t round_up(int64_t count) { return (static_cast<size_t>(count) + 15) / 16 * 16; }
  float* get() const { return data.get(); }
  float& operator[](int64_t i) const { return data.get()[i]; }
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data;
};

class KernelGemm : public ::testing::TestWithParam<Isa> {};

// Q·Kᵀ's layout (A row-major: a_depth_stride 1) and P·V's (A transposed: a_row_stride 1), every
// panel width of the ISA, rows around the micro-tile's edge, = and +=.
TEST_P(KernelGemm, MatchesScalarLoops) {
  const Isa isa = GetParam();
  const detail::BlockingSizes blocking = detail::blocking_for(isa);
  const int64_t W = blocking.vector_floats;
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int panel_vectors = 1; panel_vectors <= blocking.wide_vectors; panel_vectors *= 2) {
    const int micro_rows = blocking.micro_rows[panel_vectors == 4 ? 2 : panel_vectors - 1];
    if (micro_rows == 0) continue;
    const int64_t panel = panel_vectors * W;
    for (int64_t rows : {int64_t{1}, int64_t{micro_rows - 1}, int64_t{micro_rows}, int64_t{micro_rows + 1},
                         int64_t{2 * micro_rows + 3}}) {
      if (rows < 1) continue;
      for (int64_t depth : {1, 7, 64}) {
        for (int64_t columns : {panel, 2 * panel}) {
          for (bool transposed_a : {false, true}) {
            for (bool accumulate : {false, true}) {
              const int64_t a_row_stride = transposed_a ? 1 : depth + 3;
              const int64_t a_depth_stride = transposed_a ? rows + 2 : 1;
              const int64_t ldb = columns + W, ldc = columns + 2 * W;
              std::vector<float> a(static_cast<size_t>((rows + 2) * (depth + 3)));
              AlignedFloats b(depth * ldb), c(rows * ldc), column_max(columns);
              for (float& x : a) x = uniform(generator);
              for (int64_t i = 0; i < depth * ldb; ++i) b[i] = uniform(generator);
              for (int64_t i = 0; i < rows * ldc; ++i) c[i] = uniform(generator);
              std::vector<float> before(c.get(), c.get() + rows * ldc);
              for (int64_t n = 0; n < columns; ++n) column_max[n] = -std::numeric_limits<float>::infinity();
              detail::run_for_isa(isa, detail::GemmBlockKernel{accumulate, panel_vectors}, rows,
                                  columns, depth, a.data(), a_row_stride, a_depth_stride, b.get(),
                                  ldb, c.get(), ldc, column_max.get());
              std::ostringstream where;
              where << detail::isa_name(isa) << " panel " << panel_vectors << " rows " << rows
                    << " depth " << depth << " columns " << columns
                    << (transposed_a ? " Aᵀ" : " A") << (accumulate ? " +=" : " =");
              for (int64_t r = 0; r < rows; ++r) {
                for (int64_t n = 0; n < columns; ++n) {
                  double exact = accumulate ? before[r * ldc + n] : 0.0, magnitude = std::abs(exact);
                  for (int64_t d = 0; d < depth; ++d) {
                    const double term = double{a[r * a_row_stride + d * a_depth_stride]} * b[d * ldb + n];
                    exact += term;
                    magnitude += std::abs(term);
                  }
                  // A float dot product of depth (+1) terms: gamma(depth + 1) · Σ|terms|.
                  ASSERT_NEAR(c[r * ldc + n], exact, gamma(depth + 1) * magnitude)
                      << where.str() << ", C[" << r << "][" << n << "]";
                }
                // The padding between rows of C is left alone.
                for (int64_t n = columns; n < ldc; ++n) {
                  ASSERT_EQ(c[r * ldc + n], before[r * ldc + n]) << where.str() << ", padding " << n;
                }
              }
              for (int64_t n = 0; n < columns; ++n) {
                float expected = -std::numeric_limits<float>::infinity();
                for (int64_t r = 0; r < rows; ++r) expected = std::max(expected, c[r * ldc + n]);
                ASSERT_EQ(column_max[n], expected) << where.str() << ", column_max[" << n << "]";
              }
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelGemm, ::testing::ValuesIn(host_isas()), isa_test_name);

class KernelOnlineSoftmax : public ::testing::TestWithParam<Isa> {};

// Two key blocks through the online softmax, key-major layout (a multiple of W columns) and the
// dense one (a divisor of W), against the recurrence in double: after each block, running max =
// the max so far, correction = 2^(old max - new max), scores = 2^(l - new max), running sum =
// Σ over both blocks of 2^(l - max). Logits from [90, 100] (where 2^l overflows float and
// 2^(l - max) does not, XNNPACK's choice), with -inf keys and one column that sees no key.
TEST_P(KernelOnlineSoftmax, MatchesTheRecurrenceInDouble) {
  const Isa isa = GetParam();
  const int64_t W = detail::blocking_for(isa).vector_floats;
  const double inf = std::numeric_limits<double>::infinity();
  std::mt19937 generator(11);
  std::uniform_real_distribution<float> uniform(90.0f, 100.0f);
  std::vector<int64_t> widths = {W, 2 * W, 3 * W};
  for (int64_t divisor = 1; divisor < W; divisor *= 2) widths.push_back(divisor);
  for (int64_t columns : widths) {
    for (int64_t rows : {1, 5, 17}) {
      for (bool known_max : {false, true}) {
        if (known_max && columns < W) continue;  // the dense layout takes its own max
        AlignedFloats running_max(columns), running_sum(columns), correction(columns), block_max(columns);
        std::vector<double> max(columns, -inf), sum(columns, 0.0);
        for (int64_t c = 0; c < columns; ++c) running_max[c] = -std::numeric_limits<float>::infinity();
        for (int block = 0; block < 2; ++block) {
          // Whole registers, as the dense layout requires.
          AlignedFloats scores(rows * columns + W);
          std::vector<double> logits(static_cast<size_t>(rows * columns));
          for (int64_t i = 0; i < rows * columns; ++i) {
            const int64_t c = i % columns;
            float l = uniform(generator) + static_cast<float>(block);
            if (c == columns - 1 && columns > 1) l = -std::numeric_limits<float>::infinity();
            if (i % 5 == 3) l = -std::numeric_limits<float>::infinity();
            scores[i] = l;
            logits[i] = l;
          }
          for (int64_t c = 0; c < columns; ++c) {
            block_max[c] = -std::numeric_limits<float>::infinity();
            for (int64_t r = 0; r < rows; ++r) block_max[c] = std::max(block_max[c], scores[r * columns + c]);
          }
          detail::run_for_isa(isa, detail::OnlineSoftmaxKernel{}, scores.get(), rows, columns,
                              running_max.get(), running_sum.get(), correction.get(),
                              known_max ? block_max.get() : nullptr);
          std::ostringstream where;
          where << detail::isa_name(isa) << " columns " << columns << " rows " << rows << " block "
                << block << (known_max ? " known max" : "");
          for (int64_t c = 0; c < columns; ++c) {
            double new_max = max[c];
            for (int64_t r = 0; r < rows; ++r) new_max = std::max(new_max, logits[r * columns + c]);
            const double shift = new_max == -inf ? 0.0 : new_max;
            const double expected_correction = std::exp2(max[c] - shift);
            double block_sum = 0.0;
            for (int64_t r = 0; r < rows; ++r) {
              const double p = std::exp2(logits[r * columns + c] - shift);
              block_sum += p;
              // exp2_approx: 1 ULP on normal results, flushed below 2^-126.
              ASSERT_NEAR(scores[r * columns + c], p, 2 * p * kUnitRoundoff + 0x1p-126)
                  << where.str() << ", score[" << r << "][" << c << "]";
            }
            ASSERT_EQ(running_max[c], static_cast<float>(new_max)) << where.str() << ", max of column " << c;
            ASSERT_NEAR(correction[c], expected_correction, 2 * expected_correction * kUnitRoundoff + 0x1p-126)
                << where.str() << ", correction of column " << c;
            const double expected_sum = sum[c] * expected_correction + block_sum;
            // Each term off by 1 ULP of exp2, then summed in float: gamma(2 · rows + 2) of the sum.
            ASSERT_NEAR(running_sum[c], expected_sum, (gamma(2 * rows + 2) + 2 * kUnitRoundoff) * expected_sum + 0x1p-126)
                << where.str() << ", running sum of column " << c;
            max[c] = new_max;
            sum[c] = expected_sum;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelOnlineSoftmax, ::testing::ValuesIn(host_isas()), isa_test_name);

}  // namespace
}  // namespace simdattn::testing

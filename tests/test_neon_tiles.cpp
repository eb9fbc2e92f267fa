// The NEON micro-kernel shape (kNeonBlocking, src/kernels/blocking.hpp: 24 × 4, 12 × 8 and 6 × 16
// floats of C) at its tile edges, beyond what the per-ISA tests (test_kernels.cpp,
// test_attention.cpp) already check on NEON: the register budget the table's comment claims,
// every row count of every panel width (each is its own instantiation of the micro-kernel), and
// attention() with query and key counts around each panel, micro-tile, tile and key-block edge,
// against the oracles within the error bounds of test_support.hpp. AArch64 only: elsewhere this
// file holds no test.
#if defined(__aarch64__)

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include "isa/registry.hpp"
#include "kernels/tile_kernels.hpp"
#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;

constexpr detail::BlockingSizes kNeon = detail::IsaTraits<Isa::neon>::blocking;

// The micro-tile rows of a panel of `vectors` registers (1, 2 or 4).
constexpr int micro_rows(int vectors) { return kNeon.micro_rows[vectors == 4 ? 2 : vectors - 1]; }

// The shape the table's comment argues for, and its register budget: rows · vectors
// accumulators + vectors B registers + one broadcast within NEON's 32 registers.
TEST(NeonTiles, ShapeFitsTheRegisterFile) {
  static_assert(kNeon.vector_floats == 4, "128-bit registers");
  static_assert(micro_rows(1) == 24 && micro_rows(2) == 12 && micro_rows(4) == 6);
  static_assert(kNeon.wide_vectors == 4);
  static_assert(kNeon.tile_columns % (kNeon.wide_vectors * kNeon.vector_floats) == 0,
                "a tile is whole wide panels");
  for (int vectors = 1; vectors <= kNeon.wide_vectors; vectors *= 2) {
    EXPECT_LE(micro_rows(vectors) * vectors + vectors + 1, 32) << vectors << " vectors";
  }
  EXPECT_EQ(4 * kNeon.decode_value_vectors + kNeon.decode_value_vectors + 1, 21);
}

// Floats aligned to the register (and a cache line), zero-filled.
struct AlignedFloats {
  explicit AlignedFloats(int64_t count)
      : data(static_cast<float*>(std::aligned_alloc(64, round_up(count) * sizeof(float)))) {
    std::fill(data.get(), data.get() + round_up(count), 0.0f);
  }
  static size_t round_up(int64_t count) { return (static_cast<size_t>(count) + 15) / 16 * 16; }
  float& operator[](int64_t i) const { return data.get()[i]; }
  float* get() const { return data.get(); }
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data;
};

// Every row count from 1 to two micro-tiles and one row (each count below a micro-tile is an
// instantiation of its own, gemm_microkernel_rows), for every panel width, with one and three
// panels of columns, depths around a register (1, 5) and a long one, in Q·Kᵀ's layout (A row-major)
// and P·V's (A transposed), = and +=; against the product in double, within gamma(depth + 1)·Σ|terms|.
TEST(NeonTiles, GemmEveryRowCountOfEveryPanel) {
  std::mt19937 generator(21);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t W = kNeon.vector_floats;
  for (int vectors = 1; vectors <= kNeon.wide_vectors; vectors *= 2) {
    const int64_t panel = vectors * W;
    for (int64_t rows = 1; rows <= 2 * micro_rows(vectors) + 1; ++rows) {
      for (int64_t depth : {1, 5, 33}) {
        for (int64_t columns : {panel, 3 * panel}) {
          for (bool transposed_a : {false, true}) {
            for (bool accumulate : {false, true}) {
              const int64_t a_row_stride = transposed_a ? 1 : depth + 1;
              const int64_t a_depth_stride = transposed_a ? rows + 3 : 1;
              const int64_t ldb = columns + W, ldc = columns + W;
              std::vector<float> a(static_cast<size_t>((rows + 3) * (depth + 1)));
              AlignedFloats b(depth * ldb), c(rows * ldc), column_max(columns);
              for (float& x : a) x = uniform(generator);
              for (int64_t i = 0; i < depth * ldb; ++i) b[i] = uniform(generator);
              for (int64_t i = 0; i < rows * ldc; ++i) c[i] = uniform(generator);
              const std::vector<float> before(c.get(), c.get() + rows * ldc);
              for (int64_t n = 0; n < columns; ++n) column_max[n] = -std::numeric_limits<float>::infinity();
              detail::run_for_isa(Isa::neon, detail::GemmBlockKernel{accumulate, vectors}, rows,
                                  columns, depth, a.data(), a_row_stride, a_depth_stride, b.get(),
                                  ldb, c.get(), ldc, column_max.get());
              std::ostringstream where;
              where << "neon " << micro_rows(vectors) << " x " << panel << " tile, rows " << rows
                    << " depth " << depth << " columns " << columns << (transposed_a ? " Aᵀ" : " A")
                    << (accumulate ? " +=" : " =");
              for (int64_t r = 0; r < rows; ++r) {
                for (int64_t n = 0; n < columns; ++n) {
                  double exact = accumulate ? before[r * ldc + n] : 0.0, magnitude = std::abs(exact);
                  for (int64_t d = 0; d < depth; ++d) {
                    const double term = double{a[r * a_row_stride + d * a_depth_stride]} * b[d * ldb + n];
                    exact += term;
                    magnitude += std::abs(term);
                  }
                  ASSERT_NEAR(c[r * ldc + n], exact, gamma(depth + 1) * magnitude)
                      << where.str() << ", C[" << r << "][" << n << "]";
                }
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

struct EdgeCase {
  int64_t queries, keys, head_dim;
  Causal causal;
  Algorithm algorithm;
};

std::string describe(const EdgeCase& c) {
  std::ostringstream out;
  out << "neon " << (c.algorithm == Algorithm::fused ? "fused" : "composed") << " Sq " << c.queries
      << " Sk " << c.keys << " head_dim " << c.head_dim
      << (c.causal == Causal::none ? "" : " causal");
  return out.str();
}

// attention() on NEON against reference::attention. Two query heads share a kv head, so a tile's
// columns are both heads' positions: query counts around 2, 4, 8 and 32 positions put the
// columns around one register (decoding), the 1-, 2- and 4-register panels and the 64-column
// tile; key counts around the 6-, 12- and 24-row micro-tiles, the 256-key block and the 512-key
// single block. head_dim 64 takes the doubled tile (double_tile_max_head_dim), 19 does not and
// leaves a tail in every row. Causal masks end the visible keys inside micro-tiles and panels.
void expect_matches_oracle(const EdgeCase& c) {
  const int64_t q_heads = 2, kv_heads = 1;
  Tensor q(1, q_heads, c.queries, c.head_dim), k(1, kv_heads, c.keys, c.head_dim),
      v(1, kv_heads, c.keys, c.head_dim);
  q.fill_uniform(31, -2.0f, 2.0f);
  k.fill_uniform(32, -2.0f, 2.0f);
  v.fill_uniform(33);
  Tensor expected(1, q_heads, c.queries, c.head_dim), actual = expected;
  AttentionOptions options;
  options.causal = c.causal;
  reference::attention(q.in(), k.in(), v.in(), expected.view, options);
  options.algorithm = c.algorithm;
  {
    detail::ScopedIsaOverride use(Isa::neon);
    attention(q.in(), k.in(), v.in(), actual.view, options);
  }
  const double scale = 1.0 / std::sqrt(double(c.head_dim));
  const double tolerance =
      attention_tolerance(logit_magnitude(q, k, scale), c.head_dim, c.keys, max_magnitude(v));
  EXPECT_TRUE(all_close(expected, actual, tolerance, describe(c)));
}

TEST(NeonTiles, AttentionAroundEveryTileEdge) {
  for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
    for (Causal causal : {Causal::none, Causal::bottom_right}) {
      for (int64_t head_dim : {19, 64}) {
        for (int64_t queries : {1, 2, 3, 4, 5, 8, 9, 32, 33}) {
          for (int64_t keys : {1, 5, 6, 7, 12, 13, 24, 25, 256, 257, 512, 513}) {
            expect_matches_oracle({queries, keys, head_dim, causal, algorithm});
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace simdattn::testing

#endif  // __aarch64__

// merge_attention_states (simdattn/merge.hpp): attention over keys cut into 1 to 4 disjoint
// parts, merged, equals attention over all of them (within the error bound of test_support.hpp
// plus the merge's own), on every ISA, in float and 16-bit; against its oracle on random states
// with empty ones among them; empty, NaN and +inf rows; the same bits on 1 and 2 threads; and
// every rejected argument leaving the outputs untouched.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "simdattn/merge.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/simdattn.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;
constexpr float kInfinity = std::numeric_limits<float>::infinity();

// The keys [first, first + count) of a [B, H, S, D] view.
ConstTensorView key_range(const Tensor& t, int64_t first, int64_t count) {
  ConstTensorView view = t.in();
  view.data = t.view.row(0, 0, first);
  view.shape[2] = count;
  return view;
}

class MergeStates : public ::testing::TestWithParam<Isa> {};

TEST_P(MergeStates, PartsOfTheKeysMergeIntoAttentionOverAllOfThem) {
  detail::ScopedIsaOverride isa(GetParam());
  const int64_t B = 2, Hq = 4, Hkv = 2, Sq = 5, Sk = 53, D = 16, Dv = 24;
  Tensor q(B, Hq, Sq, D), k(B, Hkv, Sk, D, Layout::bshd), v(B, Hkv, Sk, Dv, Layout::bshd);
  q.fill_uniform(1);
  k.fill_uniform(2);
  v.fill_uniform(3);
  const double scale = 1.0 / std::sqrt(double(D));
  const double logits = logit_magnitude(q, k, scale), values = max_magnitude(v);
  Tensor expected(B, Hq, Sq, Dv), expected_lse(B, Hq, Sq, 1);
  AttentionOptions whole;
  whole.lse = expected_lse.view;
  reference::attention(q.in(), k.in(), v.in(), expected.view, whole);

  const std::vector<std::vector<int64_t>> cuts = {{0, 53}, {0, 20, 53}, {0, 1, 17, 53}, {0, 13, 13, 40, 53}};
  for (const auto& cut : cuts) {
    const int64_t count = static_cast<int64_t>(cut.size()) - 1;
    std::vector<Tensor> outs, lses;
    for (int64_t i = 0; i < count; ++i) {
      outs.emplace_back(B, Hq, Sq, Dv);
      lses.emplace_back(B, Hq, Sq, 1);
      AttentionOptions part;
      part.lse = lses.back().view;
      attention(q.in(), key_range(k, cut[i], cut[i + 1] - cut[i]), key_range(v, cut[i], cut[i + 1] - cut[i]),
                outs.back().view, part);
    }
    std::vector<AnyConstTensorView> out_views;
    std::vector<ConstTensorView> lse_views;
    for (int64_t i = 0; i < count; ++i) {
      out_views.push_back(outs[i].in());
      lse_views.push_back(lses[i].in());
    }
    Tensor merged(B, Hq, Sq, Dv), merged_lse(B, Hq, Sq, 1);
    merge_attention_states(out_views.data(), lse_views.data(), count, merged.view, merged_lse.view);
    // Each part within attention's bound; the merge weights exp(lse_i - M) / Σ off relatively by
    // twice two lse errors plus the exp, the sum and the division.
    const double lse_error = lse_tolerance(logits, D, Sk);
    const double tolerance =
        attention_tolerance(logits, D, Sk, values) + values * (4.0 * lse_error + 2.0 * gamma(count + 3));
    const std::string context = std::string(detail::isa_name(GetParam())) + ", " + std::to_string(count) + " parts";
    EXPECT_TRUE(all_close(expected, merged, tolerance, context));
    EXPECT_TRUE(all_close(expected_lse, merged_lse, 2.0 * lse_error + gamma(count + 3) * (1.0 + logits), context));

    // The same states rounded to bf16, merged into f16.
    std::vector<std::vector<unsigned char>> storage;
    std::vector<AnyConstTensorView> bf16_views;
    for (int64_t i = 0; i < count; ++i) {
      storage.emplace_back(outs[i].storage.size() * 2);
      AnyTensorView rounded(storage.back().data(), DType::bf16, outs[i].view.shape, outs[i].view.strides);
      convert(outs[i].in(), rounded);
      bf16_views.push_back(rounded);
    }
    std::vector<unsigned char> half_bytes(merged.storage.size() * 2);
    AnyTensorView half(half_bytes.data(), DType::f16, merged.view.shape, merged.view.strides);
    merge_attention_states(bf16_views.data(), lse_views.data(), count, half);
    Tensor widened(B, Hq, Sq, Dv);
    convert(half, widened.view);
    // bf16 states (2^-8 relative) and one f16 rounding (2^-11) on top.
    EXPECT_TRUE(all_close(expected, widened, tolerance + values * (0x1p-8 + 0x1p-11), context + ", bf16 -> f16"));
  }
}

TEST_P(MergeStates, MatchesTheOracleWithEmptyAndLopsidedStates) {
  detail::ScopedIsaOverride isa(GetParam());
  const int64_t B = 1, H = 3, S = 7, Dv = 37, count = 5;
  std::vector<Tensor> outs, lses;
  for (int64_t i = 0; i < count; ++i) {
    outs.emplace_back(B, H, S, Dv, Layout::padded);
    outs.back().fill_uniform(10 + i, -2.0f, 2.0f);
    lses.emplace_back(B, H, S, 1);
    lses.back().fill_uniform(20 + i, -30.0f, 30.0f);
  }
  for (int64_t s = 0; s < S; ++s) *lses[1].view.row(0, 0, s) = -kInfinity;  // an empty state...
  for (int64_t d = 0; d < Dv; ++d) outs[1].at(0, 0, 0, d) = std::nanf("");  // ...whose rows are not read
  for (int64_t i = 0; i < count; ++i) *lses[i].view.row(0, 1, 2) = -kInfinity;  // a row empty everywhere
  *lses[3].view.row(0, 2, 4) = 1e30f;                                              // one state dominates
  std::vector<AnyConstTensorView> out_views;
  std::vector<ConstTensorView> lse_views;
  for (int64_t i = 0; i < count; ++i) {
    out_views.push_back(outs[i].in());
    lse_views.push_back(lses[i].in());
  }
  Tensor fast(B, H, S, Dv), fast_lse(B, H, S, 1), oracle(B, H, S, Dv), oracle_lse(B, H, S, 1);
  merge_attention_states(out_views.data(), lse_views.data(), count, fast.view, fast_lse.view);
  reference::merge_attention_states(out_views.data(), lse_views.data(), count, oracle.view, oracle_lse.view);
  // Weights off by the exp, the sum and the division (gamma(count + 3)), each term by one product.
  EXPECT_TRUE(all_close(oracle, fast, 2.0 * (gamma(count + 3) + kUnitRoundoff) * 2.0, "merge vs oracle"));
  EXPECT_TRUE(all_close(oracle_lse, fast_lse, gamma(count + 3) * 31.0, "lse vs oracle"));
  for (int64_t d = 0; d < Dv; ++d) {
    EXPECT_EQ(fast.at(0, 1, 2, d), 0.0f);
    EXPECT_EQ(fast.at(0, 2, 4, d), outs[3].at(0, 2, 4, d));
  }
  EXPECT_EQ(fast_lse.at(0, 1, 2, 0), -kInfinity);
  EXPECT_EQ(fast_lse.at(0, 2, 4, 0), 1e30f);
}

TEST_P(MergeStates, NanAndInfiniteLseGiveNanRows) {
  detail::ScopedIsaOverride isa(GetParam());
  Tensor a(1, 1, 2, 8), b(1, 1, 2, 8), lse_a(1, 1, 2, 1), lse_b(1, 1, 2, 1);
  a.fill_uniform(1);
  b.fill_uniform(2);
  lse_a.fill(0.5f);
  lse_b.fill(0.25f);
  *lse_a.view.row(0, 0, 0) = std::nanf("");
  *lse_b.view.row(0, 0, 1) = kInfinity;
  const AnyConstTensorView outs[] = {a.in(), b.in()};
  const ConstTensorView lses[] = {lse_a.in(), lse_b.in()};
  Tensor merged(1, 1, 2, 8), merged_lse(1, 1, 2, 1);
  merge_attention_states(outs, lses, 2, merged.view, merged_lse.view);
  for (int64_t s = 0; s < 2; ++s) {
    for (int64_t d = 0; d < 8; ++d) EXPECT_TRUE(std::isnan(merged.at(0, 0, s, d)));
    EXPECT_TRUE(std::isnan(merged_lse.at(0, 0, s, 0)));
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, MergeStates, ::testing::ValuesIn(host_isas()), isa_test_name);

TEST(MergeStatesThreads, SameBitsOnOneAndTwoThreads) {
  const int64_t count = 3;
  std::vector<Tensor> outs, lses;
  std::vector<AnyConstTensorView> out_views;
  std::vector<ConstTensorView> lse_views;
  for (int64_t i = 0; i < count; ++i) {
    outs.emplace_back(2, 8, 33, 64);
    outs.back().fill_uniform(40 + i);
    lses.emplace_back(2, 8, 33, 1);
    lses.back().fill_uniform(50 + i, -5.0f, 5.0f);
  }
  for (int64_t i = 0; i < count; ++i) {
    out_views.push_back(outs[i].in());
    lse_views.push_back(lses[i].in());
  }
  Tensor one(2, 8, 33, 64), two(2, 8, 33, 64);
  merge_attention_states(out_views.data(), lse_views.data(), count, one.view, std::nullopt, 1);
  merge_attention_states(out_views.data(), lse_views.data(), count, two.view, std::nullopt, 2);
  EXPECT_TRUE(bitwise_equal(one, two));
}

// The weighted sum is a multiply and an add per term in state order on every ISA (no FMA: the
// library builds with -ffp-contract=off), so every ISA gives the bits of the first one, for states
// of mixed dtypes, every output dtype, and a Dv that leaves a partial block of registers and a
// scalar tail on each vector width.
TEST(MergeStatesIsas, EveryIsaGivesTheSameBits) {
  const int64_t B = 1, H = 2, S = 9, Dv = 83;
  const DType state_dtypes[] = {DType::f32, DType::bf16, DType::f16};
  std::vector<Tensor> wide, lses;
  std::vector<std::vector<unsigned char>> storage;
  std::vector<AnyConstTensorView> out_views;
  std::vector<ConstTensorView> lse_views;
  wide.reserve(3);  // the views below point into these tensors: they must not move
  lses.reserve(3);
  for (int64_t i = 0; i < 3; ++i) {
    wide.emplace_back(B, H, S, Dv);
    wide.back().fill_uniform(60 + i, -3.0f, 3.0f);
    lses.emplace_back(B, H, S, 1);
    lses.back().fill_uniform(70 + i, -4.0f, 4.0f);
    storage.emplace_back(wide.back().storage.size() * 4);
    AnyTensorView stored(storage.back().data(), state_dtypes[i], wide.back().view.shape, wide.back().view.strides);
    convert(wide.back().in(), stored);
    out_views.push_back(stored);
    lse_views.push_back(lses.back().in());
  }
  for (const DType out_dtype : {DType::f32, DType::bf16, DType::f16}) {
    std::vector<unsigned char> first;
    for (const Isa isa : host_isas()) {
      detail::ScopedIsaOverride cap(isa);
      std::vector<unsigned char> bytes(static_cast<size_t>(B * H * S * Dv) * dtype_size(out_dtype), 0xAB);
      const Tensor& shape = wide.front();
      AnyTensorView merged(bytes.data(), out_dtype, shape.view.shape, shape.view.strides);
      merge_attention_states(out_views.data(), lse_views.data(), 3, merged);
      if (first.empty()) {
        first = bytes;
      } else {
        EXPECT_TRUE(bytes == first) << detail::isa_name(isa) << " into " << dtype_name(out_dtype);
      }
    }
  }
}

// An f32 output of 16 MiB or more is written with non-temporal stores where a row is aligned to a
// whole register, and with ordinary stores where it is not: the same bits either way. The
// yardstick merges one head at a time (2 MiB each, below the threshold).
TEST(MergeStatesIsas, LargeOutputsGetTheSameBitsAlignedOrNot) {
  const int64_t B = 1, H = 8, S = 4096, Dv = 128;  // 16 MiB of output
  std::vector<Tensor> outs, lses;
  std::vector<AnyConstTensorView> out_views;
  std::vector<ConstTensorView> lse_views;
  for (int64_t i = 0; i < 2; ++i) {
    outs.emplace_back(B, H, S, Dv);
    outs.back().fill_uniform(80 + i);
    lses.emplace_back(B, H, S, 1);
    lses.back().fill_uniform(90 + i, -3.0f, 3.0f);
  }
  for (int64_t i = 0; i < 2; ++i) {  // after the last emplace_back, which may move the tensors
    out_views.push_back(outs[i].in());
    lse_views.push_back(lses[i].in());
  }
  for (const Isa isa : host_isas()) {
    detail::ScopedIsaOverride cap(isa);
    Tensor by_head(B, H, S, Dv);
    for (int64_t h = 0; h < H; ++h) {
      std::vector<AnyConstTensorView> head_outs;
      std::vector<ConstTensorView> head_lses;
      for (int64_t i = 0; i < 2; ++i) {
        ConstTensorView head_out = outs[i].in(), head_lse = lses[i].in();
        head_out.data = outs[i].view.row(0, h, 0);
        head_lse.data = lses[i].view.row(0, h, 0);
        head_out.shape[1] = head_lse.shape[1] = 1;
        head_outs.push_back(head_out);
        head_lses.push_back(head_lse);
      }
      TensorView head = by_head.view;
      head.data = by_head.view.row(0, h, 0);
      head.shape[1] = 1;
      merge_attention_states(head_outs.data(), head_lses.data(), 2, head);
    }
    // Every row aligned to 64 bytes, then rows of 131 floats (one in sixteen aligned).
    std::vector<float> raw(static_cast<size_t>(B * H * S * Dv + 16));
    float* aligned = raw.data() + (64 - reinterpret_cast<std::uintptr_t>(raw.data()) % 64) % 64 / sizeof(float);
    const TensorView whole(aligned, {B, H, S, Dv}, {H * S * Dv, S * Dv, Dv, 1});
    Tensor padded(B, H, S, Dv, Layout::padded);
    merge_attention_states(out_views.data(), lse_views.data(), 2, whole);
    merge_attention_states(out_views.data(), lse_views.data(), 2, padded.view);
    const std::string name = detail::isa_name(isa);
    EXPECT_TRUE(bitwise_equal(by_head, padded)) << name << ", padded rows";
    bool same = true;
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t s = 0; s < S; ++s) {
        same = same && std::equal(by_head.view.row(0, h, s), by_head.view.row(0, h, s) + Dv, whole.row(0, h, s));
      }
    }
    EXPECT_TRUE(same) << name << ", aligned rows";
  }
}

// A call that must throw std::invalid_argument whose message is `expected`.
template <class Call>
void expect_rejected(Call call, const std::string& expected) {
  try {
    call();
    FAIL() << "accepted; expected: " << expected;
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()), expected);
  }
}

TEST(MergeStatesRules, BadArgumentsAreRejectedAndNothingIsWritten) {
  Tensor a(1, 2, 3, 8), lse_a(1, 2, 3, 1), out(1, 2, 3, 8), out_lse(1, 2, 3, 1), short_out(1, 2, 3, 7);
  a.fill_uniform(1);
  lse_a.fill(0.0f);
  out.fill(7.0f);
  out_lse.fill(7.0f);
  const AnyConstTensorView outs[] = {a.in()};
  const ConstTensorView lses[] = {lse_a.in()};
  const std::string f = "simdattn::merge_attention_states: ";
  expect_rejected([&] { merge_attention_states(outs, lses, 0, out.view, out_lse.view); },
                  f + "count (states to merge) must be >= 1, got 0");
  expect_rejected([&] { merge_attention_states(outs, lses, 1, short_out.view, out_lse.view); },
                  f + "outs[0].shape[3] (Dv) must equal out.shape[3] = 7, got 8 (shape [1, 2, 3, 8])");
  expect_rejected([&] { merge_attention_states(outs, lses, 1, a.view, out_lse.view); },
                  f.substr(0, f.size() - 2) + ": out must not overlap outs[0]: out spans bytes [" +
                      std::to_string(reinterpret_cast<std::uintptr_t>(a.storage.data())) + ", " +
                      std::to_string(reinterpret_cast<std::uintptr_t>(a.storage.data()) + 48 * 4 - 1) +
                      "] and outs[0] spans [" +
                      std::to_string(reinterpret_cast<std::uintptr_t>(a.storage.data())) + ", " +
                      std::to_string(reinterpret_cast<std::uintptr_t>(a.storage.data()) + 48 * 4 - 1) +
                      "], got an intersection");
  Tensor wide_lse(1, 2, 3, 2);
  const ConstTensorView wide[] = {wide_lse.in()};
  expect_rejected([&] { merge_attention_states(outs, wide, 1, out.view, out_lse.view); },
                  f + "lses[0].shape[3] (one log-sum-exp a row) must equal 1, got 2 (shape [1, 2, 3, 2])");
  expect_rejected([&] { merge_attention_states(outs, lses, 1, out.view, out_lse.view, -1); },
                  f + "num_threads must be >= 0 (0: the OpenMP default), got -1");
  out.for_each([](float& x) { EXPECT_EQ(x, 7.0f); });
  out_lse.for_each([](float& x) { EXPECT_EQ(x, 7.0f); });
}

}  // namespace
}  // namespace simdattn::testing

namespace simdattn::testing {
namespace {

simdattn_tensor c_tensor_of(const Tensor& t) {
  simdattn_tensor c{};
  c.data = const_cast<float*>(t.storage.data());
  c.dtype = SIMDATTN_F32;
  for (int d = 0; d < 4; ++d) {
    c.shape[d] = t.view.shape[d];
    c.strides[d] = t.view.strides[d];
  }
  return c;
}

TEST(MergeStatesCAbi, MergesAndReportsErrors) {
  Tensor a(1, 2, 3, 8), b(1, 2, 3, 8), lse_a(1, 2, 3, 1), lse_b(1, 2, 3, 1);
  a.fill_uniform(1);
  b.fill_uniform(2);
  lse_a.fill(0.0f);
  lse_b.fill(std::log(3.0f));
  const simdattn_tensor outs[] = {c_tensor_of(a), c_tensor_of(b)};
  const simdattn_tensor lses[] = {c_tensor_of(lse_a), c_tensor_of(lse_b)};
  Tensor out(1, 2, 3, 8), lse(1, 2, 3, 1);
  const simdattn_tensor c_out = c_tensor_of(out), c_lse = c_tensor_of(lse);
  ASSERT_EQ(simdattn_merge_attention_states(outs, lses, 2, &c_out, &c_lse, 0), SIMDATTN_OK)
      << simdattn_last_error();
  // Weights 1/4 and 3/4; lse = log(1 + 3).
  EXPECT_NEAR(out.at(0, 1, 2, 5), 0.25 * a.at(0, 1, 2, 5) + 0.75 * b.at(0, 1, 2, 5), 1e-6);
  EXPECT_NEAR(lse.at(0, 0, 0, 0), std::log(4.0), 1e-6);
  ASSERT_EQ(simdattn_merge_attention_states(outs, lses, 2, &c_out, nullptr, 0), SIMDATTN_OK);
  ASSERT_EQ(simdattn_merge_attention_states(outs, nullptr, 2, &c_out, nullptr, 0), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(simdattn_last_error(), "simdattn_merge_attention_states: lses must not be NULL for 2 states");
  ASSERT_EQ(simdattn_merge_attention_states(outs, lses, 0, &c_out, nullptr, 0), SIMDATTN_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(simdattn_last_error(), "simdattn_merge_attention_states: count (states to merge) must be >= 1, got 0");
}

}  // namespace
}  // namespace simdattn::testing

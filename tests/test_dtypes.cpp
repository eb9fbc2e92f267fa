// 16-bit and 8-bit tensors: the oracle reads the exact stored values (bf16, f16, int8 · scale), the
// fast paths on every ISA match it within the fp32 error bound plus the output's one rounding, and
// every dtype rule is a clear error. The inputs are fp32 test tensors rounded to the dtype; the
// bounds are computed from the values as stored.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <tuple>

#include "kernels/scalar_convert.hpp"
#include "plan/attention_plan.hpp"
#include "reference/stored_values.hpp"
#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using reference::detail::stored_value;
using reference::detail::store_rounded;

constexpr double kBf16Roundoff = 0x1p-8;   // unit roundoff of bfloat16 (8 significand bits)
constexpr double kF16Roundoff = 0x1p-11;   // of binary16 (11 significand bits)
constexpr double kF16Subnormal = 0x1p-25;  // half the spacing of binary16's subnormals

// A tensor of any dtype laid out like a Tensor of the same shape and layout (strides in
// elements), with `values` holding exactly what each element means (int8 · scale for i8).
struct TypedTensor {
  std::vector<unsigned char> bytes;
  AnyTensorView view;
  Tensor values;
  std::optional<Tensor> scales;  // i8: [B, H, S, groups]

  TypedTensor(const Tensor& like, DType dtype) : values(like) {
    const int64_t size = dtype_size(dtype);
    bytes.assign(like.storage.size() * static_cast<size_t>(size), 0xff);  // NaN bits for 16-bit
    view = AnyTensorView(bytes.data(), dtype, like.view.shape, like.view.strides);
    values.fill(0.0f);
  }
  // Rounds (16-bit) or quantizes (i8, `groups` scales per row: d = max|x| / 127,
  // q = round(x / d)) every element of `source`.
  static TypedTensor from(const Tensor& source, DType dtype, int64_t groups = 1) {
    TypedTensor t(source, dtype);
    const auto& s = source.view.shape;
    if (dtype == DType::i8) t.scales.emplace(s[0], s[1], s[2], groups);
    const int64_t group = groups > 0 ? s[3] / groups : 1;
    for (int64_t b = 0; b < s[0]; ++b)
      for (int64_t h = 0; h < s[1]; ++h)
        for (int64_t i = 0; i < s[2]; ++i) {
          void* row = t.view.row(b, h, i);
          if (dtype != DType::i8) {
            for (int64_t d = 0; d < s[3]; ++d) {
              store_rounded(row, dtype, d, source.at(b, h, i, d));
              t.values.at(b, h, i, d) = static_cast<float>(stored_value(row, dtype, d));
            }
            continue;
          }
          for (int64_t g = 0; g < groups; ++g) {
            double largest = 0.0;
            for (int64_t d = g * group; d < (g + 1) * group; ++d) {
              largest = std::max(largest, double(std::fabs(source.at(b, h, i, d))));
            }
            const float scale = static_cast<float>(largest / 127.0);
            t.scales->at(b, h, i, g) = scale;
            for (int64_t d = g * group; d < (g + 1) * group; ++d) {
              const double q = scale > 0.0f ? std::round(source.at(b, h, i, d) / scale) : 0.0;
              static_cast<int8_t*>(row)[d] = static_cast<int8_t>(std::clamp(q, -127.0, 127.0));
              t.values.at(b, h, i, d) = static_cast<float>(static_cast<int8_t*>(row)[d] * double(scale));
            }
          }
        }
    return t;
  }
  AnyConstTensorView in() const { return view; }
  std::optional<ConstTensorView> scale_view() const {
    if (!scales.has_value()) return std::nullopt;
    return scales->in();
  }
  // The stored values of an output, as floats (every bf16 and f16 value is a float).
  Tensor read() const {
    Tensor out = values;
    const auto& s = view.shape;
    for (int64_t b = 0; b < s[0]; ++b)
      for (int64_t h = 0; h < s[1]; ++h)
        for (int64_t i = 0; i < s[2]; ++i)
          for (int64_t d = 0; d < s[3]; ++d) {
            out.at(b, h, i, d) = static_cast<float>(stored_value(view.row(b, h, i), view.dtype, d));
          }
    return out;
  }
};

// --- The oracle's view of stored values ---

TEST(StoredValues, AreExact) {
  EXPECT_EQ(reference::detail::bf16_value(0x3f80), 1.0);
  EXPECT_EQ(reference::detail::bf16_value(0xc040), -3.0);
  EXPECT_EQ(reference::detail::bf16_value(0x0001), 0x1p-133);
  EXPECT_TRUE(std::isinf(reference::detail::bf16_value(0xff80)));
  EXPECT_TRUE(std::isnan(reference::detail::bf16_value(0x7fc1)));
  EXPECT_EQ(reference::detail::f16_value(0x3c00), 1.0);
  EXPECT_EQ(reference::detail::f16_value(0x0001), 0x1p-24);
  EXPECT_EQ(reference::detail::f16_value(0x03ff), 1023 * 0x1p-24);
  EXPECT_EQ(reference::detail::f16_value(0x0400), 0x1p-14);
  EXPECT_EQ(reference::detail::f16_value(0x7bff), 65504.0);
  EXPECT_EQ(reference::detail::f16_value(0xc500), -5.0);
  EXPECT_TRUE(std::isinf(reference::detail::f16_value(0x7c00)));
  EXPECT_TRUE(std::isnan(reference::detail::f16_value(0x7c01)));
}

uint16_t rounded_bits(DType dtype, double x) {
  uint16_t bits = 0;
  store_rounded(&bits, dtype, 0, x);
  return bits;
}

TEST(StoredValues, RoundToNearestEven) {
  // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even 1.
  EXPECT_EQ(rounded_bits(DType::bf16, 1.0 + 0x1p-8), 0x3f80);
  EXPECT_EQ(rounded_bits(DType::bf16, 1.0 + 0x1p-8 + 0x1p-30), 0x3f81);
  EXPECT_EQ(rounded_bits(DType::bf16, 1.0 + 3 * 0x1p-8), 0x3f82);  // tie to even upward
  EXPECT_EQ(rounded_bits(DType::bf16, -2.0), 0xc000);
  EXPECT_EQ(rounded_bits(DType::bf16, 0x1.ffp127), 0x7f80);  // rounds past the largest: inf
  EXPECT_EQ(rounded_bits(DType::bf16, std::nan("")) & 0x7fc0, 0x7fc0);
  // f16: ties, the overflow threshold 65520, subnormals.
  EXPECT_EQ(rounded_bits(DType::f16, 1.0 + 0x1p-11), 0x3c00);
  EXPECT_EQ(rounded_bits(DType::f16, 1.0 + 3 * 0x1p-11), 0x3c02);
  EXPECT_EQ(rounded_bits(DType::f16, 65504.0), 0x7bff);
  EXPECT_EQ(rounded_bits(DType::f16, 65519.99), 0x7bff);
  EXPECT_EQ(rounded_bits(DType::f16, 65520.0), 0x7c00);
  EXPECT_EQ(rounded_bits(DType::f16, -1e6), 0xfc00);
  EXPECT_EQ(rounded_bits(DType::f16, 0x1p-24), 0x0001);
  EXPECT_EQ(rounded_bits(DType::f16, 0x1p-25), 0x0000);                   // tie to even (0)
  EXPECT_EQ(rounded_bits(DType::f16, 3 * 0x1p-25), 0x0002);               // tie to even (2)
  EXPECT_EQ(rounded_bits(DType::f16, 0x1p-14 - 0x1p-25), 0x0400);         // up into the normals
  EXPECT_EQ(rounded_bits(DType::f16, -0.0), 0x8000);
  EXPECT_EQ(rounded_bits(DType::f16, std::nan("")) & 0x7e00, 0x7e00);
}

// The kernels' scalar conversions (kernels/scalar_convert.hpp) against the oracle's: every
// 16-bit pattern widened, and floats around every rounding boundary narrowed.
TEST(ScalarConvert, MatchesTheOracle) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto pattern = static_cast<uint16_t>(bits);
    const double bf = reference::detail::bf16_value(pattern), half = reference::detail::f16_value(pattern);
    const float bf_fast = detail::bf16_to_float(pattern), half_fast = detail::f16_to_float(pattern);
    ASSERT_TRUE(std::isnan(bf) ? std::isnan(bf_fast) : double(bf_fast) == bf) << std::hex << bits;
    ASSERT_TRUE(std::isnan(half) ? std::isnan(half_fast) : double(half_fast) == half) << std::hex << bits;
  }
  std::vector<float> samples = {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65519.0f, 65520.0f,
                                0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-26f, 0x1p-14f, 0x1.ff8p-15f,
                                0x1p-149f, 0x1.fffffep127f, 3.4e38f, 1.0f + 0x1p-8f, 1.0f + 0x1p-11f};
  std::mt19937 generator(5);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = generator();
    if (i % 2 == 0) bits = (bits & 0x80001fffu) | ((generator() % 40u + 100u) << 23);  // near f16's range
    float value;
    std::memcpy(&value, &bits, sizeof value);
    samples.push_back(value);
  }
  for (float value : samples) {
    if (std::isnan(value)) continue;
    ASSERT_EQ(detail::float_to_bf16(value), rounded_bits(DType::bf16, value)) << value;
    ASSERT_EQ(detail::float_to_f16(value), rounded_bits(DType::f16, value)) << value;
  }
  EXPECT_EQ(detail::f16_to_float(0x7c01) != detail::f16_to_float(0x7c01), true);
  EXPECT_EQ(detail::float_to_bits(detail::f16_to_float(0xfc01)), 0xffc02000u);  // made quiet
  EXPECT_EQ(detail::float_to_bits(detail::bf16_to_float(0x7f81)), 0x7f810000u);  // bits kept
  EXPECT_EQ(detail::float_to_bf16(NAN) & 0x7fc0, 0x7fc0);
  EXPECT_EQ(detail::float_to_f16(-NAN) & 0xfe00, 0xfe00);
}

// --- The typed oracle is the fp32 oracle of the stored values ---

struct Config {
  const char* name;
  DType q, cache, out, mask;
  int64_t group_elements;  // i8: elements a scale (0: one scale a row, as for a width it does not divide)

  int64_t scales_per_row(int64_t width) const {
    return group_elements > 0 && width % group_elements == 0 ? width / group_elements : 1;
  }
  // Whether the int8 rows of K (head_dim wide) and of V have a single scale each, which the
  // decoding tile then applies to a whole dot product or weight instead of to each element.
  bool one_scale_a_row(int64_t head_dim, int64_t value_dim) const {
    return cache == DType::i8 && scales_per_row(head_dim) == 1 && scales_per_row(value_dim) == 1;
  }
  // Whether the fused tile may multiply bf16 pairs (uses_pair_tiles in src/kernels/pair_tiles.hpp:
  // bf16 q, k and v on the avx512bf16 or amx ISA), which round the weights to bf16 before P·V.
  bool may_round_weights(detail::Isa isa) const {
    return q == DType::bf16 && cache == DType::bf16 && multiplies_bf16_pairs(isa);
  }
};

std::vector<Config> configs() {
  return {{"bf16", DType::bf16, DType::bf16, DType::bf16, DType::bf16, 0},
          {"f16", DType::f16, DType::f16, DType::f16, DType::f16, 0},
          {"f32q_f16cache", DType::f32, DType::f16, DType::f32, DType::f32, 0},
          {"bf16q_f16cache", DType::bf16, DType::f16, DType::f32, DType::f16, 0},
          {"f32q_bf16cache_f16out", DType::f32, DType::bf16, DType::f16, DType::bf16, 0},
          {"f32q_i8cache", DType::f32, DType::i8, DType::f32, DType::f32, 1},
          {"f32q_i8rows", DType::f32, DType::i8, DType::f32, DType::f32, 0},
          {"bf16q_i8groups_bf16out", DType::bf16, DType::i8, DType::bf16, DType::f32, 8},
          {"f32q_i8groups32", DType::f32, DType::i8, DType::f32, DType::f32, 32}};
}

struct Shape {
  std::string name;
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim, value_dim;
  Layout layout = Layout::bhsd;
  Causal causal = Causal::none;
  bool mask = false, alibi = false, lse = false, ragged = false, window = false;
  float softcap = 0.0f;
};

std::vector<Shape> shapes() {
  std::vector<Shape> all;
  // Around micro-tile rows, panels, the key block (256; 64 where AVX2 widens 16-bit and int8 K
  // and V, so 257 and 513 end one key past a block) and the single-block limit (512).
  for (int64_t n : {1, 7, 17, 65, 257, 513}) {
    all.push_back({"square", 1, 2, 2, n, n, 64, 64});
    all.push_back({"causal", 1, 2, 1, n, n, 32, 32, Layout::padded, Causal::bottom_right});
  }
  for (int64_t d : {8, 24, 80, 128}) all.push_back({"head_dim", 1, 2, 2, 21, 45, d, d, Layout::bshd});
  all.push_back({"value_dim", 1, 4, 2, 13, 40, 24, 40});
  Shape options{"options", 2, 4, 2, 33, 70, 24, 24, Layout::padded, Causal::bottom_right};
  options.mask = options.alibi = options.lse = options.ragged = options.window = true;
  options.softcap = 8.0f;
  all.push_back(options);
  // The same at head_dim 32, which AMX's tiles take (head_dim a multiple of 32).
  Shape options32 = options;
  options32.name = "options32";
  options32.head_dim = options32.value_dim = 32;
  all.push_back(options32);
  for (int64_t sq : {1, 5}) {
    Shape decode{"decode", 2, 8, 2, sq, 1300, 64, 64, Layout::bhsd, Causal::bottom_right};
    decode.lse = true;
    all.push_back(decode);
  }
  Shape decode_ragged{"decode_ragged", 3, 4, 4, 1, 1100, 40, 56, Layout::padded};
  decode_ragged.ragged = decode_ragged.mask = true;
  all.push_back(decode_ragged);
  return all;
}

struct Problem {
  Tensor q32, k32, v32;
  std::optional<Tensor> mask32;
  TypedTensor q, k, v;
  std::optional<TypedTensor> mask;
  std::vector<int64_t> kv_lengths;
  std::vector<float> slopes;
  AttentionOptions options;
  double bias_magnitude = 0.0;

  Problem(const Config& config, const Shape& s)
      : q32(Tensor(s.batch, s.q_heads, s.sq, s.head_dim, s.layout).fill_uniform(21, -2.0f, 2.0f)),
        k32(Tensor(s.batch, s.kv_heads, s.sk, s.head_dim, s.layout).fill_uniform(22, -2.0f, 2.0f)),
        v32(Tensor(s.batch, s.kv_heads, s.sk, s.value_dim, s.layout).fill_uniform(23)),
        q(TypedTensor::from(q32, config.q)),
        k(TypedTensor::from(k32, config.cache, config.scales_per_row(s.head_dim))),
        v(TypedTensor::from(v32, config.cache, config.scales_per_row(s.value_dim))) {
    options.causal = s.causal;
    options.softcap = s.softcap;
    options.k_scale = k.scale_view();
    options.v_scale = v.scale_view();
    if (s.window) options.window_left = 20, options.window_right = 0;
    if (s.ragged) {
      for (int64_t b = 0; b < s.batch; ++b) kv_lengths.push_back(b == 0 ? s.sk : (s.sk * b) / 3);
      options.kv_lengths = kv_lengths.data();
    }
    if (s.alibi) {
      for (int64_t h = 0; h < s.q_heads; ++h) slopes.push_back(std::pow(2.0f, -1.0f - float(h)));
      options.alibi_slopes = slopes.data();
      bias_magnitude += 0.5 * double(s.sq + s.sk);
    }
    if (s.mask) {
      mask32.emplace(s.batch, 1, s.sq, s.sk, s.layout);
      mask32->fill_uniform(24, -3.0f, 3.0f);
      for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t i = 0; i < s.sq; ++i)
          for (int64_t j = i % 7; j < s.sk; j += 7) {
            mask32->at(b, 0, i, j) = -std::numeric_limits<float>::infinity();
          }
      mask.emplace(TypedTensor::from(*mask32, config.mask));
      options.mask = mask->in();
      bias_magnitude += 3.0;
    }
  }

  double logit_bound(const Shape& s) const {
    double logits = logit_magnitude(q.values, k.values, 1.0 / std::sqrt(double(s.head_dim)));
    if (s.softcap > 0) logits = std::min(logits, double(s.softcap));
    return logits + bias_magnitude;
  }
};

std::string describe(detail::Isa isa, Algorithm algorithm, const Config& config, const Shape& s) {
  std::ostringstream out;
  out << detail::isa_name(isa) << (algorithm == Algorithm::fused ? " fused " : " composed ")
      << config.name << " " << s.name << " B=" << s.batch << " Hq=" << s.q_heads
      << " Hkv=" << s.kv_heads << " Sq=" << s.sq << " Sk=" << s.sk << " D=" << s.head_dim
      << " Dv=" << s.value_dim << " " << layout_name(s.layout);
  return out.str();
}

// The typed oracle against the fp32 oracle of the same values: the stored values are read
// exactly, so an f32 output is the same to the last bit, and a 16-bit one is that result rounded
// once (at most one 16-bit rounding away from rounding the fp32 result).
class TypedOracle : public ::testing::TestWithParam<std::tuple<Config, Shape>> {};

TEST_P(TypedOracle, IsTheOracleOfTheStoredValues) {
  const auto& [config, s] = GetParam();
  Problem p(config, s);
  Tensor like_out(s.batch, s.q_heads, s.sq, s.value_dim, s.layout);
  TypedTensor out(like_out, config.out);
  Tensor expected = like_out;
  reference::attention(p.q.in(), p.k.in(), p.v.in(), out.view, p.options);

  AttentionOptions f32_options = p.options;
  f32_options.k_scale.reset();
  f32_options.v_scale.reset();
  if (p.mask.has_value()) f32_options.mask = p.mask->values.in();
  if (config.cache == DType::i8) {
    // The widened values of an int8 cache are products int8 · scale, which a float holds only
    // approximately: compare within the output bound instead of bit for bit.
    reference::attention(p.q.values.in(), p.k.values.in(), p.v.values.in(), expected.view, f32_options);
    const double logits = p.logit_bound(s);
    const double tolerance = 4 * kUnitRoundoff * (logits + 1.0) * max_magnitude(p.v.values) +
                             (config.out == DType::f32 ? 0.0 : 2 * kBf16Roundoff);
    EXPECT_TRUE(all_close(expected, out.read(), tolerance, config.name + std::string(" ") + s.name));
    return;
  }
  reference::attention(p.q.values.in(), p.k.values.in(), p.v.values.in(), expected.view, f32_options);
  if (config.out == DType::f32) {
    EXPECT_TRUE(bitwise_equal(expected, out.read())) << config.name << " " << s.name;
  } else {
    const double unit = config.out == DType::bf16 ? kBf16Roundoff : kF16Roundoff;
    EXPECT_TRUE(all_close(expected, out.read(), 2 * unit + kF16Subnormal,
                          config.name + std::string(" ") + s.name));
  }
}

std::string config_shape_name(const Config& config, const Shape& s) {
  std::ostringstream name;
  name << config.name << "_" << s.name << "_B" << s.batch << "_Hq" << s.q_heads << "_Hkv"
       << s.kv_heads << "_Sq" << s.sq << "_Sk" << s.sk << "_D" << s.head_dim;
  if (s.value_dim != s.head_dim) name << "_Dv" << s.value_dim;
  name << "_" << layout_name(s.layout);
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(
    AllDtypes, TypedOracle,
    ::testing::Combine(::testing::ValuesIn(configs()), ::testing::ValuesIn(shapes())),
    [](const ::testing::TestParamInfo<std::tuple<Config, Shape>>& info) {
      return config_shape_name(std::get<0>(info.param), std::get<1>(info.param));
    });

// --- Every fast path against the typed oracle ---

// The fp32 bound of test_support.hpp on the stored values, plus: for an int8 cache, the rounding
// of int8 · scale to float when widened (u per element: u·L on a logit, u·V on a value); for a
// 16-bit output, the one rounding of each result (u16 relative to |out| <= V, and the binary16
// subnormal spacing).
double typed_tolerance(detail::Isa isa, const Config& config, const Problem& p, const Shape& s) {
  const double logits = p.logit_bound(s), values = max_magnitude(p.v.values);
  double tolerance = attention_tolerance(logits, s.head_dim, s.sk, values);
  // AMX's weights rounded to bf16 from a coarser 2^x (kAmxWeightError).
  if (config.may_round_weights(isa)) tolerance += kAmxWeightError * values;
  if (config.cache == DType::i8) tolerance += kUnitRoundoff * (2 * logits + 1) * values;
  if (config.out == DType::bf16) tolerance += kBf16Roundoff * (2 * values + tolerance);
  if (config.out == DType::f16) tolerance += kF16Roundoff * (2 * values + tolerance) + kF16Subnormal;
  return tolerance;
}

class TypedAttention
    : public ::testing::TestWithParam<std::tuple<detail::Isa, Algorithm, Config, Shape>> {};

TEST_P(TypedAttention, MatchesOracle) {
  const auto& [isa, algorithm, config, s] = GetParam();
  Problem p(config, s);
  Tensor like_out(s.batch, s.q_heads, s.sq, s.value_dim, s.layout);
  TypedTensor expected(like_out, config.out), actual(like_out, config.out);
  Tensor expected_lse(s.batch, s.q_heads, s.sq, 1), actual_lse = expected_lse;
  AttentionOptions reference_options = p.options;
  if (s.lse) reference_options.lse = expected_lse.view;
  reference::attention(p.q.in(), p.k.in(), p.v.in(), expected.view, reference_options);

  AttentionOptions fast_options = p.options;
  fast_options.algorithm = algorithm;
  if (s.lse) fast_options.lse = actual_lse.view;
  {
    detail::ScopedIsaOverride use(isa);
    attention(p.q.in(), p.k.in(), p.v.in(), actual.view, fast_options);
  }
  const std::string context = describe(isa, algorithm, config, s);
  EXPECT_TRUE(all_close(expected.read(), actual.read(), typed_tolerance(isa, config, p, s), context));
  // The kernels read stored rows (widened into a buffer, or in place a register at a time) as
  // exactly the floats they stand for, int8 · scale rounded once as the widening does: the
  // fp32 call on those floats, with the same ISA, algorithm and key blocks (AVX2 widens K and V in
  // smaller blocks than it reads fp32 rows), gives the same bits. Not where an
  // int8 row has one scale: decoding multiplies the dot products and weights by it instead (one
  // rounding moved), nor where AMX's tiles may have rounded the weights to bf16: there the
  // comparison with the oracle above is the check.
  Tensor unrounded = like_out;
  int64_t key_block = 0;  // the blocks of this call's plan, which the fp32 call below takes too
  {
    detail::ScopedIsaOverride use(isa);
    attention(p.q.in(), p.k.in(), p.v.in(), unrounded.view, fast_options);
    key_block = detail::make_attention_plan(p.q.in(), p.k.in(), p.v.in(), unrounded.view, fast_options).key_block;
  }
  if (!config.one_scale_a_row(s.head_dim, s.value_dim) && !config.may_round_weights(isa)) {
    AttentionOptions f32_options = fast_options;
    f32_options.k_scale.reset();
    f32_options.v_scale.reset();
    f32_options.lse.reset();
    if (p.mask.has_value()) f32_options.mask = p.mask->values.in();
    Tensor from_floats = like_out;
    detail::ScopedIsaOverride use(isa);
    detail::ScopedKeyBlockOverride same_blocks(key_block);
    attention(p.q.values.in(), p.k.values.in(), p.v.values.in(), from_floats.view, f32_options);
    EXPECT_TRUE(bitwise_equal(from_floats, unrounded))
        << context << ": not the fp32 path's result on the widened inputs";
  }
  if (config.out != DType::f32) {
    // A 16-bit output is the fp32 result rounded once to nearest even: the same call with an
    // f32 output, rounded here, gives the same bits.
    TypedTensor rounded_here(like_out, config.out);
    const auto& shape = like_out.view.shape;
    for (int64_t b = 0; b < shape[0]; ++b)
      for (int64_t h = 0; h < shape[1]; ++h)
        for (int64_t i = 0; i < shape[2]; ++i) {
          detail::narrow_row_scalar(unrounded.view.row(b, h, i), shape[3],
                                    rounded_here.view.row(b, h, i), config.out);
          EXPECT_EQ(std::memcmp(rounded_here.view.row(b, h, i), actual.view.row(b, h, i),
                                static_cast<size_t>(shape[3] * dtype_size(config.out))),
                    0)
              << context << ": row [" << b << "," << h << "," << i << "] is not the f32 result rounded";
        }
  }
  if (s.lse) {
    double logits = p.logit_bound(s);
    if (config.cache == DType::i8) logits *= 1 + 2 * kUnitRoundoff;
    EXPECT_TRUE(all_close(expected_lse, actual_lse, lse_tolerance(logits, s.head_dim, s.sk),
                          context + " lse"));
  }
}

std::string typed_attention_name(
    const ::testing::TestParamInfo<std::tuple<detail::Isa, Algorithm, Config, Shape>>& info) {
  const auto& [isa, algorithm, config, s] = info.param;
  return std::string(detail::isa_name(isa)) +
         (algorithm == Algorithm::fused ? "_fused_" : "_composed_") + config_shape_name(config, s);
}

INSTANTIATE_TEST_SUITE_P(
    AllDtypes, TypedAttention,
    ::testing::Combine(::testing::ValuesIn(host_isas()),
                       ::testing::Values(Algorithm::fused, Algorithm::composed),
                       ::testing::ValuesIn(configs()), ::testing::ValuesIn(shapes())),
    typed_attention_name);

// The stages with typed inputs and outputs, on every ISA.
class TypedStages : public ::testing::TestWithParam<std::tuple<detail::Isa, Config>> {};

TEST_P(TypedStages, MatchOracle) {
  const auto& [isa, config] = GetParam();
  const Shape s{"stages", 2, 4, 2, 19, 70, 40, 24, Layout::padded};
  Problem p(config, s);
  const float scale = 0.125f;
  Tensor expected_scores(s.batch, s.q_heads, s.sq, s.sk), actual_scores = expected_scores;
  reference::qk_scores(p.q.in(), p.k.in(), expected_scores.view, scale, p.options.k_scale);
  {
    detail::ScopedIsaOverride use(isa);
    qk_scores(p.q.in(), p.k.in(), actual_scores.view, scale, 0, p.options.k_scale);
  }
  double logits = logit_magnitude(p.q.values, p.k.values, scale);
  if (config.cache == DType::i8) logits *= 1 + 2 * kUnitRoundoff;
  EXPECT_TRUE(all_close(expected_scores, actual_scores, score_tolerance(logits, s.head_dim),
                        std::string(detail::isa_name(isa)) + " " + config.name + " qk_scores"));

  Tensor weights(s.batch, s.q_heads, s.sq, s.sk);
  weights.fill_uniform(25, 0.0f, 1.0f / float(s.sk));
  Tensor like_out(s.batch, s.q_heads, s.sq, s.value_dim, s.layout);
  TypedTensor expected(like_out, config.out), actual(like_out, config.out);
  reference::weights_v(weights.in(), p.v.in(), expected.view, p.options.v_scale);
  {
    detail::ScopedIsaOverride use(isa);
    weights_v(weights.in(), p.v.in(), actual.view, 0, p.options.v_scale);
  }
  const double values = max_magnitude(p.v.values);
  double tolerance = (gamma(s.sk) + kUnitRoundoff) * values;  // Σ_j |w_j| <= 1
  if (config.cache == DType::i8) tolerance += kUnitRoundoff * values;
  if (config.out == DType::bf16) tolerance += kBf16Roundoff * (2 * values + tolerance);
  if (config.out == DType::f16) tolerance += kF16Roundoff * (2 * values + tolerance) + kF16Subnormal;
  EXPECT_TRUE(all_close(expected.read(), actual.read(), tolerance,
                        std::string(detail::isa_name(isa)) + " " + config.name + " weights_v"));
}

INSTANTIATE_TEST_SUITE_P(
    AllDtypes, TypedStages,
    ::testing::Combine(::testing::ValuesIn(host_isas()), ::testing::ValuesIn(configs())),
    [](const ::testing::TestParamInfo<std::tuple<detail::Isa, Config>>& info) {
      return std::string(detail::isa_name(std::get<0>(info.param))) + "_" + std::get<1>(info.param).name;
    });

// Where the CPU runs avx512bf16 or amx, bf16 prefill multiplies bf16 pairs: its weights, rounded
// to bf16, give other bits than the AVX-512 tile's on the same inputs (both within the bound,
// checked above). A pair tile that silently fell back to widening would give the same bits.
// Skipped, saying so, where the CPU runs neither.
TEST(PairTiles, Bf16PrefillMultipliesPairs) {
  const Config bf16 = configs()[0];
  ASSERT_EQ(bf16.q, DType::bf16);
  const Shape s{"square", 1, 2, 2, 100, 100, 64, 64};
  Problem p(bf16, s);
  Tensor on_avx512(s.batch, s.q_heads, s.sq, s.value_dim, s.layout);
  int pair_isas = 0;
  for (detail::Isa isa : host_isas()) {
    if (std::string(detail::isa_name(isa)) == "avx512") {
      detail::ScopedIsaOverride use(isa);
      attention(p.q.in(), p.k.in(), p.v.in(), on_avx512.view, p.options);
    }
    if (!multiplies_bf16_pairs(isa)) continue;
    ++pair_isas;
    Tensor on_pairs = on_avx512;
    {
      detail::ScopedIsaOverride use(isa);
      attention(p.q.in(), p.k.in(), p.v.in(), on_pairs.view, p.options);
    }
    EXPECT_FALSE(bitwise_equal(on_avx512, on_pairs))
        << "the " << detail::isa_name(isa) << " ISA computed bf16 prefill as avx512 does";
  }
  if (pair_isas == 0) GTEST_SKIP() << "this CPU runs neither AVX512-BF16 nor AMX-BF16 tiles";
}

// V holding inf in a key the causal mask hides from a tile's earlier queries: a weight of 0 must
// not multiply it (0 · inf is NaN; the pair tile then adds the visible keys one by one), so those
// queries stay finite and the later ones get inf, as in the oracle, on every ISA and algorithm.
TEST(NonFiniteValues, ReachOnlyTheQueriesThatSeeThem) {
  const Config bf16 = configs()[0];
  Shape s{"causal", 1, 2, 2, 100, 100, 64, 64};
  s.causal = Causal::bottom_right;
  Problem p(bf16, s);
  // The tolerances of the finite elements, from the finite values.
  std::vector<double> tolerances;
  for (detail::Isa isa : host_isas()) tolerances.push_back(typed_tolerance(isa, bf16, p, s));
  constexpr int64_t kKey = 60, kElement = 3;
  for (int64_t h = 0; h < s.kv_heads; ++h) p.v32.at(0, h, kKey, kElement) = std::numeric_limits<float>::infinity();
  const TypedTensor v = TypedTensor::from(p.v32, bf16.cache, bf16.scales_per_row(s.value_dim));
  Tensor like_out(s.batch, s.q_heads, s.sq, s.value_dim, s.layout);
  TypedTensor expected(like_out, bf16.out);
  reference::attention(p.q.in(), p.k.in(), v.in(), expected.view, p.options);
  const Tensor oracle = expected.read();
  ASSERT_TRUE(std::isinf(oracle.at(0, 0, kKey, kElement)));
  ASSERT_TRUE(std::isfinite(oracle.at(0, 0, kKey - 1, kElement)));
  size_t which = 0;
  for (detail::Isa isa : host_isas()) {
    for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
      TypedTensor actual(like_out, bf16.out);
      AttentionOptions options = p.options;
      options.algorithm = algorithm;
      {
        detail::ScopedIsaOverride use(isa);
        attention(p.q.in(), p.k.in(), v.in(), actual.view, options);
      }
      EXPECT_TRUE(all_close(oracle, actual.read(), tolerances[which], describe(isa, algorithm, bf16, s)));
    }
    ++which;
  }
}

// The AMX tile folds a positive logit scale into the softmax's FMA and scales the scores itself
// otherwise: a negative, zero and positive scale against the oracle, on every ISA.
TEST(LogitScale, AnySignMatchesTheOracle) {
  const Config bf16 = configs()[0];
  Shape s{"causal", 1, 4, 2, 90, 300, 64, 64};
  s.causal = Causal::bottom_right;
  Problem p(bf16, s);
  Tensor like_out(s.batch, s.q_heads, s.sq, s.value_dim, s.layout);
  for (float scale : {-0.3f, 0.0f, 0.7f}) {
    AttentionOptions options = p.options;
    options.scale = scale;
    TypedTensor expected(like_out, bf16.out);
    reference::attention(p.q.in(), p.k.in(), p.v.in(), expected.view, options);
    for (detail::Isa isa : host_isas()) {
      TypedTensor actual(like_out, bf16.out);
      {
        detail::ScopedIsaOverride use(isa);
        attention(p.q.in(), p.k.in(), p.v.in(), actual.view, options);
      }
      // logit_bound is for the default scale 1/√D.
      const double logits = p.logit_bound(s) * std::fabs(scale) * std::sqrt(double(s.head_dim));
      const double values = max_magnitude(p.v.values);
      double tolerance = attention_tolerance(logits, s.head_dim, s.sk, values);
      if (bf16.may_round_weights(isa)) tolerance += kAmxWeightError * values;
      tolerance += kBf16Roundoff * (2 * values + tolerance);  // the bf16 output
      std::ostringstream context;
      context << describe(isa, Algorithm::fused, bf16, s) << " scale " << scale;
      EXPECT_TRUE(all_close(expected.read(), actual.read(), tolerance, context.str()));
    }
  }
}

// --- Dtype rules: a clear error, and nothing written ---

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(no error)";
}

struct SmallCall {
  Tensor q32 = Tensor(1, 2, 3, 8).fill_uniform(1), k32 = Tensor(1, 1, 5, 8).fill_uniform(2),
         v32 = Tensor(1, 1, 5, 8).fill_uniform(3), out32 = Tensor(1, 2, 3, 8).fill(7.0f);
};

TEST(DtypeRules, AreClearErrorsAndWriteNothing) {
  SmallCall c;
  const TypedTensor q8 = TypedTensor::from(c.q32, DType::i8);
  const TypedTensor k16 = TypedTensor::from(c.k32, DType::f16), vbf = TypedTensor::from(c.v32, DType::bf16);
  const TypedTensor k8 = TypedTensor::from(c.k32, DType::i8), v8 = TypedTensor::from(c.v32, DType::i8);
  TypedTensor out8(c.out32, DType::i8);
  const Tensor before = c.out32;
  for (auto attention_call : {&simdattn::attention, &simdattn::reference::attention}) {
    const char* function = attention_call == &simdattn::attention ? "simdattn::attention"
                                                                   : "simdattn::reference::attention";
    const auto expect = [&](const std::string& message, const std::function<void()>& call) {
      EXPECT_EQ(error_of(call), std::string(function) + ": " + message);
      EXPECT_TRUE(bitwise_equal(before, c.out32)) << message;
    };
    expect("q.dtype must be f32, bf16 or f16, got i8",
           [&] { attention_call(q8.in(), c.k32.in(), c.v32.in(), c.out32.view, {}); });
    expect("v.dtype must equal k.dtype = f16 (one cache dtype), got bf16",
           [&] { attention_call(c.q32.in(), k16.in(), vbf.in(), c.out32.view, {}); });
    expect("out.dtype must be f32, bf16 or f16, got i8",
           [&] { attention_call(c.q32.in(), c.k32.in(), c.v32.in(), out8.view, {}); });
    expect("options.k_scale must be given when k.dtype is i8 (element = scale · int8), got none",
           [&] { attention_call(c.q32.in(), k8.in(), v8.in(), c.out32.view, {}); });
    AttentionOptions options;
    options.k_scale = k8.scale_view();
    expect("options.k_scale must be absent unless k.dtype is i8, got a scale tensor with k.dtype f32",
           [&] { attention_call(c.q32.in(), c.k32.in(), c.v32.in(), c.out32.view, options); });
    Tensor wrong_groups(1, 1, 5, 3);
    wrong_groups.fill(1.0f);
    options.k_scale = wrong_groups.in();
    options.v_scale = v8.scale_view();
    expect("options.k_scale.shape[3] (scales per row) must divide k.shape[3] = 8 (1: one scale per "
           "row), got 3",
           [&] { attention_call(c.q32.in(), k8.in(), v8.in(), c.out32.view, options); });
    Tensor short_scales(1, 1, 4, 1);
    short_scales.fill(1.0f);
    options.k_scale = short_scales.in();
    expect("options.k_scale.shape[2] (Sk) must equal k.shape[2] = 5, got 4 (shape [1, 1, 4, 1])",
           [&] { attention_call(c.q32.in(), k8.in(), v8.in(), c.out32.view, options); });
    Tensor bad_scales(1, 1, 5, 1);
    bad_scales.fill(1.0f);
    bad_scales.at(0, 0, 3, 0) = -0.5f;
    options.k_scale = k8.scale_view();
    options.v_scale = bad_scales.in();
    expect("options.v_scale[0, 0, 3, 0] must be finite and >= 0, got -0.5",
           [&] { attention_call(c.q32.in(), k8.in(), v8.in(), c.out32.view, options); });
    bad_scales.at(0, 0, 3, 0) = std::numeric_limits<float>::quiet_NaN();
    expect("options.v_scale[0, 0, 3, 0] must be finite and >= 0, got nan",
           [&] { attention_call(c.q32.in(), k8.in(), v8.in(), c.out32.view, options); });
    AttentionOptions masked;
    Tensor mask32(1, 1, 3, 5);
    mask32.fill(0.0f);
    const TypedTensor mask8 = TypedTensor::from(mask32, DType::i8);
    masked.mask = mask8.in();
    expect("options.mask.dtype must be f32, bf16 or f16, got i8",
           [&] { attention_call(c.q32.in(), c.k32.in(), c.v32.in(), c.out32.view, masked); });
    AnyConstTensorView unknown = c.q32.in();
    unknown.dtype = static_cast<DType>(9);
    expect("q.dtype must be f32, bf16, f16 or i8, got 9 (not a dtype)",
           [&] { attention_call(unknown, c.k32.in(), c.v32.in(), c.out32.view, {}); });
  }
}

// Scale tensors large enough that the check is shared among threads (validate.cpp,
// all_scales_valid): a bad scale in any (batch, kv head), at either end of a thread's share, or in
// a strided layout, is found and named whatever the thread count, and nothing is written.
TEST(DtypeRules, LargeScaleTensorsAreCheckedWhole) {
  const int64_t heads = 6, keys = 4096, groups = 2;  // 49152 scales a tensor
  const Tensor q32 = Tensor(1, heads, 1, 8).fill_uniform(4);
  const Tensor k32 = Tensor(1, heads, keys, 8).fill_uniform(5), v32 = Tensor(1, heads, keys, 8).fill_uniform(6);
  const TypedTensor k8 = TypedTensor::from(k32, DType::i8, groups), v8 = TypedTensor::from(v32, DType::i8, groups);
  // The same scales with a key's groups a head apart: no run of adjacent rows.
  Tensor strided(1, keys, heads, groups);
  ConstTensorView strided_view = strided.in();
  strided_view.shape = {1, heads, keys, groups};
  strided_view.strides = {strided.view.strides[0], groups, heads * groups, 1};
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t s = 0; s < keys; ++s)
      for (int64_t g = 0; g < groups; ++g) strided.at(0, s, h, g) = v8.scales->at(0, h, s, g);
  Tensor out = Tensor(1, heads, 1, 8).fill(7.0f);
  const Tensor before = out;
  for (const bool strided_scales : {false, true}) {
    for (const std::array<int64_t, 3>& bad : std::vector<std::array<int64_t, 3>>{
             {0, 0, 0}, {2, keys - 1, 1}, {3, 0, 0}, {heads - 1, keys - 1, groups - 1}}) {
      Tensor scales = *v8.scales;
      float& stored = strided_scales ? strided.at(0, bad[1], bad[0], bad[2]) : scales.at(0, bad[0], bad[1], bad[2]);
      const float good = stored;
      stored = -std::numeric_limits<float>::infinity();
      for (const int threads : {0, 1, 2}) {
        AttentionOptions options;
        options.k_scale = k8.scale_view();
        options.v_scale = strided_scales ? strided_view : scales.in();
        options.num_threads = threads;
        const std::string where = "[0, " + std::to_string(bad[0]) + ", " + std::to_string(bad[1]) + ", " +
                                  std::to_string(bad[2]) + "]";
        EXPECT_EQ(error_of([&] { simdattn::attention(q32.in(), k8.in(), v8.in(), out.view, options); }),
                  "simdattn::attention: options.v_scale" + where + " must be finite and >= 0, got -inf")
            << "threads " << threads << (strided_scales ? ", strided" : "");
        EXPECT_TRUE(bitwise_equal(before, out));
      }
      stored = good;
    }
  }
  // Every scale valid: the call runs, and strided scales give the bits of contiguous ones.
  AttentionOptions options;
  options.k_scale = k8.scale_view();
  options.v_scale = strided_view;
  simdattn::attention(q32.in(), k8.in(), v8.in(), out.view, options);
  Tensor contiguous_out = Tensor(1, heads, 1, 8).fill(7.0f);
  options.v_scale = v8.scale_view();
  simdattn::attention(q32.in(), k8.in(), v8.in(), contiguous_out.view, options);
  EXPECT_FALSE(bitwise_equal(before, out));
  EXPECT_TRUE(bitwise_equal(contiguous_out, out));
}

}  // namespace
}  // namespace simdattn::testing

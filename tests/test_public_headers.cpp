// What the public headers promise beyond the functions: the umbrella header's contents, the
// version macros, the C ABI's explicit scale, and ALiBi's alignment under each causal mode.
// Only the umbrella header and the C header are included (plus the test helpers, which include
// the umbrella): each check below fails to compile when the umbrella misses what it must bring.
// First, before any other header: what the umbrella header alone provides.
#include "simdattn/simdattn.hpp"

// The exception its functions document (<stdexcept>), the oracles (reference.hpp), the version
// macros (version.h), usable in the preprocessor.
using UmbrellaInvalidArgument = std::invalid_argument;
using UmbrellaReferenceAttention = decltype(&simdattn::reference::attention);
#if !defined(SIMDATTN_VERSION_MAJOR) || !defined(SIMDATTN_VERSION_MINOR) || \
    !defined(SIMDATTN_VERSION_PATCH) || SIMDATTN_VERSION < 0
#error "simdattn.hpp must define the version macros"
#endif

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "simdattn/simdattn.h"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

static_assert(SIMDATTN_VERSION ==
                  SIMDATTN_VERSION_MAJOR * 10000 + SIMDATTN_VERSION_MINOR * 100 + SIMDATTN_VERSION_PATCH,
              "SIMDATTN_VERSION is MAJOR·10000 + MINOR·100 + PATCH");

std::string header_version() {
  return std::to_string(SIMDATTN_VERSION_MAJOR) + "." + std::to_string(SIMDATTN_VERSION_MINOR) + "." +
         std::to_string(SIMDATTN_VERSION_PATCH);
}

TEST(PublicHeaders, VersionMacrosMatchTheLibrary) {
  EXPECT_EQ(header_version(), version());
  EXPECT_EQ(header_version(), simdattn_version());
}

TEST(PublicHeaders, UmbrellaHeaderBringsTheReference) {
  const UmbrellaReferenceAttention oracle = &reference::attention;
  EXPECT_NE(oracle, nullptr);
}

// A [1, heads, seq, dim] C tensor over a test tensor's storage (contiguous BHSD).
simdattn_tensor c_tensor(Tensor& t) {
  simdattn_tensor c{};
  c.data = t.view.data;
  c.dtype = SIMDATTN_F32;
  for (int i = 0; i < 4; ++i) {
    c.shape[i] = t.view.shape[i];
    c.strides[i] = t.view.strides[i];
  }
  return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return std::memcmp(a.storage.data(), b.storage.data(), a.storage.size() * sizeof(float)) == 0;
}

// The C ABI's scale_is_explicit: scale 0 through C is scale 0 through C++ (uniform weights), an
// explicit scale is that scale, and without the flag 0 stays the default 1/sqrt(D).
TEST(PublicHeaders, CAbiExplicitScaleMatchesCpp) {
  Tensor q(2, 4, 9, 24), k(2, 2, 31, 24), v(2, 2, 31, 24);
  q.fill_uniform(51, -2.0f, 2.0f);
  k.fill_uniform(52, -2.0f, 2.0f);
  v.fill_uniform(53);
  simdattn_tensor cq = c_tensor(q), ck = c_tensor(k), cv = c_tensor(v);
  for (const float scale : {0.0f, 0.3f}) {
    Tensor c_out(2, 4, 9, 24), cpp_out(2, 4, 9, 24), default_out(2, 4, 9, 24);
    simdattn_tensor cout_ = c_tensor(c_out);
    simdattn_options options;
    simdattn_options_init(&options);
    options.scale = scale;
    options.scale_is_explicit = 1;
    options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
    ASSERT_EQ(simdattn_attention(&cq, &ck, &cv, &cout_, &options), SIMDATTN_OK) << simdattn_last_error();
    AttentionOptions cpp;
    cpp.scale = scale;
    cpp.causal = Causal::bottom_right;
    attention(q.in(), k.in(), v.in(), cpp_out.view, cpp);
    EXPECT_TRUE(same_bits(c_out, cpp_out)) << "explicit scale " << scale << ": C and C++ differ";
    AttentionOptions default_scale;
    default_scale.causal = Causal::bottom_right;
    attention(q.in(), k.in(), v.in(), default_out.view, default_scale);
    EXPECT_FALSE(same_bits(c_out, default_out)) << "explicit scale " << scale << " gave the default's result";
  }
  Tensor c_default(2, 4, 9, 24), cpp_default(2, 4, 9, 24);
  simdattn_tensor cdefault = c_tensor(c_default);
  simdattn_options options;
  simdattn_options_init(&options);
  ASSERT_EQ(simdattn_attention(&cq, &ck, &cv, &cdefault, &options), SIMDATTN_OK) << simdattn_last_error();
  attention(q.in(), k.in(), v.in(), cpp_default.view);
  EXPECT_TRUE(same_bits(c_default, cpp_default)) << "scale 0 without the flag must stay 1/sqrt(D)";
}

// ALiBi measures from the causal diagonal: |i - j| under top-left, |i + Sk - Sq - j| under
// bottom-right and without causal masking. Each must equal the same additive mask, on every ISA.
TEST(PublicHeaders, AlibiFollowsTheCausalAlignment) {
  const int64_t sq = 6, sk = 11, heads = 2, dim = 16;
  Tensor q(1, heads, sq, dim), k(1, heads, sk, dim), v(1, heads, sk, dim);
  q.fill_uniform(61, -1.0f, 1.0f);
  k.fill_uniform(62, -1.0f, 1.0f);
  v.fill_uniform(63);
  const std::vector<float> slopes{0.5f, 0.125f};
  for (detail::Isa isa : host_isas()) {
    const detail::ScopedIsaOverride use(isa);
    for (Causal causal : {Causal::top_left, Causal::bottom_right, Causal::none}) {
      const int64_t off = causal == Causal::top_left ? 0 : sk - sq;
      Tensor bias(1, heads, sq, sk), with_alibi(1, heads, sq, dim), with_mask(1, heads, sq, dim);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < sq; ++i)
          for (int64_t j = 0; j < sk; ++j) {
            bias.at(0, h, i, j) = -slopes[h] * static_cast<float>(std::llabs(i + off - j));
          }
      AttentionOptions alibi;
      alibi.causal = causal;
      alibi.alibi_slopes = slopes.data();
      attention(q.in(), k.in(), v.in(), with_alibi.view, alibi);
      AttentionOptions masked;
      masked.causal = causal;
      masked.mask = bias.in();
      attention(q.in(), k.in(), v.in(), with_mask.view, masked);
      const double tolerance = attention_tolerance(4.0 + 0.5 * (sq + sk), dim, sk, 1.0);
      EXPECT_TRUE(all_close(with_mask, with_alibi, tolerance,
                            std::string(detail::isa_name(isa)) + " causal " +
                                std::to_string(static_cast<int>(causal)) + ": ALiBi vs |i + off - j| mask"));
    }
  }
}

}  // namespace
}  // namespace simdattn::testing

// libFuzzer target over the C ABI: each input decodes into one call of simdattn_attention,
// simdattn_qk_scores, simdattn_softmax_rows, simdattn_weights_v, simdattn_attention_varlen or
// simdattn_attention_paged (fuzz_serving.cpp) on small sizes, with shapes,
// strides, dtypes, options and values from the input, on an ISA the input picks. Every call must
//  - return SIMDATTN_ERR_INVALID_ARGUMENT when an argument is invalid by construction (see
//    fuzz_tensor.hpp and the option checks below), UNSUPPORTED at most for a longer options struct
//    with a non-zero tail, and never OUT_OF_MEMORY or INTERNAL;
//  - otherwise agree with the float64 oracle (simdattn::reference, through the C++ API, on the
//    same views) on whether the call is valid, and when it is, match it within the bounds of
//    tests/test_support.hpp;
//  - leave its inputs unchanged, and its outputs too when it fails;
//  - touch no byte outside the views (every buffer is exactly a view's extent: ASan watches).
// Built by tests/fuzz.cmake with clang -fsanitize=fuzzer,address,undefined; run by .ci/fuzz.sh.
//
// Known limits:
//  - attention's values (v) are finite: a weight that underflows to 0 in float but not in the
//    oracle's double meets an inf or NaN value as 0 · inf = NaN on one side and inf on the other.
//    (Values of keys hidden from a row never reach it: tests/test_hardening_non_finite.cpp.)
//  - head_dim and value_dim are at least 1: with 0, the oracle computes the row addresses of the
//    empty rows from the view's data and strides, which are anything for an empty view (NULL, or
//    strides of 2^62): NULL + offset, undefined behaviour that UBSan reports (the library points
//    such views at an anchor instead). tests/test_hardening_hostile_inputs.cpp covers head_dim 0
//    with ordinary views.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "fuzz_call.hpp"
#include "fuzz_serving.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/simdattn.hpp"

namespace simdattn::fuzz {
namespace {

// ------------------------------------------------------------------------------------------------
// simdattn_attention
// ------------------------------------------------------------------------------------------------

int fuzz_attention(ByteReader& in, const Sizes& s) {
  // --- options, in the order of tests/fuzz/README.md ---
  simdattn_options full;
  simdattn_options_init(&full);
  size_t struct_size = sizeof(simdattn_options);
  bool nonzero_tail = false;
  switch (in.choice(8)) {
    case 4: struct_size = 0; break;
    case 5: struct_size = offsetof(simdattn_options, scale) + sizeof(float); break;
    case 6: struct_size = offsetof(simdattn_options, causal) + sizeof(int32_t); break;
    case 7:
      struct_size = sizeof(simdattn_options) + 8;
      nonzero_tail = in.byte() != 0;
      break;
    default: break;
  }
  full.scale = decode_scale(in);
  full.causal = in.choice(5) - 1;
  full.window_left = decode_window(in, s.sk);
  full.window_right = decode_window(in, s.sk);
  static constexpr float kSoftcaps[] = {0.0f, 0.0f, 0.0f, 0.0f, 5.0f, 0.5f, -1.0f, std::numeric_limits<float>::quiet_NaN()};
  full.softcap = kSoftcaps[in.choice(8)];
  std::vector<int64_t> kv_lengths;
  const bool use_kv_lengths = in.choice(3) == 2;
  if (use_kv_lengths) {
    for (int64_t b = 0; b < s.batch; ++b) kv_lengths.push_back(in.byte() % (s.sk + 3) - 1);
  }
  std::vector<float> slopes;
  const bool use_slopes = in.choice(3) == 2;
  if (use_slopes) {
    static constexpr float kSlopes[] = {0.5f, 0.25f, 1.0f, 0.0f, -0.5f, 0.125f, kInfinity, std::numeric_limits<float>::quiet_NaN()};
    for (int64_t h = 0; h < s.q_heads; ++h) slopes.push_back(kSlopes[in.choice(8)]);
  }
  const int mask_kind = in.choice(4);  // 0, 1: none; 2: [B, Hq, Sq, Sk]; 3: broadcast
  const int mask_broadcast = mask_kind == 3 ? in.byte() : 0;
  const bool use_weights = in.choice(2) == 1;
  const bool use_lse = in.choice(2) == 1;
  full.algorithm = in.choice(5) - 1;
  full.num_threads = in.choice(6) - 1;
  const int aliasing = in.choice(16);

  // --- tensors ---
  FuzzTensor q, k, v, out, mask, weights, lse;
  const Values logit_values = Values::specials;
  bool runnable = decode_tensor(in, {s.batch, s.q_heads, s.sq, s.head_dim}, Role::input, logit_values, q) &&
                  decode_tensor(in, {s.batch, s.kv_heads, s.sk, s.head_dim}, Role::input, logit_values, k) &&
                  decode_tensor(in, {s.batch, s.kv_heads, s.sk, s.value_dim}, Role::input, Values::finite, v) &&
                  decode_tensor(in, {s.batch, s.q_heads, s.sq, s.value_dim}, Role::output, Values::finite, out);
  if (runnable && mask_kind >= 2) {
    const Shape shape = {mask_broadcast & 1 ? 1 : s.batch, mask_broadcast & 2 ? 1 : s.q_heads,
                         mask_broadcast & 4 ? 1 : s.sq, s.sk};
    runnable = decode_tensor(in, shape, Role::mask, Values::mask, mask);
  }
  if (runnable && use_weights) runnable = decode_tensor(in, {s.batch, s.q_heads, s.sq, s.sk}, Role::output, Values::finite, weights);
  if (runnable && use_lse) runnable = decode_tensor(in, {s.batch, s.q_heads, s.sq, 1}, Role::output, Values::finite, lse);
  if (!runnable) return 0;
  // Read after the tensors, so that seeds written before sinks existed keep their meaning.
  std::vector<float> sinks = decode_sinks(in, s.q_heads);
  full.sink_tokens = decode_sink_tokens(in);
  if (!cover(kv_lengths, q.c.shape[0], int64_t{0}) || !cover(slopes, q.c.shape[1], 0.5f) ||
      !cover(sinks, q.c.shape[1], -kInfinity)) {
    return 0;
  }
  full.sinks = sinks.empty() ? nullptr : sinks.data();
  full.kv_lengths = use_kv_lengths ? kv_lengths.data() : nullptr;
  full.alibi_slopes = use_slopes ? slopes.data() : nullptr;
  full.mask = mask.present ? &mask.c : nullptr;
  full.weights = weights.present ? &weights.c : nullptr;
  full.lse = lse.present ? &lse.c : nullptr;

  // What the library reads: the fields inside struct_size; the rest keep their defaults.
  simdattn_options effective;
  simdattn_options_init(&effective);
  auto inside = [&](size_t offset, size_t size) { return offset + size <= struct_size; };
  auto reads = [&](size_t offset) { return inside(offset, sizeof(void*)); };
  // An output over an input, both passed and non-empty, must be refused.
  bool aliased = false;
  if (aliasing == 15) aliased = alias(out, q);
  if (aliasing == 14 && weights.present && reads(offsetof(simdattn_options, weights))) aliased = alias(weights, v);
  if (aliasing == 13 && lse.present && reads(offsetof(simdattn_options, lse))) aliased = alias(lse, k);
  if (aliasing == 12 && mask.present && reads(offsetof(simdattn_options, mask))) aliased = alias(out, mask);

#define SIMDATTN_FUZZ_TAKE(field) \
  if (inside(offsetof(simdattn_options, field), sizeof(full.field))) effective.field = full.field
  SIMDATTN_FUZZ_TAKE(scale);
  SIMDATTN_FUZZ_TAKE(causal);
  SIMDATTN_FUZZ_TAKE(window_left);
  SIMDATTN_FUZZ_TAKE(window_right);
  SIMDATTN_FUZZ_TAKE(mask);
  SIMDATTN_FUZZ_TAKE(kv_lengths);
  SIMDATTN_FUZZ_TAKE(softcap);
  SIMDATTN_FUZZ_TAKE(alibi_slopes);
  SIMDATTN_FUZZ_TAKE(weights);
  SIMDATTN_FUZZ_TAKE(lse);
  SIMDATTN_FUZZ_TAKE(num_threads);
  SIMDATTN_FUZZ_TAKE(algorithm);
  SIMDATTN_FUZZ_TAKE(scale_is_explicit);
  SIMDATTN_FUZZ_TAKE(sinks);
  SIMDATTN_FUZZ_TAKE(sink_tokens);
#undef SIMDATTN_FUZZ_TAKE

  // --- what must be refused, whatever the other arguments ---
  bool must_reject = q.must_reject || k.must_reject || v.must_reject || out.must_reject || aliased ||
                     struct_size < offsetof(simdattn_options, scale) + sizeof(float);
  must_reject |= effective.mask != nullptr && mask.must_reject;
  must_reject |= effective.weights != nullptr && weights.must_reject;
  must_reject |= effective.lse != nullptr && lse.must_reject;
  must_reject |= effective.causal < 0 || effective.causal > 2 || effective.algorithm < 0 || effective.algorithm > 2;
  must_reject |= effective.num_threads < 0 || !std::isfinite(effective.scale);
  must_reject |= !std::isfinite(effective.softcap) || effective.softcap < 0.0f;
  must_reject |= effective.window_left < -1 || effective.window_right < -1;
  must_reject |= effective.weights != nullptr && effective.algorithm == SIMDATTN_ALGO_FUSED;
  if (effective.kv_lengths != nullptr) {
    for (int64_t length : kv_lengths) must_reject |= length < 0 || length > k.c.shape[2];
  }
  if (effective.alibi_slopes != nullptr) {
    for (float slope : slopes) must_reject |= !std::isfinite(slope);
  }
  must_reject |= effective.sinks != nullptr && sinks_refused(sinks);
  must_reject |= effective.sink_tokens < 0;


  // --- the call, exactly as a caller with a struct of struct_size bytes makes it ---
  full.struct_size = struct_size;
  std::vector<unsigned char> caller_struct(std::max(struct_size, sizeof(size_t)), 0);
  std::memcpy(caller_struct.data(), &full, std::min(caller_struct.size(), sizeof full));
  if (nonzero_tail) caller_struct[sizeof(simdattn_options) + 3] = 1;
  const Snapshot inputs({&q, &k, &v, &mask});
  const Snapshot outputs({&out, &weights, &lse});
  const simdattn_status status = simdattn_attention(&q.c, &k.c, &v.c, &out.c,
                                                    reinterpret_cast<const simdattn_options*>(caller_struct.data()));
  check_status("simdattn_attention", status, must_reject || nonzero_tail, nonzero_tail);
  inputs.expect_unchanged("simdattn_attention changed an input");
  if (status != SIMDATTN_OK) outputs.expect_unchanged("simdattn_attention failed and wrote an output");
  if (must_reject || nonzero_tail) return 0;

  // --- the oracle on the same views and options ---
  AttentionOptions options;
  if (effective.scale_is_explicit != 0 || effective.scale != 0.0f) options.scale = effective.scale;
  options.causal = static_cast<Causal>(effective.causal);
  options.window_left = effective.window_left;
  options.window_right = effective.window_right;
  if (effective.mask != nullptr) options.mask = mask.view();
  options.kv_lengths = effective.kv_lengths;
  options.softcap = effective.softcap;
  options.alibi_slopes = effective.alibi_slopes;
  options.sinks = effective.sinks;
  options.sink_tokens = effective.sink_tokens;
  std::vector<float> expected_out = out.storage, expected_weights = weights.storage, expected_lse = lse.storage;
  if (effective.weights != nullptr) options.weights = weights.view_over(expected_weights);
  if (effective.lse != nullptr) options.lse = lse.view_over(expected_lse);
  options.algorithm = static_cast<Algorithm>(effective.algorithm);
  const auto oracle_error = oracle_error_of([&] {
    reference::attention(q.view(), k.view(), v.view(), out.view_over(expected_out), options);
  });
  check_verdicts("simdattn_attention", status, oracle_error);
  if (status != SIMDATTN_OK) return 0;
  // Outputs the library was not given (past an older caller's struct) stay untouched.
  if (effective.weights == nullptr && weights.storage != expected_weights) broken("unpassed weights written");
  if (effective.lse == nullptr && lse.storage != expected_lse) broken("unpassed lse written");

  // The bounds of test_support.hpp: logits up to scale · max Σ|q·k|, capped by the soft-cap, plus
  // the ALiBi distance (at most Sq + Sk) and the largest finite mask value.
  const int64_t head_dim = q.c.shape[3], keys = k.c.shape[2];
  const double scale = effective.scale_is_explicit != 0 || effective.scale != 0.0f ? std::fabs(effective.scale)
                                               : (head_dim > 0 ? 1.0 / std::sqrt(double(float(head_dim))) : 1.0);
  double logits = scale * dot_magnitude(q, k);
  if (effective.softcap > 0.0f) logits = std::min(logits, double(effective.softcap));
  if (effective.alibi_slopes != nullptr) {
    double steepest = 0.0;
    for (float slope : slopes) steepest = std::max(steepest, std::fabs(double(slope)));
    logits += steepest * double(q.c.shape[2] + keys);
  }
  if (effective.mask != nullptr) logits += max_finite_magnitude(mask);
  // A sink is one more logit (and term of the sum) in every row.
  const int64_t terms = effective.sinks != nullptr ? keys + 1 : keys;
  if (effective.sinks != nullptr) logits = std::max(logits, sink_magnitude(sinks));
  expect_close("attention out", out, expected_out, attention_tolerance(logits, head_dim, terms, max_finite_magnitude(v)));
  if (effective.weights != nullptr) {
    expect_close("attention weights", weights, expected_weights, attention_tolerance(logits, head_dim, terms, 1.0));
  }
  if (effective.lse != nullptr) {
    expect_close("attention lse", lse, expected_lse, lse_tolerance(logits, head_dim, terms));
  }
  return 0;
}

// ------------------------------------------------------------------------------------------------
// The three stages
// ------------------------------------------------------------------------------------------------

int fuzz_qk_scores(ByteReader& in, const Sizes& s) {
  const float scale = decode_scale(in);
  const int32_t threads = in.choice(6) - 1;
  const bool alias_q = in.choice(16) == 15;
  FuzzTensor q, k, scores;
  if (!decode_tensor(in, {s.batch, s.q_heads, s.sq, s.head_dim}, Role::input, Values::specials, q) ||
      !decode_tensor(in, {s.batch, s.kv_heads, s.sk, s.head_dim}, Role::input, Values::specials, k) ||
      !decode_tensor(in, {s.batch, s.q_heads, s.sq, s.sk}, Role::output, Values::finite, scores)) {
    return 0;
  }
  const bool aliased = alias_q && alias(scores, q);
  const bool must_reject = q.must_reject || k.must_reject || scores.must_reject || aliased || threads < 0 ||
                           !std::isfinite(scale);
  const Snapshot inputs({&q, &k}), outputs({&scores});
  const simdattn_status status = simdattn_qk_scores(&q.c, &k.c, &scores.c, scale, threads);
  check_status("simdattn_qk_scores", status, must_reject, false);
  inputs.expect_unchanged("simdattn_qk_scores changed an input");
  if (status != SIMDATTN_OK) outputs.expect_unchanged("simdattn_qk_scores failed and wrote its output");
  if (must_reject) return 0;
  std::vector<float> expected = scores.storage;
  const auto oracle_error = oracle_error_of(
      [&] { reference::qk_scores(q.view(), k.view(), scores.view_over(expected), scale); });
  check_verdicts("simdattn_qk_scores", status, oracle_error);
  if (status != SIMDATTN_OK) return 0;
  // score_tolerance of test_support.hpp: a dot product of D terms, one scaling, one rounding.
  const double logits = std::fabs(double(scale)) * dot_magnitude(q, k);
  expect_close("qk_scores", scores, expected, (gamma(q.c.shape[3] + 1) + kUnitRoundoff) * logits);
  return 0;
}

int fuzz_softmax_rows(ByteReader& in, const Sizes& s) {
  const int32_t threads = in.choice(6) - 1;
  FuzzTensor scores;
  if (!decode_tensor(in, {s.batch, s.q_heads, s.sq, s.sk}, Role::in_place, Values::scores, scores)) return 0;
  const bool must_reject = scores.must_reject || threads < 0;
  std::vector<float> expected = scores.storage;  // the oracle works in place on its own copy
  const Snapshot before({&scores});
  const simdattn_status status = simdattn_softmax_rows(&scores.c, threads);
  check_status("simdattn_softmax_rows", status, must_reject, false);
  if (status != SIMDATTN_OK) before.expect_unchanged("simdattn_softmax_rows failed and changed its scores");
  // An empty view leaves nothing to compare, and the oracle sizes its row buffer by shape[3]
  // before it looks at the others (a huge Sk next to a zero size throws std::length_error there;
  // reported to the oracle's owner).
  if (must_reject || scores.element_count() == 0) return 0;
  const auto oracle_error = oracle_error_of([&] { reference::softmax_rows(scores.view_over(expected)); });
  check_verdicts("simdattn_softmax_rows", status, oracle_error);
  if (status != SIMDATTN_OK) return 0;
  // test_stages.cpp's bound: exp (2 ULP) of the shifted score, a sum of Sk terms, one division;
  // one more u for the rounding of the shift, whose effect p·|x - m|·u never exceeds u.
  expect_close("softmax_rows", scores, expected, 5.0 * kUnitRoundoff + gamma(scores.c.shape[3] + 1));
  return 0;
}

int fuzz_weights_v(ByteReader& in, const Sizes& s) {
  const int32_t threads = in.choice(6) - 1;
  const int aliasing = in.choice(16);
  FuzzTensor weights, v, out;
  if (!decode_tensor(in, {s.batch, s.q_heads, s.sq, s.sk}, Role::input, Values::specials, weights) ||
      !decode_tensor(in, {s.batch, s.kv_heads, s.sk, s.value_dim}, Role::input, Values::specials, v) ||
      !decode_tensor(in, {s.batch, s.q_heads, s.sq, s.value_dim}, Role::output, Values::finite, out)) {
    return 0;
  }
  bool aliased = false;
  if (aliasing == 15) aliased = alias(out, weights);
  if (aliasing == 14) aliased = alias(out, v);
  const bool must_reject = weights.must_reject || v.must_reject || out.must_reject || aliased || threads < 0;
  const Snapshot inputs({&weights, &v}), outputs({&out});
  const simdattn_status status = simdattn_weights_v(&weights.c, &v.c, &out.c, threads);
  check_status("simdattn_weights_v", status, must_reject, false);
  inputs.expect_unchanged("simdattn_weights_v changed an input");
  if (status != SIMDATTN_OK) outputs.expect_unchanged("simdattn_weights_v failed and wrote its output");
  if (must_reject) return 0;
  std::vector<float> expected = out.storage;
  const auto oracle_error =
      oracle_error_of([&] { reference::weights_v(weights.view(), v.view(), out.view_over(expected)); });
  check_verdicts("simdattn_weights_v", status, oracle_error);
  if (status != SIMDATTN_OK) return 0;
  // gamma(Sk) · Σ_j |w_j v_j| <= gamma(Sk) · (largest row Σ_j |w_j|) · max |v|, plus a rounding.
  const ConstTensorView w = weights.view();
  double row_sum = 0.0;
  for (int64_t b = 0; b < w.shape[0]; ++b)
    for (int64_t h = 0; h < w.shape[1]; ++h)
      for (int64_t i = 0; i < w.shape[2]; ++i) {
        double sum = 0.0;
        for (int64_t j = 0; j < w.shape[3]; ++j) {
          if (std::isfinite(w.row(b, h, i)[j])) sum += std::fabs(double(w.row(b, h, i)[j]));
        }
        row_sum = std::max(row_sum, sum);
      }
  const double magnitude = row_sum * max_finite_magnitude(v);
  expect_close("weights_v", out, expected, (gamma(w.shape[3]) + kUnitRoundoff) * magnitude);
  return 0;
}

}  // namespace
}  // namespace simdattn::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace simdattn::fuzz;
  ByteReader in(data, size);
  const int function = in.choice(6);
  static const std::vector<simdattn::detail::Isa> isas = simdattn::detail::supported_isas();
  simdattn::detail::ScopedIsaOverride use(isas[in.byte() % isas.size()]);
  const Sizes sizes = decode_sizes(in);
  switch (function) {
    case 0: return fuzz_attention(in, sizes);
    case 1: return fuzz_qk_scores(in, sizes);
    case 2: return fuzz_softmax_rows(in, sizes);
    case 3: return fuzz_weights_v(in, sizes);
    case 4: return fuzz_attention_varlen(in, sizes);
    default: return fuzz_attention_paged(in, sizes);
  }
}

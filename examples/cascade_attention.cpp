// Cascade attention: many sequences decoding over one shared prefix (a system prompt, a document
// every request asks about) plus each its own suffix. Attending to the prefix once for all the
// sequences' queries reads it once, instead of once per sequence; merge_attention_states then
// combines that result with each sequence's suffix attention into exactly what attention over
// prefix + suffix gives.
//
//   prefix call: the sequences' query tokens are the rows of one batch ([1, Hq, sequences, D]),
//                every row sees every prefix key;
//   suffix call: one batch entry per sequence, its own keys (kv_lengths: suffixes differ);
//   merge:       out = (w_prefix · out_prefix + w_suffix · out_suffix) / (w_prefix + w_suffix),
//                w = exp(lse - max lse), per row.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "simdattn/simdattn.hpp"

int main() {
  using namespace simdattn;
  const int64_t sequences = 16, Hq = 16, Hkv = 4, D = 128, prefix = 8192, longest_suffix = 300;
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const auto filled = [&](int64_t count) {
    std::vector<float> values(static_cast<size_t>(count));
    for (float& x : values) x = uniform(random);
    return values;
  };
  // One query token per sequence, stored [sequence, Hq, 1, D] as a decode step has it.
  const std::vector<float> q = filled(sequences * Hq * D);
  const std::vector<float> prefix_k = filled(Hkv * prefix * D), prefix_v = filled(Hkv * prefix * D);
  const std::vector<float> suffix_k = filled(sequences * Hkv * longest_suffix * D);
  const std::vector<float> suffix_v = filled(sequences * Hkv * longest_suffix * D);
  std::vector<int64_t> suffix_lengths(sequences);
  for (int64_t s = 0; s < sequences; ++s) suffix_lengths[s] = 20 + (s * 37) % (longest_suffix - 20);

  // The prefix once: the sequences' tokens as the query rows of one batch entry.
  const ConstTensorView q_as_rows(q.data(), {1, Hq, sequences, D}, {0, D, Hq * D, 1});
  std::vector<float> prefix_out(sequences * Hq * D), prefix_lse(sequences * Hq);
  std::vector<float> suffix_out(sequences * Hq * D), suffix_lse(sequences * Hq), cascade(sequences * Hq * D);
  const auto run_cascade = [&] {
    AttentionOptions on_prefix;
    on_prefix.lse = TensorView(prefix_lse.data(), {1, Hq, sequences, 1}, {0, 1, Hq, 1});
    attention(q_as_rows, bhsd_view(prefix_k.data(), 1, Hkv, prefix, D),
              bhsd_view(prefix_v.data(), 1, Hkv, prefix, D),
              TensorView(prefix_out.data(), {1, Hq, sequences, D}, {0, D, Hq * D, 1}), on_prefix);
    AttentionOptions on_suffix;
    on_suffix.kv_lengths = suffix_lengths.data();
    on_suffix.lse = bhsd_view(suffix_lse.data(), sequences, Hq, 1, 1);
    attention(bhsd_view(q.data(), sequences, Hq, 1, D),
              bhsd_view(suffix_k.data(), sequences, Hkv, longest_suffix, D),
              bhsd_view(suffix_v.data(), sequences, Hkv, longest_suffix, D),
              bhsd_view(suffix_out.data(), sequences, Hq, 1, D), on_suffix);
    // Both results seen as [sequence, Hq, 1, D] (the prefix's rows are its sequences).
    const AnyConstTensorView outs[] = {bhsd_view<const float>(prefix_out.data(), sequences, Hq, 1, D),
                                       bhsd_view<const float>(suffix_out.data(), sequences, Hq, 1, D)};
    const ConstTensorView lses[] = {bhsd_view<const float>(prefix_lse.data(), sequences, Hq, 1, 1),
                                    bhsd_view<const float>(suffix_lse.data(), sequences, Hq, 1, 1)};
    merge_attention_states(outs, lses, 2, bhsd_view(cascade.data(), sequences, Hq, 1, D));
  };

  // Without the cascade: each sequence's keys copied after the prefix, one call per sequence.
  std::vector<float> direct(sequences * Hq * D);
  std::vector<float> whole_k(Hkv * (prefix + longest_suffix) * D), whole_v(whole_k.size());
  const auto run_direct = [&] {
    for (int64_t s = 0; s < sequences; ++s) {
      const int64_t keys = prefix + suffix_lengths[s];
      for (int64_t h = 0; h < Hkv; ++h) {
        std::copy_n(prefix_k.data() + h * prefix * D, prefix * D, whole_k.data() + h * keys * D);
        std::copy_n(prefix_v.data() + h * prefix * D, prefix * D, whole_v.data() + h * keys * D);
        const int64_t from = (s * Hkv + h) * longest_suffix * D;
        std::copy_n(suffix_k.data() + from, suffix_lengths[s] * D, whole_k.data() + (h * keys + prefix) * D);
        std::copy_n(suffix_v.data() + from, suffix_lengths[s] * D, whole_v.data() + (h * keys + prefix) * D);
      }
      attention(bhsd_view(q.data() + s * Hq * D, 1, Hq, 1, D), bhsd_view(whole_k.data(), 1, Hkv, keys, D),
                bhsd_view(whole_v.data(), 1, Hkv, keys, D), bhsd_view(direct.data() + s * Hq * D, 1, Hq, 1, D));
    }
  };

  const auto fastest_ms = [](auto&& run) {
    double best = 1e30;
    for (int repeat = 0; repeat < 5; ++repeat) {
      const auto start = std::chrono::steady_clock::now();
      run();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
  };
  const double cascade_ms = fastest_ms(run_cascade), direct_ms = fastest_ms(run_direct);
  double largest_difference = 0.0;
  for (size_t i = 0; i < cascade.size(); ++i) {
    largest_difference = std::max(largest_difference, double(std::fabs(cascade[i] - direct[i])));
  }
  std::printf("%lld sequences, %lld query heads / %lld kv heads, head_dim %lld: a shared prefix of %lld keys "
              "and suffixes of 20 to %lld keys\n",
              (long long)sequences, (long long)Hq, (long long)Hkv, (long long)D, (long long)prefix,
              (long long)longest_suffix);
  std::printf("cascade (prefix once + suffixes + merge): %.2f ms\n", cascade_ms);
  std::printf("direct (prefix copied into each sequence's cache): %.2f ms, of which copying is part\n", direct_ms);
  std::printf("max |cascade - direct| = %.2e\n", largest_difference);
  const bool agree = largest_difference < 1e-5;
  std::printf("%s\n", agree ? "cascade attention agrees with attention over prefix + suffix"
                            : "MISMATCH between cascade and direct attention");
  return agree ? 0 : 1;
}

// AttentionOptions::shard (KeyShard): keys and queries cut into shards, each computed with its
// sequence positions and merged with merge_attention_states, equal attention over the whole
// sequence (within the bound of test_support.hpp plus the merge's), for every positional option
// (causal both ways, window, sink tokens, ALiBi, softcap, kv_lengths, learned sinks) and GQA, on
// every ISA; the oracle's shard agrees with the fast path's; the new bounds are validated.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "simdattn/merge.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/serving.hpp"
#include "simdattn/simdattn.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

using detail::Isa;

// Rows [first, first + count) of a [B, H, S, D] view.
template <class View>
View seq_range(View view, int64_t first, int64_t count) {
  if (count > 0) view.data = view.row(0, 0, first);
  view.shape[2] = count;
  return view;
}

struct ShardCase {
  std::string name;
  Causal causal = Causal::none;
  int64_t window_left = -1, window_right = -1, sink_tokens = 0;
  bool alibi = false, sinks = false, kv_lengths = false;
  float softcap = 0.0f;
};

std::vector<ShardCase> shard_cases() {
  std::vector<ShardCase> cases;
  cases.push_back({"plain"});
  cases.push_back({"causal_bottom_right", Causal::bottom_right});
  cases.push_back({"causal_top_left", Causal::top_left});
  ShardCase window{"window_sink_tokens", Causal::bottom_right, 9, -1, 3};
  cases.push_back(window);
  ShardCase both{"window_both_sides_alibi_softcap", Causal::none, 7, 4};
  both.alibi = true, both.softcap = 5.0f;
  cases.push_back(both);
  ShardCase ragged{"kv_lengths_sinks_alibi", Causal::bottom_right};
  ragged.kv_lengths = true, ragged.sinks = true, ragged.alibi = true;
  cases.push_back(ragged);
  ShardCase top{"top_left_kv_lengths_window", Causal::top_left, 11};
  top.kv_lengths = true;
  cases.push_back(top);
  return cases;
}

class KeyShards : public ::testing::TestWithParam<Isa> {};

TEST_P(KeyShards, ShardsMergeIntoTheWholeSequence) {
  detail::ScopedIsaOverride isa(GetParam());
  const int64_t B = 2, Hq = 4, Hkv = 2, Sq = 13, Sk = 61, D = 16, Dv = 8;
  Tensor q(B, Hq, Sq, D), k(B, Hkv, Sk, D, Layout::bshd), v(B, Hkv, Sk, Dv, Layout::padded);
  q.fill_uniform(11);
  k.fill_uniform(12);
  v.fill_uniform(13);
  const std::vector<float> slopes = {0.5f, 0.25f, 0.125f, 0.0625f};
  const std::vector<float> sinks = {0.3f, -1.0f, 2.0f, -std::numeric_limits<float>::infinity()};
  const std::vector<int64_t> lengths = {40, Sk};
  const double scale = 1.0 / std::sqrt(double(D));
  // ALiBi's largest bias: slope 0.5 times the longest distance.
  const double logits = logit_magnitude(q, k, scale) + 0.5 * double(Sq + Sk) + 2.0;
  const double values = max_magnitude(v);

  // Key cuts (an empty shard among them) and query cuts.
  const std::vector<std::vector<int64_t>> key_cuts = {{0, 61}, {0, 30, 61}, {0, 5, 5, 44, 61}};
  const std::vector<std::vector<int64_t>> query_cuts = {{0, 13}, {0, 6, 13}};
  for (const ShardCase& c : shard_cases()) {
    AttentionOptions whole;
    whole.causal = c.causal, whole.window_left = c.window_left, whole.window_right = c.window_right;
    whole.sink_tokens = c.sink_tokens, whole.softcap = c.softcap;
    if (c.alibi) whole.alibi_slopes = slopes.data();
    if (c.sinks) whole.sinks = sinks.data();
    if (c.kv_lengths) whole.kv_lengths = lengths.data();
    Tensor expected(B, Hq, Sq, Dv), expected_lse(B, Hq, Sq, 1);
    whole.lse = expected_lse.view;
    reference::attention(q.in(), k.in(), v.in(), expected.view, whole);

    for (const auto& key_cut : key_cuts) {
      for (const auto& query_cut : query_cuts) {
        const int64_t parts = int64_t(key_cut.size()) - 1;
        Tensor merged(B, Hq, Sq, Dv), merged_lse(B, Hq, Sq, 1);
        for (size_t qi = 0; qi + 1 < query_cut.size(); ++qi) {
          const int64_t q0 = query_cut[qi], rows = query_cut[qi + 1] - q0;
          std::vector<Tensor> outs, lses;
          std::vector<AnyConstTensorView> out_views;
          std::vector<ConstTensorView> lse_views;
          outs.reserve(size_t(parts)), lses.reserve(size_t(parts));  // the views point into them
          for (int64_t p = 0; p < parts; ++p) {
            const int64_t first = key_cut[p], count = key_cut[p + 1] - first;
            outs.emplace_back(B, Hq, rows, Dv);
            lses.emplace_back(B, Hq, rows, 1);
            AttentionOptions part = whole;
            part.lse = lses.back().view;
            // The sinks enter once: the first shard carries them.
            if (p != 0) part.sinks = nullptr;
            const int64_t shift = c.causal == Causal::top_left ? q0 : q0 + rows - Sq;
            part.shard = KeyShard{first, shift};
            // The sequence's lengths: without kv_lengths a shard before the last must be told.
            const std::vector<int64_t> sequence(B, Sk);
            if (!c.kv_lengths) part.kv_lengths = sequence.data();
            attention(seq_range(q.in(), q0, rows), seq_range(k.in(), first, count),
                      seq_range(v.in(), first, count), outs.back().view, part);
            // The oracle computes the same shard within the single-call bound.
            Tensor oracle(B, Hq, rows, Dv), oracle_lse(B, Hq, rows, 1);
            part.lse = oracle_lse.view;
            reference::attention(seq_range(q.in(), q0, rows), seq_range(k.in(), first, count),
                                 seq_range(v.in(), first, count), oracle.view, part);
            const std::string shard_context = c.name + ", shard " + std::to_string(p) + " of " +
                                              std::to_string(parts) + ", queries from " + std::to_string(q0);
            EXPECT_TRUE(all_close(oracle, outs.back(), attention_tolerance(logits, D, Sk, values), shard_context));
            out_views.push_back(outs.back().in());
            lse_views.push_back(lses.back().in());
          }
          merge_attention_states(out_views.data(), lse_views.data(), parts, seq_range(merged.view, q0, rows),
                                 seq_range(merged_lse.view, q0, rows));
        }
        // As test_merge_states: each part within attention's bound, the merge weights off by
        // twice two lse errors plus the exp, the sum and the division.
        const double lse_error = lse_tolerance(logits, D, Sk);
        const double tolerance =
            attention_tolerance(logits, D, Sk, values) + values * (4.0 * lse_error + 2.0 * gamma(parts + 3));
        const std::string context = std::string(detail::isa_name(GetParam())) + ", " + c.name + ", " +
                                    std::to_string(parts) + " key shards, " +
                                    std::to_string(query_cut.size() - 1) + " query shards";
        EXPECT_TRUE(all_close(expected, merged, tolerance, context));
        EXPECT_TRUE(all_close(expected_lse, merged_lse, 2.0 * lse_error + gamma(parts + 3) * (1.0 + logits), context));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, KeyShards, ::testing::ValuesIn(host_isas()), isa_test_name);

// Calls with no shard keep their rules; a shard's bounds are checked and named.
TEST(KeyShardValidation, BoundsAreNamed) {
  Tensor q(1, 2, 3, 8), k(1, 2, 5, 8), v(1, 2, 5, 8), out(1, 2, 3, 8);
  q.fill(0.5f), k.fill(0.25f), v.fill(1.0f), out.fill(7.0f);
  auto rejected = [&](const AttentionOptions& options, const std::string& needle) {
    try {
      attention(q.in(), k.in(), v.in(), out.view, options);
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
      EXPECT_EQ(out.at(0, 0, 0, 0), 7.0f) << "written before the throw";
      return;
    }
    ADD_FAILURE() << "accepted, expected: " << needle;
  };
  const int64_t beyond[1] = {9};
  AttentionOptions options;
  options.kv_lengths = beyond;
  rejected(options, "options.kv_lengths[0] must be in [0, 5]");
  options.shard = KeyShard{4, 0};
  EXPECT_NO_THROW(attention(q.in(), k.in(), v.in(), out.view, options));  // keys 4..8 of 9
  out.fill(7.0f);
  options.shard = KeyShard{-1, 0};
  rejected(options, "options.shard->key_offset must be in [0, 1099511627776], got -1");
  options.shard = KeyShard{0, int64_t{1} << 41};
  rejected(options, "options.shard->diagonal_shift must be in [-1099511627776, 1099511627776]");
  const int64_t huge[1] = {int64_t{1} << 41};
  options.shard = KeyShard{};
  options.kv_lengths = huge;
  rejected(options, "options.kv_lengths[0] must be in [0, 1099511627776]");

  // The packed entry points hold whole sequences.
  const int32_t cu_q[2] = {0, 3}, cu_k[2] = {0, 5};
  AttentionOptions packed;
  packed.shard = KeyShard{};
  EXPECT_THROW(attention_varlen(packed_view<const float>(q.storage.data(), 3, 2, 8),
                                packed_view<const float>(k.storage.data(), 5, 2, 8),
                                packed_view<const float>(v.storage.data(), 5, 2, 8),
                                packed_view(out.storage.data(), 3, 2, 8), cu_q, cu_k, 1, packed),
               std::invalid_argument);
}

}  // namespace
}  // namespace simdattn::testing

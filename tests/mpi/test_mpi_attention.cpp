// simdattn::mpi under `mpirun -np N`: context_parallel_attention and ring_attention against the
// single-process oracle over the same (seeded, identical on every rank) inputs, within the bound of
// test_support.hpp plus the merges'; every rank's bits identical for context parallelism; causal
// and not, GQA, uneven shards, an empty shard, a rank whose shard is entirely masked, every
// positional option, a 16-bit cache; and wrong calls rejected on every rank with nothing written.
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "simdattn/mpi.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

int rank_of() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}
int ranks_of() {
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  return ranks;
}

// Rows [first, first + count) of a [B, H, S, D] view.
template <class View>
View seq_range(View view, int64_t first, int64_t count) {
  if (count > 0) view.data = view.row(0, 0, first);
  view.shape[2] = count;
  return view;
}

// How a sequence of `total` rows is cut among the ranks: [cuts[r], cuts[r + 1]) is rank r's.
enum class Split { even, uneven, empty_second, front_heavy };
std::vector<int64_t> cuts_of(int64_t total, int ranks, Split split) {
  std::vector<int64_t> weights;
  for (int r = 0; r < ranks; ++r) {
    switch (split) {
      case Split::even: weights.push_back(1); break;
      case Split::uneven: weights.push_back(1 + (r * 5) % 3 + r); break;
      case Split::empty_second: weights.push_back(r == 1 ? 0 : 2 + r); break;
      case Split::front_heavy: weights.push_back(r == 0 ? 3 : 1); break;
    }
  }
  int64_t sum = 0;
  for (int64_t w : weights) sum += w;
  std::vector<int64_t> cuts = {0};
  int64_t acc = 0;
  for (int r = 0; r < ranks; ++r) {
    acc += weights[static_cast<size_t>(r)];
    cuts.push_back(r + 1 == ranks ? total : total * acc / sum);
  }
  return cuts;
}

struct Problem {
  std::string name;
  int64_t B = 2, Hq = 4, Hkv = 2, Sq = 1, Sk = 97, D = 16, Dv = 8;
  Split split = Split::even;
  Causal causal = Causal::none;
  int64_t window_left = -1, window_right = -1, sink_tokens = 0;
  bool alibi = false, sinks = false, kv_lengths = false, bf16_cache = false;
  float softcap = 0.0f;
};

// The inputs, the options and the oracle's answer for one problem: the same on every rank.
struct Inputs {
  Tensor q, k, v;
  std::vector<bf16> k16, v16;
  std::vector<float> slopes = {0.5f, 0.25f, 0.125f, 0.0625f};
  std::vector<float> sinks = {0.3f, -1.0f, 2.0f, -std::numeric_limits<float>::infinity()};
  std::vector<int64_t> lengths;
  AttentionOptions options;
  Tensor expected;
  double tolerance = 0.0;

  explicit Inputs(const Problem& p)
      : q(p.B, p.Hq, p.Sq, p.D), k(p.B, p.Hkv, p.Sk, p.D), v(p.B, p.Hkv, p.Sk, p.Dv),
        expected(p.B, p.Hq, p.Sq, p.Dv) {
    q.fill_uniform(21);
    k.fill_uniform(22);
    v.fill_uniform(23);
    options.causal = p.causal, options.window_left = p.window_left, options.window_right = p.window_right;
    options.sink_tokens = p.sink_tokens, options.softcap = p.softcap;
    if (p.alibi) options.alibi_slopes = slopes.data();
    if (p.sinks) options.sinks = sinks.data();
    if (p.kv_lengths) {
      lengths = {p.Sk - p.Sk / 3, p.Sk};
      options.kv_lengths = lengths.data();
    }
    if (p.bf16_cache) {
      // bf16 values: the upper halves of the floats (the oracle reads the same bits).
      auto narrow = [](const Tensor& t, std::vector<bf16>& to) {
        for (float x : t.storage) {
          uint32_t bits;
          std::memcpy(&bits, &x, 4);
          to.push_back(bf16{static_cast<uint16_t>(bits >> 16)});
        }
      };
      narrow(k, k16), narrow(v, v16);
    }
    reference::attention(q.in(), key_view(), value_view(), expected.view, options);
    const double scale = 1.0 / std::sqrt(double(p.D));
    const double logits = logit_magnitude(q, k, scale) + 0.5 * double(p.Sq + p.Sk) + 3.0;
    // attention()'s bound, and the merge's: weights off by twice two lse errors, the exp, the
    // sum and the division, over up to N + 1 states (test_merge_states.cpp derives it).
    const double lse_error = lse_tolerance(logits, p.D, p.Sk);
    tolerance = attention_tolerance(logits, p.D, p.Sk, max_magnitude(v)) +
                max_magnitude(v) * (4.0 * lse_error + 2.0 * gamma(ranks_of() + 4)) * double(ranks_of());
  }
  AnyConstTensorView key_view() const {
    if (k16.empty()) return k.in();
    return AnyConstTensorView(k16.data(), k.view.shape, k.view.strides);
  }
  AnyConstTensorView value_view() const {
    if (v16.empty()) return v.in();
    return AnyConstTensorView(v16.data(), v.view.shape, v.view.strides);
  }
};

std::string context_of(const Problem& p) {
  return p.name + " on " + std::to_string(ranks_of()) + " ranks, rank " + std::to_string(rank_of());
}

// Every rank's bits equal rank 0's.
bool same_bits_everywhere(const Tensor& t) {
  std::vector<float> mine = t.storage, root = t.storage;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  int same = std::memcmp(mine.data(), root.data(), mine.size() * sizeof(float)) == 0, all = 0;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

std::vector<Problem> decode_problems() {
  std::vector<Problem> problems;
  problems.push_back({"decode_plain_gqa"});
  Problem causal{"decode_causal_uneven_sq4"};
  causal.Sq = 4, causal.causal = Causal::bottom_right, causal.split = Split::uneven;
  problems.push_back(causal);
  Problem empty{"decode_empty_shard_sinks_alibi"};
  empty.split = Split::empty_second, empty.sinks = true, empty.alibi = true, empty.causal = Causal::bottom_right;
  problems.push_back(empty);
  // The window sees only the last 12 keys: the first rank's shard (a quarter or more of 97) is
  // entirely masked.
  Problem masked{"decode_masked_shard_window"};
  masked.causal = Causal::bottom_right, masked.window_left = 11, masked.split = Split::front_heavy;
  problems.push_back(masked);
  Problem tokens{"decode_sink_tokens_kv_lengths_softcap_bf16"};
  tokens.causal = Causal::bottom_right, tokens.window_left = 20, tokens.sink_tokens = 3;
  tokens.kv_lengths = true, tokens.softcap = 4.0f, tokens.bf16_cache = true, tokens.split = Split::uneven;
  problems.push_back(tokens);
  Problem top{"decode_top_left_sq3_window_right"};
  top.Sq = 3, top.causal = Causal::top_left, top.window_right = 30, top.split = Split::uneven;
  problems.push_back(top);
  return problems;
}

TEST(ContextParallel, MatchesOneProcessWithTheSameBitsOnEveryRank) {
  const int rank = rank_of(), ranks = ranks_of();
  for (const Problem& p : decode_problems()) {
    Inputs in(p);
    const std::vector<int64_t> cuts = cuts_of(p.Sk, ranks, p.split);
    const int64_t first = cuts[rank], count = cuts[rank + 1] - first;
    Tensor out(p.B, p.Hq, p.Sq, p.Dv), lse(p.B, p.Hq, p.Sq, 1), expected_lse(p.B, p.Hq, p.Sq, 1);
    AttentionOptions options = in.options;
    options.lse = lse.view;
    options.num_threads = 1;
    mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.key_view(), first, count),
                                    seq_range(in.value_view(), first, count), first, out.view, options);
    EXPECT_TRUE(all_close(in.expected, out, in.tolerance, context_of(p)));
    AttentionOptions lse_options = in.options;
    lse_options.lse = expected_lse.view;
    Tensor again(p.B, p.Hq, p.Sq, p.Dv);
    reference::attention(in.q.in(), in.key_view(), in.value_view(), again.view, lse_options);
    EXPECT_TRUE(all_close(expected_lse, lse, 1e-4 * (1.0 + p.Sq + p.Sk), context_of(p) + ", lse"));
    EXPECT_TRUE(same_bits_everywhere(out)) << context_of(p);
    EXPECT_TRUE(same_bits_everywhere(lse)) << context_of(p);
    // Deterministic: a second call gives the same bits.
    Tensor second(p.B, p.Hq, p.Sq, p.Dv);
    options.lse.reset();
    mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.key_view(), first, count),
                                    seq_range(in.value_view(), first, count), first, second.view, options);
    EXPECT_TRUE(bitwise_equal(out, second)) << context_of(p);
  }
}

std::vector<Problem> prefill_problems() {
  std::vector<Problem> problems;
  Problem causal{"ring_causal_uneven_gqa"};
  causal.Sq = 50, causal.Sk = 50, causal.causal = Causal::bottom_right, causal.split = Split::uneven;
  problems.push_back(causal);
  Problem plain{"ring_plain_empty_shard_alibi_softcap_sinks"};
  plain.Sq = 45, plain.Sk = 45, plain.split = Split::empty_second, plain.alibi = true;
  plain.softcap = 6.0f, plain.sinks = true;
  problems.push_back(plain);
  Problem window{"ring_window_sink_tokens_kv_lengths"};
  window.Sq = 60, window.Sk = 60, window.causal = Causal::bottom_right, window.window_left = 7;
  window.sink_tokens = 2, window.kv_lengths = true, window.split = Split::front_heavy;
  problems.push_back(window);
  Problem top{"ring_top_left_more_keys_bf16"};
  top.Sq = 31, top.Sk = 70, top.causal = Causal::top_left, top.bf16_cache = true, top.split = Split::uneven;
  problems.push_back(top);
  // Enough rows per rank (> 64) that ring_attention cuts its queries into chunks between which it
  // polls the transfers.
  Problem chunked{"ring_chunked_queries_causal_window_sinks"};
  chunked.Sq = chunked.Sk = 300, chunked.causal = Causal::bottom_right, chunked.window_left = 100;
  chunked.sinks = true, chunked.split = Split::uneven;
  problems.push_back(chunked);
  return problems;
}

// Rank r's rows under the layout: contiguous [cuts[r], cuts[r + 1]), or zigzag's two chunks.
Tensor gather_rows(const Tensor& whole, const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  int64_t rows = 0;
  for (const auto& range : ranges) rows += range.second;
  const auto& s = whole.view.shape;
  Tensor part(s[0], s[1], rows, s[3]);
  int64_t at = 0;
  for (const auto& range : ranges) {
    for (int64_t i = 0; i < range.second; ++i, ++at)
      for (int64_t b = 0; b < s[0]; ++b)
        for (int64_t h = 0; h < s[1]; ++h)
          for (int64_t d = 0; d < s[3]; ++d) part.at(b, h, at, d) = whole.at(b, h, range.first + i, d);
  }
  return part;
}

void run_ring(const Problem& p, mpi::RingLayout layout) {
  const int rank = rank_of(), ranks = ranks_of();
  Inputs in(p);
  std::vector<std::pair<int64_t, int64_t>> query_ranges, key_ranges;
  if (layout == mpi::RingLayout::zigzag) {
    const int64_t chunk = p.Sq / (2 * ranks);
    query_ranges = {{rank * chunk, chunk}, {(2 * ranks - 1 - rank) * chunk, chunk}};
    key_ranges = query_ranges;
  } else {
    const std::vector<int64_t> q_cuts = cuts_of(p.Sq, ranks, p.split), k_cuts = cuts_of(p.Sk, ranks, p.split);
    query_ranges = {{q_cuts[rank], q_cuts[rank + 1] - q_cuts[rank]}};
    key_ranges = {{k_cuts[rank], k_cuts[rank + 1] - k_cuts[rank]}};
  }
  const Tensor q = gather_rows(in.q, query_ranges), k = gather_rows(in.k, key_ranges);
  const Tensor v = gather_rows(in.v, key_ranges), expected = gather_rows(in.expected, query_ranges);
  std::vector<bf16> k16, v16;
  for (const Tensor* t : {&k, &v}) {
    for (float x : t->storage) {
      uint32_t bits;
      std::memcpy(&bits, &x, 4);
      (t == &k ? k16 : v16).push_back(bf16{static_cast<uint16_t>(bits >> 16)});
    }
  }
  const AnyConstTensorView k_view = p.bf16_cache ? AnyConstTensorView(k16.data(), k.view.shape, k.view.strides) : AnyConstTensorView(k.in());
  const AnyConstTensorView v_view = p.bf16_cache ? AnyConstTensorView(v16.data(), v.view.shape, v.view.strides) : AnyConstTensorView(v.in());
  Tensor out(p.B, p.Hq, q.view.shape[2], p.Dv);
  AttentionOptions options = in.options;
  options.num_threads = 1;
  mpi::RingTimings timings;
  mpi::ring_attention(MPI_COMM_WORLD, q.in(), k_view, v_view, out.view, options, {layout, &timings});
  const std::string context = context_of(p) + (layout == mpi::RingLayout::zigzag ? ", zigzag" : ", contiguous");
  EXPECT_TRUE(all_close(expected, out, in.tolerance, context));
  EXPECT_GE(timings.total_seconds, timings.compute_seconds) << context;
}

TEST(RingAttention, MatchesOneProcess) {
  for (const Problem& p : prefill_problems()) run_ring(p, mpi::RingLayout::contiguous);
  // Zigzag: 2N equal chunks of a causal prefill.
  Problem zigzag{"ring_zigzag_causal"};
  zigzag.Sq = zigzag.Sk = 2 * ranks_of() * 7, zigzag.causal = Causal::bottom_right;
  run_ring(zigzag, mpi::RingLayout::zigzag);
  zigzag.name = "ring_zigzag_window_alibi_sinks", zigzag.window_left = 9, zigzag.alibi = true, zigzag.sinks = true;
  run_ring(zigzag, mpi::RingLayout::zigzag);
}

// A wrong call: every rank throws the same message, naming what is wrong, and writes nothing.
template <class Call>
void expect_rejected_everywhere(Call&& call, const Tensor& out, const std::string& needle) {
  std::string what;
  try {
    call();
  } catch (const std::invalid_argument& error) {
    what = error.what();
  }
  EXPECT_NE(what.find(needle), std::string::npos) << "rank " << rank_of() << " got: '" << what << "'";
  bool untouched = true;
  for (float x : out.storage) untouched = untouched && x == 7.0f;
  EXPECT_TRUE(untouched) << "rank " << rank_of() << " wrote before throwing";
}

TEST(CollectiveErrors, EveryRankThrowsAndNothingIsWritten) {
  const int rank = rank_of(), ranks = ranks_of();
  Problem p{"errors"};
  Inputs in(p);
  const std::vector<int64_t> cuts = cuts_of(p.Sk, ranks, Split::even);
  const int64_t first = cuts[rank], count = cuts[rank + 1] - first;
  Tensor out(p.B, p.Hq, p.Sq, p.Dv);
  out.fill(7.0f);
  // The last rank's offset does not follow the others' keys.
  const int64_t wrong_offset = rank == ranks - 1 ? first + 1 : first;
  expect_rejected_everywhere([&] {
    mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.k.in(), first, count),
                                    seq_range(in.v.in(), first, count), wrong_offset, out.view, in.options);
  }, out, "key_offset must be " + std::to_string(cuts[ranks - 1]));
  // The last rank asks for a different causal mode.
  AttentionOptions odd = in.options;
  if (rank == ranks - 1) odd.causal = Causal::top_left;
  if (ranks > 1) {
    expect_rejected_everywhere([&] {
      mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.k.in(), first, count),
                                      seq_range(in.v.in(), first, count), first, out.view, odd);
    }, out, "options.causal must be the same on every rank");
  }
  // The last rank's values are a different width (its out too).
  Tensor wide_v(p.B, p.Hkv, p.Sk, p.Dv + 1), wide_out(p.B, p.Hq, p.Sq, p.Dv + 1);
  wide_v.fill(1.0f), wide_out.fill(7.0f);
  const bool wide = rank == ranks - 1 && ranks > 1;
  if (ranks > 1) {
    expect_rejected_everywhere([&] {
      mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.k.in(), first, count),
                                      seq_range(wide ? wide_v.in() : in.v.in(), first, count), first,
                                      wide ? wide_out.view : out.view, in.options);
    }, wide ? wide_out : out, "v_shard.shape[3] (Dv) must be the same on every rank");
  }
  // kv_lengths past the keys of all shards.
  const std::vector<int64_t> too_long = {p.Sk + 1, p.Sk};
  AttentionOptions lengths = in.options;
  lengths.kv_lengths = too_long.data();
  expect_rejected_everywhere([&] {
    mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.k.in(), first, count),
                                    seq_range(in.v.in(), first, count), first, out.view, lengths);
  }, out, "options.kv_lengths[0] must be in [0, " + std::to_string(p.Sk) + "]");
  // One rank's own shard is wrong in a way only attention() sees: a NaN softcap is shared, so use
  // a k_scale on a float cache, which attention() rejects on that rank alone.
  std::vector<float> scales(static_cast<size_t>(p.B * p.Hkv * p.Sk), 1.0f);
  AttentionOptions scaled = in.options;
  if (rank == ranks - 1) scaled.k_scale = bhsd_view<const float>(scales.data(), p.B, p.Hkv, count, 1);
  expect_rejected_everywhere([&] {
    mpi::context_parallel_attention(MPI_COMM_WORLD, in.q.in(), seq_range(in.k.in(), first, count),
                                    seq_range(in.v.in(), first, count), first, out.view, scaled);
  }, out, "rank " + std::to_string(ranks - 1) + ": simdattn::attention: options.k_scale");
  // Ring: a zigzag layout over shards that are not 2 equal chunks.
  const int64_t odd_rows = ranks == 1 ? 3 : count;
  if (ranks > 1 || odd_rows % 2 == 1) {
    Tensor q_odd(p.B, p.Hq, odd_rows, p.D), out_odd(p.B, p.Hq, odd_rows, p.Dv);
    q_odd.fill(0.5f), out_odd.fill(7.0f);
    Tensor k_odd(p.B, p.Hkv, odd_rows, p.D), v_odd(p.B, p.Hkv, odd_rows, p.Dv);
    k_odd.fill(0.5f), v_odd.fill(0.5f);
    // cuts_of(97, N, even) differ in length for N > 1, and 3 is odd for N = 1.
    expect_rejected_everywhere([&] {
      mpi::ring_attention(MPI_COMM_WORLD, q_odd.in(), k_odd.in(), v_odd.in(), out_odd.view, in.options,
                          {mpi::RingLayout::zigzag, nullptr});
    }, out_odd, "rows (zigzag: 2 equal chunks on every rank)");
  }
}

}  // namespace
}  // namespace simdattn::testing

// gtest inside MPI: every rank runs every test; the exit status is the worst rank's, so that
// mpirun (and ctest) fail when any rank failed.
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int failed = RUN_ALL_TESTS() != 0, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any;
}

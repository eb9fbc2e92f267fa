// Non-finite and extreme inputs on every ISA the host runs, through the fused and the composed
// algorithm, on a prefill shape (several tiles, grouped heads) and on the decoding shape (Sq = 1,
// Sk = 2000: the fused path splits the keys into chunks and merges them). Each test states the
// pattern the semantics of attention.hpp imply (which rows are NaN, which are zeros) and also
// compares every element with the float64 oracle, so a wrong pattern and a wrong value both fail.
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInfinity = std::numeric_limits<float>::infinity();

struct Shape {
  const char* name;
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim;
};

// Prefill: 70 queries cross the 32- and 48-position tiles of a 2-head group; Sq != Sk.
// Decode: one query against 2000 keys, two chunks of 1024 merged in the fused path.
const Shape kPrefill{"prefill", 2, 4, 2, 70, 90, 32};
const Shape kDecode{"decode", 2, 4, 2, 1, 2000, 64};

using Param = std::tuple<detail::Isa, Algorithm, Shape>;

std::string describe(const Param& param) {
  const auto& [isa, algorithm, s] = param;
  std::ostringstream text;
  text << detail::isa_name(isa) << (algorithm == Algorithm::fused ? " fused " : " composed ") << s.name
       << " B=" << s.batch << " Hq=" << s.q_heads << " Hkv=" << s.kv_heads << " Sq=" << s.sq
       << " Sk=" << s.sk << " D=" << s.head_dim;
  return text.str();
}

// One attention problem: seeded inputs, the options under test, and runs of the fast path and
// of the oracle on it.
struct Problem {
  Shape shape;
  Tensor q, k, v;
  std::optional<Tensor> mask;
  std::vector<int64_t> kv_lengths;
  AttentionOptions options;

  explicit Problem(const Shape& s)
      : shape(s),
        q(s.batch, s.q_heads, s.sq, s.head_dim),
        k(s.batch, s.kv_heads, s.sk, s.head_dim),
        v(s.batch, s.kv_heads, s.sk, s.head_dim) {
    q.fill_uniform(101, -2.0f, 2.0f);
    k.fill_uniform(102, -2.0f, 2.0f);
    v.fill_uniform(103);
  }

  int64_t group() const { return shape.q_heads / shape.kv_heads; }

  // A per-head mask [B, Hq, Sq, Sk] of zeros, for tests to place their values in.
  Tensor& use_mask() {
    mask.emplace(shape.batch, shape.q_heads, shape.sq, shape.sk);
    mask->fill(0.0f);
    options.mask = mask->in();
    return *mask;
  }

  void use_kv_lengths(std::vector<int64_t> lengths) {
    kv_lengths = std::move(lengths);
    options.kv_lengths = kv_lengths.data();
  }

  struct Result {
    Tensor out, lse;
  };

  Result run_fast(detail::Isa isa, Algorithm algorithm) const {
    Result result{Tensor(shape.batch, shape.q_heads, shape.sq, shape.head_dim),
                  Tensor(shape.batch, shape.q_heads, shape.sq, 1)};
    AttentionOptions fast = options;
    fast.algorithm = algorithm;
    fast.lse = result.lse.view;
    detail::ScopedIsaOverride use(isa);
    attention(q.in(), k.in(), v.in(), result.out.view, fast);
    return result;
  }

  Result run_oracle() const {
    Result result{Tensor(shape.batch, shape.q_heads, shape.sq, shape.head_dim),
                  Tensor(shape.batch, shape.q_heads, shape.sq, 1)};
    AttentionOptions exact = options;
    exact.lse = result.lse.view;
    reference::attention(q.in(), k.in(), v.in(), result.out.view, exact);
    return result;
  }

  // The largest |logit| these inputs make, `bias` being the largest finite |mask| entry.
  double logit_bound(double bias = 0.0) const {
    const double scale = options.scale.value_or(1.0f / std::sqrt(float(shape.head_dim)));
    return logit_magnitude(q, k, scale) + bias;
  }
};

// Error bounds of test_support.hpp for logits up to `logits` (values are in [-1, 1]).
double out_tolerance(const Shape& s, double logits) {
  return attention_tolerance(logits, s.head_dim, s.sk, 1.0);
}
double lse_tolerance(const Shape& s, double logits) {
  return simdattn::testing::lse_tolerance(logits, s.head_dim, s.sk);
}

// Calls f(x) for every element of a tensor that is not to be changed.
template <class F>
void for_each_value(const Tensor& t, F&& f) {
  const auto& s = t.view.shape;
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t i = 0; i < s[2]; ++i)
        for (int64_t d = 0; d < s[3]; ++d) f(t.at(b, h, i, d));
}

// Where a NaN is expected: (b, h, i, d) of out.
using NanPattern = std::function<bool(int64_t b, int64_t h, int64_t i, int64_t d)>;

// Every element of `out` is NaN exactly where `expected_nan` says so; reports the first few that
// are not.
::testing::AssertionResult nan_exactly_where(const Tensor& out, const NanPattern& expected_nan,
                                             const std::string& context) {
  return check_every_element(
      out, context, "wrong",
      [&](int64_t b, int64_t h, int64_t i, int64_t d) {
        const float x = out.at(b, h, i, d);
        const bool expected = expected_nan(b, h, i, d);
        return std::isnan(x) == expected && (expected || std::isfinite(x));
      },
      [&](std::ostream& report, int64_t b, int64_t h, int64_t i, int64_t d) {
        report << "expected " << (expected_nan(b, h, i, d) ? "NaN" : "a finite value") << ", got "
               << out.at(b, h, i, d);
      });
}

class NonFinite : public ::testing::TestWithParam<Param> {
 protected:
  detail::Isa isa() const { return std::get<0>(GetParam()); }
  Algorithm algorithm() const { return std::get<1>(GetParam()); }
  const Shape& shape() const { return std::get<2>(GetParam()); }
  std::string context() const { return describe(GetParam()); }

  // The fast result of `problem`, after checking it against the oracle element by element
  // (NaN where the oracle has NaN, -inf where it has -inf, within the bound elsewhere), out and
  // lse alike; `logits` bounds the magnitude of the finite logits.
  Problem::Result run_and_compare(const Problem& problem, double logits) const {
    Problem::Result fast = problem.run_fast(isa(), algorithm());
    const Problem::Result exact = problem.run_oracle();
    EXPECT_TRUE(all_close(exact.out, fast.out, out_tolerance(shape(), logits), context() + " out"));
    EXPECT_TRUE(all_close(exact.lse, fast.lse, lse_tolerance(shape(), logits), context() + " lse"));
    return fast;
  }
};

// A NaN in one query row makes that row NaN and no other.
TEST_P(NonFinite, NanInQueryReachesOnlyItsRow) {
  Problem problem(shape());
  const int64_t b = 1, h = 3, i = shape().sq / 2;
  problem.q.at(b, h, i, 5) = kNaN;
  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(
      fast.out, [&](int64_t bb, int64_t hh, int64_t ii, int64_t) { return bb == b && hh == h && ii == i; },
      context()));
}

// A NaN in key row j reaches the query heads of its kv head, and under bottom-right causal only
// the positions that see key j; earlier positions and other heads stay finite.
TEST_P(NonFinite, NanInKeyReachesOnlyRowsThatSeeIt) {
  Problem problem(shape());
  problem.options.causal = Causal::bottom_right;
  const int64_t b = 0, kv_head = 1, j = shape().sk - 40;
  problem.k.at(b, kv_head, j, 0) = kNaN;
  const int64_t offset = shape().sk - shape().sq;
  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(
      fast.out,
      [&](int64_t bb, int64_t h, int64_t i, int64_t) {
        return bb == b && h / problem.group() == kv_head && j <= i + offset;
      },
      context()));
}

// A NaN in a key that kv_lengths cuts off reaches no row.
TEST_P(NonFinite, NanInKeyBeyondKvLengthReachesNoRow) {
  Problem problem(shape());
  problem.use_kv_lengths({shape().sk - 7, shape().sk});
  problem.k.at(0, 0, shape().sk - 7, 2) = kNaN;
  problem.k.at(0, 1, shape().sk - 1, 0) = kNaN;
  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(fast.out, [](int64_t, int64_t, int64_t, int64_t) { return false; }, context()));
}

// A NaN in value row j, dimension d, reaches dimension d of every row that sees key j (here all
// rows of its kv head's query heads) and nothing else.
TEST_P(NonFinite, NanInValueReachesOnlyItsDimensionOfRowsThatSeeIt) {
  Problem problem(shape());
  const int64_t b = 1, kv_head = 0, j = shape().sk / 3, d = 7;
  problem.v.at(b, kv_head, j, d) = kNaN;
  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(
      fast.out,
      [&](int64_t bb, int64_t h, int64_t, int64_t dd) {
        return bb == b && h / problem.group() == kv_head && dd == d;
      },
      context()));
}

// A NaN value of a key that causal hides from the earlier rows, or that a -inf mask entry hides
// from some rows, reaches exactly the rows that see the key: a zero weight must not turn into
// 0 · NaN, also inside a key block that other rows see (the causal diagonal).
TEST_P(NonFinite, NanInValueHiddenByCausalOrMaskReachesOnlyRowsThatSeeIt) {
  const int64_t b = 0, kv_head = 0, j = shape().sk / 2, d = 3;
  const int64_t offset = shape().sk - shape().sq;  // bottom-right alignment
  {
    Problem problem(shape());
    problem.options.causal = Causal::bottom_right;
    problem.v.at(b, kv_head, j, d) = kNaN;
    const auto fast = run_and_compare(problem, problem.logit_bound());
    EXPECT_TRUE(nan_exactly_where(
        fast.out,
        [&](int64_t bb, int64_t h, int64_t i, int64_t dd) {
          return bb == b && h / problem.group() == kv_head && dd == d && j <= i + offset;
        },
        context() + " causal"));
  }
  {
    Problem problem(shape());
    Tensor& mask = problem.use_mask();
    for (int64_t i = 1; i < shape().sq; i += 2) {
      for (int64_t h = 0; h < mask.view.shape[1]; ++h) mask.at(b, h, i, j) = -kInfinity;
    }
    problem.v.at(b, kv_head, j, d) = kNaN;
    const auto fast = run_and_compare(problem, problem.logit_bound());
    EXPECT_TRUE(nan_exactly_where(
        fast.out,
        [&](int64_t bb, int64_t h, int64_t i, int64_t dd) {
          return bb == b && h / problem.group() == kv_head && dd == d && i % 2 == 0;
        },
        context() + " mask"));
  }
}

// Values of keys that kv_lengths cuts off are never read: NaN there reaches no row, including
// keys in the same key block as visible ones.
TEST_P(NonFinite, NanInValueBeyondKvLengthReachesNoRow) {
  Problem problem(shape());
  const int64_t length = shape().sk - 3;
  problem.use_kv_lengths({length, shape().sk});
  for (int64_t j = length; j < shape().sk; ++j) {
    for (int64_t h = 0; h < shape().kv_heads; ++h) problem.v.at(0, h, j, j % shape().head_dim) = kNaN;
  }
  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(fast.out, [](int64_t, int64_t, int64_t, int64_t) { return false; }, context()));
}

// Logits made +inf or -inf by the mask: a +inf logit makes its row NaN (inf - inf, as
// torch.softmax); -inf keys get weight 0; a row whose keys are all -inf gets zeros and lse -inf.
TEST_P(NonFinite, InfiniteLogitsFromTheMask) {
  Problem problem(shape());
  Tensor& mask = problem.use_mask();
  const int64_t last = shape().sq - 1;
  mask.at(0, 0, last, shape().sk / 2) = kInfinity;                                 // NaN row
  for (int64_t j = 0; j < shape().sk; ++j) mask.at(0, 1, last, j) = -kInfinity;    // no key at all
  for (int64_t j = 0; j < shape().sk; j += 3) mask.at(1, 2, last, j) = -kInfinity;  // a third hidden
  for (int64_t j = 1; j < shape().sk; ++j) mask.at(1, 3, 0, j) = -kInfinity;        // one key left

  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(
      fast.out, [&](int64_t b, int64_t h, int64_t i, int64_t) { return b == 0 && h == 0 && i == last; },
      context()));
  for (int64_t d = 0; d < shape().head_dim; ++d) {
    EXPECT_EQ(fast.out.at(0, 1, last, d), 0.0f) << context() << " d=" << d;
    // A single visible key: its value, exactly up to the rounding of 1 · v / 1.
    EXPECT_NEAR(fast.out.at(1, 3, 0, d), problem.v.at(1, 1, 0, d), 1e-6) << context() << " d=" << d;
  }
  EXPECT_EQ(fast.lse.at(0, 1, last, 0), -kInfinity) << context();
  EXPECT_TRUE(std::isnan(fast.lse.at(0, 0, last, 0))) << context();
}

// Logits around ±1e4 (the scale makes them so) stay finite: exp(x - max) never overflows, and
// the result still matches the oracle.
TEST_P(NonFinite, LogitsOfTenThousandStayFinite) {
  Problem problem(shape());
  const double dot = logit_magnitude(problem.q, problem.k, 1.0);
  problem.options.scale = static_cast<float>(1e4 / dot);  // the largest |logit| is 1e4
  const auto fast = run_and_compare(problem, problem.logit_bound());
  EXPECT_TRUE(nan_exactly_where(fast.out, [](int64_t, int64_t, int64_t, int64_t) { return false; }, context()));
}

// A mask of -1e4 on every key shifts all logits alike: the result is that of no mask, within the
// bound for logits of that size, and finite (no exp underflows to an all-zero row).
TEST_P(NonFinite, UniformlyLargeNegativeLogitsGiveTheUnshiftedResult) {
  Problem shifted(shape());
  shifted.use_mask().fill(-1e4f);
  Problem plain(shape());
  const auto with_shift = shifted.run_fast(isa(), algorithm());
  const auto without = plain.run_fast(isa(), algorithm());
  EXPECT_TRUE(all_close(without.out, with_shift.out, out_tolerance(shape(), plain.logit_bound(1e4)), context()));
  EXPECT_TRUE(nan_exactly_where(with_shift.out, [](int64_t, int64_t, int64_t, int64_t) { return false; },
                                context()));
}

// Inputs drawn from the most hostile floats there are (NaN, ±inf, ±FLT_MAX, subnormals, ±0,
// ±1e30) in q, k and the mask: every call returns, and since out is a convex combination of
// values in [-1, 1], each element is NaN or in [-1, 1] up to rounding; never a huge or infinite
// number. The lse is NaN, -inf or finite, never +inf from a finite sum.
TEST_P(NonFinite, HostileValuesNeitherHangNorEscapeTheValueRange) {
  const float pool[] = {kNaN,
                        kInfinity,
                        -kInfinity,
                        std::numeric_limits<float>::max(),
                        -std::numeric_limits<float>::max(),
                        std::numeric_limits<float>::denorm_min(),
                        -std::numeric_limits<float>::denorm_min(),
                        std::numeric_limits<float>::min(),
                        0.0f,
                        -0.0f,
                        1e30f,
                        -1e30f,
                        1.0f,
                        -1.0f};
  for (uint64_t seed : {1u, 2u, 3u}) {
    Problem problem(shape());
    std::mt19937_64 generator(seed);
    std::uniform_int_distribution<int> pick(0, static_cast<int>(std::size(pool)) - 1);
    std::bernoulli_distribution hostile(0.05);
    auto spoil = [&](float& x) {
      if (hostile(generator)) x = pool[pick(generator)];
    };
    problem.q.for_each(spoil);
    problem.k.for_each(spoil);
    problem.use_mask().for_each(spoil);
    const auto fast = problem.run_fast(isa(), algorithm());
    // Σ p_j v_j / Σ p_j with |v_j| <= 1, each sum off relatively by at most gamma(Sk).
    const double bound = 1.0 + 2.0 * gamma(shape().sk + 1);
    int64_t escaped = 0;
    for_each_value(fast.out, [&](float x) { escaped += !std::isnan(x) && !(std::fabs(x) <= bound); });
    EXPECT_EQ(escaped, 0) << context() << " seed " << seed;
    int64_t bad_lse = 0;
    for_each_value(fast.lse, [&](float x) { bad_lse += x == kInfinity; });
    EXPECT_EQ(bad_lse, 0) << context() << " seed " << seed;
  }
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  const auto& [isa, algorithm, s] = info.param;
  return std::string(detail::isa_name(isa)) + (algorithm == Algorithm::fused ? "_fused_" : "_composed_") + s.name;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, NonFinite,
                         ::testing::Combine(::testing::ValuesIn(host_isas()),
                                            ::testing::Values(Algorithm::fused, Algorithm::composed),
                                            ::testing::Values(kPrefill, kDecode)),
                         param_name);

}  // namespace
}  // namespace simdattn::testing

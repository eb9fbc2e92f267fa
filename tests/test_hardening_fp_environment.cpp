// The floating-point environment: on finite inputs no call raises an invalid-operation or a
// divide-by-zero exception (so a caller that traps them with feenableexcept does not die of
// SIGFPE, and one that reads the flags finds them clear), on every ISA the host runs, through
// every algorithm and every mask, fully masked rows and kv_lengths = 0 included. Each case is
// checked twice: by the sticky flags of the calling thread (num_threads = 1, so every kernel
// runs there) and, in a fresh process, with the exceptions trapped and a team of threads.
#include <cfenv>
#include <cmath>
#include <csignal>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();
constexpr int kTrappedExceptions = FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW;

// Which of the trapped exceptions are raised, in words ("" when none).
std::string raised_exceptions() {
  std::string names;
  if (std::fetestexcept(FE_INVALID)) names += " FE_INVALID";
  if (std::fetestexcept(FE_DIVBYZERO)) names += " FE_DIVBYZERO";
  if (std::fetestexcept(FE_OVERFLOW)) names += " FE_OVERFLOW";
  return names;
}

struct Shape {
  const char* name;
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim;
};

// Prefill: several query tiles of a 2-head group, Sq > Sk so that top-left causal and windows
// leave whole rows without keys. Decode: one query against 2000 keys, which the fused path splits
// into key chunks and merges. Small: decoding rows in the dense layout (4 columns a register).
const Shape kShapes[] = {{"prefill", 2, 4, 2, 70, 45, 32},
                         {"decode", 2, 4, 2, 1, 2000, 64},
                         {"decode_dense", 1, 4, 1, 1, 37, 24}};

// One case: a description and the options it sets on top of the shape's inputs.
struct Case {
  std::string name;
  std::function<void(AttentionOptions&, Tensor& mask, std::vector<int64_t>& kv_lengths,
                     std::vector<float>& slopes, const Shape&)>
      set;
};

std::vector<Case> cases() {
  using Set = decltype(Case::set);
  const auto make = [](std::string name, Set set) { return Case{std::move(name), std::move(set)}; };
  return {
      make("plain", [](auto&, auto&, auto&, auto&, const Shape&) {}),
      make("causal_bottom_right",
           [](AttentionOptions& o, auto&, auto&, auto&, const Shape&) { o.causal = Causal::bottom_right; }),
      make("causal_top_left",
           [](AttentionOptions& o, auto&, auto&, auto&, const Shape&) { o.causal = Causal::top_left; }),
      make("window",
           [](AttentionOptions& o, auto&, auto&, auto&, const Shape&) {
             o.causal = Causal::top_left;
             o.window_left = 3;
             o.window_right = 2;
           }),
      make("window_past_the_keys",
           [](AttentionOptions& o, auto&, auto&, auto&, const Shape&) {
             // Bottom-right with Sq > Sk: the first Sq - Sk rows see no key.
             o.window_left = 0;
             o.window_right = 0;
             o.causal = Causal::bottom_right;
           }),
      make("additive_mask_with_minus_infinity",
           [](AttentionOptions& o, Tensor& mask, auto&, auto&, const Shape& s) {
             // -inf on every other key, one row fully masked, finite biases elsewhere.
             for (int64_t b = 0; b < s.batch; ++b)
               for (int64_t h = 0; h < s.q_heads; ++h)
                 for (int64_t i = 0; i < s.sq; ++i)
                   for (int64_t j = 0; j < s.sk; ++j) {
                     const bool fully_masked_row = b == 0 && h == 1 && i == s.sq / 2;
                     mask.at(b, h, i, j) = fully_masked_row || j % 2 == 1 ? -kInfinity
                                                                          : 0.25f * static_cast<float>(j % 5);
                   }
             o.mask = mask.in();
           }),
      make("kv_lengths_with_zero",
           [](AttentionOptions& o, auto&, std::vector<int64_t>& lengths, auto&, const Shape& s) {
             lengths.assign(static_cast<size_t>(s.batch), 0);
             lengths.back() = s.sk - 3;
             o.kv_lengths = lengths.data();
           }),
      make("softcap_alibi_causal",
           [](AttentionOptions& o, auto&, auto&, std::vector<float>& slopes, const Shape& s) {
             slopes.assign(static_cast<size_t>(s.q_heads), 0.0f);
             for (size_t h = 0; h < slopes.size(); ++h) slopes[h] = 0.5f / static_cast<float>(h + 1);
             o.alibi_slopes = slopes.data();
             o.softcap = 2.0f;
             o.causal = Causal::top_left;
           }),
      make("large_logits",
           [](AttentionOptions& o, auto&, auto&, auto&, const Shape&) {
             // Logits near ±1e4: exp(x - max) underflows to 0 for most keys.
             o.scale = 400.0f;
             o.causal = Causal::bottom_right;
           }),
  };
}

// Runs every case of `shape` through `algorithm` on the calling thread's ISA override, with
// `threads` threads, both outputs asked for (weights too when composed); reports the cases after
// which a trapped exception's flag is set.
std::vector<std::string> run_cases(const Shape& s, Algorithm algorithm, int threads) {
  Tensor q(s.batch, s.q_heads, s.sq, s.head_dim), k(s.batch, s.kv_heads, s.sk, s.head_dim),
      v(s.batch, s.kv_heads, s.sk, s.head_dim);
  q.fill_uniform(11, -2.0f, 2.0f);
  k.fill_uniform(12, -2.0f, 2.0f);
  v.fill_uniform(13);
  std::vector<std::string> failures;
  for (const Case& c : cases()) {
    Tensor mask(s.batch, s.q_heads, s.sq, s.sk);
    mask.fill(0.0f);
    std::vector<int64_t> lengths;
    std::vector<float> slopes;
    Tensor out(s.batch, s.q_heads, s.sq, s.head_dim), lse(s.batch, s.q_heads, s.sq, 1),
        weights(s.batch, s.q_heads, s.sq, s.sk);
    AttentionOptions options;
    options.num_threads = threads;
    options.algorithm = algorithm;
    options.lse = lse.view;
    if (algorithm == Algorithm::composed) options.weights = weights.view;
    c.set(options, mask, lengths, slopes, s);
    std::feclearexcept(FE_ALL_EXCEPT);
    attention(q.in(), k.in(), v.in(), out.view, options);
    const std::string raised = raised_exceptions();
    if (!raised.empty()) failures.push_back(c.name + ":" + raised);
  }
  return failures;
}

// The three stages, on rows that hold -inf entries and a row that is all -inf.
std::vector<std::string> run_stages(int threads) {
  const Shape s{"stages", 2, 4, 2, 19, 41, 24};
  Tensor q(s.batch, s.q_heads, s.sq, s.head_dim), k(s.batch, s.kv_heads, s.sk, s.head_dim),
      v(s.batch, s.kv_heads, s.sk, s.head_dim), scores(s.batch, s.q_heads, s.sq, s.sk),
      out(s.batch, s.q_heads, s.sq, s.head_dim);
  q.fill_uniform(21, -2.0f, 2.0f);
  k.fill_uniform(22, -2.0f, 2.0f);
  v.fill_uniform(23);
  std::vector<std::string> failures;
  const auto check = [&](const char* name) {
    const std::string raised = raised_exceptions();
    if (!raised.empty()) failures.push_back(std::string(name) + ":" + raised);
  };
  std::feclearexcept(FE_ALL_EXCEPT);
  qk_scores(q.in(), k.in(), scores.view, 0.2f, threads);
  check("qk_scores");
  for (int64_t j = 0; j < s.sk; j += 3) scores.at(0, 1, 4, j) = -kInfinity;
  for (int64_t j = 0; j < s.sk; ++j) scores.at(1, 2, 7, j) = -kInfinity;
  std::feclearexcept(FE_ALL_EXCEPT);
  softmax_rows(scores.view, threads);
  check("softmax_rows");
  std::feclearexcept(FE_ALL_EXCEPT);
  weights_v(scores.in(), v.in(), out.view, threads);
  check("weights_v");
  return failures;
}

std::string shape_and_algorithm(const Shape& s, Algorithm algorithm) {
  return std::string(s.name) + (algorithm == Algorithm::fused ? " fused" : " composed");
}

class FloatingPointEnvironment : public ::testing::TestWithParam<detail::Isa> {
 protected:
  void SetUp() override { std::feclearexcept(FE_ALL_EXCEPT); }
  void TearDown() override { std::feclearexcept(FE_ALL_EXCEPT); }
};

// The flags of the calling thread stay clear: every kernel runs on it (num_threads = 1).
TEST_P(FloatingPointEnvironment, FiniteInputsLeaveTheExceptionFlagsClear) {
  const detail::ScopedIsaOverride use(GetParam());
  for (const Shape& s : kShapes) {
    for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
      for (const std::string& failure : run_cases(s, algorithm, 1)) {
        ADD_FAILURE() << detail::isa_name(GetParam()) << " " << shape_and_algorithm(s, algorithm)
                      << ", case " << failure << " raised";
      }
    }
  }
  for (const std::string& failure : run_stages(1)) {
    ADD_FAILURE() << detail::isa_name(GetParam()) << " " << failure << " raised";
  }
}

// Trapping enabled, in a fresh process (the death test re-runs this binary), with a team of
// threads created after feenableexcept so that they inherit it: any invalid operation or
// division by zero dies of SIGFPE instead of exiting 0.
TEST_P(FloatingPointEnvironment, FiniteInputsRunWithExceptionsTrapped) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const detail::Isa isa = GetParam();
  EXPECT_EXIT(
      {
        const detail::ScopedIsaOverride use(isa);
        feenableexcept(kTrappedExceptions);
        size_t failures = 0;
        for (const Shape& s : kShapes) {
          for (Algorithm algorithm : {Algorithm::fused, Algorithm::composed}) {
            failures += run_cases(s, algorithm, 3).size();
          }
        }
        failures += run_stages(3).size();
        std::exit(failures == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << detail::isa_name(isa) << ": a call on finite inputs raised a trapped exception "
      << "(SIGFPE) or set its flag (exit 1)";
}

INSTANTIATE_TEST_SUITE_P(HardeningFpEnvironment, FloatingPointEnvironment,
                         ::testing::ValuesIn(host_isas()), isa_test_name);

// The oracles too: double arithmetic where -inf meets a finite max, never -inf - -inf.
TEST(FloatingPointEnvironmentReference, FiniteInputsLeaveInvalidClear) {
  const Shape s = kShapes[0];
  Tensor q(s.batch, s.q_heads, s.sq, s.head_dim), k(s.batch, s.kv_heads, s.sk, s.head_dim),
      v(s.batch, s.kv_heads, s.sk, s.head_dim), out(s.batch, s.q_heads, s.sq, s.head_dim),
      lse(s.batch, s.q_heads, s.sq, 1), weights(s.batch, s.q_heads, s.sq, s.sk);
  q.fill_uniform(31, -2.0f, 2.0f);
  k.fill_uniform(32, -2.0f, 2.0f);
  v.fill_uniform(33);
  AttentionOptions options;
  options.causal = Causal::top_left;
  options.window_left = 2;
  options.lse = lse.view;
  options.weights = weights.view;
  std::vector<int64_t> lengths{0, s.sk};
  options.kv_lengths = lengths.data();
  std::feclearexcept(FE_ALL_EXCEPT);
  reference::attention(q.in(), k.in(), v.in(), out.view, options);
  EXPECT_EQ(raised_exceptions(), "") << "reference::attention raised";
}

}  // namespace
}  // namespace simdattn::testing

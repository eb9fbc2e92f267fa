// Threads: results that do not depend on the thread count, many caller threads at once, and calls
// from inside the caller's own OpenMP parallel region. Every comparison is bitwise: the design
// promises identical bits for any thread count, so any difference is a failure, however small.
#include <atomic>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>

#include "test_support.hpp"

// Every thread this process starts, counted: this definition in the executable comes before
// libc's pthread_create for every caller (libgomp included), then hands the call on to libc's
// (or to the sanitizer's interceptor, which hands it on in turn). It lets a test see, without
// timing anything, whether a call started threads: nested teams in libgomp are created anew and
// exit when their region ends, so counting the threads that are alive afterwards would not tell.
namespace {
std::atomic<long> threads_started{0};
}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attributes,
                              void* (*start)(void*), void* argument) {
  using Create = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const Create next = reinterpret_cast<Create>(dlsym(RTLD_NEXT, "pthread_create"));
  threads_started.fetch_add(1);
  return next(thread, attributes, start, argument);
}

namespace simdattn::testing {
namespace {

struct Shape {
  const char* name;
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim;
  Causal causal;
};

// Several work items each, uneven sizes; decode splits its 3000 keys into three chunks of 1024,
// decode_long_chunks its 4100 into chunks of 4096 (64 work items: blocking.hpp), the last of 4.
const Shape kShapes[] = {
    {"prefill", 1, 2, 2, 200, 230, 64, Causal::none},
    {"causal", 1, 2, 1, 600, 600, 32, Causal::bottom_right},
    {"gqa", 2, 8, 2, 70, 150, 48, Causal::top_left},
    {"decode", 1, 8, 2, 1, 3000, 64, Causal::bottom_right},
    {"decode_long_chunks", 2, 32, 16, 1, 4100, 16, Causal::bottom_right},
};

// Inputs of one shape, seeded, and the outputs of a call on them with a given thread count.
struct Problem {
  Shape shape;
  Tensor q, k, v;

  Problem(const Shape& s, uint64_t seed)
      : shape(s),
        q(s.batch, s.q_heads, s.sq, s.head_dim),
        k(s.batch, s.kv_heads, s.sk, s.head_dim, Layout::bshd),
        v(s.batch, s.kv_heads, s.sk, s.head_dim, Layout::padded) {
    q.fill_uniform(seed, -2.0f, 2.0f);
    k.fill_uniform(seed + 1, -2.0f, 2.0f);
    v.fill_uniform(seed + 2);
  }

  struct Result {
    Tensor out, lse;
    std::optional<Tensor> weights;
  };

  // attention() with `threads` threads; weights too when the algorithm is composed.
  Result run(Algorithm algorithm, int threads) const {
    Result result{Tensor(shape.batch, shape.q_heads, shape.sq, shape.head_dim),
                  Tensor(shape.batch, shape.q_heads, shape.sq, 1), std::nullopt};
    AttentionOptions options;
    options.causal = shape.causal;
    options.algorithm = algorithm;
    options.num_threads = threads;
    options.lse = result.lse.view;
    if (algorithm == Algorithm::composed) {
      result.weights.emplace(shape.batch, shape.q_heads, shape.sq, shape.sk);
      options.weights = result.weights->view;
    }
    attention(q.in(), k.in(), v.in(), result.out.view, options);
    return result;
  }
};

bool same_bits(const Problem::Result& x, const Problem::Result& y) {
  return bitwise_equal(x.out, y.out) && bitwise_equal(x.lse, y.lse) &&
         x.weights.has_value() == y.weights.has_value() &&
         (!x.weights.has_value() || bitwise_equal(*x.weights, *y.weights));
}

using Param = std::tuple<detail::Isa, Algorithm, Shape>;

class ThreadCountInvariance : public ::testing::TestWithParam<Param> {};

// 1, 2, 3 and 7 threads (counts that split the work unevenly) give the same bits, out, lse and
// weights alike. The team is capped at the usable CPUs (test_hardening_thread_team.cpp), so on a
// machine with fewer, the larger requests run with as many threads as it has.
TEST_P(ThreadCountInvariance, SameBitsForOneTwoThreeAndSevenThreads) {
  const auto& [isa, algorithm, shape] = GetParam();
  detail::ScopedIsaOverride use(isa);
  const Problem problem(shape, 21);
  const Problem::Result one = problem.run(algorithm, 1);
  for (int threads : {2, 3, 7}) {
    EXPECT_TRUE(same_bits(one, problem.run(algorithm, threads)))
        << detail::isa_name(isa) << " " << shape.name << ": " << threads << " threads differ from 1";
  }
  // And the same bits again on a second run with the same count.
  EXPECT_TRUE(same_bits(one, problem.run(algorithm, 1))) << shape.name << ": a rerun differs";
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  const auto& [isa, algorithm, shape] = info.param;
  return std::string(detail::isa_name(isa)) + (algorithm == Algorithm::fused ? "_fused_" : "_composed_") +
         shape.name;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, ThreadCountInvariance,
                         ::testing::Combine(::testing::ValuesIn(host_isas()),
                                            ::testing::Values(Algorithm::fused, Algorithm::composed),
                                            ::testing::ValuesIn(kShapes)),
                         param_name);

// Twelve caller threads start together, each on its own buffers with its own ISA (a thread-local
// override), shape, algorithm and num_threads (1 to 4), and call attention several times. Every
// result must equal, bit for bit, the same call made alone beforehand.
TEST(HardeningConcurrency, ManyCallerThreadsGetTheBitsOfALoneCall) {
  constexpr int kCallers = 12, kRounds = 3;
  const std::vector<detail::Isa> isas = host_isas();
  struct Caller {
    detail::Isa isa;
    Algorithm algorithm;
    int threads;
    std::optional<Problem> problem;
    std::optional<Problem::Result> alone;
    int mismatches = 0;
  };
  std::vector<Caller> callers(kCallers);
  for (int c = 0; c < kCallers; ++c) {
    Caller& caller = callers[c];
    caller.isa = isas[c % isas.size()];
    caller.algorithm = c % 2 == 0 ? Algorithm::fused : Algorithm::composed;
    caller.threads = 1 + c % 4;
    // The decode shape has long rows; a smaller variant keeps twelve copies quick.
    Shape shape = kShapes[c % std::size(kShapes)];
    if (shape.sk == 3000) shape.sk = 1100;
    caller.problem.emplace(shape, 1000 + 10 * c);
    detail::ScopedIsaOverride use(caller.isa);
    caller.alone.emplace(caller.problem->run(caller.algorithm, caller.threads));
  }

  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (Caller& caller : callers) {
    threads.emplace_back([&caller, &ready] {
      detail::ScopedIsaOverride use(caller.isa);
      ready.fetch_add(1);
      while (ready.load() < kCallers) std::this_thread::yield();  // start together
      for (int round = 0; round < kRounds; ++round) {
        caller.mismatches += !same_bits(*caller.alone, caller.problem->run(caller.algorithm, caller.threads));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int c = 0; c < kCallers; ++c) {
    EXPECT_EQ(callers[c].mismatches, 0)
        << "caller " << c << " (" << detail::isa_name(callers[c].isa) << ", "
        << callers[c].problem->shape.name << ", " << callers[c].threads << " threads) differed in "
        << callers[c].mismatches << " of " << kRounds << " rounds";
  }
}

// Restores OpenMP's nesting limit when the test ends, however it ends.
class ScopedMaxActiveLevels {
 public:
  explicit ScopedMaxActiveLevels(int levels) : previous_(omp_get_max_active_levels()) {
    omp_set_max_active_levels(levels);
  }
  ~ScopedMaxActiveLevels() { omp_set_max_active_levels(previous_); }
  ScopedMaxActiveLevels(const ScopedMaxActiveLevels&) = delete;
  ScopedMaxActiveLevels& operator=(const ScopedMaxActiveLevels&) = delete;

 private:
  int previous_;
};

// Calls from inside the caller's parallel region, each asking for 4 threads, with nested
// parallelism allowed: they return the right bits and start no thread of their own. A library
// that opened a nested team of 4 in each of the 4 outer threads would start 12 threads, which the
// pthread_create above counts; timing plays no part in the evidence.
TEST(HardeningConcurrency, CallsInsideTheCallersParallelRegionRunOnTheirOwnThread) {
  constexpr int kOuter = 4;
  std::vector<Problem> problems;
  std::vector<Problem::Result> alone;
  for (int t = 0; t < kOuter; ++t) {
    problems.emplace_back(kShapes[t % std::size(kShapes)], 500 + t);
    alone.push_back(problems.back().run(t % 2 == 0 ? Algorithm::fused : Algorithm::composed, 1));
  }
  ScopedMaxActiveLevels nesting(4);
  // An outer region first, so that its own team already exists when threads are counted (with a
  // body: the compiler drops an empty region, team and all).
  std::vector<int> team_sizes(kOuter, 0), matches(kOuter, 0);
#pragma omp parallel num_threads(kOuter)
  team_sizes[omp_get_thread_num()] = omp_get_num_threads();
  ASSERT_EQ(team_sizes, std::vector<int>(kOuter, kOuter)) << "the caller's team did not start";
  const long started_before = threads_started.load();

#pragma omp parallel num_threads(kOuter)
  {
    const int t = omp_get_thread_num();
    team_sizes[t] = omp_get_num_threads();
    const Algorithm algorithm = t % 2 == 0 ? Algorithm::fused : Algorithm::composed;
    matches[t] = same_bits(alone[t], problems[t].run(algorithm, 4));
  }
  const long started = threads_started.load() - started_before;

  for (int t = 0; t < kOuter; ++t) {
    EXPECT_EQ(team_sizes[t], kOuter) << "the caller's own team was changed";
    EXPECT_TRUE(matches[t]) << "outer thread " << t << " (" << problems[t].shape.name << ") got other bits";
  }
  EXPECT_EQ(started, 0) << "calls inside a parallel region started " << started << " threads";
}

// The same inside a region with nesting at OpenMP's default, and inside nested regions two deep:
// every call returns with the bits of a lone call.
TEST(HardeningConcurrency, CallsInsideNestedRegionsReturnTheRightBits) {
  const Problem problem(kShapes[3], 77);
  const Problem::Result alone = problem.run(Algorithm::fused, 2);
  int mismatches = 0;
#pragma omp parallel num_threads(2) reduction(+ : mismatches)
  {
    mismatches += !same_bits(alone, problem.run(Algorithm::fused, 2));
#pragma omp parallel num_threads(2) reduction(+ : mismatches)
    { mismatches += !same_bits(alone, problem.run(Algorithm::fused, 3)); }
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace simdattn::testing

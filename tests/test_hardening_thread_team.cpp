// The team of threads a call runs with: capped at the logical CPUs the process may use, however
// many num_threads asks for, and on the calling thread alone in a process forked from one that
// ran threads (libgomp's thread pool does not survive fork(); a team in the child would wait for
// the parent's workers forever).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <omp.h>

#include "plan/attention_plan.hpp"
#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

// A prefill problem with many work items (every thread of a big team would get some), and its
// result through one ISA with a given thread count.
struct Problem {
  static constexpr int64_t kBatch = 2, kQHeads = 4, kKvHeads = 2, kSq = 200, kSk = 150, kDim = 40;
  Tensor q{kBatch, kQHeads, kSq, kDim}, k{kBatch, kKvHeads, kSk, kDim}, v{kBatch, kKvHeads, kSk, kDim};

  Problem() {
    q.fill_uniform(41, -2.0f, 2.0f);
    k.fill_uniform(42, -2.0f, 2.0f);
    v.fill_uniform(43);
  }

  Tensor run(int threads, Algorithm algorithm = Algorithm::fused) const {
    Tensor out(kBatch, kQHeads, kSq, kDim);
    AttentionOptions options;
    options.causal = Causal::bottom_right;
    options.num_threads = threads;
    options.algorithm = algorithm;
    attention(q.in(), k.in(), v.in(), out.view, options);
    return out;
  }

  Tensor oracle() const {
    Tensor out(kBatch, kQHeads, kSq, kDim);
    AttentionOptions options;
    options.causal = Causal::bottom_right;
    reference::attention(q.in(), k.in(), v.in(), out.view, options);
    return out;
  }

  double tolerance() const {
    return attention_tolerance(logit_magnitude(q, k, 1.0 / std::sqrt(double(kDim))), kDim, kSk, 1.0);
  }
};

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.storage.size() == b.storage.size() &&
         std::memcmp(a.storage.data(), b.storage.data(), a.storage.size() * sizeof(float)) == 0;
}

// Threads of this process now (/proc/self/stat, field 20).
long threads_alive() {
  char text[1024] = {};
  const int file = open("/proc/self/stat", O_RDONLY);
  if (file < 0) return -1;
  const ssize_t length = read(file, text, sizeof(text) - 1);
  close(file);
  if (length <= 0) return -1;
  const char* at = std::strrchr(text, ')');
  int field = 2;
  for (const char* c = at; c != nullptr && *c != '\0'; ++c) {
    if (*c == ' ' && ++field == 20) return std::strtol(c + 1, nullptr, 10);
  }
  return -1;
}

// Waits up to `seconds` for `child`; kills it if it is still running. Returns its wait status,
// or -1 when it had to be killed.
int wait_or_kill(pid_t child, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return -1;
}

std::string describe_status(int status) {
  if (status == -1) return "still running after the timeout (killed): it hung";
  if (WIFSIGNALED(status)) {
    return WTERMSIG(status) == SIGALRM ? "killed by its watchdog (SIGALRM): it hung"
                                       : "killed by signal " + std::to_string(WTERMSIG(status));
  }
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case 0: return "exited 0";
      case 2: return "exited 2: its multi-threaded attention differed from the parent's";
      case 3: return "exited 3: its multi-threaded softmax_rows differed from the parent's";
      case 4: return "exited 4: a call threw";
      default: return "exited " + std::to_string(WEXITSTATUS(status));
    }
  }
  return "ended with status " + std::to_string(status);
}

// The parent runs a multi-threaded call (its OpenMP pool now exists), forks, and the child runs
// multi-threaded calls under a 30 s watchdog. The child must finish, with the bits the parent
// got (which match the oracle within the bound).
TEST(ThreadTeam, ForkedChildAfterMultiThreadedCallDoesNotHang) {
  if (omp_get_num_procs() < 2) GTEST_SKIP() << "one logical CPU: no team to fork from";
  const Problem problem;
  const Tensor parent = problem.run(2);
  ASSERT_TRUE(all_close(problem.oracle(), parent, problem.tolerance(), "parent, 2 threads"));
  const Tensor composed_parent = problem.run(2, Algorithm::composed);
  Tensor scores(1, 3, 50, 333);
  scores.fill_uniform(44, -5.0f, 5.0f);
  Tensor softmax_parent(scores);
  softmax_rows(softmax_parent.view, 2);

  const pid_t child = fork();
  ASSERT_GE(child, 0) << "fork failed: " << std::strerror(errno);
  if (child == 0) {
    alarm(30);
    int code = 0;
    try {
      if (!same_bits(parent, problem.run(2)) || !same_bits(parent, problem.run(0)) ||
          !same_bits(composed_parent, problem.run(4, Algorithm::composed))) {
        code = 2;
      }
      Tensor softmax_child(scores);
      softmax_rows(softmax_child.view, 2);
      if (code == 0 && !same_bits(softmax_parent, softmax_child)) code = 3;
    } catch (...) {
      code = 4;
    }
    _exit(code);
  }
  const int status = wait_or_kill(child, 60);
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the forked child " << describe_status(status);
}

// A child forked from a process that never ran a second thread keeps its teams: the fork
// detection is not a blanket switch to one thread. In a fresh process (the death test re-runs
// this binary), so that no thread exists yet; exits with the child's team size.
TEST(ThreadTeam, ChildOfSingleThreadedProcessKeepsItsTeam) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int expected = std::min(8, omp_get_num_procs());
  EXPECT_EXIT(
      {
        if (threads_alive() != 1) std::_Exit(100);
        const pid_t child = fork();
        if (child == 0) _exit(detail::threads_for_call(8, 1000));
        int status = 0;
        waitpid(child, &status, 0);
        std::_Exit(WIFEXITED(status) ? WEXITSTATUS(status) : 101);
      },
      ::testing::ExitedWithCode(expected), "")
      << "expected a team of " << expected << " (exit 100: the process already had threads)";
}

// The team never exceeds the logical CPUs the process may use, whatever num_threads asks for.
TEST(ThreadTeam, TeamIsCappedAtTheUsableCpus) {
  const int processors = omp_get_num_procs();
  EXPECT_EQ(detail::threads_for_call(INT_MAX, int64_t{1} << 40), processors);
  EXPECT_EQ(detail::threads_for_call(processors + 1, int64_t{1} << 40), processors);
  EXPECT_EQ(detail::threads_for_call(1, int64_t{1} << 40), 1);
  EXPECT_EQ(detail::threads_for_call(INT_MAX, 1), 1) << "never more threads than work items";
}

// The exit code of the huge-request check (see below): 0, or which result differed.
int run_with_huge_thread_request(int processors) {
  const Problem problem;
  if (!same_bits(problem.run(1), problem.run(INT_MAX))) return 2;
  if (!same_bits(problem.run(1, Algorithm::composed), problem.run(INT_MAX, Algorithm::composed))) return 3;
  const int64_t b = Problem::kBatch, h = Problem::kQHeads, sq = Problem::kSq, sk = Problem::kSk;
  Tensor scores(b, h, sq, sk), scores_one(b, h, sq, sk);
  Tensor out(b, h, sq, Problem::kDim), out_one(b, h, sq, Problem::kDim);
  qk_scores(problem.q.in(), problem.k.in(), scores.view, 0.3f, INT_MAX);
  qk_scores(problem.q.in(), problem.k.in(), scores_one.view, 0.3f, 1);
  if (!same_bits(scores, scores_one)) return 4;
  softmax_rows(scores.view, INT_MAX);
  softmax_rows(scores_one.view, 1);
  if (!same_bits(scores, scores_one)) return 5;
  weights_v(scores.in(), problem.v.in(), out.view, INT_MAX);
  weights_v(scores_one.in(), problem.v.in(), out_one.view, 1);
  if (!same_bits(out, out_one)) return 6;
  return threads_alive() > processors ? 7 : 0;
}

// num_threads = INT_MAX (the largest the validation accepts) runs, with the bits of one thread,
// through every entry point; in a fresh process, so that the threads alive afterwards (libgomp
// keeps its pool) show the team's size: at most the usable CPUs, the calling thread included.
TEST(ThreadTeam, HugeThreadRequestRunsOnTheUsableCpus) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int processors = omp_get_num_procs();
  EXPECT_EXIT(std::_Exit(run_with_huge_thread_request(processors)), ::testing::ExitedWithCode(0), "")
      << "exit 2-6: a result differed from one thread's (attention fused, composed, qk_scores, "
         "softmax_rows, weights_v); 7: more threads alive than the "
      << processors << " usable CPUs";
}

}  // namespace
}  // namespace simdattn::testing

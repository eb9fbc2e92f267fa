// Memory bounds: the fused path's working memory does not grow with the sequence. One long case,
// Sq = Sk = 65536 (the scores alone would take 16 GiB), must complete while the resident set
// grows by less than 64 MiB. About 10-20 s on two cores; the sanitizer test preset leaves it out
// (ASan's shadow memory and quarantine would be measured, not the library's).
//
// An unoptimised build (-O0, a Debug build: no __OPTIMIZE__) runs the kernels about 70 times
// slower: 65536² takes 5 minutes on two idle cores, past ctest's 300 s on a busy machine, and
// half a Debug suite's run. There the keys stay 65536 long and the queries are 4096: the same
// bound on the same measurement, with a score matrix of 1 GiB, 16 times the bound, and every
// query row still attending to all 65536 keys. The tests are built with the library's flags
// (CMAKE_BUILD_TYPE), so this unit's __OPTIMIZE__ is the library's.
#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include "simdattn/reference.hpp"
#include "test_support.hpp"

namespace simdattn::testing {
namespace {

// A "Vm...:" line of /proc/self/status in bytes; -1 when it is missing.
int64_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    int64_t kib = 0;
    if (key == field + ":" && status >> kib) return kib * 1024;
    status.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return -1;
}

// Resets the kernel's record of this process's peak resident set (VmHWM) to the current one, so
// the peak of a single call can be read afterwards (proc(5), clear_refs, value 5).
bool reset_peak_resident_set() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

#ifdef __OPTIMIZE__
constexpr int64_t kQueries = 65536;
#else
constexpr int64_t kQueries = 4096;
#endif

TEST(HardeningMemory, FusedSixtyFourKSequenceStaysUnderSixtyFourMiB) {
  constexpr int64_t kKeys = 65536, kHeadDim = 64;
  constexpr int64_t kBound = 64 << 20;
  static_assert(kQueries * kKeys * int64_t{sizeof(float)} >= 16 * kBound,
                "the score matrix the bound rules out must dwarf the bound");
  // Inputs and output allocated and written (hence resident) before the measurement starts.
  Tensor q(1, 1, kQueries, kHeadDim), k(1, 1, kKeys, kHeadDim), v(1, 1, kKeys, kHeadDim);
  Tensor out(1, 1, kQueries, kHeadDim);
  q.fill_uniform(31, -2.0f, 2.0f);
  k.fill_uniform(32, -2.0f, 2.0f);
  v.fill_uniform(33);
  out.fill(0.0f);
  // The rows checked at the end each look for one key spread over the whole sequence: q = 8·k
  // makes that logit about 8·|k|²/8 ≈ 85, far above the others (at most about 45 here), so the
  // answer is nearly that key's value row, and a key block lost or misplaced anywhere changes it
  // by O(1). Query row key % Sq looks for key `key`: the key's own row when Sq = Sk.
  const int64_t checked_keys[] = {0, 4097, 40000, kKeys - 1};
  auto query_row = [](int64_t key) { return key % kQueries; };
  for (int64_t key : checked_keys) {
    for (int64_t d = 0; d < kHeadDim; ++d) q.at(0, 0, query_row(key), d) = 8.0f * k.at(0, 0, key, d);
  }
  AttentionOptions options;
  options.algorithm = Algorithm::fused;
  // A small call first: OpenMP's threads and their stacks exist before the measurement.
  {
    Tensor small_out(1, 1, 300, kHeadDim);
    ConstTensorView q_head = q.in(), k_head = k.in(), v_head = v.in();
    q_head.shape[2] = k_head.shape[2] = v_head.shape[2] = 300;
    attention(q_head, k_head, v_head, small_out.view, options);
  }

  ASSERT_TRUE(reset_peak_resident_set()) << "cannot write /proc/self/clear_refs";
  const int64_t resident_before = status_bytes("VmRSS");
  ASSERT_GT(resident_before, 0) << "no VmRSS in /proc/self/status";
  ASSERT_LE(status_bytes("VmHWM"), resident_before + (1 << 20)) << "the peak was not reset";
  attention(q.in(), k.in(), v.in(), out.view, options);
  const int64_t peak_growth = status_bytes("VmHWM") - resident_before;
  EXPECT_LT(peak_growth, kBound) << "the resident set grew by " << (peak_growth >> 20)
                                 << " MiB during one fused call with Sq = " << kQueries
                                 << ", Sk = " << kKeys;

  // And the answer is right: a few rows against the oracle (one row of the oracle reads all
  // 65536 keys, so only a few are checked). |logit| <= scale · D · max|q| · max|k|.
  const double logits = kHeadDim * max_magnitude(q) * max_magnitude(k) / std::sqrt(double(kHeadDim));
  const double tolerance = attention_tolerance(logits, kHeadDim, kKeys, 1.0);
  for (int64_t key : checked_keys) {
    const int64_t row = query_row(key);
    Tensor expected(1, 1, 1, kHeadDim), actual(1, 1, 1, kHeadDim);
    ConstTensorView q_row = q.in();
    q_row.data = q.view.row(0, 0, row);
    q_row.shape[2] = 1;
    reference::attention(q_row, k.in(), v.in(), expected.view);
    for (int64_t d = 0; d < kHeadDim; ++d) actual.at(0, 0, 0, d) = out.at(0, 0, row, d);
    EXPECT_TRUE(all_close(expected, actual, tolerance, "row " + std::to_string(row)));
  }
}

}  // namespace
}  // namespace simdattn::testing

// Decoding with the KV cache split across MPI ranks (simdattn::mpi), and its speed against one
// rank; with the argument "prefill", ring-attention prefill and how much of its communication the
// computation hid. Run it as, e.g.,
//   OMP_NUM_THREADS=2 mpirun -np 1 build/examples/simdattn_context_parallel_decode
//   OMP_NUM_THREADS=1 mpirun -np 2 build/examples/simdattn_context_parallel_decode
// Shapes: decode_gqa and a `long`-like prefill of docs/bench-shapes.md (the prefill shortened
// to 4096 positions so that it runs in seconds on 2 cores).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "simdattn/mpi.hpp"
#include "simdattn/simdattn.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> random_floats(size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& x : values) x = distribution(generator);
  return values;
}

// The best of `repeats` timings of call(), in milliseconds, every rank starting together.
template <class Call>
double best_ms(int repeats, Call&& call) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const Clock::time_point start = Clock::now();
    call();
    MPI_Barrier(MPI_COMM_WORLD);
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return best;
}

// decode_gqa: 1 query of 32 heads against 8192 keys of 8 kv heads, head_dim 128; rank r holds
// keys [8192·r/N, 8192·(r+1)/N). Checks the result against attention() over the whole cache.
int decode(int rank, int ranks) {
  const int64_t B = 1, Hq = 32, Hkv = 8, Sk = 8192, D = 128;
  const std::vector<float> q = random_floats(B * Hq * D, 1), k = random_floats(B * Hkv * Sk * D, 2),
                           v = random_floats(B * Hkv * Sk * D, 3);
  const int64_t first = Sk * rank / ranks, count = Sk * (rank + 1) / ranks - first;
  const auto whole_k = simdattn::bhsd_view(k.data(), B, Hkv, Sk, D);
  const auto whole_v = simdattn::bhsd_view(v.data(), B, Hkv, Sk, D);
  auto shard = [&](simdattn::BasicTensorView<const float> view) {
    view.data = view.row(0, 0, first);
    view.shape[2] = count;
    return view;
  };
  std::vector<float> out(B * Hq * D), single(B * Hq * D);
  const auto qv = simdattn::bhsd_view(q.data(), B, Hq, 1, D);
  auto run = [&] {
    simdattn::mpi::context_parallel_attention(MPI_COMM_WORLD, qv, shard(whole_k), shard(whole_v), first,
                                              simdattn::bhsd_view(out.data(), B, Hq, 1, D));
  };
  const double split_ms = best_ms(30, run);
  simdattn::attention(qv, whole_k, whole_v, simdattn::bhsd_view(single.data(), B, Hq, 1, D));
  double difference = 0.0;
  for (size_t i = 0; i < out.size(); ++i) difference = std::max(difference, double(std::fabs(out[i] - single[i])));
  if (rank == 0) {
    std::printf("decode_gqa, cache split over %d rank(s): %.3f ms per token (%lld keys per rank)\n", ranks,
                split_ms, static_cast<long long>(count));
    std::printf("largest difference from one attention() call: %.3g\n", difference);
  }
  return difference < 1e-4 ? 0 : 1;
}

// Ring prefill: 8 heads, 4096 positions, head_dim 64, not causal (the `long` shape, shortened).
int prefill(int rank, int ranks) {
  const int64_t B = 1, H = 8, S = 4096, D = 64;
  const int64_t first = S * rank / ranks, count = S * (rank + 1) / ranks - first;
  const std::vector<float> q = random_floats(B * H * count * D, 10 + rank), k = random_floats(B * H * count * D, 20 + rank),
                           v = random_floats(B * H * count * D, 30 + rank);
  std::vector<float> out(q.size());
  simdattn::mpi::RingTimings timings, best{1e30, 0, 1e30};
  best_ms(3, [&] {
    simdattn::mpi::ring_attention(MPI_COMM_WORLD, simdattn::bhsd_view(q.data(), B, H, count, D),
                                  simdattn::bhsd_view(k.data(), B, H, count, D),
                                  simdattn::bhsd_view(v.data(), B, H, count, D),
                                  simdattn::bhsd_view(out.data(), B, H, count, D), {}, {simdattn::mpi::RingLayout::contiguous, &timings});
    if (timings.total_seconds < best.total_seconds) best = timings;
  });
  // What one step's messages cost alone: K and V of one block sent to the next rank.
  std::vector<float> block(2 * k.size()), incoming(block.size());
  const double exchange_ms = best_ms(5, [&] {
    MPI_Sendrecv(block.data(), static_cast<int>(block.size()), MPI_FLOAT, (rank + 1) % ranks, 0, incoming.data(),
                 static_cast<int>(incoming.size()), MPI_FLOAT, (rank + ranks - 1) % ranks, 0, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
  });
  const double communication_ms = exchange_ms * (ranks - 1);
  if (rank == 0) {
    std::printf("ring prefill, %d rank(s): %.1f ms total, %.1f ms computing, %.2f ms waiting for blocks\n", ranks,
                best.total_seconds * 1e3, best.compute_seconds * 1e3, best.wait_seconds * 1e3);
    std::printf("block messages alone: %.2f ms per step, %.2f ms in all; hidden behind compute: %.0f%%\n",
                exchange_ms, communication_ms,
                communication_ms > 0 ? 100.0 * std::max(0.0, 1.0 - best.wait_seconds * 1e3 / communication_ms) : 100.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const bool ring = argc > 1 && std::strcmp(argv[1], "prefill") == 0;
  const int status = ring ? prefill(rank, ranks) : decode(rank, ranks);
  MPI_Finalize();
  return status;
}

// Consumer check of the installed simdattn::mpi: the keys of one decoding step split across the
// ranks, merged by context_parallel_attention, against one simdattn::attention call over all of
// them. Rank 0 prints "mpi_consumer ok" and every rank exits 0 when they agree.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <simdattn/mpi.hpp>
#include <simdattn/simdattn.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const int64_t Hq = 4, Hkv = 2, Sk = 37, D = 16;
  std::vector<float> q(Hq * D), k(Hkv * Sk * D), v(Hkv * Sk * D);
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.37f * static_cast<float>(i));
  for (size_t i = 0; i < k.size(); ++i) k[i] = std::cos(0.11f * static_cast<float>(i));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.05f * static_cast<float>(i) + 1.0f);
  const int64_t first = Sk * rank / ranks, count = Sk * (rank + 1) / ranks - first;
  auto shard = [&](const std::vector<float>& whole) {
    simdattn::BasicTensorView<const float> view = simdattn::bhsd_view(whole.data(), 1, Hkv, Sk, D);
    view.data = view.row(0, 0, first);
    view.shape[2] = count;
    return view;
  };
  std::vector<float> merged(Hq * D), alone(Hq * D);
  simdattn::AttentionOptions options;
  options.causal = simdattn::Causal::bottom_right;
  simdattn::mpi::context_parallel_attention(MPI_COMM_WORLD, simdattn::bhsd_view(q.data(), 1, Hq, 1, D),
                                            shard(k), shard(v), first,
                                            simdattn::bhsd_view(merged.data(), 1, Hq, 1, D), options);
  simdattn::attention(simdattn::bhsd_view(q.data(), 1, Hq, 1, D),
                      simdattn::bhsd_view(k.data(), 1, Hkv, Sk, D),
                      simdattn::bhsd_view(v.data(), 1, Hkv, Sk, D),
                      simdattn::bhsd_view(alone.data(), 1, Hq, 1, D), options);
  float largest = 0.0f;
  for (size_t i = 0; i < merged.size(); ++i) largest = std::max(largest, std::fabs(merged[i] - alone[i]));
  // Both lie within a few float32 roundings of the exact result (|v| <= 1, 37 keys).
  const bool ok = largest < 1e-5f;
  if (rank == 0) {
    std::printf("simdattn::mpi on %d ranks: largest difference from one attention() call %.3g\n",
                ranks, static_cast<double>(largest));
    std::printf("mpi_consumer %s\n", ok ? "ok" : "MISMATCH");
  }
  MPI_Finalize();
  return ok ? 0 : 1;
}

// context_parallel_attention: agree on the problem, compute this rank's partial (out, lse) in
// scratch, agree that every rank succeeded, gather the partials, merge them in rank order.
#include <mpi.h>

#include <climits>
#include <vector>

#include "mpi/collective_errors.hpp"
#include "mpi/shard_checks.hpp"
#include "mpi/shard_geometry.hpp"
#include "simdattn/merge.hpp"
#include "simdattn/mpi.hpp"

namespace simdattn::mpi {

void context_parallel_attention(MPI_Comm comm, AnyConstTensorView q, AnyConstTensorView k_shard,
                                AnyConstTensorView v_shard, int64_t key_offset, AnyTensorView out,
                                const AttentionOptions& options) {
  using namespace detail;
  static constexpr const char* kFunction = "simdattn::mpi::context_parallel_attention";
  int rank = 0, ranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &ranks);

  // 1. The problem, decided together: shapes, options, then how the shards tile the keys.
  throw_if_any_rank_failed(comm, kFunction, check_local_shapes(q, k_shard, v_shard, out, options));
  throw_if_any_rank_failed(comm, kFunction,
                           compare_across_ranks(comm, shared_values(q, k_shard, v_shard, out, options, true)));
  const int64_t batch = q.shape[0];
  throw_if_any_rank_failed(comm, kFunction, compare_across_ranks(comm, kv_length_values(options, batch)));
  const std::vector<int64_t> offsets = gather_from_ranks(comm, key_offset);
  const std::vector<int64_t> sizes = gather_from_ranks(comm, k_shard.shape[2]);
  int64_t total_keys = 0;
  std::string error;
  for (int r = 0; r < ranks; ++r) {
    if (r == rank && offsets[r] != total_keys) {
      error = message("key_offset must be ", total_keys, " (the keys of ranks 0..", rank - 1,
                      ": the shards tile the sequence in rank order), got ", offsets[r]);
    }
    total_keys += sizes[r];
  }
  if (error.empty()) error = check_sequence_lengths(options, batch, total_keys);
  const int64_t rows = batch * q.shape[1] * q.shape[2];
  const int64_t floats = rows * out.shape[3];
  if (error.empty() && (floats > INT_MAX / ranks || rows > INT_MAX / ranks)) {
    error = message("out must hold fewer than ", INT_MAX / ranks,
                    " floats per rank (MPI counts are int), got ", floats);
  }
  throw_if_any_rank_failed(comm, kFunction, error);

  // 2. This rank's partial, in fp32 scratch: attention() validates everything else and writes
  // nothing of the caller's, so a rank that throws here still lets the others stop cleanly.
  const std::vector<int64_t> lengths = sequence_lengths(options, batch, total_keys);
  const int64_t heads = q.shape[1], queries = q.shape[2], value_dim = out.shape[3];
  std::vector<float> partial_out(static_cast<size_t>(floats)), partial_lse(static_cast<size_t>(rows));
  AttentionOptions local = options;
  local.shard = key_shard(options.causal, 0, queries, queries, key_offset);
  local.kv_lengths = lengths.data();
  local.lse = bhsd_view(partial_lse.data(), batch, heads, queries, 1);
  // The learned sinks belong in the denominator once: rank 0's partial carries them, and the
  // merge weighs its lse (which includes the sink) against the others'.
  if (rank != 0) local.sinks = nullptr;
  error.clear();
  try {
    attention(q, k_shard, v_shard, bhsd_view(partial_out.data(), batch, heads, queries, value_dim), local);
  } catch (const std::invalid_argument& failure) {
    error = failure.what();
  }
  throw_if_any_rank_failed(comm, kFunction, error);

  // 3. Every partial on every rank, merged in rank order: the same inputs and the same order give
  // every rank the same bits.
  std::vector<float> all_out(static_cast<size_t>(floats * ranks)), all_lse(static_cast<size_t>(rows * ranks));
  MPI_Allgather(partial_out.data(), static_cast<int>(floats), MPI_FLOAT, all_out.data(),
                static_cast<int>(floats), MPI_FLOAT, comm);
  MPI_Allgather(partial_lse.data(), static_cast<int>(rows), MPI_FLOAT, all_lse.data(),
                static_cast<int>(rows), MPI_FLOAT, comm);
  std::vector<AnyConstTensorView> outs;
  std::vector<ConstTensorView> lses;
  for (int r = 0; r < ranks; ++r) {
    outs.push_back(bhsd_view<const float>(all_out.data() + r * floats, batch, heads, queries, value_dim));
    lses.push_back(bhsd_view<const float>(all_lse.data() + r * rows, batch, heads, queries, 1));
  }
  merge_attention_states(outs.data(), lses.data(), ranks, out, options.lse, options.num_threads);
}

}  // namespace simdattn::mpi

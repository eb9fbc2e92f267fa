// The checks both collective entry points make before any rank computes: what every rank must
// pass alike, what each rank's own shard must satisfy, and the shard sizes of all ranks.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "mpi/collective_errors.hpp"
#include "simdattn/attention.hpp"

namespace simdattn::mpi::detail {

// The shapes, dtypes and options every rank must pass alike (the query count too when
// same_queries: context-parallel decoding); kv_lengths' entries apart, compared once the batch is
// known to agree.
std::vector<SharedValue> shared_values(AnyConstTensorView q, AnyConstTensorView k,
                                       AnyConstTensorView v, AnyTensorView out,
                                       const AttentionOptions& options, bool same_queries);
std::vector<SharedValue> kv_length_values(const AttentionOptions& options, int64_t batch);

// This rank's own shapes against its queries (k, v and out agree with q), and the options the
// collective functions reject; "" when all is well.
std::string check_local_shapes(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                               AnyTensorView out, const AttentionOptions& options);

// Every rank's value, in rank order (collective).
std::vector<int64_t> gather_from_ranks(MPI_Comm comm, int64_t value);

// kv_lengths checked against the sequence's total keys: "" or the error.
std::string check_sequence_lengths(const AttentionOptions& options, int64_t batch,
                                   int64_t total_keys);

// options.kv_lengths, or total_keys for every batch entry: the sequence's lengths that the
// shards' KeyShard calls need (a shard that does not end the sequence must be told where it ends).
std::vector<int64_t> sequence_lengths(const AttentionOptions& options, int64_t batch,
                                      int64_t total_keys);

}  // namespace simdattn::mpi::detail

// shared_values, check_local_shapes, gather_from_ranks and the kv_lengths checks.
#include "mpi/shard_checks.hpp"

#include <cstring>

namespace simdattn::mpi::detail {
namespace {

int64_t bits_of(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

}  // namespace

std::vector<SharedValue> shared_values(AnyConstTensorView q, AnyConstTensorView k,
                                       AnyConstTensorView v, AnyTensorView out,
                                       const AttentionOptions& options, bool same_queries) {
  std::vector<SharedValue> values = {
      {"q.shape[0] (batch)", q.shape[0]},
      {"q.shape[1] (query heads)", q.shape[1]},
      {"q.shape[3] (head_dim)", q.shape[3]},
      {"k_shard.shape[1] (kv heads)", k.shape[1]},
      {"v_shard.shape[3] (Dv)", v.shape[3]},
      {"q.dtype", static_cast<int64_t>(q.dtype)},
      {"k_shard.dtype", static_cast<int64_t>(k.dtype)},
      {"out.dtype", static_cast<int64_t>(out.dtype)},
      {"options.scale", options.scale.has_value() ? bits_of(*options.scale) : -1},
      {"options.causal", static_cast<int64_t>(options.causal)},
      {"options.window_left", options.window_left},
      {"options.window_right", options.window_right},
      {"options.softcap", bits_of(options.softcap)},
      {"options.sink_tokens", options.sink_tokens},
      {"options.kv_lengths (null or not)", options.kv_lengths != nullptr},
      {"options.alibi_slopes (null or not)", options.alibi_slopes != nullptr},
      {"options.sinks (null or not)", options.sinks != nullptr},
      {"options.mask (absent or not)", options.mask.has_value()},
      {"options.lse (absent or not)", options.lse.has_value()},
  };
  if (same_queries) values.push_back({"q.shape[2] (Sq)", q.shape[2]});
  return values;
}

std::vector<SharedValue> kv_length_values(const AttentionOptions& options, int64_t batch) {
  std::vector<SharedValue> values;
  if (options.kv_lengths == nullptr) return values;
  for (int64_t b = 0; b < batch; ++b) values.push_back({"options.kv_lengths[b]", options.kv_lengths[b]});
  return values;
}

std::string check_local_shapes(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                               AnyTensorView out, const AttentionOptions& options) {
  if (k.shape[0] != q.shape[0]) return message("k_shard.shape[0] must equal q.shape[0] = ", q.shape[0], ", got ", k.shape[0]);
  if (k.shape[3] != q.shape[3]) return message("k_shard.shape[3] must equal q.shape[3] = ", q.shape[3], ", got ", k.shape[3]);
  for (int d = 0; d < 3; ++d) {
    if (v.shape[d] != k.shape[d]) {
      return message("v_shard.shape[", d, "] must equal k_shard.shape[", d, "] = ", k.shape[d], ", got ", v.shape[d]);
    }
  }
  const int64_t expected[4] = {q.shape[0], q.shape[1], q.shape[2], v.shape[3]};
  for (int d = 0; d < 4; ++d) {
    if (out.shape[d] != expected[d]) {
      return message("out.shape[", d, "] must be ", expected[d], " ([B, Hq, Sq, Dv] of q and v), got ", out.shape[d]);
    }
  }
  if (options.weights.has_value()) return "options.weights must be absent (each rank holds only its keys), got a view";
  if (options.shard.has_value()) return "options.shard must be absent (the collective functions set it), got a KeyShard";
  return "";
}

std::vector<int64_t> gather_from_ranks(MPI_Comm comm, int64_t value) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  std::vector<int64_t> values(static_cast<size_t>(size));
  MPI_Allgather(&value, 1, MPI_INT64_T, values.data(), 1, MPI_INT64_T, comm);
  return values;
}

std::string check_sequence_lengths(const AttentionOptions& options, int64_t batch,
                                   int64_t total_keys) {
  if (options.kv_lengths == nullptr) return "";
  for (int64_t b = 0; b < batch; ++b) {
    if (options.kv_lengths[b] < 0 || options.kv_lengths[b] > total_keys) {
      return message("options.kv_lengths[", b, "] must be in [0, ", total_keys,
                     "] (the keys of all ranks' shards), got ", options.kv_lengths[b]);
    }
  }
  return "";
}

std::vector<int64_t> sequence_lengths(const AttentionOptions& options, int64_t batch,
                                      int64_t total_keys) {
  if (options.kv_lengths != nullptr) return {options.kv_lengths, options.kv_lengths + batch};
  return std::vector<int64_t>(static_cast<size_t>(batch), total_keys);
}

}  // namespace simdattn::mpi::detail

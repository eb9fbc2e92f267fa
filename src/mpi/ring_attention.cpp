// ring_attention: agree on the problem; then N steps, each sending the block at hand to the next
// rank and receiving the next block from the previous one while computing on the block at hand;
// each step's partial (out, lse) merges into a running state; the state is written out once every
// rank knows that no rank failed.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "mpi/collective_errors.hpp"
#include "mpi/kv_block.hpp"
#include "mpi/shard_checks.hpp"
#include "mpi/shard_geometry.hpp"
#include "simdattn/merge.hpp"
#include "simdattn/mpi.hpp"

namespace simdattn::mpi {
namespace {

using detail::Piece;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Rows [piece.row_begin, + piece.rows) of a [B, H, S, D] view.
template <class View>
View rows_of(View view, const Piece& piece) {
  view.shape[2] = piece.rows;
  if (piece.rows > 0) view.data = view.row(0, 0, piece.row_begin);
  if (view.shape[0] == 0 || view.shape[1] == 0) view.data = nullptr;
  return view;
}

// The layout's pieces of rank r, for a shard of rows_per_rank[r] rows.
std::vector<Piece> pieces_of(RingLayout layout, const std::vector<int64_t>& rows_per_rank, int r) {
  const int ranks = static_cast<int>(rows_per_rank.size());
  return layout == RingLayout::zigzag ? detail::zigzag_pieces(rows_per_rank[r], r, ranks)
                                      : detail::contiguous_pieces(rows_per_rank, r);
}

// Query pieces cut into chunks, so that the ring can call MPI_Testall between them: a large
// message moves by rendezvous, and an MPI without a progress thread advances it only inside MPI
// calls. Without the calls the transfer waited for MPI_Waitall, after the compute
// (docs/distributed.md). Eight chunks of at least 64 rows keep the tiles full.
std::vector<Piece> in_chunks(const std::vector<Piece>& pieces) {
  constexpr int64_t kChunks = 8, kFewestRows = 64;
  std::vector<Piece> chunks;
  for (const Piece& piece : pieces) {
    const int64_t rows = std::max(kFewestRows, (piece.rows + kChunks - 1) / kChunks);
    for (int64_t first = 0; first < piece.rows; first += rows) {
      const int64_t count = std::min(rows, piece.rows - first);
      chunks.push_back({piece.row_begin + first, count, piece.position + first});
    }
    if (piece.rows == 0) chunks.push_back(piece);
  }
  return chunks;
}

// The zigzag layout's condition: every shard the same even number of rows.
std::string check_zigzag(const std::vector<int64_t>& rows, const char* name) {
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] != rows[0] || rows[r] % 2 != 0) {
      return detail::message(name, " of rank ", r, " must hold ", rows[0] % 2 == 0 ? rows[0] : rows[0] + 1,
                             " rows (zigzag: 2 equal chunks on every rank), got ", rows[r]);
    }
  }
  return "";
}

}  // namespace

void ring_attention(MPI_Comm comm, AnyConstTensorView q_shard, AnyConstTensorView k_shard,
                    AnyConstTensorView v_shard, AnyTensorView out_shard,
                    const AttentionOptions& options, const RingOptions& ring) {
  using namespace detail;
  static constexpr const char* kFunction = "simdattn::mpi::ring_attention";
  const Clock::time_point start = Clock::now();
  int rank = 0, ranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &ranks);

  // 1. The problem, decided together.
  std::string error = check_local_shapes(q_shard, k_shard, v_shard, out_shard, options);
  if (error.empty() && options.mask.has_value()) {
    error = "options.mask must be absent (ring_attention moves keys, not masks), got a view";
  }
  throw_if_any_rank_failed(comm, kFunction, error);
  throw_if_any_rank_failed(comm, kFunction,
                           compare_across_ranks(comm, shared_values(q_shard, k_shard, v_shard, out_shard, options, false)));
  const int64_t batch = q_shard.shape[0], heads = q_shard.shape[1], value_dim = v_shard.shape[3];
  throw_if_any_rank_failed(comm, kFunction, compare_across_ranks(comm, kv_length_values(options, batch)));
  const std::vector<int64_t> query_rows = gather_from_ranks(comm, q_shard.shape[2]);
  const std::vector<int64_t> key_rows = gather_from_ranks(comm, k_shard.shape[2]);
  const std::vector<int64_t> k_groups = gather_from_ranks(comm, options.k_scale ? options.k_scale->shape[3] : 0);
  const std::vector<int64_t> v_groups = gather_from_ranks(comm, options.v_scale ? options.v_scale->shape[3] : 0);
  int64_t query_total = 0, key_total = 0;
  for (int r = 0; r < ranks; ++r) query_total += query_rows[r], key_total += key_rows[r];
  if (ring.layout == RingLayout::zigzag) {
    error = check_zigzag(query_rows, "q_shard");
    if (error.empty()) error = check_zigzag(key_rows, "k_shard");
  }
  if (error.empty()) error = check_sequence_lengths(options, batch, key_total);
  const int64_t row_bytes = (k_shard.shape[3] + v_shard.shape[3]) * dtype_size(k_shard.dtype) + 4 * 64;
  for (int r = 0; r < ranks && error.empty(); ++r) {
    if (batch * k_shard.shape[1] * key_rows[r] * row_bytes > INT_MAX) {
      error = message("k_shard of rank ", r, " must hold under ", INT_MAX,
                      " bytes with v_shard (MPI counts are int), got ", key_rows[r], " keys");
    }
  }
  // k, v and their scales in full, against no query: attention() checks them before any work.
  if (error.empty()) {
    AnyConstTensorView no_queries = q_shard;
    no_queries.shape[2] = 0;
    std::vector<float> nothing;
    AttentionOptions probe = options;
    probe.shard = KeyShard{};
    probe.kv_lengths = nullptr;
    probe.lse.reset();
    try {
      attention(no_queries, k_shard, v_shard, bhsd_view(nothing.data(), batch, heads, 0, value_dim), probe);
    } catch (const std::invalid_argument& failure) {
      error = failure.what();
    }
  }
  throw_if_any_rank_failed(comm, kFunction, error);

  // 2. The running state: no key seen yet (zeros, lse -inf), or the sink alone (lse = sink, out 0):
  // merging a state with weight exp(sink) and no value adds the sink to the denominator once.
  const std::vector<int64_t> lengths = sequence_lengths(options, batch, key_total);
  const int64_t queries = q_shard.shape[2];
  const int64_t rows = batch * heads * queries, floats = rows * value_dim;
  std::vector<float> state_out(static_cast<size_t>(floats)), state_lse(static_cast<size_t>(rows));
  std::vector<float> next_out(state_out.size()), next_lse(state_lse.size());
  std::vector<float> partial_out(state_out.size()), partial_lse(state_lse.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const float sink = options.sinks != nullptr ? options.sinks[h] : -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < queries; ++i) state_lse[static_cast<size_t>((b * heads + h) * queries + i)] = sink;
    }
  }
  auto state_view = [&](std::vector<float>& data, int64_t dims) {
    return bhsd_view(data.data(), batch, heads, queries, dims);
  };

  // 3. The ring. Block `owner` is in `current`; the next one arrives in `incoming`.
  const std::vector<Piece> my_queries = in_chunks(pieces_of(ring.layout, query_rows, rank));
  auto shape_of = [&](int owner) {
    return BlockShape{batch, k_shard.shape[1], key_rows[owner], k_shard.shape[3], value_dim,
                      k_groups[owner], v_groups[owner], k_shard.dtype};
  };
  KvBlock current, incoming;
  pack_block(k_shard, v_shard, options.k_scale, options.v_scale, shape_of(rank), current);
  const int next = (rank + 1) % ranks, previous = (rank + ranks - 1) % ranks;
  double compute_seconds = 0.0, wait_seconds = 0.0;
  error.clear();
  for (int step = 0; step < ranks; ++step) {
    const int owner = (rank - step + ranks) % ranks;
    const BlockShape shape = shape_of(owner);
    std::vector<MPI_Request> requests;
    if (step + 1 < ranks) {
      const BlockShape arriving = shape_of((owner + ranks - 1) % ranks);
      incoming.resize(arriving);
      auto exchange = [&](auto& out_buffer, auto& in_buffer, MPI_Datatype type, int tag) {
        requests.emplace_back();
        MPI_Irecv(in_buffer.data(), static_cast<int>(in_buffer.size()), type, previous, tag, comm, &requests.back());
        requests.emplace_back();
        MPI_Isend(out_buffer.data(), static_cast<int>(out_buffer.size()), type, next, tag, comm, &requests.back());
      };
      exchange(current.keys, incoming.keys, MPI_UNSIGNED_CHAR, 0);
      exchange(current.values, incoming.values, MPI_UNSIGNED_CHAR, 1);
      exchange(current.key_scales, incoming.key_scales, MPI_FLOAT, 2);
      exchange(current.value_scales, incoming.value_scales, MPI_FLOAT, 3);
    }

    const Clock::time_point compute_start = Clock::now();
    bool any = false;
    std::fill(partial_out.begin(), partial_out.end(), 0.0f);
    std::fill(partial_lse.begin(), partial_lse.end(), -std::numeric_limits<float>::infinity());
    for (const Piece& query_piece : my_queries) {
      for (const Piece& key_piece : pieces_of(ring.layout, key_rows, owner)) {
        if (!error.empty() ||
            block_invisible(options, query_piece, query_total, key_piece, lengths.data(), batch)) {
          continue;
        }
        // One piece against one piece, at their sequence positions; several key pieces of one
        // block land in the same rows, so they go through a second merge.
        AttentionOptions local = options;
        local.shard = key_shard(options.causal, query_piece.position, query_piece.rows, query_total,
                                key_piece.position);
        local.kv_lengths = lengths.data();
        local.sinks = nullptr;
        local.k_scale = current.k_scale(shape);
        local.v_scale = current.v_scale(shape);
        if (local.k_scale) local.k_scale = rows_of(*local.k_scale, key_piece);
        if (local.v_scale) local.v_scale = rows_of(*local.v_scale, key_piece);
        std::vector<float> piece_out(static_cast<size_t>(batch * heads * query_piece.rows * value_dim));
        std::vector<float> piece_lse(static_cast<size_t>(batch * heads * query_piece.rows));
        local.lse = bhsd_view(piece_lse.data(), batch, heads, query_piece.rows, 1);
        try {
          attention(rows_of(q_shard, query_piece), rows_of(current.k(shape), key_piece),
                    rows_of(current.v(shape), key_piece),
                    bhsd_view(piece_out.data(), batch, heads, query_piece.rows, value_dim), local);
        } catch (const std::invalid_argument& failure) {
          error = failure.what();
          continue;
        }
        // partial rows of this query piece ⊕= the piece's state.
        const TensorView partial_rows_out = rows_of(state_view(partial_out, value_dim), query_piece);
        const TensorView partial_rows_lse = rows_of(state_view(partial_lse, 1), query_piece);
        std::vector<float> merged_out(piece_out.size()), merged_lse(piece_lse.size());
        const AnyConstTensorView outs[2] = {partial_rows_out, bhsd_view<const float>(piece_out.data(), batch, heads, query_piece.rows, value_dim)};
        const ConstTensorView lses[2] = {partial_rows_lse, bhsd_view<const float>(piece_lse.data(), batch, heads, query_piece.rows, 1)};
        merge_attention_states(outs, lses, 2, bhsd_view(merged_out.data(), batch, heads, query_piece.rows, value_dim),
                               bhsd_view(merged_lse.data(), batch, heads, query_piece.rows, 1), options.num_threads);
        for (int64_t b = 0; b < batch; ++b) {
          for (int64_t h = 0; h < heads; ++h) {
            for (int64_t i = 0; i < query_piece.rows; ++i) {
              const int64_t from = (b * heads + h) * query_piece.rows + i;
              std::copy_n(merged_out.data() + from * value_dim, value_dim, partial_rows_out.row(b, h, i));
              *partial_rows_lse.row(b, h, i) = merged_lse[static_cast<size_t>(from)];
            }
          }
        }
        any = true;
      }
      // Let the transfers of this step advance (see in_chunks); a no-op once they are done.
      if (!requests.empty()) {
        int done = 0;
        MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
      }
    }
    if (any) {
      // state ⊕= this step's partial, in step order: the same order on every run.
      const AnyConstTensorView outs[2] = {state_view(state_out, value_dim), state_view(partial_out, value_dim)};
      const ConstTensorView lses[2] = {state_view(state_lse, 1), state_view(partial_lse, 1)};
      merge_attention_states(outs, lses, 2, state_view(next_out, value_dim), state_view(next_lse, 1),
                             options.num_threads);
      state_out.swap(next_out);
      state_lse.swap(next_lse);
    }
    compute_seconds += seconds_since(compute_start);

    const Clock::time_point wait_start = Clock::now();
    if (!requests.empty()) MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
    wait_seconds += seconds_since(wait_start);
    if (step + 1 < ranks) std::swap(current, incoming);
  }

  // 4. Written only when every rank computed without error.
  throw_if_any_rank_failed(comm, kFunction, error);
  const AnyConstTensorView final_out[1] = {state_view(state_out, value_dim)};
  const ConstTensorView final_lse[1] = {state_view(state_lse, 1)};
  merge_attention_states(final_out, final_lse, 1, out_shard, options.lse, options.num_threads);
  if (ring.timings != nullptr) *ring.timings = {compute_seconds, wait_seconds, seconds_since(start)};
}

}  // namespace simdattn::mpi

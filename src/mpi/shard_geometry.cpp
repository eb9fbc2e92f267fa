// key_shard, the layouts' pieces and block_invisible: integer geometry, no MPI.
#include "mpi/shard_geometry.hpp"

#include <algorithm>
#include <limits>

namespace simdattn::mpi::detail {

KeyShard key_shard(Causal causal, int64_t query_begin, int64_t query_rows, int64_t query_total,
                   int64_t key_offset) {
  // top_left puts row 0 at position 0, the others put the last row at the sequence's last query.
  const int64_t shift = causal == Causal::top_left ? query_begin
                                                   : query_begin + query_rows - query_total;
  return {key_offset, shift};
}

std::vector<Piece> contiguous_pieces(const std::vector<int64_t>& rows_per_rank, int rank) {
  int64_t position = 0;
  for (int r = 0; r < rank; ++r) position += rows_per_rank[static_cast<size_t>(r)];
  return {{0, rows_per_rank[static_cast<size_t>(rank)], position}};
}

std::vector<Piece> zigzag_pieces(int64_t rows, int rank, int ranks) {
  const int64_t chunk = rows / 2;
  return {{0, chunk, rank * chunk}, {chunk, chunk, (2 * int64_t{ranks} - 1 - rank) * chunk}};
}

bool block_invisible(const AttentionOptions& options, const Piece& queries, int64_t query_total,
                     const Piece& keys, const int64_t* kv_lengths, int64_t batch) {
  if (queries.rows == 0 || keys.rows == 0) return true;
  const int64_t first_key = keys.position, last_key = keys.position + keys.rows - 1;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t length = kv_lengths[b];
    if (first_key >= length) continue;  // none of these keys exists for batch b
    const int64_t off = options.causal == Causal::top_left ? 0 : length - query_total;
    const int64_t first_diagonal = queries.position + off;
    const int64_t last_diagonal = queries.position + queries.rows - 1 + off;
    const bool causal_past = options.causal != Causal::none && first_key > last_diagonal;
    const bool right_past = options.window_right >= 0 && first_key > last_diagonal + options.window_right;
    const bool left_before = options.window_left >= 0 && last_key < first_diagonal - options.window_left &&
                             first_key >= options.sink_tokens;
    if (!causal_past && !right_past && !left_before) return false;
  }
  return true;
}

}  // namespace simdattn::mpi::detail

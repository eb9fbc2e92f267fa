// Where a rank's queries and keys sit in the sequence, as the core library's KeyShard says it, and
// which blocks of keys a range of queries cannot see at all (a ring step skips those).
#pragma once

#include <cstdint>
#include <vector>

#include "simdattn/attention.hpp"

namespace simdattn::mpi::detail {

// Rows [row_begin, row_begin + rows) of a rank's shard are the sequence's positions
// [position, position + rows).
struct Piece {
  int64_t row_begin, rows, position;
};

// The KeyShard of a call whose queries are positions [query_begin, query_begin + query_rows) of
// query_total queries and whose first key is the sequence's key key_offset (attention.hpp:
// the diagonal shift is the query shard's offset from where the alignment puts row 0).
KeyShard key_shard(Causal causal, int64_t query_begin, int64_t query_rows, int64_t query_total,
                   int64_t key_offset);

// The pieces of rank `rank` of `ranks` whose shard holds `rows` rows, given every rank's rows in
// rank order, for the contiguous layout (one piece after the rows of the ranks before it) or the
// zigzag one (chunks rank and 2·ranks - 1 - rank of equal size rows / 2).
std::vector<Piece> contiguous_pieces(const std::vector<int64_t>& rows_per_rank, int rank);
std::vector<Piece> zigzag_pieces(int64_t rows, int rank, int ranks);

// Whether no query of `queries` can see any key of `keys` in any batch: past every causal
// diagonal, before every window's left edge (with no sink token among them), or past every
// sequence's end. kv_lengths: the sequence's length per batch (batch entries).
bool block_invisible(const AttentionOptions& options, const Piece& queries, int64_t query_total,
                     const Piece& keys, const int64_t* kv_lengths, int64_t batch);

}  // namespace simdattn::mpi::detail

// The oracles of attention_varlen and attention_paged: unpack each sequence (gathering a paged
// cache's blocks into a dense copy, bytes as stored) and run reference::attention on it alone.
#include <cstring>
#include <optional>
#include <vector>

#include "api/validate.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/serving.hpp"

namespace simdattn::reference {
namespace {

// Positions [first, first + count) of a packed [1, H, total, X] view. (A mask broadcast along
// the positions is passed whole by sequence_options instead: a view of one position is not
// broadcast by itself, since a packed total of 1 is one sequence's only row.)
template <class View>
View positions(View view, int64_t first, int64_t count) {
  view.data = view.row(0, 0, first);
  view.shape[2] = count;
  return view;
}

// The options of sequence b alone: its rows of lse and of the mask, its keys of the mask.
AttentionOptions sequence_options(const AttentionOptions& options, int64_t first_query,
                                  int64_t queries, int64_t keys) {
  AttentionOptions sequence = options;
  if (options.lse.has_value()) sequence.lse = positions(*options.lse, first_query, queries);
  if (options.mask.has_value()) {
    AnyConstTensorView mask = *options.mask;
    if (mask.shape[2] != 1) mask = positions(mask, first_query, queries);
    mask.shape[3] = keys;
    sequence.mask = mask;
  }
  return sequence;
}

// A dense [1, H, rows, width] copy of some rows of a pool, in its own dtype.
struct GatheredRows {
  std::vector<unsigned char> bytes;
  std::array<int64_t, 4> shape{}, strides{};
};

// Keys [0, length) of sequence b from `pages` [num_blocks, H, block_size, width].
template <class View>
GatheredRows gather(const View& pages, DType dtype, const PagedCache& cache, int64_t b, int64_t length) {
  const int64_t heads = pages.shape[1], block_size = pages.shape[2], width = pages.shape[3];
  const int64_t row_bytes = width * dtype_size(dtype);
  GatheredRows rows;
  rows.bytes.resize(static_cast<size_t>(heads * length * row_bytes));
  rows.shape = {1, heads, length, width};
  rows.strides = {heads * length * width, length * width, width, 1};
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < length; ++j) {
      const int64_t block = cache.block_table[b * cache.blocks_per_sequence + j / block_size];
      const auto* source = reinterpret_cast<const unsigned char*>(pages.row(block, h, j % block_size));
      std::memcpy(rows.bytes.data() + (h * length + j) * row_bytes, source, static_cast<size_t>(row_bytes));
    }
  }
  return rows;
}

AnyConstTensorView view_of(const GatheredRows& rows, DType dtype) {
  return {rows.bytes.data(), dtype, rows.shape, rows.strides};
}
ConstTensorView float_view_of(const GatheredRows& rows) {
  return {reinterpret_cast<const float*>(rows.bytes.data()), rows.shape, rows.strides};
}

}  // namespace

void attention_varlen(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                      AnyTensorView out, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k,
                      int64_t batch, const AttentionOptions& options) {
  ::simdattn::detail::validate_attention_varlen("simdattn::reference::attention_varlen", q, k, v, out,
                                                cu_seqlens_q, cu_seqlens_k, batch, options);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t first_query = cu_seqlens_q[b], queries = cu_seqlens_q[b + 1] - first_query;
    const int64_t first_key = cu_seqlens_k[b], keys = cu_seqlens_k[b + 1] - first_key;
    AttentionOptions sequence = sequence_options(options, first_query, queries, keys);
    if (options.k_scale.has_value()) sequence.k_scale = positions(*options.k_scale, first_key, keys);
    if (options.v_scale.has_value()) sequence.v_scale = positions(*options.v_scale, first_key, keys);
    reference::attention(positions(q, first_query, queries), positions(k, first_key, keys),
              positions(v, first_key, keys), positions(out, first_query, queries), sequence);
  }
}

void attention_paged(AnyConstTensorView q, const PagedCache& cache, AnyTensorView out,
                     const int32_t* cu_seqlens_q, int64_t batch, const AttentionOptions& options) {
  ::simdattn::detail::validate_attention_paged("simdattn::reference::attention_paged", q, cache, out,
                                               cu_seqlens_q, batch, options);
  const DType dtype = cache.k_pages.dtype;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t first_query = cu_seqlens_q[b], queries = cu_seqlens_q[b + 1] - first_query;
    const int64_t keys = cache.seq_lens[b];
    const GatheredRows k = gather(cache.k_pages, dtype, cache, b, keys);
    const GatheredRows v = gather(cache.v_pages, dtype, cache, b, keys);
    AttentionOptions sequence = sequence_options(options, first_query, queries, keys);
    std::optional<GatheredRows> k_scale, v_scale;
    if (cache.k_scale_pages.has_value()) {
      k_scale = gather(*cache.k_scale_pages, DType::f32, cache, b, keys);
      v_scale = gather(*cache.v_scale_pages, DType::f32, cache, b, keys);
      sequence.k_scale = float_view_of(*k_scale);
      sequence.v_scale = float_view_of(*v_scale);
    }
    reference::attention(positions(q, first_query, queries), view_of(k, dtype), view_of(v, dtype),
              positions(out, first_query, queries), sequence);
  }
}

}  // namespace simdattn::reference

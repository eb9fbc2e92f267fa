// simdattn._simdattn: the library's functions on NumPy arrays and PyTorch tensors.
//
// This layer takes arrays the Python package has already allocated and checked for kind, and
// turns them into views; the library validates everything else (shapes, strides, overlap,
// options) and throws std::invalid_argument, which nanobind raises as ValueError with the
// library's message. The GIL is released while the library computes.
#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/vector.h>

#include "array_views.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace simdattn::python {
namespace {

using KvLengths = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
// Per-head float32 options (alibi_slopes, sinks), already converted by the package.
using Slopes = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// With layout bshd the library's messages index the BHSD view of q, k, v and out; say so.
[[noreturn]] void rethrow_with_layout(const std::invalid_argument& error, Layout layout) {
  if (layout != Layout::bshd) throw;
  throw std::invalid_argument(
      std::string(error.what()) +
      " (dimensions are numbered as in the [batch, heads, seq, head_dim] view; with "
      "layout='bshd', dimensions 1 and 2 of q, k, v, out, outs and the scales are the array's "
      "2 and 1)");
}

// convert() and quantize_rows() take arrays of 1 to 4 dimensions, padded on the left to the
// library's 4; its messages number the padded dimensions: say so.
[[noreturn]] void rethrow_with_padding(const std::invalid_argument& error, size_t rank) {
  if (rank >= 4) throw;
  throw std::invalid_argument(
      std::string(error.what()) + " (dimensions are numbered as in the 4-D view: an array of " +
      std::to_string(rank) + " dimensions is padded on the left with " +
      std::to_string(4 - rank) + " of size 1)");
}

// 0: bhsd, 1: bshd (the package maps the layout= strings to these).
Layout layout_of(int32_t layout) {
  if (layout != 0 && layout != 1) {
    throw std::invalid_argument("simdattn: layout must be 0 (bhsd) or 1 (bshd), got " +
                                std::to_string(layout));
  }
  return static_cast<Layout>(layout);
}

// Every option of attention() as the Python package passes it (enums as integers, small option
// arrays already converted to contiguous int64 / float32; masks and scales are the caller's).
struct AttentionArguments {
  std::optional<float> scale;
  int32_t causal = 0;
  int64_t window_left = -1;
  int64_t window_right = -1;
  std::optional<InputArray> mask;
  std::optional<KvLengths> kv_lengths;
  float softcap = 0.0f;
  std::optional<Slopes> alibi_slopes;
  std::optional<OutputArray> lse;
  std::optional<OutputArray> weights;
  int num_threads = 0;
  int32_t algorithm = 0;
  std::optional<InputArray> k_scale;
  std::optional<InputArray> v_scale;
  std::optional<Slopes> sinks;
  int64_t sink_tokens = 0;
  std::optional<std::pair<int64_t, int64_t>> shard;  // (key_offset, diagonal_shift)
};

// A per-head option array (alibi_slopes, sinks): one entry per head, as `heads` counts them.
const float* per_head(const std::optional<Slopes>& values, const char* function, const char* name,
                      int64_t heads, const char* meaning) {
  if (!values) return nullptr;
  if (static_cast<int64_t>(values->shape(0)) != heads) {
    throw std::invalid_argument(std::string(function) + ": " + name + " must have " +
                                std::to_string(heads) + " entries (" + meaning + "), got " +
                                std::to_string(values->shape(0)));
  }
  return values->data();
}

// A log-sum-exp: a float32 [B, H, Sq] array seen as [B, H, Sq, 1].
template <class T>
BasicTensorView<T> as_lse_view(const BasicTensorView<T>& padded) {  // padded: [1, B, H, Sq]
  return BasicTensorView<T>(padded.data, {padded.shape[1], padded.shape[2], padded.shape[3], 1},
                            {padded.strides[1], padded.strides[2], padded.strides[3], 1});
}

void expect_lse_rank(size_t rank, const char* function, const std::string& name) {
  if (rank != 3) {
    throw std::invalid_argument(std::string(function) + ": " + name +
                                " must have 3 dimensions [batch, heads, Sq], got " +
                                std::to_string(rank));
  }
}

TensorView lse_view(const OutputArray& array, const char* function, const char* name = "lse") {
  expect_lse_rank(array.ndim(), function, name);
  return as_lse_view(float_output_view(array, function, name, 3));
}

ConstTensorView lse_input_view(const InputArray& array, const char* function,
                               const std::string& name) {
  expect_lse_rank(array.ndim(), function, name);
  return as_lse_view(float_input_view(array, function, name.c_str(), 3));
}

// The options every entry shares (attention, attention_varlen, attention_paged): all but the
// per-layout arrays (kv_lengths, lse, weights, the scales), which each entry views itself.
// `heads` is q's number of heads, which alibi_slopes and sinks must match.
AttentionOptions common_options(const AttentionArguments& arguments, const char* function,
                                int64_t heads) {
  AttentionOptions options;
  options.scale = arguments.scale;
  options.causal = static_cast<Causal>(arguments.causal);
  options.window_left = arguments.window_left;
  options.window_right = arguments.window_right;
  options.softcap = arguments.softcap;
  options.num_threads = arguments.num_threads;
  options.algorithm = static_cast<Algorithm>(arguments.algorithm);
  if (arguments.mask) options.mask = input_view(*arguments.mask, function, "mask", 1);
  options.alibi_slopes =
      per_head(arguments.alibi_slopes, function, "alibi_slopes", heads, "the query heads");
  options.sinks = per_head(arguments.sinks, function, "sinks", heads, "the query heads");
  options.sink_tokens = arguments.sink_tokens;
  if (arguments.shard) options.shard = KeyShard{arguments.shard->first, arguments.shard->second};
  return options;
}

void run_attention(bool reference, const InputArray& q, const InputArray& k, const InputArray& v,
                   const OutputArray& out, const AttentionArguments& arguments, Layout layout) {
  const char* function = reference ? "simdattn.reference.attention" : "simdattn.attention";
  const AnyConstTensorView q_view = input_view(q, function, "q", 4, layout);
  AttentionOptions options = common_options(arguments, function, q_view.heads());
  if (arguments.kv_lengths) {
    if (static_cast<int64_t>(arguments.kv_lengths->shape(0)) != q_view.batch()) {
      throw std::invalid_argument(std::string(function) + ": kv_lengths must have " +
                                  std::to_string(q_view.batch()) + " entries (the batch), got " +
                                  std::to_string(arguments.kv_lengths->shape(0)));
    }
    options.kv_lengths = arguments.kv_lengths->data();
  }
  if (arguments.lse) options.lse = lse_view(*arguments.lse, function);
  if (arguments.weights) {
    options.weights = float_output_view(*arguments.weights, function, "weights", 4);
  }
  if (arguments.k_scale) {
    options.k_scale = float_input_view(*arguments.k_scale, function, "k_scale", 4, layout);
  }
  if (arguments.v_scale) {
    options.v_scale = float_input_view(*arguments.v_scale, function, "v_scale", 4, layout);
  }
  const AnyConstTensorView k_view = input_view(k, function, "k", 4, layout);
  const AnyConstTensorView v_view = input_view(v, function, "v", 4, layout);
  const AnyTensorView out_view = output_view(out, function, "out", 4, layout);
  try {
    nb::gil_scoped_release release;
    if (reference) {
      simdattn::reference::attention(q_view, k_view, v_view, out_view, options);
    } else {
      simdattn::attention(q_view, k_view, v_view, out_view, options);
    }
  } catch (const std::invalid_argument& error) {
    rethrow_with_layout(error, layout);
  }
}

// An int8 cache's scales (k_scale, v_scale) in the cache's layout, when given.
std::optional<ConstTensorView> scales_view(const std::optional<InputArray>& scales,
                                           const char* function, const char* name, Layout layout) {
  if (!scales) return std::nullopt;
  return float_input_view(*scales, function, name, 4, layout);
}

// --- The serving layouts: packed batches (attention_varlen) and paged caches (attention_paged) ---

// cu_seqlens and seq_lens, and the block table: int32 as the library reads them, already
// converted (and range-checked) by the package.
using Int32Vector = nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using BlockTable = nb::ndarray<const int32_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// A packed array [total, heads, dim] (flash_attn_varlen_func's q, k, v, out and the int8
// scales [total, heads, groups]) as the library's view [1, heads, total, dim].
template <class View>
View packed(View view) {  // view: the array padded to [1, total, heads, dim]
  std::swap(view.shape[1], view.shape[2]);
  std::swap(view.strides[1], view.strides[2]);
  return view;
}

template <class Array>
void expect_packed_rank(const Array& array, const char* function, const char* name,
                        const char* dimensions) {
  if (array.ndim() != 3) {
    throw std::invalid_argument(std::string(function) + ": " + name + " must have 3 dimensions " +
                                dimensions + ", got " + std::to_string(array.ndim()));
  }
}

AnyConstTensorView packed_input(const InputArray& array, const char* function, const char* name) {
  expect_packed_rank(array, function, name, "[total, heads, head_dim]");
  return packed(input_view(array, function, name, 3));
}

AnyTensorView packed_output(const OutputArray& array, const char* function) {
  expect_packed_rank(array, function, "out", "[total_q, Hq, Dv]");
  return packed(output_view(array, function, "out", 3));
}

ConstTensorView packed_scales(const InputArray& array, const char* function, const char* name) {
  expect_packed_rank(array, function, name, "[total_k, Hkv, groups]");
  return packed(float_input_view(array, function, name, 3));
}

// The lse of a packed call: float32 [Hq, total_q], seen as the library's [1, Hq, total_q, 1].
TensorView packed_lse(const OutputArray& array, const char* function) {
  if (array.ndim() != 2) {
    throw std::invalid_argument(std::string(function) + ": lse must have 2 dimensions [Hq, " +
                                "total_q], got " + std::to_string(array.ndim()));
  }
  return as_lse_view(float_output_view(array, function, "lse", 2));  // padded: [1, 1, Hq, total_q]
}

// The library numbers the dimensions of its [1, heads, total, dim] views; say how they map to
// the packed arrays.
[[noreturn]] void rethrow_with_packing(const std::invalid_argument& error) {
  throw std::invalid_argument(
      std::string(error.what()) +
      " (dimensions are numbered as in the [1, heads, total, head_dim] view of the packed "
      "[total, heads, head_dim] arrays: the view's dimensions 1, 2 and 3 are the array's 1, 0 "
      "and 2)");
}

void expect_entries(const char* function, const char* name, size_t actual, size_t expected,
                    const char* meaning) {
  if (actual != expected) {
    throw std::invalid_argument(std::string(function) + ": " + name + " must have " +
                                std::to_string(expected) + " entries (" + meaning + "), got " +
                                std::to_string(actual));
  }
}

void run_attention_varlen(bool reference, const InputArray& q, const InputArray& k,
                          const InputArray& v, const OutputArray& out,
                          const Int32Vector& cu_seqlens_q, const Int32Vector& cu_seqlens_k,
                          const AttentionArguments& arguments) {
  const char* function =
      reference ? "simdattn.reference.attention_varlen" : "simdattn.attention_varlen";
  const AnyConstTensorView q_view = packed_input(q, function, "q");
  AttentionOptions options = common_options(arguments, function, q_view.heads());
  if (arguments.lse) options.lse = packed_lse(*arguments.lse, function);
  if (arguments.k_scale) options.k_scale = packed_scales(*arguments.k_scale, function, "k_scale");
  if (arguments.v_scale) options.v_scale = packed_scales(*arguments.v_scale, function, "v_scale");
  const AnyConstTensorView k_view = packed_input(k, function, "k");
  const AnyConstTensorView v_view = packed_input(v, function, "v");
  const AnyTensorView out_view = packed_output(out, function);
  if (cu_seqlens_q.shape(0) < 1) {
    throw std::invalid_argument(std::string(function) +
                                ": cu_seqlens_q must have batch + 1 >= 1 entries, got 0");
  }
  const auto batch = static_cast<int64_t>(cu_seqlens_q.shape(0)) - 1;
  expect_entries(function, "cu_seqlens_k", cu_seqlens_k.shape(0), cu_seqlens_q.shape(0),
                 "batch + 1, as cu_seqlens_q");
  try {
    nb::gil_scoped_release release;
    if (reference) {
      simdattn::reference::attention_varlen(q_view, k_view, v_view, out_view, cu_seqlens_q.data(),
                                            cu_seqlens_k.data(), batch, options);
    } else {
      simdattn::attention_varlen(q_view, k_view, v_view, out_view, cu_seqlens_q.data(),
                                 cu_seqlens_k.data(), batch, options);
    }
  } catch (const std::invalid_argument& error) {
    rethrow_with_packing(error);
  }
}

// The library names the paged cache's parts as fields of PagedCache; the package's arguments
// have their own names.
[[noreturn]] void rethrow_paged(const std::invalid_argument& error, Layout pool_layout) {
  std::string message = error.what();
  static const std::pair<const char*, const char*> names[] = {
      {"cache.k_scale_pages", "k_scale"},   {"cache.v_scale_pages", "v_scale"},
      {"cache.k_pages", "k_cache"},         {"cache.v_pages", "v_cache"},
      {"cache.block_table", "block_table"}, {"cache.seq_lens", "seq_lens"},
      {"cache.blocks_per_sequence", "block_table.shape[1]"}};
  for (const auto& [field, argument] : names) {
    const std::string from = field;
    for (size_t at = message.find(from); at != std::string::npos;
         at = message.find(from, at + std::string(argument).size())) {
      message.replace(at, from.size(), argument);
    }
  }
  // Checks shared with attention() call the pools k and v.
  static const std::regex pool(R"((^|[^A-Za-z0-9_])([kv])\.(shape|dtype|strides))");
  message = std::regex_replace(message, pool, "$1$2_cache.$3");
  // Say how dimensions are numbered where the message numbers some.
  std::string notes;
  if (message.find("q.") != std::string::npos || message.find("out.") != std::string::npos) {
    notes = "q and out are packed [total_q, heads, head_dim] arrays, numbered as in the view "
            "[1, heads, total_q, head_dim]";
  }
  if (pool_layout == Layout::bshd && (message.find("_cache.") != std::string::npos ||
                                      message.find("_scale") != std::string::npos)) {
    notes += std::string(notes.empty() ? "" : "; ") +
             "the pools and their scales are numbered as [num_blocks, Hkv, block_size, "
             "head_dim], the array's dimensions 2 and 1 with layout='bshd'";
  }
  throw std::invalid_argument(notes.empty() ? message : message + " (" + notes + ")");
}

void run_attention_paged(bool reference, const InputArray& q, const InputArray& k_cache,
                         const InputArray& v_cache, const BlockTable& block_table,
                         const Int32Vector& seq_lens, const Int32Vector& cu_seqlens_q,
                         const OutputArray& out, const AttentionArguments& arguments,
                         int32_t layout_code) {
  const Layout pool_layout = layout_of(layout_code);
  const char* function =
      reference ? "simdattn.reference.attention_paged" : "simdattn.attention_paged";
  const AnyConstTensorView q_view = packed_input(q, function, "q");
  AttentionOptions options = common_options(arguments, function, q_view.heads());
  if (arguments.lse) options.lse = packed_lse(*arguments.lse, function);
  PagedCache cache;
  cache.k_pages = input_view(k_cache, function, "k_cache", 4, pool_layout);
  cache.v_pages = input_view(v_cache, function, "v_cache", 4, pool_layout);
  cache.k_scale_pages = scales_view(arguments.k_scale, function, "k_scale", pool_layout);
  cache.v_scale_pages = scales_view(arguments.v_scale, function, "v_scale", pool_layout);
  const auto batch = static_cast<int64_t>(block_table.shape(0));
  cache.block_table = block_table.data();
  cache.blocks_per_sequence = static_cast<int64_t>(block_table.shape(1));
  expect_entries(function, "seq_lens", seq_lens.shape(0), block_table.shape(0),
                 "the batch: block_table.shape[0]");
  cache.seq_lens = seq_lens.data();
  expect_entries(function, "cu_seqlens_q", cu_seqlens_q.shape(0), block_table.shape(0) + 1,
                 "batch + 1: block_table.shape[0] + 1");
  const AnyTensorView out_view = packed_output(out, function);
  try {
    nb::gil_scoped_release release;
    if (reference) {
      simdattn::reference::attention_paged(q_view, cache, out_view, cu_seqlens_q.data(), batch,
                                           options);
    } else {
      simdattn::attention_paged(q_view, cache, out_view, cu_seqlens_q.data(), batch, options);
    }
  } catch (const std::invalid_argument& error) {
    rethrow_paged(error, pool_layout);
  }
}

void run_qk_scores(bool reference, const InputArray& q, const InputArray& k,
                   const OutputArray& scores, float scale, int num_threads, int32_t layout_code,
                   const std::optional<InputArray>& k_scale) {
  const Layout layout = layout_of(layout_code);
  const char* function = reference ? "simdattn.reference.qk_scores" : "simdattn.qk_scores";
  const AnyConstTensorView q_view = input_view(q, function, "q", 4, layout);
  const AnyConstTensorView k_view = input_view(k, function, "k", 4, layout);
  const TensorView scores_view = float_output_view(scores, function, "scores", 4);
  const std::optional<ConstTensorView> k_scale_view =
      scales_view(k_scale, function, "k_scale", layout);
  try {
    nb::gil_scoped_release release;
    if (reference) {
      simdattn::reference::qk_scores(q_view, k_view, scores_view, scale, k_scale_view);
    } else {
      simdattn::qk_scores(q_view, k_view, scores_view, scale, num_threads, k_scale_view);
    }
  } catch (const std::invalid_argument& error) {
    rethrow_with_layout(error, layout);
  }
}

// sinks: one logit per head, the heads being dimension 1 of scores padded to 4 dimensions.
void run_softmax_rows(bool reference, const OutputArray& scores, int num_threads,
                      const std::optional<Slopes>& sinks) {
  const char* function = reference ? "simdattn.reference.softmax_rows" : "simdattn.softmax_rows";
  const TensorView scores_view = float_output_view(scores, function, "scores", 1);
  const float* sink_logits =
      per_head(sinks, function, "sinks", scores_view.shape[1], "the heads: scores.shape[-3]");
  nb::gil_scoped_release release;
  if (reference) {
    simdattn::reference::softmax_rows(scores_view, sink_logits);
  } else {
    simdattn::softmax_rows(scores_view, sink_logits, num_threads);
  }
}

void run_weights_v(bool reference, const InputArray& weights, const InputArray& v,
                   const OutputArray& out, int num_threads, int32_t layout_code,
                   const std::optional<InputArray>& v_scale) {
  const Layout layout = layout_of(layout_code);
  const char* function = reference ? "simdattn.reference.weights_v" : "simdattn.weights_v";
  const ConstTensorView weights_view = float_input_view(weights, function, "weights", 4);
  const AnyConstTensorView v_view = input_view(v, function, "v", 4, layout);
  const AnyTensorView out_view = output_view(out, function, "out", 4, layout);
  const std::optional<ConstTensorView> v_scale_view =
      scales_view(v_scale, function, "v_scale", layout);
  try {
    nb::gil_scoped_release release;
    if (reference) {
      simdattn::reference::weights_v(weights_view, v_view, out_view, v_scale_view);
    } else {
      simdattn::weights_v(weights_view, v_view, out_view, num_threads, v_scale_view);
    }
  } catch (const std::invalid_argument& error) {
    rethrow_with_layout(error, layout);
  }
}

// destination <- source, element by element, between float32, bfloat16 and float16 arrays of
// the same shape (rank 1 to 4).
void run_convert(const InputArray& source, const OutputArray& destination) {
  const char* function = "simdattn.convert";
  const AnyConstTensorView source_view = input_view(source, function, "source", 1);
  const AnyTensorView destination_view = output_view(destination, function, "destination", 1);
  if (source.ndim() != destination.ndim()) {
    throw std::invalid_argument(std::string(function) + ": destination must have " +
                                std::to_string(source.ndim()) + " dimensions (as source), got " +
                                std::to_string(destination.ndim()));
  }
  try {
    nb::gil_scoped_release release;
    simdattn::convert(source_view, destination_view);
  } catch (const std::invalid_argument& error) {
    rethrow_with_padding(error, source.ndim());
  }
}

// destination (int8) and scales (float32, G per row) <- source quantized in groups; all three of
// one rank (1 to 4), scales' last dimension G.
void run_quantize_rows(const InputArray& source, const OutputArray& destination,
                       const OutputArray& scales) {
  const char* function = "simdattn.quantize_rows";
  const AnyConstTensorView source_view = input_view(source, function, "source", 1);
  const BasicTensorView<int8_t> destination_view =
      int8_output_view(destination, function, "destination", 1);
  const TensorView scales_view = float_output_view(scales, function, "scales", 1);
  for (const auto& [name, rank] : {std::pair{"destination", destination.ndim()},
                                   std::pair{"scales", scales.ndim()}}) {
    if (rank != source.ndim()) {
      throw std::invalid_argument(std::string(function) + ": " + name + " must have " +
                                  std::to_string(source.ndim()) +
                                  " dimensions (as source), got " + std::to_string(rank));
    }
  }
  try {
    nb::gil_scoped_release release;
    simdattn::quantize_rows(source_view, destination_view, scales_view);
  } catch (const std::invalid_argument& error) {
    rethrow_with_padding(error, source.ndim());
  }
}

// out (and lse) <- the merge of attention states (outs[i], lses[i]) over disjoint key sets;
// outs and out in `layout`, lses and lse [B, H, S].
void run_merge_attention_states(bool reference, const std::vector<InputArray>& outs,
                                const std::vector<InputArray>& lses, const OutputArray& out,
                                const std::optional<OutputArray>& lse, int num_threads,
                                int32_t layout_code) {
  const Layout layout = layout_of(layout_code);
  const char* function = reference ? "simdattn.reference.merge_attention_states"
                                   : "simdattn.merge_attention_states";
  if (outs.size() != lses.size()) {
    throw std::invalid_argument(std::string(function) + ": lses must have one entry per state, " +
                                std::to_string(outs.size()) + " (as outs), got " +
                                std::to_string(lses.size()));
  }
  std::vector<AnyConstTensorView> out_views;
  std::vector<ConstTensorView> lse_views;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string index = "[" + std::to_string(i) + "]";
    out_views.push_back(input_view(outs[i], function, ("outs" + index).c_str(), 4, layout));
    lse_views.push_back(lse_input_view(lses[i], function, "lses" + index));
  }
  const AnyTensorView out_view = output_view(out, function, "out", 4, layout);
  std::optional<TensorView> lse_output;
  if (lse) lse_output = lse_view(*lse, function);
  try {
    nb::gil_scoped_release release;
    const auto count = static_cast<int64_t>(out_views.size());
    if (reference) {
      simdattn::reference::merge_attention_states(out_views.data(), lse_views.data(), count,
                                                  out_view, lse_output);
    } else {
      simdattn::merge_attention_states(out_views.data(), lse_views.data(), count, out_view,
                                       lse_output, num_threads);
    }
  } catch (const std::invalid_argument& error) {
    rethrow_with_layout(error, layout);
  }
}

// Seconds per simdattn::attention call on these arrays, timed inside C++ over `calls` calls:
// the baseline the call-overhead benchmark subtracts from a Python call's time.
double seconds_per_cpp_call(const InputArray& q, const InputArray& k, const InputArray& v,
                            const OutputArray& out, int calls, int num_threads) {
  const char* function = "simdattn._simdattn.seconds_per_cpp_call";
  if (calls < 1) {
    throw std::invalid_argument(std::string(function) + ": calls must be >= 1, got " +
                                std::to_string(calls));
  }
  const AnyConstTensorView q_view = input_view(q, function, "q", 4);
  const AnyConstTensorView k_view = input_view(k, function, "k", 4);
  const AnyConstTensorView v_view = input_view(v, function, "v", 4);
  const AnyTensorView out_view = output_view(out, function, "out", 4);
  AttentionOptions options;
  options.num_threads = num_threads;
  nb::gil_scoped_release release;
  const auto start = std::chrono::steady_clock::now();
  for (int call = 0; call < calls; ++call) {
    simdattn::attention(q_view, k_view, v_view, out_view, options);
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / calls;
}

}  // namespace

}  // namespace simdattn::python

// The compiled core. Arguments arrive positionally (no keyword parsing, no option object): the
// Python package is its only intended caller, and a call must stay cheap for tiny shapes.
NB_MODULE(_simdattn, m) {
  using namespace simdattn::python;
  m.doc() =
      "simdattn's compiled core: the library's functions on strided CPU arrays (float32, "
      "bfloat16, float16, int8). Use the "
      "simdattn package's functions, which allocate results and check argument kinds.";

  m.def(
      "attention",
      [](bool reference, const InputArray& q, const InputArray& k, const InputArray& v,
         const OutputArray& out, std::optional<float> scale, int32_t causal, int64_t window_left,
         int64_t window_right, std::optional<InputArray> mask, std::optional<KvLengths> kv_lengths,
         float softcap, std::optional<Slopes> alibi_slopes, std::optional<OutputArray> lse,
         std::optional<OutputArray> weights, int num_threads, int32_t algorithm, int32_t layout,
         std::optional<InputArray> k_scale, std::optional<InputArray> v_scale,
         std::optional<Slopes> sinks, int64_t sink_tokens,
         std::optional<std::pair<int64_t, int64_t>> shard) {
        AttentionArguments arguments{scale,   causal,     window_left, window_right,
                                     mask,    kv_lengths, softcap,     alibi_slopes,
                                     lse,     weights,    num_threads, algorithm,
                                     k_scale, v_scale,    sinks,       sink_tokens,
                                     shard};
        run_attention(reference, q, k, v, out, arguments, layout_of(layout));
      },
      "reference"_a, "q"_a.noconvert(), "k"_a.noconvert(), "v"_a.noconvert(),
      "out"_a.noconvert(), "scale"_a.none(), "causal"_a, "window_left"_a, "window_right"_a,
      "mask"_a.noconvert().none(), "kv_lengths"_a.noconvert().none(), "softcap"_a,
      "alibi_slopes"_a.noconvert().none(), "lse"_a.noconvert().none(),
      "weights"_a.noconvert().none(), "num_threads"_a, "algorithm"_a, "layout"_a,
      "k_scale"_a.noconvert().none(), "v_scale"_a.noconvert().none(),
      "sinks"_a.noconvert().none(), "sink_tokens"_a, "shard"_a.none(),
      "out <- attention(q, k, v) with the given options; the GIL is released meanwhile. q, k, "
      "v, out and mask may be float32, bfloat16, float16 (k and v also int8, with k_scale and "
      "v_scale); lse, weights and the scales are float32, alibi_slopes and sinks contiguous "
      "float32 [Hq]; shard is (key_offset, diagonal_shift) or None.");
  // The serving entries take the options attention() shares with them, positionally as above.
  m.def(
      "attention_varlen",
      [](bool reference, const InputArray& q, const InputArray& k, const InputArray& v,
         const OutputArray& out, const Int32Vector& cu_seqlens_q, const Int32Vector& cu_seqlens_k,
         std::optional<float> scale, int32_t causal, int64_t window_left, int64_t window_right,
         std::optional<InputArray> mask, float softcap, std::optional<Slopes> alibi_slopes,
         std::optional<OutputArray> lse, int num_threads, int32_t algorithm,
         std::optional<InputArray> k_scale, std::optional<InputArray> v_scale,
         std::optional<Slopes> sinks, int64_t sink_tokens) {
        AttentionArguments arguments{scale,   causal,       window_left,  window_right,
                                     mask,    std::nullopt, softcap,      alibi_slopes,
                                     lse,     std::nullopt, num_threads,  algorithm,
                                     k_scale, v_scale,      sinks,        sink_tokens};
        run_attention_varlen(reference, q, k, v, out, cu_seqlens_q, cu_seqlens_k, arguments);
      },
      "reference"_a, "q"_a.noconvert(), "k"_a.noconvert(), "v"_a.noconvert(),
      "out"_a.noconvert(), "cu_seqlens_q"_a.noconvert(), "cu_seqlens_k"_a.noconvert(),
      "scale"_a.none(), "causal"_a, "window_left"_a, "window_right"_a,
      "mask"_a.noconvert().none(), "softcap"_a, "alibi_slopes"_a.noconvert().none(),
      "lse"_a.noconvert().none(), "num_threads"_a, "algorithm"_a,
      "k_scale"_a.noconvert().none(), "v_scale"_a.noconvert().none(),
      "sinks"_a.noconvert().none(), "sink_tokens"_a,
      "out <- attention over a packed batch: q [total_q, Hq, D], k and v [total_k, Hkv, D or "
      "Dv], out [total_q, Hq, Dv], cu_seqlens_q and cu_seqlens_k contiguous int32 [batch + 1]; "
      "lse float32 [Hq, total_q].");
  m.def(
      "attention_paged",
      [](bool reference, const InputArray& q, const InputArray& k_cache, const InputArray& v_cache,
         const BlockTable& block_table, const Int32Vector& seq_lens,
         const Int32Vector& cu_seqlens_q, const OutputArray& out, std::optional<float> scale,
         int32_t causal, int64_t window_left, int64_t window_right,
         std::optional<InputArray> mask, float softcap, std::optional<Slopes> alibi_slopes,
         std::optional<OutputArray> lse, int num_threads, int32_t algorithm,
         std::optional<InputArray> k_scale, std::optional<InputArray> v_scale,
         std::optional<Slopes> sinks, int64_t sink_tokens, int32_t layout) {
        AttentionArguments arguments{scale,   causal,       window_left,  window_right,
                                     mask,    std::nullopt, softcap,      alibi_slopes,
                                     lse,     std::nullopt, num_threads,  algorithm,
                                     k_scale, v_scale,      sinks,        sink_tokens};
        run_attention_paged(reference, q, k_cache, v_cache, block_table, seq_lens, cu_seqlens_q,
                            out, arguments, layout);
      },
      "reference"_a, "q"_a.noconvert(), "k_cache"_a.noconvert(), "v_cache"_a.noconvert(),
      "block_table"_a.noconvert(), "seq_lens"_a.noconvert(), "cu_seqlens_q"_a.noconvert(),
      "out"_a.noconvert(), "scale"_a.none(), "causal"_a, "window_left"_a, "window_right"_a,
      "mask"_a.noconvert().none(), "softcap"_a, "alibi_slopes"_a.noconvert().none(),
      "lse"_a.noconvert().none(), "num_threads"_a, "algorithm"_a,
      "k_scale"_a.noconvert().none(), "v_scale"_a.noconvert().none(),
      "sinks"_a.noconvert().none(), "sink_tokens"_a, "layout"_a,
      "out <- packed queries over a paged cache: pools [num_blocks, Hkv, block_size, D] "
      "(layout 1: [num_blocks, block_size, Hkv, D]), block_table contiguous int32 [batch, "
      "blocks_per_sequence], seq_lens int32 [batch], cu_seqlens_q int32 [batch + 1].");
  m.def("qk_scores", &run_qk_scores, "reference"_a, "q"_a.noconvert(), "k"_a.noconvert(),
        "scores"_a.noconvert(), "scale"_a, "num_threads"_a, "layout"_a,
        "k_scale"_a.noconvert().none(), "scores <- scale * q . k^T (scores float32).");
  m.def("softmax_rows", &run_softmax_rows, "reference"_a, "scores"_a.noconvert(),
        "num_threads"_a, "sinks"_a.noconvert().none(),
        "In place: each row of scores becomes its softmax (with sinks: one more denominator "
        "term exp(sinks[h]) per row of head h, contiguous float32 [heads]).");
  m.def("weights_v", &run_weights_v, "reference"_a, "weights"_a.noconvert(), "v"_a.noconvert(),
        "out"_a.noconvert(), "num_threads"_a, "layout"_a, "v_scale"_a.noconvert().none(),
        "out <- weights . v (weights float32).");
  m.def("convert", &run_convert, "source"_a.noconvert(), "destination"_a.noconvert(),
        "destination <- source, between float32, bfloat16 and float16 (round to nearest even).");
  m.def("quantize_rows", &run_quantize_rows, "source"_a.noconvert(),
        "destination"_a.noconvert(), "scales"_a.noconvert(),
        "destination (int8), scales (float32) <- source quantized symmetrically in groups.");
  m.def("merge_attention_states", &run_merge_attention_states, "reference"_a,
        "outs"_a.noconvert(), "lses"_a.noconvert(), "out"_a.noconvert(),
        "lse"_a.noconvert().none(), "num_threads"_a, "layout"_a,
        "out (and lse) <- the merge of attention states over disjoint key sets.");
  m.def("seconds_per_cpp_call", &seconds_per_cpp_call, "q"_a.noconvert(), "k"_a.noconvert(),
        "v"_a.noconvert(), "out"_a.noconvert(), "calls"_a, "num_threads"_a = 0,
        "Seconds per simdattn::attention call on these arrays, timed in C++ (benchmark "
        "baseline).");
  m.def("data_address", &data_address, "array"_a.noconvert(),
        "The address of the first element as the library sees it (tests use it to show that "
        "no copy was made).");

  m.def("dot_product", &simdattn::reference::dot_product, "a"_a, "b"_a,
        "sum_i a[i] * b[i], in double.");
  m.def("softmax", &simdattn::reference::softmax, "scores"_a,
        "exp(x - max) / sum exp(x - max), in double: finite for any finite input.");
  m.def("softmax_naive", &simdattn::reference::softmax_naive, "scores"_a,
        "exp(x) / sum exp(x), the textbook formula: overflows to NaN for scores near 710.");
  m.def("weighted_sum", &simdattn::reference::weighted_sum, "weights"_a, "values"_a,
        "sum_j weights[j] * values[j], values being a list of equally long vectors.");
  m.def("single_query_attention", &simdattn::reference::single_query_attention, "query"_a,
        "keys"_a, "values"_a, "scale"_a = 1.0,
        "weighted_sum(softmax(scale * keys . query), values) for one query.");

  m.def("active_isa", &simdattn::active_isa,
        "The instruction set the kernels run with: 'sse2', 'avx2', 'avx512', 'avx512bf16' or 'amx' (x86-64), 'neon' (AArch64).");
  m.def("version", &simdattn::version, "The library's version, 'MAJOR.MINOR.PATCH'.");
}

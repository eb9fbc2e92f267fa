// Argument checks of every public entry (fast and reference alike): see validate.hpp. Each check
// throws std::invalid_argument "<function>: <argument> must <expected>, got <actual>" before the
// caller has written anything.
#include "api/validate.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "plan/attention_plan.hpp"

namespace simdattn::detail {
namespace {

using Shape = std::array<int64_t, 4>;

// Throws std::invalid_argument with "<function>: " followed by the streamed parts.
template <class... Parts>
[[noreturn]] void fail(const char* function, const Parts&... parts) {
  std::ostringstream message;
  message << function << ": ";
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

// "[2, 4, 16, 64]": shapes and strides as users write them.
std::string bracketed(const Shape& values) {
  std::ostringstream text;
  text << '[' << values[0] << ", " << values[1] << ", " << values[2] << ", " << values[3] << ']';
  return text.str();
}

// The bytes a view can touch, as a closed interval of addresses; an empty view touches none.
struct ByteRange {
  bool empty = true;
  std::uintptr_t first = 0;
  std::uintptr_t last = 0;
};

// Where a view's dimensions may alias: inputs may repeat elements (zero strides are expanded
// views), outputs must not, or the result would depend on the order of the writes.
enum class Access { read, write };

// Number of elements of `shape` (all sizes already >= 0); throws when the product overflows int64.
int64_t checked_element_count(const char* function, const std::string& name, const Shape& shape) {
  int64_t count = 1;
  for (int64_t size : shape) {
    if (__builtin_mul_overflow(count, size, &count)) {
      fail(function, name, ".shape ", bracketed(shape), " must have at most ",
           std::numeric_limits<int64_t>::max(), " elements, got a product that overflows int64");
    }
  }
  return count;
}

// Largest element offset Σ (shape[d] - 1) · strides[d] of a non-empty view with strides >= 0;
// throws when it overflows int64.
int64_t checked_last_offset(const char* function, const std::string& name, const Shape& shape,
                            const Shape& strides) {
  int64_t last = 0;
  for (int d = 0; d < 4; ++d) {
    int64_t term = 0;
    if (__builtin_mul_overflow(shape[d] - 1, strides[d], &term) ||
        __builtin_add_overflow(last, term, &last)) {
      fail(function, name, " with shape ", bracketed(shape), " and strides ", bracketed(strides),
           " must address at most ", std::numeric_limits<int64_t>::max(),
           " elements from its first, got an offset that overflows int64");
    }
  }
  return last;
}

// Rejects strides that make two distinct elements of an output share an address. Walking the
// dimensions of size > 1 from the smallest stride up, each stride must step over everything the
// smaller ones reach. This is the usual sufficient test: it accepts every dense, padded, sliced
// or permuted layout, and rejects a few exotic interleavings that would in fact be disjoint.
void check_output_does_not_overlap_itself(const char* function, const std::string& name,
                                          const Shape& shape, const Shape& strides) {
  std::vector<int> dimensions;
  for (int d = 0; d < 4; ++d) {
    if (shape[d] > 1) dimensions.push_back(d);
  }
  // On equal strides the inner dimension goes first, so the message names the outer one.
  std::sort(dimensions.begin(), dimensions.end(), [&](int a, int b) {
    return strides[a] < strides[b] || (strides[a] == strides[b] && a > b);
  });
  int64_t reach = 1;  // elements spanned by the dimensions seen so far; fits: the offset did
  for (int d : dimensions) {
    if (strides[d] < reach) {
      fail(function, name, ".strides[", d, "] must be >= ", reach,
           " (the span of the dimensions with smaller strides, so that no two elements of an "
           "output share an address; strides ",
           bracketed(strides), ", shape ", bracketed(shape), "), got ", strides[d]);
    }
    reach += (shape[d] - 1) * strides[d];
  }
}

// "f32, bf16 or f16": a list of dtypes as a message names them.
std::string dtype_list(std::initializer_list<DType> dtypes) {
  std::string text;
  size_t i = 0;
  for (DType dtype : dtypes) {
    text += i == 0 ? "" : i + 1 == dtypes.size() ? " or " : ", ";
    text += dtype_name(dtype);
    ++i;
  }
  return text;
}

// "bf16", or "7 (not a dtype)" for a value outside the enum (C callers can pass one).
std::string describe_dtype(DType dtype) {
  if (dtype_size(dtype) > 0) return dtype_name(dtype);
  return std::to_string(static_cast<int32_t>(dtype)) + " (not a dtype)";
}

void expect_dtype(const char* function, const std::string& name, DType actual,
                  std::initializer_list<DType> allowed) {
  for (DType dtype : allowed) {
    if (actual == dtype) return;
  }
  fail(function, name, ".dtype must be ", dtype_list(allowed), ", got ", describe_dtype(actual));
}

// The largest |position| a KeyShard may name: 2^40 keys, far past any cache, with room for
// i + off ± window in int64.
constexpr int64_t kMaxShardPosition = int64_t{1} << 40;

constexpr std::initializer_list<DType> kFloatingDtypes = {DType::f32, DType::bf16, DType::f16};
constexpr std::initializer_list<DType> kCacheDtypes = {DType::f32, DType::bf16, DType::f16,
                                                      DType::i8};

// Checks one view on its own (sizes, data, strides, overflow, self-overlap for outputs) and
// returns the bytes it spans. `last_stride_free` exempts strides[3] from having to be 1 (a mask
// whose last dimension has a single key).
ByteRange check_view(const char* function, const std::string& name, const AnyConstTensorView& view,
                     Access access, bool last_stride_free = false) {
  expect_dtype(function, name, view.dtype, kCacheDtypes);
  for (int d = 0; d < 4; ++d) {
    if (view.shape[d] < 0) {
      fail(function, name, ".shape[", d, "] must be >= 0, got ", view.shape[d]);
    }
  }
  const int64_t count = checked_element_count(function, name, view.shape);
  if (count > 0 && view.data == nullptr) {
    fail(function, name, ".data must not be null for a view of ", count, " elements (shape ",
         bracketed(view.shape), "), got nullptr");
  }
  if (view.strides[3] != 1 && !last_stride_free) {
    fail(function, name, ".strides[3] must be 1 (the last dimension is contiguous), got ",
         view.strides[3]);
  }
  for (int d = 0; d < 4; ++d) {
    if (view.strides[d] < 0) {
      fail(function, name, ".strides[", d, "] must be >= 0, got ", view.strides[d]);
    }
  }
  // An empty view touches no memory: its strides cannot alias anything (bhsd_view of a tensor
  // with no keys has a zero row stride, and that is fine).
  if (count == 0) return {};
  if (access == Access::write) {
    for (int d = 0; d < 4; ++d) {
      if (view.shape[d] > 1 && view.strides[d] == 0) {
        fail(function, name, ".strides[", d, "] must be > 0 for a dimension of size ",
             view.shape[d], " (an output must not overlap itself), got 0");
      }
    }
  }

  const int64_t last_offset = checked_last_offset(function, name, view.shape, view.strides);
  int64_t last_byte = 0;
  const int64_t element_bytes = dtype_size(view.dtype);
  if (__builtin_mul_overflow(last_offset, element_bytes, &last_byte) ||
      __builtin_add_overflow(last_byte, element_bytes - 1, &last_byte)) {
    fail(function, name, " must span at most ", std::numeric_limits<int64_t>::max(),
         " bytes, got an extent of ", last_offset, " elements that overflows int64 in bytes");
  }
  const auto first = reinterpret_cast<std::uintptr_t>(view.data);
  const auto span = static_cast<std::uintptr_t>(last_byte);
  if (first > std::numeric_limits<std::uintptr_t>::max() - span) {
    fail(function, name, " must end inside the address space: it starts at byte ", first,
         " and spans ", span + 1, " bytes, got an end past ",
         std::numeric_limits<std::uintptr_t>::max());
  }
  if (access == Access::write) {
    check_output_does_not_overlap_itself(function, name, view.shape, view.strides);
  }
  return {false, first, first + span};
}

// The bytes of `count` consecutive objects of type T at `data` (the per-batch and per-head arrays
// of the options), clamped to the end of the address space.
template <class T>
ByteRange array_range(const T* data, int64_t count) {
  if (data == nullptr || count <= 0) return {};
  const auto first = reinterpret_cast<std::uintptr_t>(data);
  std::uintptr_t bytes = 0;
  std::uintptr_t last = std::numeric_limits<std::uintptr_t>::max();
  if (!__builtin_mul_overflow(static_cast<std::uintptr_t>(count), sizeof(T), &bytes) &&
      first <= last - (bytes - 1)) {
    last = first + (bytes - 1);
  }
  return {false, first, last};
}

struct NamedRange {
  std::string name;
  ByteRange range;
};

// Rejects an output whose bytes intersect those of an input or of another output. The test is
// on address intervals [lowest, highest] byte, so it is conservative: two strided views that
// interleave without sharing an element (out and q in alternate rows of one buffer) are also
// rejected. Inputs may overlap each other freely (q, k and v slices of one packed buffer).
void check_no_overlap(const char* function, const std::vector<NamedRange>& outputs,
                      const std::vector<NamedRange>& inputs) {
  auto check_pair = [&](const NamedRange& output, const NamedRange& other) {
    if (output.range.empty || other.range.empty) return;
    if (output.range.first <= other.range.last && other.range.first <= output.range.last) {
      fail(function, output.name, " must not overlap ", other.name, ": ", output.name,
           " spans bytes [", output.range.first, ", ", output.range.last, "] and ", other.name,
           " spans [", other.range.first, ", ", other.range.last, "], got an intersection");
    }
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const NamedRange& input : inputs) check_pair(outputs[i], input);
    for (size_t j = i + 1; j < outputs.size(); ++j) check_pair(outputs[i], outputs[j]);
  }
}

// `<actual_name> (<meaning>) must equal <expected_name> = expected, got actual`.
void expect_equal(const char* function, const char* actual_name, const char* meaning,
                  int64_t actual, const char* expected_name, int64_t expected) {
  if (actual != expected) {
    fail(function, actual_name, " (", meaning, ") must equal ", expected_name, " = ", expected,
         ", got ", actual);
  }
}

// One expected size of an output (or of an input whose shape follows the others); `source` is
// the argument it comes from, or nullptr for a size fixed by the function.
struct ExpectedSize {
  const char* meaning;
  const char* source;
  int64_t size;
};

// Compares a view's shape dimension by dimension with what the other arguments imply.
void expect_shape(const char* function, const std::string& name, const Shape& shape,
                  const std::array<ExpectedSize, 4>& expected) {
  for (int d = 0; d < 4; ++d) {
    if (shape[d] != expected[d].size) {
      const std::string source =
          expected[d].source != nullptr ? std::string(expected[d].source) + " = " : "";
      fail(function, name, ".shape[", d, "] (", expected[d].meaning, ") must equal ", source,
           expected[d].size, ", got ", shape[d], " (shape ", bracketed(shape), ")");
    }
  }
}

// Query heads must be a whole multiple of the kv heads (MHA, GQA, MQA); zero kv heads only
// for zero query heads.
void expect_head_groups(const char* function, const char* query_name, int64_t query_heads,
                        const char* kv_name, int64_t kv_heads) {
  const bool divides = kv_heads > 0 ? query_heads % kv_heads == 0 : query_heads == 0;
  if (!divides) {
    fail(function, kv_name, " (kv heads) must divide ", query_name,
         " (query heads) = ", query_heads, ", got ", kv_heads);
  }
}

void expect_num_threads(const char* function, const char* name, int num_threads) {
  if (num_threads < 0) {
    fail(function, name, " must be >= 0 (0: the OpenMP default), got ", num_threads);
  }
}

void expect_finite_scale(const char* function, const char* name, float scale) {
  if (!std::isfinite(scale)) fail(function, name, " must be finite, got ", scale);
}

// The option values that are plain numbers: enums, window, softcap, scale, threads.
void check_option_values(const char* function, const AttentionOptions& options) {
  expect_num_threads(function, "options.num_threads", options.num_threads);
  if (options.scale.has_value()) expect_finite_scale(function, "options.scale", *options.scale);
  const auto causal = static_cast<int32_t>(options.causal);
  if (causal < 0 || causal > 2) {
    fail(function, "options.causal must be 0 (none), 1 (bottom_right) or 2 (top_left), got ",
         causal);
  }
  const auto algorithm = static_cast<int32_t>(options.algorithm);
  if (algorithm < 0 || algorithm > 2) {
    fail(function, "options.algorithm must be 0 (automatic), 1 (composed) or 2 (fused), got ",
         algorithm);
  }
  if (options.window_left < -1) {
    fail(function, "options.window_left must be >= -1 (-1: unbounded), got ", options.window_left);
  }
  if (options.window_right < -1) {
    fail(function, "options.window_right must be >= -1 (-1: unbounded), got ",
         options.window_right);
  }
  if (!std::isfinite(options.softcap) || options.softcap < 0.0f) {
    fail(function, "options.softcap must be finite and >= 0 (0: off), got ", options.softcap);
  }
  if (options.sink_tokens < 0) {
    fail(function, "options.sink_tokens must be >= 0 (0: off), got ", options.sink_tokens);
  }
  if (options.shard.has_value()) {
    const KeyShard& shard = *options.shard;
    if (shard.key_offset < 0 || shard.key_offset > kMaxShardPosition) {
      fail(function, "options.shard->key_offset must be in [0, ", kMaxShardPosition, "], got ",
           shard.key_offset);
    }
    if (shard.diagonal_shift < -kMaxShardPosition || shard.diagonal_shift > kMaxShardPosition) {
      fail(function, "options.shard->diagonal_shift must be in [", -kMaxShardPosition, ", ",
           kMaxShardPosition, "], got ", shard.diagonal_shift);
    }
  }
}

// kv_lengths: one entry per batch, each a number of keys in [0, Sk]; in a shard (KeyShard) a
// length of the whole sequence, which may run past this call's keys.
void check_kv_lengths(const char* function, const int64_t* kv_lengths, int64_t batch,
                      int64_t keys, bool shard) {
  if (kv_lengths == nullptr) return;
  for (int64_t b = 0; b < batch; ++b) {
    if (shard && (kv_lengths[b] < 0 || kv_lengths[b] > kMaxShardPosition)) {
      fail(function, "options.kv_lengths[", b, "] must be in [0, ", kMaxShardPosition,
           "] (a shard's sequence length), got ", kv_lengths[b]);
    }
    if (!shard && (kv_lengths[b] < 0 || kv_lengths[b] > keys)) {
      fail(function, "options.kv_lengths[", b, "] must be in [0, ", keys,
           "] (Sk = k.shape[2]), got ", kv_lengths[b]);
    }
  }
}

// ALiBi slopes: one finite slope per query head (an infinite slope makes 0 · inf on the diagonal).
void check_alibi_slopes(const char* function, const float* slopes, int64_t query_heads) {
  if (slopes == nullptr) return;
  for (int64_t h = 0; h < query_heads; ++h) {
    if (!std::isfinite(slopes[h])) {
      fail(function, "options.alibi_slopes[", h, "] must be finite, got ", slopes[h]);
    }
  }
}

// Sink logits: one per query head, finite or -inf (no sink for that head). NaN and +inf have no
// meaning as a softmax term that carries no value: +inf would take every row's whole weight.
void check_sinks(const char* function, const char* name, const float* sinks, int64_t heads) {
  if (sinks == nullptr) return;
  for (int64_t h = 0; h < heads; ++h) {
    if (std::isnan(sinks[h]) || sinks[h] == std::numeric_limits<float>::infinity()) {
      fail(function, name, "[", h, "] must be finite or -inf (no sink), got ", sinks[h]);
    }
  }
}

// The mask broadcasts to [B, Hq, Sq, Sk]: each of its first three sizes equals the target or is
// 1; the key dimension is never broadcast.
void check_mask_shape(const char* function, const Shape& mask, const Shape& target,
                      const char* keys_meaning = "k.shape[2] (Sk)") {
  static constexpr std::array<const char*, 3> kMeanings = {"B", "Hq", "Sq"};
  for (int d = 0; d < 3; ++d) {
    if (mask[d] != target[d] && mask[d] != 1) {
      fail(function, "options.mask.shape[", d, "] must be 1 or ", target[d], " (", kMeanings[d],
           ") to broadcast to ", bracketed(target), ", got ", mask[d]);
    }
  }
  if (mask[3] != target[3]) {
    fail(function, "options.mask.shape[3] must equal ", keys_meaning, " = ", target[3], ", got ",
         mask[3]);
  }
}

// k_scale / v_scale: given exactly when the cache is i8, of shape [B, Hkv, Sk, G] where G (the
// groups per row) divides the row length, every value finite and >= 0 (a negative scale would
// flip signs silently, a non-finite one poison every row that reads it).
// Whether a scale is finite and >= 0 (-0 included), from its bits: every other pattern, as an
// unsigned number, is +inf, a NaN or has its sign set and is not -0.
inline bool invalid_scale_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits >= 0x7f800000u && bits != 0x80000000u;
}

// Whether every scale of one (batch, kv head) is finite and >= 0. Rows that follow each other in
// memory (the usual [.., Sk, groups] layout) are scanned as one run, without branches, which the
// compiler vectorises.
bool head_scales_valid(const ConstTensorView& scale, int64_t b, int64_t h) {
  const int64_t groups = scale.shape[3];
  const int64_t element_stride = groups == 1 ? 1 : scale.strides[3];  // free when unused
  const bool rows_adjacent = element_stride == 1 && scale.strides[2] == groups;
  const int64_t run = rows_adjacent ? scale.shape[2] * groups : groups;
  const int64_t runs = rows_adjacent ? 1 : scale.shape[2];
  for (int64_t j = 0; j < runs; ++j) {
    const float* values = scale.row(b, h, j);
    if (element_stride != 1) {
      for (int64_t g = 0; g < groups; ++g) {
        if (invalid_scale_bits(values[g * element_stride])) return false;
      }
      continue;
    }
    uint32_t invalid = 0;
    for (int64_t e = 0; e < run; ++e) invalid |= invalid_scale_bits(values[e]) ? 1u : 0u;
    if (invalid != 0) return false;
  }
  return true;
}

// Scales a thread scans at the least: below it, starting a team costs more than the scan.
constexpr int64_t kScalesPerThread = int64_t{1} << 14;

// Whether every scale is finite and >= 0. A decoding step reads each scale once, and reads it
// here first, cold: over a long cache with a scale per 32 elements that is megabytes, and one
// thread scanning them took about a tenth of the step (decode_gqa, int8 cache). Large checks
// share the (batch, kv head) pairs among the call's threads (num_threads as the call's option).
bool all_scales_valid(const ConstTensorView& scale, int num_threads) {
  const int64_t heads = scale.shape[0] * scale.shape[1];
  const int64_t count = heads * scale.shape[2] * scale.shape[3];
  const int threads = count < 2 * kScalesPerThread
                          ? 1
                          : threads_for_call(num_threads, std::min(heads, count / kScalesPerThread));
  bool valid = true;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static) reduction(&& : valid)
  for (int64_t i = 0; i < heads; ++i) {
    valid = valid && head_scales_valid(scale, i / scale.shape[1], i % scale.shape[1]);
  }
  return valid;
}

// Every scale of `scale` finite and >= 0, else an error naming the first bad one as
// name[first_index + b, h, j, g], followed by `note`.
void check_scale_values(const char* function, const char* name, const ConstTensorView& scale,
                        int num_threads, int64_t first_index = 0, const std::string& note = "") {
  if (all_scales_valid(scale, num_threads)) return;
  for (int64_t b = 0; b < scale.shape[0]; ++b) {
    for (int64_t h = 0; h < scale.shape[1]; ++h) {
      for (int64_t j = 0; j < scale.shape[2]; ++j) {
        const float* values = scale.row(b, h, j);
        for (int64_t g = 0; g < scale.shape[3]; ++g) {
          const float value = values[g * scale.strides[3]];
          if (invalid_scale_bits(value)) {
            fail(function, name, "[", first_index + b, ", ", h, ", ", j, ", ", g,
                 "] must be finite and >= 0", note, ", got ", value);
          }
        }
      }
    }
  }
}

void check_scales(const char* function, const char* name,
                  const std::optional<ConstTensorView>& scales, const char* cache_name,
                  const AnyConstTensorView& cache, std::vector<NamedRange>& inputs, int num_threads) {
  if (cache.dtype != DType::i8) {
    if (scales.has_value()) {
      fail(function, name, " must be absent unless ", cache_name, ".dtype is i8, got a scale ",
           "tensor with ", cache_name, ".dtype ", dtype_name(cache.dtype));
    }
    return;
  }
  if (!scales.has_value()) {
    fail(function, name, " must be given when ", cache_name,
         ".dtype is i8 (element = scale · int8), got none");
  }
  const ConstTensorView& scale = *scales;
  inputs.push_back(
      {name, check_view(function, name, scale, Access::read, /*last_stride_free=*/scale.shape[3] == 1)});
  const std::string cache_shape = std::string(cache_name) + ".shape";
  for (int d = 0; d < 3; ++d) {
    if (scale.shape[d] != cache.shape[d]) {
      static constexpr std::array<const char*, 3> kMeanings = {"batch", "kv heads", "Sk"};
      fail(function, name, ".shape[", d, "] (", kMeanings[d], ") must equal ", cache_shape, "[", d,
           "] = ", cache.shape[d], ", got ", scale.shape[d], " (shape ", bracketed(scale.shape), ")");
    }
  }
  const int64_t groups = scale.shape[3], row = cache.shape[3];
  if (groups < 1 || row % groups != 0) {
    fail(function, name, ".shape[3] (scales per row) must divide ", cache_shape, "[3] = ", row,
         " (1: one scale per row), got ", groups);
  }
  check_scale_values(function, name, scale, num_threads);
}

}  // namespace

// scores = scale · q · kᵀ: q [B, Hq, Sq, D], k [B, Hkv, Sk, D], scores [B, Hq, Sq, Sk].
void validate_qk_scores(const char* function, AnyConstTensorView q, AnyConstTensorView k,
                        TensorView scores, float scale, int num_threads,
                        const std::optional<ConstTensorView>& k_scale) {
  expect_finite_scale(function, "scale", scale);
  std::vector<NamedRange> inputs = {{"q", check_view(function, "q", q, Access::read)},
                                    {"k", check_view(function, "k", k, Access::read)}};
  const ByteRange scores_bytes = check_view(function, "scores", scores, Access::write);
  expect_dtype(function, "q", q.dtype, kFloatingDtypes);
  expect_equal(function, "k.shape[0]", "batch", k.shape[0], "q.shape[0]", q.shape[0]);
  expect_head_groups(function, "q.shape[1]", q.shape[1], "k.shape[1]", k.shape[1]);
  expect_equal(function, "k.shape[3]", "head_dim", k.shape[3], "q.shape[3]", q.shape[3]);
  expect_shape(function, "scores", scores.shape,
               {{{"batch", "q.shape[0]", q.shape[0]},
                 {"query heads", "q.shape[1]", q.shape[1]},
                 {"Sq", "q.shape[2]", q.shape[2]},
                 {"Sk", "k.shape[2]", k.shape[2]}}});
  expect_num_threads(function, "num_threads", num_threads);
  check_scales(function, "k_scale", k_scale, "k", k, inputs, num_threads);
  check_no_overlap(function, {{"scores", scores_bytes}}, inputs);
}

// In-place softmax over the rows of scores [B, H, Sq, Sk].
void validate_softmax_rows(const char* function, TensorView scores, int num_threads,
                           const float* sinks) {
  const ByteRange scores_bytes = check_view(function, "scores", scores, Access::write);
  expect_num_threads(function, "num_threads", num_threads);
  if (sinks == nullptr) return;
  check_sinks(function, "sinks", sinks, scores.shape[1]);
  check_no_overlap(function, {{"scores", scores_bytes}}, {{"sinks", array_range(sinks, scores.shape[1])}});
}

// out = weights · v: weights [B, Hq, Sq, Sk], v [B, Hkv, Sk, Dv], out [B, Hq, Sq, Dv].
void validate_weights_v(const char* function, ConstTensorView weights, AnyConstTensorView v,
                        AnyTensorView out, int num_threads,
                        const std::optional<ConstTensorView>& v_scale) {
  std::vector<NamedRange> inputs = {
      {"weights", check_view(function, "weights", weights, Access::read)},
      {"v", check_view(function, "v", v, Access::read)}};
  const ByteRange out_bytes = check_view(function, "out", out, Access::write);
  expect_dtype(function, "out", out.dtype, kFloatingDtypes);
  expect_equal(function, "v.shape[0]", "batch", v.shape[0], "weights.shape[0]", weights.shape[0]);
  expect_head_groups(function, "weights.shape[1]", weights.shape[1], "v.shape[1]", v.shape[1]);
  expect_equal(function, "v.shape[2]", "Sk", v.shape[2], "weights.shape[3]", weights.shape[3]);
  expect_shape(function, "out", out.shape,
               {{{"batch", "weights.shape[0]", weights.shape[0]},
                 {"query heads", "weights.shape[1]", weights.shape[1]},
                 {"Sq", "weights.shape[2]", weights.shape[2]},
                 {"Dv", "v.shape[3]", v.shape[3]}}});
  expect_num_threads(function, "num_threads", num_threads);
  check_scales(function, "v_scale", v_scale, "v", v, inputs, num_threads);
  check_no_overlap(function, {{"out", out_bytes}}, inputs);
}

// convert(source, destination): two f32/bf16/f16 views of one shape that do not overlap.
void validate_convert(const char* function, AnyConstTensorView source, AnyTensorView destination) {
  const ByteRange source_bytes = check_view(function, "source", source, Access::read);
  const ByteRange destination_bytes = check_view(function, "destination", destination, Access::write);
  expect_dtype(function, "source", source.dtype, kFloatingDtypes);
  expect_dtype(function, "destination", destination.dtype, kFloatingDtypes);
  expect_shape(function, "destination", destination.shape,
               {{{"batch", "source.shape[0]", source.shape[0]},
                 {"heads", "source.shape[1]", source.shape[1]},
                 {"seq", "source.shape[2]", source.shape[2]},
                 {"row length", "source.shape[3]", source.shape[3]}}});
  check_no_overlap(function, {{"destination", destination_bytes}}, {{"source", source_bytes}});
}

// quantize_rows(source, destination, scales): source f32/bf16/f16 [B, H, S, D], destination int8
// of the same shape, scales f32 [B, H, S, G] with G dividing D; no output overlaps another or
// the source. Finiteness of the source is checked by the caller, which reads it anyway.
void validate_quantize_rows(const char* function, AnyConstTensorView source,
                            BasicTensorView<int8_t> destination, TensorView scales) {
  const ByteRange source_bytes = check_view(function, "source", source, Access::read);
  const ByteRange destination_bytes = check_view(function, "destination", destination, Access::write);
  const ByteRange scales_bytes =
      check_view(function, "scales", scales, Access::write, /*last_stride_free=*/scales.shape[3] == 1);
  expect_dtype(function, "source", source.dtype, kFloatingDtypes);
  expect_shape(function, "destination", destination.shape,
               {{{"batch", "source.shape[0]", source.shape[0]},
                 {"heads", "source.shape[1]", source.shape[1]},
                 {"seq", "source.shape[2]", source.shape[2]},
                 {"row length", "source.shape[3]", source.shape[3]}}});
  for (int d = 0; d < 3; ++d) {
    static constexpr std::array<const char*, 3> kMeanings = {"batch", "heads", "seq"};
    if (scales.shape[d] != source.shape[d]) {
      fail(function, "scales.shape[", d, "] (", kMeanings[d], ") must equal source.shape[", d,
           "] = ", source.shape[d], ", got ", scales.shape[d], " (shape ", bracketed(scales.shape), ")");
    }
  }
  const int64_t groups = scales.shape[3], row = source.shape[3];
  if (groups < 1 || row % groups != 0) {
    fail(function, "scales.shape[3] (groups per row) must divide source.shape[3] = ", row,
         " (1: one scale per row), got ", groups);
  }
  check_no_overlap(function, {{"destination", destination_bytes}, {"scales", scales_bytes}},
                   {{"source", source_bytes}});
}

// merge_attention_states: count >= 1 states of one [B, H, S] and Dv, f32/bf16/f16 outputs with
// f32 [B, H, S, 1] lses; out and lse do not overlap an input or each other.
void validate_merge_attention_states(const char* function, const AnyConstTensorView* outs,
                                     const ConstTensorView* lses, int64_t count, AnyTensorView out,
                                     const std::optional<TensorView>& lse, int num_threads) {
  if (count < 1) fail(function, "count (states to merge) must be >= 1, got ", count);
  if (outs == nullptr) fail(function, "outs must not be null for ", count, " states, got nullptr");
  if (lses == nullptr) fail(function, "lses must not be null for ", count, " states, got nullptr");
  std::vector<NamedRange> outputs = {{"out", check_view(function, "out", out, Access::write)}};
  expect_dtype(function, "out", out.dtype, kFloatingDtypes);
  if (lse.has_value()) {
    outputs.push_back({"lse", check_view(function, "lse", *lse, Access::write, lse->shape[3] == 1)});
    expect_shape(function, "lse", lse->shape,
                 {{{"batch", "out.shape[0]", out.shape[0]},
                   {"heads", "out.shape[1]", out.shape[1]},
                   {"seq", "out.shape[2]", out.shape[2]},
                   {"one log-sum-exp a row", nullptr, 1}}});
  }
  std::vector<NamedRange> inputs;
  for (int64_t i = 0; i < count; ++i) {
    const std::string out_name = "outs[" + std::to_string(i) + "]";
    const std::string lse_name = "lses[" + std::to_string(i) + "]";
    inputs.push_back({out_name, check_view(function, out_name, outs[i], Access::read)});
    inputs.push_back({lse_name, check_view(function, lse_name, lses[i], Access::read, lses[i].shape[3] == 1)});
    expect_dtype(function, out_name, outs[i].dtype, kFloatingDtypes);
    expect_shape(function, out_name, outs[i].shape,
                 {{{"batch", "out.shape[0]", out.shape[0]},
                   {"heads", "out.shape[1]", out.shape[1]},
                   {"seq", "out.shape[2]", out.shape[2]},
                   {"Dv", "out.shape[3]", out.shape[3]}}});
    expect_shape(function, lse_name, lses[i].shape,
                 {{{"batch", "out.shape[0]", out.shape[0]},
                   {"heads", "out.shape[1]", out.shape[1]},
                   {"seq", "out.shape[2]", out.shape[2]},
                   {"one log-sum-exp a row", nullptr, 1}}});
  }
  expect_num_threads(function, "num_threads", num_threads);
  check_no_overlap(function, outputs, inputs);
}

// attention(q, k, v, out, options): the shapes of attention.hpp plus every option.
void validate_attention(const char* function, AnyConstTensorView q, AnyConstTensorView k,
                        AnyConstTensorView v, AnyTensorView out, const AttentionOptions& options) {
  std::vector<NamedRange> inputs = {{"q", check_view(function, "q", q, Access::read)},
                                    {"k", check_view(function, "k", k, Access::read)},
                                    {"v", check_view(function, "v", v, Access::read)}};
  std::vector<NamedRange> outputs = {{"out", check_view(function, "out", out, Access::write)}};
  expect_dtype(function, "q", q.dtype, kFloatingDtypes);
  if (v.dtype != k.dtype) {
    fail(function, "v.dtype must equal k.dtype = ", dtype_name(k.dtype), " (one cache dtype), got ",
         dtype_name(v.dtype));
  }
  expect_dtype(function, "out", out.dtype, kFloatingDtypes);

  const int64_t batch = q.shape[0], query_heads = q.shape[1], queries = q.shape[2];
  const int64_t keys = k.shape[2];
  expect_equal(function, "k.shape[0]", "batch", k.shape[0], "q.shape[0]", batch);
  expect_head_groups(function, "q.shape[1]", query_heads, "k.shape[1]", k.shape[1]);
  expect_equal(function, "k.shape[3]", "head_dim", k.shape[3], "q.shape[3]", q.shape[3]);
  expect_equal(function, "v.shape[0]", "batch", v.shape[0], "q.shape[0]", batch);
  expect_equal(function, "v.shape[1]", "kv heads", v.shape[1], "k.shape[1]", k.shape[1]);
  expect_equal(function, "v.shape[2]", "Sk", v.shape[2], "k.shape[2]", keys);
  expect_shape(function, "out", out.shape,
               {{{"batch", "q.shape[0]", batch},
                 {"query heads", "q.shape[1]", query_heads},
                 {"Sq", "q.shape[2]", queries},
                 {"Dv", "v.shape[3]", v.shape[3]}}});

  check_option_values(function, options);
  check_kv_lengths(function, options.kv_lengths, batch, keys, options.shard.has_value());
  check_alibi_slopes(function, options.alibi_slopes, query_heads);
  check_sinks(function, "options.sinks", options.sinks, query_heads);
  inputs.push_back({"options.kv_lengths", array_range(options.kv_lengths, batch)});
  inputs.push_back({"options.alibi_slopes", array_range(options.alibi_slopes, query_heads)});
  inputs.push_back({"options.sinks", array_range(options.sinks, query_heads)});

  const Shape scores_shape = {batch, query_heads, queries, keys};
  check_scales(function, "options.k_scale", options.k_scale, "k", k, inputs, options.num_threads);
  check_scales(function, "options.v_scale", options.v_scale, "v", v, inputs, options.num_threads);
  if (options.mask.has_value()) {
    const AnyConstTensorView& mask = *options.mask;
    // A mask with a single key may be an expanded view along it too.
    const bool single_key = mask.shape[3] == 1;
    inputs.push_back(
        {"options.mask", check_view(function, "options.mask", mask, Access::read, single_key)});
    expect_dtype(function, "options.mask", mask.dtype, kFloatingDtypes);
    check_mask_shape(function, mask.shape, scores_shape);
  }
  if (options.weights.has_value()) {
    const TensorView& weights = *options.weights;
    outputs.push_back(
        {"options.weights", check_view(function, "options.weights", weights, Access::write)});
    expect_shape(function, "options.weights", weights.shape,
                 {{{"batch", "q.shape[0]", batch},
                   {"query heads", "q.shape[1]", query_heads},
                   {"Sq", "q.shape[2]", queries},
                   {"Sk", "k.shape[2]", keys}}});
    if (options.algorithm == Algorithm::fused) {
      // The fused path never holds a whole row of weights, so it cannot write them.
      fail(function,
           "options.weights requires options.algorithm 0 (automatic) or 1 (composed), "
           "got 2 (fused)");
    }
  }
  if (options.lse.has_value()) {
    const TensorView& lse = *options.lse;
    outputs.push_back({"options.lse", check_view(function, "options.lse", lse, Access::write)});
    expect_shape(function, "options.lse", lse.shape,
                 {{{"batch", "q.shape[0]", batch},
                   {"query heads", "q.shape[1]", query_heads},
                   {"Sq", "q.shape[2]", queries},
                   {"one value per row", nullptr, 1}}});
  }
  check_no_overlap(function, outputs, inputs);
}

namespace {

// A packed view [1, H, total, D]: one batch entry.
void expect_packed(const char* function, const char* name, const AnyConstTensorView& view) {
  if (view.shape[0] != 1) {
    fail(function, name, ".shape[0] must be 1 (a packed batch is [1, heads, total, dim], see "
         "packed_view), got ", view.shape[0], " (shape ", bracketed(view.shape), ")");
  }
}

// cu_seqlens: batch + 1 entries, 0 first, never decreasing, `total` last. Returns the longest
// sequence.
int64_t check_cu_seqlens(const char* function, const char* name, const int32_t* cu_seqlens,
                         int64_t batch, int64_t total, const char* total_name) {
  if (cu_seqlens == nullptr) fail(function, name, " must point to batch + 1 = ", batch + 1, " offsets, got nullptr");
  if (cu_seqlens[0] != 0) fail(function, name, "[0] must be 0, got ", cu_seqlens[0]);
  int64_t longest = 0;
  for (int64_t b = 0; b < batch; ++b) {
    if (cu_seqlens[b + 1] < cu_seqlens[b]) {
      fail(function, name, " must not decrease: ", name, "[", b + 1, "] must be >= ", name, "[", b,
           "] = ", cu_seqlens[b], ", got ", cu_seqlens[b + 1]);
    }
    longest = std::max<int64_t>(longest, int64_t{cu_seqlens[b + 1]} - cu_seqlens[b]);
  }
  if (cu_seqlens[batch] != total) {
    fail(function, name, "[batch = ", batch, "] must equal ", total_name, " = ", total,
         " (the packed length), got ", cu_seqlens[batch]);
  }
  return longest;
}

// What attention_varlen and attention_paged reject of attention()'s options, and the batch.
void check_batch_options(const char* function, int64_t batch, const AttentionOptions& options,
                         bool paged) {
  if (batch < 0) fail(function, "batch must be >= 0, got ", batch);
  if (options.kv_lengths != nullptr) {
    fail(function, "options.kv_lengths must be null (", paged ? "cache.seq_lens" : "cu_seqlens_k",
         " gives each sequence's keys), got a pointer");
  }
  if (options.shard.has_value()) {
    fail(function, "options.shard must be absent (a packed batch's sequences are whole; split "
         "keys across attention() calls), got a KeyShard");
  }
  if (options.weights.has_value()) {
    fail(function, "options.weights must be absent (a packed batch has no weights output; call "
         "attention() per sequence for them), got a view");
  }
  if (paged && (options.k_scale.has_value() || options.v_scale.has_value())) {
    fail(function, "options.", options.k_scale.has_value() ? "k_scale" : "v_scale",
         " must be absent (a paged cache's scales are cache.k_scale_pages and "
         "cache.v_scale_pages), got a view");
  }
}

// The mask of a packed batch: [1, Hq or 1, total_q or 1, max_k].
void check_batch_mask(const char* function, const AttentionOptions& options, int64_t query_heads,
                      int64_t total_q, int64_t max_keys, std::vector<NamedRange>& inputs) {
  if (!options.mask.has_value()) return;
  const AnyConstTensorView& mask = *options.mask;
  inputs.push_back({"options.mask", check_view(function, "options.mask", mask, Access::read, mask.shape[3] == 1)});
  expect_dtype(function, "options.mask", mask.dtype, kFloatingDtypes);
  check_mask_shape(function, mask.shape, {1, query_heads, total_q, max_keys},
                   "the longest sequence's keys (max_k)");
}

// The outputs of a packed batch, as validate_attention checked them, for the overlap checks
// against the arguments it did not see.
std::vector<NamedRange> batch_outputs(const char* function, const AnyTensorView& out,
                                      const AttentionOptions& options) {
  std::vector<NamedRange> outputs = {{"out", check_view(function, "out", out, Access::write)}};
  if (options.lse.has_value()) {
    outputs.push_back({"options.lse", check_view(function, "options.lse", *options.lse, Access::write)});
  }
  return outputs;
}

// The scales of a paged int8 pool: [num_blocks, Hkv, block_size, groups] beside `pages`, every
// scale of every block a sequence reads finite and >= 0 (blocks no sequence reads are not looked at).
void check_scale_pages(const char* function, const char* name,
                       const std::optional<ConstTensorView>& scales, const char* pages_name,
                       const AnyConstTensorView& pages, const PagedCache& cache, int64_t batch,
                       std::vector<NamedRange>& inputs) {
  if (pages.dtype != DType::i8) {
    if (scales.has_value()) {
      fail(function, name, " must be absent unless ", pages_name, ".dtype is i8, got a scale tensor with ",
           pages_name, ".dtype ", dtype_name(pages.dtype));
    }
    return;
  }
  if (!scales.has_value()) {
    fail(function, name, " must be given when ", pages_name, ".dtype is i8 (element = scale · int8), got none");
  }
  const ConstTensorView& scale = *scales;
  inputs.push_back({name, check_view(function, name, scale, Access::read, scale.shape[3] == 1)});
  static constexpr std::array<const char*, 3> kMeanings = {"num_blocks", "kv heads", "block_size"};
  for (int d = 0; d < 3; ++d) {
    if (scale.shape[d] != pages.shape[d]) {
      fail(function, name, ".shape[", d, "] (", kMeanings[d], ") must equal ", pages_name, ".shape[", d,
           "] = ", pages.shape[d], ", got ", scale.shape[d], " (shape ", bracketed(scale.shape), ")");
    }
  }
  const int64_t groups = scale.shape[3], row = pages.shape[3];
  if (groups < 1 || row % groups != 0) {
    fail(function, name, ".shape[3] (scales per row) must divide ", pages_name, ".shape[3] = ", row,
         " (1: one scale per row), got ", groups);
  }
  const int64_t block_size = pages.shape[2];
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t blocks = (int64_t{cache.seq_lens[b]} + block_size - 1) / block_size;
    for (int64_t i = 0; i < blocks; ++i) {
      const int64_t block = cache.block_table[b * cache.blocks_per_sequence + i];
      ConstTensorView page = scale;
      page.data = scale.row(block, 0, 0);
      page.shape[0] = 1;
      check_scale_values(function, name, page, /*num_threads=*/1, block,
                         " (block " + std::to_string(block) + " is sequence " + std::to_string(b) +
                             "'s block " + std::to_string(i) + ")");
    }
  }
}

// The view a pool's head and dtype checks see: no rows, so validate_attention reads none.
AnyConstTensorView no_rows(AnyConstTensorView pages) {
  pages.shape = {1, pages.shape[1], 0, pages.shape[3]};
  return pages;
}
std::optional<ConstTensorView> no_rows(const std::optional<ConstTensorView>& scales) {
  if (!scales.has_value()) return std::nullopt;
  ConstTensorView view = *scales;
  view.shape = {1, view.shape[1], 0, view.shape[3]};
  return view;
}

}  // namespace

int64_t validate_attention_varlen(const char* function, AnyConstTensorView q, AnyConstTensorView k,
                                  AnyConstTensorView v, AnyTensorView out,
                                  const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k,
                                  int64_t batch, const AttentionOptions& options) {
  check_batch_options(function, batch, options, /*paged=*/false);
  expect_packed(function, "q", q);
  expect_packed(function, "k", k);
  expect_packed(function, "v", v);
  expect_packed(function, "out", out);
  AttentionOptions unmasked = options;
  unmasked.mask.reset();
  validate_attention(function, q, k, v, out, unmasked);
  check_cu_seqlens(function, "cu_seqlens_q", cu_seqlens_q, batch, q.shape[2], "q.shape[2] (total_q)");
  const int64_t max_keys =
      check_cu_seqlens(function, "cu_seqlens_k", cu_seqlens_k, batch, k.shape[2], "k.shape[2] (total_k)");
  std::vector<NamedRange> inputs = {{"cu_seqlens_q", array_range(cu_seqlens_q, batch + 1)},
                                    {"cu_seqlens_k", array_range(cu_seqlens_k, batch + 1)}};
  check_batch_mask(function, options, q.shape[1], q.shape[2], max_keys, inputs);
  check_no_overlap(function, batch_outputs(function, out, options), inputs);
  return max_keys;
}

int64_t validate_attention_paged(const char* function, AnyConstTensorView q, const PagedCache& cache,
                                 AnyTensorView out, const int32_t* cu_seqlens_q, int64_t batch,
                                 const AttentionOptions& options) {
  check_batch_options(function, batch, options, /*paged=*/true);
  expect_packed(function, "q", q);
  expect_packed(function, "out", out);
  const AnyConstTensorView& k = cache.k_pages;
  const AnyConstTensorView& v = cache.v_pages;
  std::vector<NamedRange> inputs = {
      {"cache.k_pages", check_view(function, "cache.k_pages", k, Access::read)},
      {"cache.v_pages", check_view(function, "cache.v_pages", v, Access::read)}};
  // Head counts, head_dim, Dv and the dtypes, on views of the pools without rows.
  AttentionOptions unmasked = options;
  unmasked.mask.reset();
  unmasked.k_scale = no_rows(cache.k_scale_pages);
  unmasked.v_scale = no_rows(cache.v_scale_pages);
  validate_attention(function, q, no_rows(k), no_rows(v), out, unmasked);
  expect_equal(function, "cache.v_pages.shape[0]", "num_blocks", v.shape[0], "cache.k_pages.shape[0]", k.shape[0]);
  expect_equal(function, "cache.v_pages.shape[2]", "block_size", v.shape[2], "cache.k_pages.shape[2]", k.shape[2]);
  const int64_t num_blocks = k.shape[0], block_size = k.shape[2];
  if (block_size < 1) fail(function, "cache.k_pages.shape[2] (block_size) must be >= 1, got ", block_size);
  if (cache.blocks_per_sequence < 0) {
    fail(function, "cache.blocks_per_sequence must be >= 0, got ", cache.blocks_per_sequence);
  }
  if (batch > 0 && cache.seq_lens == nullptr) fail(function, "cache.seq_lens must point to batch = ", batch, " lengths, got nullptr");
  if (batch > 0 && cache.block_table == nullptr) {
    fail(function, "cache.block_table must point to batch · blocks_per_sequence = ", batch, " · ",
         cache.blocks_per_sequence, " block indices, got nullptr");
  }
  int64_t table_rows = 0;
  if (__builtin_mul_overflow(block_size, cache.blocks_per_sequence, &table_rows)) {
    table_rows = std::numeric_limits<int64_t>::max();
  }
  int64_t max_keys = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t keys = cache.seq_lens[b];
    if (keys < 0) fail(function, "cache.seq_lens[", b, "] must be >= 0, got ", keys);
    if (keys > table_rows) {
      fail(function, "cache.seq_lens[", b, "] must be at most blocks_per_sequence · block_size = ",
           cache.blocks_per_sequence, " · ", block_size, " = ", table_rows,
           " (what a row of the block table holds), got ", keys);
    }
    max_keys = std::max(max_keys, keys);
    const int64_t blocks = (keys + block_size - 1) / block_size;
    for (int64_t i = 0; i < blocks; ++i) {
      const int32_t block = cache.block_table[b * cache.blocks_per_sequence + i];
      if (block < 0 || block >= num_blocks) {
        fail(function, "cache.block_table[", b, ", ", i, "] must be a block of the pools, in [0, num_blocks = ",
             num_blocks, "), got ", block);
      }
    }
  }
  check_scale_pages(function, "cache.k_scale_pages", cache.k_scale_pages, "cache.k_pages", k, cache, batch, inputs);
  check_scale_pages(function, "cache.v_scale_pages", cache.v_scale_pages, "cache.v_pages", v, cache, batch, inputs);
  check_cu_seqlens(function, "cu_seqlens_q", cu_seqlens_q, batch, q.shape[2], "q.shape[2] (total_q)");
  inputs.push_back({"cu_seqlens_q", array_range(cu_seqlens_q, batch + 1)});
  inputs.push_back({"cache.seq_lens", array_range(cache.seq_lens, batch)});
  int64_t table_entries = 0;
  if (__builtin_mul_overflow(batch, cache.blocks_per_sequence, &table_entries)) {
    table_entries = std::numeric_limits<int64_t>::max();
  }
  inputs.push_back({"cache.block_table", array_range(cache.block_table, table_entries)});
  check_batch_mask(function, options, q.shape[1], q.shape[2], max_keys, inputs);
  check_no_overlap(function, batch_outputs(function, out, options), inputs);
  return max_keys;
}

}  // namespace simdattn::detail

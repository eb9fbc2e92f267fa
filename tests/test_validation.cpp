// Every input a user can get wrong, on every public entry (the fast functions and their
// reference twins): std::invalid_argument naming the function, the argument, the expected and
// the actual value, and nothing written. Each rejection test has an accepted twin nearby (a
// valid call, an expanded view, a broadcast mask) so that a check which rejects everything fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "simdattn/attention.hpp"
#include "simdattn/kernels.hpp"
#include "simdattn/reference.hpp"

namespace {

namespace ref = simdattn::reference;
using simdattn::AttentionOptions;
using simdattn::ConstTensorView;
using simdattn::TensorView;

// What the outputs hold before a call; a rejected call must leave every one of them in place.
constexpr float kSentinel = -1234.5f;
constexpr float kInfinity = std::numeric_limits<float>::infinity();

// Deterministic values in [-1, 1) (a plain LCG), so inputs can be compared before and after.
std::vector<float> seeded_values(size_t count, uint32_t seed) {
  std::vector<float> values(count);
  uint32_t state = seed * 2654435761u + 97u;
  for (float& x : values) {
    state = state * 1664525u + 1013904223u;
    x = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  }
  return values;
}

bool all_sentinel(const std::vector<float>& values) {
  for (float x : values) {
    if (std::memcmp(&x, &kSentinel, sizeof x) != 0) return false;
  }
  return true;
}

// Runs `call`, which must throw std::invalid_argument whose message starts with
// "<function>: " and contains every fragment (the argument, the expected and the actual value).
template <class Call>
void expect_invalid_argument(const std::string& function, Call call,
                             const std::vector<std::string>& fragments) {
  try {
    call();
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.rfind(function + ": ", 0), 0u)
        << "message does not start with \"" << function << ": \": " << message;
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message lacks \"" << fragment << "\": " << message;
    }
    return;
  } catch (const std::exception& error) {
    ADD_FAILURE() << function
                  << " threw something other than std::invalid_argument: " << error.what();
    return;
  }
  ADD_FAILURE() << function << " accepted the call; expected a message with \""
                << (fragments.empty() ? std::string() : fragments[0]) << "\"";
}

// The sizes of the valid call every test starts from: all different, so that a number in a
// message says which size it is.
struct Dims {
  int64_t batch = 2;
  int64_t query_heads = 6;
  int64_t kv_heads = 3;
  int64_t queries = 5;
  int64_t keys = 7;
  int64_t head_dim = 8;
  int64_t value_dim = 4;
};

// ---------------------------------------------------------------------------------------------
// attention
// ---------------------------------------------------------------------------------------------

// A valid attention call with every option in use and every output present; tests break one
// piece of it. Holds the buffers its views point to, so it stays where it was built.
struct AttentionCall {
  explicit AttentionCall(Dims dims_ = {})
      : dims(dims_),
        q_data(
            seeded_values(size_t(dims.batch * dims.query_heads * dims.queries * dims.head_dim), 1)),
        k_data(seeded_values(size_t(dims.batch * dims.kv_heads * dims.keys * dims.head_dim), 2)),
        v_data(seeded_values(size_t(dims.batch * dims.kv_heads * dims.keys * dims.value_dim), 3)),
        mask_data(seeded_values(size_t(dims.query_heads * dims.queries * dims.keys), 4)),
        slopes(seeded_values(size_t(dims.query_heads), 5)),
        sinks(seeded_values(size_t(dims.query_heads), 6)),
        kv_lengths(size_t(dims.batch), dims.keys - 1),
        out_data(size_t(dims.batch * dims.query_heads * dims.queries * dims.value_dim), kSentinel),
        weights_data(size_t(dims.batch * dims.query_heads * dims.queries * dims.keys), kSentinel),
        lse_data(size_t(dims.batch * dims.query_heads * dims.queries), kSentinel),
        q_original(q_data),
        k_original(k_data),
        v_original(v_data),
        q(simdattn::bhsd_view(q_data.data(), dims.batch, dims.query_heads, dims.queries,
                              dims.head_dim)),
        k(simdattn::bhsd_view(k_data.data(), dims.batch, dims.kv_heads, dims.keys, dims.head_dim)),
        v(simdattn::bhsd_view(v_data.data(), dims.batch, dims.kv_heads, dims.keys, dims.value_dim)),
        out(simdattn::bhsd_view(out_data.data(), dims.batch, dims.query_heads, dims.queries,
                                dims.value_dim)) {
    if (!kv_lengths.empty()) kv_lengths[0] = dims.keys;
    options.scale = 0.3f;
    options.causal = simdattn::Causal::bottom_right;
    options.window_left = 3;
    options.softcap = 30.0f;
    options.mask = simdattn::bhsd_view(static_cast<const float*>(mask_data.data()), 1,
                                       dims.query_heads, dims.queries, dims.keys);
    options.kv_lengths = kv_lengths.data();
    options.alibi_slopes = slopes.data();
    options.sinks = sinks.data();
    options.sink_tokens = 2;
    options.weights = simdattn::bhsd_view(weights_data.data(), dims.batch, dims.query_heads,
                                          dims.queries, dims.keys);
    options.lse = simdattn::bhsd_view(lse_data.data(), dims.batch, dims.query_heads, dims.queries,
                                      int64_t{1});
    options.num_threads = 2;
  }
  AttentionCall(const AttentionCall&) = delete;
  AttentionCall& operator=(const AttentionCall&) = delete;

  // Nothing written: the outputs still hold the sentinel and the inputs their values (an output
  // aimed at an input must not have changed it either).
  bool untouched() const {
    return all_sentinel(out_data) && all_sentinel(weights_data) && all_sentinel(lse_data) &&
           q_data == q_original && k_data == k_original && v_data == v_original;
  }

  Dims dims;
  std::vector<float> q_data, k_data, v_data, mask_data, slopes, sinks;
  std::vector<int64_t> kv_lengths;
  std::vector<float> out_data, weights_data, lse_data;
  const std::vector<float> q_original, k_original, v_original;
  ConstTensorView q, k, v;
  TensorView out;
  AttentionOptions options;
};

using AttentionFunction = void (*)(simdattn::AnyConstTensorView, simdattn::AnyConstTensorView,
                                   simdattn::AnyConstTensorView, simdattn::AnyTensorView,
                                   const AttentionOptions&);
struct AttentionEntry {
  const char* function;
  AttentionFunction call;
  const char* label;
};
const AttentionEntry kAttentionEntries[] = {
    {"simdattn::attention", &simdattn::attention, "fast"},
    {"simdattn::reference::attention", &ref::attention, "reference"},
};

class AttentionValidation : public ::testing::TestWithParam<AttentionEntry> {
 protected:
  void call(AttentionCall& c) { GetParam().call(c.q, c.k, c.v, c.out, c.options); }

  void expect_rejected(AttentionCall& c, const std::vector<std::string>& fragments) {
    expect_invalid_argument(
        GetParam().function, [&] { call(c); }, fragments);
    EXPECT_TRUE(c.untouched()) << "a rejected call wrote to an output";
  }

  void expect_accepted(AttentionCall& c) {
    EXPECT_NO_THROW(call(c));
    EXPECT_FALSE(all_sentinel(c.out_data)) << "an accepted call wrote no output";
  }
};

void PrintTo(const AttentionEntry& entry, std::ostream* os) { *os << entry.function; }

INSTANTIATE_TEST_SUITE_P(Entries, AttentionValidation, ::testing::ValuesIn(kAttentionEntries),
                         [](const auto& info) { return std::string(info.param.label); });

// The starting point of every other test is a valid call.
TEST_P(AttentionValidation, ValidCallIsAccepted) {
  AttentionCall c;
  expect_accepted(c);
  EXPECT_FALSE(all_sentinel(c.weights_data));
  EXPECT_FALSE(all_sentinel(c.lse_data));
}

TEST_P(AttentionValidation, BatchOfKDiffers) {
  AttentionCall c;
  c.k.shape[0] = 1;
  expect_rejected(c, {"k.shape[0]", "q.shape[0] = 2", "got 1"});
}

TEST_P(AttentionValidation, BatchOfVDiffers) {
  AttentionCall c;
  c.v.shape[0] = 1;
  expect_rejected(c, {"v.shape[0]", "q.shape[0] = 2", "got 1"});
}

TEST_P(AttentionValidation, KvHeadsDoNotDivideQueryHeads) {
  AttentionCall c;
  c.k.shape[1] = 4;
  c.v.shape[1] = 4;
  expect_rejected(c, {"k.shape[1]", "q.shape[1] (query heads) = 6", "got 4"});
}

TEST_P(AttentionValidation, ZeroKvHeadsForNonZeroQueryHeads) {
  AttentionCall c;
  c.k.shape[1] = 0;
  c.v.shape[1] = 0;
  expect_rejected(c, {"k.shape[1]", "= 6", "got 0"});
}

TEST_P(AttentionValidation, HeadsOfVDifferFromK) {
  AttentionCall c;
  c.v.shape[1] = 1;
  expect_rejected(c, {"v.shape[1]", "k.shape[1] = 3", "got 1"});
}

TEST_P(AttentionValidation, HeadDimOfKDiffersFromQ) {
  AttentionCall c;
  c.k.shape[3] = 5;
  expect_rejected(c, {"k.shape[3] (head_dim) must equal q.shape[3] = 8, got 5"});
}

TEST_P(AttentionValidation, KeysOfVDifferFromK) {
  AttentionCall c;
  c.v.shape[2] = 6;
  expect_rejected(c, {"v.shape[2]", "k.shape[2] = 7", "got 6"});
}

TEST_P(AttentionValidation, OutShapeDiffers) {
  const char* sources[4] = {"q.shape[0] = 2", "q.shape[1] = 6", "q.shape[2] = 5", "v.shape[3] = 4"};
  for (int d = 0; d < 4; ++d) {
    AttentionCall c;
    const int64_t wrong = c.out.shape[d] - 1;
    c.out.shape[d] = wrong;
    SCOPED_TRACE("dimension " + std::to_string(d));
    expect_rejected(
        c, {"out.shape[" + std::to_string(d) + "]", sources[d], "got " + std::to_string(wrong)});
  }
}

// The value head_dim sets out's last size, whatever q's head_dim is.
TEST_P(AttentionValidation, OutFollowsValueHeadDim) {
  Dims dims;
  dims.value_dim = 11;
  AttentionCall c(dims);
  expect_accepted(c);
  AttentionCall wrong;
  wrong.out.shape[3] = 3;
  expect_rejected(wrong, {"out.shape[3]", "v.shape[3] = 4", "got 3"});
}

TEST_P(AttentionValidation, NegativeSizes) {
  {
    AttentionCall c;
    c.q.shape[2] = -1;
    expect_rejected(c, {"q.shape[2] must be >= 0, got -1"});
  }
  {
    AttentionCall c;
    c.k.shape[2] = -3;
    expect_rejected(c, {"k.shape[2] must be >= 0, got -3"});
  }
  {
    AttentionCall c;
    c.v.shape[3] = -1;
    expect_rejected(c, {"v.shape[3] must be >= 0, got -1"});
  }
  {
    AttentionCall c;
    c.out.shape[1] = -2;
    expect_rejected(c, {"out.shape[1] must be >= 0, got -2"});
  }
  {
    AttentionCall c;
    c.options.mask->shape[0] = -1;
    expect_rejected(c, {"options.mask.shape[0] must be >= 0, got -1"});
  }
}

TEST_P(AttentionValidation, NullDataWithElements) {
  {
    AttentionCall c;
    c.q.data = nullptr;
    expect_rejected(c, {"q.data", "480 elements", "got nullptr"});
  }
  {
    AttentionCall c;
    c.v.data = nullptr;
    expect_rejected(c, {"v.data", "168 elements", "got nullptr"});
  }
  {
    AttentionCall c;
    c.out.data = nullptr;
    expect_rejected(c, {"out.data", "240 elements", "got nullptr"});
  }
  {
    AttentionCall c;
    c.options.mask->data = nullptr;
    expect_rejected(c, {"options.mask.data", "210 elements", "got nullptr"});
  }
  {
    AttentionCall c;
    c.options.weights->data = nullptr;
    expect_rejected(c, {"options.weights.data", "420 elements", "got nullptr"});
  }
}

// No batch, no query heads or no queries: nothing to read or write, any data pointer will do.
TEST_P(AttentionValidation, EmptyViewsWithNullDataAreAccepted) {
  for (int d : {0, 1, 2}) {
    Dims dims;
    if (d == 0) dims.batch = 0;
    if (d == 1) dims.query_heads = dims.kv_heads = 0;
    if (d == 2) dims.queries = 0;
    AttentionCall c(dims);
    c.q.data = nullptr;
    c.out.data = nullptr;
    c.options.weights->data = nullptr;
    c.options.lse->data = nullptr;
    if (d != 2) {
      c.k.data = nullptr;
      c.v.data = nullptr;
    }
    SCOPED_TRACE("empty dimension " + std::to_string(d));
    EXPECT_NO_THROW(call(c));
  }
}

// No keys: valid, and every row gets zeros.
TEST_P(AttentionValidation, NoKeysIsAccepted) {
  Dims dims;
  dims.keys = 0;
  AttentionCall c(dims);
  c.options.kv_lengths = nullptr;
  expect_accepted(c);
  for (float x : c.out_data) EXPECT_EQ(x, 0.0f);
}

TEST_P(AttentionValidation, LastStrideNotOne) {
  {
    AttentionCall c;
    c.q.strides[3] = 2;
    expect_rejected(c, {"q.strides[3] must be 1", "got 2"});
  }
  {
    AttentionCall c;
    c.out.strides[3] = 0;
    expect_rejected(c, {"out.strides[3] must be 1", "got 0"});
  }
  {
    AttentionCall c;
    c.options.mask->strides[3] = 2;
    expect_rejected(c, {"options.mask.strides[3] must be 1", "got 2"});
  }
  {
    AttentionCall c;
    c.options.lse->strides[3] = 3;
    expect_rejected(c, {"options.lse.strides[3] must be 1", "got 3"});
  }
}

TEST_P(AttentionValidation, NegativeStrides) {
  {
    AttentionCall c;
    c.k.strides[1] = -c.k.strides[1];
    expect_rejected(c, {"k.strides[1] must be >= 0, got -56"});
  }
  {
    AttentionCall c;
    c.out.strides[2] = -4;
    expect_rejected(c, {"out.strides[2] must be >= 0, got -4"});
  }
  {
    AttentionCall c;
    c.options.mask->strides[2] = -7;
    expect_rejected(c, {"options.mask.strides[2] must be >= 0, got -7"});
  }
}

// An output with a zero stride on a dimension of size > 1 writes two results to one place.
TEST_P(AttentionValidation, ZeroStrideOnOutputDimension) {
  {
    AttentionCall c;
    c.out.strides[1] = 0;
    expect_rejected(c, {"out.strides[1] must be > 0", "size 6", "got 0"});
  }
  {
    AttentionCall c;
    c.options.weights->strides[2] = 0;
    expect_rejected(c, {"options.weights.strides[2] must be > 0", "size 5", "got 0"});
  }
  {
    AttentionCall c;
    c.options.lse->strides[0] = 0;
    expect_rejected(c, {"options.lse.strides[0] must be > 0", "size 2", "got 0"});
  }
}

// Rows closer than their length: non-zero strides that still make the output overlap itself.
TEST_P(AttentionValidation, OutputOverlappingItself) {
  AttentionCall c;
  c.out.strides[2] = 2;  // rows of 4 values, 2 apart
  expect_rejected(c, {"out.strides[2] must be >= 4", "got 2"});
}

// A zero stride on a dimension of size 1 is harmless, on an output too; zero strides on inputs
// are expanded views (one k and v row shared by all keys, one batch of q shared by all).
TEST_P(AttentionValidation, ZeroStridesThatAreValid) {
  Dims dims;
  dims.queries = 1;
  AttentionCall c(dims);
  c.out.strides[2] = 0;
  c.options.weights->strides[2] = 0;
  c.options.lse->strides[2] = 0;
  expect_accepted(c);

  AttentionCall expanded;
  expanded.k.strides[2] = 0;
  expanded.v.strides[2] = 0;
  expanded.q.strides[0] = 0;
  expanded.options.mask->strides[1] = 0;
  expect_accepted(expanded);
}

TEST_P(AttentionValidation, NegativeNumThreads) {
  AttentionCall c;
  c.options.num_threads = -3;
  expect_rejected(c, {"options.num_threads must be >= 0", "got -3"});
}

TEST_P(AttentionValidation, CausalOutOfRange) {
  for (int32_t value : {3, -1}) {
    AttentionCall c;
    c.options.causal = static_cast<simdattn::Causal>(value);
    expect_rejected(c, {"options.causal", "2 (top_left)", "got " + std::to_string(value)});
  }
}

TEST_P(AttentionValidation, AlgorithmOutOfRange) {
  for (int32_t value : {7, -2}) {
    AttentionCall c;
    c.options.algorithm = static_cast<simdattn::Algorithm>(value);
    expect_rejected(c, {"options.algorithm", "2 (fused)", "got " + std::to_string(value)});
  }
}

TEST_P(AttentionValidation, WindowBelowMinusOne) {
  {
    AttentionCall c;
    c.options.window_left = -2;
    expect_rejected(c, {"options.window_left must be >= -1", "got -2"});
  }
  {
    AttentionCall c;
    c.options.window_right = -5;
    expect_rejected(c, {"options.window_right must be >= -1", "got -5"});
  }
  AttentionCall unbounded;
  unbounded.options.window_left = -1;
  unbounded.options.window_right = 0;
  expect_accepted(unbounded);
}

TEST_P(AttentionValidation, SoftcapNegativeOrNotFinite) {
  const std::pair<float, const char*> cases[] = {
      {-1.0f, "got -1"}, {std::nanf(""), "got nan"}, {kInfinity, "got inf"}};
  for (const auto& [softcap, actual] : cases) {
    AttentionCall c;
    c.options.softcap = softcap;
    expect_rejected(c, {"options.softcap must be finite and >= 0", actual});
  }
}

TEST_P(AttentionValidation, ScaleNotFinite) {
  const std::pair<float, const char*> cases[] = {{std::nanf(""), "got nan"},
                                                 {-kInfinity, "got -inf"}};
  for (const auto& [scale, actual] : cases) {
    AttentionCall c;
    c.options.scale = scale;
    expect_rejected(c, {"options.scale must be finite", actual});
  }
}

TEST_P(AttentionValidation, KvLengthsOutOfRange) {
  {
    AttentionCall c;
    c.kv_lengths = {3, -1};
    c.options.kv_lengths = c.kv_lengths.data();
    expect_rejected(c, {"options.kv_lengths[1] must be in [0, 7]", "got -1"});
  }
  {
    AttentionCall c;
    c.kv_lengths = {8, 2};
    c.options.kv_lengths = c.kv_lengths.data();
    expect_rejected(c, {"options.kv_lengths[0] must be in [0, 7]", "got 8"});
  }
  AttentionCall edges;
  edges.kv_lengths = {0, 7};
  edges.options.kv_lengths = edges.kv_lengths.data();
  expect_accepted(edges);
}

TEST_P(AttentionValidation, AlibiSlopeNotFinite) {
  AttentionCall c;
  c.slopes[2] = kInfinity;
  expect_rejected(c, {"options.alibi_slopes[2] must be finite", "got inf"});
}

TEST_P(AttentionValidation, SinkNaNOrPlusInfinity) {
  {
    AttentionCall c;
    c.sinks[4] = std::numeric_limits<float>::quiet_NaN();
    expect_rejected(c, {"options.sinks[4] must be finite or -inf", "got nan"});
  }
  {
    AttentionCall c;
    c.sinks[1] = kInfinity;
    expect_rejected(c, {"options.sinks[1] must be finite or -inf", "got inf"});
  }
  // -inf (no sink) and logits far beyond any other are valid.
  AttentionCall edges;
  edges.sinks = {-kInfinity, 1e4f, -1e4f, 0.0f, -kInfinity, 3.0f};
  edges.options.sinks = edges.sinks.data();
  expect_accepted(edges);
}

TEST_P(AttentionValidation, SinkTokensNegative) {
  {
    AttentionCall c;
    c.options.sink_tokens = -1;
    expect_rejected(c, {"options.sink_tokens must be >= 0", "got -1"});
  }
  // More sink tokens than keys, or sink tokens without a window: valid.
  AttentionCall many;
  many.options.sink_tokens = int64_t{1} << 62;
  expect_accepted(many);
  AttentionCall no_window;
  no_window.options.window_left = -1;
  expect_accepted(no_window);
}

TEST_P(AttentionValidation, MaskThatDoesNotBroadcast) {
  const std::pair<int, int64_t> wrong_sizes[] = {{0, 3}, {1, 2}, {2, 4}};
  const char* allowed[] = {"must be 1 or 2", "must be 1 or 6", "must be 1 or 5"};
  for (const auto& [d, size] : wrong_sizes) {
    AttentionCall c;
    c.options.mask->shape[d] = size;
    SCOPED_TRACE("dimension " + std::to_string(d));
    expect_rejected(c, {"options.mask.shape[" + std::to_string(d) + "]", allowed[d],
                        "got " + std::to_string(size)});
  }
  AttentionCall keys;
  keys.options.mask->shape[3] = 1;
  expect_rejected(keys, {"options.mask.shape[3] must equal k.shape[2] (Sk) = 7", "got 1"});
}

// Every broadcast form of the mask is accepted, including zero-stride expanded views.
TEST_P(AttentionValidation, MaskThatBroadcasts) {
  const std::array<int64_t, 4> shapes[] = {{1, 1, 1, 7}, {2, 1, 5, 7}, {1, 6, 1, 7}, {2, 6, 5, 7}};
  for (const auto& shape : shapes) {
    AttentionCall c;
    std::vector<float> mask(size_t(shape[0] * shape[1] * shape[2] * shape[3]), 0.5f);
    c.options.mask = simdattn::bhsd_view(static_cast<const float*>(mask.data()), shape[0], shape[1],
                                         shape[2], shape[3]);
    expect_accepted(c);
  }
  AttentionCall expanded;
  expanded.options.mask = ConstTensorView(expanded.mask_data.data(), {2, 6, 5, 7}, {0, 0, 0, 1});
  expect_accepted(expanded);
}

// With a single key the mask's last stride does not matter (an expanded [.., Sq, 1] view).
TEST_P(AttentionValidation, MaskLastStrideIsFreeWithOneKey) {
  Dims dims;
  dims.keys = 1;
  AttentionCall c(dims);
  c.kv_lengths.assign(2, 1);
  c.options.kv_lengths = c.kv_lengths.data();
  c.options.mask = ConstTensorView(c.mask_data.data(), {1, 6, 5, 1}, {5, 5, 1, 0});
  expect_accepted(c);
}

TEST_P(AttentionValidation, WeightsShapeDiffers) {
  AttentionCall c;
  c.options.weights->shape[3] = 6;
  expect_rejected(c, {"options.weights.shape[3]", "k.shape[2] = 7", "got 6"});
}

// The fused path never holds a row of weights; asking it for them is an error, not a silence.
TEST_P(AttentionValidation, WeightsWithFusedAlgorithm) {
  AttentionCall c;
  c.options.algorithm = simdattn::Algorithm::fused;
  expect_rejected(c, {"options.weights requires options.algorithm", "got 2 (fused)"});

  AttentionCall composed;
  composed.options.algorithm = simdattn::Algorithm::composed;
  expect_accepted(composed);
  AttentionCall fused_without_weights;
  fused_without_weights.options.algorithm = simdattn::Algorithm::fused;
  fused_without_weights.options.weights.reset();
  expect_accepted(fused_without_weights);
}

TEST_P(AttentionValidation, LseShapeDiffers) {
  {
    // Two values per row, laid out densely so that only the shape is wrong.
    AttentionCall c;
    std::vector<float> wide(c.lse_data.size() * 2, kSentinel);
    c.options.lse = simdattn::bhsd_view(wide.data(), 2, 6, 5, 2);
    expect_rejected(c, {"options.lse.shape[3] (one value per row) must equal 1, got 2"});
    EXPECT_TRUE(all_sentinel(wide));
  }
  {
    AttentionCall c;
    c.options.lse->shape[2] = 4;
    expect_rejected(c, {"options.lse.shape[2]", "q.shape[2] = 5", "got 4"});
  }
}

// Sizes whose element count, offset or byte extent do not fit in 64 bits are errors, not
// wrap-arounds that would make a huge view look small.
TEST_P(AttentionValidation, SizesThatOverflow) {
  {
    AttentionCall c;
    c.q.shape = {int64_t{1} << 21, int64_t{1} << 21, int64_t{1} << 21, 8};
    expect_rejected(c, {"q.shape [2097152, 2097152, 2097152, 8]", "overflows int64"});
  }
  {
    AttentionCall c;
    c.k.strides[0] = std::numeric_limits<int64_t>::max();
    expect_rejected(c, {"k with shape [2, 3, 7, 8]", "overflows int64"});
  }
  {
    AttentionCall c;
    c.k.strides[0] = int64_t{1} << 62;  // the offset fits in int64, four bytes per element do not
    expect_rejected(c, {"k must span at most", "overflows int64 in bytes"});
  }
  {
    AttentionCall c;
    c.v.data = reinterpret_cast<const float*>(std::numeric_limits<std::uintptr_t>::max() - 64);
    expect_rejected(c, {"v must end inside the address space"});
  }
}

// An output over an input (or over another output) would make the result depend on the order of
// the loop: rejected, naming both.
TEST_P(AttentionValidation, OutputsOverlappingInputs) {
  {
    AttentionCall c;
    c.out.data = c.q_data.data() + 8;
    expect_rejected(c, {"out must not overlap q"});
  }
  {
    AttentionCall c;
    c.out.data = c.k_data.data();
    expect_rejected(c, {"out must not overlap k"});
  }
  {
    // Each view aimed at a buffer it fits in, so that the other allocations cannot be in the way.
    AttentionCall c;
    c.v.data = c.out_data.data() + 8;
    expect_rejected(c, {"out must not overlap v"});
  }
  {
    AttentionCall c;
    c.options.mask->data = c.weights_data.data() + 100;
    expect_rejected(c, {"options.weights must not overlap options.mask"});
  }
  {
    AttentionCall c;
    c.options.lse->data = c.out_data.data() + 16;
    expect_rejected(c, {"out must not overlap options.lse"});
  }
  {
    AttentionCall c;
    c.options.weights->data = c.out_data.data();
    expect_rejected(c, {"out must not overlap options.weights"});
  }
  {
    AttentionCall c;
    c.options.alibi_slopes = c.lse_data.data() + 10;
    expect_rejected(c, {"options.lse must not overlap options.alibi_slopes"});
  }
  {
    AttentionCall c;
    c.options.sinks = c.lse_data.data() + 3;
    expect_rejected(c, {"options.lse must not overlap options.sinks"});
  }
}

// Inputs may share memory (q, k and v as views of one buffer); outputs next to inputs in one
// allocation are fine as long as their bytes do not meet.
TEST_P(AttentionValidation, SharedBuffersThatDoNotOverlapAreAccepted) {
  AttentionCall c;
  c.k.data = c.q_data.data();
  c.options.mask.reset();
  expect_accepted(c);

  AttentionCall neighbours;
  std::vector<float> storage(neighbours.q_data.size() + neighbours.out_data.size());
  std::copy(neighbours.q_data.begin(), neighbours.q_data.end(), storage.begin());
  neighbours.q.data = storage.data();
  neighbours.out.data = storage.data() + neighbours.q_data.size();
  EXPECT_NO_THROW(call(neighbours));
}

// ---------------------------------------------------------------------------------------------
// qk_scores, softmax_rows, weights_v
// ---------------------------------------------------------------------------------------------

// The stage functions, fast and reference, called alike (the reference ones take no num_threads).
struct StageEntries {
  const char* label;
  const char* qk_scores_name;
  void (*qk_scores)(ConstTensorView, ConstTensorView, TensorView, float, int);
  const char* softmax_rows_name;
  void (*softmax_rows)(TensorView, int);
  const char* weights_v_name;
  void (*weights_v)(ConstTensorView, ConstTensorView, TensorView, int);
};

const StageEntries kStageEntries[] = {
    {"fast", "simdattn::qk_scores",
     [](ConstTensorView q, ConstTensorView k, TensorView s, float scale, int threads) {
       simdattn::qk_scores(q, k, s, scale, threads);
     },
     "simdattn::softmax_rows",
     [](TensorView s, int threads) { simdattn::softmax_rows(s, threads); }, "simdattn::weights_v",
     [](ConstTensorView w, ConstTensorView v, TensorView o, int threads) {
       simdattn::weights_v(w, v, o, threads);
     }},
    {"reference", "simdattn::reference::qk_scores",
     [](ConstTensorView q, ConstTensorView k, TensorView s, float scale, int) {
       ref::qk_scores(q, k, s, scale);
     },
     "simdattn::reference::softmax_rows", [](TensorView s, int) { ref::softmax_rows(s); },
     "simdattn::reference::weights_v",
     [](ConstTensorView w, ConstTensorView v, TensorView o, int) { ref::weights_v(w, v, o); }},
};

// Valid inputs of the three stages at the Dims sizes: q, k, v, a score matrix and outputs.
struct StageCall {
  StageCall()
      : q_data(seeded_values(size_t(dims.batch * dims.query_heads * dims.queries * dims.head_dim),
                             11)),
        k_data(seeded_values(size_t(dims.batch * dims.kv_heads * dims.keys * dims.head_dim), 12)),
        v_data(seeded_values(size_t(dims.batch * dims.kv_heads * dims.keys * dims.value_dim), 13)),
        weights_data(
            seeded_values(size_t(dims.batch * dims.query_heads * dims.queries * dims.keys), 14)),
        scores_data(weights_data.size(), kSentinel),
        out_data(size_t(dims.batch * dims.query_heads * dims.queries * dims.value_dim), kSentinel),
        q(simdattn::bhsd_view(q_data.data(), dims.batch, dims.query_heads, dims.queries,
                              dims.head_dim)),
        k(simdattn::bhsd_view(k_data.data(), dims.batch, dims.kv_heads, dims.keys, dims.head_dim)),
        v(simdattn::bhsd_view(v_data.data(), dims.batch, dims.kv_heads, dims.keys, dims.value_dim)),
        weights(simdattn::bhsd_view(weights_data.data(), dims.batch, dims.query_heads, dims.queries,
                                    dims.keys)),
        scores(simdattn::bhsd_view(scores_data.data(), dims.batch, dims.query_heads, dims.queries,
                                   dims.keys)),
        out(simdattn::bhsd_view(out_data.data(), dims.batch, dims.query_heads, dims.queries,
                                dims.value_dim)) {}
  StageCall(const StageCall&) = delete;
  StageCall& operator=(const StageCall&) = delete;

  Dims dims;
  std::vector<float> q_data, k_data, v_data, weights_data, scores_data, out_data;
  ConstTensorView q, k, v, weights;
  TensorView scores, out;
};

class StageValidation : public ::testing::TestWithParam<StageEntries> {
 protected:
  void expect_qk_rejected(StageCall& c, float scale, int threads,
                          const std::vector<std::string>& fragments) {
    expect_invalid_argument(
        GetParam().qk_scores_name,
        [&] { GetParam().qk_scores(c.q, c.k, c.scores, scale, threads); }, fragments);
    EXPECT_TRUE(all_sentinel(c.scores_data)) << "a rejected call wrote scores";
  }
  void expect_weights_v_rejected(StageCall& c, int threads,
                                 const std::vector<std::string>& fragments) {
    const std::vector<float> weights_before = c.weights_data;
    expect_invalid_argument(
        GetParam().weights_v_name, [&] { GetParam().weights_v(c.weights, c.v, c.out, threads); },
        fragments);
    EXPECT_TRUE(all_sentinel(c.out_data)) << "a rejected call wrote out";
    EXPECT_EQ(c.weights_data, weights_before);
  }
  // softmax_rows works in place: a rejected call must leave the scores exactly as they were.
  void expect_softmax_rejected(TensorView scores, std::vector<float>& storage, int threads,
                               const std::vector<std::string>& fragments) {
    const std::vector<float> before = storage;
    expect_invalid_argument(
        GetParam().softmax_rows_name, [&] { GetParam().softmax_rows(scores, threads); }, fragments);
    EXPECT_EQ(std::memcmp(storage.data(), before.data(), before.size() * sizeof(float)), 0)
        << "a rejected call changed the scores";
  }
};

void PrintTo(const StageEntries& entries, std::ostream* os) { *os << entries.label; }

INSTANTIATE_TEST_SUITE_P(Entries, StageValidation, ::testing::ValuesIn(kStageEntries),
                         [](const auto& info) { return std::string(info.param.label); });

TEST_P(StageValidation, ValidCallsAreAccepted) {
  StageCall c;
  EXPECT_NO_THROW(GetParam().qk_scores(c.q, c.k, c.scores, 0.5f, 0));
  EXPECT_FALSE(all_sentinel(c.scores_data));
  EXPECT_NO_THROW(GetParam().softmax_rows(c.scores, 0));
  EXPECT_NO_THROW(GetParam().weights_v(c.weights, c.v, c.out, 0));
  EXPECT_FALSE(all_sentinel(c.out_data));
}

TEST_P(StageValidation, QkScoresShapesDisagree) {
  {
    StageCall c;
    c.k.shape[0] = 1;
    expect_qk_rejected(c, 1.0f, 0, {"k.shape[0]", "q.shape[0] = 2", "got 1"});
  }
  {
    StageCall c;
    c.k.shape[1] = 4;
    expect_qk_rejected(c, 1.0f, 0, {"k.shape[1]", "q.shape[1] (query heads) = 6", "got 4"});
  }
  {
    StageCall c;
    c.k.shape[3] = 5;
    expect_qk_rejected(c, 1.0f, 0, {"k.shape[3] (head_dim) must equal q.shape[3] = 8, got 5"});
  }
  const char* sources[4] = {"q.shape[0] = 2", "q.shape[1] = 6", "q.shape[2] = 5", "k.shape[2] = 7"};
  for (int d = 0; d < 4; ++d) {
    StageCall c;
    c.scores.shape[d] -= 1;
    SCOPED_TRACE("dimension " + std::to_string(d));
    expect_qk_rejected(c, 1.0f, 0,
                       {"scores.shape[" + std::to_string(d) + "]", sources[d],
                        "got " + std::to_string(c.scores.shape[d])});
  }
}

TEST_P(StageValidation, QkScoresScaleNotFinite) {
  for (const float scale : {std::nanf(""), kInfinity, -kInfinity}) {
    StageCall c;
    expect_qk_rejected(c, scale, 0, {"scale must be finite"});
  }
}

TEST_P(StageValidation, QkScoresBadViews) {
  {
    StageCall c;
    c.q.data = nullptr;
    expect_qk_rejected(c, 1.0f, 0, {"q.data", "480 elements", "got nullptr"});
  }
  {
    StageCall c;
    c.k.strides[3] = 3;
    expect_qk_rejected(c, 1.0f, 0, {"k.strides[3] must be 1", "got 3"});
  }
  {
    StageCall c;
    c.scores.strides[2] = 0;
    expect_qk_rejected(c, 1.0f, 0, {"scores.strides[2] must be > 0", "got 0"});
  }
  {
    StageCall c;
    c.q.shape[0] = -2;
    expect_qk_rejected(c, 1.0f, 0, {"q.shape[0] must be >= 0, got -2"});
  }
  {
    StageCall c;
    c.scores.data = c.q_data.data();
    expect_qk_rejected(c, 1.0f, 0, {"scores must not overlap q"});
  }
}

// Only the fast stages take num_threads (the reference ones run on one thread).
TEST(FastStageValidation, NegativeNumThreads) {
  StageCall c;
  expect_invalid_argument("simdattn::qk_scores",
                          [&] { simdattn::qk_scores(c.q, c.k, c.scores, 1.0f, -1); },
                          {"num_threads must be >= 0", "got -1"});
  expect_invalid_argument("simdattn::weights_v",
                          [&] { simdattn::weights_v(c.weights, c.v, c.out, -2); },
                          {"num_threads must be >= 0", "got -2"});
  EXPECT_TRUE(all_sentinel(c.scores_data) && all_sentinel(c.out_data));
  c.scores_data = seeded_values(c.scores_data.size(), 22);
  const std::vector<float> before = c.scores_data;
  expect_invalid_argument("simdattn::softmax_rows", [&] { simdattn::softmax_rows(c.scores, -4); },
                          {"num_threads must be >= 0", "got -4"});
  EXPECT_EQ(c.scores_data, before);
}

TEST_P(StageValidation, SoftmaxRowsBadViews) {
  StageCall c;
  c.scores_data = seeded_values(c.scores_data.size(), 21);
  TensorView scores = c.scores;
  scores.shape[2] = -1;
  expect_softmax_rejected(scores, c.scores_data, 0, {"scores.shape[2] must be >= 0, got -1"});
  scores = c.scores;
  scores.data = nullptr;
  expect_softmax_rejected(scores, c.scores_data, 0, {"scores.data", "420 elements", "got nullptr"});
  scores = c.scores;
  scores.strides[3] = 2;
  expect_softmax_rejected(scores, c.scores_data, 0, {"scores.strides[3] must be 1", "got 2"});
  scores = c.scores;
  scores.strides[1] = -35;
  expect_softmax_rejected(scores, c.scores_data, 0, {"scores.strides[1] must be >= 0, got -35"});
  scores = c.scores;
  scores.strides[0] = 0;
  expect_softmax_rejected(scores, c.scores_data, 0,
                          {"scores.strides[0] must be > 0", "size 2", "got 0"});
  scores = c.scores;
  scores.strides[2] = 5;  // rows of 7 scores, 5 apart
  expect_softmax_rejected(scores, c.scores_data, 0, {"scores.strides[2] must be >= 7", "got 5"});
  scores = c.scores;
  scores.shape = {int64_t{1} << 40, int64_t{1} << 40, 1, 7};
  expect_softmax_rejected(scores, c.scores_data, 0, {"scores.shape", "overflows int64"});
}

TEST_P(StageValidation, WeightsVShapesDisagree) {
  {
    StageCall c;
    c.v.shape[0] = 3;
    expect_weights_v_rejected(c, 0, {"v.shape[0]", "weights.shape[0] = 2", "got 3"});
  }
  {
    StageCall c;
    c.v.shape[1] = 5;
    expect_weights_v_rejected(c, 0, {"v.shape[1]", "weights.shape[1] (query heads) = 6", "got 5"});
  }
  {
    StageCall c;
    c.v.shape[2] = 6;
    expect_weights_v_rejected(c, 0, {"v.shape[2] (Sk) must equal weights.shape[3] = 7, got 6"});
  }
  const char* sources[4] = {"weights.shape[0] = 2", "weights.shape[1] = 6", "weights.shape[2] = 5",
                            "v.shape[3] = 4"};
  for (int d = 0; d < 4; ++d) {
    StageCall c;
    c.out.shape[d] -= 1;
    SCOPED_TRACE("dimension " + std::to_string(d));
    expect_weights_v_rejected(c, 0,
                              {"out.shape[" + std::to_string(d) + "]", sources[d],
                               "got " + std::to_string(c.out.shape[d])});
  }
}

TEST_P(StageValidation, WeightsVBadViewsAndOverlap) {
  {
    StageCall c;
    c.v.data = nullptr;
    expect_weights_v_rejected(c, 0, {"v.data", "168 elements", "got nullptr"});
  }
  {
    StageCall c;
    c.out.strides[3] = 4;
    expect_weights_v_rejected(c, 0, {"out.strides[3] must be 1", "got 4"});
  }
  {
    StageCall c;
    c.out.data = c.weights_data.data() + 100;
    expect_weights_v_rejected(c, 0, {"out must not overlap weights"});
  }
  {
    StageCall c;
    c.v.data = c.out_data.data();
    expect_weights_v_rejected(c, 0, {"out must not overlap v"});
  }
}

// ---------------------------------------------------------------------------------------------
// The single-vector oracles
// ---------------------------------------------------------------------------------------------

TEST(VectorValidation, LengthsThatDisagree) {
  expect_invalid_argument("simdattn::reference::dot_product",
                          [] {
                            ref::dot_product({1.0, 2.0, 3.0}, {1.0, 2.0});
                          },
                          {"b.size() must equal a.size() = 3, got 2"});
  expect_invalid_argument("simdattn::reference::weighted_sum",
                          [] {
                            ref::weighted_sum({0.5, 0.5}, {{1.0, 2.0}});
                          },
                          {"values.size() must equal weights.size() = 2, got 1"});
  expect_invalid_argument("simdattn::reference::weighted_sum",
                          [] {
                            ref::weighted_sum({0.5, 0.5}, {{1.0, 2.0}, {1.0}});
                          },
                          {"values[1].size() must equal values[0].size() = 2, got 1"});
  expect_invalid_argument("simdattn::reference::single_query_attention",
                          [] {
                            ref::single_query_attention({1.0, 0.0}, {{1.0, 1.0}}, {});
                          },
                          {"values.size() must equal keys.size() = 1, got 0"});
  expect_invalid_argument("simdattn::reference::single_query_attention",
                          [] {
                            ref::single_query_attention({1.0, 0.0}, {{1.0, 1.0, 1.0}}, {{2.0}});
                          },
                          {"keys[0].size() must equal query.size() = 2, got 3"});
  expect_invalid_argument(
      "simdattn::reference::single_query_attention",
      [] { ref::single_query_attention({1.0}, {{1.0}}, {{2.0}}, std::nan("")); },
      {"scale must be finite", "got nan"});
  EXPECT_EQ(ref::single_query_attention({1.0}, {{1.0}}, {{2.0}}), (std::vector<double>{2.0}));
}

}  // namespace

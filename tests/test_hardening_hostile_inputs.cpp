// Hostile arguments through the C ABI, swept over every tensor of every function: the hostile
// cases that tests/test_validation.cpp (C++ entries, one representative each) and
// tests/package/c_abi_contract.c (C-specific checks) do not already sweep.
//  - a dtype that is no simdattn_dtype on each tensor argument of each C function;
//  - element counts, offsets and byte extents that overflow int64, or views that run past the end
//    of the address space, on each tensor argument of each C function (the stage functions have
//    none in test_validation.cpp);
//  - every output placed over every input and every other output, sharing exactly one element
//    (from either side), rejected; and placed just next to it, accepted with the same bits;
//  - head_dim 0 and value_dim 0, which make sense and must not crash.
// Every rejected call must return SIMDATTN_ERR_INVALID_ARGUMENT and leave every byte the call
// could reach as it was: all tensors live in one arena, compared byte for byte before and after.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dispatch.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/simdattn.hpp"

namespace {

using Shape = std::array<int64_t, 4>;

constexpr float kSentinel = -1234.5f;

// What one argument of a C function is.
enum class Kind { input_tensor, output_tensor, lengths, slopes };

struct Argument {
  std::string c_name;    // as the C layer names it ("options->weights")
  std::string cpp_name;  // as the argument checks name it ("options.weights")
  Kind kind;
  Shape shape;           // for lengths and slopes: {count, 1, 1, 1}

  bool is_output() const { return kind == Kind::output_tensor; }
  bool is_tensor() const { return kind == Kind::input_tensor || kind == Kind::output_tensor; }
  size_t element_bytes() const { return kind == Kind::lengths ? sizeof(int64_t) : sizeof(float); }
  size_t count() const { return size_t(shape[0] * shape[1] * shape[2] * shape[3]); }
  size_t bytes() const { return count() * element_bytes(); }
};

// The C tensor of a dense [B, H, S, D] view at `data`.
simdattn_tensor dense_tensor(void* data, const Shape& s) {
  return simdattn_tensor{data, SIMDATTN_F32, {s[0], s[1], s[2], s[3]}, {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1}};
}

// One C function and its arguments; `call` receives the C tensor of each tensor argument and the
// address of each array argument, in the order of `arguments`.
struct Entry {
  std::string function;      // the C function
  std::vector<Argument> arguments;
  std::function<simdattn_status(std::vector<simdattn_tensor>&, std::vector<void*>&)> call;
};

// Sizes all different, so that a wrong pairing shows: B 2, Hq 4, Hkv 2, Sq 5, Sk 7, D 8, Dv 6.
constexpr int64_t B = 2, Hq = 4, Hkv = 2, Sq = 5, Sk = 7, D = 8, Dv = 6;

Entry attention_entry() {
  return {"simdattn_attention",
          {{"q", "q", Kind::input_tensor, {B, Hq, Sq, D}},
           {"k", "k", Kind::input_tensor, {B, Hkv, Sk, D}},
           {"v", "v", Kind::input_tensor, {B, Hkv, Sk, Dv}},
           {"options->mask", "options.mask", Kind::input_tensor, {B, Hq, Sq, Sk}},
           {"options->kv_lengths", "options.kv_lengths", Kind::lengths, {B, 1, 1, 1}},
           {"options->alibi_slopes", "options.alibi_slopes", Kind::slopes, {Hq, 1, 1, 1}},
           {"out", "out", Kind::output_tensor, {B, Hq, Sq, Dv}},
           {"options->weights", "options.weights", Kind::output_tensor, {B, Hq, Sq, Sk}},
           {"options->lse", "options.lse", Kind::output_tensor, {B, Hq, Sq, 1}}},
          [](std::vector<simdattn_tensor>& t, std::vector<void*>& data) {
            simdattn_options options;
            simdattn_options_init(&options);
            options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
            options.mask = &t[3];
            options.kv_lengths = static_cast<const int64_t*>(data[4]);
            options.alibi_slopes = static_cast<const float*>(data[5]);
            options.weights = &t[7];
            options.lse = &t[8];
            options.num_threads = 2;
            return simdattn_attention(&t[0], &t[1], &t[2], &t[6], &options);
          }};
}

Entry qk_scores_entry() {
  return {"simdattn_qk_scores",
          {{"q", "q", Kind::input_tensor, {B, Hq, Sq, D}},
           {"k", "k", Kind::input_tensor, {B, Hkv, Sk, D}},
           {"scores", "scores", Kind::output_tensor, {B, Hq, Sq, Sk}}},
          [](std::vector<simdattn_tensor>& t, std::vector<void*>&) {
            return simdattn_qk_scores(&t[0], &t[1], &t[2], 0.3f, 2);
          }};
}

Entry weights_v_entry() {
  return {"simdattn_weights_v",
          {{"weights", "weights", Kind::input_tensor, {B, Hq, Sq, Sk}},
           {"v", "v", Kind::input_tensor, {B, Hkv, Sk, Dv}},
           {"out", "out", Kind::output_tensor, {B, Hq, Sq, Dv}}},
          [](std::vector<simdattn_tensor>& t, std::vector<void*>&) {
            return simdattn_weights_v(&t[0], &t[1], &t[2], 2);
          }};
}

Entry softmax_rows_entry() {
  return {"simdattn_softmax_rows",
          {{"scores", "scores", Kind::output_tensor, {B, Hq, Sq, Sk}}},
          [](std::vector<simdattn_tensor>& t, std::vector<void*>&) { return simdattn_softmax_rows(&t[0], 2); }};
}

std::vector<Entry> all_entries() {
  return {attention_entry(), qk_scores_entry(), weights_v_entry(), softmax_rows_entry()};
}

size_t round_up(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Where each argument of an entry lives: byte offsets into one arena, so that a test can place two
// of them to overlap or to touch, and can check every byte after a call.
class Placement {
 public:
  // Each argument on its own, 64 bytes apart.
  explicit Placement(const Entry& entry) : entry_(entry), offsets_(entry.arguments.size()) {
    size_t next = 0;
    for (size_t a = 0; a < offsets_.size(); ++a) {
      offsets_[a] = next;
      next = round_up(next + entry.arguments[a].bytes() + 64, 64);
    }
    end_ = next;
  }

  // `first` moved past everything else, and `second` right after it: starting at its end
  // (touching, no shared byte) or over its last element (at least one shared byte), aligned for
  // its own type. No third argument is near either.
  Placement& place_after(size_t first, size_t second, bool overlap) {
    offsets_[first] = end_;
    const size_t alignment = entry_.arguments[second].element_bytes();
    const size_t end_of_first = offsets_[first] + entry_.arguments[first].bytes();
    offsets_[second] = overlap ? (end_of_first - 1) / alignment * alignment : round_up(end_of_first, alignment);
    end_ = round_up(offsets_[second] + entry_.arguments[second].bytes() + 64, 64);
    return *this;
  }

  size_t offset(size_t argument) const { return offsets_[argument]; }
  size_t end() const { return end_; }

 private:
  const Entry& entry_;
  std::vector<size_t> offsets_;
  size_t end_ = 0;
};

// The arena of one call: outputs hold the sentinel, inputs seeded values (written last, so that
// where an input and an output share bytes the input is still valid: kv_lengths must be in range
// for the overlap, not the lengths, to be what the call rejects).
class Arena {
 public:
  Arena(const Entry& entry, const Placement& placement)
      : entry_(entry), placement_(placement), words_(placement.end() / sizeof(uint64_t) + 1) {
    for (size_t pass = 0; pass < 2; ++pass) {
      for (size_t a = 0; a < entry.arguments.size(); ++a) {
        const Argument& argument = entry.arguments[a];
        if (argument.is_output() != (pass == 0)) continue;
        fill(a, argument);
      }
    }
  }

  void* address(size_t argument) { return bytes() + placement_.offset(argument); }
  unsigned char* bytes() { return reinterpret_cast<unsigned char*>(words_.data()); }
  std::vector<unsigned char> snapshot() { return {bytes(), bytes() + placement_.end()}; }

  // The C tensors and array addresses of the entry's arguments, placed in this arena.
  simdattn_status call() {
    std::vector<simdattn_tensor> tensors;
    std::vector<void*> data;
    for (size_t a = 0; a < entry_.arguments.size(); ++a) {
      tensors.push_back(dense_tensor(address(a), entry_.arguments[a].shape));
      data.push_back(address(a));
    }
    return entry_.call(tensors, data);
  }

  // The bytes of one argument as they are now.
  std::vector<unsigned char> contents(size_t argument) {
    const auto* first = static_cast<unsigned char*>(address(argument));
    return {first, first + entry_.arguments[argument].bytes()};
  }

 private:
  void fill(size_t a, const Argument& argument) {
    if (argument.kind == Kind::lengths) {
      std::vector<int64_t> lengths(argument.count(), Sk);
      lengths[0] = Sk - 3;  // ragged: batch 0 sees 4 of its 7 keys
      std::memcpy(address(a), lengths.data(), argument.bytes());
      return;
    }
    std::vector<float> values(argument.count(), kSentinel);
    if (!argument.is_output()) {
      uint32_t state = 2654435761u * uint32_t(a + 1);
      for (float& x : values) {
        state = state * 1664525u + 1013904223u;
        x = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f;  // [-0.5, 0.5)
      }
    }
    std::memcpy(address(a), values.data(), argument.bytes());
  }

  const Entry& entry_;
  const Placement& placement_;
  std::vector<uint64_t> words_;  // 8-byte aligned: kv_lengths are int64
};

// The call's status is SIMDATTN_ERR_INVALID_ARGUMENT with a message holding every fragment, and
// no byte of the arena changed.
void expect_rejected(Arena& arena, const std::string& what, const std::vector<std::string>& fragments) {
  const std::vector<unsigned char> before = arena.snapshot();
  const simdattn_status status = arena.call();
  EXPECT_EQ(status, SIMDATTN_ERR_INVALID_ARGUMENT) << what << ": " << simdattn_last_error();
  const std::string message = simdattn_last_error();
  for (const std::string& fragment : fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos) << what << ": message lacks \"" << fragment << "\": " << message;
  }
  EXPECT_TRUE(arena.snapshot() == before) << what << ": the rejected call changed memory";
}

// Every tensor argument of every C function with a dtype that is no simdattn_dtype.
TEST(HardeningHostileInputs, UnknownDtypeOnEveryTensorOfEveryFunction) {
  for (const Entry& entry : all_entries()) {
    const Placement placement(entry);
    for (size_t a = 0; a < entry.arguments.size(); ++a) {
      if (!entry.arguments[a].is_tensor()) continue;
      for (int32_t dtype : {4, -1, std::numeric_limits<int32_t>::max()}) {
        Entry broken = entry;
        broken.call = [&entry, a, dtype](std::vector<simdattn_tensor>& t, std::vector<void*>& data) {
          t[a].dtype = dtype;
          return entry.call(t, data);
        };
        Arena broken_arena(broken, placement);
        expect_rejected(broken_arena, entry.function + " " + entry.arguments[a].c_name + " dtype " + std::to_string(dtype),
                        {entry.function, entry.arguments[a].c_name + "->dtype", std::to_string(dtype)});
      }
    }
  }
}

// Sizes and strides whose arithmetic does not fit in 64 bits, and views that end past the address
// space, on every tensor argument of every C function.
TEST(HardeningHostileInputs, SizesThatOverflowOnEveryTensorOfEveryFunction) {
  struct Breakage {
    const char* what;
    std::function<void(simdattn_tensor&)> apply;
    const char* fragment;
  };
  const std::vector<Breakage> breakages = {
      {"element count 2^21·2^21·2^21·8",
       [](simdattn_tensor& t) { t.shape[0] = t.shape[1] = t.shape[2] = int64_t{1} << 21; t.shape[3] = 8; },
       "overflows int64"},
      {"offset (shape[0] - 1)·INT64_MAX",
       [](simdattn_tensor& t) { t.shape[0] = 2; t.strides[0] = std::numeric_limits<int64_t>::max(); },
       "overflows int64"},
      {"byte extent 2^62 elements · 4 bytes",
       [](simdattn_tensor& t) { t.shape[0] = 2; t.strides[0] = int64_t{1} << 62; },
       "overflows int64 in bytes"},
      {"data 64 bytes before the end of the address space",
       [](simdattn_tensor& t) { t.data = reinterpret_cast<void*>(std::numeric_limits<std::uintptr_t>::max() - 64); },
       "must end inside the address space"},
  };
  for (const Entry& entry : all_entries()) {
    const Placement placement(entry);
    for (size_t a = 0; a < entry.arguments.size(); ++a) {
      if (!entry.arguments[a].is_tensor()) continue;
      for (const Breakage& breakage : breakages) {
        Entry broken = entry;
        broken.call = [&entry, &breakage, a](std::vector<simdattn_tensor>& t, std::vector<void*>& data) {
          breakage.apply(t[a]);
          return entry.call(t, data);
        };
        Arena arena(broken, placement);
        expect_rejected(arena, entry.function + " " + entry.arguments[a].c_name + ": " + breakage.what,
                        {entry.function + ": ", entry.arguments[a].cpp_name, breakage.fragment});
      }
    }
  }
}

// Every output placed so that it shares one element with an input or another output, from either
// side: rejected, naming both. Placed so that they touch without sharing a byte: accepted, with
// the same bits as when every argument has memory of its own.
TEST(HardeningHostileInputs, OutputsSharingOneElementWithAnyArgumentAreRejected) {
  int pairs = 0;
  for (const Entry& entry : {attention_entry(), qk_scores_entry(), weights_v_entry()}) {
    const Placement apart(entry);
    Arena reference_arena(entry, apart);
    ASSERT_EQ(reference_arena.call(), SIMDATTN_OK) << entry.function << ": " << simdattn_last_error();
    for (size_t output = 0; output < entry.arguments.size(); ++output) {
      if (!entry.arguments[output].is_output()) continue;
      for (size_t other = 0; other < entry.arguments.size(); ++other) {
        if (other == output) continue;
        // An output pair is checked once, and named output-first in the order of the arguments.
        if (entry.arguments[other].is_output() && other < output) continue;
        ++pairs;
        const std::string pair = entry.function + ": " + entry.arguments[output].c_name + " and " +
                                 entry.arguments[other].c_name;
        for (bool output_first : {true, false}) {
          const size_t first = output_first ? output : other, second = output_first ? other : output;
          const std::string order = output_first ? " (output first)" : " (output second)";
          Placement overlapping(entry);
          overlapping.place_after(first, second, true);
          Arena overlap_arena(entry, overlapping);
          expect_rejected(overlap_arena, pair + " sharing an element" + order,
                          {entry.function + ": ", entry.arguments[output].cpp_name + " must not overlap " +
                                               entry.arguments[other].cpp_name});

          Placement touching(entry);
          touching.place_after(first, second, false);
          Arena touch_arena(entry, touching);
          std::vector<std::vector<unsigned char>> inputs_before;
          for (size_t a = 0; a < entry.arguments.size(); ++a) inputs_before.push_back(touch_arena.contents(a));
          ASSERT_EQ(touch_arena.call(), SIMDATTN_OK) << pair << " touching" << order << ": " << simdattn_last_error();
          for (size_t a = 0; a < entry.arguments.size(); ++a) {
            if (entry.arguments[a].is_output()) {
              EXPECT_TRUE(touch_arena.contents(a) == reference_arena.contents(a))
                  << pair << " touching" << order << ": " << entry.arguments[a].c_name
                  << " differs from the result with separate buffers";
            } else {
              EXPECT_TRUE(touch_arena.contents(a) == inputs_before[a])
                  << pair << " touching" << order << ": input " << entry.arguments[a].c_name << " changed";
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(pairs, 3 * 6 + 3 + 2 + 2);  // attention: 3 outputs × 6 inputs + 3 output pairs
}

// head_dim 0 makes every logit 0 (each row the mean of its visible values); value_dim 0 makes an
// empty output. Both are valid and match the oracle, through the C ABI's every function, on every
// ISA the host runs.
TEST(HardeningHostileInputs, ZeroHeadDimAndZeroValueDimMatchTheOracle) {
  for (simdattn::detail::Isa isa : simdattn::detail::supported_isas())
  for (auto [head_dim, value_dim] : {std::pair<int64_t, int64_t>{0, 5}, {6, 0}, {0, 0}}) {
    simdattn::detail::ScopedIsaOverride use(isa);
    std::vector<float> q(size_t(B * Hq * Sq * head_dim), 0.5f), k(size_t(B * Hkv * Sk * head_dim), -0.25f);
    std::vector<float> v(size_t(B * Hkv * Sk * value_dim));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 11) - 5.0f;
    std::vector<float> out(size_t(B * Hq * Sq * value_dim), kSentinel), expected(out.size(), kSentinel);
    std::vector<float> lse(size_t(B * Hq * Sq), kSentinel), expected_lse(lse.size(), kSentinel);
    const simdattn_tensor tq = dense_tensor(q.data(), {B, Hq, Sq, head_dim});
    const simdattn_tensor tk = dense_tensor(k.data(), {B, Hkv, Sk, head_dim});
    const simdattn_tensor tv = dense_tensor(v.data(), {B, Hkv, Sk, value_dim});
    const simdattn_tensor tout = dense_tensor(out.data(), {B, Hq, Sq, value_dim});
    const simdattn_tensor tlse = dense_tensor(lse.data(), {B, Hq, Sq, 1});
    for (int32_t algorithm : {SIMDATTN_ALGO_FUSED, SIMDATTN_ALGO_COMPOSED}) {
      simdattn_options options;
      simdattn_options_init(&options);
      options.causal = SIMDATTN_CAUSAL_TOP_LEFT;
      options.lse = &tlse;
      options.algorithm = algorithm;
      ASSERT_EQ(simdattn_attention(&tq, &tk, &tv, &tout, &options), SIMDATTN_OK) << simdattn_last_error();
      simdattn::AttentionOptions reference_options;
      reference_options.causal = simdattn::Causal::top_left;
      reference_options.lse = simdattn::bhsd_view(expected_lse.data(), B, Hq, Sq, 1);
      simdattn::reference::attention(simdattn::bhsd_view<const float>(q.data(), B, Hq, Sq, head_dim),
                                     simdattn::bhsd_view<const float>(k.data(), B, Hkv, Sk, head_dim),
                                     simdattn::bhsd_view<const float>(v.data(), B, Hkv, Sk, value_dim),
                                     simdattn::bhsd_view(expected.data(), B, Hq, Sq, value_dim), reference_options);
      // A mean of at most 7 small integers: float and double agree to a few ULP.
      for (size_t i = 0; i < out.size(); ++i) {
        EXPECT_NEAR(out[i], expected[i], 1e-5) << "D=" << head_dim << " Dv=" << value_dim << " at " << i;
      }
      for (size_t i = 0; i < lse.size(); ++i) {
        EXPECT_NEAR(lse[i], expected_lse[i], 1e-5) << "D=" << head_dim << " Dv=" << value_dim << " lse at " << i;
      }
    }
    // The stages: with head_dim 0 every score is 0.
    std::vector<float> scores(size_t(B * Hq * Sq * Sk), kSentinel);
    const simdattn_tensor tscores = dense_tensor(scores.data(), {B, Hq, Sq, Sk});
    ASSERT_EQ(simdattn_qk_scores(&tq, &tk, &tscores, 0.7f, 0), SIMDATTN_OK) << simdattn_last_error();
    if (head_dim == 0) {
      EXPECT_TRUE(std::all_of(scores.begin(), scores.end(), [](float x) { return x == 0.0f; }));
    }
    ASSERT_EQ(simdattn_softmax_rows(&tscores, 0), SIMDATTN_OK) << simdattn_last_error();
    ASSERT_EQ(simdattn_weights_v(&tscores, &tv, &tout, 0), SIMDATTN_OK) << simdattn_last_error();
  }
}

}  // namespace

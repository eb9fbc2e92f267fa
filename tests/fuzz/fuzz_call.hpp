// What every fuzzed call shares: the sizes an input names, the decoding of scalar options, and
// the checks of a call's status and of its inputs and outputs before and after it (see
// fuzz_c_abi.cpp for the promises they enforce).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "byte_reader.hpp"
#include "fuzz_checks.hpp"
#include "fuzz_tensor.hpp"
#include "simdattn/simdattn.h"

namespace simdattn::fuzz {

struct Sizes {
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim, value_dim;
};

// B 0-2, Hkv 0-3, Hq a multiple 1-3 of it, Sq 0-9, Sk 0-40 or 1000-1600 (the decoding path splits
// keys above 1024), D and Dv 1-20 (see "Known limits" for 0). A tensor gets at most one hostile size or stride, and every size
// is shared by two tensors, so a call whose sizes all agree stays within these: only invalid
// calls can name huge views.
inline Sizes decode_sizes(ByteReader& in) {
  Sizes s{};
  s.batch = in.choice(3);
  s.kv_heads = in.choice(4);
  s.q_heads = s.kv_heads * (1 + in.choice(3));
  s.sq = in.choice(10);
  const int keys = in.byte();
  s.sk = keys < 240 ? keys % 41 : 1000 + (keys - 240) * 40;
  s.head_dim = 1 + in.choice(20);
  s.value_dim = 1 + in.choice(20);
  return s;
}

inline float decode_scale(ByteReader& in) {
  static constexpr float kScales[] = {0.0f, 0.0f, 0.3f, -0.7f, 2.5f, 1e-3f, std::numeric_limits<float>::quiet_NaN(),
                                      kInfinity};
  return kScales[in.choice(8)];
}

inline int64_t decode_window(ByteReader& in, int64_t keys) {
  switch (in.choice(8)) {
    case 4: return -2;
    case 5: return 0;
    case 6: return 1 + in.byte() % (keys + 3);
    case 7: return int64_t{1} << 62;
    default: return -1;
  }
}

// Status of a call against what the harness knows, before any oracle: never OUT_OF_MEMORY or
// INTERNAL on these sizes; INVALID_ARGUMENT (or UNSUPPORTED when allowed) for `must_reject`.
// SIMDATTN_FUZZ_VERBOSE=1 prints each call's verdict (to see what a seed reaches).
inline void check_status(const char* function, simdattn_status status, bool must_reject, bool unsupported_allowed) {
  const std::string message = status == SIMDATTN_OK ? "" : simdattn_last_error();
  static const bool verbose = std::getenv("SIMDATTN_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "%s: status %d%s %s\n", function, static_cast<int>(status),
                 must_reject ? " (must reject)" : "", message.c_str());
  }
  if (status == SIMDATTN_ERR_OUT_OF_MEMORY || status == SIMDATTN_ERR_INTERNAL) {
    broken(std::string(function) + " returned status " + std::to_string(status) + ": " + message);
  }
  if (status == SIMDATTN_ERR_UNSUPPORTED && !unsupported_allowed) {
    broken(std::string(function) + " returned UNSUPPORTED for a request it knows: " + message);
  }
  if (must_reject && status == SIMDATTN_OK) {
    broken(std::string(function) + " accepted a call with an invalid argument");
  }
  if (status != SIMDATTN_OK && message.empty()) broken(std::string(function) + " failed without a message");
}

// The memory of a call's tensors before it, to compare with after.
class Snapshot {
 public:
  explicit Snapshot(std::vector<const FuzzTensor*> tensors) : tensors_(std::move(tensors)) {
    for (const FuzzTensor* t : tensors_) bytes_.push_back(bytes_of(*t));
  }
  void expect_unchanged(const std::string& what) const {
    for (size_t i = 0; i < tensors_.size(); ++i) {
      if (bytes_of(*tensors_[i]) != bytes_[i]) broken(what + " (tensor " + std::to_string(i) + ")");
    }
  }

 private:
  std::vector<const FuzzTensor*> tensors_;
  std::vector<std::vector<unsigned char>> bytes_;
};

// The oracle's verdict and the fast call's must agree: both accept or both reject.
inline void check_verdicts(const char* function, simdattn_status status, const std::optional<std::string>& oracle_error) {
  if (status == SIMDATTN_OK && oracle_error) {
    broken(std::string(function) + " accepted a call the oracle rejects: " + *oracle_error);
  }
  if (status != SIMDATTN_OK && !oracle_error) {
    broken(std::string(function) + " rejected a call the oracle accepts: " + simdattn_last_error());
  }
}

// Runs `body` (an oracle call); returns its std::invalid_argument message, if any.
template <class Body>
std::optional<std::string> oracle_error_of(Body&& body) {
  try {
    body();
  } catch (const std::invalid_argument& error) {
    return std::string(error.what());
  }
  return std::nullopt;
}

// Points `output` at `input`'s memory (keeping its own shape) when both are non-empty: such a
// call must be refused. Returns whether it did.
inline bool alias(FuzzTensor& output, const FuzzTensor& input) {
  if (output.c.data == nullptr || input.c.data == nullptr || output.element_count() == 0 ||
      input.element_count() == 0) {
    return false;
  }
  output.c.data = input.c.data;
  return true;
}

// Learned sink logits, one per query head (`% 3 == 2`, then a byte each), or none: -inf (no sink),
// 0, ±1e4 (one logit dwarfs or vanishes beside every key's), 0.5, -3, and the refused NaN and +inf.
inline std::vector<float> decode_sinks(ByteReader& in, int64_t q_heads) {
  std::vector<float> sinks;
  if (in.choice(3) != 2) return sinks;
  static constexpr float kSinks[] = {-kInfinity, 0.0f, 1e4f, -1e4f, 0.5f, -3.0f,
                                     std::numeric_limits<float>::quiet_NaN(), kInfinity};
  for (int64_t h = 0; h < q_heads; ++h) sinks.push_back(kSinks[in.choice(8)]);
  return sinks;
}
inline bool sinks_refused(const std::vector<float>& sinks) {
  for (float sink : sinks) {
    if (std::isnan(sink) || sink == kInfinity) return true;
  }
  return false;
}
// The largest finite |sink|: one more logit of every row, for the error bounds.
inline double sink_magnitude(const std::vector<float>& sinks) {
  double largest = 0.0;
  for (float sink : sinks) {
    if (std::isfinite(sink)) largest = std::max(largest, std::fabs(double(sink)));
  }
  return largest;
}
// An option array the library reads `count` entries of (one per batch, q.shape[0], or per query
// head, q.shape[1]): views without elements may carry any size, hostile ones included, and a
// caller's array must then be that long. Pads `array` (when passed) with `filler`; false when the
// count is too large to hold (the input is dropped).
template <class T>
bool cover(std::vector<T>& array, int64_t count, T filler) {
  if (array.empty() || count <= static_cast<int64_t>(array.size())) return true;
  if (count > kMaxElements) return false;
  array.resize(static_cast<size_t>(count), filler);
  return true;
}

// StreamingLLM sink tokens: 0 (off) mostly, 1, 2, or the refused -1.
inline int64_t decode_sink_tokens(ByteReader& in) {
  static constexpr int64_t kTokens[] = {0, 0, 0, 0, 1, 2, 3, -1};
  return kTokens[in.choice(8)];
}

}  // namespace simdattn::fuzz

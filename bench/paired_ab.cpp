// simdattn_paired_ab: is build B faster than build A? Loads two builds of the shared library
// (libsimdattn.so) into one process and times their simdattn_attention() on a standard shape, calls
// alternating A B B A A B ..., then reports the median of the per-pair time ratios with its
// quartiles. On a shared or throttling machine, whose speed drifts by tens of percent within
// minutes, two runs of a benchmark taken minutes apart compare the machine's moods; two calls a few
// milliseconds apart see the same machine, so their ratio measures the code.
//
//   simdattn_paired_ab A/libsimdattn.so B/libsimdattn.so --shape encoder [--threads N] [--pairs N]
//                      [--cache f32|bf16|i8|i8row] [--dtype f32|bf16]
//
// Decode shapes rotate through copies of K and V (at least 1 GiB in all), as simdattn_bench's cold
// decoding does, so that every call reads them from memory. --cache stores K and V as a bf16 or
// int8 cache under fp32 queries (i8: one scale per 32 elements as ggml's q8_0; i8row: one per
// row), as simdattn_bench's f16kv/bf16kv/i8kv/i8rowkv rows do. --dtype bf16 makes Q, K, V and the
// output all bf16, as the simd-bf16 rows (and AMX's tiles) take them. The conversions are this program's
// own: linking the library to make them would let the loaded builds bind to its symbols. Exit status: 0 measured, 1 a library
// could not be used or a call failed, 2 bad arguments.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "shapes.hpp"
#include "simdattn/simdattn.h"

namespace {

using simdattn::bench::Shape;

constexpr int kDefaultPairs = 20;
constexpr double kColdBytes = double(int64_t{1} << 30);

struct Arguments {
  std::string library[2];
  std::string shape = "encoder";
  int threads = 0;
  int pairs = kDefaultPairs;
  std::string cache = "f32";
  std::string dtype = "f32";  // of Q and the output; K and V follow it unless --cache says otherwise
};

// How K and V are stored: dtype, bytes an element, and elements a scale (int8; 0: one a row).
struct CacheFormat {
  int32_t dtype;
  int64_t element_bytes;
  int64_t scale_group;
};

CacheFormat cache_format(const std::string& name) {
  if (name == "f32") return {SIMDATTN_F32, 4, 0};
  if (name == "bf16") return {SIMDATTN_BF16, 2, 0};
  if (name == "i8") return {SIMDATTN_I8, 1, 32};
  if (name == "i8row") return {SIMDATTN_I8, 1, 0};
  throw std::invalid_argument("--cache: expected f32, bf16, i8 or i8row, got '" + name + "'");
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr,
               "simdattn_paired_ab: %s\nusage: simdattn_paired_ab LIB_A LIB_B [--shape NAME] "
               "[--threads N] [--pairs N] [--cache f32|bf16|i8|i8row] [--dtype f32|bf16]\n",
               message.c_str());
  std::exit(2);
}

int positive_integer(const std::string& flag, const std::string& value, int minimum) {
  char* end = nullptr;
  const long parsed = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || parsed < minimum || parsed > 1000000) {
    usage_error(flag + ": expected an integer of at least " + std::to_string(minimum) + ", got '" + value + "'");
  }
  return static_cast<int>(parsed);
}

Arguments parse(int argc, char** argv) {
  Arguments arguments;
  int libraries = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(argument + ": expected a value after it");
      return argv[++i];
    };
    if (argument == "--shape") {
      arguments.shape = value();
    } else if (argument == "--threads") {
      arguments.threads = positive_integer(argument, value(), 0);
    } else if (argument == "--pairs") {
      arguments.pairs = positive_integer(argument, value(), 2);
    } else if (argument == "--cache") {
      arguments.cache = value();
      try {
        cache_format(arguments.cache);
      } catch (const std::invalid_argument& error) {
        usage_error(error.what());
      }
    } else if (argument == "--dtype") {
      arguments.dtype = value();
      if (arguments.dtype != "f32" && arguments.dtype != "bf16") {
        usage_error("--dtype: expected f32 or bf16, got '" + arguments.dtype + "'");
      }
    } else if (argument.rfind("--", 0) == 0) {
      usage_error("unknown flag '" + argument + "'");
    } else if (libraries < 2) {
      arguments.library[libraries++] = argument;
    } else {
      usage_error("expected two libraries, got a third: '" + argument + "'");
    }
  }
  if (libraries < 2) usage_error("expected two libraries (LIB_A LIB_B), got " + std::to_string(libraries));
  if (arguments.dtype == "bf16") {
    if (arguments.cache != "f32" && arguments.cache != "bf16") {
      usage_error("--cache: a " + arguments.cache + " cache takes fp32 queries, not --dtype bf16");
    }
    arguments.cache = "bf16";
  }
  return arguments;
}

using AttentionFunction = simdattn_status (*)(const simdattn_tensor*, const simdattn_tensor*,
                                              const simdattn_tensor*, const simdattn_tensor*,
                                              const simdattn_options*);
using OptionsInit = void (*)(simdattn_options*, size_t);

struct Build {
  AttentionFunction attention = nullptr;
  OptionsInit options_init = nullptr;
  const char* (*last_error)() = nullptr;
};

// RTLD_LOCAL: each build keeps its own symbols, so the two never resolve into each other.
Build load(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) throw std::runtime_error("cannot load '" + path + "': " + dlerror());
  Build build;
  build.attention = reinterpret_cast<AttentionFunction>(dlsym(handle, "simdattn_attention"));
  // The sized entry: simdattn_options_init by name keeps to the first layout, without k_scale.
  build.options_init = reinterpret_cast<OptionsInit>(dlsym(handle, "simdattn_options_init_sized"));
  build.last_error = reinterpret_cast<const char* (*)()>(dlsym(handle, "simdattn_last_error"));
  if (build.attention == nullptr || build.options_init == nullptr) {
    throw std::runtime_error("'" + path + "' has no simdattn_attention or simdattn_options_init_sized");
  }
  return build;
}

simdattn_tensor bhsd(void* data, int64_t batch, int64_t heads, int64_t seq, int64_t dim,
                     int32_t dtype = SIMDATTN_F32) {
  simdattn_tensor tensor{};
  tensor.data = data;
  tensor.dtype = dtype;
  const int64_t shape[4] = {batch, heads, seq, dim};
  const int64_t strides[4] = {heads * seq * dim, seq * dim, dim, 1};
  std::copy(shape, shape + 4, tensor.shape);
  std::copy(strides, strides + 4, tensor.strides);
  return tensor;
}

// Round to nearest even (the values here are finite).
uint16_t to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// The inputs of a shape, Q and the output in `q_dtype` (f32 or bf16), with `copies` copies of K and
// V stored as `format`, filled with values in [-1, 1) (int8: scale = max|x| / 127 over each group,
// x / scale rounded to nearest).
struct Inputs {
  Inputs(const Shape& shape, int64_t copies, const CacheFormat& format, int32_t q_dtype)
      : shape(shape), copies(copies), format(format), q_dtype(q_dtype) {
    const size_t q_bytes = q_dtype == SIMDATTN_BF16 ? 2 : 4;
    q.resize(static_cast<size_t>(shape.q_elements()) * q_bytes);
    out.resize(q.size());
    const int64_t elements = shape.kv_elements() * copies;
    kv.resize(static_cast<size_t>(elements * format.element_bytes));
    uint32_t state = 1;
    const auto next = [&state] {
      state = state * 1664525u + 1013904223u;
      return static_cast<float>(state >> 8) * (2.0f / 16777216.0f) - 1.0f;
    };
    for (int64_t i = 0; i < shape.q_elements(); ++i) {
      const float x = next();
      if (q_dtype == SIMDATTN_BF16) {
        const uint16_t bits = to_bf16(x);
        std::memcpy(q.data() + i * 2, &bits, 2);
      } else {
        std::memcpy(q.data() + i * 4, &x, 4);
      }
    }
    const int64_t group = format.scale_group > 0 ? format.scale_group : shape.head_dim;
    if (format.dtype == SIMDATTN_I8) scales.resize(static_cast<size_t>(elements / group));
    std::vector<float> values(static_cast<size_t>(group));
    for (int64_t first = 0; first < elements; first += group) {
      for (float& x : values) x = next();
      if (format.dtype == SIMDATTN_F32) {
        std::memcpy(kv.data() + first * 4, values.data(), static_cast<size_t>(group) * 4);
      } else if (format.dtype == SIMDATTN_BF16) {
        for (int64_t i = 0; i < group; ++i) {
          const uint16_t bits = to_bf16(values[static_cast<size_t>(i)]);
          std::memcpy(kv.data() + (first + i) * 2, &bits, 2);
        }
      } else {
        float largest = 0.0f;
        for (float x : values) largest = std::max(largest, std::fabs(x));
        const float scale = largest > 0.0f ? largest / 127.0f : 1.0f;
        scales[static_cast<size_t>(first / group)] = scale;
        for (int64_t i = 0; i < group; ++i) {
          kv[static_cast<size_t>(first + i)] =
              static_cast<uint8_t>(static_cast<int8_t>(std::lround(values[static_cast<size_t>(i)] / scale)));
        }
      }
    }
  }
  // simdattn_attention's tensors for the copy used by call `call`, and its int8 scales.
  void tensors(int64_t call, simdattn_tensor (&t)[4], simdattn_tensor (&scale)[2]) {
    const int64_t half = shape.kv_elements() / 2;
    const int64_t k = (call % copies) * shape.kv_elements();
    const int64_t groups = format.scale_group > 0 ? shape.head_dim / format.scale_group : 1;
    t[0] = bhsd(q.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim, q_dtype);
    for (int64_t which = 0; which < 2; ++which) {
      const int64_t first = k + which * half;
      t[1 + which] = bhsd(kv.data() + first * format.element_bytes, shape.batch, shape.kv_heads, shape.seq_k,
                          shape.head_dim, format.dtype);
      if (!scales.empty()) {
        scale[which] = bhsd(scales.data() + first / shape.head_dim * groups, shape.batch, shape.kv_heads,
                            shape.seq_k, groups);
      }
    }
    t[3] = bhsd(out.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim, q_dtype);
  }
  const Shape& shape;
  int64_t copies;
  CacheFormat format;
  int32_t q_dtype;
  std::vector<float> scales;
  std::vector<uint8_t> q, out, kv;
};

double seconds_of_call(const Build& build, Inputs& inputs, int64_t call, int threads) {
  simdattn_tensor t[4], scale[2];
  inputs.tensors(call, t, scale);
  simdattn_options options;
  build.options_init(&options, sizeof options);
  if (!inputs.scales.empty()) {
    options.k_scale = &scale[0];
    options.v_scale = &scale[1];
  }
  options.causal = inputs.shape.causal ? SIMDATTN_CAUSAL_BOTTOM_RIGHT : SIMDATTN_CAUSAL_NONE;
  options.num_threads = threads;
  const auto start = std::chrono::steady_clock::now();
  const simdattn_status status = build.attention(&t[0], &t[1], &t[2], &t[3], &options);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (status != SIMDATTN_OK) {
    throw std::runtime_error("simdattn_attention failed with status " + std::to_string(status) + ": " +
                             (build.last_error != nullptr ? build.last_error() : "(no simdattn_last_error)"));
  }
  return elapsed.count();
}

// The q-quantile of `values`, interpolating between the two nearest ranks (the median of an even
// count is the mean of the middle two).
double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(position);
  if (below + 1 >= values.size()) return values[below];
  const double fraction = position - static_cast<double>(below);
  return values[below] * (1.0 - fraction) + values[below + 1] * fraction;
}

}  // namespace

int main(int argc, char** argv) {
  const Arguments arguments = parse(argc, argv);
  try {
    const Shape& shape = simdattn::bench::standard_shape(arguments.shape);
    const Build builds[2] = {load(arguments.library[0]), load(arguments.library[1])};
    const CacheFormat format = cache_format(arguments.cache);
    const double kv_bytes = shape.kv_bytes() * static_cast<double>(format.element_bytes) / 4.0;
    const int64_t copies =
        shape.is_decode() ? std::max<int64_t>(1, static_cast<int64_t>(kColdBytes / kv_bytes) + 1) : 1;
    Inputs inputs(shape, copies, format, arguments.dtype == "bf16" ? SIMDATTN_BF16 : SIMDATTN_F32);
    // One untimed call each: first-touch page faults and the libraries' one-time set-up.
    for (const Build& build : builds) seconds_of_call(build, inputs, 0, arguments.threads);
    std::vector<double> seconds[2], ratio;
    int64_t call = 1;
    for (int pair = 0; pair < arguments.pairs; ++pair) {
      double pair_seconds[2];
      for (int turn = 0; turn < 2; ++turn) {
        const int which = pair % 2 == 0 ? turn : 1 - turn;  // A B, then B A
        pair_seconds[which] = seconds_of_call(builds[which], inputs, call++, arguments.threads);
        seconds[which].push_back(pair_seconds[which]);
      }
      ratio.push_back(pair_seconds[0] / pair_seconds[1]);
    }
    const bool decode = shape.is_decode();
    const double work = decode ? kv_bytes : shape.useful_flops();
    const char* unit = decode ? "GB/s of K and V (scales not counted)" : "GFLOP/s";
    std::printf("shape %s, %s queries, %s cache, %d pairs, %s\n", shape.name.c_str(), arguments.dtype.c_str(),
                arguments.cache.c_str(), arguments.pairs, unit);
    for (int which = 0; which < 2; ++which) {
      std::printf("%c %s: fastest %.1f, median %.1f\n", "AB"[which], arguments.library[which].c_str(),
                  work / quantile(seconds[which], 0.0) / 1e9, work / quantile(seconds[which], 0.5) / 1e9);
    }
    std::printf("speedup of B over A (time A / time B, per pair): median %.3f, quartiles %.3f-%.3f\n",
                quantile(ratio, 0.5), quantile(ratio, 0.25), quantile(ratio, 0.75));
  } catch (const std::invalid_argument& error) {
    usage_error(error.what());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "simdattn_paired_ab: %s\n", error.what());
    return 1;
  }
  return 0;
}

// simdattn_paired_ab: is build B faster than build A? Loads two builds of the shared library
// (libsimdattn.so) into one process and times their simdattn_attention() on a standard shape, calls
// alternating A B B A A B ..., then reports the median of the per-pair time ratios with its
// quartiles. On a shared or throttling machine, whose speed drifts by tens of percent within
// minutes, two runs of a benchmark taken minutes apart compare the machine's moods; two calls a few
// milliseconds apart see the same machine, so their ratio measures the code.
//
//   simdattn_paired_ab A/libsimdattn.so B/libsimdattn.so --shape encoder [--threads N] [--pairs N]
//
// Decode shapes rotate through copies of K and V (at least 1 GiB in all), as simdattn_bench's cold
// decoding does, so that every call reads them from memory. Exit status: 0 measured, 1 a library
// could not be used or a call failed, 2 bad arguments.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
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
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr,
               "simdattn_paired_ab: %s\nusage: simdattn_paired_ab LIB_A LIB_B [--shape NAME] "
               "[--threads N] [--pairs N]\n",
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
    } else if (argument.rfind("--", 0) == 0) {
      usage_error("unknown flag '" + argument + "'");
    } else if (libraries < 2) {
      arguments.library[libraries++] = argument;
    } else {
      usage_error("expected two libraries, got a third: '" + argument + "'");
    }
  }
  if (libraries < 2) usage_error("expected two libraries (LIB_A LIB_B), got " + std::to_string(libraries));
  return arguments;
}

using AttentionFunction = simdattn_status (*)(const simdattn_tensor*, const simdattn_tensor*,
                                              const simdattn_tensor*, const simdattn_tensor*,
                                              const simdattn_options*);
using OptionsInit = void (*)(simdattn_options*);

struct Build {
  AttentionFunction attention = nullptr;
  OptionsInit options_init = nullptr;
};

// RTLD_LOCAL: each build keeps its own symbols, so the two never resolve into each other.
Build load(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) throw std::runtime_error("cannot load '" + path + "': " + dlerror());
  Build build;
  build.attention = reinterpret_cast<AttentionFunction>(dlsym(handle, "simdattn_attention"));
  build.options_init = reinterpret_cast<OptionsInit>(dlsym(handle, "simdattn_options_init"));
  if (build.attention == nullptr || build.options_init == nullptr) {
    throw std::runtime_error("'" + path + "' has no simdattn_attention or simdattn_options_init");
  }
  return build;
}

simdattn_tensor bhsd(float* data, int64_t batch, int64_t heads, int64_t seq, int64_t dim) {
  simdattn_tensor tensor{};
  tensor.data = data;
  tensor.dtype = SIMDATTN_F32;
  const int64_t shape[4] = {batch, heads, seq, dim};
  const int64_t strides[4] = {heads * seq * dim, seq * dim, dim, 1};
  std::copy(shape, shape + 4, tensor.shape);
  std::copy(strides, strides + 4, tensor.strides);
  return tensor;
}

// The inputs of a shape, with `copies` copies of K and V, filled with values in [-1, 1).
struct Inputs {
  Inputs(const Shape& shape, int64_t copies) : shape(shape), copies(copies) {
    q.resize(static_cast<size_t>(shape.q_elements()));
    out.resize(q.size());
    kv.resize(static_cast<size_t>(shape.kv_elements() * copies));
    uint32_t state = 1;
    for (std::vector<float>* values : {&q, &kv}) {
      for (float& x : *values) {
        state = state * 1664525u + 1013904223u;
        x = static_cast<float>(state >> 8) * (2.0f / 16777216.0f) - 1.0f;
      }
    }
  }
  // simdattn_attention's tensors for the copy used by call `call`.
  void tensors(int64_t call, simdattn_tensor (&t)[4]) {
    float* k = kv.data() + (call % copies) * shape.kv_elements();
    float* v = k + shape.kv_elements() / 2;
    t[0] = bhsd(q.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim);
    t[1] = bhsd(k, shape.batch, shape.kv_heads, shape.seq_k, shape.head_dim);
    t[2] = bhsd(v, shape.batch, shape.kv_heads, shape.seq_k, shape.head_dim);
    t[3] = bhsd(out.data(), shape.batch, shape.q_heads, shape.seq_q, shape.head_dim);
  }
  const Shape& shape;
  int64_t copies;
  std::vector<float> q, kv, out;
};

double seconds_of_call(const Build& build, Inputs& inputs, int64_t call, int threads) {
  simdattn_tensor t[4];
  inputs.tensors(call, t);
  simdattn_options options;
  build.options_init(&options);
  options.causal = inputs.shape.causal ? SIMDATTN_CAUSAL_BOTTOM_RIGHT : SIMDATTN_CAUSAL_NONE;
  options.num_threads = threads;
  const auto start = std::chrono::steady_clock::now();
  const simdattn_status status = build.attention(&t[0], &t[1], &t[2], &t[3], &options);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (status != SIMDATTN_OK) throw std::runtime_error("simdattn_attention failed with status " + std::to_string(status));
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
    const int64_t copies =
        shape.is_decode() ? std::max<int64_t>(1, static_cast<int64_t>(kColdBytes / shape.kv_bytes()) + 1) : 1;
    Inputs inputs(shape, copies);
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
    const double work = decode ? shape.kv_bytes() : shape.useful_flops();
    const char* unit = decode ? "GB/s of K and V" : "GFLOP/s";
    std::printf("shape %s, %d pairs, %s\n", shape.name.c_str(), arguments.pairs, unit);
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

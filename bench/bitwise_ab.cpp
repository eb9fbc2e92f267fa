// simdattn_bitwise_ab: two builds of libsimdattn.so, same inputs, every output compared bit for bit.
// A refactoring that must not change results (kernel files moved, fields renamed) is checked with
// it: attention() (fused, composed, decoding; masks, causal, window, kv_lengths, soft-cap, ALiBi,
// weights and lse; f32, bf16, f16 and int8 inputs, 16-bit outputs), qk_scores, softmax_rows and
// weights_v, on shapes at and around the tile edges. The ISA is chosen once per process, so run it
// once per ISA:
//   g++ -O2 -std=c++17 -Iinclude bench/bitwise_ab.cpp -ldl -o bitwise_ab
//   for isa in sse2 avx2 avx512; do SIMDATTN_ISA=$isa ./bitwise_ab before.so after.so; done
// Prints the elements compared and those that differ; exit status 1 if any differ, 2 on misuse.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simdattn/simdattn.h"

namespace {

struct Build {
  decltype(&simdattn_attention) attention;
  decltype(&simdattn_qk_scores) qk_scores;
  decltype(&simdattn_softmax_rows) softmax_rows;
  decltype(&simdattn_weights_v) weights_v;
  decltype(&simdattn_options_init_sized) options_init_sized;
  decltype(&simdattn_active_isa) active_isa;
  decltype(&simdattn_last_error) last_error;
};

template <class F>
F symbol(void* handle, const char* name) {
  void* address = dlsym(handle, name);
  if (address == nullptr) {
    std::fprintf(stderr, "missing symbol %s\n", name);
    std::exit(2);
  }
  return reinterpret_cast<F>(address);
}

Build load(const char* path) {
  // RTLD_LOCAL: each build keeps its own symbols.
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "cannot load '%s': %s\n", path, dlerror());
    std::exit(2);
  }
  Build build;
  build.attention = symbol<decltype(build.attention)>(handle, "simdattn_attention");
  build.qk_scores = symbol<decltype(build.qk_scores)>(handle, "simdattn_qk_scores");
  build.softmax_rows = symbol<decltype(build.softmax_rows)>(handle, "simdattn_softmax_rows");
  build.weights_v = symbol<decltype(build.weights_v)>(handle, "simdattn_weights_v");
  build.options_init_sized = symbol<decltype(build.options_init_sized)>(handle, "simdattn_options_init_sized");
  build.active_isa = symbol<decltype(build.active_isa)>(handle, "simdattn_active_isa");
  build.last_error = symbol<decltype(build.last_error)>(handle, "simdattn_last_error");
  return build;
}

int64_t element_size(int32_t dtype) {
  return dtype == SIMDATTN_F32 ? 4 : dtype == SIMDATTN_I8 ? 1 : 2;
}

// A dense [B, H, S, D] tensor of `dtype` filled with seeded values of a sane range for its type.
struct Tensor {
  std::vector<unsigned char> bytes;
  simdattn_tensor view{};
  Tensor() = default;
  Tensor(int32_t dtype, int64_t b, int64_t h, int64_t s, int64_t d) {
    bytes.assign(static_cast<size_t>(b * h * s * d * element_size(dtype)) + 1, 0);
    view.data = bytes.data();
    view.dtype = dtype;
    const int64_t shape[4] = {b, h, s, d};
    const int64_t strides[4] = {h * s * d, s * d, d, 1};
    std::memcpy(view.shape, shape, sizeof shape);
    std::memcpy(view.strides, strides, sizeof strides);
  }
  int64_t count() const { return view.shape[0] * view.shape[1] * view.shape[2] * view.shape[3]; }
  void fill(std::mt19937& random, float low, float high) {
    std::uniform_real_distribution<float> value(low, high);
    for (int64_t i = 0; i < count(); ++i) {
      const float x = value(random);
      uint32_t bits;
      std::memcpy(&bits, &x, 4);
      switch (view.dtype) {
        case SIMDATTN_F32: std::memcpy(bytes.data() + 4 * i, &x, 4); break;
        case SIMDATTN_BF16: {
          const uint16_t top = static_cast<uint16_t>(bits >> 16);
          std::memcpy(bytes.data() + 2 * i, &top, 2);
          break;
        }
        case SIMDATTN_F16: {
          // Sign, an exponent within [2^-6, 2^3), random mantissa: normal halves of the range.
          const uint16_t half = static_cast<uint16_t>(((bits >> 16) & 0x8000u) |
                                                      ((9u + random() % 10u) << 10) | (random() & 0x3ffu));
          std::memcpy(bytes.data() + 2 * i, &half, 2);
          break;
        }
        case SIMDATTN_I8: bytes[static_cast<size_t>(i)] = static_cast<unsigned char>(random() % 255u + 1u); break;
      }
    }
  }
};

struct Tally {
  int64_t compared = 0, differing = 0;
  int cases = 0, failed_calls = 0;
};

void compare(const Tensor& a, const Tensor& b, const char* what, const std::string& name, Tally& tally) {
  const int64_t size = element_size(a.view.dtype);
  int64_t differing = 0;
  for (int64_t i = 0; i < a.count(); ++i) {
    differing += std::memcmp(a.bytes.data() + i * size, b.bytes.data() + i * size, size) != 0;
  }
  tally.compared += a.count();
  tally.differing += differing;
  if (differing > 0) std::printf("DIFF %s %s: %lld of %lld elements\n", name.c_str(), what,
                                 static_cast<long long>(differing), static_cast<long long>(a.count()));
}

struct Shape {
  int64_t batch, q_heads, kv_heads, sq, sk, head_dim, value_dim;
};

// What an attention case sets beyond the shape.
struct Variant {
  const char* name;
  int32_t algorithm = SIMDATTN_ALGO_AUTO;
  int32_t causal = SIMDATTN_CAUSAL_NONE;
  int64_t window_left = -1, window_right = -1;
  bool mask = false, kv_lengths = false, alibi = false, weights = false, lse = false;
  float softcap = 0.0f;
  int32_t q_dtype = SIMDATTN_F32, kv_dtype = SIMDATTN_F32, out_dtype = SIMDATTN_F32;
  int32_t mask_dtype = SIMDATTN_F32;
};

std::string describe(const Shape& s, const char* variant) {
  char text[200];
  std::snprintf(text, sizeof text, "B%lld Hq%lld Hkv%lld Sq%lld Sk%lld D%lld Dv%lld %s",
                (long long)s.batch, (long long)s.q_heads, (long long)s.kv_heads, (long long)s.sq,
                (long long)s.sk, (long long)s.head_dim, (long long)s.value_dim, variant);
  return text;
}

void check(simdattn_status status, const Build& build, const std::string& name, Tally& tally) {
  if (status != SIMDATTN_OK) {
    std::printf("CALL FAILED %s: %s\n", name.c_str(), build.last_error());
    ++tally.failed_calls;
  }
}

void attention_case(const Build (&builds)[2], const Shape& s, const Variant& v, uint32_t seed, Tally& tally) {
  const std::string name = describe(s, v.name);
  std::mt19937 random(seed);
  Tensor q(v.q_dtype, s.batch, s.q_heads, s.sq, s.head_dim);
  Tensor k(v.kv_dtype, s.batch, s.kv_heads, s.sk, s.head_dim);
  Tensor value(v.kv_dtype, s.batch, s.kv_heads, s.sk, s.value_dim);
  q.fill(random, -2.0f, 2.0f);
  k.fill(random, -2.0f, 2.0f);
  value.fill(random, -1.0f, 1.0f);
  Tensor k_scale, v_scale;
  if (v.kv_dtype == SIMDATTN_I8) {
    k_scale = Tensor(SIMDATTN_F32, s.batch, s.kv_heads, s.sk, 1);
    v_scale = Tensor(SIMDATTN_F32, s.batch, s.kv_heads, s.sk, 1);
    k_scale.fill(random, 0.001f, 0.02f);
    v_scale.fill(random, 0.001f, 0.02f);
  }
  Tensor mask;
  if (v.mask) {
    mask = Tensor(v.mask_dtype, 1, s.q_heads, s.sq, s.sk);
    mask.fill(random, -3.0f, 3.0f);
    if (v.mask_dtype == SIMDATTN_F32) {
      float* m = static_cast<float*>(mask.view.data);
      for (int64_t i = 0; i < mask.count(); ++i) {
        if (random() % 7 == 0) m[i] = -INFINITY;
      }
    }
  }
  std::vector<int64_t> lengths(static_cast<size_t>(s.batch));
  for (int64_t b = 0; b < s.batch; ++b) lengths[b] = s.sk - (b * 37) % (s.sk > 1 ? s.sk : 1);
  std::vector<float> slopes(static_cast<size_t>(s.q_heads));
  for (int64_t h = 0; h < s.q_heads; ++h) slopes[h] = 1.0f / float(1 << (h % 8 + 1));

  Tensor out[2], weights[2], lse[2];
  for (int side = 0; side < 2; ++side) {
    out[side] = Tensor(v.out_dtype, s.batch, s.q_heads, s.sq, s.value_dim);
    std::memset(out[side].bytes.data(), 0x5a, out[side].bytes.size());
    if (v.weights) weights[side] = Tensor(SIMDATTN_F32, s.batch, s.q_heads, s.sq, s.sk);
    if (v.lse) lse[side] = Tensor(SIMDATTN_F32, s.batch, s.q_heads, s.sq, 1);
    simdattn_options options;
    // Sized: the fields past the first version (k_scale, v_scale) count only so.
    builds[side].options_init_sized(&options, sizeof options);
    options.algorithm = v.algorithm;
    options.causal = v.causal;
    options.window_left = v.window_left;
    options.window_right = v.window_right;
    options.mask = v.mask ? &mask.view : nullptr;
    options.kv_lengths = v.kv_lengths ? lengths.data() : nullptr;
    options.softcap = v.softcap;
    options.alibi_slopes = v.alibi ? slopes.data() : nullptr;
    options.weights = v.weights ? &weights[side].view : nullptr;
    options.lse = v.lse ? &lse[side].view : nullptr;
    options.num_threads = 2;
    options.k_scale = v.kv_dtype == SIMDATTN_I8 ? &k_scale.view : nullptr;
    options.v_scale = v.kv_dtype == SIMDATTN_I8 ? &v_scale.view : nullptr;
    check(builds[side].attention(&q.view, &k.view, &value.view, &out[side].view, &options),
          builds[side], name, tally);
  }
  compare(out[0], out[1], "out", name, tally);
  if (v.weights) compare(weights[0], weights[1], "weights", name, tally);
  if (v.lse) compare(lse[0], lse[1], "lse", name, tally);
  ++tally.cases;
}

// qk_scores, then softmax_rows on its scores, then weights_v on the probabilities.
void stages_case(const Build (&builds)[2], const Shape& s, int32_t dtype, uint32_t seed, Tally& tally) {
  const std::string name = describe(s, dtype == SIMDATTN_F32 ? "stages f32"
                                       : dtype == SIMDATTN_BF16 ? "stages bf16" : "stages f16");
  std::mt19937 random(seed);
  Tensor q(dtype, s.batch, s.q_heads, s.sq, s.head_dim);
  Tensor k(dtype, s.batch, s.kv_heads, s.sk, s.head_dim);
  Tensor value(dtype, s.batch, s.kv_heads, s.sk, s.value_dim);
  q.fill(random, -2.0f, 2.0f);
  k.fill(random, -2.0f, 2.0f);
  value.fill(random, -1.0f, 1.0f);
  Tensor scores[2], out[2];
  for (int side = 0; side < 2; ++side) {
    scores[side] = Tensor(SIMDATTN_F32, s.batch, s.q_heads, s.sq, s.sk);
    out[side] = Tensor(dtype, s.batch, s.q_heads, s.sq, s.value_dim);
    check(builds[side].qk_scores(&q.view, &k.view, &scores[side].view, 0.125f, 2), builds[side], name, tally);
  }
  compare(scores[0], scores[1], "qk_scores", name, tally);
  // softmax_rows and weights_v of each side on the same input: side A's scores.
  Tensor probabilities[2] = {scores[0], scores[0]};
  for (int side = 0; side < 2; ++side) {
    probabilities[side].view.data = probabilities[side].bytes.data();
    check(builds[side].softmax_rows(&probabilities[side].view, 2), builds[side], name, tally);
  }
  compare(probabilities[0], probabilities[1], "softmax_rows", name, tally);
  for (int side = 0; side < 2; ++side) {
    check(builds[side].weights_v(&probabilities[0].view, &value.view, &out[side].view, 2), builds[side],
          name, tally);
  }
  compare(out[0], out[1], "weights_v", name, tally);
  ++tally.cases;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s LIB_A LIB_B (SIMDATTN_ISA picks the ISA)\n", argv[0]);
    return 2;
  }
  const Build builds[2] = {load(argv[1]), load(argv[2])};
  const std::string isa = builds[0].active_isa();
  if (isa != builds[1].active_isa()) {
    std::fprintf(stderr, "the builds run different ISAs: %s, %s\n", isa.c_str(), builds[1].active_isa());
    return 2;
  }
  // Tails below, at and above register and tile widths; GQA and MQA; decoding (Sq <= 16,
  // Sk > 1024, split into key chunks); one register of columns and several.
  const Shape shapes[] = {
      {1, 1, 1, 1, 1, 1, 1},          {1, 2, 2, 7, 13, 5, 3},        {2, 3, 3, 17, 33, 16, 16},
      {1, 4, 4, 65, 129, 64, 64},     {1, 8, 2, 33, 300, 128, 128},  {2, 8, 1, 100, 257, 80, 96},
      {1, 4, 4, 256, 300, 128, 128},  {1, 16, 16, 130, 200, 48, 48}, {1, 32, 8, 1, 4097, 128, 128},
      {4, 8, 2, 4, 3000, 64, 64},     {1, 4, 4, 1, 1500, 128, 128},  {2, 6, 2, 16, 2100, 31, 33},
      {1, 2, 1, 3, 1025, 17, 8},      {1, 12, 4, 513, 517, 64, 64},
  };
  std::vector<Variant> variants;
  variants.push_back({"plain"});
  Variant v;
  v = {"fused"}; v.algorithm = SIMDATTN_ALGO_FUSED; variants.push_back(v);
  v = {"composed"}; v.algorithm = SIMDATTN_ALGO_COMPOSED; variants.push_back(v);
  v = {"causal"}; v.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT; variants.push_back(v);
  v = {"causal top-left composed"}; v.causal = SIMDATTN_CAUSAL_TOP_LEFT; v.algorithm = SIMDATTN_ALGO_COMPOSED; variants.push_back(v);
  v = {"window"}; v.window_left = 40; v.window_right = 3; variants.push_back(v);
  v = {"mask kv_lengths"}; v.mask = true; v.kv_lengths = true; variants.push_back(v);
  v = {"mask bf16 composed"}; v.mask = true; v.mask_dtype = SIMDATTN_BF16; v.algorithm = SIMDATTN_ALGO_COMPOSED; variants.push_back(v);
  v = {"softcap alibi causal"}; v.softcap = 5.0f; v.alibi = true; v.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT; variants.push_back(v);
  v = {"weights lse"}; v.weights = true; v.lse = true; variants.push_back(v);
  v = {"lse fused kv_lengths"}; v.lse = true; v.kv_lengths = true; variants.push_back(v);
  v = {"bf16 q kv out"}; v.q_dtype = v.kv_dtype = v.out_dtype = SIMDATTN_BF16; variants.push_back(v);
  v = {"f16 q kv out causal"}; v.q_dtype = v.kv_dtype = v.out_dtype = SIMDATTN_F16; v.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT; variants.push_back(v);
  v = {"i8 kv"}; v.kv_dtype = SIMDATTN_I8; variants.push_back(v);
  v = {"i8 kv bf16 out composed lse"}; v.kv_dtype = SIMDATTN_I8; v.out_dtype = SIMDATTN_BF16; v.algorithm = SIMDATTN_ALGO_COMPOSED; v.lse = true; variants.push_back(v);

  Tally tally;
  uint32_t seed = 1;
  for (const Shape& shape : shapes) {
    for (const Variant& variant : variants) attention_case(builds, shape, variant, seed++, tally);
    for (int32_t dtype : {SIMDATTN_F32, SIMDATTN_BF16, SIMDATTN_F16}) stages_case(builds, shape, dtype, seed++, tally);
  }
  std::printf("isa %s: %d cases, %lld elements compared, %lld differing, %d failed calls\n", isa.c_str(),
              tally.cases, static_cast<long long>(tally.compared), static_cast<long long>(tally.differing),
              tally.failed_calls);
  return tally.differing == 0 && tally.failed_calls == 0 ? 0 : 1;
}

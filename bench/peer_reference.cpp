// simdattn_peer_reference: simdattn::reference::attention on the small case bench/compare checks
// every peer against. Reads DIR/q.bin, k.bin, v.bin (fp32, BHSD, contiguous), writes DIR/ref.bin.
//   simdattn_peer_reference DIR B Hq Hkv Sq Sk D CAUSAL(0|1)
// Causal is bottom-right aligned (key j seen by query i when j <= i + Sk - Sq), the default scale
// 1/sqrt(D). Exit status 0, 1 when a file cannot be read or written, 2 for bad arguments.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "simdattn/reference.hpp"
#include "simdattn/simdattn.hpp"

namespace {

bool read_floats(const std::string& path, std::vector<float>& values) {
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  return static_cast<bool>(in);
}

std::array<int64_t, 4> contiguous_strides(const std::array<int64_t, 4>& shape) {
  return {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: simdattn_peer_reference DIR B Hq Hkv Sq Sk D CAUSAL(0|1)\n");
    return 2;
  }
  const std::string dir = argv[1];
  int64_t size[6];
  for (int i = 0; i < 6; ++i) {
    size[i] = std::atoll(argv[2 + i]);
    if (size[i] < 1) {
      std::fprintf(stderr, "simdattn_peer_reference: sizes must be positive, got '%s'\n", argv[2 + i]);
      return 2;
    }
  }
  const auto [batch, q_heads, kv_heads, seq_q, seq_k, head_dim] = size;
  const std::array<int64_t, 4> q_shape{batch, q_heads, seq_q, head_dim}, kv_shape{batch, kv_heads, seq_k, head_dim};
  std::vector<float> q(static_cast<size_t>(batch * q_heads * seq_q * head_dim)), out(q.size());
  std::vector<float> k(static_cast<size_t>(batch * kv_heads * seq_k * head_dim)), v(k.size());
  if (!read_floats(dir + "/q.bin", q) || !read_floats(dir + "/k.bin", k) || !read_floats(dir + "/v.bin", v)) {
    std::fprintf(stderr, "simdattn_peer_reference: cannot read q.bin, k.bin and v.bin of the sizes given in %s\n",
                 dir.c_str());
    return 1;
  }
  simdattn::AttentionOptions options;
  options.causal = std::string(argv[8]) == "1" ? simdattn::Causal::bottom_right : simdattn::Causal::none;
  try {
    simdattn::reference::attention(simdattn::ConstTensorView(q.data(), q_shape, contiguous_strides(q_shape)),
                                   simdattn::ConstTensorView(k.data(), kv_shape, contiguous_strides(kv_shape)),
                                   simdattn::ConstTensorView(v.data(), kv_shape, contiguous_strides(kv_shape)),
                                   simdattn::TensorView(out.data(), q_shape, contiguous_strides(q_shape)), options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "simdattn_peer_reference: %s\n", error.what());
    return 2;
  }
  std::ofstream file(dir + "/ref.bin", std::ios::binary);
  file.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
  if (!file) {
    std::fprintf(stderr, "simdattn_peer_reference: cannot write %s/ref.bin\n", dir.c_str());
    return 1;
  }
  return 0;
}

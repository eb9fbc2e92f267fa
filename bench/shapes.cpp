#include "shapes.hpp"

#include <stdexcept>

namespace simdattn::bench {

namespace {
// Queries per step up to which a shape is a decode step (Sq small: 1 to about 16).
constexpr int64_t kMaxDecodeQueries = 16;
}  // namespace

double Shape::useful_flops() const {
  const double dense = 4.0 * static_cast<double>(batch) * static_cast<double>(q_heads) *
                       static_cast<double>(seq_q) * static_cast<double>(seq_k) *
                       static_cast<double>(head_dim);
  return causal ? dense / 2.0 : dense;
}

double Shape::kv_bytes() const { return static_cast<double>(kv_elements()) * sizeof(float); }

int64_t Shape::q_elements() const { return batch * q_heads * seq_q * head_dim; }

int64_t Shape::kv_elements() const { return 2 * batch * kv_heads * seq_k * head_dim; }

bool Shape::is_decode() const { return seq_q <= kMaxDecodeQueries && seq_k > seq_q; }

const std::vector<Shape>& standard_shapes() {
  // Copied from docs/bench-shapes.md; causal shapes all have Sq == Sk, so the bottom-right and
  // top-left alignments coincide and "half the dense work" is exact up to the diagonal.
  static const std::vector<Shape> shapes = {
      {"encoder", 8, 12, 12, 512, 512, 64, false},
      {"prefill", 1, 32, 32, 2048, 2048, 128, true},
      {"prefill_gqa", 1, 32, 8, 2048, 2048, 128, true},
      {"long", 1, 8, 8, 16384, 16384, 64, false},
      {"decode_gqa", 1, 32, 8, 1, 8192, 128, false},
      {"decode_b8", 8, 32, 8, 1, 4096, 128, false},
  };
  return shapes;
}

const Shape& standard_shape(const std::string& name) {
  for (const Shape& shape : standard_shapes()) {
    if (shape.name == name) return shape;
  }
  throw std::invalid_argument("standard_shape: name: expected one of the standard shape names (encoder, prefill, prefill_gqa, long, decode_gqa, decode_b8), got '" +
                              name + "'");
}

}  // namespace simdattn::bench

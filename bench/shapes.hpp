// The standard benchmark shapes of docs/bench-shapes.md and the work each one represents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace simdattn::bench {

// One row of the shapes table: BHSD contiguous fp32 inputs, k and v share Sk and head_dim.
struct Shape {
  std::string name;
  int64_t batch;
  int64_t q_heads;
  int64_t kv_heads;
  int64_t seq_q;
  int64_t seq_k;
  int64_t head_dim;
  bool causal;

  // FLOPs of the two matrix products, 4·B·Hq·Sq·Sk·D, half of it for causal (where Sq == Sk):
  // the masked half is not useful work, however an implementation spends its time.
  double useful_flops() const;
  // Bytes of K and V when each kv head is read once: the least traffic a decode step can make.
  double kv_bytes() const;
  // Number of floats in q (and out), and in one copy of k plus v.
  int64_t q_elements() const;
  int64_t kv_elements() const;
  // A decode step: a few queries against a long KV cache, bound by memory rather than FLOPs.
  bool is_decode() const;
};

// The table, in the order of docs/bench-shapes.md.
const std::vector<Shape>& standard_shapes();

// The shape called `name`; throws std::invalid_argument naming the unknown name.
const Shape& standard_shape(const std::string& name);

}  // namespace simdattn::bench

#include "inputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "machine/read_bandwidth.hpp"
#include "memory_slot.hpp"

namespace simdattn::bench {

namespace {
// One seed per tensor, so q, k and v differ and every run sees the same numbers.
constexpr uint32_t kSeedQ = 1;
constexpr uint32_t kSeedK = 2;
constexpr uint32_t kSeedV = 3;
constexpr uint32_t kSeedScores = 4;

DecodeKv& decode_kv_setting() {
  static DecodeKv where = DecodeKv::cold;
  return where;
}

// Copies of (k, v) whose total reaches the read-bandwidth buffer (at least 4× the last-level
// cache), so a decode benchmark cycling through them reads from memory, as the bandwidth it is
// compared with was measured.
int64_t kv_copies_for(const Shape& shape) {
  if (!shape.is_decode() || decode_kv() == DecodeKv::warm) return 1;
  const double copies = std::ceil(static_cast<double>(read_buffer_bytes()) / shape.kv_bytes());
  return std::max<int64_t>(1, static_cast<int64_t>(copies));
}

// Written once so that no benchmark pays for first-touch page faults inside its timed loop.
AlignedFloats zeroed(int64_t count) {
  AlignedFloats buffer(count);
  std::memset(buffer.data(), 0, static_cast<std::size_t>(count) * sizeof(float));
  return buffer;
}
}  // namespace

void set_decode_kv(DecodeKv where) { decode_kv_setting() = where; }

DecodeKv decode_kv() { return decode_kv_setting(); }

AttentionInputs::AttentionInputs(const Shape& shape, int64_t kv_copies)
    : shape_(shape),
      kv_copies_(kv_copies),
      q_(shape.q_elements()),
      kv_pool_(shape.kv_elements() * kv_copies),
      out_(zeroed(shape.q_elements())) {
  fill_uniform(q_.data(), shape.q_elements(), kSeedQ);
  const int64_t half = shape.kv_elements() / 2;
  fill_uniform(kv_pool_.data(), half, kSeedK);
  fill_uniform(kv_pool_.data() + half, half, kSeedV);
  for (int64_t copy = 1; copy < kv_copies; ++copy) {
    std::memcpy(kv_pool_.data() + copy * shape.kv_elements(), kv_pool_.data(),
                static_cast<std::size_t>(shape.kv_elements()) * sizeof(float));
  }
}

ConstTensorView AttentionInputs::q() const {
  return bhsd_view<const float>(q_.data(), shape_.batch, shape_.q_heads, shape_.seq_q, shape_.head_dim);
}

ConstTensorView AttentionInputs::k(int64_t copy) const {
  return bhsd_view<const float>(kv_pool_.data() + copy * shape_.kv_elements(), shape_.batch,
                                shape_.kv_heads, shape_.seq_k, shape_.head_dim);
}

ConstTensorView AttentionInputs::v(int64_t copy) const {
  return bhsd_view<const float>(kv_pool_.data() + copy * shape_.kv_elements() + shape_.kv_elements() / 2,
                                shape_.batch, shape_.kv_heads, shape_.seq_k, shape_.head_dim);
}

TensorView AttentionInputs::out() const {
  return bhsd_view<float>(out_.data(), shape_.batch, shape_.q_heads, shape_.seq_q, shape_.head_dim);
}

StageInputs::StageInputs(const Shape& shape)
    : shape_(shape),
      q_(shape.q_elements()),
      k_(shape.kv_elements() / 2),
      v_(shape.kv_elements() / 2),
      scores_(shape.batch * shape.q_heads * shape.seq_q * shape.seq_k),
      out_(zeroed(shape.q_elements())) {
  fill_uniform(q_.data(), q_.size(), kSeedQ);
  fill_uniform(k_.data(), k_.size(), kSeedK);
  fill_uniform(v_.data(), v_.size(), kSeedV);
  fill_uniform(scores_.data(), scores_.size(), kSeedScores);
}

ConstTensorView StageInputs::q() const {
  return bhsd_view<const float>(q_.data(), shape_.batch, shape_.q_heads, shape_.seq_q, shape_.head_dim);
}

ConstTensorView StageInputs::k() const {
  return bhsd_view<const float>(k_.data(), shape_.batch, shape_.kv_heads, shape_.seq_k, shape_.head_dim);
}

ConstTensorView StageInputs::v() const {
  return bhsd_view<const float>(v_.data(), shape_.batch, shape_.kv_heads, shape_.seq_k, shape_.head_dim);
}

TensorView StageInputs::scores() const {
  return bhsd_view<float>(scores_.data(), shape_.batch, shape_.q_heads, shape_.seq_q, shape_.seq_k);
}

TensorView StageInputs::out() const {
  return bhsd_view<float>(out_.data(), shape_.batch, shape_.q_heads, shape_.seq_q, shape_.head_dim);
}

AttentionInputs& attention_inputs(const Shape& shape) {
  return large_data_slot().get_or_make<AttentionInputs>("attention/" + shape.name, [&] {
    return std::make_unique<AttentionInputs>(shape, kv_copies_for(shape));
  });
}

StageInputs& stage_inputs(const Shape& shape) {
  return large_data_slot().get_or_make<StageInputs>("stages/" + shape.name,
                                                    [&] { return std::make_unique<StageInputs>(shape); });
}

}  // namespace simdattn::bench

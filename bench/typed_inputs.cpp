#include "typed_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "inputs.hpp"
#include "machine/read_bandwidth.hpp"
#include "memory_slot.hpp"
#include "simdattn/convert.hpp"

namespace simdattn::bench {

namespace {
constexpr uint32_t kSeedQ = 1;  // the seeds of AttentionInputs: the same values, rounded
constexpr uint32_t kSeedK = 2;
constexpr uint32_t kSeedV = 3;

// Floats enough for `count` elements of `dtype`.
int64_t floats_for(int64_t count, DType dtype) { return (count * dtype_size(dtype) + 3) / 4 + 16; }

int64_t scale_groups(const Shape& shape, const Precision& precision) {
  return precision.scale_group > 0 ? std::max<int64_t>(1, shape.head_dim / precision.scale_group) : 1;
}

// Stores values[0, elements) (a BHSD tensor of `shape`'s kv or q sizes) as `dtype` at `destination`,
// with its int8 scales at `scales`.
void store(const float* values, const std::array<int64_t, 4>& dims, DType dtype, void* destination,
           float* scales, int64_t groups) {
  const ConstTensorView source = bhsd_view<const float>(values, dims[0], dims[1], dims[2], dims[3]);
  const std::array<int64_t, 4> strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  if (dtype == DType::i8) {
    quantize_rows(source, BasicTensorView<int8_t>(static_cast<int8_t*>(destination), dims, strides),
                  bhsd_view<float>(scales, dims[0], dims[1], dims[2], groups));
  } else {
    convert(source, AnyTensorView(destination, dtype, dims, strides));
  }
}
}  // namespace

const std::vector<Precision>& precisions() {
  static const std::vector<Precision> all = {
      {"bf16", DType::bf16, DType::bf16, false, "bf16 Q/K/V/O"},
      {"fp16", DType::f16, DType::f16, false, "fp16 Q/K/V/O"},
      {"f16kv", DType::f32, DType::f16, true, "fp32 Q/O, f16 K/V cache"},
      {"bf16kv", DType::f32, DType::bf16, true, "fp32 Q/O, bf16 K/V cache"},
      {"i8kv", DType::f32, DType::i8, true, "fp32 Q/O, int8 K/V cache, one scale per 32 elements", 32},
      {"i8rowkv", DType::f32, DType::i8, true, "fp32 Q/O, int8 K/V cache, one scale per row", 0}};
  return all;
}

double cache_bytes(const Shape& shape, const Precision& precision) {
  const double elements = static_cast<double>(shape.kv_elements());
  double bytes = elements * static_cast<double>(dtype_size(precision.cache));
  if (precision.cache == DType::i8) {
    bytes += 2.0 * static_cast<double>(shape.batch * shape.kv_heads * shape.seq_k * scale_groups(shape, precision)) * 4.0;
  }
  return bytes;
}

TypedAttentionInputs::TypedAttentionInputs(const Shape& shape, const Precision& precision, int64_t kv_copies)
    : shape_(shape),
      precision_(precision),
      kv_copies_(kv_copies),
      q_(floats_for(shape.q_elements(), precision.queries)),
      kv_pool_(floats_for(shape.kv_elements(), precision.cache) * kv_copies),
      scales_(precision.cache == DType::i8
                  ? 2 * shape.batch * shape.kv_heads * shape.seq_k * scale_groups(shape, precision) * kv_copies
                  : 1),
      out_(floats_for(shape.q_elements(), precision.queries)) {
  std::memset(out_.data(), 0, static_cast<size_t>(out_.size()) * sizeof(float));
  const std::array<int64_t, 4> q_dims = {shape.batch, shape.q_heads, shape.seq_q, shape.head_dim};
  const std::array<int64_t, 4> kv_dims = {shape.batch, shape.kv_heads, shape.seq_k, shape.head_dim};
  AlignedFloats values(std::max(shape.q_elements(), shape.kv_elements() / 2));
  fill_uniform(values.data(), shape.q_elements(), kSeedQ);
  store(values.data(), q_dims, precision.queries, q_.data(), nullptr, 1);
  for (int64_t half = 0; half < 2; ++half) {
    fill_uniform(values.data(), shape.kv_elements() / 2, half == 0 ? kSeedK : kSeedV);
    store(values.data(), kv_dims, precision.cache, const_cast<void*>(cache_view(0, half).data),
          const_cast<float*>(scale_view(0, half).data), scale_groups(shape, precision));
  }
  // The other copies (cold decoding) hold the same bytes: copied, not converted again.
  const size_t copy_bytes = static_cast<size_t>(floats_for(shape.kv_elements(), precision.cache)) * sizeof(float);
  const size_t scale_floats = precision.cache == DType::i8 ? static_cast<size_t>(scales_.size() / kv_copies) : 0;
  for (int64_t copy = 1; copy < kv_copies; ++copy) {
    std::memcpy(kv_pool_.data() + copy * (copy_bytes / sizeof(float)), kv_pool_.data(), copy_bytes);
    std::memcpy(scales_.data() + copy * scale_floats, scales_.data(), scale_floats * sizeof(float));
  }
}

AnyConstTensorView TypedAttentionInputs::cache_view(int64_t copy, int64_t half) const {
  const int64_t per_copy_bytes = floats_for(shape_.kv_elements(), precision_.cache) * 4;
  const auto* base = reinterpret_cast<const unsigned char*>(kv_pool_.data()) + copy * per_copy_bytes +
                     half * (shape_.kv_elements() / 2) * dtype_size(precision_.cache);
  return AnyConstTensorView(static_cast<const void*>(base), precision_.cache,
                            {shape_.batch, shape_.kv_heads, shape_.seq_k, shape_.head_dim},
                            {shape_.kv_heads * shape_.seq_k * shape_.head_dim, shape_.seq_k * shape_.head_dim,
                             shape_.head_dim, 1});
}

ConstTensorView TypedAttentionInputs::scale_view(int64_t copy, int64_t half) const {
  if (precision_.cache != DType::i8) return {};
  const int64_t groups = scale_groups(shape_, precision_);
  const int64_t per_tensor = shape_.batch * shape_.kv_heads * shape_.seq_k * groups;
  return bhsd_view<const float>(scales_.data() + (2 * copy + half) * per_tensor, shape_.batch,
                                shape_.kv_heads, shape_.seq_k, groups);
}

AnyConstTensorView TypedAttentionInputs::q() const {
  return AnyConstTensorView(static_cast<const void*>(q_.data()), precision_.queries,
                            {shape_.batch, shape_.q_heads, shape_.seq_q, shape_.head_dim},
                            {shape_.q_heads * shape_.seq_q * shape_.head_dim, shape_.seq_q * shape_.head_dim,
                             shape_.head_dim, 1});
}

AnyConstTensorView TypedAttentionInputs::k(int64_t copy) const { return cache_view(copy, 0); }
AnyConstTensorView TypedAttentionInputs::v(int64_t copy) const { return cache_view(copy, 1); }
ConstTensorView TypedAttentionInputs::k_scale(int64_t copy) const { return scale_view(copy, 0); }
ConstTensorView TypedAttentionInputs::v_scale(int64_t copy) const { return scale_view(copy, 1); }

AnyTensorView TypedAttentionInputs::out() const {
  return AnyTensorView(static_cast<void*>(out_.data()), precision_.queries,
                       {shape_.batch, shape_.q_heads, shape_.seq_q, shape_.head_dim},
                       {shape_.q_heads * shape_.seq_q * shape_.head_dim, shape_.seq_q * shape_.head_dim,
                        shape_.head_dim, 1});
}

TypedAttentionInputs& typed_attention_inputs(const Shape& shape, const Precision& precision) {
  return large_data_slot().get_or_make<TypedAttentionInputs>(
      "attention/" + shape.name + "/" + precision.name, [&] {
        int64_t copies = 1;
        if (shape.is_decode() && decode_kv() == DecodeKv::cold) {
          copies = std::max<int64_t>(
              1, static_cast<int64_t>(std::ceil(static_cast<double>(read_buffer_bytes()) /
                                                cache_bytes(shape, precision))));
        }
        return std::make_unique<TypedAttentionInputs>(shape, precision, copies);
      });
}

}  // namespace simdattn::bench

// The C ABI (include/simdattn/simdattn.h): converts C structs into the C++ views and options,
// calls the C++ entry points, and turns every exception into a status plus a per-thread message.
// Argument checks stay in the C++ entries; this layer checks only what C adds (NULL pointers,
// dtype, enum ranges, struct_size), so both interfaces accept and reject exactly the same calls.

#include "simdattn/simdattn.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "simdattn/simdattn.hpp"

namespace {

// A well-formed request this build cannot serve (e.g. an option only a newer library knows).
class UnsupportedRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The calling thread's last failure. message_pointer falls back to a static text when even
// storing the message fails, so simdattn_last_error() never allocates and never returns NULL.
thread_local std::string last_error_text;
thread_local const char* last_error_pointer = "";

// Records `message` as this thread's last error and returns `status`. The C++ checks name the
// C++ function ("simdattn::attention: ..."); given `c_function`, a C caller reads the name it
// called instead ("simdattn_attention: ...").
simdattn_status fail(simdattn_status status, const char* message,
                     const char* c_function = nullptr) noexcept {
  try {
    last_error_text.assign(message);
    const std::size_t colon = last_error_text.find(": ");
    if (c_function != nullptr && last_error_text.rfind("simdattn::", 0) == 0 &&
        colon != std::string::npos && last_error_text.rfind("simdattn::reference", 0) != 0) {
      last_error_text.replace(0, colon, c_function);
    }
    last_error_pointer = last_error_text.c_str();
  } catch (...) {
    last_error_pointer = "simdattn: out of memory while recording an error message";
  }
  return status;
}

// Runs `body` and maps whatever it throws to a status: no exception crosses the C ABI.
template <class Body>
simdattn_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return SIMDATTN_OK;
  } catch (const UnsupportedRequest& error) {
    return fail(SIMDATTN_ERR_UNSUPPORTED, error.what());
  } catch (const std::invalid_argument& error) {
    return fail(SIMDATTN_ERR_INVALID_ARGUMENT, error.what(), function);
  } catch (const std::bad_alloc&) {
    return fail(SIMDATTN_ERR_OUT_OF_MEMORY,
                (std::string(function) + ": out of memory allocating scratch space").c_str());
  } catch (const std::length_error& error) {
    // A container asked for more elements than it can ever hold: a size no machine can allocate.
    return fail(SIMDATTN_ERR_OUT_OF_MEMORY, error.what());
  } catch (const std::exception& error) {
    return fail(SIMDATTN_ERR_INTERNAL,
                (std::string(function) + ": internal error: " + error.what()).c_str());
  } catch (...) {
    return fail(SIMDATTN_ERR_INTERNAL,
                (std::string(function) + ": internal error: unknown exception").c_str());
  }
}

// The view a C tensor describes, T = float (output) or const float (input). Throws
// std::invalid_argument naming `function` and `name` when the tensor is NULL or not float32.
template <class T>
simdattn::BasicTensorView<T> view_of(const char* function, const char* name,
                                     const simdattn_tensor* tensor) {
  if (tensor == nullptr) {
    throw std::invalid_argument(std::string(function) + ": " + name + " must not be NULL");
  }
  if (tensor->dtype != SIMDATTN_F32) {
    throw std::invalid_argument(std::string(function) + ": " + name +
                                "->dtype must be SIMDATTN_F32 (0), got " +
                                std::to_string(tensor->dtype));
  }
  const int64_t* s = tensor->shape;
  const int64_t* t = tensor->strides;
  return {static_cast<T*>(tensor->data), {s[0], s[1], s[2], s[3]}, {t[0], t[1], t[2], t[3]}};
}

// The view a C tensor of any dtype describes, Data = void (output) or const void (input). Throws
// std::invalid_argument naming `function` and `name` when the tensor is NULL or its dtype is not a
// simdattn_dtype; which dtypes the argument takes is the C++ function's check.
template <class Data>
simdattn::BasicAnyTensorView<Data> any_view_of(const char* function, const char* name,
                                               const simdattn_tensor* tensor) {
  if (tensor == nullptr) {
    throw std::invalid_argument(std::string(function) + ": " + name + " must not be NULL");
  }
  if (tensor->dtype < SIMDATTN_F32 || tensor->dtype > SIMDATTN_I8) {
    throw std::invalid_argument(std::string(function) + ": " + name +
                                "->dtype must be SIMDATTN_F32 (0), SIMDATTN_BF16 (1), "
                                "SIMDATTN_F16 (2) or SIMDATTN_I8 (3), got " +
                                std::to_string(tensor->dtype));
  }
  const int64_t* s = tensor->shape;
  const int64_t* t = tensor->strides;
  return {static_cast<Data*>(tensor->data), static_cast<simdattn::DType>(tensor->dtype),
          {s[0], s[1], s[2], s[3]}, {t[0], t[1], t[2], t[3]}};
}

// Byte offset of `member` inside simdattn_options (offsetof through a member pointer, so the
// field list below names each field once).
template <class Field>
std::size_t offset_of(Field simdattn_options::*member) {
  static const simdattn_options probe{};
  return static_cast<std::size_t>(reinterpret_cast<const char*>(&(probe.*member)) -
                                  reinterpret_cast<const char*>(&probe));
}

// The caller's options as this library's full struct: fields that lie wholly inside the
// caller's struct_size are copied, the others keep their defaults. Throws std::invalid_argument
// for a struct_size that does not hold `scale`, UnsupportedRequest when a newer caller set bytes
// past the fields this library knows.
simdattn_options read_options(const char* function, const simdattn_options* given) {
  simdattn_options options;
  simdattn_options_init(&options);
  if (given == nullptr) return options;

  const std::size_t size = given->struct_size;  // struct_size is first: every caller has it
  const std::size_t smallest = offset_of(&simdattn_options::scale) + sizeof(float);
  if (size < smallest) {
    throw std::invalid_argument(std::string(function) + ": options->struct_size must be at least " +
                                std::to_string(smallest) + " (sizeof(simdattn_options) = " +
                                std::to_string(sizeof(simdattn_options)) + "), got " +
                                std::to_string(size));
  }
  // A newer header's struct may grow, but not by kilobytes: a larger value is an uninitialised
  // field, and scanning that far for a zero tail would read past the caller's struct.
  constexpr std::size_t kLargestPlausible = 4096;
  if (size > kLargestPlausible) {
    throw std::invalid_argument(std::string(function) + ": options->struct_size must be at most " +
                                std::to_string(kLargestPlausible) + " (sizeof(simdattn_options) = " +
                                std::to_string(sizeof(simdattn_options)) +
                                "; call simdattn_options_init first), got " + std::to_string(size));
  }
  if (size > sizeof(simdattn_options)) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(given);
    const bool tail_is_zero = std::all_of(bytes + sizeof(simdattn_options), bytes + size,
                                          [](unsigned char byte) { return byte == 0; });
    if (!tail_is_zero) {
      throw UnsupportedRequest(std::string(function) + ": options->struct_size is " +
                               std::to_string(size) + " and sets fields this library (version " +
                               simdattn::version() + ", sizeof(simdattn_options) = " +
                               std::to_string(sizeof(simdattn_options)) + ") does not know");
    }
  }
  auto take = [&](auto member) {
    using Field = std::remove_reference_t<decltype(options.*member)>;
    if (offset_of(member) + sizeof(Field) <= size) options.*member = given->*member;
  };
  take(&simdattn_options::scale);
  take(&simdattn_options::causal);
  take(&simdattn_options::window_left);
  take(&simdattn_options::window_right);
  take(&simdattn_options::mask);
  take(&simdattn_options::kv_lengths);
  take(&simdattn_options::softcap);
  take(&simdattn_options::alibi_slopes);
  take(&simdattn_options::weights);
  take(&simdattn_options::lse);
  take(&simdattn_options::num_threads);
  take(&simdattn_options::algorithm);
  take(&simdattn_options::scale_is_explicit);
  take(&simdattn_options::k_scale);
  take(&simdattn_options::v_scale);
  take(&simdattn_options::sinks);
  take(&simdattn_options::sink_tokens);
  take(&simdattn_options::is_shard);
  take(&simdattn_options::shard_key_offset);
  take(&simdattn_options::shard_diagonal_shift);
  options.struct_size = sizeof(simdattn_options);
  return options;
}

// `value` when it lies in [0, last]; otherwise throws std::invalid_argument naming the field.
int32_t enum_in_range(const char* function, const char* name, int32_t value, int32_t last,
                      const char* type) {
  if (value < 0 || value > last) {
    throw std::invalid_argument(std::string(function) + ": " + name + " must be a " + type +
                                " value in [0, " + std::to_string(last) + "], got " +
                                std::to_string(value));
  }
  return value;
}

// The C++ options equivalent to the caller's C options (NULL: defaults).
simdattn::AttentionOptions to_cpp_options(const char* function, const simdattn_options* given) {
  const simdattn_options c = read_options(function, given);
  simdattn::AttentionOptions options;
  // 0 means "1/sqrt(head_dim)", as documented, unless the caller says the scale is explicit.
  if (c.scale_is_explicit != 0 || c.scale != 0.0f) options.scale = c.scale;
  options.causal = static_cast<simdattn::Causal>(enum_in_range(
      function, "options->causal", c.causal, SIMDATTN_CAUSAL_TOP_LEFT, "simdattn_causal"));
  options.window_left = c.window_left;
  options.window_right = c.window_right;
  if (c.mask != nullptr) options.mask = any_view_of<const void>(function, "options->mask", c.mask);
  if (c.k_scale != nullptr) options.k_scale = view_of<const float>(function, "options->k_scale", c.k_scale);
  if (c.v_scale != nullptr) options.v_scale = view_of<const float>(function, "options->v_scale", c.v_scale);
  options.kv_lengths = c.kv_lengths;
  options.softcap = c.softcap;
  options.alibi_slopes = c.alibi_slopes;
  options.sinks = c.sinks;
  options.sink_tokens = c.sink_tokens;
  if (c.is_shard != 0) options.shard = simdattn::KeyShard{c.shard_key_offset, c.shard_diagonal_shift};
  if (c.weights != nullptr) options.weights = view_of<float>(function, "options->weights", c.weights);
  if (c.lse != nullptr) options.lse = view_of<float>(function, "options->lse", c.lse);
  options.num_threads = c.num_threads;
  options.algorithm = static_cast<simdattn::Algorithm>(enum_in_range(
      function, "options->algorithm", c.algorithm, SIMDATTN_ALGO_FUSED, "simdattn_algo"));
  return options;
}

}  // namespace

extern "C" {

void simdattn_options_init_sized(simdattn_options* options, size_t struct_size) {
  if (options == nullptr) return;
  const size_t size = std::min(struct_size, sizeof(simdattn_options));
  // Zeroes padding too, so struct copies compare equal. Every default below is 0 but for these
  // few, each written only when it lies wholly inside the caller's struct.
  std::memset(options, 0, size);
  auto set = [&](auto member, auto value) {
    using Field = std::remove_reference_t<decltype(options->*member)>;
    if (offset_of(member) + sizeof(Field) <= size) options->*member = value;
  };
  set(&simdattn_options::struct_size, size);
  set(&simdattn_options::causal, int32_t{SIMDATTN_CAUSAL_NONE});
  set(&simdattn_options::window_left, int64_t{-1});
  set(&simdattn_options::window_right, int64_t{-1});
  set(&simdattn_options::algorithm, int32_t{SIMDATTN_ALGO_AUTO});
}

// The first layout of simdattn_options ended with `algorithm`: what callers of this entry (built
// before simdattn_options_init_sized existed) can hold.
void(simdattn_options_init)(simdattn_options* options) {
  simdattn_options_init_sized(options, offset_of(&simdattn_options::algorithm) + sizeof(int32_t));
}

simdattn_status simdattn_attention(const simdattn_tensor* q, const simdattn_tensor* k,
                                   const simdattn_tensor* v, const simdattn_tensor* out,
                                   const simdattn_options* options) {
  static constexpr const char* function = "simdattn_attention";
  return guarded(function, [&] {
    simdattn::attention(any_view_of<const void>(function, "q", q),
                        any_view_of<const void>(function, "k", k),
                        any_view_of<const void>(function, "v", v),
                        any_view_of<void>(function, "out", out), to_cpp_options(function, options));
  });
}

simdattn_status simdattn_attention_varlen(const simdattn_tensor* q, const simdattn_tensor* k,
                                          const simdattn_tensor* v, const simdattn_tensor* out,
                                          const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k,
                                          int64_t batch, const simdattn_options* options) {
  static constexpr const char* function = "simdattn_attention_varlen";
  return guarded(function, [&] {
    simdattn::attention_varlen(any_view_of<const void>(function, "q", q),
                               any_view_of<const void>(function, "k", k),
                               any_view_of<const void>(function, "v", v),
                               any_view_of<void>(function, "out", out), cu_seqlens_q, cu_seqlens_k,
                               batch, to_cpp_options(function, options));
  });
}

simdattn_status simdattn_attention_paged(const simdattn_tensor* q, const simdattn_paged_cache* cache,
                                         const simdattn_tensor* out, const int32_t* cu_seqlens_q,
                                         int64_t batch, const simdattn_options* options) {
  static constexpr const char* function = "simdattn_attention_paged";
  return guarded(function, [&] {
    if (cache == nullptr) throw std::invalid_argument(std::string(function) + ": cache must not be NULL");
    simdattn::PagedCache paged;
    paged.k_pages = any_view_of<const void>(function, "cache->k_pages", cache->k_pages);
    paged.v_pages = any_view_of<const void>(function, "cache->v_pages", cache->v_pages);
    if (cache->k_scale_pages != nullptr) {
      paged.k_scale_pages = view_of<const float>(function, "cache->k_scale_pages", cache->k_scale_pages);
    }
    if (cache->v_scale_pages != nullptr) {
      paged.v_scale_pages = view_of<const float>(function, "cache->v_scale_pages", cache->v_scale_pages);
    }
    paged.block_table = cache->block_table;
    paged.blocks_per_sequence = cache->blocks_per_sequence;
    paged.seq_lens = cache->seq_lens;
    simdattn::attention_paged(any_view_of<const void>(function, "q", q), paged,
                              any_view_of<void>(function, "out", out), cu_seqlens_q, batch,
                              to_cpp_options(function, options));
  });
}

simdattn_status simdattn_qk_scores(const simdattn_tensor* q, const simdattn_tensor* k,
                                   const simdattn_tensor* scores, float scale,
                                   int32_t num_threads) {
  static constexpr const char* function = "simdattn_qk_scores";
  return guarded(function, [&] {
    simdattn::qk_scores(any_view_of<const void>(function, "q", q),
                        any_view_of<const void>(function, "k", k),
                        view_of<float>(function, "scores", scores), scale, num_threads);
  });
}

simdattn_status simdattn_softmax_rows(const simdattn_tensor* scores, int32_t num_threads) {
  static constexpr const char* function = "simdattn_softmax_rows";
  return guarded(function, [&] {
    simdattn::softmax_rows(view_of<float>(function, "scores", scores), num_threads);
  });
}

simdattn_status simdattn_softmax_rows_with_sinks(const simdattn_tensor* scores, const float* sinks,
                                                 int32_t num_threads) {
  static constexpr const char* function = "simdattn_softmax_rows_with_sinks";
  return guarded(function, [&] {
    simdattn::softmax_rows(view_of<float>(function, "scores", scores), sinks, num_threads);
  });
}

simdattn_status simdattn_weights_v(const simdattn_tensor* weights, const simdattn_tensor* v,
                                   const simdattn_tensor* out, int32_t num_threads) {
  static constexpr const char* function = "simdattn_weights_v";
  return guarded(function, [&] {
    simdattn::weights_v(view_of<const float>(function, "weights", weights),
                        any_view_of<const void>(function, "v", v),
                        any_view_of<void>(function, "out", out), num_threads);
  });
}

simdattn_status simdattn_convert(const simdattn_tensor* source, const simdattn_tensor* destination) {
  static constexpr const char* function = "simdattn_convert";
  return guarded(function, [&] {
    simdattn::convert(any_view_of<const void>(function, "source", source),
                      any_view_of<void>(function, "destination", destination));
  });
}

simdattn_status simdattn_quantize_rows(const simdattn_tensor* source, const simdattn_tensor* destination,
                                       const simdattn_tensor* scales) {
  static constexpr const char* function = "simdattn_quantize_rows";
  return guarded(function, [&] {
    const simdattn::AnyTensorView bytes = any_view_of<void>(function, "destination", destination);
    if (bytes.dtype != simdattn::DType::i8) {
      throw std::invalid_argument(std::string(function) + ": destination->dtype must be SIMDATTN_I8 (3), got " +
                                  std::to_string(destination->dtype));
    }
    simdattn::quantize_rows(any_view_of<const void>(function, "source", source),
                            {static_cast<int8_t*>(bytes.data), bytes.shape, bytes.strides},
                            view_of<float>(function, "scales", scales));
  });
}

simdattn_status simdattn_merge_attention_states(const simdattn_tensor* outs, const simdattn_tensor* lses,
                                                int64_t count, const simdattn_tensor* out,
                                                const simdattn_tensor* lse, int32_t num_threads) {
  static constexpr const char* function = "simdattn_merge_attention_states";
  return guarded(function, [&] {
    if (count < 1) {
      throw std::invalid_argument(std::string(function) + ": count (states to merge) must be >= 1, got " +
                                  std::to_string(count));
    }
    if (outs == nullptr || lses == nullptr) {
      throw std::invalid_argument(std::string(function) + ": " + (outs == nullptr ? "outs" : "lses") +
                                  " must not be NULL for " + std::to_string(count) + " states");
    }
    std::vector<simdattn::AnyConstTensorView> out_views;
    std::vector<simdattn::ConstTensorView> lse_views;
    for (int64_t i = 0; i < count; ++i) {
      const std::string index = "[" + std::to_string(i) + "]";
      out_views.push_back(any_view_of<const void>(function, ("outs" + index).c_str(), &outs[i]));
      lse_views.push_back(view_of<const float>(function, ("lses" + index).c_str(), &lses[i]));
    }
    std::optional<simdattn::TensorView> lse_view;
    if (lse != nullptr) lse_view = view_of<float>(function, "lse", lse);
    simdattn::merge_attention_states(out_views.data(), lse_views.data(), count,
                                     any_view_of<void>(function, "out", out), lse_view, num_threads);
  });
}

const char* simdattn_last_error(void) { return last_error_pointer; }

const char* simdattn_version(void) { return simdattn::version(); }

const char* simdattn_active_isa(void) {
  try {
    return simdattn::active_isa();
  } catch (const std::exception& error) {  // SIMDATTN_ISA holds no ISA name: the message says so
    fail(SIMDATTN_ERR_INVALID_ARGUMENT, error.what());
    return "unknown";
  } catch (...) {
    return "unknown";
  }
}

}  // extern "C"

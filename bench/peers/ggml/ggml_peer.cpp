// simdattn_ggml_peer: llama.cpp's CPU attention, ggml_flash_attn_ext, on one attention shape,
// either checked (--check DIR: reads DIR/q.bin, k.bin, v.bin, writes DIR/<--out>) or timed like
// simdattn_bench times simdattn (a warm-up call, then the fastest call over --min-time seconds).
// Prints one JSON line on stdout; errors go to stderr with exit status 1 (2 for bad arguments).
//
// Layout: q, k, v and the output are fp32 BHSD, contiguous, which is exactly ggml's
// [D, S, H, B] tensor order, so the files copy straight in. Q stays F32 (ggml's flash attention
// takes F32 queries); K and V are stored as --kv-type (f32, f16, bf16 or q8_0), converted with
// ggml's own row conversion, as llama.cpp fills its KV cache. Causal shapes get an F16 mask,
// 0 or -inf, aligned bottom-right (key j is seen by query i when j <= i + Sk - Sq), as simdattn's
// Causal::bottom_right. Grouped-query shapes use ggml's native broadcast of kv heads.
#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

struct Arguments {
  int64_t batch = 0, q_heads = 0, kv_heads = 0, seq_q = 0, seq_k = 0, head_dim = 0;
  bool causal = false;
  std::string kv_type = "f32";
  int threads = 1;
  double min_time = 0.5;
  int min_calls = 3;
  // Decode reads K and V from memory: the calls cycle through copies totalling at least this many
  // bytes (0: one copy, re-read every call), as simdattn_bench's --decode_kv=cold does.
  double cold_bytes = 0.0;
  std::string check_dir;
  std::string out_name = "out.bin";
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr,
               "simdattn_ggml_peer: %s\n"
               "usage: simdattn_ggml_peer --batch B --q-heads H --kv-heads H --seq-q S --seq-k S --head-dim D\n"
               "         [--causal 0|1] [--kv-type f32|f16|bf16|q8_0] [--threads N] [--min-time SECONDS]\n"
               "         [--min-calls N] [--cold-bytes BYTES] [--check DIR [--out FILE]]\n",
               message.c_str());
  std::exit(2);
}

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage_error("missing value after " + flag);
    const std::string value = argv[++i];
    try {
      if (flag == "--batch") a.batch = std::stoll(value);
      else if (flag == "--q-heads") a.q_heads = std::stoll(value);
      else if (flag == "--kv-heads") a.kv_heads = std::stoll(value);
      else if (flag == "--seq-q") a.seq_q = std::stoll(value);
      else if (flag == "--seq-k") a.seq_k = std::stoll(value);
      else if (flag == "--head-dim") a.head_dim = std::stoll(value);
      else if (flag == "--causal") a.causal = value == "1" || value == "true";
      else if (flag == "--kv-type") a.kv_type = value;
      else if (flag == "--threads") a.threads = std::stoi(value);
      else if (flag == "--min-time") a.min_time = std::stod(value);
      else if (flag == "--min-calls") a.min_calls = std::stoi(value);
      else if (flag == "--cold-bytes") a.cold_bytes = std::stod(value);
      else if (flag == "--check") a.check_dir = value;
      else if (flag == "--out") a.out_name = value;
      else usage_error("unknown flag " + flag);
    } catch (const std::exception&) {
      usage_error("bad value '" + value + "' for " + flag);
    }
  }
  if (a.batch < 1 || a.q_heads < 1 || a.kv_heads < 1 || a.seq_q < 1 || a.seq_k < 1 || a.head_dim < 1)
    usage_error("every size must be given and positive");
  if (a.q_heads % a.kv_heads != 0) usage_error("--q-heads must be a multiple of --kv-heads");
  if (a.threads < 1) usage_error("--threads must be positive");
  return a;
}

ggml_type kv_type_of(const std::string& name) {
  if (name == "f32") return GGML_TYPE_F32;
  if (name == "f16") return GGML_TYPE_F16;
  if (name == "bf16") return GGML_TYPE_BF16;
  if (name == "q8_0") return GGML_TYPE_Q8_0;
  usage_error("--kv-type: expected f32, f16, bf16 or q8_0, got '" + name + "'");
}

std::vector<float> read_floats(const std::string& path, size_t count) {
  std::vector<float> values(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(count * sizeof(float)));
  if (!in || in.gcount() != static_cast<std::streamsize>(count * sizeof(float))) {
    std::fprintf(stderr, "simdattn_ggml_peer: cannot read %zu floats from %s\n", count, path.c_str());
    std::exit(1);
  }
  return values;
}

// Seeded values in [-1, 1], as simdattn_bench's inputs.
std::vector<float> random_floats(size_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& value : values) value = uniform(generator);
  return values;
}

// Stores fp32 rows of `row_length` into `tensor` in its own type, with ggml's conversion.
void store_rows(ggml_tensor* tensor, const std::vector<float>& values, int64_t row_length) {
  const int64_t rows = static_cast<int64_t>(values.size()) / row_length;
  ggml_quantize_chunk(tensor->type, values.data(), tensor->data, 0, rows, row_length, nullptr);
}

std::string json_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Arguments a = parse(argc, argv);
  const ggml_type kv_type = kv_type_of(a.kv_type);
  const bool checking = !a.check_dir.empty();
  const int64_t d = a.head_dim;
  const size_t q_count = static_cast<size_t>(a.batch * a.q_heads * a.seq_q * d);
  const size_t kv_count = static_cast<size_t>(a.batch * a.kv_heads * a.seq_k * d);
  const double kv_bytes = 2.0 * static_cast<double>(kv_count) / static_cast<double>(ggml_blck_size(kv_type)) *
                          static_cast<double>(ggml_type_size(kv_type));
  const int copies = checking || a.cold_bytes <= 0.0
                         ? 1
                         : static_cast<int>(std::max(1.0, std::ceil(a.cold_bytes / kv_bytes)));

  ggml_backend_t backend = ggml_backend_cpu_init();
  if (backend == nullptr) {
    std::fprintf(stderr, "simdattn_ggml_peer: ggml_backend_cpu_init failed\n");
    return 1;
  }
  ggml_backend_cpu_set_n_threads(backend, a.threads);

  const size_t tensors = static_cast<size_t>(4 * copies + 4);
  ggml_init_params params{};
  params.mem_size = tensors * ggml_tensor_overhead() + static_cast<size_t>(copies) * ggml_graph_overhead_custom(8, false);
  params.mem_buffer = nullptr;
  params.no_alloc = true;  // the tensors' data goes into one backend buffer below
  ggml_context* context = ggml_init(params);

  ggml_tensor* q = ggml_new_tensor_4d(context, GGML_TYPE_F32, d, a.seq_q, a.q_heads, a.batch);
  ggml_tensor* mask = a.causal ? ggml_new_tensor_4d(context, GGML_TYPE_F16, a.seq_k, a.seq_q, 1, 1) : nullptr;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<ggml_tensor*> keys, values, outputs;
  std::vector<ggml_cgraph*> graphs;
  for (int copy = 0; copy < copies; ++copy) {
    keys.push_back(ggml_new_tensor_4d(context, kv_type, d, a.seq_k, a.kv_heads, a.batch));
    values.push_back(ggml_new_tensor_4d(context, kv_type, d, a.seq_k, a.kv_heads, a.batch));
    outputs.push_back(ggml_flash_attn_ext(context, q, keys.back(), values.back(), mask, scale, 0.0f, 0.0f));
    graphs.push_back(ggml_new_graph_custom(context, 8, false));
    ggml_build_forward_expand(graphs.back(), outputs.back());
  }
  ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors(context, backend);
  if (buffer == nullptr) {
    std::fprintf(stderr, "simdattn_ggml_peer: cannot allocate %.0f MB of tensors\n", copies * kv_bytes / 1e6);
    return 1;
  }

  // The inputs: the check's files, or seeded values (each copy of K and V its own).
  std::vector<float> q_values = checking ? read_floats(a.check_dir + "/q.bin", q_count) : random_floats(q_count, 1);
  store_rows(q, q_values, d);
  for (int copy = 0; copy < copies; ++copy) {
    store_rows(keys[copy], checking ? read_floats(a.check_dir + "/k.bin", kv_count) : random_floats(kv_count, 2 + 2 * copy), d);
    store_rows(values[copy], checking ? read_floats(a.check_dir + "/v.bin", kv_count) : random_floats(kv_count, 3 + 2 * copy), d);
  }
  if (mask != nullptr) {
    auto* cells = static_cast<ggml_fp16_t*>(mask->data);
    const ggml_fp16_t seen = ggml_fp32_to_fp16(0.0f), hidden = ggml_fp32_to_fp16(-INFINITY);
    for (int64_t i = 0; i < a.seq_q; ++i)
      for (int64_t j = 0; j < a.seq_k; ++j) cells[i * a.seq_k + j] = j <= i + a.seq_k - a.seq_q ? seen : hidden;
  }

  const char* mask_note = a.causal ? ", F16 mask (bottom-right causal)" : ", no mask";
  std::string type_name = ggml_type_name(kv_type);
  for (char& c : type_name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string computed = std::string("ggml ") + ggml_version() + " (" + ggml_commit() + "): F32 Q, " + type_name +
                               " K/V" + mask_note + ", F32 output, ggml_flash_attn_ext on the CPU backend";

  if (checking) {
    if (ggml_backend_graph_compute(backend, graphs[0]) != GGML_STATUS_SUCCESS) {
      std::fprintf(stderr, "simdattn_ggml_peer: graph compute failed\n");
      return 1;
    }
    // The result is [D, Hq, Sq, B]; the file is BHSD.
    const float* result = static_cast<const float*>(outputs[0]->data);
    std::vector<float> out(q_count);
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t h = 0; h < a.q_heads; ++h)
        for (int64_t s = 0; s < a.seq_q; ++s)
          std::memcpy(&out[static_cast<size_t>(((b * a.q_heads + h) * a.seq_q + s) * d)],
                      &result[static_cast<size_t>(((b * a.seq_q + s) * a.q_heads + h) * d)], sizeof(float) * d);
    std::ofstream file(a.check_dir + "/" + a.out_name, std::ios::binary);
    file.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
    if (!file) {
      std::fprintf(stderr, "simdattn_ggml_peer: cannot write %s/%s\n", a.check_dir.c_str(), a.out_name.c_str());
      return 1;
    }
    std::printf("{\"checked\": true, \"computed\": \"%s\"}\n", json_escape(computed).c_str());
    return 0;
  }

  using Clock = std::chrono::steady_clock;
  const auto warm_up_start = Clock::now();
  if (ggml_backend_graph_compute(backend, graphs[0]) != GGML_STATUS_SUCCESS) {  // warm-up
    std::fprintf(stderr, "simdattn_ggml_peer: graph compute failed\n");
    return 1;
  }
  // A call slower than kSlowCallSeconds is timed once more only, as the Python peers do, so that
  // the slowest cache type on 'long' does not take the run's hour.
  constexpr double kSlowCallSeconds = 10.0;
  const double warm_up = std::chrono::duration<double>(Clock::now() - warm_up_start).count();
  const int min_calls = warm_up > kSlowCallSeconds ? 1 : warm_up > 1.0 ? std::min(2, a.min_calls) : a.min_calls;
  double best = INFINITY, total = 0.0;
  int calls = 0;
  for (int copy = 1 % copies; total < a.min_time || calls < min_calls; copy = (copy + 1) % copies) {
    const auto start = Clock::now();
    ggml_backend_graph_compute(backend, graphs[copy]);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, seconds);
    total += seconds;
    ++calls;
  }
  std::printf("{\"seconds\": %.9g, \"calls\": %d, \"kv_copies\": %d, \"version\": \"%s\", \"computed\": \"%s\"}\n", best,
              calls, copies, json_escape(ggml_version()).c_str(), json_escape(computed).c_str());
  ggml_backend_buffer_free(buffer);
  ggml_free(context);
  ggml_backend_free(backend);
  return 0;
}

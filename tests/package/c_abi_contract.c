/* The C ABI's own contract, checked from C (so the header is also compiled as C here):
 * status codes and messages for what only C can get wrong (NULL, dtype, enum values,
 * struct_size), old and new callers' struct sizes, scale 0 (default and explicit), the version
 * macros, the per-thread last error that
 * survives later successes, and outputs left untouched by a rejected call.
 * Prints one line per failed check and exits 1 if there is any. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "simdattn/simdattn.h"

static int failures = 0;

/* Records a failed check with its line and description. */
#define CHECK(condition, ...)                                        \
  do {                                                               \
    if (!(condition)) {                                              \
      ++failures;                                                    \
      printf("c_abi_contract.c:%d: check failed: %s: ", __LINE__, #condition); \
      printf(__VA_ARGS__);                                           \
      printf("\n");                                                  \
    }                                                                \
  } while (0)

enum { SQ = 3, SK = 5, DIM = 4 }; /* DIM 4: the default scale 1/sqrt(4) = 0.5 is exact */

static float q[SQ * DIM], k[SK * DIM], v[SK * DIM], out[SQ * DIM];

/* A contiguous [1, 1, seq, dim] float tensor over `data`. */
static simdattn_tensor tensor(float *data, int64_t seq, int64_t dim) {
  const simdattn_tensor t = {data, SIMDATTN_F32, {1, 1, seq, dim}, {seq * dim, seq * dim, dim, 1}};
  return t;
}

/* Runs attention of the fixed q, k, v with `options` into `result` and returns the status. */
static simdattn_status run(const simdattn_options *options, float *result) {
  const simdattn_tensor tq = tensor(q, SQ, DIM), tk = tensor(k, SK, DIM), tv = tensor(v, SK, DIM);
  const simdattn_tensor tout = tensor(result, SQ, DIM);
  return simdattn_attention(&tq, &tk, &tv, &tout, options);
}

/* Whether the last error message contains `text`. */
static int last_error_mentions(const char *text) { return strstr(simdattn_last_error(), text) != NULL; }

static void check_identity(void) {
  const char *isa = simdattn_active_isa();
  CHECK(strcmp(isa, "sse2") == 0 || strcmp(isa, "avx2") == 0 || strcmp(isa, "avx512") == 0 ||
            strcmp(isa, "amx") == 0 ||
            strcmp(isa, "neon") == 0,
        "active isa '%s'", isa);
  int major, minor, patch;
  CHECK(sscanf(simdattn_version(), "%d.%d.%d", &major, &minor, &patch) == 3, "version '%s'",
        simdattn_version());
  /* The header's macros, usable in #if, are the loaded library's version. */
#if SIMDATTN_VERSION != SIMDATTN_VERSION_MAJOR * 10000 + SIMDATTN_VERSION_MINOR * 100 + SIMDATTN_VERSION_PATCH
#error "SIMDATTN_VERSION must be MAJOR * 10000 + MINOR * 100 + PATCH"
#endif
  CHECK(major == SIMDATTN_VERSION_MAJOR && minor == SIMDATTN_VERSION_MINOR && patch == SIMDATTN_VERSION_PATCH,
        "simdattn_version() '%s' differs from the header's %d.%d.%d", simdattn_version(),
        SIMDATTN_VERSION_MAJOR, SIMDATTN_VERSION_MINOR, SIMDATTN_VERSION_PATCH);
  CHECK(simdattn_last_error() != NULL && simdattn_last_error()[0] == '\0',
        "before any failure the last error is '', got '%s'", simdattn_last_error());
}

static void check_options_init(void) {
  simdattn_options options;
  memset(&options, 0x5a, sizeof options);
  simdattn_options_init(&options);
  CHECK(options.struct_size == sizeof(simdattn_options), "struct_size %zu", options.struct_size);
  CHECK(options.scale == 0.0f && options.causal == SIMDATTN_CAUSAL_NONE && options.window_left == -1 &&
            options.window_right == -1 && options.mask == NULL && options.kv_lengths == NULL &&
            options.softcap == 0.0f && options.alibi_slopes == NULL && options.weights == NULL &&
            options.lse == NULL && options.num_threads == 0 && options.algorithm == SIMDATTN_ALGO_AUTO &&
            options.scale_is_explicit == 0,
        "defaults");
  simdattn_options_init_sized(NULL, sizeof(simdattn_options)); /* must simply return */
  (simdattn_options_init)(NULL);
}

/* A program built against the first header: its struct ends with `algorithm`, and it calls the
 * simdattn_options_init symbol, which must write nothing past that struct; calls with it work. */
struct first_layout {
  size_t struct_size;
  float scale;
  int32_t causal;
  int64_t window_left, window_right;
  const simdattn_tensor *mask;
  const int64_t *kv_lengths;
  float softcap;
  const float *alibi_slopes;
  const simdattn_tensor *weights, *lse;
  int32_t num_threads, algorithm;
};
static void check_first_layout_callers(void) {
  struct {
    struct first_layout options;
    unsigned char guard[64];
  } old;
  float with_old[SQ * DIM], with_new[SQ * DIM];
  memset(&old, 0xab, sizeof old);
  (simdattn_options_init)((simdattn_options *)&old.options);
  CHECK(old.options.struct_size == offsetof(struct first_layout, algorithm) + sizeof(int32_t),
        "first-layout struct_size %zu", old.options.struct_size);
  for (size_t i = offsetof(struct first_layout, algorithm) + sizeof(int32_t); i < sizeof old; ++i) {
    CHECK(((const unsigned char *)&old)[i] == 0xab, "byte %zu past the first layout was written", i);
  }
  old.options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  CHECK(run((const simdattn_options *)&old.options, with_old) == SIMDATTN_OK, "first layout: %s",
        simdattn_last_error());
  simdattn_options options;
  simdattn_options_init(&options);
  options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  CHECK(run(&options, with_new) == SIMDATTN_OK, "current layout: %s", simdattn_last_error());
  CHECK(memcmp(with_old, with_new, sizeof with_new) == 0, "first-layout caller got other results");
  /* A sized init smaller than the struct writes that many bytes only. */
  memset(&options, 0xab, sizeof options);
  simdattn_options_init_sized(&options, offsetof(simdattn_options, softcap));
  CHECK(options.struct_size == offsetof(simdattn_options, softcap) && options.window_right == -1 &&
            ((const unsigned char *)&options)[offsetof(simdattn_options, softcap)] == 0xab,
        "sized init");
}

/* scale 0 and NULL options both mean 1/sqrt(head_dim); every call gives the same bits. */
static void check_defaults(void) {
  float with_null[SQ * DIM], with_zero[SQ * DIM], with_half[SQ * DIM];
  simdattn_options options;
  simdattn_options_init(&options);
  CHECK(run(NULL, with_null) == SIMDATTN_OK, "NULL options: %s", simdattn_last_error());
  CHECK(run(&options, with_zero) == SIMDATTN_OK, "scale 0: %s", simdattn_last_error());
  options.scale = 0.5f;
  CHECK(run(&options, with_half) == SIMDATTN_OK, "scale 0.5: %s", simdattn_last_error());
  CHECK(memcmp(with_null, with_half, sizeof with_half) == 0, "NULL options differ from scale 1/sqrt(4)");
  CHECK(memcmp(with_zero, with_half, sizeof with_half) == 0, "scale 0 differs from scale 1/sqrt(4)");
  options.scale = 2.0f;
  CHECK(run(&options, with_zero) == SIMDATTN_OK && memcmp(with_zero, with_half, sizeof with_half) != 0,
        "a different scale must change the result");
}

/* scale_is_explicit: scale 0 as given makes every key weigh 1/SK, so out is the mean of v's rows;
 * another scale as given is that scale; unset, 0 still means 1/sqrt(head_dim). An older caller's
 * struct that ends before the field keeps the old meaning whatever lies past it. */
static void check_explicit_scale(void) {
  float zero_scale[SQ * DIM], with_half[SQ * DIM], explicit_half[SQ * DIM], old_zero[SQ * DIM];
  simdattn_options options;
  simdattn_options_init(&options);
  options.scale = 0.5f;
  CHECK(run(&options, with_half) == SIMDATTN_OK, "scale 0.5: %s", simdattn_last_error());
  options.scale_is_explicit = 1;
  CHECK(run(&options, explicit_half) == SIMDATTN_OK && memcmp(with_half, explicit_half, sizeof with_half) == 0,
        "an explicit scale 0.5 must equal scale 0.5: %s", simdattn_last_error());
  options.scale = 0.0f;
  CHECK(run(&options, zero_scale) == SIMDATTN_OK, "explicit scale 0: %s", simdattn_last_error());
  for (int i = 0; i < SQ; ++i) {
    for (int d = 0; d < DIM; ++d) {
      double mean = 0.0;
      for (int j = 0; j < SK; ++j) mean += v[j * DIM + d] / (double)SK;
      CHECK(fabs(zero_scale[i * DIM + d] - mean) < 1e-6, "explicit scale 0: out[%d][%d] = %.7f, expected the mean %.7f",
            i, d, zero_scale[i * DIM + d], mean);
    }
  }
  options.scale = NAN;
  {
    float untouched[SQ * DIM];
    memcpy(untouched, zero_scale, sizeof untouched);
    CHECK(run(&options, zero_scale) == SIMDATTN_ERR_INVALID_ARGUMENT && last_error_mentions("scale") &&
              memcmp(untouched, zero_scale, sizeof untouched) == 0,
          "an explicit NaN scale must be rejected with nothing written: '%s'", simdattn_last_error());
  }
  simdattn_options old;
  memset(&old, 0, sizeof old);
  simdattn_options_init(&old);
  old.struct_size = offsetof(simdattn_options, scale_is_explicit); /* a caller from before the field */
  old.scale = 0.0f;
  old.scale_is_explicit = 0x5a5a5a5a; /* past its struct: must not be read */
  CHECK(run(&old, old_zero) == SIMDATTN_OK && memcmp(old_zero, with_half, sizeof old_zero) == 0,
        "an older caller's scale 0 must mean 1/sqrt(4): %s", simdattn_last_error());
}

/* A rejected call returns `expected`, names `mentions` in its message and writes nothing. */
static void check_rejected(const char *what, simdattn_status status, simdattn_status expected,
                           const char *mentions, const float *before) {
  CHECK(status == expected, "%s: status %d, expected %d (%s)", what, (int)status, (int)expected,
        simdattn_last_error());
  CHECK(last_error_mentions(mentions), "%s: message '%s' lacks '%s'", what, simdattn_last_error(), mentions);
  CHECK(memcmp(before, out, sizeof out) == 0, "%s: the output was written", what);
}

static void check_c_specific_errors(void) {
  float before[SQ * DIM];
  for (int i = 0; i < SQ * DIM; ++i) out[i] = before[i] = -12345.0f;
  const simdattn_tensor tq = tensor(q, SQ, DIM), tk = tensor(k, SK, DIM), tv = tensor(v, SK, DIM);
  const simdattn_tensor tout = tensor(out, SQ, DIM);
  simdattn_options options;
  simdattn_options_init(&options);

  check_rejected("NULL q", simdattn_attention(NULL, &tk, &tv, &tout, &options),
                 SIMDATTN_ERR_INVALID_ARGUMENT, "q must not be NULL", before);
  check_rejected("NULL out", simdattn_attention(&tq, &tk, &tv, NULL, &options),
                 SIMDATTN_ERR_INVALID_ARGUMENT, "out must not be NULL", before);
  simdattn_tensor wrong_dtype = tv;
  wrong_dtype.dtype = 7;
  check_rejected("dtype 7", simdattn_attention(&tq, &tk, &wrong_dtype, &tout, &options),
                 SIMDATTN_ERR_INVALID_ARGUMENT,
                 "v->dtype must be SIMDATTN_F32 (0), SIMDATTN_BF16 (1), SIMDATTN_F16 (2) or "
                 "SIMDATTN_I8 (3), got 7", before);
  wrong_dtype.dtype = SIMDATTN_BF16;
  check_rejected("v bf16 under k f32", simdattn_attention(&tq, &tk, &wrong_dtype, &tout, &options),
                 SIMDATTN_ERR_INVALID_ARGUMENT, "v.dtype must equal k.dtype = f32", before);

  options.causal = 3;
  check_rejected("causal 3", run(&options, out), SIMDATTN_ERR_INVALID_ARGUMENT, "options->causal", before);
  options.causal = SIMDATTN_CAUSAL_NONE;
  options.algorithm = -1;
  check_rejected("algorithm -1", run(&options, out), SIMDATTN_ERR_INVALID_ARGUMENT, "options->algorithm",
                 before);
  options.algorithm = SIMDATTN_ALGO_AUTO;

  simdattn_tensor wrong_weights = tensor(before, SQ, SK);
  wrong_weights.dtype = 9;
  options.weights = &wrong_weights;
  check_rejected("weights dtype 9", run(&options, out), SIMDATTN_ERR_INVALID_ARGUMENT,
                 "options->weights->dtype", before);
  options.weights = NULL;

  options.struct_size = 0;
  check_rejected("struct_size 0", run(&options, out), SIMDATTN_ERR_INVALID_ARGUMENT,
                 "options->struct_size must be at least", before);
  options.struct_size = offsetof(simdattn_options, scale) + 2; /* cuts through scale */
  check_rejected("struct_size inside scale", run(&options, out), SIMDATTN_ERR_INVALID_ARGUMENT,
                 "options->struct_size", before);

  /* Errors the C++ layer finds come through with its message. */
  simdattn_tensor wrong_k = tk;
  wrong_k.shape[3] = 3;
  check_rejected("head_dim mismatch", simdattn_attention(&tq, &wrong_k, &tv, &tout, NULL),
                 SIMDATTN_ERR_INVALID_ARGUMENT, "k.shape[3]", before);
  check_rejected("qk_scores NULL k", simdattn_qk_scores(&tq, NULL, &tout, 1.0f, 0),
                 SIMDATTN_ERR_INVALID_ARGUMENT, "k must not be NULL", before);
  check_rejected("softmax_rows NULL", simdattn_softmax_rows(NULL, 0), SIMDATTN_ERR_INVALID_ARGUMENT,
                 "scores must not be NULL", before);
  static float softmax_weights[SQ * SK];
  const simdattn_tensor tw = tensor(softmax_weights, SQ, SK);
  check_rejected("weights_v negative threads", simdattn_weights_v(&tw, &tv, &tout, -1),
                 SIMDATTN_ERR_INVALID_ARGUMENT, "num_threads", before);
}

/* An older caller's struct ends early: the library must read only its fields, whatever lies
 * after them (here bytes that would be absurd or fatal as pointers, windows or thread counts). */
static void check_older_caller(void) {
  float expected[SQ * DIM], got[SQ * DIM];
  simdattn_options current;
  simdattn_options_init(&current);
  current.scale = 0.75f;
  current.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  CHECK(run(&current, expected) == SIMDATTN_OK, "%s", simdattn_last_error());

  simdattn_options old;
  memset(&old, 0x7f, sizeof old); /* garbage past the old caller's struct */
  old.struct_size = offsetof(simdattn_options, causal) + sizeof(int32_t);
  old.scale = 0.75f;
  old.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  CHECK(run(&old, got) == SIMDATTN_OK, "older struct_size %zu: %s", old.struct_size, simdattn_last_error());
  CHECK(memcmp(expected, got, sizeof got) == 0, "an older caller's fields were not honoured as such");

  old.struct_size = offsetof(simdattn_options, scale) + sizeof(float); /* scale only */
  simdattn_options_init(&current);
  current.scale = 0.75f;
  CHECK(run(&current, expected) == SIMDATTN_OK && run(&old, got) == SIMDATTN_OK &&
            memcmp(expected, got, sizeof got) == 0,
        "struct_size holding only scale: %s", simdattn_last_error());
}

/* A newer caller's struct is longer: accepted when the unknown tail is zero, refused otherwise. */
static void check_newer_caller(void) {
  struct newer_options {
    simdattn_options known;
    uint64_t future_field;
  } newer;
  float expected[SQ * DIM], got[SQ * DIM];
  memset(&newer, 0, sizeof newer);
  simdattn_options_init(&newer.known);
  newer.known.struct_size = sizeof newer;
  CHECK(run(NULL, expected) == SIMDATTN_OK, "%s", simdattn_last_error());
  CHECK(run(&newer.known, got) == SIMDATTN_OK && memcmp(expected, got, sizeof got) == 0,
        "a longer struct with a zero tail: %s", simdattn_last_error());
  newer.future_field = 1;
  CHECK(run(&newer.known, got) == SIMDATTN_ERR_UNSUPPORTED, "a set unknown field must be UNSUPPORTED");
  CHECK(last_error_mentions("does not know"), "message '%s'", simdattn_last_error());
}

/* The optional outputs through C: softmax rows sum to 1, lse has shape [B, Hq, Sq, 1]. */
static void check_optional_outputs(void) {
  float weights[SQ * SK], lse[SQ], result[SQ * DIM];
  const simdattn_tensor tw = tensor(weights, SQ, SK), tl = tensor(lse, SQ, 1);
  simdattn_options options;
  simdattn_options_init(&options);
  options.weights = &tw;
  options.lse = &tl;
  options.algorithm = SIMDATTN_ALGO_COMPOSED;
  CHECK(run(&options, result) == SIMDATTN_OK, "%s", simdattn_last_error());
  for (int i = 0; i < SQ; ++i) {
    double sum = 0.0, lse_expected = 0.0;
    for (int j = 0; j < SK; ++j) {
      double dot = 0.0;
      for (int d = 0; d < DIM; ++d) dot += (double)q[i * DIM + d] * k[j * DIM + d];
      lse_expected += exp(0.5 * dot);
      sum += weights[i * SK + j];
    }
    lse_expected = log(lse_expected);
    CHECK(fabs(sum - 1.0) < 1e-5, "row %d of the weights sums to %.7f", i, sum);
    CHECK(fabs(lse[i] - lse_expected) < 1e-5, "lse[%d] = %.7f, expected %.7f", i, lse[i], lse_expected);
  }
}

/* The sink fields, appended last: a sink logit adds exp(sink) to every row's denominator (and to
 * lse); a caller whose struct ends before them gets neither, whatever lies past its struct; a NaN
 * sink is rejected, naming it, with nothing written. */
static void check_sinks(void) {
  float lse[SQ], result[SQ * DIM], plain[SQ * DIM], old_result[SQ * DIM];
  const float sinks[1] = {0.75f};
  const simdattn_tensor tl = tensor(lse, SQ, 1);
  simdattn_options options;
  simdattn_options_init(&options);
  CHECK(options.sinks == NULL && options.sink_tokens == 0, "sink defaults");
  CHECK(run(&options, plain) == SIMDATTN_OK, "%s", simdattn_last_error());
  options.sinks = sinks;
  options.lse = &tl;
  CHECK(run(&options, result) == SIMDATTN_OK, "%s", simdattn_last_error());
  for (int i = 0; i < SQ; ++i) {
    double total = exp(0.75), plain_total = 0.0;
    for (int j = 0; j < SK; ++j) {
      double dot = 0.0;
      for (int d = 0; d < DIM; ++d) dot += (double)q[i * DIM + d] * k[j * DIM + d];
      total += exp(0.5 * dot);
      plain_total += exp(0.5 * dot);
    }
    CHECK(fabs(lse[i] - log(total)) < 1e-5, "lse[%d] = %.7f, expected %.7f", i, lse[i], log(total));
    /* The sink only rescales the row: out = plain out * (plain total / total). */
    for (int d = 0; d < DIM; ++d) {
      const double expected = plain[i * DIM + d] * plain_total / total;
      CHECK(fabs(result[i * DIM + d] - expected) < 1e-5, "out[%d][%d] = %.7f, expected %.7f", i, d,
            result[i * DIM + d], expected);
    }
  }

  simdattn_options old;
  memset(&old, 0x7f, sizeof old); /* garbage where the sink fields would be */
  simdattn_options_init_sized(&old, offsetof(simdattn_options, sinks));
  CHECK(old.struct_size == offsetof(simdattn_options, sinks), "sized init before the sinks");
  CHECK(run(&old, old_result) == SIMDATTN_OK && memcmp(old_result, plain, sizeof plain) == 0,
        "an older caller's struct must mean no sinks: %s", simdattn_last_error());

  const float bad[1] = {NAN};
  options.sinks = bad;
  memcpy(old_result, result, sizeof result);
  CHECK(run(&options, result) == SIMDATTN_ERR_INVALID_ARGUMENT && last_error_mentions("options.sinks[0]") &&
            memcmp(old_result, result, sizeof result) == 0,
        "a NaN sink must be rejected with nothing written: '%s'", simdattn_last_error());
}

/* The message a worker thread leaves must not replace the main thread's. */
static void *fail_on_another_thread(void *unused) {
  (void)unused;
  simdattn_softmax_rows(NULL, 0);
  return (void *)(intptr_t)last_error_mentions("scores must not be NULL");
}

static void check_last_error_lifetime(void) {
  const simdattn_tensor tq = tensor(q, SQ, DIM);
  simdattn_qk_scores(NULL, &tq, &tq, 1.0f, 0); /* fails: q is NULL */
  char message[512];
  snprintf(message, sizeof message, "%s", simdattn_last_error());
  CHECK(strstr(message, "q must not be NULL") != NULL, "message '%s'", message);

  float result[SQ * DIM];
  CHECK(run(NULL, result) == SIMDATTN_OK, "%s", simdattn_last_error());
  CHECK(strcmp(message, simdattn_last_error()) == 0,
        "a success must keep the last failure's message, got '%s'", simdattn_last_error());

  pthread_t worker;
  void *worker_saw_its_own = NULL;
  CHECK(pthread_create(&worker, NULL, fail_on_another_thread, NULL) == 0, "pthread_create");
  pthread_join(worker, &worker_saw_its_own);
  CHECK(worker_saw_its_own != NULL, "the worker thread did not see its own message");
  CHECK(strcmp(message, simdattn_last_error()) == 0,
        "another thread's failure replaced this thread's message: '%s'", simdattn_last_error());
}

int main(void) {
  for (int i = 0; i < SQ * DIM; ++i) q[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
  for (int i = 0; i < SK * DIM; ++i) k[i] = (float)((i * 5) % 13) / 6.0f - 1.0f;
  for (int i = 0; i < SK * DIM; ++i) v[i] = (float)((i * 3) % 7) / 3.0f - 1.0f;
  check_identity();
  check_options_init();
  check_defaults();
  check_first_layout_callers();
  check_c_specific_errors();
  check_explicit_scale();
  check_older_caller();
  check_newer_caller();
  check_optional_outputs();
  check_sinks();
  check_last_error_lifetime();
  printf("%s: %d failed check(s)\n", failures ? "FAILED" : "c_abi_contract ok", failures);
  return failures ? 1 : 0;
}

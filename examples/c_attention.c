/* c_attention: attention on a small input through the C ABI (simdattn.h), with error handling.
 *
 * Computes causal attention for 2 heads, 3 queries and 4 keys (head_dim 4) with the per-row
 * log-sum-exp as a second output, checks it against a plain-C computation, then makes one
 * deliberate mistake (a key head_dim that differs from the query's) to show the error path: a
 * status, a message from simdattn_last_error(), and an output left untouched.
 * Exit status: 0 when every check passes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "simdattn/simdattn.h"

enum { BATCH = 1, HEADS = 2, SQ = 3, SK = 4, DIM = 4 };

/* A contiguous [batch, heads, seq, dim] float tensor over `data` (BHSD layout). */
static simdattn_tensor bhsd_tensor(float *data, int64_t batch, int64_t heads, int64_t seq, int64_t dim) {
  const simdattn_tensor t = {data, SIMDATTN_F32, {batch, heads, seq, dim},
                             {heads * seq * dim, seq * dim, dim, 1}};
  return t;
}

/* Plain-C causal attention (bottom-right aligned) of one head: out [SQ, DIM], lse [SQ]. */
static void plain_attention(const float *q, const float *k, const float *v, float *out, float *lse) {
  const double scale = 1.0 / sqrt((double)DIM);
  for (int i = 0; i < SQ; ++i) {
    const int last_key = i + (SK - SQ); /* query i sees keys 0 ..= i + (Sk - Sq) */
    double logits[SK], max = -INFINITY, sum = 0.0;
    for (int j = 0; j <= last_key; ++j) {
      double dot = 0.0;
      for (int d = 0; d < DIM; ++d) dot += (double)q[i * DIM + d] * k[j * DIM + d];
      logits[j] = scale * dot;
      if (logits[j] > max) max = logits[j];
    }
    for (int j = 0; j <= last_key; ++j) sum += exp(logits[j] - max);
    for (int d = 0; d < DIM; ++d) {
      double acc = 0.0;
      for (int j = 0; j <= last_key; ++j) acc += exp(logits[j] - max) / sum * v[j * DIM + d];
      out[i * DIM + d] = (float)acc;
    }
    lse[i] = (float)(max + log(sum));
  }
}

/* Prints the tensor's rows, one line per (head, query). */
static void print_rows(const char *title, const float *data, int heads, int rows, int cols) {
  printf("%s\n", title);
  for (int h = 0; h < heads; ++h) {
    for (int r = 0; r < rows; ++r) {
      printf("  head %d, row %d: [", h, r);
      for (int c = 0; c < cols; ++c) printf("%s%8.5f", c ? ", " : "", data[(h * rows + r) * cols + c]);
      printf("]\n");
    }
  }
}

int main(void) {
  printf("simdattn %s, kernels for %s\n", simdattn_version(), simdattn_active_isa());

  float q[BATCH * HEADS * SQ * DIM], k[BATCH * HEADS * SK * DIM], v[BATCH * HEADS * SK * DIM];
  for (int i = 0; i < BATCH * HEADS * SQ * DIM; ++i) q[i] = (float)((i * 7) % 11) / 10.0f - 0.5f;
  for (int i = 0; i < BATCH * HEADS * SK * DIM; ++i) k[i] = (float)((i * 5) % 13) / 10.0f - 0.6f;
  for (int i = 0; i < BATCH * HEADS * SK * DIM; ++i) v[i] = (float)((i * 3) % 7) / 5.0f - 0.4f;
  float out[BATCH * HEADS * SQ * DIM], lse[BATCH * HEADS * SQ];

  const simdattn_tensor tq = bhsd_tensor(q, BATCH, HEADS, SQ, DIM);
  const simdattn_tensor tk = bhsd_tensor(k, BATCH, HEADS, SK, DIM);
  const simdattn_tensor tv = bhsd_tensor(v, BATCH, HEADS, SK, DIM);
  const simdattn_tensor tout = bhsd_tensor(out, BATCH, HEADS, SQ, DIM);
  const simdattn_tensor tlse = bhsd_tensor(lse, BATCH, HEADS, SQ, 1);

  simdattn_options options;
  simdattn_options_init(&options); /* always init: sets struct_size and the defaults */
  options.causal = SIMDATTN_CAUSAL_BOTTOM_RIGHT;
  options.lse = &tlse;

  simdattn_status status = simdattn_attention(&tq, &tk, &tv, &tout, &options);
  if (status != SIMDATTN_OK) {
    fprintf(stderr, "simdattn_attention failed (status %d): %s\n", (int)status, simdattn_last_error());
    return 1;
  }
  print_rows("causal attention output:", out, HEADS, SQ, DIM);
  print_rows("log-sum-exp per row:", lse, HEADS, SQ, 1);

  /* Float kernels against a double computation of 4 keys: agreement to ~1e-6 is expected. */
  double worst = 0.0;
  for (int h = 0; h < HEADS; ++h) {
    float expected_out[SQ * DIM], expected_lse[SQ];
    plain_attention(q + h * SQ * DIM, k + h * SK * DIM, v + h * SK * DIM, expected_out, expected_lse);
    for (int i = 0; i < SQ * DIM; ++i) worst = fmax(worst, fabs(expected_out[i] - out[h * SQ * DIM + i]));
    for (int i = 0; i < SQ; ++i) worst = fmax(worst, fabs(expected_lse[i] - lse[h * SQ + i]));
  }
  printf("max |simdattn - plain C| = %.1e\n", worst);
  if (!(worst <= 1e-5)) {
    fprintf(stderr, "FAILED: results differ from the plain C computation\n");
    return 1;
  }

  /* A deliberate mistake: keys with head_dim 3 against queries with head_dim 4. */
  printf("\ndeliberate error: k viewed with head_dim 3 instead of 4\n");
  simdattn_tensor wrong_k = tk;
  wrong_k.shape[3] = 3;
  float before[sizeof out / sizeof out[0]];
  memcpy(before, out, sizeof out);
  status = simdattn_attention(&tq, &wrong_k, &tv, &tout, &options);
  printf("status %d (SIMDATTN_ERR_INVALID_ARGUMENT is %d)\nsimdattn_last_error(): %s\n", (int)status,
         (int)SIMDATTN_ERR_INVALID_ARGUMENT, simdattn_last_error());
  if (status != SIMDATTN_ERR_INVALID_ARGUMENT || simdattn_last_error()[0] == '\0') {
    fprintf(stderr, "FAILED: the mistake was not reported as an invalid argument with a message\n");
    return 1;
  }
  if (memcmp(before, out, sizeof out) != 0) {
    fprintf(stderr, "FAILED: a rejected call wrote to its output\n");
    return 1;
  }
  printf("output untouched by the rejected call\n");
  return 0;
}

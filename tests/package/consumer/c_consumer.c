/* Consumer check from C: seed 001's single query through simdattn_attention, plus one rejected
 * call. Built by the CMake consumer project and, alone, through pkg-config. Prints
 * "c_consumer ok" and exits 0 when both behave as documented. */
#include <math.h>
#include <stdio.h>

#include <simdattn/simdattn.h>

int main(void) {
  float q[2] = {0.5f, 0.5f}, k[4] = {0.1f, 0.2f, 0.2f, 0.3f}, v[4] = {0.6f, 0.8f, 0.7f, 0.9f};
  float out[2] = {0.0f, 0.0f};
  const simdattn_tensor tq = {q, SIMDATTN_F32, {1, 1, 1, 2}, {2, 2, 2, 1}};
  const simdattn_tensor tk = {k, SIMDATTN_F32, {1, 1, 2, 2}, {4, 4, 2, 1}};
  const simdattn_tensor tv = {v, SIMDATTN_F32, {1, 1, 2, 2}, {4, 4, 2, 1}};
  const simdattn_tensor tout = {out, SIMDATTN_F32, {1, 1, 1, 2}, {2, 2, 2, 1}};
  simdattn_options options;
  simdattn_options_init(&options);
  options.scale = 1.0f;

  simdattn_status status = simdattn_attention(&tq, &tk, &tv, &tout, &options);
  if (status != SIMDATTN_OK) {
    printf("c_consumer: unexpected status %d: %s\n", (int)status, simdattn_last_error());
    return 1;
  }
  printf("simdattn %s (%s): [%.4f, %.4f]\n", simdattn_version(), simdattn_active_isa(), out[0], out[1]);
  const int values_ok = fabs(out[0] - 0.6524979187478941) < 1e-6 && fabs(out[1] - 0.852497918747894) < 1e-6;

  simdattn_tensor wrong = tk;
  wrong.dtype = 7; /* no such dtype: must be refused with a message */
  status = simdattn_attention(&tq, &wrong, &tv, &tout, &options);
  printf("unknown dtype: status %d, %s\n", (int)status, simdattn_last_error());
  const int error_ok = status == SIMDATTN_ERR_INVALID_ARGUMENT && simdattn_last_error()[0] != '\0';

  printf("c_consumer %s\n", values_ok && error_ok ? "ok" : "MISMATCH");
  return values_ok && error_ok ? 0 : 1;
}

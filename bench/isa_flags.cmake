# Compiler flags for the bench's per-ISA translation units, the same sets as the library's
# (src/CMakeLists.txt): each unit gets only its own, and the choice among them is made at run time.
set(SIMDATTN_BENCH_FLAGS_sse2 "")
set(SIMDATTN_BENCH_FLAGS_avx2 -mavx2 -mfma)
set(SIMDATTN_BENCH_FLAGS_avx512 -mavx512f -mavx512cd -mavx512dq -mavx512bw -mfma)

// The roofs of this machine measured in this run: every fraction the benchmarks report divides
// by one of these, so a figure and its roof always come from the same process.
#pragma once

namespace simdattn::bench {

// GFLOP/s of the FMA loop on `threads` threads: the value machine/fma_peak recorded for that
// thread count, else measured now (about 0.1 s) and kept for the rest of the run.
double fma_peak_gflops(int threads);

// Called by machine/fma_peak with its fastest call; the best value of the run is kept, since a
// measurement of a peak can only come out low (another process, a frequency change), never high.
void record_fma_peak(int threads, double gflops);

// Bytes per second of streaming reads on all threads: the value machine/read_bandwidth recorded,
// else measured now (a few seconds: allocating and touching a GiB or more) and kept.
double read_bandwidth_bytes_per_second();

// Called by machine/read_bandwidth with its fastest pass; the best value of the run is kept.
void record_read_bandwidth(double bytes_per_second);

// The threads a call with num_threads = 0 gets: OpenMP's default, which OMP_NUM_THREADS sets.
int default_threads();

}  // namespace simdattn::bench

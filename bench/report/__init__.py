"""Helpers of bench/compare: run simdattn_bench and the peers, then write the report.

One module per job: shapes (the work each standard shape represents), machine (what the report
says about the host), bench_run (selecting and running the benchmarks), peers (running the peers
of bench/peers/ on the same shapes, after checking them against the reference), results (the
figures grouped for the report), markdown (performance.md), plots (the PNGs, with matplotlib)."""

"""Helpers of bench/compare: run simdattn_bench (and the PyTorch peer), then write the report.

One module per job: shapes (the work each standard shape represents), machine (what the report
says about the host), bench_run (selecting and running the benchmarks), torch_peer (PyTorch's
scaled_dot_product_attention on the same shapes), results (the figures grouped for the report),
markdown (performance.md), plots (the PNGs, with matplotlib)."""

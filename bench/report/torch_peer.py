"""The PyTorch peer: torch.nn.functional.scaled_dot_product_attention, fp32, on the standard shapes.

The common method for PyTorch figures (inputs from torch.randn with seed 0, one warm-up
call, then the best of a few timed calls, causal counted as half the dense work), but run for the
shapes and thread counts of this report and answering in JSON lines.

Two halves: the functions the report calls (find_torch_python, measure), and, when this file runs
as a script under an interpreter that has torch, the measuring itself. The script half imports
nothing from this package, since that interpreter may not be the one running bench/compare."""
import json
import os
import shutil
import subprocess
import sys
import time


def interpreter_candidates():
    """Interpreters that may have torch: this one, python3 on PATH, Debian's."""
    found = []
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and os.path.exists(candidate) and candidate not in found:
            found.append(candidate)
    return found


def find_torch_python():
    """(interpreter, torch version) of the first candidate that imports torch, or (None, why not)."""
    for python in interpreter_candidates():
        try:
            done = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                                  capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and done.stdout.strip():
            return python, done.stdout.strip().splitlines()[-1]
    return None, "no python3 here imports torch (tried " + ", ".join(interpreter_candidates()) + ")"


def repetitions(shape, quick):
    """Timed calls per measurement: 3 for big score matrices and 10 otherwise;
    a quick run takes 1 and 3."""
    big = shape.seq_q * shape.seq_k > 1e8
    if quick:
        return 1 if big else 3
    return 3 if big else 10


def measure(python, jobs, progress):
    """Runs each job ({"shape": Shape, "threads": n, "reps": r}) under `python` in one process and
    returns ([{"shape", "threads", "seconds", "version"}], error): the results of the jobs that
    finished, and None or the child's error when it stopped early (say, out of memory on a big
    shape). progress(job_index, job) is called as each job starts."""
    spec = [{"name": job["shape"].name, "batch": job["shape"].batch, "q_heads": job["shape"].q_heads,
             "kv_heads": job["shape"].kv_heads, "seq_q": job["shape"].seq_q, "seq_k": job["shape"].seq_k,
             "head_dim": job["shape"].head_dim, "causal": job["shape"].causal,
             "threads": job["threads"], "reps": job["reps"]} for job in jobs]
    process = subprocess.Popen([python, os.path.abspath(__file__), json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    results = []
    if jobs:
        progress(0, jobs[0])
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        result = json.loads(line)
        results.append(result)
        if len(results) < len(jobs):
            progress(len(results), jobs[len(results)])
    error = process.stderr.read()
    if process.wait() != 0 or len(results) != len(jobs):
        lines = error.strip().splitlines()
        return results, (f"stopped after {len(results)} of {len(jobs)} measurements: "
                         f"{lines[-1] if lines else 'exit status ' + str(process.returncode)}")
    return results, None


def _run_jobs(spec):
    """The child: times each job of spec and prints one JSON line per job."""
    import torch  # only the child needs torch
    import torch.nn.functional as functional

    for job in spec:
        torch.set_num_threads(job["threads"])
        torch.manual_seed(0)
        q = torch.randn(job["batch"], job["q_heads"], job["seq_q"], job["head_dim"])
        k = torch.randn(job["batch"], job["kv_heads"], job["seq_k"], job["head_dim"])
        v = torch.randn(job["batch"], job["kv_heads"], job["seq_k"], job["head_dim"])
        # is_causal is top-left aligned in PyTorch; the standard causal shapes have Sq == Sk, where
        # it is the same mask as simdattn's bottom-right one.
        options = {"is_causal": job["causal"]}
        if job["q_heads"] != job["kv_heads"]:
            options["enable_gqa"] = True
        with torch.no_grad():
            functional.scaled_dot_product_attention(q, k, v, **options)
            best = float("inf")
            for _ in range(job["reps"]):
                start = time.perf_counter()
                functional.scaled_dot_product_attention(q, k, v, **options)
                best = min(best, time.perf_counter() - start)
        print(json.dumps({"shape": job["name"], "threads": job["threads"], "seconds": best,
                          "version": torch.__version__}), flush=True)


if __name__ == "__main__":
    _run_jobs(json.loads(sys.argv[1]))

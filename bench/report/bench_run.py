"""Choosing simdattn_bench's benchmarks for a report and running them in one process.

One process, so that every peak_fraction and bandwidth_fraction divides by roofs measured in the
same run. Progress comes from the console lines Google Benchmark prints as each benchmark ends,
while the figures themselves are read from the JSON file it writes (--benchmark_out)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

from .shapes import SHAPES_BY_NAME

ROOF_NAMES = ("machine/fma_peak", "machine/read_bandwidth")
# The 16-bit roofs, run once per round: the bf16 dot-product peak (AVX512_BF16's vdpbf16ps) and
# the AMX tile peak (TDPBF16PS); an error entry on a CPU without them. The 16-bit rows divide by
# the highest of these and the FMA peak (results.py), the others by the FMA peak alone.
EXTRA_ROOF_NAMES = ("machine/bf16_peak", "machine/amx_peak")
STAGE_NAMES = ("qk_scores", "softmax_rows", "weights_v")
# Google Benchmark takes the filter as a regular expression; names made only of these characters
# need no escaping in it.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_/:.-]+$")
SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}

# --quick: what it leaves out, and why (the report repeats these reasons).
QUICK_MIN_TIME = 0.05
QUICK_SKIPPED_SHAPES = {"long": "the largest shape: one call takes seconds (on 2 cores about 5 s for simd, 11 s "
                                 "for the Eigen peer)"}
QUICK_REFERENCE_NOTE = "the scalar reference runs on decode shapes only (on encoder it takes seconds per call)"
QUICK_SKIPPED_SERVING = {
    "serve_decode": "a serving shape of 1.6 GB (its keys packed, paged and copied per sequence), a minute to set up",
    "chunked_prefill": "a serving shape whose calls take most of a second each, three layouts",
}
# serving/<shape>/<layout> rows are named simd-<layout> in the report (simd-paged, simd-packed, ...).
SERVING_PREFIX = "simd-"


@dataclass(frozen=True)
class BenchName:
    """What a benchmark's name says: kind is roof, extra_roof, attention, scaling, stage, serving or
    other."""
    name: str
    kind: str
    shape: Optional[str] = None
    implementation: Optional[str] = None
    threads: Optional[int] = None


def parse_name(name):
    """Splits a simdattn_bench name (bench/README.md's table) into a BenchName."""
    if name in ROOF_NAMES:
        return BenchName(name, "roof", implementation=name.split("/")[1])
    if name in EXTRA_ROOF_NAMES:
        return BenchName(name, "extra_roof", implementation=name.split("/")[1])
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "attention" and parts[3].startswith("threads:"):
        return BenchName(name, "scaling", parts[1], parts[2], int(parts[3][len("threads:"):]))
    if len(parts) == 3 and parts[0] == "attention":
        return BenchName(name, "attention", parts[1], parts[2])
    if len(parts) == 2 and parts[0] in STAGE_NAMES:
        return BenchName(name, "stage", parts[1], parts[0])
    if len(parts) == 3 and parts[0] == "serving":
        return BenchName(name, "serving", parts[1], SERVING_PREFIX + parts[2])
    return BenchName(name, "other")


def list_benchmarks(bench):
    """Every benchmark name the binary registers, in the order it runs them."""
    done = subprocess.run([bench, "--benchmark_list_tests"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{bench} --benchmark_list_tests exited with {done.returncode}:\n{done.stderr}")
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def select_benchmarks(names, quick, shape_regex, threads):
    """The names to run, and (name, reason) for each one left out.

    shape_regex (re.search on the shape's name) filters the shape tables, the stages and the
    thread scaling alike; threads (a set, or None for all) filters the thread scaling only."""
    selected, left_out = [], []
    for name in names:
        parsed = parse_name(name)
        reason = None
        if parsed.kind == "other":
            reason = "not a kind of benchmark this report knows"
        elif parsed.kind not in ("roof", "extra_roof"):
            if shape_regex and not re.search(shape_regex, parsed.shape):
                reason = f"shape filter '{shape_regex}'"
            elif quick and parsed.shape in QUICK_SKIPPED_SHAPES:
                reason = "quick run: " + QUICK_SKIPPED_SHAPES[parsed.shape]
            elif quick and parsed.kind == "serving" and parsed.shape in QUICK_SKIPPED_SERVING:
                reason = "quick run: " + QUICK_SKIPPED_SERVING[parsed.shape]
            elif quick and parsed.implementation == "reference" and not _is_decode(parsed.shape):
                reason = "quick run: " + QUICK_REFERENCE_NOTE
            elif parsed.kind == "scaling" and threads is not None and parsed.threads not in threads:
                reason = "thread list " + ",".join(str(count) for count in sorted(threads))
        if reason:
            left_out.append((name, reason))
        else:
            selected.append(name)
    return selected, left_out


def _is_decode(shape_name):
    """Whether a standard shape is a decode step; an unknown shape is not."""
    shape = SHAPES_BY_NAME.get(shape_name)
    return shape is not None and shape.is_decode()


def filter_regex(names):
    """A --benchmark_filter that matches exactly these names."""
    for name in names:
        if not PLAIN_NAME.match(name):
            raise ValueError(f"benchmark name needs escaping in a filter: {name!r}")
    return "^(" + "|".join(names) + ")$"


def _say(message):
    """Progress goes to stderr, unbuffered."""
    print(message, file=sys.stderr, flush=True)


def run_benchmarks(bench, names, min_time):
    """Runs `names` in one simdattn_bench process and returns its JSON (context + benchmarks),
    saying on stderr which benchmark runs now and how many are left."""
    total = len(names)
    with tempfile.TemporaryDirectory(prefix="simdattn-compare-") as scratch:
        out_path = os.path.join(scratch, "bench.json")
        err_path = os.path.join(scratch, "bench.stderr")
        command = [bench, "--benchmark_filter=" + filter_regex(names), "--benchmark_color=false",
                   "--benchmark_out=" + out_path, "--benchmark_out_format=json"]
        if min_time is not None:
            command.append(f"--benchmark_min_time={min_time:g}")
        _say(f"simdattn_bench: {len(names)} benchmarks, min_time {min_time if min_time is not None else 'default'} s")
        start = time.monotonic()
        pending = list(names)
        with open(err_path, "w", encoding="utf-8") as err:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
            _announce(pending, 0, total)
            for line in process.stdout:
                words = line.split()
                if words and words[0] in pending:
                    pending.remove(words[0])
                    done = total - len(pending)
                    _say(f"[{done}/{total}] done {words[0]}: {' '.join(words[1:3])} "
                         f"({time.monotonic() - start:.0f} s elapsed)")
                    _announce(pending, done, total)
            status = process.wait()
        if status != 0:
            with open(err_path, encoding="utf-8", errors="replace") as err:
                tail = err.read()[-4000:]
            raise RuntimeError(f"simdattn_bench exited with status {status}:\n{tail}")
        with open(out_path, encoding="utf-8") as out:
            return json.load(out)


def _announce(pending, done, total):
    """Says which benchmark runs next and how many are left (the bench runs them in list order)."""
    if pending:
        _say(f"[{done}/{total}] running {pending[0]} ({total - done} left)")


def seconds_per_iteration(entry):
    """A JSON benchmark entry's wall time per iteration, in seconds."""
    return entry["real_time"] * SECONDS_PER_UNIT[entry.get("time_unit", "ns")]


def iteration_entries(bench_json):
    """The per-run entries (no aggregates) keyed by name; with repetitions, the last one."""
    entries = {}
    for entry in bench_json.get("benchmarks", []):
        if entry.get("run_type", "iteration") == "iteration":
            entries[entry["name"]] = entry
    return entries


def merge_runs(chunks):
    """One bench JSON from several processes' (bench/compare runs simdattn_bench once per shape, the
    roofs first in each, between the peers' runs). The roofs are ceilings: each is the highest any
    process measured (a roof can only be slowed down by others, never sped up), and every fraction
    is recomputed to divide by it, so no fraction passes 1 because one process's roof was disturbed."""
    merged = {"context": dict(chunks[0].get("context", {})), "benchmarks": []}
    peaks, bandwidths = {}, []
    for chunk in chunks:
        for entry in chunk.get("benchmarks", []):
            if entry.get("error_occurred"):
                continue
            threads = int(entry.get("threads", 0) or 0)
            if "roof_gflops" in entry:
                peaks.setdefault(threads, []).append(entry["roof_gflops"])
            if "roof_gbytes_per_second" in entry:
                bandwidths.append(entry["roof_gbytes_per_second"])
            if entry.get("peak_fraction") and entry.get("gflops") and threads:
                peaks.setdefault(threads, []).append(entry["gflops"] / entry["peak_fraction"])
            if entry.get("bandwidth_fraction") and entry.get("gbytes_per_second"):
                bandwidths.append(entry["gbytes_per_second"] / entry["bandwidth_fraction"])
    peak = {threads: max(values) for threads, values in peaks.items()}
    bandwidth = max(bandwidths) if bandwidths else None
    roofs_seen = {}
    for chunk in chunks:
        for entry in chunk.get("benchmarks", []):
            entry = dict(entry)
            threads = int(entry.get("threads", 0) or 0)
            if entry["name"] in ROOF_NAMES:
                # Keep the roof entry of the process that measured the highest roof.
                key = "roof_gflops" if "roof_gflops" in entry else "roof_gbytes_per_second"
                previous = roofs_seen.get(entry["name"])
                if previous is not None and previous.get(key, 0) >= entry.get(key, 0):
                    continue
                roofs_seen[entry["name"]] = entry
                continue
            if entry.get("peak_fraction") is not None and entry.get("gflops") and peak.get(threads):
                entry["peak_fraction"] = entry["gflops"] / peak[threads]
            if entry.get("bandwidth_fraction") is not None and entry.get("gbytes_per_second") and bandwidth:
                entry["bandwidth_fraction"] = entry["gbytes_per_second"] / bandwidth
            merged["benchmarks"].append(entry)
    for name in ROOF_NAMES:
        if name in roofs_seen:
            entry = roofs_seen[name]
            threads = int(entry.get("threads", 0) or 0)
            if "roof_gflops" in entry and peak.get(threads):
                entry["roof_gflops"] = peak[threads]
            if "roof_gbytes_per_second" in entry and bandwidth:
                entry["roof_gbytes_per_second"] = bandwidth
            entry["roof_measurements"] = len(peaks.get(threads, [])) if "roof_gflops" in entry else len(bandwidths)
    merged["benchmarks"] = [roofs_seen[name] for name in ROOF_NAMES if name in roofs_seen] + merged["benchmarks"]
    return merged

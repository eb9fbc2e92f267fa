"""peers.quick: every installed peer of bench/compare, checked and timed on small work, and the report.

  check_peers.py --compare bench/compare --bench build/bench/simdattn_bench --work-dir DIR [--python PY] [--ggml-peer PATH]

Skips (exit status 77, which ctest reports as skipped) when no peer is installed: neither
.venv-peers/ (bench/peers/install) nor --python/--ggml-peer. Otherwise checks:
- each installed peer agrees with simdattn's reference on cases bench/compare's own check does not
  cover: a rectangular bottom-right causal case (Sq < Sk), where is_causal-style flags are top-left,
  and a grouped-query one with uneven sizes;
- `bench/compare --quick` on encoder, prefill_gqa, decode_gqa and the serving shape mixed_prefill
  exits 0; every installed variant, the serving ones (a peer called once per sequence) included,
  ends measured (none disagrees or fails) and the rest say why they did not run;
- the report parses (every numeric cell a number; GFLOP/s × time = the shape's FLOPs; the speedup
  column = the row's time over simdattn's), every shape table has a row per measured variant, no
  row's peak fraction (of the 16-bit roof for 16-bit rows, which may run on AMX tiles) and no fp32
  row's bandwidth fraction exceeds 1 by more than noise; the serving table has simdattn's layouts and
  a row per measured serving variant, its figures agreeing as report.quick checks them.
Exit status 0 when all hold, 1 listing each failed check, 77 when there is nothing to test."""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests" / "report"))

from check_report import (SERVING_HEADING, Checks, check_numbers, check_serving_table, fma_peaks,  # noqa: E402
                          parse_tables, quick_serving_rows, serving_tables)
from report import peers  # noqa: E402
from report.shapes import Shape  # noqa: E402

SKIP = 77
SERVING_SHAPE = "mixed_prefill"
SHAPES = f"^(encoder|prefill_gqa|decode_gqa|{SERVING_SHAPE})$"
# A fraction of a roof measured by the same processes: above 1 only by timer noise.
FRACTION_NOISE = 0.05
# Rows computed in fp32 from fp32 K/V: their bandwidth fraction is bounded by the roof.
FP32_ROWS = {"simd", "eigen", "torch", "ggml", "onnxruntime", "openvino"}
EXTRA_CASES = [Shape("causal_rectangular", 1, 4, 2, 19, 45, 64, True),
               Shape("gqa_uneven", 2, 6, 3, 13, 13, 32, False)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--python")
    parser.add_argument("--ggml-peer")
    arguments = parser.parse_args()
    reference = str(Path(arguments.bench).parent / "simdattn_peer_reference")
    found = peers.Peers(arguments.python, arguments.ggml_peer, reference, say=lambda message: print(message, flush=True))
    installed = found.runnable()
    serving_installed = found.runnable(serving=True)
    if not installed:
        print("SKIP: no peer is installed: run bench/peers/install (or pass --python/--ggml-peer); "
              + "; ".join(f"{name}: {entry['detail']}" for name, entry in found.variants.items()))
        return SKIP
    print("installed peer variants: " + ", ".join(installed), flush=True)
    checks = Checks()

    found.check_cases(EXTRA_CASES, 2)
    for name in installed:
        entry = found.variants[name]
        checks.expect(entry["status"] == "pending" and len(entry["checks"]) == len(EXTRA_CASES),
                      f"{name} on the extra cases: {entry['status']}: {entry['detail']}")

    os.makedirs(arguments.work_dir, exist_ok=True)
    saved = os.path.join(arguments.work_dir, "run.json")
    command = [sys.executable, arguments.compare, "--quick", "--shapes", SHAPES, "--bench", arguments.bench,
               "--out", arguments.work_dir, "--save-json", saved, "--no-plots", "--threads", "2"]
    if arguments.python:
        command += ["--python", arguments.python]
    if arguments.ggml_peer:
        command += ["--ggml-peer", arguments.ggml_peer]
    print("+ " + " ".join(command), flush=True)
    status = subprocess.run(command).returncode
    if not checks.expect(status == 0, f"bench/compare exited with status {status}"):
        return report(checks)
    stored = json.loads(Path(saved).read_text(encoding="utf-8"))
    variants = stored["peers"]["variants"]
    for name in installed + serving_installed:
        checks.expect(variants[name]["status"] == "measured",
                      f"{name}: expected measured, got {variants[name]['status']}: {variants[name]['detail']}")
    for name, entry in variants.items():
        checks.expect(entry["status"] == "measured" or entry.get("detail"), f"{name}: {entry['status']} without a reason")

    text = Path(arguments.work_dir, "performance.md").read_text(encoding="utf-8")
    # The serving section's tables are checked on their own below; the standard ones come before it.
    tables = check_numbers(checks, parse_tables(text.split(SERVING_HEADING)[0]))
    flops = dict(re.findall(r"^### (\S+)\n\n.*?; ([0-9.]+) GFLOP per call", text, re.MULTILINE))
    measured = [name for name in installed if variants[name]["status"] == "measured"]
    for heading, _, rows in tables:
        if not heading.startswith("### "):
            continue
        shape = heading[4:]
        names = [row["implementation"] for row in rows]
        simd = next((row for row in rows if row["implementation"] == "simd"), None)
        checks.expect(simd, f"{heading}: no simd row")
        for name in measured:
            checks.expect(name in names, f"{heading}: no row for the measured peer {name}")
        for row in rows:
            what = f"{heading}, {row['implementation']}"
            if row["time (ms)"] and row["GFLOP/s"]:
                checks.close(row["GFLOP/s"] * row["time (ms)"] / 1e3, float(flops.get(shape, 0)), f"{what}: GFLOP/s × time")
            if simd and row["implementation"] != "simd" and row.get("simd speedup over this row"):
                checks.close(row["simd speedup over this row"], row["time (ms)"] / simd["time (ms)"], f"{what}: speedup")
            fractions = ["peak fraction"] + (["bandwidth fraction"] if row["implementation"] in FP32_ROWS else [])
            for column in fractions:
                value = row.get(column)
                checks.expect(value is None or value <= 1 + FRACTION_NOISE,
                              f"{what}: {column} {value} exceeds 1 by more than {FRACTION_NOISE}")
    serving = serving_tables(text)
    if checks.expect(SERVING_SHAPE in serving, f"no serving table for {SERVING_SHAPE}"):
        header, rows = serving[SERVING_SHAPE]
        peak = fma_peaks({heading: rows for heading, _, rows in tables}.get("## Roofs measured in this run", []))
        # simdattn's layouts, as the bench registers them, and every measured serving variant.
        names = subprocess.run([arguments.bench, "--benchmark_list_tests"], capture_output=True, text=True,
                               check=True).stdout.split()
        serving_measured = [name for name in serving_installed if variants[name]["status"] == "measured"]
        check_serving_table(checks, SERVING_SHAPE, header, rows,
                            quick_serving_rows(names).get(SERVING_SHAPE, []) + serving_measured,
                            float(flops.get(SERVING_SHAPE, 0)), peak)
    return report(checks)


def report(checks):
    for failure in checks.failures:
        print("FAIL: " + failure)
    if checks.failures:
        return 1
    print("peers agree with the reference, were timed, and the report is consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""performance.md: the report's text and tables, from a results.Report.

Every figure is printed as a plain number (no units or '×' inside a cell, the unit is in the
column's header) so that the report's tables can be read back by a program; '—' marks a cell that
has no value (a peer compared with itself, a fraction that does not apply)."""
import math

from .peers import VARIANTS_BY_NAME
from .results import SIMD, speedup
from .shapes import SCALING_SHAPE, SHAPES_BY_NAME

NONE = "—"
IMPLEMENTATION_NOTES = {
    "simd": "simdattn::attention, OpenMP's default thread count",
    "reference": "simdattn::reference::attention, the scalar oracle (plain loops, double accumulation), one thread",
    "eigen": "the Eigen peer: GEMM, exp, GEMM per (batch, head), parallel over heads",
    "openblas": "the OpenBLAS peer",
    "simd-bf16": "simdattn::attention on bf16 Q/K/V/O (widened to fp32 per key block; a speedup below 1 is how much faster than its own fp32)",
    "simd-fp16": "simdattn::attention on fp16 Q/K/V/O (widened to fp32 per key block)",
    "simd-f16kv": "simdattn::attention, fp32 Q/O over an f16 K/V cache (decode shapes; GB/s counts the 16-bit bytes)",
    "simd-bf16kv": "simdattn::attention, fp32 Q/O over a bf16 K/V cache (decode shapes; GB/s counts the 16-bit bytes)",
    "simd-i8kv": "simdattn::attention, fp32 Q/O over an int8 K/V cache, one fp32 scale per 32 elements (decode shapes; GB/s counts the bytes and scales)",
    "simd-i8rowkv": "simdattn::attention, fp32 Q/O over an int8 K/V cache, one fp32 scale per row (decode shapes; GB/s counts the bytes and scales)",
}
# The targets of simdattn's speedups (2 threads, ratios measured in one run):
# (simdattn's row, the peer's row) -> shape -> ×. fp32 against PyTorch and ggml's F32 cache; each
# 16-bit or 8-bit row against the peer computing the same precision: bf16 Q/K/V against PyTorch's
# bf16 SDPA, an f16 cache against ggml's F16 cache, an int8 cache against ggml's Q8_0.
TARGETS = {
    ("simd", "torch"): {"prefill": 1.3, "prefill_gqa": 1.3, "long": 1.3, "encoder": 1.5, "decode_gqa": 2.0,
                        "decode_b8": 2.0},
    ("simd", "ggml"): {"encoder": 2.0, "long": 2.0, "prefill": 3.0, "prefill_gqa": 3.0, "decode_gqa": 3.0,
                       "decode_b8": 3.0},
    ("simd-bf16", "torch-bf16"): {"encoder": 1.3, "prefill": 1.3, "prefill_gqa": 1.3, "long": 1.3},
    ("simd-f16kv", "ggml-f16kv"): {"decode_gqa": 3.0, "decode_b8": 3.0},
    ("simd-i8kv", "ggml-q8kv"): {"decode_gqa": 6.0, "decode_b8": 6.0},
}
TARGET_THREADS = 2


def significant(value, digits=3):
    """`value` with `digits` significant digits and no exponent; '—' for None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NONE
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{decimals}f}"


def fraction(value):
    """A fraction of a roof, 3 significant digits (a reference's 0.0124 keeps its precision too)."""
    return significant(value, 3)


def ratio(value):
    """A speedup, 3 significant digits."""
    return significant(value, 3)


def milliseconds(seconds):
    """Seconds shown as milliseconds, 4 significant digits."""
    return NONE if seconds is None else significant(seconds * 1e3, 4)


def median_and_range(spread, show):
    """'median (lowest–highest)' of a results.Spread, each shown by `show`; '—' for None."""
    if spread is None:
        return NONE
    return f"{show(spread.median)} ({show(spread.lowest)}–{show(spread.highest)})"


def table(header, rows):
    """A Markdown table; header and rows are lists of cell strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


class Writer:
    """Builds performance.md section by section (one method per section)."""

    def __init__(self, report, plots, name):
        self.report = report
        self.plots = plots  # {"gflops": file name, ...} or {"skipped": reason}
        self.name = name
        self.lines = []

    def add(self, *paragraphs):
        """Appends each paragraph (text or a table) followed by a blank line."""
        for paragraph in paragraphs:
            self.lines.append(paragraph)
            self.lines.append("")

    def plot(self, key, caption):
        """Links plot `key` when it was drawn."""
        if key in self.plots:
            self.add(f"![{caption}]({self.plots[key]})")

    def text(self):
        """The whole report, sections in reading order."""
        self.title()
        self.summary()
        self.targets()
        self.machine()
        self.roofs()
        self.implementations()
        self.spread()
        self.shapes()
        self.serving()
        self.stages()
        self.scaling()
        self.roofline()
        self.left_out()
        self.notes()
        return "\n".join(self.lines).rstrip() + "\n"

    def title(self):
        report, run = self.report, self.report.run
        self.add(f"# {report.title}")
        if run.get("quick"):
            self.add("> **Quick run** (`bench/compare --quick`): Google Benchmark min_time "
                     f"{run.get('min_time')} s, a subset of the benchmarks (see *Left out of this run*). "
                     "The figures are indicative only; the full run is `bench/compare` without --quick.")
        self.add(f"Generated by `{run.get('command', 'bench/compare')}` on {report.host.get('date', '?')}, "
                 f"in {run.get('elapsed_seconds', 0):.0f} s. Every fraction below divides by a roof measured "
                 "by the same simdattn_bench process, on the same thread count." +
                 (f" The tables are the first of {report.spread.runs} runs; *Spread over {report.spread.runs} "
                  "runs* gives every shape's median and range over all of them." if report.spread else ""))
        if "skipped" in self.plots:
            self.add(f"Plots skipped: {self.plots['skipped']}. The tables below are complete without them.")
        else:
            self.add("Plots: " + ", ".join(f"[{file}]({file})" for file in self.plots.values()) + ".")

    def machine(self):
        report, host, context = self.report, self.report.host, self.report.context
        cores = host.get("physical_cores")
        logical = context.get("processors") or host.get("logical_processors")
        fma_label = report.fma_peak.label if report.fma_peak else NONE
        load = context.get("load_avg")
        rows = [
            ["CPU", host.get("cpu_model", "?")],
            ["cores", f"{cores if cores else '?'} physical, {logical} logical processors; "
                      f"benchmarks use {report.default_threads} threads unless a row says otherwise"],
            ["ISA", f"{context.get('simdattn_isa', '?')} (simdattn's runtime dispatch); FMA loop: {fma_label}"],
            ["compiler", host.get("compiler", "?")],
            ["simdattn", context.get("simdattn_version", "?")],
            ["OS", host.get("os", "?")],
            ["date", host.get("date", "?")],
            ["load average at start", ", ".join(f"{value:.2f}" for value in load) if load else "?"],
        ]
        self.add("## Machine", table(["", ""], rows))

    def roofs(self):
        report = self.report
        rows = []
        if report.peak_gflops:
            rows.append(["FMA peak", significant(report.peak_gflops), significant(report.fma_peak.gflops),
                         "GFLOP/s", str(report.fma_peak.threads),
                         f"machine/fma_peak: register-resident FMA loop, {report.fma_peak.label}"])
        if report.read_gbytes_per_second:
            bandwidth = report.read_bandwidth
            rows.append(["read bandwidth", significant(report.read_gbytes_per_second),
                         significant(bandwidth.gbytes_per_second) if bandwidth else NONE, "GB/s",
                         str(bandwidth.threads if bandwidth else report.default_threads),
                         "machine/read_bandwidth: streaming sum over "
                         f"{bandwidth.label if bandwidth else 'a buffer of 8× the last-level cache'}"])
        for peak, name, how in ((report.bf16_peak, "bf16 peak", "register-resident vdpbf16ps loop (AVX512_BF16)"),
                                (report.amx_peak, "AMX peak", "register-resident TDPBF16PS tile loop (AMX-BF16)")):
            if peak is not None and peak.error:
                rows.append([name, NONE, NONE, "GFLOP/s", NONE, f"machine/{peak.implementation}: {peak.error}"])
            elif peak is not None and peak.roof:
                rows.append([name, significant(peak.roof), significant(peak.gflops), "GFLOP/s", str(peak.threads),
                             f"machine/{peak.implementation}: {how}"])
        sixteen = report.sixteen_bit_roof(report.fma_peak.threads) if report.fma_peak else None
        if sixteen:
            rows.append(["16-bit roof", significant(sixteen), NONE, "GFLOP/s", str(report.fma_peak.threads),
                         "the highest of the FMA, bf16 and AMX peaks: what the peak fraction of a row with 16-bit "
                         "Q, K and V (a name ending in -bf16, -fp16 or -f16) divides by"])
        for threads, gflops in report.peak_by_threads.items():
            if not report.fma_peak or threads != report.fma_peak.threads:
                rows.append(["FMA peak", significant(gflops), NONE, "GFLOP/s", str(threads),
                             "the same loop, measured for the benchmarks on this thread count"])
        self.add("## Roofs measured in this run",
                 "The value is what every fraction of this report divides by: the fastest single call "
                 "of the roof's loop (another process can only slow a call down); the mean over its calls "
                 "shows how much the machine was disturbed.",
                 table(["roof", "value", "mean over its calls", "unit", "threads", "how"], rows))

    def implementations(self):
        report = self.report
        lines = []
        labels = {}
        for shape_table in report.shape_tables:
            for row in shape_table.rows:
                labels.setdefault(row.implementation, row.label)
        for implementation in [SIMD] + [peer for peer in report.peers if peer not in VARIANTS_BY_NAME]:
            note = IMPLEMENTATION_NOTES.get(implementation, "")
            lines.append(f"- `{implementation}`: {note} ({labels.get(implementation, '')})")
        if "eigen" not in report.peers:
            lines.append(f"- `eigen`: not measured: {report.context.get('eigen_peer', 'absent from this bench')}")
        status = report.peer_status
        variants = status.get("variants", {})
        if not variants:
            lines.append("- The peers (PyTorch, ggml, ONNX Runtime, OpenVINO): not recorded in this run")
        for name, entry in variants.items():
            if entry.get("status") == "measured":
                checks = "; ".join(f"max error {check['max_abs_error']:.2g} ≤ {check['tolerance']:.2g}"
                                   for check in entry.get("checks", [])[:1])
                lines.append(f"- `{name}`: {entry.get('computed', '')}. Checked against simdattn's reference on a "
                             f"small case of each shape family before timing ({len(entry.get('checks', []))} cases; "
                             f"first: {checks or 'none'}).")
                if entry.get("failures"):
                    lines.append(f"  Failed on some shapes: {'; '.join(entry['failures'])}")
            else:
                lines.append(f"- `{name}` ({entry.get('precision', '')}): **{entry.get('status')}**: {entry.get('detail', '')}")
        if status.get("python") or status.get("ggml"):
            lines.append(f"\nPython peers ran under `{status.get('python') or 'none'}`; ggml's peer program was "
                         f"`{status.get('ggml') or 'none'}`. Each peer builds its session or graph outside the timed "
                         "region, calls once to warm up, then keeps its fastest call over the bench's minimum time "
                         f"({report.run.get('peer_min_time', '?')} s; at least 3 calls, 2 when one takes over a second), "
                         "on the bench's thread count, right after simdattn_bench ran the same shape. Decode shapes "
                         "cycle through copies of K and V as large in all as the bench's, so every call reads them "
                         "from memory. Inputs have the same shapes and the same distribution as simdattn's (uniform "
                         "in [-1, 1], seeded), not the same bits.")
        self.add("## Implementations", "\n".join(lines))

    def targets(self):
        report = self.report
        rows = []
        for (ours, peer), by_shape in TARGETS.items():
            for shape_table in report.shape_tables:
                target = by_shape.get(shape_table.name)
                if target is None:
                    continue
                measured = speedup(shape_table.row(ours), shape_table.row(peer))
                spread = next((shape for shape in report.spread.shapes if shape.name == shape_table.name),
                              None) if report.spread else None
                if spread and spread.row_speedups.get((ours, peer)):
                    measured = spread.row_speedups[(ours, peer)].median  # over every round, as the spread table
                if measured is None:
                    verdict = "not measured"
                elif measured >= target:
                    verdict = "met"
                else:
                    short = 100 * (1 - measured / target)
                    verdict = f"missed by {short:.1f}%" if short < 1 else f"missed by {short:.0f}%"
                rows.append([ours, peer, shape_table.name, ratio(target), ratio(measured), verdict])
        if not rows:
            return
        threads = report.default_threads
        caveat = "" if threads == TARGET_THREADS else \
            f" This run used {threads} threads, so the verdicts are indicative only."
        source = (f"the median over the {report.spread.runs} rounds (the spread table gives the range of "
                  "the fp32 ones)" if report.spread else "the tables of this run")
        self.add("## Targets",
                 "simdattn's speedup over PyTorch's SDPA and over ggml, each row of simdattn against the peer "
                 "computing the same precision (fp32; bf16 Q/K/V; an f16 cache against ggml's F16; an int8 cache "
                 f"against ggml's Q8_0), as set for {TARGET_THREADS} threads: {source}.{caveat}",
                 table(["simdattn", "peer", "shape", "target speedup", "measured speedup", "verdict"], rows))

    def summary(self):
        report = self.report
        header = ["shape", "simd GFLOP/s", "peak fraction", "bandwidth fraction"] + \
                 [f"speedup over {peer}" for peer in report.peers]
        rows = []
        for shape_table in report.shape_tables:
            simd = shape_table.row(SIMD)
            rows.append([shape_table.name, significant(simd.gflops) if simd else NONE,
                         fraction(simd.peak_fraction) if simd else NONE,
                         fraction(simd.bandwidth_fraction) if simd else NONE] +
                        [ratio(speedup(simd, shape_table.row(peer))) for peer in report.peers])
        self.add("## Summary", "simdattn on each shape, and its speedup over every implementation measured: the "
                 "implementation's time over simdattn's, both taken in the same round (*Implementations* says what "
                 "each one computed; a peer absent here did not run, and says why there).",
                 table(header, rows))
        self.plot("gflops", "GFLOP/s per shape and implementation")

    def spread(self):
        spread = self.report.spread
        if not spread:
            return
        header = ["shape", "runs", "simd GFLOP/s", "peak fraction", "bandwidth fraction"] + \
                 [f"speedup over {peer}" for peer in spread.peers]
        rows = [[shape.name, str(shape.runs), median_and_range(shape.gflops, significant),
                 median_and_range(shape.peak_fraction, fraction),
                 median_and_range(shape.bandwidth_fraction, fraction)] +
                [median_and_range(shape.speedups[peer], ratio) for peer in spread.peers]
                for shape in spread.shapes]
        self.add(f"## Spread over {spread.runs} runs",
                 f"`--repeat {spread.runs}` ran simdattn_bench {spread.runs} times, one process after another; "
                 "the other tables are the first run's. Each cell is the median over the runs, with the lowest "
                 "and highest in brackets, every run dividing by the roofs it measured itself: FMA peak "
                 f"{median_and_range(spread.fma_peak, significant)} GFLOP/s, read bandwidth "
                 f"{median_and_range(spread.read_bandwidth, significant)} GB/s.",
                 table(header, rows))

    def shapes(self):
        report = self.report
        self.add("## Per shape", "A row's peak fraction divides its GFLOP/s by the FMA peak, or, for a row with 16-bit "
                 "Q, K and V (a name ending in -bf16, -fp16 or -f16), by the 16-bit roof of the roofs table.")
        for shape_table in report.shape_tables:
            self.shape_table(shape_table, SIMD)

    def serving(self):
        report = self.report
        if not report.serving_tables:
            return
        self.add("## Serving shapes",
                 "Batches of sequences of different lengths (docs/bench-shapes.md; the sequences are "
                 "simdattn_bench's own, seeded). simdattn's rows are its layouts for the same keys: `simd-paged` "
                 "(one attention_paged call over a pool of 16-key blocks in shuffled order), `simd-packed` (one "
                 "attention_varlen call over packed [total, H, D] tensors), `simd-contiguous` (one attention() "
                 "per sequence, each over a [1, Hkv, keys, D] cache of its own), `simd-per_sequence` (one "
                 "attention() per sequence over the packed tensors) and `simd-padded` (one attention() over every "
                 "sequence padded to the longest, kv_lengths stopping the keys). A peer's `-per-sequence` row "
                 "calls it once per sequence over that sequence's own K and V, as an engine without paged or "
                 "packed CPU attention serves a batch. The last column is simdattn's first layout (paged where "
                 "there is one, else packed) against each row: the row's time over its time.")
        for shape_table in report.serving_tables:
            names = [row.implementation for row in shape_table.rows if row.seconds]
            first = next((name for name in (SIMD + "-paged", SIMD + "-packed") if name in names),
                         names[0] if names else SIMD)
            self.shape_table(shape_table, first)

    def shape_table(self, shape_table, baseline):
        """One shape's heading, sizes and table: every row's figures, and the last column the time of
        each row over the `baseline` row's."""
        shape = shape_table.shape
        decode = bool(shape and shape.is_decode())
        header = ["implementation", "code", "threads", "time (ms)", "GFLOP/s", "peak fraction"]
        if decode:
            header += ["GB/s (K, V)", "bandwidth fraction"]
        header += [f"{baseline} speedup over this row"]
        baseline_row = shape_table.row(baseline)
        rows = []
        for row in shape_table.rows:
            if row.error:
                rows.append([row.implementation, f"error: {row.error}"] + [NONE] * (len(header) - 2))
                continue
            cells = [row.implementation, row.label, str(row.threads), milliseconds(row.seconds),
                     significant(row.gflops), fraction(row.peak_fraction)]
            if decode:
                cells += [significant(row.gbytes_per_second), fraction(row.bandwidth_fraction)]
            cells.append(NONE if row.implementation == baseline else ratio(speedup(baseline_row, row)))
            rows.append(cells)
        about = f"{shape.describe()}; {shape.useful_flops() / 1e9:.4g} GFLOP per call" if shape else "sizes unknown"
        if decode:
            about += f"; {shape.kv_bytes() / 1e6:.4g} MB of K and V per call"
        self.add(f"### {shape_table.name}", about + ".", table(header, rows))

    def stages(self):
        report = self.report
        if not report.stages:
            return
        rows = [[row.implementation, f"error: {row.error}", NONE, NONE, NONE] if row.error else
                [row.implementation, milliseconds(row.seconds), significant(row.gflops),
                 significant(row.gbytes_per_second), fraction(row.peak_fraction)] for row in report.stages]
        self.add(f"## The three stages on their own ({report.stage_shape})",
                 "qk_scores and weights_v count 2·B·H·Sq·Sk·D FLOPs each; softmax_rows is rated by the "
                 "bytes of scores it reads and writes.",
                 table(["stage", "time (ms)", "GFLOP/s", "GB/s", "peak fraction"], rows))

    def scaling(self):
        report = self.report
        if not report.scaling:
            self.add("## Thread scaling", f"Not run: attention/{SCALING_SHAPE}/simd/threads:N was left out.")
            return
        rows = []
        for implementation, scaling_rows in report.scaling.items():
            one = next((row for row in scaling_rows if row.threads == 1 and row.seconds), None)
            for row in scaling_rows:
                if row.error:
                    rows.append([implementation, str(row.threads), f"error: {row.error}"] + [NONE] * 5)
                    continue
                over_one = speedup(row, one)
                efficiency = over_one / row.threads if over_one and row.threads else None
                rows.append([implementation, str(row.threads), milliseconds(row.seconds), significant(row.gflops),
                             ratio(over_one), fraction(efficiency),
                             significant(report.peak_by_threads.get(row.threads)), fraction(row.peak_fraction)])
        self.add(f"## Thread scaling ({SCALING_SHAPE})",
                 "Speedup over the same implementation on one thread; efficiency is that speedup over the "
                 "thread count (1.000 is the ideal line).",
                 table(["implementation", "threads", "time (ms)", "GFLOP/s", "speedup over 1 thread", "efficiency",
                        "FMA peak (GFLOP/s)", "peak fraction"], rows))
        self.plot("threads", "thread scaling against the ideal line")

    def roofline(self):
        report = self.report
        peak = report.peak_gflops
        bandwidth = report.read_bytes_per_second
        if not peak or not bandwidth:
            self.add("## Roofline", "Not drawn: this run lacks the FMA peak or the read bandwidth.")
            return
        rows = []
        for shape_table in report.shape_tables:
            shape, simd = shape_table.shape, shape_table.row(SIMD)
            if not shape:
                continue
            intensity = shape.arithmetic_intensity()
            roof = min(peak, intensity * bandwidth / 1e9)
            rows.append([shape_table.name, significant(shape.useful_flops() / 1e9), significant(shape.moved_bytes() / 1e6),
                         significant(intensity), significant(roof), significant(simd.gflops) if simd else NONE,
                         fraction(simd.gflops / roof) if simd and simd.gflops else NONE])
        self.add("## Roofline",
                 f"Attainable GFLOP/s = min(FMA peak, intensity × read bandwidth) = min({significant(peak)}, "
                 f"intensity × {significant(bandwidth / 1e9)}); intensity = useful FLOPs over the bytes of "
                 "Q, K, V and O moved once (the least traffic any implementation can make).",
                 table(["shape", "GFLOP per call", "MB moved", "intensity (FLOP/byte)", "roof (GFLOP/s)",
                        "simd GFLOP/s", "fraction of roof"], rows))
        self.plot("roofline", "roofline with each shape as a point")

    def left_out(self):
        left_out = self.report.run.get("left_out", [])
        if left_out:
            self.add("## Left out of this run", "\n".join(f"- `{name}`: {reason}" for name, reason in left_out))

    def notes(self):
        report = self.report
        notes = [
            "Times are wall time per call, the fastest of the timed calls for every implementation (simdattn_bench's "
            "`call_ms`, the peers' fastest call over the same minimum time), as the roofs are; causal shapes count "
            "half the dense FLOPs.",
            "Decode shapes cycle through enough copies of K and V to read them from memory, simdattn and the peers "
            "alike; a peer's GB/s counts the fp32 size of K and V whatever its cache precision, so an 8- or "
            "16-bit cache can pass a bandwidth fraction of 1.",
            "The roofs are ceilings: simdattn_bench measures them again before every shape, and the report "
            "keeps the highest of each (the read bandwidth with several streams per thread and software "
            "prefetch, as the decode kernel reads), dividing every fraction by it.",
        ]
        notes += [f"Failed: `{name}`: {message}" for name, message in report.errors()]
        notes += [f"Warning: {warning}" for warning in report.warnings]
        self.add("## Notes", "\n".join("- " + note for note in notes))


# Where the hand-written part of a report starts (docs/performance.md's section on ARM servers,
# which no run on this machine can measure): a new report keeps it, from this line to the end.
KEPT_MARKER = "<!-- Not generated: bench/compare keeps this line and everything below it. -->"


def write_markdown(report, plots, name, path):
    """Writes the report to `path`; plots maps plot keys to file names, or {"skipped": reason}.
    The hand-written part of the file already at `path`, if any (KEPT_MARKER on), is kept."""
    kept = ""
    try:
        with open(path, encoding="utf-8") as previous:
            old = previous.read()
        if KEPT_MARKER in old:
            kept = "\n" + old[old.index(KEPT_MARKER):]
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as out:
        out.write(Writer(report, plots, name).text())
        out.write(kept)

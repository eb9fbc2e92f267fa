"""The figures of one stored run, grouped the way the report shows them.

A stored run is a dict (bench/compare writes it with --save-json and reads it with --from-json):
  host   machine.describe_host()
  run    how it was run: quick, min_time, filters, what was left out and why, the command line
  bench  simdattn_bench's JSON (context + benchmarks)
  repeats  the JSON of each further run of the same benchmarks (--repeat), in order; absent or
         empty for a single run
  peers  peers.Peers.stored(): each peer variant's status, what it computed, its checks, and
         "results": [{"implementation", "shape", "threads", "seconds", "round", "serving"}], round 0
         being the round the tables show (the one bench holds); "serving" marks the rows of a
         serving shape (bench/report/shapes.py's ServingShape, from the bench's context)
Everything here is derived from that dict alone, so a re-render gives the same report."""
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .bench_run import iteration_entries, parse_name, seconds_per_iteration
from .peers import VARIANTS, VARIANTS_BY_NAME
from .shapes import SCALING_SHAPE, SHAPES_BY_NAME, Shape, serving_shapes

FORMAT = "simdattn-compare/1"
SIMD = "simd"
# Peers in the order their columns appear; an implementation the bench adds later goes after them.
PEER_ORDER = ["reference", "eigen", "openblas"] + [variant.name for variant in VARIANTS]
# The bench's FLOP count (gflops × time) and shapes.py's may differ by timer granularity only.
FLOP_CHECK_TOLERANCE = 0.05
# Fractions of one run all divide by the same cached roof; counters are printed to ~17 digits, so
# read back they agree far closer than this.
DENOMINATOR_SPREAD = 1e-6
# The implementations whose names end so take 16-bit Q, K and V (simd-bf16, torch-fp16,
# openvino-f16, ...): their peak fraction divides by the 16-bit roof, the highest of the FMA, bf16
# dot-product and AMX peaks, since they may multiply on any of those units. Rows with 16-bit or
# 8-bit K/V only (simd-f16kv, ggml-q8kv) widen to fp32 and divide by the FMA peak.
SIXTEEN_BIT_SUFFIXES = ("-bf16", "-fp16", "-f16")


def computes_in_16_bits(implementation):
    return implementation.endswith(SIXTEEN_BIT_SUFFIXES)


@dataclass
class Row:
    """One implementation on one shape at one thread count."""
    implementation: str
    label: str
    threads: Optional[int]
    seconds: Optional[float] = None
    gflops: Optional[float] = None
    peak_fraction: Optional[float] = None
    bandwidth_fraction: Optional[float] = None
    gbytes_per_second: Optional[float] = None
    error: Optional[str] = None
    roof: Optional[float] = None  # machine/*: the roof the run's fractions divide by (roof_* counter)


@dataclass
class ShapeTable:
    name: str
    shape: Optional[Shape]
    rows: List[Row] = field(default_factory=list)

    def row(self, implementation):
        """The row of `implementation` that has a time, or None."""
        for row in self.rows:
            if row.implementation == implementation and row.seconds:
                return row
        return None


@dataclass
class Spread:
    """One figure over the runs that have it, in run order."""
    values: List[float]

    @property
    def median(self):
        return statistics.median(self.values)

    @property
    def lowest(self):
        return min(self.values)

    @property
    def highest(self):
        return max(self.values)


@dataclass
class ShapeSpread:
    """simdattn on one shape over the runs: None where no run has the figure."""
    name: str
    runs: int
    gflops: Optional[Spread]
    peak_fraction: Optional[Spread]
    bandwidth_fraction: Optional[Spread]
    speedups: Dict[str, Optional[Spread]]  # peer -> the peer's time over simdattn's, run by run
    # (a simdattn row, another row) -> the other's time over the simdattn row's, run by run: the
    # same-precision comparisons (simd-bf16 against torch-bf16, ...)
    row_speedups: Dict[tuple, Optional[Spread]] = field(default_factory=dict)


@dataclass
class RunsSpread:
    """What --repeat measured: the roofs and every shape's figures over all the bench runs."""
    runs: int
    fma_peak: Optional[Spread]        # on the default thread count
    read_bandwidth: Optional[Spread]  # GB/s
    shapes: List[ShapeSpread]
    peers: List[str]                  # every implementation but simdattn, each round its own measurement


@dataclass
class Report:
    """Everything performance.md and the plots show."""
    run: dict
    host: dict
    context: dict
    fma_peak: Optional[Row]            # machine/fma_peak's own entry (label, threads, last timing run)
    read_bandwidth: Optional[Row]      # machine/read_bandwidth's own entry
    peak_by_threads: Dict[int, float]  # the FMA peaks the fractions divide by, GFLOP/s per thread count
    read_gbytes_per_second: Optional[float]  # the read bandwidth the fractions divide by
    shape_tables: List[ShapeTable]
    stages: List[Row]
    stage_shape: Optional[str]
    scaling: Dict[str, List[Row]]
    peers: List[str]
    peer_status: dict                  # peers.Peers.stored()["variants"] plus where they came from
    warnings: List[str]
    spread: Optional[RunsSpread] = None  # with --repeat: over every bench run, the first included
    bf16_peak: Optional[Row] = None    # machine/bf16_peak (roof: its GFLOP/s), where the bench ran it
    amx_peak: Optional[Row] = None     # machine/amx_peak, likewise
    # The serving shapes (first round): simdattn's layouts (simd-paged, simd-packed, ...) and the
    # peers called once per sequence; table.shape is a ServingShape
    serving_tables: List[ShapeTable] = field(default_factory=list)

    def sixteen_bit_roof(self, threads):
        """What a 16-bit row on `threads` threads divides by: the highest of the FMA peak and the
        16-bit peaks measured on that thread count (None without an FMA peak for it)."""
        fma = self.peak_by_threads.get(threads)
        if fma is None:
            return None
        extra = [row.roof for row in (self.bf16_peak, self.amx_peak)
                 if row is not None and row.roof and row.threads == threads]
        return max([fma] + extra)

    @property
    def peak_gflops(self):
        """The FMA peak on the default thread count: the roof of the shape tables."""
        return self.peak_by_threads.get(self.fma_peak.threads) if self.fma_peak else None

    @property
    def read_bytes_per_second(self):
        return self.read_gbytes_per_second * 1e9 if self.read_gbytes_per_second else None

    @property
    def title(self):
        """What was measured where, in a few words: the report's and the plots' title."""
        quick = " (quick run)" if self.run.get("quick") else ""
        return (f"simdattn on {self.host.get('cpu_model', 'an unknown CPU')}, {self.default_threads} threads, "
                f"{self.context.get('simdattn_isa', '?')}{quick}")

    @property
    def default_threads(self):
        return _int_or_none(self.context.get("default_threads"))

    def errors(self):
        """(name, message) of every benchmark that ended with an error."""
        found = [(f"{table.name}/{row.implementation}", row.error)
                 for table in self.shape_tables for row in table.rows if row.error]
        found += [(f"{row.implementation}", row.error) for row in self.stages if row.error]
        found += [(f"scaling/{row.implementation}/threads:{row.threads}", row.error)
                  for rows in self.scaling.values() for row in rows if row.error]
        found += [(f"serving/{table.name}/{row.implementation}", row.error)
                  for table in self.serving_tables for row in table.rows if row.error]
        return found


def _int_or_none(value):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def speedup(row, peer_row):
    """How many times faster `row` ran than `peer_row` (the peer's time over this one's)."""
    if not row or not peer_row or not row.seconds or not peer_row.seconds:
        return None
    return peer_row.seconds / row.seconds


def _row_from_entry(entry, implementation):
    if entry.get("error_occurred"):
        return Row(implementation, entry.get("label", ""), None, error=entry.get("error_message", "error"))
    return Row(implementation, entry.get("label", ""), _int_or_none(entry.get("threads")),
               seconds=entry["call_ms"] / 1e3 if "call_ms" in entry else seconds_per_iteration(entry),
               gflops=entry.get("gflops"),
               peak_fraction=entry.get("peak_fraction"), bandwidth_fraction=entry.get("bandwidth_fraction"),
               gbytes_per_second=entry.get("gbytes_per_second"),
               roof=entry.get("roof_gflops", entry.get("roof_gbytes_per_second")))


def _check_flops(name, shape, row, warnings):
    """Warns when the bench's FLOPs per call disagree with shapes.py's for the same shape."""
    if not shape or not row.gflops or not row.seconds:
        return
    implied = row.gflops * 1e9 * row.seconds
    expected = shape.useful_flops()
    if abs(implied - expected) > FLOP_CHECK_TOLERANCE * expected:
        warnings.append(f"{name}: the bench counts {implied / 1e9:.4g} GFLOP per call, bench/report/shapes.py "
                        f"{expected / 1e9:.4g}; the shape tables disagree, so this shape's roofline point is suspect")


def _peer_row(result, shape, peak_by_threads, read_bytes_per_second, variants):
    name = result["implementation"]
    variant = VARIANTS_BY_NAME.get(name)
    entry = variants.get(name, {})
    label = f"{variant.peer if variant else name} {entry.get('version') or ''}, {variant.describes if variant else ''}"
    if result.get("error"):
        return Row(name, label, result.get("threads"), error=result["error"])
    seconds = result["seconds"]
    gflops = shape.useful_flops() / seconds / 1e9
    peak = peak_by_threads.get(result["threads"])
    row = Row(name, label, result["threads"], seconds=seconds, gflops=gflops,
              peak_fraction=gflops / peak if peak else None)
    if shape.is_decode():
        row.gbytes_per_second = shape.kv_bytes() / seconds / 1e9
        if read_bytes_per_second:
            row.bandwidth_fraction = shape.kv_bytes() / seconds / read_bytes_per_second
    return row


def _peer_key(implementation):
    return (PEER_ORDER.index(implementation) if implementation in PEER_ORDER else len(PEER_ORDER), implementation)


def build_report(stored, round_index=0, with_spread=True):
    """The Report of a stored run (see the module's docstring for its fields): the tables of round
    `round_index` (the bench JSON given and the peers' results of that round)."""
    if stored.get("format") != FORMAT:
        raise ValueError(f"stored run: format: expected {FORMAT!r}, got {stored.get('format')!r}")
    bench = stored["bench"]
    entries = iteration_entries(bench)
    warnings = []
    fma_peak = read_bandwidth = None
    divided_by = {"peak": {}, "bandwidth": []}
    tables, serving = {}, {}
    serving_by_name = serving_shapes(bench.get("context", {}))
    stages, scaling = [], {}
    stage_shape = None

    sixteen_bit_peaks = {}
    for name, entry in entries.items():
        parsed = parse_name(name)
        if parsed.kind == "extra_roof":
            row = _row_from_entry(entry, parsed.implementation)
            row.roof = entry.get("bf16_roof_gflops")
            sixteen_bit_peaks[parsed.implementation] = row
        elif parsed.kind == "roof":
            row = _row_from_entry(entry, parsed.implementation)
            if parsed.implementation == "fma_peak":
                fma_peak = row
            else:
                read_bandwidth = row
        elif parsed.kind in ("attention", "scaling", "stage"):
            shape = SHAPES_BY_NAME.get(parsed.shape)
            row = _row_from_entry(entry, parsed.implementation)
            _collect_denominators(row, divided_by)
            if parsed.kind == "attention":
                _check_flops(name, shape, row, warnings)
                tables.setdefault(parsed.shape, ShapeTable(parsed.shape, shape)).rows.append(row)
            elif parsed.kind == "scaling":
                _check_flops(name, shape, row, warnings)
                row.threads = parsed.threads if row.threads is None else row.threads
                scaling.setdefault(parsed.implementation, []).append(row)
            else:
                stage_shape = parsed.shape
                stages.append(row)
        elif parsed.kind == "serving":
            shape = serving_by_name.get(parsed.shape)
            row = _row_from_entry(entry, parsed.implementation)
            _collect_denominators(row, divided_by)
            _check_flops(name, shape, row, warnings)
            serving.setdefault(parsed.shape, ShapeTable(parsed.shape, shape)).rows.append(row)
            if shape is None:
                warnings.append(f"{name}: the bench's context does not describe serving shape '{parsed.shape}'")
            continue
        if parsed.shape and parsed.shape not in SHAPES_BY_NAME and parsed.kind != "roof":
            warnings.append(f"{name}: shape '{parsed.shape}' is not in bench/report/shapes.py; "
                            "it has a table but no roofline point")

    peak_by_threads, read_gbytes = _denominators(divided_by, fma_peak, read_bandwidth, warnings)
    read_bytes = read_gbytes * 1e9 if read_gbytes else None
    peer_status = stored.get("peers", {})
    variants = peer_status.get("variants", {})
    for result in peer_status.get("results", []):
        if result.get("round", 0) != round_index:
            continue
        if result.get("serving"):
            table = serving.get(result["shape"])
            if table is not None and table.shape is not None:
                table.rows.append(_peer_row(result, table.shape, peak_by_threads, read_bytes, variants))
            continue
        if result["shape"] not in tables:
            continue
        row = _peer_row(result, SHAPES_BY_NAME[result["shape"]], peak_by_threads, read_bytes, variants)
        tables[result["shape"]].rows.append(row)

    for rows in scaling.values():
        rows.sort(key=lambda row: row.threads or 0)
    ordered = [tables[name] for name in _shape_order(tables)]
    peers = sorted({row.implementation for table in ordered for row in table.rows if row.implementation != SIMD},
                   key=_peer_key)
    report = Report(run=stored.get("run", {}), host=stored.get("host", {}), context=bench.get("context", {}),
                    fma_peak=fma_peak, read_bandwidth=read_bandwidth, peak_by_threads=peak_by_threads,
                    read_gbytes_per_second=read_gbytes,
                    shape_tables=ordered, stages=stages, stage_shape=stage_shape, scaling=scaling,
                    peers=peers, peer_status=peer_status, warnings=warnings,
                    spread=spread_over_runs(stored) if with_spread else None,
                    bf16_peak=sixteen_bit_peaks.get("bf16_peak"), amx_peak=sixteen_bit_peaks.get("amx_peak"),
                    serving_tables=list(serving.values()))
    for table in ordered:
        for row in table.rows:
            if computes_in_16_bits(row.implementation) and row.gflops:
                roof = report.sixteen_bit_roof(row.threads)
                row.peak_fraction = row.gflops / roof if roof else None
    return report


def spread_over_runs(stored):
    """The RunsSpread of a stored run with repeats, or None for a single run. Each run is a report
    of its own (its fractions divide by its own roofs); the shapes and peers are the first run's."""
    benches = [stored["bench"]] + list(stored.get("repeats") or [])
    if len(benches) < 2:
        return None
    reports = [build_report({"format": FORMAT, "bench": bench, "peers": stored.get("peers", {})}, index, False)
               for index, bench in enumerate(benches)]
    peers = reports[0].peers

    def over_runs(values):
        present = [value for value in values if value is not None]
        return Spread(present) if present else None

    shapes = []
    for name in (table.name for table in reports[0].shape_tables):
        tables = [next((table for table in report.shape_tables if table.name == name), None) for report in reports]
        measured = [(table.row(SIMD), table) for table in tables if table and table.row(SIMD)]
        shapes.append(ShapeSpread(
            name=name, runs=len(measured),
            gflops=over_runs(simd.gflops for simd, _ in measured),
            peak_fraction=over_runs(simd.peak_fraction for simd, _ in measured),
            bandwidth_fraction=over_runs(simd.bandwidth_fraction for simd, _ in measured),
            speedups={peer: over_runs(speedup(simd, table.row(peer)) for simd, table in measured)
                      for peer in peers},
            row_speedups={(ours, other): over_runs(speedup(table.row(ours), table.row(other))
                                                   for table in tables if table)
                          for ours in _simd_rows(reports[0], name) for other in peers if other != ours}))
    return RunsSpread(runs=len(reports), fma_peak=over_runs(report.peak_gflops for report in reports),
                      read_bandwidth=over_runs(report.read_gbytes_per_second for report in reports),
                      shapes=shapes, peers=peers)


def _simd_rows(report, shape_name):
    """The names of simdattn's rows on a shape of `report`: simd and its other precisions."""
    table = next((table for table in report.shape_tables if table.name == shape_name), None)
    return [row.implementation for row in table.rows if row.implementation == SIMD or
            row.implementation.startswith(SIMD + "-")] if table else []


def _collect_denominators(row, divided_by):
    """Reads back the roofs a benchmark's fractions divided by (gflops / peak_fraction, GB/s /
    bandwidth_fraction). The roof benchmarks' own gflops and gbytes_per_second are means over
    their calls, not the roofs (bench/README.md), so the report's roofs come from their roof_*
    counters, or, from a bench without those, from the fractions themselves."""
    if row.gflops and row.peak_fraction and row.threads:
        divided_by["peak"].setdefault(row.threads, []).append(row.gflops / row.peak_fraction)
    if row.gbytes_per_second and row.bandwidth_fraction:
        divided_by["bandwidth"].append(row.gbytes_per_second / row.bandwidth_fraction)


def _denominators(divided_by, fma_peak, read_bandwidth, warnings):
    """(FMA peak per thread count, read bandwidth in GB/s) as the fractions used them: the roof
    benchmark's roof_* counter, else what the fractions divided by, else the benchmark's mean.
    Warns when these disagree, since then a fraction is not the ratio of the report's figures."""
    def agreed(values, stated, what):
        candidates = values + ([stated] if stated else [])
        if candidates and max(candidates) > min(candidates) * (1 + DENOMINATOR_SPREAD):
            warnings.append(f"the fractions of this run divide by different {what}: "
                            f"{min(candidates):.4g} to {max(candidates):.4g}")
        return stated or (max(values) if values else None)

    peaks = {threads: agreed(values, None, f"FMA peaks on {threads} threads")
             for threads, values in divided_by["peak"].items()}
    if fma_peak and fma_peak.threads:
        stated = fma_peak.roof or (None if fma_peak.threads in peaks else fma_peak.gflops)
        peaks[fma_peak.threads] = agreed(divided_by["peak"].get(fma_peak.threads, []), stated,
                                         f"FMA peaks on {fma_peak.threads} threads")
    stated = read_bandwidth.roof if read_bandwidth else None
    bandwidth = agreed(divided_by["bandwidth"], stated, "read bandwidths")
    if bandwidth is None and read_bandwidth:
        bandwidth = read_bandwidth.gbytes_per_second
    return dict(sorted(peaks.items())), bandwidth


def _shape_order(tables):
    standard = [name for name in SHAPES_BY_NAME if name in tables]
    return standard + sorted(name for name in tables if name not in SHAPES_BY_NAME)

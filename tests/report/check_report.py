"""report.quick: runs `bench/compare --quick` against a built simdattn_bench and checks the report.

  check_report.py --compare bench/compare --bench build/bench/simdattn_bench --work-dir DIR

Checks, reading performance.md as a user would (nothing is imported from bench/report, so a bug
there cannot hide itself):
- compare exits 0; the report says it is a quick run; every section and a table for every shape
  a quick run covers are present; no benchmark failed;
- the quick run repeats the bench (--repeat 2), and its spread table has every shape, figures in
  order (lowest <= median <= highest) and the first run's figures, which the other tables show,
  within their ranges;
- every cell of a numeric column parses as a number (or is '—'), and the numbers agree with each
  other: GFLOP/s × time = the FLOPs per call the shape's line states, peak fraction × FMA peak (the
  16-bit roof for a row named -bf16, -fp16 or -f16) = GFLOP/s, a speedup = the peer's time over the row's, a roof = min(peak, intensity × bandwidth);
- the serving shapes a quick run keeps (mixed_prefill) have a table under '## Serving shapes' with a
  row per layout the bench registers, whose figures agree likewise, the last column being each row's
  time over the first layout's;
- the PNGs the report links exist and are PNGs when some python3 here has matplotlib, and
  otherwise the report says the plots were skipped;
- a re-render of the saved run with --no-plots says the plots were skipped, writes no PNG, and
  has the same tables.
Exit status 0 when all hold; otherwise 1, listing every failed check and keeping DIR."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

NONE = "—"
# What the report calls a row with 16-bit Q, K and V (its "## Per shape" text says so).
SIXTEEN_BIT_SUFFIXES = ("-bf16", "-fp16", "-f16")
# Shapes a quick run leaves out (bench/compare --help says why), and the serving shapes it leaves out.
QUICK_SKIPPED_SHAPES = {"long"}
QUICK_SKIPPED_SERVING = {"serve_decode", "chunked_prefill"}
SERVING_HEADING = "## Serving shapes"
SECTIONS = ["## Machine", "## Roofs measured in this run", "## Implementations", "## Summary", "## Per shape",
            "## The three stages on their own", "## Thread scaling", "## Roofline", "## Notes"]
PLOT_KEYS = ["gflops", "threads", "roofline"]
# Columns whose cells are numbers; every other column is text.
NUMERIC_HEADER = re.compile(r"time|GFLOP|fraction|speedup|GB/s|^threads$|^value$|^mean|intensity|MB|efficiency|"
                            r"FMA peak|roof \(")
# The quick run's bench runs, and the heading and cell ('median (lowest–highest)') of their spread.
REPEAT = 2
SPREAD_HEADING = f"## Spread over {REPEAT} runs"
SPREAD_CELL = re.compile(r"^([0-9.]+) \(([0-9.]+)–([0-9.]+)\)$")
# Rounding: the report prints 3 or 4 significant digits, so derived figures agree within this.
RELATIVE_TOLERANCE = 0.02


class Checks:
    """Collects failures instead of stopping at the first, so one run shows every problem."""

    def __init__(self):
        self.failures = []

    def expect(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition

    def close(self, actual, expected, what):
        """Expects actual ≈ expected within RELATIVE_TOLERANCE (plus half a unit of the last digit)."""
        if actual is None or expected is None:
            return self.expect(False, f"{what}: expected {expected}, got {actual}")
        return self.expect(abs(actual - expected) <= RELATIVE_TOLERANCE * abs(expected) + 5e-4,
                           f"{what}: expected {expected:.6g}, got {actual:.6g}")


def parse_tables(text):
    """Every Markdown table of `text` as (heading, header cells, rows of cells); the heading is the
    last '#' line above the table."""
    tables, heading, lines = [], "", text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.strip()
        if line.startswith("|") and index + 1 < len(lines) and re.match(r"^\|(---\|)+$", lines[index + 1]):
            header = split_row(line)
            rows = []
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(split_row(lines[index]))
                index += 1
            tables.append((heading, header, rows))
            continue
        index += 1
    return tables


def split_row(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def number(cell):
    """The cell's number, None for '—'; raises ValueError for anything else."""
    return None if cell == NONE else float(cell)


def check_numbers(checks, tables):
    """Every numeric column's cells parse; returns tables with numeric cells converted."""
    converted = []
    for heading, header, rows in tables:
        if heading == SPREAD_HEADING:
            continue  # its cells are ranges: check_spread reads them
        numeric = [bool(NUMERIC_HEADER.search(name)) for name in header]
        new_rows = []
        for row in rows:
            checks.expect(len(row) == len(header), f"{heading}: row {row} has {len(row)} cells, header {len(header)}")
            new_row = {}
            for name, is_numeric, cell in zip(header, numeric, row):
                if is_numeric:
                    try:
                        new_row[name] = number(cell)
                    except ValueError:
                        checks.expect(False, f"{heading}: column '{name}': expected a number or '{NONE}', got '{cell}'")
                        new_row[name] = None
                else:
                    new_row[name] = cell
                    checks.expect(not cell.startswith("error"), f"{heading}: a benchmark failed: {row}")
            new_rows.append(new_row)
        converted.append((heading, header, new_rows))
    return converted


def check_report(checks, text, expected_shapes, expected_serving, isa):
    """The report's sections, tables and the agreement of its numbers."""
    checks.expect("**Quick run**" in text, "the report does not say it was a quick run")
    for section in SECTIONS:
        checks.expect(re.search(r"^" + re.escape(section), text, re.MULTILINE), f"section missing: {section}")
    checks.expect("Failed:" not in text, "the Notes list failed benchmarks")
    tables = check_numbers(checks, parse_tables(text))
    by_heading = {heading: rows for heading, _, rows in tables}

    # The machine table's two columns are unnamed, so it is read from the raw cells.
    machine_rows = [row for heading, header, rows in parse_tables(text) if heading == "## Machine" for row in rows]
    machine = {row[0]: row[1] for row in machine_rows if len(row) == 2}
    checks.expect(machine.get("CPU") not in (None, "", "?"), "the machine table names no CPU")
    checks.expect(isa in machine.get("ISA", ""), f"the machine table's ISA does not name the bench's ISA '{isa}'")
    checks.expect(machine.get("compiler") not in (None, "", "?"), "the machine table names no compiler")

    roofs = by_heading.get("## Roofs measured in this run", [])
    peak = fma_peaks(roofs)
    # The roofline's roof is the FMA loop's own run (the first FMA peak row), not a lazily measured one.
    roof_peak = next((row["value"] for row in roofs if row["roof"] == "FMA peak"), None)
    bandwidth = next((row["value"] for row in roofs if row["roof"] == "read bandwidth"), None)
    checks.expect(peak and all(value > 0 for value in peak.values()), "no positive FMA peak in the roofs table")
    # Rows with 16-bit Q, K and V divide by the 16-bit roof, which is never below the FMA peak.
    sixteen_bit = {int(row["threads"]): row["value"] for row in roofs if row["roof"] == "16-bit roof" and row["value"]}
    for threads, value in sixteen_bit.items():
        checks.expect(value >= peak.get(threads, 0), f"the 16-bit roof {value} is below the FMA peak on {threads} threads")
    checks.expect(bandwidth and bandwidth > 0, "no positive read bandwidth in the roofs table")

    flops_per_call = dict(re.findall(r"^### (\S+)\n\n.*?; ([0-9.]+) GFLOP per call", text, re.MULTILINE))
    for shape in expected_shapes:
        rows = by_heading.get(f"### {shape}")
        if not checks.expect(rows, f"no table for shape {shape}"):
            continue
        checks.expect(shape in flops_per_call, f"### {shape}: no 'GFLOP per call' line")
        check_shape_table(checks, shape, rows, float(flops_per_call.get(shape, 0)), peak, sixteen_bit)

    summary = {row["shape"]: row for row in by_heading.get("## Summary", [])}
    checks.expect(sorted(summary) == sorted(expected_shapes),
                  f"summary shapes: expected {sorted(expected_shapes)}, got {sorted(summary)}")

    spread = [(header, rows) for heading, header, rows in parse_tables(text) if heading == SPREAD_HEADING]
    if checks.expect(spread, f"no table under '{SPREAD_HEADING}'"):
        check_spread(checks, *spread[0], summary, expected_shapes)

    serving_rows = serving_tables(text)
    for shape, layouts in expected_serving.items():
        found = serving_rows.get(shape)
        if not checks.expect(found, f"no table for serving shape {shape} under '{SERVING_HEADING}'"):
            continue
        header, rows = found
        checks.expect(shape in flops_per_call, f"### {shape}: no 'GFLOP per call' line")
        check_serving_table(checks, shape, header, rows, layouts, float(flops_per_call.get(shape, 0)), peak)

    scaling = [rows for heading, _, rows in tables if heading.startswith("## Thread scaling")]
    checks.expect(scaling and any(row["implementation"] == "simd" for row in scaling[0]),
                  "the thread scaling table has no simd row")
    for row in scaling[0] if scaling else []:
        checks.expect(row["GFLOP/s"] and row["GFLOP/s"] > 0, f"thread scaling: no GFLOP/s on {row}")

    roofline = [rows for heading, _, rows in tables if heading == "## Roofline"]
    if checks.expect(roofline, "no roofline table") and roof_peak and bandwidth:
        for row in roofline[0]:
            expected_roof = min(roof_peak, row["intensity (FLOP/byte)"] * bandwidth)
            checks.close(row["roof (GFLOP/s)"], expected_roof, f"roofline {row['shape']}: roof")
            checks.close(row["GFLOP per call"], float(flops_per_call.get(row["shape"], 0)),
                         f"roofline {row['shape']}: GFLOP per call")


def fma_peaks(roofs):
    """{threads: GFLOP/s} of the FMA peak rows of the roofs table (rows with numbers converted)."""
    return {int(row["threads"]): row["value"] for row in roofs if row["roof"] == "FMA peak" and row["value"]}


def quick_serving_rows(names):
    """{shape: [simd-<layout>, ...]} for the bench's serving/<shape>/<layout> benchmarks (`names`, as
    --benchmark_list_tests gives them) that a quick report keeps: the rows its serving tables show."""
    rows = {}
    for name in names:
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "serving" and parts[1] not in QUICK_SKIPPED_SERVING:
            rows.setdefault(parts[1], []).append("simd-" + parts[2])
    return rows


def serving_tables(text):
    """{shape: (header, rows of cells)} of the tables under '## Serving shapes'."""
    if SERVING_HEADING not in text:
        return {}
    section = text[text.index(SERVING_HEADING):]
    following = re.search(r"^## ", section[len(SERVING_HEADING):], re.MULTILINE)
    if following:
        section = section[:len(SERVING_HEADING) + following.start()]
    return {heading[len("### "):]: (header, rows) for heading, header, rows in parse_tables(section)
            if heading.startswith("### ")}


def check_serving_table(checks, shape, header, rows, layouts, gflop_per_call, peak):
    """A serving shape's table: a row per layout, none failed, and figures that agree: GFLOP/s × time
    = the GFLOP per call, peak fraction × FMA peak = GFLOP/s, the last column = the row's time over
    the first layout's (simd-paged, else simd-packed)."""
    cells = [dict(zip(header, row)) for row in rows]
    names = [row.get("implementation") for row in cells]
    checks.expect(sorted(names) == sorted(layouts), f"### {shape}: rows {names}, expected {sorted(layouts)}")
    first = next((name for name in ("simd-paged", "simd-packed") if name in names), None)
    speedup_column = header[-1]
    checks.expect(first and speedup_column == f"{first} speedup over this row",
                  f"### {shape}: last column '{speedup_column}', expected '{first} speedup over this row'")
    try:
        values = [{name: number(row[name]) for name in ("threads", "time (ms)", "GFLOP/s", "peak fraction",
                                                        speedup_column)} for row in cells]
    except (KeyError, ValueError) as error:
        checks.expect(False, f"### {shape}: a cell is not a number ({error}): {rows}")
        return
    first_time = next((value["time (ms)"] for row, value in zip(cells, values) if row["implementation"] == first), None)
    for row, value in zip(cells, values):
        what = f"### {shape}, {row['implementation']}"
        if not checks.expect(value["time (ms)"] and value["GFLOP/s"], f"{what}: no time or GFLOP/s"):
            continue
        checks.close(value["GFLOP/s"] * value["time (ms)"] / 1e3, gflop_per_call, f"{what}: GFLOP/s × time")
        if checks.expect(value["threads"] in peak, f"{what}: no FMA peak for its threads"):
            checks.close(value["peak fraction"] * peak[int(value["threads"])], value["GFLOP/s"],
                         f"{what}: peak fraction × FMA peak")
        if row["implementation"] != first and first_time:
            checks.close(value[speedup_column], value["time (ms)"] / first_time, f"{what}: {speedup_column}")


def check_spread(checks, header, rows, summary, expected_shapes):
    """The spread table: a row per shape over REPEAT runs, each range in order and holding the first
    run's figure (the summary's)."""
    shapes = [row[0] for row in rows]
    checks.expect(sorted(shapes) == sorted(expected_shapes),
                  f"spread shapes: expected {sorted(expected_shapes)}, got {sorted(shapes)}")
    for row in rows:
        cells = dict(zip(header, row))
        checks.expect(cells.get("runs") == str(REPEAT), f"spread {row[0]}: runs: expected {REPEAT}, got {cells.get('runs')}")
        for column in header[2:]:
            cell = cells.get(column, "")
            first = summary.get(row[0], {}).get(column)
            if cell == NONE:
                checks.expect(first is None, f"spread {row[0]}, {column}: '{NONE}', yet the summary has {first}")
                continue
            match = SPREAD_CELL.match(cell)
            if not checks.expect(match, f"spread {row[0]}, {column}: expected 'median (lowest–highest)', got '{cell}'"):
                continue
            median, lowest, highest = (float(group) for group in match.groups())
            checks.expect(lowest <= median <= highest, f"spread {row[0]}, {column}: out of order: '{cell}'")
            if checks.expect(first is not None, f"spread {row[0]}, {column}: a range, yet the summary has none"):
                slack = RELATIVE_TOLERANCE * abs(first) + 5e-4
                checks.expect(lowest - slack <= first <= highest + slack,
                              f"spread {row[0]}, {column}: the first run's {first} is outside '{cell}'")


def check_shape_table(checks, shape, rows, gflop_per_call, peak, sixteen_bit):
    """One shape's table: the simd row is complete and every figure agrees with the others."""
    simd = next((row for row in rows if row["implementation"] == "simd"), None)
    if not checks.expect(simd, f"### {shape}: no simd row"):
        return
    for name in ("time (ms)", "GFLOP/s", "peak fraction"):
        checks.expect(simd.get(name) is not None, f"### {shape}: simd row lacks '{name}'")
    if "bandwidth fraction" in simd:
        checks.expect(simd["bandwidth fraction"] is not None, f"### {shape}: simd row lacks 'bandwidth fraction'")
    times = {row["implementation"]: row["time (ms)"] for row in rows}
    for row in rows:
        if row["time (ms)"] is None or row["GFLOP/s"] is None:
            continue
        what = f"### {shape}, {row['implementation']}"
        checks.close(row["GFLOP/s"] * row["time (ms)"] / 1e3, gflop_per_call, f"{what}: GFLOP/s × time")
        roofs, roof_name = peak, "FMA peak"
        if row["implementation"].endswith(SIXTEEN_BIT_SUFFIXES):
            roofs, roof_name = sixteen_bit, "16-bit roof"
        if row["peak fraction"] is not None and checks.expect(row["threads"] in roofs, f"{what}: no {roof_name} for it"):
            checks.close(row["peak fraction"] * roofs[int(row["threads"])], row["GFLOP/s"],
                         f"{what}: peak fraction × {roof_name}")
        for peer, peer_time in times.items():
            column = f"speedup over {peer}"
            if peer == row["implementation"] or column not in row:
                continue
            if checks.expect(row[column] is not None or peer_time is None, f"{what}: no {column}"):
                if row[column] is not None:
                    checks.close(row[column], peer_time / row["time (ms)"], f"{what}: {column}")


def matplotlib_somewhere():
    """Whether any python3 compare may use (itself, python3 on PATH, Debian's) has matplotlib."""
    for python in {sys.executable, shutil.which("python3") or "", "/usr/bin/python3"}:
        if python and os.path.exists(python):
            if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode == 0:
                return True
    return False


def check_plots(checks, text, directory, expect_plots):
    """The linked PNGs exist and are PNGs, or the report says why there are none."""
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    on_disk = sorted(name for name in os.listdir(directory) if name.endswith(".png"))
    if expect_plots:
        checks.expect(sorted(linked) == sorted(f"performance-{key}.png" for key in PLOT_KEYS),
                      f"linked plots: expected the {PLOT_KEYS} plots, got {linked}")
        for name in linked:
            path = os.path.join(directory, name)
            if checks.expect(os.path.isfile(path), f"plot {name} is linked but missing"):
                with open(path, "rb") as png:
                    checks.expect(png.read(8) == b"\x89PNG\r\n\x1a\n", f"plot {name} is not a PNG")
                checks.expect(os.path.getsize(path) > 4096, f"plot {name} is nearly empty")
    else:
        checks.expect("Plots skipped" in text, "no plots were drawn and the report does not say they were skipped")
        checks.expect(not linked and not on_disk, f"plots skipped, yet PNGs are linked {linked} or written {on_disk}")


def strip_plot_lines(text):
    """The report without its plot links, the Plots line and blank lines (what a --no-plots render
    differs by)."""
    return "\n".join(line for line in text.splitlines()
                     if line.strip() and not line.startswith("![") and not line.startswith("Plots"))


def run(command, what):
    print("+ " + " ".join(command), flush=True)
    start = time.monotonic()
    done = subprocess.run(command)
    print(f"{what}: exit status {done.returncode} after {time.monotonic() - start:.0f} s", flush=True)
    return done.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--work-dir", required=True)
    arguments = parser.parse_args()
    checks = Checks()
    if not os.path.isfile(arguments.bench):
        print(f"FAIL: {arguments.bench} does not exist: build the simdattn_bench target first")
        return 1
    shutil.rmtree(arguments.work_dir, ignore_errors=True)
    quick_dir = os.path.join(arguments.work_dir, "quick")
    tables_dir = os.path.join(arguments.work_dir, "tables-only")
    saved = os.path.join(arguments.work_dir, "run.json")
    os.makedirs(arguments.work_dir)

    names = subprocess.run([arguments.bench, "--benchmark_list_tests"], capture_output=True, text=True,
                           check=True).stdout.split()
    shapes = [name.split("/")[1] for name in names if re.fullmatch(r"attention/[^/]+/simd", name)]
    expected_shapes = [shape for shape in shapes if shape not in QUICK_SKIPPED_SHAPES]
    expected_serving = quick_serving_rows(names)

    # The peers (PyTorch, ggml, ...) have their own test, peers.quick; this one checks the report itself.
    status = run([sys.executable, arguments.compare, "--quick", "--repeat", str(REPEAT), "--bench", arguments.bench,
                  "--out", quick_dir, "--save-json", saved, "--peers", "none"], "compare --quick")
    if checks.expect(status == 0, f"compare --quick exited with status {status}"):
        with open(os.path.join(quick_dir, "performance.md"), encoding="utf-8") as report:
            text = report.read()
        isa_match = re.search(r'"simdattn_isa": "([^"]+)"', open(saved, encoding="utf-8").read())
        check_report(checks, text, expected_shapes, expected_serving, isa_match.group(1) if isa_match else "?")
        check_plots(checks, text, quick_dir, matplotlib_somewhere())

        status = run([sys.executable, arguments.compare, "--from-json", saved, "--no-plots", "--out", tables_dir],
                     "compare --from-json --no-plots")
        if checks.expect(status == 0, f"compare --from-json exited with status {status}"):
            with open(os.path.join(tables_dir, "performance.md"), encoding="utf-8") as report:
                tables_only = report.read()
            check_plots(checks, tables_only, tables_dir, expect_plots=False)
            checks.expect(strip_plot_lines(tables_only) == strip_plot_lines(text),
                          "the re-rendered report's tables differ from the first render's")

    for failure in checks.failures:
        print("FAIL: " + failure)
    if checks.failures:
        print(f"{len(checks.failures)} checks failed; the run is kept in {arguments.work_dir}")
        return 1
    print(f"report complete: {len(expected_shapes)} shape tables, {len(expected_serving)} serving tables, "
          f"numbers consistent ({arguments.work_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

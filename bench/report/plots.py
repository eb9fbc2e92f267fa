"""The report's PNGs, drawn with matplotlib's Agg backend (no display needed).

Three plots: GFLOP/s per shape and implementation (the headline), thread scaling against the
ideal line, and the roofline of this machine with each shape as a point."""
import importlib
import os

from .results import SIMD
from .shapes import SCALING_SHAPE

# One colour and marker per implementation, the same in every plot.
STYLE = {
    "simd": ("#1f77b4", "o"),
    "simd-bf16": ("#aec7e8", "o"),
    "simd-fp16": ("#6baed6", "o"),
    "simd-f16kv": ("#3182bd", "h"),
    "simd-bf16kv": ("#9ecae1", "h"),
    "simd-i8kv": ("#08519c", "h"),
    "simd-i8rowkv": ("#08306b", "h"),
    "reference": ("#7f7f7f", "v"),
    "eigen": ("#ff7f0e", "s"),
    "openblas": ("#9467bd", "D"),
    "torch": ("#d62728", "^"),
    "torch-bf16": ("#ff9896", "^"),
    "torch-fp16": ("#f7b6d2", "^"),
    "ggml": ("#2ca02c", "P"),
    "ggml-f16kv": ("#98df8a", "P"),
    "ggml-q8kv": ("#bcbd22", "P"),
    "onnxruntime": ("#8c564b", "X"),
    "onnxruntime-fp16": ("#c49c94", "X"),
    "openvino": ("#17becf", "*"),
    "openvino-bf16": ("#9edae5", "*"),
    "openvino-f16": ("#c5b0d5", "*"),
}
FALLBACK_STYLE = ("#2ca02c", "P")
DPI = 120
# The GFLOP/s plot's legend, below its panels: entries a row, and the height of a row.
LEGEND_COLUMNS = 6
LEGEND_ROW_INCHES = 0.28


def matplotlib_missing():
    """None when matplotlib imports here, else the reason it does not."""
    try:
        importlib.import_module("matplotlib")
    except ImportError as error:
        return str(error)
    return None


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def _style(implementation):
    return STYLE.get(implementation, FALLBACK_STYLE)


def _implementations(report):
    return [SIMD] + report.peers


def _grouped_bars(axes, tables, implementations, value_of):
    """Bars of value_of(row) per table (x) and implementation (colour); an implementation that
    ran on none of these tables takes no slot."""
    implementations = [implementation for implementation in implementations
                       if any(shape_table.row(implementation) for shape_table in tables)]
    width = 0.8 / max(1, len(implementations))
    for index, implementation in enumerate(implementations):
        xs, heights = [], []
        for position, shape_table in enumerate(tables):
            row = shape_table.row(implementation)
            value = value_of(row, shape_table.shape) if row else None
            if value:
                xs.append(position - 0.4 + width * (index + 0.5))
                heights.append(value)
        if xs:
            axes.bar(xs, heights, width, label=implementation, color=_style(implementation)[0])
    axes.set_xticks(range(len(tables)))
    axes.set_xticklabels([shape_table.name for shape_table in tables], rotation=20)


def plot_gflops(report, path):
    """Compute shapes in GFLOP/s under the FMA peak; decode shapes in GB/s of K and V under the
    read bandwidth (a decode step's GFLOP/s says little: it is bound by memory)."""
    pyplot = _pyplot()
    compute = [t for t in report.shape_tables if not (t.shape and t.shape.is_decode())]
    decode = [t for t in report.shape_tables if t.shape and t.shape.is_decode()]
    panels = [panel for panel in (compute, decode) if panel]
    implementations = _implementations(report)
    # One legend for both panels, below them: with twenty implementations, a legend inside a panel
    # covers its bars.
    entries = len(implementations) + 2
    columns = min(LEGEND_COLUMNS, entries)
    legend_height = LEGEND_ROW_INCHES * ((entries + columns - 1) // columns)
    figure, axes_list = pyplot.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1, 4.5 + legend_height),
                                        squeeze=False)
    for axes, tables in zip(axes_list[0], panels):
        if tables is compute:
            _grouped_bars(axes, tables, implementations, lambda row, shape: row.gflops)
            if report.peak_gflops:
                axes.axhline(report.peak_gflops, color="black", linestyle="--", linewidth=1,
                             label=f"FMA peak, {report.fma_peak.threads} threads")
            axes.set_ylabel("GFLOP/s (useful work)")
            axes.set_title("prefill-like shapes")
        else:
            _grouped_bars(axes, tables, implementations,
                          lambda row, shape: shape.kv_bytes() / row.seconds / 1e9 if row.seconds else None)
            if report.read_gbytes_per_second:
                axes.axhline(report.read_gbytes_per_second, color="black", linestyle="--", linewidth=1,
                             label="read bandwidth")
            axes.set_ylabel("GB/s of K and V read")
            axes.set_title("decode shapes")
        axes.grid(axis="y", alpha=0.3)
    legend = {}
    for axes in axes_list[0]:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    figure.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=columns, fontsize="small",
                  frameon=False)
    figure.suptitle(report.title)
    figure.tight_layout(rect=(0, legend_height / (4.5 + legend_height), 1, 1))
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)


def plot_threads(report, path):
    """GFLOP/s against threads, with the ideal line (the 1-thread rate times the threads) and the
    FMA peak of each thread count."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(6.5, 4.5))
    all_threads = sorted({row.threads for rows in report.scaling.values() for row in rows if row.threads})
    for implementation, rows in report.scaling.items():
        measured = [(row.threads, row.gflops) for row in rows if row.gflops]
        if not measured:
            continue
        colour, marker = _style(implementation)
        axes.plot([t for t, _ in measured], [g for _, g in measured], marker=marker, color=colour,
                  label=f"{implementation}, measured")
        one = next((g for t, g in measured if t == 1), None)
        if one:
            axes.plot(all_threads, [one * t for t in all_threads], linestyle=":", color=colour,
                      label=f"{implementation}, ideal (1 thread × threads)")
    peaks = [(t, report.peak_by_threads[t]) for t in all_threads if t in report.peak_by_threads]
    if peaks:
        axes.plot([t for t, _ in peaks], [p for _, p in peaks], linestyle="--", color="black", linewidth=1,
                  label="FMA peak")
    axes.set_xticks(all_threads)
    axes.set_xlabel("threads")
    axes.set_ylabel("GFLOP/s")
    axes.set_ylim(bottom=0)
    axes.set_title(f"{report.title}\nthread scaling on {SCALING_SHAPE}", fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)


def plot_roofline(report, path):
    """Log-log attainable GFLOP/s against arithmetic intensity: the bandwidth slope and the FMA
    peak measured in this run, and each shape's measured GFLOP/s at its intensity."""
    pyplot = _pyplot()
    peak = report.peak_gflops
    bandwidth = report.read_gbytes_per_second
    points = [(t, t.shape.arithmetic_intensity()) for t in report.shape_tables if t.shape]
    ridge = peak / bandwidth
    intensities = [intensity for _, intensity in points] + [ridge]
    low, high = min(intensities) / 4, max(intensities) * 4
    figure, axes = pyplot.subplots(figsize=(9.5, 5))
    xs = [low, ridge, high]
    axes.plot(xs, [min(peak, x * bandwidth) for x in xs], color="black", linewidth=1.5,
              label=f"roof: {peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s")
    for implementation in _implementations(report):
        colour, marker = _style(implementation)
        found = [(intensity, t.row(implementation).gflops, t.name) for t, intensity in points
                 if t.row(implementation) and t.row(implementation).gflops]
        if not found:
            continue
        axes.scatter([x for x, _, _ in found], [y for _, y, _ in found], color=colour, marker=marker,
                     label=implementation, zorder=3)
        if implementation == SIMD:
            _label_points(axes, found)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP per byte of Q, K, V, O moved once)")
    axes.set_ylabel("GFLOP/s")
    axes.set_title(f"{report.title}\nroofline", fontsize="medium")
    axes.grid(which="both", alpha=0.3)
    # Beside the axes: inside, twenty implementations' entries cover the points.
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)


def _label_points(axes, points):
    """Names each (x, y, name) point; a label near an earlier one (decode shapes share their
    intensity) moves down a line so that the two stay readable."""
    placed = []
    for x, y, name in points:
        crowd = sum(1 for px, py in placed if 1 / 1.5 < x / px < 1.5 and 1 / 1.5 < y / py < 1.5)
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4 - 11 * crowd), fontsize="small")
        placed.append((x, y))


def draw_plots(report, directory, name):
    """Draws every plot this report has data for into `directory` as <name>-<key>.png and returns
    {key: file name}."""
    drawn = {}
    jobs = [("gflops", plot_gflops, bool(report.shape_tables)),
            ("threads", plot_threads, bool(report.scaling)),
            ("roofline", plot_roofline, bool(report.shape_tables and report.peak_gflops
                                              and report.read_gbytes_per_second))]
    for key, draw, has_data in jobs:
        if has_data:
            file_name = f"{name}-{key}.png"
            draw(report, os.path.join(directory, file_name))
            drawn[key] = file_name
    return drawn

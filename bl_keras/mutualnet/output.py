"""The query table written out: CSV, JSON and a top-1 vs MACs plot, and as text.

    write_table(rows, "run/query", "mobilenet_v2")   # query_table.{csv,json,png}
    print(format_table(rows))

`rows` are `bl_keras.mutualnet.table.query_table` rows.
"""

import csv
import json
import os

from bl_keras.mutualnet.table import FIELDS, pareto

TABLE_NAME = "query_table"


def write_table(rows, out_dir, title):
    """Writes query_table.csv (columns `FIELDS`), query_table.json ({"title", "fields",
    "rows", "pareto": indices of the frontier's rows, by MACs}) and query_table.png (see
    `plot_table`); returns the three paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, TABLE_NAME)
    paths = (base + ".csv", base + ".json", base + ".png")
    with open(paths[0], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    frontier = [next(i for i, row in enumerate(rows) if row is best) for best in pareto(rows)]
    with open(paths[1], "w", encoding="utf-8") as f:
        json.dump({"title": title, "fields": list(FIELDS), "rows": rows, "pareto": frontier},
                  f, indent=1)
    plot_table(rows, paths[2], title)
    return paths


def plot_table(rows, path, title):
    """Top-1 vs MACs (log scale), a line per resolution, the Pareto frontier in black. The
    figure is drawn on an Agg canvas directly, leaving pyplot's global backend alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter

    figure = Figure(figsize=(7, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for resolution in sorted({row["resolution"] for row in rows}, reverse=True):
        line = sorted((row for row in rows if row["resolution"] == resolution),
                      key=lambda row: row["macs"])
        axes.plot([row["macs"] / 1e6 for row in line], [100 * row["top1"] for row in line],
                  marker="o", markersize=3, linewidth=1, label=f"{resolution} px")
    frontier = pareto(rows)
    axes.plot([row["macs"] / 1e6 for row in frontier], [100 * row["top1"] for row in frontier],
              color="black", linestyle="--", marker="s", markersize=5, markerfacecolor="none",
              linewidth=1.5, label="Pareto frontier")
    axes.set_xscale("log")
    for axis_ticks in (axes.xaxis.set_major_formatter, axes.xaxis.set_minor_formatter):
        axis_ticks(FormatStrFormatter("%g"))  # 300, not 3 x 10^2
    axes.set_xlabel("MMACs")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(title, fontsize=10, wrap=True)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def format_table(rows):
    """The table as text; '*' marks the Pareto frontier."""
    frontier = pareto(rows)
    lines = [f"{'width':>6} {'res':>5} {'MMACs':>10} {'params M':>9} {'top-1 %':>8} "
             f"{'top-5 %':>8} {'latency ms':>11}"]
    for row in rows:
        latency = "-" if row["latency_ms"] is None else f"{row['latency_ms']:.2f}"
        mark = " *" if any(row is p for p in frontier) else ""
        lines.append(f"{row['width']:6.2f} {row['resolution']:5d} {row['macs'] / 1e6:10.2f} "
                     f"{row['params'] / 1e6:9.3f} {100 * row['top1']:8.2f} "
                     f"{100 * row['top5']:8.2f} {latency:>11}{mark}")
    lines.append("* on the top-1 vs MACs Pareto frontier")
    return "\n".join(lines)

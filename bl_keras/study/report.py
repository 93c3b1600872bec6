"""A study's results: test top-1 over seeds, cost and speed per model, MutualNet's widths; written
as study.md, study.json and study.png.

    results = collect(study_dir, runs, speeds)
    write(study_dir, results, title, references)

Spread over seeds is the sample standard deviation (and the min-max range beside it). MACs and
parameters are counted on the trained model (`bl_keras.profiling`), images/s are measured on
this machine with the models taking turns (`bl_keras.benchmark`).
"""

import json
import os
import statistics

from bl_keras.study import runs as study_runs


def summarise(values):
    """{"values", "mean", "std", "min", "max"} of per-seed results (std 0 for one seed)."""
    values = [float(v) for v in values]
    return {"values": values, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def collect(study_dir, runs, speeds):
    """The study's results from its finished runs. `speeds`: {model: {"params", "macs",
    "train_images_per_sec", "infer_images_per_sec"}} of the compared models."""
    models = {}
    for run in (r for r in runs if r.kind == "model"):
        record = study_runs.final_metrics(study_runs.run_dir(study_dir, run))
        models.setdefault(run.model, {"top1": [], "seeds": [], "epochs": record["epoch"]})
        models[run.model]["top1"].append(record["val_top1"])
        models[run.model]["seeds"].append(run.seed)
    rows = []
    for name, result in models.items():
        rows.append(dict(model=name, seeds=result["seeds"], epochs=result["epochs"],
                         top1=summarise(result["top1"]), **speeds[name]))
    baseline = rows[0] if rows else None
    for row in rows:
        row["macs_ratio_vs_first"] = baseline["macs"] / row["macs"]
        row["infer_speedup_vs_first"] = (row["infer_images_per_sec"]
                                         / baseline["infer_images_per_sec"])
        row["train_speedup_vs_first"] = (row["train_images_per_sec"]
                                         / baseline["train_images_per_sec"])
    return {"models": rows, "mutualnet": _mutualnet(study_dir, runs)}


def _mutualnet(study_dir, runs):
    """Per width: the slimmable network's query-table top-1 (at the full resolution) and the
    network of that width trained alone, over seeds; None without MutualNet runs."""
    slimmable = [r for r in runs if r.kind == "slimmable"]
    if not slimmable:
        return None
    widths = sorted({r.width for r in runs if r.kind == "fixed"}, reverse=True)
    shared, alone = {w: [] for w in widths}, {w: [] for w in widths}
    cost = {}
    for run in slimmable:
        table = study_runs.query_rows(study_runs.run_dir(study_dir, run))
        resolution = max(row["resolution"] for row in table)
        for width in widths:
            row = next((row for row in table if row["resolution"] == resolution
                        and abs(row["width"] - width) < 1e-6), None)
            if row is None:
                raise ValueError(f"the query table of {run.name} has no width {width:g} at "
                                 f"{resolution} px")
            shared[width].append(row["top1"])
            cost[width] = (row["macs"], row["params"], resolution)
    for run in (r for r in runs if r.kind == "fixed"):
        alone[run.width].append(study_runs.final_metrics(
            study_runs.run_dir(study_dir, run))["val_top1"])
    return {"model": slimmable[0].model, "resolution": cost[widths[0]][2], "rows": [
        {"width": w, "macs": cost[w][0], "params": cost[w][1],
         "slimmable_top1": summarise(shared[w]), "separate_top1": summarise(alone[w])}
        for w in widths]}


def _pct(summary):
    return (f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f} "
            f"({100 * summary['min']:.2f}-{100 * summary['max']:.2f})")


def markdown(results, title, references=(), notes=()):
    lines = [f"# {title}", ""]
    lines += [f"{note}" for note in notes]
    if notes:
        lines.append("")
    lines += ["Test top-1 in % over seeds: mean ± sample std (min-max). Speed-ups and MAC ratios "
              "are against the first model; images/s measured on this machine, models taking "
              "turns.", "",
              "| model | seeds | epochs | test top-1 % | params | MMACs | MAC ratio | "
              "train images/s | inference images/s | inference speed-up |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["models"]:
        lines.append(
            f"| {row['model']} | {len(row['seeds'])} | {row['epochs']} | {_pct(row['top1'])} | "
            f"{row['params']:,} | {row['macs'] / 1e6:.2f} | {row['macs_ratio_vs_first']:.2f}x | "
            f"{row['train_images_per_sec']:.0f} | {row['infer_images_per_sec']:.0f} | "
            f"{row['infer_speedup_vs_first']:.2f}x |")
    for name, top1 in references:
        lines.append(f"| {name} (published, for scale) | | | {top1:.1f} | | | | | | |")
    mutualnet = results.get("mutualnet")
    if mutualnet:
        lines += ["", f"## MutualNet: one slimmable {mutualnet['model']} against networks of "
                      f"each width trained alone", "",
                  f"Slimmable: the query table's top-1 at {mutualnet['resolution']} px (BatchNorm "
                  "statistics recalibrated per width); alone: `train.mutualnet --nomutual "
                  "--base_width=w`, the same recipe.", "",
                  "| width | params | MMACs | slimmable top-1 % | trained alone top-1 % | "
                  "difference (points) |", "|---:|---:|---:|---:|---:|---:|"]
        for row in mutualnet["rows"]:
            difference = 100 * (row["slimmable_top1"]["mean"] - row["separate_top1"]["mean"])
            lines.append(f"| {row['width']:g} | {row['params']:,} | {row['macs'] / 1e6:.2f} | "
                         f"{_pct(row['slimmable_top1'])} | {_pct(row['separate_top1'])} | "
                         f"{difference:+.2f} |")
    return "\n".join(lines) + "\n"


def plot(results, path, title):
    """Top-1 against MMACs: each model's mean with its min-max range; MutualNet's widths as
    two lines (slimmable, trained alone). Drawn on an Agg canvas, leaving pyplot alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row in results["models"]:
        top1 = row["top1"]
        mean = 100 * top1["mean"]
        axes.errorbar([row["macs"] / 1e6], [mean],
                      yerr=[[mean - 100 * top1["min"]], [100 * top1["max"] - mean]],
                      marker="o", capsize=4, linestyle="none", label=row["model"])
    mutualnet = results.get("mutualnet")
    if mutualnet:
        macs = [row["macs"] / 1e6 for row in mutualnet["rows"]]
        for key, label, style in (("slimmable_top1", "MutualNet (one network)", "-"),
                                  ("separate_top1", "each width trained alone", "--")):
            axes.plot(macs, [100 * row[key]["mean"] for row in mutualnet["rows"]],
                      linestyle=style, marker="s", markersize=4,
                      label=f"{mutualnet['model']}: {label}")
    axes.set_xlabel("MMACs per image")
    axes.set_ylabel("test top-1 accuracy (%)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write(study_dir, results, title, references=(), notes=(), extra=None):
    """study.md, study.json and study.png in `study_dir`; returns their paths."""
    paths = [os.path.join(study_dir, f"study.{ext}") for ext in ("md", "json", "png")]
    with open(paths[0], "w", encoding="utf-8") as f:
        f.write(markdown(results, title, references, notes))
    with open(paths[1], "w", encoding="utf-8") as f:
        json.dump(dict(results, title=title, references=dict(references), **(extra or {})), f,
                  indent=1)
    plot(results, paths[2], title)
    return paths

"""`--report DIR`: the paper's Table 2 comparison on this machine, as Markdown, JSON and a plot.

Three measurements: inference throughput (`--models`) and training throughput
(`--train_models`), the models of each taking turns in one process so that drifts in the
machine's speed cancel out of the ratios, and the peak memory of a training step at
`--memory_batch` (`--memory_models`), each model in a fresh process so none inherits another's
heap. Speed-ups are against each bL model's plain baseline (bl_resnet50 -> resnet50) when that
was measured too.
"""

import datetime
import json
import os
import platform
import textwrap

from bl_keras import models
from bl_keras.benchmark import measure

REPORT_MODELS = ("resnet50,bl_resnet50,resnet101,bl_resnet101,"
                 "resnext101_64x4d,bl_resnext101_64x4d")
# ResNeXt training on CPU runs its grouped-convolution gradients through XLA (TensorFlow has no
# CPU kernel for them): minutes per step, so the default training set is the ResNet pairs.
REPORT_TRAIN_MODELS = "resnet50,bl_resnet50,resnet101,bl_resnet101"
REPORT_MEMORY_MODELS = "resnet50,bl_resnet50"


def _names(value, default):
    return measure.split_names(value or default) or []


def speedup_table(results):
    """Markdown rows: GMACs, params, images/s and speed-up over the plain baseline."""
    by_name = {r.model: r for r in results}
    lines = ["| model | GMACs | params (M) | images/s (min-max) | GMAC/s | speed-up vs baseline "
             "| GMAC ratio |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        baseline = by_name.get(measure.baseline_of(result.model))
        speedup = gmac_ratio = "–"
        if baseline is not None:
            speedup = f"{result.images_per_sec / baseline.images_per_sec:.2f}x"
            gmac_ratio = f"{baseline.macs / result.macs:.2f}x"
        lines.append(
            f"| {result.model} | {result.gmacs:.2f} | {result.params / 1e6:.2f} | "
            f"{result.images_per_sec:.1f} ({result.images_per_sec_min:.1f}-"
            f"{result.images_per_sec_max:.1f}) | {result.gmacs_per_sec:.0f} | {speedup} | "
            f"{gmac_ratio} |")
    return "\n".join(lines)


def memory_table(results):
    lines = ["| model | batch | peak RSS (MB) | GPU peak (MB) |", "|---|---:|---:|---:|"]
    for result in results:
        gpu = f"{result.gpu_peak_mb:.0f}" if result.gpu_peak_mb is not None else "–"
        lines.append(f"| {result.model} | {result.batch} | {result.peak_rss_mb:.0f} | {gpu} |")
    return "\n".join(lines)


def plot(sections, path):
    """Throughput against GMACs, one panel per mode; bL models joined to their baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sections), figsize=(6 * len(sections), 4.5), squeeze=False)
    for axis, (title, results) in zip(axes[0], sections):
        by_name = {r.model: r for r in results}
        for result in results:
            big_little = models.get_entry(result.model).big_little
            axis.scatter(result.gmacs, result.images_per_sec, marker="o" if big_little else "s",
                         color="tab:red" if big_little else "tab:blue")
            axis.annotate(result.model, (result.gmacs, result.images_per_sec), fontsize=7,
                          xytext=(4, 4), textcoords="offset points")
            baseline = by_name.get(measure.baseline_of(result.model))
            if baseline is not None:
                axis.plot([baseline.gmacs, result.gmacs],
                          [baseline.images_per_sec, result.images_per_sec],
                          color="gray", linewidth=0.8, linestyle="--")
        axis.set_xlabel("GMACs per image")
        axis.set_ylabel("images / s")
        axis.set_title(textwrap.fill(title, 60), fontsize=9)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(directory, args, measure):
    """Run the three measurements with `measure(names, args, mode, batch, isolate)`; returns
    the Markdown path."""
    os.makedirs(directory, exist_ok=True)
    infer_names = _names(args.models, REPORT_MODELS)
    train_names = _names(args.train_models, REPORT_TRAIN_MODELS)
    memory_names = _names(args.memory_models, REPORT_MEMORY_MODELS)

    infer = measure(infer_names, args, "infer", args.batch, isolate=False) if infer_names else []
    train = measure(train_names, args, "train", args.batch, isolate=False) if train_names else []
    peak = measure(memory_names, args, "train", args.memory_batch, isolate=True)

    setting = (f"{args.precision}{', XLA' if args.jit_compile else ''}, batch {args.batch}, "
               f"{args.size}x{args.size}, median of {args.steps} steps after {args.warmup} "
               f"warm-up steps, models taking turns")
    device = infer[0].device if infer else train[0].device
    sections = [(f"inference ({setting})", infer), (f"training ({setting})", train)]
    sections = [(title, results) for title, results in sections if results]
    plot(sections, os.path.join(directory, "throughput_vs_gmacs.png"))

    text = [
        "# bl_keras benchmark",
        "",
        f"{datetime.date.today().isoformat()} · {device} · {platform.platform()} · "
        f"`python -m bl_keras.benchmark --report {directory}`",
        "",
    ]
    for title, results in sections:
        text += [f"## {title[0].upper()}{title[1:]}", "", speedup_table(results), ""]
    if peak:
        text += [f"## Peak memory of a training step (batch {args.memory_batch})", "",
                 memory_table(peak), ""]
    text += ["![throughput against GMACs](throughput_vs_gmacs.png)", ""]
    path = os.path.join(directory, "benchmark.md")
    with open(path, "w") as f:
        f.write("\n".join(text))
    with open(os.path.join(directory, "benchmark.json"), "w") as f:
        json.dump({"inference": [r.as_dict() for r in infer],
                   "training": [r.as_dict() for r in train],
                   "memory": [r.as_dict() for r in peak]}, f, indent=1)
    return path

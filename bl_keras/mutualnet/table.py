"""The MutualNet query table: every (width, resolution) sub-network measured, and a budget pick.

    rows = query_table(model, "/data/imagenet", widths_grid(0.25, 1.0, 0.05), (224, 192))
    best = best_under(rows, 150e6)          # most accurate row within the budget

A row per (width, resolution): multiply-accumulates and parameters of that sub-network, its
top-1 / top-5 accuracy on the val split and its batch-1 latency on this machine. MutualNet
(Sec. 3.3) picks a deployment configuration from such a table rather than fixing the width /
resolution trade-off before training. Writing the table out is `output`'s job.

BatchNorm: training shares one set of statistics among all widths, so each sub-network is
calibrated (`bl_keras.slimmable.calibration`) on training images at its own (width, resolution)
before it is evaluated: the same seeded sample of the train split for every row, with the
training augmentation at the row's resolution (`bl_keras.slimmable.calibration_images`).
Calibration overwrites the model's moving statistics; `query_table` saves them first and
restores them when it returns (or fails), so the caller's model is unchanged.

Latency: median wall time of a batch-1 forward pass through the traced function the table
evaluates with (the width is a tensor, so one trace serves every width; every width runs the
full layer list with sliced kernels), after warm-up. It compares rows measured on one machine;
an exported fixed network (`python -m bl_keras.export --width`) is what to time for deployment.
"""

import statistics
import time

import tensorflow as tf

from bl_keras import slimmable
from bl_keras.data import build_dataset
from bl_keras.data.preprocessing import EVAL_CROP_FRACTION
from bl_keras.layers.width import check_width
from bl_keras.slimmable.calibration import Calibrator, preserved_batch_norm
from bl_keras.slimmable.calibration_images import calibration_sample

FIELDS = ("width", "resolution", "macs", "params", "top1", "top5", "latency_ms",
          "calibration_images")
TOP_K = 5
WARMUP_RUNS = 2


def widths_grid(low, high, step):
    """Widths from `high` down to `low` inclusive in steps of `step`, rounded to 2 decimals
    (0.25..1.0 by 0.05: 16 widths). Counted in integer steps so float error adds no width."""
    if step <= 0:
        raise ValueError(f"width step must be positive, got {step}")
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"width range must satisfy 0 < low <= high <= 1, got {low}, {high}")
    count = int((high - low) / step + 1e-6)
    return [round(high - i * step, 2) for i in range(count + 1)]


def query_table(model, data_dir, widths, resolutions, calibration_images=2000, batch_size=64,
                eval_crop_fraction=EVAL_CROP_FRACTION, latency_runs=10,
                source_name="imagefolder", progress=print, augmentation=None):
    """Measures `model` (a `SlimmableNetwork`) at every (width, resolution).

    Each sub-network is calibrated on `calibration_images` training images (`augmentation`:
    `training_augmentation()` options), then evaluated on the whole val split at its
    resolution. The model's BatchNorm statistics are restored afterwards. `progress` (a
    print-like callable, or None) gets one line per finished row.

    Returns one dict per (width, resolution), resolutions outer, with the keys of `FIELDS`:
    width, resolution, macs (int), params (int), top1 and top5 (fractions), latency_ms (median
    ms per batch-1 forward, None if `latency_runs` is 0) and calibration_images (the count
    used: fewer when the train split is smaller).
    """

    widths = [check_width(float(w)) for w in widths]
    resolutions = [int(r) for r in resolutions]
    progress = progress or _silent
    forward = traced_forward(model)
    calibrator = Calibrator(model)
    sample = calibration_sample(data_dir, calibration_images, source_name)
    params = {w: slimmable.active_params(model, w) for w in widths}
    rows = []
    with preserved_batch_norm(model):
        for resolution in resolutions:
            val = build_dataset(source_name, data_dir, "val", training=False,
                                batch_size=batch_size, image_size=resolution, seed=0,
                                eval_crop_fraction=eval_crop_fraction)
            check_classes(model, val.num_classes)
            calibration = sample.batches(resolution, batch_size, augmentation)
            for width in widths:
                used = calibrator(calibration, width, num_images=calibration_images)
                rows.append(measure_row(model, forward, val.dataset, width, resolution,
                                        latency_runs, params=params[width],
                                        calibration_images=used))
                progress(f"[{len(rows)}/{len(widths) * len(resolutions)}] "
                         f"{format_config(rows[-1])}")
    return rows


def measure_row(model, forward, val_dataset, width, resolution, latency_runs, **known):
    """The table row of the (already calibrated) sub-network at (width, resolution); `known`
    holds the fields computed elsewhere (params, calibration_images)."""
    top1, top5 = evaluate(forward, val_dataset, width)
    row = dict(width=width, resolution=resolution,
               macs=int(slimmable.active_macs(model, width, resolution)), params=None,
               top1=top1, top5=top5,
               latency_ms=measure_latency(forward, width, resolution, latency_runs),
               calibration_images=None)
    row.update({key: int(value) for key, value in known.items()})
    return row


def _silent(*_args, **_kwargs):
    return None


def check_classes(model, num_classes):
    """Labels index the model's outputs, so the data must have exactly its classes."""
    if num_classes != model.classes:
        raise ValueError(f"the data has {num_classes} classes, the model {model.classes}")


def traced_forward(model):
    """One traced inference pass for every width (a float32 scalar tensor), batch and input
    size: the signature leaves them open, so no (w, r) pair or partial batch traces again."""
    def forward(images, width):
        return model(images, width=width, training=False)

    signature = [tf.TensorSpec([None, None, None, 3], tf.float32, "images"),
                 tf.TensorSpec([], tf.float32, "width")]
    return tf.function(forward, input_signature=signature, reduce_retracing=True)


def evaluate(forward, dataset, width):
    """Top-1 and top-5 accuracy (fractions) of `forward` at `width` over `dataset`."""
    width = tf.constant(width, tf.float32)
    correct1 = correct5 = total = 0
    for images, labels in dataset:
        scores = tf.cast(forward(images, width), tf.float32)
        k = min(TOP_K, int(scores.shape[-1]))
        correct1 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, scores, 1), tf.int32)))
        correct5 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, scores, k), tf.int32)))
        total += int(labels.shape[0])
    if total == 0:
        raise ValueError("the val split yielded no images")
    return correct1 / total, correct5 / total


def measure_latency(forward, width, resolution, runs):
    """Median ms of a batch-1 forward at (width, resolution) after warm-up; None if runs == 0.
    `.numpy()` waits for the result, so each time covers the whole pass."""
    if runs <= 0:
        return None
    images = tf.random.stateless_normal([1, resolution, resolution, 3], seed=(0, resolution))
    width = tf.constant(width, tf.float32)
    for _ in range(WARMUP_RUNS):
        forward(images, width).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(images, width).numpy()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def best_under(rows, budget_macs):
    """The most accurate row with macs <= `budget_macs` (ties: fewer MACs), or None."""
    fitting = [row for row in rows if row["macs"] <= budget_macs]
    if not fitting:
        return None
    return max(fitting, key=lambda row: (row["top1"], -row["macs"]))


def pareto(rows):
    """Rows no other row beats on both counts (fewer or equal MACs, higher top-1), by MACs."""
    frontier, best = [], float("-inf")
    for row in sorted(rows, key=lambda row: (row["macs"], -row["top1"])):
        if row["top1"] > best:
            frontier.append(row)
            best = row["top1"]
    return frontier


def format_config(row):
    """One line describing a row."""
    latency = "" if row["latency_ms"] is None else f", {row['latency_ms']:.2f} ms"
    return (f"width {row['width']:.2f} at {row['resolution']} px: top-1 "
            f"{100 * row['top1']:.2f} %, {row['macs'] / 1e6:.2f} MMACs, "
            f"{row['params'] / 1e6:.3f} M params{latency}")

"""The MutualNet query table: every (width, resolution) sub-network, measured, and a budget pick.

    python -m bl_keras.mutualnet.query --model run/model.keras --data /data/imagenet \\
        --resolutions 224,192,160,128 --budget_macs 150e6

    rows = query_table(model, "/data/imagenet", widths_grid(0.25, 1.0, 0.05), (224, 192))
    best = best_under(rows, 150e6)          # most accurate row within the budget
    write_table(rows, "run/query", "mobilenet_v2")

A row per (width, resolution): multiply-accumulates and parameters of that sub-network, its
top-1 / top-5 accuracy on the val split and its batch-1 latency on this machine. MutualNet
(Sec. 3.3) picks a deployment configuration from such a table rather than fixing the width /
resolution trade-off before training.

BatchNorm: training shares one set of statistics among all widths, so each sub-network is
calibrated (`bl_keras.slimmable.calibration`) on training images at its own (width, resolution)
before it is evaluated. Calibration overwrites the model's moving statistics; `query_table` saves
them first and restores them when it returns (or fails), so the caller's model is unchanged.

Calibration images are a seeded random sample of the train split (the same images for every
row), with the training augmentation at the row's resolution (see `CalibrationSample`). They
are not the first images of the file-ordered pipeline: an ImageFolder tree lists its files class
by class, so 2,000 of them would cover one or two ImageNet classes.

Latency: median wall time of a batch-1 forward pass through the traced function the table
evaluates with (the width is a tensor, so one trace serves every width; every width runs the
full layer list with sliced kernels), after warm-up. It compares rows measured on one machine;
an exported fixed network (`python -m bl_keras.export --width`) is what to time for deployment.
"""

import argparse
import contextlib
import csv
import json
import os
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import bl_keras  # noqa: F401  (registers the layers for .keras deserialization)
from bl_keras import slimmable
from bl_keras.data import SOURCES, build_dataset
from bl_keras.data.preprocessing import (EVAL_CROP_FRACTION, decode_image, normalize,
                                         train_preprocess)
from bl_keras.slimmable.calibration import Calibrator, batch_norm_layers
from bl_keras.slimmable.width import check_width

FIELDS = ("width", "resolution", "macs", "params", "top1", "top5", "latency_ms",
          "calibration_images")
TABLE_NAME = "query_table"
TOP_K = 5
WARMUP_RUNS = 2
CALIBRATION_SEED = 0


# ---------------------------------------------------------------------------------------------
# The grid and the table


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

    Each sub-network is calibrated on `calibration_images` training images, then evaluated on
    the whole val split at its resolution. The model's BatchNorm statistics are restored
    afterwards. `progress` (a print-like callable, or None) gets one line per finished row.

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


@contextlib.contextmanager
def preserved_batch_norm(model):
    """Restores the BatchNorm moving statistics of `model` on exit (calibration rewrites
    them); the weights are not touched by calibration, so nothing else needs saving."""
    variables = [variable for layer in batch_norm_layers(model)
                 for variable in (layer.moving_mean, layer.moving_variance)]
    saved = [keras.ops.convert_to_numpy(variable) for variable in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


# ---------------------------------------------------------------------------------------------
# Calibration images


def training_augmentation(min_crop_area=0.08, color_jitter=0.4, rotation_degrees=0.0):
    """The training preprocessing options calibration images get (the ImageNet recipe's by
    default; pass the run's own, e.g. the demo's gentler crops)."""
    return dict(min_crop_area=min_crop_area, color_jitter=color_jitter,
                rotation_degrees=rotation_degrees)


class CalibrationSample:
    """A fixed random sample of training records (file paths for ImageFolder: cheap to keep),
    decoded and preprocessed anew at each resolution.

    The images get the training augmentation (seeded per image, so every width and every run
    sees the same crops), as US-Net calibrates on its training loader: the statistics a network
    was trained to normalise with are those of augmented images (its moving averages are), and
    evaluation-preprocessed images can differ enough to matter (crops resample fine textures).
    """

    def __init__(self, items, load):
        self.items = items
        self.load = load

    def batches(self, resolution, batch_size, augmentation=None):
        """Batches of ImageNet-normalised [B, r, r, 3] images, in the sample's order; an
        undecodable image is skipped. `augmentation`: `training_augmentation()` options."""
        options = augmentation or training_augmentation()

        def preprocess(index, item):
            image = decode_image(self.load(item))
            seed = tf.stack([tf.constant(CALIBRATION_SEED, tf.int64), index])
            return normalize(train_preprocess(image, resolution, seed, **options))

        indices = tf.range(tf.shape(self.items, out_type=tf.int64)[0], dtype=tf.int64)
        return (tf.data.Dataset.from_tensor_slices((indices, self.items))
                .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
                .ignore_errors()
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE))


def calibration_sample(data_dir, num_images, source_name="imagefolder",
                       seed=CALIBRATION_SEED):
    """`num_images` records of the train split (plus a few spares for undecodable files),
    drawn at random with `seed` and kept, so every width and resolution calibrates on the same
    images.

    ImageFolder: a NumPy permutation of the file list, the same in every process. Other sources
    hold the encoded images, too many to list: the first records of the source's seeded
    shuffle, whose order also depends on TensorFlow's global seed."""
    if num_images <= 0:
        raise ValueError(f"calibration needs a positive image count, got {num_images}")
    count = num_images + num_images // 50 + 8
    if source_name == "imagefolder":
        source = SOURCES[source_name](data_dir, "train")
        paths = first_items(source.records, source.num_examples)
        order = np.random.default_rng(seed).permutation(source.num_examples)[:count]
        return CalibrationSample(tf.gather(paths, order), source.load)
    source = SOURCES[source_name](data_dir, "train", shuffle=True, seed=seed)
    return CalibrationSample(first_items(source.records, count), source.load)


def first_items(records, count):
    """The items (file path or encoded image) of the first `count` source records."""
    items = next(iter(records.map(lambda item, label, key: item).batch(count)), None)
    if items is None:
        raise ValueError("the train split has no images")
    return items


def calibrate(model, data_dir, width, resolution, num_images=2000, batch_size=64,
              source_name="imagefolder", augmentation=None):
    """Calibrates `model`'s BatchNorm statistics at (width, resolution) on a random sample of
    the train split, augmented as in training (overwriting them); returns the number of images
    used."""
    sample = calibration_sample(data_dir, num_images, source_name)
    return Calibrator(model)(sample.batches(resolution, batch_size, augmentation), width,
                             num_images=num_images)


# ---------------------------------------------------------------------------------------------
# Choosing and reporting


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


def format_config(row):
    """One line describing a row."""
    latency = "" if row["latency_ms"] is None else f", {row['latency_ms']:.2f} ms"
    return (f"width {row['width']:.2f} at {row['resolution']} px: top-1 "
            f"{100 * row['top1']:.2f} %, {row['macs'] / 1e6:.2f} MMACs, "
            f"{row['params'] / 1e6:.3f} M params{latency}")


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


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m bl_keras.mutualnet.query",
        description="Calibrate and evaluate a slimmable network at every (width, resolution), "
                    "write the query table and pick the best configuration under a budget.")
    parser.add_argument("--model", required=True,
                        help=f"a .keras file holding a SlimmableNetwork, or a slimmable model "
                             f"name ({', '.join(slimmable.list_models())})")
    parser.add_argument("--weights", help="with a model name: its .weights.h5 or .keras file "
                                          "(required); with a .keras model: optional")
    parser.add_argument("--classes", type=int,
                        help="with a model name: classifier outputs (default: the data's)")
    parser.add_argument("--base_width", type=float, default=1.0,
                        help="with a model name: the width multiplier it was trained at")
    parser.add_argument("--data", required=True, help="dataset root (train and val splits)")
    parser.add_argument("--source", choices=sorted(SOURCES), default="imagefolder")
    parser.add_argument("--width_step", type=float, default=0.05)
    parser.add_argument("--width_range", default="0.25,1.0", help="LOW,HIGH (inclusive)")
    parser.add_argument("--resolutions", default="224,192,160,128",
                        help="comma-separated input sizes")
    parser.add_argument("--calibration_images", type=int, default=2000)
    parser.add_argument("--budget_macs", type=float,
                        help="print the most accurate configuration within this many MACs "
                             "(e.g. 150e6)")
    parser.add_argument("--out", help="output directory (default: query/ next to the weights)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--eval_crop_fraction", type=float, default=EVAL_CROP_FRACTION)
    parser.add_argument("--min_crop_area", type=float, default=0.08,
                        help="calibration images: the training crops' smallest area fraction "
                             "(use the run's --min_crop_area)")
    parser.add_argument("--color_jitter", type=float, default=0.4,
                        help="calibration images: the training colour jitter (the run's)")
    parser.add_argument("--latency_runs", type=int, default=10,
                        help="timed batch-1 passes per row (0: no latency)")
    return parser


def parse_args(parser, argv=None):
    """Parses and checks everything that needs no model; errors exit through `parser`."""
    args = parser.parse_args(argv)
    args.resolutions = parse_resolutions(parser, args.resolutions)
    args.widths = parse_widths(parser, args.width_range, args.width_step)
    for flag in ("calibration_images", "batch_size"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag} must be positive, got {getattr(args, flag)}")
    if args.latency_runs < 0:
        parser.error(f"--latency_runs must be >= 0, got {args.latency_runs}")
    if args.budget_macs is not None and args.budget_macs <= 0:
        parser.error(f"--budget_macs must be positive, got {args.budget_macs:g}")
    for flag in ("eval_crop_fraction", "min_crop_area"):
        if not 0.0 < getattr(args, flag) <= 1.0:
            parser.error(f"--{flag} must be in (0, 1], got {getattr(args, flag)}")
    if args.color_jitter < 0:
        parser.error(f"--color_jitter must be >= 0, got {args.color_jitter}")
    check_model_flags(parser, args)
    if not os.path.isdir(args.data):
        parser.error(f"--data {args.data}: no such directory")
    return args


def parse_resolutions(parser, text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or any(value <= 0 for value in values):
        parser.error(f"--resolutions must be comma-separated positive integers, got {text!r}")
    return values


def parse_widths(parser, width_range, step):
    if step <= 0:
        parser.error(f"--width_step must be positive, got {step:g}")
    try:
        low, high = (float(part) for part in width_range.split(","))
    except ValueError:
        parser.error(f"--width_range must be LOW,HIGH, got {width_range!r}")
    try:
        return widths_grid(low, high, step)
    except ValueError as error:
        parser.error(f"--width_range: {error}")


def check_model_flags(parser, args):
    """--model is a model name or an existing .keras file; --weights, if any, exists."""
    is_name = args.model in slimmable.list_models()
    if not is_name and not args.model.endswith(".keras"):
        parser.error(f"unknown model {args.model!r}: give a .keras file or one of "
                     f"{', '.join(slimmable.list_models())}")
    if not is_name and not os.path.isfile(args.model):
        parser.error(f"--model {args.model}: no such file")
    if is_name and args.weights is None:
        parser.error(f"--model {args.model} (a name) needs --weights")
    if args.weights is not None and not os.path.isfile(args.weights):
        parser.error(f"--weights {args.weights}: no such file")
    if args.weights is not None and not args.weights.endswith((".weights.h5", ".keras")):
        parser.error(f"--weights must be a .weights.h5 or .keras file, got {args.weights}")
    args.model_is_name = is_name


def load_model(parser, args, data_classes):
    """The SlimmableNetwork named or stored by --model, with --weights loaded."""
    if args.model_is_name:
        classes = args.classes or data_classes
        model = slimmable.get(args.model, classes=classes, base_width=args.base_width,
                              classifier_activation=None)
    else:
        try:
            model = keras.models.load_model(args.model, compile=False)
        except (ValueError, TypeError) as error:
            parser.error(f"--model {args.model}: cannot load: {error}")
        if not isinstance(model, slimmable.SlimmableNetwork):
            parser.error(f"--model {args.model} holds a {type(model).__name__}, not a "
                         "bl_keras.slimmable.SlimmableNetwork")
    if args.weights is not None:
        try:
            model.load_weights(args.weights)
        except (ValueError, KeyError) as error:
            base_width = ",".join(f"{w:g}" for w in model.base_width)
            reason = str(error).strip().splitlines()[0][:300]  # Keras lists every layer
            parser.error(f"--weights {args.weights} do not fit {model.architecture} with "
                         f"{model.classes} classes at base width {base_width} (see --classes, "
                         f"--base_width): {reason}")
    return model


def check_budget(parser, args, model):
    """The budget must admit the smallest configuration (MACs grow with width and size)."""
    if args.budget_macs is None:
        return
    smallest = slimmable.active_macs(model, min(args.widths), min(args.resolutions))
    if args.budget_macs < smallest:
        parser.error(f"--budget_macs {args.budget_macs:.4g} is below the smallest "
                     f"configuration (width {min(args.widths):.2f} at "
                     f"{min(args.resolutions)} px): {smallest} MACs")


def default_out(args):
    anchor = args.weights or args.model
    return os.path.join(os.path.dirname(os.path.abspath(anchor)), "query")


def main(argv=None):
    parser = build_parser()
    args = parse_args(parser, argv)
    data_classes = SOURCES[args.source](args.data, "val").num_classes
    model = load_model(parser, args, data_classes)
    if model.classes != data_classes:
        parser.error(f"the model has {model.classes} classes, --data {args.data} "
                     f"{data_classes}")
    check_budget(parser, args, model)
    print(f"{model.architecture}: {len(args.widths)} widths x {len(args.resolutions)} "
          f"resolutions", flush=True)
    rows = query_table(model, args.data, args.widths, args.resolutions,
                       calibration_images=args.calibration_images, batch_size=args.batch_size,
                       eval_crop_fraction=args.eval_crop_fraction,
                       latency_runs=args.latency_runs, source_name=args.source,
                       progress=lambda line: print(line, flush=True),
                       augmentation=training_augmentation(args.min_crop_area,
                                                          args.color_jitter))
    print(format_table(rows))
    title = f"{model.architecture} (base width {model.base_width[0]:g}) on {args.data}"
    paths = write_table(rows, args.out or default_out(args), title)
    if args.budget_macs is not None:
        best = best_under(rows, args.budget_macs)
        print(f"best under {args.budget_macs / 1e6:.2f} MMACs: "
              f"{format_config(best) if best else 'none'}")
    print("written: " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())

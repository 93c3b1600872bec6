"""python -m bl_keras.mutualnet.query: the query table of a trained slimmable network.

    python -m bl_keras.mutualnet.query --model run/model.keras --data /data/imagenet \\
        --resolutions 224,192,160,128 --budget_macs 150e6

Loads the model, measures every (width, resolution) (`bl_keras.mutualnet.table`), prints the
table, writes query_table.csv / .json / .png (`bl_keras.mutualnet.output`) and, with a budget,
prints the most accurate configuration within it.
"""

import argparse
import os
import sys

import keras

import bl_keras  # noqa: F401  (registers the layers for .keras deserialization)
from bl_keras import slimmable
from bl_keras.command_line import HelpFormatter
from bl_keras.data import SOURCES
from bl_keras.data.preprocessing import EVAL_CROP_FRACTION
from bl_keras.mutualnet.output import format_table, write_table
from bl_keras.mutualnet.table import best_under, format_config, query_table, widths_grid
from bl_keras.slimmable.calibration_images import training_augmentation


def build_parser():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter, 
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

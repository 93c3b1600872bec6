"""python -m bl_keras.export: a .keras classifier -> TF Serving SavedModel, TFLite or ONNX file.

A slimmable network (`bl_keras.slimmable.SlimmableNetwork`) is exported as its fixed
sub-network at `--width` and `--image_size`, calibrated first on `--calibration_data` when given
(its BatchNorm statistics are shared by all widths until then: see
`bl_keras.slimmable.calibration`).
"""

import argparse
import os
import shutil
import sys


import bl_keras  # noqa: F401  (registers the layers for .keras deserialization)
from bl_keras import slimmable
from bl_keras.command_line import HelpFormatter, check_can_write
from bl_keras.data.preprocessing import EVAL_CROP_FRACTION
from bl_keras.export.head import OUTPUT_KINDS
from bl_keras.export.images import find_images, load_images
from bl_keras.export.onnx import export_onnx
from bl_keras.export.saved_model import export_saved_model
from bl_keras.export.tflite import export_tflite
from bl_keras.saving import load_model
from bl_keras.slimmable.calibration_images import calibrate, training_augmentation

FORMATS = ("saved_model", "tflite", "onnx")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bl_keras.export",
        description="Export a .keras classifier as a TF Serving SavedModel (encoded images in, "
                    "top-k classes out), as a float32 / int8 TFLite model (a preprocessed "
                    "[1, S, S, 3] image in) or as an ONNX model (preprocessed [batch, S, S, 3] "
                    "images in, the model's outputs out; needs bl_keras[onnx]).",
        formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help="the .keras file")
    parser.add_argument("--output", required=True,
                        help="SavedModel directory (e.g. models/bl_resnet50/1), .tflite or .onnx "
                             "file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output (refused otherwise)")
    parser.add_argument("--format", choices=FORMATS, default="saved_model")
    parser.add_argument("--image_size", type=int, default=224, help="input side length S")
    parser.add_argument("--crop_fraction", type=float, default=EVAL_CROP_FRACTION,
                        help="SavedModel and calibration images: the shorter side is resized "
                             "to round(S / crop_fraction) and centre-cropped to S")
    parser.add_argument("--outputs", choices=OUTPUT_KINDS, default="auto",
                        help="what the model returns; auto reads its last layer's activation")
    slim = parser.add_argument_group("slimmable networks")
    slim.add_argument("--width", type=float, default=1.0,
                      help="export the sub-network of this width multiplier, in (0, 1]")
    slim.add_argument("--calibration_data",
                      help="ImageFolder tree: recompute the BatchNorm statistics at (--width, "
                           "--image_size) on its train split before exporting")
    slim.add_argument("--calibration_images", type=int, default=2000,
                      help="training images the calibration averages over")
    slim.add_argument("--calibration_min_crop_area", type=float, default=0.08,
                      help="calibration images are augmented as in training: the run's "
                           "--min_crop_area")
    slim.add_argument("--calibration_color_jitter", type=float, default=0.4,
                      help="... and its --color_jitter")
    saved_model = parser.add_argument_group("saved_model")
    saved_model.add_argument("--labels", help="class names, one per line (default: the ids)")
    saved_model.add_argument("--top_k", type=int, default=5)
    tflite = parser.add_argument_group("tflite")
    tflite.add_argument("--quantize", choices=("none", "int8"), default="none")
    tflite.add_argument("--representative_data",
                        help="int8 calibration images: an ImageFolder tree or a flat folder")
    tflite.add_argument("--num_representative", type=int, default=100,
                        help="calibration images taken, spread evenly over the sorted files")
    tflite.add_argument("--int8_io", action="store_true",
                        help="int8 input and output (default: float32 I/O, int8 inside)")
    args = parser.parse_args(argv)
    if args.format == "tflite" and args.quantize == "int8" and not args.representative_data:
        parser.error("--quantize int8 needs --representative_data")
    if args.format != "tflite" and (args.quantize != "none" or args.int8_io):
        parser.error("--quantize and --int8_io apply to --format tflite")
    if args.format != "saved_model" and (args.labels or args.outputs != "auto"):
        parser.error("--labels and --outputs apply to --format saved_model")
    if not 0.0 < args.width <= 1.0:
        parser.error(f"--width must be in (0, 1], got {args.width:g}")
    if args.calibration_images <= 0:
        parser.error(f"--calibration_images must be positive, got {args.calibration_images}")
    if not 0.0 < args.calibration_min_crop_area <= 1.0 or args.calibration_color_jitter < 0:
        parser.error("--calibration_min_crop_area must be in (0, 1] and "
                     "--calibration_color_jitter >= 0")
    if args.calibration_data and not os.path.isdir(args.calibration_data):
        parser.error(f"--calibration_data {args.calibration_data}: no such directory")
    try:
        check_can_write(args.output, args.overwrite)
    except FileExistsError as error:
        parser.error(str(error))
    return args


def fix_width(model, args):
    """(model to export, its outputs kind). A SlimmableNetwork becomes its calibrated
    sub-network at (--width, --image_size), a functional model whose last layer carries no
    activation `head.outputs_logits` could read, so the kind comes from the network."""
    if not isinstance(model, slimmable.SlimmableNetwork):
        for flag, used in (("--width", args.width != 1.0),
                           ("--calibration_data", args.calibration_data)):
            if used:
                raise SystemExit(f"python -m bl_keras.export: error: {flag} applies to "
                                 f"slimmable networks; {args.model} holds a "
                                 f"{type(model).__name__}")
        return model, args.outputs
    if args.calibration_data:
        used = calibrate(model, args.calibration_data, args.width, args.image_size,
                         num_images=args.calibration_images,
                         augmentation=training_augmentation(args.calibration_min_crop_area,
                                                            args.calibration_color_jitter))
        print(f"calibrated at width {args.width:g}, {args.image_size} px on {used} images")
    elif args.width != 1.0:
        print("note: no --calibration_data: the sub-network keeps the BatchNorm statistics "
              "all widths shared in training", file=sys.stderr)
    outputs = args.outputs
    if outputs == "auto":
        outputs = "probabilities" if model.classifier_activation == "softmax" else "logits"
    return slimmable.serving_model(model, args.width, args.image_size), outputs


def main(argv=None):
    args = parse_args(argv)
    model, outputs = fix_width(load_model(args.model), args)
    if args.overwrite and os.path.isdir(args.output):
        shutil.rmtree(args.output)  # a SavedModel is written into a directory of its own
    if args.format == "saved_model":
        export_saved_model(model, args.output, labels=args.labels, top_k=args.top_k,
                           image_size=args.image_size, crop_fraction=args.crop_fraction,
                           outputs=outputs)
        print(f"SavedModel written to {args.output}")
        return 0

    if args.format == "onnx":
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        size = export_onnx(model, args.output, image_size=args.image_size)
        print(f"ONNX model ({size / 2**20:.2f} MiB) written to {args.output}")
        return 0

    images = None
    if args.quantize == "int8":
        paths = find_images(args.representative_data, args.num_representative)
        images, _ = load_images(paths, args.image_size, args.crop_fraction)
    parent = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(parent, exist_ok=True)
    size = export_tflite(model, args.output, image_size=args.image_size,
                         quantize=None if args.quantize == "none" else args.quantize,
                         representative_images=images, int8_io=args.int8_io)
    print(f"{args.quantize if args.quantize != 'none' else 'float32'} TFLite model "
          f"({size / 2**20:.2f} MiB) written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

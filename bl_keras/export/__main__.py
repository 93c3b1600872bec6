"""python -m bl_keras.export: a .keras classifier -> TF Serving SavedModel or TFLite file."""

import argparse
import os
import sys

import keras

import bl_keras  # noqa: F401  (registers the layers for .keras deserialization)
from bl_keras.data.preprocessing import EVAL_CROP_FRACTION
from bl_keras.export.head import OUTPUT_KINDS
from bl_keras.export.images import find_images, load_images
from bl_keras.export.saved_model import export_saved_model
from bl_keras.export.tflite import export_tflite

FORMATS = ("saved_model", "tflite")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bl_keras.export",
        description="Export a .keras classifier as a TF Serving SavedModel (encoded images in, "
                    "top-k classes out) or as a float32 / int8 TFLite model (a preprocessed "
                    "[1, S, S, 3] image in).")
    parser.add_argument("--model", required=True, help="the .keras file")
    parser.add_argument("--output", required=True,
                        help="SavedModel directory (e.g. models/bl_resnet50/1) or .tflite file")
    parser.add_argument("--format", choices=FORMATS, default="saved_model")
    parser.add_argument("--image_size", type=int, default=224, help="input side length S")
    parser.add_argument("--crop_fraction", type=float, default=EVAL_CROP_FRACTION,
                        help="SavedModel and calibration images: the shorter side is resized "
                             "to round(S / crop_fraction) and centre-cropped to S")
    parser.add_argument("--outputs", choices=OUTPUT_KINDS, default="auto",
                        help="what the model returns; auto reads its last layer's activation")
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
    if args.format == "saved_model" and (args.quantize != "none" or args.int8_io):
        parser.error("--quantize and --int8_io apply to --format tflite")
    if args.format == "tflite" and (args.labels or args.outputs != "auto"):
        parser.error("--labels and --outputs apply to --format saved_model")
    return args


def main(argv=None):
    args = parse_args(argv)
    model = keras.models.load_model(args.model, compile=False)
    if args.format == "saved_model":
        export_saved_model(model, args.output, labels=args.labels, top_k=args.top_k,
                           image_size=args.image_size, crop_fraction=args.crop_fraction,
                           outputs=args.outputs)
        print(f"SavedModel written to {args.output}")
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

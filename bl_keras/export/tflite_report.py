"""Float32 vs int8 TFLite, model by model: file sizes, int8-float agreement, CPU latency.

    python -m bl_keras.export.tflite_report --models bl_resnet50,resnet50 --out results/tflite.md
    python -m bl_keras.export.tflite_report --models runs/demo/model.keras \\
        --images demo_data/val --calibration_images demo_data/train --image_size 64 \\
        --crop_fraction 1.0 --out results/tflite_demo.md

`--models` takes registry names or .keras files. A registry name is built with random weights
(seed 0; no pretrained weights are available offline), a logits head and every residual branch
live (`zero_init_residual=False`); its BatchNorm statistics are then set from the calibration
images, so activations have the scale a trained network gives them and int8 calibration sees
realistic ranges. A .keras file is used as it is. Without `--images`, demo-dataset pictures
(shapes and textures, `bl_keras.data.demo`) are generated at the input size: 100 for
calibration, 50 for the comparison. For ImageFolder images and a model with one class per
folder, top-1 accuracies are reported too.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import keras
import numpy as np

import bl_keras
from bl_keras.command_line import HelpFormatter
from bl_keras.data.demo import make_demo_dataset
from bl_keras.data.preprocessing import EVAL_CROP_FRACTION
from bl_keras.export.images import class_of, find_images, load_images
from bl_keras.export.interpreter import TFLiteClassifier, interleaved_latencies
from bl_keras.export.tflite import convert_to_tflite
from bl_keras.saving import load_model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter, prog="python -m bl_keras.export.tflite_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="bl_resnet50,resnet50",
                        help="comma-separated registry names or .keras files")
    parser.add_argument("--images", help="comparison images (default: generated demo images)")
    parser.add_argument("--calibration_images",
                        help="int8 calibration images (default: generated demo images)")
    parser.add_argument("--num_images", type=int, default=50)
    parser.add_argument("--num_calibration", type=int, default=100)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--crop_fraction", type=float, default=EVAL_CROP_FRACTION)
    parser.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per model")
    parser.add_argument("--out", default="results/tflite.md", help="the Markdown report")
    parser.add_argument("--keep_models", help="directory to keep the .tflite files in")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        eval_dir, calibration_dir = _image_dirs(args, scratch)
        eval_images, eval_labels, class_dirs = _load(eval_dir, args.num_images, args)
        calibration, _, _ = _load(calibration_dir, args.num_calibration, args)
    rows, classifiers = [], {}
    for spec in args.models.split(","):
        print(f"== {spec}", flush=True)
        row, converted = _convert_and_compare(spec, _model(spec, calibration), calibration,
                                              eval_images, eval_labels, class_dirs, args)
        rows.append(row)
        classifiers.update({(len(rows) - 1, kind): c for kind, c in converted.items()})
    # Timed last and in turns (see interleaved_latencies), all models under the same load.
    load_before = os.getloadavg()[0]
    times = interleaved_latencies(classifiers, eval_images[0], runs=args.runs)
    for (i, kind), t in times.items():
        rows[i][f"{kind}_ms"] = (statistics.median(t) * 1000, min(t) * 1000)
    load = (load_before, os.getloadavg()[0])
    report = _markdown(rows, args, len(eval_images), len(calibration), load)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(report)
    return 0


def _image_dirs(args, scratch):
    if args.images and args.calibration_images:
        return args.images, args.calibration_images
    root = make_demo_dataset(os.path.join(scratch, "demo"), num_classes=10,
                             train_per_class=max(1, args.num_calibration // 10),
                             val_per_class=max(1, args.num_images // 10),
                             image_size=args.image_size, seed=1)
    return (args.images or os.path.join(root, "val"),
            args.calibration_images or os.path.join(root, "train"))


def _load(directory, limit, args):
    images, paths = load_images(find_images(directory, limit), args.image_size,
                                args.crop_fraction)
    classes = [class_of(p, directory) for p in paths]
    class_dirs = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    labels = None
    if None not in classes:
        labels = np.array([class_dirs.index(c) for c in classes])
    return images, labels, class_dirs


def _model(spec, calibration):
    if spec.endswith(".keras"):
        return load_model(spec)
    keras.utils.set_random_seed(0)
    model = bl_keras.models.get(spec, classifier_activation=None, zero_init_residual=False)
    _set_batchnorm_statistics(model, calibration[:32])
    return model


def _set_batchnorm_statistics(model, images):
    """Moving mean/variance := the statistics of `images` (one training-mode pass, momentum 0).

    Layers are visited by Keras' own recursive walk (`_flatten_layers`), since the BN layers
    sit inside the bL and residual blocks.
    """
    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def _convert_and_compare(spec, model, calibration, images, labels, class_dirs, args):
    """Converts `model` to float32 and int8 TFLite; compares their outputs on `images`."""
    start = time.perf_counter()
    float_bytes = convert_to_tflite(model, args.image_size)
    float_seconds = time.perf_counter() - start
    start = time.perf_counter()
    int8_bytes = convert_to_tflite(model, args.image_size, quantize="int8",
                                   representative_images=calibration)
    int8_seconds = time.perf_counter() - start
    if args.keep_models:
        os.makedirs(args.keep_models, exist_ok=True)
        stem = os.path.join(args.keep_models, os.path.basename(spec).removesuffix(".keras"))
        for suffix, content in (("", float_bytes), ("_int8", int8_bytes)):
            with open(f"{stem}{suffix}.tflite", "wb") as f:
                f.write(content)

    runners = {kind: TFLiteClassifier(model_content=content, num_threads=args.threads)
               for kind, content in (("float", float_bytes), ("int8", int8_bytes))}
    outputs = {kind: np.concatenate([run(image) for image in images])
               for kind, run in runners.items()}
    top1 = {kind: out.argmax(axis=1) for kind, out in outputs.items()}
    centred = [out - out.mean(axis=0) for out in outputs.values()]
    row = dict(
        model=os.path.basename(spec),
        random_weights=not spec.endswith(".keras"),
        # Trainable parameters, as the paper (and the README table) count them.
        params_m=sum(int(np.prod(w.shape)) for w in model.trainable_weights) / 1e6,
        float_mb=len(float_bytes) / 2**20,
        int8_mb=len(int8_bytes) / 2**20,
        agreement=float(np.mean(top1["float"] == top1["int8"])),
        float_classes=len(set(top1["float"].tolist())),
        correlation=float(np.corrcoef(centred[0].ravel(), centred[1].ravel())[0, 1]),
        convert_s=(float_seconds, int8_seconds),
        # Ops XNNPACK cannot take split the graph; each piece is one DELEGATE node.
        partitions={kind: _delegate_count(run) for kind, run in runners.items()},
    )
    if labels is not None and outputs["float"].shape[1] == len(class_dirs):
        row["accuracy"] = tuple(float(np.mean(top1[k] == labels)) for k in ("float", "int8"))
    return row, runners


def _delegate_count(classifier):
    return sum(op["op_name"] == "DELEGATE" for op in classifier.interpreter._get_ops_details())


def _markdown(rows, args, num_images, num_calibration, load):
    source = args.images or "generated demo-dataset images"
    lines = [
        "# TFLite float32 vs int8",
        "",
        f"Input [1, {args.image_size}, {args.image_size}, 3] float32 (preprocessed: resize "
        f"{round(args.image_size / args.crop_fraction)}, centre crop {args.image_size}, "
        "ImageNet mean/std). int8: full-integer post-training quantization, float32 I/O, "
        f"calibrated on {num_calibration} images. Agreement and correlation on {num_images} "
        f"other images ({source}). Latency: median (and minimum) of {args.runs} runs of the "
        f"TFLite interpreter (XNNPACK), batch 1, {args.threads} threads, {os.cpu_count()} CPU "
        "cores, the models taking turns; 1-minute load average "
        f"{load[0]:.2f} before and {load[1]:.2f} after the timing.",
        "",
        "| model | params (M) | float32 MiB | int8 MiB | int8 = float top-1 | float top-1 "
        "classes seen | logit correlation | float32 ms (min) | int8 ms (min) | speed-up | "
        "XNNPACK partitions float32 / int8 |"
        + (" top-1 acc float / int8 |" if any("accuracy" in r for r in rows) else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|" if any("accuracy" in r for r in rows) else ""),
    ]
    for r in rows:
        line = (f"| {r['model']} | {r['params_m']:.2f} | {r['float_mb']:.1f} | "
                f"{r['int8_mb']:.1f} | {r['agreement']:.0%} | {r['float_classes']} | "
                f"{r['correlation']:.3f} | {r['float_ms'][0]:.1f} ({r['float_ms'][1]:.1f}) | "
                f"{r['int8_ms'][0]:.1f} ({r['int8_ms'][1]:.1f}) | "
                f"{r['float_ms'][0] / r['int8_ms'][0]:.2f}x | "
                f"{r['partitions']['float']} / {r['partitions']['int8']} |")
        if "accuracy" in r:
            line += f" {r['accuracy'][0]:.1%} / {r['accuracy'][1]:.1%} |"
        lines.append(line)
    lines.append("")
    if any(r["random_weights"] for r in rows):
        lines.append(
            "Registry models have random weights (seed 0, logits head, residual branches live) "
            "with BatchNorm statistics set from the calibration images: the numbers measure the "
            "conversion, not ImageNet accuracy. ")
    lines += [
        "*Logit correlation*: Pearson correlation of int8 and float32 logits after subtracting "
        "each class's mean over the images (what the image changes). *Classes seen*: distinct "
        "float32 top-1 classes among the images; agreement means little when it is small.",
        "",
        "Conversion seconds (float32, int8): "
        + ", ".join(f"{r['model']} {r['convert_s'][0]:.0f}, {r['convert_s'][1]:.0f}"
                    for r in rows) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

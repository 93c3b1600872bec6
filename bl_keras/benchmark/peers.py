"""Our models against the engines a user could pick instead, in one run, taking turns.

    python -m bl_keras.benchmark --models bl_resnet50 --peers --authors_code=BigLittleNet/

For each model: our Keras model in TensorFlow, our ONNX export (`bl_keras.export.onnx`) in
ONNX Runtime and in OpenVINO (float32 and bf16), and the authors' released architecture (their
`models` package from a checkout of their repository, given by --authors_code) in PyTorch eager,
through ONNX Runtime (exported by `torch.onnx.export`) and in OpenVINO (converted from PyTorch).
Engines that are not installed are skipped (the `bench` extra installs onnxruntime and
openvino, the `onnx` extra tf2onnx for our export; PyTorch is installed on its own, its CPU
build). All engines run the same random batch of preprocessed images and
take turns, one batch each per round, so the machine's drift hits all alike; each row gives the
median images/s and its ratio to our Keras model. Weights are random (same architecture, not the
same numbers: speed does not depend on them).
"""

import dataclasses
import importlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time

import numpy as np

# Registry name -> the authors' builder and its arguments (their `models` package).
AUTHORS_MODELS = {
    "bl_resnet50": ("blresnet_model", dict(depth=50, alpha=2, beta=4)),
    "bl_resnet101": ("blresnet_model", dict(depth=101, alpha=2, beta=4)),
    "bl_resnet152": ("blresnet_model", dict(depth=152, alpha=2, beta=4)),
    "bl_resnext50_32x4d": ("blresnext_model",
                           dict(depth=50, basewidth=4, cardinality=32, alpha=2, beta=4)),
    "bl_resnext101_32x4d": ("blresnext_model",
                            dict(depth=101, basewidth=4, cardinality=32, alpha=2, beta=4)),
    "bl_seresnext50_32x4d": ("blseresnext_model",
                             dict(depth=50, basewidth=4, cardinality=32, alpha=2, beta=4)),
}


@dataclasses.dataclass
class PeerResult:
    model: str
    engine: str  # e.g. "TensorFlow 2.21.0 (ours, Keras)"
    images_per_sec: float
    ratio: float = None  # to our Keras model


def authors_model(code_dir, name, classes=1000):
    """The authors' PyTorch model of registry name `name`, built by their `models` package in
    `code_dir` (a checkout of their repository)."""
    if name not in AUTHORS_MODELS:
        raise ValueError(f"no released architecture for {name!r}; known: "
                         f"{', '.join(AUTHORS_MODELS)}")
    if not os.path.isdir(os.path.join(code_dir, "models")):
        raise FileNotFoundError(f"--authors_code {code_dir}: no models/ package (a checkout of "
                                f"the authors' repository is expected)")
    # Loaded under a name of its own (their package is called `models`, a name other code may
    # use), as a package so that its relative imports work.
    directory = os.path.join(os.path.abspath(code_dir), "models")
    spec = importlib.util.spec_from_file_location(
        "bl_keras_authors_models", os.path.join(directory, "__init__.py"),
        submodule_search_locations=[directory])
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    builder, options = AUTHORS_MODELS[name]
    model = getattr(package, builder)(num_classes=classes, **options)
    return model.eval()


def _versions():
    found = {}
    for module in ("tensorflow", "tf2onnx", "onnxruntime", "openvino", "torch"):
        try:
            # (OpenVINO's version string carries its build: keep the release)
            found[module] = importlib.import_module(module).__version__.split("-")[0]
        except ImportError:
            pass
    return found


def _onnxruntime(path, threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _openvino(model, precision, threads, example=None):
    import openvino

    if not isinstance(model, str):  # a PyTorch module
        model = openvino.convert_model(model, example_input=example)
    compiled = openvino.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads})
    return lambda x: compiled(x)[0]


def engines(name, classes, precision, authors_code, batch, size, workdir, threads):
    """[(engine label, callable on the NHWC float32 batch)] of model `name`: ours in
    TensorFlow at Keras dtype policy `precision`, and the others (ONNX files are float32)."""
    import keras
    import tensorflow as tf

    from bl_keras import models
    from bl_keras.export.onnx import export_onnx
    from bl_keras.layers.inference import fold_for_inference, weight_cache_enabled

    def build():
        return models.get(name, classes=classes, classifier_activation=None)

    versions = _versions()
    keras.config.set_dtype_policy(precision)
    try:
        keras_model = build()
        fold_for_inference(keras_model)  # as served
    finally:
        keras.config.set_dtype_policy("float32")
    cache = ", weight cache" if weight_cache_enabled() else ""  # oneDNN's, as in serving
    found = [(f"TensorFlow {versions['tensorflow']} {precision} (ours, Keras{cache})",
              tf.function(lambda x: keras_model(x, training=False)))]
    ours_onnx = os.path.join(workdir, f"{name}_ours.onnx")
    exported = "tf2onnx" in versions and ("onnxruntime" in versions or "openvino" in versions)
    if exported:
        export_onnx(build(), ours_onnx, image_size=size)
    if exported and "onnxruntime" in versions:
        found.append((f"ONNX Runtime {versions['onnxruntime']} (ours, ONNX export)",
                      _onnxruntime(ours_onnx, threads)))
    if exported and "openvino" in versions:
        for precision in ("f32", "bf16"):
            found.append((f"OpenVINO {versions['openvino']} {precision} (ours, ONNX export)",
                          _openvino(ours_onnx, precision, threads)))
    if not authors_code:
        return found
    if "torch" not in versions:
        raise ValueError("--authors_code needs PyTorch (its CPU build; the bench extra does "
                         "not install it)")
    import torch

    torch.set_num_threads(threads)
    theirs = authors_model(authors_code, name, classes=classes)
    example = torch.zeros((batch, 3, size, size))

    def torch_eager(x):
        with torch.inference_mode():  # the authors' models take NCHW
            return theirs(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()

    found.append((f"PyTorch {versions['torch']} eager (authors')", torch_eager))
    nchw = lambda run: (lambda x: run(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))  # noqa: E731
    if "onnxruntime" in versions:
        theirs_onnx = os.path.join(workdir, f"{name}_authors.onnx")
        torch.onnx.export(theirs, (example,), theirs_onnx, input_names=["images"],
                          dynamic_axes={"images": {0: "batch"}}, dynamo=False)
        found.append((f"ONNX Runtime {versions['onnxruntime']} (authors', torch.onnx)",
                      nchw(_onnxruntime(theirs_onnx, threads))))
    if "openvino" in versions:
        for precision in ("f32", "bf16"):
            found.append((f"OpenVINO {versions['openvino']} {precision} (authors', from "
                          f"PyTorch)", nchw(_openvino(theirs, precision, threads, example))))
    return found


def compare(names, authors_code=None, batch=16, size=224, classes=1000, steps=10, warmup=3,
            precision="float32", threads=None):
    """[PeerResult] of every engine for each of `names`, engines taking turns per model."""
    threads = threads or os.cpu_count()
    images = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype(np.float32)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            runs = engines(name, classes, precision, authors_code, batch, size, workdir,
                           threads)
            times = {label: [] for label, _ in runs}
            for round_ in range(warmup + steps):
                for label, run in runs:
                    start = time.perf_counter()
                    np.asarray(run(images))
                    if round_ >= warmup:
                        times[label].append(time.perf_counter() - start)
            rates = {label: batch / statistics.median(t) for label, t in times.items()}
            ours = rates[runs[0][0]]
            results.extend(PeerResult(name, label, rate, rate / ours)
                           for label, rate in rates.items())
    return results


def format_peers(results, batch, size):
    lines = [f"Engines on the CPU ({os.cpu_count()} cores), batch {batch}, {size}x{size}, "
             "taking turns (images/s: median; ratio: to our Keras model)",
             f"{'model':<22} {'engine':<62} {'images/s':>9} {'ratio':>6}"]
    for result in results:
        lines.append(f"{result.model:<22} {result.engine:<62} {result.images_per_sec:>9.1f} "
                     f"{result.ratio:>6.2f}")
    return "\n".join(lines)

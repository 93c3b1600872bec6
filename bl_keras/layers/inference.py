"""Inference on BatchNorm-folded weights computed once instead of at every call.

At inference `ConvBN` folds BatchNorm into its kernel (kernel * gamma / sqrt(var + eps), bias
beta - mean * scale) on every call, and under a mixed policy casts the result to bfloat16: a
pass over every weight per call, right for a model whose weights may change between calls.
A model that only infers (serving, a benchmark, an evaluation pass) can fold once:

    with bl_keras.layers.folded_inference(model):
        probabilities = model.predict(images)

Inside the block every full-width `ConvBN` convolves with its folded kernel and bias, held in
variables of the layer's compute dtype; on leaving, the layers fold per call again. Outputs
are identical (the same float32 fold, the same one rounding). Training inside the block is an
error, since it would change the weights under the folded copy; weights assigned inside the
block (`load_weights`) take effect after it. A slimmed sub-network (width < 1) folds per call
as before. On a 2-core AVX-512-bf16 CPU at batch 16, folding once made a mixed_bfloat16
inference step of ResNet-50 4% and of bL-ResNet-50 9% faster (bL has as many weights for fewer
MACs, so the per-call pass over them is a larger share of its step).

A process that only infers can also let TensorFlow's oneDNN convolutions keep each kernel in
their own blocked layout instead of reordering it at every call: `cache_weights_for_inference()`
sets TensorFlow's `TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1` (read once, when the first oneDNN
convolution is created). It is for inference only: every convolution of the process, training
ones included, then keeps the first weights it sees, so the trainer refuses to train under it
(`check_weights_can_train`). `python -m bl_keras.benchmark` sets it for inference runs.
"""

import contextlib
import os

from bl_keras.layers.conv import ConvBN


def _conv_bn_layers(model):
    return [layer for layer in model._flatten_layers(include_self=True, recursive=True)
            if isinstance(layer, ConvBN)]


def _forget_compiled_predict(model):
    # Keras caches its traced predict step: one traced before (or inside) the block would keep
    # the other weights.
    if hasattr(model, "predict_function"):
        model.predict_function = None


def fold_for_inference(model):
    """Folds every ConvBN of `model` once. Returns a `tf.Module` holding the folded variables,
    to hand to `keras.export.ExportArchive.track` when a serving function runs folded. Undo
    with `unfold(model)`, or use the `folded_inference` context manager."""
    import tensorflow as tf

    if not model.built:
        raise ValueError(f"{model.name}: build the model (call it once) before folding it")
    variables = []
    for layer in _conv_bn_layers(model):
        variables.extend(layer.fold_for_inference())
    _forget_compiled_predict(model)
    holder = tf.Module(name="folded_inference")
    holder.folded = variables
    return holder


def unfold(model):
    """Returns every ConvBN of `model` to folding at each call."""
    for layer in _conv_bn_layers(model):
        layer.release_folded()
    _forget_compiled_predict(model)


@contextlib.contextmanager
def folded_inference(model):
    """Runs `model`'s inference on weights folded once (see the module docstring); yields
    what `fold_for_inference` returns."""
    folded = fold_for_inference(model)
    try:
        yield folded
    finally:
        unfold(model)


WEIGHT_CACHE_ENV = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"


def weight_cache_enabled(environ=None):
    """Whether `environ` (default: this process's) tells oneDNN that weights never change."""
    value = (os.environ if environ is None else environ).get(WEIGHT_CACHE_ENV, "")
    return value.strip().lower() in ("1", "true")


def cache_weights_for_inference(environ=None):
    """Turns on oneDNN's weight cache for a process that will only infer, unless `environ`
    already names `WEIGHT_CACHE_ENV` (so `=0` keeps it off); returns whether it is on. Call it
    before any convolution runs: TensorFlow reads the variable once."""
    environ = os.environ if environ is None else environ
    environ.setdefault(WEIGHT_CACHE_ENV, "1")
    return weight_cache_enabled(environ)


def check_weights_can_train(environ=None):
    """Raises `RuntimeError` when the weight cache is on: training would update the weights
    but the convolutions would keep computing with the first ones."""
    if weight_cache_enabled(environ):
        raise RuntimeError(
            f"{WEIGHT_CACHE_ENV} is set: TensorFlow's oneDNN convolutions would keep the first "
            "weights they see and training would not change what they compute. It is for "
            f"processes that only infer; unset it (or set {WEIGHT_CACHE_ENV}=0) to train")

"""Post-training BatchNorm statistics for one (width, resolution) (US-Net, MutualNet Sec. 3).

BatchNorm statistics are shared by all widths while training, so a sub-network needs its own
before it is evaluated: run about 2,000 training images through it in training mode, with every
BN layer averaging its batch statistics exactly (the k-th batch weighs 1/k), and keep the
result in the moving statistics of the channels that sub-network uses. Weights do not change.

This module takes image batches from anywhere; `calibration_images` draws them from a dataset's
train split, augmented as in training.
"""

import contextlib

import keras
import tensorflow as tf

from bl_keras.layers import width as widths
from bl_keras.layers.width import calibrating  # noqa: F401  (the context the steps run in)


def batch_norm_layers(model):
    """The BatchNorm layers of `model` (those of its `ConvBN`s), in weight order."""
    position = {id(w): i for i, w in enumerate(model.weights)}
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    return sorted(layers, key=lambda layer: position[id(layer.moving_mean)])


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


class Calibrator:
    """Recomputes BatchNorm statistics of `model` at any (width, resolution), one traced step
    for all widths (the width is a tensor) and one per input size."""

    def __init__(self, model):
        self.model = model
        self._weight = tf.Variable(1.0, trainable=False, dtype=tf.float32)

        def step(images, width):
            with calibrating(self._weight):
                model(images, width=width, training=True)

        self._step = tf.function(step, reduce_retracing=True)

    def __call__(self, images, width, resolution=None, num_images=2000):
        """Calibrate at `width` on `images` (see `image_batches`: an iterable of float
        [B, H, W, 3] image batches, or one such batch), resized to `resolution` when given,
        until `num_images` have been seen. Returns the count used."""
        widths.check_width(width)
        seen, batches = 0, 0
        for batch in image_batches(images):
            if resolution is not None:
                batch = resize_images(batch, resolution)
            batch = batch[: max(num_images - seen, 0)]
            if batch.shape[0] == 0:
                break
            batches += 1
            self._weight.assign(1.0 / batches)
            self._step(batch, tf.constant(width, tf.float32))
            seen += int(batch.shape[0])
            if seen >= num_images:
                break
        if seen == 0:
            raise ValueError("calibration got no images")
        return seen


def image_batches(images):
    """The [B, H, W, 3] batches of `images`: an iterable of batches or of (batch, labels, ...)
    tuples (a list, a batched tf.data.Dataset), or a single rank-4 array or tensor, taken as one
    batch. Anything else raises a ValueError naming what it got."""
    if _rank(images) == 4:
        images = [images]
    elif _rank(images) is not None:
        raise ValueError(f"calibration images must be batches of [B, H, W, 3] images (an "
                         f"iterable such as a batched tf.data.Dataset, or one rank-4 array); "
                         f"got an array of shape {tuple(images.shape)}")
    for batch in images:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        if _rank(batch) != 4:
            got = (f"shape {tuple(batch.shape)}" if _rank(batch) is not None
                   else f"a {type(batch).__name__}")
            raise ValueError(f"calibration batches must be [B, H, W, 3] images, got {got} "
                             "(an unbatched tf.data.Dataset? batch it first)")
        yield batch


def _rank(value):
    """The rank of an array or tensor, None for anything else (a list, a dataset)."""
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, tf.data.Dataset):
        return None
    return len(shape)


def resize_images(images, resolution):
    """Bilinear resize of an image batch to `resolution` x `resolution` (as in training)."""
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    return tf.image.resize(images, (resolution, resolution), method="bilinear")


def calibrate_batch_norm(model, images, width, resolution=None, num_images=2000):
    """One-off `Calibrator(model)(images, width, resolution, num_images)`; `images` is an
    iterable of [B, H, W, 3] batches (e.g. a batched tf.data.Dataset) or one such batch."""
    return Calibrator(model)(images, width, resolution, num_images)

"""Merging the branches of a Big-Little module.

Branches arrive at different resolutions: the big branch at half the little branch's. Before
merging, every input is resized (upsampled) on `resize_axes` to the size of the reference input
(the last one: the little, full-resolution branch), and centre-cropped on `crop_axes` to the
smallest input there (the speech models pad nothing in time, so deeper branches come out shorter).
"""

import keras
from keras import ops

from bl_keras.layers.conv import ConvBN
from bl_keras.layers.norm import norm_config
from bl_keras.layers.resize import UPSAMPLE_METHODS, centre_crop, resize_to

register = keras.saving.register_keras_serializable(package="bl_keras")


class _Merge(keras.layers.Layer):
    """Aligns a list of branch outputs; subclasses combine them."""

    def __init__(self, upsample="nearest", resize_axes=(1, 2), crop_axes=(), **kwargs):
        super().__init__(**kwargs)
        if upsample not in UPSAMPLE_METHODS:
            raise ValueError(f"upsample must be one of {UPSAMPLE_METHODS}, got {upsample!r}")
        self.upsample = upsample
        self.resize_axes = tuple(resize_axes)
        self.crop_axes = tuple(crop_axes)

    def align(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} expects a list of at least two tensors")
        target = ops.shape(inputs[-1])
        aligned = [resize_to(x, target, self.resize_axes, self.upsample) for x in inputs]
        for axis in self.crop_axes:
            sizes = [ops.shape(x)[axis] for x in aligned]
            if all(isinstance(s, int) for s in sizes):
                size = min(sizes)
            else:
                size = sizes[0]
                for s in sizes[1:]:
                    size = ops.minimum(size, s)
            aligned = [centre_crop(x, axis, size) for x in aligned]
        return aligned

    def _aligned_shape(self, input_shapes):
        shape = list(input_shapes[-1])
        for axis in self.crop_axes:
            sizes = [s[axis] for s in input_shapes]
            shape[axis] = None if None in sizes else min(sizes)
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            upsample=self.upsample, resize_axes=self.resize_axes, crop_axes=self.crop_axes
        )
        return config


@register
class MergeAdd(_Merge):
    """Align the branches, add them, then apply ReLU (`activation="relu"`) or nothing (None)."""

    def __init__(self, activation="relu", **kwargs):
        super().__init__(**kwargs)
        if activation not in ("relu", None):
            raise ValueError(f"MergeAdd activation must be 'relu' or None, got {activation!r}")
        self.activation = activation

    def call(self, inputs, training=None):
        aligned = self.align(inputs)
        x = aligned[0]
        for y in aligned[1:]:
            x = x + y
        return ops.relu(x) if self.activation == "relu" else x

    def compute_output_shape(self, input_shapes):
        return self._aligned_shape(input_shapes)

    def get_config(self):
        config = super().get_config()
        config.update(activation=self.activation)
        return config


@register
class MergeConcat(_Merge):
    """Align the branches, concatenate channels, then 1x1 conv + BN + ReLU to `filters` channels."""

    def __init__(self, filters, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.norm = norm_config(norm)
        self.fuse = ConvBN(self.filters, 1, name="fuse", norm=self.norm, dtype=self.dtype_policy)

    def build(self, input_shapes):
        shape = list(self._aligned_shape(input_shapes))
        shape[-1] = sum(s[-1] for s in input_shapes)
        self.fuse.build(tuple(shape))

    def call(self, inputs, training=None):
        return self.fuse(ops.concatenate(self.align(inputs), axis=-1), training=training)

    def compute_output_shape(self, input_shapes):
        return self._aligned_shape(input_shapes)[:-1] + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, norm=self.norm)
        return config

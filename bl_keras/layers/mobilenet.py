"""The MobileNet units, made of `ConvBN` (so they run at any width like every other layer).

- `DepthwiseSeparable` (MobileNet v1): 3x3 depthwise conv -> BN -> ReLU6 -> 1x1 conv -> BN ->
  ReLU6.
- `InvertedResidual` (MobileNet v2): 1x1 expansion to t x the input's channels -> BN -> ReLU6 ->
  3x3 depthwise -> BN -> ReLU6 -> 1x1 projection -> BN (+ identity).

Both use TensorFlow "same" padding, as keras.applications does. Under a width the depthwise convs
follow their input's channels, the expansion stays t x its input's count (US-Net's ratio) and
the projection slims with the width.
"""

import keras

from bl_keras.layers.conv import ConvBN
from bl_keras.layers.norm import norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")
# Kaiming-normal over fan_in, as the slimmable MobileNets were always initialised: the ResNets'
# fan_out rule gives a depthwise kernel (k, k, 1, C) a C times smaller scale, and sandwich-rule
# training from it reached 72% instead of 93-96% on the MutualNet test set.
MOBILENET_INIT = "he_normal"


def depthwise(channels, strides, name, norm, dtype):
    """A 3x3 depthwise ConvBN (one group per channel) with ReLU6."""
    return ConvBN(channels, 3, strides, groups=channels, activation="relu6", padding="same",
                  norm=norm, name=name, dtype=dtype, kernel_initializer=MOBILENET_INIT)


class _Unit(keras.layers.Layer):
    """Runs its ConvBN sublayers in order (attributes named in `_order`)."""

    _order = ()

    def _units(self):
        return [getattr(self, n) for n in self._order if getattr(self, n) is not None]

    def build(self, input_shape):
        shape = input_shape
        for unit in self._units():
            unit.build(shape)
            shape = unit.compute_output_shape(shape)

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for unit in self._units():
            shape = unit.compute_output_shape(shape)
        return shape

    def call(self, inputs, training=None):
        x = inputs
        for unit in self._units():
            x = unit(x, training=training)
        return x


@register
class DepthwiseSeparable(_Unit):
    """MobileNet v1's unit: `in_channels` -> `filters`, the depthwise conv strided."""

    _order = ("depthwise", "pointwise")

    def __init__(self, in_channels, filters, strides=1, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.filters = int(in_channels), int(filters)
        self.strides, self.norm = int(strides), norm_config(norm)
        self.depthwise = depthwise(self.in_channels, self.strides, "depthwise", self.norm,
                                   self.dtype_policy)
        self.pointwise = ConvBN(self.filters, 1, activation="relu6", padding="same",
                                norm=self.norm, name="pointwise", dtype=self.dtype_policy,
                                kernel_initializer=MOBILENET_INIT)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, strides=self.strides,
                      norm=self.norm)
        return config


@register
class InvertedResidual(_Unit):
    """MobileNet v2's block: `in_channels` -> `filters` with expansion t.

    `residual` is given by the architecture from the nominal counts (default: stride 1 and
    in_channels == filters), so a network's topology is the same at every width.
    """

    _order = ("expand", "depthwise", "project")

    def __init__(self, in_channels, filters, strides=1, expansion=6, residual=None, norm=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.filters = int(in_channels), int(filters)
        self.strides, self.expansion = int(strides), int(expansion)
        self.norm = norm_config(norm)
        self.residual = bool(self.strides == 1 and self.in_channels == self.filters
                             if residual is None else residual)
        hidden = self.in_channels * self.expansion
        common = dict(padding="same", norm=self.norm, dtype=self.dtype_policy,
                      kernel_initializer=MOBILENET_INIT)
        # t x the input's count at every width (keras.applications' `expansion * in_channels`).
        self.expand = ConvBN(hidden, 1, activation="relu6", ratio=self.expansion, name="expand",
                             **common) if self.expansion != 1 else None
        self.depthwise = depthwise(hidden, self.strides, "depthwise", self.norm,
                                   self.dtype_policy)
        self.project = ConvBN(self.filters, 1, activation=None, name="project", **common)

    def call(self, inputs, training=None):
        x = super().call(inputs, training=training)
        return inputs + x if self.residual else x

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, strides=self.strides,
                      expansion=self.expansion, residual=self.residual, norm=self.norm)
        return config

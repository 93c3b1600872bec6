"""Slimmable convolution, batch-norm and dense layers: one set of weights, any width at call time.

Each layer holds the weights of its full width and, called with `width=w`, computes with the
first channels of them (US-Net): input channels are those of the incoming tensor, output
channels `width.active(filters, w)`. Layers whose output is fixed (the classifier, MobileNet v2's
last 1x1 conv) take `slim_out=False`. Weights are made from the configuration alone, so a layer
builds the same whatever width it first runs at.

Batch norm keeps one set of moving statistics for all widths (updated on the channels a batch
ran with). They are not meant for narrow sub-networks: `bl_keras.slimmable.calibration`
recomputes them for one (width, resolution) after training, through `calibrating`.
"""

import contextlib
import threading

import keras
import numpy as np
import tensorflow as tf

from bl_keras.slimmable import width as widths

register = keras.saving.register_keras_serializable(package="bl_keras")
PADDINGS = ("same", "symmetric")

_calibration = threading.local()


@contextlib.contextmanager
def calibrating(weight):
    """Within this context, batch norm in training mode updates its moving statistics as
    `moving = (1 - weight) * moving + weight * batch` (weight = 1/k at the k-th batch gives the
    exact average over batches); `weight` may be a variable read when the step runs."""
    previous = getattr(_calibration, "weight", None)
    _calibration.weight = weight
    try:
        yield
    finally:
        _calibration.weight = previous


def _calibration_weight():
    return getattr(_calibration, "weight", None)


def keep_width_argument(layer):
    """Stop Keras converting `layer`'s call arguments: it would cast a float tensor `width` to
    the compute dtype (bfloat16 rounds 0.3 to 0.30078, which changes channel counts). The
    layer's `__call__` converts its inputs instead (`convert_inputs`)."""
    layer._convert_input_args = False


def convert_inputs(layer, args):
    """Positional arguments as Keras would pass them: arrays and float tensors in the layer's
    compute dtype (symbolic inputs as they are)."""
    def convert(x):
        if isinstance(x, (np.ndarray, np.generic, tf.Tensor)):
            x = tf.convert_to_tensor(x)
            if x.dtype.is_floating and x.dtype != layer.compute_dtype:
                x = tf.cast(x, layer.compute_dtype)
        return x

    return tuple(convert(x) for x in args)


class SlimLayer(keras.layers.Layer):
    """Base of the slimmable layers and blocks: the width reaches `call` as given."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        keep_width_argument(self)

    def __call__(self, *args, **kwargs):
        return super().__call__(*convert_inputs(self, args), **kwargs)


def _pad(x, kernel_size, padding):
    """PyTorch's symmetric padding of kernel_size // 2 (the ResNets); "same" pads in the conv."""
    if padding == "symmetric" and kernel_size > 1:
        p = kernel_size // 2
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]), "VALID"
    return x, "SAME" if padding == "same" else "VALID"


@register
class SlimConv2D(SlimLayer):
    """A 2-D convolution (or depthwise convolution) executable at any width.

    Args:
        filters: output channels at full width (for `depthwise`, equal to `in_channels`).
        kernel_size, strides: square kernel and stride.
        in_channels: input channels at full width (weights are made from this).
        padding: "same" (TensorFlow, the MobileNets) or "symmetric" (kernel_size // 2 each side,
            PyTorch, the ResNets).
        depthwise: a depthwise convolution: one kernel per input channel, as many outputs.
        slim_out: slim the output channels with the width; False keeps `filters`.
        ratio: output channels are ratio x active(filters / ratio) (MobileNet v2 expansion).
        use_bias: add a bias.
    """

    def __init__(self, filters, kernel_size, strides=1, in_channels=None, padding="same",
                 depthwise=False, slim_out=True, ratio=1, use_bias=False,
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        if in_channels is None:
            raise ValueError(f"{self.name}: in_channels (the full input width) is required")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.in_channels = int(in_channels)
        self.padding = padding
        self.depthwise = bool(depthwise)
        self.slim_out = bool(slim_out)
        self.ratio = int(ratio)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if self.depthwise and self.filters != self.in_channels:
            raise ValueError(f"{self.name}: a depthwise conv has filters == in_channels, got "
                             f"{filters} and {in_channels}")

    def build(self, input_shape=None):
        k = self.kernel_size
        shape = (k, k, self.in_channels, 1) if self.depthwise else (
            k, k, self.in_channels, self.filters)
        self.kernel = self.add_weight(name="kernel", shape=shape,
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                    initializer="zeros") if self.use_bias else None

    def out_channels(self, in_channels, width):
        if self.depthwise:
            return in_channels
        return widths.active(self.filters, width, self.ratio) if self.slim_out else self.filters

    def call(self, inputs, width=1.0, training=None):
        c_in = widths.channels_of(inputs)
        c_out = self.out_channels(c_in, width)
        kernel = tf.cast(keras.ops.convert_to_tensor(self.kernel), self.compute_dtype)
        x, padding = _pad(tf.cast(inputs, self.compute_dtype), self.kernel_size, self.padding)
        stride = [1, self.strides, self.strides, 1]
        if self.depthwise:
            x = tf.nn.depthwise_conv2d(x, kernel[:, :, :c_in, :], stride, padding)
        else:
            x = tf.nn.conv2d(x, kernel[:, :, :c_in, :c_out], stride, padding)
        if self.bias is not None:
            x = x + tf.cast(self.bias, self.compute_dtype)[:c_out]
        return x

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      in_channels=self.in_channels, padding=self.padding,
                      depthwise=self.depthwise, slim_out=self.slim_out, ratio=self.ratio,
                      use_bias=self.use_bias,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@register
class SlimBatchNorm(SlimLayer):
    """Batch normalisation over the first channels of `channels` (as many as the input has).

    Keras semantics: `momentum` weights the old moving statistics, the moving variance is the
    biased batch variance.
    """

    def __init__(self, channels, momentum=0.9, epsilon=1e-5, zero_gamma=False, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.zero_gamma = bool(zero_gamma)

    def build(self, input_shape=None):
        shape = (self.channels,)
        # Normalisation runs in float32 under mixed precision too: no autocast of the scale.
        self.gamma = self.add_weight(name="gamma", shape=shape, autocast=False,
                                     initializer="zeros" if self.zero_gamma else "ones")
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros",
                                    autocast=False)
        # As Keras' BatchNormalization makes them (one copy per replica under a strategy).
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape,
                                           initializer="zeros", trainable=False, autocast=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape,
                                               initializer="ones", trainable=False,
                                               autocast=False)

    def _update(self, variable, c, value, weight):
        full = keras.ops.convert_to_tensor(variable)
        new = full[:c] * (1.0 - weight) + value * weight
        if isinstance(c, int) and c == self.channels:
            variable.assign(new)
        else:
            variable.assign(tf.concat([new, full[c:]], axis=0))

    def call(self, inputs, width=None, training=None):
        c = widths.channels_of(inputs)
        x = tf.cast(inputs, tf.float32)
        gamma = keras.ops.convert_to_tensor(self.gamma)[:c]
        beta = keras.ops.convert_to_tensor(self.beta)[:c]
        if training:
            mean, variance = tf.nn.moments(x, axes=list(range(len(inputs.shape) - 1)))
            weight = _calibration_weight()
            weight = 1.0 - self.momentum if weight is None else tf.cast(weight, tf.float32)
            self._update(self.moving_mean, c, mean, weight)
            self._update(self.moving_variance, c, variance, weight)
        else:
            mean = keras.ops.convert_to_tensor(self.moving_mean)[:c]
            variance = keras.ops.convert_to_tensor(self.moving_variance)[:c]
        y = tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
        return tf.cast(y, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, momentum=self.momentum, epsilon=self.epsilon,
                      zero_gamma=self.zero_gamma)
        return config


@register
class SlimDense(SlimLayer):
    """A dense layer over the first features of `in_features` (as many as the input has).

    `slim_out=True` also slims the outputs (a hidden layer); a classifier keeps its `units`.
    """

    def __init__(self, units, in_features=None, slim_out=False, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if in_features is None:
            raise ValueError(f"{self.name}: in_features (the full input width) is required")
        self.units = int(units)
        self.in_features = int(in_features)
        self.slim_out = bool(slim_out)
        self.use_bias = bool(use_bias)

    def build(self, input_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(self.in_features, self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,),
                                    initializer="zeros") if self.use_bias else None

    def call(self, inputs, width=1.0, training=None):
        c_in = widths.channels_of(inputs)
        c_out = widths.active(self.units, width) if self.slim_out else self.units
        kernel = tf.cast(keras.ops.convert_to_tensor(self.kernel), self.compute_dtype)
        x = tf.matmul(tf.cast(inputs, self.compute_dtype), kernel[:c_in, :c_out])
        if self.bias is not None:
            x = x + tf.cast(self.bias, self.compute_dtype)[:c_out]
        return x

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, in_features=self.in_features, slim_out=self.slim_out,
                      use_bias=self.use_bias)
        return config

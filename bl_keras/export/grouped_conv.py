"""Traces grouped convolutions as plain TF convolutions, without Keras' XLA wrapper.

Keras 3 runs every grouped convolution (ResNeXt's 3x3 convs) on the TensorFlow backend inside a
`tf.function(jit_compile=True)`, because TF's CPU kernel once lacked groups. A SavedModel then
holds functions marked `_XlaMustCompile`, and TF Serving refuses them unless it runs with
`--xla_cpu_compilation_enabled` (CPU) or has an XLA GPU compiler linked in. TF 2.21's own Conv2D
kernel computes grouped convolutions on CPU and GPU (bit-identical to the XLA path on CPU), so
while exporting we route them straight to `tf.nn.convolution`.

The switch replaces one function of Keras' private TF backend for the duration of a `with`
block; `tests/export` fail if a Keras upgrade moves it.
"""

import contextlib

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import nn as _keras_tf_nn


def _plain_conv(original):
    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        grouped_2d_nhwc = (
            len(inputs.shape) == 4
            and (data_format or keras.config.image_data_format()) == "channels_last"
            and inputs.shape[-1] != kernel.shape[-2]
        )
        if not grouped_2d_nhwc:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(),
                                 data_format="NHWC", dilations=dilation_rate)

    return conv


@contextlib.contextmanager
def plain_grouped_convolutions():
    """Within the block, Keras traces grouped 2-D convolutions without jit_compile."""
    original = _keras_tf_nn.conv
    _keras_tf_nn.conv = _plain_conv(original)
    try:
        yield
    finally:
        _keras_tf_nn.conv = original

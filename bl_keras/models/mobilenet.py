"""MobileNet v1 and v2 (the US-Net / MutualNet backbones) as functional models of `ConvBN` units.

The layouts are keras.applications' (TensorFlow "same" padding, ReLU6, v2's last 1x1 conv of
1280 channels), so run at width w (`bl_keras.layers.width.running_width`) a model computes what
`keras.applications.MobileNet` / `MobileNetV2(alpha=w)` computes with the first channels of its
weights (MobileNet v1 at w in {0.25, 0.5, 0.75, 1.0}, where keras' int() rounding and US-Net's
agree; MobileNet v2 where keras.applications adds no shortcut to its first block, whose
32 -> 16 channels both round to 8 below w = 0.3: shortcuts follow the nominal network, as in
US-Net). Slimmed: every layer but the stem's input, the classifier's outputs and v2's last conv.
"""

import keras

from bl_keras.layers.conv import ConvBN
from bl_keras.layers.mobilenet import MOBILENET_INIT, DepthwiseSeparable, InvertedResidual
from bl_keras.layers.norm import norm_config
from bl_keras.models.applications import finish_model

# (output channels, stride) of the 13 depthwise-separable units.
V1_UNITS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion t, output channels c, repeats n, first stride s) of the inverted residual stages.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
V2_LAST = 1280


def _stem(inputs, norm):
    return ConvBN(32, 3, 2, activation="relu6", padding="same", norm=norm, name="stem",
                  kernel_initializer=MOBILENET_INIT)(inputs)


def _finish(inputs, x, classes, classifier_activation, name):
    return finish_model(inputs, None, x, include_top=True, pooling=None, classes=classes,
                        classifier_activation=classifier_activation, weights=None, name=name)


def mobilenet_v1(classes=1000, norm=None, classifier_activation="softmax", input_shape=None,
                 name="mobilenet_v1"):
    norm = norm_config(norm)
    inputs = keras.Input(input_shape or (None, None, 3), name="image")
    x, channels = _stem(inputs, norm), 32
    for i, (filters, strides) in enumerate(V1_UNITS):
        x = DepthwiseSeparable(channels, filters, strides, norm=norm, name=f"unit{i + 1}")(x)
        channels = filters
    return _finish(inputs, x, classes, classifier_activation, name)


def mobilenet_v2(classes=1000, norm=None, classifier_activation="softmax", input_shape=None,
                 name="mobilenet_v2"):
    norm = norm_config(norm)
    inputs = keras.Input(input_shape or (None, None, 3), name="image")
    x, channels, index = _stem(inputs, norm), 32, 0
    for expansion, filters, repeats, first_stride in V2_STAGES:
        for r in range(repeats):
            strides = first_stride if r == 0 else 1
            x = InvertedResidual(channels, filters, strides, expansion, norm=norm,
                                 name=f"block{index}")(x)
            channels, index = filters, index + 1
    x = ConvBN(V2_LAST, 1, activation="relu6", padding="same", slim_out=False, norm=norm,
               name="last_conv", kernel_initializer=MOBILENET_INIT)(x)
    return _finish(inputs, x, classes, classifier_activation, name)

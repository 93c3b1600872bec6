"""Slimmable MobileNet v1 and v2 (US-Net / MutualNet backbones).

The layouts are keras.applications' (TensorFlow "same" padding, ReLU6), so the sub-network at
width w has the channel counts and computes the function of `keras.applications.MobileNet` /
`MobileNetV2(alpha=w)` (MobileNet v1 at w in {0.25, 0.5, 0.75, 1.0}, where its int() rounding
and US-Net's agree; MobileNet v2 where keras.applications adds no shortcut to its first block,
whose 32 -> 16 channels both round to 8 below w = 0.3: shortcuts follow the full network, as in
US-Net, so the topology is the same at every width). Slimmed: every layer but the stem's
input and the classifier's output, and, in v2, the 1280-channel last conv (fixed below width 1,
as in US-Net and keras.applications).
"""

from bl_keras.slimmable.blocks import DepthwiseSeparable, InvertedResidual, SlimConvBN
from bl_keras.slimmable.network import architecture

# (output channels, stride) of the 13 depthwise-separable units.
V1_UNITS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion t, output channels c, repeats n, first stride s) of the inverted residual stages.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
V2_LAST = 1280


@architecture("mobilenet_v1")
def mobilenet_v1(scale, norm, dtype):
    channels = scale(32)
    blocks = [SlimConvBN(channels, 3, 2, 3, activation="relu6", norm=norm, name="stem",
                         dtype=dtype)]
    for i, (filters, strides) in enumerate(V1_UNITS):
        out = scale(filters)
        blocks.append(DepthwiseSeparable(channels, out, strides, norm=norm, name=f"unit{i + 1}",
                                         dtype=dtype))
        channels = out
    return blocks, channels


@architecture("mobilenet_v2")
def mobilenet_v2(scale, norm, dtype):
    channels = scale(32)
    blocks = [SlimConvBN(channels, 3, 2, 3, activation="relu6", norm=norm, name="stem",
                         dtype=dtype)]
    index, nominal = 0, 32
    for expansion, filters, repeats, first_stride in V2_STAGES:
        out = scale(filters)
        for r in range(repeats):
            strides = first_stride if r == 0 else 1
            blocks.append(InvertedResidual(channels, out, strides, expansion, norm=norm,
                                           residual=strides == 1 and nominal == filters,
                                           name=f"block{index}", dtype=dtype))
            channels, nominal = out, filters
            index += 1
    blocks.append(SlimConvBN(V2_LAST, 1, 1, channels, activation="relu6", slim_out=False,
                             norm=norm, name="last_conv", dtype=dtype))
    return blocks, V2_LAST

"""Residual blocks: the ResNet / ResNeXt / SE-ResNeXt bottleneck (one layer, three configurations).

Structure (the released bL models, DESIGN section 3):
    1x1 conv to `width` -> BN -> ReLU -> 3x3 conv (stride, groups=cardinality) -> BN -> ReLU
    -> 1x1 conv to `filters` -> BN [-> squeeze-excitation] -> + shortcut -> ReLU (unless last_relu=False)
with width = cardinality * (floor(filters * base_width / 64) // 4). ResNet is cardinality 1,
base_width 64; ResNeXt-32x4d is cardinality 32, base_width 4.
"""

import keras
from keras import ops

from bl_keras.layers.conv import ConvBN, he_normal_fan_out
from bl_keras.layers.norm import norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")

SHORTCUTS = ("avgpool", "conv")


def bottleneck_width(filters, cardinality=1, base_width=64):
    return cardinality * (int(filters * base_width / 64.0) // 4)


@register
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation: GAP -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> sigmoid -> scale.

    Args:
        reduction: the hidden width is `channels // reduction` (16 in SE-ResNeXt).
    """

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.fc1 = self.fc2 = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.fc1 = keras.layers.Conv2D(
            channels // self.reduction, 1, kernel_initializer=he_normal_fan_out(),
            name="fc1", dtype=self.dtype_policy,
        )
        self.fc2 = keras.layers.Conv2D(
            channels, 1, kernel_initializer=he_normal_fan_out(), name="fc2", dtype=self.dtype_policy
        )
        pooled = (input_shape[0], 1, 1, channels)
        self.fc1.build(pooled)
        self.fc2.build(self.fc1.compute_output_shape(pooled))

    def call(self, inputs):
        scale = ops.mean(inputs, axis=(1, 2), keepdims=True)
        scale = ops.sigmoid(self.fc2(ops.relu(self.fc1(scale))))
        return inputs * scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(reduction=self.reduction)
        return config


@register
class Bottleneck(keras.layers.Layer):
    """The bottleneck residual block of ResNet, ResNeXt and SE-ResNeXt.

    Args:
        filters: output channels (the block's expanded width, e.g. 256 in the first stage).
        strides: stride of the 3x3 convolution (and of the shortcut).
        cardinality: groups of the 3x3 convolution (1 for ResNet).
        base_width: width per group at 64 filters-per-4 (64 for ResNet, 4 for 32x4d ResNeXt).
        se_reduction: squeeze-excitation reduction ratio; 0 disables SE.
        last_relu: apply the final ReLU after the addition (the released big branches drop it on
            their last block, since the merge applies one after adding the branches).
        shortcut: how a strided or widening shortcut is made: "avgpool" (released bL models:
            3x3 average pool, stride 2, padding 1 counting padded zeros, then 1x1 conv + BN) or
            "conv" (torchvision / keras.applications baselines: strided 1x1 conv + BN).
        zero_gamma: initialise the last BN scale of the residual branch to 0.
        norm: BatchNorm options (see `bl_keras.layers.norm`).
    """

    def __init__(
        self,
        filters,
        strides=1,
        cardinality=1,
        base_width=64,
        se_reduction=0,
        last_relu=True,
        shortcut="avgpool",
        zero_gamma=True,
        norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.cardinality = int(cardinality)
        self.base_width = base_width
        self.se_reduction = int(se_reduction)
        self.last_relu = bool(last_relu)
        self.shortcut = shortcut
        self.zero_gamma = bool(zero_gamma)
        self.norm = norm_config(norm)

        width = bottleneck_width(self.filters, self.cardinality, self.base_width)
        if width <= 0 or width % self.cardinality:
            raise ValueError(
                f"Bottleneck width {width} (filters={filters}, cardinality={cardinality}, "
                f"base_width={base_width}) must be a positive multiple of the cardinality"
            )
        common = dict(norm=self.norm, dtype=self.dtype_policy)
        self.conv1 = ConvBN(width, 1, name="conv1", **common)
        self.conv2 = ConvBN(width, 3, self.strides, groups=self.cardinality, name="conv2", **common)
        self.conv3 = ConvBN(
            self.filters, 1, activation=None, zero_gamma=self.zero_gamma, name="conv3", **common
        )
        self.se = SqueezeExcite(self.se_reduction, name="se", dtype=self.dtype_policy) if (
            self.se_reduction
        ) else None
        self.pool = self.pool_pad = self.proj = None

    def build(self, input_shape):
        in_channels = input_shape[-1]
        shape = input_shape
        if self.strides != 1 and self.shortcut == "avgpool":
            # PyTorch AvgPool2d(3, 2, padding=1) averages over padded zeros too: pad, then "valid".
            self.pool_pad = keras.layers.ZeroPadding2D(1, name="pool_pad", dtype=self.dtype_policy)
            self.pool = keras.layers.AveragePooling2D(3, 2, name="pool", dtype=self.dtype_policy)
            self.pool_pad.build(shape)
            shape = self.pool_pad.compute_output_shape(shape)
            self.pool.build(shape)
            shape = self.pool.compute_output_shape(shape)
        if in_channels != self.filters or (self.strides != 1 and self.shortcut == "conv"):
            proj_strides = self.strides if self.shortcut == "conv" else 1
            self.proj = ConvBN(
                self.filters, 1, proj_strides, activation=None, name="downsample",
                norm=self.norm, dtype=self.dtype_policy,
            )
            self.proj.build(shape)

        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.conv2.build(shape)
        shape = self.conv2.compute_output_shape(shape)
        self.conv3.build(shape)
        if self.se is not None:
            self.se.build(self.conv3.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        x = self.conv2(x, training=training)
        x = self.conv3(x, training=training)
        if self.se is not None:
            x = self.se(x)
        shortcut = inputs
        if self.pool is not None:
            shortcut = self.pool(self.pool_pad(shortcut))
        if self.proj is not None:
            shortcut = self.proj(shortcut, training=training)
        x = x + shortcut
        return ops.relu(x) if self.last_relu else x

    def compute_output_shape(self, input_shape):
        shape = self.conv1.compute_output_shape(input_shape)
        shape = self.conv2.compute_output_shape(shape)
        return self.conv3.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            cardinality=self.cardinality,
            base_width=self.base_width,
            se_reduction=self.se_reduction,
            last_relu=self.last_relu,
            shortcut=self.shortcut,
            zero_gamma=self.zero_gamma,
            norm=self.norm,
        )
        return config


BLOCKS = {"bottleneck": Bottleneck}


def get_block(name):
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"Unknown block {name!r}; valid: {sorted(BLOCKS)}") from None

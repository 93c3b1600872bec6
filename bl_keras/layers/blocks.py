"""Residual blocks: the ResNet / ResNeXt / SE-ResNeXt bottleneck (one layer, three configurations).

Structure (the authors' released bL models):
    1x1 conv to `width` -> BN -> ReLU -> 3x3 conv (stride, groups=cardinality) -> BN -> ReLU
    -> 1x1 conv to `filters` -> BN [-> squeeze-excitation] -> + shortcut -> ReLU (unless last_relu=False)
with width = cardinality * (floor(filters * base_width / 64) // 4). ResNet is cardinality 1,
base_width 64; ResNeXt-32x4d is cardinality 32, base_width 4.
"""

import keras
from keras import ops

from bl_keras.layers import gating
from bl_keras.layers import width as widths
from bl_keras.layers.conv import ConvBN, he_normal_fan_out
from bl_keras.layers.norm import norm_config
from bl_keras.layers.resize import centre_crop

register = keras.saving.register_keras_serializable(package="bl_keras")

SHORTCUTS = ("avgpool", "conv")
# BasicBlock also takes He et al.'s parameter-free option A (CIFAR ResNets).
BASIC_SHORTCUTS = (*SHORTCUTS, "A")
SHORTCUT_POOLS = ("average", "subsample")


def bottleneck_width(filters, cardinality=1, base_width=64):
    return cardinality * (int(filters * base_width / 64.0) // 4)


@register
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation: GAP -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> sigmoid -> scale.

    Args:
        reduction: the hidden width is `channels // reduction` (16 in SE-ResNeXt).

    Under a width the same rule holds for the input's channels: the first `c // reduction`
    hidden units over the first `c` channels, `c` outputs.
    """

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.fc1 = self.fc2 = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.fc1 = keras.layers.Conv2D(
            max(1, channels // self.reduction), 1, kernel_initializer=he_normal_fan_out(),
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
        if widths.is_full(widths.current_width()):
            scale = ops.sigmoid(self.fc2(ops.relu(self.fc1(scale))))
        else:
            channels = widths.channels_of(inputs)
            hidden = ops.maximum(1, channels // self.reduction)
            scale = ops.relu(self._sliced(self.fc1, scale, channels, hidden))
            scale = ops.sigmoid(self._sliced(self.fc2, scale, hidden, channels))
        return inputs * scale

    @staticmethod
    def _sliced(conv, x, inputs, outputs):
        """The 1x1 `conv` on its first `inputs` input and `outputs` output channels."""
        kernel = ops.convert_to_tensor(conv.kernel)[0, 0, :inputs, :outputs]
        return ops.matmul(x, kernel) + ops.convert_to_tensor(conv.bias)[:outputs]

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
        # Slimmed, a grouped block keeps whole groups: conv1's outputs fill them.
        self.conv1 = ConvBN(width, 1, name="conv1",
                            ratio=width // self.cardinality if self.cardinality > 1 else 1,
                            **common)
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
        plan = widths.planned(self)  # a narrower network keeps the nominal one's shortcuts
        if plan["projection"] if plan is not None else (
                in_channels != self.filters or (self.strides != 1 and self.shortcut == "conv")):
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
        widths.record(self, projection=self.proj is not None)
        gate, dynamic = gating.gate_of(self)
        if gate is not None:
            return gating.gated_block(inputs, gate, lambda x: self._shortcut(x, training),
                                      lambda x, s: self._residual(x, s, training), training,
                                      dynamic)
        return self._residual(inputs, self._shortcut(inputs, training), training)

    def _shortcut(self, inputs, training):
        shortcut = inputs
        if self.pool is not None:
            shortcut = self._average_pool(shortcut, training)
        if self.proj is not None:
            shortcut = self.proj(shortcut, training=training)
        return shortcut

    def _residual(self, inputs, shortcut, training):
        """The block's output for `inputs` given their shortcut output."""
        x = self.conv1(inputs, training=training)
        x = self.conv2(x, training=training)
        # Slimmed, an identity shortcut sets the output count: whatever the block receives
        # (e.g. the concatenation of two slimmed branches).
        tie = None
        if self.proj is None and not widths.is_full(widths.current_width()):
            tie = widths.channels_of(inputs)
        x = self.conv3(x, training=training, out_channels=tie)
        if self.se is not None:
            x = self.se(x)
        x = x + shortcut
        return ops.relu(x) if self.last_relu else x

    def _average_pool(self, x, training):
        if keras.backend.backend() == "tensorflow":
            from bl_keras.layers import fused  # TensorFlow-only

            return fused.average_pool_3x3_s2(x, training=bool(training))
        return self.pool(self.pool_pad(x))

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


@register
class ZeroPadShortcut(keras.layers.Layer):
    """He et al.'s option-A shortcut: downsample by `strides`, append zero channels up to
    `filters`. No parameters.

    Args:
        filters: output channels (>= the input's).
        strides: int or (sh, sw).
        pool: "average" (a `strides`-sized mean, BlockDrop's released CIFAR ResNets:
            `AvgPool2d(2)`) or "subsample" (every `strides`-th pixel, x[:, ::2, ::2], as
            fb.resnet.torch's 1x1 average pool with stride 2).

    Odd sizes keep ceil(n / stride) pixels, as the strided 3x3 convolution beside it does
    (the average then covers the pixels that exist). Under a width it pads to the width's
    share of `filters` (`bl_keras.layers.width.active`), as the block's convolutions output.
    """

    def __init__(self, filters, strides=2, pool="average", **kwargs):
        super().__init__(**kwargs)
        if pool not in SHORTCUT_POOLS:
            raise ValueError(f"pool must be one of {SHORTCUT_POOLS}, got {pool!r}")
        self.filters = int(filters)
        self.strides = tuple(strides) if not isinstance(strides, int) else (strides, strides)
        self.pool = pool

    def build(self, input_shape):
        plan = widths.planned(self)
        if plan is not None:  # the layer of a narrower network: its recorded count
            self.filters = plan["filters"]
        if input_shape[-1] is not None and input_shape[-1] > self.filters:
            raise ValueError(f"ZeroPadShortcut pads channels: input {input_shape[-1]} > "
                             f"filters {self.filters}")

    def call(self, inputs):
        x = inputs
        if self.strides != (1, 1):
            if self.pool == "subsample":
                x = x[:, ::self.strides[0], ::self.strides[1], :]
            else:
                x = ops.average_pool(x, self.strides, self.strides, padding="same")
        filters, width = self.filters, widths.current_width()
        if not widths.is_full(width):  # slimmed: pad to the block's active outputs
            filters = widths.active(self.filters, width)
            if widths.is_static(width):
                widths.record(self, filters=int(filters))
        extra = filters - widths.channels_of(x)
        if not widths.is_static(extra) or extra:
            # BlockDrop concatenates the zeros after the input's channels.
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape):
        sizes = [None if n is None else -(-n // s)
                 for n, s in zip(input_shape[1:3], self.strides)]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, pool=self.pool)
        return config


@register
class BasicBlock(keras.layers.Layer):
    """`num_convs` 3x3 convolutions (stride on the first) + shortcut: the speech ResNets' block.

    Args:
        filters: output channels.
        strides: stride of the first convolution and the shortcut, e.g. (2, 1) to stride
            frequency only.
        num_convs: convolutions on the residual path (2, or 1 in the speech transition layers).
        padding: ConvBN padding per axis; ("symmetric", "valid") pads frequency but not time.
            On a "valid" axis every convolution shortens the input by 2, and the shortcut is
            centre-cropped to the residual's size (Saon et al., 2017).
        last_relu: apply the ReLU after the addition.
        shortcut: "conv" (1x1 conv + BN when channels or stride change); "avgpool" is accepted
            for configuration symmetry with `Bottleneck` and means the same here; "A" (He et
            al.'s option A, the CIFAR ResNets): identity, or `ZeroPadShortcut` where stride or
            channels grow (no parameters). Zero padding cannot narrow, so a block with fewer
            outputs than inputs (a bL little branch's first block) projects (1x1 conv + BN).
        shortcut_pool: how option A downsamples: "average" or "subsample" (`ZeroPadShortcut`).
        zero_gamma, norm: as in `Bottleneck`.

    Under a width (`bl_keras.layers.width`) every convolution runs its leading channels and
    the option-A shortcut pads to as many; an identity shortcut ties the block's outputs to
    its inputs.
    """

    def __init__(self, filters, strides=1, num_convs=2, padding="symmetric", last_relu=True,
                 shortcut="conv", shortcut_pool="average", zero_gamma=True, norm=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = tuple(strides) if not isinstance(strides, int) else (strides, strides)
        self.num_convs = int(num_convs)
        self.padding = padding if isinstance(padding, str) else tuple(padding)
        self.last_relu = bool(last_relu)
        if shortcut not in BASIC_SHORTCUTS:
            raise ValueError(f"shortcut must be one of {BASIC_SHORTCUTS}, got {shortcut!r}")
        if shortcut_pool not in SHORTCUT_POOLS:
            raise ValueError(f"shortcut_pool must be one of {SHORTCUT_POOLS}, got "
                             f"{shortcut_pool!r}")
        self.shortcut = shortcut
        self.shortcut_pool = shortcut_pool
        self.zero_gamma = bool(zero_gamma)
        self.norm = norm_config(norm)
        if self.num_convs < 1:
            raise ValueError(f"num_convs must be >= 1, got {num_convs}")
        modes = (self.padding,) * 2 if isinstance(self.padding, str) else self.padding
        self._crop_axes = tuple(axis for axis, mode in zip((1, 2), modes) if mode == "valid")
        common = dict(padding=self.padding, norm=self.norm, dtype=self.dtype_policy)
        for i in range(self.num_convs):
            last = i == self.num_convs - 1
            setattr(self, f"conv{i + 1}", ConvBN(
                self.filters, 3, self.strides if i == 0 else 1,
                activation=None if last else "relu", zero_gamma=self.zero_gamma and last,
                name=f"conv{i + 1}", **common))
        self.proj = None

    @property
    def convs(self):
        return [getattr(self, f"conv{i + 1}") for i in range(self.num_convs)]

    def build(self, input_shape):
        in_channels = input_shape[-1]
        reshaped = in_channels != self.filters or self.strides != (1, 1)
        plan = widths.planned(self)  # a narrower network keeps the nominal one's shortcuts
        if plan is not None:
            reshaped = plan["shortcut"] != "identity"
            zero_pad = plan["shortcut"] == "zero_pad"
        else:
            zero_pad = reshaped and self.shortcut == "A" and in_channels <= self.filters
        if zero_pad:
            self.proj = ZeroPadShortcut(self.filters, self.strides, self.shortcut_pool,
                                        name="downsample", dtype=self.dtype_policy)
            self.proj.build(input_shape)
        elif reshaped:
            self.proj = ConvBN(self.filters, 1, self.strides, activation=None, name="downsample",
                               norm=self.norm, dtype=self.dtype_policy)
            self.proj.build(input_shape)
        shape = input_shape
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)

    def call(self, inputs, training=None):
        kind = ("identity" if self.proj is None else
                "zero_pad" if isinstance(self.proj, ZeroPadShortcut) else "conv")
        widths.record(self, shortcut=kind)
        gate, dynamic = gating.gate_of(self)
        if gate is not None:
            if self._crop_axes:
                raise ValueError(f"{self.name}: a block that shortens its input ('valid' "
                                 "padding) cannot be gated")
            return gating.gated_block(inputs, gate, lambda x: self._shortcut(x, training),
                                      lambda x, s: self._residual(x, s, training), training,
                                      dynamic)
        return self._residual(inputs, self._shortcut(inputs, training), training)

    def _shortcut(self, inputs, training):
        if isinstance(self.proj, ZeroPadShortcut):
            return self.proj(inputs)
        if self.proj is not None:
            return self.proj(inputs, training=training)
        return inputs

    def _residual(self, inputs, shortcut, training):
        """The block's output for `inputs` given their shortcut output."""
        # Slimmed, an identity shortcut sets the output count: whatever the block receives.
        tie = None
        if self.proj is None and not widths.is_full(widths.current_width()):
            tie = widths.channels_of(inputs)
        x = inputs
        for conv in self.convs:
            last = conv is self.convs[-1]
            x = conv(x, training=training, out_channels=tie if last else None)
        for axis in self._crop_axes:
            shortcut = centre_crop(shortcut, axis, ops.shape(x)[axis])
        x = x + shortcut
        return ops.relu(x) if self.last_relu else x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for conv in self.convs:
            shape = conv.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, num_convs=self.num_convs,
                      padding=self.padding, last_relu=self.last_relu, shortcut=self.shortcut,
                      shortcut_pool=self.shortcut_pool, zero_gamma=self.zero_gamma,
                      norm=self.norm)
        return config


BLOCKS = {"bottleneck": Bottleneck, "basic": BasicBlock}

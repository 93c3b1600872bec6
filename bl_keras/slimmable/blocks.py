"""Slimmable building blocks; each is called as `block(x, width=w, training=t)`.

- `SlimConvBN`: conv (or depthwise conv) + batch norm (+ ReLU / ReLU6).
- `DepthwiseSeparable`: MobileNet v1's 3x3 depthwise + 1x1 pointwise unit.
- `InvertedResidual`: MobileNet v2's expand 1x1 -> depthwise 3x3 -> project 1x1 (+ identity).
- `SlimBottleneck`: the ResNet bottleneck; `shortcut` "conv" (torchvision) or "avgpool" (the
  released bL-ResNets: 3x3 average pool, stride 2, padded zeros counted, then 1x1 conv).
- `SlimBigLittleStem`, `SlimBigLittleModule`: the released bL-ResNet stem and module (see
  `bl_keras.layers.stem` and `bl_keras.layers.module`) with both branches slimmable.
"""

import keras
import tensorflow as tf

from bl_keras.layers import fused
from bl_keras.layers.module import little_depth
from bl_keras.layers.norm import DEFAULT_NORM, norm_config
from bl_keras.layers.resize import resize_to
from bl_keras.slimmable.layers import SlimBatchNorm, SlimConv2D, SlimLayer

register = keras.saving.register_keras_serializable(package="bl_keras")
ACTIVATIONS = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, None: None}
# Slimmable BatchNorm computes its own statistics: no synchronized variant.
SLIM_NORM = {k: v for k, v in DEFAULT_NORM.items() if k != "synchronized"}


def norm_options(norm=None):
    """BatchNorm momentum (Keras semantics) and epsilon; unknown keys are an error."""
    return norm_config(norm, SLIM_NORM)


class _Block(SlimLayer):
    """Common parts: sublayers built from configuration, `width` passed down."""

    def build(self, input_shape=None):
        for layer in self._flatten_layers(include_self=False, recursive=False):
            if not layer.built:
                layer.build(None)


@register
class SlimConvBN(_Block):
    def __init__(self, filters, kernel_size, strides=1, in_channels=None, activation="relu",
                 padding="same", depthwise=False, slim_out=True, ratio=1, zero_gamma=False,
                 norm=None, **kwargs):
        super().__init__(**kwargs)
        if in_channels is None:
            raise ValueError(f"{self.name}: in_channels (the full input width) is required")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.in_channels = int(in_channels)
        self.activation = activation
        self.padding = padding
        self.depthwise = bool(depthwise)
        self.slim_out = bool(slim_out)
        self.ratio = int(ratio)
        self.zero_gamma = bool(zero_gamma)
        self.norm = norm_options(norm)
        self.conv = SlimConv2D(self.filters, self.kernel_size, self.strides,
                               in_channels=self.in_channels, padding=padding,
                               depthwise=self.depthwise, slim_out=self.slim_out, ratio=self.ratio,
                               name="conv", dtype=self.dtype_policy)
        self.bn = SlimBatchNorm(self.filters, zero_gamma=self.zero_gamma, name="bn",
                                dtype=self.dtype_policy, **self.norm)

    def call(self, inputs, width=1.0, training=None):
        x = self.bn(self.conv(inputs, width=width), training=training)
        activation = ACTIVATIONS[self.activation]
        return x if activation is None else activation(x)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      in_channels=self.in_channels, activation=self.activation,
                      padding=self.padding, depthwise=self.depthwise, slim_out=self.slim_out,
                      ratio=self.ratio, zero_gamma=self.zero_gamma, norm=self.norm)
        return config


@register
class DepthwiseSeparable(_Block):
    def __init__(self, in_channels, filters, strides=1, activation="relu6", padding="same",
                 norm=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.filters, self.strides = int(in_channels), int(filters), int(strides)
        self.activation, self.padding, self.norm = activation, padding, norm_options(norm)
        common = dict(activation=activation, padding=padding, norm=self.norm,
                      dtype=self.dtype_policy)
        self.depthwise = SlimConvBN(self.in_channels, 3, self.strides, self.in_channels,
                                    depthwise=True, name="depthwise", **common)
        self.pointwise = SlimConvBN(self.filters, 1, 1, self.in_channels, name="pointwise",
                                    **common)

    def call(self, inputs, width=1.0, training=None):
        x = self.depthwise(inputs, width=width, training=training)
        return self.pointwise(x, width=width, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, strides=self.strides,
                      activation=self.activation, padding=self.padding, norm=self.norm)
        return config


@register
class InvertedResidual(_Block):
    def __init__(self, in_channels, filters, strides=1, expansion=6, padding="same", norm=None,
                 residual=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.filters, self.strides = int(in_channels), int(filters), int(strides)
        self.expansion, self.padding, self.norm = int(expansion), padding, norm_options(norm)
        hidden = self.in_channels * self.expansion
        common = dict(padding=padding, norm=self.norm, dtype=self.dtype_policy)
        # The expansion follows the block input's count exactly (t x its channels: US-Net's
        # ratio, keras.applications' `expansion * in_channels`).
        self.expand = SlimConvBN(hidden, 1, 1, self.in_channels, activation="relu6",
                                 ratio=self.expansion, name="expand", **common) if (
            self.expansion != 1) else None
        self.depthwise = SlimConvBN(hidden, 3, self.strides, hidden, activation="relu6",
                                    depthwise=True, name="depthwise", **common)
        self.project = SlimConvBN(self.filters, 1, 1, hidden, activation=None, name="project",
                                  **common)
        # Given by the architecture from the nominal counts: a network's topology is the same at
        # every width (a 32 -> 16 block has no shortcut, also where both round to 8).
        self.residual = bool(self.strides == 1 and self.in_channels == self.filters
                             if residual is None else residual)

    def call(self, inputs, width=1.0, training=None):
        x = inputs
        if self.expand is not None:
            x = self.expand(x, width=width, training=training)
        x = self.depthwise(x, width=width, training=training)
        x = self.project(x, width=width, training=training)
        return inputs + x if self.residual else x

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, strides=self.strides,
                      expansion=self.expansion, padding=self.padding, norm=self.norm,
                      residual=self.residual)
        return config


@register
class SlimBottleneck(_Block):
    def __init__(self, in_channels, filters, mid_channels=None, strides=1, shortcut="conv",
                 last_relu=True, zero_gamma=True, norm=None, projection=None, **kwargs):
        super().__init__(**kwargs)
        if shortcut not in ("conv", "avgpool"):
            raise ValueError(f"shortcut must be 'conv' or 'avgpool', got {shortcut!r}")
        self.in_channels, self.filters, self.strides = int(in_channels), int(filters), int(strides)
        self.shortcut, self.last_relu = shortcut, bool(last_relu)
        self.zero_gamma, self.norm = bool(zero_gamma), norm_options(norm)
        # Given, not derived: a slimmed network rounds each layer's count on its own.
        self.mid_channels = int(mid_channels or self.filters // 4)
        mid = self.mid_channels
        common = dict(padding="symmetric", norm=self.norm, dtype=self.dtype_policy)
        self.conv1 = SlimConvBN(mid, 1, 1, self.in_channels, name="conv1", **common)
        self.conv2 = SlimConvBN(mid, 3, self.strides, mid, name="conv2", **common)
        self.conv3 = SlimConvBN(self.filters, 1, 1, mid, activation=None,
                                zero_gamma=self.zero_gamma, name="conv3", **common)
        self.pool = self.strides != 1 and shortcut == "avgpool"
        self.proj = None
        if projection is None:  # the architecture passes it, decided at nominal width
            projection = self.in_channels != self.filters or (
                self.strides != 1 and shortcut == "conv")
        if projection:
            self.proj = SlimConvBN(self.filters, 1, 1 if self.pool else self.strides,
                                   self.in_channels, activation=None, name="downsample",
                                   **common)

    def call(self, inputs, width=1.0, training=None):
        x = self.conv1(inputs, width=width, training=training)
        x = self.conv2(x, width=width, training=training)
        x = self.conv3(x, width=width, training=training)
        shortcut = inputs
        if self.pool:
            shortcut = fused.average_pool_3x3_s2(inputs, training=bool(training))
        if self.proj is not None:
            shortcut = self.proj(shortcut, width=width, training=training)
        x = x + shortcut
        return tf.nn.relu(x) if self.last_relu else x

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters,
                      mid_channels=self.mid_channels, strides=self.strides,
                      shortcut=self.shortcut, last_relu=self.last_relu,
                      zero_gamma=self.zero_gamma, norm=self.norm,
                      projection=self.proj is not None)
        return config


@register
class SlimResNetStem(_Block):
    """7x7 conv /2 -> BN -> ReLU -> 3x3 max-pool /2 (padding 1)."""

    def __init__(self, filters=64, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.norm = int(filters), norm_options(norm)
        self.conv1 = SlimConvBN(self.filters, 7, 2, 3, padding="symmetric", norm=self.norm,
                                name="conv1", dtype=self.dtype_policy)

    def call(self, inputs, width=1.0, training=None):
        x = self.conv1(inputs, width=width, training=training)
        # Zero padding equals PyTorch's -inf padding here: the input is post-ReLU.
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return tf.nn.max_pool2d(x, 3, 2, "VALID")

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, norm=self.norm)
        return config


@register
class SlimBigLittleStem(_Block):
    """conv1 7x7 /2; big 3x3 /2; little 3x3 -> 3x3 /2 -> 1x1; add, ReLU; 1x1 fuse."""

    def __init__(self, filters=64, thin=32, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.thin, self.norm = int(filters), int(thin), norm_options(norm)
        thin = self.thin
        common = dict(padding="symmetric", norm=self.norm, dtype=self.dtype_policy)
        f = self.filters
        self.conv1 = SlimConvBN(f, 7, 2, 3, name="conv1", **common)
        self.big_conv = SlimConvBN(f, 3, 2, f, activation=None, name="big_conv", **common)
        self.little_conv1 = SlimConvBN(thin, 3, 1, f, name="little_conv1", **common)
        self.little_conv2 = SlimConvBN(thin, 3, 2, thin, name="little_conv2", **common)
        self.little_expand = SlimConvBN(f, 1, 1, thin, activation=None, name="little_expand",
                                        **common)
        self.fuse = SlimConvBN(f, 1, 1, f, name="fuse", **common)

    def call(self, inputs, width=1.0, training=None):
        x = self.conv1(inputs, width=width, training=training)
        big = self.big_conv(x, width=width, training=training)
        little = self.little_conv1(x, width=width, training=training)
        little = self.little_conv2(little, width=width, training=training)
        little = self.little_expand(little, width=width, training=training)
        return self.fuse(tf.nn.relu(big + little), width=width, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, thin=self.thin, norm=self.norm)
        return config


def bottleneck_stack(in_channels, filters, mid_channels, num_blocks, strides, shortcut, norm,
                     prefix, last_relu=True, projection=True, dtype=None):
    """`num_blocks` bottlenecks, the first with `strides` and a projection shortcut if
    `projection`, the last with `last_relu`."""
    blocks = []
    for i in range(num_blocks):
        blocks.append(SlimBottleneck(
            in_channels if i == 0 else filters, filters, mid_channels, strides if i == 0 else 1,
            shortcut=shortcut, last_relu=last_relu or i < num_blocks - 1, norm=norm,
            projection=projection if i == 0 else False, name=f"{prefix}{i}", dtype=dtype))
    return blocks


@register
class SlimBigLittleModule(_Block):
    """Big branch (L - 1 blocks, half resolution), little branch (max(1, L // beta - 1) blocks at
    filters / alpha, then 1x1 to filters), nearest upsampling, add, ReLU, fusion block.

    `channels` = {"filters", "mid", "thin", "thin_mid"}: the big branch's output and bottleneck
    widths and the little branch's (filters / alpha, filters / alpha / 4 at full width).
    `projections` = {"big", "little"}: whether each branch's first block projects its shortcut
    (decided at nominal width by the architecture; default: where the counts differ).
    """

    def __init__(self, in_channels, channels, num_blocks, beta=4, strides=1, norm=None,
                 projections=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.channels = {k: int(channels[k]) for k in ("filters", "mid", "thin", "thin_mid")}
        self.num_blocks, self.beta = int(num_blocks), int(beta)
        self.strides, self.norm = int(strides), norm_options(norm)
        n_big = self.num_blocks - 1
        f, thin = self.channels["filters"], self.channels["thin"]
        dtype = self.dtype_policy
        self.projections = {"big": self.in_channels != f, "little": self.in_channels != thin}
        self.projections.update({k: bool(v) for k, v in (projections or {}).items()})
        # As released: a one-block big branch keeps its final ReLU, deeper ones leave it to the
        # merge.
        big = bottleneck_stack(self.in_channels, f, self.channels["mid"], n_big, 2, "avgpool",
                               self.norm, "big", last_relu=n_big == 1,
                               projection=self.projections["big"], dtype=dtype)
        little = bottleneck_stack(self.in_channels, thin, self.channels["thin_mid"],
                                  little_depth(self.num_blocks, self.beta), 1, "avgpool",
                                  self.norm, "little", projection=self.projections["little"],
                                  dtype=dtype)
        # One attribute per block: TF checkpoints follow attributes, not Keras' tracked lists.
        self.num_big, self.num_little = len(big), len(little)
        for prefix, blocks in (("big", big), ("little", little)):
            for i, block in enumerate(blocks):
                setattr(self, f"{prefix}{i}", block)
        self.little_expand = SlimConvBN(f, 1, 1, thin, activation=None, padding="symmetric",
                                        norm=self.norm, name="little_expand", dtype=dtype)
        self.fusion = SlimBottleneck(f, f, self.channels["mid"], self.strides,
                                     shortcut="avgpool", norm=self.norm, name="fusion",
                                     dtype=dtype)

    @property
    def big(self):
        return [getattr(self, f"big{i}") for i in range(self.num_big)]

    @property
    def little(self):
        return [getattr(self, f"little{i}") for i in range(self.num_little)]

    def call(self, inputs, width=1.0, training=None):
        big = little = inputs
        for block in self.big:
            big = block(big, width=width, training=training)
        for block in self.little:
            little = block(little, width=width, training=training)
        little = self.little_expand(little, width=width, training=training)
        big = resize_to(big, keras.ops.shape(little), (1, 2), "nearest")
        return self.fusion(tf.nn.relu(big + little), width=width, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, channels=self.channels,
                      num_blocks=self.num_blocks, beta=self.beta, strides=self.strides,
                      norm=self.norm, projections=self.projections)
        return config

"""ShuffleNetV2's unit (Ma et al., 2018) and the two channel operations it is made of.

- `ChannelSplit`: the channels cut into equal, contiguous parts (a list of tensors).
- `ChannelShuffle`: channels regrouped so that each group takes one channel from every group,
  i.e. (groups, channels / groups) -> (channels / groups, groups), as torchvision's
  `channel_shuffle`.
- `ShuffleUnit(filters, strides)`: the residual-like block of ShuffleNetV2, a drop-in `block` of
  `ResidualStage`, `BigBranch`, `LittleBranch` and `BigLittleModule` (block name "shuffle"):
      basic       (stride 1, same width): split; the right half goes through
                  1x1 conv BN ReLU -> 3x3 depthwise BN -> 1x1 conv BN ReLU; concat(left, right).
      projecting  (a stride or a change of width): both halves read the whole input:
                  left  = 3x3 depthwise (stride) BN -> 1x1 conv BN ReLU,
                  right = 1x1 conv BN ReLU -> 3x3 depthwise (stride) BN -> 1x1 conv BN ReLU.
  Both end with a channel shuffle of 2 groups.
"""

import keras
from keras import ops

from bl_keras.layers import width as widths
from bl_keras.layers.conv import ConvBN
from bl_keras.layers.norm import norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")


@register
class ChannelSplit(keras.layers.Layer):
    """Split the last axis into `num_splits` equal parts; returns a list of tensors."""

    def __init__(self, num_splits=2, **kwargs):
        super().__init__(**kwargs)
        self.num_splits = int(num_splits)
        if self.num_splits < 2:
            raise ValueError(f"ChannelSplit needs num_splits >= 2, got {num_splits}")

    def _check(self, channels):
        if channels is not None and channels % self.num_splits:
            raise ValueError(f"{channels} channels do not split into {self.num_splits} parts")

    def build(self, input_shape):
        self._check(input_shape[-1])

    def call(self, inputs):
        return ops.split(inputs, self.num_splits, axis=-1)

    def compute_output_shape(self, input_shape):
        self._check(input_shape[-1])
        part = input_shape[:-1] + (input_shape[-1] // self.num_splits,)
        return [part] * self.num_splits

    def get_config(self):
        config = super().get_config()
        config.update(num_splits=self.num_splits)
        return config


@register
class ChannelShuffle(keras.layers.Layer):
    """Interleave `groups` groups of channels: output channel k * groups + g is input channel
    g * (channels / groups) + k."""

    def __init__(self, groups=2, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        if self.groups < 2:
            raise ValueError(f"ChannelShuffle needs groups >= 2, got {groups}")

    def build(self, input_shape):
        if input_shape[-1] % self.groups:
            raise ValueError(f"{input_shape[-1]} channels do not form {self.groups} groups")

    def call(self, inputs):
        channels = inputs.shape[-1]
        shape = ops.shape(inputs)
        grouped = ops.reshape(inputs, (-1, self.groups, channels // self.groups))
        return ops.reshape(ops.transpose(grouped, (0, 2, 1)), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        return config


@register
class ShuffleUnit(keras.layers.Layer):
    """The ShuffleNetV2 unit; basic or projecting depending on `strides` and the input width.

    Args:
        filters: output channels (even: half come from each of the two paths).
        strides: stride of the depthwise convolutions.
        last_relu: accepted so the unit fits every stage and branch (`Bottleneck`'s interface);
            it changes nothing, as every channel a unit outputs is already the output of a ReLU
            or an unchanged input channel (themselves non-negative).
        zero_gamma: initialise the scale of the right path's last BN to 0, so the unit starts as a
            shuffled identity on half of its channels. Off in ShuffleNetV2.
        norm: BatchNorm options.
    """

    def __init__(self, filters, strides=1, last_relu=True, zero_gamma=False, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = strides if isinstance(strides, int) else tuple(strides)
        self.last_relu = bool(last_relu)
        self.zero_gamma = bool(zero_gamma)
        self.norm = norm_config(norm)
        if self.filters % 2:
            raise ValueError(f"ShuffleUnit needs an even number of filters, got {filters}")
        self.projecting = None
        self.split = self.left_dw = self.left_pw = None
        self.right_pw1 = self.right_dw = self.right_pw2 = None
        self.shuffle = ChannelShuffle(2, name="shuffle", dtype=self.dtype_policy)

    def _conv(self, filters, kernel_size, name, strides=1, groups=1, activation="relu", **kw):
        return ConvBN(filters, kernel_size, strides, groups=groups, activation=activation,
                      norm=self.norm, name=name, dtype=self.dtype_policy, **kw)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        half = self.filters // 2
        self.projecting = self.strides not in (1, (1, 1)) or in_channels != self.filters
        right_in = in_channels if self.projecting else half
        shape = tuple(input_shape[:-1]) + (right_in,)
        if self.projecting:
            self.left_dw = self._conv(in_channels, 3, "left_dw", self.strides,
                                      groups=in_channels, activation=None)
            self.left_pw = self._conv(half, 1, "left_pw")
            self.left_dw.build(input_shape)
            self.left_pw.build(self.left_dw.compute_output_shape(input_shape))
        else:
            self.split = ChannelSplit(2, name="split", dtype=self.dtype_policy)
            self.split.build(input_shape)
        self.right_pw1 = self._conv(half, 1, "right_pw1")
        self.right_dw = self._conv(half, 3, "right_dw", self.strides, groups=half,
                                   activation=None)
        self.right_pw2 = self._conv(half, 1, "right_pw2", zero_gamma=self.zero_gamma)
        self.right_pw1.build(shape)
        shape = self.right_pw1.compute_output_shape(shape)
        self.right_dw.build(shape)
        shape = self.right_dw.compute_output_shape(shape)
        self.right_pw2.build(shape)
        self.shuffle.build(shape[:-1] + (self.filters,))

    def call(self, inputs, training=None):
        widths.require_full(self)
        if self.projecting:
            left = self.left_pw(self.left_dw(inputs, training=training), training=training)
            right = inputs
        else:
            left, right = self.split(inputs)
        right = self.right_pw1(right, training=training)
        right = self.right_dw(right, training=training)
        right = self.right_pw2(right, training=training)
        return self.shuffle(ops.concatenate([left, right], axis=-1))

    def compute_output_shape(self, input_shape):
        # A 3x3 convolution with symmetric padding 1 maps n to ceil(n / stride).
        strides = (self.strides,) * 2 if isinstance(self.strides, int) else self.strides
        spatial = tuple(None if n is None else -(-n // s) for n, s in zip(input_shape[1:3],
                                                                          strides))
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, last_relu=self.last_relu,
                      zero_gamma=self.zero_gamma, norm=self.norm)
        return config

"""Network stems: the plain ResNet stem and the released Big-Little stem.

ResNetStem:     7x7 conv 64 /2 -> BN -> ReLU -> 3x3 max-pool /2 (padding 1). ShuffleNetV2's stem
                is the same with a 3x3 conv of 24 channels.
BigLittleStem:  7x7 conv 64 /2 -> BN -> ReLU, then (no max-pool)
                big    = 3x3 conv 64 /2 -> BN
                little = 3x3 conv 64/alpha -> BN -> ReLU -> 3x3 conv 64/alpha /2 -> BN -> ReLU
                         -> 1x1 conv 64 -> BN
                add -> ReLU -> 1x1 conv 64 -> BN -> ReLU.
Both end at stride 4 with 64 channels, so the stages after them are the same.

The Big-Little stem follows the module's merge options (`bl_keras.layers.module`): "concat"
(big conv to 64 - 64/alpha channels, little path without its 1x1 conv, channels stacked, then the
1x1 fuse), None (no merge: returns [big, little] for the first module), and `branches=1`, the Big
path alone (conv1 -> big conv -> ReLU -> 1x1 fuse), the stem of the low-resolution baselines.
"""

import keras

from bl_keras.layers.conv import ConvBN
from bl_keras.layers.merge import MergeAdd
from bl_keras.layers.norm import norm_config
from bl_keras.layers.stack import MergeStack

register = keras.saving.register_keras_serializable(package="bl_keras")


@register
class ResNetStem(keras.layers.Layer):
    def __init__(self, filters=64, kernel_size=7, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.norm = norm_config(norm)
        self.conv1 = ConvBN(self.filters, self.kernel_size, 2, name="conv1", norm=self.norm,
                            dtype=self.dtype_policy)
        # Zero padding equals PyTorch's -inf padding here: the input is post-ReLU, so >= 0.
        self.pool_pad = keras.layers.ZeroPadding2D(1, name="pool_pad", dtype=self.dtype_policy)
        self.pool = keras.layers.MaxPooling2D(3, 2, name="pool", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.pool_pad.build(shape)
        self.pool.build(self.pool_pad.compute_output_shape(shape))

    def call(self, inputs, training=None):
        return self.pool(self.pool_pad(self.conv1(inputs, training=training)))

    def compute_output_shape(self, input_shape):
        shape = self.conv1.compute_output_shape(input_shape)
        return self.pool.compute_output_shape(self.pool_pad.compute_output_shape(shape))

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, norm=self.norm)
        return config


@register
class BigLittleStem(keras.layers.Layer):
    """The released Big-Little stem (see the module doc for `merge` and `branches`)."""

    def __init__(self, filters=64, alpha=2, merge="add", branches=2, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.alpha = int(alpha)
        self.merge = merge
        self.branches = int(branches)
        self.norm = norm_config(norm)
        if self.alpha < 1 or self.filters % self.alpha:
            raise ValueError(f"alpha={alpha} must be >= 1 and divide the stem's {filters} filters")
        if merge not in ("add", "concat", None):
            raise ValueError(f"merge must be 'add', 'concat' or None, got {merge!r}")
        if self.branches not in (1, 2):
            raise ValueError(f"the stem has 1 or 2 branches, got {branches!r}")
        thin = self.filters // self.alpha
        common = dict(norm=self.norm, dtype=self.dtype_policy)
        self.conv1 = ConvBN(self.filters, 7, 2, name="conv1", **common)
        # Added to the little path, the big conv leaves the ReLU to the merge; otherwise it ends
        # with its own, as the little path does.
        big_activation = "relu" if merge != "add" or self.branches == 1 else None
        big_filters = self.filters - thin if merge == "concat" and self.branches == 2 else (
            self.filters)
        self.big_conv = ConvBN(big_filters, 3, 2, activation=big_activation, name="big_conv",
                               **common)
        self.little_conv1 = self.little_conv2 = self.little_expand = self.merge_layer = None
        if self.branches == 2:
            self.little_conv1 = ConvBN(thin, 3, name="little_conv1", **common)
            self.little_conv2 = ConvBN(thin, 3, 2, name="little_conv2", **common)
            if merge == "add":
                self.little_expand = ConvBN(self.filters, 1, activation=None,
                                            name="little_expand", **common)
                self.merge_layer = MergeAdd(name="merge", dtype=self.dtype_policy)
            elif merge == "concat":
                self.merge_layer = MergeStack(name="merge", dtype=self.dtype_policy)
        self.fuse = None
        if merge is not None or self.branches == 1:
            self.fuse = ConvBN(self.filters, 1, name="fuse", **common)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.big_conv.build(shape)
        big = self.big_conv.compute_output_shape(shape)
        if self.branches == 2:
            self.little_conv1.build(shape)
            shape = self.little_conv1.compute_output_shape(shape)
            self.little_conv2.build(shape)
            shape = self.little_conv2.compute_output_shape(shape)
            if self.little_expand is not None:
                self.little_expand.build(shape)
                shape = self.little_expand.compute_output_shape(shape)
            if self.merge_layer is not None:
                self.merge_layer.build([big, shape])
        if self.fuse is not None:
            merged = big if self.merge_layer is None else self.merge_layer.compute_output_shape(
                [big, shape])
            self.fuse.build(merged)

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        big = self.big_conv(x, training=training)
        if self.branches == 1:
            return self.fuse(big, training=training)
        little = self.little_conv1(x, training=training)
        little = self.little_conv2(little, training=training)
        if self.little_expand is not None:
            little = self.little_expand(little, training=training)
        if self.merge_layer is None:
            return [big, little]
        return self.fuse(self.merge_layer([big, little]), training=training)

    def compute_output_shape(self, input_shape):
        # From the sublayers: a narrower network (`bl_keras.layers.width.building`) has other
        # counts than the configuration's.
        shape = self.conv1.compute_output_shape(input_shape)
        big = self.big_conv.compute_output_shape(shape)
        if self.fuse is None:
            little = self.little_conv2.compute_output_shape(
                self.little_conv1.compute_output_shape(shape))
            return [big, little]
        return self.fuse.compute_output_shape(big)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, alpha=self.alpha, merge=self.merge,
                      branches=self.branches, norm=self.norm)
        return config

"""Network stems: the plain ResNet stem and the released Big-Little stem.

ResNetStem:     7x7 conv 64 /2 -> BN -> ReLU -> 3x3 max-pool /2 (padding 1).
BigLittleStem:  7x7 conv 64 /2 -> BN -> ReLU, then (no max-pool)
                big    = 3x3 conv 64 /2 -> BN
                little = 3x3 conv 64/alpha -> BN -> ReLU -> 3x3 conv 64/alpha /2 -> BN -> ReLU
                         -> 1x1 conv 64 -> BN
                add -> ReLU -> 1x1 conv 64 -> BN -> ReLU.
Both end at stride 4 with 64 channels, so the stages after them are the same.
"""

import keras

from bl_keras.layers.conv import ConvBN
from bl_keras.layers.merge import MergeAdd
from bl_keras.layers.norm import norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")


@register
class ResNetStem(keras.layers.Layer):
    def __init__(self, filters=64, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.norm = norm_config(norm)
        self.conv1 = ConvBN(self.filters, 7, 2, name="conv1", norm=self.norm, dtype=self.dtype_policy)
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
        config.update(filters=self.filters, norm=self.norm)
        return config


@register
class BigLittleStem(keras.layers.Layer):
    def __init__(self, filters=64, alpha=2, norm=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.alpha = int(alpha)
        self.norm = norm_config(norm)
        if self.alpha < 1 or self.filters % self.alpha:
            raise ValueError(f"alpha={alpha} must be >= 1 and divide the stem's {filters} filters")
        thin = self.filters // self.alpha
        common = dict(norm=self.norm, dtype=self.dtype_policy)
        self.conv1 = ConvBN(self.filters, 7, 2, name="conv1", **common)
        self.big_conv = ConvBN(self.filters, 3, 2, activation=None, name="big_conv", **common)
        self.little_conv1 = ConvBN(thin, 3, name="little_conv1", **common)
        self.little_conv2 = ConvBN(thin, 3, 2, name="little_conv2", **common)
        self.little_expand = ConvBN(self.filters, 1, activation=None, name="little_expand", **common)
        self.merge = MergeAdd(name="merge", dtype=self.dtype_policy)
        self.fuse = ConvBN(self.filters, 1, name="fuse", **common)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        shape = self.conv1.compute_output_shape(input_shape)
        self.big_conv.build(shape)
        self.little_conv1.build(shape)
        shape = self.little_conv1.compute_output_shape(shape)
        self.little_conv2.build(shape)
        shape = self.little_conv2.compute_output_shape(shape)
        self.little_expand.build(shape)
        shape = self.little_expand.compute_output_shape(shape)
        self.merge.build([shape, shape])
        self.fuse.build(shape)

    def call(self, inputs, training=None):
        x = self.conv1(inputs, training=training)
        big = self.big_conv(x, training=training)
        little = self.little_conv1(x, training=training)
        little = self.little_conv2(little, training=training)
        little = self.little_expand(little, training=training)
        return self.fuse(self.merge([big, little]), training=training)

    def compute_output_shape(self, input_shape):
        shape = self.conv1.compute_output_shape(input_shape)
        return self.big_conv.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, alpha=self.alpha, norm=self.norm)
        return config

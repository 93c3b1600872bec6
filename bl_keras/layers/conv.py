"""Convolution + BatchNorm (+ ReLU), the unit every block is made of.

PyTorch pads convolutions symmetrically; TensorFlow's "same" padding with stride 2 pads only the
bottom/right. Strided convolutions here therefore pad explicitly, so weights converted from the
released PyTorch models give the same outputs (and the same spatial alignment).

The weights live in a Keras Conv2D and BatchNormalization (stable names conv/kernel, bn/gamma...),
but on the TensorFlow backend the layer computes them with fused kernels (`fused.py`); the plain
Keras sublayer path remains for synchronized BatchNorm and other backends.
"""

import keras

from bl_keras.layers.norm import batch_norm, norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")


def he_normal_fan_out():
    """Kaiming-normal, fan_out mode: the initialisation of the released models' convolutions."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


@register
class ConvBN(keras.layers.Layer):
    """Conv2D (no bias) -> BatchNorm -> optional ReLU, with PyTorch-style symmetric padding.

    Args:
        filters: output channels.
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        groups: convolution groups (ResNeXt cardinality).
        activation: "relu" or None.
        padding: "symmetric" pads (k - 1) // 2 on each side of every axis (PyTorch's `padding=k//2`);
            "valid" pads nothing (the speech models do not pad in time); a pair of strings chooses
            per axis, e.g. ("symmetric", "valid").
        zero_gamma: initialise the BatchNorm scale to 0 (last BN of a residual branch).
        norm: BatchNorm options, see `bl_keras.layers.norm.norm_config`.
    """

    def __init__(
        self,
        filters,
        kernel_size=1,
        strides=1,
        groups=1,
        activation="relu",
        padding="symmetric",
        zero_gamma=False,
        norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.groups = int(groups)
        self.activation = activation
        self.padding = padding
        self.zero_gamma = bool(zero_gamma)
        self.norm = norm_config(norm)
        if activation not in ("relu", None):
            raise ValueError(f"ConvBN activation must be 'relu' or None, got {activation!r}")

        modes = (padding, padding) if isinstance(padding, str) else tuple(padding)
        for mode in modes:
            if mode not in ("symmetric", "valid"):
                raise ValueError(f"ConvBN padding must be 'symmetric' or 'valid', got {padding!r}")
        pads = tuple(
            (k - 1) // 2 if mode == "symmetric" else 0 for k, mode in zip(self.kernel_size, modes)
        )
        # Stride 1 with symmetric padding of an odd kernel is exactly Keras "same": no extra layer.
        same_is_exact = self.strides == (1, 1) and all(k % 2 == 1 for k in self.kernel_size) and all(
            m == "symmetric" for m in modes
        )
        self.pad = None
        conv_padding = "valid"
        if same_is_exact and any(pads):
            conv_padding = "same"
        elif any(pads):
            self.pad = keras.layers.ZeroPadding2D(
                ((pads[0], pads[0]), (pads[1], pads[1])), name="pad", dtype=self.dtype_policy
            )
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding=conv_padding,
            groups=self.groups,
            use_bias=False,
            kernel_initializer=he_normal_fan_out(),
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = batch_norm(self.norm, zero_gamma=self.zero_gamma, name="bn", dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = input_shape
        if self.pad is not None:
            self.pad.build(shape)
            shape = self.pad.compute_output_shape(shape)
        self.conv.build(shape)
        self.bn.build(self.conv.compute_output_shape(shape))

    def call(self, inputs, training=None):
        if keras.backend.backend() != "tensorflow" or self.norm["synchronized"]:
            # Cross-replica statistics need Keras' synchronized BatchNormalization.
            x = inputs if self.pad is None else self.pad(inputs)
            x = self.bn(self.conv(x), training=training)
        else:
            x = self._fused_call(inputs, training)
        return keras.ops.relu(x) if self.activation == "relu" else x

    def _fused_call(self, inputs, training):
        from bl_keras.layers import fused  # TensorFlow-only

        padding = self.conv.padding.upper()
        kernel = keras.ops.convert_to_tensor(self.conv.kernel)  # autocast to compute dtype
        if training and self.bn.trainable:
            # oneDNN has no gradient kernels for explicitly padded convolutions (TF falls back
            # to far slower Eigen ones): pad, then convolve "valid".
            x = inputs if self.pad is None else self.pad(inputs)
            x = fused.conv2d(x, kernel, self.strides, padding)
            return fused.batch_norm_training(x, self.bn)
        if self.pad is not None:
            padding = fused.explicit_padding(self.pad.padding)
        return fused.folded_conv_bn(inputs, kernel, self.bn, self.strides, padding)

    def compute_output_shape(self, input_shape):
        shape = input_shape if self.pad is None else self.pad.compute_output_shape(input_shape)
        return self.conv.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            groups=self.groups,
            activation=self.activation,
            padding=self.padding,
            zero_gamma=self.zero_gamma,
            norm=self.norm,
        )
        return config

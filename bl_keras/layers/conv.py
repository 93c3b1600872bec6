"""Convolution + BatchNorm (+ ReLU), the unit every block is made of.

PyTorch pads convolutions symmetrically; TensorFlow's "same" padding with stride 2 pads only the
bottom/right. Strided convolutions here therefore pad explicitly, so weights converted from the
released PyTorch models give the same outputs (and the same spatial alignment).

The weights live in a Keras Conv2D and BatchNormalization (stable names conv/kernel, bn/gamma...),
but on the TensorFlow backend the layer computes them with fused kernels (`fused.py`); the plain
Keras sublayer path remains for synchronized BatchNorm and other backends.

Under a width (`bl_keras.layers.width.running_width`) below 1, or a tensor width, the layer runs
its sub-network of that width (US-Net): the input's channels (the first ones of the kernel's
inputs), the first `active(filters, width)` outputs, BatchNorm on that slice (in training, only
those channels' moving statistics move). Grouped convolutions keep their per-group width and
run as many groups as the input fills. Without a width, or at the static width 1.0, the fixed
code above runs unchanged.
"""

import keras

from bl_keras.layers import width as widths
from bl_keras.layers.norm import batch_norm, norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")


def he_normal_fan_out():
    """Kaiming-normal, fan_out mode: the initialisation of the released models' convolutions."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


ACTIVATIONS = ("relu", "relu6", None)
PADDINGS = ("symmetric", "valid", "same")


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
        activation: "relu", "relu6" (the MobileNets) or None.
        padding: "symmetric" pads (k - 1) // 2 on each side of every axis (PyTorch's `padding=k//2`);
            "valid" pads nothing (the speech models do not pad in time); a pair of strings chooses
            per axis, e.g. ("symmetric", "valid"); "same" is TensorFlow's (the MobileNets).
        zero_gamma: initialise the BatchNorm scale to 0 (last BN of a residual branch).
        norm: BatchNorm options, see `bl_keras.layers.norm.norm_config`.
        slim_out: under a width, slim the outputs; False keeps `filters` (MobileNet v2's last
            conv).
        ratio: under a width the layer has ratio x active(filters / ratio) outputs (MobileNet
            v2's expansion: t x its input's count; a ResNeXt block's first conv: whole groups).
        kernel_initializer: None (the released bL models' Kaiming-normal, fan_out) or any Keras
            initializer; the MobileNets use "he_normal" (fan_in).

    Called with `out_channels` under a width, the layer has that many outputs (a residual
    block's last conv matches its identity shortcut).
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
        slim_out=True,
        ratio=1,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_initializer is not None and not isinstance(kernel_initializer, (str, dict)):
            kernel_initializer = keras.initializers.serialize(kernel_initializer)
        self.kernel_initializer = kernel_initializer
        self.filters = int(filters)
        self.slim_out = bool(slim_out)
        self.ratio = int(ratio)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.groups = int(groups)
        self.activation = activation
        self.padding = padding
        self.zero_gamma = bool(zero_gamma)
        self.norm = norm_config(norm)
        if activation not in ACTIVATIONS:
            raise ValueError(f"ConvBN activation must be one of {ACTIVATIONS}, got {activation!r}")

        modes = (padding, padding) if isinstance(padding, str) else tuple(padding)
        for mode in modes:
            if mode not in PADDINGS:
                raise ValueError(f"ConvBN padding must be one of {PADDINGS}, got {padding!r}")
        if "same" in modes and padding != "same":
            raise ValueError(f"ConvBN padding 'same' applies to both axes, got {padding!r}")
        pads = tuple(
            (k - 1) // 2 if mode == "symmetric" else 0 for k, mode in zip(self.kernel_size, modes)
        )
        # Stride 1 with symmetric padding of an odd kernel is exactly Keras "same": no extra layer.
        same_is_exact = self.strides == (1, 1) and all(k % 2 == 1 for k in self.kernel_size) and all(
            m == "symmetric" for m in modes
        )
        self.pad = None
        conv_padding = "valid"
        if padding == "same" or (same_is_exact and any(pads)):
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
            kernel_initializer=(he_normal_fan_out() if kernel_initializer is None
                                else keras.initializers.get(kernel_initializer)),
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = batch_norm(self.norm, zero_gamma=self.zero_gamma, name="bn", dtype=self.dtype_policy)

    def build(self, input_shape):
        plan = widths.planned(self)
        if plan is not None:  # the layer of a narrower network: its recorded counts
            self.filters = self.conv.filters = plan["filters"]
            self.groups = self.conv.groups = plan["groups"]
        shape = input_shape
        if self.pad is not None:
            self.pad.build(shape)
            shape = self.pad.compute_output_shape(shape)
        self.conv.build(shape)
        self.bn.build(self.conv.compute_output_shape(shape))

    def call(self, inputs, training=None, out_channels=None):
        width = widths.current_width()
        if not widths.is_full(width):
            x = self._slim_call(inputs, training, width, out_channels)
        elif keras.backend.backend() != "tensorflow" or self.norm["synchronized"]:
            # Cross-replica statistics need Keras' synchronized BatchNormalization.
            x = inputs if self.pad is None else self.pad(inputs)
            x = self.bn(self.conv(x), training=training)
        else:
            widths.record(self, filters=self.filters, groups=self.groups)
            x = self._fused_call(inputs, training)
        if self.activation == "relu6":
            return keras.ops.relu6(x)
        return keras.ops.relu(x) if self.activation == "relu" else x

    def fold_for_inference(self):
        """Folds BatchNorm into the kernel once, into variables of the compute dtype that
        inference uses until `release_folded` (see bl_keras.layers.inference); returns them,
        or () where inference folds per call anyway (another backend, synchronized norm)."""
        if (keras.backend.backend() != "tensorflow" or self.norm["synchronized"]
                or not self.conv.built):
            return ()
        import tensorflow as tf

        from bl_keras.layers import fused  # TensorFlow-only

        kernel, bias = fused.fold_batch_norm(fused.stored_weight(self.conv.kernel), self.bn,
                                             self.compute_dtype)
        folded = (tf.Variable(kernel, trainable=False, name=f"{self.name}_folded_kernel"),
                  tf.Variable(bias, trainable=False, name=f"{self.name}_folded_bias"))
        # Not a Keras weight: never saved with the model, never seen by an optimizer.
        object.__setattr__(self, "_folded", folded)
        return folded

    def release_folded(self):
        object.__setattr__(self, "_folded", None)

    def _fused_call(self, inputs, training):
        from bl_keras.layers import fused  # TensorFlow-only

        padding = self.conv.padding.upper()
        folded = getattr(self, "_folded", None)
        if training and folded is not None:
            raise RuntimeError(f"{self.name}: called with training=True while its weights are "
                               "folded for inference; leave folded_inference(model) first")
        if training and self.bn.trainable:
            kernel = keras.ops.convert_to_tensor(self.conv.kernel)  # autocast to compute dtype
            # oneDNN has no gradient kernels for explicitly padded convolutions (TF falls back
            # to far slower Eigen ones): pad, then convolve "valid".
            x = inputs if self.pad is None else self.pad(inputs)
            x = fused.training_conv2d(x, kernel, self.strides, padding)
            return fused.batch_norm_training(x, self.bn, weight=widths.calibration_weight())
        if self.pad is not None:
            padding = fused.explicit_padding(self.pad.padding)
        if folded is not None:
            return fused.biased_conv2d(inputs, *folded, self.strides, padding)
        return fused.folded_conv_bn(inputs, fused.stored_weight(self.conv.kernel), self.bn,
                                    self.strides, padding)

    def active_channels(self, in_channels, width, out_channels=None):
        """(outputs, groups) of the sub-network at `width` fed `in_channels` channels."""
        if self.groups > 1:
            # Whole groups of the same width: as many as the input fills.
            groups = in_channels // (self.conv.kernel.shape[-2])
            return groups * (self.filters // self.groups), groups
        if out_channels is not None:
            return out_channels, 1
        if not self.slim_out:
            return self.filters, 1
        return widths.active(self.filters, width, self.ratio), 1

    def _slim_call(self, inputs, training, width, out_channels):
        if keras.backend.backend() != "tensorflow" or self.norm["synchronized"]:
            raise ValueError(f"{self.name}: running at a width below 1 needs the TensorFlow "
                             "backend and unsynchronized BatchNorm")
        from bl_keras.layers import fused  # TensorFlow-only

        c_in = widths.channels_of(inputs)
        c_out, groups = self.active_channels(c_in, width, out_channels)
        if widths.is_static(width):
            widths.record(self, filters=int(c_out), groups=int(groups))
        inference = not (training and self.bn.trainable)
        # Inference folds BatchNorm into the stored float32 kernel; training autocasts it.
        kernel = (fused.stored_weight(self.conv.kernel) if inference
                  else keras.ops.convert_to_tensor(self.conv.kernel))
        kernel = kernel[:, :, :, :c_out] if self.groups > 1 else kernel[:, :, :c_in, :c_out]
        padding = self.conv.padding.upper()
        if not inference:
            x = inputs if self.pad is None else self.pad(inputs)
            x = fused.training_conv2d(x, kernel, self.strides, padding)
            return fused.batch_norm_training(x, self.bn, channels=c_out,
                                             weight=widths.calibration_weight())
        if self.pad is not None:
            padding = fused.explicit_padding(self.pad.padding)
        return fused.folded_conv_bn(inputs, kernel, self.bn, self.strides, padding,
                                    channels=c_out)

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
            slim_out=self.slim_out,
            ratio=self.ratio,
            kernel_initializer=self.kernel_initializer,
        )
        return config

"""TensorFlow kernels behind `ConvBN`: one fused op per convolution instead of four.

Keras' Conv2D -> BatchNormalization -> ReLU runs as separate passes over every activation (and a
ZeroPadding2D copy before strided convolutions). On the TensorFlow backend `ConvBN` computes the
same function with:

- inference: BatchNorm folded into the convolution (kernel * gamma / sqrt(var + eps), bias
  beta - mean * scale), padding passed to the convolution itself, so Grappler fuses
  conv + bias (+ residual add) (+ ReLU) into a single kernel;
- training: the convolution, then TensorFlow's fused batch-norm op (one kernel forward and one
  backward instead of moments + normalisation); moving statistics are updated exactly as Keras'
  BatchNormalization updates them (biased batch variance).

Grouped convolutions (ResNeXt) run on TensorFlow's native kernel, which is several times faster
on CPU than the XLA-compiled function Keras wraps them in. TensorFlow has no CPU kernel for their
gradients, so the backward pass is an XLA-compiled function (what Keras uses for both passes).
Depthwise convolutions (one input channel per group) run on the depthwise kernel.

In float32 training, the released models' shortcut average pool (PyTorch AvgPool2d(3, 2,
padding=1), which counts the padded zeros) runs as a fixed depthwise convolution with weights
1/9, whose oneDNN backward kernel was much faster than average pooling's on some CPUs. In
bfloat16 the depthwise backward is 4-10x slower than average pooling's (103 vs 11 ms at
16x56x56x256 on an AVX-512-bf16 CPU), so bf16 and float16 training keep the pooling op.
(Inference keeps the pooling op: exported graphs stay free of extra constant filters, and the
MAC count never sees it.)
"""

import numpy as np
import tensorflow as tf


def explicit_padding(pads):
    """TF explicit padding for NHWC from ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = pads
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


def _grouped_backward(strides, padding):
    @tf.function(jit_compile=True, reduce_retracing=True)
    def backward(inputs, kernel, upstream):
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            outputs = tf.nn.conv2d(inputs, kernel, strides, padding)
        return tape.gradient(outputs, [inputs, kernel], output_gradients=upstream)

    return backward


def conv2d(inputs, kernel, strides, padding):
    """NHWC convolution; `padding` is "VALID", "SAME" or an explicit list. Groups come from the
    kernel's input depth, as in `tf.nn.conv2d`."""
    channels = inputs.shape[-1]
    if channels == kernel.shape[-2] and (channels is not None or kernel.shape[-2] != 1):
        return tf.nn.conv2d(inputs, kernel, strides, padding)
    kernel = tf.convert_to_tensor(kernel)  # a read value: the custom gradient covers it
    if kernel.shape[-2] == 1:  # depthwise: (kh, kw, 1, C * m) -> (kh, kw, C, m), same order
        if channels is None:  # a slimmed layer under a tensor width
            channels = tf.shape(inputs)[-1]
        depthwise = tf.reshape(kernel, [*kernel.shape[:2], channels, -1])
        return _depthwise(inputs, depthwise, strides, padding)

    @tf.custom_gradient
    def grouped(x, k):
        def grad(upstream):
            return _grouped_backward(strides, padding)(x, k, upstream)

        return tf.nn.conv2d(x, k, strides, padding), grad

    return grouped(inputs, kernel)


# oneDNN's x86 kernel gradient of a strided 1x1 convolution on NHWC inputs with fewer channels
# than its 16-channel block writes past its workspace (oneDNN issue 6035): heap corruption,
# then a crash or a hang (speech models' (2, 1)-strided 1x1 shortcuts at width 8 aborted).
SMALL_CHANNELS = 16


def training_conv2d(inputs, kernel, strides, padding):
    """`conv2d` for a training step. A strided 1x1 convolution of fewer than `SMALL_CHANNELS`
    input channels reads the strided pixels first and convolves with stride 1 (the same sums,
    and its gradient a strided scatter): oneDNN's kernel gradient never takes its faulty path."""
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    channels = inputs.shape[-1]
    if (tuple(kernel.shape[:2]) == (1, 1) and (sh, sw) != (1, 1)
            and (channels is None or channels < SMALL_CHANNELS)
            and padding in ("VALID", "SAME")):  # a 1x1 kernel pads nothing either way
        return conv2d(inputs[:, ::sh, ::sw, :], kernel, (1, 1), "VALID")
    return conv2d(inputs, kernel, strides, padding)


def _leading(variable, channels):
    value = tf.cast(variable, tf.float32)
    return value if channels is None else value[:channels]


def stored_weight(variable):
    """`variable` as stored (float32 under a mixed policy), not autocast to the calling layer's
    compute dtype. Inference folds BatchNorm into it in float32 and casts once: through Keras'
    autocast the kernel would be rounded to bfloat16 first and cast twice more, three passes
    over every weight per call (about 20 ms of a ResNet-50 bf16 step at batch 16). Keras has no
    public read that skips autocasting; its TensorFlow variables keep the tf.Variable here."""
    stored = getattr(variable, "_value", None)
    return tf.convert_to_tensor(variable if stored is None else stored)


def folded_conv_bn(inputs, kernel, bn, strides, padding, channels=None):
    """conv(inputs, kernel) followed by `bn` in inference mode, as one convolution + bias;
    `kernel` is best the stored float32 weight (`stored_weight`); `channels`: the kernel's
    output count when `bn` is wider (a slimmed layer: its first channels)."""
    kernel, bias = fold_batch_norm(kernel, bn, inputs.dtype, channels)
    return biased_conv2d(inputs, kernel, bias, strides, padding)


def fold_batch_norm(kernel, bn, dtype, channels=None):
    """(kernel * scale, beta - mean * scale) in `dtype`, scale = gamma / sqrt(var + eps),
    computed in float32 and rounded once."""
    scale = _leading(bn.gamma, channels) * tf.math.rsqrt(
        _leading(bn.moving_variance, channels) + bn.epsilon)
    bias = _leading(bn.beta, channels) - _leading(bn.moving_mean, channels) * scale
    return tf.cast(tf.cast(kernel, tf.float32) * scale, dtype), tf.cast(bias, dtype)


def biased_conv2d(inputs, kernel, bias, strides, padding):
    return tf.nn.bias_add(conv2d(inputs, kernel, strides, padding), bias)


def batch_norm_training(x, bn, channels=None, weight=None):
    """Normalise `x` with its batch statistics and update `bn`'s moving averages as
    moving = (1 - weight) * moving + weight * batch (weight: 1 - momentum unless calibrating).

    `channels`: `x`'s channel count when `bn` is wider (a slimmed layer): the first channels of
    gamma and beta normalise it, and only the first channels of the moving statistics move."""
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, _leading(bn.gamma, channels), _leading(bn.beta, channels), epsilon=bn.epsilon,
        is_training=True)
    # The fused op returns the Bessel-corrected variance; Keras averages the biased one.
    count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    variance = variance * tf.maximum(count - 1.0, 0.0) / count
    if weight is None:
        keep, weight = bn.momentum, 1.0 - bn.momentum
    else:
        weight = tf.cast(weight, tf.float32)
        keep = 1.0 - weight
    for moving, batch in ((bn.moving_mean, mean), (bn.moving_variance, variance)):
        if channels is None:
            moving.assign(moving * keep + batch * weight)
        else:
            full = tf.convert_to_tensor(moving)
            moved = full[:channels] * keep + batch * weight
            moving.assign(tf.concat([moved, full[channels:]], axis=0))
    return y


def _depthwise(inputs, kernel, strides, padding):
    if not isinstance(padding, str):
        # TF 2.21's static shape inference of DepthwiseConv2dNative aborts the process on some
        # graphs with explicit padding (seen in exported serving functions): pad separately.
        inputs, padding = tf.pad(inputs, padding), "VALID"
    return tf.nn.depthwise_conv2d(inputs, kernel, [1, *strides, 1], padding)


def average_pool_3x3_s2(x, training=False):
    """AvgPool 3x3, stride 2, padding 1, padded zeros counted (PyTorch's default).

    In float32 training a fixed 1/9 depthwise convolution (same values, a faster backward
    pass); otherwise (inference, bfloat16 or float16 training, or a channel count known only at
    run time, as in slimmable networks under a tensor width) pad + average pooling, so exported
    graphs and the MAC count see a pooling op."""
    padding = explicit_padding(((1, 1), (1, 1)))
    channels = x.shape[-1]
    if not training or channels is None or x.dtype != tf.float32:
        return tf.nn.avg_pool2d(tf.pad(x, padding), 3, 2, "VALID")
    window = tf.constant(np.full((3, 3, channels, 1), 1.0 / 9.0, np.float32), dtype=x.dtype)
    return _depthwise(x, window, (2, 2), padding)

"""ConvBN's fused TensorFlow kernels compute what its Keras sublayers compute."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras.layers import ConvBN
from bl_keras.layers.blocks import Bottleneck
from bl_keras.layers.resize import resize_axis


def keras_path(layer, x, training):
    """The plain sublayer computation (what the layer does under synchronized BatchNorm)."""
    y = layer.bn(layer.conv(x if layer.pad is None else layer.pad(x)), training=training)
    return keras.ops.relu(y) if layer.activation == "relu" else y


def random_layer(groups, strides, padding, activation, filters=16, channels=8):
    layer = ConvBN(filters, 3, strides, groups=groups, padding=padding, activation=activation)
    layer.build((None, 9, 10, channels))
    rng = np.random.default_rng(0)
    for weight in layer.bn.weights:  # non-trivial statistics, so folding really matters
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    return layer


CASES = [(1, 1, "symmetric", "relu"), (1, 2, "symmetric", None), (4, 2, "symmetric", "relu"),
         (4, 1, "symmetric", None), (8, 2, "symmetric", "relu"),  # 8 groups of 1: depthwise
         (1, 2, ("symmetric", "valid"), "relu")]


@pytest.mark.parametrize("groups, strides, padding, activation", CASES)
def test_fused_matches_keras_forward_backward_and_statistics(groups, strides, padding,
                                                             activation):
    layer = random_layer(groups, strides, padding, activation)
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 9, 10, 8)).astype("float32"))
    np.testing.assert_allclose(layer(x, training=False), keras_path(layer, x, False),
                               rtol=1e-5, atol=1e-5)

    # A random projection as the loss: sum(y ** 2) of a normalised y has (nearly) no gradient.
    probe = tf.constant(np.random.default_rng(3).normal(
        size=layer.compute_output_shape(x.shape)).astype("float32"))
    stats = [w.numpy() for w in layer.bn.non_trainable_weights]
    results = {}
    for name, run in (("fused", lambda: layer(x, training=True)),
                      ("keras", lambda: keras_path(layer, x, True))):
        for weight, value in zip(layer.bn.non_trainable_weights, stats):
            weight.assign(value)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(run() * probe)
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        results[name] = (loss, grads, [w.numpy() for w in layer.bn.non_trainable_weights])
    (loss_f, grads_f, stats_f), (loss_k, grads_k, stats_k) = results["fused"], results["keras"]
    np.testing.assert_allclose(loss_f, loss_k, rtol=1e-5)
    for fused_grad, keras_grad in zip(grads_f, grads_k):
        scale = float(tf.reduce_max(tf.abs(keras_grad)))
        np.testing.assert_allclose(fused_grad, keras_grad, atol=1e-4 * scale)
    for before, fused_stat, keras_stat in zip(stats, stats_f, stats_k):  # moving mean, var
        assert not np.allclose(fused_stat, before)  # updated from the batch
        np.testing.assert_allclose(fused_stat, keras_stat, rtol=1e-5, atol=1e-6)


def test_shortcut_pool_is_the_same_window_in_training_and_inference():
    block = Bottleneck(64, strides=2, shortcut="avgpool")
    block.build((None, 8, 8, 32))
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 32)).astype("float32"))
    np.testing.assert_allclose(block._average_pool(x, training=True),
                               block._average_pool(x, training=False), rtol=1e-6, atol=1e-6)


def test_exact_2x_nearest_upsampling_repeats_rows():
    x = np.arange(2 * 3 * 5 * 2, dtype="float32").reshape(2, 3, 5, 2)
    for axis in (1, 2):
        out = resize_axis(x, 2 * x.shape[axis], axis, "nearest")
        np.testing.assert_array_equal(out, np.repeat(x, 2, axis=axis))


@pytest.mark.parametrize("dtype,op", [("float32", "DepthwiseConv2dNative"),
                                      ("bfloat16", "AvgPool")])
def test_training_average_pool_kernel_by_precision(dtype, op):
    """The shortcut pool's training kernel: a 1/9 depthwise convolution in float32, average
    pooling in bfloat16 (oneDNN's bf16 depthwise backward is several times slower)."""
    from bl_keras.layers.fused import average_pool_3x3_s2

    graph = tf.function(lambda x: average_pool_3x3_s2(x, training=True)).get_concrete_function(
        tf.TensorSpec((2, 8, 8, 4), dtype)).graph
    types = {o.type for o in graph.get_operations()}
    assert op in types and ({"DepthwiseConv2dNative", "AvgPool"} - {op}).isdisjoint(types)
    x = tf.cast(tf.random.stateless_normal((2, 8, 8, 4), seed=[0, 1]), dtype)
    expected = tf.nn.avg_pool2d(tf.pad(tf.cast(x, tf.float32), [[0, 0], [1, 1], [1, 1], [0, 0]]),
                                3, 2, "VALID")
    np.testing.assert_allclose(tf.cast(average_pool_3x3_s2(x, training=True), tf.float32),
                               expected, atol=1e-6 if dtype == "float32" else 2e-2)


@pytest.mark.parametrize("groups", [1, 4])
def test_mixed_precision_inference_folds_the_float32_kernel(groups):
    """Under mixed_bfloat16, inference folds BatchNorm into the stored float32 kernel and rounds
    once (one cast per weight), not into a kernel already autocast to bfloat16."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = ConvBN(16, 3, groups=groups)
        x = tf.random.stateless_normal((2, 8, 8, 8), seed=[3, 4])
        layer(x)
        rng = np.random.default_rng(0)
        for weight in (layer.bn.gamma, layer.bn.moving_mean):
            weight.assign(rng.normal(size=weight.shape).astype("float32"))
        layer.bn.moving_variance.assign(rng.uniform(0.5, 2.0, 16).astype("float32"))
        graph = tf.function(lambda v: layer(v, training=False)).get_concrete_function(x).graph
        # The only float32 -> bfloat16 casts: the input and the folded kernel and bias.
        casts = [op for op in graph.get_operations() if op.type == "Cast"]
        assert len(casts) == 3, [op.name for op in casts]
        bn = layer.bn
        scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        kernel = tf.cast(layer.conv.kernel.numpy() * scale, tf.bfloat16)
        bias = tf.cast(bn.beta.numpy() - bn.moving_mean.numpy() * scale, tf.bfloat16)
        inputs = tf.cast(x, tf.bfloat16)
        if groups == 1:
            y = tf.nn.conv2d(inputs, kernel, 1, "SAME")
        else:  # each group's 2 input channels to its 4 outputs
            y = tf.concat([tf.nn.conv2d(inputs[..., 2 * g:2 * g + 2], kernel[..., 4 * g:4 * g + 4],
                                        1, "SAME") for g in range(groups)], axis=-1)
        expected = tf.nn.relu(tf.nn.bias_add(y, bias))
        np.testing.assert_allclose(tf.cast(layer(x, training=False), tf.float32),
                                   tf.cast(expected, tf.float32), rtol=1e-2, atol=1e-2)
    finally:
        keras.config.set_dtype_policy(previous)


NARROW_STRIDED_1X1 = """
import numpy as np, tensorflow as tf
from bl_keras.layers import ConvBN
layer = ConvBN(8, 1, strides=(2, 1), activation=None)
x = tf.constant(np.random.default_rng(0).normal(size=(16, 32, 35, 8)).astype("float32"))
probe = tf.constant(np.random.default_rng(1).normal(size=(16, 16, 35, 8)).astype("float32"))
layer(x, training=True)
for _ in range(20):  # the faulty kernel corrupted the heap within a few calls
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * probe)
    grad_y, grad_kernel = tape.gradient(loss, [y, layer.conv.kernel])
# y = bn(conv(x)): the kernel's gradient is the strided pixels against d loss / d conv(x).
with tf.GradientTape() as tape:
    conv = tf.einsum("nhwc,cd->nhwd", x[:, ::2], layer.conv.kernel[0, 0])
    tape.watch(conv)
    loss = tf.reduce_sum(layer.bn(conv, training=True) * probe)
grad_conv = tape.gradient(loss, conv)
expected = np.einsum("nhwc,nhwd->cd", x.numpy()[:, ::2], grad_conv.numpy())
print("max_error", float(np.max(np.abs(grad_kernel.numpy()[0, 0] - expected))),
      "scale", float(np.max(np.abs(expected))))
"""


def test_narrow_strided_1x1_convolution_trains_without_corrupting_memory():
    """oneDNN's kernel gradient of a strided 1x1 convolution on fewer than 16 NHWC channels
    writes past its workspace (it aborted the speech models' training at width 8); ConvBN
    convolves the strided pixels instead. A child process, so a regression cannot take the
    test run down with it."""
    proc = subprocess.run([sys.executable, "-c", NARROW_STRIDED_1X1], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, error, _, scale = proc.stdout.split()[-4:]
    assert float(scale) > 1.0 and float(error) <= 1e-4 * float(scale), proc.stdout

"""Width-aware layers against independent computations, the channel rule, argument errors, and
gradients that reach only the active slices of the weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import slimmable
from bl_keras.layers import ConvBN
from bl_keras.layers import width as widths
from bl_keras.models import specs
from bl_keras.models.applications import Classifier
from tests.slimmable.helpers import assert_close, images

RNG = np.random.default_rng(7)


# ---- ConvBN at a width --------------------------------------------------------------------------

def _conv_bn(filters, kernel_size, in_channels, **options):
    """A ConvBN (no activation) with random weights and BatchNorm statistics."""
    layer = ConvBN(filters, kernel_size, activation=None, **options)
    layer.build((None, None, None, in_channels))
    for w in layer.weights:
        value = RNG.normal(0.0, 0.5, tuple(w.shape))
        if w.path.endswith("moving_variance"):
            value = RNG.uniform(0.5, 2.0, tuple(w.shape))
        w.assign(value.astype("float32"))
    return layer


def _at(layer, x, width, training=False):
    with widths.running_width(width):
        return layer(x, training=training)


def _both_widths(layer, x, width):
    """The layer at a Python width and, in a tf.function, at the same width as a tensor."""
    eager = _at(layer, x, width)
    traced = tf.function(lambda x, w: _at(layer, x, w))(tf.constant(x),
                                                        tf.constant(width, tf.float32))
    assert_close(traced, eager, rtol=1e-6)
    return eager


def _bn_inference(layer, y):
    """BatchNorm in inference mode on the first channels of `layer`'s statistics."""
    c = y.shape[-1]
    gamma, beta, mean, var = (keras.ops.convert_to_numpy(w)[:c] for w in layer.bn.weights)
    return (y - mean) / np.sqrt(var + layer.bn.epsilon) * gamma + beta


@pytest.mark.parametrize("width,c_out", [(0.5, 16), (0.75, 24), (0.99, 32)])
def test_conv_same_padding_is_conv_of_sliced_kernel(width, c_out):
    layer = _conv_bn(32, 3, 24, strides=2, padding="same")
    x = images((2, 9, 9, 16))                       # 16 of the 24 input channels
    y = _both_widths(layer, x, width)
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :16, :c_out]
    assert y.shape == (2, 5, 5, c_out)
    assert_close(y, _bn_inference(layer, tf.nn.conv2d(x, kernel, 2, "SAME").numpy()))


def test_conv_symmetric_padding_pads_kernel_size_over_two_each_side():
    layer = _conv_bn(64, 7, 3, strides=2)
    x = images((1, 16, 16, 3))
    y = _both_widths(layer, x, 0.3)                 # make_divisible(19.2) = 24 outputs
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :, :24]
    padded = np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)])
    assert y.shape == (1, 8, 8, 24)
    assert_close(y, _bn_inference(layer, tf.nn.conv2d(padded, kernel, 2, "VALID").numpy()))


@pytest.mark.parametrize("c_in", [8, 16, 24])
def test_depthwise_follows_input_channels(c_in):
    layer = _conv_bn(24, 3, 24, groups=24, padding="same")
    x = images((2, 6, 6, c_in))
    y = _both_widths(layer, x, 0.35)                # the width does not matter: c_in does
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :, :c_in]   # (3, 3, 1, C)
    expected = tf.nn.depthwise_conv2d(x, kernel.transpose(0, 1, 3, 2), [1, 1, 1, 1], "SAME")
    assert y.shape == (2, 6, 6, c_in)
    assert_close(y, _bn_inference(layer, expected.numpy()))


def test_grouped_conv_keeps_group_width_and_drops_groups():
    # 8 groups of 4 channels; 12 input channels fill 3 groups: 3 x (32 / 8) outputs.
    layer = _conv_bn(32, 3, 32, groups=8, padding="same")
    x = images((1, 5, 5, 12))
    y = _both_widths(layer, x, 0.4)
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :, :12]
    assert y.shape == (1, 5, 5, 12)
    assert_close(y, _bn_inference(layer, tf.nn.conv2d(x, kernel, 1, "SAME").numpy()))


def test_expansion_ratio_keeps_output_a_multiple_of_input():
    # MobileNet v2's expansion: 6 x make_divisible(16 x 0.35) = 6 x 8 outputs, not
    # make_divisible(96 x 0.35) = 32.
    layer = _conv_bn(96, 1, 16, ratio=6)
    y = _both_widths(layer, images((1, 4, 4, 8)), 0.35)
    assert y.shape[-1] == 48
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :8, :48]
    assert_close(y, _bn_inference(layer, tf.nn.conv2d(images((1, 4, 4, 8)), kernel, 1,
                                                      "SAME").numpy()))


def test_fixed_output_conv_keeps_its_filters():
    layer = _conv_bn(40, 1, 16, slim_out=False)
    assert _both_widths(layer, images((1, 3, 3, 8)), 0.25).shape == (1, 3, 3, 40)


# ---- the classifier ------------------------------------------------------------------------------

def test_classifier_uses_first_input_features():
    layer = Classifier(10)
    layer.build((None, 32))
    for w in layer.weights:
        w.assign(RNG.normal(0.0, 0.5, tuple(w.shape)).astype("float32"))
    x = images((3, 20))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (layer.kernel, layer.bias))
    y = _both_widths(layer, x, 0.6)
    assert y.shape == (3, 10)                       # the classifier's outputs are never slimmed
    assert_close(y, x @ kernel[:20] + bias)


# ---- batch norm --------------------------------------------------------------------------------

def test_batch_norm_training_updates_only_active_statistics():
    layer = _conv_bn(32, 1, 12, norm={"momentum": 0.8, "epsilon": 1e-3})
    old_mean, old_var = (keras.ops.convert_to_numpy(w).copy() for w in (
        layer.bn.moving_mean, layer.bn.moving_variance))
    gamma, beta = (keras.ops.convert_to_numpy(w) for w in (layer.bn.gamma, layer.bn.beta))
    x = images((4, 5, 5, 12)) * 2.0 + 0.5
    width = 0.5                                     # 16 of the 32 outputs
    y = keras.ops.convert_to_numpy(_at(layer, x, width, training=True))
    conv = tf.nn.conv2d(x, keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :, :16], 1,
                        "VALID").numpy()
    mean, var = conv.mean(axis=(0, 1, 2)), conv.var(axis=(0, 1, 2))   # biased variance
    assert_close(y, (conv - mean) / np.sqrt(var + 1e-3) * gamma[:16] + beta[:16], rtol=1e-4)
    new_mean = keras.ops.convert_to_numpy(layer.bn.moving_mean)
    new_var = keras.ops.convert_to_numpy(layer.bn.moving_variance)
    # Keras momentum: moving = m * moving + (1 - m) * batch.
    np.testing.assert_allclose(new_mean[:16], 0.8 * old_mean[:16] + 0.2 * mean, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(new_var[:16], 0.8 * old_var[:16] + 0.2 * var, rtol=1e-4)
    np.testing.assert_array_equal(new_mean[16:], old_mean[16:])
    np.testing.assert_array_equal(new_var[16:], old_var[16:])


def test_batch_norm_inference_updates_nothing():
    layer = _conv_bn(16, 1, 8)
    before = [keras.ops.convert_to_numpy(w).copy() for w in layer.weights]
    _at(layer, images((2, 3, 3, 8)), 0.5, training=False)
    for b, w in zip(before, layer.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), b)


def test_batch_norm_training_with_tensor_width_channels():
    # The number of channels is dynamic inside a traced step with a tensor width.
    layer = _conv_bn(32, 1, 8)
    layer.bn.moving_mean.assign(np.zeros(32, "float32"))
    step = tf.function(lambda x, w: _at(layer, x, w, training=True))
    x = images((2, 4, 4, 8))
    step(tf.constant(x), tf.constant(0.25))         # 8 channels
    moving = keras.ops.convert_to_numpy(layer.bn.moving_mean)
    batch_mean = tf.nn.conv2d(x, keras.ops.convert_to_numpy(layer.conv.kernel)[:, :, :, :8], 1,
                              "SAME").numpy().mean(axis=(0, 1, 2))
    np.testing.assert_allclose(moving[:8], 0.1 * batch_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(moving[8:], 0.0)


def test_calibration_weight_also_applies_at_full_width():
    layer = _conv_bn(8, 1, 8)
    layer.bn.moving_mean.assign(np.full(8, 5.0, "float32"))
    x = images((2, 4, 4, 8))
    with widths.calibrating(1.0):                   # the first batch: its statistics alone
        layer(x, training=True)
    batch_mean = tf.nn.conv2d(x, keras.ops.convert_to_numpy(layer.conv.kernel), 1,
                              "SAME").numpy().mean(axis=(0, 1, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bn.moving_mean), batch_mean,
                               rtol=1e-4, atol=1e-5)


# ---- the channel rule --------------------------------------------------------------------------

FULLS = (8, 16, 24, 32, 64, 96, 128, 160, 256, 320, 512, 1024, 1280, 2048)
WIDTHS = tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2).tolist()) + (0.35, 0.85, 0.7, 0.333)


@pytest.mark.parametrize("ratio", [1, 6])
def test_active_channels_are_make_divisible_for_python_and_tensor_widths(ratio):
    tensor_widths = tf.constant(WIDTHS, tf.float32)
    for full in FULLS:
        full = full * ratio
        from_tensor = widths.active(full, tensor_widths, ratio).numpy()
        for width, t in zip(WIDTHS, from_tensor):
            expected = full if width == 1.0 else min(
                full, slimmable.make_divisible(full / ratio * width) * ratio)
            assert widths.active(full, width, ratio) == expected, (full, width)
            assert int(t) == expected, (full, width, "tensor")


def test_make_divisible_known_values():
    # Nearest multiple of 8 (halves up), plus 8 when that is over 10% below the value. US-Net's
    # min_value is 1 (keras.applications' is 8), so tiny values give 1 or 9: 3.0 -> 0 -> 1 -> 9.
    cases = {32 * 0.35: 16, 32 * 0.25: 8, 32 * 0.3: 16, 1280 * 0.35: 448, 24 * 0.35: 8,
             96 * 0.35: 32, 16 * 0.5: 8, 100 * 0.85: 88, 20.0: 24, 1.0: 1, 4.0: 8, 3.0: 9}
    assert {v: slimmable.make_divisible(v) for v in cases} == cases


def test_python_and_tensor_widths_agree_at_exact_ties():
    # full * w = 8k + 4 exactly (in float64): both paths round in float32, so they agree.
    for full, width in ((200, 0.58), (300, 0.84), (720, 0.35)):
        assert widths.active(full, width) == int(widths.active(full, tf.constant(width)))
    # Width 1.0 keeps a count that is no multiple of 8 in both.
    assert widths.active(17, 1.0) == int(widths.active(17, tf.constant(1.0))) == 17


# ---- argument errors ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_v1():
    return slimmable.get("mobilenet_v1", classes=3, base_width=0.25)


@pytest.mark.parametrize("width", [0.0, -0.5, 1.5, 2])
def test_python_width_outside_unit_interval_raises(tiny_v1, width):
    x = images((1, 32, 32, 3))
    with pytest.raises(ValueError, match=r"width multiplier must be in \(0, 1\]"):
        tiny_v1(x, width=width)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        widths.active(64, width)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        slimmable.fixed_network(tiny_v1, width)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        slimmable.active_params(tiny_v1, width)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        slimmable.calibrate_batch_norm(tiny_v1, [x], width)


def test_tensor_width_outside_unit_interval_raises(tiny_v1):
    for width in (0.0, 1.5):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"must be in \(0, 1\]"):
            tiny_v1(images((1, 32, 32, 3)), width=tf.constant(width))
    # Keras hands NumPy scalars to `call` as tensors: the graph check reports them.
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=r"must be in \(0, 1\]"):
        tiny_v1(images((1, 32, 32, 3)), width=np.float32(1.5))
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        widths.active(64, np.float32(1.5))


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ValueError, match="mobilenet_v3") as info:
        slimmable.get("mobilenet_v3")
    for name in ("bl_resnet50", "mobilenet_v1", "mobilenet_v2", "resnet50"):
        assert name in str(info.value)
    cifar = sorted(specs.CIFAR_MODELS)  # the CIFAR ResNets and their bL versions
    assert slimmable.list_models() == sorted(
        ["bl_resnet50", "mobilenet_v1", "mobilenet_v2", "resnet50", *cifar])


def test_unknown_norm_option_and_activation_raise():
    with pytest.raises(ValueError, match="Unknown BatchNorm option"):
        slimmable.get("mobilenet_v1", norm={"eps": 1e-3})
    with pytest.raises(ValueError, match="classifier_activation"):
        slimmable.get("mobilenet_v1", classifier_activation="sigmoid")


# ---- gradients ---------------------------------------------------------------------------------

def test_gradients_reach_only_active_slices():
    model = slimmable.get("mobilenet_v1", classes=4, base_width=0.5, classifier_activation=None)
    x = tf.constant(images((4, 32, 32, 3)))
    labels = tf.constant([0, 1, 2, 3])
    width = 0.4
    # Eager, with the width a tensor: channel counts are computed as tensors, as in a traced
    # training step (tracing the gradient of the whole network costs ~10 s here).
    with tf.GradientTape() as tape:
        logits = model(x, width=tf.constant(width, tf.float32), training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    gradients = tape.gradient(loss, model.trainable_weights)
    # The active slice of every weight: its shape in the network built at that width.
    narrow = slimmable.network._narrower(model, width)
    narrow_shapes = {w.path: tuple(w.shape) for w in narrow.trainable_weights}
    checked = 0
    for weight, g in zip(model.trainable_weights, gradients):
        g = g.numpy()
        active = tuple(slice(0, n) for n in narrow_shapes[weight.path])
        outside = g.copy()
        outside[active] = 0.0
        assert np.all(outside == 0.0), weight.path
        if weight.path.endswith("kernel") and g.ndim == 4:
            assert g[active].size < g.size or g.shape[2] == 3, weight.path
            # Every active output channel receives gradient.
            assert np.all(np.any(g[active] != 0.0, axis=(0, 1, 2))), weight.path
            checked += 1
    assert checked == 1 + 2 * 13


def test_average_pool_shortcut_trains_under_a_tensor_width():
    # A traced width leaves the channel count unknown until run time; the strided bL-ResNet
    # shortcut pool must still train there, with the same values as at a Python width.
    model = slimmable.get("bl_resnet50", classes=10)
    x = images((2, 64, 64, 3))

    @tf.function
    def step(width):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x, width=width, training=True))
        return loss, tape.gradient(loss, model.trainable_variables[0])

    loss, grad = step(tf.constant(0.6))
    assert grad.shape == model.trainable_variables[0].shape
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    assert_close(loss, tf.reduce_mean(model(x, width=0.6, training=True)))

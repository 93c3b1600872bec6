"""The layers at a run-time width (`bl_keras.layers.width.running_width`): width 1.0 is the fixed
network, a narrower width is the network built at that width (`slimmable.narrowed`) holding
the leading slices of the weights, for every bL option."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import layers, models, slimmable
from bl_keras.layers import width as widths
from bl_keras.slimmable.network import copy_leading
from tests.slimmable.helpers import randomize

SMALL = dict(classes=5, stage_depths=(2, 2, 2, 2), stem_filters=16, classifier_activation=None)
CASES = {
    "bl_resnet50": ("bl_resnet50", {}),
    "resnet50": ("resnet50", {}),
    "bl_resnext50_32x4d": ("bl_resnext50_32x4d", {}),
    "concat": ("bl_resnet50", {"merge": "concat"}),
    "branches3": ("bl_resnet50", {"branches": 3}),
    "num_merges2": ("bl_resnet50", {"num_merges": 2}),
}
_MODELS = {}


def _build(case):
    name, options = CASES[case]
    small = dict(SMALL, stage_depths=(3, 3, 3, 2)) if case == "branches3" else SMALL
    return models.get(name, **small, **options)


def model_of(case):
    if case not in _MODELS:
        _MODELS[case] = randomize(_build(case), seed=len(_MODELS))
    return _MODELS[case]


def _images(seed=0):
    return np.random.default_rng(seed).normal(size=(2, 64, 64, 3)).astype("float32")


def _run(model, x, width, training=False):
    with widths.running_width(width):
        return keras.ops.convert_to_numpy(model(x, training=training))


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("case", list(CASES))
def test_tensor_width_one_is_the_fixed_network(case):
    model, x = model_of(case), _images()
    fixed = keras.ops.convert_to_numpy(model(x, training=False))
    assert _max_diff(_run(model, x, tf.constant(1.0)), fixed) <= 1e-5
    # The static width 1.0 runs the fixed code itself.
    np.testing.assert_array_equal(_run(model, x, 1.0), fixed)


@pytest.mark.parametrize("case", list(CASES))
def test_half_width_is_the_network_built_at_half_width(case):
    model, x = model_of(case), _images(1)
    narrow = slimmable.narrowed(model, 0.5)
    copy_leading(model, narrow)
    assert narrow.count_params() < model.count_params() / 2
    expected = keras.ops.convert_to_numpy(narrow(x, training=False))
    scale = float(np.max(np.abs(expected)))
    assert _max_diff(_run(model, x, 0.5), expected) <= 1e-5 * scale
    traced = tf.function(lambda x, w: _run_graph(model, x, w))
    assert _max_diff(traced(x, tf.constant(0.5)), expected) <= 1e-5 * scale


def _run_graph(model, x, width, training=False):
    with widths.running_width(width):
        return model(x, training=training)


@pytest.mark.parametrize("case", ["bl_resnet50", "concat", "bl_resnext50_32x4d"])
def test_half_width_training_matches_narrow_network_and_moves_leading_statistics(case):
    model = randomize(_build(case), seed=7)
    narrow = slimmable.narrowed(model, 0.5)
    copy_leading(model, narrow)
    x = _images(2)
    expected = keras.ops.convert_to_numpy(narrow(x, training=True))
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.non_trainable_weights]
    got = tf.function(lambda x, w: _run_graph(model, x, w, training=True))(x, tf.constant(0.5))
    assert _max_diff(got, expected) <= 1e-4 * float(np.max(np.abs(expected)))
    for full, small, old in zip(model.non_trainable_weights, narrow.non_trainable_weights,
                                before):
        full = keras.ops.convert_to_numpy(full)
        n = small.shape[0]
        np.testing.assert_allclose(full[:n], keras.ops.convert_to_numpy(small), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_array_equal(full[n:], old[n:])   # inactive channels untouched


def test_gradient_step_at_a_tensor_width_reaches_only_active_weights():
    model = model_of("bl_resnet50")
    x, labels = _images(3), tf.constant([0, 3])

    @tf.function
    def gradients(width):
        with tf.GradientTape() as tape:
            with widths.running_width(width):
                logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, model.trainable_weights)

    grads = dict(zip([w.path for w in model.trainable_weights], gradients(tf.constant(0.5))))
    kernel = grads["layer1/big/block0/conv1/conv/kernel"].numpy()   # (1, 1, 16, 64)
    c_in, c_out = widths.active(16, 0.5), widths.active(64, 0.5)
    assert np.count_nonzero(kernel[:, :, :c_in, :c_out]) > 0
    assert np.all(kernel[:, :, c_in:, :] == 0) and np.all(kernel[:, :, :, c_out:] == 0)
    head = grads["predictions/kernel"].numpy()
    assert np.all(head[widths.active(2048, 0.5):] == 0)


def test_layers_without_a_slimmed_version_raise_under_a_width():
    unit = layers.ShuffleUnit(16)
    x = np.zeros((1, 8, 8, 16), "float32")
    unit(x)
    with widths.running_width(0.5), pytest.raises(ValueError, match="ShuffleUnit .* width"):
        unit(x)


def test_basic_blocks_slim_their_convs_and_option_a_shortcuts():
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype("float32")
    identity = layers.BasicBlock(16, shortcut="A")
    padded = layers.BasicBlock(32, strides=2, shortcut="A")
    identity(x), padded(x)
    half = x[..., :widths.active(16, 0.5)]
    with widths.running_width(0.5):
        assert identity(half).shape == (2, 8, 8, 8)  # tied to its input
        y = padded(half)
    assert y.shape == (2, 4, 4, widths.active(32, 0.5))  # (tests/slimmable/test_fixed.py
    # checks the values against the narrow network)
    with widths.running_width(tf.constant(0.5)):
        assert tuple(padded(half).shape) == (2, 4, 4, 16)


def test_bad_widths_raise():
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        widths.running_width(1.5)
    with pytest.raises(ValueError, match="padding"):
        layers.ConvBN(8, 3, padding=("same", "valid"))

"""Inference on weights folded once (`bl_keras.layers.folded_inference`): the same outputs as
folding at every call, no per-call fold or cast left in the graph, training refused inside, and
nothing stale after leaving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import models
from bl_keras.layers import ConvBN, fold_for_inference, folded_inference, unfold


def small_model(name, precision):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = models.get(name, classes=5, input_shape=(64, 64, 3), classifier_activation=None)
    finally:
        keras.config.set_dtype_policy(previous)
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers():
        if isinstance(layer, ConvBN):  # BatchNorm statistics far from the identity
            for weight in (layer.bn.gamma, layer.bn.beta, layer.bn.moving_mean):
                weight.assign(rng.normal(0.0, 0.5, weight.shape).astype("float32"))
            layer.bn.moving_variance.assign(rng.uniform(0.5, 2.0, layer.bn.moving_variance.shape)
                                            .astype("float32"))
    return model


def op_counts(model, images):
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(images).graph
    ops = [op.type for op in graph.get_operations()]
    return {kind: ops.count(kind) for kind in ("Cast", "Rsqrt")}


@pytest.mark.parametrize("name,precision", [
    ("bl_resnet50", "mixed_bfloat16"),       # big and little branches, merges
    ("bl_resnext50_32x4d", "float32"),       # grouped convolutions
    ("bl_shufflenet_v2_x1_0", "mixed_bfloat16"),  # depthwise convolutions
])
def test_same_outputs_without_the_per_call_fold(name, precision):
    model = small_model(name, precision)
    images = tf.random.stateless_uniform((2, 64, 64, 3), seed=[1, 2])
    expected = model(images, training=False).numpy()
    per_call = op_counts(model, images)
    conv_bns = [layer for layer in model._flatten_layers() if isinstance(layer, ConvBN)]
    with folded_inference(model) as folded:
        assert len(folded.folded) == 2 * len(conv_bns)
        kernel_dtype = "bfloat16" if precision == "mixed_bfloat16" else "float32"
        assert {v.dtype.name for v in folded.folded} == {kernel_dtype}
        # Identical to folding per call: the same float32 fold, the same one rounding.
        np.testing.assert_array_equal(model(images, training=False).numpy(), expected)
        once = op_counts(model, images)
    assert per_call["Rsqrt"] >= len(conv_bns) and once["Rsqrt"] == 0
    if precision == "mixed_bfloat16":  # a kernel and a bias cast fewer per ConvBN
        assert per_call["Cast"] - once["Cast"] == 2 * len(conv_bns)
    np.testing.assert_array_equal(model(images, training=False).numpy(), expected)


def test_predict_uses_the_folded_weights_until_unfold():
    model = small_model("bl_cifar_resnet20", "float32")
    images = np.random.default_rng(1).uniform(size=(4, 64, 64, 3)).astype("float32")
    before = model.predict(images, verbose=0)  # traced before folding: must not be reused
    fold_for_inference(model)
    bn = next(layer.bn for layer in model._flatten_layers() if isinstance(layer, ConvBN))
    bn.moving_mean.assign(bn.moving_mean + 3.0)  # a change the folded copy does not see
    np.testing.assert_allclose(model.predict(images, verbose=0), before, rtol=1e-5, atol=1e-5)
    unfold(model)
    after = model.predict(images, verbose=0)
    assert np.abs(after - before).max() > 1e-2  # per-call folding sees the new statistics


def test_training_inside_the_block_is_refused_and_works_after():
    model = small_model("bl_cifar_resnet20", "float32")
    images = tf.random.stateless_uniform((2, 64, 64, 3), seed=[5, 6])
    with folded_inference(model):
        with pytest.raises(RuntimeError, match="folded for inference"):
            model(images, training=True)
    assert model(images, training=True).shape == (2, 5)


def test_an_unbuilt_model_is_refused():
    model = keras.Sequential([ConvBN(4, 3)])
    with pytest.raises(ValueError, match="build the model"):
        fold_for_inference(model)

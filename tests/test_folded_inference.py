"""Inference on weights folded once (`bl_keras.layers.folded_inference`): the same outputs as
folding at every call, no per-call fold or cast left in the graph, training refused inside, and
nothing stale after leaving; oneDNN's weight cache gives the same outputs and no training."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import models
from bl_keras.layers import ConvBN, fold_for_inference, folded_inference, inference, unfold
from tests.conftest import REPO


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


# oneDNN's weight cache (TF_ONEDNN_ASSUME_FROZEN_WEIGHTS): it is read once per process, so the
# processes that use it are children.
FORWARD_SCRIPT = """
import sys, keras, numpy as np
from bl_keras import models
from bl_keras.layers import fold_for_inference
keras.utils.set_random_seed(0)
keras.config.set_dtype_policy(sys.argv[2])
model = models.get("bl_resnet50", classes=5, input_shape=(64, 64, 3))
images = np.random.default_rng(1).random((4, 64, 64, 3)).astype("float32")
fold_for_inference(model)
first = np.asarray(model(images, training=False), dtype="float32")
again = np.asarray(model(images, training=False), dtype="float32")  # on cached kernels
np.save(sys.argv[1], np.stack([first, again]))
"""


def forward_in_child(path, precision, weight_cache):
    env = dict(os.environ, **{inference.WEIGHT_CACHE_ENV: "1" if weight_cache else "0"})
    done = subprocess.run([sys.executable, "-c", FORWARD_SCRIPT, str(path), precision],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(path)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_weight_cache_gives_the_same_outputs(tmp_path, precision):
    cached = forward_in_child(tmp_path / "cached.npy", precision, weight_cache=True)
    plain = forward_in_child(tmp_path / "plain.npy", precision, weight_cache=False)
    np.testing.assert_array_equal(cached[0], cached[1])
    np.testing.assert_array_equal(cached, plain)
    assert np.abs(plain).max() > 1e-3  # a real output, not zeros


def test_weight_cache_switch_keeps_what_the_environment_says():
    environ = {}
    assert inference.cache_weights_for_inference(environ) is True
    assert environ == {inference.WEIGHT_CACHE_ENV: "1"}
    environ = {inference.WEIGHT_CACHE_ENV: "0"}  # the user measures without it
    assert inference.cache_weights_for_inference(environ) is False
    assert environ == {inference.WEIGHT_CACHE_ENV: "0"}
    assert inference.weight_cache_enabled({inference.WEIGHT_CACHE_ENV: "True"})
    inference.check_weights_can_train({})
    with pytest.raises(RuntimeError, match="would keep the first weights"):
        inference.check_weights_can_train({inference.WEIGHT_CACHE_ENV: "1"})


def test_trainer_refuses_to_train_under_the_weight_cache(tmp_path):
    env = dict(os.environ, **{inference.WEIGHT_CACHE_ENV: "1"})
    done = subprocess.run(
        [sys.executable, "-m", "train.imagenet", "--flagfile=configs/demo.flags",
         f"--data_dir={tmp_path / 'data'}", f"--model_dir={tmp_path / 'run'}"],
        cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert f"error: {inference.WEIGHT_CACHE_ENV} is set" in done.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written

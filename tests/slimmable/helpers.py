"""Shared helpers of the slimmable tests: random weights and statistics, sliced weight copies."""

import keras
import numpy as np


def randomize(model, seed=0):
    """Give every weight of `model` random values: kernels and biases, BN gamma/beta AND moving
    statistics, so that slicing any of them wrongly changes the output."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        leaf = w.path.rsplit("/", 1)[-1]
        shape = tuple(w.shape)
        if leaf == "kernel":
            if len(shape) == 4:   # conv (k, k, in, out) or depthwise (k, k, in, 1)
                fan_in = shape[0] * shape[1] * (1 if shape[-1] == 1 else shape[2])
            else:                 # dense (in, out)
                fan_in = shape[0]
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("beta", "bias", "moving_mean"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            raise AssertionError(f"unexpected weight {w.path}")
        w.assign(value.astype("float32"))
    return model


def copy_sliced(source, target, reshape_dense=False):
    """Assign each weight of `target` the weight of `source` at the same position in `weights`
    order, sliced to its shape (the first channels); `reshape_dense`: a (C, K) dense kernel goes
    into a (1, 1, C, K) conv kernel (keras.applications.MobileNet's classifier)."""
    assert len(source.weights) == len(target.weights)
    for s, t in zip(source.weights, target.weights):
        value = keras.ops.convert_to_numpy(s)
        if reshape_dense and value.ndim == 2 and len(t.shape) == 4:
            value = value.reshape((1, 1) + value.shape)
        if value.ndim == 4 and value.shape[2] == 1 and len(t.shape) == 4 and t.shape[3] == 1:
            value = value.transpose(0, 1, 3, 2)   # depthwise: grouped (k, k, 1, C) -> (k, k, C, 1)
        assert len(t.shape) == value.ndim, (s.path, t.path)
        assert all(n <= m for n, m in zip(t.shape, value.shape)), (s.path, t.path, t.shape)
        t.assign(value[tuple(slice(0, n) for n in t.shape)])


def images(shape, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype("float32")


def assert_close(actual, expected, rtol=1e-5):
    """Relative comparison with an absolute floor scaled by the reference's magnitude."""
    actual = keras.ops.convert_to_numpy(actual)
    expected = keras.ops.convert_to_numpy(expected)
    scale = float(np.max(np.abs(expected)))
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)

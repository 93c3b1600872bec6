"""`.keras` round trips (safe mode) of slimmable networks and of a serving model."""

import json

import keras
import numpy as np
import pytest

from bl_keras import slimmable
from tests.slimmable.helpers import images, randomize

SMALL_BL = dict(classes=5, stage_depths=(2, 2, 2, 2), stage_filters=(64, 128, 256, 512),
                stem_filters=16)


@pytest.fixture(scope="module")
def small_bl_resnet():
    return randomize(slimmable.get("bl_resnet50", **SMALL_BL), seed=11)


@pytest.fixture(scope="module")
def quarter_v1():
    return randomize(slimmable.get("mobilenet_v1", classes=5, base_width=0.25), seed=12)


def _json(config):
    return json.loads(json.dumps(config))   # tuples and lists alike, as stored in the file


def _round_trip(model, path):
    model.save(path)
    return keras.models.load_model(path, safe_mode=True)


@pytest.mark.parametrize("name", ["bl_resnet50", "mobilenet_v1"])
def test_keras_file_round_trip_keeps_outputs_at_every_width(small_bl_resnet, quarter_v1,
                                                            tmp_path, name):
    model = small_bl_resnet if name == "bl_resnet50" else quarter_v1
    loaded = _round_trip(model, tmp_path / f"{name}.keras")
    assert isinstance(loaded, slimmable.SlimmableNetwork)
    assert _json(loaded.get_config()) == _json(model.get_config())
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    x = images((2, 64, 64, 3), seed=13)
    for width in (0.45, 1.0):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded(x, width=width, training=False)),
            keras.ops.convert_to_numpy(model(x, width=width, training=False)))


def test_serving_model_round_trip(quarter_v1, tmp_path):
    serving = slimmable.serving_model(quarter_v1, 0.5, 64)
    assert serving.input_shape == (None, 64, 64, 3)
    assert serving.count_params() < quarter_v1.count_params()
    loaded = _round_trip(serving, tmp_path / "serving.keras")
    x = images((2, 64, 64, 3), seed=14)
    expected = keras.ops.convert_to_numpy(quarter_v1(x, width=0.5, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(serving(x, training=False)), expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)), expected,
                               rtol=1e-5, atol=1e-6)

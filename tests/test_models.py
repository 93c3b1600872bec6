"""The model zoo: registry, keras.applications-style constructor, serialization."""

import inspect
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import bl_keras
from bl_keras import convert, models
from bl_keras.models import specs
from tests.conftest import require_parity_file

ALL_MODELS = sorted(specs.IMAGE_MODELS)


def test_registry_lists_every_model_and_rejects_unknown_names():
    assert set(ALL_MODELS) <= set(models.list_models())
    assert models.list_models("bl_resnext") == ["bl_resnext101_32x4d", "bl_resnext101_64x4d",
                                                "bl_resnext50_32x4d"]
    with pytest.raises(ValueError) as err:
        models.get("bl_resnet51")
    assert "bl_resnet51" in str(err.value) and "bl_resnet50" in str(err.value)


def test_named_constructors_are_the_registry_builders():
    for name in ALL_MODELS:
        assert getattr(models, name) is models.get_entry(name).builder
        assert name in models.__all__


def test_named_constructors_are_plain_functions_of_the_image_module():
    from bl_keras.models import image

    names = [*specs.IMAGE_MODELS, *specs.LOWRES_MODELS, *specs.SHUFFLENET_MODELS,
             *specs.CIFAR_MODELS, "decathlon_resnet26"]
    assert sorted(names) == sorted(image.__all__)
    for name in names:
        builder = models.get_entry(name).builder
        assert builder.__name__ == name and builder.__module__ == image.__name__
        assert builder.__doc__.startswith(models.get_entry(name).description)
    source = inspect.getsource(image)
    assert source.count("def bl_resnet50(") == 1 and "globals()" not in source


def test_registry_entry_declares_which_options_a_model_takes():
    assert models.get_entry("bl_resnet50").options[:2] == ("alpha", "beta")
    assert "merge" not in models.get_entry("bl_shufflenet_v2_x1_0").options
    models.check_options("bl_resnet50", {"merge": "concat", "include_top": False})
    models.check_options("resnet50", {"stage_depths": [1, 1, 1, 1], "norm": None})
    for name, option in (("resnet50", "alpha"), ("bl_shufflenet_v2_x1_0", "num_merges"),
                         ("shufflenet_v2_x1_0", "stage_depths"), ("speech.bl_pyr_resnet22",
                         "widths"), ("bl_resnet50", "head_channels")):
        with pytest.raises(models.OptionError) as err:
            models.check_options(name, {option: 2})
        assert err.value.option == option and f"{option} does not apply to {name}" in str(
            err.value)
        with pytest.raises(TypeError, match=f"{option} does not apply to {name}"):
            models.get(name, **{option: 2})
    # Every declared option is one the builder takes.
    for name in models.list_models():
        entry = models.get_entry(name)
        parameters = inspect.signature(entry.builder).parameters
        takes_more = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        assert takes_more or set(entry.options) <= set(parameters), name


@pytest.mark.parametrize("name", ["bl_resnet50", "resnet50"])
def test_variable_input_sizes_and_pooling(name):
    model = models.get(name, include_top=False, pooling="avg")
    assert model.output_shape == (None, 2048)
    for size in (200, 224, 97):
        assert tuple(model(np.zeros((1, size, size, 3), "float32")).shape) == (1, 2048)
    features = models.get(name, include_top=False)
    assert tuple(features(np.zeros((1, 224, 224, 3), "float32")).shape) == (1, 7, 7, 2048)


def test_classes_activation_input_tensor_and_names():
    inputs = keras.Input((64, 64, 3))
    model = models.bl_resnet50(classes=7, input_tensor=inputs, alpha=4, beta=2)
    assert model.input_shape == (None, 64, 64, 3)
    probs = keras.ops.convert_to_numpy(model(np.random.rand(2, 64, 64, 3).astype("float32")))
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    names = [layer.name for layer in model.layers][1:]  # after the input layer
    assert names == ["stem", "layer1", "layer2", "layer3", "layer4", "avg_pool", "predictions"]
    assert model.get_layer("layer1").alpha == 4 and model.get_layer("layer1").beta == 2


def test_weights_argument_loads_a_weights_file(tmp_path):
    model = models.bl_resnext50_32x4d(classes=10)
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    again = models.bl_resnext50_32x4d(classes=10, weights=path)
    x = np.random.default_rng(0).random((1, 64, 64, 3), dtype="float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    with pytest.raises(ValueError, match="weights"):
        models.resnet50(weights=3)


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match="pooling"):
        models.resnet50(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="alpha"):
        models.bl_resnet50(alpha=3)  # 64 channels are not divisible by 3
    with pytest.raises(ValueError, match="upsample"):
        models.bl_resnet50(upsample="area")
    with pytest.raises(TypeError, match="alpha"):
        models.resnet50(alpha=2)  # baselines have no branches


@pytest.mark.parametrize("name", ["resnet50", "bl_resnet50", "resnext50_32x4d",
                                  "bl_resnext50_32x4d", "seresnext50_32x4d",
                                  "bl_seresnext50_32x4d"])
def test_save_and_load_keras_file_safe_mode(name, tmp_path):
    model = models.get(name, classes=10, upsample="bilinear") if name.startswith("bl_") else (
        models.get(name, classes=10))
    x = np.random.default_rng(1).random((2, 96, 96, 3), dtype="float32")
    # Non-trivial BN statistics and last-BN gammas, so a loading mistake changes the outputs.
    for w in model.weights:
        if "gamma" in w.path or "moving" in w.path:
            w.assign(np.random.default_rng(2).uniform(0.5, 1.5, w.shape).astype("float32"))
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("layer1")) is type(model.get_layer("layer1"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


@pytest.mark.parametrize("name", [n for n in ALL_MODELS if n.startswith("bl_")])
def test_architecture_matches_released_state_dict_manifest(name):
    manifest = json.loads(require_parity_file("official_state_dict_manifest.json").read_text())
    released = {k: tuple(v) for k, v in manifest[f"{name}_a2_b4"].items()
                if not k.endswith("num_batches_tracked")}
    assert convert.expected_state_dict_shapes(models.get(name)) == released


def test_package_exports():
    assert bl_keras.__version__
    for layer in ("BigBranch", "LittleBranch", "MergeAdd", "MergeConcat", "BigLittleModule"):
        assert issubclass(getattr(bl_keras.layers, layer), keras.layers.Layer)


@pytest.mark.parametrize("name", ["resnet50", "bl_seresnext50_32x4d"])
def test_tf_checkpoint_round_trip_restores_every_weight(name, tmp_path):
    # tf.train.Checkpoint follows layer attributes; every weight (BN statistics of blocks
    # included) must be reachable, or trainer checkpoints would silently skip some.
    model = models.get(name, classes=5)
    for i, w in enumerate(model.weights):
        w.assign(np.random.default_rng(i).random(w.shape).astype("float32"))
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = models.get(name, classes=5)
    tf.train.Checkpoint(model=fresh).restore(path).assert_consumed()
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

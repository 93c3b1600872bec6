"""Errors that say what to do: released weights, input layout, loading `.keras` files."""

import json
import zipfile

import keras
import numpy as np
import pytest
from keras.applications import imagenet_utils

import bl_keras
from bl_keras import models

TINY = dict(classes=3, stage_depths=(2, 2, 2, 2), stage_filters=(32, 32, 64, 64), stem_filters=8)


def test_imagenet_weights_explain_how_to_get_the_released_ones():
    with pytest.raises(ValueError, match=r"downloads nothing.*python -m bl_keras.convert"):
        models.bl_resnet50(weights="imagenet")
    with pytest.raises(ValueError, match="PyTorch checkpoint: convert it first"):
        models.bl_resnet50(weights="ImageNet-bLResNet-50-a2-b4.pth.tar")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.resnet50(weights="missing.weights.h5")
    with pytest.raises(ValueError, match="expected a .keras or .weights.h5 file"):
        models.resnet50(weights="weights.npz")


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_preprocess_input_is_keras_applications_torch_mode(dtype):
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(dtype)
    expected = imagenet_utils.preprocess_input(images.astype("float32"), mode="torch",
                                               data_format="channels_last")
    np.testing.assert_allclose(models.preprocess_input(images), expected, rtol=1e-6, atol=1e-6)
    single = models.preprocess_input(images[0])
    np.testing.assert_allclose(single, expected[0], rtol=1e-6, atol=1e-6)


def test_preprocess_input_names_a_channels_first_batch():
    with pytest.raises(ValueError, match=r"channels-first \(NCHW.*np.transpose"):
        models.preprocess_input(np.zeros((2, 3, 32, 32), "uint8"))
    with pytest.raises(ValueError, match="got shape"):
        models.preprocess_input(np.zeros((32, 32), "uint8"))


def test_model_rejects_a_channels_first_batch_by_its_shape():
    model = models.bl_resnet50(**TINY)
    model(np.zeros((1, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match=r"expected shape=\(None, None, None, 3\)"):
        model(np.zeros((1, 3, 32, 32), "float32"))


def test_load_model_reads_any_bl_keras_file(tmp_path):
    model = models.bl_resnet50(**TINY)
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(bl_keras.load_model(tmp_path / "m.keras")(x), model(x),
                               rtol=1e-5, atol=1e-6)


def test_load_model_names_a_class_this_version_does_not_define(tmp_path):
    model = models.bl_resnet50(**TINY)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as source:
        files = {name: source.read(name) for name in source.namelist()}
    config = json.loads(files["config.json"])
    stem = config["config"]["layers"][1]  # as a newer version might name it
    stem["class_name"], stem["registered_name"] = "BigLittleStemV9", "bl_keras>BigLittleStemV9"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "newer.keras", "w") as target:
        for name, data in files.items():
            target.writestr(name, data)
    with pytest.raises(TypeError, match=r"'BigLittleStemV9'.*does not define.*newer"):
        bl_keras.load_model(tmp_path / "newer.keras")

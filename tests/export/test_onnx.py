"""ONNX export: every model family within 1e-4 of Keras in ONNX Runtime, any batch, the CLI."""

import numpy as np
import pytest

from bl_keras import models
from bl_keras.export import __main__ as cli
from bl_keras.export.onnx import OnnxClassifier, export_onnx
from tests.export.helpers import IMAGE_SIZE, small_model

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")


def images(count, size=IMAGE_SIZE, seed=0):
    return np.random.default_rng(seed).normal(size=(count, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name,size", [
    ("bl_resnet50", IMAGE_SIZE),            # bL merges (upsampling)
    ("resnet50", IMAGE_SIZE),
    ("bl_resnext50_32x4d", IMAGE_SIZE),     # grouped convolutions
    ("bl_seresnext50_32x4d", IMAGE_SIZE),   # squeeze-excitation
    ("bl_shufflenet_v2_x1_0", IMAGE_SIZE),  # channel split and shuffle
    ("bl_cifar_resnet20", 32),              # option A shortcuts
])
def test_onnx_matches_keras_at_any_batch(name, size, tmp_path):
    if name.startswith(("bl_resnet", "bl_resnext", "bl_seresnext")):
        model = small_model(name, classifier_activation=None)
    elif name == "resnet50":
        model = models.get(name, classes=5, classifier_activation=None,
                           stage_depths=(1, 1, 1, 1), stage_filters=(32, 32, 64, 64))
    else:
        model = models.get(name, classes=5, classifier_activation=None)
    path = tmp_path / f"{name}.onnx"
    assert export_onnx(model, str(path), image_size=size) == path.stat().st_size > 0
    classifier = OnnxClassifier(str(path))
    for count in (1, 3):
        x = images(count, size)
        expected = np.asarray(model(x, training=False))
        assert np.ptp(expected) > 0  # outputs that differ, so the comparison means something
        np.testing.assert_allclose(classifier(x), expected, atol=1e-4)


def test_cli_writes_an_onnx_file(tmp_path, capsys):
    model = small_model(classifier_activation=None)
    model.save(tmp_path / "model.keras")
    output = tmp_path / "out" / "model.onnx"
    assert cli.main(["--model", str(tmp_path / "model.keras"), "--format", "onnx",
                     "--image_size", str(IMAGE_SIZE), "--output", str(output)]) == 0
    assert "ONNX model" in capsys.readouterr().out
    x = images(2)
    np.testing.assert_allclose(OnnxClassifier(str(output))(x), np.asarray(model(x)), atol=1e-4)


@pytest.mark.parametrize("extra,message", [
    (["--quantize", "int8"], "--quantize and --int8_io apply to --format tflite"),
    (["--labels", "labels.txt"], "--labels and --outputs apply to --format saved_model"),
])
def test_cli_rejects_options_of_other_formats(extra, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--model", "m.keras", "--format", "onnx", "--output", "m.onnx", *extra])
    assert message in capsys.readouterr().err

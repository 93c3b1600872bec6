"""`python -m bl_keras.convert`: converts, writes loadable files, and writes nothing on failure."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

import bl_keras  # noqa: F401  (registers the layers for load_model)
from bl_keras import convert
from bl_keras.convert import cli
from tests.convert.helpers import import_torch, run_convert, save_checkpoint

torch = import_torch()

from tests.convert import torch_reference  # noqa: E402  (needs torch)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random bL-ResNet-50 saved as the released files were (legacy format, `module.`,
    training dict), with the PyTorch logits of a 224x224 input."""
    model = torch_reference.randomize(torch_reference.build("bl_resnet50"), seed=1)
    image = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(image)).numpy()
    path = tmp_path_factory.mktemp("ckpt") / "ImageNet-bLResNet-50-a2-b4.pth.tar"
    save_checkpoint(torch, model.state_dict(), path, legacy=True)
    return path, np.transpose(image, (0, 2, 3, 1)), logits


@pytest.fixture(scope="module")
def converted(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = run_convert("--checkpoint", checkpoint[0], "--arch", "bl_resnet50_a2_b4",
                         "--output", out / "model.keras", "--saved_model", out / "serving",
                         "--logits")
    return result, out


def test_converts_and_prints_a_summary(converted):
    result, out = converted
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("converted bl_resnet50 (alpha=2, beta=4): 428 tensors from ")
    assert str(out / "model.keras") in summary
    assert sorted(p.name for p in out.iterdir()) == ["model.keras", "serving"]


def test_keras_file_loads_in_safe_mode_with_identical_outputs(converted, checkpoint):
    _, out = converted
    _, image, torch_logits = checkpoint
    loaded = tf.keras.models.load_model(out / "model.keras", safe_mode=True)
    direct = convert.from_checkpoint("bl_resnet50", checkpoint[0], classifier_activation=None)
    logits = loaded(image, training=False).numpy()
    np.testing.assert_array_equal(logits, direct(image, training=False).numpy())
    assert np.abs(logits - torch_logits).max() <= 1e-4


def test_saved_model_serves_the_same_outputs(converted, checkpoint):
    _, out = converted
    _, image, torch_logits = checkpoint
    serving = tf.saved_model.load(str(out / "serving"))
    logits = serving.signatures["predict_images"](images=tf.constant(image))["logits"].numpy()
    assert np.abs(logits - torch_logits).max() <= 1e-4


def test_wrong_architecture_summarises_tensors_and_writes_nothing(checkpoint, tmp_path):
    result = run_convert("--checkpoint", checkpoint[0], "--arch", "bl_resnet101",
                         "--output", tmp_path / "model.keras", "--saved_model",
                         tmp_path / "serving")
    assert result.returncode == 1
    # bL-ResNet-101 has 4 bL blocks in layer1 where bL-ResNet-50 has 3.
    assert "  missing (285): layer1.big.2.conv1.weight\n" in result.stderr
    assert ("Fits this checkpoint exactly:\n"
            "  bl_resnet50 with alpha=2, beta=4 (--arch bl_resnet50_a2_b4)\n") in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_nothing_behind(checkpoint, tmp_path, monkeypatch):
    def broken_export(model, directory):
        (pathlib.Path(directory) / "partial.pb").write_bytes(b"half")
        raise RuntimeError("export failed")

    monkeypatch.setattr(cli, "_export_saved_model", broken_export)
    with pytest.raises(RuntimeError, match="export failed"):
        cli.main(["--checkpoint", str(checkpoint[0]), "--arch", "bl_resnet50",
                  "--output", str(tmp_path / "model.keras"),
                  "--saved_model", str(tmp_path / "serving")])
    # The .keras file was complete before the export began; neither it nor the export remain.
    assert list(tmp_path.iterdir()) == []

"""Converted checkpoints reproduce PyTorch outputs for every released architecture.

The PyTorch side is `torch_reference`, which is first shown to be the released model: its state
dict names and shapes equal the released ones, and with the released bL-ResNet-50 weights of
shared/parity it reproduces the released outputs. Then each architecture gets random weights and
random BatchNorm parameters/statistics, goes through a checkpoint file (zip and legacy formats
alternate, `module.` names in a training dict, as released) and must give the same logits in
Keras at 224, 256 and 200 (where upsampling is 13 -> 25 and 7 -> 13).
"""

import json

import numpy as np
import pytest

from bl_keras import convert
from tests.conftest import require_parity_file
from tests.convert.helpers import import_torch, save_checkpoint

torch = import_torch()

from tests.convert import torch_reference  # noqa: E402  (needs torch)

ARCHS = list(torch_reference.ARCHS)
SIZES = (224, 256, 200)


@pytest.mark.parametrize("name", ARCHS)
def test_reference_has_the_released_tensors(name):
    manifest = json.loads(require_parity_file("official_state_dict_manifest.json").read_text())
    model = torch_reference.build(name)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == manifest[f"{name}_a2_b4"]


def test_reference_reproduces_released_outputs(bl_resnet50_reference):
    state_dict, ref = bl_resnet50_reference
    model = torch_reference.build("bl_resnet50").eval()
    # The parity file stores conv / dense weights as float16; they are used as float32.
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float16
                                               else v) for k, v in state_dict.items()})
    with torch.no_grad():
        for size in (224, 200):
            logits = model(torch.from_numpy(ref[f"input_{size}_nchw"])).numpy()
            assert np.abs(logits - ref[f"logits_{size}"]).max() <= 1e-4


@pytest.mark.parametrize("index, name", list(enumerate(ARCHS)), ids=ARCHS)
def test_converted_checkpoint_matches_pytorch(tmp_path, index, name):
    model = torch_reference.randomize(torch_reference.build(name), seed=index)
    rng = np.random.default_rng(2019)
    images = [rng.standard_normal((1, 3, s, s)).astype(np.float32) for s in SIZES]
    with torch.no_grad():
        expected = [model(torch.from_numpy(image)).numpy() for image in images]
    path = save_checkpoint(torch, model.state_dict(), tmp_path / f"{name}.pth.tar",
                           legacy=index % 2 == 1)
    del model

    keras_model = convert.from_official(name, convert.read_state_dict(path),
                                        classifier_activation=None)
    for size, image, want in zip(SIZES, images, expected):
        got = keras_model(np.transpose(image, (0, 2, 3, 1)), training=False).numpy()
        # Random BN statistics keep the logits O(1), so 1e-4 is tight.
        assert 0.5 < np.abs(want).max() < 50, size
        assert np.abs(got - want).max() <= 1e-4, size

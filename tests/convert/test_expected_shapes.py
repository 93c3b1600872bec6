"""The layout computed from a model's spec is the one its checkpoints have and its builder maps.

Three witnesses: the released state-dict manifest, the independent PyTorch reference at every
alpha / beta the converter tries, and the weight map of the built Keras models.
"""

import json

import pytest

from bl_keras import models
from bl_keras.convert import expected_state_dict_shapes, spec_state_dict_shapes
from bl_keras.convert.expected_shapes import convertible_models
from bl_keras.convert.fit import OPTION_GRID
from tests.conftest import require_parity_file
from tests.convert.helpers import import_torch

torch = import_torch()

from tests.convert import torch_reference  # noqa: E402  (needs torch)

BIG_LITTLE = list(torch_reference.ARCHS)


def torch_shapes(name, alpha, beta, classes=1000):
    """{name: shape} of the PyTorch reference, without BN counters; built on the meta device
    (shapes only, no memory)."""
    with torch.device("meta"):
        model = torch_reference.build(name, alpha, beta, classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()
            if not k.endswith(".num_batches_tracked")}


@pytest.mark.parametrize("name", BIG_LITTLE)
def test_released_manifest(name):
    manifest = json.loads(require_parity_file("official_state_dict_manifest.json").read_text())
    released = {k: tuple(v) for k, v in manifest[f"{name}_a2_b4"].items()
                if not k.endswith(".num_batches_tracked")}
    assert spec_state_dict_shapes(name) == released


@pytest.mark.parametrize("alpha, beta", OPTION_GRID)
@pytest.mark.parametrize("name", BIG_LITTLE)
def test_pytorch_reference_at_every_option(name, alpha, beta):
    assert spec_state_dict_shapes(name, alpha, beta, classes=7) == torch_shapes(
        name, alpha, beta, classes=7)


def keras_layout(name, alpha, beta):
    options = dict(alpha=alpha, beta=beta) if name.startswith("bl_") else {}
    return expected_state_dict_shapes(models.get(name, classes=5, **options))


# One build per block kind (~2 s each): plain, grouped, SE, and thin little branches.
@pytest.mark.parametrize("name, alpha, beta", [
    ("resnet50", 2, 4),
    ("seresnext50_32x4d", 2, 4),
    ("bl_resnext50_32x4d", 4, 2),
    ("bl_seresnext50_32x4d", 2, 2),
])
def test_built_keras_model(name, alpha, beta):
    # Same names in the same order (the order the mismatch report lists missing ones in).
    got = spec_state_dict_shapes(name, alpha, beta, classes=5)
    assert list(got.items()) == list(keras_layout(name, alpha, beta).items())


@pytest.mark.slow
@pytest.mark.parametrize("name", convertible_models())
def test_every_built_keras_model(name):
    grid = OPTION_GRID if name.startswith("bl_") else OPTION_GRID[:1]
    for alpha, beta in grid:
        got = spec_state_dict_shapes(name, alpha, beta, classes=5)
        assert list(got.items()) == list(keras_layout(name, alpha, beta).items()), (alpha, beta)


def test_plain_models_ignore_alpha_and_beta():
    assert spec_state_dict_shapes("resnet101", 4, 2) == spec_state_dict_shapes("resnet101")
    assert len(spec_state_dict_shapes("resnet101")) == 522


def test_model_without_a_pytorch_layout():
    with pytest.raises(ValueError, match="no released tensor layout for 'shufflenet_v2_x1_0'"):
        spec_state_dict_shapes("shufflenet_v2_x1_0")

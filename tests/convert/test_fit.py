"""suggest_architectures names the one architecture and alpha / beta a checkpoint fits, or else
the closest ones, labelled as such. No Keras model is built here."""

import numpy as np
import pytest

from bl_keras.convert import suggest_architectures
from bl_keras.convert.fit import OPTION_GRID
from bl_keras.convert.mismatch import CheckpointMismatchError
from tests.convert.helpers import import_torch

torch = import_torch()

from tests.convert import torch_reference  # noqa: E402  (needs torch)


def shape_only_state_dict(name, alpha=2, beta=4, classes=1000):
    """The PyTorch reference's tensor names with zero-memory arrays of their shapes."""
    with torch.device("meta"):
        model = torch_reference.build(name, alpha, beta, classes)
    return {k: np.broadcast_to(np.float32(0), tuple(v.shape))
            for k, v in model.state_dict().items()}


@pytest.mark.parametrize("alpha, beta", OPTION_GRID)
@pytest.mark.parametrize("name", list(torch_reference.ARCHS))
def test_exactly_one_fit(name, alpha, beta):
    suggestion = suggest_architectures(shape_only_state_dict(name, alpha, beta))
    assert [c.arch for c in suggestion.exact] == [f"{name}_a{alpha}_b{beta}"]
    assert suggestion.closest == ()


def test_class_count_is_read_from_the_classifier():
    suggestion = suggest_architectures(shape_only_state_dict("bl_resnet101", classes=10))
    assert [c.arch for c in suggestion.exact] == ["bl_resnet101_a2_b4"]


def test_closest_when_nothing_fits():
    # bL-ResNet-50 with its stage 4 renamed: 50 tensors (3 blocks, 16-17 each) match nothing.
    state_dict = {k.replace("layer4.", "layer5."): v
                  for k, v in shape_only_state_dict("bl_resnet50").items()}
    suggestion = suggest_architectures(state_dict)
    assert suggestion.exact == ()
    best = suggestion.closest[0]
    assert (best.arch, best.matching, best.given, best.expected) == (
        "bl_resnet50_a2_b4", 307, 357, 357)
    summary = CheckpointMismatchError(["layer4.0.conv1.weight"], suggestion=suggestion).summary()
    assert ("No convertible architecture fits this checkpoint exactly; the closest:\n"
            "  bl_resnet50 with alpha=2, beta=4 (--arch bl_resnet50_a2_b4): 307 of the "
            "checkpoint's 357 tensors match (the model takes 357)") in summary


def test_foreign_checkpoint_has_no_suggestion():
    suggestion = suggest_architectures({"encoder.weight": np.zeros((4, 4))})
    assert suggestion.exact == () and suggestion.closest == ()
    summary = CheckpointMismatchError(unexpected=["encoder.weight"],
                                      suggestion=suggestion).summary()
    assert summary.endswith("No convertible architecture has any of these tensors.")

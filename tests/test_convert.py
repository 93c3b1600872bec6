"""Weights of the released PyTorch bL-ResNet-50 reproduce its outputs in Keras."""

import numpy as np
import pytest

from bl_keras import convert, models


@pytest.fixture(scope="module")
def converted(bl_resnet50_reference):
    state_dict, _ = bl_resnet50_reference
    return convert.from_official("bl_resnet50", state_dict, classifier_activation=None)


@pytest.mark.parametrize("size", [224, 200])
def test_parity_with_released_pytorch_outputs(converted, bl_resnet50_reference, size):
    _, ref = bl_resnet50_reference
    images = np.transpose(ref[f"input_{size}_nchw"], (0, 2, 3, 1))  # NCHW -> NHWC
    logits = converted.predict(images, verbose=0)
    assert np.abs(logits - ref[f"logits_{size}"]).max() <= 1e-4


def test_bilinear_upsampling_is_not_the_released_rule(bl_resnet50_reference):
    # At 200 the big branch is upsampled 13 -> 25 and 7 -> 13: the rule matters.
    state_dict, ref = bl_resnet50_reference
    model = convert.from_official("bl_resnet50", state_dict, classifier_activation=None,
                                  upsample="bilinear")
    images = np.transpose(ref["input_200_nchw"], (0, 2, 3, 1))
    assert np.abs(model.predict(images, verbose=0) - ref["logits_200"]).max() > 1e-3


def test_module_prefix_and_class_count(bl_resnet50_reference):
    state_dict, _ = bl_resnet50_reference
    prefixed = {f"module.{k}": v for k, v in state_dict.items()}
    model = convert.from_official("bl_resnet50", prefixed)
    assert model.output_shape == (None, 1000)
    np.testing.assert_array_equal(model.get_layer("predictions").kernel.numpy(),
                                  state_dict["fc.weight"].astype("float32").T)


def test_mismatched_state_dict_lists_every_problem(bl_resnet50_reference):
    state_dict, _ = bl_resnet50_reference
    broken = dict(state_dict)
    del broken["layer2.big.1.conv2.weight"]
    broken["layer9.extra.weight"] = np.zeros(3)
    broken["layer1.fusion.0.conv1.weight"] = np.zeros((64, 128, 1, 1))
    model = models.bl_resnet50()
    before = model.get_layer("stem").conv1.conv.kernel.numpy().copy()
    with pytest.raises(convert.CheckpointMismatchError) as err:
        convert.load_official_weights(model, broken)
    message = str(err.value)
    assert "missing (1): layer2.big.1.conv2.weight" in message
    assert "unexpected (1): layer9.extra.weight" in message
    assert "layer1.fusion.0.conv1.weight (64, 128, 1, 1) (expected (64, 256, 1, 1))" in message
    # All or nothing: no weight was assigned.
    np.testing.assert_array_equal(model.get_layer("stem").conv1.conv.kernel.numpy(), before)


def test_wrong_architecture_is_rejected(bl_resnet50_reference):
    state_dict, _ = bl_resnet50_reference
    with pytest.raises(convert.CheckpointMismatchError, match="mis-shaped"):
        convert.from_official("bl_resnext50_32x4d", state_dict)

"""ShuffleNetV2 and bL-ShuffleNetV2: the channel layers, the unit, the models and serialization."""

import keras
import numpy as np
import pytest

from bl_keras import layers, models


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_channel_shuffle_interleaves_groups_like_torchvision():
    x = np.arange(12, dtype="float32").reshape(1, 1, 2, 6)
    out = _numpy(layers.ChannelShuffle(2)(x))
    np.testing.assert_array_equal(out[0, 0, 0], [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(out[0, 0, 1], [6, 9, 7, 10, 8, 11])
    out = _numpy(layers.ChannelShuffle(3)(x))
    np.testing.assert_array_equal(out[0, 0, 0], [0, 2, 4, 1, 3, 5])


def test_channel_split_and_errors():
    left, right = layers.ChannelSplit()(np.arange(4, dtype="float32").reshape(1, 1, 1, 4))
    np.testing.assert_array_equal(_numpy(left)[0, 0, 0], [0, 1])
    np.testing.assert_array_equal(_numpy(right)[0, 0, 0], [2, 3])
    with pytest.raises(ValueError, match="split"):
        layers.ChannelSplit(2)(np.zeros((1, 1, 1, 5), "float32"))
    with pytest.raises(ValueError, match="groups"):
        layers.ChannelShuffle(2)(np.zeros((1, 1, 1, 5), "float32"))
    with pytest.raises(ValueError, match="even"):
        layers.ShuffleUnit(7)


def _params(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def test_shuffle_unit_forms_and_parameter_counts():
    projecting = layers.ShuffleUnit(116, strides=2)
    assert tuple(projecting(np.zeros((1, 55, 56, 24), "float32")).shape) == (1, 28, 28, 116)
    # left: dw 3x3x24 + pw 24x58; right: pw 24x58, dw 3x3x58, pw 58x58; + BN scale and shift.
    assert _params(projecting) == (9 * 24 + 2 * 24 + 24 * 58 + 2 * 58
                                   + 24 * 58 + 2 * 58 + 9 * 58 + 2 * 58 + 58 * 58 + 2 * 58)
    assert projecting.left_dw.conv.groups == 24 and projecting.right_dw.conv.groups == 58
    basic = layers.ShuffleUnit(116)
    x = np.random.default_rng(0).random((1, 7, 7, 116), dtype="float32")
    assert tuple(basic(x).shape) == (1, 7, 7, 116)
    assert basic.split is not None and basic.left_dw is None
    assert _params(basic) == 58 * 58 + 2 * 58 + 9 * 58 + 2 * 58 + 58 * 58 + 2 * 58
    # The left half passes unchanged, to the even output channels after the shuffle.
    np.testing.assert_array_equal(_numpy(basic(x))[..., 0::2], x[..., :58])


def test_zero_gamma_unit_outputs_zeros_on_the_right_path():
    unit = layers.ShuffleUnit(8, zero_gamma=True)
    x = np.random.default_rng(1).random((1, 4, 4, 8), dtype="float32")
    np.testing.assert_array_equal(_numpy(unit(x))[..., 1::2], 0.0)


NEW_LAYERS = [
    layers.ChannelSplit(2),
    layers.ChannelShuffle(4),
    layers.ShuffleUnit(32, strides=2, zero_gamma=True),
    layers.MergeStack(upsample="bilinear"),
    layers.LittleBranch(32, 2, alpha=2, strides=2, block="shuffle", expand=False),
    layers.BigLittleModule(32, 4, beta=2, strides=2, block="shuffle", little_strides=2),
    layers.BigLittleModule(32, 3, merge="concat"),
    layers.BigLittleModule(32, 3, merge=None, big_strides=2, little_strides=2),
    layers.BigLittleModule(32, 4, branches=3, fusion_config={"shortcut": "conv"}),
    layers.BigLittleStem(16, merge="concat"),
    layers.BigLittleStem(16, merge=None),
    layers.BigLittleStem(16, branches=1),
    layers.ResNetStem(24, kernel_size=3),
]


@pytest.mark.parametrize("layer", NEW_LAYERS, ids=[type(l).__name__ for l in NEW_LAYERS])
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert keras.saving.get_registered_name(type(layer)) == f"bl_keras>{type(layer).__name__}"


@pytest.fixture(scope="module")
def bl_shufflenet():
    return models.bl_shufflenet_v2_x1_0(classes=10)


def test_bl_shufflenet_structure(bl_shufflenet):
    names = [layer.name for layer in bl_shufflenet.layers][1:]
    assert names == ["stem", "stage2", "stage3", "stage4", "conv5", "avg_pool", "predictions"]
    stage2, stage3 = bl_shufflenet.get_layer("stage2"), bl_shufflenet.get_layer("stage3")
    assert (stage2.alpha, stage2.beta, stage2.little_strides, stage2.strides) == (2, 2, 2, 2)
    assert len(stage2.big.blocks) == 3 and len(stage2.little.stage.blocks) == 1
    assert len(stage3.big.blocks) == 7 and len(stage3.little.stage.blocks) == 3
    assert stage3.little.stage.blocks[0].filters == 116 and stage3.strides == 1
    assert models.get_entry("bl_shufflenet_v2_x1_0").input_size == 256
    # Resolutions at 256: stem 64, stage2 little 32 / big 16 -> 16, stage3 16 / 8 -> 16, 8.
    shape = (1, 256, 256, 3)
    for name, expected in (("stem", 64), ("stage2", 16), ("stage3", 16), ("stage4", 8)):
        shape = bl_shufflenet.get_layer(name).compute_output_shape(shape)
        assert shape[1:3] == (expected, expected), name


def _randomise_batch_norm(model):
    # Non-trivial BN statistics and scales, so a loading mistake changes the outputs.
    rng = np.random.default_rng(2)
    for w in model.weights:
        if "gamma" in w.path or "moving" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "bl_shufflenet_v2_x1_0"])
def test_save_and_load_keras_file_safe_mode(name, bl_shufflenet, tmp_path):
    model = bl_shufflenet if name.startswith("bl_") else models.get(name, classes=10)
    _randomise_batch_norm(model)
    x = np.random.default_rng(1).random((2, 67, 80, 3), dtype="float32")  # odd sizes on purpose
    expected = _numpy(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("stage2")) is type(model.get_layer("stage2"))
    np.testing.assert_array_equal(_numpy(loaded(x, training=False)), expected)


def test_plain_shufflenet_rejects_branch_options():
    with pytest.raises(TypeError, match="alpha"):
        models.shufflenet_v2_x1_0(alpha=2)
    with pytest.raises(ValueError, match="width"):
        models.shufflenet_v2(width=0.75)

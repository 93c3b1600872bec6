"""The CIFAR ResNets (He et al. 2016) and their bL versions: counts, shapes, option-A shortcuts,
training, serialization and the residual-block list BlockDrop needs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import layers, models, profiling
from bl_keras.layers.blocks import ZeroPadShortcut
from bl_keras.models import specs
from bl_keras.models.cifar import blocks_per_stage

PLAIN = ["cifar_resnet20", "cifar_resnet32", "cifar_resnet56", "cifar_resnet110"]
BIG_LITTLE = ["bl_" + name for name in PLAIN]

# (params, MACs at 32x32, MACs at 28x28), 10 classes, option A, alpha 2, beta 4.
COUNTS = {
    "cifar_resnet20": (269_722, 40_551_040, 31_047_040),
    "cifar_resnet32": (464_154, 68_862_592, 52_723_072),
    "cifar_resnet56": (853_018, 125_485_696, 96_075_136),
    "cifar_resnet110": (1_727_962, 252_887_680, 193_617_280),
    "bl_cifar_resnet20": (277_034, 27_083_392, 20_735_872),
    "bl_cifar_resnet32": (471_466, 41_239_168, 31_573_888),
    "bl_cifar_resnet56": (860_330, 69_550_720, 53_249_920),
    "bl_cifar_resnet110": (1_746_986, 137_970_304, 105_633_664),
}
# MACs of the ResNet / of its bL version at 32x32.
SAVINGS = {20: 1.497, 32: 1.670, 56: 1.804, 110: 1.833}


@pytest.fixture(scope="module")
def built():
    return {name: models.get(name) for name in PLAIN + BIG_LITTLE}


def conv(c_in, c_out, pixels, k=3):
    return k * k * c_in * c_out * pixels


def plain_params(n, classes=10):
    """Convolutions + BN (gamma, beta) + dense of a ResNet-(6n+2) with option A: no shortcut
    weights anywhere."""
    params = conv(3, 16, 1) + 2 * 16
    c_in = 16
    for c in (16, 32, 64):
        params += conv(c_in, c, 1) + 2 * c + (2 * n - 1) * (conv(c, c, 1) + 2 * c)
        c_in = c
    return params + 64 * classes + classes


def plain_macs(n, size):
    """He et al.'s ResNet: three stages at size, size/2, size/4."""
    macs = conv(3, 16, size * size)
    c_in, s = 16, size
    for c, stride in zip((16, 32, 64), (1, 2, 2)):
        s = -(-s // stride)
        macs += conv(c_in, c, s * s) + (2 * n - 1) * conv(c, c, s * s)
        c_in = c
    return macs + 64 * 10


def big_little_macs(n, size, alpha=2, beta=4):
    """The bL design worked out by hand: two modules (big branch of n-1 blocks at half
    resolution, little branch of max(1, n // beta - 1) blocks at full resolution and
    filters / alpha channels, 1x1 expand, fusion), then the plain 64-channel stage."""
    little = max(1, n // beta - 1)
    macs = conv(3, 16, size * size)
    c_in, s = 16, size
    for c, fusion_stride in ((16, 2), (32, 1)):
        half, thin = (-(-s // 2)) ** 2, c // alpha
        macs += conv(c_in, c, half) + (2 * (n - 1) - 1) * conv(c, c, half)   # big
        macs += conv(c_in, thin, s * s) + (2 * little - 1) * conv(thin, thin, s * s)
        if c_in > thin:  # option A cannot narrow: the little branch's first block projects
            macs += conv(c_in, thin, s * s, k=1)
        macs += conv(thin, c, s * s, k=1)                                      # expand
        out = -(-s // fusion_stride)
        macs += conv(c, c, out * out) * 2                                      # fusion
        c_in, s = c, out
    s = -(-s // 2)
    macs += conv(32, 64, s * s) + (2 * n - 1) * conv(64, 64, s * s)
    return macs + 64 * 10


@pytest.mark.parametrize("name", PLAIN + BIG_LITTLE)
def test_params_and_macs_are_pinned(name, built):
    params, macs32, macs28 = COUNTS[name]
    model = built[name]
    assert profiling.count_params(model) == params
    assert profiling.count_macs(model, (32, 32, 3)) == macs32
    assert profiling.count_macs(model, (28, 28, 3)) == macs28
    n = blocks_per_stage(specs.CIFAR_MODELS[name][0])
    expected = big_little_macs if name.startswith("bl_") else plain_macs
    assert (expected(n, 32), expected(n, 28)) == (macs32, macs28)


def test_plain_counts_are_he_et_al_table_6():
    # 0.27M, 0.46M, 0.85M, 1.7M params (He et al. Table 6), and the sum of conv + BN + dense.
    for name, paper in zip(PLAIN, (0.27, 0.46, 0.85, 1.7)):
        params = COUNTS[name][0]
        assert round(params / 1e6, 2 if paper < 1 else 1) == paper
        assert params == plain_params(blocks_per_stage(specs.CIFAR_MODELS[name][0]))


def test_option_a_has_no_shortcut_weights_and_option_b_has_the_projections(built):
    plain = built["cifar_resnet20"]
    shortcuts = [block.proj for block in models.residual_blocks(plain) if block.proj is not None]
    assert [type(s).__name__ for s in shortcuts] == ["ZeroPadShortcut"] * 2
    assert sum(w.size for s in shortcuts for w in s.weights) == 0
    assert profiling.count_params(plain) == plain_params(3) == 269_722

    projected = models.cifar_resnet20(shortcut="B")
    shortcuts = [block.proj for block in models.residual_blocks(projected)
                 if block.proj is not None]
    assert [type(s).__name__ for s in shortcuts] == ["ConvBN"] * 2
    # 1x1 conv 16->32 + BN, 1x1 conv 32->64 + BN.
    assert profiling.count_params(projected) - 269_722 == (16 * 32 + 64) + (32 * 64 + 128)
    assert profiling.count_params(projected) == 272_474
    assert profiling.count_macs(projected, (32, 32, 3)) - 40_551_040 == (
        16 * 32 * 16 * 16 + 32 * 64 * 8 * 8)


def test_zero_pad_shortcut_averages_or_subsamples_then_appends_zero_channels():
    x = np.arange(2 * 5 * 5 * 2, dtype="float32").reshape(2, 5, 5, 2)
    average = keras.ops.convert_to_numpy(ZeroPadShortcut(4, 2, "average")(x))
    subsample = keras.ops.convert_to_numpy(ZeroPadShortcut(4, 2, "subsample")(x))
    assert average.shape == subsample.shape == (2, 3, 3, 4)
    np.testing.assert_array_equal(subsample[..., :2], x[:, ::2, ::2, :])
    # BlockDrop's AvgPool2d(2) on the even part; the odd edge averages the pixels it has.
    np.testing.assert_allclose(average[:, :2, :2, :2],
                               x[:, :4, :4].reshape(2, 2, 2, 2, 2, 2).mean(axis=(2, 4)))
    np.testing.assert_allclose(average[:, 2, 2, :2], x[:, 4, 4, :])
    assert not average[..., 2:].any() and not subsample[..., 2:].any()
    with pytest.raises(ValueError, match="pool must be one of"):
        ZeroPadShortcut(4, pool="max")


def test_option_a_block_adds_the_padded_input_and_narrowing_projects():
    block = layers.BasicBlock(8, strides=2, shortcut="A", shortcut_pool="subsample",
                              zero_gamma=True)
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    # zero_gamma: the residual path is 0, so the output is ReLU(shortcut).
    expected = np.concatenate([np.maximum(x[:, ::2, ::2], 0), np.zeros((1, 3, 3, 4))], -1)
    np.testing.assert_allclose(out, expected)
    narrowing = layers.BasicBlock(4, shortcut="A")
    narrowing(np.zeros((1, 4, 4, 8), "float32"))
    assert type(narrowing.proj).__name__ == "ConvBN"
    with pytest.raises(ValueError, match="shortcut must be one of"):
        layers.BasicBlock(4, shortcut="zero")


def test_basic_block_configs_without_option_a_keep_loading():
    # A config as saved before option A existed (the speech models').
    old = {"name": "block0", "trainable": True, "dtype": "float32", "filters": 8,
           "strides": (2, 1), "num_convs": 1, "padding": ("symmetric", "valid"),
           "last_relu": True, "shortcut": "conv", "zero_gamma": True, "norm": None}
    block = layers.BasicBlock.from_config(old)
    assert (block.shortcut, block.shortcut_pool) == ("conv", "average")
    out = block(np.zeros((1, 8, 9, 4), "float32"))
    assert tuple(out.shape) == (1, 4, 7, 8)
    assert type(block.proj).__name__ == "ConvBN"


@pytest.mark.parametrize("size", [28, 32])
def test_output_shapes(size, built):
    x = np.zeros((2, size, size, 3), "float32")
    for name in PLAIN + BIG_LITTLE:
        assert tuple(built[name](x).shape) == (2, 10), name
    features = models.bl_cifar_resnet20(include_top=False)
    assert tuple(features(x).shape) == (2, -(-size // 4), -(-size // 4), 64)


@pytest.mark.parametrize("name", PLAIN + BIG_LITTLE)
def test_one_training_step(name, built):
    model = built[name]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    y = np.array([0, 3, 5, 9])
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(loss))
    missing = [w.path for w, g in zip(model.trainable_weights, grads)
               if g is None or not np.any(g.numpy())]
    assert missing == []
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


@pytest.mark.parametrize("name", ["cifar_resnet20", "bl_cifar_resnet20"])
def test_keras_file_round_trip_safe_mode(name, tmp_path):
    model = models.get(name, shortcut_pool="subsample")
    x = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert profiling.count_params(loaded) == COUNTS[name][0]
    pools = {block.shortcut_pool for block in models.residual_blocks(loaded)}
    assert pools == {"subsample"}


def test_bl_models_need_fewer_macs_at_the_same_depth():
    for depth, saving in SAVINGS.items():
        plain = COUNTS[f"cifar_resnet{depth}"][1]
        big_little = COUNTS[f"bl_cifar_resnet{depth}"][1]
        assert round(plain / big_little, 3) == saving >= 1.35


def test_residual_blocks_in_execution_order(built):
    plain32 = models.residual_blocks(built["cifar_resnet32"])
    assert len(plain32) == 15
    assert len(models.residual_blocks(built["cifar_resnet110"])) == 54
    # Stage by stage, block by block; the first of stages 2-3 downsamples.
    assert [b.path for b in plain32] == [f"layer{s}/block{i}" for s in (1, 2, 3)
                                         for i in range(5)]
    assert [b.strides for b in plain32[::5]] == [(1, 1), (2, 2), (2, 2)]
    # bL: per module the big branch (n-1), the little branch (1 at n=5), the fusion.
    bl32 = [block.path for block in models.residual_blocks(built["bl_cifar_resnet32"])]
    module = [f"big/block{i}" for i in range(4)] + ["little/stage/block0", "fusion"]
    assert bl32 == ([f"layer1/{p}" for p in module] + [f"layer2/{p}" for p in module] +
                    [f"layer3/block{i}" for i in range(5)])


def test_registry_entries():
    for name in PLAIN + BIG_LITTLE:
        entry = models.get_entry(name)
        assert entry.input_size == 32 and entry.profile_shape() == (32, 32, 3)
        assert entry.big_little == name.startswith("bl_")
        assert set(entry.options) >= {"shortcut", "shortcut_pool"}
    assert {"alpha", "beta"} <= set(models.get_entry("bl_cifar_resnet32").options)
    with pytest.raises(models.OptionError, match="alpha does not apply"):
        models.get("cifar_resnet20", alpha=2)
    with pytest.raises(models.OptionError, match="shortcut does not apply"):
        models.get("resnet50", shortcut="A")


def test_bad_depth_and_options_are_refused():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.cifar_resnet(depth=21)
    with pytest.raises(ValueError, match="depth >= 14"):
        models.cifar_resnet(depth=8, big_little=True)
    with pytest.raises(ValueError, match="shortcut must be one of"):
        models.cifar_resnet20(shortcut="C")
    with pytest.raises(ValueError, match="shortcut_pool must be one of"):
        models.cifar_resnet20(shortcut_pool="max")
    with pytest.raises(ValueError, match="alpha=3 must be >= 1 and divide"):
        models.bl_cifar_resnet20(alpha=3)


def test_profiling_cli_prints_params_and_macs(capsys):
    from bl_keras.profiling.__main__ import main

    assert main(["--model", "cifar_resnet20", "--size", "32"]) == 0
    assert capsys.readouterr().out.strip() == (
        "cifar_resnet20: 0.27M params, 40.55 MMACs at 32")
    assert main(["--model", "bl_cifar_resnet110", "--size", "28", "--json"]) == 0
    assert capsys.readouterr().out.strip() == (
        '{"model": "bl_cifar_resnet110", "params": 1746986, "macs": 105633664, '
        '"input_size": 28}')
    assert main(["--model", "cifar_resnet20", "--shortcut", "B", "--json"]) == 0
    assert '"params": 272474' in capsys.readouterr().out

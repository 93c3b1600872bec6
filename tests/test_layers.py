"""The Big-Little layers on their own: resizing rules, merges, branches, configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import layers
from bl_keras.layers.module import little_depth
from bl_keras.layers.resize import resize_axis, resize_to


def _torch_nearest_index(in_size, out_size):
    # PyTorch (legacy) nearest: floor(dst * (in / out)) in float32, clamped.
    scale = np.float32(in_size) / np.float32(out_size)
    return np.minimum(np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(int),
                      in_size - 1)


@pytest.mark.parametrize("in_size,out_size", [(7, 14), (13, 25), (7, 13), (25, 50), (4, 3)])
def test_nearest_follows_released_index_rule(in_size, out_size):
    x = np.random.default_rng(0).normal(size=(2, in_size, 5, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(resize_axis(x, out_size, 1, "nearest"))
    np.testing.assert_array_equal(y, x[:, _torch_nearest_index(in_size, out_size)])


def test_nearest_differs_from_tf_half_pixel_rule_at_odd_sizes():
    # Why the layer does not use tf.image.resize: 13 -> 25 picks other rows.
    x = np.arange(13, dtype="float32").reshape(1, 13, 1, 1)
    ours = keras.ops.convert_to_numpy(resize_axis(x, 25, 1, "nearest"))
    theirs = tf.image.resize(x, (25, 1), method="nearest").numpy()
    assert not np.array_equal(ours, theirs)


@pytest.mark.parametrize("in_size,out_size", [(7, 14), (13, 25), (7, 13), (5, 3)])
def test_bilinear_matches_half_pixel_bilinear(in_size, out_size):
    x = np.random.default_rng(1).normal(size=(1, in_size, in_size, 4)).astype("float32")
    y = resize_axis(resize_axis(x, out_size, 1, "bilinear"), out_size, 2, "bilinear")
    # TF's bilinear with half-pixel centres (no antialias) is PyTorch's align_corners=False.
    ref = tf.image.resize(x, (out_size, out_size), method="bilinear", antialias=False).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), ref, atol=1e-5)


@pytest.mark.parametrize("dtype, atol", [("float32", 1e-6), ("bfloat16", 0.02)])
def test_doubling_both_axes_has_the_block_sum_as_gradient(dtype, atol):
    # The merges' exact 2x upsampling: one block of 2x2 per input pixel; its gradient, the sum
    # of each block, runs as a 2x2 average pool times 4.
    x = tf.cast(tf.random.stateless_normal([2, 5, 7, 3], seed=[0, 1]), dtype)
    upstream = tf.cast(tf.random.stateless_normal([2, 10, 14, 3], seed=[2, 3]), dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = resize_to(x, (2, 10, 14, 3), (1, 2), "nearest")
    grad = tf.cast(tape.gradient(y, x, output_gradients=upstream), "float32").numpy()
    np.testing.assert_array_equal(tf.cast(y, "float32").numpy(),
                                  np.repeat(np.repeat(tf.cast(x, "float32").numpy(), 2, 1), 2, 2))
    blocks = tf.cast(upstream, "float32").numpy().reshape(2, 5, 2, 7, 2, 3).sum(axis=(2, 4))
    np.testing.assert_allclose(grad, blocks, atol=atol * np.abs(blocks).max())


def test_resize_rejects_unknown_method():
    with pytest.raises(ValueError, match="upsample"):
        layers.MergeAdd(upsample="cubic")


def test_merge_add_upsamples_big_to_little_and_applies_relu():
    big = np.random.default_rng(2).normal(size=(1, 7, 7, 4)).astype("float32")
    little = np.random.default_rng(3).normal(size=(1, 13, 13, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(layers.MergeAdd()([big, little]))
    idx = _torch_nearest_index(7, 13)
    np.testing.assert_allclose(out, np.maximum(big[:, idx][:, :, idx] + little, 0), atol=1e-6)


def test_merge_crops_in_time_to_the_shortest_branch():
    # Speech layout (batch, freq, time, ch): resize frequency, centre-crop time.
    big = np.ones((1, 4, 5, 2), "float32")
    little = np.arange(8 * 9 * 2, dtype="float32").reshape(1, 8, 9, 2)
    merge = layers.MergeAdd(activation=None, resize_axes=(1,), crop_axes=(2,))
    out = keras.ops.convert_to_numpy(merge([big, little]))
    assert out.shape == (1, 8, 5, 2)
    np.testing.assert_allclose(out, little[:, :, 2:7] + 1)
    assert merge.compute_output_shape([(None, 4, 5, 2), (None, 8, 9, 2)]) == (None, 8, 5, 2)


def test_merge_concat_fuses_to_filters():
    merge = layers.MergeConcat(6)
    out = merge([np.ones((2, 4, 4, 3), "float32"), np.ones((2, 8, 8, 5), "float32")])
    assert tuple(out.shape) == (2, 8, 8, 6)
    assert merge.fuse.conv.kernel.shape == (1, 1, 8, 6)


@pytest.mark.parametrize("num_blocks,beta,expected", [(3, 4, 1), (4, 4, 1), (6, 4, 1), (8, 4, 1),
                                                      (18, 4, 3), (30, 4, 6), (6, 2, 2), (3, 2, 1)])
def test_little_depth_rule(num_blocks, beta, expected):
    assert little_depth(num_blocks, beta) == expected


def test_big_little_module_shapes_and_structure():
    module = layers.BigLittleModule(64, 4, alpha=2, beta=2, strides=2)
    out = module(np.zeros((1, 25, 25, 32), "float32"))
    # Big runs at 13x13, little at 25x25, fusion strides to 13x13.
    assert tuple(out.shape) == (1, 13, 13, 64)
    assert len(module.big.blocks) == 3 and module.big.blocks[0].strides == 2
    assert not module.big.blocks[-1].last_relu
    assert len(module.little.stage.blocks) == 1
    assert module.little.stage.blocks[0].conv3.filters == 32
    assert module.fusion.strides == 2


def test_resnext_little_branch_keeps_group_width():
    block_config = {"cardinality": 32, "base_width": 4}
    little = layers.LittleBranch(256, 1, alpha=2, block_config=block_config)
    little.build((None, 16, 16, 64))
    conv2 = little.stage.blocks[0].conv2.conv
    assert conv2.groups == 16 and conv2.kernel.shape == (3, 3, 4, 64)


@pytest.mark.parametrize("shortcut,stride,expected_proj_stride", [("avgpool", 2, 1),
                                                                 ("conv", 2, 2)])
def test_bottleneck_shortcuts(shortcut, stride, expected_proj_stride):
    block = layers.Bottleneck(64, strides=stride, shortcut=shortcut)
    out = block(np.ones((1, 8, 8, 32), "float32"))
    assert tuple(out.shape) == (1, 4, 4, 64)
    assert block.proj.strides == (expected_proj_stride,) * 2
    assert (block.pool is not None) == (shortcut == "avgpool")


def test_avgpool_shortcut_counts_padded_zeros():
    # PyTorch AvgPool2d(3, 2, padding=1): the corner averages 4 ones over 9 cells.
    block = layers.Bottleneck(8, strides=2)
    block.build((1, 4, 4, 8))
    pooled = keras.ops.convert_to_numpy(block.pool(block.pool_pad(np.ones((1, 4, 4, 8), "f4"))))
    assert pooled[0, 0, 0, 0] == pytest.approx(4 / 9)
    assert pooled[0, 1, 1, 0] == pytest.approx(1.0)


def test_zero_gamma_makes_block_an_identity_plus_relu():
    block = layers.Bottleneck(8, zero_gamma=True)
    x = np.random.default_rng(4).normal(size=(1, 5, 5, 8)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x)), np.maximum(x, 0), atol=1e-6)


def test_se_block_param_count():
    se = layers.SqueezeExcite(16)
    se.build((None, 4, 4, 256))
    assert sum(int(np.prod(w.shape)) for w in se.weights) == 256 * 16 + 16 + 16 * 256 + 256


def test_batchnorm_defaults_are_the_released_ones():
    conv = layers.ConvBN(4, 3)
    conv.build((None, 8, 8, 3))
    assert conv.bn.momentum == 0.9 and conv.bn.epsilon == 1e-5
    with pytest.raises(ValueError, match="Unknown BatchNorm option"):
        layers.ConvBN(4, 3, norm={"eps": 1e-3})


def test_strided_conv_pads_symmetrically_like_pytorch():
    conv = layers.ConvBN(1, 3, 2, activation=None)
    conv.build((1, 4, 4, 1))
    conv.conv.kernel.assign(np.ones((3, 3, 1, 1), "float32"))
    out = keras.ops.convert_to_numpy(conv(np.ones((1, 4, 4, 1), "float32"), training=False))
    # Pad 1 on every side: the top-left window sees 4 ones, the next one 6.
    bn_scale = 1 / np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(out[0, :, :, 0] / bn_scale, [[4, 6], [6, 9]], rtol=1e-5)


LAYERS = [
    layers.ConvBN(8, 3, 2, groups=2, padding=("symmetric", "valid")),
    layers.Bottleneck(64, strides=2, cardinality=4, base_width=16, se_reduction=8),
    layers.SqueezeExcite(4),
    layers.ResidualStage(32, 2, strides=2),
    layers.ResidualStage(16, 2, strides=(2, 1), block="basic",
                         block_config={"padding": ["symmetric", "valid"]},
                         block_overrides=[{"num_convs": 2}, {"num_convs": 1}]),
    layers.BasicBlock(8, strides=(2, 1), num_convs=1, padding=("symmetric", "valid")),
    layers.BigBranch(32, 2),
    layers.LittleBranch(32, 1, alpha=2),
    layers.MergeAdd(upsample="bilinear", crop_axes=(2,)),
    layers.MergeConcat(16),
    layers.BigLittleModule(32, 3, alpha=2, beta=2, upsample="bilinear", merge="concat"),
    layers.BigLittleStem(16, alpha=4),
    layers.ResNetStem(16),
]


@pytest.mark.parametrize("layer", LAYERS, ids=[type(l).__name__ for l in LAYERS])
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    registered = keras.saving.get_registered_name(type(layer))
    assert registered == f"bl_keras>{type(layer).__name__}"


def test_one_block_big_branch_keeps_its_relu_as_released():
    # The released _make_layer builds a single block with its default last_relu=True.
    assert layers.BigLittleModule(32, 2).big.blocks[-1].last_relu
    assert not layers.BigLittleModule(32, 3).big.blocks[-1].last_relu


def test_resize_operators_trace_the_same_2x_upsampling_as_one_op():
    import tensorflow as tf

    from bl_keras.layers.resize import resize_operators, resize_to

    x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype("float32")
    expected = np.asarray(resize_to(x, (2, 14, 10, 3), (1, 2), "nearest"))
    with resize_operators():
        graph = tf.function(lambda t: resize_to(t, (2, 14, 10, 3), (1, 2), "nearest"))
        concrete = graph.get_concrete_function(tf.TensorSpec((None, 7, 5, 3)))
        np.testing.assert_array_equal(np.asarray(graph(x)), expected)
        # not exactly 2x: the gather path, as outside the block
        odd = np.asarray(resize_to(x, (2, 13, 10, 3), (1, 2), "nearest"))
    np.testing.assert_array_equal(odd, np.asarray(resize_to(x, (2, 13, 10, 3), (1, 2),
                                                            "nearest")))
    ops = {op.type for op in concrete.graph.get_operations()}
    assert "ResizeNearestNeighbor" in ops and "BroadcastTo" not in ops

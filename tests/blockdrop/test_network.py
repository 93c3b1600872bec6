"""Gated backbones: an all-ones policy is the plain backbone; a policy that drops blocks equals
running the kept blocks by hand; the gathered (inference) and masked (training) executions
agree; MACs per image; the .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import blockdrop, models, profiling
from bl_keras.layers import gating
from tests.slimmable.helpers import randomize

SMALL_RESNET = dict(stage_depths=(2, 2, 2, 2), stage_filters=(32, 64, 128, 256), stem_filters=8)
BACKBONES = [
    pytest.param("cifar_resnet32", {}, 32, id="cifar_resnet32"),
    pytest.param("cifar_resnet20", dict(shortcut="B"), 28, id="cifar_resnet20-B"),
    pytest.param("bl_cifar_resnet20", {}, 32, id="bl_cifar_resnet20"),
    pytest.param("resnet50", SMALL_RESNET, 64, id="resnet50-small"),
    pytest.param("bl_resnet50", dict(SMALL_RESNET, alpha=2, beta=2), 64, id="bl_resnet50-small"),
]
_NETWORKS = {}


def network_of(name, options):
    key = (name, tuple(sorted(options.items())))
    if key not in _NETWORKS:
        backbone = randomize(models.get(name, classes=10, classifier_activation=None, **options),
                             seed=len(_NETWORKS))
        blocks = len(models.residual_blocks(backbone))
        _NETWORKS[key] = blockdrop.BlockDropNetwork(backbone, blockdrop.cifar_policy(blocks))
    return _NETWORKS[key]


def images(batch, size, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name,options,size", BACKBONES)
def test_all_ones_policy_is_the_plain_backbone(name, options, size):
    network = network_of(name, options)
    x = images(4, size)
    plain = network.backbone(x, training=False).numpy()
    ones = tf.ones([4, network.num_blocks])
    for dynamic in (True, False):
        gated = network.run(x, ones, training=False, dynamic=dynamic).numpy()
        assert np.abs(gated - plain).max() <= 1e-5


@pytest.mark.parametrize("name,options,size", BACKBONES)
def test_gathered_and_masked_executions_agree(name, options, size):
    network = network_of(name, options)
    x = images(6, size, seed=1)
    policy = (np.random.default_rng(2).random((6, network.num_blocks)) > 0.5).astype("float32")
    policy[0] = 0.0  # an image that runs no block at all
    policy[:, 0] = 0.0  # a block no image runs
    dynamic = network.run(x, tf.constant(policy), training=False, dynamic=True).numpy()
    masked = network.run(x, tf.constant(policy), training=False, dynamic=False).numpy()
    assert np.abs(dynamic - masked).max() <= 1e-5
    # Each image alone, with its policy as a static choice, gives its row.
    for i in (0, 3):
        alone = network.run(x[i:i + 1], policy[i], training=False).numpy()
        assert np.abs(alone - dynamic[i:i + 1]).max() <= 1e-5


def test_dropped_blocks_equal_running_the_kept_blocks_by_hand():
    network = network_of("cifar_resnet32", {})
    backbone = network.backbone
    blocks = models.residual_blocks(backbone)
    x = images(5, 32, seed=3)
    policy = (np.random.default_rng(4).random((5, 15)) > 0.4).astype("float32")
    gated = network.run(x, tf.constant(policy), training=False).numpy()
    for i in range(5):
        h = backbone.get_layer("stem")(x[i:i + 1], training=False)
        for k, block in enumerate(blocks):
            h = block(h, training=False) if policy[i, k] else block._shortcut(h, False)
        logits = backbone.get_layer("predictions")(backbone.get_layer("avg_pool")(h))
        assert np.abs(logits.numpy() - gated[i:i + 1]).max() <= 1e-5


def test_blocks_without_gates_run_as_usual_inside_a_scope():
    network = network_of("cifar_resnet32", {})
    x = images(2, 32)
    with gating.running_gates({}):
        outside = network.backbone(x, training=False).numpy()
    np.testing.assert_array_equal(outside, network.backbone(x, training=False).numpy())


def test_macs_per_image_follow_the_policy():
    backbone = models.get("cifar_resnet110", classes=10)
    network = blockdrop.BlockDropNetwork(backbone, blockdrop.cifar_policy(54))
    costs = blockdrop.block_costs(network, (32, 32, 3))
    assert costs.full == 252_887_680 == profiling.count_macs(backbone, (32, 32, 3))
    # the authors' ResNet-8 at 32x32: 12.24 M MACs, of which its dense layer 64 x K
    assert costs.policy == 12_239_808 - 64 * 15 + 64 * 54
    # A 16-channel block at 32x32: two 3x3 convs of 16 -> 16 channels.
    assert costs.blocks[0] == 2 * 32 * 32 * 16 * 16 * 9
    ones, first_off = np.ones(54), np.ones(54)
    first_off[0] = 0
    per_image = costs.per_image(np.stack([ones, first_off, np.zeros(54)]))
    assert per_image.tolist() == [costs.full + costs.policy,
                                  costs.full + costs.policy - costs.blocks[0],
                                  costs.shortcuts + costs.policy]


def test_policy_networks_have_one_output_per_block():
    assert blockdrop.cifar_policy(15).output_shape == (None, 15)
    imagenet = blockdrop.imagenet_policy(33)
    assert imagenet.output_shape == (None, 33)
    assert profiling.count_macs(imagenet, (224, 224, 3)) == 235_958_784
    with pytest.raises(ValueError, match="policy network has 14 outputs but cifar_resnet32 has 15"):
        blockdrop.BlockDropNetwork(models.get("cifar_resnet32"), blockdrop.cifar_policy(14))


def test_blockdrop_network_round_trips_through_keras_files(tmp_path):
    network = network_of("bl_cifar_resnet20", {})
    x = images(3, 32)
    path = tmp_path / "blockdrop.keras"
    network.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, blockdrop.BlockDropNetwork)
    np.testing.assert_allclose(loaded(x).numpy(), network(x).numpy(), atol=1e-6)
    assert loaded.block_paths == network.block_paths


def test_saved_model_runs_each_images_policy(tmp_path):
    """The exported serving function gathers per image as the Keras network does."""
    from bl_keras.export.saved_model import export_saved_model

    network = network_of("cifar_resnet32", {})
    export_saved_model(network, tmp_path / "1", image_size=32, crop_fraction=1.0)
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    x = images(4, 32, seed=7)
    served = loaded.signatures["predict_images"](images=tf.constant(x))
    np.testing.assert_allclose(served["logits"].numpy(), network(x, training=False).numpy(),
                               atol=1e-5)
    # The graph gathers the kept images and stitches the block outputs back in.
    library = loaded.signatures["predict_images"].graph.as_graph_def().library
    ops = {node.op for function in library.function for node in function.node_def}
    assert {"GatherV2", "DynamicStitch"} <= ops


def test_evaluation_summary_by_hand():
    from bl_keras.blockdrop.cost import BlockCosts
    from bl_keras.blockdrop.evaluate import summarise

    costs = BlockCosts(policy=10, shortcuts=100, blocks=(5, 7, 9))
    policies = np.array([[1, 1, 1], [1, 0, 1], [1, 0, 1], [0, 0, 0]], np.float32)
    correct = np.array([True, True, False, True])
    labels = np.array([0, 0, 1, 1])
    summary = summarise(policies, correct, labels, costs)
    macs = np.array([131, 124, 124, 110])  # 10 + 100 + the kept blocks
    blocks = np.array([3, 2, 2, 0])
    assert summary["top1"] == 0.75 and summary["images"] == 4
    assert summary["macs_mean"] == macs.mean() and summary["macs_std"] == macs.std()
    assert summary["blocks_mean"] == 1.75 and summary["blocks_std"] == pytest.approx(blocks.std())
    assert summary["distinct_policies"] == 3 and summary["full_macs"] == 121
    assert summary["blocks_per_class"] == {0: 2.5, 1: 1.0}

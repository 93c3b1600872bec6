"""SpotTune's pieces: Gumbel-softmax straight-through, the network's two copies per block (all
frozen = the pretrained network, all fine-tuned = the fine-tuned copies, mixed = each image by
hand), one copy per image in the dynamic execution, MACs, SpotTune-Global's penalty and the
Decathlon score."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import models, profiling
from bl_keras.blockdrop.policy import policy_for
from bl_keras.spottune import (BASELINE_ACCURACY, DOMAINS, SpotTuneNetwork, SpotTuneRecipe,
                               decathlon_score, global_penalty, gumbel_softmax, results_table,
                               spottune_network, with_new_head)
from bl_keras.spottune.evaluate import inference_macs


def test_gumbel_softmax_is_one_hot_forward_with_the_soft_sample_gradients():
    logits = tf.Variable(np.random.RandomState(0).randn(6, 4, 2).astype("float32"))
    weights = tf.constant(np.random.RandomState(1).randn(6, 4, 2).astype("float32"))
    seed = tf.constant([3, 7], tf.int64)
    with tf.GradientTape(persistent=True) as tape:
        hard = gumbel_softmax(logits, seed, temperature=5.0)
        soft = gumbel_softmax(logits, seed, temperature=5.0, hard=False)
        hard_loss, soft_loss = tf.reduce_sum(hard * weights), tf.reduce_sum(soft * weights)
    hard, soft = hard.numpy(), soft.numpy()
    assert set(np.unique(hard)) == {0.0, 1.0} and np.all(hard.sum(-1) == 1)
    np.testing.assert_array_equal(hard.argmax(-1), soft.argmax(-1))
    assert 0 < soft.min() and soft.max() < 1  # temperature 5: a soft sample
    np.testing.assert_allclose(tape.gradient(hard_loss, logits),
                               tape.gradient(soft_loss, logits), rtol=1e-6)
    # The same seed draws the same noise; another seed, other choices somewhere.
    np.testing.assert_array_equal(gumbel_softmax(logits, seed).numpy(), hard)
    other = gumbel_softmax(logits * 0, tf.constant([4, 7], tf.int64)).numpy()
    assert 0 < other[..., 1].mean() < 1


@pytest.fixture(scope="module")
def pretrained():
    keras.utils.set_random_seed(0)
    return models.get("cifar_resnet20", classes=5, classifier_activation=None,
                      input_shape=(32, 32, 3))


@pytest.fixture(scope="module")
def network(pretrained):
    keras.utils.set_random_seed(1)
    network = spottune_network(pretrained, 3, agent=policy_for(9, 32, "resnet8", choices=2))
    # The fine-tuned copies as after training: every residual block's weights moved.
    for block in models.residual_blocks(network.tuned):
        for variable in block.weights:
            variable.assign(variable + 0.05 * np.random.RandomState(2).randn(*variable.shape)
                            .astype("float32"))
    return network


@pytest.fixture(scope="module")
def images():
    return np.random.RandomState(3).randn(6, 32, 32, 3).astype("float32")


def test_structure(network, pretrained):
    assert network.num_blocks == 9 and network.agent.output_shape == (None, 18)
    assert not network.frozen.trainable and network.frozen.trainable_variables == []
    frozen_ids = {id(v) for v in network.frozen.weights}
    assert not frozen_ids & {id(v) for v in network.trainable_variables}
    assert network.tuned.output_shape == (None, 3)
    # The frozen copy holds the pretrained weights, bitwise.
    for a, b in zip(network.frozen.get_weights(), pretrained.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_all_frozen_is_the_pretrained_network_and_all_tuned_the_fine_tuned_one(
        network, pretrained, images):
    # The pretrained network with the fine-tuned network's (new) head.
    reference = with_new_head(pretrained, 3)
    reference.layers[-1].set_weights(network.tuned.layers[-1].get_weights())
    k = network.num_blocks
    for dynamic in (False, True):
        all_frozen = network.run(tf.constant(images), tf.zeros([6, k]), training=False,
                                 dynamic=dynamic)
        np.testing.assert_allclose(all_frozen, reference(images, training=False), atol=1e-5)
        all_tuned = network.run(tf.constant(images), tf.ones([6, k]), training=False,
                                dynamic=dynamic)
        np.testing.assert_allclose(all_tuned, network.tuned(images, training=False), atol=1e-5)
    assert np.abs(all_tuned - all_frozen).max() > 1e-2  # the copies really differ


def test_mixed_policy_runs_each_image_through_its_own_choices(network, images):
    policy = (np.random.RandomState(4).rand(6, network.num_blocks) > 0.5).astype("float32")
    masked = network.run(tf.constant(images), tf.constant(policy), training=False,
                         dynamic=False).numpy()
    dynamic = network.run(tf.constant(images), tf.constant(policy), training=False,
                          dynamic=True).numpy()
    np.testing.assert_allclose(dynamic, masked, atol=1e-5)
    for i in range(6):  # each image alone with its policy as a static choice
        alone = network.run(images[i:i + 1], policy[i], training=False).numpy()
        np.testing.assert_allclose(dynamic[i:i + 1], alone, atol=1e-5)


def test_policy_is_the_argmax_and_call_runs_it(network, images):
    logits = network.choice_logits(images).numpy()
    policy = network.policy(images).numpy()
    np.testing.assert_array_equal(policy, (logits[..., 1] > logits[..., 0]).astype("float32"))
    np.testing.assert_allclose(network(images).numpy(),
                               network.run(images, tf.constant(policy), training=False),
                               atol=1e-6)


def test_one_backbone_pass_per_image(network):
    shape = (32, 32, 3)
    backbone = profiling.count_macs(network.tuned, shape)

    class Mixed:  # a static policy mixing both copies
        def __call__(self, x, training=False):
            return network.run(x, np.arange(network.num_blocks) % 2, training=training)

    graph = profiling.inference_graph(Mixed(), shape)
    assert sum(profiling.op_macs(op) for op in profiling.graph_ops(graph)) == backbone
    agent = profiling.count_macs(network.agent, shape)
    assert agent == 12_239_808 + (18 - 15) * 64  # the 15-output ResNet-8 with 18 outputs
    assert inference_macs(network, shape) == backbone + agent


def test_saves_and_loads(network, images, tmp_path):
    path = tmp_path / "spottune.keras"
    network.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, SpotTuneNetwork) and not loaded.frozen.trainable
    np.testing.assert_allclose(loaded(images).numpy(), network(images).numpy(), atol=1e-6)


def test_global_policy_uses_the_running_share(network, images):
    network.global_policy = True
    try:
        network.fine_tune_rate.assign([0.9, 0.1, 0.6, 0.4, 0.5, 0.51, 0.0, 1.0, 0.7])
        expected = np.array([1, 0, 1, 0, 0, 1, 0, 1, 1], "float32")
        np.testing.assert_array_equal(network.policy(images).numpy(), np.tile(expected, (6, 1)))
    finally:
        network.global_policy = False
        network.fine_tune_rate.assign(np.zeros(9))


def test_global_penalty_by_hand():
    choice = tf.constant([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])  # shares 1, 0.5, 0.5
    recipe = SpotTuneRecipe("global", global_blocks=1, global_count_weight=2.0,
                            global_entropy_weight=0.1)
    expected = 2.0 * (2.0 - 1) ** 2 + 0.1 * 2 * math.log(2)  # H(1) = 0, H(0.5) = ln 2
    assert float(global_penalty(choice, recipe)) == pytest.approx(expected, rel=1e-5)


def test_recipe_checks():
    with pytest.raises(ValueError, match="method"):
        SpotTuneRecipe("blockdrop")
    with pytest.raises(ValueError, match="learning rate factor"):
        SpotTuneRecipe(agent_lr_factor=0)


def test_agent_outputs_must_match_the_blocks(pretrained):
    with pytest.raises(ValueError, match="2 per residual block"):
        spottune_network(pretrained, 3, agent=policy_for(9, 32, "resnet8", choices=1))


# The talk's Visual Decathlon table (per-domain top-1 %, score), in DOMAINS order.
TALK_ROWS = {
    "SpotTune": ([60.32, 63.91, 80.48, 96.49, 57.13, 99.52, 85.22, 88.84, 96.72, 52.34], 3612),
    "Parallel Res. adapt.": ([60.32, 64.21, 81.92, 94.73, 58.83, 99.38, 84.68, 89.21, 96.54,
                              50.94], 3412),
}


@pytest.mark.parametrize("row", sorted(TALK_ROWS))
def test_decathlon_score_reproduces_the_talk(row):
    accuracies, score = TALK_ROWS[row]
    assert round(decathlon_score(dict(zip(DOMAINS, accuracies)))) == score


def test_decathlon_score_by_hand():
    # The baseline scores 250 per domain; zero error 1000; twice the baseline error 0.
    assert decathlon_score(BASELINE_ACCURACY) == pytest.approx(2500)
    assert decathlon_score({"svhn": 100.0}) == pytest.approx(1000)
    worst = 100 - 2 * (100 - BASELINE_ACCURACY["dtd"])
    assert decathlon_score({"dtd": worst - 5}) == 0
    with pytest.raises(ValueError, match="no baseline"):
        decathlon_score({"mnist": 99.0})
    table = results_table({"SpotTune": dict(zip(DOMAINS, TALK_ROWS["SpotTune"][0])),
                           "partial": {"mnist": 99.0}})
    assert "| SpotTune | 60.32 |" in table and table.splitlines()[2].endswith("| 3612 |")
    assert table.splitlines()[3].endswith("| n/a |")

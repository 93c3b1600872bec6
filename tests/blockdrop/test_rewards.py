"""BlockDrop's reward, baseline, bounding, curriculum and losses against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from bl_keras.blockdrop import rewards
from bl_keras.blockdrop.training import learned_blocks


def test_reward_of_a_correct_prediction_falls_with_the_blocks_used():
    half = np.array([[1.0] * 8 + [0.0] * 8])
    assert rewards.reward(half, [True], gamma=5).numpy() == pytest.approx([0.75])
    assert rewards.reward(np.ones((1, 16)), [True], 5).numpy() == pytest.approx([0.0])
    assert rewards.reward(np.zeros((1, 16)), [True], 5).numpy() == pytest.approx([1.0])


def test_a_wrong_prediction_gets_minus_gamma_whatever_the_blocks():
    policy = np.array([[1.0] * 8 + [0.0] * 8, [0.0] * 16])
    assert rewards.reward(policy, [False, False], gamma=10).numpy() == pytest.approx([-10, -10])


def test_self_critical_advantage():
    sampled = np.array([[1.0, 0, 0, 0]])  # 1 of 4 blocks, correct: 1 - 1/16
    greedy = np.array([[1.0, 1, 0, 0]])  # 2 of 4, correct: 1 - 1/4
    advantage = (rewards.reward(sampled, [True], 5) - rewards.reward(greedy, [True], 5)).numpy()
    assert advantage == pytest.approx([15 / 16 - 3 / 4])


def test_bounding_keeps_probabilities_inside_alpha():
    p = np.array([0.0, 0.5, 0.9, 1.0], "float32")
    assert rewards.bound(tf.constant(p), 0.8).numpy() == pytest.approx([0.2, 0.5, 0.74, 0.8])


def test_curriculum_decides_the_last_blocks_and_runs_the_others():
    mask = rewards.curriculum_mask(5, 2).numpy()
    assert mask.tolist() == [0, 0, 0, 1, 1]
    policy = np.array([[0.0, 0, 1, 0, 1]], "float32")
    assert rewards.apply_curriculum(policy, mask).numpy().tolist() == [[1, 1, 1, 0, 1]]
    # epoch e (from 0) learns e + 1 blocks, at most K
    assert [int(learned_blocks(step, 10, 3)) for step in (0, 9, 10, 25, 99)] == [1, 1, 2, 3, 3]


def test_sampling_follows_the_probabilities_and_the_seed():
    p = tf.fill([2000, 3], 0.3)
    draws = rewards.sample(p, tf.constant([1, 2], tf.int64)).numpy()
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert draws.mean() == pytest.approx(0.3, abs=0.02)
    again = rewards.sample(p, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(draws, again)


def test_curriculum_loss_by_hand():
    bounded = np.array([[0.74, 0.2]], "float32")
    policy = np.array([[1.0, 0.0]], "float32")
    mask = np.array([0.0, 1.0], "float32")  # only the last block is learned
    advantage = np.array([0.5], "float32")
    loss = rewards.curriculum_pg_loss(bounded, policy, advantage, mask, beta=0.1).numpy()
    log_p_last = math.log(1 - 0.2)
    entropy = -(0.74 * math.log(0.74) + 0.2 * math.log(0.2))
    assert loss == pytest.approx([-log_p_last * 0.5 - 0.1 * entropy], rel=1e-5)


def test_finetune_loss_sums_over_the_batch_like_the_authors():
    bounded = np.array([[0.74, 0.2], [0.5, 0.5]], "float32")
    policy = np.array([[1.0, 1.0], [0.0, 1.0]], "float32")
    advantage = np.array([1.0, -2.0], "float32")
    per_image = rewards.finetune_pg_loss(bounded, policy, advantage, batch_size=2).numpy()
    log_p = np.array([math.log(0.74) + math.log(0.2), 2 * math.log(0.5)])
    # the trainer averages per-image losses: the mean is the authors' sum over the batch
    assert per_image.mean() == pytest.approx(-(log_p * advantage).sum(), rel=1e-5)


def test_the_policy_gradient_pushes_towards_rewarded_choices():
    logits = tf.Variable([[0.0, 0.0]])
    policy = tf.constant([[1.0, 0.0]])
    with tf.GradientTape() as tape:
        bounded = rewards.bound(tf.sigmoid(logits))
        loss = rewards.finetune_pg_loss(bounded, policy, tf.constant([1.0]), batch_size=1)
    gradient = tape.gradient(loss, logits).numpy()
    assert gradient[0, 0] < 0 < gradient[0, 1]  # descent raises p(block 0), lowers p(block 1)

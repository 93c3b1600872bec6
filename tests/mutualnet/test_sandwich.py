"""MutualNet's training step: the sandwich rule's draws, the distillation loss, and BatchNorm
moving statistics left to the full network."""

import numpy as np
import pytest
import tensorflow as tf

from bl_keras import slimmable
from bl_keras.mutualnet.sandwich import SandwichRule, distillation_loss, subnetwork_losses


def test_sample_is_the_sandwich_rule_and_a_function_of_the_step():
    rule = SandwichRule(0.25, 1.0, num_random=2, resolutions=(224, 192, 160, 128), seed=3)
    seen_widths, seen_resolutions = [], set()
    for step in range(50):
        draws = [(float(w), int(r)) for w, r in rule.sample(tf.constant(step))]
        again = [(float(w), int(r)) for w, r in rule.sample(tf.constant(step))]
        assert draws == again
        assert len(draws) == 3
        assert draws[0][0] == 0.25
        for width, resolution in draws:
            assert 0.25 <= width <= 1.0
            seen_resolutions.add(resolution)
        seen_widths += [w for w, _ in draws[1:]]
    assert seen_resolutions == {224, 192, 160, 128}
    # Uniform on (0.25, 1): the mean of 100 draws is near 0.625.
    assert abs(np.mean(seen_widths) - 0.625) < 0.06
    other_seed = SandwichRule(0.25, 1.0, seed=4).sample(tf.constant(0))
    assert [float(w) for w, _ in other_seed] != [float(w) for w, _ in
                                                 rule.sample(tf.constant(0))]


@pytest.mark.parametrize("bad", [dict(min_width=0.0), dict(min_width=0.5, max_width=0.4),
                                 dict(max_width=1.5), dict(num_random=-1),
                                 dict(resolutions=())])
def test_rule_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        SandwichRule(**bad)


def test_distillation_loss_is_kl_and_stops_at_the_teacher():
    rng = np.random.default_rng(0)
    teacher = tf.constant(rng.normal(size=(4, 6)), tf.float32)
    student = tf.constant(rng.normal(size=(4, 6)), tf.float32)
    p = tf.nn.softmax(teacher).numpy()
    q = tf.nn.softmax(student).numpy()
    expected = (p * (np.log(p) - np.log(q))).sum(-1)
    np.testing.assert_allclose(distillation_loss(teacher, student).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(distillation_loss(teacher, teacher).numpy(), 0, atol=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([teacher, student])
        loss = tf.reduce_sum(distillation_loss(teacher, student))
    assert tape.gradient(loss, teacher) is None
    assert np.abs(tape.gradient(loss, student).numpy()).sum() > 0


def test_subnetworks_train_every_width_but_leave_moving_statistics():
    model = slimmable.get("mobilenet_v1", classes=3, base_width=0.25, classifier_activation=None)
    rule = SandwichRule(0.25, 1.0, num_random=2, resolutions=(32, 24), seed=0)
    images = tf.random.normal((4, 32, 32, 3), seed=1)
    labels = tf.constant([0, 1, 2, 0])
    moving = [v.numpy().copy() for v in model.non_trainable_weights]
    full = model(images, training=False)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(subnetwork_losses(model, images, labels, full, rule, 0))
    grads = tape.gradient(loss, model.trainable_weights)
    assert float(loss) > 0
    assert all(g is not None for g in grads)
    for before, variable in zip(moving, model.non_trainable_weights):
        np.testing.assert_array_equal(before, variable.numpy())
    # The smallest sub-network uses the first quarter of the 1024-channel (x0.25) last unit:
    # the classifier's gradient is zero beyond the widest drawn width's channels.
    kernel_grad = grads[[w.path for w in model.trainable_weights].index(
        model.classifier.kernel.path)].numpy()
    widest = max(float(w) for w, _ in rule.sample(0))
    used = slimmable.make_divisible(256 * widest)
    assert np.abs(kernel_grad[:used]).sum() > 0
    np.testing.assert_array_equal(kernel_grad[used:], 0)


def test_sandwich_step_under_mixed_precision():
    """bfloat16 compute, float32 weights and losses: the step's loss and gradients are finite;
    the classifier runs in float32 (as every registry model's head does)."""
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = slimmable.get("mobilenet_v2", classes=3, base_width=0.25,
                              classifier_activation=None)
        rule = SandwichRule(0.25, 1.0, num_random=2, resolutions=(32, 24), seed=0)
        images = tf.random.normal((4, 32, 32, 3), seed=2)
        with tf.GradientTape() as tape:
            full = model(images, training=True)
            loss = tf.reduce_sum(subnetwork_losses(model, images, tf.constant([0, 1, 2, 0]),
                                                   tf.cast(full, tf.float32), rule, 3))
        grads = tape.gradient(loss, model.trainable_weights)
    finally:
        keras.config.set_dtype_policy("float32")
    assert full.dtype == tf.float32
    assert model.network.get_layer("stem").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)

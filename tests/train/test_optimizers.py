"""`FusedSGD`: Keras' SGD rule in TensorFlow's fused momentum kernel, step for step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import models
from bl_keras.training.optimizers import FusedSGD


def train(optimizer_class, steps=5, **options):
    """Weights and optimizer variables after `steps` steps of a small ResNet on a fixed batch."""
    keras.utils.set_random_seed(0)
    model = models.get("cifar_resnet20", classes=10)
    optimizer = optimizer_class(0.1, **options)
    optimizer.build(model.trainable_variables)
    images = tf.random.stateless_normal([8, 32, 32, 3], seed=[1, 2])
    labels = tf.constant(np.arange(8) % 10)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            scores = model(images, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, scores))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)

    for _ in range(steps):
        step()
    return model, optimizer


@pytest.mark.parametrize("options", [dict(momentum=0.9, nesterov=True),
                                     dict(momentum=0.9, nesterov=False), dict(momentum=0.0)])
def test_fused_sgd_takes_keras_sgd_steps(options):
    fused_model, fused = train(FusedSGD, **options)
    keras_model, reference = train(keras.optimizers.SGD, **options)
    for ours, theirs in zip(fused_model.weights + fused.variables,
                            keras_model.weights + reference.variables):
        assert ours.path == theirs.path
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-6)
    assert int(fused.iterations.numpy()) == 5


def test_a_keras_sgd_checkpoint_restores_into_fused_sgd(tmp_path):
    model, reference = train(keras.optimizers.SGD, steps=2, momentum=0.9, nesterov=True)
    path = tf.train.Checkpoint(model=model, optimizer=reference).save(str(tmp_path / "ckpt"))
    restored_model = models.get("cifar_resnet20", classes=10)
    fused = FusedSGD(0.1, momentum=0.9, nesterov=True)
    fused.build(restored_model.trainable_variables)
    tf.train.Checkpoint(model=restored_model, optimizer=fused).restore(path).assert_consumed()
    for ours, theirs in zip(fused.variables, reference.variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

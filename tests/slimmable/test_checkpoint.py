"""Checkpoints hold every weight of every slimmable network, and a restore reproduces it.

`tf.train.Checkpoint` follows a layer's attributes, not Keras' tracked lists: networks that kept
their blocks in a list once saved 2 of their 262 weights, and a resumed MutualNet run went on
from a freshly initialised backbone. The slimmable networks now keep every block in its own
attribute, and the trainer saves whatever a model's object graph still misses (KerasHub's
feature pyramid keeps its layers in dicts) by position.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import slimmable
from tests.slimmable.helpers import images, randomize
from bl_keras.training.trainer import checkpointed, untracked_weights

NETWORKS = {
    "mobilenet_v1": dict(base_width=0.25),
    "mobilenet_v2": dict(base_width=0.35),
    "resnet50": dict(stage_depths=(1, 1, 1, 1), stage_filters=(64, 128, 256, 512)),
    "bl_resnet50": dict(stage_depths=(2, 2, 2, 2), stage_filters=(64, 128, 256, 512),
                        stem_filters=16),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_checkpoint_restores_every_weight_and_the_outputs(name, tmp_path):
    model = randomize(slimmable.get(name, classes=3, **NETWORKS[name]), seed=1)
    assert untracked_weights(model) == []
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    assert len(tf.train.list_variables(path)) >= len(model.weights)

    fresh = randomize(slimmable.get(name, classes=3, **NETWORKS[name]), seed=2)
    tf.train.Checkpoint(model=fresh).read(path).assert_existing_objects_matched()
    x = images((2, 32, 32, 3), seed=3)
    for width in (1.0, 0.5):
        np.testing.assert_array_equal(model(x, width=width, training=False),
                                      fresh(x, width=width, training=False))
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(saved, restored)


class _ListOfBlocks(keras.Model):
    """Keeps its layers in a list: Keras saves them, `tf.train.Checkpoint` does not."""

    def __init__(self):
        super().__init__(name="list_of_blocks")
        self.blocks = [keras.layers.Dense(4), keras.layers.Dense(2)]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def test_trainer_checkpoints_hold_the_weights_the_object_graph_misses(tmp_path):
    model, fresh = _ListOfBlocks(), _ListOfBlocks()
    for m, seed in ((model, 0), (fresh, 1)):
        keras.utils.set_random_seed(seed)
        m(np.zeros((1, 3), "float32"))
    assert len(untracked_weights(model)) == 4
    path = tf.train.Checkpoint(**checkpointed(model)).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(**checkpointed(fresh)).read(path).assert_consumed()
    for saved, restored in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(saved, restored)

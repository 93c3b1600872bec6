"""`SpotTuneNetwork`: a pretrained residual network whose every block exists twice, frozen and
fine-tuned, and an agent that picks one of the two per image and block (Guo et al., CVPR 2019).

    network = spottune_network(pretrained, classes=5)       # frozen + fine-tuned copies + agent
    logits = network(images)              # argmax policy; each image runs one copy per block
    choice = network.policy(images)       # [batch, K]: 1 = fine-tuned copy, 0 = frozen copy
    logits = network.run(images, choice, training=True)     # any [batch, K] 0/1 policy

As in the authors' code, the stem, the shortcuts' projections and the head belong to the
fine-tuned network (the head is new: the target's classes); only the residual blocks are
doubled. The frozen copy runs in inference mode and is never trained (the authors' code freezes
only its convolutions; WORKSPACE_NOTES.md gives the reasons). The choice is an execution option
of the package's blocks (`bl_keras.layers.gating.Alternative`), not a copy of their code.
"""

import keras
import numpy as np
import tensorflow as tf

from bl_keras.layers import gating
from bl_keras.models.residual_blocks import residual_blocks
from bl_keras.spottune.gumbel import gumbel_softmax

register = keras.saving.register_keras_serializable(package="bl_keras")

TEMPERATURE = 5.0  # the authors' Gumbel-softmax temperature


def with_new_head(model, classes, name=None):
    """A copy of classifier `model` (same architecture and weights) whose dense head is new, for
    `classes` classes (logits)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    head = copy.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ValueError(f"{model.name} does not end in a dense classifier "
                         f"({type(head).__name__})")
    from bl_keras.models.applications import Classifier

    features = head.input
    dense = Classifier(classes, name="predictions", dtype="float32")
    return keras.Model(copy.inputs, dense(features), name=name or f"{model.name}_tuned")


@register
class SpotTuneNetwork(keras.Model):
    """`tuned` (a classifier) with each residual block's frozen twin in `frozen` (the same
    architecture) and an `agent` with 2 logits per block; `call` returns class logits."""

    def __init__(self, frozen, tuned, agent, temperature=TEMPERATURE, global_policy=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.frozen, self.tuned, self.agent = frozen, tuned, agent
        self.temperature = float(temperature)
        self.global_policy = bool(global_policy)
        frozen.trainable = False
        tuned_blocks, frozen_blocks = residual_blocks(tuned), residual_blocks(frozen)
        if not tuned_blocks:
            raise ValueError(f"{tuned.name} has no residual blocks")
        if [type(b) for b in tuned_blocks] != [type(b) for b in frozen_blocks]:
            raise ValueError(f"the frozen network {frozen.name} and the fine-tuned network "
                             f"{tuned.name} have different residual blocks")
        if agent.output_shape[-1] != 2 * len(tuned_blocks):
            raise ValueError(f"the agent has {agent.output_shape[-1]} outputs; {tuned.name} "
                             f"needs 2 per residual block ({2 * len(tuned_blocks)})")
        self.block_paths = [block.path for block in tuned_blocks]
        self._frozen_blocks = frozen_blocks
        # SpotTune-Global: the running share of images that fine-tune each block; evaluation
        # then fine-tunes the blocks above one half for every image.
        self.fine_tune_rate = self.add_weight(shape=(len(tuned_blocks),), initializer="zeros",
                                              trainable=False, aggregation="mean",
                                              name="fine_tune_rate")
        self.built = True

    @property
    def num_blocks(self):
        return len(self.block_paths)

    def choice_logits(self, images, training=None):
        """[batch, K, 2] logits of (frozen, fine-tuned) per block."""
        logits = self.agent(images, training=training)
        return tf.reshape(tf.cast(logits, tf.float32), [-1, self.num_blocks, 2])

    def sample(self, images, seed, training=True):
        """A Gumbel-softmax straight-through sample: [batch, K], 1 = fine-tuned, carrying the
        agent's gradients."""
        return gumbel_softmax(self.choice_logits(images, training), seed, self.temperature)[..., 1]

    def policy(self, images):
        """The deterministic policy of evaluation: the argmax of the agent's logits per block
        (SpotTune-Global: the blocks most images fine-tuned in training, for every image)."""
        if self.global_policy:
            rate = tf.cast(self.fine_tune_rate > 0.5, tf.float32)
            return tf.tile(rate[tf.newaxis], [tf.shape(images)[0], 1])
        logits = self.choice_logits(images, training=False)
        return tf.cast(logits[..., 1] > logits[..., 0], tf.float32)

    def gates(self, policy):
        """{block path: Alternative(its column, the frozen twin)}; a 1-D Python/NumPy policy
        is static (the same for every image)."""
        if isinstance(policy, (list, tuple, np.ndarray)) and np.ndim(policy) == 1:
            columns = [float(u) for u in policy]
        else:
            columns = [policy[:, k] for k in range(self.num_blocks)]
        return {path: gating.Alternative(column, frozen)
                for path, column, frozen in zip(self.block_paths, columns, self._frozen_blocks)}

    def run(self, images, policy, training=None, dynamic=None):
        """Class logits of `images` with `policy` ([batch, K] 0/1: 1 runs the fine-tuned copy);
        `dynamic` as in `bl_keras.layers.gating.running_gates`."""
        with gating.running_gates(self.gates(policy), dynamic=dynamic):
            return self.tuned(images, training=training)

    def call(self, images, training=None):
        return self.run(images, self.policy(images), training=training)

    def get_config(self):
        return {**super().get_config(),
                "frozen": keras.saving.serialize_keras_object(self.frozen),
                "tuned": keras.saving.serialize_keras_object(self.tuned),
                "agent": keras.saving.serialize_keras_object(self.agent),
                "temperature": self.temperature, "global_policy": self.global_policy}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("frozen", "tuned", "agent"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def spottune_network(pretrained, classes, agent=None, image_size=None, global_policy=False,
                     temperature=TEMPERATURE, name=None):
    """SpotTune on classifier `pretrained`: its frozen copy, a fine-tuned copy with a new head
    of `classes`, and `agent` (default: the authors' agent for the input size: the Decathlon
    ResNet-8 from 64 pixels down, ResNet-10 on the halved image above)."""
    from bl_keras.blockdrop.policy import policy_for

    blocks = len(residual_blocks(pretrained))
    if agent is None:
        size = image_size or pretrained.input_shape[1] or 64
        agent = policy_for(blocks, size, "decathlon_resnet8" if size <= 64 else "resnet10",
                           choices=2)
    frozen = keras.models.clone_model(pretrained)
    frozen.set_weights(pretrained.get_weights())
    tuned = with_new_head(pretrained, classes)
    return SpotTuneNetwork(frozen, tuned, agent, temperature=temperature,
                           global_policy=global_policy,
                           name=name or f"spottune_{pretrained.name}")

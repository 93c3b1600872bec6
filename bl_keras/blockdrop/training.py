"""The two training stages of BlockDrop as one loss function for the shared trainer.

* "curriculum": the backbone is frozen (inference mode, gathered execution); at epoch e (from
  0) the policy decides the last e + 1 blocks, the others run. Loss: `rewards.curriculum_pg_loss`.
* "finetune": policy and backbone learn together; the sampled policy's forward pass trains the
  backbone (masked execution, BatchNorm batch statistics). Loss: `rewards.finetune_pg_loss` +
  the sampled policy's cross-entropy.

Both draw the policy from the bounded probabilities and use the thresholded policy's reward as
the baseline; its forward pass runs in inference mode (no gradient flows through a reward). In
evaluation the policy is thresholded (and the curriculum applied in the curriculum stage, as
the authors' test does) and the backbone runs only the kept blocks for each image.
"""

import dataclasses

import tensorflow as tf

from bl_keras.blockdrop import rewards
from bl_keras.blockdrop.network import threshold

STAGES = ("curriculum", "finetune")


@dataclasses.dataclass(frozen=True)
class BlockDropRecipe:
    stage: str = "curriculum"
    gamma: float = 1.0  # the penalty of a wrong prediction (the reward is -gamma)
    bound_alpha: float = 0.8
    entropy_beta: float = 0.1  # curriculum stage only, as in the authors' code
    seed: int = 0

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if not 0.5 <= self.bound_alpha <= 1.0:
            raise ValueError(f"bound_alpha must be in [0.5, 1], got {self.bound_alpha}")


def learned_blocks(step, steps_per_epoch, num_blocks):
    """Blocks the policy decides at `step` in the curriculum: epoch + 1, at most K."""
    epoch = tf.cast(step, tf.int64) // int(steps_per_epoch)
    return tf.minimum(epoch + 1, num_blocks)


def _seed(recipe, step):
    replica = tf.distribute.get_replica_context()
    replica_id = replica.replica_id_in_sync_group if replica is not None else 0
    offset = tf.cast(replica_id, tf.int64) * 1_000_003 + recipe.seed
    return tf.stack([offset, tf.cast(step, tf.int64)])


def _correct(logits, labels):
    return tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)


def blockdrop_loss(network, images, labels, recipe, training, step, steps_per_epoch,
                   batch_size):
    """(per-image loss, logits, extras) for one replica's batch; `extras` are per-image
    "blocks" (blocks run) and "reward" (of the policy the logits come from)."""
    labels = tf.cast(labels, tf.int32)
    k = network.num_blocks
    mask = None
    if recipe.stage == "curriculum":
        # Evaluation at an epoch's end (the step already counts it) uses that epoch's blocks.
        at = step if training else tf.maximum(tf.cast(step, tf.int64) - 1, 0)
        mask = rewards.curriculum_mask(k, learned_blocks(at, steps_per_epoch, k))
    probabilities = tf.cast(network.probabilities(images, training=training), tf.float32)
    policy_map = threshold(probabilities)
    if mask is not None:
        policy_map = rewards.apply_curriculum(policy_map, mask)
    if not training:
        logits = tf.cast(network.run(images, policy_map, training=False), tf.float32)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        extras = {"blocks": tf.reduce_sum(policy_map, axis=-1),
                  "reward": rewards.reward(policy_map, _correct(logits, labels), recipe.gamma)}
        return loss, logits, extras

    bounded = rewards.bound(probabilities, recipe.bound_alpha)
    policy = rewards.sample(bounded, _seed(recipe, step))
    if mask is not None:
        policy = rewards.apply_curriculum(policy, mask)
    logits_map = tf.stop_gradient(network.run(images, policy_map, training=False))
    finetune = recipe.stage == "finetune"
    logits = network.run(images, policy, training=finetune)
    if not finetune:
        logits = tf.stop_gradient(logits)
    logits = tf.cast(logits, tf.float32)
    reward_sample = rewards.reward(policy, _correct(logits, labels), recipe.gamma)
    reward_map = rewards.reward(policy_map, _correct(logits_map, labels), recipe.gamma)
    advantage = reward_sample - reward_map
    if finetune:
        loss = rewards.finetune_pg_loss(bounded, policy, advantage, batch_size)
        loss += tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    else:
        loss = rewards.curriculum_pg_loss(bounded, policy, advantage, mask, recipe.entropy_beta)
    extras = {"blocks": tf.reduce_sum(policy, axis=-1), "reward": reward_sample}
    return loss, logits, extras

"""SpotTune's training as one loss function for the shared trainer, and its baselines.

* "spottune": the agent samples a choice per image and block (Gumbel-softmax, straight-through);
  the network runs it (masked execution: both copies run, the choice mixes them, as in the
  authors' code) and the cross-entropy trains the fine-tuned copies, the stem, the new head and,
  through the straight-through gradients, the agent.
* "global" (SpotTune-Global): the same, plus the paper's regularisers of the share v_l of
  images fine-tuning block l in the batch: lambda_k (sum_l v_l - k)^2 holds the fine-tuned
  blocks near k, lambda_e sum_l H(v_l) (binary entropy) drives each block to one choice for
  all images; evaluation fine-tunes, for every image, the blocks that most images fine-tuned
  in training (a running average kept in the network).
* "finetune": standard fine-tuning of every layer; "feature_extractor": only the new head learns.

Evaluation runs the deterministic policy (argmax of the agent; the authors sample there too),
each image through one copy per block.
"""

import dataclasses

import tensorflow as tf

METHODS = ("spottune", "global", "finetune", "feature_extractor")
RATE_MOMENTUM = 0.99  # of SpotTune-Global's running fine-tune share per block


@dataclasses.dataclass(frozen=True)
class SpotTuneRecipe:
    method: str = "spottune"
    agent_lr_factor: float = 0.1  # the agent's learning rate over the network's (0.01 / 0.1)
    agent_weight_decay: float = 1e-3
    global_blocks: int = 0  # SpotTune-Global: k, the blocks to fine-tune
    global_count_weight: float = 1.0  # lambda_k
    global_entropy_weight: float = 0.1  # lambda_e
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.agent_lr_factor <= 0:
            raise ValueError(f"the agent's learning rate factor must be > 0, got "
                             f"{self.agent_lr_factor}")

    @property
    def uses_agent(self):
        return self.method in ("spottune", "global")


def _seed(recipe, step):
    replica = tf.distribute.get_replica_context()
    replica_id = replica.replica_id_in_sync_group if replica is not None else 0
    offset = tf.cast(replica_id, tf.int64) * 1_000_003 + recipe.seed
    return tf.stack([offset, tf.cast(step, tf.int64)])


def binary_entropy(v):
    v = tf.clip_by_value(v, 1e-6, 1 - 1e-6)
    return -(v * tf.math.log(v) + (1 - v) * tf.math.log(1 - v))


def global_penalty(choice, recipe):
    """SpotTune-Global's regularisers of a batch's [batch, K] choices (one value)."""
    share = tf.reduce_mean(choice, axis=0)  # v_l: the batch's share fine-tuning block l
    count = tf.square(tf.reduce_sum(share) - float(recipe.global_blocks))
    return (recipe.global_count_weight * count
            + recipe.global_entropy_weight * tf.reduce_sum(binary_entropy(share)))


def spottune_loss(network, images, labels, recipe, training, step):
    """(per-image loss, logits, extras) of a `SpotTuneNetwork` batch; extras: per-image
    "fine_tuned" (blocks run by their fine-tuned copy)."""
    labels = tf.cast(labels, tf.int32)
    if training:
        choice = network.sample(images, _seed(recipe, step))
        logits = network.run(images, choice, training=True)
    else:
        choice = network.policy(images)
        logits = network.run(images, choice, training=False)
    logits = tf.cast(logits, tf.float32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    if training and recipe.method == "global":
        # The per-image loss sums to the batch's: spread the batch penalty over its images.
        batch = tf.cast(tf.shape(labels)[0], tf.float32)
        loss += global_penalty(choice, recipe) / batch
        share = tf.reduce_mean(tf.stop_gradient(choice), axis=0)
        network.fine_tune_rate.assign(RATE_MOMENTUM * network.fine_tune_rate
                                      + (1 - RATE_MOMENTUM) * share)
    return loss, logits, {"fine_tuned": tf.reduce_sum(tf.stop_gradient(choice), axis=-1)}

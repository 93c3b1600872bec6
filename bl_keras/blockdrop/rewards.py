"""BlockDrop's reinforcement-learning pieces, as in the authors' code (Tushar-N/blockdrop):

* reward R(u) = 1 - (|u|_0 / K)^2 for a correct prediction, -gamma otherwise;
* self-critical baseline: the reward of the thresholded policy (p >= 0.5); advantage A =
  R(sampled) - R(thresholded);
* bounded probabilities p' = alpha p + (1 - alpha)(1 - p) (alpha = 0.8) before sampling, so
  every block keeps a chance of flipping;
* curriculum: at epoch e (from 0) only the last e + 1 blocks are decided by the policy, the
  others run; the loss covers the decided blocks only;
* losses: curriculum stage -(sum_k mask_k log p'(u_k) A + beta sum_k H(p'_k)) / batch, the
  entropy of the bounded probabilities (beta = 0.1); fine-tuning stage sum_k -log p'(u_k) A per
  image, summed over the batch (not averaged), plus the mean cross-entropy of the sampled
  policy's prediction (`finetune_pg_loss` returns per-image terms: the trainer averages).
"""

import tensorflow as tf


def bound(probabilities, alpha=0.8):
    """p' = alpha p + (1 - alpha)(1 - p)."""
    return alpha * probabilities + (1.0 - alpha) * (1.0 - probabilities)


def reward(policy, correct, gamma):
    """Per image: 1 - (blocks used / K)^2 when `correct`, else -gamma."""
    policy = tf.cast(policy, tf.float32)
    used = tf.reduce_sum(policy, axis=-1) / tf.cast(tf.shape(policy)[-1], tf.float32)
    return tf.where(tf.cast(correct, tf.bool), 1.0 - used ** 2, -float(gamma))


def curriculum_mask(num_blocks, learned):
    """[K] 1.0 for the last `learned` blocks (those the policy decides), 0.0 before them."""
    index = tf.range(num_blocks)
    return tf.cast(index >= num_blocks - tf.cast(learned, tf.int32), tf.float32)


def apply_curriculum(policy, mask):
    """Blocks outside the curriculum's `mask` run: policy where mask, else 1."""
    return mask * tf.cast(policy, tf.float32) + (1.0 - mask)


def sample(probabilities, seed):
    """A 0/1 policy drawn from independent Bernoullis (`seed`: a stateless [2] seed)."""
    draws = tf.random.stateless_uniform(tf.shape(probabilities), seed=seed)
    return tf.cast(draws < probabilities, tf.float32)


def log_likelihood(probabilities, policy):
    """log p(u_k) per block for Bernoulli `probabilities` (clipped away from 0 and 1)."""
    p = tf.clip_by_value(probabilities, 1e-15, 1.0 - 1e-15)
    return policy * tf.math.log(p) + (1.0 - policy) * tf.math.log(1.0 - p)


def entropy(probabilities):
    """-p log p per block, summed over the blocks: the authors' entropy term (the Bernoulli's
    (1 - p) half is not in their code)."""
    p = tf.clip_by_value(probabilities, 1e-15, 1.0 - 1e-15)
    return tf.reduce_sum(-p * tf.math.log(p), axis=-1)


def curriculum_pg_loss(bounded, policy, advantage, mask, beta):
    """Per image: -(sum_k mask_k log p'(u_k)) A - beta H(p'): its batch mean is the authors'
    curriculum loss."""
    log_p = tf.reduce_sum(mask * log_likelihood(bounded, policy), axis=-1)
    return -log_p * tf.stop_gradient(advantage) - beta * entropy(bounded)


def finetune_pg_loss(bounded, policy, advantage, batch_size):
    """Per image: batch_size x (-sum_k log p'(u_k) A): the authors sum this term over the batch
    while averaging the cross-entropy, and a trainer averages per-image losses."""
    log_p = tf.reduce_sum(log_likelihood(bounded, policy), axis=-1)
    return -float(batch_size) * log_p * tf.stop_gradient(advantage)

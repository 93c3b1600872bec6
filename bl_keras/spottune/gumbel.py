"""Gumbel-softmax with the straight-through estimator (Jang et al. 2017), as SpotTune's agent
samples its per-block choices.

    sample = gumbel_softmax(logits, seed, temperature=5.0)   # [..., n] one-hot values
    # forward: the one-hot argmax of (logits + Gumbel noise); backward: the gradients of the
    # soft sample softmax((logits + noise) / temperature)
"""

import tensorflow as tf

EPSILON = 1e-20  # the authors' guard inside both logarithms


def gumbel_noise(shape, seed):
    """-log(-log(U)) for U ~ uniform(0, 1), from a stateless `seed` ([2] int)."""
    uniform = tf.random.stateless_uniform(shape, seed, dtype=tf.float32)
    return -tf.math.log(-tf.math.log(uniform + EPSILON) + EPSILON)


def straight_through(soft):
    """The one-hot argmax of `soft` in the forward pass, `soft`'s gradients in the backward."""
    hard = tf.one_hot(tf.argmax(soft, axis=-1), tf.shape(soft)[-1], dtype=soft.dtype)
    return tf.stop_gradient(hard - soft) + soft


def gumbel_softmax(logits, seed, temperature=5.0, hard=True):
    """A sample of the categorical distributions `logits` ([..., n]); one-hot with
    straight-through gradients if `hard`, else the soft relaxation."""
    logits = tf.cast(logits, tf.float32)
    soft = tf.nn.softmax((logits + gumbel_noise(tf.shape(logits), seed)) / temperature)
    return straight_through(soft) if hard else soft

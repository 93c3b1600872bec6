"""MutualNet's training step (paper Section 4, Figure 2): the sandwich rule over widths and
resolutions, with inplace distillation.

Per step: the full network (largest width, largest resolution) learns from the labels; the
smallest width and `num_random` widths drawn uniformly between, each at a resolution drawn from
`resolutions`, learn from the full network's detached predictions (KL divergence). The losses
are summed, so one backward pass accumulates every sub-network's gradient into one update.

Sub-networks normalise with their own batch statistics but leave the BatchNorm moving
statistics alone: the moving statistics stay the full network's (so evaluating it during
training is meaningful); a sub-network's are computed after training (`calibration`).
"""

import dataclasses

import tensorflow as tf

from bl_keras.layers.width import calibrating


@dataclasses.dataclass(frozen=True)
class SandwichRule:
    min_width: float = 0.25
    max_width: float = 1.0
    num_random: int = 2
    resolutions: tuple = (224, 192, 160, 128)
    distill: bool = True
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.min_width < self.max_width <= 1.0:
            raise ValueError(f"width range must satisfy 0 < min < max <= 1, got "
                             f"[{self.min_width}, {self.max_width}]")
        if self.num_random < 0:
            raise ValueError(f"num_random must be >= 0, got {self.num_random}")
        if not self.resolutions or min(self.resolutions) < 1:
            raise ValueError(f"resolutions must be positive, got {self.resolutions}")

    def sample(self, step):
        """The sub-networks of training step `step`: [(width, resolution)] as scalar tensors,
        the smallest width first. Stateless draws seeded by (seed, step)."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        count = 1 + self.num_random
        random = tf.random.stateless_uniform([self.num_random], seed, self.min_width,
                                             self.max_width)
        widths = tf.concat([[self.min_width], random], axis=0)
        choice = tf.random.stateless_uniform([count], seed + 1, 0, len(self.resolutions),
                                             dtype=tf.int32)
        resolutions = tf.gather(tf.constant(self.resolutions, tf.int32), choice)
        return [(widths[i], resolutions[i]) for i in range(count)]


def distillation_loss(teacher_logits, student_logits):
    """Per-example KL(teacher || student) of the softmax distributions; no gradient reaches the
    teacher."""
    teacher = tf.stop_gradient(tf.nn.softmax(teacher_logits))
    log_teacher = tf.stop_gradient(tf.nn.log_softmax(teacher_logits))
    return tf.reduce_sum(teacher * (log_teacher - tf.nn.log_softmax(student_logits)), axis=-1)


def subnetwork_losses(model, images, labels, full_logits, rule, step):
    """Summed per-example losses of the sandwich rule's sub-networks for one batch.

    `images` are the full network's inputs; each sub-network sees them resized (bilinear) to its
    resolution, as MutualNet resizes one crop for all of them.
    """
    total = tf.zeros_like(full_logits[:, 0])
    for width, resolution in rule.sample(step):
        resized = tf.image.resize(images, tf.stack([resolution, resolution]), method="bilinear")
        with calibrating(0.0):  # batch statistics, moving statistics untouched
            logits = tf.cast(model(tf.cast(resized, images.dtype), width=width, training=True),
                             tf.float32)
        if rule.distill:
            total += distillation_loss(full_logits, logits)
        else:
            total += tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return total

"""Learning-rate schedules as functions of the global step (so a resumed run gets the same rate).

- cosine: linear warmup from 0 to the peak, then cosine decay to 0 at the last step (paper A.1).
- halving: linear warmup, constant, then halved every epoch from a given epoch (speech, B.1).
- step: linear warmup, then the peak times `step_factor` once per boundary passed (after
  `step_epochs` epochs each; no boundaries: constant), as BlockDrop's and SpotTune's scripts.
"""

import math

import keras
import tensorflow as tf


KINDS = ("cosine", "halving", "step")


@keras.saving.register_keras_serializable(package="bl_keras")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak, total_steps, warmup_steps=0, kind="cosine", steps_per_epoch=1,
                 halving_start_epoch=10, step_epochs=(), step_factor=0.1):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.steps_per_epoch = int(steps_per_epoch)
        self.halving_start_epoch = int(halving_start_epoch)
        self.step_epochs = tuple(int(e) for e in step_epochs)
        self.step_factor = float(step_factor)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(self.warmup_steps)
        if self.kind == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = tf.clip_by_value((step - warmup) / span, 0.0, 1.0)
            rate = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "step":
            passed = sum(tf.cast(step >= float(e * self.steps_per_epoch), tf.float32)
                         for e in self.step_epochs) if self.step_epochs else 0.0
            rate = self.peak * tf.pow(self.step_factor, passed)
        else:
            epoch = tf.floor(step / self.steps_per_epoch) + 1.0  # 1-based epoch of this step
            halvings = tf.maximum(epoch - self.halving_start_epoch + 1.0, 0.0)
            rate = self.peak * tf.pow(0.5, halvings)
        if self.warmup_steps:
            rate = tf.where(step < warmup, self.peak * step / warmup, rate)
        return rate

    def get_config(self):
        return dict(peak=self.peak, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                    kind=self.kind, steps_per_epoch=self.steps_per_epoch,
                    halving_start_epoch=self.halving_start_epoch,
                    step_epochs=list(self.step_epochs), step_factor=self.step_factor)

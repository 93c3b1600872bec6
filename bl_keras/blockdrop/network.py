"""`BlockDropNetwork`: a residual backbone and a policy network that picks, per image, which of
the backbone's residual blocks run.

    net = BlockDropNetwork(backbone, policy)          # functional models of the package
    logits = net(images)                              # policy thresholded at 0.5, blocks
                                                      # skipped per image (inference: gathered)
    probs = net.probabilities(images)                 # [batch, K]
    logits = net.run(images, policy, training=True)   # any [batch, K] 0/1 policy

The backbone's blocks, in execution order (`bl_keras.models.residual_blocks`), are the K
decisions; a dropped block passes its input through its shortcut (`bl_keras.layers.gating`).
Which blocks are exposed: every residual block of the backbone, the bL models' big-branch,
little-branch, middle and fusion blocks alike (WORKSPACE_NOTES.md gives the reasons).
"""

import keras
import numpy as np

from bl_keras.layers import gating
from bl_keras.models.residual_blocks import residual_blocks

register = keras.saving.register_keras_serializable(package="bl_keras")


def threshold(probabilities):
    """The deterministic policy: run a block when its probability is at least 0.5."""
    return keras.ops.cast(probabilities >= 0.5, "float32")


@register
class BlockDropNetwork(keras.Model):
    """A backbone classifier with a per-image block policy; `call` returns class scores."""

    def __init__(self, backbone, policy, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.policy = policy
        blocks = residual_blocks(backbone)
        if not blocks:
            raise ValueError(f"{backbone.name} has no residual blocks to gate")
        outputs = policy.output_shape[-1]
        if outputs != len(blocks):
            raise ValueError(f"the policy network has {outputs} outputs but {backbone.name} has "
                             f"{len(blocks)} residual blocks")
        self.block_paths = [block.path for block in blocks]
        self.built = True  # both parts are built functional models

    @property
    def num_blocks(self):
        return len(self.block_paths)

    def gates(self, policy):
        """{block path: the policy's column} for `bl_keras.layers.gating.running_gates`; a
        policy given as a Python/NumPy vector of 0/1 is static (the same for every image)."""
        if isinstance(policy, (list, tuple, np.ndarray)) and np.ndim(policy) == 1:
            return {path: float(u) for path, u in zip(self.block_paths, policy)}
        return {path: policy[:, k] for k, path in enumerate(self.block_paths)}

    def probabilities(self, images, training=None):
        return self.policy(images, training=training)

    def run(self, images, policy, training=None, dynamic=None):
        """The backbone's scores for `images` with `policy` ([batch, K] of 0/1, or one static
        K-vector); `dynamic` as in `running_gates`."""
        with gating.running_gates(self.gates(policy), dynamic=dynamic):
            return self.backbone(images, training=training)

    def call(self, images, training=None):
        policy = threshold(self.probabilities(images, training=False))
        return self.run(images, policy, training=training)

    def get_config(self):
        return {**super().get_config(),
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "policy": keras.saving.serialize_keras_object(self.policy)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "policy"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

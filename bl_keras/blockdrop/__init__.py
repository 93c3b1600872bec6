"""BlockDrop (Wu, Nagarajan et al., CVPR 2018): per-image dynamic inference paths through
residual networks, a policy network choosing which blocks run, trained by reinforcement learning.

    network.BlockDropNetwork   backbone + policy; call(images) runs each image's kept blocks
    policy                     the authors' policy networks (ResNet-8, ResNet-10)
    rewards                    reward, self-critical baseline, bounding, curriculum, losses
    training                   both training stages as one loss for the shared trainer
    cost                       MACs per image for its policy
    evaluate                   top-1, blocks and MACs per image (python -m bl_keras.blockdrop.evaluate)

The gates themselves are an execution option of the package's residual blocks
(`bl_keras.layers.gating`), not a copy of them.
"""

from bl_keras.blockdrop.cost import BlockCosts, block_costs
from bl_keras.blockdrop.network import BlockDropNetwork, threshold
from bl_keras.blockdrop.policy import (cifar_policy, imagenet_policy, policy_for,
                                       start_from_resnet18)

__all__ = ["BlockCosts", "BlockDropNetwork", "block_costs", "cifar_policy", "imagenet_policy",
           "policy_for", "start_from_resnet18", "threshold"]

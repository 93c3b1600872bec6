"""Multiply-accumulates of a BlockDrop network per image, for the policy that image gets.

MACs(u) = policy network + backbone with every block dropped + sum_k u_k c_k, where c_k is
what running block k adds over its shortcut alone. Each term is counted on the traced graph
(`bl_keras.profiling`, the paper's rule) with a static policy, so shortcuts that project or
downsample are counted where they run (always). Units: MACs (multiply-accumulates); the
BlockDrop paper's FLOPs are 2 x MACs.
"""

import dataclasses

import numpy as np

from bl_keras import profiling


@dataclasses.dataclass(frozen=True)
class BlockCosts:
    policy: int  # the policy network
    shortcuts: int  # the backbone with every block dropped (stem, shortcuts, head)
    blocks: tuple  # c_k per block, in execution order

    @property
    def full(self):
        """The backbone with every block (the network BlockDrop starts from)."""
        return self.shortcuts + sum(self.blocks)

    def per_image(self, policy):
        """MACs of each image's pass ([batch] from a [batch, K] 0/1 policy), the policy
        network included."""
        policy = np.asarray(policy, np.float64).reshape(-1, len(self.blocks))
        return self.policy + self.shortcuts + policy @ np.asarray(self.blocks, np.float64)


def _backbone_macs(network, policy, image_shape):
    class Gated:  # profiling traces model(x, training=False)
        def __call__(self, images, training=False):
            return network.run(images, policy, training=training)

    graph = profiling.inference_graph(Gated(), image_shape)
    return sum(profiling.op_macs(op) for op in profiling.graph_ops(graph))


def block_costs(network, image_shape):
    """The `BlockCosts` of a `BlockDropNetwork` at `image_shape` (H, W, C): K + 2 traces."""
    image_shape = tuple(image_shape)
    k = network.num_blocks
    none = _backbone_macs(network, np.zeros(k), image_shape)
    blocks = []
    for index in range(k):
        only = np.zeros(k)
        only[index] = 1.0
        blocks.append(_backbone_macs(network, only, image_shape) - none)
    return BlockCosts(policy=profiling.count_macs(network.policy, image_shape), shortcuts=none,
                      blocks=tuple(blocks))

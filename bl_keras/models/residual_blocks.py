"""The residual blocks of a model, in the order its forward pass runs them.

BlockDrop-style methods decide per residual block whether it runs; they need the blocks in
execution order: the K = 15 blocks of a CIFAR ResNet-32, 54 of a ResNet-110. In a bL-module the
order is that of its `call`: big branch, little branch, middle branch, fusion block.
"""

from bl_keras.layers.block_types import BLOCKS
from bl_keras.layers.branches import LittleBranch, ResidualStage
from bl_keras.layers.module import BigLittleModule

_BLOCK_TYPES = tuple(BLOCKS.values())


def _blocks_in(layer):
    if isinstance(layer, _BLOCK_TYPES):
        return [layer]
    if isinstance(layer, ResidualStage):
        return list(layer.blocks)
    if isinstance(layer, LittleBranch):
        return _blocks_in(layer.stage)
    if isinstance(layer, BigLittleModule):
        parts = [layer.big, layer.little, layer.middle, layer.fusion]
        return [block for part in parts if part is not None for block in _blocks_in(part)]
    return []


def residual_blocks(model):
    """The residual block layers (`BasicBlock`, `Bottleneck`, `ShuffleUnit`) of `model`, in
    execution order (a functional model's layers are topologically sorted)."""
    return [block for layer in model.layers for block in _blocks_in(layer)]

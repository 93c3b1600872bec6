"""Every block a stage, branch or module can be built from, by name.

`blocks.BLOCKS` holds the residual blocks; this adds the ShuffleNetV2 unit, so `ResidualStage`,
`BigBranch`, `LittleBranch` and `BigLittleModule` take `block="shuffle"` like any other block.
"""

from bl_keras.layers.blocks import BLOCKS as RESIDUAL_BLOCKS
from bl_keras.layers.shuffle import ShuffleUnit

BLOCKS = {**RESIDUAL_BLOCKS, "shuffle": ShuffleUnit}


def get_block(name):
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"Unknown block {name!r}; valid: {sorted(BLOCKS)}") from None

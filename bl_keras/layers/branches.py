"""Stacks of residual blocks: a plain stage, the Big branch and the Little branch.

- `ResidualStage`: `num_blocks` blocks, the first one strided (a plain ResNet stage).
- `BigBranch`: the deep, wide path. Its first block halves the resolution, so all its blocks run
  at half the module's input resolution; its last block has no final ReLU (the merge adds one).
- `LittleBranch`: the thin, shallow path at full resolution: blocks at `filters / alpha` channels,
  then a 1x1 conv + BN back to `filters` so it can be added to the big branch (no such conv where
  the branch is concatenated or not merged at all).
"""

import keras

from bl_keras.layers.block_types import get_block
from bl_keras.layers.conv import ConvBN
from bl_keras.layers.norm import norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")


def thin_block_config(block_config, alpha):
    """The block options of a branch `alpha` times thinner, as in the released bL-ResNeXt.

    Grouped blocks keep their per-group width and lose groups (cardinality / alpha, base width
    x alpha); plain ResNet blocks (cardinality 1) just get thinner through `filters`.
    """
    config = dict(block_config)
    cardinality = config.get("cardinality", 1)
    if cardinality > 1:
        if cardinality % alpha:
            raise ValueError(f"cardinality {cardinality} is not divisible by alpha={alpha}")
        config["cardinality"] = cardinality // alpha
        config["base_width"] = config.get("base_width", 64) * alpha
    return config


@register
class ResidualStage(keras.layers.Layer):
    """`num_blocks` residual blocks; the first has `strides`, the last `last_relu`.

    Args:
        filters: output channels of every block.
        num_blocks: number of blocks (>= 1).
        strides: stride of the first block.
        last_relu: whether the last block ends with a ReLU.
        block: block type name (see `bl_keras.layers.block_types.BLOCKS`).
        block_config: extra block options (cardinality, base_width, se_reduction, shortcut, ...).
        block_overrides: optional list of `num_blocks` dicts of per-block options on top of
            `block_config` and of the stage's own `strides` / `last_relu` (the speech stages mix
            2-conv and 1-conv blocks; a branch at a quarter resolution strides two blocks).
        norm: BatchNorm options.
    """

    def __init__(
        self,
        filters,
        num_blocks,
        strides=1,
        last_relu=True,
        block="bottleneck",
        block_config=None,
        block_overrides=None,
        norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if block_overrides is not None and len(block_overrides) != int(num_blocks):
            raise ValueError(f"block_overrides needs {num_blocks} entries, got "
                             f"{len(block_overrides)}")
        if int(num_blocks) < 1:
            raise ValueError(f"{type(self).__name__} needs num_blocks >= 1, got {num_blocks}")
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.strides = strides
        self.last_relu = bool(last_relu)
        self.block = block
        self.block_config = dict(block_config or {})
        self.block_overrides = [dict(o) for o in block_overrides] if block_overrides else None
        self.norm = norm_config(norm)
        block_cls = get_block(block)
        # One attribute per block, not a list: TF checkpoints (tf.train.Checkpoint) follow
        # attributes but not Keras' tracked lists.
        for i in range(self.num_blocks):
            options = dict(
                strides=strides if i == 0 else 1,
                last_relu=self.last_relu if i == self.num_blocks - 1 else True,
                **self.block_config,
            )
            options.update(self.block_overrides[i] if self.block_overrides else {})
            setattr(self, f"block{i}", block_cls(
                self.filters, norm=self.norm, name=f"block{i}", dtype=self.dtype_policy, **options
            ))

    @property
    def blocks(self):
        return [getattr(self, f"block{i}") for i in range(self.num_blocks)]

    def build(self, input_shape):
        shape = input_shape
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_blocks=self.num_blocks,
            strides=self.strides,
            last_relu=self.last_relu,
            block=self.block,
            block_config=self.block_config,
            block_overrides=self.block_overrides,
            norm=self.norm,
        )
        return config


@register
class BigBranch(ResidualStage):
    """The Big-Branch: a residual stage whose first block downsamples (stride 2) and whose last
    block leaves the ReLU to the merge. The merge upsamples its output to the little branch's size.
    """

    def __init__(self, filters, num_blocks, strides=2, last_relu=False, **kwargs):
        super().__init__(filters, num_blocks, strides=strides, last_relu=last_relu, **kwargs)


@register
class LittleBranch(keras.layers.Layer):
    """The Little-Branch: `num_blocks` blocks at `filters // alpha` channels and full resolution,
    then 1x1 conv + BN to `filters` channels (no ReLU: the merge applies it after the addition).

    `block_config` is the big branch's; the thin version is derived with `thin_block_config`.
    `strides` is the stride of the first block; `expand=False` leaves out the 1x1 conv, so the
    branch ends at `filters // alpha` channels (concatenation merge, or no merge).
    """

    def __init__(
        self,
        filters,
        num_blocks,
        alpha=2,
        strides=1,
        block="bottleneck",
        block_config=None,
        block_overrides=None,
        expand=True,
        norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.alpha = int(alpha)
        self.expand_channels = bool(expand)
        self.strides = strides
        self.block = block
        self.block_config = dict(block_config or {})
        self.block_overrides = [dict(o) for o in block_overrides] if block_overrides else None
        self.norm = norm_config(norm)
        if self.alpha < 1 or self.filters % self.alpha:
            raise ValueError(f"alpha={alpha} must be >= 1 and divide filters={filters}")
        self.stage = ResidualStage(
            self.filters // self.alpha,
            self.num_blocks,
            strides=strides,
            block=block,
            block_config=thin_block_config(self.block_config, self.alpha),
            block_overrides=self.block_overrides,
            norm=self.norm,
            name="stage",
            dtype=self.dtype_policy,
        )
        self.expand = ConvBN(
            self.filters, 1, activation=None, name="expand", norm=self.norm, dtype=self.dtype_policy
        ) if self.expand_channels else None

    def build(self, input_shape):
        self.stage.build(input_shape)
        if self.expand is not None:
            self.expand.build(self.stage.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.stage(inputs, training=training)
        return x if self.expand is None else self.expand(x, training=training)

    def compute_output_shape(self, input_shape):
        shape = self.stage.compute_output_shape(input_shape)
        return shape if self.expand is None else self.expand.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_blocks=self.num_blocks,
            alpha=self.alpha,
            strides=self.strides,
            block=self.block,
            block_config=self.block_config,
            block_overrides=self.block_overrides,
            expand=self.expand_channels,
            norm=self.norm,
        )
        return config

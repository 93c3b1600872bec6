"""The Big-Little module: big and little branches, merged, then one fusion block.

Released structure (bL-ResNet, DESIGN section 3), for a module of depth L:
    big    = L - 1 blocks at `filters` channels, the first with stride 2 (half resolution);
    little = max(1, L // beta - 1) blocks at `filters / alpha` channels, full resolution,
             then 1x1 conv + BN to `filters`;
    merge  = upsample big to the little's size, add, ReLU;
    fusion = one block (filters -> filters) with the module's stride.
"""

import keras

from bl_keras.layers.blocks import get_block
from bl_keras.layers.branches import BigBranch, LittleBranch
from bl_keras.layers.merge import MergeAdd, MergeConcat
from bl_keras.layers.norm import norm_config

register = keras.saving.register_keras_serializable(package="bl_keras")


def little_depth(num_blocks, beta):
    """Blocks in the little branch of a module of depth `num_blocks` (released rule)."""
    return max(1, num_blocks // beta - 1)


@register
class BigLittleModule(keras.layers.Layer):
    """A bL-module of depth `num_blocks` (the big branch has num_blocks - 1 blocks, the fusion 1).

    Args:
        filters: output channels.
        num_blocks: depth L of the module.
        alpha: width ratio big / little.
        beta: depth ratio big / little.
        strides: stride of the fusion block (the module's output stride).
        block, block_config: residual block type and options (shared by all branches; the little
            branch derives its thin version).
        upsample: "nearest" (released code) or "bilinear" (paper text).
        merge: "add" (paper) or "concat" (Table 7 ablation).
        norm: BatchNorm options.
    """

    def __init__(
        self,
        filters,
        num_blocks,
        alpha=2,
        beta=4,
        strides=1,
        block="bottleneck",
        block_config=None,
        upsample="nearest",
        merge="add",
        norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_blocks) < 2:
            raise ValueError(f"BigLittleModule needs num_blocks >= 2, got {num_blocks}")
        if merge not in ("add", "concat"):
            raise ValueError(f"merge must be 'add' or 'concat', got {merge!r}")
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.alpha = int(alpha)
        self.beta = int(beta)
        self.strides = strides
        self.block = block
        self.block_config = dict(block_config or {})
        self.upsample = upsample
        self.merge = merge
        self.norm = norm_config(norm)

        common = dict(block=block, block_config=self.block_config, norm=self.norm,
                      dtype=self.dtype_policy)
        # The released code keeps the final ReLU of a one-block big branch (its `_make_layer`
        # ignores `last_relu` when it builds a single block); deeper big branches drop it.
        self.big = BigBranch(self.filters, self.num_blocks - 1, last_relu=self.num_blocks == 2,
                             name="big", **common)
        self.little = LittleBranch(
            self.filters, little_depth(self.num_blocks, self.beta), alpha=self.alpha,
            name="little", **common,
        )
        if merge == "add":
            self.merge_layer = MergeAdd(upsample=upsample, name="merge", dtype=self.dtype_policy)
        else:
            self.merge_layer = MergeConcat(
                self.filters, upsample=upsample, norm=self.norm, name="merge",
                dtype=self.dtype_policy,
            )
        self.fusion = get_block(block)(
            self.filters, strides=strides, norm=self.norm, name="fusion", dtype=self.dtype_policy,
            **self.block_config,
        )

    def build(self, input_shape):
        self.big.build(input_shape)
        self.little.build(input_shape)
        shapes = [self.big.compute_output_shape(input_shape),
                  self.little.compute_output_shape(input_shape)]
        self.merge_layer.build(shapes)
        self.fusion.build(self.merge_layer.compute_output_shape(shapes))

    def call(self, inputs, training=None):
        big = self.big(inputs, training=training)
        little = self.little(inputs, training=training)
        x = self.merge_layer([big, little], training=training)
        return self.fusion(x, training=training)

    def compute_output_shape(self, input_shape):
        shapes = [self.big.compute_output_shape(input_shape),
                  self.little.compute_output_shape(input_shape)]
        return self.fusion.compute_output_shape(self.merge_layer.compute_output_shape(shapes))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_blocks=self.num_blocks,
            alpha=self.alpha,
            beta=self.beta,
            strides=self.strides,
            block=self.block,
            block_config=self.block_config,
            upsample=self.upsample,
            merge=self.merge,
            norm=self.norm,
        )
        return config

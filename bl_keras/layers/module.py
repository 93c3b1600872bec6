"""The Big-Little module: big and little branches, merged, then one fusion block.

Released structure (the authors' bL-ResNet code), for a module of depth L:
    big    = L - 1 blocks at `filters` channels, the first with stride 2 (half resolution);
    little = max(1, L // beta - 1) blocks at `filters / alpha` channels, full resolution,
             then 1x1 conv + BN to `filters`;
    merge  = upsample big to the little's size, add, ReLU;
    fusion = one block (filters -> filters) with the module's stride.

The paper's other designs are configurations of the same layer (Appendix A.4, A.5):
    merge="concat"  the big branch has `filters - filters / alpha` channels and the little branch
                    keeps its `filters / alpha` (no 1x1 conv); their channels are stacked.
    merge=None      no merge here (fewer merges, Table 8): the big branch takes all L blocks, the
                    little branch ends without its 1x1 conv, and the layer returns [big, little]
                    for the next module, which then takes that list as its input.
    branches=3      a middle branch (the little branch's width and depth) at half resolution; the
                    big branch's first two blocks stride, so it works at a quarter (Table 7, K=3).
                    The middle branch is upsampled before its 1x1 conv + BN: both are linear, so
                    the order changes no output, only the cost; merging "at the highest
                    resolution and number of feature maps" this way gives the paper's FLOPs.
    little_strides  a stride at the start of the little branch (ShuffleNetV2 stages open with a
                    stride-2 unit); the big branch stays at half the little branch's resolution
                    by average-pooling its input by the same factor first.
"""

import keras

from bl_keras.layers.block_types import get_block
from bl_keras.layers.branches import BigBranch, LittleBranch
from bl_keras.layers.conv import ConvBN
from bl_keras.layers.merge import MergeAdd
from bl_keras.layers.norm import norm_config
from bl_keras.layers.resize import resize_to
from bl_keras.layers.stack import MergeStack

register = keras.saving.register_keras_serializable(package="bl_keras")

MERGES = ("add", "concat", None)


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
        block, block_config: block type and options (shared by all branches; the little
            branches derive their thin version). `fusion_config` adds options for the fusion
            block only.
        upsample: "nearest" (released code) or "bilinear" (paper text).
        merge: "add" (paper), "concat" (Table 7) or None (no merge, Table 8); see the module doc.
        branches: 2, or 3 (Table 7's K=3).
        big_strides: stride of the big branch's first block when the input is one tensor
            (default 2, or (2, 2) for the first two blocks with 3 branches); when the input is
            [big, little] from a module that did not merge, the stride that module passes on.
        little_strides: stride of the little branch's first block (see the module doc); with a
            [big, little] input, the stride the previous module passes on.
        norm: BatchNorm options.

    Called with `return_merged=True`, the layer returns (output, merged map): the merged map is
    the module's feature map at its input resolution (detection backbones tap it).
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
        branches=2,
        big_strides=None,
        little_strides=1,
        fusion_config=None,
        norm=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_blocks) < 2:
            raise ValueError(f"BigLittleModule needs num_blocks >= 2, got {num_blocks}")
        if merge not in MERGES:
            raise ValueError(f"merge must be 'add', 'concat' or None, got {merge!r}")
        if int(branches) not in (2, 3):
            raise ValueError(f"branches must be 2 or 3, got {branches!r}")
        if int(branches) == 3 and merge != "add":
            raise ValueError("three branches are defined for merge='add' only (paper Table 7)")
        if int(little_strides) not in (1, 2):
            raise ValueError(f"little_strides must be 1 or 2, got {little_strides!r}")
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.alpha = int(alpha)
        self.beta = int(beta)
        self.strides = strides
        self.block = block
        self.block_config = dict(block_config or {})
        self.upsample = upsample
        self.merge = merge
        self.branches = int(branches)
        if big_strides is None:
            big_strides = (2,) * (self.branches - 1)
        self.big_strides = (int(big_strides),) if isinstance(big_strides, int) else tuple(
            int(s) for s in big_strides)
        self.little_strides = int(little_strides)
        self.fusion_config = dict(fusion_config or {})
        self.norm = norm_config(norm)

        common = dict(block=block, block_config=self.block_config, norm=self.norm,
                      dtype=self.dtype_policy)
        thin = dict(alpha=self.alpha, expand=merge == "add", **common)
        n_little = little_depth(self.num_blocks, self.beta)
        # Without a merge the fusion block's place goes to the big branch.
        n_big = self.num_blocks if merge is None else self.num_blocks - 1
        if len(self.big_strides) > n_big:
            raise ValueError(f"big_strides {self.big_strides} stride more blocks than the "
                             f"big branch's {n_big}")
        strided = None
        if len(self.big_strides) > 1:
            strided = [{"strides": s} for s in self.big_strides]
            strided += [{}] * (n_big - len(strided))
        big_filters = self.filters - self.filters // self.alpha if merge == "concat" else (
            self.filters)
        # The released code keeps the final ReLU of a one-block big branch (its `_make_layer`
        # ignores `last_relu` when it builds a single block); deeper big branches drop it, since
        # the addition is followed by one. Concatenated or unmerged branches keep it.
        self.big = BigBranch(
            big_filters, n_big, strides=self.big_strides[0],
            last_relu=merge != "add" or n_big == 1,
            block_overrides=strided,
            name="big", **common,
        )
        self.middle = self.middle_expand = None
        if self.branches == 3:
            self.middle = LittleBranch(self.filters, n_little, strides=2, name="middle",
                                       **{**thin, "expand": False})
            self.middle_expand = ConvBN(self.filters, 1, activation=None, name="middle_expand",
                                        norm=self.norm, dtype=self.dtype_policy)
        self.little = LittleBranch(self.filters, n_little, strides=self.little_strides,
                                   name="little", **thin)
        # Made in `build`: only a single input with a strided little branch needs them.
        self.big_pool_pad = self.big_pool = None
        self.merge_layer = self.fusion = None
        if merge is not None:
            merge_cls = MergeAdd if merge == "add" else MergeStack
            self.merge_layer = merge_cls(upsample=upsample, name="merge", dtype=self.dtype_policy)
            self.fusion = get_block(block)(
                self.filters, strides=strides, norm=self.norm, name="fusion",
                dtype=self.dtype_policy, **{**self.block_config, **self.fusion_config},
            )

    @staticmethod
    def _split(inputs):
        """(big input, little input, whether the branches arrive apart), for tensors or shapes."""
        apart = isinstance(inputs, (list, tuple)) and bool(inputs) and not isinstance(
            inputs[0], (int, type(None)))
        if not apart:
            return inputs, inputs, False
        if len(inputs) != 2:
            raise ValueError("BigLittleModule takes one tensor or [big, little]")
        return inputs[0], inputs[1], True

    def _branch_shapes(self, input_shape):
        big_in, little_in, apart = self._split(input_shape)
        if apart and self.branches == 3:
            raise ValueError("a three-branch module takes one input tensor")
        if self.little_strides > 1 and not apart:
            big_in = tuple(big_in[:1]) + tuple(
                None if n is None else (n - 1) // 2 + 1 for n in big_in[1:3]) + tuple(big_in[3:])
        shapes = [(self.big, big_in)]
        if self.middle is not None:
            shapes.append((self.middle, little_in))
        shapes.append((self.little, little_in))
        return shapes, apart

    def build(self, input_shape):
        shapes, apart = self._branch_shapes(input_shape)
        if self.little_strides > 1 and not apart:
            # The released shortcut pooling's window: 3x3, stride 2, padded zeros counted.
            self.big_pool_pad = keras.layers.ZeroPadding2D(1, name="big_pool_pad",
                                                           dtype=self.dtype_policy)
            self.big_pool = keras.layers.AveragePooling2D(3, 2, name="big_pool",
                                                          dtype=self.dtype_policy)
            big_in = self._split(input_shape)[0]
            self.big_pool_pad.build(big_in)
            self.big_pool.build(self.big_pool_pad.compute_output_shape(big_in))
        outputs = []
        for branch, shape in shapes:
            branch.build(shape)
            outputs.append(branch.compute_output_shape(shape))
        if self.middle_expand is not None:
            self.middle_expand.build(outputs[-1][:-1] + (outputs[1][-1],))
            outputs[1] = self.middle_expand.compute_output_shape(outputs[-1])
        if self.merge_layer is not None:
            self.merge_layer.build(outputs)
            self.fusion.build(self.merge_layer.compute_output_shape(outputs))

    def call(self, inputs, training=None, return_merged=False):
        big_in, little_in, apart = self._split(inputs)
        if self.big_pool is not None:
            big_in = self.big_pool(self.big_pool_pad(big_in))
        big = self.big(big_in, training=training)
        little = self.little(little_in, training=training)
        if self.merge_layer is None:
            if return_merged:
                raise ValueError(f"{self.name} does not merge (merge=None): no merged map")
            return [big, little]
        branches = [big, little]
        if self.middle is not None:
            middle = self.middle(little_in, training=training)
            middle = resize_to(middle, keras.ops.shape(little), (1, 2), self.upsample)
            branches.insert(1, self.middle_expand(middle, training=training))
        merged = self.merge_layer(branches, training=training)
        output = self.fusion(merged, training=training)
        return (output, merged) if return_merged else output

    def _output_shapes(self, input_shape):
        shapes, _ = self._branch_shapes(input_shape)
        outputs = [branch.compute_output_shape(shape) for branch, shape in shapes]
        if self.middle_expand is not None:
            outputs[1] = self.middle_expand.compute_output_shape(outputs[-1])
        if self.merge_layer is None:
            return [outputs[0], outputs[-1]], None
        merged = self.merge_layer.compute_output_shape(outputs)
        return self.fusion.compute_output_shape(merged), merged

    def compute_output_shape(self, input_shape):
        return self._output_shapes(input_shape)[0]

    def compute_output_spec(self, inputs, training=None, return_merged=False):
        shapes = keras.tree.map_structure(lambda t: tuple(t.shape), inputs)
        if isinstance(shapes, list):
            shapes = [tuple(s) for s in shapes]
        output, merged = self._output_shapes(shapes)
        if self.merge_layer is None:
            if return_merged:
                raise ValueError(f"{self.name} does not merge (merge=None): no merged map")
            return [keras.KerasTensor(s, dtype=self.compute_dtype) for s in output]
        output = keras.KerasTensor(output, dtype=self.compute_dtype)
        if return_merged:
            return output, keras.KerasTensor(merged, dtype=self.compute_dtype)
        return output

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
            branches=self.branches,
            big_strides=self.big_strides,
            little_strides=self.little_strides,
            fusion_config=self.fusion_config,
            norm=self.norm,
        )
        return config

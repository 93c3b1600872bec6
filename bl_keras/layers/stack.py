"""The concatenation merge of the paper's Table 7: align the branches, stack their channels.

Unlike `MergeConcat` (concatenate, then 1x1 conv + BN + ReLU to a chosen width, as the speech
models merge), no convolution follows: the branches are built so their channels already add up to
the module's width (big branch `filters - filters / alpha`, little branch `filters / alpha`), which
is what makes this merge cheaper than addition (paper, Appendix A.4).
"""

import keras
from keras import ops

# `_Merge` is the resize / crop alignment every merge shares.
from bl_keras.layers.merge import _Merge

register = keras.saving.register_keras_serializable(package="bl_keras")


@register
class MergeStack(_Merge):
    """Align the branches (resized to the last one's size) and concatenate their channels."""

    def call(self, inputs, training=None):
        return ops.concatenate(self.align(inputs), axis=-1)

    def compute_output_shape(self, input_shapes):
        channels = [s[-1] for s in input_shapes]
        total = None if None in channels else sum(channels)
        return self._aligned_shape(input_shapes)[:-1] + (total,)

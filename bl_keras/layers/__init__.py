"""Big-Little Net layers, all registered for `.keras` serialization under package "bl_keras"."""

from bl_keras.layers.blocks import BasicBlock, Bottleneck, SqueezeExcite, ZeroPadShortcut
from bl_keras.layers.branches import BigBranch, LittleBranch, ResidualStage
from bl_keras.layers.conv import ConvBN
from bl_keras.layers.inference import (cache_weights_for_inference, fold_for_inference,
                                       folded_inference, unfold)
from bl_keras.layers.merge import MergeAdd, MergeConcat
from bl_keras.layers.mobilenet import DepthwiseSeparable, InvertedResidual
from bl_keras.layers.module import BigLittleModule
from bl_keras.layers.shuffle import ChannelShuffle, ChannelSplit, ShuffleUnit
from bl_keras.layers.stack import MergeStack
from bl_keras.layers.stem import BigLittleStem, ResNetStem

__all__ = [
    "BasicBlock",
    "BigBranch",
    "BigLittleModule",
    "BigLittleStem",
    "Bottleneck",
    "ChannelShuffle",
    "ChannelSplit",
    "ConvBN",
    "DepthwiseSeparable",
    "InvertedResidual",
    "LittleBranch",
    "MergeAdd",
    "MergeConcat",
    "MergeStack",
    "ResNetStem",
    "ResidualStage",
    "ShuffleUnit",
    "SqueezeExcite",
    "ZeroPadShortcut",
    "cache_weights_for_inference",
    "fold_for_inference",
    "folded_inference",
    "unfold",
]

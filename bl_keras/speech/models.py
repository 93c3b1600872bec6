"""Acoustic models of the paper's speech experiments (Appendix B, Table 11): ResNet-22 and its
bL versions, built from the same Big/Little/Merge layers as the image models.

Input: (batch, 64 log-mel bins, T frames, 3) with T = 49 for one centre-frame prediction; the
time axis is never padded (each 3x3 convolution shortens it by 2) and is never strided, so a
longer input yields one prediction per extra frame. Output: (batch, T - 48, num_states) logits.

Stages (T for a 49-frame input):
    stem        5x5 conv 64, stride 2 in frequency              64x49 -> 32x45
    ResNet-22:  (3x3, 64) x3 blocks; (3x3, 128, s2) x3; (3x3, 256, s2) x3; (3x3, 512, s2) x2
    bL:         stages 1-3 are bL-modules of 5 convolutions (blocks of 2, 2, 1 convs) in the big
                branch, followed by a transition block (one 3x3 conv, stride 2 in frequency,
                same channels); stage 4 is a bL-module of 4 convolutions (blocks of 2, 2).
                Little branches: beta=1 as deep as the big one; beta=2 blocks of 2, 1 convs;
                beta=3 one block of 2 convs; stage 4's little branch is one 2-conv block when
                beta > 1; (alpha, beta) = (2, 3) does not branch in stage 4.
    head        (4x1, 512) conv, then (1x1, num_states) conv
"""

import keras

from bl_keras.layers import BigBranch, ConvBN, LittleBranch, MergeAdd, MergeConcat, ResidualStage
from bl_keras.layers.norm import norm_config
from bl_keras.models.registry import register

# Speech input: 64 log-mel bins x 49 frames x 3 (features, deltas, delta-deltas); no ImageNet
# normalisation.
_SPEECH = dict(input_shape=(64, 49, 3), mean=(), std=())

FREQ_PADDED = ("symmetric", "valid")  # pad frequency, never time
BLOCK = {"padding": FREQ_PADDED}
CHANNELS = (64, 128, 256, 512)
FREQ_STRIDE = (2, 1)


def _stage(filters, convs, strides, name, norm, stage_cls=ResidualStage, **kwargs):
    """A stack of basic blocks with `convs[i]` convolutions in block i."""
    return stage_cls(filters, len(convs), strides=strides, block="basic", block_config=BLOCK,
                     block_overrides=[{"num_convs": c} for c in convs], norm=norm, name=name,
                     **kwargs)


def little_convs(big_convs, beta):
    """Convolutions per block of the little branch (paper B.2: depth L / beta)."""
    if beta == 1:
        return list(big_convs)
    if len(big_convs) == 2:  # the last stage: one 2-conv block
        return [2]
    return {2: [2, 1], 3: [2]}.get(beta) or [2]


def _inputs(input_shape):
    return keras.Input(shape=input_shape or (64, None, 3), name="features")


def _head(x, num_states, norm, head_channels=512):
    x = ConvBN(head_channels, (4, 1), padding="valid", name="head", norm=norm)(x)
    x = keras.layers.Conv2D(num_states, 1, name="classifier")(x)
    # (batch, 1, T', states) -> (batch, T', states): one prediction per frame.
    return keras.layers.Reshape((-1, num_states), name="frames")(x)


def _branch_module(x, filters, big_convs, alpha, beta, merge, norm, index):
    big = _stage(filters, big_convs, FREQ_STRIDE, f"layer{index}_big", norm, last_relu=False,
                 stage_cls=BigBranch)(x)
    little = _stage(filters, little_convs(big_convs, beta), 1, f"layer{index}_little", norm,
                    stage_cls=LittleBranch, alpha=alpha)(x)
    align = dict(upsample="bilinear", resize_axes=(1,), crop_axes=(2,))
    if merge == "add":
        return MergeAdd(name=f"layer{index}_merge", **align)([big, little])
    return MergeConcat(filters, norm=norm, name=f"layer{index}_merge", **align)([big, little])


def _widths(widths, head_channels):
    widths = tuple(widths or CHANNELS)
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths needs 4 positive channel counts, got {widths}")
    return widths, head_channels or widths[3]


@register(name="speech.resnet22", description="ResNet-22 acoustic model",
          options=("widths", "head_channels"), **_SPEECH)
def resnet22(num_states=32000, input_shape=None, widths=None, head_channels=None, norm=None,
             name="resnet22"):
    """The ResNet-22 baseline acoustic model.

    `widths` (default 64, 128, 256, 512) and `head_channels` (default widths[3]) shrink the
    model for small data; the paper's model uses the defaults.
    """
    norm = norm_config(norm)
    widths, head_channels = _widths(widths, head_channels)
    inputs = _inputs(input_shape)
    x = ConvBN(widths[0], 5, FREQ_STRIDE, padding=FREQ_PADDED, name="stem", norm=norm)(inputs)
    for i, (filters, blocks) in enumerate(zip(widths, (3, 3, 3, 2))):
        x = _stage(filters, [2] * blocks, 1 if i == 0 else FREQ_STRIDE, f"layer{i + 1}",
                   norm)(x)
    return keras.Model(inputs, _head(x, num_states, norm, head_channels), name=name)


@register(name="speech.bl_resnet22", description="bL-ResNet-22 acoustic model", big_little=True,
          options=("alpha", "beta", "merge", "widths", "head_channels"), **_SPEECH)
def bl_resnet22(alpha=4, beta=1, merge="add", num_states=32000, input_shape=None, widths=None,
                head_channels=None, norm=None, name=None):
    """bL-ResNet-22 (alpha, beta) of Table 11; merge "add" (paper) or "concat" (Table 3).
    `widths` and `head_channels` as in `resnet22`."""
    if merge not in ("add", "concat"):
        raise ValueError(f"merge must be 'add' or 'concat', got {merge!r}")
    if beta not in (1, 2, 3):
        raise ValueError(f"beta must be 1, 2 or 3 (Table 11), got {beta}")
    norm = norm_config(norm)
    widths, head_channels = _widths(widths, head_channels)
    inputs = _inputs(input_shape)
    x = ConvBN(widths[0], 5, FREQ_STRIDE, padding=FREQ_PADDED, name="stem", norm=norm)(inputs)
    for i, filters in enumerate(widths[:3]):
        x = _branch_module(x, filters, [2, 2, 1], alpha, beta, merge, norm, i + 1)
        x = _stage(filters, [1], FREQ_STRIDE, f"transition{i + 1}", norm)(x)
    if (alpha, beta) == (2, 3):  # no branching in the last stage (paper B.2)
        x = _stage(widths[3], [2, 2], 1, "layer4", norm)(x)
    else:
        x = _branch_module(x, widths[3], [2, 2], alpha, beta, merge, norm, 4)
    suffix = "" if merge == "add" else "_concat"
    return keras.Model(inputs, _head(x, num_states, norm, head_channels),
                       name=name or f"bl_resnet22_a{alpha}_b{beta}{suffix}")


def _pyramid_module(x, filters, widths, convs, norm, index):
    """Branch k runs at 1/2**k of the frequency resolution with widths[k] channels; every branch
    is brought to `filters` channels (1x1 conv + BN) and full resolution, then added."""
    branches = []
    for k, width in reversed(list(enumerate(widths))):
        strides = (2 ** k, 1)
        name = f"layer{index}_branch{k}"
        if width == filters:
            branch = _stage(filters, convs, strides, name, norm, stage_cls=BigBranch)(x)
        elif filters % width == 0:
            branch = _stage(filters, convs, strides, name, norm, stage_cls=LittleBranch,
                            alpha=filters // width)(x)
        else:  # wider than the output: blocks at `width`, then 1x1 conv + BN down to `filters`
            branch = _stage(width, convs, strides, name, norm, last_relu=False)(x)
            branch = ConvBN(filters, 1, activation=None, name=f"{name}_project", norm=norm)(branch)
        branches.append(branch)
    return MergeAdd(upsample="bilinear", resize_axes=(1,), crop_axes=(2,),
                    name=f"layer{index}_merge")(branches)


@register(name="speech.bl_pyr_resnet22", description="bL-PYR-ResNet-22 acoustic model",
          big_little=True, options=("alpha", "beta"), **_SPEECH)
def bl_pyr_resnet22(alpha=4, beta=1, num_states=32000, input_shape=None, norm=None, name=None):
    """bL-PYR-ResNet-22 (paper B.2): 4, 3 and 2 branches in stages 1-3 (branch k at 1/2**k of the
    frequency resolution, alpha times thinner per level), stage 4 as ResNet-22. Stage 1's widths
    are scaled by alpha (256, 64, 16, 4) so the full-resolution branch keeps 4 channels."""
    if beta != 1:
        raise ValueError("bL-PYR-ResNet-22 is defined for beta=1 only")
    norm = norm_config(norm)
    inputs = _inputs(input_shape)
    x = ConvBN(64, 5, FREQ_STRIDE, padding=FREQ_PADDED, name="stem", norm=norm)(inputs)
    plans = ((64, 4, alpha), (128, 3, 1), (256, 2, 1))
    for i, (filters, num_branches, scale) in enumerate(plans):
        widths = [filters * scale // alpha ** (num_branches - 1 - k) for k in range(num_branches)]
        x = _pyramid_module(x, filters, widths, [2, 2, 1], norm, i + 1)
        x = _stage(filters, [1], FREQ_STRIDE, f"transition{i + 1}", norm)(x)
    x = _stage(CHANNELS[3], [2, 2], 1, "layer4", norm)(x)
    return keras.Model(inputs, _head(x, num_states, norm), name=name or f"bl_pyr_resnet22_a{alpha}")

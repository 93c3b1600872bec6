"""Slimmable ResNet-50 (torchvision layout, MutualNet's ResNet backbone) and bL-ResNet-50.

bL-ResNet-50 is the released structure (`bl_keras.models.resnet`, alpha 2, beta 4, four merges,
nearest upsampling, average-pool shortcuts) with both branches slimmable: at width 1.0 it has
the parameters and multiply-accumulates of `bl_keras.models.bl_resnet50`. Stage depths, widths
and the stem can be overridden for small models (tests, demo).
"""

from bl_keras.models import specs
from bl_keras.slimmable.blocks import (SlimBigLittleModule, SlimBigLittleStem, SlimResNetStem,
                                       bottleneck_stack)
from bl_keras.slimmable.network import architecture


def _stage_args(stage_depths, stage_filters):
    depths, filters = tuple(int(d) for d in stage_depths), tuple(int(f) for f in stage_filters)
    if len(depths) != 4 or len(filters) != 4 or min(depths) < 1:
        raise ValueError(f"stage_depths and stage_filters need 4 positive entries each, got "
                         f"{stage_depths} and {stage_filters}")
    return depths, filters


@architecture("resnet50")
def resnet50(scale, norm, dtype, stage_depths=(3, 4, 6, 3), stage_filters=specs.STAGE_FILTERS,
             stem_filters=64):
    depths, filters = _stage_args(stage_depths, stage_filters)
    channels, nominal = scale(stem_filters), stem_filters
    blocks = [SlimResNetStem(channels, norm=norm, name="stem", dtype=dtype)]
    for i, (depth, f) in enumerate(zip(depths, filters)):
        strides = specs.PLAIN_STRIDES[i]
        blocks += bottleneck_stack(channels, scale(f), scale(f // 4), depth, strides, "conv",
                                   norm, f"layer{i + 1}_", projection=nominal != f or strides != 1,
                                   dtype=dtype)
        channels, nominal = scale(f), f
    return blocks, channels


@architecture("bl_resnet50")
def bl_resnet50(scale, norm, dtype, alpha=2, beta=4, stage_depths=(3, 4, 6, 3),
                stage_filters=specs.STAGE_FILTERS, stem_filters=64):
    depths, filters = _stage_args(stage_depths, stage_filters)
    if min(depths[:3]) < 2:
        raise ValueError(f"bL-modules need at least 2 blocks, got stage_depths {stage_depths}")
    channels, nominal = scale(stem_filters), stem_filters
    blocks = [SlimBigLittleStem(channels, scale(stem_filters // alpha), norm=norm, name="stem",
                                dtype=dtype)]
    for i in range(3):
        f = filters[i]
        module_channels = {"filters": scale(f), "mid": scale(f // 4),
                           "thin": scale(f // alpha), "thin_mid": scale(f // alpha // 4)}
        projections = {"big": nominal != f, "little": nominal != f // alpha}
        blocks.append(SlimBigLittleModule(channels, module_channels, depths[i], beta=beta,
                                          strides=specs.BIG_LITTLE_STRIDES[i], norm=norm,
                                          projections=projections, name=f"layer{i + 1}",
                                          dtype=dtype))
        channels, nominal = module_channels["filters"], f
    f = filters[3]
    blocks += bottleneck_stack(channels, scale(f), scale(f // 4), depths[3],
                               specs.BIG_LITTLE_STRIDES[3], "avgpool", norm, "layer4_",
                               projection=nominal != f, dtype=dtype)
    return blocks, scale(f)

"""Depth tables and per-family block options of the image models (paper Tables 1, 2, 5, 6, 9).

bL models rebalance depth towards the third stage at 101/152 layers (paper Table 5), so their
block counts differ from the baselines' at the same nominal depth.
"""

# Blocks per stage: (stage1, stage2, stage3, stage4).
PLAIN_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
BIG_LITTLE_DEPTHS = {50: (3, 4, 6, 3), 101: (4, 8, 18, 3), 152: (5, 12, 30, 3)}

# Output channels of each stage and their strides.
STAGE_FILTERS = (256, 512, 1024, 2048)
PLAIN_STRIDES = (1, 2, 2, 2)
# bL-modules 1-3 end with a fusion block of these strides; stage 4 is a plain stage (stride 2).
BIG_LITTLE_STRIDES = (2, 2, 1, 2)
# The low-resolution baselines (Table 6) stride in every stage: all run at half resolution.
LOWRES_STRIDES = (2, 2, 2, 2)

# Block options per family.
FAMILIES = {
    "resnet": dict(cardinality=1, base_width=64, se_reduction=0),
    "resnext_32x4d": dict(cardinality=32, base_width=4, se_reduction=0),
    "resnext_64x4d": dict(cardinality=64, base_width=4, se_reduction=0),
    "seresnext_32x4d": dict(cardinality=32, base_width=4, se_reduction=16),
}

# Every image model of Tables 1 and 2: name -> (family, depth, big_little).
IMAGE_MODELS = {
    "resnet50": ("resnet", 50, False),
    "resnet101": ("resnet", 101, False),
    "resnet152": ("resnet", 152, False),
    "resnext50_32x4d": ("resnext_32x4d", 50, False),
    "resnext101_32x4d": ("resnext_32x4d", 101, False),
    "resnext101_64x4d": ("resnext_64x4d", 101, False),
    "seresnext50_32x4d": ("seresnext_32x4d", 50, False),
    "seresnext101_32x4d": ("seresnext_32x4d", 101, False),
    "bl_resnet50": ("resnet", 50, True),
    "bl_resnet101": ("resnet", 101, True),
    "bl_resnet152": ("resnet", 152, True),
    "bl_resnext50_32x4d": ("resnext_32x4d", 50, True),
    "bl_resnext101_32x4d": ("resnext_32x4d", 101, True),
    "bl_resnext101_64x4d": ("resnext_64x4d", 101, True),
    "bl_seresnext50_32x4d": ("seresnext_32x4d", 50, True),
    "bl_seresnext101_32x4d": ("seresnext_32x4d", 101, True),
}

# The low-resolution baselines of Table 6: name -> (family, depth), plain ResNet depths.
LOWRES_MODELS = {
    "resnet50_lowres": ("resnet", 50),
    "resnet101_lowres": ("resnet", 101),
}

# ShuffleNetV2 (Ma et al., 2018; paper Table 9): output channels of stages 2-4 and of conv5 per
# width multiplier, units per stage, stem width.
SHUFFLENET_WIDTHS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
SHUFFLENET_REPEATS = (4, 8, 4)
SHUFFLENET_STEM = 24

# Every ShuffleNetV2 model: name -> (width multiplier, big_little). The paper has bL versions of
# 1x, 1.5x and 2x only.
SHUFFLENET_MODELS = {
    "shufflenet_v2_x0_5": (0.5, False),
    "shufflenet_v2_x1_0": (1.0, False),
    "shufflenet_v2_x1_5": (1.5, False),
    "shufflenet_v2_x2_0": (2.0, False),
    "bl_shufflenet_v2_x1_0": (1.0, True),
    "bl_shufflenet_v2_x1_5": (1.5, True),
    "bl_shufflenet_v2_x2_0": (2.0, True),
}

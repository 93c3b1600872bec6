"""Depth tables and per-family block options of the image models (paper Tables 1, 2, 5).

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

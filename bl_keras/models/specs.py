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

# CIFAR ResNets (He et al. 2016, Sec. 4.2): depth 6n + 2, n basic blocks in each of 3 stages, a
# 3x3 stem of 16 channels, no max-pool.
CIFAR_STAGE_FILTERS = (16, 32, 64)
CIFAR_STEM_FILTERS = 16
CIFAR_PLAIN_STRIDES = (1, 2, 2)
# bL: modules in stages 1-2 whose fusion blocks stride 2 and 1, then the plain stage 3 striding
# 2 (bL-ResNet-50's (2, 2, 1) + plain stage 4, one stage shorter): every stage's little branch
# runs at the resolution of the plain stage it replaces.
CIFAR_BIG_LITTLE_STRIDES = (2, 1, 2)
# Shortcut option -> BasicBlock shortcut ("B" is He et al.'s name for the projection).
CIFAR_SHORTCUTS = {"A": "A", "B": "conv", "conv": "conv"}

# The Visual Decathlon ResNet-26 (Rebuffi et al. 2017, SpotTune's backbone): 3x3 stem to 32
# channels (BN, no ReLU), 3 stages of 4 basic blocks striding 2 each, 64x64 inputs.
DECATHLON_STEM_FILTERS = 32
DECATHLON_STAGE_FILTERS = (64, 128, 256)
DECATHLON_STRIDES = (2, 2, 2)

# Every CIFAR model: name -> (depth, big_little).
CIFAR_MODELS = {
    "cifar_resnet20": (20, False),
    "cifar_resnet32": (32, False),
    "cifar_resnet56": (56, False),
    "cifar_resnet110": (110, False),
    "bl_cifar_resnet20": (20, True),
    "bl_cifar_resnet32": (32, True),
    "bl_cifar_resnet56": (56, True),
    "bl_cifar_resnet110": (110, True),
}

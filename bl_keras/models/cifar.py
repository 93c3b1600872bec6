"""The CIFAR ResNets of He et al. (2016, Sec. 4.2) and their Big-Little versions, for 28-32 pixel
inputs.

Plain (depth 6n + 2):
    stem    3x3 conv 16 -> BN -> ReLU (no max-pool)
    layer1  n basic blocks, 16 channels, 32x32
    layer2  n basic blocks, 32 channels, the first with stride 2 (16x16)
    layer3  n basic blocks, 64 channels, the first with stride 2 (8x8)
    global average pool, dense classifier.
Shortcuts: "A" (parameter-free: identity, or downsample + zero channels; `ZeroPadShortcut`) or
"B" (1x1 conv + BN where the shape changes).

Big-Little (the paper's rules at this scale; WORKSPACE_NOTES gives the reasons):
    stem    the same 3x3 conv (it does not downsample, so there is nothing for a bL stem to save)
    layer1  bL-module of depth n, 16 channels: little branch at 32x32, big at 16x16; fusion
            block stride 2
    layer2  bL-module of depth n, 32 channels: little at 16x16, big at 8x8; fusion stride 1
    layer3  the plain stage (n blocks, 64 channels, stride 2), as bL-ResNet-50's last stage.

The Visual Decathlon ResNet-26 (Rebuffi et al. 2017; SpotTune's backbone) is the same builder
with other stage settings: a 3x3 stem to 32 channels followed by BN without ReLU, three stages of
4 basic blocks at 64/128/256 channels each striding 2, parameter-free shortcuts, and BN + ReLU
before the pooling (`decathlon_resnet`).

Layer names: stem, layer1, layer2, layer3, [head_bn,] avg_pool, predictions.
"""

import keras

from bl_keras.layers import BigLittleModule, ConvBN, ResidualStage
from bl_keras.layers.blocks import SHORTCUT_POOLS
from bl_keras.layers.norm import batch_norm, norm_config
from bl_keras.models import specs
from bl_keras.models.applications import check_arguments, finish_model, image_input


def blocks_per_stage(depth):
    """n of a CIFAR ResNet of `depth` = 6n + 2 layers."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, ...), got "
                         f"{depth!r}")
    return (depth - 2) // 6


def cifar_resnet(
    depth=20,
    big_little=False,
    alpha=2,
    beta=4,
    upsample="nearest",
    shortcut="A",
    shortcut_pool="average",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    zero_init_residual=False,
    norm=None,
    name=None,
    stem_filters=None,
    stage_filters=None,
    stage_strides=None,
    stem_relu=True,
    head_norm=False,
):
    """Build a CIFAR ResNet (or its bL version) as a functional Keras model.

    Args:
        depth: 6n + 2 (n basic blocks per stage); a bL model needs n >= 2 (a module's depth).
        big_little: bL-modules in stages 1-2 (see the module doc).
        alpha, beta: width and depth ratios of the big to the little branch (bL only).
        upsample: "nearest" or "bilinear" upsampling of the big branch (bL only).
        shortcut: "A" (parameter-free zero padding) or "B" / "conv" (1x1 conv + BN projection).
        shortcut_pool: how an option-A shortcut downsamples: "average" (2x2 mean, BlockDrop's
            released nets) or "subsample" (x[:, ::2, ::2], fb.resnet.torch).
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation:
            as in keras.applications (10 classes by default: CIFAR-10).
        zero_init_residual: initialise the last BN scale of every block to 0 (He et al. and
            BlockDrop start from 1: False).
        norm: BatchNorm options.
        name: model name.
        stem_filters, stage_filters, stage_strides: the stem's channels (16), the stages'
            channels ((16, 32, 64)) and strides ((1, 2, 2)) of a plain model.
        stem_relu: ReLU after the stem's BN (the Decathlon ResNet-26 has none).
        head_norm: BN + ReLU after the last stage (the Decathlon ResNet-26).
    """
    n = blocks_per_stage(depth)
    if shortcut not in specs.CIFAR_SHORTCUTS:
        raise ValueError(f"shortcut must be one of {sorted(specs.CIFAR_SHORTCUTS)}, got "
                         f"{shortcut!r}")
    if shortcut_pool not in SHORTCUT_POOLS:
        raise ValueError(f"shortcut_pool must be one of {SHORTCUT_POOLS}, got {shortcut_pool!r}")
    if big_little and n < 2:
        raise ValueError(f"a bL-module needs 2 or more blocks: depth >= 14, got {depth}")
    check_arguments(include_top, weights, pooling, classes)

    norm = norm_config(norm)
    block_config = dict(shortcut=specs.CIFAR_SHORTCUTS[shortcut], shortcut_pool=shortcut_pool,
                        zero_gamma=bool(zero_init_residual))
    stage = dict(block="basic", block_config=block_config, norm=norm)
    filters = tuple(stage_filters or specs.CIFAR_STAGE_FILTERS)
    if len(filters) != 3 or (stage_strides is not None and len(stage_strides) != 3):
        raise ValueError(f"a CIFAR ResNet has 3 stages: stage_filters {stage_filters!r}, "
                         f"stage_strides {stage_strides!r}")
    if big_little and stage_strides is not None:
        raise ValueError("stage_strides is an option of the plain models (the bL models' "
                         "strides follow the paper's rule)")
    inputs = image_input(input_tensor, input_shape)
    x = ConvBN(stem_filters or specs.CIFAR_STEM_FILTERS, 3, activation="relu" if stem_relu
               else None, norm=norm, name="stem")(inputs)
    if big_little:
        strides = specs.CIFAR_BIG_LITTLE_STRIDES
        for i in range(2):
            x = BigLittleModule(filters[i], n, alpha=alpha, beta=beta, strides=strides[i],
                                upsample=upsample, name=f"layer{i + 1}", **stage)(x)
        x = ResidualStage(filters[2], n, strides=strides[2], name="layer3", **stage)(x)
    else:
        for i in range(3):
            x = ResidualStage(filters[i], n,
                              strides=(stage_strides or specs.CIFAR_PLAIN_STRIDES)[i],
                              name=f"layer{i + 1}", **stage)(x)
    if head_norm:
        x = batch_norm(norm, name="head_bn")(x)
        x = keras.layers.ReLU(name="head_relu")(x)
    default_name = f"{'bl_' if big_little else ''}cifar_resnet{depth}"
    return finish_model(inputs, input_tensor, x, include_top=include_top, pooling=pooling,
                        classes=classes, classifier_activation=classifier_activation,
                        weights=weights, name=name or default_name)


def decathlon_resnet(depth=26, **kwargs):
    """The Visual Decathlon ResNet of `depth` (26: 4 basic blocks per stage; SpotTune's agent is
    depth 8, one block per stage); other arguments as `cifar_resnet` (64x64 inputs)."""
    for option in ("big_little", "stem_filters", "stage_filters", "stage_strides", "stem_relu",
                   "head_norm"):
        if option in kwargs:
            raise ValueError(f"{option} is fixed in the Decathlon ResNet")
    kwargs.setdefault("name", f"decathlon_resnet{depth}")
    return cifar_resnet(depth, stem_filters=specs.DECATHLON_STEM_FILTERS,
                        stage_filters=specs.DECATHLON_STAGE_FILTERS,
                        stage_strides=specs.DECATHLON_STRIDES, stem_relu=False,
                        head_norm=True, **kwargs)

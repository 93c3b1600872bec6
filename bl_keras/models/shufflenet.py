"""ShuffleNetV2 (Ma et al., 2018) and bL-ShuffleNetV2 (paper Appendix A.5, Table 9).

ShuffleNetV2: 3x3 conv 24 /2 -> 3x3 max-pool /2, stages 2-4 of 4, 8, 4 units (the first of each
with stride 2), 1x1 conv5, global average pool, dense. Channels: `specs.SHUFFLENET_WIDTHS`.

bL-ShuffleNetV2 (alpha 2, beta 2; evaluated at 256x256): stages 2 and 3 become bL-modules built
from the same layers as bL-ResNet, with ShuffleNetV2 units as blocks; the stem, stage 4 and conv5
are ShuffleNetV2's. As in bL-ResNet, each little branch runs at the baseline's resolution for its
stage and each big branch at half of it; the fusion unit carries the next stage's stride:
    stage 2 (input stride 4): little = 1 unit at C/2 that strides like the baseline's stage (to
            stride 8), + 1x1 conv to C; big = 3 units at stride 16 (input average-pooled by 2,
            then a stride-2 unit); add + ReLU at stride 8; fusion unit with stride 2 (-> 16).
    stage 3 (input stride 16): little = 3 units at C/2, stride 16, + 1x1 conv; big = 7 units at
            stride 32; add + ReLU; fusion unit with stride 1.
The paper gives no structure beyond "alpha 2, beta 2"; this reading lands on Table 9's
multiply-accumulates at all three widths (WORKSPACE_NOTES.md).

Layer names: stem, stage2, stage3, stage4, conv5, avg_pool, predictions.
"""

from bl_keras.layers import BigLittleModule, ConvBN, ResidualStage, ResNetStem
from bl_keras.layers.norm import norm_config
from bl_keras.models import specs
from bl_keras.models.applications import check_arguments, finish_model, image_input


def shufflenet_v2(
    width=1.0,
    big_little=False,
    alpha=2,
    beta=2,
    upsample="nearest",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    zero_init_residual=False,
    norm=None,
    features=False,
    name=None,
):
    """Build a (bL-)ShuffleNetV2 as a functional Keras model.

    Args:
        width: width multiplier, a key of `specs.SHUFFLENET_WIDTHS` (0.5, 1.0, 1.5, 2.0).
        big_little: build bL-ShuffleNetV2 (bL-modules in stages 2 and 3).
        alpha, beta: width and depth ratios of the big to the little branch (bL only).
        upsample: "nearest" or "bilinear" upsampling of the big branches (bL only).
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation:
            as in keras.applications. `weights` is None or the path of a weights file.
        zero_init_residual: start every unit's right path with a zero BN scale (not done in
            ShuffleNetV2; the option exists because the trainer sets it for every model).
        norm: BatchNorm options.
        features: return the C2-C5 feature model instead (`bl_keras.models.features`).
        name: model name.
    """
    if width not in specs.SHUFFLENET_WIDTHS:
        raise ValueError(f"width must be one of {sorted(specs.SHUFFLENET_WIDTHS)}, got {width!r}")
    check_arguments(include_top, weights, pooling, classes, features)
    norm = norm_config(norm)
    channels = specs.SHUFFLENET_WIDTHS[width]
    repeats = specs.SHUFFLENET_REPEATS
    stage = dict(block="shuffle", block_config={"zero_gamma": bool(zero_init_residual)},
                 norm=norm)
    inputs = image_input(input_tensor, input_shape)

    x = ResNetStem(specs.SHUFFLENET_STEM, kernel_size=3, norm=norm, name="stem")(inputs)
    if big_little:
        bl = dict(alpha=alpha, beta=beta, upsample=upsample, **stage)
        x = BigLittleModule(channels[0], repeats[0], strides=2, little_strides=2, name="stage2",
                            **bl)(x)
        x = BigLittleModule(channels[1], repeats[1], strides=1, name="stage3", **bl)(x)
    else:
        x = ResidualStage(channels[0], repeats[0], strides=2, name="stage2", **stage)(x)
        x = ResidualStage(channels[1], repeats[1], strides=2, name="stage3", **stage)(x)
    x = ResidualStage(channels[2], repeats[2], strides=2, name="stage4", **stage)(x)
    x = ConvBN(channels[3], 1, norm=norm, name="conv5")(x)

    default_name = f"{'bl_' if big_little else ''}shufflenet_v2_x{width:.1f}".replace(".", "_")
    return finish_model(inputs, input_tensor, x, include_top=include_top, pooling=pooling,
                        classes=classes, classifier_activation=classifier_activation,
                        weights=weights, name=name or default_name, features=features)

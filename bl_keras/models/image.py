"""The named constructors of the image models, keras.applications style: the ResNet family of
Tables 1-2, the low-resolution baselines of Table 6, the ShuffleNetV2s of Table 9 and the CIFAR
ResNets (He et al. 2016) with their bL versions.

    model = bl_keras.models.bl_resnet50(alpha=2, beta=4, weights=None, classes=1000)
    model = bl_keras.models.bl_resnet50(merge="concat")          # Table 7 / 8 ablations
    model = bl_keras.models.get("resnext101_32x4d", include_top=False, pooling="avg")
    model = bl_keras.models.bl_shufflenet_v2_x1_0()              # evaluated at 256x256
    model = bl_keras.models.cifar_resnet110(shortcut="A", classes=10)  # 32x32 inputs

Every constructor takes the keras.applications arguments (include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation) and builder options; its registry entry
declares which options choose its variant (`registry.check_options`). Depths and widths come
from the tables of `specs`.
"""

from bl_keras.models import specs
from bl_keras.models.cifar import cifar_resnet, decathlon_resnet
from bl_keras.models.registry import check_options, register
from bl_keras.models.resnet import resnet_family
from bl_keras.models.shufflenet import shufflenet_v2

# Variant options of each family (the registry entries' `options`).
RESNET_OPTIONS = ("stage_depths", "stage_filters", "stem_filters")
BL_RESNET_OPTIONS = ("alpha", "beta", "upsample", "merge", "branches", "num_merges",
                     *RESNET_OPTIONS)
BL_SHUFFLENET_OPTIONS = ("alpha", "beta", "upsample")
CIFAR_RESNET_OPTIONS = ("shortcut", "shortcut_pool")
BL_CIFAR_RESNET_OPTIONS = ("alpha", "beta", "upsample", *CIFAR_RESNET_OPTIONS)
# 32x32 inputs, no crop. (Inputs are normalised with the ImageNet mean/std, as for every model:
# the input pipelines and exports apply one normalisation.)
CIFAR = dict(input_size=32, crop_ratio=1.0)
# The Visual Decathlon's 64x64 images (resized to 72, cropped to 64 in training).
DECATHLON = dict(input_size=64, crop_ratio=1.0)


def _resnet(name, arguments, **fixed):
    """Build model `name` of the ResNet family from its constructor's `arguments`."""
    arguments = dict(arguments)
    options = arguments.pop("options")
    check_options(name, options)
    family, depth, big_little = (specs.IMAGE_MODELS.get(name)
                                 or (*specs.LOWRES_MODELS[name], False))
    return resnet_family(family, depth, big_little, name=options.pop("name", name),
                         **arguments, **fixed, **options)


def _cifar(name, arguments):
    """Build CIFAR ResNet `name` from its constructor's `arguments`."""
    arguments = dict(arguments)
    options = arguments.pop("options")
    check_options(name, options)
    depth, big_little = specs.CIFAR_MODELS[name]
    return cifar_resnet(depth, big_little, name=options.pop("name", name), **arguments,
                        **options)


def _shufflenet(name, arguments):
    """Build ShuffleNetV2 model `name` from its constructor's `arguments`."""
    arguments = dict(arguments)
    options = arguments.pop("options")
    check_options(name, options)
    width, big_little = specs.SHUFFLENET_MODELS[name]
    return shufflenet_v2(width, big_little, name=options.pop("name", name), **arguments,
                         **options)


@register(description="ResNet-50", options=RESNET_OPTIONS)
def resnet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", **options):
    """ResNet-50 (paper Tables 1-2).

    Args: the keras.applications arguments; `options`: those of
    `bl_keras.models.resnet.resnet_family` without the bL ones (features=True: the C2-C5
    detection backbone).
    """
    return _resnet("resnet50", locals())


@register(description="ResNet-101", options=RESNET_OPTIONS)
def resnet101(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", **options):
    """ResNet-101 (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("resnet101", locals())


@register(description="ResNet-152", options=RESNET_OPTIONS)
def resnet152(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", **options):
    """ResNet-152 (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("resnet152", locals())


@register(description="ResNeXt-50 32x4d", options=RESNET_OPTIONS)
def resnext50_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ResNeXt-50 32x4d (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("resnext50_32x4d", locals())


@register(description="ResNeXt-101 32x4d", options=RESNET_OPTIONS)
def resnext101_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ResNeXt-101 32x4d (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("resnext101_32x4d", locals())


@register(description="ResNeXt-101 64x4d", options=RESNET_OPTIONS)
def resnext101_64x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ResNeXt-101 64x4d (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("resnext101_64x4d", locals())


@register(description="SE-ResNeXt-50 32x4d", options=RESNET_OPTIONS)
def seresnext50_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                      pooling=None, classes=1000, classifier_activation="softmax", **options):
    """SE-ResNeXt-50 32x4d (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("seresnext50_32x4d", locals())


@register(description="SE-ResNeXt-101 32x4d", options=RESNET_OPTIONS)
def seresnext101_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", **options):
    """SE-ResNeXt-101 32x4d (paper Tables 1-2); arguments as `resnet50`."""
    return _resnet("seresnext101_32x4d", locals())


@register(description="bL-ResNet-50", big_little=True, options=BL_RESNET_OPTIONS)
def bl_resnet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", alpha=2, beta=4, **options):
    """bL-ResNet-50 (paper Tables 1-2).

    Args: the keras.applications arguments; alpha, beta: width and depth ratios of the
    big to the little branch; `options`: merge, branches, num_merges (Tables 7-8) and
    the other options of `bl_keras.models.resnet.resnet_family` (features=True: the
    C2-C5 detection backbone).
    """
    return _resnet("bl_resnet50", locals())


@register(description="bL-ResNet-101", big_little=True, options=BL_RESNET_OPTIONS)
def bl_resnet101(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", alpha=2, beta=4, **options):
    """bL-ResNet-101 (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_resnet101", locals())


@register(description="bL-ResNet-152", big_little=True, options=BL_RESNET_OPTIONS)
def bl_resnet152(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", alpha=2, beta=4, **options):
    """bL-ResNet-152 (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_resnet152", locals())


@register(description="bL-ResNeXt-50 32x4d", big_little=True, options=BL_RESNET_OPTIONS)
def bl_resnext50_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                       beta=4, **options):
    """bL-ResNeXt-50 32x4d (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_resnext50_32x4d", locals())


@register(description="bL-ResNeXt-101 32x4d", big_little=True, options=BL_RESNET_OPTIONS)
def bl_resnext101_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                        pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                        beta=4, **options):
    """bL-ResNeXt-101 32x4d (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_resnext101_32x4d", locals())


@register(description="bL-ResNeXt-101 64x4d", big_little=True, options=BL_RESNET_OPTIONS)
def bl_resnext101_64x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                        pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                        beta=4, **options):
    """bL-ResNeXt-101 64x4d (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_resnext101_64x4d", locals())


@register(description="bL-SE-ResNeXt-50 32x4d", big_little=True, options=BL_RESNET_OPTIONS)
def bl_seresnext50_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                         pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                         beta=4, **options):
    """bL-SE-ResNeXt-50 32x4d (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_seresnext50_32x4d", locals())


@register(description="bL-SE-ResNeXt-101 32x4d", big_little=True, options=BL_RESNET_OPTIONS)
def bl_seresnext101_32x4d(include_top=True, weights=None, input_tensor=None, input_shape=None,
                          pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                          beta=4, **options):
    """bL-SE-ResNeXt-101 32x4d (paper Tables 1-2); arguments as `bl_resnet50`."""
    return _resnet("bl_seresnext101_32x4d", locals())


@register(description="ResNet-50-lowres", options=RESNET_OPTIONS)
def resnet50_lowres(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ResNet-50-lowres, the low-resolution baseline of paper Table 6; arguments as `resnet50`."""
    return _resnet("resnet50_lowres", locals(), lowres=True)


@register(description="ResNet-101-lowres", options=RESNET_OPTIONS)
def resnet101_lowres(include_top=True, weights=None, input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ResNet-101-lowres, the low-resolution baseline of paper Table 6; arguments as `resnet50`."""
    return _resnet("resnet101_lowres", locals(), lowres=True)


@register(description="ShuffleNetV2 0.5x")
def shufflenet_v2_x0_5(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ShuffleNetV2 0.5x (Ma et al. 2018; paper Table 9).

    Args: the keras.applications arguments; `options`: zero_init_residual, norm,
    features (see `bl_keras.models.shufflenet.shufflenet_v2`).
    """
    return _shufflenet("shufflenet_v2_x0_5", locals())


@register(description="ShuffleNetV2 1x")
def shufflenet_v2_x1_0(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ShuffleNetV2 1x (Ma et al. 2018; paper Table 9); arguments as `shufflenet_v2_x0_5`."""
    return _shufflenet("shufflenet_v2_x1_0", locals())


@register(description="ShuffleNetV2 1.5x")
def shufflenet_v2_x1_5(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ShuffleNetV2 1.5x (Ma et al. 2018; paper Table 9); arguments as `shufflenet_v2_x0_5`."""
    return _shufflenet("shufflenet_v2_x1_5", locals())


@register(description="ShuffleNetV2 2x")
def shufflenet_v2_x2_0(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=1000, classifier_activation="softmax", **options):
    """ShuffleNetV2 2x (Ma et al. 2018; paper Table 9); arguments as `shufflenet_v2_x0_5`."""
    return _shufflenet("shufflenet_v2_x2_0", locals())


@register(description="bL-ShuffleNetV2 1x", big_little=True, input_size=256,
          options=BL_SHUFFLENET_OPTIONS)
def bl_shufflenet_v2_x1_0(include_top=True, weights=None, input_tensor=None, input_shape=None,
                          pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                          beta=2, **options):
    """bL-ShuffleNetV2 1x (paper Table 9, at 256x256).

    Args: the keras.applications arguments; alpha, beta: width and depth ratios of the
    big to the little branch; `options`: upsample, zero_init_residual, norm, features
    (see `bl_keras.models.shufflenet.shufflenet_v2`).
    """
    return _shufflenet("bl_shufflenet_v2_x1_0", locals())


@register(description="bL-ShuffleNetV2 1.5x", big_little=True, input_size=256,
          options=BL_SHUFFLENET_OPTIONS)
def bl_shufflenet_v2_x1_5(include_top=True, weights=None, input_tensor=None, input_shape=None,
                          pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                          beta=2, **options):
    """bL-ShuffleNetV2 1.5x (paper Table 9, at 256x256); arguments as `bl_shufflenet_v2_x1_0`."""
    return _shufflenet("bl_shufflenet_v2_x1_5", locals())


@register(description="bL-ShuffleNetV2 2x", big_little=True, input_size=256,
          options=BL_SHUFFLENET_OPTIONS)
def bl_shufflenet_v2_x2_0(include_top=True, weights=None, input_tensor=None, input_shape=None,
                          pooling=None, classes=1000, classifier_activation="softmax", alpha=2,
                          beta=2, **options):
    """bL-ShuffleNetV2 2x (paper Table 9, at 256x256); arguments as `bl_shufflenet_v2_x1_0`."""
    return _shufflenet("bl_shufflenet_v2_x2_0", locals())


@register(description="ResNet-20 (CIFAR)", options=CIFAR_RESNET_OPTIONS, **CIFAR)
def cifar_resnet20(include_top=True, weights=None, input_tensor=None, input_shape=None,
                   pooling=None, classes=10, classifier_activation="softmax", shortcut="A",
                   **options):
    """ResNet-20 (CIFAR) of He et al. 2016, Sec. 4.2: 3 stages of 3 basic blocks.

    Args: the keras.applications arguments (10 classes by default); shortcut: "A"
    (parameter-free) or "B" (1x1 conv + BN projection); `options`: shortcut_pool,
    zero_init_residual, norm (see `bl_keras.models.cifar.cifar_resnet`).
    """
    return _cifar("cifar_resnet20", locals())


@register(description="ResNet-32 (CIFAR)", options=CIFAR_RESNET_OPTIONS, **CIFAR)
def cifar_resnet32(include_top=True, weights=None, input_tensor=None, input_shape=None,
                   pooling=None, classes=10, classifier_activation="softmax", shortcut="A",
                   **options):
    """ResNet-32 (CIFAR): 3 stages of 5 basic blocks; arguments as `cifar_resnet20`."""
    return _cifar("cifar_resnet32", locals())


@register(description="ResNet-56 (CIFAR)", options=CIFAR_RESNET_OPTIONS, **CIFAR)
def cifar_resnet56(include_top=True, weights=None, input_tensor=None, input_shape=None,
                   pooling=None, classes=10, classifier_activation="softmax", shortcut="A",
                   **options):
    """ResNet-56 (CIFAR): 3 stages of 9 basic blocks; arguments as `cifar_resnet20`."""
    return _cifar("cifar_resnet56", locals())


@register(description="ResNet-110 (CIFAR)", options=CIFAR_RESNET_OPTIONS, **CIFAR)
def cifar_resnet110(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=10, classifier_activation="softmax", shortcut="A",
                    **options):
    """ResNet-110 (CIFAR): 3 stages of 18 basic blocks; arguments as `cifar_resnet20`."""
    return _cifar("cifar_resnet110", locals())


@register(description="bL-ResNet-20 (CIFAR)", big_little=True, options=BL_CIFAR_RESNET_OPTIONS,
          **CIFAR)
def bl_cifar_resnet20(include_top=True, weights=None, input_tensor=None, input_shape=None,
                      pooling=None, classes=10, classifier_activation="softmax", alpha=2, beta=4,
                      shortcut="A", **options):
    """bL-ResNet-20 (CIFAR): bL-modules of depth 3 in stages 1-2, a plain stage 3.

    Args: as `cifar_resnet20`; alpha, beta: width and depth ratios of the big to the
    little branch; `options` also takes upsample.
    """
    return _cifar("bl_cifar_resnet20", locals())


@register(description="bL-ResNet-32 (CIFAR)", big_little=True, options=BL_CIFAR_RESNET_OPTIONS,
          **CIFAR)
def bl_cifar_resnet32(include_top=True, weights=None, input_tensor=None, input_shape=None,
                      pooling=None, classes=10, classifier_activation="softmax", alpha=2, beta=4,
                      shortcut="A", **options):
    """bL-ResNet-32 (CIFAR), modules of depth 5; arguments as `bl_cifar_resnet20`."""
    return _cifar("bl_cifar_resnet32", locals())


@register(description="bL-ResNet-56 (CIFAR)", big_little=True, options=BL_CIFAR_RESNET_OPTIONS,
          **CIFAR)
def bl_cifar_resnet56(include_top=True, weights=None, input_tensor=None, input_shape=None,
                      pooling=None, classes=10, classifier_activation="softmax", alpha=2, beta=4,
                      shortcut="A", **options):
    """bL-ResNet-56 (CIFAR), modules of depth 9; arguments as `bl_cifar_resnet20`."""
    return _cifar("bl_cifar_resnet56", locals())


@register(description="bL-ResNet-110 (CIFAR)", big_little=True, options=BL_CIFAR_RESNET_OPTIONS,
          **CIFAR)
def bl_cifar_resnet110(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=10, classifier_activation="softmax", alpha=2,
                       beta=4, shortcut="A", **options):
    """bL-ResNet-110 (CIFAR), modules of depth 18; arguments as `bl_cifar_resnet20`."""
    return _cifar("bl_cifar_resnet110", locals())


@register(description="ResNet-26 (Visual Decathlon)", options=CIFAR_RESNET_OPTIONS, **DECATHLON)
def decathlon_resnet26(include_top=True, weights=None, input_tensor=None, input_shape=None,
                       pooling=None, classes=10, classifier_activation="softmax", shortcut="A",
                       **options):
    """ResNet-26 (Visual Decathlon), SpotTune's backbone (Rebuffi et al. 2017): 3x3 stem to
    32 channels, 3 stages of 4 basic blocks at 64/128/256 channels each striding 2,
    parameter-free shortcuts, BN + ReLU before the pooling; arguments as `cifar_resnet20`."""
    arguments = dict(locals())
    options = arguments.pop("options")
    check_options("decathlon_resnet26", options)
    return decathlon_resnet(26, name=options.pop("name", "decathlon_resnet26"), **arguments,
                            **options)


__all__ = [
    "decathlon_resnet26",
    "bl_cifar_resnet110",
    "bl_cifar_resnet20",
    "bl_cifar_resnet32",
    "bl_cifar_resnet56",
    "bl_resnet101",
    "bl_resnet152",
    "bl_resnet50",
    "bl_resnext101_32x4d",
    "bl_resnext101_64x4d",
    "bl_resnext50_32x4d",
    "bl_seresnext101_32x4d",
    "bl_seresnext50_32x4d",
    "bl_shufflenet_v2_x1_0",
    "bl_shufflenet_v2_x1_5",
    "bl_shufflenet_v2_x2_0",
    "cifar_resnet110",
    "cifar_resnet20",
    "cifar_resnet32",
    "cifar_resnet56",
    "resnet101",
    "resnet101_lowres",
    "resnet152",
    "resnet50",
    "resnet50_lowres",
    "resnext101_32x4d",
    "resnext101_64x4d",
    "resnext50_32x4d",
    "seresnext101_32x4d",
    "seresnext50_32x4d",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
]

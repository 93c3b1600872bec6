"""Named constructors of the image models, generated from `specs`: the ResNet family of Tables 1-2,
the low-resolution baselines of Table 6 and the ShuffleNetV2s of Table 9.

    model = bl_keras.models.bl_resnet50(alpha=2, beta=4, weights=None, classes=1000)
    model = bl_keras.models.bl_resnet50(merge="concat")          # Table 7 / 8 ablations
    model = bl_keras.models.get("resnext101_32x4d", include_top=False, pooling="avg")
    model = bl_keras.models.bl_shufflenet_v2_x1_0()              # evaluated at 256x256
"""

from bl_keras.models import specs
from bl_keras.models.registry import ModelEntry, register_model
from bl_keras.models.resnet import resnet_family
from bl_keras.models.shufflenet import shufflenet_v2

_FAMILY_TITLES = {
    "resnet": "ResNet-{depth}",
    "resnext_32x4d": "ResNeXt-{depth} 32x4d",
    "resnext_64x4d": "ResNeXt-{depth} 64x4d",
    "seresnext_32x4d": "SE-ResNeXt-{depth} 32x4d",
}

_BIG_LITTLE_OPTIONS = {"alpha", "beta", "upsample", "merge", "branches", "num_merges"}
# Options a bL-ResNet builder takes beyond the common ones (profile CLI, trainer, converter).
_RESNET_BL_OPTIONS = ("alpha", "beta", "merge", "branches", "num_merges")
_COMMON_DOC = ("Takes the keras.applications arguments (include_top, weights, input_tensor, "
               "input_shape, pooling, classes, classifier_activation) and features=True for the "
               "C2-C5 detection backbone")


def _reject_branch_options(name, kwargs):
    branch_options = sorted(set(kwargs) & _BIG_LITTLE_OPTIONS)
    if branch_options:
        raise TypeError(f"{name} is a plain baseline: {branch_options} apply to bL models")


def _named(build, name, title, doc, **entry):
    """Name `build`, document it as `title` (`doc`) and register it."""
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{title} ({doc}."
    register_model(ModelEntry(name=name, builder=build, description=title, **entry))
    return build


def _resnet(name, family, depth, big_little):
    title = ("bL-" if big_little else "") + _FAMILY_TITLES[family].format(depth=depth)
    if big_little:
        def build(alpha=2, beta=4, **kwargs):
            return resnet_family(family, depth, True, alpha=alpha, beta=beta,
                                 name=kwargs.pop("name", name), **kwargs)
        doc = (f"paper Tables 1-2). {_COMMON_DOC}, alpha (default 2), beta (default 4), "
               "merge / branches / num_merges (Tables 7-8) and the options of "
               "`bl_keras.models.resnet.resnet_family`")
    else:
        def build(**kwargs):
            _reject_branch_options(name, kwargs)
            return resnet_family(family, depth, False, name=kwargs.pop("name", name), **kwargs)
        doc = (f"paper Tables 1-2). {_COMMON_DOC} and the options of "
               "`bl_keras.models.resnet.resnet_family`")
    return _named(build, name, title, doc, big_little=big_little,
                  options=_RESNET_BL_OPTIONS if big_little else ())


def _lowres(name, family, depth):
    title = _FAMILY_TITLES[family].format(depth=depth) + "-lowres"

    def build(**kwargs):
        _reject_branch_options(name, kwargs)
        return resnet_family(family, depth, False, lowres=True, name=kwargs.pop("name", name),
                             **kwargs)

    return _named(build, name, title, f"the low-resolution baseline of paper Table 6). "
                  f"{_COMMON_DOC}", big_little=False)


def _shufflenet(name, width, big_little):
    title = ("bL-" if big_little else "") + f"ShuffleNetV2 {width:g}x"
    if big_little:
        def build(alpha=2, beta=2, **kwargs):
            return shufflenet_v2(width, True, alpha=alpha, beta=beta,
                                 name=kwargs.pop("name", name), **kwargs)
        doc = f"paper Table 9, at 256x256). {_COMMON_DOC}, alpha (default 2), beta (default 2)"
    else:
        def build(**kwargs):
            _reject_branch_options(name, kwargs)
            return shufflenet_v2(width, False, name=kwargs.pop("name", name), **kwargs)
        doc = f"Ma et al. 2018; paper Table 9). {_COMMON_DOC}"
    # bL-ShuffleNetV2 is reported at 256x256 (its savings are spent on the resolution).
    return _named(build, name, title, doc, big_little=big_little,
                  input_size=256 if big_little else 224,
                  options=("alpha", "beta") if big_little else ())


_constructors = {name: _resnet(name, *spec) for name, spec in specs.IMAGE_MODELS.items()}
_constructors.update({name: _lowres(name, *spec) for name, spec in specs.LOWRES_MODELS.items()})
_constructors.update(
    {name: _shufflenet(name, *spec) for name, spec in specs.SHUFFLENET_MODELS.items()})
globals().update(_constructors)
__all__ = sorted(_constructors)

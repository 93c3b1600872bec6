"""Named constructors of the image models of Tables 1-2, generated from `specs.IMAGE_MODELS`.

    model = bl_keras.models.bl_resnet50(alpha=2, beta=4, weights=None, classes=1000)
    model = bl_keras.models.get("resnext101_32x4d", include_top=False, pooling="avg")
"""

from bl_keras.models import specs
from bl_keras.models.registry import ModelEntry, register_model
from bl_keras.models.resnet import resnet_family

_FAMILY_TITLES = {
    "resnet": "ResNet",
    "resnext_32x4d": "ResNeXt-{depth} 32x4d",
    "resnext_64x4d": "ResNeXt-{depth} 64x4d",
    "seresnext_32x4d": "SE-ResNeXt-{depth} 32x4d",
}

_BIG_LITTLE_OPTIONS = {"alpha", "beta", "upsample", "merge"}


def _constructor(name, family, depth, big_little):
    title = _FAMILY_TITLES[family].format(depth=depth)
    if family == "resnet":
        title = f"ResNet-{depth}"
    title = ("bL-" if big_little else "") + title

    if big_little:
        def build(alpha=2, beta=4, **kwargs):
            return resnet_family(family, depth, True, alpha=alpha, beta=beta,
                                 name=kwargs.pop("name", name), **kwargs)
    else:
        def build(**kwargs):
            branch_options = sorted(set(kwargs) & _BIG_LITTLE_OPTIONS)
            if branch_options:
                raise TypeError(f"{name} is a plain baseline: {branch_options} apply to bL models")
            return resnet_family(family, depth, False, name=kwargs.pop("name", name), **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"{title} (paper Tables 1-2). Takes the keras.applications arguments (include_top, "
        "weights, input_tensor, input_shape, pooling, classes, classifier_activation)"
        + (", alpha (default 2) and beta (default 4)" if big_little else "")
        + " and the options of `bl_keras.models.resnet.resnet_family`."
    )
    register_model(ModelEntry(name=name, builder=build, description=title, big_little=big_little,
                              options=("alpha", "beta") if big_little else ()))
    return build


_constructors = {
    name: _constructor(name, *spec) for name, spec in specs.IMAGE_MODELS.items()
}
globals().update(_constructors)
__all__ = sorted(_constructors)

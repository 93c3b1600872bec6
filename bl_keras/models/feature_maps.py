"""Multi-level feature maps of any image model, for detection backbones (paper Appendix A.6).

    backbone = bl_keras.models.features("bl_resnet101")            # a new model, C2..C5
    backbone = bl_keras.models.features(classifier)                # classifier's weights
    maps = backbone(images)        # {"C2": stride 4, "C3": stride 8, "C4": stride 16, "C5": 32}

`C<k>` is the deepest feature map the model computes at stride 2**k, on its main path: for the
plain ResNets the outputs of layer1-layer4; for the bL-ResNets the merged maps of the first two
bL-modules (C2, C3: the big and little branches added, at the little branch's resolution, with
the channels of ResNet's C2/C3), the output of layer3 (C4) and of layer4 (C5); for ShuffleNetV2
the stem, stage2, stage3 and conv5 (bL: the stem, stage2's merged map, stage3, conv5); for the
low-resolution baselines (strides 8-64) the stem, layer1, layer2 and layer3.

A bL-module gives its merged map when called with `return_merged=True`. Keras' functional graph
checks a shared layer's outputs against its first call, so the feature model is built from copies
of the model's layers (same configs, same weights), not from the layers themselves.
"""

import keras

from bl_keras.layers import BigLittleModule
from bl_keras.models.registry import get

LEVELS = (("C2", 4), ("C3", 8), ("C4", 16), ("C5", 32))
# Side of the probe image the strides are measured with (a multiple of every stride).
_PROBE = 512


def features(model_or_name, **options):
    """A Keras model from images to the dict of feature maps {"C2", "C3", "C4", "C5"}.

    Args:
        model_or_name: a registered model name (built with `include_top=False` and `options`),
            or a model built by `bl_keras.models` (the feature model starts from a copy of its
            weights).
        options: builder options (alpha, beta, input_shape, ...) when a name is given.
    """
    if isinstance(model_or_name, str):
        return get(model_or_name, include_top=False, features=True, **options)
    if options:
        raise TypeError("builder options apply when a model name is given")
    return feature_model(model_or_name)


def _taps(layer):
    return isinstance(layer, BigLittleModule) and layer.merge is not None


def _stride(tensor):
    if not isinstance(tensor, keras.KerasTensor) or len(tensor.shape) != 4:
        return None
    return _PROBE // tensor.shape[1]


def _copy(layer):
    return type(layer).from_config(layer.get_config())


def feature_model(model):
    """The C2-C5 model of `model`, a chain of layers (stem, stages, optional head)."""
    image = model.inputs[0]
    inputs = keras.Input(batch_shape=image.shape, dtype=image.dtype, name=image.name)
    y = keras.KerasTensor((1, _PROBE, _PROBE, image.shape[-1]))
    x = inputs
    candidates = []  # (stride, tensor) in the order the model computes them
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        kwargs = {"return_merged": True} if _taps(layer) else {}
        probed = layer.compute_output_spec(y, **kwargs)
        y = probed[0] if kwargs else probed
        if not isinstance(y, list) and len(y.shape) != 4:
            break  # the classifier head (or pooling) begins
        copy = _copy(layer)
        x = copy(x, **kwargs)
        copy.set_weights(layer.get_weights())
        if kwargs:
            x, merged = x
            candidates.append((_stride(probed[1]), merged))
        if not isinstance(y, list):  # [big, little] of a module that does not merge
            candidates.append((_stride(y), x))
    maps = {}
    for level, stride in LEVELS:
        found = [tensor for s, tensor in candidates if s == stride]
        if not found:
            raise ValueError(f"{model.name} has no feature map at stride {stride} ({level}) on "
                             "its main path")
        maps[level] = found[-1]
    return keras.Model(inputs, maps, name=f"{model.name}_features")

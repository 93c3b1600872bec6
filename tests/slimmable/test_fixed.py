"""`fixed_network(model, w)`: a network of just the width-w weights that computes what
`model(x, width=w)` computes, in inference and in training mode."""

import keras
import numpy as np
import pytest

from bl_keras import profiling, slimmable
from bl_keras.slimmable.calibration import batch_norm_layers
from tests.slimmable.helpers import assert_close, images, randomize

SMALL_RESNET = dict(classes=5, stage_depths=(2, 2, 2, 2), stage_filters=(64, 128, 256, 512),
                    stem_filters=16)
HALF_V2 = dict(classes=5, base_width=0.5)

CASES = [
    pytest.param("bl_resnet50", SMALL_RESNET, 0.3, 64, id="bl_resnet50-small-0.3"),
    pytest.param("bl_resnet50", SMALL_RESNET, 0.55, 64, id="bl_resnet50-small-0.55"),
    pytest.param("resnet50", SMALL_RESNET, 0.55, 64, id="resnet50-small-0.55"),
    pytest.param("mobilenet_v2", HALF_V2, 0.6, 32, id="mobilenet_v2-base0.5-0.6"),
    # Shortcuts follow the full network: block0 (32 -> 16) has none, also where both round
    # to 8; the little branch of layer1 (64 -> 128) keeps its projection where both round to 8
    # (base width 0.25, width 0.25).
    pytest.param("mobilenet_v2", dict(classes=5), 0.25, 32, id="mobilenet_v2-0.25"),
    pytest.param("bl_resnet50", dict(SMALL_RESNET, base_width=0.25), 0.25, 64,
                 id="bl_resnet50-base0.25-0.25"),
    # Basic blocks: option-A shortcuts pad to the width's channels, identity ones tie them.
    pytest.param("cifar_resnet20", dict(classes=5), 0.5, 28, id="cifar_resnet20-0.5"),
    pytest.param("cifar_resnet20", dict(classes=5, shortcut="B"), 0.75, 28,
                 id="cifar_resnet20-B-0.75"),
    pytest.param("bl_cifar_resnet20", dict(classes=5), 0.6, 28, id="bl_cifar_resnet20-0.6"),
]
_MODELS = {}


def model_of(name, options):
    key = (name, tuple(sorted(options.items())))
    if key not in _MODELS:
        _MODELS[key] = randomize(slimmable.get(name, classifier_activation=None, **options),
                                 seed=len(_MODELS))
    return _MODELS[key]


@pytest.mark.parametrize("name,options,width,size", CASES)
def test_fixed_network_computes_the_sub_network(name, options, width, size):
    model = model_of(name, options)
    fixed = slimmable.fixed_network(model, width)
    x = images((2, size, size, 3), seed=5)

    assert_close(fixed(x, width=1.0, training=False), model(x, width=width, training=False))
    # Training mode: batch statistics, and the same moving-statistics update in both.
    assert_close(fixed(x, width=1.0, training=True), model(x, width=width, training=True))
    for full_bn, fixed_bn in zip(batch_norm_layers(model), batch_norm_layers(fixed)):
        for a, b in ((full_bn.moving_mean, fixed_bn.moving_mean),
                     (full_bn.moving_variance, fixed_bn.moving_variance)):
            b = keras.ops.convert_to_numpy(b)
            np.testing.assert_allclose(b, keras.ops.convert_to_numpy(a)[:b.shape[0]],
                                       rtol=1e-5, atol=1e-6)

    params = profiling.count_params(fixed)
    assert params == slimmable.active_params(model, width)
    assert params < profiling.count_params(model)
    # Every weight of the fixed network is the leading slice of the model's.
    for source, target in zip(model.weights, fixed.weights):
        value = keras.ops.convert_to_numpy(source)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(target),
                                      value[tuple(slice(0, n) for n in target.shape)])

"""A sub-network of a slimmable MobileNet is the plain keras.applications network of that width.

Every weight and every BatchNorm moving statistic is random, so a wrong slice of any of them
(the first channels of kernels, biases, gamma, beta, moving mean or variance) changes the
output. keras.applications' weights are assigned the slimmable weight at the same position in
`weights` order, cut to the keras weight's shape.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import slimmable
from tests.slimmable.helpers import assert_close, copy_sliced, images, randomize

SIZE, CLASSES = 96, 10
# keras.applications' BatchNorm epsilon.
NORM = {"epsilon": 1e-3}


@pytest.fixture(scope="module")
def batch():
    return images((2, SIZE, SIZE, 3))


@pytest.fixture(scope="module")
def v2():
    model = slimmable.get("mobilenet_v2", classes=CLASSES, norm=NORM, classifier_activation=None)
    return randomize(model, seed=2)


@pytest.fixture(scope="module")
def v1():
    model = slimmable.get("mobilenet_v1", classes=CLASSES, norm=NORM, classifier_activation=None)
    return randomize(model, seed=3)


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.0])
def test_mobilenet_v2_width_is_keras_mobilenet_v2(v2, batch, width):
    plain = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=width,
                                           weights=None, classes=CLASSES,
                                           classifier_activation=None)
    copy_sliced(v2, plain)
    expected = plain(batch, training=False)
    got = v2(batch, width=width, training=False)
    assert got.shape == (2, CLASSES)
    assert_close(got, expected)


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1.0])
def test_mobilenet_v1_width_is_keras_mobilenet(v1, batch, width):
    plain = keras.applications.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=width, dropout=0.0,
                                         weights=None, classes=CLASSES,
                                         classifier_activation=None)
    copy_sliced(v1, plain, reshape_dense=True)
    assert_close(v1(batch, width=width, training=False), plain(batch, training=False))


def test_tensor_width_in_tf_function_matches_python_width(v2, batch):
    # MobileNet v2: its expansion convs also compute their counts (ratio 6) from the tensor.
    model = v2
    step = tf.function(lambda x, w: model(x, width=w, training=False))
    outputs = {}
    for width in (0.5, 1.0):
        outputs[width] = step(tf.constant(batch), tf.constant(width, tf.float32))
        assert_close(outputs[width], model(batch, width=width, training=False))
    # The widths are different functions (the comparison is not vacuous).
    assert not np.allclose(outputs[0.5], outputs[1.0], rtol=1e-3)
    # One trace serves every width.
    assert step.experimental_get_tracing_count() == 1

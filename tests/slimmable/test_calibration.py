"""Post-training BatchNorm statistics: `calibrate_batch_norm` / `Calibrator`, and
`preserved_batch_norm`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import slimmable
from bl_keras.layers import width as widths
from bl_keras.slimmable.calibration import Calibrator, batch_norm_layers, preserved_batch_norm
from tests.slimmable.helpers import images, randomize

SIZE, WIDTH = 32, 0.5


def _model():
    # A one-block-per-stage ResNet-50: every kind of layer, the fewest ops to trace.
    return randomize(slimmable.get("resnet50", classes=5, stage_depths=(1, 1, 1, 1),
                                   stage_filters=(64, 128, 256, 512), stem_filters=16), seed=21)


def _stem(model):
    return model.network.get_layer("stem").conv1   # ConvBN: 7x7/2 conv, the first BatchNorm


def _snapshot(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _stem_conv_output(model, batch, width):
    """Input of the first BatchNorm at `width`: the stem's 7x7/2 conv (3 pixels of zeros each
    side) of the images with the first active output channels of its kernel, computed here with
    TF directly."""
    conv = _stem(model).conv
    c = widths.active(conv.filters, width)
    kernel = keras.ops.convert_to_numpy(conv.kernel)[:, :, :, :c]
    padded = np.pad(batch, [(0, 0), (3, 3), (3, 3), (0, 0)])
    return tf.nn.conv2d(padded, kernel, 2, "VALID").numpy()


def _batches(sizes, seed=30):
    return [images((n, SIZE, SIZE, 3), seed=seed + i) * 2.0 + 0.3 for i, n in enumerate(sizes)]


def test_first_batch_norm_gets_average_of_batch_statistics():
    model = _model()
    bns = batch_norm_layers(model)
    stem_bn = _stem(model).bn
    assert bns[0] is stem_bn
    before_stats = [_snapshot((bn.moving_mean, bn.moving_variance)) for bn in bns]
    before_weights = _snapshot(model.trainable_weights)
    batches = _batches([4, 4, 4])

    used = slimmable.calibrate_batch_norm(model, batches, width=WIDTH)
    assert used == 12

    c = widths.active(stem_bn.moving_mean.shape[0], WIDTH)
    assert c < stem_bn.moving_mean.shape[0]
    conv_outputs = [_stem_conv_output(model, b, WIDTH) for b in batches]
    expected_mean = np.mean([o.mean(axis=(0, 1, 2)) for o in conv_outputs], axis=0)
    expected_var = np.mean([o.var(axis=(0, 1, 2)) for o in conv_outputs], axis=0)  # biased
    mean = keras.ops.convert_to_numpy(stem_bn.moving_mean)
    var = keras.ops.convert_to_numpy(stem_bn.moving_variance)
    np.testing.assert_allclose(mean[:c], expected_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var[:c], expected_var, rtol=1e-4, atol=1e-5)

    # Every BN layer: the active channels changed, the others did not.
    for bn, (old_mean, old_var) in zip(bns, before_stats):
        k = widths.active(bn.moving_mean.shape[0], WIDTH)
        new_mean, new_var = _snapshot((bn.moving_mean, bn.moving_variance))
        np.testing.assert_array_equal(new_mean[k:], old_mean[k:])
        np.testing.assert_array_equal(new_var[k:], old_var[k:])
        assert np.all(new_mean[:k] != old_mean[:k]), bn.path
    # Trainable weights untouched.
    for old, new in zip(before_weights, _snapshot(model.trainable_weights)):
        np.testing.assert_array_equal(new, old)


@pytest.fixture(scope="module")
def calibrator():
    """One model and one Calibrator (one traced step) for the tests below."""
    return Calibrator(_model())


def test_num_images_limits_the_images_used(calibrator):
    model = calibrator.model
    stem_bn = _stem(model).bn
    batches = _batches([4, 4, 4])
    # 6 images: the first batch and the first 2 images of the second; (images, labels) pairs.
    used = calibrator([(b, np.zeros(len(b))) for b in batches], WIDTH, num_images=6)
    assert used == 6
    c = widths.active(stem_bn.moving_mean.shape[0], WIDTH)
    parts = [batches[0], batches[1][:2]]
    expected = np.mean([_stem_conv_output(model, p, WIDTH).mean(axis=(0, 1, 2))
                        for p in parts], axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stem_bn.moving_mean)[:c], expected,
                               rtol=1e-4, atol=1e-5)


def test_calibration_resizes_to_resolution_and_restarts_the_average(calibrator):
    model = calibrator.model
    stem_bn = _stem(model).bn
    batches = [images((4, 40, 40, 3), seed=40 + i) for i in range(2)]
    # Resized (bilinear) to 32x32 before the step.
    assert calibrator(batches, 0.75, resolution=SIZE) == 8
    resized = [tf.image.resize(b, (SIZE, SIZE), method="bilinear").numpy() for b in batches]
    c = widths.active(stem_bn.moving_mean.shape[0], 0.75)
    expected = np.mean([_stem_conv_output(model, r, 0.75).mean(axis=(0, 1, 2))
                        for r in resized], axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stem_bn.moving_mean)[:c], expected,
                               rtol=1e-4, atol=1e-5)
    # A later call (another width) starts a new average: the result is that of its batch alone.
    assert calibrator(resized[:1], 0.25, num_images=100) == 4
    c = widths.active(stem_bn.moving_mean.shape[0], 0.25)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stem_bn.moving_mean)[:c],
        _stem_conv_output(model, resized[0], 0.25).mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_calibration_without_images_raises(calibrator):
    with pytest.raises(ValueError, match="no images"):
        slimmable.calibrate_batch_norm(calibrator.model, [], 0.5)


def test_a_single_array_is_one_batch(calibrator):
    model = calibrator.model
    stem_bn = _stem(model).bn
    batch = _batches([5], seed=50)[0]
    for images in (batch, tf.constant(batch)):  # numpy array, tensor: rank 4
        assert calibrator(images, WIDTH) == 5
        c = widths.active(stem_bn.moving_mean.shape[0], WIDTH)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(stem_bn.moving_mean)[:c],
            _stem_conv_output(model, batch, WIDTH).mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_images_that_are_not_batches_raise(calibrator):
    image = _batches([1])[0][0]                         # one [H, W, 3] image
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\].*shape \(32, 32, 3\)"):
        calibrator(image, WIDTH)
    unbatched = tf.data.Dataset.from_tensor_slices(_batches([2])[0])
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\].*shape \(32, 32, 3\).*unbatched"):
        calibrator(unbatched, WIDTH)
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\] images, got a str"):
        calibrator(["image.jpg"], WIDTH)                # file names, not images


def test_preserved_batch_norm_restores_the_statistics_even_on_error(calibrator):
    model = calibrator.model
    bns = batch_norm_layers(model)
    before = [_snapshot((bn.moving_mean, bn.moving_variance)) for bn in bns]
    with pytest.raises(RuntimeError, match="stop"):
        with preserved_batch_norm(model):
            calibrator(_batches([4], seed=60), 0.25)
            changed = _snapshot((bns[0].moving_mean,))[0]
            assert np.any(changed != before[0][0])
            raise RuntimeError("stop")
    for bn, (old_mean, old_var) in zip(bns, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), old_mean)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_variance), old_var)

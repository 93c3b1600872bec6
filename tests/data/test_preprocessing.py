import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from bl_keras.data import preprocessing
from bl_keras.data.preprocessing import (IMAGENET_MEAN, IMAGENET_STD,
                                         decode_image, eval_preprocess,
                                         normalize, train_preprocess)


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def noise_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3),
                                                dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_decode_image_gives_uint8_rgb(fmt):
    image = noise_image(10, 14)
    decoded = decode_image(encode(image, fmt))
    assert decoded.dtype == tf.uint8
    assert decoded.shape == (10, 14, 3)
    if fmt != "JPEG":  # Lossless formats round-trip exactly.
        np.testing.assert_array_equal(decoded.numpy(), image)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA"])
def test_decode_image_converts_other_colour_modes_to_rgb(mode):
    pil = Image.fromarray(noise_image(8, 8)).convert(mode)
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG" if mode == "CMYK" else "PNG")
    assert decode_image(buffer.getvalue()).shape == (8, 8, 3)


def test_eval_preprocess_centre_crop_pixels():
    # 16 x 8 image, size 7: shorter side round(7 / 0.875) = 8 is already 8, so
    # no resampling; the 7 x 7 crop starts at top round(4.5) = 4 (half to
    # even, as torchvision), left round(0.5) = 0.
    image = np.arange(16 * 8 * 3, dtype=np.float32).reshape(16, 8, 3) % 251
    out = eval_preprocess(tf.constant(image.astype(np.uint8)), 7)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), image[4:11, 0:7], atol=1e-3)


def test_eval_preprocess_resizes_shorter_side_then_crops():
    # 300 x 400 -> 256 x 341 (longer side truncated) -> centre 224 x 224.
    # A horizontal ramp shows which columns were kept.
    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.float32), (300, 1))
    image = np.repeat(ramp[..., None], 3, axis=2)
    out = eval_preprocess(tf.constant(image), 224).numpy()
    assert out.shape == (224, 224, 3)
    left = round((341 - 224) / 2)
    expected_first_col = (left + 0.5) * 400 / 341 - 0.5  # source column
    np.testing.assert_allclose(out[112, 0, 0], expected_first_col * 255 / 399,
                               atol=1.0)


def test_normalize_uses_imagenet_constants():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert IMAGENET_STD == (0.229, 0.224, 0.225)
    mean_image = tf.constant(np.array(IMAGENET_MEAN) * 255, tf.float32)
    np.testing.assert_allclose(normalize(mean_image[None, None]).numpy(), 0,
                               atol=1e-6)
    white = normalize(tf.fill([2, 2, 3], tf.constant(255, tf.uint8)))
    assert white.dtype == tf.float32
    np.testing.assert_allclose(
        white.numpy()[0, 0],
        (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), rtol=1e-6)


def test_train_preprocess_is_a_function_of_the_seed():
    image = tf.constant(noise_image(50, 70))

    def run(seed):
        return train_preprocess(image, 32, tf.constant(seed, tf.int64)).numpy()

    first = run([1, 2])
    assert first.shape == (32, 32, 3) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 255
    np.testing.assert_array_equal(first, run([1, 2]))
    assert not np.allclose(first, run([1, 3]))


def test_train_preprocess_keeps_a_flat_colour_without_jitter():
    colour = np.array([10, 120, 240], np.uint8)
    image = tf.constant(np.broadcast_to(colour, (30, 40, 3)))
    for seed in range(5):
        out = train_preprocess(image, 16, tf.constant([seed, 0]),
                               color_jitter=0.0)
        np.testing.assert_allclose(out.numpy(), np.broadcast_to(colour, out.shape),
                                   atol=1e-3)


def test_random_resized_crop_falls_back_for_extreme_aspect_ratios():
    # No 10-attempt window fits a 3 x 300 strip; torchvision then centre
    # crops at the clamped ratio 4/3: height 3, width round(3 * 4/3) = 4.
    top, left, h, w = preprocessing._random_resized_crop_window(
        tf.constant(3), tf.constant(300), tf.constant([0, 0]))
    assert (int(h), int(w), int(top), int(left)) == (3, 4, 0, 148)
    out = train_preprocess(tf.constant(noise_image(3, 300)), 8,
                           tf.constant([0, 0]))
    assert out.shape == (8, 8, 3)


def test_random_resized_crop_window_stays_inside_the_image():
    for seed in range(20):
        top, left, h, w = (int(v) for v in
                           preprocessing._random_resized_crop_window(
                               tf.constant(60), tf.constant(90),
                               tf.constant([seed, 1])))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 90
        assert 0.08 * 60 * 90 * 0.9 <= h * w <= 60 * 90


def test_rotation_rotates_about_the_centre_with_black_fill():
    white = tf.fill([32, 32, 3], tf.constant(255, tf.uint8))
    seed = tf.constant([0, 7])
    plain = train_preprocess(white, 32, seed, color_jitter=0.0).numpy()
    rotated = train_preprocess(white, 32, seed, rotation_degrees=45.0,
                               color_jitter=0.0).numpy()
    assert rotated.shape == (32, 32, 3)
    np.testing.assert_allclose(plain, 255, atol=1e-3)
    np.testing.assert_allclose(rotated[14:18, 14:18], 255, atol=1e-3)
    corners = rotated[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 128  # The rotated-in corners are fill (black).
